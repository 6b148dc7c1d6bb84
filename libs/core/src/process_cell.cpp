#include "process_cell.hpp"

#include <algorithm>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <utility>

#include "runtime_core.hpp"

namespace canopy::detail {

namespace {

thread_local process_cell* tls_current = nullptr;

// Tag values of the mailbox head (never valid node addresses).
message_node* blocked_tag() noexcept { return reinterpret_cast<message_node*>(std::uintptr_t{1}); }
message_node* closed_tag() noexcept { return reinterpret_cast<message_node*>(std::uintptr_t{2}); }

template <class T>
T& payload(message_node* n) noexcept {
  return static_cast<typed_node<T>*>(n)->value;
}

message_node* make_exit_node(pid from, exit_reason reason, bool via_link) {
  auto* n = make_node<exit_message>(node_kind::exit, exit_message{std::move(from), std::move(reason)});
  if (via_link) n->flags = flag_via_link;
  return n;
}

message_node* make_down_node(std::uint64_t ref, pid who, exit_reason reason, bool for_call) {
  auto* n = make_node<down_message>(node_kind::down,
                                    down_message{monitor_ref(ref), std::move(who), std::move(reason)});
  n->ref = ref;
  if (for_call) n->flags = flag_call_monitor;
  return n;
}

message_node* make_signal(node_kind kind, cell_ref from, std::uint64_t ref = 0) {
  auto* n = make_node<no_payload>(kind);
  n->from = std::move(from);
  n->ref = ref;
  return n;
}

// Scope guard so nested runs (manual mode inside a process) restore the current process.
class current_scope {
 public:
  explicit current_scope(process_cell* c) noexcept : prev_(std::exchange(tls_current, c)) {}
  ~current_scope() { tls_current = prev_; }
  current_scope(const current_scope&) = delete;
  current_scope& operator=(const current_scope&) = delete;

 private:
  process_cell* prev_;
};

}  // namespace

process_cell::process_cell(runtime_core& rt, std::uint64_t id, std::size_t alignment, std::size_t pooled_bytes) noexcept
    : cell_base(id),
      rt_(rt),
      alignment_(static_cast<std::uint16_t>(alignment)),
      pooled_bytes_(static_cast<std::uint16_t>(pooled_bytes)) {}

process_cell* process_cell::current() noexcept { return tls_current; }

void process_cell::destroy() noexcept {
  const std::size_t alignment = alignment_;
  const std::size_t pooled = pooled_bytes_;
  this->~process_cell();
  if (pooled != 0) {
    pool_deallocate(static_cast<void*>(this), pooled);
  } else if (alignment <= __STDCPP_DEFAULT_NEW_ALIGNMENT__) {
    ::operator delete(static_cast<void*>(this));
  } else {
    ::operator delete(static_cast<void*>(this), std::align_val_t(alignment));
  }
}

void process_cell::attach(process* behaviour) noexcept {
  behaviour_ = behaviour;
  behaviour->cell_ = this;
}

process_ext& process_cell::ext() {
  if (!ext_) ext_ = new process_ext();
  return *ext_;
}

bool process_cell::is_alive() const noexcept {
  return head_.load(std::memory_order_acquire) != closed_tag();
}

std::optional<exit_reason> process_cell::init_inline(function_ref<void(process&)> after_init) noexcept {
  current_scope scope(this);
  flags_ |= flag_started;
  guarded([this] { behaviour_->on_start(); });
  guarded([&] { after_init(*behaviour_); });
  if (!(flags_ & flag_exiting)) return std::nullopt;
  exit_reason reason = ext_->pending_exit;
  terminate(reason);
  return reason;
}

void process_cell::discard() noexcept {
  current_scope scope(this);
  flags_ |= flag_started;
  terminate(exit_reason::normal());
}

void process_cell::enter_scheduling() noexcept {
  message_node* expected = nullptr;
  if (!head_.compare_exchange_strong(expected, blocked_tag(), std::memory_order_acq_rel,
                                     std::memory_order_acquire))
    rt_.sched.schedule(this);  // init mailed itself (or someone used its name)
}

// ---- mailbox ---------------------------------------------------------------------------

enqueue_result process_cell::enqueue(message_node* node) noexcept {
  message_node* h = head_.load(std::memory_order_acquire);
  for (;;) {
    if (h == closed_tag()) return enqueue_result::closed;
    node->next = (h == blocked_tag()) ? nullptr : h;
    if (head_.compare_exchange_weak(h, node, std::memory_order_acq_rel, std::memory_order_acquire))
      break;
  }
  // Whoever replaces `blocked` owns the duty to schedule; the process cannot exit before it
  // runs, so `this` stays valid here.
  if (h == blocked_tag()) rt_.sched.schedule(this);
  return enqueue_result::queued;
}

message_node* process_cell::next_message() noexcept {
  if (stash_due()) {
    park_state& p = *ext_->park;
    message_node* n = p.stash_head;
    p.stash_head = n->next;
    if (!p.stash_head) p.stash_tail = nullptr;
    n->next = nullptr;
    return n;
  }
  if (!fifo_head_) {
    message_node* h = head_.exchange(nullptr, std::memory_order_acquire);
    if (!h) return nullptr;
    message_node* reversed = nullptr;  // the stack is newest-first; reverse to arrival order
    while (h) {
      message_node* next = h->next;
      h->next = reversed;
      reversed = h;
      h = next;
    }
    fifo_head_ = reversed;
  }
  message_node* n = fifo_head_;
  fifo_head_ = n->next;
  n->next = nullptr;
  return n;
}

void process_cell::stash(message_node* node) noexcept {
  park_state& x = *ext_->park;  // parked, so it exists
  node->next = nullptr;
  if (x.stash_tail) {
    x.stash_tail->next = node;
  } else {
    x.stash_head = node;
  }
  x.stash_tail = node;
}

void process_cell::post(const cell_ref& to, message_node* node) noexcept {
  if (!to || to->enqueue(node) == enqueue_result::closed) destroy_node(node);
}

void process_cell::post_self(message_node* node) noexcept {
  // We are running, so the mailbox is neither blocked nor closed: this only pushes.
  if (enqueue(node) == enqueue_result::closed) destroy_node(node);
}

// ---- the message loop ---------------------------------------------------------------------

run_result process_cell::run(unsigned budget) noexcept {
  current_scope scope(this);
  if (!(flags_ & flag_started)) {
    flags_ |= flag_started;
    guarded([this] { behaviour_->on_start(); });
  }
  for (unsigned i = 0; i < budget && !(flags_ & flag_exiting); ++i) {
    message_node* n = next_message();
    if (!n) break;
    dispatch(n);
  }
  if (flags_ & flag_exiting) {
    terminate(ext_->pending_exit);
    return run_result::exited;
  }
  if (fifo_head_ || stash_due()) return run_result::again;
  message_node* expected = nullptr;
  if (head_.compare_exchange_strong(expected, blocked_tag(), std::memory_order_acq_rel,
                                    std::memory_order_acquire))
    return run_result::blocked;
  return run_result::again;  // a message arrived meanwhile
}

void process_cell::dispatch(message_node* n) noexcept {
  switch (n->kind) {
    case node_kind::user:
    case node_kind::cast:
    case node_kind::call:
      accept(n);
      return;
    case node_kind::reply:
      if (parked() && n->ref == ext_->park->await_ref) {
        complete_call({node_ptr(n), std::nullopt});
      } else if (keep_expected(n)) {
        // a task's result, kept until awaited
      } else {
        destroy_node(n);  // late: the caller gave up (SEMANTICS 31)
      }
      return;
    case node_kind::call_timeout: {
      const bool mine = parked() && n->ref == ext_->park->await_ref;
      destroy_node(n);
      if (mine) complete_call({nullptr, error(errc::timeout)});
      return;
    }
    case node_kind::down: {
      if (n->flags & flag_call_monitor) {
        const bool mine = parked() && n->ref == ext_->park->await_ref;
        exit_reason reason = payload<down_message>(n).reason;
        destroy_node(n);
        if (mine) complete_call({nullptr, error::from_exit(std::move(reason))});
        return;
      }
      if (parked() && n->ref == ext_->park->await_ref) {  // await_down's monitor fired
        forget_held_monitor(n->ref);
        complete_call({node_ptr(n), std::nullopt});
        return;
      }
      if (ext_ && ext_->expected.contains(n->ref)) {  // a task's exit, kept until awaited
        forget_held_monitor(n->ref);
        if (!keep_expected(n)) destroy_node(n);  // its result came first: that is what counts
        return;
      }
      if (!forget_held_monitor(n->ref)) {
        destroy_node(n);  // demonitored meanwhile
        return;
      }
      n->kind = node_kind::user;
      accept(n);
      return;
    }
    case node_kind::exit:
      handle_exit_signal(n);
      return;
    case node_kind::link:
      ext().links.insert(n->from.get(), n->from);
      destroy_node(n);
      return;
    case node_kind::unlink:
      remove_link(n->from.get());
      destroy_node(n);
      return;
    case node_kind::monitor:
      ext().watchers.insert(n->ref, {n->from, false});
      destroy_node(n);
      return;
    case node_kind::demonitor:
      remove_watcher(n->ref);
      destroy_node(n);
      return;
    case node_kind::hook:
      add_exit_hook(std::move(payload<hook_payload>(n).hook));
      destroy_node(n);
      return;
  }
  destroy_node(n);
}

// A message for user code: handled now, or set aside while parked in a call.
void process_cell::accept(message_node* n) noexcept {
  if (parked()) {
    stash(n);
  } else {
    deliver(n);
  }
}

void process_cell::deliver(message_node* n) noexcept {
  const bool is_call = n->kind == node_kind::call;
  if (is_call) unreplied_call_ = n->ref;
  last_message_ = &n->tag->info;
  message m(n);
  guarded([&] { behaviour_->receive(m); });
  if (is_call && unreplied_call_ == n->ref) {
    // The reply is deferred (or we crashed): the caller must learn if we exit first.
    ext().watchers.insert(n->ref, {n->from, true});
  }
  unreplied_call_ = 0;
  destroy_node(n);
}

template <class F>
void process_cell::guarded(F&& fn) noexcept {
  try {
    fn();
    if (pending_exception_) std::rethrow_exception(std::exchange(pending_exception_, nullptr));
  } catch (const process_exit& e) {
    request_exit(e.reason());
  } catch (const std::exception& e) {
    crash(exit_reason::error(type_name(typeid(e)), e.what()));
  } catch (...) {
    crash(exit_reason::error("unknown", "an exception not derived from std::exception"));
  }
}

void process_cell::crash(exit_reason reason) noexcept {
  if (flags_ & flag_exiting) return;
  rt_.report_crash(this, reason, last_message_);
  exit_now(std::move(reason));
}

void process_cell::exit_now(exit_reason reason) noexcept {
  if (flags_ & flag_exiting) return;
  flags_ |= flag_exiting;
  ext().pending_exit = std::move(reason);
}

void process_cell::request_exit(exit_reason reason) {
  if (flags_ & flag_exiting) return;
  if (!reason.is_clean() && !reason.is_kill()) rt_.report_crash(this, reason, last_message_);
  exit_now(std::move(reason));
}

void process_cell::handle_exit_signal(message_node* n) noexcept {
  auto& sig = payload<exit_message>(n);
  if (n->flags & flag_stop) {  // unlink, monitor, then the exit signal itself
    remove_link(n->from.get());
    ext().watchers.insert(n->ref, {std::move(n->from), false});
    n->flags &= static_cast<std::uint8_t>(~flag_stop);
    n->ref = 0;
  }
  const bool via_link = (n->flags & flag_via_link) != 0;
  if (via_link) {
    if (!has_link(sig.from.cell().get())) {  // unlinked meanwhile: stale
      destroy_node(n);
      return;
    }
    remove_link(sig.from.cell().get());
  }
  if (sig.reason.is_kill() && !via_link) {  // SEMANTICS 41: untrappable
    destroy_node(n);
    exit_now(exit_reason::killed());
    return;
  }
  if (traps_exits()) {  // SEMANTICS 40: delivered as a message
    n->kind = node_kind::user;
    accept(n);
    return;
  }
  exit_reason reason = std::move(sig.reason);
  const bool from_self = sig.from.cell().get() == this;
  destroy_node(n);
  if (reason.is_normal() && !from_self) return;  // SEMANTICS 39
  exit_now(std::move(reason));                   // SEMANTICS 40
}

// ---- exiting -------------------------------------------------------------------------------

void process_cell::terminate(const exit_reason& given) noexcept {
  const exit_reason reason = given.is_kill() ? exit_reason::killed() : given;
  message_node* queued = head_.exchange(closed_tag(), std::memory_order_acq_rel);
  pid self = self_pid();

  if (park_state* p = park_if_any(); p != nullptr && p->await_ref != 0) {
    rt_.timers.cancel(p->await_timer);
    p->await_ref = 0;
    p->await_handle = {};
    if (auto root = std::exchange(p->await_root, {})) root.destroy();  // the whole chain
    p->await_outcome = {};
  }
  // The user's object goes first, so whoever sees our down message sees its resources gone.
  if (behaviour_) {
    behaviour_->~process();
    behaviour_ = nullptr;
  }
  pending_exception_ = nullptr;
  if (named_.load(std::memory_order_acquire)) rt_.unregister_all(this);
  if (ext_) {
    for (std::unique_ptr<exit_hook> h = std::move(ext_->hooks); h; h = std::move(h->next_)) h->on_exit(self, reason);
  }
  // Gone from names and the process table before anyone is told, so an observer of our
  // exit never finds us listed.
  rt_.table_remove(this);

  auto bounce_list = [&](message_node* n) {
    while (n) {
      message_node* next = n->next;
      bounce(n, reason);
      n = next;
    }
  };
  if (park_state* p = park_if_any()) bounce_list(std::exchange(p->stash_head, nullptr));
  bounce_list(std::exchange(fifo_head_, nullptr));
  if (queued != blocked_tag()) bounce_list(queued);

  if (ext_) {
    ext_->links.for_each([&](const cell_base*, cell_ref& l) { post(l, make_exit_node(self, reason, true)); });
    ext_->watchers.for_each([&](std::uint64_t ref, process_ext::watcher& w) {
      post(w.target, make_down_node(ref, self, reason, w.for_call));
    });
    delete std::exchange(ext_, nullptr);
  }
}

// What a message still queued at exit turns into for its sender.
void process_cell::bounce(message_node* n, const exit_reason& reason) noexcept {
  switch (n->kind) {
    case node_kind::call:  // the caller gets our exit reason (SEMANTICS 30)
      post(n->from, make_down_node(n->ref, self_pid(), reason, true));
      break;
    case node_kind::link:
      post(n->from, make_exit_node(self_pid(), reason, true));
      break;
    case node_kind::monitor:
      post(n->from, make_down_node(n->ref, self_pid(), reason, false));
      break;
    case node_kind::exit:
      if (n->flags & flag_stop) post(n->from, make_down_node(n->ref, self_pid(), reason, false));
      break;
    case node_kind::hook:  // never adopted: it runs now, for the process that is going
      if (auto h = std::move(payload<hook_payload>(n).hook)) h->on_exit(self_pid(), reason);
      break;
    default:
      break;
  }
  destroy_node(n);
}

// ---- links and monitors --------------------------------------------------------------------

bool process_cell::has_link(const cell_base* other) const noexcept {
  return ext_ != nullptr && ext_->links.contains(other);
}

void process_cell::remove_link(const cell_base* other) noexcept {
  if (ext_) ext_->links.erase(other);
}

void process_cell::remove_watcher(std::uint64_t ref) noexcept {
  if (ext_) ext_->watchers.erase(ref);
}

void process_cell::add_link_unsafe(cell_ref other) {
  const cell_base* key = other.get();
  ext().links.insert(key, std::move(other));
}

void process_cell::add_watcher_unsafe(cell_ref target, std::uint64_t ref) {
  ext().watchers.insert(ref, {std::move(target), false});
}

void process_cell::add_held_monitor(std::uint64_t ref, cell_ref target) {
  ext().monitors.insert(ref, std::move(target));
}

void process_cell::link(const pid& other) {
  if (!other || other.cell().get() == this || has_link(other.cell().get())) return;
  ext().links.insert(other.cell().get(), other.cell());
  message_node* n = make_signal(node_kind::link, cell_ref::share(this));
  if (other.cell()->enqueue(n) == enqueue_result::closed) {
    destroy_node(n);
    post_self(make_exit_node(other, exit_reason::noproc(), true));  // SEMANTICS 38
  }
}

void process_cell::unlink(const pid& other) {
  if (!other || !has_link(other.cell().get())) return;
  remove_link(other.cell().get());
  post(other.cell(), make_signal(node_kind::unlink, cell_ref::share(this)));
}

monitor_ref process_cell::monitor(const pid& other) {
  const std::uint64_t ref = new_ref();
  monitor_with_ref(other, ref);
  return monitor_ref(ref);
}

void process_cell::monitor_with_ref(const pid& other, std::uint64_t ref) {
  ext().monitors.insert(ref, other.cell());
  if (!other) {
    post_self(make_down_node(ref, other, exit_reason::noproc(), false));
    return;
  }
  message_node* n = make_signal(node_kind::monitor, cell_ref::share(this), ref);
  if (other.cell()->enqueue(n) == enqueue_result::closed) {
    destroy_node(n);
    post_self(make_down_node(ref, other, exit_reason::noproc(), false));  // SEMANTICS 42
  }
}

bool process_cell::forget_held_monitor(std::uint64_t ref) noexcept {
  return ext_ != nullptr && ext_->monitors.erase(ref);
}

void process_cell::demonitor(monitor_ref ref) {
  cell_ref target;
  if (!ext_ || !ext_->monitors.erase(ref.value(), &target)) return;
  post(target, make_signal(node_kind::demonitor, cell_ref(), ref.value()));
}

void process_cell::send_signal_exit(const pid& to, exit_reason reason) {
  if (!to) return;
  post(to.cell(), make_exit_node(self_pid(), std::move(reason), false));
}

void process_cell::add_exit_hook(std::unique_ptr<exit_hook> hook) {
  process_ext& x = ext();
  hook->next_ = std::move(x.hooks);
  x.hooks = std::move(hook);
}

exit_hook* process_cell::find_exit_hook(const void* tag) noexcept {
  if (!ext_) return nullptr;
  for (exit_hook* h = ext_->hooks.get(); h != nullptr; h = h->next_.get())
    if (h->tag() == tag) return h;
  return nullptr;
}

monitor_ref process_cell::stop_and_monitor(const pid& child, exit_reason reason) {
  const std::uint64_t ref = new_ref();
  ext().monitors.insert(ref, child.cell());
  if (!child) {
    post_self(make_down_node(ref, child, exit_reason::noproc(), false));
    return monitor_ref(ref);
  }
  remove_link(child.cell().get());  // an exit signal of the child via our link is now stale
  message_node* n = make_exit_node(self_pid(), std::move(reason), false);
  n->flags |= flag_stop;
  n->from = cell_ref::share(this);
  n->ref = ref;
  if (child.cell()->enqueue(n) == enqueue_result::closed) {
    destroy_node(n);
    post_self(make_down_node(ref, child, exit_reason::noproc(), false));  // SEMANTICS 42
  }
  return monitor_ref(ref);
}

// ---- call and reply ------------------------------------------------------------------------

void process_cell::reply(const reply_address& to, message_node* node) noexcept {
  if (!to) {
    destroy_node(node);
    return;
  }
  node->ref = to.ref();
  if (unreplied_call_ == to.ref()) {
    unreplied_call_ = 0;
    node->flags |= flag_from_callee;
  } else if (ext_) {
    process_ext::watcher* w = ext_->watchers.find(to.ref());
    if (w != nullptr && w->for_call) {  // a deferred reply by the callee itself
      ext_->watchers.erase(to.ref());
      node->flags |= flag_from_callee;
    }
  }
  post(to.target(), node);
}

std::optional<error> process_cell::begin_call(const pid& to, message_node* request, duration timeout) {
  node_ptr req(request);
  if (!to) return error(errc::noproc, "call to the null pid");
  if (to.cell().get() == this) return error(errc::calling_self, self_pid().to_string());  // SEMANTICS 30
  park_state& x = ready_to_wait();
  const std::uint64_t ref = new_ref();
  req->ref = ref;
  req->from = cell_ref::share(this);
  if (to.cell()->enqueue(req.get()) == enqueue_result::closed)
    return error(errc::noproc, to.to_string());  // SEMANTICS 30: at once
  req.release();
  wait_for(ref, timeout);
  x.await_callee = to.cell();
  return std::nullopt;
}

bool process_cell::keep_expected(message_node* n) noexcept {
  if (!ext_) return false;
  node_ptr* slot = ext_->expected.find(n->ref);
  if (slot == nullptr || *slot) return false;
  slot->reset(n);
  return true;
}

void process_cell::expect(std::uint64_t ref) { ext().expected.insert(ref, node_ptr()); }

node_ptr process_cell::take_expected(std::uint64_t ref) noexcept {
  if (!ext_) return nullptr;
  node_ptr* slot = ext_->expected.find(ref);
  return slot != nullptr ? std::move(*slot) : nullptr;
}

void process_cell::forget_expected(std::uint64_t ref) noexcept {
  if (ext_) ext_->expected.erase(ref);
}

park_state& process_cell::ready_to_wait() {
  process_ext& e = ext();
  if (!e.park) e.park = new park_state();
  park_state& x = *e.park;
  if (x.await_ref != 0)
    throw std::logic_error("a process waits for one thing at a time (it is parked already)");
  return x;
}

// Parks on `ref`, with a timeout message of the same ref unless the wait is forever.
void process_cell::wait_for(std::uint64_t ref, duration timeout) {
  park_state& x = *ext_->park;
  x.await_ref = ref;
  x.await_outcome = {};
  if (timeout != infinity)
    x.await_timer = rt_.start_timer(timeout, cell_ref::share(this), make_signal(node_kind::call_timeout, cell_ref(), ref));
}

bool process_cell::begin_wait_expected(std::uint64_t ref, duration timeout) {
  park_state& x = ready_to_wait();
  node_ptr* slot = ext_->expected.find(ref);
  if (slot != nullptr && *slot) {
    x.await_outcome = {std::move(*slot), std::nullopt};
    return true;
  }
  wait_for(ref, timeout);
  return false;
}

bool process_cell::begin_wait_down(std::uint64_t ref, duration timeout) {
  park_state& x = ready_to_wait();
  // It may have arrived while we were parked on something else: then it is in the stash.
  message_node* prev = nullptr;
  for (message_node* n = x.stash_head; n != nullptr; prev = n, n = n->next) {
    if (n->kind != node_kind::user || n->ref != ref || n->tag != &tag_for<down_message>) continue;
    (prev ? prev->next : x.stash_head) = n->next;
    if (x.stash_tail == n) x.stash_tail = prev;
    n->next = nullptr;
    x.await_outcome = {node_ptr(n), std::nullopt};
    return true;
  }
  wait_for(ref, timeout);
  return false;
}

void process_cell::park(std::coroutine_handle<> h, std::coroutine_handle<> root) noexcept {
  ext_->park->await_handle = h;
  ext_->park->await_root = root;
}

call_outcome process_cell::take_outcome() noexcept { return std::move(ext_->park->await_outcome); }

void process_cell::complete_call(call_outcome outcome) noexcept {
  park_state& x = *ext_->park;
  rt_.timers.cancel(std::exchange(x.await_timer, {}));
  // Someone else answered for the callee: it still watches us for this call; release it.
  if (outcome.reply && !(outcome.reply->flags & flag_from_callee))
    post(x.await_callee, make_signal(node_kind::demonitor, cell_ref(), x.await_ref));
  x.await_ref = 0;
  x.await_callee = cell_ref();
  x.await_outcome = std::move(outcome);
  x.await_root = {};
  if (auto h = std::exchange(x.await_handle, {})) guarded([h] { h.resume(); });
}

}  // namespace canopy::detail
