// Tables: types, access, ownership and heirs (SEMANTICS.md 46), names, atomic counters.
#include "canopy/otp/table.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "canopy/testing/log_capture.hpp"
#include "canopy/testing/wait.hpp"
#include "test_processes.hpp"

namespace canopy::test {
namespace {

using namespace std::chrono_literals;
using scores = table<std::string, int>;

class Table : public ::testing::Test {
 protected:
  testing::log_capture logs;
  runtime rt{{.threads = 2, .logger = logs.logger(), .shutdown_timeout = 1s}};
  pid owner = rt.spawn<puppet>();

  template <class T = scores>
  T create(table_options options) {
    auto t = act_as(rt, owner, [options]() mutable { return T::create(std::move(options)); });
    EXPECT_TRUE(t);
    EXPECT_TRUE(*t) << t->error().to_string();
    return **t;
  }
  void kill_and_wait(const pid& p) {
    auto w = rt.watch(p);
    rt.exit(p, exit_reason::kill());
    ASSERT_TRUE(w.wait(20s));
  }
};

TEST_F(Table, SetInsertLookupEraseAndInsertNew) {
  auto t = create({.access = table_access::everyone});
  EXPECT_TRUE(t.insert("a", 1));
  EXPECT_FALSE(t.insert("a", 2));  // replaced, not new
  EXPECT_EQ(t.lookup("a"), 2);
  EXPECT_FALSE(t.insert_new("a", 3));
  EXPECT_EQ(t.lookup("a"), 2);
  EXPECT_TRUE(t.insert_new("b", 4));
  EXPECT_TRUE(t.member("b"));
  EXPECT_FALSE(t.member("c"));
  EXPECT_EQ(t.lookup("c"), std::nullopt);
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t.erase("a"), 1u);
  EXPECT_EQ(t.erase("a"), 0u);
  EXPECT_EQ(t.tab2list(), (std::vector<std::pair<std::string, int>>{{"b", 4}}));
}

TEST_F(Table, OrderedSetKeepsKeyOrderForTraversals) {
  auto t = create<table<int, std::string>>({.type = table_type::ordered_set, .access = table_access::everyone});
  for (int k : {5, 1, 4, 2, 3}) t.insert(k, std::to_string(k * 10));
  auto all = t.tab2list();
  ASSERT_EQ(all.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(all[static_cast<std::size_t>(i)].first, i + 1);
  auto odd = t.select([](int k, const std::string&) { return k % 2 == 1; });
  EXPECT_EQ(odd.size(), 3u);
  const std::string joined = t.foldl([](int, const std::string& v, std::string acc) { return acc + v + ","; },
                                     std::string());
  EXPECT_EQ(joined, "10,20,30,40,50,");
}

TEST_F(Table, BagHoldsManyDistinctValuesPerKey) {
  auto t = create({.type = table_type::bag, .access = table_access::everyone});
  EXPECT_TRUE(t.insert("k", 1));
  EXPECT_FALSE(t.insert("k", 2));
  EXPECT_FALSE(t.insert("k", 2));  // equal to one already there: not added again
  auto vals = t.lookup_all("k");
  std::sort(vals.begin(), vals.end());
  EXPECT_EQ(vals, (std::vector<int>{1, 2}));
  EXPECT_EQ(t.size(), 2u);
  EXPECT_FALSE(t.insert_new("k", 9));
  EXPECT_EQ(t.erase("k"), 2u);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.update_counter("k", 1, 0).code(), errc::invalid_argument);
}

TEST_F(Table, UpdateCounterIsAtomicAcrossThreadsAndProcesses) {
  auto t = create<table<int, long>>({.access = table_access::everyone});
  EXPECT_EQ(t.update_counter(1, 5).code(), errc::not_found);
  EXPECT_EQ(*t.update_counter(1, 5, 100), 105);
  constexpr int per_worker = 5000;
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i)
    threads.emplace_back([&] {
      for (int n = 0; n < per_worker; ++n) ASSERT_TRUE(t.update_counter(7, 1, 0));
    });
  std::vector<pid> procs{rt.spawn<puppet>(), rt.spawn<puppet>()};
  for (const pid& p : procs)
    threads.emplace_back([&, p] {
      auto ok = act_as(rt, p, [&] {
        for (int n = 0; n < per_worker; ++n)
          if (!t.update_counter(7, 1, 0)) return false;
        return true;
      });
      EXPECT_TRUE(ok && *ok);
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(t.lookup(7), 4L * per_worker);
}

TEST_F(Table, OwnerWritesIsTheDefaultAccess) {
  auto t = create({});
  EXPECT_EQ(t.options().access, table_access::owner_writes);
  ASSERT_TRUE(*act_as(rt, owner, [&] { return t.insert("k", 1); }));
  EXPECT_EQ(t.lookup("k"), 1);  // anyone reads
  EXPECT_THROW(t.insert("k", 2), table_error);  // a non-process thread may not write
  pid other = rt.spawn<puppet>();
  auto refused = act_as(rt, other, [&] { return t.insert("k", 3); });  // throws inside: a crash
  EXPECT_FALSE(refused);
  EXPECT_EQ(t.lookup("k"), 1);
  EXPECT_FALSE(rt.is_alive(other));
}

TEST_F(Table, OwnerOnlyKeepsOthersOut) {
  auto t = create({.access = table_access::owner_only});
  ASSERT_TRUE(*act_as(rt, owner, [&] { return t.insert("k", 1); }));
  EXPECT_EQ(*act_as(rt, owner, [&] { return t.lookup("k"); }), 1);
  EXPECT_THROW((void)t.lookup("k"), table_error);
  EXPECT_THROW((void)t.size(), table_error);
}

TEST_F(Table, Line46_ATableDiesWithItsOwner) {
  auto t = create({.name = "scores"});
  ASSERT_TRUE(scores::whereis(rt, "scores"));
  kill_and_wait(owner);
  EXPECT_FALSE(t.alive());
  EXPECT_THROW((void)t.lookup("k"), table_error);
  EXPECT_FALSE(scores::whereis(rt, "scores"));
  // The name is free again.
  owner = rt.spawn<puppet>();
  auto again = create({.name = "scores"});
  EXPECT_TRUE(again.alive());
}

// Records the table it inherits.
struct inherited_log {
  std::mutex mu;
  std::vector<table_transfer<std::string, int>> got;
};
class heir_process final : public process {
 public:
  explicit heir_process(std::shared_ptr<inherited_log> log) : log_(std::move(log)) {}

 protected:
  void receive(message& m) override {
    if (auto* t = m.get<table_transfer<std::string, int>>()) {
      std::lock_guard lk(log_->mu);
      log_->got.push_back(*t);
    }
    if (m.get<run_as_process>()) {
      m.get<run_as_process>()->fn();
      reply(m.reply_to(), true);
    }
  }

 private:
  std::shared_ptr<inherited_log> log_;
};

TEST_F(Table, Line46_TheHeirInheritsTheTableAndIsTold) {
  auto log = std::make_shared<inherited_log>();
  pid heir = rt.spawn<heir_process>(log);
  auto t = create({.name = "kept", .heir = heir, .heir_data = std::string("for you")});
  ASSERT_TRUE(*act_as(rt, owner, [&] { return t.insert("k", 1); }));
  const pid old_owner = owner;
  kill_and_wait(owner);
  ASSERT_TRUE(testing::wait_until([&] {
    std::lock_guard lk(log->mu);
    return !log->got.empty();
  }));
  {
    std::lock_guard lk(log->mu);
    EXPECT_EQ(log->got[0].from, old_owner);
    EXPECT_EQ(std::any_cast<std::string>(log->got[0].heir_data), "for you");
    EXPECT_EQ(log->got[0].inherited.lookup("k"), 1);
  }
  EXPECT_TRUE(t.alive());
  EXPECT_EQ(t.owner(), heir);
  EXPECT_TRUE(scores::whereis(rt, "kept"));
  // The heir now writes (owner_writes); the old rules hold for everyone else.
  ASSERT_TRUE(*act_as(rt, heir, [&] { return !t.insert("k", 2); }));
  EXPECT_EQ(t.lookup("k"), 2);
  // Inherited once: when the heir exits, the table goes.
  kill_and_wait(heir);
  EXPECT_FALSE(t.alive());
  EXPECT_FALSE(scores::whereis(rt, "kept"));
}

TEST_F(Table, Line46_ADeadHeirInheritsNothing) {
  pid heir = rt.spawn<puppet>();
  auto t = create({.heir = heir});
  kill_and_wait(heir);
  kill_and_wait(owner);
  EXPECT_FALSE(t.alive());
}

TEST_F(Table, NamesAreFoundWithTheirTypesAndAreUnique) {
  auto t = create({.name = "named"});
  auto found = scores::whereis(rt, "named");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->owner(), owner);
  EXPECT_FALSE((table<std::string, long>::whereis(rt, "named")));
  auto dup = act_as(rt, owner, [] { return table<int, int>::create({.name = "named"}); });
  ASSERT_TRUE(dup);
  EXPECT_EQ(dup->code(), errc::already_started);
  auto self_heir = act_as(rt, owner, [this] { return scores::create({.heir = owner}); });
  EXPECT_EQ(self_heir->code(), errc::invalid_argument);
  EXPECT_THROW((void)scores::create({}), table_error);  // outside any process
}

TEST_F(Table, RemoveIsForTheOwner) {
  auto t = create({.name = "gone"});
  pid other = rt.spawn<puppet>();
  EXPECT_FALSE(act_as(rt, other, [&] {
    t.remove();
    return true;
  }));
  EXPECT_TRUE(t.alive());
  ASSERT_TRUE(*act_as(rt, owner, [&] {
    t.remove();
    return true;
  }));
  EXPECT_FALSE(t.alive());
  EXPECT_FALSE(scores::whereis(rt, "gone"));
}

TEST_F(Table, MemoryGrowsWithTheEntries) {
  auto t = create<table<int, int>>({.access = table_access::everyone});
  const std::size_t empty = t.memory();
  for (int i = 0; i < 1000; ++i) t.insert(i, i);
  const std::size_t full = t.memory();
  EXPECT_GT(full, empty + 1000 * (2 * sizeof(int)));
  EXPECT_LT(full, empty + 1000 * 128);
}

// A value that knows its footprint (as wire::value does) is counted by it.
struct sized_value {
  std::size_t bytes = 0;
  [[nodiscard]] std::size_t memory_bytes() const noexcept { return bytes; }
};

TEST_F(Table, MemoryCountsWhatValuesSayTheyTake) {
  auto t = create<table<int, sized_value>>({.access = table_access::everyone});
  const std::size_t empty = t.memory();
  t.insert(1, sized_value{100000});
  EXPECT_GE(t.memory(), empty + 100000);
  EXPECT_LT(t.memory(), empty + 100000 + 256);
}

// Readers and writers on many threads at once: each key's value stays one a writer wrote
// (run under TSan in CI).
TEST_F(Table, ConcurrentReadersAndWriters) {
  auto t = create<table<int, int>>({.access = table_access::everyone, .shards = 4});
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int w = 0; w < 2; ++w)
    threads.emplace_back([&, w] {
      for (int round = 0; round < 200; ++round)
        for (int k = w; k < 200; k += 2) {
          t.insert(k, k * 1000 + round);
          if (round % 10 == 0) t.erase(k);
        }
    });
  std::thread reader([&] {
    while (!stop.load()) {
      for (int k = 0; k < 200; ++k)
        if (auto v = t.lookup(k)) {
          ASSERT_EQ(*v / 1000, k);
        }
      (void)t.size();
      (void)t.select([](int, int) { return true; });
    }
  });
  for (auto& th : threads) th.join();
  stop = true;
  reader.join();
  EXPECT_EQ(t.size(), 200u);
}

}  // namespace
}  // namespace canopy::test
