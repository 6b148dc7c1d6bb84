#include <gtest/gtest.h>

#include "canopy/testing/virtual_clock.hpp"
#include "canopy/testing/wait.hpp"

TEST(VirtualClock, MovesOnlyWhenAdvanced) {
  canopy::testing::virtual_clock clk;
  auto t0 = clk.now();
  EXPECT_EQ(clk.now(), t0);
  clk.advance(std::chrono::seconds(3));
  EXPECT_EQ(clk.now() - t0, std::chrono::seconds(3));
}
