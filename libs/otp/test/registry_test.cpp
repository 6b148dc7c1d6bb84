// Registry: SEMANTICS.md lines 43-45, via names, partitions, and the registry's own life.
#include "canopy/otp/registry.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "canopy/otp/gen_server.hpp"
#include "canopy/otp/supervisor.hpp"
#include "canopy/testing/log_capture.hpp"
#include "canopy/testing/wait.hpp"
#include "test_processes.hpp"

namespace canopy::test {
namespace {

using namespace std::chrono_literals;
using names = registry<std::string>;
using tagged = registry<std::string, int>;

class Registry : public ::testing::Test {
 protected:
  testing::log_capture logs;
  runtime rt{{.threads = 2, .logger = logs.logger(), .shutdown_timeout = 1s}};

  pid puppet_process() { return rt.spawn<puppet>(); }

  template <class R>
  R start_registry(registry_options options) {
    auto r = R::start(rt, std::move(options));
    EXPECT_TRUE(r) << r.error().to_string();
    return *r;
  }

  // The pids in a lookup, sorted, for order-free comparison.
  template <class E>
  static std::vector<pid> owners(const std::vector<E>& entries) {
    std::vector<pid> out;
    for (const auto& e : entries) out.push_back(e.owner);
    std::sort(out.begin(), out.end(), [](const pid& a, const pid& b) { return a.to_string() < b.to_string(); });
    return out;
  }
};

TEST_F(Registry, RegisterLookupUnregisterAndKeys) {
  auto reg = start_registry<tagged>({.name = "reg"});
  pid p = puppet_process();
  ASSERT_TRUE(*act_as(rt, p, [&] { return reg.register_key("a", 1).has_value(); }));
  ASSERT_TRUE(*act_as(rt, p, [&] { return reg.register_key("b", 2).has_value(); }));
  auto found = reg.lookup("a");
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].owner, p);
  EXPECT_EQ(found[0].value, 1);
  EXPECT_TRUE(reg.lookup("nobody").empty());
  // Its own keys, in registration order (from inside the process); from elsewhere, all of
  // them in no particular order.
  EXPECT_EQ(*act_as(rt, p, [&] { return reg.keys(p); }), (std::vector<std::string>{"a", "b"}));
  auto from_outside = reg.keys(p);
  std::sort(from_outside.begin(), from_outside.end());
  EXPECT_EQ(from_outside, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(reg.values("b", p), std::vector<int>{2});
  EXPECT_EQ(reg.count(), 2u);

  ASSERT_TRUE(*act_as(rt, p, [&] {
    reg.unregister("a");
    return true;
  }));
  EXPECT_TRUE(reg.lookup("a").empty());
  EXPECT_EQ(reg.keys(p), std::vector<std::string>{"b"});
  EXPECT_EQ(*act_as(rt, p, [&] { return reg.keys(p); }), std::vector<std::string>{"b"});
  EXPECT_EQ(reg.count(), 1u);
}

TEST_F(Registry, Line44_ATakenUniqueKeyAnswersAlreadyRegisteredNamingTheHolder) {
  auto reg = start_registry<names>({.name = "reg"});
  pid holder = puppet_process();
  pid other = puppet_process();
  ASSERT_TRUE(*act_as(rt, holder, [&] { return reg.register_key("k").has_value(); }));
  auto again = *act_as(rt, other, [&] { return reg.register_key("k"); });
  ASSERT_FALSE(again);
  EXPECT_EQ(again.code(), errc::already_registered);
  EXPECT_EQ(again.error().context(), holder.to_string());
  // The holder itself registering it twice is refused the same way.
  auto twice = *act_as(rt, holder, [&] { return reg.register_key("k"); });
  EXPECT_EQ(twice.code(), errc::already_registered);
  EXPECT_EQ(owners(reg.lookup("k")), std::vector<pid>{holder});
}

TEST_F(Registry, Line43_KeysVanishBeforeTheExitIsObserved) {
  auto reg = start_registry<names>({.name = "reg"});
  pid p = puppet_process();
  ASSERT_TRUE(*act_as(rt, p, [&] { return reg.register_key("x").has_value() && reg.register_key("y").has_value(); }));
  auto watch = rt.watch(p);
  rt.exit(p, exit_reason::kill());
  ASSERT_TRUE(watch.wait(20s));
  // No waiting: the entries went before the exit was reported.
  EXPECT_TRUE(reg.lookup("x").empty());
  EXPECT_TRUE(reg.lookup("y").empty());
  EXPECT_TRUE(reg.keys(p).empty());
  EXPECT_EQ(reg.count(), 0u);
}

TEST_F(Registry, Line43_ADeadHoldersKeyCanBeTaken) {
  auto reg = start_registry<names>({.name = "reg"});
  pid first = puppet_process();
  ASSERT_TRUE(*act_as(rt, first, [&] { return reg.register_key("k").has_value(); }));
  auto watch = rt.watch(first);
  rt.exit(first, exit_reason::kill());
  ASSERT_TRUE(watch.wait(20s));
  pid second = puppet_process();
  ASSERT_TRUE(*act_as(rt, second, [&] { return reg.register_key("k").has_value(); }));
  EXPECT_EQ(owners(reg.lookup("k")), std::vector<pid>{second});
}

TEST_F(Registry, Line45_DuplicateKeysHoldManyEntriesAndDispatchReachesThemAll) {
  auto reg = start_registry<tagged>({.name = "topics", .keys = registry_keys::duplicate});
  pid a = puppet_process();
  pid b = puppet_process();
  ASSERT_TRUE(*act_as(rt, a, [&] { return reg.register_key("news", 1).has_value(); }));
  ASSERT_TRUE(*act_as(rt, a, [&] { return reg.register_key("news", 2).has_value(); }));  // twice: allowed
  ASSERT_TRUE(*act_as(rt, b, [&] { return reg.register_key("news", 3).has_value(); }));
  EXPECT_EQ(reg.lookup("news").size(), 3u);
  EXPECT_EQ(reg.count_match("news", [](int v) { return v >= 2; }), 2u);
  auto vals = reg.values("news", a);
  std::sort(vals.begin(), vals.end());
  EXPECT_EQ(vals, (std::vector<int>{1, 2}));

  int delivered = 0;
  EXPECT_TRUE(reg.dispatch("news", [&](const std::vector<tagged::entry>& subscribers) {
    for (const auto& s : subscribers) {
      rt.send(s.owner, std::string("hello"));
      ++delivered;
    }
  }));
  EXPECT_EQ(delivered, 3);
  EXPECT_FALSE(reg.dispatch("sports", [](const auto&) { ADD_FAILURE() << "no subscribers"; }));

  // Unregistering removes all of the caller's entries under the key, and only those.
  ASSERT_TRUE(*act_as(rt, a, [&] {
    reg.unregister("news");
    return true;
  }));
  EXPECT_EQ(owners(reg.lookup("news")), std::vector<pid>{b});
}

TEST_F(Registry, SelectAndUpdateValue) {
  auto reg = start_registry<tagged>({.name = "reg"});
  pid a = puppet_process();
  pid b = puppet_process();
  ASSERT_TRUE(*act_as(rt, a, [&] { return reg.register_key("a1", 10).has_value(); }));
  ASSERT_TRUE(*act_as(rt, b, [&] { return reg.register_key("b1", 20).has_value(); }));
  auto big = reg.select([](const std::string&, const pid&, int v) { return v > 15; });
  ASSERT_EQ(big.size(), 1u);
  EXPECT_EQ(std::get<0>(big[0]), "b1");
  EXPECT_EQ(std::get<1>(big[0]), b);

  auto updated = *act_as(rt, a, [&] { return reg.update_value("a1", [](int v) { return v + 5; }); });
  ASSERT_TRUE(updated);
  EXPECT_EQ(updated->first, 15);
  EXPECT_EQ(updated->second, 10);
  EXPECT_EQ(reg.lookup("a1").at(0).value, 15);
  // Only the holder may update its value.
  auto refused = *act_as(rt, b, [&] { return reg.update_value("a1", [](int v) { return v * 100; }); });
  EXPECT_EQ(refused.code(), errc::not_found);
  EXPECT_EQ(reg.lookup("a1").at(0).value, 15);
}

TEST_F(Registry, MetaAndPartitions) {
  auto reg = start_registry<names>({.name = "reg"});
  EXPECT_EQ(reg.partitions(), rt.scheduler_threads());  // the default: one per scheduler
  reg.put_meta("custom", std::string("value"));
  auto m = reg.meta("custom");
  ASSERT_TRUE(m);
  EXPECT_EQ(std::any_cast<std::string>(*m), "value");
  EXPECT_FALSE(reg.meta("missing"));

  auto many = start_registry<names>({.name = "many", .partitions = 8});
  EXPECT_EQ(many.partitions(), 8u);
  pid p = puppet_process();
  ASSERT_TRUE(*act_as(rt, p, [&] {
    for (int i = 0; i < 100; ++i)
      if (!many.register_key("k" + std::to_string(i))) return false;
    return true;
  }));
  EXPECT_EQ(many.count(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(many.lookup("k" + std::to_string(i)).size(), 1u);
}

TEST_F(Registry, FoundByNameWithItsTypes) {
  auto reg = start_registry<names>({.name = "by_name"});
  auto found = names::whereis(rt, "by_name");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->owner(), reg.owner());
  EXPECT_EQ(rt.whereis("by_name"), reg.owner());
  EXPECT_FALSE(tagged::whereis(rt, "by_name"));  // other value type: not this registry
  EXPECT_FALSE(names::whereis(rt, "nope"));

  auto dup = names::start(rt, {.name = "by_name"});
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.code(), errc::already_started);
  auto unnamed = names::start(rt, {});
  EXPECT_EQ(unnamed.code(), errc::invalid_argument);
}

TEST_F(Registry, AStoppedRegistryIsEmptyAndRefusesRegistrations) {
  auto reg = start_registry<names>({.name = "reg"});
  pid p = puppet_process();
  ASSERT_TRUE(*act_as(rt, p, [&] { return reg.register_key("k").has_value(); }));
  auto watch = rt.watch(reg.owner());
  rt.exit(reg.owner(), exit_reason::shutdown());
  ASSERT_TRUE(watch.wait(20s));
  EXPECT_FALSE(reg.alive());
  EXPECT_TRUE(reg.lookup("k").empty());
  EXPECT_FALSE(names::whereis(rt, "reg"));
  auto refused = *act_as(rt, p, [&] { return reg.register_key("other"); });
  EXPECT_EQ(refused.code(), errc::noproc);
  // The registered process lives on, and its exit (with the registry gone) is harmless.
  EXPECT_TRUE(rt.is_alive(p));
  auto pw = rt.watch(p);
  rt.exit(p, exit_reason::kill());
  EXPECT_TRUE(pw.wait(20s));
}

TEST_F(Registry, OutsideAProcessRegisteringIsALogicError) {
  auto reg = start_registry<names>({.name = "reg"});
  EXPECT_THROW((void)reg.register_key("k"), std::logic_error);
}

// ---- via names ----------------------------------------------------------------------------

struct get_id {};

class keyed_worker final : public gen_server {
 public:
  explicit keyed_worker(int id) : id_(id) {}

 protected:
  result handle_call(message& m, const reply_address&) override {
    if (m.get<get_id>()) return reply(id_);
    return noreply();
  }
  result handle_cast(message& m) override {
    if (auto* n = m.get<int>()) id_ = *n;
    return noreply();
  }

 private:
  int id_;
};

TEST_F(Registry, ViaNamesStartCallAndCastAServerByItsKey) {
  auto reg = start_registry<names>({.name = "workers"});
  auto w = gen_server::start<keyed_worker>(rt, {.name = via(reg, "w1")}, 7);
  ASSERT_TRUE(w);
  EXPECT_EQ(reg.lookup("w1").at(0).owner, *w);
  EXPECT_EQ(rt.resolve(via(reg, "w1")), *w);
  EXPECT_EQ(*gen_server::call<int>(rt, via(reg, "w1"), get_id{}), 7);
  gen_server::cast(rt, via(reg, "w1"), 9);
  EXPECT_EQ(*gen_server::call<int>(rt, via(reg, "w1"), get_id{}), 9);

  // The key is taken while the server lives: a second start answers already_started.
  auto again = gen_server::start<keyed_worker>(rt, {.name = via(reg, "w1")}, 8);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.code(), errc::already_started);
  EXPECT_EQ(again.error().context(), w->to_string());

  // Once it stops, its name is free and calls by name answer noproc.
  ASSERT_TRUE(gen_server::stop(rt, *w));
  EXPECT_TRUE(reg.lookup("w1").empty());
  auto gone = gen_server::call<int>(rt, via(reg, "w1"), get_id{});
  EXPECT_EQ(gone.code(), errc::noproc);
  EXPECT_NE(gone.error().to_string().find("w1"), std::string::npos);
  gen_server::cast(rt, via(reg, "w1"), 1);  // a no-op, not an error
  EXPECT_TRUE(gen_server::start<keyed_worker>(rt, {.name = via(reg, "w1")}, 3));
}

class failing_init final : public gen_server {
 protected:
  result init() override { return stop(exit_reason::other("no")); }
};

TEST_F(Registry, AServerWhoseInitFailsLeavesItsKeyFree) {
  auto reg = start_registry<names>({.name = "workers"});
  auto failed = gen_server::start<failing_init>(rt, {.name = via(reg, "f")});
  EXPECT_EQ(failed.code(), errc::start_failed);
  EXPECT_TRUE(reg.lookup("f").empty());
}

TEST_F(Registry, ViaNeedsUniqueKeys) {
  auto topics = start_registry<names>({.name = "topics", .keys = registry_keys::duplicate});
  auto w = gen_server::start<keyed_worker>(rt, {.name = via(topics, "t")}, 1);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.code(), errc::invalid_argument);
}

TEST_F(Registry, UnderASupervisorARestartedRegistryIsANewOne) {
  auto sup = supervisor::start(rt, {}, {names::spec({.name = "supervised"})});
  ASSERT_TRUE(sup);
  auto first = names::whereis(rt, "supervised");
  ASSERT_TRUE(first);
  pid p = puppet_process();
  ASSERT_TRUE(*act_as(rt, p, [&] { return first->register_key("k").has_value(); }));
  const pid old_owner = first->owner();
  auto watch = rt.watch(old_owner);
  rt.exit(old_owner, exit_reason::kill());
  ASSERT_TRUE(watch.wait(20s));
  ASSERT_TRUE(testing::wait_until([&] {
    auto r = names::whereis(rt, "supervised");
    return r && r->owner() != old_owner;
  }));
  auto second = names::whereis(rt, "supervised");
  EXPECT_FALSE(first->alive());
  EXPECT_TRUE(second->lookup("k").empty());  // entries belonged to the old one
  EXPECT_TRUE(*act_as(rt, p, [&] { return second->register_key("k").has_value(); }));
}

// Many processes register, look up and exit at once while other threads read: the entries
// stay consistent (run under TSan in CI).
TEST_F(Registry, ConcurrentRegistrationsLookupsAndExits) {
  auto reg = start_registry<registry<int>>({.name = "busy", .partitions = 4});
  static constexpr int workers = 40;
  static constexpr int keys_each = 50;
  std::vector<pid> ps;
  for (int i = 0; i < workers; ++i) ps.push_back(puppet_process());
  std::atomic<bool> stop{false};
  std::atomic<long> seen{0};
  std::thread reader([&] {
    while (!stop.load()) {
      for (int k = 0; k < workers * keys_each; k += 7) seen += static_cast<long>(reg.lookup(k).size());
      (void)reg.count();
    }
  });
  std::vector<std::thread> drivers;
  for (int t = 0; t < 2; ++t) {
    drivers.emplace_back([&, t] {
      for (int i = t; i < workers; i += 2) {
        const int base = i * keys_each;
        auto ok = act_as(rt, ps[static_cast<std::size_t>(i)], [&reg, base] {
          for (int k = 0; k < keys_each; ++k)
            if (!reg.register_key(base + k)) return false;
          return true;
        });
        EXPECT_TRUE(ok && *ok);
      }
    });
  }
  for (auto& d : drivers) d.join();
  EXPECT_EQ(reg.count(), static_cast<std::size_t>(workers * keys_each));
  for (int i = 0; i < workers; i += 2) rt.exit(ps[static_cast<std::size_t>(i)], exit_reason::kill());
  for (int i = 0; i < workers; i += 2) {
    auto w = rt.watch(ps[static_cast<std::size_t>(i)]);
    ASSERT_TRUE(w.wait(20s));
  }
  stop = true;
  reader.join();
  // The registry drops a dead process's keys when its monitor's DOWN arrives, which is not
  // ordered with this thread's watch: wait for it.
  const auto left = static_cast<std::size_t>(workers / 2 * keys_each);
  EXPECT_TRUE(testing::wait_until([&] { return reg.count() == left; })) << reg.count() << " keys, not " << left;
  for (int i = 1; i < workers; i += 2) EXPECT_EQ(reg.keys(ps[static_cast<std::size_t>(i)]).size(), static_cast<std::size_t>(keys_each));
}

}  // namespace
}  // namespace canopy::test
