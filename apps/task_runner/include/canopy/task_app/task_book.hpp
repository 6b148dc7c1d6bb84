#pragma once
// task_book: the task runner's tasks and their rules (docs/protocol.md "task_runner") with
// time passed in (ms on the wall clock), so every transition is tested without a clock, a
// process or a file. Every change is handed to a sink as one journal record (a msgpack
// map); apply() of those records, in order, on an empty book rebuilds it — the journal's
// replay. Thread-safety: none; the task runner's server process owns it.
//
//   task_book book(limits, seed, [&](std::string record) { journal.append(std::move(record)); });
//   auto s = book.submit({.kind = "echo"}, now_ms);          // queued (or overloaded, or existing)
//   for (const task* t : book.start_due(now_ms)) run(t);     // running, attempt counted
//   book.attempt_ended(t->number, t->attempts, ending::succeeded, result, {}, now_ms);
//
// States: queued (also while delayed or waiting for a retry) -> running -> succeeded /
// failed / timed_out, or back to queued for a retry while attempts remain; cancelled from
// queued or running. A retry waits backoff_ms * 2^(attempt-1) (capped at max_backoff_ms)
// with equal jitter: half of it, plus a random share of the other half.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "canopy/core/result.hpp"
#include "canopy/wire/value.hpp"

namespace canopy::task_app {

enum class task_state : std::uint8_t { queued, running, succeeded, failed, cancelled, timed_out };
[[nodiscard]] const char* to_string(task_state s) noexcept;
[[nodiscard]] std::optional<task_state> task_state_from(std::string_view name) noexcept;
[[nodiscard]] inline bool is_final(task_state s) noexcept {
  return s != task_state::queued && s != task_state::running;
}

struct task_error {
  std::string message;
  std::string kind;  // "timeout", "crash", "exception", "failed", "cancelled", "exit", or empty
};

// What submit asks for.
struct task_spec {
  std::string kind;
  wire::value args = wire::value::empty_map();
  std::optional<std::uint64_t> timeout_ms;  // per attempt
  unsigned max_attempts = 1;
  std::uint64_t backoff_ms = 0;
  std::uint64_t delay_ms = 0;
  std::string key;  // idempotency; empty: none
};

struct task {
  std::uint64_t number = 0;  // the id is "t-<number>"
  task_spec spec;
  task_state state = task_state::queued;
  unsigned attempts = 0;          // attempts started (runs interrupted by a restart count)
  std::uint64_t submitted_ms = 0;
  std::uint64_t run_at_ms = 0;    // queued: not before this (delay, backoff)
  std::optional<std::uint64_t> started_ms, finished_ms;  // started: the latest attempt's
  std::optional<wire::value> result;
  std::optional<task_error> error;

  [[nodiscard]] std::string id() const { return "t-" + std::to_string(number); }
};

// "t-<n>" -> n.
[[nodiscard]] std::optional<std::uint64_t> task_number(std::string_view id) noexcept;

struct task_counts {
  std::uint64_t queued = 0, running = 0;                                  // now
  std::uint64_t succeeded = 0, failed = 0, cancelled = 0, timed_out = 0;  // since the data began
};

class task_book {
 public:
  struct limits {
    std::size_t queue_limit = 10000;  // queued tasks (delayed included); past it, overloaded
    unsigned max_concurrency = 64;    // running at once
    std::uint64_t retention_ms = 3600000;  // finished tasks are kept at least this long ...
    std::size_t max_retained = 1000000;    // ... unless more than this many are finished
    std::size_t max_retained_bytes = std::size_t{256} << 20;  // ... or they take more memory than this
    std::uint64_t max_backoff_ms = 3600000;
  };
  using sink = std::function<void(std::string record)>;

  explicit task_book(limits l, std::uint64_t seed = std::random_device{}(), sink journal = {});

  // Replaces the sink (nothing is journalled while there is none: replay).
  void set_sink(sink journal) { sink_ = std::move(journal); }

  enum class refusal : std::uint8_t { none, overloaded };
  struct submitted {
    const task* t = nullptr;
    bool existing = false;  // the key was used before: that task
    refusal refused = refusal::none;
  };
  submitted submit(task_spec spec, std::uint64_t now_ms);
  // Forgets a task submitted just now whose journal record could not be written.
  void discard(std::uint64_t number);

  // Queued tasks due by `now_ms`, oldest first, while fewer than max_concurrency run: each
  // becomes running, its attempt counted.
  std::vector<const task*> start_due(std::uint64_t now_ms);
  // When the next queued task comes due (if it is not due already).
  [[nodiscard]] std::optional<std::uint64_t> next_due_ms() const;

  enum class ending : std::uint8_t { succeeded, failed, timed_out };
  // The attempt `attempt` of task `number` ended. Nothing (a stale report) unless that
  // attempt is the one running. A failed or timed-out attempt is retried while attempts
  // remain (the task is queued again); else the task ends failed / timed_out.
  const task* attempt_ended(std::uint64_t number, unsigned attempt, ending how, std::optional<wire::value> result,
                            std::optional<task_error> error, std::uint64_t now_ms);

  struct cancelled {
    bool done = false;         // it was queued or running and is cancelled now
    bool was_running = false;  // its attempt must be stopped
  };
  cancelled cancel(std::uint64_t number, std::uint64_t now_ms);

  [[nodiscard]] const task* find(std::uint64_t number) const;
  // Newest first (by submission), of one state or all, at most `limit`.
  [[nodiscard]] std::vector<const task*> list(std::optional<task_state> state, std::size_t limit) const;
  [[nodiscard]] task_counts counts() const;
  [[nodiscard]] std::size_t size() const noexcept { return tasks_.size(); }
  // The memory finished tasks take (memory_of each), against max_retained_bytes.
  [[nodiscard]] std::size_t retained_bytes() const noexcept { return retained_bytes_; }
  [[nodiscard]] std::size_t retained() const noexcept { return finished_.size(); }
  // What one task takes in the book: the task, its strings, args, result and error on the
  // heap, and its entries in the book's indexes — an estimate, a little under what it costs
  // (the task bench compares it with RSS: 464 against 515 bytes per echo task).
  [[nodiscard]] static std::size_t memory_of(const task& t) noexcept;

  // Finished tasks past retention (or past max_retained or max_retained_bytes, oldest
  // first) are forgotten, with their keys. Returns how many.
  std::size_t forget_expired(std::uint64_t now_ms);
  [[nodiscard]] std::optional<std::uint64_t> next_forget_ms() const;

  // Replay: one journal record. errc::invalid_argument for one this book cannot apply.
  canopy::result<void> apply(std::string_view record);
  // After replay: attempts that were running when the app stopped are queued again (they
  // run again: at least once). Returns how many.
  std::size_t requeue_interrupted(std::uint64_t now_ms);
  // Records that rebuild the book as it is (for compaction), in an order apply() takes.
  void snapshot(const std::function<void(std::string record)>& out) const;

 private:
  using queue_key = std::pair<std::uint64_t, std::uint64_t>;  // run_at, number

  task& add(task t);
  void enqueue(task& t);
  void dequeue(const task& t);
  void finish(task& t, task_state final, std::uint64_t now_ms);
  void retain(const task& t, std::uint64_t finished_ms);  // a finished task joins finished_
  void journal(std::string record) const;
  [[nodiscard]] std::uint64_t backoff_for(const task& t);
  void count_final(task_state s);

  limits limits_;
  std::mt19937_64 rng_;
  sink sink_;
  std::uint64_t next_number_ = 1;
  std::map<std::uint64_t, std::unique_ptr<task>> tasks_;  // by number: submission order
  std::unordered_map<std::string, std::uint64_t> keys_;
  std::map<queue_key, task*> queue_;
  struct finished_task {
    std::uint64_t number;
    std::size_t bytes;  // memory_of when it finished (a finished task does not change)
  };
  std::multimap<std::uint64_t, finished_task> finished_;  // by finished_ms
  std::size_t retained_bytes_ = 0;
  std::uint64_t running_ = 0;
  task_counts totals_;
};

}  // namespace canopy::task_app
