// dynamic_supervisor: SEMANTICS.md lines 26, 27 and 7 (concurrent shutdown).
#include "canopy/otp/dynamic_supervisor.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "canopy/testing/log_capture.hpp"
#include "canopy/testing/virtual_clock.hpp"
#include "canopy/testing/wait.hpp"
#include "test_processes.hpp"

namespace canopy {
namespace {

using namespace std::chrono_literals;

struct crash {};
struct whoami {};

struct counters {
  std::atomic<int> fail_starts{0};
  std::atomic<int> terminated{0};
};

class member final : public gen_server {
 public:
  member(std::shared_ptr<counters> c, std::string name) : c_(std::move(c)), name_(std::move(name)) {}
  member(std::string prefix, std::shared_ptr<counters> c, std::string name)
      : c_(std::move(c)), name_(prefix + name) {}

 protected:
  result init() override {
    if (c_->fail_starts > 0) {
      --c_->fail_starts;
      return stop(exit_reason::other("cannot_start"));
    }
    process_flag(trap_exit::on);
    return ok();
  }
  result handle_call(message&, const reply_address&) override { return reply(name_); }
  result handle_cast(message& m) override {
    if (m.get<crash>()) throw std::runtime_error("crash");
    return noreply();
  }
  void terminate(const exit_reason&) override { ++c_->terminated; }

 private:
  std::shared_ptr<counters> c_;
  std::string name_;
};

class DynamicSupervisor : public ::testing::Test {
 protected:
  std::shared_ptr<testing::virtual_clock> clk = std::make_shared<testing::virtual_clock>();
  testing::log_capture logs;
  runtime rt{{.mode = scheduling::manual, .clock = clk, .logger = logs.logger(), .shutdown_timeout = 100ms}};
  std::shared_ptr<counters> c = std::make_shared<counters>();

  child_spec member_spec(const std::string& name) { return child_spec::worker<member>("member", c, name); }
};

TEST_F(DynamicSupervisor, StartsChildrenOnDemandAndTerminatesThemByPid) {
  auto sup = dynamic_supervisor::start(rt);
  ASSERT_TRUE(sup);
  auto a = dynamic_supervisor::start_child(rt, *sup, member_spec("a"));
  auto b = dynamic_supervisor::start_child(rt, *sup, member_spec("b"));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*rt.call<std::string>(*b, whoami{}), "b");
  EXPECT_EQ(dynamic_supervisor::count_children(rt, *sup)->active, 2u);
  ASSERT_TRUE(dynamic_supervisor::terminate_child(rt, *sup, *a));
  EXPECT_FALSE(rt.is_alive(*a));
  EXPECT_EQ(c->terminated.load(), 1);
  EXPECT_EQ(dynamic_supervisor::terminate_child(rt, *sup, *a).code(), errc::not_found);
  auto kids = dynamic_supervisor::which_children(rt, *sup);
  ASSERT_EQ(kids->size(), 1u);
  EXPECT_EQ((*kids)[0].child, *b);
}

TEST_F(DynamicSupervisor, RestartsPermanentChildrenOneForOne) {
  auto sup = dynamic_supervisor::start(rt);
  auto a = dynamic_supervisor::start_child(rt, *sup, member_spec("a"));
  auto t = dynamic_supervisor::start_child(rt, *sup, member_spec("t").restart(restart_type::temporary));
  rt.cast(*a, crash{});
  rt.cast(*t, crash{});
  rt.run_until_idle();
  auto kids = dynamic_supervisor::which_children(rt, *sup);
  ASSERT_EQ(kids->size(), 1u);  // the temporary one is gone, the permanent one is back
  EXPECT_NE((*kids)[0].child, *a);
  EXPECT_EQ(*rt.call<std::string>((*kids)[0].child, whoami{}), "a");
}

TEST_F(DynamicSupervisor, Line26_MaxChildrenMakesStartChildAnswerMaxChildren) {
  auto sup = dynamic_supervisor::start(rt, {.max_children = 2});
  ASSERT_TRUE(dynamic_supervisor::start_child(rt, *sup, member_spec("a")));
  ASSERT_TRUE(dynamic_supervisor::start_child(rt, *sup, member_spec("b")));
  auto full = dynamic_supervisor::start_child(rt, *sup, member_spec("c"));
  ASSERT_FALSE(full);
  EXPECT_EQ(full.code(), errc::max_children);
}

// Real threads: while its restarts keep failing the retries never let a manual runtime idle.
TEST(DynamicSupervisorThreads, Line26_AChildWaitingToRestartStillCounts) {
  testing::log_capture logs;
  runtime rt({.threads = 2, .logger = logs.logger()});
  auto c = std::make_shared<counters>();
  auto sup = dynamic_supervisor::start(rt, {.max_children = 1, .max_restarts = 1000000000});
  auto a = dynamic_supervisor::start_child(rt, *sup, child_spec::worker<member>("member", c, std::string("a")));
  ASSERT_TRUE(a);
  c->fail_starts = 1000000000;  // every restart fails, until the test says otherwise
  rt.cast(*a, crash{});
  ASSERT_TRUE(testing::wait_until([&] { return logs.count("failed to restart a child") >= 1; }));
  auto n = dynamic_supervisor::count_children(rt, *sup);
  EXPECT_EQ(n->specs, 1u);   // waiting to restart...
  EXPECT_EQ(n->active, 0u);
  auto refused = dynamic_supervisor::start_child(rt, *sup, child_spec::worker<member>("member", c, std::string("b")));
  EXPECT_EQ(refused.code(), errc::max_children);  // ...and it still counts
  c->fail_starts = 0;
  ASSERT_TRUE(testing::wait_until([&] { return dynamic_supervisor::count_children(rt, *sup)->active == 1; }));
}

TEST_F(DynamicSupervisor, Line27_ExtraArgumentsArePrependedToEveryChild) {
  auto sup = dynamic_supervisor::start(rt, {.extra_arguments = std::string("tenant-7/")});
  auto a = dynamic_supervisor::start_child(rt, *sup, dynamic_supervisor::worker<member, std::string>("m", c, std::string("a")));
  ASSERT_TRUE(a) << a.error().to_string();
  EXPECT_EQ(*rt.call<std::string>(*a, whoami{}), "tenant-7/a");
  auto wrong = dynamic_supervisor::start(rt, {.extra_arguments = 42});
  auto refused = dynamic_supervisor::start_child(rt, *wrong, dynamic_supervisor::worker<member, std::string>("m", c, std::string("a")));
  EXPECT_EQ(refused.code(), errc::invalid_argument);
}

TEST_F(DynamicSupervisor, Line7_ChildrenStopConcurrentlyUnderOneDeadline) {
  auto sup = dynamic_supervisor::start(rt);
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(dynamic_supervisor::start_child(rt, *sup, child_spec("deaf", test::spawn_linked_child<test::deaf_process>).shutdown(shutdown_policy::timeout(1s))));
  ASSERT_TRUE(dynamic_supervisor::start_child(rt, *sup, member_spec("polite")));  // 5 s timeout, leaves at once
  auto watch = rt.watch(*sup);
  rt.exit(*sup, exit_reason::shutdown());
  rt.run_until_idle();
  EXPECT_EQ(c->terminated.load(), 1);  // the polite one left at once
  clk->advance(999ms);
  rt.run_until_idle();
  EXPECT_TRUE(rt.is_alive(*sup));
  clk->advance(1ms);  // the three deaf ones are killed together at 1 s, not one after another
  rt.run_until_idle();

  EXPECT_EQ(watch.wait(0ms)->to_string(), "shutdown");
  EXPECT_EQ(rt.process_count(), 0u);
}

TEST_F(DynamicSupervisor, AHundredThousandChildrenStartAndStop) {
  auto sup = dynamic_supervisor::start(rt);
  constexpr int n = 100000;
  for (int i = 0; i < n; ++i)
    ASSERT_TRUE(dynamic_supervisor::start_child(rt, *sup, member_spec("m").shutdown(shutdown_policy::brutal_kill())));
  EXPECT_EQ(dynamic_supervisor::count_children(rt, *sup)->active, static_cast<std::size_t>(n));
  auto watch = rt.watch(*sup);
  rt.exit(*sup, exit_reason::shutdown());
  rt.run_until_idle();
  EXPECT_EQ(watch.wait(0ms)->to_string(), "shutdown");
  EXPECT_EQ(rt.process_count(), 0u);
}

TEST_F(DynamicSupervisor, UnderASupervisor) {
  auto top = supervisor::start(rt, {}, {dynamic_supervisor::spec("sessions", {.max_children = 5})});
  ASSERT_TRUE(top);
  auto kids = supervisor::which_children(rt, *top);
  ASSERT_EQ(kids->size(), 1u);
  EXPECT_EQ((*kids)[0].type, child_type::supervisor);
  EXPECT_TRUE(dynamic_supervisor::start_child(rt, (*kids)[0].child, member_spec("x")));
}

// A process that starts a batch in one call: each spec answered in order, as start_child
// would (max_children counted as it goes).
class batch_starter final : public process {
 public:
  batch_starter(pid sup, std::vector<child_spec> specs, std::shared_ptr<std::vector<canopy::result<pid>>> out)
      : sup_(std::move(sup)), specs_(std::move(specs)), out_(std::move(out)) {}

 protected:
  void on_start() override { go(); }
  void receive(message&) override {}

 private:
  async go() {
    start_children_batch ask{std::move(specs_)};
    auto got = co_await call<std::vector<canopy::result<pid>>>(sup_, std::move(ask));
    if (got) *out_ = std::move(*got);
  }
  pid sup_;
  std::vector<child_spec> specs_;
  std::shared_ptr<std::vector<canopy::result<pid>>> out_;
};

TEST_F(DynamicSupervisor, StartsABatchOfChildrenInOneCall) {
  auto sup = dynamic_supervisor::start(rt, {.max_children = 2});
  auto out = std::make_shared<std::vector<canopy::result<pid>>>();
  std::vector<child_spec> specs = {member_spec("a"), child_spec("bad", nullptr), member_spec("b"), member_spec("c")};
  rt.spawn<batch_starter>(*sup, std::move(specs), out);
  rt.run_until_idle();
  ASSERT_EQ(out->size(), 4u);
  ASSERT_TRUE((*out)[0]);
  EXPECT_EQ((*out)[1].code(), errc::invalid_argument);  // no start function
  ASSERT_TRUE((*out)[2]);
  EXPECT_EQ((*out)[3].code(), errc::max_children);      // two already
  EXPECT_EQ(*rt.call<std::string>(*(*out)[2], whoami{}), "b");
  EXPECT_EQ(dynamic_supervisor::count_children(rt, *sup)->active, 2u);
}

TEST_F(DynamicSupervisor, ReportsItsTreeWithRestartsAndABoundedChildList) {
  auto top = supervisor::start(rt, {}, {dynamic_supervisor::spec("sessions")});
  ASSERT_TRUE(top);
  const pid sup = supervisor::which_children(rt, *top)->at(0).child;
  const std::size_t n = dynamic_supervisor::tree_children_listed + 20;
  std::vector<pid> kids;
  for (std::size_t i = 0; i < n; ++i) kids.push_back(*dynamic_supervisor::start_child(rt, sup, member_spec("m")));
  rt.cast(kids[0], crash{});  // restarted: one restart counted
  rt.run_until_idle();

  auto tree = supervisor::tree(rt, *top);  // the parent asks its dynamic child in turn
  ASSERT_TRUE(tree);
  ASSERT_EQ(tree->children.size(), 1u);
  const supervision_tree& dyn = tree->children[0];
  EXPECT_EQ(dyn.id, "sessions");
  EXPECT_EQ(dyn.type, child_type::supervisor);
  EXPECT_EQ(dyn.self, sup);
  EXPECT_EQ(dyn.restarts, 1u);
  ASSERT_EQ(dyn.children.size(), dynamic_supervisor::tree_children_listed);
  EXPECT_EQ(dyn.omitted, 20u);
  for (std::size_t i = 1; i < dyn.children.size(); ++i) EXPECT_LT(dyn.children[i - 1].self, dyn.children[i].self);
  EXPECT_EQ(dyn.children[0].id, "member");  // the spec id
  EXPECT_TRUE(rt.is_alive(dyn.children[0].self));
}

}  // namespace
}  // namespace canopy
