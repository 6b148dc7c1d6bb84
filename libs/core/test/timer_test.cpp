// Timers: send_after / cancel_timer, on a virtual clock and on the real one.
#include <gtest/gtest.h>

#include "canopy/testing/virtual_clock.hpp"
#include "test_support.hpp"

namespace canopy::test {
namespace {

using namespace std::chrono_literals;

class TimersManual : public ::testing::Test {
 protected:
  std::shared_ptr<testing::virtual_clock> clk = std::make_shared<testing::virtual_clock>();
  runtime rt{{.mode = scheduling::manual, .clock = clk}};
  std::shared_ptr<recorder> rec = std::make_shared<recorder>();
};

TEST_F(TimersManual, SendAfterDeliversAtTheDeadlineNotBefore) {
  pid p = rt.spawn<scripted>(record_into(rec));
  rt.send_after(250ms, p, 1);
  rt.run_until_idle();
  clk->advance(249ms);
  rt.run_until_idle();
  EXPECT_EQ(rec->size(), 0u);
  clk->advance(1ms);
  rt.run_until_idle();
  EXPECT_EQ(rec->lines(), std::vector<std::string>{"int 1"});
}

TEST_F(TimersManual, TimersFireInDeadlineOrder) {
  pid p = rt.spawn<scripted>(record_into(rec));
  rt.send_after(30ms, p, 3);
  rt.send_after(10ms, p, 1);
  rt.send_after(20ms, p, 2);
  clk->advance(30ms);
  rt.run_until_idle();
  EXPECT_EQ(rec->lines(), (std::vector<std::string>{"int 1", "int 2", "int 3"}));
}

TEST_F(TimersManual, CancelledTimerNeverDelivers) {
  pid p = rt.spawn<scripted>(record_into(rec));
  timer_ref t = rt.send_after(10ms, p, 1);
  EXPECT_TRUE(rt.cancel_timer(t));
  EXPECT_FALSE(rt.cancel_timer(t));  // already cancelled
  clk->advance(1s);
  rt.run_until_idle();
  EXPECT_EQ(rec->size(), 0u);
}

TEST_F(TimersManual, CancelAfterFiringAnswersFalse) {
  pid p = rt.spawn<scripted>(record_into(rec));
  timer_ref t = rt.send_after(10ms, p, 1);
  clk->advance(10ms);
  EXPECT_FALSE(rt.cancel_timer(t));
  rt.run_until_idle();
  EXPECT_EQ(rec->size(), 1u);
}

TEST_F(TimersManual, ProcessCanTimeItself) {
  rt.spawn<scripted>(record_into(rec), [](scripted& self) { self.send_after(1s, self.self(), 5); });
  rt.run_until_idle();
  clk->advance(1s);
  rt.run_until_idle();
  EXPECT_EQ(rec->lines(), std::vector<std::string>{"int 5"});
}

TEST_F(TimersManual, TimerToADeadProcessIsDropped) {
  pid p = rt.spawn<scripted>(record_into(rec));
  rt.send_after(10ms, p, 1);
  rt.exit(p, exit_reason::kill());
  rt.run_until_idle();
  clk->advance(10ms);
  rt.run_until_idle();
  EXPECT_EQ(rec->size(), 0u);
}

TEST(TimersReal, SendAfterArrivesOnTheOsClock) {
  runtime rt({.threads = 2});
  auto rec = std::make_shared<recorder>();
  pid p = rt.spawn<scripted>(record_into(rec));
  const auto start = std::chrono::steady_clock::now();
  rt.send_after(30ms, p, 1);
  ASSERT_TRUE(rec->wait_for(1));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);  // never early
}

TEST(TimersReal, AnEarlierTimerWakesTheSleepingTimerThread) {
  runtime rt({.threads = 1});
  auto rec = std::make_shared<recorder>();
  pid p = rt.spawn<scripted>(record_into(rec));
  rt.send_after(1h, p, 1);  // the timer thread now sleeps for an hour
  rt.send_after(5ms, p, 2);
  ASSERT_TRUE(rec->wait_for(1));
  EXPECT_EQ(rec->lines().at(0), "int 2");
}

}  // namespace
}  // namespace canopy::test
