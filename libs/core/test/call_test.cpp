// call / reply: SEMANTICS.md lines 29-31, and the "no scheduler thread held hostage" rule.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>
#include <stdexcept>

#include "canopy/testing/log_capture.hpp"
#include "canopy/testing/virtual_clock.hpp"
#include "test_support.hpp"

namespace canopy::test {
namespace {

using namespace std::chrono_literals;

struct get {};
struct ignore_me {};
struct defer {};
struct answer_later {};
struct die {};

// Answers `get` with 42, never answers `ignore_me`, keeps `defer` calls until answer_later,
// exits with reason "died" on `die` (a call still pending then gets that reason).
class server final : public process {
 protected:
  void receive(message& m) override {
    if (m.get<get>()) reply(m.reply_to(), 42);
    if (m.get<defer>()) held_.push_back(m.reply_to());
    if (m.get<answer_later>()) {
      for (auto& to : held_) reply(to, 7);
      held_.clear();
    }
    if (m.get<die>()) exit(exit_reason::other("died"));
  }

 private:
  std::vector<reply_address> held_;
};

// Calls `target` with T once started, records the outcome, then keeps recording messages.
template <class Req>
async call_and_record(scripted& self, pid target, std::shared_ptr<recorder> rec, duration timeout) {
  auto r = co_await self.call<int>(target, Req{}, timeout);
  rec->push(r ? "ok " + std::to_string(*r) : "error " + r.error().to_string());
}

template <class Req>
pid spawn_caller(runtime& rt, pid target, std::shared_ptr<recorder> rec, duration timeout = default_call_timeout) {
  return rt.spawn<scripted>(record_into(rec), [target, rec, timeout](scripted& self) {
    call_and_record<Req>(self, target, rec, timeout);
  });
}

// Deterministic: one thread (the test's), virtual time.
class CallManual : public ::testing::Test {
 protected:
  std::shared_ptr<testing::virtual_clock> clk = std::make_shared<testing::virtual_clock>();
  runtime rt{{.mode = scheduling::manual, .clock = clk, .shutdown_timeout = 100ms}};
  std::shared_ptr<recorder> rec = std::make_shared<recorder>();
};

TEST_F(CallManual, Line29_TimesOutAfter5000msByDefaultAndTheServerRunsOn) {
  pid s = rt.spawn<server>();
  spawn_caller<ignore_me>(rt, s, rec);
  rt.run_until_idle();
  clk->advance(4999ms);
  rt.run_until_idle();
  EXPECT_EQ(rec->size(), 0u);
  clk->advance(1ms);
  rt.run_until_idle();
  ASSERT_EQ(rec->lines(), std::vector<std::string>{"error timeout"});
  EXPECT_TRUE(rt.is_alive(s));
}

TEST_F(CallManual, Line30_CallToADeadServerAnswersNoprocAtOnce) {
  pid s = rt.spawn<server>();
  rt.exit(s, exit_reason::kill());
  rt.run_until_idle();
  ASSERT_FALSE(rt.is_alive(s));
  spawn_caller<get>(rt, s, rec);
  rt.run_until_idle();  // no clock advance: the answer cannot be a timeout
  EXPECT_EQ(rec->lines(), std::vector<std::string>{"error noproc (" + s.to_string() + ")"});
}

TEST_F(CallManual, Line30_ServerDyingDuringTheCallGivesItsExitReason) {
  pid s = rt.spawn<server>();
  spawn_caller<defer>(rt, s, rec);
  rt.run_until_idle();
  rt.send(s, die{});
  rt.run_until_idle();
  EXPECT_EQ(rec->lines(), std::vector<std::string>{"error exited: died"});
}

TEST_F(CallManual, Line30_CallQueuedAtAServerThatExitsGetsItsExitReason) {
  pid s = rt.spawn<server>();
  rt.send(s, die{});  // queued before the call: the server exits with the call unread
  spawn_caller<get>(rt, s, rec);
  rt.run_until_idle();
  ASSERT_EQ(rec->size(), 1u);
  EXPECT_TRUE(rec->lines()[0] == "error exited: died" ||
              rec->lines()[0] == "error noproc (" + s.to_string() + ")")
      << rec->lines()[0];
}

TEST_F(CallManual, Line30_CallingYourselfIsRefused) {
  rt.spawn<scripted>(record_into(rec), [rec = rec](scripted& self) {
    [](scripted& me, std::shared_ptr<recorder> r) -> async {
      auto res = co_await me.call<int>(me.self(), get{});
      r->push(res ? "ok" : "error " + std::string(to_string(res.code())));
    }(self, rec);
  });
  rt.run_until_idle();
  EXPECT_EQ(rec->lines(), std::vector<std::string>{"error calling_self"});
}

TEST_F(CallManual, Line31_LateReplyIsDroppedNotDelivered) {
  pid s = rt.spawn<server>();
  pid caller = spawn_caller<defer>(rt, s, rec, 100ms);
  rt.run_until_idle();
  clk->advance(100ms);
  rt.run_until_idle();
  ASSERT_EQ(rec->lines(), std::vector<std::string>{"error timeout"});
  rt.send(s, answer_later{});  // the reply to the abandoned call
  rt.run_until_idle();
  rt.send(caller, 1);  // a marker: anything recorded before it would be the stray reply
  rt.run_until_idle();
  EXPECT_EQ(rec->lines(), (std::vector<std::string>{"error timeout", "int 1"}));
}

TEST_F(CallManual, ParkedCallerKeepsOtherMessagesQueuedInOrder) {
  pid s = rt.spawn<server>();
  pid caller = spawn_caller<defer>(rt, s, rec);
  rt.run_until_idle();
  rt.send(caller, 1);
  rt.send(caller, 2);
  rt.run_until_idle();
  EXPECT_EQ(rec->size(), 0u);  // parked: a selective receive on the reply
  rt.send(s, answer_later{});
  rt.run_until_idle();
  EXPECT_EQ(rec->lines(), (std::vector<std::string>{"ok 7", "int 1", "int 2"}));
}

TEST_F(CallManual, DeferredReplyFromAnotherProcessReachesTheCaller) {
  pid s = rt.spawn<server>();
  // A helper that answers on the server's behalf with the reply address it was given.
  pid helper = rt.spawn<scripted>([](scripted& self, message& m) {
    if (auto* to = m.get<reply_address>()) self.reply(*to, 99);
  });
  pid forwarder = rt.spawn<scripted>([helper](scripted& self, message& m) {
    if (m.get<get>()) self.send(helper, m.reply_to());
  });
  spawn_caller<get>(rt, forwarder, rec);
  rt.run_until_idle();
  EXPECT_EQ(rec->lines(), std::vector<std::string>{"ok 99"});
  EXPECT_TRUE(rt.is_alive(s));
}

TEST_F(CallManual, ReplyOfTheWrongTypeIsBadReply) {
  pid s = rt.spawn<scripted>([](scripted& self, message& m) { self.reply(m.reply_to(), std::string("x")); });
  spawn_caller<get>(rt, s, rec);
  rt.run_until_idle();
  ASSERT_EQ(rec->size(), 1u);
  EXPECT_EQ(rec->lines()[0].rfind("error bad_reply", 0), 0u) << rec->lines()[0];
}

TEST_F(CallManual, TwoProcessesCallingEachOtherDeadlockOnlyUntilTheTimeout) {
  struct ping {};
  // On `ping` each calls the other: both park, neither can answer.
  auto make = [&](std::shared_ptr<pid> other) {
    return rt.spawn<scripted>([other, rec = rec](scripted& self, message& m) {
      if (m.get<ping>() && !m.is_call()) {
        [](scripted& me, pid to, std::shared_ptr<recorder> r) -> async {
          auto res = co_await me.call<int>(to, ping{}, 1000ms);
          r->push(res ? "ok" : std::string(to_string(res.code())));
        }(self, *other, rec);
      }
    });
  };
  auto a_of_b = std::make_shared<pid>();
  auto b_of_a = std::make_shared<pid>();
  pid a = make(b_of_a);
  pid b = make(a_of_b);
  *b_of_a = b;
  *a_of_b = a;
  rt.send(a, ping{});
  rt.send(b, ping{});
  rt.run_until_idle();
  EXPECT_EQ(rec->size(), 0u);
  clk->advance(1000ms);
  rt.run_until_idle();
  EXPECT_EQ(rec->lines(), (std::vector<std::string>{"timeout", "timeout"}));
  EXPECT_TRUE(rt.is_alive(a));
  EXPECT_TRUE(rt.is_alive(b));
}

// Real threads from here on.

TEST(CallThreads, ThreadCallerGetsTheReply) {
  runtime rt({.threads = 2});
  pid s = rt.spawn<server>();
  auto r = rt.call<int>(s, get{});
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 42);
}

TEST(CallThreads, Line30_ThreadCallerSeesNoprocAndExitReasons) {
  runtime rt({.threads = 2});
  pid s = rt.spawn<server>();
  auto w = rt.watch(s);
  std::thread killer([&] { rt.send(s, die{}); });
  auto r = rt.call<int>(s, defer{}, 20s);  // queued before or after `die`: never a timeout
  killer.join();
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.code() == errc::exited || r.code() == errc::noproc) << r.error().to_string();
  ASSERT_TRUE(w.wait(20s));
  auto again = rt.call<int>(s, get{});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.code(), errc::noproc);
}

// Hands every call's reply_address to a thread outside the runtime, as an I/O thread
// answering for a gateway process would.
class hand_off final : public process {
 public:
  explicit hand_off(std::shared_ptr<std::promise<reply_address>> out) : out_(std::move(out)) {}

 protected:
  void receive(message& m) override {
    if (m.is_call()) out_->set_value(m.reply_to());
  }

 private:
  std::shared_ptr<std::promise<reply_address>> out_;
};

TEST(CallThreads, AThreadOutsideTheRuntimeAnswersAParkedProcessesCall) {
  runtime rt({.threads = 2});
  auto handed = std::make_shared<std::promise<reply_address>>();
  auto address = handed->get_future();
  pid s = rt.spawn<hand_off>(handed);
  auto rec = std::make_shared<recorder>();
  pid caller = spawn_caller<get>(rt, s, rec, 20s);
  std::thread io([&] { rt.reply(address.get(), 99); });
  io.join();
  ASSERT_TRUE(rec->wait_for(1));
  EXPECT_EQ(rec->lines(), std::vector<std::string>{"ok 99"});
  EXPECT_TRUE(rt.is_alive(caller));
  EXPECT_TRUE(rt.is_alive(s));
}

TEST(CallThreads, AReplyFromOutsideToAGoneCallerIsDropped) {
  runtime rt({.threads = 2});
  auto handed = std::make_shared<std::promise<reply_address>>();
  auto address = handed->get_future();
  pid s = rt.spawn<hand_off>(handed);
  auto r = rt.call<int>(s, get{}, 10ms);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), errc::timeout);
  rt.reply(address.get(), 5);  // the caller gave up: dropped, nothing breaks
  rt.reply(reply_address(), 5);  // an empty address: a no-op
  EXPECT_TRUE(rt.is_alive(s));
}

TEST(CallThreads, ThreadCallTimesOut) {
  runtime rt({.threads = 2});
  pid s = rt.spawn<server>();
  auto r = rt.call<int>(s, ignore_me{}, 20ms);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), errc::timeout);
}

TEST(CallThreads, BlockingCallInsideAProcessIsRefusedAsACrash) {
  testing::log_capture logs;
  runtime rt({.threads = 2, .logger = logs.logger()});
  pid s = rt.spawn<server>();
  pid bad = rt.spawn<scripted>([s](scripted& self, message&) { (void)self.system().call<int>(s, get{}); });
  auto w = rt.watch(bad);
  rt.send(bad, 1);
  auto reason = w.wait(20s);
  ASSERT_TRUE(reason);
  EXPECT_EQ(reason->name(), "std::logic_error");
  EXPECT_EQ(logs.count("crashed"), 1u);
}

// A chain of 1,000 processes, each parked in a call to the next, on 2 scheduler threads:
// with blocking calls this would need 1,000 threads; parked processes need none.
TEST(CallThreads, AThousandParkedCallersOnTwoThreadsAllComplete) {
  runtime rt({.threads = 2});
  struct relay {};
  constexpr int n = 1000;
  std::vector<pid> chain(n);
  chain[n - 1] = rt.spawn<scripted>([](scripted& self, message& m) {
    if (m.get<relay>()) self.reply(m.reply_to(), 1);
  });
  for (int i = n - 2; i >= 0; --i) {
    pid next = chain[i + 1];
    chain[i] = rt.spawn<scripted>([next](scripted& self, message& m) {
      if (!m.get<relay>()) return;
      [](scripted& me, pid to, reply_address from) -> async {
        auto r = co_await me.call<int>(to, relay{}, 60s);
        me.reply(from, r ? *r + 1 : -1);
      }(self, next, m.reply_to());
    });
  }
  auto r = rt.call<int>(chain[0], relay{}, 60s);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(*r, n);
}

// 1,000 processes each calling another (a server) at the same time.
TEST(CallThreads, AThousandConcurrentCallersOnTwoThreadsAllComplete) {
  runtime rt({.threads = 2});
  pid s = rt.spawn<server>();
  auto done = std::make_shared<std::atomic<int>>(0);
  for (int i = 0; i < 1000; ++i) {
    rt.spawn<scripted>(scripted::on_message_fn{}, [s, done](scripted& self) {
      [](scripted& me, pid to, std::shared_ptr<std::atomic<int>> d) -> async {
        auto r = co_await me.call<int>(to, get{}, 60s);
        if (r && *r == 42) d->fetch_add(1);
      }(self, s, done);
    });
  }
  EXPECT_TRUE(testing::wait_until([&] { return done->load() == 1000; }));
}

TEST(CallThreads, ExceptionInsideAnAsyncCoroutineCrashesTheProcess) {
  testing::log_capture logs;
  runtime rt({.threads = 2, .logger = logs.logger()});
  pid s = rt.spawn<server>();
  pid p = rt.spawn<scripted>([s](scripted& self, message& m) {
    if (!m.get<int>()) return;
    [](scripted& me, pid to) -> async {
      (void)co_await me.call<int>(to, get{});
      throw std::runtime_error("after the call");
    }(self, s);
  });
  auto w = rt.watch(p);  // watching before the crash is started
  rt.send(p, 1);
  auto reason = w.wait(20s);
  ASSERT_TRUE(reason);
  EXPECT_EQ(reason->to_string(), "{error,std::runtime_error,after the call}");
  EXPECT_EQ(logs.count("crashed"), 1u);
}

TEST(CallThreads, KillingAParkedProcessDestroysItsCoroutine) {
  runtime rt({.threads = 2});
  pid s = rt.spawn<server>();
  auto guard_alive = std::make_shared<int>(0);
  std::weak_ptr<int> watch_guard = guard_alive;
  auto parked = std::make_shared<recorder>();
  pid p = rt.spawn<scripted>(scripted::on_message_fn{}, [s, g = std::move(guard_alive), parked](scripted& self) mutable {
    [](scripted& me, pid to, std::shared_ptr<int> keep, std::shared_ptr<recorder> r) -> async {
      r->push("parked");
      (void)co_await me.call<int>(to, ignore_me{}, infinity);
      (void)keep;
    }(self, s, std::move(g), parked);
  });
  ASSERT_TRUE(parked->wait_for(1));
  auto w = rt.watch(p);
  rt.exit(p, exit_reason::kill());
  EXPECT_EQ(w.wait(20s)->what(), exit_reason::kind::killed);
  EXPECT_TRUE(watch_guard.expired());  // the frame (holding `keep`) is gone
}

}  // namespace
}  // namespace canopy::test

namespace canopy::test {
namespace {

using namespace std::chrono_literals;

// await_down: parking on a monitor, the primitive a supervisor's shutdown is built on.
class AwaitDown : public ::testing::Test {
 protected:
  std::shared_ptr<testing::virtual_clock> clk = std::make_shared<testing::virtual_clock>();
  runtime rt{{.mode = scheduling::manual, .clock = clk, .shutdown_timeout = 100ms}};
  std::shared_ptr<recorder> rec = std::make_shared<recorder>();
};

TEST_F(AwaitDown, ParksUntilTheMonitoredProcessExits) {
  pid victim = rt.spawn<scripted>(scripted::on_message_fn{});
  rt.spawn<scripted>(record_into(rec), [victim, rec = rec](scripted& self) {
    [](scripted& me, pid v, std::shared_ptr<recorder> r) -> async {
      auto ref = me.monitor(v);
      me.exit(v, exit_reason::other("told_to"));
      auto reason = co_await me.await_down(ref, 1s);
      r->push(reason ? "down " + reason->to_string() : "timeout");
    }(self, victim, rec);
  });
  rt.run_until_idle();
  EXPECT_EQ(rec->lines(), std::vector<std::string>{"down told_to"});  // not also via receive
}

TEST_F(AwaitDown, TimesOutAndTheMonitorStaysActive) {
  pid alive = rt.spawn<scripted>(scripted::on_message_fn{});
  rt.spawn<scripted>(record_into(rec), [alive, rec = rec](scripted& self) {
    [](scripted& me, pid v, std::shared_ptr<recorder> r) -> async {
      auto ref = me.monitor(v);
      auto reason = co_await me.await_down(ref, 50ms);
      r->push(reason ? "down" : "timeout");
    }(self, alive, rec);
  });
  rt.run_until_idle();
  clk->advance(50ms);
  rt.run_until_idle();
  rt.exit(alive, exit_reason::kill());
  rt.run_until_idle();
  EXPECT_EQ(rec->lines(), (std::vector<std::string>{"timeout", "down killed"}));
}

TEST_F(AwaitDown, FindsADownThatArrivedWhileParkedOnSomethingElse) {
  struct slow {};
  pid victim = rt.spawn<scripted>(scripted::on_message_fn{});
  pid server = rt.spawn<scripted>([victim](scripted& self, message& m) {
    if (m.get<slow>()) {
      self.exit(victim, exit_reason::kill());  // the caller's down arrives before our reply
      self.send(self.self(), 0);               // reply on the next turn
      self.send(self.self(), m.reply_to());
    }
    if (auto* to = m.get<reply_address>()) self.reply(*to, 1);
  });
  rt.spawn<scripted>(record_into(rec), [victim, server, rec = rec](scripted& self) {
    [](scripted& me, pid v, pid s, std::shared_ptr<recorder> r) -> async {
      auto ref = me.monitor(v);
      (void)co_await me.call<int>(s, slow{});  // the down is stashed meanwhile
      auto reason = co_await me.await_down(ref, 1s);
      r->push(reason ? "down " + reason->to_string() : "timeout");
    }(self, victim, server, rec);
  });
  rt.run_until_idle();
  EXPECT_EQ(rec->lines(), std::vector<std::string>{"down killed"});
}

}  // namespace
}  // namespace canopy::test

namespace canopy::test {
namespace {

using namespace std::chrono_literals;

struct never_answered {};

task<int> inner_step(scripted& me, pid server, std::shared_ptr<int> inner_guard, std::shared_ptr<recorder> r) {
  r->push("parked in the inner task");
  auto res = co_await me.call<int>(server, never_answered{}, infinity);
  (void)inner_guard;
  co_return res.value_or(0);
}

async outer(scripted& me, pid server, std::shared_ptr<int> outer_guard, std::shared_ptr<int> inner_guard,
            std::shared_ptr<recorder> r) {
  (void)co_await inner_step(me, server, std::move(inner_guard), r);
  (void)outer_guard;
}

TEST(Task, KillingAProcessParkedInANestedTaskDestroysTheWholeChain) {
  runtime rt({.mode = scheduling::manual});
  auto rec = std::make_shared<recorder>();
  pid server = rt.spawn<scripted>(scripted::on_message_fn{});
  auto outer_guard = std::make_shared<int>(1);
  auto inner_guard = std::make_shared<int>(2);
  std::weak_ptr<int> outer_alive = outer_guard;
  std::weak_ptr<int> inner_alive = inner_guard;
  pid p = rt.spawn<scripted>(scripted::on_message_fn{}, [&, server](scripted& self) {
    outer(self, server, std::move(outer_guard), std::move(inner_guard), rec);
  });
  rt.run_until_idle();
  ASSERT_EQ(rec->lines(), std::vector<std::string>{"parked in the inner task"});
  EXPECT_FALSE(outer_alive.expired());
  rt.exit(p, exit_reason::kill());
  rt.run_until_idle();
  EXPECT_TRUE(inner_alive.expired());
  EXPECT_TRUE(outer_alive.expired());
}

TEST(Task, ResultsAndExceptionsPassToTheAwaiter) {
  runtime rt({.mode = scheduling::manual});
  auto rec = std::make_shared<recorder>();
  pid server = rt.spawn<scripted>([](scripted& self, message& m) { self.reply(m.reply_to(), 20); });
  struct helpers {
    static task<int> twice(scripted& me, pid s) {
      auto r = co_await me.call<int>(s, 0);
      co_return 2 * r.value_or(0);
    }
    static task<> fails() {
      throw std::runtime_error("inner failure");
      co_return;
    }
    static async run(scripted& me, pid s, std::shared_ptr<recorder> r) {
      r->push("got " + std::to_string(co_await twice(me, s)));
      try {
        co_await fails();
      } catch (const std::runtime_error& e) {
        r->push(std::string("caught ") + e.what());
      }
    }
  };
  rt.spawn<scripted>(scripted::on_message_fn{}, [&, server](scripted& self) { helpers::run(self, server, rec); });
  rt.run_until_idle();
  EXPECT_EQ(rec->lines(), (std::vector<std::string>{"got 40", "caught inner failure"}));
}

}  // namespace
}  // namespace canopy::test
