#include "canopy/cache_app/store.hpp"

#include <algorithm>
#include <limits>

namespace canopy::cache_app {

namespace {

std::uint64_t rounded(std::uint64_t n) { return (n + 15) / 16 * 16; }  // as malloc rounds

milliseconds left(time_point expires, time_point now) {
  return expires > now ? std::chrono::ceil<milliseconds>(expires - now) : milliseconds(0);
}

}  // namespace

store::store(std::uint64_t max_bytes) : max_bytes_(max_bytes) { stats_.max_bytes = max_bytes; }

std::uint64_t store::entry_bytes(std::string_view key, const wire::value& value) noexcept {
  // The map's node (next pointer, cached hash, key, entry), the recency list's node, the key's
  // heap buffer, the value's bytes.
  constexpr std::uint64_t map_node = 2 * sizeof(void*) + sizeof(std::string) + sizeof(entry);
  constexpr std::uint64_t list_node = 3 * sizeof(void*);
  const std::uint64_t key_heap = key.size() > 15 ? rounded(key.size() + 1) : 0;
  return rounded(map_node) + rounded(list_node) + key_heap + value.memory_bytes();
}

std::uint64_t store::bytes_of(const std::string& key, const entry& e) const noexcept {
  constexpr std::uint64_t index_node = 4 * sizeof(void*) + sizeof(time_point) + sizeof(void*);
  return entry_bytes(key, e.value) + (e.expires ? rounded(index_node) : 0);
}

store::map::iterator store::find_live(std::string_view key, time_point now) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return it;
  if (it->second.expires && *it->second.expires <= now) {  // lazy expiry
    ++stats_.expired;
    remove(it);
    return entries_.end();
  }
  return it;
}

void store::touch(entry& e) { recency_.splice(recency_.begin(), recency_, e.place); }

void store::remove(map::iterator it) {
  stats_.bytes -= it->second.bytes;
  recency_.erase(it->second.place);
  if (it->second.expires) expiries_.erase(it->second.expiry);
  entries_.erase(it);
}

void store::set_expiry(const std::string& key, entry& e, std::optional<time_point> expires) {
  if (e.expires) expiries_.erase(e.expiry);
  e.expires = expires;
  if (expires) e.expiry = expiries_.emplace(*expires, &key);
}

void store::make_room(std::uint64_t incoming, const std::string* keep) {
  while (stats_.bytes + incoming > max_bytes_ && !recency_.empty()) {
    const std::string* victim = recency_.back();
    if (victim == keep) {  // the entry being written is the only one left
      if (recency_.size() == 1) return;
      recency_.splice(recency_.begin(), recency_, std::prev(recency_.end()));
      continue;
    }
    evicted_.push_back(*victim);
    ++stats_.evictions;
    remove(entries_.find(*victim));
  }
}

bool store::put(std::string_view key, wire::value value, std::optional<milliseconds> ttl, time_point now) {
  if (entry_bytes(key, value) > max_bytes_) return false;
  auto it = find_live(key, now);
  if (it == entries_.end()) {
    it = entries_.emplace(std::string(key), entry{}).first;
    recency_.push_front(&it->first);
    it->second.place = recency_.begin();
  } else {
    touch(it->second);
  }
  entry& e = it->second;
  stats_.bytes -= e.bytes;
  e.value = std::move(value);
  set_expiry(it->first, e, ttl ? std::optional<time_point>(now + *ttl) : std::nullopt);
  e.bytes = bytes_of(it->first, e);
  make_room(e.bytes, &it->first);
  stats_.bytes += e.bytes;
  return true;
}

std::optional<got> store::get(std::string_view key, time_point now) {
  auto it = find_live(key, now);
  if (it == entries_.end()) {
    ++stats_.misses;
    return std::nullopt;
  }
  ++stats_.hits;
  touch(it->second);
  got g{it->second.value, std::nullopt};
  if (it->second.expires) g.ttl_left = left(*it->second.expires, now);
  return g;
}

bool store::erase(std::string_view key, time_point now) {
  auto it = find_live(key, now);
  if (it == entries_.end()) return false;
  remove(it);
  return true;
}

incr_result store::incr(std::string_view key, std::int64_t by, std::optional<milliseconds> ttl, time_point now) {
  auto it = find_live(key, now);
  std::int64_t current = 0;
  if (it != entries_.end()) {
    const auto n = it->second.value.as_int();
    if (!n) return {incr_refusal::not_an_integer, 0};
    current = *n;
  }
  std::int64_t next = 0;
  if (__builtin_add_overflow(current, by, &next)) return {incr_refusal::overflow, 0};
  std::optional<milliseconds> keep = ttl;
  if (!ttl && it != entries_.end() && it->second.expires) keep = left(*it->second.expires, now);
  put(key, wire::value::of_int(next), keep, now);
  return {incr_refusal::none, next};
}

bool store::expire(std::string_view key, milliseconds ttl, time_point now) {
  auto it = find_live(key, now);
  if (it == entries_.end()) return false;
  entry& e = it->second;
  stats_.bytes -= e.bytes;
  set_expiry(it->first, e, now + ttl);
  e.bytes = bytes_of(it->first, e);
  stats_.bytes += e.bytes;
  make_room(0, &it->first);
  return true;
}

std::optional<std::optional<milliseconds>> store::ttl(std::string_view key, time_point now) {
  auto it = find_live(key, now);
  if (it == entries_.end()) return std::nullopt;
  if (!it->second.expires) return std::optional<milliseconds>();
  return std::optional<milliseconds>(left(*it->second.expires, now));
}

std::vector<std::string> store::keys(std::string_view prefix, std::size_t limit, time_point now,
                                     std::string_view after) const {
  std::vector<std::string> out;
  for (const auto& [k, e] : entries_)
    if (k.compare(0, prefix.size(), prefix) == 0 && (!e.expires || *e.expires > now) &&
        (after.empty() || std::string_view(k) > after))
      out.push_back(k);
  const std::size_t n = std::min(limit, out.size());
  std::partial_sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n), out.end());
  out.resize(n);
  return out;
}

std::size_t store::clear(time_point now) {
  std::size_t live = 0;
  for (const auto& [k, e] : entries_)
    if (!e.expires || *e.expires > now) ++live;
  entries_.clear();
  recency_.clear();
  expiries_.clear();
  stats_.bytes = 0;
  return live;
}

std::vector<std::string> store::expire_due(time_point now, std::size_t budget) {
  std::vector<std::string> removed;
  while (!expiries_.empty() && expiries_.begin()->first <= now && removed.size() < budget) {
    auto it = entries_.find(*expiries_.begin()->second);
    removed.push_back(it->first);
    ++stats_.expired;
    remove(it);  // erases the index entry too
  }
  return removed;
}

std::optional<time_point> store::next_expiry() const {
  if (expiries_.empty()) return std::nullopt;
  return expiries_.begin()->first;
}

std::vector<std::string> store::take_evicted() { return std::exchange(evicted_, {}); }

cache_app::stats store::stats() const {
  cache_app::stats s = stats_;
  s.items = entries_.size();
  return s;
}

}  // namespace canopy::cache_app
