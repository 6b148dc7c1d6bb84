// The server process: every op; the task book's transitions turned into worker starts,
// monitors, timers, events, journal records and replies.
#include <spdlog/logger.h>

#include <deque>
#include <map>
#include <stdexcept>
#include <unordered_map>

#include "canopy/app/earliest_timer.hpp"
#include "canopy/app/handler.hpp"
#include "canopy/core/runtime.hpp"
#include "canopy/otp/dynamic_supervisor.hpp"
#include "canopy/otp/gen_server.hpp"
#include "canopy/otp/supervisor.hpp"
#include "parts.hpp"

namespace canopy::task_app {

using canopy::app::invalid_args;
using canopy::app::take;

// ---- runner_env ------------------------------------------------------------------------------

runner_env::runner_env(canopy::app::context& c, options o, kinds k)
    : ctx(&c),
      opts(std::move(o)),
      table(std::move(k)),
      book(opts.limits),
      wall_base_(canopy::app::context::wall_ms()),
      mono_base_(c.rt().clock().now()) {}

std::uint64_t runner_env::now_ms() const {
  const auto since = std::chrono::duration_cast<std::chrono::milliseconds>(ctx->rt().clock().now() - mono_base_);
  return wall_base_ + static_cast<std::uint64_t>(std::max<std::int64_t>(0, since.count()));
}

time_point runner_env::at(std::uint64_t ms) const {
  const std::int64_t offset = static_cast<std::int64_t>(ms) - static_cast<std::int64_t>(wall_base_);
  return mono_base_ + std::chrono::milliseconds(offset);
}

runner_env::~runner_env() = default;

void runner_env::set_server(pid p) {
  std::lock_guard lk(mu_);
  server_ = std::move(p);
}

pid runner_env::server() const {
  std::lock_guard lk(mu_);
  return server_;
}

namespace {

struct due_tick {};
struct sweep_tick {};
struct pump_now {};
struct attempt_timeout {
  std::uint64_t number;
  unsigned attempt;
};
struct await_expired {
  std::uint64_t number;
  std::uint64_t waiter;
};

void write_error(wire::packer& p, const task_error& e) {
  p.pack_map(e.kind.empty() ? 1 : 2);
  p.pack("message");
  p.pack(e.message);
  if (!e.kind.empty()) {
    p.pack("kind");
    p.pack(e.kind);
  }
}

void write_status(wire::packer& p, const task& t) {
  const std::uint32_t n = 6 + (t.result ? 1 : 0) + (t.error ? 1 : 0) + (t.started_ms ? 1 : 0) + (t.finished_ms ? 1 : 0);
  p.pack_map(n);
  p.pack("task_id");
  p.pack(t.id());
  p.pack("kind");
  p.pack(t.spec.kind);
  p.pack("state");
  p.pack(to_string(t.state));
  p.pack("attempts");
  p.pack(t.attempts);
  if (t.result) {
    p.pack("result");
    t.result->write_to(p);
  }
  if (t.error) {
    p.pack("error");
    write_error(p, *t.error);
  }
  p.pack("submitted_ms");
  p.pack(t.submitted_ms);
  if (t.started_ms) {
    p.pack("started_ms");
    p.pack(*t.started_ms);
  }
  if (t.finished_ms) {
    p.pack("finished_ms");
    p.pack(*t.finished_ms);
  }
  p.pack("max_attempts");
  p.pack(t.spec.max_attempts);
}

class server final : public gen_server {
 public:
  explicit server(std::shared_ptr<runner_env> env)
      : env_(std::move(env)),
        book_(env_->book),
        queued_(env_->ctx->stats()["queued"]),
        running_(env_->ctx->stats()["running"]),
        journal_records_(env_->ctx->stats()["journal_records"]) {}

 protected:
  result init() override {
    process_flag(trap_exit::on);  // terminate: the journal's last records are written
    workers_ = resolve(workers_name);
    if (!workers_) return stop(exit_reason::other("no_workers", "the workers' supervisor is not running"));
    if (!env_->loaded) {
      if (auto loaded = load(); !loaded) return stop(exit_reason::other("journal", loaded.error().to_string()));
      env_->loaded = true;
    } else {
      restarted_ = true;  // a previous server's workers may still run: they go first
    }
    env_->set_server(self());
    book_.set_sink([this](std::string record) { journal(std::move(record)); });
    // Attempts that were running under a previous server (or before a restart of the app)
    // are lost to it: they run again.
    const std::size_t requeued = book_.requeue_interrupted(env_->now_ms());
    if (requeued > 0) env_->ctx->log().info("canopy-task-runner: {} interrupted tasks run again", requeued);
    return ok().and_continue(due_tick{});
  }

  void terminate(const exit_reason&) override {
    book_.set_sink({});
    // Whoever waits for a task that will not finish here learns it now.
    for (auto& [number, list] : waiters_)
      for (auto& w : list) w.req.reply_error(wire::error_code::unavailable, "the task runner is stopping");
    waiters_.clear();
  }

  result handle_continue(message&) override {
    if (restarted_) {
      stop_orphans();
    } else {
      start_what_is_due();
    }
    return noreply();
  }

  result handle_cast(message& m) override {
    if (auto* req = m.get<msg::incoming>()) {
      if (req->op() == "crash") throw std::runtime_error("fault injection: the crash op on the task runner's server");
      canopy::app::answer(*req, [&] { serve(*req); });
      pump();
    }
    return noreply();
  }

  result handle_info(message& m) override {
    if (auto* done = m.get<attempt_done>()) {
      on_attempt_done(*done);
    } else if (auto* d = m.get<down_message>()) {
      on_worker_down(*d);
    } else if (auto* durable = m.get<journal_durable>()) {
      on_durable(*durable);
    } else if (auto* t = m.get<attempt_timeout>()) {
      on_timeout(*t);
    } else if (auto* w = m.get<await_expired>()) {
      on_await_expired(*w);
    } else if (m.get<due_tick>()) {
      due_.fired();
    } else if (m.get<sweep_tick>()) {
      sweep_.fired();
      forget();
    } else if (m.get<pump_now>()) {
      pump_posted_ = false;
      start_what_is_due();
      return noreply();
    }
    pump();
    return noreply();
  }

 private:
  struct running_attempt {
    pid worker;
    monitor_ref monitor;
    unsigned attempt = 0;
    timer_ref timeout;
    bool has_timeout = false;
  };
  struct waiter {
    std::uint64_t id;
    msg::incoming req;
    timer_ref timer;
  };
  struct pending_ack {
    std::uint64_t seq;
    std::uint64_t number;
    msg::incoming req;
    bool existing;
  };

  [[nodiscard]] const options& opts() const noexcept { return env_->opts; }

  // ---- the journal --------------------------------------------------------------------------

  canopy::result<void> load() {
    if (!opts().journal) return {};
    const std::string& path = opts().journal_path;
    auto read = read_journal(path, [&](std::string_view record) { return book_.apply(record); });
    if (!read) {
      env_->ctx->log().error("canopy-task-runner: the journal {} is corrupt; not starting: {}", path,
                             read.error().to_string());
      return read.error();
    }
    if (read->torn_bytes > 0)
      env_->ctx->log().warn("canopy-task-runner: the journal {} ended in a torn record ({} bytes, cut): the last "
                            "write before the app stopped was incomplete", path, read->torn_bytes);
    env_->ctx->log().info("canopy-task-runner: replayed {} records ({} tasks) from {}", read->records, book_.size(),
                          path);
    runtime* rt = &system();
    runner_env* env = env_.get();
    auto opened = journal_writer::open(path, opts().fsync, opts().fsync_window,
                                       [rt, env](std::uint64_t seq, bool ok, const std::string& why) {
                                         if (const pid to = env->server()) rt->send(to, journal_durable{seq, ok, why});
                                       });
    if (!opened) return opened.error();
    env_->journal = std::move(*opened);
    records_since_compaction_ = read->records;
    return {};
  }

  void journal(std::string record) {
    if (!env_->journal) return;
    last_seq_ = env_->journal->append(std::move(record));
    ++records_since_compaction_;
    ++journal_records_;
  }

  void maybe_compact() {
    if (!env_->journal || records_since_compaction_ < opts().compact_after + book_.size()) return;
    journal_snapshot snapshot;
    book_.snapshot([&](std::string r) { snapshot.add(r); });
    env_->journal->compact(std::move(snapshot));
    env_->ctx->log().info("canopy-task-runner: compacting the journal to {} tasks ({} records since the last time)",
                          book_.size(), records_since_compaction_);
    records_since_compaction_ = book_.size() + 1;
  }

  void on_durable(const journal_durable& d) {
    while (!acks_.empty() && acks_.front().seq <= d.seq) {
      pending_ack a = std::move(acks_.front());
      acks_.pop_front();
      if (d.ok) {
        reply_submitted(a.req, a.number, a.existing);
        continue;
      }
      a.req.reply_error(wire::error_code::unavailable, "the journal cannot be written, the task was not accepted: " + d.why);
      if (!a.existing) drop_unwritten(a.number);
    }
    if (!d.ok) env_->ctx->log().error("canopy-task-runner: journal write failed: {}", d.why);
  }

  // A task whose submit record was not written: it was never accepted.
  void drop_unwritten(std::uint64_t number) {
    if (auto it = running_attempts_.find(number); it != running_attempts_.end()) stop_worker(number);
    answer_waiters(number, "the task was not accepted (its journal record could not be written)");
    book_.discard(number);
  }

  // ---- ops ----------------------------------------------------------------------------------

  void serve(msg::incoming& req) {
    const std::string_view op = req.op();
    if (op == "submit") return submit(req);
    if (op == "status") return status(req);
    if (op == "await") return await(req);
    if (op == "cancel") return cancel(req);
    if (op == "list") return list(req);
    if (op == "stats") return stats(req);
    req.reply_error(wire::error_code::unknown_op, "no op '" + std::string(op) + "' on task_runner");
  }

  static void reply_submitted(msg::incoming& req, std::uint64_t number, bool existing) {
    req.reply_ok([&](wire::packer& p) {
      p.pack_map(2);
      p.pack("task_id");
      p.pack("t-" + std::to_string(number));
      p.pack("existing");
      p.pack(existing);
    });
  }

  static std::optional<std::uint64_t> bounded(const msgpack::object& args, const char* name, std::uint64_t min,
                                              std::uint64_t max) {
    auto v = take(wire::optional_uint_arg(args, name));
    if (v && (*v < min || *v > max))
      throw invalid_args(std::string(name) + " must be between " + std::to_string(min) + " and " + std::to_string(max));
    return v;
  }

  void submit(msg::incoming& req) {
    const msgpack::object& a = req.args();
    task_spec spec;
    spec.kind = std::string(take(wire::string_arg(a, "kind")));
    const msgpack::object* args = wire::find(a, "args");
    if (args != nullptr && args->type == msgpack::type::NIL) args = nullptr;
    if (spec.kind == "exec") {
      static const msgpack::object none = [] {
        msgpack::object o;
        o.type = msgpack::type::NIL;
        return o;
      }();
      if (auto refused = exec_refusal(opts().exec, args ? *args : none)) {
        req.reply_error(refused->first, refused->second);
        return;
      }
    }
    if (env_->table.find(spec.kind) == nullptr) throw invalid_args("no kind '" + spec.kind + "'");
    if (args != nullptr) {
      spec.args = wire::value::from_object(*args);
      if (spec.args.bytes().size() > opts().max_args_bytes) {
        req.reply_error(wire::error_code::too_large, "args has " + std::to_string(spec.args.bytes().size()) +
                                                         " bytes (limit " + std::to_string(opts().max_args_bytes) + ")");
        return;
      }
    }
    constexpr std::uint64_t long_time = std::uint64_t{1} << 40;
    spec.timeout_ms = bounded(a, "timeout_ms", 1, long_time);
    spec.max_attempts = static_cast<unsigned>(bounded(a, "max_attempts", 1, opts().max_attempts).value_or(1));
    spec.backoff_ms = bounded(a, "backoff_ms", 0, long_time).value_or(0);
    spec.delay_ms = bounded(a, "delay_ms", 0, long_time).value_or(0);
    if (auto key = take(wire::optional_string_arg(a, "key"))) {
      if (key->empty() || key->size() > 1024) throw invalid_args("key must be 1 to 1024 bytes");
      spec.key = std::string(*key);
    }
    const std::uint64_t before = last_seq_;
    const task_book::submitted s = book_.submit(std::move(spec), env_->now_ms());
    if (s.refused == task_book::refusal::overloaded) {
      req.reply_error(wire::error_code::overloaded, "the queue holds its queue_limit (" +
                                                        std::to_string(opts().limits.queue_limit) + ") tasks; retry later");
      return;
    }
    const std::uint64_t number = s.t->number;
    // Acknowledged once durable: its own record, or (existing) the original's if that one is
    // still on its way.
    std::uint64_t wait_for = 0;
    if (!s.existing && last_seq_ != before) wait_for = last_seq_;
    if (s.existing)
      for (const pending_ack& p : acks_)
        if (p.number == number && !p.existing) wait_for = p.seq;
    if (wait_for == 0) {
      reply_submitted(req, number, s.existing);
      return;
    }
    acks_.push_back({wait_for, number, std::move(req), s.existing});
  }

  const task* task_arg(msg::incoming& req) {
    const std::string_view id = take(wire::string_arg(req.args(), "task_id"));
    const auto number = task_number(id);
    const task* t = number ? book_.find(*number) : nullptr;
    if (t == nullptr) req.reply_error(wire::error_code::not_found, "no task " + std::string(id));
    return t;
  }

  void status(msg::incoming& req) {
    if (const task* t = task_arg(req)) req.reply_ok([&](wire::packer& p) { write_status(p, *t); });
  }

  void await(msg::incoming& req) {
    const std::uint64_t timeout =
        bounded(req.args(), "timeout_ms", 0, static_cast<std::uint64_t>(opts().max_await.count())).value_or(5000);
    const task* t = task_arg(req);
    if (t == nullptr) return;
    if (is_final(t->state)) {
      req.reply_ok([&](wire::packer& p) { write_status(p, *t); });
      return;
    }
    const std::uint64_t id = next_waiter_++;
    timer_ref timer = send_after(std::chrono::milliseconds(timeout), self(), await_expired{t->number, id});
    waiters_[t->number].push_back({id, std::move(req), timer});
  }

  void cancel(msg::incoming& req) {
    const std::string_view id = take(wire::string_arg(req.args(), "task_id"));
    const auto number = task_number(id);
    const task_book::cancelled c = number ? book_.cancel(*number, env_->now_ms()) : task_book::cancelled{};
    if (c.was_running) stop_worker(*number);
    req.reply_ok([&](wire::packer& p) {
      p.pack_map(1);
      p.pack("cancelled");
      p.pack(c.done);
    });
    if (c.done) finished(*book_.find(*number));
  }

  void list(msg::incoming& req) {
    const msgpack::object& a = req.args();
    std::optional<task_state> state;
    if (auto s = take(wire::optional_string_arg(a, "state"))) {
      state = task_state_from(*s);
      if (!state) throw invalid_args("state must be one of queued, running, succeeded, failed, cancelled, timed_out");
    }
    const std::uint64_t limit = bounded(a, "limit", 1, 100000).value_or(100);
    const auto found = book_.list(state, limit);
    req.reply_ok([&](wire::packer& p) {
      p.pack_map(1);
      p.pack("tasks");
      p.pack_array(static_cast<std::uint32_t>(found.size()));
      for (const task* t : found) write_status(p, *t);
    });
  }

  void stats(msg::incoming& req) {
    const task_counts c = book_.counts();
    req.reply_ok([&](wire::packer& p) {
      p.pack_map(10);
      p.pack("queued");
      p.pack(c.queued);
      p.pack("running");
      p.pack(c.running);
      p.pack("succeeded");
      p.pack(c.succeeded);
      p.pack("failed");
      p.pack(c.failed);
      p.pack("cancelled");
      p.pack(c.cancelled);
      p.pack("timed_out");
      p.pack(c.timed_out);
      p.pack("max_concurrency");
      p.pack(opts().limits.max_concurrency);
      p.pack("queue_limit");
      p.pack(static_cast<std::uint64_t>(opts().limits.queue_limit));
      p.pack("retained");
      p.pack(static_cast<std::uint64_t>(book_.retained()));
      p.pack("retained_bytes");
      p.pack(static_cast<std::uint64_t>(book_.retained_bytes()));
    });
  }

  // ---- attempts -----------------------------------------------------------------------------

  // After a restart of this process: the workers the previous one started report to it,
  // not to us, and their tasks run again — so they are stopped before anything starts.
  async stop_orphans() {
    which_children_request ask;
    auto orphans = co_await process::call<std::vector<child_info>>(workers_, std::move(ask), std::chrono::seconds(5));
    std::size_t stopped = 0;
    if (orphans) {
      for (const child_info& c : *orphans) {
        if (!c.child) continue;
        exit(c.child, exit_reason::kill());
        ++stopped;
      }
    }
    if (stopped > 0) env_->ctx->log().info("canopy-task-runner: stopped {} workers of the previous server", stopped);
    start_what_is_due();
  }

  // After a change: start what is due once the messages queued now are handled, so that a
  // burst of submits and finished attempts becomes one batch of worker starts.
  void pump() {
    if (pump_posted_) return;
    pump_posted_ = true;
    send(self(), pump_now{});
  }

  // Starts what is due, then arms the timers for what comes due later.
  void start_what_is_due() {
    std::vector<const task*> due = book_.start_due(env_->now_ms());
    if (!due.empty()) launch(std::move(due));
    due_.arm(system(), self(), system().clock().now(),
             book_.next_due_ms() ? std::optional<time_point>(env_->at(*book_.next_due_ms())) : std::nullopt, due_tick{});
    sweep_.arm(system(), self(), system().clock().now(),
               book_.next_forget_ms() ? std::optional<time_point>(env_->at(*book_.next_forget_ms())) : std::nullopt,
               sweep_tick{});
    const task_counts c = book_.counts();
    queued_ = static_cast<std::int64_t>(c.queued);
    running_ = static_cast<std::int64_t>(c.running);
    maybe_compact();
  }

  // Each attempt in its own worker under the workers' supervisor, all of them started with
  // one request.
  async launch(std::vector<const task*> due) {
    struct item {
      std::uint64_t number;
      unsigned attempt;
    };
    std::vector<item> items;
    items.reserve(due.size());
    start_children_batch ask;
    ask.specs.reserve(due.size());
    for (const task* t : due) {
      items.push_back({t->number, t->attempts});
      ask.specs.push_back(worker_spec(env_, self(), *t));
    }
    const std::size_t count = items.size();
    auto batch = co_await process::call<std::vector<canopy::result<pid>>>(workers_, std::move(ask), std::chrono::seconds(5));
    for (std::size_t i = 0; i < count; ++i) {
      const item& it = items[i];
      canopy::result<canopy::result<pid>> started =
          batch ? canopy::result<canopy::result<pid>>(std::move((*batch)[i])) : canopy::result<canopy::result<pid>>(batch.error());
      const task* t = book_.find(it.number);
      if (t == nullptr || t->state != task_state::running || t->attempts != it.attempt) {
        if (started && *started) exit(**started, exit_reason::kill());  // cancelled meanwhile
        continue;
      }
      if (!started || !*started) {
        const std::string why = !started ? started.error().to_string() : started->error().to_string();
        ended(book_.attempt_ended(it.number, it.attempt, task_book::ending::failed, std::nullopt,
                                  task_error{"the worker did not start: " + why, "crash"}, env_->now_ms()));
        continue;
      }
      running_attempt r;
      r.worker = **started;
      r.monitor = monitor(r.worker);
      r.attempt = it.attempt;
      if (t->spec.timeout_ms) {
        // From the attempt's start in task time, not from now: starting the worker took a
        // moment, and the clock may have moved meanwhile.
        const std::uint64_t ends = t->started_ms.value_or(env_->now_ms()) + *t->spec.timeout_ms;
        const std::uint64_t now = env_->now_ms();
        r.timeout = send_after(std::chrono::milliseconds(ends > now ? ends - now : 0), self(),
                               attempt_timeout{it.number, it.attempt});
        r.has_timeout = true;
      }
      monitors_[r.monitor.value()] = it.number;
      running_attempts_[it.number] = std::move(r);
      env_->ctx->publish("started", 3, [&](wire::packer& p) {
        p.pack("task_id");
        p.pack(t->id());
        p.pack("kind");
        p.pack(t->spec.kind);
        p.pack("attempt");
        p.pack(it.attempt);
      });
    }
    pump();  // what came due while we were starting these
  }

  // Forgets the attempt's worker bookkeeping; the worker itself is left alone.
  void release(std::uint64_t number) {
    auto it = running_attempts_.find(number);
    if (it == running_attempts_.end()) return;
    demonitor(it->second.monitor);
    monitors_.erase(it->second.monitor.value());
    if (it->second.has_timeout) cancel_timer(it->second.timeout);
    running_attempts_.erase(it);
  }

  // Kills the attempt's worker (timeout, cancel).
  void stop_worker(std::uint64_t number) {
    auto it = running_attempts_.find(number);
    if (it == running_attempts_.end()) return;
    const pid worker = it->second.worker;
    release(number);
    exit(worker, exit_reason::kill());
  }

  void on_attempt_done(attempt_done& d) {
    auto it = running_attempts_.find(d.number);
    if (it == running_attempts_.end() || it->second.attempt != d.attempt) return;  // stale
    release(d.number);
    ended(book_.attempt_ended(d.number, d.attempt, d.ok ? task_book::ending::succeeded : task_book::ending::failed,
                              std::move(d.result), std::move(d.error), env_->now_ms()));
  }

  void on_worker_down(const down_message& d) {
    auto m = monitors_.find(d.ref.value());
    if (m == monitors_.end()) return;
    const std::uint64_t number = m->second;
    const unsigned attempt = running_attempts_[number].attempt;
    release(number);
    ended(book_.attempt_ended(number, attempt, task_book::ending::failed, std::nullopt,
                              task_error{"the worker process died: " + d.reason.to_string(), "crash"}, env_->now_ms()));
  }

  void on_timeout(const attempt_timeout& t) {
    auto it = running_attempts_.find(t.number);
    if (it == running_attempts_.end() || it->second.attempt != t.attempt) return;
    it->second.has_timeout = false;  // it fired
    stop_worker(t.number);
    const task* task = book_.find(t.number);
    const std::uint64_t limit = task && task->spec.timeout_ms ? *task->spec.timeout_ms : 0;
    ended(book_.attempt_ended(t.number, t.attempt, task_book::ending::timed_out, std::nullopt,
                              task_error{"the attempt took longer than " + std::to_string(limit) + " ms", "timeout"},
                              env_->now_ms()));
  }

  // After attempt_ended: a final task is announced and its waiters answered.
  void ended(const task* t) {
    if (t != nullptr && is_final(t->state)) finished(*t);
  }

  void finished(const task& t) {
    env_->ctx->publish(to_string(t.state), 2, [&](wire::packer& p) {
      p.pack("task_id");
      p.pack(t.id());
      p.pack("kind");
      p.pack(t.spec.kind);
    });
    auto it = waiters_.find(t.number);
    if (it != waiters_.end()) {
      for (waiter& w : it->second) {
        cancel_timer(w.timer);
        w.req.reply_ok([&](wire::packer& p) { write_status(p, t); });
      }
      waiters_.erase(it);
    }
    forget();
  }

  void answer_waiters(std::uint64_t number, const std::string& why) {
    auto it = waiters_.find(number);
    if (it == waiters_.end()) return;
    for (waiter& w : it->second) {
      cancel_timer(w.timer);
      w.req.reply_error(wire::error_code::not_found, why);
    }
    waiters_.erase(it);
  }

  void on_await_expired(const await_expired& e) {
    auto it = waiters_.find(e.number);
    if (it == waiters_.end()) return;
    auto& list = it->second;
    for (auto w = list.begin(); w != list.end(); ++w) {
      if (w->id != e.waiter) continue;
      w->req.reply_error(wire::error_code::timeout,
                         "task t-" + std::to_string(e.number) + " did not finish within the await's timeout_ms (it goes on)");
      list.erase(w);
      break;
    }
    if (list.empty()) waiters_.erase(it);
  }

  void forget() {
    if (const std::size_t n = book_.forget_expired(env_->now_ms()); n > 0) env_->ctx->stats()["forgotten"] += static_cast<std::int64_t>(n);
  }

  std::shared_ptr<runner_env> env_;
  task_book& book_;
  pid workers_;
  std::uint64_t last_seq_ = 0;
  std::uint64_t records_since_compaction_ = 0;
  std::deque<pending_ack> acks_;
  std::unordered_map<std::uint64_t, running_attempt> running_attempts_;  // by task number
  std::unordered_map<std::uint64_t, std::uint64_t> monitors_;           // monitor ref -> task number
  std::unordered_map<std::uint64_t, std::vector<waiter>> waiters_;      // task number -> awaits
  std::uint64_t next_waiter_ = 1;
  bool pump_posted_ = false;
  bool restarted_ = false;
  canopy::app::earliest_timer due_, sweep_;
  std::atomic<std::int64_t>& queued_;
  std::atomic<std::int64_t>& running_;
  std::atomic<std::int64_t>& journal_records_;
};

}  // namespace

child_spec server_spec(const std::shared_ptr<runner_env>& env) {
  return canopy::app::named_worker<server>(server_name, server_name, env)
      .shutdown(shutdown_policy::timeout(std::chrono::seconds(5)));
}

}  // namespace canopy::task_app
