#pragma once
// table: ETS-like shared tables (SEMANTICS.md 46). A table is created by a process, its
// owner, and read and written by any process or thread its access allows; it is deleted
// when the owner exits, unless an heir is named: the heir then owns it and is told with a
// table_transfer message (ETS's 'ETS-TRANSFER').
// Thread-safety: every operation may run on any thread, in parallel.
//
//   auto prices = canopy::table<std::string, double>::create({.name = "prices",
//                                                             .access = canopy::table_access::everyone});
//   prices->insert("apple", 1.2);
//   auto p = canopy::table<std::string, double>::whereis(rt, "prices")->lookup("apple");
//
// Types: set (one value per key, hashed), ordered_set (one value per key, in key order),
// bag (many values per key; a value equal to one already under the key is not added again
// when V has ==). Access (ETS's public / protected / private): everyone reads and writes;
// owner_writes (the default) lets everyone read and only the owner write; owner_only
// keeps others out. A refused access, and any use of a deleted table, throws
// table_error (ETS raises badarg): inside a process that is a crash, as in OTP.
//
// Consistency: set and bag tables are split into shards by key hash, each a hash table
// behind a read-mostly reader-writer lock (readers on different threads share no written
// cache line; writers wait for the readers of their shard), so reads scale with threads and
// writers wait only for their shard; ordered_set is one ordered tree behind one such lock.
// Each shard's lock takes ~600 bytes: a table of the default 8 shards per scheduler costs a
// few KiB before any entry. Every
// operation on one key is atomic (update_counter included). Traversals (select, foldl,
// tab2list, size, memory) visit the shards one after another: each shard is seen as a
// whole at some moment, the table as a whole is not one snapshot (as ETS traversals).

#include <algorithm>
#include <any>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "canopy/core/detail/exit_hook.hpp"
#include "canopy/core/pid.hpp"
#include "canopy/core/process.hpp"
#include "canopy/core/result.hpp"
#include "canopy/core/runtime.hpp"
#include "canopy/otp/detail/flat_map.hpp"
#include "canopy/otp/detail/read_mostly_lock.hpp"

namespace canopy {

enum class table_type : std::uint8_t { set, ordered_set, bag };
enum class table_access : std::uint8_t {
  everyone,      // ETS public
  owner_writes,  // ETS protected (the default)
  owner_only,    // ETS private
};

struct table_options {
  table_type type = table_type::set;
  table_access access = table_access::owner_writes;
  std::string name;  // a named table is found with table<K, V>::whereis while it lives
  pid heir;          // owns the table when the owner exits (if alive then)
  std::any heir_data;
  unsigned shards = 0;  // set and bag: 0 means 8 per scheduler thread
};

// Thrown on a refused access or the use of a deleted table.
class table_error : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

template <class K, class V>
class table;

// Sent to the heir when it inherits a table (ETS's {'ETS-TRANSFER', Tab, From, HeirData}).
template <class K, class V>
struct table_transfer {
  table<K, V> inherited;
  pid from;
  std::any heir_data;
};

namespace detail {

// The part of a table that does not depend on its key and value types: owner, access,
// life. The owner's exit hook deletes the table or hands it to the heir.
class table_base : public std::enable_shared_from_this<table_base> {
 public:
  explicit table_base(table_options options) : options_(std::move(options)) {}
  virtual ~table_base() = default;
  table_base(const table_base&) = delete;
  table_base& operator=(const table_base&) = delete;

  [[nodiscard]] const table_options& options() const noexcept { return options_; }
  [[nodiscard]] bool alive() const noexcept { return alive_.load(std::memory_order_acquire); }
  [[nodiscard]] pid owner() const;

  // Throws table_error if the calling process (or thread) may not read / write.
  void check_read() const;
  void check_write() const;

  // Owner only: deletes the table now.
  void remove();

  // Internal: ownership (install_table, the owner's exit hook).
  void set_owner(pid owner, runtime_core* rt, const std::type_info* published_as);
  void owner_exited(const pid& owner) noexcept;

 protected:
  virtual void clear_all() noexcept = 0;
  // A table_transfer<K, V> for the heir.
  virtual void send_transfer(const pid& heir, const pid& from) = 0;

 private:
  void delete_now() noexcept;
  table_options options_;
  std::atomic<bool> alive_{true};
  std::atomic<const void*> owner_cell_{nullptr};  // compared on every checked access
  mutable std::mutex mu_;                         // the rest
  pid owner_;
  bool heir_used_ = false;
  runtime_core* rt_ = nullptr;
  const std::type_info* published_as_ = nullptr;  // named tables: the resource's type
};

std::shared_ptr<table_base> find_table(runtime_core& rt, const std::string& name, const std::type_info& type);
runtime_core& table_current_core();
unsigned default_table_shards(runtime_core& rt) noexcept;

template <class V>
std::size_t value_bytes(const V& v) noexcept {
  if constexpr (requires { v.memory_bytes(); }) {
    return v.memory_bytes();  // a type that knows its footprint (wire::value)
  } else if constexpr (std::is_same_v<V, std::string>) {
    return sizeof(V) + (v.capacity() > 15 ? v.capacity() + 1 : 0);
  } else {
    return sizeof(V);
  }
}

}  // namespace detail

template <class K, class V>
class table {
  class state;

 public:
  table() = default;  // an empty handle (bool false)

  // Creates a table owned by the calling process. errc::already_started if the name is
  // taken; errc::invalid_argument for bad options. Must be called inside a process.
  static canopy::result<table> create(table_options options = {});
  static std::optional<table> whereis(runtime& rt, const std::string& name) { return find_in(detail::core_of(rt), name); }
  static std::optional<table> whereis(const std::string& name) { return find_in(detail::table_current_core(), name); }

  explicit operator bool() const noexcept { return state_ != nullptr; }
  [[nodiscard]] bool alive() const noexcept { return state_ && state_->alive(); }
  [[nodiscard]] pid owner() const { return checked().owner(); }
  [[nodiscard]] const table_options& options() const { return checked().options(); }

  // set / ordered_set: stores or replaces; bag: adds. True if the key was new.
  bool insert(K key, V value) { return checked_write().insert(std::move(key), std::move(value), false); }
  // Stores only if the key is absent; false (nothing changed) otherwise.
  bool insert_new(K key, V value) { return checked_write().insert(std::move(key), std::move(value), true); }
  // The value under `key` (for a bag: the first one).
  [[nodiscard]] std::optional<V> lookup(const K& key) const { return checked_read().lookup(key); }
  // Every value under `key` (one at most for set and ordered_set).
  [[nodiscard]] std::vector<V> lookup_all(const K& key) const { return checked_read().lookup_all(key); }
  [[nodiscard]] bool member(const K& key) const { return checked_read().member(key); }
  // Removes the key and its values; how many values went.
  std::size_t erase(const K& key) { return checked_write().erase(key); }
  // Atomically adds `incr` to the value under `key` (set / ordered_set of an arithmetic V)
  // and returns the new value; an absent key starts from `initial` if given, else
  // errc::not_found.
  canopy::result<V> update_counter(const K& key, V incr, std::optional<V> initial = std::nullopt)
    requires std::is_arithmetic_v<V>
  {
    return checked_write().update_counter(key, incr, initial);
  }
  // Entries for which pred(key, value) holds.
  template <class P>
  [[nodiscard]] std::vector<std::pair<K, V>> select(P&& pred) const {
    return checked_read().select(std::forward<P>(pred));
  }
  // acc = fn(key, value, acc) over every entry.
  template <class A, class F>
  A foldl(F&& fn, A acc) const {
    return checked_read().foldl(std::forward<F>(fn), std::move(acc));
  }
  [[nodiscard]] std::vector<std::pair<K, V>> tab2list() const {
    return select([](const K&, const V&) { return true; });
  }
  [[nodiscard]] std::size_t size() const { return checked_read().size(); }
  // Bytes the entries take (keys, values and the containers' per-entry overhead).
  [[nodiscard]] std::size_t memory() const { return checked_read().memory(); }
  // Owner only: deletes the table (its name too).
  void remove() { checked().remove(); }

 private:
  explicit table(std::shared_ptr<state> s) : state_(std::move(s)) {}

  state& checked() const {
    if (!state_) throw table_error("an empty table handle");
    if (!state_->alive()) throw table_error("the table " + describe() + " was deleted");
    return *state_;
  }
  state& checked_read() const {
    state& s = checked();
    s.check_read();
    return s;
  }
  state& checked_write() const {
    state& s = checked();
    s.check_write();
    return s;
  }
  [[nodiscard]] std::string describe() const {
    return state_->options().name.empty() ? std::string("(unnamed)") : state_->options().name;
  }

  static std::optional<table> find_in(detail::runtime_core& rt, const std::string& name) {
    auto base = detail::find_table(rt, name, typeid(state));
    if (!base) return std::nullopt;
    return table(std::static_pointer_cast<state>(base));
  }

  class state final : public detail::table_base {
   public:
    explicit state(table_options options, unsigned shards) : table_base(std::move(options)) {
      if (this->options().type != table_type::ordered_set) hashed_ = std::vector<shard>(shards);
    }

    bool insert(K key, V value, bool only_new) {
      if (ordered()) {
        std::unique_lock lk(tree_mu_);
        auto [it, fresh] = tree_.try_emplace(std::move(key), std::move(value));
        if (!fresh && !only_new) it->second = std::move(value);
        return fresh;
      }
      shard& s = shard_of(key);
      std::unique_lock lk(s.mu);
      if (options().type == table_type::set) {
        auto [slot, fresh] = s.one.try_emplace(std::move(key), std::move(value));
        if (!fresh && !only_new) *slot = std::move(value);  // not moved from: try_emplace found the key
        return fresh;
      }
      auto [first, last] = s.many.equal_range(key);
      const bool fresh = first == last;
      if (only_new && !fresh) return false;
      if constexpr (std::equality_comparable<V>) {
        for (auto it = first; it != last; ++it)
          if (it->second == value) return fresh;  // a bag holds each value once per key
      }
      s.many.emplace(std::move(key), std::move(value));
      return fresh;
    }

    std::optional<V> lookup(const K& key) const {
      if (ordered()) {
        std::shared_lock lk(tree_mu_);
        auto it = tree_.find(key);
        return it == tree_.end() ? std::nullopt : std::optional<V>(it->second);
      }
      const shard& s = shard_of(key);
      std::shared_lock lk(s.mu);
      if (options().type == table_type::set) {
        const V* v = s.one.find(key);
        return v == nullptr ? std::nullopt : std::optional<V>(*v);
      }
      auto it = s.many.find(key);
      return it == s.many.end() ? std::nullopt : std::optional<V>(it->second);
    }

    std::vector<V> lookup_all(const K& key) const {
      std::vector<V> out;
      if (options().type != table_type::bag) {
        if (auto v = lookup(key)) out.push_back(std::move(*v));
        return out;
      }
      const shard& s = shard_of(key);
      std::shared_lock lk(s.mu);
      auto [first, last] = s.many.equal_range(key);
      for (auto it = first; it != last; ++it) out.push_back(it->second);
      return out;
    }

    bool member(const K& key) const {
      if (ordered()) {
        std::shared_lock lk(tree_mu_);
        return tree_.count(key) != 0;
      }
      const shard& s = shard_of(key);
      std::shared_lock lk(s.mu);
      return options().type == table_type::set ? s.one.find(key) != nullptr : s.many.count(key) != 0;
    }

    std::size_t erase(const K& key) {
      if (ordered()) {
        std::unique_lock lk(tree_mu_);
        return tree_.erase(key);
      }
      shard& s = shard_of(key);
      std::unique_lock lk(s.mu);
      return options().type == table_type::set ? s.one.erase(key) : s.many.erase(key);
    }

    canopy::result<V> update_counter(const K& key, V incr, std::optional<V> initial) {
      if (options().type == table_type::bag) return error(errc::invalid_argument, "update_counter on a bag");
      auto bump = [&](auto& map) -> canopy::result<V> {
        auto it = map.find(key);
        if (it == map.end()) {
          if (!initial) return error(errc::not_found, "update_counter: no such key");
          it = map.emplace(key, *initial).first;
        }
        it->second += incr;
        return it->second;
      };
      if (ordered()) {
        std::unique_lock lk(tree_mu_);
        return bump(tree_);
      }
      shard& s = shard_of(key);
      std::unique_lock lk(s.mu);
      V* v = s.one.find(key);
      if (v == nullptr) {
        if (!initial) return error(errc::not_found, "update_counter: no such key");
        v = s.one.try_emplace(key, *initial).first;
      }
      *v += incr;
      return *v;
    }

    template <class P>
    std::vector<std::pair<K, V>> select(P&& pred) const {
      std::vector<std::pair<K, V>> out;
      each([&](const K& k, const V& v) {
        if (pred(k, v)) out.emplace_back(k, v);
      });
      return out;
    }

    template <class F, class A>
    A foldl(F&& fn, A acc) const {
      each([&](const K& k, const V& v) { acc = fn(k, v, std::move(acc)); });
      return acc;
    }

    std::size_t size() const {
      if (ordered()) {
        std::shared_lock lk(tree_mu_);
        return tree_.size();
      }
      std::size_t n = 0;
      for (const shard& s : hashed_) {
        std::shared_lock lk(s.mu);
        n += s.one.size() + s.many.size();
      }
      return n;
    }

    std::size_t memory() const {
      // set: the shards' flat arrays (a slot per entry and a tag byte, at load <= 3/4) plus
      // what entries own on the heap (a long string's buffer). ordered_set and bag: per
      // entry the key and value and the container's node (two pointers and a cached hash,
      // or a tree node's three pointers and colour), rounded as malloc rounds; per shard the
      // bucket array.
      constexpr std::size_t node_overhead = 3 * sizeof(void*);
      std::size_t bytes = 0;
      const bool flat = options().type == table_type::set;
      auto add = [&](const K& k, const V& v) {
        if (flat) {
          bytes += detail::value_bytes(k) - sizeof(K) + detail::value_bytes(v) - sizeof(V);
        } else {
          const std::size_t raw = detail::value_bytes(k) + detail::value_bytes(v) + node_overhead;
          bytes += (raw + 15) / 16 * 16;
        }
      };
      each(add);
      for (const shard& s : hashed_) {
        std::shared_lock lk(s.mu);
        bytes += s.one.array_bytes() + s.many.bucket_count() * sizeof(void*);
      }
      return bytes;
    }

   private:
    struct alignas(64) shard {
      mutable detail::read_mostly_lock mu;
      detail::flat_map<K, V> one;          // set
      std::unordered_multimap<K, V> many;  // bag
    };

    [[nodiscard]] bool ordered() const noexcept { return options().type == table_type::ordered_set; }
    shard& shard_of(const K& key) { return hashed_[detail::shard_for(std::hash<K>()(key), hashed_.size())]; }
    const shard& shard_of(const K& key) const {
      return hashed_[detail::shard_for(std::hash<K>()(key), hashed_.size())];
    }

    template <class F>
    void each(F&& fn) const {
      if (ordered()) {
        std::shared_lock lk(tree_mu_);
        for (const auto& [k, v] : tree_) fn(k, v);
        return;
      }
      for (const shard& s : hashed_) {
        std::shared_lock lk(s.mu);
        s.one.for_each(fn);
        for (const auto& [k, v] : s.many) fn(k, v);
      }
    }

    void clear_all() noexcept override {
      {
        std::unique_lock lk(tree_mu_);
        tree_.clear();
      }
      for (shard& s : hashed_) {
        std::unique_lock lk(s.mu);
        s.one.clear();
        s.many.clear();
      }
    }

    void send_transfer(const pid& heir, const pid& from) override {
      detail::send_message(heir, table_transfer<K, V>{table(std::static_pointer_cast<state>(shared_from_this())),
                                                      from, options().heir_data});
    }

    std::vector<shard> hashed_;
    mutable detail::read_mostly_lock tree_mu_;
    std::map<K, V> tree_;
  };

  std::shared_ptr<state> state_;
};

namespace detail {
// Registers `table` (just created by the calling process): its owner hook, its name.
canopy::result<void> install_table(runtime_core& rt, const std::shared_ptr<table_base>& table,
                                   const std::type_info& type);
}  // namespace detail

template <class K, class V>
canopy::result<table<K, V>> table<K, V>::create(table_options options) {
  if (options.type == table_type::ordered_set && options.shards != 0)
    return error(errc::invalid_argument, "an ordered_set has no shards");
  detail::runtime_core& rt = detail::table_current_core();
  const unsigned shards = options.shards != 0 ? options.shards : detail::default_table_shards(rt);
  auto s = std::make_shared<state>(std::move(options), shards);
  const detail::table_base& base = *s;
  if (auto installed = detail::install_table(rt, s, typeid(base)); !installed) return installed.error();
  return table(std::move(s));
}

}  // namespace canopy
