// Links, monitors and exit signals: SEMANTICS.md lines 38-42.
#include <gtest/gtest.h>

#include <stdexcept>

#include "canopy/core/detail/exit_hook.hpp"
#include "canopy/testing/log_capture.hpp"
#include "test_support.hpp"

namespace canopy::test {
namespace {

using namespace std::chrono_literals;

// A process that crashes on crash_now, exits on stop_now, and records the rest.
scripted::on_message_fn obedient(std::shared_ptr<recorder> rec) {
  auto record = record_into(rec);
  return [record](scripted& self, message& m) {
    if (m.is_call()) {  // answers every call: tests use a call as a barrier
      self.reply(m.reply_to(), 0);
      return;
    }
    if (m.get<crash_now>()) throw std::runtime_error("boom");
    if (auto* s = m.get<stop_now>()) {
      self.exit(s->reason);
      return;
    }
    record(self, m);
  };
}

class Links : public ::testing::Test {
 protected:
  testing::log_capture logs;
  runtime rt{{.threads = 2, .logger = logs.logger(), .shutdown_timeout = 100ms}};
  std::shared_ptr<recorder> rec = std::make_shared<recorder>();

  pid spawn_obedient(trap_exit trap = trap_exit::off) {
    return rt.spawn<scripted>(obedient(rec), [trap](scripted& self) { self.process_flag(trap); });
  }
  // Spawns a process that links to `other` in init, then tells the test it is done.
  pid spawn_linked_to(const pid& other, trap_exit trap = trap_exit::off) {
    auto linked = std::make_shared<recorder>();
    pid p = rt.spawn<scripted>(obedient(rec), [other, trap, linked](scripted& self) {
      self.process_flag(trap);
      self.link(other);
      linked->push("linked");
    });
    EXPECT_TRUE(linked->wait_for(1));
    return p;
  }
  // A call round trip: every message this thread sent `p` before has been handled, and
  // `p` was alive to answer.
  void sync(const pid& p) { EXPECT_TRUE(rt.call<int>(p, 0, 20s)); }
};

TEST_F(Links, Line38_LinkIsBidirectional) {
  pid a = spawn_obedient();
  pid b = spawn_linked_to(a);
  auto wa = rt.watch(a);
  auto wb = rt.watch(b);
  rt.send(a, crash_now{});  // a dies; b, linked, dies with the same reason
  EXPECT_EQ(wa.wait(20s)->what(), exit_reason::kind::error);
  EXPECT_EQ(wb.wait(20s)->to_string(), "{error,std::runtime_error,boom}");

  pid c = spawn_obedient();
  pid d = spawn_linked_to(c);
  auto wc = rt.watch(c);
  rt.send(d, stop_now{exit_reason::other("fatal")});  // the other direction
  EXPECT_EQ(wc.wait(20s)->to_string(), "fatal");
}

TEST_F(Links, Line38_OneLinkPerPairSoOneUnlinkRemovesIt) {
  pid a = spawn_obedient();
  auto done = std::make_shared<recorder>();
  pid b = rt.spawn<scripted>(obedient(rec), [a, done](scripted& self) {
    self.link(a);
    self.link(a);  // no second link
    self.unlink(a);
    done->push("unlinked");
  });
  ASSERT_TRUE(done->wait_for(1));
  auto wa = rt.watch(a);
  rt.send(a, crash_now{});
  ASSERT_TRUE(wa.wait(20s));
  sync(b);
  EXPECT_TRUE(rt.is_alive(b));
}

TEST_F(Links, Line38_LinkingToADeadProcessDeliversNoproc) {
  pid dead = spawn_obedient();
  auto w = rt.watch(dead);
  rt.send(dead, stop_now{exit_reason::normal()});
  ASSERT_TRUE(w.wait(20s));

  pid trapper = spawn_linked_to(dead, trap_exit::on);
  ASSERT_TRUE(rec->wait_for(1));
  EXPECT_EQ(rec->lines().at(0), "exit noproc");
  EXPECT_TRUE(rt.is_alive(trapper));

  // Without trapping, the noproc exit signal kills the linker.
  pid linker = rt.spawn<scripted>([dead](scripted& self, message& m) {
    if (m.get<int>()) self.link(dead);
  });
  auto wn = rt.watch(linker);  // set up while the linker is alive, so noproc is its reason
  rt.send(linker, 1);
  EXPECT_EQ(wn.wait(20s)->what(), exit_reason::kind::noproc);
}

TEST_F(Links, Line39_NormalExitSignalIsIgnoredWithoutTrapping) {
  pid a = spawn_obedient();
  pid b = spawn_linked_to(a);
  auto wa = rt.watch(a);
  rt.send(a, stop_now{exit_reason::normal()});
  ASSERT_TRUE(wa.wait(20s)->is_normal());
  rt.exit(b, exit_reason::normal());  // a direct normal signal is ignored too
  sync(b);
  EXPECT_TRUE(rt.is_alive(b));
}

TEST_F(Links, Line39_NormalExitSignalArrivesAsMessageWhenTrapping) {
  pid a = spawn_obedient();
  pid b = spawn_linked_to(a, trap_exit::on);
  rt.send(a, stop_now{exit_reason::normal()});
  ASSERT_TRUE(rec->wait_for(1));
  EXPECT_EQ(rec->lines().at(0), "exit normal");
  EXPECT_TRUE(rt.is_alive(b));
}

TEST_F(Links, Line40_AbnormalSignalKillsNonTrappingWithThatReason) {
  pid a = spawn_obedient();
  auto w = rt.watch(a);
  rt.exit(a, exit_reason::other("overheated"));
  EXPECT_EQ(w.wait(20s)->to_string(), "overheated");
}

TEST_F(Links, Line40_TrappingReceiverGetsExitMessageAndLivesOn) {
  pid a = spawn_obedient();
  pid b = spawn_linked_to(a, trap_exit::on);
  rt.send(a, crash_now{});
  ASSERT_TRUE(rec->wait_for(1));
  EXPECT_EQ(rec->lines().at(0), "exit {error,std::runtime_error,boom}");
  EXPECT_TRUE(rt.is_alive(b));
}

TEST_F(Links, Line41_KillCannotBeTrappedAndLinksSeeKilled) {
  pid victim = spawn_obedient(trap_exit::on);
  spawn_linked_to(victim, trap_exit::on);  // the observer
  auto w = rt.watch(victim);
  rt.exit(victim, exit_reason::kill());
  EXPECT_EQ(w.wait(20s)->what(), exit_reason::kind::killed);
  ASSERT_TRUE(rec->wait_for(1));
  EXPECT_EQ(rec->lines().at(0), "exit killed");
}

TEST_F(Links, Line41_KilledTravelsAlongLinksAsAnOrdinaryReason) {
  pid victim = spawn_obedient();
  pid bystander = spawn_linked_to(victim);  // does not trap: dies with killed
  auto wb = rt.watch(bystander);
  rt.exit(victim, exit_reason::kill());
  EXPECT_EQ(wb.wait(20s)->what(), exit_reason::kind::killed);
}

TEST_F(Links, Line42_MonitorsAreOneWayAndEachYieldsItsOwnDown) {
  pid target = spawn_obedient();
  auto refs = std::make_shared<recorder>();
  auto downs = std::make_shared<recorder>();
  pid watcher = rt.spawn<scripted>(
      [downs](scripted&, message& m) {
        if (auto* d = m.get<down_message>()) downs->push(std::to_string(d->ref.value()) + " " + d->reason.to_string());
      },
      [target, refs](scripted& self) {
        refs->push(std::to_string(self.monitor(target).value()));
        refs->push(std::to_string(self.monitor(target).value()));
      });
  ASSERT_TRUE(refs->wait_for(2));
  rt.send(target, stop_now{exit_reason::other("done")});
  ASSERT_TRUE(downs->wait_for(2));
  auto r = refs->lines();
  auto d = downs->lines();
  EXPECT_NE(r[0], r[1]);
  EXPECT_EQ(d[0], r[0] + " done");
  EXPECT_EQ(d[1], r[1] + " done");

  // One way: the watcher's own death does nothing to a monitored process.
  pid target2 = spawn_obedient();
  auto ready = std::make_shared<recorder>();
  pid watcher2 = rt.spawn<scripted>(obedient(rec), [target2, ready](scripted& self) {
    self.monitor(target2);
    ready->push("ok");
  });
  ASSERT_TRUE(ready->wait_for(1));
  auto w2 = rt.watch(watcher2);
  rt.send(watcher2, crash_now{});
  ASSERT_TRUE(w2.wait(20s));
  sync(target2);
  EXPECT_TRUE(rt.is_alive(target2));
  EXPECT_TRUE(rt.is_alive(watcher));
}

TEST_F(Links, Line42_MonitoringADeadProcessYieldsDownNoprocAtOnce) {
  pid dead = spawn_obedient();
  auto w = rt.watch(dead);
  rt.send(dead, stop_now{exit_reason::normal()});
  ASSERT_TRUE(w.wait(20s));
  rt.spawn<scripted>(obedient(rec), [dead](scripted& self) { self.monitor(dead); });
  ASSERT_TRUE(rec->wait_for(1));
  EXPECT_EQ(rec->lines().at(0), "down noproc");
  // A thread's watch says the same.
  EXPECT_EQ(rt.watch(dead).wait(20s)->what(), exit_reason::kind::noproc);
}

TEST_F(Links, DemonitorDropsTheDownMessage) {
  pid target = spawn_obedient();
  pid watcher = rt.spawn<scripted>(obedient(rec), [target](scripted& self) {
    auto ref = self.monitor(target);
    self.demonitor(ref);
    self.send(target, stop_now{exit_reason::normal()});
  });
  auto w = rt.watch(target);
  ASSERT_TRUE(w.wait(20s));
  sync(watcher);
  EXPECT_EQ(rec->size(), 0u);
}

TEST_F(Links, SpawnLinkTiesTheChildBeforeItRuns) {
  // The child crashes in init, before any link() it could have made itself.
  auto ready = std::make_shared<recorder>();
  pid parent = rt.spawn<scripted>(obedient(rec), [ready](scripted& self) {
    self.process_flag(trap_exit::on);
    self.spawn_link<scripted>(scripted::on_message_fn{},
                              [](scripted&) { throw std::runtime_error("init failed"); });
    ready->push("spawned");
  });
  ASSERT_TRUE(rec->wait_for(1));
  EXPECT_EQ(rec->lines().at(0), "exit {error,std::runtime_error,init failed}");
  EXPECT_TRUE(rt.is_alive(parent));
  EXPECT_EQ(logs.count("crashed"), 1u);
  EXPECT_EQ(logs.count("last message: none (in on_start)"), 1u);
}

TEST_F(Links, SpawnMonitorReportsTheChildsExit) {
  auto refs = std::make_shared<recorder>();
  rt.spawn<scripted>(
      [rec = rec, refs](scripted&, message& m) {
        if (auto* d = m.get<down_message>())
          rec->push(std::to_string(d->ref.value()) + " " + d->reason.to_string());
      },
      [refs](scripted& self) {
        monitor_ref ref;
        self.spawn_monitor<scripted>(ref, scripted::on_message_fn{},
                                     [](scripted& child) { child.exit(exit_reason::other("quit")); });
        refs->push(std::to_string(ref.value()));
      });
  ASSERT_TRUE(refs->wait_for(1));
  ASSERT_TRUE(rec->wait_for(1));
  EXPECT_EQ(rec->lines().at(0), refs->lines().at(0) + " quit");
}

// monitor_and_exit: how supervisors stop a child, one signal doing unlink + monitor + exit.
struct stop_child_with {
  exit_reason reason;
};

class MonitorAndExit : public Links {
 protected:
  // A parent trapping exits, linked to one child (trapping or not); on stop_child_with it
  // stops the child with monitor_and_exit. It records what it receives into `rec`.
  pid spawn_parent(trap_exit child_traps, std::shared_ptr<pid> child_out) {
    auto child_rec = child_events;
    auto ready = std::make_shared<recorder>();
    pid parent = rt.spawn<scripted>(
        [rec = rec, child_out](scripted& self, message& m) {
          if (m.is_call()) {
            self.reply(m.reply_to(), 0);
          } else if (auto* s = m.get<stop_child_with>()) {
            self.monitor_and_exit(*child_out, s->reason);
          } else if (auto* e = m.get<exit_message>()) {
            rec->push("exit " + e->reason.to_string());
          } else if (auto* d = m.get<down_message>()) {
            rec->push("down " + d->reason.to_string());
          }
        },
        [child_traps, child_out, child_rec, ready](scripted& self) {
          self.process_flag(trap_exit::on);
          *child_out = self.spawn_link<scripted>(record_into(child_rec), [child_traps](scripted& c) { c.process_flag(child_traps); });
          ready->push("ready");
        });
    EXPECT_TRUE(ready->wait_for(1));
    return parent;
  }
  std::shared_ptr<recorder> child_events = std::make_shared<recorder>();
};

TEST_F(MonitorAndExit, StopsTheChildAndReportsADownButNoExitSignal) {
  auto child = std::make_shared<pid>();
  pid parent = spawn_parent(trap_exit::off, child);
  auto wc = rt.watch(*child);
  rt.send(parent, stop_child_with{exit_reason::shutdown()});
  EXPECT_EQ(wc.wait(20s)->to_string(), "shutdown");
  ASSERT_TRUE(rec->wait_for(1));
  sync(parent);  // an exit signal via the link would have been queued before the down
  EXPECT_EQ(rec->lines(), std::vector<std::string>{"down shutdown"});
}

TEST_F(MonitorAndExit, KillIsReportedAsKilled) {
  auto child = std::make_shared<pid>();
  pid parent = spawn_parent(trap_exit::on, child);  // kill is not trappable
  rt.send(parent, stop_child_with{exit_reason::kill()});
  ASSERT_TRUE(rec->wait_for(1));
  sync(parent);
  EXPECT_EQ(rec->lines(), std::vector<std::string>{"down killed"});
}

TEST_F(MonitorAndExit, ATrappingChildGetsTheSignalAsAMessageAndStaysUnlinked) {
  auto child = std::make_shared<pid>();
  pid parent = spawn_parent(trap_exit::on, child);
  rt.send(parent, stop_child_with{exit_reason::shutdown()});
  ASSERT_TRUE(child_events->wait_for(1));
  EXPECT_EQ(child_events->lines().at(0), "exit shutdown");
  EXPECT_TRUE(rt.is_alive(*child));
  // Its later exit reaches the parent through the monitor only: the link is gone.
  rt.exit(*child, exit_reason::kill());
  ASSERT_TRUE(rec->wait_for(1));
  sync(parent);
  EXPECT_EQ(rec->lines(), std::vector<std::string>{"down killed"});
}

TEST_F(MonitorAndExit, ADeadChildYieldsDownNoproc) {
  auto child = std::make_shared<pid>();
  pid parent = spawn_parent(trap_exit::on, child);
  auto wc = rt.watch(*child);
  rt.exit(*child, exit_reason::kill());
  ASSERT_TRUE(wc.wait(20s));
  ASSERT_TRUE(rec->wait_for(1));  // the exit signal through the link (killed)
  rt.send(parent, stop_child_with{exit_reason::shutdown()});
  ASSERT_TRUE(rec->wait_for(2));
  EXPECT_EQ(rec->lines(), (std::vector<std::string>{"exit killed", "down noproc"}));
}

}  // namespace
}  // namespace canopy::test

namespace canopy::test {
namespace {

// Exit hooks attached from another thread: adopted and run at the target's exit, or run at
// once when the target is already gone.
class recording_hook final : public detail::exit_hook {
 public:
  explicit recording_hook(std::shared_ptr<recorder> rec) : rec_(std::move(rec)) {}
  [[nodiscard]] const void* tag() const noexcept override { return this; }
  void on_exit(const pid&, const exit_reason& reason) noexcept override { rec_->push("hook " + reason.to_string()); }

 private:
  std::shared_ptr<recorder> rec_;
};

TEST_F(Links, AnAttachedExitHookRunsWhenTheTargetExitsBeforeItsWatchersAreTold) {
  pid p = spawn_obedient();
  detail::attach_exit_hook(p, std::make_unique<recording_hook>(rec));
  sync(p);  // adopted
  EXPECT_EQ(rec->size(), 0u);
  auto w = rt.watch(p);
  rt.send(p, stop_now{exit_reason::other("done")});
  ASSERT_TRUE(w.wait(20s));
  EXPECT_EQ(rec->lines(), std::vector<std::string>{"hook done"});
}

TEST_F(Links, AnExitHookForADeadProcessRunsAtOnceWithNoproc) {
  pid p = spawn_obedient();
  auto w = rt.watch(p);
  rt.exit(p, exit_reason::kill());
  ASSERT_TRUE(w.wait(20s));
  detail::attach_exit_hook(p, std::make_unique<recording_hook>(rec));
  EXPECT_EQ(rec->lines(), std::vector<std::string>{"hook noproc"});
}

}  // namespace
}  // namespace canopy::test
