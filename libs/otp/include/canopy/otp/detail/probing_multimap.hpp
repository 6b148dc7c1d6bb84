#pragma once
// Internal: a hash multimap in one flat array (open addressing, linear probing,
// backward-shift deletion, load at most 3/4), for the Registry's partitions.
//
// Why not std::unordered_multimap: a lookup there follows a bucket to the node before the
// first match, then the node (two dependent cache misses), and each entry is its own
// allocation. Here the entries sit in the array: one miss for a key whose entries are
// together, no allocation per entry. Equal keys are simply several slots of one probe run,
// so unique and duplicate keys share the code.
// A slot is free when `Used(value)` is false (the Registry: a null owner pid), so no flag
// is stored. K and E are default-constructible and movable.
// Thread-safety: none (the partition's lock guards it).

#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

namespace canopy::detail {

template <class K, class E, class Used>
class probing_multimap {
 public:
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }

  void insert(K key, E value) {
    if (4 * (size_ + 1) > 3 * slots_.size()) grow();
    std::size_t i = home(key);
    while (Used()(slots_[i].value)) i = (i + 1) & mask_;
    slots_[i].key = std::move(key);
    slots_[i].value = std::move(value);
    ++size_;
  }

  // fn(entry) for every entry under `key`, until fn returns false.
  template <class F>
  void for_each_equal(const K& key, F&& fn) const {
    if (size_ == 0) return;
    for (std::size_t i = home(key); Used()(slots_[i].value); i = (i + 1) & mask_)
      if (slots_[i].key == key && !fn(slots_[i].value)) return;
  }
  // The first entry under `key` for which pred holds, or null.
  template <class P>
  E* find_if(const K& key, P&& pred) {
    if (size_ == 0) return nullptr;
    for (std::size_t i = home(key); Used()(slots_[i].value); i = (i + 1) & mask_)
      if (slots_[i].key == key && pred(static_cast<const E&>(slots_[i].value))) return &slots_[i].value;
    return nullptr;
  }
  // Removes the entries under `key` for which pred holds; how many went.
  template <class P>
  std::size_t erase_if(const K& key, P&& pred) {
    if (size_ == 0) return 0;
    std::size_t removed = 0;
    std::size_t i = home(key);
    while (Used()(slots_[i].value)) {
      if (slots_[i].key == key && pred(static_cast<const E&>(slots_[i].value))) {
        remove_at(i);  // a later entry may have moved into i: look at i again
        ++removed;
      } else {
        i = (i + 1) & mask_;
      }
    }
    return removed;
  }

  template <class F>
  void for_each(F&& fn) const {
    for (const slot& s : slots_)
      if (Used()(s.value)) fn(s.key, s.value);
  }

  void clear() {
    slots_.clear();
    size_ = 0;
    mask_ = 0;
  }

 private:
  struct slot {
    K key{};
    E value{};
  };

  [[nodiscard]] std::size_t home(const K& key) const noexcept {
    // The partition was chosen from the top bits of another mix of this hash; mix again
    // with a different constant so the slot does not depend on the partition.
    const std::uint64_t h = static_cast<std::uint64_t>(std::hash<K>()(key)) * 0xC2B2AE3D27D4EB4Full;
    return static_cast<std::size_t>(h >> (64 - std::countr_zero(slots_.size()))) & mask_;
  }

  void remove_at(std::size_t hole) {
    for (std::size_t j = (hole + 1) & mask_; Used()(slots_[j].value); j = (j + 1) & mask_) {
      const std::size_t h = home(slots_[j].key);
      if (((j - h) & mask_) >= ((j - hole) & mask_)) {  // j's home is not within (hole, j]
        slots_[hole] = std::move(slots_[j]);
        hole = j;
      }
    }
    slots_[hole] = slot{};
    --size_;
  }

  void grow() {
    std::vector<slot> old = std::exchange(slots_, std::vector<slot>(old_capacity_doubled()));
    mask_ = slots_.size() - 1;
    size_ = 0;
    for (slot& s : old)
      if (Used()(s.value)) insert(std::move(s.key), std::move(s.value));
  }
  [[nodiscard]] std::size_t old_capacity_doubled() const noexcept { return slots_.empty() ? 16 : 2 * slots_.size(); }

  std::vector<slot> slots_;
  std::size_t size_ = 0;
  std::size_t mask_ = 0;
};

}  // namespace canopy::detail
