// agent<T>: SEMANTICS.md line 52, and Elixir's SimpleCounter seed.
#include "canopy/otp/agent.hpp"

#include <gtest/gtest.h>

#include <map>
#include <stdexcept>
#include <string>

#include "canopy/testing/virtual_clock.hpp"

namespace canopy {
namespace {

using namespace std::chrono_literals;

TEST(Agent, GetUpdateGetAndUpdateAndCast) {
  runtime rt({.threads = 2});
  auto a = agent<std::map<std::string, int>>::start(rt, {{"x", 1}});
  ASSERT_TRUE(a);
  using counts = agent<std::map<std::string, int>>;
  ASSERT_TRUE(counts::update(rt, *a, [](std::map<std::string, int>& m) { m["y"] = 2; }));
  ASSERT_TRUE(counts::update(rt, *a, [](std::map<std::string, int> m) {
    m["z"] = 3;
    return m;  // a replacing update
  }));
  counts::cast(rt, *a, [](std::map<std::string, int>& m) { m["x"] += 10; });
  auto size = counts::get(rt, *a, [](const std::map<std::string, int>& m) { return m.size(); });
  ASSERT_TRUE(size);
  EXPECT_EQ(*size, 3u);
  auto popped = counts::get_and_update(rt, *a, [](std::map<std::string, int>& m) {
    int x = m["x"];
    m.erase("x");
    return x;
  });
  ASSERT_TRUE(popped);
  EXPECT_EQ(*popped, 11);  // the cast ran before (one sender, in order)
  EXPECT_EQ(*counts::get(rt, *a, [](const auto& m) { return m.count("x"); }), 0u);
}

TEST(Agent, SimpleCounterSeed) {
  runtime rt({.threads = 2});
  auto counter = agent<int>::start(rt, 0, {.name = "simple_counter"});
  ASSERT_TRUE(counter);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(agent<int>::update(rt, rt.whereis("simple_counter"), [](int& n) { ++n; }));
  EXPECT_EQ(*agent<int>::get(rt, *counter, [](const int& n) { return n; }), 5);
}

TEST(Agent, AThrowingFunctionCrashesTheAgentAndTheCallerGetsExited) {
  runtime rt({.threads = 2});
  auto a = agent<int>::start(rt, 0);
  ASSERT_TRUE(a);
  auto r = agent<int>::get(rt, *a, [](const int&) -> int { throw std::runtime_error("bad fn"); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), errc::exited);
  EXPECT_EQ(r.error().reason().to_string(), "{error,std::runtime_error,bad fn}");
}

class AgentTimed : public ::testing::Test {
 protected:
  std::shared_ptr<testing::virtual_clock> clk = std::make_shared<testing::virtual_clock>();
  runtime rt{{.mode = scheduling::manual, .clock = clk}};
};

TEST_F(AgentTimed, Line52_GetTimesOutAfter5000msByDefault) {
  auto a = agent<int>::start(rt, 7);
  ASSERT_TRUE(a);
  // The function itself takes 5 s of (virtual) time: the caller's deadline passes first.
  auto slow = agent<int>::get(rt, *a, [this](const int& n) {
    clk->advance(5000ms);
    return n;
  });
  ASSERT_FALSE(slow);
  EXPECT_EQ(slow.code(), errc::timeout);
  auto quick_enough = agent<int>::get(rt, *a, [this](const int& n) {
    clk->advance(4999ms);
    return n;
  });
  ASSERT_TRUE(quick_enough);
  EXPECT_EQ(*quick_enough, 7);
  EXPECT_TRUE(rt.is_alive(*a));  // the agent runs on
}

TEST_F(AgentTimed, Line52_UpdateAndGetAndUpdateTimeOutToo) {
  auto a = agent<int>::start(rt, 0);
  ASSERT_TRUE(a);
  EXPECT_EQ(agent<int>::update(rt, *a, [this](int& n) { n = 1; clk->advance(5s); }).code(), errc::timeout);
  EXPECT_EQ(agent<int>::get_and_update(rt, *a, [this](int& n) { clk->advance(5s); return n; }).code(), errc::timeout);
  EXPECT_EQ(*agent<int>::get(rt, *a, [](const int& n) { return n; }), 1);  // the update happened
}

}  // namespace
}  // namespace canopy
