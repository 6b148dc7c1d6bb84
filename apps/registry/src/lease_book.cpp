#include "canopy/registry_app/lease_book.hpp"

#include <algorithm>
#include <cstdio>

namespace canopy::registry_app {

namespace {
milliseconds left_until(time_point expires, time_point now) {
  return expires > now ? std::chrono::ceil<milliseconds>(expires - now) : milliseconds(0);
}
}  // namespace

lease_book::lease_book(std::uint64_t seed) : rng_(seed) {}

std::string lease_book::new_lease_id() {
  for (;;) {
    char text[33];
    std::snprintf(text, sizeof text, "%016llx%016llx", static_cast<unsigned long long>(rng_()),
                  static_cast<unsigned long long>(rng_()));
    if (leases_.count(text) == 0) return text;
  }
}

bool lease_book::live(const std::string& lease, time_point now) const {
  auto it = leases_.find(lease);
  return it != leases_.end() && it->second.expires > now;
}

outcome<grant> lease_book::take_lease(std::optional<std::string_view> lease, milliseconds ttl, time_point now) {
  if (lease) {
    auto it = leases_.find(std::string(*lease));
    if (it == leases_.end() || it->second.expires <= now)
      return {refusal::not_found, "no live lease " + std::string(*lease), {}};
    return {refusal::none, {}, {it->first, left_until(it->second.expires, now), false}};
  }
  std::string id = new_lease_id();
  const time_point expires = now + ttl;
  leases_.emplace(id, lease_state{ttl, expires, {}, {}});
  expiries_.emplace(expires, id);
  return {refusal::none, {}, {std::move(id), ttl, false}};
}

outcome<grant> lease_book::register_name(std::string_view name, std::string_view endpoint, wire::value meta,
                                         milliseconds ttl, std::optional<std::string_view> lease, time_point now) {
  auto held = names_.find(name);
  if (held != names_.end() && live(held->second.lease, now) && (!lease || held->second.lease != *lease))
    return {refusal::already_exists, "the name " + std::string(name) + " is held by another lease", {}};
  outcome<grant> g = take_lease(lease, ttl, now);
  if (!g.ok()) return g;
  if (held != names_.end() && held->second.lease != g.value.lease) {
    // A dead lease's name, not yet expired by the timer: it is free.
    if (auto old = leases_.find(held->second.lease); old != leases_.end()) old->second.names.erase(held->first);
    names_.erase(held);
    held = names_.end();
  }
  g.value.created = held == names_.end();
  name_record& r = names_[std::string(name)];
  r.name = std::string(name);
  r.endpoint = std::string(endpoint);
  r.meta = std::move(meta);
  r.lease = g.value.lease;
  leases_.at(g.value.lease).names.insert(r.name);
  return g;
}

outcome<milliseconds> lease_book::renew(std::string_view lease, time_point now) {
  auto it = leases_.find(std::string(lease));
  if (it == leases_.end() || it->second.expires <= now) return {refusal::not_found, "no live lease " + std::string(lease), {}};
  it->second.expires = now + it->second.ttl;
  expiries_.emplace(it->second.expires, it->first);
  return {refusal::none, {}, it->second.ttl};
}

outcome<bool> lease_book::unregister(std::string_view name, std::string_view lease, time_point now) {
  auto held = names_.find(name);
  if (held == names_.end() || !live(held->second.lease, now)) return {refusal::none, {}, false};
  if (held->second.lease != lease)
    return {refusal::unauthorized, "the name " + std::string(name) + " is held by another lease", false};
  leases_.at(held->second.lease).names.erase(held->first);
  names_.erase(held);
  return {refusal::none, {}, true};
}

std::optional<lease_book::found> lease_book::lookup(std::string_view name, time_point now) const {
  auto held = names_.find(name);
  if (held == names_.end()) return std::nullopt;
  auto l = leases_.find(held->second.lease);
  if (l == leases_.end() || l->second.expires <= now) return std::nullopt;
  return found{held->second, left_until(l->second.expires, now)};
}

std::vector<name_record> lease_book::list(std::string_view prefix, time_point now) const {
  std::vector<name_record> out;
  for (auto it = names_.lower_bound(prefix); it != names_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it)
    if (live(it->second.lease, now)) out.push_back(it->second);
  return out;
}

outcome<grant> lease_book::join(std::string_view group, std::string_view member, std::string_view endpoint,
                                wire::value meta, milliseconds ttl, std::optional<std::string_view> lease,
                                time_point now) {
  outcome<grant> g = take_lease(lease, ttl, now);
  if (!g.ok()) return g;
  auto& members = groups_[std::string(group)];
  auto existing = members.find(member);
  if (existing != members.end() && existing->second.lease != g.value.lease) {
    if (auto old = leases_.find(existing->second.lease); old != leases_.end())
      old->second.memberships.erase({std::string(group), std::string(member)});
  }
  g.value.created = existing == members.end();
  member_record& r = members[std::string(member)];
  r.member = std::string(member);
  r.endpoint = std::string(endpoint);
  r.meta = std::move(meta);
  r.lease = g.value.lease;
  leases_.at(g.value.lease).memberships.insert({std::string(group), r.member});
  return g;
}

void lease_book::drop_membership(const std::string& group, const std::string& member) {
  auto g = groups_.find(group);
  if (g == groups_.end()) return;
  g->second.erase(member);
  if (g->second.empty()) groups_.erase(g);
}

bool lease_book::leave(std::string_view group, std::string_view member, time_point now) {
  auto g = groups_.find(group);
  if (g == groups_.end()) return false;
  auto m = g->second.find(member);
  if (m == g->second.end()) return false;
  const bool was_live = live(m->second.lease, now);
  if (auto l = leases_.find(m->second.lease); l != leases_.end())
    l->second.memberships.erase({std::string(group), std::string(member)});
  drop_membership(std::string(group), std::string(member));
  return was_live;
}

std::vector<member_record> lease_book::members(std::string_view group, time_point now) const {
  std::vector<member_record> out;
  auto g = groups_.find(group);
  if (g == groups_.end()) return out;
  for (const auto& [name, record] : g->second)
    if (live(record.lease, now)) out.push_back(record);
  return out;
}

std::vector<removed_name> lease_book::expire(time_point now) {
  std::vector<removed_name> removed;
  while (!expiries_.empty() && expiries_.begin()->first <= now) {
    const auto [when, id] = *expiries_.begin();
    expiries_.erase(expiries_.begin());
    auto l = leases_.find(id);
    if (l == leases_.end() || l->second.expires != when) continue;  // renewed since, or gone
    for (const std::string& name : l->second.names) {
      names_.erase(name);
      removed.push_back({name, removal::expired});
    }
    for (const auto& [group, member] : l->second.memberships) drop_membership(group, member);
    leases_.erase(l);
  }
  return removed;
}

std::optional<time_point> lease_book::next_expiry() const {
  // Stale entries (renewed leases) only make the server look early, then again.
  if (expiries_.empty()) return std::nullopt;
  return expiries_.begin()->first;
}

}  // namespace canopy::registry_app
