// The runtime: spawning, ordering, fairness, names, crash reports, stalls and shutdown.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>

#include "canopy/testing/log_capture.hpp"
#include "canopy/testing/virtual_clock.hpp"
#include "test_support.hpp"

namespace canopy::test {
namespace {

using namespace std::chrono_literals;

struct tagged {
  int sender;
  int seq;
};

TEST(Runtime, MessagesFromOneSenderArriveInTheOrderSent) {
  runtime rt({.threads = 2});
  constexpr int senders = 4;
  constexpr int per_sender = 20000;
  auto bad = std::make_shared<std::atomic<int>>(0);
  auto seen = std::make_shared<std::atomic<int>>(0);
  auto last = std::make_shared<std::vector<int>>(senders, -1);
  pid sink = rt.spawn<scripted>([bad, seen, last](scripted&, message& m) {
    if (auto* t = m.get<tagged>()) {
      if (t->seq != (*last)[t->sender] + 1) bad->fetch_add(1);
      (*last)[t->sender] = t->seq;
      seen->fetch_add(1);
    }
  });
  std::vector<std::thread> threads;
  for (int s = 0; s < senders; ++s)
    threads.emplace_back([&, s] {
      for (int i = 0; i < per_sender; ++i) rt.send(sink, tagged{s, i});
    });
  for (auto& t : threads) t.join();
  ASSERT_TRUE(testing::wait_until([&] { return seen->load() == senders * per_sender; }));
  EXPECT_EQ(bad->load(), 0);
}

TEST(Runtime, InitRunsInTheProcessBeforeAnyMessage) {
  runtime rt({.mode = scheduling::manual});
  auto rec = std::make_shared<recorder>();
  auto record = record_into(rec);
  pid p = rt.spawn<scripted>(record, [rec](scripted&) { rec->push("init"); });
  rt.send(p, 1);  // queued before the process ever ran
  rt.run_until_idle();
  EXPECT_EQ(rec->lines(), (std::vector<std::string>{"init", "int 1"}));
}

TEST(Runtime, SendingToADeadPidIsASilentNoOp) {
  runtime rt({.threads = 1});
  pid p = rt.spawn<scripted>(scripted::on_message_fn{});
  auto w = rt.watch(p);
  rt.exit(p, exit_reason::kill());
  ASSERT_TRUE(w.wait(20s));
  rt.send(p, 1);
  rt.send(pid(), 2);  // the null pid too
  EXPECT_FALSE(rt.is_alive(p));
  EXPECT_EQ(rt.process_count(), 0u);
}

TEST(Runtime, ABusyProcessYieldsSoOthersRun) {
  // One scheduler thread; a process that keeps mailing itself forever must not starve
  // another process: it yields after each batch.
  runtime rt({.threads = 1, .batch = 16, .shutdown_timeout = 100ms});
  struct spin {};
  pid hog = rt.spawn<scripted>([](scripted& self, message& m) {
    if (m.get<spin>()) self.send(self.self(), spin{});
  });
  rt.send(hog, spin{});
  rt.send(hog, spin{});
  pid other = rt.spawn<scripted>([](scripted& self, message& m) {
    if (m.is_call()) self.reply(m.reply_to(), 1);
  });
  auto r = rt.call<int>(other, 0, 20s);
  EXPECT_TRUE(r);
  rt.exit(hog, exit_reason::kill());
}

TEST(Runtime, ACrashIsLoggedOnceWithProcessLastMessageAndReason) {
  testing::log_capture logs;
  runtime rt({.threads = 2, .logger = logs.logger()});
  struct poison {};
  pid p = rt.spawn<scripted>([](scripted&, message& m) {
    if (m.get<poison>()) throw std::invalid_argument("bad input");
  });
  ASSERT_TRUE(rt.register_name("victim", p));
  auto w = rt.watch(p);
  rt.send(p, poison{});
  auto reason = w.wait(20s);
  ASSERT_TRUE(reason);
  EXPECT_EQ(reason->to_string(), "{error,std::invalid_argument,bad input}");
  ASSERT_EQ(logs.count("crashed"), 1u);
  const auto line = logs.lines().at(0);
  EXPECT_NE(line.find(p.to_string() + " (victim)"), std::string::npos) << line;
  EXPECT_NE(line.find("poison"), std::string::npos) << line;
  EXPECT_NE(line.find("{error,std::invalid_argument,bad input}"), std::string::npos) << line;
}

TEST(Runtime, CleanExitsAndKillsAreNotCrashReports) {
  testing::log_capture logs;
  runtime rt({.mode = scheduling::manual, .logger = logs.logger()});
  pid a = rt.spawn<scripted>(scripted::on_message_fn{}, [](scripted& s) { s.exit(exit_reason::normal()); });
  pid b = rt.spawn<scripted>(scripted::on_message_fn{}, [](scripted& s) { s.exit(exit_reason::shutdown("done")); });
  pid c = rt.spawn<scripted>(scripted::on_message_fn{});
  rt.exit(c, exit_reason::kill());
  pid d = rt.spawn<scripted>(scripted::on_message_fn{}, [](scripted& s) { s.exit(exit_reason::other("odd")); });
  rt.run_until_idle();
  EXPECT_EQ(rt.process_count(), 0u);
  EXPECT_EQ(logs.count("crashed"), 1u);  // only d's abnormal exit
  EXPECT_EQ(logs.count(d.to_string()), 1u);
  (void)a, (void)b;
}

TEST(Runtime, DestructorOfTheProcessRunsOnEveryKindOfExit) {
  runtime rt({.mode = scheduling::manual});
  auto destroyed = std::make_shared<std::atomic<int>>(0);
  struct counted : scripted {
    counted(std::shared_ptr<std::atomic<int>> c, on_init_fn init)
        : scripted(on_message_fn{}, std::move(init)), c_(std::move(c)) {}
    ~counted() override { c_->fetch_add(1); }
    std::shared_ptr<std::atomic<int>> c_;
  };
  rt.spawn<counted>(destroyed, [](scripted& s) { s.exit(exit_reason::normal()); });
  rt.spawn<counted>(destroyed, [](scripted&) { throw std::runtime_error("x"); });
  pid killed = rt.spawn<counted>(destroyed, scripted::on_init_fn{});
  rt.run_until_idle();
  rt.exit(killed, exit_reason::kill());
  rt.run_until_idle();
  EXPECT_EQ(destroyed->load(), 3);
}

TEST(Runtime, LocalNamesRegisterLookUpAndVanishWithTheProcess) {
  runtime rt({.threads = 2});
  pid p = rt.spawn<scripted>(scripted::on_message_fn{});
  pid q = rt.spawn<scripted>(scripted::on_message_fn{});
  ASSERT_TRUE(rt.register_name("cache", p));
  EXPECT_EQ(rt.whereis("cache"), p);
  auto taken = rt.register_name("cache", q);
  ASSERT_FALSE(taken);
  EXPECT_EQ(taken.code(), errc::already_registered);
  EXPECT_EQ(taken.error().context(), p.to_string());
  EXPECT_EQ(rt.register_name("other", p).code(), errc::invalid_argument);  // one name each
  EXPECT_EQ(rt.register_name("", q).code(), errc::invalid_argument);

  auto w = rt.watch(p);
  rt.exit(p, exit_reason::kill());
  ASSERT_TRUE(w.wait(20s));
  EXPECT_FALSE(rt.whereis("cache"));  // gone with its holder
  EXPECT_TRUE(rt.register_name("cache", q));  // and free to take
  EXPECT_TRUE(rt.unregister_name("cache"));
  EXPECT_FALSE(rt.unregister_name("cache"));
  EXPECT_EQ(rt.send("cache", 1).code(), errc::not_registered);
}

TEST(Runtime, AProcessRegistersItself) {
  runtime rt({.mode = scheduling::manual});
  auto rec = std::make_shared<recorder>();
  pid p = rt.spawn<scripted>(record_into(rec), [](scripted& s) { (void)s.register_name("me"); });
  rt.run_until_idle();
  EXPECT_EQ(rt.whereis("me"), p);
  ASSERT_TRUE(rt.send("me", 3));
  rt.run_until_idle();
  EXPECT_EQ(rec->lines(), std::vector<std::string>{"int 3"});
}

TEST(Runtime, AStalledHandlerIsReported) {
  testing::log_capture logs;
  runtime rt({.threads = 1, .logger = logs.logger(), .stall_warning = 20ms});
  pid p = rt.spawn<scripted>([](scripted&, message&) {
    const auto until = std::chrono::steady_clock::now() + 60ms;
    while (std::chrono::steady_clock::now() < until) {  // a handler hogging its thread
    }
  });
  rt.send(p, 1);
  EXPECT_TRUE(testing::wait_until([&] { return logs.count("held its scheduler thread") == 1; }));
}

TEST(Runtime, ProcessesListsTheLiveOnes) {
  runtime rt({.mode = scheduling::manual});
  pid a = rt.spawn<scripted>(scripted::on_message_fn{});
  pid b = rt.spawn<scripted>(scripted::on_message_fn{});
  rt.run_until_idle();
  EXPECT_EQ(rt.processes(), (std::vector<pid>{a, b}));
  rt.exit(a, exit_reason::kill());
  rt.run_until_idle();
  EXPECT_EQ(rt.processes(), std::vector<pid>{b});
  EXPECT_EQ(rt.process_count(), 1u);
}

TEST(RuntimeShutdown, StopsEveryProcessAndJoinsQuickly) {
  auto destroyed = std::make_shared<std::atomic<int>>(0);
  struct counted : process {
    explicit counted(std::shared_ptr<std::atomic<int>> c) : c_(std::move(c)) {}
    ~counted() override { c_->fetch_add(1); }
    void receive(message&) override {}
    std::shared_ptr<std::atomic<int>> c_;
  };
  const auto start = std::chrono::steady_clock::now();
  {
    runtime rt({.threads = 2});
    for (int i = 0; i < 10000; ++i) rt.spawn<counted>(destroyed);
  }
  EXPECT_EQ(destroyed->load(), 10000);
  // Generous for a loaded machine; shutdown must not wait out its 5 s timeout.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
}

TEST(RuntimeShutdown, TrappingProcessesGetShutdownAsAMessage) {
  auto rec = std::make_shared<recorder>();
  {
    runtime rt({.threads = 2});
    auto ready = std::make_shared<recorder>();
    rt.spawn<scripted>(
        [rec](scripted& self, message& m) {
          if (auto* e = m.get<exit_message>()) {
            rec->push((e->from ? "from a process: " : "from the runtime: ") + e->reason.to_string());
            self.exit(e->reason);
          }
        },
        [ready](scripted& self) {
          self.process_flag(trap_exit::on);
          ready->push("trapping");
        });
    ASSERT_TRUE(ready->wait_for(1));
  }
  EXPECT_EQ(rec->lines(), std::vector<std::string>{"from the runtime: shutdown"});
}

TEST(RuntimeShutdown, ProcessesIgnoringShutdownAreKilledAfterTheTimeout) {
  testing::log_capture logs;
  auto destroyed = std::make_shared<std::atomic<int>>(0);
  struct stubborn : scripted {
    explicit stubborn(std::shared_ptr<std::atomic<int>> c)
        : scripted(on_message_fn{}, [](scripted& s) { s.process_flag(trap_exit::on); }), c_(std::move(c)) {}
    ~stubborn() override { c_->fetch_add(1); }
    std::shared_ptr<std::atomic<int>> c_;
  };
  {
    runtime rt({.threads = 2, .logger = logs.logger(), .shutdown_timeout = 50ms});
    rt.spawn<stubborn>(destroyed);
  }
  EXPECT_EQ(destroyed->load(), 1);
  EXPECT_EQ(logs.count("killing them"), 1u);
}

TEST(RuntimeShutdown, SpawnAfterShutdownGivesTheNullPid) {
  runtime rt({.threads = 1});
  rt.shutdown();
  EXPECT_FALSE(rt.spawn<scripted>(scripted::on_message_fn{}));
  rt.shutdown();  // idempotent
}

TEST(RuntimeIdle, AnIdleRuntimeUsesNoCpu) {
  // Behaviour, not speed: 1,000 idle processes, and the scheduler threads must be parked
  // (blocked in the kernel) rather than spinning. Checked via the process's CPU time over
  // a wall interval; a spinning scheduler would burn ~the whole interval.
  runtime rt({.threads = 2});
  for (int i = 0; i < 1000; ++i) rt.spawn<scripted>(scripted::on_message_fn{});
  ASSERT_TRUE(testing::wait_until([&] { return rt.process_count() == 1000; }));
  auto cpu = [] {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
  };
  // Let the spin phase end, then measure a quiet half second.
  std::this_thread::sleep_for(50ms);  // not a synchronisation: the measured interval itself
  const auto cpu0 = cpu();
  const auto wall0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(500ms);
  const auto used = cpu() - cpu0;
  const auto wall = std::chrono::steady_clock::now() - wall0;
  EXPECT_LT(used * 10, wall) << "idle scheduler used " << std::chrono::duration_cast<std::chrono::milliseconds>(used).count() << " ms CPU";
}

}  // namespace
}  // namespace canopy::test
