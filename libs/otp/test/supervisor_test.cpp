// supervisor: SEMANTICS.md lines 1-25, after OTP's supervisor_SUITE.
#include "canopy/otp/supervisor.hpp"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "canopy/testing/log_capture.hpp"
#include "canopy/testing/virtual_clock.hpp"
#include "canopy/testing/wait.hpp"
#include "test_processes.hpp"

namespace canopy {
namespace {

using namespace std::chrono_literals;

// What the workers did, in order, plus switches the test flips.
struct world {
  std::mutex mu;
  std::vector<std::string> log;
  std::map<std::string, int> fail_starts;  // id -> how many starts fail from now
  std::map<std::string, bool> ignore_start;

  void add(std::string line) {
    std::lock_guard lk(mu);
    log.push_back(std::move(line));
  }
  std::vector<std::string> take() {
    std::lock_guard lk(mu);
    return std::exchange(log, {});
  }
};

struct crash {};
struct quit {
  exit_reason reason;
};
struct unlink_parent {};

// A worker that logs its start and its terminate (it traps exits, so terminate runs on a
// shutdown from its supervisor), crashes or quits on demand.
class worker final : public gen_server {
 public:
  worker(std::shared_ptr<world> w, std::string id, trap_exit trap = trap_exit::on)
      : w_(std::move(w)), id_(std::move(id)), trap_(trap) {}

 protected:
  result init() override {
    {
      std::lock_guard lk(w_->mu);
      if (w_->ignore_start[id_]) return ignore();
      if (w_->fail_starts[id_] > 0) {
        --w_->fail_starts[id_];
        return stop(exit_reason::other("cannot_start"));
      }
    }
    process_flag(trap_);
    w_->add("start " + id_);
    return ok();
  }
  result handle_cast(message& m) override {
    if (m.get<crash>()) throw std::runtime_error("crash " + id_);
    if (auto* q = m.get<quit>()) return stop(q->reason);
    if (m.get<unlink_parent>()) unlink(parent());
    return noreply();
  }
  result handle_call(message&, const reply_address&) override { return reply(id_); }
  void terminate(const exit_reason& reason) override { w_->add("terminate " + id_ + " " + reason.to_string()); }

 private:
  std::shared_ptr<world> w_;
  std::string id_;
  trap_exit trap_;
};

class Supervisor : public ::testing::Test {
 protected:
  std::shared_ptr<testing::virtual_clock> clk = std::make_shared<testing::virtual_clock>();
  testing::log_capture logs;
  runtime rt{{.mode = scheduling::manual, .clock = clk, .logger = logs.logger(), .shutdown_timeout = 100ms}};
  std::shared_ptr<world> w = std::make_shared<world>();

  child_spec spec(const std::string& id) { return child_spec::worker<worker>(id, w, id); }

  pid start(supervisor_flags flags, std::vector<child_spec> children) {
    auto sup = supervisor::start(rt, flags, std::move(children));
    EXPECT_TRUE(sup) << sup.error().to_string();
    rt.run_until_idle();
    return sup ? *sup : pid();
  }
  pid child(const pid& sup, const std::string& id) {
    auto kids = supervisor::which_children(rt, sup);
    if (!kids) return {};
    for (auto& k : *kids)
      if (k.id == id) return k.child;
    return {};
  }
  void crash_child(const pid& sup, const std::string& id) {
    rt.cast(child(sup, id), crash{});
    rt.run_until_idle();
  }
};

TEST_F(Supervisor, Line1_ChildSpecDefaults) {
  auto s = spec("a");
  EXPECT_EQ(s.restart(), restart_type::permanent);
  EXPECT_EQ(s.type(), child_type::worker);
  EXPECT_EQ(s.shutdown().what(), shutdown_policy::kind::timeout);
  EXPECT_EQ(s.shutdown().time(), 5000ms);
  auto sup_spec = supervisor::spec("sub", {}, {});
  EXPECT_EQ(sup_spec.type(), child_type::supervisor);
  EXPECT_EQ(sup_spec.shutdown().what(), shutdown_policy::kind::infinite);
  EXPECT_FALSE(child_spec("", spec("x").start()).validate());
  EXPECT_FALSE(child_spec("x", nullptr).validate());
}

TEST_F(Supervisor, Line3_FlagsDefaultToOneForOneThreeInFive) {
  supervisor_flags f;
  EXPECT_EQ(f.strategy, strategy::one_for_one);
  EXPECT_EQ(f.max_restarts, 3u);
  EXPECT_EQ(f.max_seconds, 5s);
}

TEST_F(Supervisor, Line4_TwoChildrenWithOneIdAreRefused) {
  auto sup = supervisor::start(rt, {}, {spec("a"), spec("a")});
  ASSERT_FALSE(sup);
  EXPECT_EQ(sup.code(), errc::start_failed);
  EXPECT_EQ(sup.error().reason().to_string(), "{bad_start_spec,two children with the id 'a'}");
  EXPECT_TRUE(w->take().empty());  // nothing started
}

TEST_F(Supervisor, Line5_ChildrenStartInOrderBeforeStartReturns) {
  pid sup = start({}, {spec("a"), spec("b"), spec("c")});
  EXPECT_EQ(w->take(), (std::vector<std::string>{"start a", "start b", "start c"}));
  auto n = supervisor::count_children(rt, sup);
  EXPECT_EQ(n->specs, 3u);
  EXPECT_EQ(n->active, 3u);
  EXPECT_EQ(n->workers, 3u);
}

TEST_F(Supervisor, Line6_AFailedStartStopsTheStartedOnesInReverse) {
  w->fail_starts["c"] = 1;
  auto sup = supervisor::start(rt, {}, {spec("a"), spec("b"), spec("c"), spec("d")});
  ASSERT_FALSE(sup);
  EXPECT_EQ(sup.code(), errc::start_failed);
  EXPECT_EQ(sup.error().reason().to_string(), "{failed_to_start_child,c: cannot_start}");
  rt.run_until_idle();
  EXPECT_EQ(w->take(), (std::vector<std::string>{"start a", "start b", "terminate b shutdown", "terminate a shutdown"}));
  EXPECT_EQ(rt.process_count(), 0u);
}

TEST_F(Supervisor, Line7_ChildrenStopInReverseStartOrder) {
  pid sup = start({}, {spec("a"), spec("b"), spec("c")});
  w->take();
  auto watch = rt.watch(sup);
  rt.exit(sup, exit_reason::shutdown());  // from outside: like the parent going away
  rt.run_until_idle();
  EXPECT_EQ(w->take(), (std::vector<std::string>{"terminate c shutdown", "terminate b shutdown", "terminate a shutdown"}));
  EXPECT_EQ(watch.wait(0ms)->to_string(), "shutdown");
}

TEST_F(Supervisor, Line8_BrutalKillKillsAtOnce) {
  pid sup = start({}, {spec("a").shutdown(shutdown_policy::brutal_kill())});
  pid a = child(sup, "a");
  auto watch = rt.watch(a);
  ASSERT_TRUE(supervisor::terminate_child(rt, sup, "a"));
  EXPECT_EQ(watch.wait(0ms)->to_string(), "killed");
  EXPECT_EQ(w->take(), std::vector<std::string>{"start a"});  // no terminate after a kill (12)
}

TEST_F(Supervisor, Line9_ATimeoutSendsShutdownWaitsThenKills) {
  pid sup = start({}, {child_spec("deaf", test::spawn_linked_child<test::deaf_process>).shutdown(shutdown_policy::timeout(1s))});
  pid kid = child(sup, "deaf");
  auto kid_exit = rt.watch(kid);
  auto sup_exit = rt.watch(sup);
  rt.exit(sup, exit_reason::shutdown());
  rt.run_until_idle();
  clk->advance(999ms);  // the child ignores shutdown; the supervisor waits
  rt.run_until_idle();
  EXPECT_TRUE(rt.is_alive(kid));
  EXPECT_TRUE(rt.is_alive(sup));
  clk->advance(1ms);  // timeout: killed
  rt.run_until_idle();
  EXPECT_EQ(kid_exit.wait(0ms)->to_string(), "killed");
  EXPECT_EQ(sup_exit.wait(0ms)->to_string(), "shutdown");
}

TEST_F(Supervisor, Line10_InfinityWaitsForever) {
  pid sup = start({}, {child_spec("deaf", test::spawn_linked_child<test::deaf_process>).shutdown(shutdown_policy::infinity())});
  pid kid = child(sup, "deaf");
  auto sup_exit = rt.watch(sup);
  rt.exit(sup, exit_reason::shutdown());
  rt.run_until_idle();
  clk->advance(24h);
  rt.run_until_idle();
  EXPECT_TRUE(rt.is_alive(kid));
  EXPECT_TRUE(rt.is_alive(sup));
  rt.exit(kid, exit_reason::kill());  // only when the child goes does the supervisor finish
  rt.run_until_idle();
  EXPECT_EQ(sup_exit.wait(0ms)->to_string(), "shutdown");
}

TEST_F(Supervisor, Line12_TerminateRunsOnlyInAChildThatTrapsExits) {
  child_spec plain = child_spec::worker<worker>("plain", w, std::string("plain"), trap_exit::off);
  pid sup = start({}, {plain, spec("trapping")});
  w->take();
  ASSERT_TRUE(supervisor::terminate_child(rt, sup, "plain"));
  ASSERT_TRUE(supervisor::terminate_child(rt, sup, "trapping"));
  EXPECT_EQ(w->take(), std::vector<std::string>{"terminate trapping shutdown"});
}

TEST_F(Supervisor, Line11_AChildThatUnlinkedItselfCannotHangTheSupervisor) {
  pid sup = start({}, {spec("a")});
  rt.cast(child(sup, "a"), unlink_parent{});
  rt.run_until_idle();
  ASSERT_TRUE(supervisor::terminate_child(rt, sup, "a"));  // watched by a monitor
  EXPECT_FALSE(child(sup, "a"));
}

TEST_F(Supervisor, Line13_PermanentIsRestartedEvenAfterANormalExit) {
  pid sup = start({}, {spec("a")});
  pid before = child(sup, "a");
  rt.cast(before, quit{exit_reason::normal()});
  rt.run_until_idle();
  pid after = child(sup, "a");
  EXPECT_TRUE(after);
  EXPECT_NE(after, before);
}

TEST_F(Supervisor, Line14_TransientIsRestartedOnlyAfterAnAbnormalExit) {
  pid sup = start({}, {spec("t").restart(restart_type::transient)});
  rt.cast(child(sup, "t"), quit{exit_reason::shutdown("done")});
  rt.run_until_idle();
  EXPECT_FALSE(child(sup, "t"));
  EXPECT_EQ(supervisor::count_children(rt, sup)->specs, 1u);  // the spec stays (16)
  ASSERT_TRUE(supervisor::restart_child(rt, sup, "t"));
  rt.cast(child(sup, "t"), quit{exit_reason::other("broken")});
  rt.run_until_idle();
  EXPECT_TRUE(child(sup, "t"));
}

TEST_F(Supervisor, Line15_TemporaryIsNeverRestartedAndForgotten) {
  pid sup = start({}, {spec("tmp").restart(restart_type::temporary)});
  crash_child(sup, "tmp");
  EXPECT_EQ(supervisor::count_children(rt, sup)->specs, 0u);
}

TEST_F(Supervisor, Line15_TemporaryBystandersOfOneForAllAreNotRestarted) {
  pid sup = start({.strategy = strategy::one_for_all}, {spec("a"), spec("tmp").restart(restart_type::temporary), spec("c")});
  w->take();
  crash_child(sup, "a");
  auto kids = supervisor::which_children(rt, sup);
  ASSERT_EQ(kids->size(), 2u);
  EXPECT_EQ((*kids)[0].id, "a");
  EXPECT_EQ((*kids)[1].id, "c");
  EXPECT_EQ(w->take(), (std::vector<std::string>{"terminate a {error,std::runtime_error,crash a}", "terminate c shutdown",
                                                 "terminate tmp shutdown", "start a", "start c"}));
}

TEST_F(Supervisor, Line16_StartingAnExistingIdAnswersAlreadyStartedOrPresent) {
  pid sup = start({}, {spec("a")});
  auto again = supervisor::start_child(rt, sup, spec("a"));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.code(), errc::already_started);
  EXPECT_EQ(again.error().context(), child(sup, "a").to_string());
  ASSERT_TRUE(supervisor::terminate_child(rt, sup, "a"));
  EXPECT_EQ(supervisor::start_child(rt, sup, spec("a")).code(), errc::already_present);
}

TEST_F(Supervisor, Line17_IgnoreKeepsANonTemporarySpecWithoutAPid) {
  w->ignore_start["a"] = true;
  w->ignore_start["tmp"] = true;
  pid sup = start({}, {spec("a"), spec("tmp").restart(restart_type::temporary)});
  auto kids = supervisor::which_children(rt, sup);
  ASSERT_EQ(kids->size(), 1u);
  EXPECT_EQ((*kids)[0].id, "a");
  EXPECT_FALSE((*kids)[0].child);
}

TEST_F(Supervisor, Line18_AdminApiAnswers) {
  pid sup = start({}, {spec("a"), spec("tmp").restart(restart_type::temporary)});
  EXPECT_EQ(supervisor::restart_child(rt, sup, "nope").code(), errc::not_found);
  EXPECT_EQ(supervisor::restart_child(rt, sup, "a").code(), errc::running);
  EXPECT_EQ(supervisor::delete_child(rt, sup, "a").code(), errc::running);
  EXPECT_EQ(supervisor::terminate_child(rt, sup, "nope").code(), errc::not_found);
  ASSERT_TRUE(supervisor::terminate_child(rt, sup, "a"));
  EXPECT_EQ(supervisor::count_children(rt, sup)->specs, 2u);  // kept
  ASSERT_TRUE(supervisor::terminate_child(rt, sup, "tmp"));
  EXPECT_EQ(supervisor::count_children(rt, sup)->specs, 1u);  // a temporary is forgotten
  auto restarted = supervisor::restart_child(rt, sup, "a");
  ASSERT_TRUE(restarted);
  EXPECT_EQ(*restarted, child(sup, "a"));
  ASSERT_TRUE(supervisor::terminate_child(rt, sup, "a"));
  ASSERT_TRUE(supervisor::delete_child(rt, sup, "a"));
  EXPECT_EQ(supervisor::count_children(rt, sup)->specs, 0u);
  EXPECT_EQ(supervisor::delete_child(rt, sup, "a").code(), errc::not_found);
}

TEST_F(Supervisor, Line19_OneForOneRestartsOnlyTheFailedChild) {
  pid sup = start({}, {spec("a"), spec("b"), spec("c")});
  pid a = child(sup, "a");
  pid c = child(sup, "c");
  w->take();
  crash_child(sup, "b");
  EXPECT_EQ(child(sup, "a"), a);
  EXPECT_EQ(child(sup, "c"), c);
  EXPECT_EQ(w->take(), (std::vector<std::string>{"terminate b {error,std::runtime_error,crash b}", "start b"}));
}

TEST_F(Supervisor, Line20_OneForAllStopsOthersInReverseThenRestartsAllInOrder) {
  pid sup = start({.strategy = strategy::one_for_all}, {spec("a"), spec("b"), spec("c")});
  w->take();
  crash_child(sup, "b");
  EXPECT_EQ(w->take(), (std::vector<std::string>{"terminate b {error,std::runtime_error,crash b}", "terminate c shutdown",
                                                 "terminate a shutdown", "start a", "start b", "start c"}));
}

TEST_F(Supervisor, Line21_RestForOneRestartsTheFailedAndLaterOnes) {
  pid sup = start({.strategy = strategy::rest_for_one}, {spec("a"), spec("b"), spec("c"), spec("d")});
  pid a = child(sup, "a");
  w->take();
  crash_child(sup, "b");
  EXPECT_EQ(child(sup, "a"), a);
  EXPECT_EQ(w->take(), (std::vector<std::string>{"terminate b {error,std::runtime_error,crash b}", "terminate d shutdown",
                                                 "terminate c shutdown", "start b", "start c", "start d"}));
}

TEST_F(Supervisor, Line22_OneFailureIsOneRestartHoweverManyChildrenRestart) {
  pid sup = start({.strategy = strategy::one_for_all, .max_restarts = 1}, {spec("a"), spec("b"), spec("c")});
  auto watch = rt.watch(sup);
  crash_child(sup, "a");  // three children restart: one restart
  ASSERT_TRUE(rt.is_alive(sup));
  crash_child(sup, "a");  // the second within 5 s: over the limit
  EXPECT_EQ(watch.wait(0ms)->to_string(), "shutdown");
}

TEST_F(Supervisor, Line23_AFailedRestartIsRetriedAndCountsAndTheApiAnswers) {
  pid sup = start({.max_restarts = 10}, {spec("a"), spec("b")});
  w->fail_starts["a"] = 2;  // the next two starts of a fail
  crash_child(sup, "a");    // restart fails, retry fails, the third works
  EXPECT_TRUE(child(sup, "a"));
  EXPECT_EQ(logs.count("failed to restart child 'a'"), 2u);
  // Each retry counted: 1 crash + 2 retries = 3 restarts toward the intensity.
  auto tree = supervisor::tree(rt, sup);
  EXPECT_EQ(tree->restarts, 3u);
}

// Real threads: the retries never let a manual runtime go idle.
TEST(SupervisorThreads, Line23_AHangingRestartLoopStillAnswersAndCanBeStopped) {
  testing::log_capture logs;
  runtime rt({.threads = 2, .logger = logs.logger()});
  auto w = std::make_shared<world>();
  auto sup = supervisor::start(rt, {.max_restarts = 1000000000}, {child_spec::worker<worker>("a", w, std::string("a"))});
  ASSERT_TRUE(sup);
  auto kids = supervisor::which_children(rt, *sup);
  ASSERT_TRUE(kids);
  {
    std::lock_guard lk(w->mu);
    w->fail_starts["a"] = 1000000000;  // every restart from now on fails
  }
  rt.cast((*kids)[0].child, crash{});
  ASSERT_TRUE(testing::wait_until([&] { return logs.count("failed to restart child 'a'") >= 10; }));
  auto restarting = supervisor::restart_child(rt, *sup, "a");  // it still answers
  EXPECT_EQ(restarting.code(), errc::restarting);
  auto watch = rt.watch(*sup);
  rt.exit(*sup, exit_reason::shutdown());  // and can be stopped
  EXPECT_EQ(watch.wait(20s)->to_string(), "shutdown");
}

TEST_F(Supervisor, Line23_OneForAllWhenAnotherChildFailsToRestart) {
  pid sup = start({.strategy = strategy::one_for_all, .max_restarts = 10}, {spec("a"), spec("b"), spec("c")});
  w->take();
  w->fail_starts["b"] = 1;  // a crashes; in the restart of all, b fails once
  crash_child(sup, "a");
  // a restarted, b failed and was retried by message: the retry stops the running ones and
  // restarts all in order again.
  EXPECT_EQ(w->take(), (std::vector<std::string>{"terminate a {error,std::runtime_error,crash a}", "terminate c shutdown",
                                                 "terminate b shutdown", "start a", "terminate a shutdown", "start a",
                                                 "start b", "start c"}));
  auto kids = supervisor::which_children(rt, sup);
  for (auto& k : *kids) EXPECT_TRUE(k.child) << k.id;
  EXPECT_EQ(logs.count("failed to restart child 'b'"), 1u);
}

TEST_F(Supervisor, Line24_IntensityExceededStopsAllAndExitsShutdown) {
  pid sup = start({.max_restarts = 2}, {spec("a"), spec("b")});
  auto watch = rt.watch(sup);
  crash_child(sup, "a");
  crash_child(sup, "a");
  ASSERT_TRUE(rt.is_alive(sup));
  w->take();
  crash_child(sup, "a");  // the third within the window
  EXPECT_EQ(watch.wait(0ms)->to_string(), "shutdown");
  EXPECT_EQ(w->take(), (std::vector<std::string>{"terminate a {error,std::runtime_error,crash a}", "terminate b shutdown"}));
  EXPECT_EQ(logs.count("reached its restart intensity"), 1u);
}

TEST_F(Supervisor, Line24_IntensityZeroMeansTheFirstCrashStopsIt) {
  pid sup = start({.max_restarts = 0}, {spec("a")});
  auto watch = rt.watch(sup);
  crash_child(sup, "a");
  EXPECT_EQ(watch.wait(0ms)->to_string(), "shutdown");
}

TEST_F(Supervisor, Line24_TheWindowSlidesOnTheMonotonicClock) {
  pid sup = start({.max_restarts = 2, .max_seconds = 5s}, {spec("a")});
  crash_child(sup, "a");
  crash_child(sup, "a");
  clk->advance(5s);  // both restarts leave the window
  crash_child(sup, "a");
  crash_child(sup, "a");
  EXPECT_TRUE(rt.is_alive(sup));
  crash_child(sup, "a");
  EXPECT_FALSE(rt.is_alive(sup));
}

TEST_F(Supervisor, Line25_EscalationClimbsToTheParent) {
  pid top = start({.max_restarts = 5},
                  {supervisor::spec("sub", {.max_restarts = 0}, {spec("leaf")}), spec("sibling")});
  pid sub = child(top, "sub");
  pid sibling = child(top, "sibling");
  ASSERT_TRUE(sub);
  pid leaf = child(sub, "leaf");
  rt.cast(leaf, crash{});  // sub gives up (intensity 0) and exits shutdown; top restarts it
  rt.run_until_idle();
  pid new_sub = child(top, "sub");
  ASSERT_TRUE(new_sub);
  EXPECT_NE(new_sub, sub);
  EXPECT_TRUE(child(new_sub, "leaf"));
  EXPECT_EQ(child(top, "sibling"), sibling);  // one_for_one at the top
}

TEST_F(Supervisor, NestedTreesReportThemselves) {
  pid top = start({.strategy = strategy::rest_for_one},
                  {spec("db"), supervisor::spec("workers", {.strategy = strategy::one_for_all}, {spec("w1"), spec("w2")})});
  auto tree = supervisor::tree(rt, top);
  ASSERT_TRUE(tree);
  ASSERT_EQ(tree->children.size(), 2u);
  EXPECT_EQ(tree->children[1].id, "workers");
  EXPECT_EQ(tree->children[1].strategy, strategy::one_for_all);
  ASSERT_EQ(tree->children[1].children.size(), 2u);
  const std::string text = render(*tree);
  EXPECT_NE(text.find("(root) " + top.to_string() + " supervisor rest_for_one restarts=0"), std::string::npos) << text;
  EXPECT_NE(text.find("  workers "), std::string::npos) << text;
  EXPECT_NE(text.find("    w2 "), std::string::npos) << text;
}

TEST_F(Supervisor, ANestedTreeStopsBottomUpInReverseOrder) {
  pid top = start({}, {spec("a"), supervisor::spec("sub", {}, {spec("x"), spec("y")}), spec("b")});
  w->take();
  rt.exit(top, exit_reason::shutdown());
  rt.run_until_idle();
  EXPECT_EQ(w->take(), (std::vector<std::string>{"terminate b shutdown", "terminate y shutdown", "terminate x shutdown",
                                                 "terminate a shutdown"}));
  EXPECT_EQ(rt.process_count(), 0u);
}

TEST_F(Supervisor, StartChildAddsAtTheEnd) {
  pid sup = start({}, {spec("a")});
  auto b = supervisor::start_child(rt, sup, spec("b"));
  ASSERT_TRUE(b);
  auto kids = supervisor::which_children(rt, sup);
  ASSERT_EQ(kids->size(), 2u);
  EXPECT_EQ((*kids)[1].child, *b);
  w->fail_starts["c"] = 1;
  auto c = supervisor::start_child(rt, sup, spec("c"));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().reason().to_string(), "cannot_start");
  EXPECT_EQ(supervisor::count_children(rt, sup)->specs, 2u);
}

}  // namespace
}  // namespace canopy
