#pragma once
// message: what a process receives. A message holds one value of any movable C++ type;
// handlers ask for the type they expect with get<T>().
// Thread-safety: a message belongs to the process handling it; do not share it.
//
// Messages are moved into the receiver's mailbox, never shared: one heap node per message,
// carrying the value inline, so a send is one allocation and one atomic push.

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "canopy/core/detail/cell.hpp"
#include "canopy/core/detail/node_pool.hpp"
#include "canopy/core/exit_reason.hpp"
#include "canopy/core/pid.hpp"
#include "canopy/core/refs.hpp"

namespace canopy {

// Delivered when a monitored process exits (or was already dead: reason noproc).
struct down_message {
  monitor_ref ref;
  pid who;
  exit_reason reason;
};

// Delivered instead of an exit signal to a process that traps exits. `from` is the null
// pid when the signal came from outside any process (runtime::exit, runtime shutdown).
struct exit_message {
  pid from;
  exit_reason reason;
};

namespace detail {

enum class node_kind : std::uint8_t {
  user,          // send()
  cast,          // cast(): a send that a gen_server hands to handle_cast
  call,          // a request: `from` is where the reply goes, `ref` correlates it
  reply,         // the answer to a call with `ref`
  down,          // a monitor fired (payload down_message); flag call_monitor for calls
  exit,          // an exit signal (payload exit_message); flag via_link when from a link
  link,          // link request from `from`
  unlink,        // unlink request from `from`
  monitor,       // monitor request from `from` with `ref`
  demonitor,     // demonitor of `ref`
  call_timeout,  // the deadline of the caller's pending call `ref` passed
  hook,          // an exit hook for the receiver to adopt (payload hook_payload)
};

inline constexpr std::uint8_t flag_via_link = 1;
inline constexpr std::uint8_t flag_call_monitor = 2;
inline constexpr std::uint8_t flag_from_callee = 4;  // a reply sent by the process called
// An exit signal that also unlinks from the sender and monitors for it under `ref`: how a
// supervisor stops a child, one signal instead of three (monitor, unlink, exit).
inline constexpr std::uint8_t flag_stop = 8;

struct type_tag {
  const std::type_info& info;
  void (*destroy)(message_node*) noexcept;
};

struct message_node {
  message_node* next = nullptr;
  const type_tag* tag = nullptr;
  cell_ref from;  // sender of a signal, or the reply target of a call
  std::uint64_t ref = 0;
  node_kind kind = node_kind::user;
  std::uint8_t flags = 0;
};

template <class T>
struct typed_node final : message_node {
  template <class... A>
  explicit typed_node(A&&... args) : value(std::forward<A>(args)...) {}
  T value;
};

template <class T>
void destroy_typed(message_node* n) noexcept {
  auto* typed = static_cast<typed_node<T>*>(n);
  typed->~typed_node<T>();
  node_deallocate<sizeof(typed_node<T>), alignof(typed_node<T>)>(typed);
}

// One tag per type; its address is the type's identity (inline variable: one per program).
template <class T>
inline const type_tag tag_for{typeid(T), &destroy_typed<T>};

struct no_payload {};

template <class T, class... A>
message_node* make_node(node_kind kind, A&&... args) {
  void* mem = node_allocate<sizeof(typed_node<T>), alignof(typed_node<T>)>();
  typed_node<T>* n;
  try {
    n = new (mem) typed_node<T>(std::forward<A>(args)...);
  } catch (...) {
    node_deallocate<sizeof(typed_node<T>), alignof(typed_node<T>)>(mem);
    throw;
  }
  n->tag = &tag_for<T>;
  n->kind = kind;
  return n;
}

inline void destroy_node(message_node* n) noexcept {
  if (n) n->tag->destroy(n);
}

struct node_deleter {
  void operator()(message_node* n) const noexcept { destroy_node(n); }
};
using node_ptr = std::unique_ptr<message_node, node_deleter>;

// Demangled type name, for crash reports and bad_reply errors.
std::string type_name(const std::type_info& info);

}  // namespace detail

// Where the reply to a call goes: the caller (a process or a blocked thread) plus the
// call's ref. Copyable, so a server may keep it and reply later, from any process.
class reply_address {
 public:
  reply_address() noexcept = default;
  reply_address(detail::cell_ref target, std::uint64_t ref) noexcept
      : target_(std::move(target)), ref_(ref) {}
  explicit operator bool() const noexcept { return static_cast<bool>(target_); }
  [[nodiscard]] std::uint64_t ref() const noexcept { return ref_; }
  [[nodiscard]] const detail::cell_ref& target() const noexcept { return target_; }

 private:
  detail::cell_ref target_;
  std::uint64_t ref_ = 0;
};

// A non-owning view of the message being handled.
class message {
 public:
  explicit message(detail::message_node* node) noexcept : node_(node) {}

  template <class T>
  [[nodiscard]] bool is() const noexcept {
    return node_->tag == &detail::tag_for<T>;
  }
  // The value if the message holds a T, else nullptr.
  template <class T>
  [[nodiscard]] T* get() noexcept {
    return is<T>() ? &static_cast<detail::typed_node<T>*>(node_)->value : nullptr;
  }
  template <class T>
  [[nodiscard]] const T* get() const noexcept {
    return is<T>() ? &static_cast<const detail::typed_node<T>*>(node_)->value : nullptr;
  }
  // True for a message sent with cast() (as opposed to a plain send()).
  [[nodiscard]] bool is_cast() const noexcept { return node_->kind == detail::node_kind::cast; }
  // True for a request sent with call(): answer it with reply(reply_to(), value).
  [[nodiscard]] bool is_call() const noexcept { return node_->kind == detail::node_kind::call; }
  // Where the reply goes; empty unless is_call().
  [[nodiscard]] reply_address reply_to() const {
    return is_call() ? reply_address(node_->from, node_->ref) : reply_address();
  }
  [[nodiscard]] const std::type_info& type() const noexcept { return node_->tag->info; }
  [[nodiscard]] std::string type_name() const { return detail::type_name(node_->tag->info); }

  // Internal.
  [[nodiscard]] detail::message_node* node() const noexcept { return node_; }

 private:
  detail::message_node* node_;
};

}  // namespace canopy
