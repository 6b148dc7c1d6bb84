#include "canopy/core/exit_reason.hpp"

#include <gtest/gtest.h>

#include "canopy/core/error.hpp"
#include "canopy/core/result.hpp"

namespace canopy {
namespace {

TEST(ExitReason, NormalAndShutdownAreClean) {
  EXPECT_TRUE(exit_reason::normal().is_clean());
  EXPECT_TRUE(exit_reason::shutdown().is_clean());
  EXPECT_TRUE(exit_reason::shutdown("bye").is_clean());
  EXPECT_FALSE(exit_reason::killed().is_clean());
  EXPECT_FALSE(exit_reason::error("std::runtime_error", "boom").is_clean());
}

TEST(ExitReason, PrintsLikeErlang) {
  EXPECT_EQ(exit_reason::normal().to_string(), "normal");
  EXPECT_EQ(exit_reason::shutdown("maintenance").to_string(), "{shutdown,maintenance}");
  EXPECT_EQ(exit_reason::error("std::runtime_error", "boom").to_string(), "{error,std::runtime_error,boom}");
  EXPECT_EQ(exit_reason::other("bad_return_value").to_string(), "bad_return_value");
  EXPECT_EQ(exit_reason::other("bad_return_value", "42").to_string(), "{bad_return_value,42}");
}

TEST(ExitReason, ComparesByKindAndText) {
  EXPECT_EQ(exit_reason::shutdown("a"), exit_reason::shutdown("a"));
  EXPECT_NE(exit_reason::shutdown("a"), exit_reason::shutdown("b"));
  EXPECT_NE(exit_reason::shutdown(), exit_reason::normal());
}

TEST(Errc, RoundTripsThroughItsName) {
  for (errc c : {errc::noproc, errc::timeout, errc::exited, errc::calling_self, errc::bad_reply,
                 errc::already_registered, errc::not_registered, errc::invalid_argument,
                 errc::shutting_down, errc::unavailable, errc::io}) {
    EXPECT_EQ(errc_from_string(to_string(c)), c);
  }
  EXPECT_FALSE(errc_from_string("nonsense").has_value());
}

TEST(Result, HoldsAValueOrAnError) {
  result<int> ok = 7;
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, 7);
  result<int> bad = error(errc::timeout, "slow");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.code(), errc::timeout);
  EXPECT_EQ(bad.value_or(3), 3);
  EXPECT_THROW((void)bad.value(), bad_result_access);
  EXPECT_EQ(bad.error().to_string(), "timeout (slow)");
}

TEST(Result, ExitedErrorCarriesTheReason) {
  auto e = error::from_exit(exit_reason::killed());
  EXPECT_EQ(e.code(), errc::exited);
  EXPECT_EQ(e.reason(), exit_reason::killed());
  EXPECT_EQ(e.to_string(), "exited: killed");
}

}  // namespace
}  // namespace canopy
