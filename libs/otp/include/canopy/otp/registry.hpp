#pragma once
// registry: Elixir's Registry (SEMANTICS.md 43-45). A local key/value store of processes:
// a process registers itself under keys, others look them up; a process's entries vanish
// when it exits. Thread-safety: lookups and the other reads run on any thread, in parallel;
// register_key / unregister / update_value act for the calling process (call them from
// inside a process).
//
//   // under a supervisor (or registry<K, V>::start(rt, options) outside any tree):
//   canopy::registry<std::string>::spec({.name = "sessions"})
//   // any process:
//   auto reg = canopy::registry<std::string>::whereis(rt, "sessions");
//   reg->register_key("alice", {});               // the calling process, under "alice"
//   auto who = reg->lookup("alice");              // [{pid, value}]
//   // a gen_server named by a key, called by that key:
//   gen_server::start_link<session>({.name = canopy::via(*reg, "bob")});
//   gen_server::call<int>(rt, canopy::via(*reg, "bob"), get{});
//
// Keys are unique (one process per key; a taken key answers errc::already_registered
// naming the holder) or duplicate (any number of entries per key, a process may register a
// key more than once: the building block of dispatch / pub-sub). Entries are spread over
// partitions (default: one per scheduler thread) by key hash, each a hash table behind a
// read-mostly lock (readers on different threads share no written cache line), so lookups
// scale with threads and never message the registry's process. A reader sees each partition consistently; a lookup of one key is
// atomic, a listing over partitions (count, select) is not a snapshot of the whole.
// The registry's process owns the entries: when it stops they are gone, and the handle
// answers errc::noproc / empty results (a restarted registry is a new one: look it up again).

#include <any>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "canopy/core/detail/exit_hook.hpp"
#include "canopy/core/detail/node_pool.hpp"
#include "canopy/core/process.hpp"
#include "canopy/core/process_name.hpp"
#include "canopy/core/runtime.hpp"
#include "canopy/otp/child_spec.hpp"
#include "canopy/otp/detail/probing_multimap.hpp"
#include "canopy/otp/detail/read_mostly_lock.hpp"

namespace canopy {

enum class registry_keys : std::uint8_t { unique, duplicate };

struct registry_options {
  std::string name;  // required: how processes find the registry (registry<K, V>::whereis)
  registry_keys keys = registry_keys::unique;
  unsigned partitions = 0;  // 0: one per scheduler thread
};

namespace detail {

// The part of a registry that does not depend on its key and value types.
class registry_base : public std::enable_shared_from_this<registry_base> {
 public:
  registry_base(registry_options options, unsigned partitions)
      : options_(std::move(options)), partition_count_(partitions == 0 ? 1 : partitions) {}
  virtual ~registry_base() = default;
  registry_base(const registry_base&) = delete;
  registry_base& operator=(const registry_base&) = delete;

  [[nodiscard]] const registry_options& options() const noexcept { return options_; }
  [[nodiscard]] unsigned partitions() const noexcept { return partition_count_; }
  [[nodiscard]] bool alive() const noexcept { return alive_.load(std::memory_order_acquire); }
  [[nodiscard]] pid owner() const;

  void put_meta(const std::string& key, std::any value);
  [[nodiscard]] std::optional<std::any> meta(const std::string& key) const;

  // Called by the registry's process: as it starts, and when it exits (everything
  // registered goes).
  void set_owner(pid owner);
  void close() noexcept;

 protected:
  virtual void clear_entries() noexcept = 0;

 private:
  registry_options options_;
  unsigned partition_count_;
  std::atomic<bool> alive_{true};
  mutable std::mutex mu_;  // owner_ and meta_
  pid owner_;
  std::unordered_map<std::string, std::any> meta_;
};

// Starts the process that owns `state` (publishes it under its name, closes it on exit).
canopy::result<pid> start_registry(runtime_core& rt, process_cell* parent, std::shared_ptr<registry_base> state);
std::shared_ptr<registry_base> find_registry(runtime_core& rt, const std::string& name, const std::type_info& type);
unsigned default_partitions(runtime_core& rt) noexcept;
runtime_core& current_core();
[[noreturn]] void throw_registry_outside_process(const char* what);

}  // namespace detail

template <class K, class V = std::monostate>
class registry {
  class state;

 public:
  struct entry {
    pid owner;
    [[no_unique_address]] V value;  // a registry without values stores none
  };

  // ---- starting and finding ---------------------------------------------------------------

  // An unlinked registry (its process outside any tree). errc::already_started if the name
  // is taken; errc::invalid_argument without a name.
  static canopy::result<registry> start(runtime& rt, registry_options options) {
    return start_in(detail::core_of(rt), nullptr, std::move(options));
  }
  // From inside a process (a supervisor's start function): linked to it.
  static child_start start_link(registry_options options) {
    detail::process_cell* parent = detail::current_process();
    if (parent == nullptr) detail::throw_registry_outside_process("registry::start_link");
    auto started = start_in(detail::core_of(parent), parent, std::move(options));
    if (!started) return child_start::ready(started.error());
    return child_start::ready(started->owner());
  }
  // A child spec (a worker, id = the name) for a supervisor.
  static child_spec spec(registry_options options) {
    std::string id = "registry:" + options.name;
    return child_spec(std::move(id), [options]() { return start_link(options); });
  }
  // The live registry of that name (with these key and value types), if any.
  static std::optional<registry> whereis(runtime& rt, const std::string& name) {
    return find_in(detail::core_of(rt), name);
  }
  // From inside a process: in its runtime.
  static std::optional<registry> whereis(const std::string& name) { return find_in(detail::current_core(), name); }

  [[nodiscard]] bool alive() const noexcept { return state_->alive(); }
  [[nodiscard]] pid owner() const { return state_->owner(); }
  [[nodiscard]] const registry_options& options() const noexcept { return state_->options(); }
  [[nodiscard]] unsigned partitions() const noexcept { return state_->partitions(); }

  // ---- the calling process's entries --------------------------------------------------------

  // Registers the calling process under `key` (unique: errc::already_registered naming the
  // live holder; a dead holder's key is taken over). errc::noproc if the registry stopped.
  canopy::result<void> register_key(K key, V value = V{}) {
    return state_->register_process(running_process("registry::register_key"), std::move(key), std::move(value));
  }
  // Removes the calling process's entries under `key` (all of them, for duplicate keys).
  void unregister(const K& key) { state_->unregister(running_process("registry::unregister"), key); }
  // Unique keys: replaces the calling process's value under `key` with fn(old value);
  // returns {new, old}, or errc::not_found if the caller does not hold the key.
  template <class F>
  canopy::result<std::pair<V, V>> update_value(const K& key, F&& fn) {
    return state_->update_value(running_process("registry::update_value"), key, std::forward<F>(fn));
  }

  // ---- reads, from any thread ----------------------------------------------------------------

  [[nodiscard]] std::vector<entry> lookup(const K& key) const { return state_->lookup(key); }
  // The keys `p` registered (in registration order). For the calling process this reads
  // its own record; for another process it scans the registry (O(entries)).
  [[nodiscard]] std::vector<K> keys(const pid& p) const { return state_->keys_of(p); }
  // The values `p` registered under `key`.
  [[nodiscard]] std::vector<V> values(const K& key, const pid& p) const { return state_->values(key, p); }
  [[nodiscard]] std::size_t count() const { return state_->count(); }
  // Entries under `key` whose value satisfies `pred`.
  template <class P>
  [[nodiscard]] std::size_t count_match(const K& key, P&& pred) const {
    return state_->count_match(key, std::forward<P>(pred));
  }
  // Every entry for which pred(key, pid, value) holds.
  template <class P>
  [[nodiscard]] std::vector<std::tuple<K, pid, V>> select(P&& pred) const {
    return state_->select(std::forward<P>(pred));
  }
  // Calls fn(entries) with the entries under `key` if there are any (copied out first, so
  // fn may send, call or register). Returns whether fn ran.
  template <class F>
  bool dispatch(const K& key, F&& fn) const {
    std::vector<entry> found = state_->lookup(key);
    if (found.empty()) return false;
    fn(found);
    return true;
  }

  // Registry-wide metadata (Registry.put_meta / meta).
  void put_meta(const std::string& key, std::any value) { state_->put_meta(key, std::move(value)); }
  [[nodiscard]] std::optional<std::any> meta(const std::string& key) const { return state_->meta(key); }

  // Internal: for via names.
  canopy::result<void> register_process(detail::process_cell* p, K key, V value) const {
    return state_->register_process(p, std::move(key), std::move(value));
  }
  [[nodiscard]] pid whereis_key(const K& key) const { return state_->whereis_key(key); }

 private:
  explicit registry(std::shared_ptr<state> s) : state_(std::move(s)) {}

  static detail::process_cell* running_process(const char* what) {
    detail::process_cell* p = detail::current_process();
    if (p == nullptr) detail::throw_registry_outside_process(what);
    return p;
  }

  static canopy::result<registry> start_in(detail::runtime_core& rt, detail::process_cell* parent,
                                           registry_options options) {
    if (options.name.empty()) return error(errc::invalid_argument, "a registry needs a name");
    const unsigned parts = options.partitions != 0 ? options.partitions : detail::default_partitions(rt);
    auto s = std::make_shared<state>(std::move(options), parts);
    auto started = detail::start_registry(rt, parent, s);
    if (!started) return started.error();
    return registry(std::move(s));
  }
  static std::optional<registry> find_in(detail::runtime_core& rt, const std::string& name) {
    auto base = detail::find_registry(rt, name, typeid(state));
    if (!base) return std::nullopt;
    return registry(std::static_pointer_cast<state>(base));
  }

  // The keys one process holds in this registry, removed when it exits: an exit hook the
  // process owns (only it reads or changes it). Most processes hold one key, kept inline;
  // the hook comes from the node pool.
  class process_keys final : public detail::exit_hook, public detail::pool_allocated {
   public:

    process_keys(std::shared_ptr<state> s, pid who) : state_(std::move(s)), who_(std::move(who)) {}
    [[nodiscard]] const void* tag() const noexcept override { return state_.get(); }
    void on_exit(const pid&, const exit_reason&) noexcept override { state_->remove_process(*this); }

    void add(K key) {
      if (!first_) {
        first_.emplace(std::move(key));
      } else {
        if (!more_) more_ = std::make_unique<std::vector<K>>();
        more_->push_back(std::move(key));
      }
    }
    void remove(const K& key) {
      if (more_) std::erase(*more_, key);
      if (first_ && *first_ == key) {
        first_.reset();
        if (more_ && !more_->empty()) {  // keep the registration order
          first_.emplace(std::move(more_->front()));
          more_->erase(more_->begin());
        }
      }
    }
    [[nodiscard]] std::vector<K> all() const {
      std::vector<K> out;
      if (first_) out.push_back(*first_);
      if (more_) out.insert(out.end(), more_->begin(), more_->end());
      return out;
    }

    std::shared_ptr<state> state_;
    pid who_;

   private:
    std::optional<K> first_;
    std::unique_ptr<std::vector<K>> more_;
  };

  class state final : public detail::registry_base {
   public:
    state(registry_options options, unsigned parts) : registry_base(std::move(options), parts), parts_(partitions()) {}

    canopy::result<void> register_process(detail::process_cell* p, K key, V value) {
      if (!alive()) return error(errc::noproc, "registry " + options().name + " is not running");
      const pid who = detail::pid_of(p);
      partition& part = partition_of(key);
      {
        std::unique_lock lk(part.mu);
        if (options().keys == registry_keys::unique) {
          if (const entry* held = part.map.find_if(key, [](const entry&) { return true; })) {
            if (held->owner == who || detail::is_alive(held->owner))
              return error(errc::already_registered, held->owner.to_string());
            // Its holder exited; its exit hook will find nothing to remove.
            part.map.erase_if(key, [](const entry&) { return true; });
          }
        }
        part.map.insert(key, entry{who, std::move(value)});
      }
      keys_of_process(p, who).add(std::move(key));
      return {};
    }

    void unregister(detail::process_cell* p, const K& key) {
      const pid who = detail::pid_of(p);
      remove_entries(key, who);
      if (auto* keys = static_cast<process_keys*>(detail::find_exit_hook(p, this))) keys->remove(key);
    }

    template <class F>
    canopy::result<std::pair<V, V>> update_value(detail::process_cell* p, const K& key, F&& fn) {
      const pid who = detail::pid_of(p);
      partition& part = partition_of(key);
      std::unique_lock lk(part.mu);
      entry* mine = part.map.find_if(key, [&](const entry& e) { return e.owner == who; });
      if (mine == nullptr) return error(errc::not_found, "the calling process holds no such key");
      V old = mine->value;
      mine->value = fn(static_cast<const V&>(old));
      return std::pair<V, V>(mine->value, std::move(old));
    }

    std::vector<entry> lookup(const K& key) const {
      std::vector<entry> out;
      const partition& part = partition_of(key);
      std::shared_lock lk(part.mu);
      part.map.for_each_equal(key, [&](const entry& e) {
        out.push_back(e);
        return true;
      });
      return out;
    }

    pid whereis_key(const K& key) const {
      const partition& part = partition_of(key);
      std::shared_lock lk(part.mu);
      pid found;
      part.map.for_each_equal(key, [&](const entry& e) {
        found = e.owner;
        return false;
      });
      return found;
    }

    std::vector<K> keys_of(const pid& p) const {
      detail::process_cell* self = detail::current_process();
      if (self != nullptr && detail::pid_of(self) == p) {  // its own record, on its own thread
        const auto* keys = static_cast<const process_keys*>(detail::find_exit_hook(self, this));
        return keys ? keys->all() : std::vector<K>();
      }
      std::vector<K> out;  // another process's: every partition, in no particular order
      for (const partition& part : parts_) {
        std::shared_lock lk(part.mu);
        part.map.for_each([&](const K& k, const entry& e) {
          if (e.owner == p) out.push_back(k);
        });
      }
      return out;
    }

    std::vector<V> values(const K& key, const pid& p) const {
      std::vector<V> out;
      const partition& part = partition_of(key);
      std::shared_lock lk(part.mu);
      part.map.for_each_equal(key, [&](const entry& e) {
        if (e.owner == p) out.push_back(e.value);
        return true;
      });
      return out;
    }

    std::size_t count() const {
      std::size_t n = 0;
      for (const partition& part : parts_) {
        std::shared_lock lk(part.mu);
        n += part.map.size();
      }
      return n;
    }

    template <class P>
    std::size_t count_match(const K& key, P&& pred) const {
      std::size_t n = 0;
      const partition& part = partition_of(key);
      std::shared_lock lk(part.mu);
      part.map.for_each_equal(key, [&](const entry& e) {
        if (pred(static_cast<const V&>(e.value))) ++n;
        return true;
      });
      return n;
    }

    template <class P>
    std::vector<std::tuple<K, pid, V>> select(P&& pred) const {
      std::vector<std::tuple<K, pid, V>> out;
      for (const partition& part : parts_) {
        std::shared_lock lk(part.mu);
        part.map.for_each([&](const K& k, const entry& e) {
          if (pred(k, static_cast<const pid&>(e.owner), static_cast<const V&>(e.value))) out.emplace_back(k, e.owner, e.value);
        });
      }
      return out;
    }

    // A process exited: its entries go (only those still its own: a unique key a new
    // holder took over stays).
    void remove_process(process_keys& keys) noexcept {
      for (const K& key : keys.all()) remove_entries(key, keys.who_);
    }

   private:
    struct occupied {
      bool operator()(const entry& e) const noexcept { return static_cast<bool>(e.owner); }
    };
    struct alignas(64) partition {
      mutable detail::read_mostly_lock mu;
      detail::probing_multimap<K, entry, occupied> map;
    };

    partition& partition_of(const K& key) { return parts_[detail::shard_for(std::hash<K>()(key), parts_.size())]; }
    const partition& partition_of(const K& key) const {
      return parts_[detail::shard_for(std::hash<K>()(key), parts_.size())];
    }

    void remove_entries(const K& key, const pid& who) noexcept {
      partition& part = partition_of(key);
      std::unique_lock lk(part.mu);
      part.map.erase_if(key, [&](const entry& e) { return e.owner == who; });
    }

    // The calling (or starting) process's record of its keys here: its own exit hook.
    process_keys& keys_of_process(detail::process_cell* p, const pid& who) {
      if (auto* keys = static_cast<process_keys*>(detail::find_exit_hook(p, this))) return *keys;
      auto fresh = std::make_unique<process_keys>(std::static_pointer_cast<state>(shared_from_this()), who);
      process_keys& keys = *fresh;
      detail::add_exit_hook(p, std::move(fresh));
      return keys;
    }

    void clear_entries() noexcept override {
      for (partition& part : parts_) {
        std::unique_lock lk(part.mu);
        part.map.clear();
      }
    }

    std::vector<partition> parts_;
  };

  std::shared_ptr<state> state_;
};

namespace detail {
template <class K, class V>
class registry_binding final : public name_binding {
 public:
  registry_binding(registry<K, V> r, K key, V value) : registry_(std::move(r)), key_(std::move(key)), value_(std::move(value)) {}
  canopy::result<void> register_process(runtime_core&, process_cell* p) const override {
    if (registry_.options().keys != registry_keys::unique)
      return error(errc::invalid_argument, "a via name needs a registry of unique keys");
    return registry_.register_process(p, key_, value_);
  }
  [[nodiscard]] pid whereis(runtime_core&) const override { return registry_.whereis_key(key_); }
  [[nodiscard]] std::string to_string() const override {
    if constexpr (std::is_convertible_v<const K&, std::string>) {
      return "{via," + registry_.options().name + "," + std::string(key_) + "}";
    } else if constexpr (std::is_arithmetic_v<K>) {
      return "{via," + registry_.options().name + "," + std::to_string(key_) + "}";
    } else {
      return "{via," + registry_.options().name + "}";
    }
  }

 private:
  registry<K, V> registry_;
  K key_;
  V value_;
};
}  // namespace detail

// A name for a process: `key` in the unique-key registry `r` (OTP's {via, Registry, {r, key}}).
template <class K, class V, class Key>
process_name via(const registry<K, V>& r, Key&& key, V value = V{}) {
  return process_name(std::make_shared<detail::registry_binding<K, V>>(r, K(std::forward<Key>(key)), std::move(value)));
}

}  // namespace canopy
