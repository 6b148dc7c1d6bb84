#pragma once
// The runtime's private state: configuration, clock, logger, scheduler, timers, the table
// of live processes and the local name table.
// Thread-safety: every member function may be called from any thread.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <typeindex>
#include <unordered_map>
#include <vector>

#include "canopy/core/runtime.hpp"
#include "process_cell.hpp"
#include "scheduler.hpp"
#include "timer_service.hpp"

namespace canopy::detail {

// Unique refs for calls and monitors, handed out in per-thread blocks to avoid contention.
std::uint64_t new_ref() noexcept;

class runtime_core;
timer_ref send_after_to(runtime_core& rt, duration delay, const pid& to, message_node* node);

class runtime_core {
 public:
  runtime_core(runtime_config config, runtime* owner);
  ~runtime_core();

  // Live processes (for shutdown, process_count, processes()).
  void table_add(process_cell* c) noexcept;
  void table_remove(process_cell* c) noexcept;
  [[nodiscard]] std::size_t live() const noexcept { return live_.load(std::memory_order_acquire); }
  // Every live process, in no particular order.
  [[nodiscard]] std::vector<pid> snapshot() const;

  result<void> register_name(std::string name, process_cell* c);
  bool unregister_name(std::string_view name);
  void unregister_all(process_cell* c) noexcept;
  [[nodiscard]] pid whereis(std::string_view name) const;

  std::uint64_t next_pid_id() noexcept { return next_id_.fetch_add(1, std::memory_order_relaxed); }

  timer_ref start_timer(duration delay, cell_ref target, message_node* msg);

  // Crash report: one line per crash (process, name, last message, reason).
  void report_crash(process_cell* c, const exit_reason& reason, const std::type_info* last) noexcept;
  void report_stall(process_cell* c, std::chrono::milliseconds took) noexcept;

  void shutdown();

  runtime_config config;
  runtime* owner;  // the public face, for process::system()
  std::shared_ptr<canopy::clock> clock;
  std::shared_ptr<spdlog::logger> logger;
  timer_service timers;
  scheduler sched;
  std::atomic<bool> shutting_down{false};

 private:
  struct shard {
    std::mutex mu;
    process_cell* head = nullptr;
  };
  static constexpr std::size_t shard_count = 16;
  shard shards_[shard_count];
  std::atomic<std::size_t> live_{0};
  std::mutex live_mu_;
  std::condition_variable all_gone_;

  friend bool publish_resource(runtime_core&, const std::string&, const std::type_info&, std::shared_ptr<void>);
  friend std::shared_ptr<void> find_resource(runtime_core&, const std::string&, const std::type_info&);
  friend void withdraw_resource(runtime_core&, const std::string&, const std::type_info&, const void*) noexcept;
  struct resource_key {
    std::string name;
    std::type_index type;
    bool operator==(const resource_key&) const = default;
  };
  struct resource_key_hash {
    std::size_t operator()(const resource_key& k) const noexcept {
      return std::hash<std::string>()(k.name) ^ k.type.hash_code();
    }
  };
  std::mutex resources_mu_;
  std::unordered_map<resource_key, std::shared_ptr<void>, resource_key_hash> resources_;

  mutable std::mutex names_mu_;
  std::unordered_map<std::string, cell_ref> by_name_;
  std::unordered_map<const cell_base*, std::string> name_of_;

  std::atomic<std::uint64_t> next_id_{1};
  std::once_flag shutdown_once_;
};

}  // namespace canopy::detail
