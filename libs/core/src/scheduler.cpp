#include "scheduler.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>

#include "process_cell.hpp"
#include "runtime_core.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CANOPY_CPU_RELAX() _mm_pause()
#else
#define CANOPY_CPU_RELAX() ((void)0)
#endif

namespace canopy::detail {

namespace {
// A thread looking for work spins this many rounds (each a few hundred ns) before parking.
constexpr int spin_rounds = 64;
// After this many runnext picks in a row, the local queue gets a turn (fairness).
constexpr unsigned runnext_streak_limit = 16;
// Every this many picks, the global queue is checked first (fairness for outside work).
constexpr std::uint64_t global_check_interval = 61;
// A busy worker polls the idle poller (non-blocking) after every this many runs, so a
// flood is read and replies go out while no thread is idle (Tokio's event_interval).
constexpr std::uint64_t poll_check_interval = 16;
// Processes a running process wakes become stealable this many at a time (see schedule()).
constexpr std::size_t pending_batch = 16;

// A coarse monotonic clock (a few ns, ms resolution): enough to spot a stalled handler.
std::chrono::milliseconds coarse_now() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return std::chrono::milliseconds(static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000);
}
}  // namespace

// Grouped by who touches what, a cache line each: thieves lock `mu` and read local_size,
// runnext and runs; the owner alone writes the bookkeeping on every run.
struct scheduler::worker {
  scheduler* sched = nullptr;
  unsigned index = 0;

  alignas(64) std::mutex mu;  // guards local
  std::deque<process_cell*> local;
  std::atomic<std::size_t> local_size{0};
  alignas(64) std::atomic<process_cell*> runnext{nullptr};
  std::atomic<std::uint64_t> runs{0};

  // Owner-only bookkeeping.
  alignas(64) unsigned runnext_streak = 0;
  // Processes woken by the running one, published to `local` in batches (see schedule()).
  std::vector<process_cell*> pending;
  bool published_in_run = false;
  std::uint64_t tick = 0;
  bool searching = false;
  // What this worker, as a thief, saw of each other worker on its last look (see steal()).
  struct sighting {
    std::uint64_t runs = 0;
    bool valid = false;
    process_cell* runnext = nullptr;
  };
  std::vector<sighting> seen;

  alignas(64) std::mutex park_mu;
  std::condition_variable park_cv;
  bool notified = false;
  idle_poller* polling = nullptr;  // under park_mu: the poller this worker waits in
  std::atomic<bool> in_poll{false};  // the same, for wake_one's choice (under idle_mu_)
  // Inside poller->poll(): what the poll wakes runs here the moment it returns, so a thief
  // must not read an unchanged runnext as a stuck owner (see steal()).
  std::atomic<bool> serving{false};
  std::uint64_t runs_since_poll = 0;  // owner-only

  std::thread thread;
};

namespace {
thread_local scheduler::worker* tls_worker = nullptr;  // NOLINT: set once per worker thread
}

scheduler::scheduler(runtime_core& rt, scheduling mode, unsigned threads, unsigned batch)
    : rt_(rt), mode_(mode), batch_(std::max(1u, batch)) {
  if (mode_ == scheduling::threads) {
    const unsigned n = threads == 0 ? std::max(1u, std::thread::hardware_concurrency()) : threads;
    for (unsigned i = 0; i < n; ++i) {
      auto w = std::make_unique<worker>();
      w->sched = this;
      w->index = i;
      w->seen.resize(n);
      w->pending.reserve(pending_batch);  // schedule() is noexcept: it never allocates
      workers_.push_back(std::move(w));
    }
  }
}

scheduler::~scheduler() { stop(); }

void scheduler::start() {
  for (auto& w : workers_) {
    worker* wp = w.get();
    wp->thread = std::thread([this, wp] { worker_main(*wp); });
  }
}

bool scheduler::on_worker_thread() noexcept { return tls_worker != nullptr; }

void scheduler::stop() noexcept {
  if (stopping_.exchange(true)) return;
  for (auto& w : workers_) {
    {
      std::lock_guard lk(w->park_mu);
      w->notified = true;
      if (w->polling) w->polling->interrupt();
    }
    w->park_cv.notify_one();
  }
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
  manual_cv_.notify_all();
}

// ---- making work runnable ----------------------------------------------------------------

void scheduler::schedule(process_cell* cell) noexcept {
  worker* w = tls_worker;
  if (w != nullptr && w->sched == this) {
    // Woken by the process running here: it runs next, on this core.
    process_cell* displaced = w->runnext.exchange(cell, std::memory_order_acq_rel);
    if (displaced) {
      // The first process a run displaces is stealable at once, so an idle worker gets
      // work even if this run goes on for long; later ones are published in batches (and
      // when the run ends): a supervisor stopping 100,000 children took the queue's lock
      // per child, against a thief taking the same lock per child.
      w->pending.push_back(displaced);
      if (!w->published_in_run || w->pending.size() >= pending_batch) {
        w->published_in_run = true;
        publish_pending(*w);
      }
    }
    return;
  }
  push_global(cell);
  if (mode_ == scheduling::manual) {
    std::lock_guard lk(manual_mu_);  // pairs with wait_for_work's predicate check
    manual_cv_.notify_all();
    return;
  }
  // Work from outside: an awake worker polls the injection stack anyway, so wake a worker
  // only when all are asleep. Waking on every push would cost a futex call per spawn when
  // a thread spawns many processes.
  if (sleeping_.fetch_add(0, std::memory_order_seq_cst) == workers_.size()) wake_one();
}

void scheduler::publish_pending(worker& w) {
  {
    std::lock_guard lk(w.mu);
    w.local.insert(w.local.end(), w.pending.begin(), w.pending.end());
    w.local_size.store(w.local.size(), std::memory_order_relaxed);
  }
  w.pending.clear();
  maybe_wake();
}

void scheduler::push_local(worker& w, process_cell* cell) {
  std::lock_guard lk(w.mu);
  w.local.push_back(cell);
  w.local_size.store(w.local.size(), std::memory_order_relaxed);
}

bool scheduler::push_global(process_cell* cell) noexcept {
  process_cell* head = injected_.load(std::memory_order_relaxed);
  do {
    cell->inject_next = head;
  } while (!injected_.compare_exchange_weak(head, cell, std::memory_order_release, std::memory_order_relaxed));
  return head == nullptr;
}

process_cell* scheduler::take_injected() noexcept {
  if (injected_.load(std::memory_order_relaxed) == nullptr) return nullptr;
  process_cell* c = injected_.exchange(nullptr, std::memory_order_acquire);
  process_cell* reversed = nullptr;  // newest-first: reverse to arrival order
  while (c) {
    process_cell* next = c->inject_next;
    c->inject_next = reversed;
    reversed = c;
    c = next;
  }
  return reversed;
}

// The pusher published work, then looks for sleepers; a parking worker counts itself as
// sleeping, then looks for work. Both sides use a read-modify-write of `sleeping_`, which
// orders them: either the pusher sees the sleeper, or the sleeper sees the work. (An RMW
// rather than a fence because ThreadSanitizer does not model fences.)
void scheduler::maybe_wake() noexcept {
  if (sleeping_.fetch_add(0, std::memory_order_seq_cst) == 0) return;
  if (searching_.load(std::memory_order_relaxed) != 0) return;  // a spinning worker will find it
  wake_one();
}

void scheduler::wake_one() noexcept {
  worker* w = nullptr;
  {
    std::lock_guard lk(idle_mu_);
    if (idle_.empty()) return;
    // Not the polling worker if another sleeps: work the poll itself made runnable (a
    // second process woken in the same poll) must reach a second thread.
    auto pick = std::find_if(idle_.rbegin(), idle_.rend(),
                             [](worker* x) { return !x->in_poll.load(std::memory_order_relaxed); });
    auto it = pick == idle_.rend() ? std::prev(idle_.end()) : std::prev(pick.base());
    w = *it;
    idle_.erase(it);
    sleeping_.fetch_sub(1, std::memory_order_relaxed);
    searching_.fetch_add(1, std::memory_order_relaxed);  // on its behalf: it wakes searching
  }
  {
    // Interrupted under park_mu: the polling worker clears `polling` under it before it
    // gives the role back, so the poller cannot be removed (and destroyed) meanwhile.
    std::lock_guard lk(w->park_mu);
    w->notified = true;
    if (w->polling) w->polling->interrupt();
  }
  w->park_cv.notify_one();
}

bool scheduler::set_poller(idle_poller* poller) {
  if (mode_ != scheduling::threads) return false;
  if (poller != nullptr) {
    idle_poller* none = nullptr;
    if (!poller_.compare_exchange_strong(none, poller, std::memory_order_seq_cst)) return false;
    // Workers asleep already would only reach the poller once other work woke them.
    wake_one();
    return true;
  }
  idle_poller* old = poller_.exchange(nullptr, std::memory_order_seq_cst);
  // A worker takes the role, then reads poller_: once the role is free after the exchange,
  // no worker can reach `old` again.
  while (old != nullptr && polling_.load(std::memory_order_seq_cst)) {
    old->interrupt();
    std::this_thread::yield();
  }
  return true;
}

// ---- finding work ----------------------------------------------------------------------------

// Takes all injected work: runs the oldest, queues the rest locally (thieves spread it).
process_cell* scheduler::pop_global(worker* w) {
  if (w == nullptr) {  // manual mode
    std::lock_guard lk(manual_mu_);
    for (process_cell* c = take_injected(); c != nullptr;) {
      process_cell* next = std::exchange(c->inject_next, nullptr);
      manual_queue_.push_back(c);
      c = next;
    }
    if (manual_queue_.empty()) return nullptr;
    process_cell* first = manual_queue_.front();
    manual_queue_.pop_front();
    return first;
  }
  process_cell* first = take_injected();
  if (first == nullptr) return nullptr;
  process_cell* rest = std::exchange(first->inject_next, nullptr);
  if (rest != nullptr) {
    {
      std::lock_guard lk(w->mu);
      for (process_cell* c = rest; c != nullptr;) {
        process_cell* next = std::exchange(c->inject_next, nullptr);
        w->local.push_back(c);
        c = next;
      }
      w->local_size.store(w->local.size(), std::memory_order_relaxed);
    }
    maybe_wake();
  }
  return first;
}

// Stealing moves a process to another core, and every message it then exchanges with the
// processes it left behind crosses cores (a cache miss each way, often a wake-up): a
// supervisor restart took 7.5 us on 2 threads against 3.1 us on one. So a thief takes half
// of a victim's queue only when it holds two or more, and a victim's lone queued process or
// its runnext only when the victim is stuck: it finished no run between two of our looks.
process_cell* scheduler::steal(worker& w) {
  const auto n = static_cast<unsigned>(workers_.size());
  for (unsigned k = 1; k < n; ++k) {
    worker& v = *workers_[(w.index + k) % n];
    const std::size_t queued = v.local_size.load(std::memory_order_relaxed);
    process_cell* rn = v.runnext.load(std::memory_order_acquire);
    if (queued == 0 && rn == nullptr) continue;
    const std::uint64_t runs = v.runs.load(std::memory_order_acquire);
    worker::sighting& seen = w.seen[v.index];
    const bool stuck = seen.valid && seen.runs == runs;
    seen = {runs, true};
    if (queued >= 2 || (queued == 1 && stuck)) {
      std::vector<process_cell*> taken;
      {
        std::lock_guard lk(v.mu);
        const std::size_t take = (v.local.size() + 1) / 2;
        for (std::size_t i = 0; i < take; ++i) {
          taken.push_back(v.local.front());
          v.local.pop_front();
        }
        v.local_size.store(v.local.size(), std::memory_order_relaxed);
      }
      if (!taken.empty()) {
        if (taken.size() > 1) {
          std::lock_guard lk(w.mu);
          w.local.insert(w.local.end(), taken.begin() + 1, taken.end());
          w.local_size.store(w.local.size(), std::memory_order_relaxed);
        }
        return taken.front();
      }
    }
    // A runnext is taken only if it sat unchanged while its owner ran nothing else: the
    // owner is busy in one long run, and the woken process would wait for it. Not while
    // the owner serves a poll: it runs the process next, and a thief splitting a stream of
    // requests from their handler only moves every message between cores.
    if (rn != nullptr && stuck && seen.runnext == rn && !v.serving.load(std::memory_order_relaxed) &&
        v.runnext.compare_exchange_strong(rn, nullptr, std::memory_order_acq_rel)) {
      seen.valid = false;
      return rn;
    }
    seen.runnext = rn;
  }
  return nullptr;
}

process_cell* scheduler::find_work(worker& w) {
  if (!w.pending.empty()) publish_pending(w);  // woken outside a run: none expected
  ++w.tick;
  if (w.tick % global_check_interval == 0) {
    if (process_cell* c = pop_global(&w)) return c;
  }
  if (w.runnext_streak < runnext_streak_limit) {
    if (process_cell* c = w.runnext.exchange(nullptr, std::memory_order_acq_rel)) {
      ++w.runnext_streak;
      return c;
    }
  }
  w.runnext_streak = 0;
  if (w.local_size.load(std::memory_order_relaxed) > 0) {
    std::lock_guard lk(w.mu);
    if (!w.local.empty()) {
      process_cell* c = w.local.front();
      w.local.pop_front();
      w.local_size.store(w.local.size(), std::memory_order_relaxed);
      return c;
    }
  }
  if (process_cell* c = w.runnext.exchange(nullptr, std::memory_order_acq_rel)) return c;
  if (process_cell* c = pop_global(&w)) return c;
  return steal(w);
}

bool scheduler::work_visible() const noexcept {
  if (injected_.load(std::memory_order_relaxed) != nullptr) return true;
  // A lone queued process is left to its owner (see steal()); the spinning thief still
  // looks for stuck owners now and then.
  return std::any_of(workers_.begin(), workers_.end(), [](const auto& v) {
    return v->local_size.load(std::memory_order_relaxed) > 1;
  });
}

// ---- running -----------------------------------------------------------------------------------

void scheduler::run_cell(worker* w, process_cell* cell) {
  const auto started = coarse_now();
  const run_result r = cell->run(batch_);
  if (w != nullptr) {
    if (!w->pending.empty()) publish_pending(*w);
    w->published_in_run = false;
    w->runs.fetch_add(1, std::memory_order_release);
  }
  const auto took = coarse_now() - started;
  if (took >= rt_.config.stall_warning) rt_.report_stall(cell, took);
  switch (r) {
    case run_result::blocked:
      break;
    case run_result::again:
      if (w != nullptr) {
        push_local(*w, cell);
        maybe_wake();
      } else {
        std::lock_guard lk(manual_mu_);
        manual_queue_.push_back(cell);
      }
      break;
    case run_result::exited:
      cell->release();  // the reference the process held on itself while alive
      break;
  }
}

void scheduler::worker_main(worker& w) {
  tls_worker = &w;
  while (!stopping_.load(std::memory_order_acquire)) {
    process_cell* c = find_work(w);
    if (c == nullptr) {
      park(w);
      continue;
    }
    if (w.searching) {
      w.searching = false;
      searching_.fetch_sub(1, std::memory_order_relaxed);
    }
    run_cell(&w, c);
    if (++w.runs_since_poll >= poll_check_interval) poll_ready(w, false);
  }
  if (w.searching) searching_.fetch_sub(1, std::memory_order_relaxed);
  tls_worker = nullptr;
}

void scheduler::park(worker& w) {
  poll_ready(w, true);
  if (w.runnext.load(std::memory_order_relaxed) != nullptr) return;
  if (!w.searching) {
    w.searching = true;
    searching_.fetch_add(1, std::memory_order_relaxed);
  }
  for (int i = 0; i < spin_rounds; ++i) {
    if (work_visible() || w.runnext.load(std::memory_order_relaxed) != nullptr) return;
    if (stopping_.load(std::memory_order_relaxed)) return;
    // The next request of a client waiting on this reply arrives while we spin: look for
    // it now and then (one poll per ~10 us) rather than only once the spin is over. The
    // cache's 1-client p50 went from 65-87 us to 55-62 us.
    if ((i & 7) == 7) {
      poll_ready(w, true);
      if (w.runnext.load(std::memory_order_relaxed) != nullptr) return;
    }
    // A stale runnext elsewhere is only visible to steal(): give it a look now and then.
    if ((i & 15) == 15) {
      if (process_cell* c = steal(w)) {
        // Put it where find_work looks first; we are its only owner now.
        w.runnext.store(c, std::memory_order_release);
        return;
      }
    }
    for (int k = 0; k < 32; ++k) CANOPY_CPU_RELAX();
  }
  w.searching = false;
  searching_.fetch_sub(1, std::memory_order_relaxed);

  {
    std::lock_guard lk(idle_mu_);
    idle_.push_back(&w);
    sleeping_.fetch_add(1, std::memory_order_seq_cst);
  }
  if (work_visible() || stopping_.load(std::memory_order_acquire)) {
    leave_idle(w);
    return;
  }
  if (poll_while_idle(w)) return;
  std::unique_lock lk(w.park_mu);
  w.park_cv.wait(lk, [&] { return w.notified; });
  w.notified = false;
  if (!stopping_.load(std::memory_order_acquire)) w.searching = true;  // wake_one counted us
}

void scheduler::leave_idle(worker& w) {
  bool was_idle = false;
  {
    std::lock_guard lk(idle_mu_);
    auto it = std::find(idle_.begin(), idle_.end(), &w);
    if (it != idle_.end()) {
      idle_.erase(it);
      sleeping_.fetch_sub(1, std::memory_order_relaxed);
      was_idle = true;
    }
  }
  if (!was_idle) {  // a waker took us off the list already and counts us as searching
    std::unique_lock lk(w.park_mu);
    w.park_cv.wait(lk, [&] { return w.notified; });
    w.notified = false;
    w.searching = true;
  }
}

// Not `loaded` → wake another worker to poll: a poll returns after a bounded batch and
// this thread, once it has run what came, polls again. A second poller only split one
// stream across two cores (pipelined requests 0.6 → 0.8-1.1M/s without it, docs/messaging.md).
void scheduler::poll_ready(worker& w, bool idle) {
  if (!idle) w.runs_since_poll = 0;
  if (poller_.load(std::memory_order_relaxed) == nullptr || polling_.load(std::memory_order_relaxed) ||
      polling_.exchange(true, std::memory_order_seq_cst))
    return;
  w.runs_since_poll = 0;
  if (idle_poller* p = poller_.load(std::memory_order_seq_cst)) {
    w.serving.store(true, std::memory_order_relaxed);
    (void)p->poll(false);
    w.serving.store(false, std::memory_order_relaxed);
  }
  polling_.store(false, std::memory_order_seq_cst);
  if (!w.pending.empty()) publish_pending(w);
}

// Called listed as idle (sleeping_ counts us): a waker may pick us, set notified and
// interrupt the poll. Work the poll itself makes runnable lands in our runnext.
bool scheduler::poll_while_idle(worker& w) {
  if (poller_.load(std::memory_order_relaxed) == nullptr || polling_.exchange(true, std::memory_order_seq_cst))
    return false;
  idle_poller* p = poller_.load(std::memory_order_seq_cst);
  bool polled = false;
  if (p != nullptr) {
    {
      std::lock_guard lk(w.park_mu);
      w.polling = p;
    }
    {
      std::lock_guard lk(idle_mu_);
      w.in_poll.store(true, std::memory_order_relaxed);
    }
    for (;;) {
      {
        std::lock_guard lk(w.park_mu);
        if (w.notified) break;
      }
      if (poller_.load(std::memory_order_seq_cst) != p) break;  // being removed: set_poller waits for us
      w.serving.store(true, std::memory_order_relaxed);
      const idle_poller::outcome got = p->poll(true);
      w.serving.store(false, std::memory_order_relaxed);
      if (got == idle_poller::outcome::busy) {
        // Held for a moment by another thread (the server's own, in its fallback poll).
        // Giving up would leave every worker asleep on its condition variable and the
        // sockets to that fallback's 2 ms rounds for as long as no other work woke one.
        std::this_thread::yield();
        continue;
      }
      polled = true;
      if (w.runnext.load(std::memory_order_relaxed) != nullptr || !w.pending.empty() ||
          w.local_size.load(std::memory_order_relaxed) != 0 || work_visible() ||
          stopping_.load(std::memory_order_acquire))
        break;
    }
    {
      std::lock_guard lk(idle_mu_);
      w.in_poll.store(false, std::memory_order_relaxed);
    }
    std::lock_guard lk(w.park_mu);
    w.polling = nullptr;
  }
  polling_.store(false, std::memory_order_seq_cst);
  if (!polled) {
    {
      std::lock_guard lk(w.park_mu);
      if (!w.notified) return false;  // sleep as usual
    }
  }
  leave_idle(w);
  if (!w.pending.empty()) publish_pending(w);
  return true;
}

// ---- manual mode ---------------------------------------------------------------------------

std::size_t scheduler::run_until_idle() {
  std::size_t runs = 0;
  for (;;) {
    process_cell* c = pop_global(nullptr);
    if (c == nullptr) return runs;
    run_cell(nullptr, c);
    ++runs;
  }
}

void scheduler::wait_for_work(std::chrono::steady_clock::time_point until) {
  std::unique_lock lk(manual_mu_);
  manual_cv_.wait_until(lk, until, [&] {
    return !manual_queue_.empty() || injected_.load() != nullptr || stopping_.load();
  });
}

}  // namespace canopy::detail
