// runtime::set_idle_poller: a scheduler thread with nothing to run waits in the poller
// instead of sleeping, work from elsewhere interrupts it, a message the poll sends runs on
// the polling thread, and removal waits out a poll under way.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "test_support.hpp"

namespace canopy::test {
namespace {

using namespace std::chrono_literals;

// Waits on an eventfd (interrupt() writes it); a poll may send one queued message.
class fake_poller final : public idle_poller {
 public:
  explicit fake_poller(runtime& rt) : rt_(rt), fd_(::eventfd(0, EFD_NONBLOCK)) {}
  ~fake_poller() override { ::close(fd_); }

  outcome poll(bool block) noexcept override {
    ++polls;
    if (!block) ++nonblocking;
    if (block && busy_left.load() > 0) {  // another thread holds the source for a moment
      --busy_left;
      return outcome::busy;
    }
    if (block) ++blocking;
    inside = true;
    if (block && !send_to.load()) {
      pollfd p{fd_, POLLIN, 0};
      (void)::poll(&p, 1, -1);
    }
    std::uint64_t n = 0;
    (void)::read(fd_, &n, sizeof n);
    if (pid* to = send_to.exchange(nullptr)) {
      polled_on = std::this_thread::get_id();
      rt_.send(*to, 1);
    }
    inside = false;
    return outcome::served;
  }
  void interrupt() noexcept override {
    const std::uint64_t one = 1;
    (void)::write(fd_, &one, sizeof one);
  }

  std::atomic<int> polls{0}, blocking{0}, nonblocking{0}, busy_left{0};
  std::atomic<bool> inside{false};
  std::atomic<pid*> send_to{nullptr};
  std::thread::id polled_on;

 private:
  runtime& rt_;
  int fd_;
};

TEST(IdlePoller, AnIdleSchedulerThreadWaitsInItAndWorkInterruptsIt) {
  runtime rt({.threads = 2});
  fake_poller poller(rt);
  ASSERT_TRUE(rt.set_idle_poller(&poller));
  EXPECT_FALSE(rt.set_idle_poller(&poller));  // one at a time
  ASSERT_TRUE(testing::wait_until([&] { return poller.blocking.load() > 0 && poller.inside.load(); }));
  // Work from outside while every thread idles (one of them in the poll): it runs.
  std::atomic<int> got{0};
  std::atomic<std::thread::id> ran_on{};
  pid p = rt.spawn<scripted>([&](scripted&, message& m) {
    if (m.get<int>()) {
      ran_on = std::this_thread::get_id();
      ++got;
    }
  });
  rt.send(p, 1);
  ASSERT_TRUE(testing::wait_until([&] { return got.load() == 1; }));
  // A message the poll itself sends runs on the polling thread, next.
  ASSERT_TRUE(testing::wait_until([&] { return poller.inside.load(); }));
  poller.send_to = &p;
  poller.interrupt();
  ASSERT_TRUE(testing::wait_until([&] { return got.load() == 2; }));
  EXPECT_EQ(ran_on.load(), poller.polled_on);
  // Removal returns with no poll under way; none starts after.
  ASSERT_TRUE(rt.set_idle_poller(nullptr));
  EXPECT_FALSE(poller.inside.load());
  const int polls = poller.polls.load();
  rt.send(p, 1);
  ASSERT_TRUE(testing::wait_until([&] { return got.load() == 3; }));
  EXPECT_EQ(poller.polls.load(), polls);
}

TEST(IdlePoller, AThreadFindingItBusyForAMomentWaitsInItOnceItIsFree) {
  // The server's own thread polls now and then when no scheduler thread does; a scheduler
  // thread that meets it there must not go to sleep on its condition variable instead,
  // or nothing would poll until other work came.
  runtime rt({.threads = 1});
  fake_poller poller(rt);
  poller.busy_left = 3;
  ASSERT_TRUE(rt.set_idle_poller(&poller));
  ASSERT_TRUE(testing::wait_until([&] { return poller.blocking.load() > 0 && poller.inside.load(); }));
  EXPECT_EQ(poller.busy_left.load(), 0);
  EXPECT_TRUE(rt.set_idle_poller(nullptr));
}

TEST(IdlePoller, ABusySchedulerThreadPollsBetweenRuns) {
  // Its only thread never idles (a process keeps sending itself messages), yet the poller
  // is polled: a flood is read and replies go out without waiting for an idle thread.
  runtime rt({.threads = 1});
  fake_poller poller(rt);
  std::atomic<bool> stop{false};
  std::atomic<long> loops{0};
  pid p = rt.spawn<scripted>([&](scripted& self, message&) {
    ++loops;
    if (!stop.load()) self.send(self.self(), 1);
  });
  rt.send(p, 1);
  ASSERT_TRUE(testing::wait_until([&] { return loops.load() > 1000; }));
  ASSERT_TRUE(rt.set_idle_poller(&poller));
  const long loops_at_start = loops.load();
  EXPECT_TRUE(testing::wait_until([&] { return poller.nonblocking.load() >= 3; }));  // not ASSERT: removed below
  EXPECT_EQ(poller.blocking.load(), 0);  // it never idled
  EXPECT_GT(loops.load(), loops_at_start);
  stop = true;
  EXPECT_TRUE(rt.set_idle_poller(nullptr));
}

TEST(IdlePoller, ManualModeHasNone) {
  runtime rt({.mode = scheduling::manual});
  fake_poller poller(rt);
  EXPECT_FALSE(rt.set_idle_poller(&poller));
}

}  // namespace
}  // namespace canopy::test
