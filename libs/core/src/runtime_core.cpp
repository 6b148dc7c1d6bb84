#include "runtime_core.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace canopy::detail {

namespace {
std::atomic<std::uint64_t> global_next_ref{1};
constexpr std::uint64_t ref_block = 1024;

std::shared_ptr<spdlog::logger> default_logger() {
  auto logger = std::make_shared<spdlog::logger>("canopy", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  logger->set_level(spdlog::level::info);
  return logger;
}
}  // namespace

std::uint64_t new_ref() noexcept {
  thread_local std::uint64_t next = 0;
  thread_local std::uint64_t end = 0;
  if (next == end) {
    next = global_next_ref.fetch_add(ref_block, std::memory_order_relaxed);
    end = next + ref_block;
  }
  return next++;
}

runtime_core::runtime_core(runtime_config cfg, runtime* owner_runtime)
    : config(std::move(cfg)),
      owner(owner_runtime),
      clock(config.clock ? config.clock : steady_clock_source()),
      logger(config.logger ? config.logger : default_logger()),
      timers(clock),
      sched(*this, config.mode, config.threads, config.batch) {
  sched.start();
}

runtime_core::~runtime_core() { shutdown(); }

void runtime_core::table_add(process_cell* c) noexcept {
  shard& s = shards_[c->id() % shard_count];
  std::lock_guard lk(s.mu);
  c->table_next = s.head;
  c->table_prev = nullptr;
  if (s.head) s.head->table_prev = c;
  s.head = c;
  live_.fetch_add(1, std::memory_order_acq_rel);
}

void runtime_core::table_remove(process_cell* c) noexcept {
  {
    shard& s = shards_[c->id() % shard_count];
    std::lock_guard lk(s.mu);
    if (c->table_prev) {
      c->table_prev->table_next = c->table_next;
    } else {
      s.head = c->table_next;
    }
    if (c->table_next) c->table_next->table_prev = c->table_prev;
    c->table_prev = c->table_next = nullptr;
  }
  if (live_.fetch_sub(1, std::memory_order_acq_rel) == 1 && shutting_down.load()) {
    std::lock_guard lk(live_mu_);
    all_gone_.notify_all();
  }
}

std::vector<pid> runtime_core::snapshot() const {
  std::vector<pid> out;
  out.reserve(live());
  for (const auto& s : shards_) {
    std::lock_guard lk(const_cast<std::mutex&>(s.mu));
    for (process_cell* c = s.head; c; c = c->table_next) out.push_back(c->self_pid());
  }
  return out;
}

result<void> runtime_core::register_name(std::string name, process_cell* c) {
  if (name.empty()) return error(errc::invalid_argument, "a registered name may not be empty");
  std::lock_guard lk(names_mu_);
  if (auto it = by_name_.find(name); it != by_name_.end()) {
    auto* holder = static_cast<process_cell*>(it->second.get());
    if (holder->is_alive())  // SEMANTICS 44
      return error(errc::already_registered, holder->self_pid().to_string());
    name_of_.erase(holder);
    by_name_.erase(it);
  }
  if (!c->is_alive()) return error(errc::noproc, c->self_pid().to_string());
  if (auto it = name_of_.find(c); it != name_of_.end())
    return error(errc::invalid_argument, "already registered as '" + it->second + "'");
  by_name_.emplace(name, cell_ref::share(c));
  name_of_.emplace(c, std::move(name));
  c->named_.store(true, std::memory_order_release);
  return {};
}

bool runtime_core::unregister_name(std::string_view name) {
  cell_ref held;
  {
    std::lock_guard lk(names_mu_);
    auto it = by_name_.find(std::string(name));
    if (it == by_name_.end()) return false;
    held = std::move(it->second);
    name_of_.erase(held.get());
    by_name_.erase(it);
  }
  return true;
}

void runtime_core::unregister_all(process_cell* c) noexcept {
  cell_ref held;
  std::lock_guard lk(names_mu_);
  auto it = name_of_.find(c);
  if (it == name_of_.end()) return;
  auto by = by_name_.find(it->second);
  if (by != by_name_.end()) {
    held = std::move(by->second);  // released after the lock (declared first, dies last)
    by_name_.erase(by);
  }
  name_of_.erase(it);
}

pid runtime_core::whereis(std::string_view name) const {
  std::lock_guard lk(names_mu_);
  auto it = by_name_.find(std::string(name));
  if (it == by_name_.end()) return {};
  auto* holder = static_cast<process_cell*>(it->second.get());
  if (!holder->is_alive()) return {};
  return pid(it->second);
}

timer_ref runtime_core::start_timer(duration delay, cell_ref target, message_node* msg) {
  return timers.start(deadline_after(clock->now(), delay), std::move(target), msg);
}

void runtime_core::report_crash(process_cell* c, const exit_reason& reason,
                                const std::type_info* last) noexcept {
  try {
    std::string name;
    {
      std::lock_guard lk(names_mu_);
      if (auto it = name_of_.find(c); it != name_of_.end()) name = " (" + it->second + ")";
    }
    logger->error("process {}{} crashed: {}; last message: {}", c->self_pid().to_string(), name,
                  reason.to_string(), last ? type_name(*last) : std::string("none (in on_start)"));
  } catch (...) {  // logging must never take the runtime down
  }
}

void runtime_core::report_stall(process_cell* c, std::chrono::milliseconds took) noexcept {
  try {
    logger->warn("process {} held its scheduler thread for {} ms: a handler is blocking or too long",
                 c->self_pid().to_string(), took.count());
  } catch (...) {
  }
}

void runtime_core::shutdown() {
  std::call_once(shutdown_once_, [this] {
    shutting_down.store(true);
    auto wait_all_gone = [this](std::chrono::milliseconds budget) {
      const auto until = std::chrono::steady_clock::now() + budget;
      if (config.mode == scheduling::manual) {
        while (live() > 0 && std::chrono::steady_clock::now() < until) {
          sched.run_until_idle();
          if (live() > 0) sched.wait_for_work(std::min(until, std::chrono::steady_clock::now() + std::chrono::milliseconds(10)));
        }
        return live() == 0;
      }
      std::unique_lock lk(live_mu_);
      return all_gone_.wait_until(lk, until, [this] { return live() == 0; });
    };
    auto signal_all = [this](const exit_reason& reason) {
      for (const pid& p : snapshot()) {
        auto* n = make_node<exit_message>(node_kind::exit, exit_message{pid(), reason});
        if (p.cell()->enqueue(n) == enqueue_result::closed) destroy_node(n);
      }
    };
    signal_all(exit_reason::shutdown());
    if (!wait_all_gone(config.shutdown_timeout)) {
      logger->warn("runtime shutdown: {} processes still alive after {} ms; killing them", live(),
                   config.shutdown_timeout.count());
      // Killed processes exit at once; retry in case some were spawned meanwhile.
      while (live() > 0) {
        signal_all(exit_reason::kill());
        wait_all_gone(std::chrono::milliseconds(1000));
      }
    }
    sched.stop();
    timers.stop();
  });
}

}  // namespace canopy::detail
