#pragma once
// Internal: a reader-writer lock for read-mostly shards (Registry partitions, table shards).
//
// Why not std::shared_mutex: its read lock is an atomic read-modify-write of one word, so
// two threads reading the same shard bounce that cache line between their cores on every
// lookup (2 threads did fewer table lookups per second than 1). Here each reader announces
// itself in one of `slots` counters, each on its own cache line, chosen per thread; readers
// on different threads touch different lines, and only read the writer flag. A writer takes
// the writer mutex, raises the flag, and waits for the counters to drain; readers that see
// the flag step back and wait on the mutex. Writers are slower (they scan the slots), which
// suits tables that are read far more than written.
// Thread-safety: this is the synchronisation.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>

namespace canopy::detail {

std::size_t next_read_slot() noexcept;

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}
// Threads take the slots round-robin as they first read.
inline thread_local const std::size_t read_slot = next_read_slot();

class read_mostly_lock {
 public:
  static constexpr std::size_t slots = 8;

  void lock_shared() noexcept {
    auto& c = counters_[read_slot].n;
    for (;;) {
      c.fetch_add(1, std::memory_order_seq_cst);
      if (!writer_.load(std::memory_order_seq_cst)) return;
      c.fetch_sub(1, std::memory_order_release);
      // A writer is in: wait for it on the mutex rather than spin against it.
      std::lock_guard lk(mu_);
    }
  }
  void unlock_shared() noexcept { counters_[read_slot].n.fetch_sub(1, std::memory_order_release); }

  void lock() noexcept {
    // Writers of one shard hold it for well under a microsecond: spin a little before the
    // mutex puts us to sleep (a futex round trip costs far more on a small VM).
    for (int i = 0; i < 64 && !mu_.try_lock(); ++i) {
      if (i == 63) {
        mu_.lock();
        break;
      }
      cpu_relax();
    }
    writer_.store(true, std::memory_order_seq_cst);
    for (auto& c : counters_)
      while (c.n.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
  }
  void unlock() noexcept {
    writer_.store(false, std::memory_order_release);
    mu_.unlock();
  }

 private:
  struct alignas(64) counter {
    std::atomic<std::int64_t> n{0};
  };
  std::array<counter, slots> counters_{};
  alignas(64) std::atomic<bool> writer_{false};
  std::mutex mu_;
};

// Picks the shard for a hash: its high bits after a multiplicative mix, scaled to `count`,
// so sequential keys spread (std::hash of an integer is the integer) and the shard says
// nothing about the hash's low bits a shard's own table uses.
inline std::size_t shard_for(std::size_t hash, std::size_t count) noexcept {
  const std::uint64_t mixed = static_cast<std::uint64_t>(hash) * 0x9E3779B97F4A7C15ull;
  return static_cast<std::size_t>(((mixed >> 32) * static_cast<std::uint64_t>(count)) >> 32);  // count < 2^32
}

}  // namespace canopy::detail
