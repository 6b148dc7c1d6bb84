#include "canopy/core/detail/node_pool.hpp"

#include <array>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

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
constexpr std::size_t slab_bytes = std::size_t{2} << 20;  // one transparent huge page

struct chunk {
  chunk* next;
};

std::size_t class_of(std::size_t size) noexcept { return (size - 1) / node_pool_granule; }
std::size_t class_bytes(std::size_t cls) noexcept { return (cls + 1) * node_pool_granule; }

// `bytes` (a multiple of the slab size) of fresh memory on a 2 MiB boundary, advised as huge pages.
char* map_aligned(std::size_t bytes) {
#if defined(__linux__)
  void* raw = ::mmap(nullptr, bytes + slab_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const auto start = reinterpret_cast<std::uintptr_t>(raw);
  const std::uintptr_t aligned = (start + slab_bytes - 1) & ~(slab_bytes - 1);
  if (aligned > start) ::munmap(raw, aligned - start);
  const std::uintptr_t end = start + bytes + slab_bytes;
  if (end > aligned + bytes) ::munmap(reinterpret_cast<void*>(aligned + bytes), end - aligned - bytes);
  ::madvise(reinterpret_cast<void*>(aligned), bytes, MADV_HUGEPAGE);  // advice only: fine if refused
  return reinterpret_cast<char*>(aligned);
#else
  void* p = std::aligned_alloc(slab_bytes, bytes);
  if (p == nullptr) throw std::bad_alloc();
  return static_cast<char*>(p);
#endif
}

// A fresh 2 MiB slab, aligned so the kernel can back it with one huge page: a process
// spawn touches a cell, its links and a few messages, and taking those page by page cost
// a fault per 4 KiB (a quarter of the time of spawning 100,000 linked processes).
char* new_slab() { return map_aligned(slab_bytes); }

// Hands out runs of fresh memory carved from slabs. Slabs are never returned: their chunks
// circulate through the free lists below (see node_pool.hpp).
class slab_arena {
 public:
  char* carve(std::size_t bytes) {
    std::lock_guard lk(mu_);
    if (left_ < bytes) {
      next_ = new_slab();
      left_ = slab_bytes;
    }
    char* p = next_;
    next_ += bytes;
    left_ -= bytes;
    return p;
  }

 private:
  std::mutex mu_;
  char* next_ = nullptr;
  std::size_t left_ = 0;
};

slab_arena& arena() {
  static slab_arena* a = new slab_arena();  // never destroyed: thread caches outlive statics
  return *a;
}

// Per class: whole batches of `batch` chunks, and loose chunks (from exiting threads).
struct central_list {
  std::mutex mu;
  chunk* batches = nullptr;  // each batch: `batch` chunks linked by next; batches linked via batch_next
  chunk* loose = nullptr;
  std::size_t loose_count = 0;
};

// The second word of a batch's first chunk links batches (chunks are >= 32 bytes).
chunk*& batch_next(chunk* c) noexcept { return reinterpret_cast<chunk**>(c)[1]; }

std::array<central_list, class_count>& central() {
  static auto* lists = new std::array<central_list, class_count>();  // outlives thread caches
  return *lists;
}

struct thread_cache {
  std::array<chunk*, class_count> head{};
  std::array<std::size_t, class_count> count{};

  ~thread_cache() {
    for (std::size_t cls = 0; cls < class_count; ++cls) {
      while (count[cls] >= batch) give_back(cls);
      if (count[cls] == 0) continue;
      chunk* last = head[cls];
      while (last->next) last = last->next;
      central_list& c = central()[cls];
      std::lock_guard lk(c.mu);
      last->next = c.loose;
      c.loose = head[cls];
      c.loose_count += count[cls];
      head[cls] = nullptr;
      count[cls] = 0;
    }
  }

  // Moves one batch from this thread's list to the central list.
  void give_back(std::size_t cls) noexcept {
    chunk* first = head[cls];
    chunk* last = first;
    for (std::size_t i = 1; i < batch; ++i) last = last->next;
    head[cls] = last->next;
    count[cls] -= batch;
    last->next = nullptr;
    central_list& c = central()[cls];
    std::lock_guard lk(c.mu);
    batch_next(first) = c.batches;
    c.batches = first;
  }

  void refill(std::size_t cls) {
    central_list& c = central()[cls];
    {
      std::lock_guard lk(c.mu);
      if (c.batches) {
        chunk* b = c.batches;
        c.batches = batch_next(b);
        head[cls] = b;
        count[cls] = batch;
        return;
      }
      if (c.loose) {
        head[cls] = c.loose;
        count[cls] = c.loose_count;
        c.loose = nullptr;
        c.loose_count = 0;
        return;
      }
    }
    const std::size_t bytes = class_bytes(cls);
    char* run = arena().carve(batch * bytes);
    for (std::size_t i = batch; i-- > 0;) {
      auto* fresh = reinterpret_cast<chunk*>(run + i * bytes);
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
  if (++tc.count[cls] > thread_high) tc.give_back(cls);
#endif
}

#ifndef CANOPY_POOL_DISABLED
namespace {
constexpr std::size_t large_threshold = table_huge_threshold;
static_assert(table_huge_page == slab_bytes);
std::size_t large_rounded(std::size_t bytes) noexcept { return table_allocation_size(bytes); }
}  // namespace
#endif

void* table_allocate(std::size_t bytes) {
#ifndef CANOPY_POOL_DISABLED
  if (bytes <= node_pool_max) return pool_allocate(bytes);
  if (bytes >= large_threshold) return map_aligned(large_rounded(bytes));
#endif
  return ::operator new(bytes);
}

void table_deallocate(void* p, std::size_t bytes) noexcept {
#ifndef CANOPY_POOL_DISABLED
  if (bytes <= node_pool_max) {
    pool_deallocate(p, bytes);
    return;
  }
  if (bytes >= large_threshold) {
#if defined(__linux__)
    ::munmap(p, large_rounded(bytes));
#else
    std::free(p);
#endif
    return;
  }
#endif
  (void)bytes;
  ::operator delete(p);
}

}  // namespace canopy::detail
