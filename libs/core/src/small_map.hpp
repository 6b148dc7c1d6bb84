#pragma once
// small_map: a map from a pointer or integer key to a value, stored in one flat array.
// Most processes hold zero to two links or monitors, where a short array searched linearly
// is smallest and fastest; a supervisor of 100,000 children (or a process awaiting 100,000
// tasks) holds 100,000, where the same array becomes an open-addressing hash table (linear
// probing, backward-shift deletion, load at most 1/2) so every operation stays O(1) and
// nothing is allocated per entry — a node-based map's malloc per insert dominated
// spawning linked processes.
// K{} (null / 0) is never a key: it marks an empty slot. V is default-constructible and
// movable. Thread-safety: none; owned by one process. for_each must not modify the map.

#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

#include "canopy/core/detail/node_pool.hpp"

namespace canopy::detail {

template <class K, class V>
class small_map {
  static_assert(std::is_integral_v<K> || std::is_pointer_v<K>, "small_map keys are integers or pointers");

 public:
  static constexpr std::uint32_t dense_limit = 8;  // up to this capacity: unordered array

  small_map() = default;
  small_map(const small_map&) = delete;
  small_map& operator=(const small_map&) = delete;
  ~small_map() { free_slots(slots_, cap_); }

  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  [[nodiscard]] V* find(const K& key) noexcept {
    slot* s = locate(key);
    return s ? &s->value : nullptr;
  }
  [[nodiscard]] bool contains(const K& key) noexcept { return locate(key) != nullptr; }

  // False (and nothing changes) if the key is present.
  bool insert(K key, V value) {
    assert(key != K{});
    if (locate(key)) return false;
    if (dense()) {
      if (size_ == cap_) {
        if (cap_ < dense_limit) {
          reallocate(cap_ == 0 ? 1 : cap_ * 2);
        } else {
          reallocate(4 * dense_limit);
        }
      }
      if (dense()) {
        slots_[size_].key = key;
        slots_[size_].value = std::move(value);
        ++size_;
        return true;
      }
    } else if (2 * (size_ + 1) > cap_) {
      reallocate(2 * cap_);
    }
    place(key, std::move(value));
    ++size_;
    return true;
  }

  // Removes the entry (moving its value to *out), if present.
  bool erase(const K& key, V* out = nullptr) {
    slot* s = locate(key);
    if (!s) return false;
    if (out) *out = std::move(s->value);
    if (dense()) {
      slot& last = slots_[size_ - 1];
      if (s != &last) {
        s->key = last.key;
        s->value = std::move(last.value);
      }
      clear(last);
    } else {
      remove_hashed(static_cast<std::uint32_t>(s - slots_));
    }
    --size_;
    if (size_ == 0) {
      release();
    } else if (!dense() && cap_ > 4 * dense_limit && size_ * 8 < cap_) {
      reallocate(cap_ / 4);  // stays at most 1/2 full, and shrinks back as entries go
    }
    return true;
  }

  template <class F>
  void for_each(F&& fn) {
    if (dense()) {
      for (std::uint32_t i = 0; i < size_; ++i) fn(slots_[i].key, slots_[i].value);
      return;
    }
    for (std::uint32_t i = 0; i < cap_; ++i)
      if (slots_[i].key != K{}) fn(slots_[i].key, slots_[i].value);
  }

 private:
  struct slot {
    K key{};
    V value{};
  };

  [[nodiscard]] bool dense() const noexcept { return cap_ <= dense_limit; }

  [[nodiscard]] std::uint32_t home(K key) const noexcept {
    std::uint64_t bits;
    if constexpr (std::is_pointer_v<K>) {
      bits = reinterpret_cast<std::uintptr_t>(key);
    } else {
      bits = static_cast<std::uint64_t>(key);
    }
    // Fibonacci hashing: the high bits of the product mix in every bit of the key.
    const int shift = 64 - std::countr_zero(cap_);  // cap_ is a power of two, >= 16 here
    return static_cast<std::uint32_t>((bits * 0x9E3779B97F4A7C15ull) >> shift);
  }

  slot* locate(const K& key) noexcept {
    if (dense()) {
      for (std::uint32_t i = 0; i < size_; ++i)
        if (slots_[i].key == key) return &slots_[i];
      return nullptr;
    }
    const std::uint32_t mask = cap_ - 1;
    for (std::uint32_t i = home(key);; i = (i + 1) & mask) {
      if (slots_[i].key == key) return &slots_[i];
      if (slots_[i].key == K{}) return nullptr;
    }
  }

  void place(K key, V&& value) noexcept {
    const std::uint32_t mask = cap_ - 1;
    std::uint32_t i = home(key);
    while (slots_[i].key != K{}) i = (i + 1) & mask;
    slots_[i].key = key;
    slots_[i].value = std::move(value);
  }

  // Backward-shift deletion: later entries of the probe run move up so no tombstones remain.
  void remove_hashed(std::uint32_t hole) noexcept {
    const std::uint32_t mask = cap_ - 1;
    for (std::uint32_t j = (hole + 1) & mask; slots_[j].key != K{}; j = (j + 1) & mask) {
      const std::uint32_t h = home(slots_[j].key);
      // j may move to the hole if its home is not cyclically within (hole, j].
      if (((j - h) & mask) >= ((j - hole) & mask)) {
        slots_[hole].key = slots_[j].key;
        slots_[hole].value = std::move(slots_[j].value);
        hole = j;
      }
    }
    clear(slots_[hole]);
  }

  static void clear(slot& s) noexcept {
    s.key = K{};
    s.value = V{};
  }

  // Slot arrays come from table_allocate: small ones from the pool, big ones on huge pages.
  static slot* new_slots(std::uint32_t cap) {
    auto* s = static_cast<slot*>(table_allocate(sizeof(slot) * cap));
    for (std::uint32_t i = 0; i < cap; ++i) new (&s[i]) slot();
    return s;
  }
  static void free_slots(slot* s, std::uint32_t cap) noexcept {
    if (s == nullptr) return;
    for (std::uint32_t i = 0; i < cap; ++i) s[i].~slot();
    table_deallocate(s, sizeof(slot) * cap);
  }

  void release() noexcept {
    free_slots(slots_, cap_);
    slots_ = nullptr;
    cap_ = 0;
  }

  void reallocate(std::uint32_t cap) {
    slot* old = slots_;
    const std::uint32_t old_cap = cap_;
    const bool was_dense = dense();
    const std::uint32_t old_size = size_;
    slots_ = new_slots(cap);
    cap_ = cap;
    if (dense()) {
      for (std::uint32_t i = 0; i < old_size; ++i) {
        slots_[i].key = old[i].key;
        slots_[i].value = std::move(old[i].value);
      }
    } else {
      for (std::uint32_t i = 0; i < (was_dense ? old_size : old_cap); ++i)
        if (old[i].key != K{}) place(old[i].key, std::move(old[i].value));
    }
    free_slots(old, old_cap);
  }

  slot* slots_ = nullptr;
  std::uint32_t size_ = 0;
  std::uint32_t cap_ = 0;
};

}  // namespace canopy::detail
