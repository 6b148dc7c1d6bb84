// 100,000 processes exchanging messages.
#include <gtest/gtest.h>

#include <atomic>

#include "test_support.hpp"

namespace canopy::test {
namespace {

struct hop {
  int left;
};

// Each process forwards a token to its successor; 100,000 processes, 100 tokens running
// around the ring at once, each making 2,000 hops; then every process is pinged directly.
TEST(Stress, AHundredThousandProcessesExchangingMessages) {
  runtime rt({.threads = 2});
  constexpr int n = 100000;
  constexpr int tokens = 100;
  constexpr int hops = 2000;
  auto finished = std::make_shared<std::atomic<int>>(0);
  auto pinged = std::make_shared<std::atomic<int>>(0);
  std::vector<pid> ring(n);
  auto next_of = std::make_shared<std::vector<pid>>(n);
  for (int i = 0; i < n; ++i) {
    ring[i] = rt.spawn<scripted>([i, next_of, finished, pinged](scripted& self, message& m) {
      if (auto* h = m.get<hop>()) {
        if (h->left == 0) {
          finished->fetch_add(1);
        } else {
          self.send((*next_of)[(i + 1) % n], hop{h->left - 1});
        }
      } else if (m.get<int>()) {
        pinged->fetch_add(1);
      }
    });
  }
  *next_of = ring;  // published before any token moves (the sends below happen after)
  for (int t = 0; t < tokens; ++t) rt.send(ring[static_cast<std::size_t>(t) * (n / tokens)], hop{hops});
  for (int i = 0; i < n; ++i) rt.send(ring[i], i);
  ASSERT_TRUE(testing::wait_until([&] { return finished->load() == tokens && pinged->load() == n; },
                                  std::chrono::seconds(120)));
  EXPECT_EQ(rt.process_count(), static_cast<std::size_t>(n));
}

}  // namespace
}  // namespace canopy::test
