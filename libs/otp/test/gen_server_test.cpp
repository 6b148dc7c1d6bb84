// gen_server: SEMANTICS.md lines 29-37.
#include "canopy/otp/gen_server.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "canopy/testing/log_capture.hpp"
#include "canopy/testing/virtual_clock.hpp"
#include "canopy/testing/wait.hpp"

namespace canopy {
namespace {

using namespace std::chrono_literals;

class journal {
 public:
  void add(std::string line) {
    std::lock_guard lk(mu_);
    lines_.push_back(std::move(line));
  }
  std::vector<std::string> lines() const {
    std::lock_guard lk(mu_);
    return lines_;
  }
  bool has(const std::string& line) const {
    auto all = lines();
    return std::find(all.begin(), all.end(), line) != all.end();
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

struct get {};
struct add {
  int n;
};
struct hold {};                 // handle_call answers noreply and keeps `from`
struct release {};              // cast: answers every held call with 7
struct crash {};                // any callback: throws
struct stop_please {
  exit_reason reason;
};
struct give_bad_result {};
struct reply_from_cast {};
struct then_continue {
  int value;
};
struct arm_idle {
  duration d;
};

// A server whose callbacks do what the test vocabulary asks, and note it in a journal.
class probe final : public gen_server {
 public:
  enum class init_mode { ok, ignore, stop, crash, bad, idle, cont };
  probe(std::shared_ptr<journal> j, init_mode mode = init_mode::ok, trap_exit trap = trap_exit::off)
      : j_(std::move(j)), mode_(mode), trap_(trap) {}

 protected:
  result init() override {
    process_flag(trap_);
    j_->add("init");
    switch (mode_) {
      case init_mode::ok: return ok();
      case init_mode::ignore: return ignore();
      case init_mode::stop: return stop(exit_reason::other("no_db"));
      case init_mode::crash: throw std::runtime_error("init blew up");
      case init_mode::bad: return {};
      case init_mode::idle: return ok().idle_timeout(1000ms);
      case init_mode::cont: return ok().and_continue(then_continue{1});
    }
    return ok();
  }
  result handle_call(message& m, const reply_address& from) override {
    if (m.get<get>()) return reply(n_);
    if (m.get<hold>()) {
      held_.push_back(from);
      j_->add("held");
      return noreply();
    }
    if (m.get<crash>()) throw std::runtime_error("call blew up");
    if (auto* s = m.get<stop_please>()) return stop(s->reason, std::string("bye"));
    if (m.get<give_bad_result>()) return {};
    if (auto* c = m.get<then_continue>()) return reply(n_).and_continue(*c);
    if (auto* a = m.get<arm_idle>()) return reply(n_).idle_timeout(a->d);
    return stop(exit_reason::other("unexpected_call"));
  }
  result handle_cast(message& m) override {
    if (auto* a = m.get<add>()) {
      n_ += a->n;
      j_->add("cast " + std::to_string(a->n));
    }
    if (m.get<release>()) {
      for (auto& from : held_) reply(from, 7);
      held_.clear();
    }
    if (m.get<crash>()) throw std::runtime_error("cast blew up");
    if (auto* s = m.get<stop_please>()) return stop(s->reason);
    if (m.get<reply_from_cast>()) return reply(1);
    return noreply();
  }
  result handle_info(message& m) override {
    if (m.get<timeout_message>()) j_->add("timeout");
    if (auto* i = m.get<int>()) j_->add("info " + std::to_string(*i));
    if (auto* e = m.get<exit_message>()) j_->add("exit " + e->reason.to_string());
    return noreply();
  }
  result handle_continue(message& m) override {
    if (auto* c = m.get<then_continue>()) j_->add("continue " + std::to_string(c->value));
    return noreply();
  }
  void terminate(const exit_reason& reason) override { j_->add("terminate " + reason.to_string()); }
  std::string format_status() const override { return "probe n=" + std::to_string(n_); }

 private:
  std::shared_ptr<journal> j_;
  init_mode mode_;
  trap_exit trap_;
  int n_ = 0;
  std::vector<reply_address> held_;
};

class GenServer : public ::testing::Test {
 protected:
  testing::log_capture logs;
  runtime rt{{.threads = 2, .logger = logs.logger(), .shutdown_timeout = 200ms}};
  std::shared_ptr<journal> j = std::make_shared<journal>();

  pid start_probe(probe::init_mode mode = probe::init_mode::ok, std::string name = {}) {
    auto p = gen_server::start<probe>(rt, {.name = std::move(name)}, j, mode);
    EXPECT_TRUE(p) << p.error().to_string();
    return p ? *p : pid();
  }
};

TEST_F(GenServer, CallAndCastReachTheirCallbacks) {
  pid s = start_probe();
  gen_server::cast(rt, s, add{2});
  gen_server::cast(rt, s, add{3});
  auto n = gen_server::call<int>(rt, s, get{});
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 5);
  rt.send(s, 9);  // neither call nor cast: handle_info
  ASSERT_TRUE(testing::wait_until([&] { return j->has("info 9"); }));
  EXPECT_EQ(*gen_server::state_summary(rt, s), "probe n=5");
}

TEST_F(GenServer, Line32_StartReturnsAfterInitWithThePid) {
  pid s = start_probe(probe::init_mode::ok, "probe");
  EXPECT_EQ(j->lines().at(0), "init");  // init ran before start returned
  EXPECT_EQ(rt.whereis("probe"), s);
}

TEST_F(GenServer, Line32_IgnoreStartsNothingAndLeavesNoName) {
  auto r = gen_server::start<probe>(rt, {.name = "p"}, j, probe::init_mode::ignore);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), errc::ignored);
  EXPECT_FALSE(rt.whereis("p"));
  EXPECT_FALSE(j->has("terminate normal"));
}

TEST_F(GenServer, Line32_StopInInitIsAnErrorWithoutTerminate) {
  auto r = gen_server::start<probe>(rt, {.name = "p"}, j, probe::init_mode::stop);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), errc::start_failed);
  EXPECT_EQ(r.error().reason().to_string(), "no_db");
  EXPECT_FALSE(rt.whereis("p"));
  for (auto& line : j->lines()) EXPECT_EQ(line.rfind("terminate", 0), std::string::npos) << line;
}

TEST_F(GenServer, Line32_CrashInInitIsAnError) {
  auto r = gen_server::start<probe>(rt, {}, j, probe::init_mode::crash);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), errc::start_failed);
  EXPECT_EQ(r.error().reason().to_string(), "{error,std::runtime_error,init blew up}");
  EXPECT_EQ(rt.process_count(), 0u);
}

TEST_F(GenServer, Line32_BadReturnFromInitIsAnError) {
  auto r = gen_server::start<probe>(rt, {}, j, probe::init_mode::bad);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason().name(), "bad_return_value");
}

TEST_F(GenServer, Line32_ATakenNameAnswersAlreadyStartedWithTheHolder) {
  pid first = start_probe(probe::init_mode::ok, "unique");
  auto second = gen_server::start<probe>(rt, {.name = "unique"}, j, probe::init_mode::ok);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.code(), errc::already_started);
  EXPECT_EQ(second.error().context(), first.to_string());
  EXPECT_EQ(j->lines().size(), 1u);  // the second init never ran
}

TEST_F(GenServer, Line30_CallToAnUnknownServerIsNoprocAtOnce) {
  pid s = start_probe();
  ASSERT_TRUE(gen_server::stop(rt, s));
  auto r = gen_server::call<int>(rt, s, get{}, 1h);  // an hour: only noproc can end it quickly
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), errc::noproc);
  EXPECT_EQ(gen_server::stop(rt, s).code(), errc::noproc);
}

TEST_F(GenServer, Line30_ServerDyingDuringTheCallGivesItsReason) {
  pid s = start_probe();
  std::thread stopper([&] {
    ASSERT_TRUE(testing::wait_until([&] { return j->has("held"); }));  // the call is inside
    gen_server::cast(rt, s, stop_please{exit_reason::other("maintenance")});
  });
  auto r = gen_server::call<int>(rt, s, hold{}, 1h);
  stopper.join();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), errc::exited);
  EXPECT_EQ(r.error().reason().to_string(), "maintenance");
}

TEST_F(GenServer, DeferredReplyWithNoreplyAndReplyLater) {
  pid s = start_probe();
  std::thread releaser([&] {
    ASSERT_TRUE(testing::wait_until([&] { return j->has("held"); }));
    gen_server::cast(rt, s, release{});
  });
  auto r = gen_server::call<int>(rt, s, hold{}, 1h);
  releaser.join();
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(*r, 7);
}

TEST_F(GenServer, Line35_BadReturnStopsTheServerAndThePendingCallerGetsTheReason) {
  pid s = start_probe();
  auto watch = rt.watch(s);
  auto r = gen_server::call<int>(rt, s, give_bad_result{}, 20s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), errc::exited);
  EXPECT_EQ(r.error().reason().name(), "bad_return_value");
  EXPECT_EQ(watch.wait(20s)->name(), "bad_return_value");
  EXPECT_TRUE(j->has("terminate {bad_return_value,a default-constructed result}"));  // line 36
}

TEST_F(GenServer, Line35_AReplyFromACastIsABadReturn) {
  pid s = start_probe();
  auto watch = rt.watch(s);
  gen_server::cast(rt, s, reply_from_cast{});
  EXPECT_EQ(watch.wait(20s)->to_string(), "{bad_return_value,reply outside handle_call}");
}

TEST_F(GenServer, Line36_TerminateRunsAfterAStopResultWithTheReplySent) {
  pid s = start_probe();
  auto watch = rt.watch(s);
  auto r = gen_server::call<std::string>(rt, s, stop_please{exit_reason::shutdown("done")});
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "bye");
  EXPECT_EQ(watch.wait(20s)->to_string(), "{shutdown,done}");
  EXPECT_TRUE(j->has("terminate {shutdown,done}"));
  EXPECT_EQ(logs.count("crashed"), 0u);  // line 37: clean reasons are not crash reports
}

TEST_F(GenServer, Line36_Line37_TerminateRunsAfterACrashAndOneReportIsLogged) {
  pid s = start_probe();
  auto watch = rt.watch(s);
  gen_server::cast(rt, s, crash{});
  EXPECT_EQ(watch.wait(20s)->to_string(), "{error,std::runtime_error,cast blew up}");
  EXPECT_TRUE(j->has("terminate {error,std::runtime_error,cast blew up}"));
  EXPECT_EQ(logs.count("crashed"), 1u);
  EXPECT_EQ(logs.count("last message: canopy::(anonymous namespace)::crash"), 1u);
}

TEST_F(GenServer, Line36_TerminateDoesNotRunAfterAKill) {
  pid s = start_probe();
  auto watch = rt.watch(s);
  rt.exit(s, exit_reason::kill());
  EXPECT_EQ(watch.wait(20s)->to_string(), "killed");
  for (auto& line : j->lines()) EXPECT_EQ(line.rfind("terminate", 0), std::string::npos) << line;
}

TEST_F(GenServer, StopRunsTerminateAndWaitsForTheExit) {
  pid s = start_probe(probe::init_mode::ok, "stoppable");
  ASSERT_TRUE(gen_server::stop(rt, s, exit_reason::shutdown()));
  EXPECT_TRUE(j->has("terminate shutdown"));  // already: stop returned after the exit
  EXPECT_FALSE(rt.is_alive(s));
  EXPECT_FALSE(rt.whereis("stoppable"));
}

// A parent process that start_links a trapping probe, then exits on demand.
class parent_proc final : public process {
 public:
  parent_proc(std::shared_ptr<journal> j, std::shared_ptr<pid> child) : j_(std::move(j)), child_(std::move(child)) {}

 protected:
  void on_start() override {
    auto c = gen_server::start_link<probe>({}, j_, probe::init_mode::ok, trap_exit::on);
    if (c) *child_ = *c;
    j_->add("linked");  // publishes *child_ to the test thread (the journal's mutex)
  }
  void receive(message& m) override {
    if (auto* s = m.get<stop_please>()) exit(s->reason);
  }

 private:
  std::shared_ptr<journal> j_;
  std::shared_ptr<pid> child_;
};

TEST_F(GenServer, Line36_ParentExitWhileTrappingRunsTerminate) {
  auto child = std::make_shared<pid>();
  pid parent = rt.spawn<parent_proc>(j, child);
  ASSERT_TRUE(testing::wait_until([&] { return j->has("linked"); }));
  auto watch = rt.watch(*child);
  rt.send(parent, stop_please{exit_reason::shutdown()});
  EXPECT_EQ(watch.wait(20s)->to_string(), "shutdown");
  EXPECT_TRUE(j->has("terminate shutdown"));
}

TEST(GenServerStartLink, IsRefusedOutsideAProcess) {
  runtime rt({.mode = scheduling::manual});
  auto j = std::make_shared<journal>();
  EXPECT_THROW((void)gen_server::start_link<probe>({}, j), std::logic_error);
}

// Deterministic: manual scheduling and a virtual clock.
class GenServerTimed : public ::testing::Test {
 protected:
  std::shared_ptr<testing::virtual_clock> clk = std::make_shared<testing::virtual_clock>();
  testing::log_capture logs;
  runtime rt{{.mode = scheduling::manual, .clock = clk, .logger = logs.logger()}};
  std::shared_ptr<journal> j = std::make_shared<journal>();
};

TEST_F(GenServerTimed, Line33_IdleTimeoutFiresWhenNothingArrives) {
  auto s = gen_server::start<probe>(rt, {}, j, probe::init_mode::idle);
  ASSERT_TRUE(s);
  rt.run_until_idle();
  clk->advance(999ms);
  rt.run_until_idle();
  EXPECT_FALSE(j->has("timeout"));
  clk->advance(1ms);
  rt.run_until_idle();
  EXPECT_TRUE(j->has("timeout"));
}

TEST_F(GenServerTimed, Line33_AnyMessageCancelsTheIdleTimeout) {
  auto s = gen_server::start<probe>(rt, {}, j, probe::init_mode::idle);
  ASSERT_TRUE(s);
  clk->advance(500ms);
  rt.send(*s, 1);  // handle_info answers noreply without a timeout
  rt.run_until_idle();
  clk->advance(10s);
  rt.run_until_idle();
  EXPECT_FALSE(j->has("timeout"));
  EXPECT_TRUE(j->has("info 1"));
}

TEST_F(GenServerTimed, Line33_ACallbackCanReArmTheTimeout) {
  auto s = gen_server::start<probe>(rt, {}, j);
  ASSERT_TRUE(s);
  rt.cast(*s, add{1});  // nothing armed yet
  rt.run_until_idle();
  // A process calls arm_idle: the reply re-arms a 200 ms timeout.
  struct caller final : process {
    pid server;
    explicit caller(pid s) : server(std::move(s)) {}
    void on_start() override { go(); }
    void receive(message&) override {}
    async go() { (void)co_await call<int>(server, arm_idle{200ms}); }
  };
  rt.spawn<caller>(*s);
  rt.run_until_idle();
  clk->advance(199ms);
  rt.run_until_idle();
  EXPECT_FALSE(j->has("timeout"));
  clk->advance(1ms);
  rt.run_until_idle();
  EXPECT_TRUE(j->has("timeout"));
}

TEST_F(GenServerTimed, Line34_ContinueFromInitRunsBeforeQueuedMessages) {
  auto s = gen_server::start<probe>(rt, {}, j, probe::init_mode::cont);
  ASSERT_TRUE(s);
  rt.send(*s, 5);  // queued before the server ever ran
  rt.run_until_idle();
  EXPECT_EQ(j->lines(), (std::vector<std::string>{"init", "continue 1", "info 5"}));
}

TEST_F(GenServerTimed, Line34_ContinueFromACallRunsBeforeTheNextMessage) {
  auto s = gen_server::start<probe>(rt, {}, j);
  ASSERT_TRUE(s);
  struct caller final : process {
    pid server;
    explicit caller(pid p) : server(std::move(p)) {}
    void on_start() override { go(); }
    void receive(message&) override {}
    async go() { (void)co_await call<int>(server, then_continue{2}); }
  };
  rt.spawn<caller>(*s);
  rt.run_until_idle();
  EXPECT_EQ(j->lines(), (std::vector<std::string>{"init", "continue 2"}));
}

TEST_F(GenServerTimed, Line29_CallTimesOutAfter5000msAndTheServerRunsOn) {
  auto s = gen_server::start<probe>(rt, {}, j);
  ASSERT_TRUE(s);
  auto outcome = std::make_shared<std::string>();
  struct caller final : process {
    pid server;
    std::shared_ptr<std::string> out;
    caller(pid p, std::shared_ptr<std::string> o) : server(std::move(p)), out(std::move(o)) {}
    void on_start() override { go(); }
    void receive(message&) override {}
    async go() {
      auto r = co_await call<int>(server, hold{});  // the default timeout
      *out = r ? "reply" : std::string(to_string(r.code()));
    }
  };
  rt.spawn<caller>(*s, outcome);
  rt.run_until_idle();
  clk->advance(4999ms);
  rt.run_until_idle();
  EXPECT_EQ(*outcome, "");
  clk->advance(1ms);
  rt.run_until_idle();
  EXPECT_EQ(*outcome, "timeout");
  EXPECT_TRUE(rt.is_alive(*s));
}

TEST_F(GenServerTimed, UnexpectedInfoIsLoggedAndIgnoredByDefault) {
  struct quiet final : gen_server {};
  auto s = gen_server::start<quiet>(rt, {});
  ASSERT_TRUE(s);
  rt.send(*s, 3.5);
  rt.run_until_idle();
  EXPECT_EQ(logs.count("received an unexpected message: double"), 1u);
  EXPECT_TRUE(rt.is_alive(*s));
}

TEST_F(GenServerTimed, AnUnhandledCallCrashesTheServerByDefault) {
  struct quiet final : gen_server {};
  auto s = gen_server::start<quiet>(rt, {});
  ASSERT_TRUE(s);
  auto r = rt.call<int>(*s, get{});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), errc::exited);
  EXPECT_EQ(r.error().reason().name(), "std::logic_error");
}

}  // namespace
}  // namespace canopy
