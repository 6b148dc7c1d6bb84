// tasks and task_supervisor: SEMANTICS.md lines 47-51 and 28.
#include "canopy/otp/tasks.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "canopy/testing/log_capture.hpp"
#include "canopy/testing/virtual_clock.hpp"

namespace canopy {
namespace {

using namespace std::chrono_literals;

struct lines {
  std::mutex mu;
  std::vector<std::string> v;
  void add(std::string s) {
    std::lock_guard lk(mu);
    v.push_back(std::move(s));
  }
  std::vector<std::string> get() {
    std::lock_guard lk(mu);
    return v;
  }
};

struct env {
  std::shared_ptr<lines> out = std::make_shared<lines>();
  std::shared_ptr<testing::virtual_clock> clk;
  pid sup;
};

// A process that runs `body` (a coroutine) once started.
class owner final : public process {
 public:
  using body_fn = async (*)(owner&, env);
  owner(body_fn body, env e, trap_exit trap = trap_exit::off) : body_(body), env_(std::move(e)), trap_(trap) {}

 protected:
  void on_start() override {
    process_flag(trap_);
    body_(*this, env_);
  }
  void receive(message& m) override {
    if (auto* e = m.get<exit_message>()) env_.out->add("exit message " + e->reason.to_string());
  }

 private:
  body_fn body_;
  env env_;
  trap_exit trap_;
};

class Tasks : public ::testing::Test {
 protected:
  std::shared_ptr<testing::virtual_clock> clk = std::make_shared<testing::virtual_clock>();
  testing::log_capture logs;
  runtime rt{{.mode = scheduling::manual, .clock = clk, .logger = logs.logger(), .shutdown_timeout = 100ms}};
  env e{std::make_shared<lines>(), clk, pid()};

  exit_watch run(owner::body_fn body, trap_exit trap = trap_exit::off) {
    pid p = rt.spawn<owner>(body, e, trap);
    exit_watch w = rt.watch(p);
    rt.run_until_idle();
    return w;
  }
};

TEST_F(Tasks, AsyncThenAwaitGivesTheResult) {
  run([](owner&, env x) -> async {
    auto t = tasks::async([] { return 6 * 7; });
    x.out->add("got " + std::to_string(co_await tasks::await(t)));
  });
  EXPECT_EQ(e.out->get(), std::vector<std::string>{"got 42"});
}

TEST_F(Tasks, AwaitManyGivesResultsInOrder) {
  run([](owner&, env x) -> async {
    std::vector<task_handle<int>> ts;
    for (int i = 1; i <= 3; ++i) ts.push_back(tasks::async([i] { return i * 10; }));
    auto all = co_await tasks::await_many(ts);
    x.out->add(std::to_string(all[0]) + "," + std::to_string(all[1]) + "," + std::to_string(all[2]));
  });
  EXPECT_EQ(e.out->get(), std::vector<std::string>{"10,20,30"});
}

TEST_F(Tasks, Line47_ATaskCrashTakesDownItsOwner) {
  auto w = run([](owner&, env x) -> async {
    auto t = tasks::async([]() -> int { throw std::runtime_error("task failed"); });
    x.out->add("result " + std::to_string(co_await tasks::await(t)));
  });
  EXPECT_EQ(w.wait(0ms)->to_string(), "{error,std::runtime_error,task failed}");
  EXPECT_TRUE(e.out->get().empty());
}

TEST_F(Tasks, Line47_Line48_AwaitTimeoutFailsTheOwnerAndTheLinkedTaskDiesWithIt) {
  auto task_pid = std::make_shared<pid>();
  static std::shared_ptr<pid> slot;
  slot = task_pid;
  auto w = run([](owner&, env x) -> async {
    // The task takes 5 s of virtual time: the owner's 5000 ms default passes first.
    auto t = tasks::async([clk = x.clk] {
      clk->advance(5000ms);
      return 1;
    });
    *slot = t.worker();
    (void)co_await tasks::await(t);
    x.out->add("not reached");
  });
  EXPECT_EQ(w.wait(0ms)->to_string(), "timeout");
  EXPECT_FALSE(rt.is_alive(*task_pid));
  EXPECT_TRUE(e.out->get().empty());
}

TEST_F(Tasks, Line48_AwaitWithinTheTimeoutSucceeds) {
  run([](owner&, env x) -> async {
    auto t = tasks::async([clk = x.clk] {
      clk->advance(4999ms);
      return 7;
    });
    x.out->add("got " + std::to_string(co_await tasks::await(t)));
  });
  EXPECT_EQ(e.out->get(), std::vector<std::string>{"got 7"});
}

TEST_F(Tasks, Line48_AwaitIsAllowedOncePerTask) {
  auto w = run([](owner&, env) -> async {
    auto t = tasks::async([] { return 1; });
    (void)co_await tasks::await(t);
    (void)co_await tasks::await(t);
  });
  EXPECT_EQ(w.wait(0ms)->name(), "std::logic_error");
}

TEST_F(Tasks, Line49_YieldGivesNothingYetThenTheResultAndMayBeCalledAgain) {
  run([](owner&, env x) -> async {
    auto t = tasks::async([clk = x.clk] {
      clk->advance(100ms);  // slower than the first yield's 50 ms
      return 3;
    });
    auto first = co_await tasks::yield(t, 50ms);
    x.out->add(first ? "first: something" : "first: nothing yet");
    auto second = co_await tasks::yield(t, 1s);
    x.out->add(second && *second ? "second: " + std::to_string(**second) : "second: nothing");
  });
  EXPECT_EQ(e.out->get(), (std::vector<std::string>{"first: nothing yet", "second: 3"}));
}

TEST_F(Tasks, Line49_YieldGivesTheExitToATrappingOwner) {
  auto w = run(
      [](owner&, env x) -> async {
        auto t = tasks::async([]() -> int { throw std::runtime_error("bad"); });
        auto r = co_await tasks::yield(t, 1s);
        x.out->add(r && !*r ? "exit " + (*r).error().reason().to_string() : "other");
      },
      trap_exit::on);
  auto seen = e.out->get();
  ASSERT_GE(seen.size(), 1u);
  EXPECT_EQ(seen[0], "exit {error,std::runtime_error,bad}");
  EXPECT_FALSE(w.wait(0ms));  // the owner lives: it traps exits
}

TEST_F(Tasks, Line50_ShutdownGivesTheResultIfItHadArrived) {
  run([](owner&, env x) -> async {
    auto t = tasks::async([] { return 9; });
    auto r = co_await tasks::shutdown(t);
    x.out->add(r && *r ? "result " + std::to_string(**r) : "nothing");
  });
  EXPECT_EQ(e.out->get(), std::vector<std::string>{"result 9"});
  EXPECT_EQ(rt.process_count(), 1u);  // the owner only: the task is gone
}

class TaskSupervisor : public Tasks {
 protected:
  void SetUp() override {
    auto s = task_supervisor::start(rt);
    ASSERT_TRUE(s);
    e.sup = *s;
  }
};

TEST_F(TaskSupervisor, AsyncUnderTheSupervisorGivesTheResult) {
  run([](owner&, env x) -> async {
    auto t = co_await task_supervisor::async(x.sup, [] { return std::string("supervised"); });
    x.out->add(co_await tasks::await(t));
  });
  EXPECT_EQ(e.out->get(), std::vector<std::string>{"supervised"});
}

TEST_F(TaskSupervisor, Line51_AsyncNolinkOwnerLearnsTheOutcomeAndLives) {
  auto w = run([](owner&, env x) -> async {
    auto t = co_await task_supervisor::async_nolink(x.sup, []() -> int { throw std::runtime_error("nolink failure"); });
    auto r = co_await tasks::yield(t, 1s);
    x.out->add(r && !*r ? "learned " + (*r).error().reason().to_string() : "other");
  });
  EXPECT_EQ(e.out->get(), std::vector<std::string>{"learned {error,std::runtime_error,nolink failure}"});
  EXPECT_FALSE(w.wait(0ms));  // not linked: the owner lives on
}

TEST_F(TaskSupervisor, Line28_ChildrenAreTemporaryWithA5000msShutdown) {
  auto spec = detail::task_child<int>([] { return 1; }, false);
  EXPECT_EQ(spec.restart(), restart_type::temporary);
  EXPECT_EQ(spec.shutdown().what(), shutdown_policy::kind::timeout);
  EXPECT_EQ(spec.shutdown().time(), 5000ms);
  run([](owner&, env x) -> async {
    auto started = co_await task_supervisor::start_child(x.sup, []() -> int { throw std::runtime_error("x"); });
    x.out->add(started ? "started" : "failed");
  });
  EXPECT_EQ(e.out->get(), std::vector<std::string>{"started"});
  EXPECT_EQ(dynamic_supervisor::count_children(rt, e.sup)->specs, 0u);  // crashed, not restarted
}

}  // namespace
}  // namespace canopy

namespace canopy {
namespace {

using namespace std::chrono_literals;

// What an async_stream run saw, shared with the test thread (manual mode: one thread).
struct stream_probe {
  int pulled = 0;              // items the source handed out
  int emitted = 0;             // outcomes the sink received
  int max_ahead = 0;           // most items pulled but not yet emitted
  std::vector<std::string> out;
};

class StreamTest : public ::testing::Test {
 protected:
  std::shared_ptr<testing::virtual_clock> clk = std::make_shared<testing::virtual_clock>();
  testing::log_capture logs;
  runtime rt{{.mode = scheduling::manual, .clock = clk, .logger = logs.logger(), .shutdown_timeout = 100ms}};
};

struct stream_env {
  std::shared_ptr<stream_probe> probe;
  std::shared_ptr<testing::virtual_clock> clk;
  tasks::stream_options options;
  int items;
};

class streamer final : public process {
 public:
  explicit streamer(stream_env e) : e_(std::move(e)) {}

 protected:
  void on_start() override { go(e_); }
  void receive(message&) override {}

 private:
  static async go(stream_env e) {
    auto p = e.probe;
    std::function<std::optional<int>()> source = [p, n = e.items]() -> std::optional<int> {
      if (p->pulled == n) return std::nullopt;
      p->max_ahead = std::max(p->max_ahead, p->pulled - p->emitted + 1);
      return p->pulled++;
    };
    auto fn = [clk = e.clk](int i) {
      if (i == 2) clk->advance(50ms);  // item 2 is slow
      if (i == 4) throw std::runtime_error("item 4 failed");
      return i * i;
    };
    std::function<void(canopy::result<int>)> sink = [p](canopy::result<int> r) {
      ++p->emitted;
      p->out.push_back(r ? std::to_string(*r) : std::string(to_string(r.code())));
    };
    co_await tasks::async_stream<int>(std::move(source), fn, std::move(sink), e.options);
    p->out.push_back("done");
  }
  stream_env e_;
};

TEST_F(StreamTest, OrderedResultsFollowTheInputAndConcurrencyIsBounded) {
  auto probe = std::make_shared<stream_probe>();
  auto w = rt.watch(rt.spawn<streamer>(stream_env{probe, clk, {.max_concurrency = 2, .timeout = 1s}, 4}));
  rt.run_until_idle();
  EXPECT_EQ(probe->out, (std::vector<std::string>{"0", "1", "4", "9", "done"}));
  EXPECT_LE(probe->max_ahead, 2);  // the source was pulled lazily: never more than 2 ahead
  EXPECT_FALSE(w.wait(0ms));       // the owner is still alive
}

TEST_F(StreamTest, AFailingItemTakesDownTheOwnerAsTheTasksAreLinked) {
  auto probe = std::make_shared<stream_probe>();
  auto w = rt.watch(rt.spawn<streamer>(stream_env{probe, clk, {.max_concurrency = 2, .timeout = 1s}, 6}));
  rt.run_until_idle();
  EXPECT_EQ(w.wait(0ms)->to_string(), "{error,std::runtime_error,item 4 failed}");
}

TEST_F(StreamTest, KillTaskOnTimeoutGivesATimeoutForThatItemAndGoesOn) {
  auto probe = std::make_shared<stream_probe>();
  rt.spawn<streamer>(stream_env{probe, clk,
                                {.max_concurrency = 1, .timeout = 10ms, .on_timeout = tasks::timeout_action::kill_task}, 4});
  rt.run_until_idle();
  EXPECT_EQ(probe->out, (std::vector<std::string>{"0", "1", "timeout", "9", "done"}));
}

TEST_F(StreamTest, ExitOnTimeoutFailsTheOwner) {
  auto probe = std::make_shared<stream_probe>();
  auto w = rt.watch(rt.spawn<streamer>(stream_env{probe, clk, {.max_concurrency = 1, .timeout = 10ms}, 4}));
  rt.run_until_idle();
  EXPECT_EQ(w.wait(0ms)->to_string(), "timeout");
}

TEST_F(StreamTest, UnorderedGivesEveryResult) {
  auto probe = std::make_shared<stream_probe>();
  rt.spawn<streamer>(stream_env{probe, clk, {.max_concurrency = 3, .ordered = false, .timeout = 1s}, 4});
  rt.run_until_idle();
  auto out = probe->out;
  ASSERT_EQ(out.size(), 5u);
  EXPECT_EQ(out.back(), "done");
  std::sort(out.begin(), out.end() - 1);
  EXPECT_EQ(out, (std::vector<std::string>{"0", "1", "4", "9", "done"}));
}

}  // namespace
}  // namespace canopy
