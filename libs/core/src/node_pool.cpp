#include "canopy/core/detail/node_pool.hpp"

#include <array>
#include <cstdint>
#include <mutex>
#include <new>

#if defined(__SANITIZE_ADDRESS__)
#define CANOPY_POOL_DISABLED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CANOPY_POOL_DISABLED 1
#endif
#endif

namespace canopy::detail {

#ifndef CANOPY_POOL_DISABLED
namespace {

constexpr std::size_t class_count = node_pool_max / node_pool_granule;
constexpr std::size_t batch = 64;               // chunks moved to / from the central list at once
constexpr std::size_t thread_high = 4 * batch;  // a thread keeps at most this many per class
constexpr std::size_t central_limit = 16384;    // chunks a class keeps centrally; more go back to malloc

struct chunk {
  chunk* next;
};

std::size_t class_of(std::size_t size) noexcept { return (size - 1) / node_pool_granule; }
std::size_t class_bytes(std::size_t cls) noexcept { return (cls + 1) * node_pool_granule; }

// One list of whole batches per class; batches are chained through their first chunk.
struct central_list {
  std::mutex mu;
  chunk* batches = nullptr;  // each batch: `batch` chunks linked by next; batches linked via batch_next
  std::size_t chunks = 0;
};

// The second word of a batch's first chunk links batches (chunks are >= 32 bytes).
chunk*& batch_next(chunk* c) noexcept { return reinterpret_cast<chunk**>(c)[1]; }

std::array<central_list, class_count>& central() {
  static std::array<central_list, class_count> lists;  // never destroyed before thread caches
  return lists;
}

struct thread_cache {
  std::array<chunk*, class_count> head{};
  std::array<std::size_t, class_count> count{};

  ~thread_cache() {
    for (std::size_t cls = 0; cls < class_count; ++cls) {
      while (count[cls] > 0) give_back(cls, count[cls] < batch ? count[cls] : batch);
    }
  }

  // Moves `n` chunks from this thread's list to the central list (or to operator delete).
  void give_back(std::size_t cls, std::size_t n) noexcept {
    chunk* first = head[cls];
    chunk* last = first;
    for (std::size_t i = 1; i < n; ++i) last = last->next;
    head[cls] = last->next;
    count[cls] -= n;
    last->next = nullptr;
    central_list& c = central()[cls];
    {
      std::lock_guard lk(c.mu);
      if (c.chunks + n <= central_limit && n == batch) {
        batch_next(first) = c.batches;
        c.batches = first;
        c.chunks += n;
        return;
      }
    }
    while (first) {
      chunk* next = first->next;
      ::operator delete(static_cast<void*>(first));
      first = next;
    }
  }

  void refill(std::size_t cls) {
    central_list& c = central()[cls];
    {
      std::lock_guard lk(c.mu);
      if (c.batches) {
        chunk* b = c.batches;
        c.batches = batch_next(b);
        c.chunks -= batch;
        head[cls] = b;
        count[cls] = batch;
        return;
      }
    }
    const std::size_t bytes = class_bytes(cls);
    for (std::size_t i = 0; i < batch; ++i) {
      auto* fresh = static_cast<chunk*>(::operator new(bytes));
      fresh->next = head[cls];
      head[cls] = fresh;
    }
    count[cls] = batch;
  }
};

thread_cache& cache() {
  thread_local thread_cache tc;
  return tc;
}

}  // namespace
#endif

void* pool_allocate(std::size_t size) {
#ifdef CANOPY_POOL_DISABLED
  return ::operator new(size);
#else
  const std::size_t cls = class_of(size);
  thread_cache& tc = cache();
  if (tc.head[cls] == nullptr) tc.refill(cls);
  chunk* c = tc.head[cls];
  tc.head[cls] = c->next;
  --tc.count[cls];
  return c;
#endif
}

void pool_deallocate(void* p, std::size_t size) noexcept {
#ifdef CANOPY_POOL_DISABLED
  (void)size;
  ::operator delete(p);
#else
  const std::size_t cls = class_of(size);
  thread_cache& tc = cache();
  auto* c = static_cast<chunk*>(p);
  c->next = tc.head[cls];
  tc.head[cls] = c;
  if (++tc.count[cls] > thread_high) tc.give_back(cls, batch);
#endif
}

}  // namespace canopy::detail
