// lease_book: the registry's rules with time passed in (a virtual clock's worth of
// control): leases, ttl and renew, expiry of everything on a lease, ownership, groups.
#include "canopy/registry_app/lease_book.hpp"

#include <gtest/gtest.h>

namespace canopy::registry_app {
namespace {

using namespace std::chrono_literals;

class LeaseBook : public ::testing::Test {
 protected:
  lease_book book{42};
  time_point t0{};  // the epoch of this test's time
  wire::value meta = wire::value::empty_map();

  grant hold(std::string_view name, std::optional<std::string_view> lease = std::nullopt, milliseconds ttl = 1000ms,
             time_point at = {}) {
    auto g = book.register_name(name, "tcp://h:1", meta, ttl, lease, at);
    EXPECT_TRUE(g.ok()) << g.why;
    return g.value;
  }
};

TEST_F(LeaseBook, ANewNameGetsANewLeaseWithItsTtl) {
  grant g = hold("cache");
  EXPECT_EQ(g.lease.size(), 32u);
  EXPECT_EQ(g.ttl, 1000ms);
  EXPECT_TRUE(g.created);
  auto found = book.lookup("cache", t0 + 400ms);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->record.endpoint, "tcp://h:1");
  EXPECT_EQ(found->left, 600ms);
  EXPECT_EQ(book.names(), 1u);
  EXPECT_EQ(book.leases(), 1u);
}

TEST_F(LeaseBook, AHeldNameIsTakenByNoOtherLease) {
  grant g = hold("cache");
  auto other = book.register_name("cache", "tcp://x:2", meta, 1000ms, std::nullopt, t0 + 1ms);
  EXPECT_EQ(other.refused, refusal::already_exists);
  // The same lease updates it.
  auto again = book.register_name("cache", "tcp://h:9", meta, 5000ms, std::string_view(g.lease), t0 + 100ms);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again.value.created);
  EXPECT_EQ(again.value.ttl, 900ms);  // the lease's time left; ttl_ms with a lease is ignored
  EXPECT_EQ(book.lookup("cache", t0 + 100ms)->record.endpoint, "tcp://h:9");
}

TEST_F(LeaseBook, AnUnknownOrDeadLeaseIsNotFound) {
  EXPECT_EQ(book.register_name("a", "e", meta, 1s, std::string_view("nope"), t0).refused, refusal::not_found);
  grant g = hold("a");
  EXPECT_EQ(book.register_name("b", "e", meta, 1s, std::string_view(g.lease), t0 + 1000ms).refused, refusal::not_found);
  EXPECT_EQ(book.renew(g.lease, t0 + 1000ms).refused, refusal::not_found);
}

TEST_F(LeaseBook, RenewRestoresTheFullTtl) {
  grant g = hold("a");
  auto r = book.renew(g.lease, t0 + 900ms);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value, 1000ms);
  EXPECT_TRUE(book.lookup("a", t0 + 1500ms));
  EXPECT_TRUE(book.expire(t0 + 1899ms).empty());
  EXPECT_EQ(book.lookup("a", t0 + 1899ms)->left, 1ms);
  EXPECT_FALSE(book.lookup("a", t0 + 1900ms));
}

TEST_F(LeaseBook, AnExpiredLeaseTakesEverythingItHeldAtOnce) {
  grant g = hold("a");
  hold("b", g.lease);
  ASSERT_TRUE(book.join("workers", "w1", "tcp://w:1", meta, 1s, std::string_view(g.lease), t0).ok());
  grant other = hold("c", std::nullopt, 5000ms);
  // Dead for every reader as soon as its time is up, before expire() runs.
  EXPECT_FALSE(book.lookup("a", t0 + 1000ms));
  EXPECT_EQ(book.list("", t0 + 1000ms).size(), 1u);
  EXPECT_TRUE(book.members("workers", t0 + 1000ms).empty());
  auto removed = book.expire(t0 + 1000ms);
  ASSERT_EQ(removed.size(), 2u);
  EXPECT_EQ(removed[0].name, "a");
  EXPECT_EQ(removed[1].name, "b");
  EXPECT_EQ(removed[0].why, removal::expired);
  EXPECT_EQ(book.names(), 1u);
  EXPECT_EQ(book.leases(), 1u);
  EXPECT_EQ(book.groups(), 0u);
  EXPECT_EQ(book.next_expiry(), t0 + 5000ms);
  EXPECT_TRUE(book.lookup("c", t0 + 1000ms));
  (void)other;
}

TEST_F(LeaseBook, ADeadLeasesNameIsFreeBeforeTheTimerFires) {
  hold("a");
  auto g = book.register_name("a", "tcp://new:1", meta, 1s, std::nullopt, t0 + 1000ms);
  ASSERT_TRUE(g.ok()) << g.why;
  EXPECT_TRUE(g.value.created);
  EXPECT_EQ(book.lookup("a", t0 + 1000ms)->record.endpoint, "tcp://new:1");
  EXPECT_TRUE(book.expire(t0 + 1000ms).empty());  // the old lease goes without taking the name
  EXPECT_TRUE(book.lookup("a", t0 + 1000ms));
}

TEST_F(LeaseBook, UnregisterNeedsTheHoldingLease) {
  grant g = hold("a");
  grant other = hold("b");
  EXPECT_EQ(book.unregister("a", other.lease, t0).refused, refusal::unauthorized);
  auto nobody = book.unregister("zzz", g.lease, t0);
  ASSERT_TRUE(nobody.ok());
  EXPECT_FALSE(nobody.value);
  auto gone = book.unregister("a", g.lease, t0);
  ASSERT_TRUE(gone.ok());
  EXPECT_TRUE(gone.value);
  EXPECT_FALSE(book.lookup("a", t0));
  EXPECT_TRUE(book.renew(g.lease, t0).ok());  // the lease lives on, holding nothing
}

TEST_F(LeaseBook, ListIsSortedBytewiseByPrefix) {
  for (const char* n : {"svc.b", "svc.a", "other", "svc.c", "svc"}) hold(n);
  std::vector<std::string> names;
  for (const auto& r : book.list("svc.", t0)) names.push_back(r.name);
  EXPECT_EQ(names, (std::vector<std::string>{"svc.a", "svc.b", "svc.c"}));
  EXPECT_EQ(book.list("", t0).size(), 5u);
  EXPECT_TRUE(book.list("zz", t0).empty());
}

TEST_F(LeaseBook, GroupsHoldManyMembersAcrossLeases) {
  grant a = book.join("g", "m1", "e1", meta, 1000ms, std::nullopt, t0).value;
  grant b = book.join("g", "m2", "e2", meta, 3000ms, std::nullopt, t0).value;
  EXPECT_NE(a.lease, b.lease);
  EXPECT_EQ(book.members("g", t0).size(), 2u);
  // Joining again updates the member (and moves it to the lease given).
  auto again = book.join("g", "m1", "e1b", meta, 1s, std::string_view(b.lease), t0 + 10ms);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again.value.created);
  book.expire(t0 + 1000ms);  // a's lease goes; m1 moved away from it
  auto now = book.members("g", t0 + 1000ms);
  ASSERT_EQ(now.size(), 2u);
  EXPECT_EQ(now[0].member, "m1");
  EXPECT_EQ(now[0].endpoint, "e1b");
  EXPECT_TRUE(book.leave("g", "m1", t0 + 1000ms));
  EXPECT_FALSE(book.leave("g", "m1", t0 + 1000ms));
  EXPECT_FALSE(book.leave("nope", "m1", t0 + 1000ms));
  EXPECT_TRUE(book.members("nope", t0).empty());
  book.expire(t0 + 3000ms);
  EXPECT_EQ(book.groups(), 0u);
}

TEST_F(LeaseBook, LeaseIdsDiffer) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) ids.insert(hold("n" + std::to_string(i)).lease);
  EXPECT_EQ(ids.size(), 1000u);
}

}  // namespace
}  // namespace canopy::registry_app
