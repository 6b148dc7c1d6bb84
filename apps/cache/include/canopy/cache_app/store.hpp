#pragma once
// store: the cache app's data and rules (docs/protocol.md "cache"), with time passed in so
// every rule is tested without a clock or sockets.
// Thread-safety: none; one cache server process owns a store.
//
// Values are wire::values kept byte-exact. A key may carry an expiry: it is gone for every
// reader from that instant (lazy expiry on access), and expire_due() removes what is due
// so the memory comes back (active expiry, from the server's timer). Memory is bounded by
// max_bytes, counted as real memory: the key's and value's bytes on the heap plus the
// per-entry bookkeeping (the hash node, the recency list links, the expiry index entry).
// Past it, the least recently used entries are evicted — exact LRU: every get, put and incr
// moves its key to the front of a recency list (O(1)).
//
// Why not a runtime table: exact LRU needs a write on every read, which on a shared table
// means an exclusive lock per get; one owner process with a recency list does it without
// locks, and the app scales by running a store per shard (see app.hpp).

#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "canopy/core/clock.hpp"
#include "canopy/wire/value.hpp"

namespace canopy::cache_app {

using std::chrono::milliseconds;

struct stats {
  std::uint64_t items = 0;
  std::uint64_t bytes = 0;
  std::uint64_t max_bytes = 0;
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t evictions = 0;
  std::uint64_t expired = 0;
};

struct got {
  wire::value value;
  std::optional<milliseconds> ttl_left;  // nothing: never expires
};

enum class incr_refusal { none, not_an_integer, overflow };

struct incr_result {
  incr_refusal refused = incr_refusal::none;
  std::int64_t value = 0;
};

class store {
 public:
  explicit store(std::uint64_t max_bytes);

  // put: replaces any value and expiry (no ttl: never expires). False if this one entry
  // alone would exceed max_bytes (the store is unchanged).
  bool put(std::string_view key, wire::value value, std::optional<milliseconds> ttl, time_point now);
  [[nodiscard]] std::optional<got> get(std::string_view key, time_point now);
  bool erase(std::string_view key, time_point now);
  // incr: the new value; a missing key starts at 0 (and takes `ttl`); an existing one keeps
  // its expiry unless `ttl` is given.
  incr_result incr(std::string_view key, std::int64_t by, std::optional<milliseconds> ttl, time_point now);
  // expire: sets a live key's ttl; false if there is no such key.
  bool expire(std::string_view key, milliseconds ttl, time_point now);
  // ttl: nothing if there is no such key; else its time left (nothing inside: no expiry).
  [[nodiscard]] std::optional<std::optional<milliseconds>> ttl(std::string_view key, time_point now);
  // The first `limit` live keys starting with `prefix`, sorted bytewise; with `after`, only
  // keys sorting after it (the next page: `after` = the last key of the previous one).
  [[nodiscard]] std::vector<std::string> keys(std::string_view prefix, std::size_t limit, time_point now,
                                              std::string_view after = {}) const;
  // Removes everything; how many live entries went.
  std::size_t clear(time_point now);

  // Active expiry: removes up to `budget` entries that are due; the keys removed.
  std::vector<std::string> expire_due(time_point now, std::size_t budget);
  [[nodiscard]] std::optional<time_point> next_expiry() const;
  // Keys evicted since the last call (for events), oldest first.
  std::vector<std::string> take_evicted();

  // fn(key, value, expires) for every entry, least recently used first (a snapshot written
  // in this order and loaded with put() keeps the recency order).
  template <class F>
  void each_oldest_first(F&& fn) const {
    for (auto it = recency_.rbegin(); it != recency_.rend(); ++it) {
      const entry& e = entries_.find(**it)->second;
      fn(**it, e.value, e.expires);
    }
  }

  [[nodiscard]] cache_app::stats stats() const;
  // The bytes one entry of this key and value is counted as (for too_large checks).
  [[nodiscard]] static std::uint64_t entry_bytes(std::string_view key, const wire::value& value) noexcept;

 private:
  using recency = std::list<const std::string*>;  // the map's keys; front: most recently used
  using expiry_index = std::multimap<time_point, const std::string*>;  // the map's keys
  struct entry {
    wire::value value;
    std::optional<time_point> expires;
    recency::iterator place;
    expiry_index::iterator expiry;  // valid while `expires` is set
    std::uint64_t bytes = 0;
  };
  struct key_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>()(s); }
  };
  using map = std::unordered_map<std::string, entry, key_hash, std::equal_to<>>;

  map::iterator find_live(std::string_view key, time_point now);
  void touch(entry& e);
  void remove(map::iterator it);
  void set_expiry(const std::string& key, entry& e, std::optional<time_point> expires);
  void make_room(std::uint64_t incoming, const std::string* keep);
  [[nodiscard]] std::uint64_t bytes_of(const std::string& key, const entry& e) const noexcept;

  std::uint64_t max_bytes_;
  map entries_;
  recency recency_;
  expiry_index expiries_;
  std::vector<std::string> evicted_;
  cache_app::stats stats_;
};

}  // namespace canopy::cache_app
