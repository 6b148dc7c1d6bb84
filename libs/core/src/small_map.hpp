#pragma once
// small_map: a map that is a plain vector while small and a hash map once it grows.
// Most processes hold zero to two links or monitors, where a vector is smallest and
// fastest; a supervisor of 100,000 children holds 100,000, where a linear search per exit
// signal would make shutdown quadratic.
// Thread-safety: none; owned by one process.

#include <cstddef>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

namespace canopy::detail {

template <class K, class V>
class small_map {
 public:
  static constexpr std::size_t small_limit = 8;

  [[nodiscard]] bool empty() const noexcept { return big_ ? big_->empty() : small_.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return big_ ? big_->size() : small_.size(); }

  [[nodiscard]] V* find(const K& key) noexcept {
    if (big_) {
      auto it = big_->find(key);
      return it == big_->end() ? nullptr : &it->second;
    }
    for (auto& [k, v] : small_)
      if (k == key) return &v;
    return nullptr;
  }
  [[nodiscard]] bool contains(const K& key) noexcept { return find(key) != nullptr; }

  // False (and nothing changes) if the key is present.
  bool insert(K key, V value) {
    if (contains(key)) return false;
    if (!big_ && small_.size() >= small_limit) {
      big_ = std::make_unique<std::unordered_map<K, V>>();
      for (auto& [k, v] : small_) big_->emplace(k, std::move(v));
      small_.clear();
      small_.shrink_to_fit();
    }
    if (big_) {
      big_->emplace(std::move(key), std::move(value));
    } else {
      small_.emplace_back(std::move(key), std::move(value));
    }
    return true;
  }

  // Removes and returns the value, if present.
  bool erase(const K& key, V* out = nullptr) {
    if (big_) {
      auto it = big_->find(key);
      if (it == big_->end()) return false;
      if (out) *out = std::move(it->second);
      big_->erase(it);
      return true;
    }
    for (auto it = small_.begin(); it != small_.end(); ++it) {
      if (it->first != key) continue;
      if (out) *out = std::move(it->second);
      *it = std::move(small_.back());
      small_.pop_back();
      return true;
    }
    return false;
  }

  template <class F>
  void for_each(F&& fn) {
    if (big_) {
      for (auto& [k, v] : *big_) fn(k, v);
    } else {
      for (auto& [k, v] : small_) fn(k, v);
    }
  }

 private:
  std::vector<std::pair<K, V>> small_;
  std::unique_ptr<std::unordered_map<K, V>> big_;
};

}  // namespace canopy::detail
