#include "canopy/task_app/task_book.hpp"

#include <algorithm>
#include <charconv>

#include "canopy/wire/codec.hpp"

namespace canopy::task_app {

namespace {

constexpr std::pair<task_state, const char*> state_names[] = {
    {task_state::queued, "queued"},       {task_state::running, "running"},
    {task_state::succeeded, "succeeded"}, {task_state::failed, "failed"},
    {task_state::cancelled, "cancelled"}, {task_state::timed_out, "timed_out"},
};

// ---- journal records: one msgpack map each, "r" naming the kind -----------------------------
//   s  submitted   {n, kind, args, timeout_ms?, max_attempts, backoff_ms, delay_ms, key?, submitted_ms, run_at_ms}
//   a  started     {n, attempt, at}
//   q  to retry    {n, run_at_ms, error}
//   f  finished    {n, state, at, result?, error?}
//   t  a whole task (snapshots): s's fields + state, attempts, started_ms?, finished_ms?, result?, error?
//   c  counters (snapshots): {succeeded, failed, cancelled, timed_out, next}

class record_writer {
 public:
  explicit record_writer(char kind, std::uint32_t pairs) : p_(buf_) {
    p_.pack_map(pairs + 1);
    p_.pack("r");
    const char k[2] = {kind, 0};
    p_.pack(k);
  }
  record_writer& u(const char* name, std::uint64_t v) {
    p_.pack(name);
    p_.pack(v);
    return *this;
  }
  record_writer& s(const char* name, const std::string& v) {
    p_.pack(name);
    p_.pack(v);
    return *this;
  }
  record_writer& value(const char* name, const wire::value& v) {
    p_.pack(name);
    v.write_to(p_);
    return *this;
  }
  record_writer& error(const char* name, const task_error& e) {
    p_.pack(name);
    p_.pack_map(e.kind.empty() ? 1 : 2);
    p_.pack("message");
    p_.pack(e.message);
    if (!e.kind.empty()) {
      p_.pack("kind");
      p_.pack(e.kind);
    }
    return *this;
  }
  std::string done() { return std::string(buf_.data(), buf_.size()); }

 private:
  msgpack::sbuffer buf_{96};
  wire::packer p_;
};

// The pairs write_spec writes: n, kind, args, max_attempts, backoff_ms, delay_ms,
// submitted_ms, and timeout_ms / key when set.
std::uint32_t spec_pairs(const task_spec& s) { return 7 + (s.timeout_ms ? 1 : 0) + (s.key.empty() ? 0 : 1); }

void write_spec(record_writer& w, const task& t) {
  w.u("n", t.number).s("kind", t.spec.kind).value("args", t.spec.args);
  if (t.spec.timeout_ms) w.u("timeout_ms", *t.spec.timeout_ms);
  w.u("max_attempts", t.spec.max_attempts).u("backoff_ms", t.spec.backoff_ms).u("delay_ms", t.spec.delay_ms);
  if (!t.spec.key.empty()) w.s("key", t.spec.key);
  w.u("submitted_ms", t.submitted_ms);
}

// Reading a record: each field by name and type, or a reason.
class record_reader {
 public:
  explicit record_reader(const msgpack::object& o) : o_(o) {}
  std::optional<std::uint64_t> u(const char* name) const {
    const msgpack::object* f = wire::find(o_, name);
    if (f == nullptr || f->type != msgpack::type::POSITIVE_INTEGER) return std::nullopt;
    return f->via.u64;
  }
  std::optional<std::string> s(const char* name) const {
    const msgpack::object* f = wire::find(o_, name);
    if (f == nullptr || f->type != msgpack::type::STR) return std::nullopt;
    return std::string(f->via.str.ptr, f->via.str.size);
  }
  std::optional<wire::value> value(const char* name) const {
    const msgpack::object* f = wire::find(o_, name);
    if (f == nullptr) return std::nullopt;
    return wire::value::from_object(*f);
  }
  std::optional<task_error> error(const char* name) const {
    const msgpack::object* f = wire::find(o_, name);
    if (f == nullptr || f->type != msgpack::type::MAP) return std::nullopt;
    record_reader e(*f);
    auto message = e.s("message");
    if (!message) return std::nullopt;
    return task_error{*message, e.s("kind").value_or("")};
  }

 private:
  const msgpack::object& o_;
};

canopy::result<void> bad(std::string why) { return canopy::error(errc::invalid_argument, "journal record: " + why); }

}  // namespace

const char* to_string(task_state s) noexcept {
  for (const auto& [state, name] : state_names)
    if (state == s) return name;
  return "unknown";
}

std::optional<task_state> task_state_from(std::string_view name) noexcept {
  for (const auto& [state, text] : state_names)
    if (name == text) return state;
  return std::nullopt;
}

std::optional<std::uint64_t> task_number(std::string_view id) noexcept {
  if (id.size() < 3 || id.substr(0, 2) != "t-") return std::nullopt;
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(id.data() + 2, id.data() + id.size(), n);
  if (ec != std::errc() || end != id.data() + id.size() || n == 0) return std::nullopt;
  return n;
}

task_book::task_book(limits l, std::uint64_t seed, sink journal)
    : limits_(l), rng_(seed), sink_(std::move(journal)) {}

void task_book::journal(std::string record) const {
  if (sink_) sink_(std::move(record));
}

task& task_book::add(task t) {
  const std::uint64_t n = t.number;
  next_number_ = std::max(next_number_, n + 1);
  auto [it, inserted] = tasks_.insert_or_assign(n, std::make_unique<task>(std::move(t)));
  task& added = *it->second;
  if (!added.spec.key.empty()) keys_[added.spec.key] = n;
  return added;
}

void task_book::enqueue(task& t) { queue_.emplace(queue_key{t.run_at_ms, t.number}, &t); }
void task_book::dequeue(const task& t) { queue_.erase(queue_key{t.run_at_ms, t.number}); }

task_book::submitted task_book::submit(task_spec spec, std::uint64_t now_ms) {
  if (!spec.key.empty()) {
    if (auto it = keys_.find(spec.key); it != keys_.end()) {
      if (const task* t = find(it->second)) return {t, true, refusal::none};
    }
  }
  if (queue_.size() >= limits_.queue_limit) return {nullptr, false, refusal::overloaded};
  task t;
  t.number = next_number_++;
  t.spec = std::move(spec);
  t.spec.max_attempts = std::max(1u, t.spec.max_attempts);
  t.submitted_ms = now_ms;
  t.run_at_ms = now_ms + t.spec.delay_ms;
  task& added = add(std::move(t));
  enqueue(added);
  record_writer w('s', spec_pairs(added.spec) + 1);
  write_spec(w, added);
  w.u("run_at_ms", added.run_at_ms);
  journal(w.done());
  return {&added, false, refusal::none};
}

void task_book::discard(std::uint64_t number) {
  auto it = tasks_.find(number);
  if (it == tasks_.end()) return;
  task& t = *it->second;
  if (t.state == task_state::queued) dequeue(t);
  if (t.state == task_state::running) --running_;
  if (!t.spec.key.empty()) keys_.erase(t.spec.key);
  tasks_.erase(it);
}

std::vector<const task*> task_book::start_due(std::uint64_t now_ms) {
  std::vector<const task*> started;
  while (running_ < limits_.max_concurrency && !queue_.empty() && queue_.begin()->first.first <= now_ms) {
    task& t = *queue_.begin()->second;
    queue_.erase(queue_.begin());
    t.state = task_state::running;
    ++t.attempts;
    t.started_ms = now_ms;
    ++running_;
    journal(record_writer('a', 3).u("n", t.number).u("attempt", t.attempts).u("at", now_ms).done());
    started.push_back(&t);
  }
  return started;
}

std::optional<std::uint64_t> task_book::next_due_ms() const {
  if (queue_.empty()) return std::nullopt;
  return queue_.begin()->first.first;
}

std::uint64_t task_book::backoff_for(const task& t) {
  if (t.spec.backoff_ms == 0) return 0;
  const unsigned doublings = std::min(t.attempts - 1, 40u);
  const std::uint64_t cap = limits_.max_backoff_ms;
  std::uint64_t base = t.spec.backoff_ms;
  for (unsigned i = 0; i < doublings && base < cap; ++i) base *= 2;
  base = std::min(base, cap);
  // Equal jitter: retries of many tasks that failed together spread out, none comes early.
  const std::uint64_t half = base / 2;
  std::uniform_int_distribution<std::uint64_t> share(0, base - half);
  return half + share(rng_);
}

const task* task_book::attempt_ended(std::uint64_t number, unsigned attempt, ending how,
                                     std::optional<wire::value> result, std::optional<task_error> error,
                                     std::uint64_t now_ms) {
  auto it = tasks_.find(number);
  if (it == tasks_.end()) return nullptr;
  task& t = *it->second;
  if (t.state != task_state::running || t.attempts != attempt) return nullptr;  // stale
  --running_;
  if (how == ending::succeeded) {
    t.result = std::move(result);
    t.error.reset();
    finish(t, task_state::succeeded, now_ms);
    return &t;
  }
  t.error = std::move(error);
  if (t.attempts < t.spec.max_attempts) {
    t.state = task_state::queued;
    t.run_at_ms = now_ms + backoff_for(t);
    enqueue(t);
    record_writer w('q', t.error ? 3 : 2);
    w.u("n", t.number).u("run_at_ms", t.run_at_ms);
    if (t.error) w.error("error", *t.error);
    journal(w.done());
    return &t;
  }
  finish(t, how == ending::timed_out ? task_state::timed_out : task_state::failed, now_ms);
  return &t;
}

void task_book::finish(task& t, task_state final, std::uint64_t now_ms) {
  t.state = final;
  t.finished_ms = now_ms;
  retain(t, now_ms);
  count_final(final);
  record_writer w('f', 3 + (t.result ? 1 : 0) + (t.error ? 1 : 0));
  w.u("n", t.number).s("state", to_string(final)).u("at", now_ms);
  if (t.result) w.value("result", *t.result);
  if (t.error) w.error("error", *t.error);
  journal(w.done());
}

void task_book::count_final(task_state s) {
  switch (s) {
    case task_state::succeeded:
      ++totals_.succeeded;
      break;
    case task_state::failed:
      ++totals_.failed;
      break;
    case task_state::cancelled:
      ++totals_.cancelled;
      break;
    case task_state::timed_out:
      ++totals_.timed_out;
      break;
    default:
      break;
  }
}

task_book::cancelled task_book::cancel(std::uint64_t number, std::uint64_t now_ms) {
  auto it = tasks_.find(number);
  if (it == tasks_.end() || is_final(it->second->state)) return {};
  task& t = *it->second;
  const bool running = t.state == task_state::running;
  if (running) {
    --running_;
  } else {
    dequeue(t);
  }
  t.error = task_error{"cancelled", "cancelled"};
  finish(t, task_state::cancelled, now_ms);
  return {true, running};
}

const task* task_book::find(std::uint64_t number) const {
  auto it = tasks_.find(number);
  return it == tasks_.end() ? nullptr : it->second.get();
}

std::vector<const task*> task_book::list(std::optional<task_state> state, std::size_t limit) const {
  std::vector<const task*> out;
  for (auto it = tasks_.rbegin(); it != tasks_.rend() && out.size() < limit; ++it)
    if (!state || it->second->state == *state) out.push_back(it->second.get());
  return out;
}

task_counts task_book::counts() const {
  task_counts c = totals_;
  c.queued = queue_.size();
  c.running = running_;
  return c;
}

void task_book::retain(const task& t, std::uint64_t finished_ms) {
  const std::size_t bytes = memory_of(t);
  finished_.emplace(finished_ms, finished_task{t.number, bytes});
  retained_bytes_ += bytes;
}

namespace {
std::size_t heap_of(const std::string& s) noexcept { return s.capacity() > 15 ? s.capacity() + 1 : 0; }
std::size_t heap_of(const wire::value& v) noexcept { return v.memory_bytes() - sizeof(wire::value); }
}  // namespace

std::size_t task_book::memory_of(const task& t) noexcept {
  // A tree node: three links and a colour ahead of the element; malloc's 16-byte header
  // and rounding on every allocation.
  constexpr std::size_t tree_node = 32 + 16;
  std::size_t bytes = sizeof(task) + 16;
  bytes += tree_node + sizeof(std::uint64_t) + sizeof(std::unique_ptr<task>);  // tasks_
  bytes += tree_node + sizeof(std::uint64_t) + sizeof(finished_task);           // finished_
  bytes += heap_of(t.spec.kind) + heap_of(t.spec.args);
  if (!t.spec.key.empty()) {  // keys_ holds a copy of the key, in a hash node and its bucket
    bytes += 2 * heap_of(t.spec.key) + sizeof(void*) + sizeof(std::string) + sizeof(std::uint64_t) + 16 + sizeof(void*);
  }
  if (t.result) bytes += heap_of(*t.result);
  if (t.error) bytes += heap_of(t.error->message) + heap_of(t.error->kind);
  return bytes;
}

std::size_t task_book::forget_expired(std::uint64_t now_ms) {
  std::size_t forgotten = 0;
  while (!finished_.empty()) {
    auto oldest = finished_.begin();
    const bool expired = oldest->first + limits_.retention_ms <= now_ms;
    if (!expired && finished_.size() <= limits_.max_retained && retained_bytes_ <= limits_.max_retained_bytes) break;
    auto it = tasks_.find(oldest->second.number);
    if (it != tasks_.end()) {
      if (!it->second->spec.key.empty()) keys_.erase(it->second->spec.key);
      tasks_.erase(it);
    }
    retained_bytes_ -= oldest->second.bytes;
    finished_.erase(oldest);
    ++forgotten;
  }
  return forgotten;
}

std::optional<std::uint64_t> task_book::next_forget_ms() const {
  if (finished_.empty()) return std::nullopt;
  return finished_.begin()->first + limits_.retention_ms;
}

canopy::result<void> task_book::apply(std::string_view bytes) {
  // Bounded before msgpack allocates: a record claiming more than it holds is refused.
  wire::decode_limits bounds;
  bounds.max_message_bytes = bounds.max_str = bounds.max_bin = std::size_t{64} << 20;
  bounds.max_depth = 64 + 3;  // a request's args, inside the record
  if (auto refused = wire::check_value(bytes, bounds)) return bad(refused->message);
  msgpack::object_handle h;
  try {
    h = msgpack::unpack(bytes.data(), bytes.size());
  } catch (const std::exception& e) {
    return bad(std::string("not msgpack: ") + e.what());
  }
  const msgpack::object& o = h.get();
  if (o.type != msgpack::type::MAP) return bad("not a map");
  const record_reader r(o);
  const auto kind = r.s("r");
  if (!kind || kind->size() != 1) return bad("no kind");
  if (*kind == "c") {
    totals_.succeeded = r.u("succeeded").value_or(0);
    totals_.failed = r.u("failed").value_or(0);
    totals_.cancelled = r.u("cancelled").value_or(0);
    totals_.timed_out = r.u("timed_out").value_or(0);
    next_number_ = std::max(next_number_, r.u("next").value_or(1));
    return {};
  }
  const auto n = r.u("n");
  if (!n || *n == 0) return bad("no task number");
  if (*kind == "s" || *kind == "t") {
    task t;
    t.number = *n;
    auto k = r.s("kind");
    auto args = r.value("args");
    auto attempts = r.u("max_attempts");
    auto submitted_at = r.u("submitted_ms");
    auto run_at = r.u("run_at_ms");
    if (!k || !args || !attempts || !submitted_at || !run_at) return bad("task " + std::to_string(*n) + " lacks a field");
    t.spec.kind = *k;
    t.spec.args = std::move(*args);
    t.spec.timeout_ms = r.u("timeout_ms");
    t.spec.max_attempts = static_cast<unsigned>(*attempts);
    t.spec.backoff_ms = r.u("backoff_ms").value_or(0);
    t.spec.delay_ms = r.u("delay_ms").value_or(0);
    t.spec.key = r.s("key").value_or("");
    t.submitted_ms = *submitted_at;
    t.run_at_ms = *run_at;
    if (*kind == "t") {
      const auto state = task_state_from(r.s("state").value_or(""));
      if (!state) return bad("task " + std::to_string(*n) + " has no state");
      t.state = *state;
      t.attempts = static_cast<unsigned>(r.u("attempts").value_or(0));
      t.started_ms = r.u("started_ms");
      t.finished_ms = r.u("finished_ms");
      t.result = r.value("result");
      t.error = r.error("error");
    }
    if (tasks_.count(*n) != 0) return bad("task " + std::to_string(*n) + " twice");
    task& added = add(std::move(t));
    if (added.state == task_state::queued) enqueue(added);
    if (added.state == task_state::running) ++running_;
    if (is_final(added.state)) retain(added, added.finished_ms.value_or(added.submitted_ms));
    return {};
  }
  if (*kind != "a" && *kind != "q" && *kind != "f") return bad("unknown kind " + *kind);
  auto it = tasks_.find(*n);
  if (it == tasks_.end()) return {};  // a task forgotten (compacted away) before this record
  task& t = *it->second;
  if (*kind == "a") {
    if (t.state == task_state::queued) dequeue(t);
    if (t.state != task_state::running) ++running_;
    t.state = task_state::running;
    t.attempts = static_cast<unsigned>(r.u("attempt").value_or(t.attempts + 1));
    t.started_ms = r.u("at");
    return {};
  }
  if (*kind == "q") {
    if (t.state == task_state::running) --running_;
    if (t.state == task_state::queued) dequeue(t);
    t.state = task_state::queued;
    t.run_at_ms = r.u("run_at_ms").value_or(t.run_at_ms);
    t.error = r.error("error");
    enqueue(t);
    return {};
  }
  if (*kind == "f") {
    const auto state = task_state_from(r.s("state").value_or(""));
    if (!state || !is_final(*state)) return bad("task " + std::to_string(*n) + " finished without a final state");
    if (t.state == task_state::running) --running_;
    if (t.state == task_state::queued) dequeue(t);
    if (is_final(t.state)) return {};  // finished twice (a stale attempt's record): the first holds
    t.state = *state;
    t.finished_ms = r.u("at");
    t.result = r.value("result");
    t.error = r.error("error");
    retain(t, t.finished_ms.value_or(0));
    count_final(*state);
    return {};
  }
  return bad("unknown kind " + *kind);
}

std::size_t task_book::requeue_interrupted(std::uint64_t now_ms) {
  std::size_t n = 0;
  for (auto& [number, t] : tasks_) {
    if (t->state != task_state::running) continue;
    t->state = task_state::queued;
    t->run_at_ms = now_ms;
    enqueue(*t);
    --running_;
    ++n;
  }
  return n;
}

void task_book::snapshot(const std::function<void(std::string record)>& out) const {
  out(record_writer('c', 5)
          .u("succeeded", totals_.succeeded)
          .u("failed", totals_.failed)
          .u("cancelled", totals_.cancelled)
          .u("timed_out", totals_.timed_out)
          .u("next", next_number_)
          .done());
  for (const auto& [number, tp] : tasks_) {
    const task& t = *tp;
    const std::uint32_t pairs = spec_pairs(t.spec) + 1 + 2 + (t.started_ms ? 1 : 0) + (t.finished_ms ? 1 : 0) +
                                (t.result ? 1 : 0) + (t.error ? 1 : 0);
    record_writer w('t', pairs);
    write_spec(w, t);
    w.u("run_at_ms", t.run_at_ms).s("state", to_string(t.state)).u("attempts", t.attempts);
    if (t.started_ms) w.u("started_ms", *t.started_ms);
    if (t.finished_ms) w.u("finished_ms", *t.finished_ms);
    if (t.result) w.value("result", *t.result);
    if (t.error) w.error("error", *t.error);
    out(w.done());
  }
}

}  // namespace canopy::task_app
