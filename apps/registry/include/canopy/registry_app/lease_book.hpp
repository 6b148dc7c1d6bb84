#pragma once
// lease_book: the registry app's state and rules (docs/protocol.md "registry"), with time
// passed in, so every rule is tested without a clock or sockets.
// Thread-safety: none; the registry server process owns it.
//
// A lease has a ttl fixed when it is created (by a register or join without a lease) and
// an expiry; renew moves the expiry to now + ttl. Names (unique) and group memberships are
// held under a lease; when the lease expires they all go, at once. A lease past its expiry
// is dead at once for every reader — lookup, list and members never show it — even before
// expire() has removed it (expire() is what reports the removals, for events).

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "canopy/core/clock.hpp"
#include "canopy/core/result.hpp"
#include "canopy/wire/value.hpp"

namespace canopy::registry_app {

using std::chrono::milliseconds;

struct grant {
  std::string lease;
  milliseconds ttl;  // a new lease: its ttl; an existing one: the time it has left
  bool created = false;  // register: the name is new (else updated)
};

struct name_record {
  std::string name;
  std::string endpoint;
  wire::value meta;
  std::string lease;
};

struct member_record {
  std::string member;
  std::string endpoint;
  wire::value meta;
  std::string lease;
};

// Why a name went away.
enum class removal { unregistered, expired };

struct removed_name {
  std::string name;
  removal why;
};

// What a request can be refused with: the protocol's error codes of the same names.
enum class refusal { none, already_exists, not_found, unauthorized };

template <class T>
struct outcome {
  refusal refused = refusal::none;
  std::string why;
  T value{};
  [[nodiscard]] bool ok() const noexcept { return refused == refusal::none; }
};

class lease_book {
 public:
  // seed: for lease ids (tests pass a fixed one; the app a random one).
  explicit lease_book(std::uint64_t seed);

  // register: `name` at `endpoint` with `meta`, under `lease` (or a new lease of `ttl`).
  outcome<grant> register_name(std::string_view name, std::string_view endpoint, wire::value meta, milliseconds ttl,
                               std::optional<std::string_view> lease, time_point now);
  // renew: the lease's full ttl; not_found once it expired.
  outcome<milliseconds> renew(std::string_view lease, time_point now);
  // unregister: true if removed; false if nobody holds the name; unauthorized if another
  // live lease holds it.
  outcome<bool> unregister(std::string_view name, std::string_view lease, time_point now);

  struct found {
    name_record record;
    milliseconds left;
  };
  [[nodiscard]] std::optional<found> lookup(std::string_view name, time_point now) const;
  // Live names starting with `prefix`, sorted bytewise.
  [[nodiscard]] std::vector<name_record> list(std::string_view prefix, time_point now) const;

  // join: `member` of `group`; updates an existing member (moving it to this lease).
  outcome<grant> join(std::string_view group, std::string_view member, std::string_view endpoint, wire::value meta,
                      milliseconds ttl, std::optional<std::string_view> lease, time_point now);
  bool leave(std::string_view group, std::string_view member, time_point now);
  // Live members of `group`, sorted by member; empty for an unknown group.
  [[nodiscard]] std::vector<member_record> members(std::string_view group, time_point now) const;

  // Removes every lease past its expiry with its names and memberships; the names removed.
  std::vector<removed_name> expire(time_point now);
  // The earliest expiry of a live lease, if any.
  [[nodiscard]] std::optional<time_point> next_expiry() const;

  [[nodiscard]] std::size_t names() const noexcept { return names_.size(); }
  [[nodiscard]] std::size_t leases() const noexcept { return leases_.size(); }
  [[nodiscard]] std::size_t groups() const noexcept { return groups_.size(); }

 private:
  struct lease_state {
    milliseconds ttl;
    time_point expires;
    std::set<std::string> names;
    std::set<std::pair<std::string, std::string>> memberships;  // (group, member)
  };

  [[nodiscard]] bool live(const std::string& lease, time_point now) const;
  // The lease to use: the given one (must be live) or a new one of `ttl`.
  outcome<grant> take_lease(std::optional<std::string_view> lease, milliseconds ttl, time_point now);
  std::string new_lease_id();
  void drop_membership(const std::string& group, const std::string& member);

  std::mt19937_64 rng_;
  std::unordered_map<std::string, lease_state> leases_;
  std::map<std::string, name_record, std::less<>> names_;
  std::map<std::string, std::map<std::string, member_record, std::less<>>, std::less<>> groups_;
  std::multimap<time_point, std::string> expiries_;  // may hold stale entries (renewed leases)
};

}  // namespace canopy::registry_app
