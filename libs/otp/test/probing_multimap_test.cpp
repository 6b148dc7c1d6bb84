// probing_multimap: the Registry's partition table, checked against std::unordered_multimap
// under random inserts and erasures of duplicate keys, through growth.
#include "canopy/otp/detail/probing_multimap.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace canopy::detail {
namespace {

struct tagged {
  int owner = 0;  // 0: a free slot
  int value = 0;
};
struct used {
  bool operator()(const tagged& t) const noexcept { return t.owner != 0; }
};
using table = probing_multimap<std::string, tagged, used>;

std::vector<std::pair<int, int>> entries_of(const table& t, const std::string& key) {
  std::vector<std::pair<int, int>> out;
  t.for_each_equal(key, [&](const tagged& e) {
    out.emplace_back(e.owner, e.value);
    return true;
  });
  std::sort(out.begin(), out.end());
  return out;
}

TEST(ProbingMultimap, AgreesWithUnorderedMultimapUnderChurn) {
  std::mt19937 rng(7);
  table t;
  std::unordered_multimap<std::string, std::pair<int, int>> ref;
  for (int op = 0; op < 60000; ++op) {
    const std::string key = "k" + std::to_string(rng() % (op < 30000 ? 3000 : 50));
    const int owner = 1 + static_cast<int>(rng() % 4);
    if (rng() % 3 != 0) {
      t.insert(key, {owner, op});
      ref.emplace(key, std::make_pair(owner, op));
    } else {
      const std::size_t removed = t.erase_if(key, [&](const tagged& e) { return e.owner == owner; });
      std::size_t expected = 0;
      for (auto it = ref.begin(); it != ref.end();) {
        if (it->first == key && it->second.first == owner) {
          it = ref.erase(it);
          ++expected;
        } else {
          ++it;
        }
      }
      ASSERT_EQ(removed, expected);
    }
    ASSERT_EQ(t.size(), ref.size());
    if (op % 997 == 0) {
      for (int k = 0; k < 50; ++k) {
        const std::string probe = "k" + std::to_string(k);
        std::vector<std::pair<int, int>> want;
        auto [first, last] = ref.equal_range(probe);
        for (auto it = first; it != last; ++it) want.push_back(it->second);
        std::sort(want.begin(), want.end());
        ASSERT_EQ(entries_of(t, probe), want) << probe;
      }
    }
  }
  std::size_t visited = 0;
  t.for_each([&](const std::string&, const tagged&) { ++visited; });
  EXPECT_EQ(visited, ref.size());
  tagged* found = t.find_if("k1", [](const tagged&) { return true; });
  EXPECT_EQ(found != nullptr, ref.count("k1") != 0);
  t.clear();
  EXPECT_TRUE(t.empty());
  EXPECT_TRUE(entries_of(t, "k1").empty());
}

}  // namespace
}  // namespace canopy::detail
