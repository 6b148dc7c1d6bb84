// pid, message, refs and clock: the small value types.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <unordered_set>

#include "canopy/core/clock.hpp"
#include "canopy/core/message.hpp"
#include "canopy/core/pid.hpp"
#include "canopy/core/refs.hpp"
#include "canopy/core/runtime.hpp"

namespace canopy {
namespace {

class idle final : public process {
 protected:
  void receive(message&) override {}
};

TEST(Pid, NullPidIsEmptyAndPrintsAsNull) {
  pid p;
  EXPECT_TRUE(p.is_null());
  EXPECT_FALSE(p);
  EXPECT_EQ(p.id(), 0u);
  EXPECT_EQ(p.to_string(), "<null>");
}

TEST(Pid, CopiesCompareEqualHashAndPrintLikeErlang) {
  runtime rt({.mode = scheduling::manual});
  pid a = rt.spawn<idle>();
  pid b = rt.spawn<idle>();
  pid a2 = a;
  EXPECT_EQ(a, a2);
  EXPECT_NE(a, b);
  EXPECT_TRUE(a < b);  // ids grow in spawn order
  std::unordered_set<pid> set{a, b, a2};
  EXPECT_EQ(set.size(), 2u);
  std::ostringstream os;
  os << a;
  EXPECT_EQ(os.str(), "<0." + std::to_string(a.id()) + ".0>");
}

TEST(Pid, OutlivesItsRuntimeSafely) {
  pid kept;
  {
    runtime rt({.threads = 1});
    kept = rt.spawn<idle>();
  }
  EXPECT_FALSE(kept.is_null());  // still a value; sending to it would be a no-op
}

TEST(Message, AnswersOnlyForTheTypeItHolds) {
  detail::node_ptr n(detail::make_node<std::string>(detail::node_kind::user, "hi"));
  message m(n.get());
  EXPECT_TRUE(m.is<std::string>());
  EXPECT_FALSE(m.is<int>());
  ASSERT_NE(m.get<std::string>(), nullptr);
  EXPECT_EQ(*m.get<std::string>(), "hi");
  EXPECT_EQ(m.get<int>(), nullptr);
  EXPECT_FALSE(m.is_call());
  EXPECT_FALSE(m.reply_to());
  EXPECT_NE(m.type_name().find("basic_string"), std::string::npos) << m.type_name();
}

TEST(Message, LargeAndOveralignedValuesRoundTrip) {
  struct big {
    char bytes[1000];
  };
  struct alignas(64) wide {
    int v;
  };
  detail::node_ptr b(detail::make_node<big>(detail::node_kind::user, big{{'x'}}));
  EXPECT_EQ(message(b.get()).get<big>()->bytes[0], 'x');
  detail::node_ptr w(detail::make_node<wide>(detail::node_kind::user, wide{7}));
  auto* v = message(w.get()).get<wide>();
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(v) % 64, 0u);
  EXPECT_EQ(v->v, 7);
}

TEST(Refs, DefaultRefsAreNull) {
  EXPECT_FALSE(monitor_ref());
  EXPECT_FALSE(timer_ref());
  EXPECT_TRUE(monitor_ref(3));
  EXPECT_EQ(monitor_ref(3), monitor_ref(3));
}

TEST(Clock, DeadlineAfterDoesNotOverflow) {
  const time_point now = steady_clock_source()->now();
  EXPECT_EQ(deadline_after(now, infinity), time_point::max());
  EXPECT_EQ(deadline_after(now, std::chrono::seconds(1)), now + std::chrono::seconds(1));
  EXPECT_FALSE(steady_clock_source()->is_virtual());
  EXPECT_LE(now, steady_clock_source()->now());  // monotonic
}

}  // namespace
}  // namespace canopy
