// The public runtime and process APIs, forwarding to runtime_core and process_cell.
#include "canopy/core/runtime.hpp"

#include <spdlog/logger.h>

#include <algorithm>
#include <new>
#include <stdexcept>

#include "process_cell.hpp"
#include "runtime_core.hpp"
#include "thread_waiter.hpp"

namespace canopy {

namespace detail {

namespace {
class steady_clock_impl final : public clock {
 public:
  time_point now() const noexcept override {
    return time_point(std::chrono::duration_cast<duration>(std::chrono::steady_clock::now().time_since_epoch()));
  }
};

process_cell& running(process_cell* c) {
  if (c == nullptr) throw std::logic_error("this process API may only be used from inside the process");
  return *c;
}

// How a thread's call or watch ended, from the node that woke it.
call_outcome outcome_of(node_ptr n, const cell_ref& callee) {
  call_outcome out;
  if (!n) {
    out.failure = error(errc::timeout, "manual runtime idle with a virtual clock: advance it first");
    return out;
  }
  switch (n->kind) {
    case node_kind::reply:
      if (!(n->flags & flag_from_callee) && callee) {
        auto* d = make_node<no_payload>(node_kind::demonitor);
        d->ref = n->ref;
        if (callee->enqueue(d) == enqueue_result::closed) destroy_node(d);
      }
      out.reply = std::move(n);
      break;
    case node_kind::down:
      out.failure = error::from_exit(static_cast<typed_node<down_message>*>(n.get())->value.reason);
      break;
    default:
      out.failure = error(errc::timeout);
      break;
  }
  return out;
}
}  // namespace

void send_to(const pid& to, message_node* node) noexcept {
  if (!to || to.cell()->enqueue(node) == enqueue_result::closed) destroy_node(node);
}

timer_ref send_after_to(runtime_core& rt, duration delay, const pid& to, message_node* node) {
  if (!to) {
    destroy_node(node);
    return {};
  }
  return rt.start_timer(delay, to.cell(), node);
}

namespace {
// Allocates the process (control block + object) without scheduling it.
process_cell* create_process(runtime_core& rt, const spawn_args& a) {
  const std::size_t alignment = std::max(a.align, alignof(process_cell));
  const std::size_t offset = (sizeof(process_cell) + alignment - 1) / alignment * alignment;
  const std::size_t bytes = offset + a.size;
  // Small processes come from the node pool (per-thread lists, huge-page slabs); glibc's
  // aligned allocation path is much slower than malloc: use it only when needed.
  const bool pooled = bytes <= node_pool_max && alignment <= alignof(std::max_align_t);
  void* mem = pooled                                              ? pool_allocate(bytes)
              : alignment <= __STDCPP_DEFAULT_NEW_ALIGNMENT__ ? ::operator new(bytes)
                                                              : ::operator new(bytes, std::align_val_t(alignment));
  auto* cell = new (mem) process_cell(rt, rt.next_pid_id(), alignment, pooled ? bytes : 0);
  process* behaviour = nullptr;
  try {
    behaviour = a.construct(static_cast<char*>(mem) + offset);
  } catch (...) {
    cell->release();  // never attached: frees the memory
    throw;
  }
  cell->attach(behaviour);
  return cell;
}

// Links or monitors the new process to its parent (before the child runs on its own).
void tie_to_parent(process_cell* cell, const spawn_args& a) {
  if (a.parent == nullptr) return;
  if (a.tie == spawn_tie::link || a.tie == spawn_tie::link_and_monitor) {
    cell->add_link_unsafe(cell_ref::share(a.parent));
    a.parent->add_link_unsafe(cell_ref::share(cell));
  }
  if (a.tie == spawn_tie::monitor || a.tie == spawn_tie::link_and_monitor) {
    const std::uint64_t ref = a.monitor_ref_value != 0 ? a.monitor_ref_value : new_ref();
    cell->add_watcher_unsafe(cell_ref::share(a.parent), ref);
    a.parent->add_held_monitor(ref, cell_ref::share(cell));
    if (a.monitor_out) *a.monitor_out = monitor_ref(ref);
  }
}
}  // namespace

pid spawn_process(runtime_core& rt, const spawn_args& a) {
  if (rt.shutting_down.load(std::memory_order_acquire)) return {};
  process_cell* cell = create_process(rt, a);
  tie_to_parent(cell, a);
  rt.table_add(cell);
  pid result(cell_ref::share(cell));
  rt.sched.schedule(cell);
  return result;
}

result<pid> start_process(runtime_core& rt, const spawn_args& a, const process_name& name,
                          function_ref<void(process&)> after_init) {
  if (rt.shutting_down.load(std::memory_order_acquire)) return error(errc::shutting_down);
  process_cell* cell = create_process(rt, a);
  rt.table_add(cell);
  pid started(cell_ref::share(cell));
  if (!name.empty()) {
    auto named = name.is_local() ? rt.register_name(name.local(), cell) : name.via()->register_process(rt, cell);
    if (!named) {
      cell->discard();  // never ran: init is not called
      cell->release();
      if (named.code() == errc::already_registered) return error(errc::already_started, named.error().context());
      return named.error();
    }
  }
  if (auto failed = cell->init_inline(after_init)) {
    cell->release();  // the reference the process held on itself
    return error::with_reason(errc::start_failed, *failed, started.to_string());
  }
  tie_to_parent(cell, a);
  cell->enter_scheduling();
  return started;
}

process_cell* current_process() noexcept { return process_cell::current(); }
pid pid_of(process_cell* cell) noexcept { return cell ? cell->self_pid() : pid(); }
bool is_alive(const pid& p) noexcept { return p && static_cast<process_cell*>(p.cell().get())->is_alive(); }
runtime_core& core_of(process_cell* cell) noexcept { return cell->rt(); }
runtime_core& core_of(runtime& rt) noexcept { return rt.core(); }

std::optional<error> begin_call(process_cell* self, const pid& to, message_node* request, duration timeout) {
  return running(self).begin_call(to, request, timeout);
}

bool begin_wait_down(process_cell* self, std::uint64_t ref, duration timeout) {
  return running(self).begin_wait_down(ref, timeout);
}

void expect_result(process_cell* self, std::uint64_t ref) { running(self).expect(ref); }
void forget_result(process_cell* self, std::uint64_t ref) noexcept { self->forget_expected(ref); }
bool begin_wait_result(process_cell* self, std::uint64_t ref, duration timeout) {
  return running(self).begin_wait_expected(ref, timeout);
}
std::uint64_t fresh_ref() noexcept { return new_ref(); }
node_ptr try_take_result(process_cell* self, std::uint64_t ref) noexcept { return self->take_expected(ref); }
unsigned schedulers_of(process_cell* self) noexcept { return schedulers_of(self->rt()); }
unsigned schedulers_of(runtime_core& rt) noexcept { return std::max(1u, rt.sched.threads()); }
void add_exit_hook(process_cell* process, std::unique_ptr<exit_hook> hook) { process->add_exit_hook(std::move(hook)); }
exit_hook* find_exit_hook(process_cell* process, const void* tag) noexcept { return process->find_exit_hook(tag); }

void attach_exit_hook(const pid& target, std::unique_ptr<exit_hook> hook) {
  if (!target) {
    hook->on_exit(target, exit_reason::noproc());
    return;
  }
  message_node* n = make_node<hook_payload>(node_kind::hook, hook_payload{std::move(hook)});
  if (target.cell()->enqueue(n) == enqueue_result::closed) {
    if (auto h = std::move(static_cast<typed_node<hook_payload>*>(n)->value.hook)) h->on_exit(target, exit_reason::noproc());
    destroy_node(n);
  }
}

bool publish_resource(runtime_core& rt, const std::string& name, const std::type_info& type, std::shared_ptr<void> object) {
  std::lock_guard lk(rt.resources_mu_);
  return rt.resources_.try_emplace({name, std::type_index(type)}, std::move(object)).second;
}

std::shared_ptr<void> find_resource(runtime_core& rt, const std::string& name, const std::type_info& type) {
  std::lock_guard lk(rt.resources_mu_);
  auto it = rt.resources_.find({name, std::type_index(type)});
  return it == rt.resources_.end() ? nullptr : it->second;
}

void withdraw_resource(runtime_core& rt, const std::string& name, const std::type_info& type, const void* object) noexcept {
  std::shared_ptr<void> dropped;  // destroyed outside the lock
  std::lock_guard lk(rt.resources_mu_);
  auto it = rt.resources_.find({name, std::type_index(type)});
  if (it != rt.resources_.end() && it->second.get() == object) {
    dropped = std::move(it->second);
    rt.resources_.erase(it);
  }
}

void drop_monitor(process_cell* self, std::uint64_t ref) { running(self).demonitor(monitor_ref(ref)); }
void unlink_from(process_cell* self, const pid& other) { running(self).unlink(other); }
void send_exit(process_cell* self, const pid& to, exit_reason reason) {
  running(self).send_signal_exit(to, std::move(reason));
}

void watch_with_ref(process_cell* self, const pid& other, std::uint64_t ref, bool link) {
  running(self).monitor_with_ref(other, ref);
  if (link) self->link(other);
}
time_point now_of(process_cell* self) noexcept { return self->rt().clock->now(); }

void park_for_reply(process_cell* self, std::coroutine_handle<> waiter, std::coroutine_handle<> root) {
  self->park(waiter, root);
}

call_outcome take_call_outcome(process_cell* self) noexcept { return self->take_outcome(); }

}  // namespace detail

std::shared_ptr<clock> steady_clock_source() {
  static const std::shared_ptr<clock> instance = std::make_shared<detail::steady_clock_impl>();
  return instance;
}

void async::promise_type::unhandled_exception() noexcept {
  if (auto* c = detail::process_cell::current()) {
    c->set_pending_exception(std::current_exception());
  } else {
    std::terminate();  // an async coroutine outside any process: nowhere to crash to
  }
}

// ---- runtime -----------------------------------------------------------------------------------

runtime::runtime(runtime_config config)
    : core_(std::make_unique<detail::runtime_core>(std::move(config), this)) {}

runtime::~runtime() { shutdown(); }

void runtime::shutdown() { core_->shutdown(); }

void runtime::send_node(const pid& to, detail::message_node* node) { detail::send_to(to, node); }

void runtime::reply_node(const reply_address& to, detail::message_node* node) {
  if (!to) {
    detail::destroy_node(node);
    return;
  }
  node->ref = to.ref();
  if (to.target()->enqueue(node) == detail::enqueue_result::closed) detail::destroy_node(node);
}

timer_ref runtime::send_after_node(duration delay, const pid& to, detail::message_node* node) {
  return detail::send_after_to(*core_, delay, to, node);
}

bool runtime::cancel_timer(timer_ref ref) { return core_->timers.cancel(ref); }

detail::call_outcome runtime::call_node(const pid& to, detail::message_node* request, duration timeout) {
  detail::node_ptr req(request);
  if (detail::scheduler::on_worker_thread() || detail::process_cell::current() != nullptr)
    throw std::logic_error("runtime::call blocks its thread; inside a process co_await process::call");
  detail::call_outcome out;
  if (!to) {
    out.failure = error(errc::noproc, "call to the null pid");
    return out;
  }
  detail::cell_ref waiter = detail::cell_ref::adopt(new detail::thread_waiter());
  const std::uint64_t ref = detail::new_ref();
  req->ref = ref;
  req->from = waiter;
  if (to.cell()->enqueue(req.get()) == detail::enqueue_result::closed) {
    out.failure = error(errc::noproc, to.to_string());
    return out;
  }
  req.release();
  timer_ref timer;
  if (timeout != infinity) {
    auto* t = detail::make_node<detail::no_payload>(detail::node_kind::call_timeout);
    t->ref = ref;
    timer = core_->start_timer(timeout, waiter, t);
  }
  auto* w = static_cast<detail::thread_waiter*>(waiter.get());
  detail::node_ptr got = w->wait_for(*core_, ref, ref);
  core_->timers.cancel(timer);
  w->close();
  return detail::outcome_of(std::move(got), to.cell());
}

void runtime::exit(const pid& to, exit_reason reason) {
  if (!to) return;
  send_node(to, detail::make_node<exit_message>(detail::node_kind::exit, exit_message{pid(), std::move(reason)}));
}

exit_watch runtime::watch(const pid& p) {
  detail::cell_ref waiter = detail::cell_ref::adopt(new detail::thread_waiter());
  const std::uint64_t ref = detail::new_ref();
  auto* m = detail::make_node<detail::no_payload>(detail::node_kind::monitor);
  m->ref = ref;
  m->from = waiter;
  if (!p || p.cell()->enqueue(m) == detail::enqueue_result::closed) {
    detail::destroy_node(m);
    auto* d = detail::make_node<down_message>(detail::node_kind::down,
                                              down_message{monitor_ref(ref), p, exit_reason::noproc()});
    d->ref = ref;
    if (waiter->enqueue(d) == detail::enqueue_result::closed) detail::destroy_node(d);
  }
  return exit_watch(core_.get(), std::move(waiter), ref);
}

result<exit_reason> exit_watch::wait(duration timeout) {
  if (!waiter_) return error(errc::invalid_argument, "empty exit_watch");
  if (reason_) return *reason_;
  if (detail::scheduler::on_worker_thread() || detail::process_cell::current() != nullptr)
    throw std::logic_error("exit_watch::wait blocks its thread; inside a process use monitor()");
  auto* w = static_cast<detail::thread_waiter*>(waiter_.get());
  const std::uint64_t timeout_ref = detail::new_ref();
  timer_ref timer;
  if (timeout != infinity) {
    auto* t = detail::make_node<detail::no_payload>(detail::node_kind::call_timeout);
    t->ref = timeout_ref;
    timer = rt_->start_timer(timeout, waiter_, t);
  }
  detail::node_ptr got = w->wait_for(*rt_, ref_, timeout_ref);
  rt_->timers.cancel(timer);
  if (!got) return error(errc::timeout, "manual runtime idle with a virtual clock: advance it first");
  if (got->kind != detail::node_kind::down) return error(errc::timeout);
  reason_ = static_cast<detail::typed_node<down_message>*>(got.get())->value.reason;
  return *reason_;
}

result<void> runtime::register_name(std::string name, const pid& p) {
  if (!p) return error(errc::noproc, "the null pid");
  return core_->register_name(std::move(name), static_cast<detail::process_cell*>(p.cell().get()));
}

bool runtime::unregister_name(std::string_view name) { return core_->unregister_name(name); }

pid runtime::whereis(std::string_view name) const { return core_->whereis(name); }

pid runtime::resolve(const process_name& name) const {
  if (name.is_local()) return core_->whereis(name.local());
  if (name.via()) return name.via()->whereis(*core_);
  return {};
}

bool runtime::is_alive(const pid& p) const noexcept {
  return p && static_cast<detail::process_cell*>(p.cell().get())->is_alive();
}

std::size_t runtime::process_count() const noexcept { return core_->live(); }

std::vector<pid> runtime::processes() const {
  std::vector<pid> all = core_->snapshot();
  std::sort(all.begin(), all.end());  // in spawn order, for people and tests
  return all;
}

unsigned runtime::scheduler_threads() const noexcept { return core_->sched.threads(); }

bool runtime::set_idle_poller(idle_poller* poller) { return core_->sched.set_poller(poller); }

std::size_t runtime::run_until_idle() {
  if (core_->config.mode != scheduling::manual)
    throw std::logic_error("run_until_idle() is for a runtime in scheduling::manual mode");
  return core_->sched.run_until_idle();
}

clock& runtime::clock() const noexcept { return *core_->clock; }

spdlog::logger& runtime::logger() const noexcept { return *core_->logger; }

// ---- process -----------------------------------------------------------------------------------

pid process::self() const { return cell_->self_pid(); }

runtime& process::system() const { return *cell_->rt().owner; }

detail::runtime_core& process::core() const { return cell_->rt(); }

void process::send_node(const pid& to, detail::message_node* node) { detail::send_to(to, node); }

timer_ref process::send_after_node(duration delay, const pid& to, detail::message_node* node) {
  return detail::send_after_to(cell_->rt(), delay, to, node);
}

bool process::cancel_timer(timer_ref ref) { return cell_->rt().timers.cancel(ref); }

void process::reply_node(const reply_address& to, detail::message_node* node) { cell_->reply(to, node); }

void process::link(const pid& other) { cell_->link(other); }
void process::unlink(const pid& other) { cell_->unlink(other); }
monitor_ref process::monitor(const pid& other) { return cell_->monitor(other); }
void process::demonitor(monitor_ref ref) { cell_->demonitor(ref); }
void process::process_flag(trap_exit mode) { cell_->set_trap_exit(mode == trap_exit::on); }
bool process::traps_exits() const noexcept { return cell_->traps_exits(); }
void process::exit(exit_reason reason) { cell_->request_exit(std::move(reason)); }
void process::exit(const pid& to, exit_reason reason) { cell_->send_signal_exit(to, std::move(reason)); }
monitor_ref process::monitor_and_exit(const pid& child, exit_reason reason) {
  return cell_->stop_and_monitor(child, std::move(reason));
}

pid process::resolve(const process_name& name) const { return system().resolve(name); }

result<void> process::register_name(std::string name) { return cell_->rt().register_name(std::move(name), cell_); }

}  // namespace canopy
