#pragma once
// Internal: a hash map in one flat array (open addressing, linear probing, backward-shift
// deletion, load at most 3/4), for the shards of set tables. The capacity need not be a
// power of two (a hash picks its home by multiply-shift), so a big array fills the huge
// pages it is mapped on instead of wasting their rounding.
//
// Why not std::unordered_map: every entry there is its own allocation (a malloc per
// insert, a free per erase) and a lookup follows a bucket pointer to a node; growing
// rehashes node by node. Here entries sit in the array, beside a byte per slot that holds
// 7 bits of the hash, so most mismatches are rejected without touching the key.
// K and V must be nothrow-move-constructible (growing and deleting move entries).
// Thread-safety: none (the shard's lock guards it).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "canopy/core/detail/node_pool.hpp"

namespace canopy::detail {

__extension__ typedef unsigned __int128 flat_map_wide;  // GCC and clang; for multiply-shift

template <class K, class V, class Hash = std::hash<K>>
class flat_map {
  static_assert(std::is_nothrow_move_constructible_v<K> && std::is_nothrow_move_constructible_v<V>,
                "table keys and values must be nothrow-move-constructible");

 public:
  flat_map() = default;
  flat_map(const flat_map&) = delete;
  flat_map& operator=(const flat_map&) = delete;
  flat_map(flat_map&& other) noexcept { steal(other); }
  flat_map& operator=(flat_map&& other) noexcept {
    if (this != &other) {
      release();
      steal(other);
    }
    return *this;
  }
  ~flat_map() { release(); }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  // Bytes of the arrays (slots and tag bytes), for memory accounting.
  [[nodiscard]] std::size_t array_bytes() const noexcept { return capacity() * (sizeof(slot) + 1); }

  V* find(const K& key) noexcept { return const_cast<V*>(std::as_const(*this).find(key)); }
  const V* find(const K& key) const noexcept {
    if (size_ == 0) return nullptr;
    const std::uint64_t h = mix(Hash()(key));
    const std::uint8_t t = tag_of(h);
    for (std::size_t i = home(h); tags_[i] != 0; i = next(i))
      if (tags_[i] == t && slots_[i].key == key) return &slots_[i].value;
    return nullptr;
  }

  // Inserts unless the key is present; the value and whether it was inserted.
  template <class KK, class VV>
  std::pair<V*, bool> try_emplace(KK&& key, VV&& value) {
    if (4 * (size_ + 1) > 3 * capacity()) grow();
    const std::uint64_t h = mix(Hash()(key));
    const std::uint8_t t = tag_of(h);
    std::size_t i = home(h);
    for (; tags_[i] != 0; i = next(i))
      if (tags_[i] == t && slots_[i].key == key) return {&slots_[i].value, false};
    ::new (static_cast<void*>(&slots_[i])) slot{K(std::forward<KK>(key)), V(std::forward<VV>(value))};
    tags_[i] = t;
    ++size_;
    return {&slots_[i].value, true};
  }

  // 1 if the key was there, else 0.
  std::size_t erase(const K& key) noexcept {
    if (size_ == 0) return 0;
    const std::uint64_t h = mix(Hash()(key));
    const std::uint8_t t = tag_of(h);
    std::size_t i = home(h);
    for (; tags_[i] != 0; i = next(i))
      if (tags_[i] == t && slots_[i].key == key) break;
    if (tags_[i] == 0) return 0;
    slots_[i].~slot();
    tags_[i] = 0;
    --size_;
    // Backward shift: pull later entries of the run into the hole when their home allows,
    // so no tombstones are needed and lookups stop at the first empty slot.
    for (std::size_t j = next(i); tags_[j] != 0; j = next(j)) {
      const std::size_t wanted = home(mix(Hash()(slots_[j].key)));
      if (distance(wanted, j) < distance(i, j)) continue;  // its home lies between the hole and it
      ::new (static_cast<void*>(&slots_[i])) slot(std::move(slots_[j]));
      tags_[i] = tags_[j];
      slots_[j].~slot();
      tags_[j] = 0;
      i = j;
    }
    return 1;
  }

  // fn(key, value) for every entry, in no particular order.
  template <class F>
  void for_each(F&& fn) const {
    for (std::size_t i = 0; i < capacity_; ++i)
      if (tags_[i] != 0) fn(static_cast<const K&>(slots_[i].key), static_cast<const V&>(slots_[i].value));
  }

  void clear() noexcept {
    release();
    slots_ = nullptr;
    tags_ = nullptr;
    capacity_ = 0;
    size_ = 0;
  }

 private:
  struct slot {
    K key;
    V value;
  };

  // 64-bit finaliser (MurmurHash3's): std::hash of an integer is the integer itself, and
  // the shard was chosen from the high bits of another mix of the same hash.
  static std::uint64_t mix(std::size_t hash) noexcept {
    std::uint64_t x = hash;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
  }
  static std::uint8_t tag_of(std::uint64_t h) noexcept { return static_cast<std::uint8_t>(0x80 | (h >> 57)); }

  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] std::size_t home(std::uint64_t h) const noexcept {
    return static_cast<std::size_t>((static_cast<flat_map_wide>(h) * capacity_) >> 64);
  }
  [[nodiscard]] std::size_t next(std::size_t i) const noexcept { return i + 1 == capacity_ ? 0 : i + 1; }
  // Steps from a to b going forward (wrapping).
  [[nodiscard]] std::size_t distance(std::size_t a, std::size_t b) const noexcept {
    return b >= a ? b - a : b + capacity_ - a;
  }

  // Slots and tag bytes share one block from the runtime's table allocator: small ones
  // from the node pool, from 1 MiB up whole huge pages (growing a big shard does not take
  // a page fault per 4 KiB), which the capacity is stretched to fill. Over-aligned slots
  // come from operator new.
  static constexpr bool pooled = alignof(slot) <= 16;
  static std::size_t block_bytes(std::size_t capacity) noexcept { return capacity * (sizeof(slot) + 1); }
  static std::size_t usable_capacity(std::size_t capacity) noexcept {
    return pooled ? table_allocation_size(block_bytes(capacity)) / (sizeof(slot) + 1) : capacity;
  }
  static slot* allocate_block(std::size_t capacity) {
    const std::size_t bytes = block_bytes(capacity);
    void* p = pooled ? table_allocate(bytes) : ::operator new(bytes, std::align_val_t(alignof(slot)));
    std::memset(static_cast<char*>(p) + capacity * sizeof(slot), 0, capacity);
    return static_cast<slot*>(p);
  }
  static void deallocate_block(slot* p, std::size_t capacity) noexcept {
    if constexpr (pooled) {
      table_deallocate(p, block_bytes(capacity));
    } else {
      ::operator delete(p, std::align_val_t(alignof(slot)));
    }
  }

  void grow() {
    const std::size_t old_capacity = capacity();
    const std::size_t new_capacity = usable_capacity(old_capacity == 0 ? 8 : 2 * old_capacity);
    slot* old_slots = slots_;
    std::uint8_t* old_tags = tags_;
    slots_ = allocate_block(new_capacity);
    tags_ = reinterpret_cast<std::uint8_t*>(slots_ + new_capacity);
    capacity_ = new_capacity;
    for (std::size_t i = 0; i < old_capacity; ++i) {
      if (old_tags[i] == 0) continue;
      std::size_t j = home(mix(Hash()(old_slots[i].key)));
      while (tags_[j] != 0) j = next(j);
      ::new (static_cast<void*>(&slots_[j])) slot(std::move(old_slots[i]));
      tags_[j] = old_tags[i];
      old_slots[i].~slot();
    }
    if (old_slots != nullptr) deallocate_block(old_slots, old_capacity);
  }

  void release() noexcept {
    if (slots_ == nullptr) return;
    if constexpr (!std::is_trivially_destructible_v<slot>)
      for (std::size_t i = 0; i < capacity_; ++i)
        if (tags_[i] != 0) slots_[i].~slot();
    deallocate_block(slots_, capacity_);
  }

  void steal(flat_map& other) noexcept {
    slots_ = std::exchange(other.slots_, nullptr);
    tags_ = std::exchange(other.tags_, nullptr);
    capacity_ = std::exchange(other.capacity_, 0);
    size_ = std::exchange(other.size_, 0);
  }

  slot* slots_ = nullptr;
  std::uint8_t* tags_ = nullptr;
  std::size_t capacity_ = 0;
  std::size_t size_ = 0;
};

}  // namespace canopy::detail
