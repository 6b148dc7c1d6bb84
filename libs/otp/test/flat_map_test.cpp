// flat_map: the set tables' shard map, checked against std::unordered_map under random
// inserts, erasures and lookups, through growth; with a hash that puts every key in one
// probe run (so erasure's backward shift is exercised), move-only values, and destructors
// counted (no entry leaked or destroyed twice).
#include "canopy/otp/detail/flat_map.hpp"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>

namespace canopy::detail {
namespace {

template <class Map>
std::map<std::string, int> contents(const Map& m) {
  std::map<std::string, int> out;
  m.for_each([&](const std::string& k, const int& v) { out.emplace(k, v); });
  return out;
}

// Every key hashes alike, or into one of a few values: long runs, wrap-around at the end.
struct clumped_hash {
  std::size_t operator()(const std::string& s) const noexcept { return s.size() % 3; }
};

template <class Hash>
void random_against_std(unsigned seed) {
  flat_map<std::string, int, Hash> m;
  std::unordered_map<std::string, int> expected;
  std::mt19937 rng(seed);
  for (int step = 0; step < 20000; ++step) {
    const std::string key = "k" + std::to_string(rng() % 600);
    switch (rng() % 4) {
      case 0:
      case 1: {
        const int value = static_cast<int>(rng() % 1000);
        auto [slot, fresh] = m.try_emplace(key, value);
        auto [it, fresh_expected] = expected.try_emplace(key, value);
        ASSERT_EQ(fresh, fresh_expected) << key;
        ASSERT_EQ(*slot, it->second);
        break;
      }
      case 2:
        ASSERT_EQ(m.erase(key), expected.erase(key)) << key;
        break;
      default: {
        const int* v = m.find(key);
        auto it = expected.find(key);
        ASSERT_EQ(v != nullptr, it != expected.end()) << key;
        if (v) {
          ASSERT_EQ(*v, it->second);
        }
      }
    }
    ASSERT_EQ(m.size(), expected.size());
  }
  std::map<std::string, int> sorted(expected.begin(), expected.end());
  EXPECT_EQ(contents(m), sorted);
}

TEST(FlatMap, MatchesUnorderedMapUnderRandomOperations) {
  for (unsigned seed = 1; seed <= 3; ++seed) random_against_std<std::hash<std::string>>(seed);
}

TEST(FlatMap, MatchesUnorderedMapWhenEveryKeyCollides) {
  for (unsigned seed = 1; seed <= 3; ++seed) random_against_std<clumped_hash>(seed);
}

TEST(FlatMap, SequentialIntegerKeysSpreadAndErase) {
  flat_map<long, long> m;
  for (long i = 0; i < 100000; ++i) ASSERT_TRUE(m.try_emplace(i, -i).second);
  EXPECT_EQ(m.size(), 100000u);
  EXPECT_LE(m.array_bytes(), 100000u * 17 * 8 / 3 + (2u << 20));  // load >= 3/8, plus huge-page rounding
  for (long i = 0; i < 100000; i += 2) ASSERT_EQ(m.erase(i), 1u);
  for (long i = 0; i < 100000; ++i) {
    const long* v = m.find(i);
    ASSERT_EQ(v != nullptr, i % 2 == 1) << i;
    if (v) {
      ASSERT_EQ(*v, -i);
    }
  }
  EXPECT_EQ(m.erase(-5), 0u);
}

struct counted {
  static inline int live = 0;
  std::unique_ptr<int> v;
  explicit counted(int x) : v(std::make_unique<int>(x)) { ++live; }
  counted(counted&& o) noexcept : v(std::move(o.v)) { ++live; }
  counted& operator=(counted&& o) noexcept {
    v = std::move(o.v);
    return *this;
  }
  ~counted() { --live; }
};

TEST(FlatMap, MoveOnlyValuesAreNeitherLeakedNorDestroyedTwice) {
  {
    flat_map<int, counted> m;
    for (int i = 0; i < 1000; ++i) m.try_emplace(i, counted(i));
    EXPECT_EQ(counted::live, 1000);
    for (int i = 0; i < 1000; i += 3) m.erase(i);
    EXPECT_EQ(counted::live, static_cast<int>(m.size()));
    EXPECT_EQ(*m.find(1)->v, 1);
    flat_map<int, counted> moved = std::move(m);
    EXPECT_EQ(m.size(), 0u);
    EXPECT_EQ(m.find(1), nullptr);
    EXPECT_EQ(*moved.find(998)->v, 998);
    moved.clear();
    EXPECT_EQ(counted::live, 0);
    moved.try_emplace(5, counted(5));  // usable after clear
    EXPECT_EQ(counted::live, 1);
  }
  EXPECT_EQ(counted::live, 0);
}

}  // namespace
}  // namespace canopy::detail
