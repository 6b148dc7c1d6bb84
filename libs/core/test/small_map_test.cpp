// small_map: the flat map behind links, monitors and awaited results. Checked against
// std::unordered_map through the dense -> hashed -> shrunk -> released transitions.
#include "../src/small_map.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <random>
#include <unordered_map>
#include <vector>

namespace {

using canopy::detail::small_map;

TEST(SmallMap, InsertFindEraseWhileSmall) {
  small_map<std::uint64_t, int> m;
  EXPECT_TRUE(m.empty());
  EXPECT_TRUE(m.insert(7, 70));
  EXPECT_FALSE(m.insert(7, 71));  // present: unchanged
  EXPECT_TRUE(m.insert(9, 90));
  ASSERT_NE(m.find(7), nullptr);
  EXPECT_EQ(*m.find(7), 70);
  EXPECT_EQ(m.find(8), nullptr);
  int out = 0;
  EXPECT_TRUE(m.erase(7, &out));
  EXPECT_EQ(out, 70);
  EXPECT_FALSE(m.erase(7));
  EXPECT_EQ(m.size(), 1u);
  EXPECT_EQ(*m.find(9), 90);
}

TEST(SmallMap, ValuesAreMovedNotCopied) {
  small_map<const int*, std::unique_ptr<int>> m;
  std::vector<int> keys(100);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(m.insert(&keys[i], std::make_unique<int>(i)));
  for (int i = 0; i < 100; i += 2) {
    std::unique_ptr<int> v;
    ASSERT_TRUE(m.erase(&keys[i], &v));
    EXPECT_EQ(*v, i);
  }
  for (int i = 1; i < 100; i += 2) EXPECT_EQ(**m.find(&keys[i]), i);
  int seen = 0;
  m.for_each([&](const int* k, std::unique_ptr<int>& v) {
    EXPECT_EQ(*v, static_cast<int>(k - keys.data()));
    ++seen;
  });
  EXPECT_EQ(seen, 50);
}

// Random inserts and erases against a reference map, growing to thousands of entries and
// back to none several times so every transition and the backward shift are exercised.
TEST(SmallMap, AgreesWithUnorderedMapUnderRandomChurn) {
  std::mt19937_64 rng(12345);
  small_map<std::uint64_t, std::uint64_t> m;
  std::unordered_map<std::uint64_t, std::uint64_t> ref;
  for (int round = 0; round < 6; ++round) {
    const std::uint64_t key_space = round % 2 == 0 ? 20 : 5000;  // dense-sized and hashed
    for (int op = 0; op < 20000; ++op) {
      const std::uint64_t k = 1 + rng() % key_space;
      if (rng() % 3 != 0) {
        EXPECT_EQ(m.insert(k, k * 3), ref.emplace(k, k * 3).second);
      } else {
        std::uint64_t out = 0;
        const bool had = ref.erase(k) == 1;
        EXPECT_EQ(m.erase(k, &out), had);
        if (had) {
          EXPECT_EQ(out, k * 3);
        }
      }
      ASSERT_EQ(m.size(), ref.size());
    }
    for (const auto& [k, v] : ref) {
      const std::uint64_t* found = m.find(k);
      ASSERT_NE(found, nullptr) << k;
      EXPECT_EQ(*found, v);
    }
    std::size_t visited = 0;
    m.for_each([&](std::uint64_t k, std::uint64_t v) {
      EXPECT_EQ(ref.at(k), v);
      ++visited;
    });
    EXPECT_EQ(visited, ref.size());
    // Drain to empty: the table shrinks on the way and is released at the end.
    std::vector<std::uint64_t> keys;
    for (const auto& kv : ref) keys.push_back(kv.first);
    for (std::uint64_t k : keys) {
      ASSERT_TRUE(m.erase(k));
      ref.erase(k);
      for (int probe = 0; probe < 3 && !ref.empty(); ++probe) {
        const std::uint64_t other = ref.begin()->first;
        ASSERT_NE(m.find(other), nullptr);
      }
    }
    EXPECT_TRUE(m.empty());
  }
}

// Keys that collide in the low bits (pointers 16 bytes apart, refs in one block) still
// spread: a large map of them keeps working (and finishes quickly).
TEST(SmallMap, SequentialKeysAtScale) {
  small_map<std::uint64_t, std::uint64_t> m;
  constexpr std::uint64_t n = 200000;
  for (std::uint64_t k = 1; k <= n; ++k) ASSERT_TRUE(m.insert(k << 4, k));
  for (std::uint64_t k = 1; k <= n; ++k) ASSERT_EQ(*m.find(k << 4), k);
  for (std::uint64_t k = 1; k <= n; k += 2) ASSERT_TRUE(m.erase(k << 4));
  for (std::uint64_t k = 2; k <= n; k += 2) ASSERT_EQ(*m.find(k << 4), k);
  EXPECT_EQ(m.size(), n / 2);
}

}  // namespace
