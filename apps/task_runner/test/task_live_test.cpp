// The task runner on loopback, every op over the wire, time on a virtual clock: a task
// runs and succeeds; retries with backoff; a timeout; cancel of a queued and a running
// task; delay; idempotency; overloaded at the queue limit; exec refused (disabled, not
// allowed) and run (allowed); the crash kind retried; await answered when the task
// finishes or timing out; list, stats, events; bad arguments; and the journal across a
// restart (results kept, queued tasks run, keys remembered).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "canopy/app/instance.hpp"
#include "canopy/msg/client.hpp"
#include "canopy/msg/subscriber.hpp"
#include "canopy/task_app/app.hpp"
#include "canopy/testing/log_capture.hpp"
#include "canopy/testing/virtual_clock.hpp"
#include "canopy/testing/wait.hpp"

namespace canopy::task_app {
namespace {

using namespace std::chrono_literals;
using writer = std::function<void(wire::packer&)>;

std::string str(const msgpack::object* o) {
  if (o == nullptr || o->type != msgpack::type::STR) return "(not a string)";
  return {o->via.str.ptr, o->via.str.size};
}

class Tasks : public ::testing::Test {
 protected:
  void SetUp() override {
    data_dir = std::filesystem::temp_directory_path() /
               ("canopy_tasks_" + std::to_string(::getpid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(data_dir);
  }
  void TearDown() override {
    cli.reset();
    if (running) running->stop();
    std::filesystem::remove_all(data_dir);
  }

  void start(options o = {}, bool virtual_time = true) {
    the_app.set_options(o);
    canopy::app::settings s;
    s.endpoint = "tcp://127.0.0.1:0";
    s.events_endpoint = "tcp://127.0.0.1:0";
    s.registry = "none";
    s.fault_injection = true;
    s.data_dir = data_dir.string();
    if (virtual_time && !clk) clk = std::make_shared<testing::virtual_clock>();
    auto i = canopy::app::instance::start(the_app, s, logs.logger(), virtual_time ? clk : nullptr);
    ASSERT_TRUE(i) << i.error().to_string();
    running = std::move(*i);
    auto c = msg::client::connect(running->endpoint());
    ASSERT_TRUE(c);
    cli = std::move(*c);
  }
  void restart(options o = {}) {
    cli.reset();
    running->stop();
    running.reset();
    start(o);
  }

  msg::reply call(std::string_view op, std::uint32_t pairs, const writer& w) {
    auto r = cli->call(op, pairs, w, 10s);
    EXPECT_TRUE(r) << op << ": " << r.error().to_string();
    return r ? *r : msg::reply{};
  }
  static const msgpack::object* field(const msg::reply& r, const char* name) {
    return r.ok && r.result ? wire::find(*r.result, name) : nullptr;
  }
  // submit {kind, args: extra_args...} plus options; the task id, or "" (see last).
  msg::reply submit(const std::string& kind, const writer& args = {}, const writer& more = {}, std::uint32_t more_pairs = 0) {
    return call("submit", 1 + (args ? 1 : 0) + more_pairs, [&](wire::packer& p) {
      p.pack("kind");
      p.pack(kind);
      if (args) {
        p.pack("args");
        args(p);
      }
      if (more) more(p);
    });
  }
  std::string id_of(const msg::reply& r) { return str(field(r, "task_id")); }
  msg::reply on(std::string_view op, const std::string& id) {
    return call(op, 1, [&](wire::packer& p) {
      p.pack("task_id");
      p.pack(id);
    });
  }
  std::string state(const std::string& id) { return str(field(on("status", id), "state")); }
  bool becomes(const std::string& id, const std::string& s) {
    return testing::wait_until([&] { return state(id) == s; });
  }
  static writer opts(std::initializer_list<std::pair<const char*, std::uint64_t>> kv) {
    std::vector<std::pair<std::string, std::uint64_t>> v(kv.begin(), kv.end());
    return [v](wire::packer& p) {
      for (const auto& [k, n] : v) {
        p.pack(k);
        p.pack(n);
      }
    };
  }
  static writer map_of(const char* k, std::uint64_t v) {
    return [k, v](wire::packer& p) {
      p.pack_map(1);
      p.pack(k);
      p.pack(v);
    };
  }

  std::filesystem::path data_dir;
  testing::log_capture logs;
  std::shared_ptr<testing::virtual_clock> clk;
  app the_app;
  std::unique_ptr<canopy::app::instance> running;
  std::unique_ptr<msg::client> cli;
};

TEST_F(Tasks, EchoRunsAndSucceedsWithItsArgsAsTheResult) {
  start();
  msg::reply s = submit("echo", [](wire::packer& p) {
    p.pack_map(1);
    p.pack("hello");
    p.pack_bin(2);
    p.pack_bin_body("\x01\x02", 2);
  });
  ASSERT_TRUE(s.ok) << s.message;
  EXPECT_FALSE(field(s, "existing")->via.boolean);
  const std::string id = id_of(s);
  msg::reply done = call("await", 1, [&](wire::packer& p) {
    p.pack("task_id");
    p.pack(id);
  });
  ASSERT_TRUE(done.ok) << done.message;
  EXPECT_EQ(str(field(done, "state")), "succeeded");
  EXPECT_EQ(str(field(done, "kind")), "echo");
  EXPECT_EQ(field(done, "attempts")->via.u64, 1u);
  const msgpack::object* result = field(done, "result");
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(wire::find(*result, "hello")->type, msgpack::type::BIN);  // byte-exact
  EXPECT_LE(field(done, "submitted_ms")->via.u64, field(done, "started_ms")->via.u64);
  EXPECT_LE(field(done, "started_ms")->via.u64, field(done, "finished_ms")->via.u64);
  EXPECT_EQ(field(done, "error"), nullptr);
}

TEST_F(Tasks, AFailingTaskIsRetriedWithBackoffUntilItsAttemptsRunOut) {
  start();
  const std::string id = id_of(submit(
      "fail", [](wire::packer& p) {
        p.pack_map(1);
        p.pack("message");
        p.pack("disk on fire");
      },
      opts({{"max_attempts", 3}, {"backoff_ms", 1000}}), 2));
  // First attempt at once; then queued for a retry 500..1000 ms later.
  ASSERT_TRUE(testing::wait_until([&] {
    msg::reply st = on("status", id);
    return str(field(st, "state")) == "queued" && field(st, "attempts")->via.u64 == 1;
  }));
  clk->advance(499ms);
  EXPECT_EQ(field(on("status", id), "attempts")->via.u64, 1u);  // not before half the backoff
  clk->advance(501ms);
  // The second attempt ran and failed: queued again (only then is its backoff on the clock).
  ASSERT_TRUE(testing::wait_until([&] {
    msg::reply st = on("status", id);
    return str(field(st, "state")) == "queued" && field(st, "attempts")->via.u64 == 2;
  }));
  clk->advance(2000ms);  // the second backoff: at most 2000 ms
  ASSERT_TRUE(becomes(id, "failed"));
  msg::reply st = on("status", id);
  EXPECT_EQ(field(st, "attempts")->via.u64, 3u);
  EXPECT_EQ(str(wire::find(*field(st, "error"), "message")), "disk on fire");
  EXPECT_EQ(str(wire::find(*field(st, "error"), "kind")), "exception");
}

TEST_F(Tasks, AnAttemptPastItsTimeoutIsStoppedAndTheTaskTimesOut) {
  start();
  const std::string id = id_of(submit("sleep", map_of("ms", 60000), opts({{"timeout_ms", 100}}), 1));
  ASSERT_TRUE(becomes(id, "running"));
  clk->advance(100ms);
  ASSERT_TRUE(becomes(id, "timed_out"));
  msg::reply st = on("status", id);
  EXPECT_EQ(str(wire::find(*field(st, "error"), "kind")), "timeout");
  // Its worker is gone: nothing left running.
  EXPECT_TRUE(testing::wait_until([&] {
    return field(call("stats", 0, [](wire::packer&) {}), "running")->via.u64 == 0;
  }));
}

TEST_F(Tasks, CancelStopsAQueuedAndARunningTaskButNotAFinishedOne) {
  start();
  const std::string later = id_of(submit("echo", {}, opts({{"delay_ms", 60000}}), 1));
  const std::string busy = id_of(submit("sleep", map_of("ms", 60000)));
  ASSERT_TRUE(becomes(busy, "running"));
  EXPECT_TRUE(field(on("cancel", later), "cancelled")->via.boolean);
  EXPECT_TRUE(field(on("cancel", busy), "cancelled")->via.boolean);
  EXPECT_EQ(state(later), "cancelled");
  EXPECT_EQ(state(busy), "cancelled");
  EXPECT_FALSE(field(on("cancel", busy), "cancelled")->via.boolean);  // finished already
  EXPECT_FALSE(field(on("cancel", "t-999"), "cancelled")->via.boolean);
  clk->advance(60s);  // neither runs after all
  EXPECT_EQ(state(later), "cancelled");
  msg::reply stats = call("stats", 0, [](wire::packer&) {});
  EXPECT_EQ(field(stats, "cancelled")->via.u64, 2u);
  EXPECT_EQ(field(stats, "running")->via.u64, 0u);
}

TEST_F(Tasks, ADelayedTaskRunsWhenItsTimeComes) {
  start();
  const std::string id = id_of(submit("echo", {}, opts({{"delay_ms", 5000}}), 1));
  clk->advance(4999ms);
  EXPECT_EQ(state(id), "queued");
  clk->advance(1ms);
  EXPECT_TRUE(becomes(id, "succeeded"));
}

TEST_F(Tasks, TheSameKeyIsTheSameTask) {
  start();
  const writer key = [](wire::packer& p) {
    p.pack("key");
    p.pack("invoice-42");
  };
  msg::reply a = submit("echo", {}, key, 1);
  msg::reply b = submit("echo", {}, key, 1);
  EXPECT_EQ(id_of(a), id_of(b));
  EXPECT_FALSE(field(a, "existing")->via.boolean);
  EXPECT_TRUE(field(b, "existing")->via.boolean);
}

TEST_F(Tasks, PastTheQueueLimitSubmitIsOverloaded) {
  options o;
  o.limits.queue_limit = 2;
  start(o);
  ASSERT_TRUE(submit("echo", {}, opts({{"delay_ms", 60000}}), 1).ok);
  ASSERT_TRUE(submit("echo", {}, opts({{"delay_ms", 60000}}), 1).ok);
  EXPECT_EQ(submit("echo").code, wire::error_code::overloaded);
}

TEST_F(Tasks, ExecIsRefusedUnlessEnabledAndAllowed) {
  start();
  const writer argv = [](wire::packer& p) {
    p.pack_map(1);
    p.pack("argv");
    p.pack(std::vector<std::string>{"/bin/echo", "hi"});
  };
  EXPECT_EQ(submit("exec", argv).code, wire::error_code::unauthorized);
}

TEST_F(Tasks, ExecRunsAnAllowedProgramWithItsOutputCapturedAndBounded) {
  options o;
  o.exec = {.enabled = true, .allow = {"/bin/echo", "/bin/sh"}, .max_output_bytes = 16};
  start(o, false);  // real time: a real child process
  msg::reply ok = submit("exec", [](wire::packer& p) {
    p.pack_map(1);
    p.pack("argv");
    p.pack(std::vector<std::string>{"/bin/echo", "hello from a child"});
  });
  ASSERT_TRUE(ok.ok) << ok.message;
  msg::reply done = call("await", 1, [&](wire::packer& p) {
    p.pack("task_id");
    p.pack(id_of(ok));
  });
  ASSERT_EQ(str(field(done, "state")), "succeeded") << done.message;
  const msgpack::object* r = field(done, "result");
  EXPECT_EQ(wire::find(*r, "exit_code")->via.i64, 0);
  EXPECT_EQ(str(wire::find(*r, "stdout")), "hello from a chi");  // 16 bytes kept
  EXPECT_TRUE(wire::find(*r, "truncated")->via.boolean);

  msg::reply bad = submit("exec", [](wire::packer& p) {
    p.pack_map(1);
    p.pack("argv");
    p.pack(std::vector<std::string>{"/bin/sh", "-c", "echo no >&2; exit 3"});
  });
  msg::reply failed = call("await", 1, [&](wire::packer& p) {
    p.pack("task_id");
    p.pack(id_of(bad));
  });
  EXPECT_EQ(str(field(failed, "state")), "failed");
  EXPECT_EQ(str(wire::find(*field(failed, "error"), "message")), "exit status 3: no\n");

  EXPECT_EQ(submit("exec", [](wire::packer& p) {
              p.pack_map(1);
              p.pack("argv");
              p.pack(std::vector<std::string>{"/bin/rm", "-rf", "/"});
            }).code,
            wire::error_code::unauthorized);
  EXPECT_EQ(submit("exec", map_of("argv", 1)).code, wire::error_code::invalid_args);

  // A running child is killed with its task.
  msg::reply slow = submit("exec", [](wire::packer& p) {
    p.pack_map(1);
    p.pack("argv");
    p.pack(std::vector<std::string>{"/bin/sh", "-c", "sleep 30"});
  });
  ASSERT_TRUE(becomes(id_of(slow), "running"));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(field(on("cancel", id_of(slow)), "cancelled")->via.boolean);
  cli.reset();
  running->stop();  // joins the exec threads: quick only if the child was killed
  running.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
}

TEST_F(Tasks, TheCrashKindKillsItsWorkerAndIsRetried) {
  start();
  const std::string id = id_of(submit("crash", {}, opts({{"max_attempts", 2}}), 1));
  ASSERT_TRUE(becomes(id, "failed"));
  msg::reply st = on("status", id);
  EXPECT_EQ(field(st, "attempts")->via.u64, 2u);
  EXPECT_EQ(str(wire::find(*field(st, "error"), "kind")), "crash");
  EXPECT_TRUE(on("status", id).ok);  // the server serves on
}

TEST_F(Tasks, AwaitAnswersWhenTheTaskFinishesOrTimesOut) {
  start();
  const std::string id = id_of(submit("sleep", map_of("ms", 1000)));
  ASSERT_TRUE(becomes(id, "running"));
  // Two awaits in flight on one connection: one short, one long.
  const std::uint64_t short_wait = cli->send("await", 2, [&](wire::packer& p) {
    p.pack("task_id");
    p.pack(id);
    p.pack("timeout_ms");
    p.pack(100);
  });
  const std::uint64_t long_wait = cli->send("await", 2, [&](wire::packer& p) {
    p.pack("task_id");
    p.pack(id);
    p.pack("timeout_ms");
    p.pack(60000);
  });
  ASSERT_TRUE(testing::wait_until([&] { return field(call("stats", 0, [](wire::packer&) {}), "running")->via.u64 == 1; }));
  clk->advance(100ms);
  auto timed_out = cli->await(short_wait, 10s);
  ASSERT_TRUE(timed_out);
  EXPECT_EQ(timed_out->code, wire::error_code::timeout);
  EXPECT_EQ(state(id), "running");  // the task goes on
  // The worker's own timer was set when it began to sleep, which may be after the first
  // advance: move time on until it has slept its second.
  ASSERT_TRUE(testing::wait_until([&] {
    clk->advance(100ms);
    return state(id) == "succeeded";
  }));
  auto finished = cli->await(long_wait, 10s);
  ASSERT_TRUE(finished);
  ASSERT_TRUE(finished->ok) << finished->message;
  EXPECT_EQ(str(wire::find(*finished->result, "state")), "succeeded");
}

TEST_F(Tasks, ListStatsAndEvents) {
  start();
  auto sub = msg::subscriber::connect(running->events_endpoint(), {"task_runner."});
  ASSERT_TRUE(sub);
  ASSERT_TRUE(testing::wait_until([&] {
    (void)submit("echo");
    return static_cast<bool>((*sub)->receive(20ms));
  }));
  while ((*sub)->receive(50ms)) {
  }
  const std::string a = id_of(submit("echo"));
  ASSERT_TRUE(becomes(a, "succeeded"));
  const std::string b = id_of(submit("fail"));
  ASSERT_TRUE(becomes(b, "failed"));
  const std::string c = id_of(submit("echo", {}, opts({{"delay_ms", 60000}}), 1));
  ASSERT_TRUE(on("cancel", c).ok);

  std::vector<std::string> seen;
  ASSERT_TRUE(testing::wait_until([&] {
    while (auto ev = (*sub)->receive(10ms)) {
      std::string line = ev->topic + " " + str(wire::find(*ev->body, "task_id"));
      if (auto* attempt = wire::find(*ev->body, "attempt")) line += " " + std::to_string(attempt->via.u64);
      seen.push_back(line);
    }
    return seen.size() >= 5;
  }));
  EXPECT_EQ(seen, (std::vector<std::string>{"task_runner.started " + a + " 1", "task_runner.succeeded " + a,
                                            "task_runner.started " + b + " 1", "task_runner.failed " + b,
                                            "task_runner.cancelled " + c}));

  msg::reply all = call("list", 0, [](wire::packer&) {});
  const msgpack::object* tasks = field(all, "tasks");
  ASSERT_NE(tasks, nullptr);
  ASSERT_GE(tasks->via.array.size, 3u);
  EXPECT_EQ(str(wire::find(tasks->via.array.ptr[0], "task_id")), c);  // newest first
  msg::reply failed = call("list", 1, [](wire::packer& p) {
    p.pack("state");
    p.pack("failed");
  });
  ASSERT_EQ(field(failed, "tasks")->via.array.size, 1u);
  msg::reply stats = call("stats", 0, [](wire::packer&) {});
  EXPECT_EQ(field(stats, "failed")->via.u64, 1u);
  EXPECT_EQ(field(stats, "cancelled")->via.u64, 1u);
  EXPECT_GE(field(stats, "succeeded")->via.u64, 2u);
  EXPECT_EQ(field(stats, "max_concurrency")->via.u64, 64u);
  EXPECT_EQ(field(stats, "queue_limit")->via.u64, 10000u);
  EXPECT_GE(field(stats, "retained")->via.u64, 4u);  // the finished tasks, kept for retention_ms
  EXPECT_GT(field(stats, "retained_bytes")->via.u64, 4 * sizeof(task));
}

TEST_F(Tasks, BadArgumentsAreRefused) {
  start();
  EXPECT_EQ(call("submit", 0, [](wire::packer&) {}).code, wire::error_code::invalid_args);  // no kind
  EXPECT_EQ(submit("teleport").code, wire::error_code::invalid_args);
  EXPECT_EQ(submit("echo", {}, opts({{"max_attempts", 0}}), 1).code, wire::error_code::invalid_args);
  EXPECT_EQ(submit("echo", {}, opts({{"timeout_ms", 0}}), 1).code, wire::error_code::invalid_args);
  EXPECT_EQ(submit("echo", {}, [](wire::packer& p) { p.pack("key"); p.pack(""); }, 1).code,
            wire::error_code::invalid_args);
  EXPECT_EQ(submit("echo", [](wire::packer& p) { p.pack(std::string(70000, 'x')); }).code, wire::error_code::too_large);
  EXPECT_EQ(on("status", "t-12345").code, wire::error_code::not_found);
  EXPECT_EQ(on("status", "nonsense").code, wire::error_code::not_found);
  EXPECT_EQ(on("await", "t-12345").code, wire::error_code::not_found);
  EXPECT_EQ(call("list", 1, [](wire::packer& p) { p.pack("state"); p.pack("dreaming"); }).code,
            wire::error_code::invalid_args);
  EXPECT_EQ(call("status", 0, [](wire::packer&) {}).code, wire::error_code::invalid_args);
}

TEST_F(Tasks, TheJournalKeepsResultsKeysAndQueuedTasksAcrossARestart) {
  start();
  const writer key = [](wire::packer& p) {
    p.pack("key");
    p.pack("once");
  };
  const std::string done = id_of(submit("echo", map_of("n", 7), key, 1));
  ASSERT_TRUE(becomes(done, "succeeded"));
  const std::string later = id_of(submit("echo", map_of("n", 8), opts({{"delay_ms", 5000}}), 1));
  restart();
  msg::reply st = on("status", done);
  ASSERT_TRUE(st.ok) << st.message;
  EXPECT_EQ(str(field(st, "state")), "succeeded");
  EXPECT_EQ(wire::find(*field(st, "result"), "n")->via.u64, 7u);
  msg::reply again = submit("echo", {}, key, 1);
  EXPECT_EQ(id_of(again), done);
  EXPECT_TRUE(field(again, "existing")->via.boolean);
  EXPECT_EQ(state(later), "queued");
  clk->advance(5s);
  EXPECT_TRUE(becomes(later, "succeeded"));
  const std::string next = id_of(submit("echo"));
  EXPECT_NE(next, done);  // numbers go on after the restart
  EXPECT_NE(next, later);
}

TEST_F(Tasks, AKindRegisteredInCxxRuns) {
  the_app.kind_table().add("double", [](job& j) {
    const msgpack::object* n = wire::find(j.args_object(), "n");
    j.succeed(wire::value::of_int(2 * static_cast<std::int64_t>(n->via.u64)));
  });
  start();
  msg::reply done = call("await", 1, [&](wire::packer& p) {
    p.pack("task_id");
    p.pack(id_of(submit("double", map_of("n", 21))));
  });
  ASSERT_EQ(str(field(done, "state")), "succeeded") << done.message;
  EXPECT_EQ(field(done, "result")->via.i64, 42);
}

TEST_F(Tasks, ACrashOfTheServerLosesNoTaskAndItsRunningOnesRunAgain) {
  start();
  const std::string done = id_of(submit("echo"));
  ASSERT_TRUE(becomes(done, "succeeded"));
  const std::string busy = id_of(submit("sleep", map_of("ms", 1000)));
  ASSERT_TRUE(becomes(busy, "running"));
  EXPECT_EQ(call("crash", 0, [](wire::packer&) {}).code, wire::error_code::internal);
  // The restarted server has the book: the finished task as it was, the running one again.
  ASSERT_TRUE(testing::wait_until([&] {
    msg::reply st = on("status", busy);
    return st.ok && field(st, "attempts")->via.u64 == 2 && str(field(st, "state")) == "running";
  }));
  EXPECT_EQ(state(done), "succeeded");
  ASSERT_TRUE(testing::wait_until([&] {  // the new worker's sleep timer starts when it does
    clk->advance(100ms);
    return state(busy) == "succeeded";
  }));
  // The previous server's worker was stopped, not left to run: one worker ran it to the end.
  EXPECT_TRUE(testing::wait_until([&] {
    return field(call("stats", 0, [](wire::packer&) {}), "running")->via.u64 == 0;
  }));
  msg::reply tree = call("tree", 0, [](wire::packer&) {});
  ASSERT_TRUE(tree.ok);
}

TEST_F(Tasks, TheJournalIsCompactedAsItGrowsAndStillRestoresEverything) {
  options o;
  o.compact_after = 100;
  start(o);
  std::vector<std::string> ids;
  for (int i = 0; i < 150; ++i) ids.push_back(id_of(submit("echo", map_of("i", static_cast<std::uint64_t>(i)))));
  for (const std::string& id : ids) ASSERT_TRUE(becomes(id, "succeeded")) << id;
  ASSERT_TRUE(testing::wait_until([&] {
    msg::reply info = call("info", 0, [](wire::packer&) {});
    return wire::find(*field(info, "journal"), "compactions")->via.u64 >= 1;
  }));
  restart(o);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    msg::reply st = on("status", ids[i]);
    ASSERT_EQ(str(field(st, "state")), "succeeded") << ids[i];
    EXPECT_EQ(wire::find(*field(st, "result"), "i")->via.u64, i);
  }
  EXPECT_GE(field(call("stats", 0, [](wire::packer&) {}), "succeeded")->via.u64, 150u);
}

// A full disk under the journal: submit answers an error and accepts nothing, the journal
// stays readable, and submits work again once there is space.
TEST_F(Tasks, AFullDiskRefusesSubmitsCorruptsNothingAndRecovers) {
  const std::filesystem::path disk = data_dir / "small-disk";
  std::filesystem::create_directories(disk);
  if (::system(("mount -t tmpfs -o size=64k tmpfs " + disk.string() + " 2>/dev/null").c_str()) != 0)
    GTEST_SKIP() << "cannot mount a small tmpfs here (needs root): the full-disk case is not exercised";
  struct on_exit {
    std::function<void()> run;
    ~on_exit() { run(); }
  } cleanup{[&] {  // the app goes first: it holds the journal open
    cli.reset();
    if (running) running->stop();
    running.reset();
    (void)::system(("umount " + disk.string()).c_str());
  }};
  options o;
  o.journal_path = (disk / "task_runner.journal").string();
  start(o);
  const std::string before = id_of(submit("echo", map_of("n", 1)));
  ASSERT_TRUE(becomes(before, "succeeded"));
  {
    std::ofstream fill(disk / "filler", std::ios::binary);  // every block left
    const std::string block(4096, 'x');
    while (fill.write(block.data(), block.size())) {
    }
  }
  // The journal's last block still has room for a few records; then the disk is full.
  std::size_t accepted = 1;
  msg::reply refused;
  for (int i = 0; i < 1000; ++i) {
    msg::reply r = submit("echo", map_of("n", 2));
    if (!r.ok) {
      refused = r;
      break;
    }
    ++accepted;
  }
  ASSERT_FALSE(refused.ok) << "the journal never ran out of space";
  EXPECT_EQ(refused.code, wire::error_code::unavailable) << refused.message;
  EXPECT_NE(refused.message.find("No space left"), std::string::npos) << refused.message;
  const auto listed = [&] {
    msg::reply l = call("list", 1, [](wire::packer& p) {
      p.pack("limit");
      p.pack(100000);
    });
    return field(l, "tasks")->via.array.size;
  };
  EXPECT_EQ(listed(), accepted);  // the refused one was not half-accepted
  std::filesystem::remove(disk / "filler");
  const std::string after = id_of(submit("echo", map_of("n", 3)));
  ASSERT_TRUE(becomes(after, "succeeded"));
  restart(o);  // the journal reads back whole: every accepted task, not the refused one
  EXPECT_EQ(state(before), "succeeded");
  EXPECT_EQ(state(after), "succeeded");
  EXPECT_EQ(listed(), accepted + 1);
}

}  // namespace
}  // namespace canopy::task_app
