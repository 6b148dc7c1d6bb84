#pragma once
// Processes the otp suites share.

#include <functional>
#include <memory>
#include <optional>

#include "canopy/core/process.hpp"
#include "canopy/core/runtime.hpp"
#include "canopy/otp/child_spec.hpp"

namespace canopy::test {

// Traps exits and ignores them: only a kill ends it (tests shutdown timeouts).
class deaf_process final : public process {
 protected:
  void on_start() override { process_flag(trap_exit::on); }
  void receive(message&) override {}
};

// A start function for a raw process P, linked to the supervisor running it.
template <class P>
child_start spawn_linked_child() {
  detail::process_cell* parent = detail::current_process();
  auto construct = [](void* mem) -> process* { return new (mem) P(); };
  return child_start::ready(detail::spawn_process(
      detail::core_of(parent), {sizeof(P), alignof(P), construct, parent, detail::spawn_tie::link}));
}

// A process that runs the functions a test sends it, as itself: lets a test act as a
// process (register itself in a registry, own a table) and observe the result.
struct run_as_process {
  std::function<void()> fn;
};
class puppet final : public process {
 protected:
  void receive(message& m) override {
    if (auto* r = m.get<run_as_process>()) {
      r->fn();
      reply(m.reply_to(), true);
    }
  }
};

// Runs fn inside process `p` and returns what it returned (the call's error if p is gone).
template <class F, class T = std::invoke_result_t<F&>>
result<T> act_as(runtime& rt, const pid& p, F fn) {
  auto out = std::make_shared<std::optional<T>>();
  auto done = rt.call<bool>(p, run_as_process{[out, fn]() mutable { out->emplace(fn()); }}, std::chrono::seconds(20));
  if (!done) return done.error();
  return std::move(**out);
}

}  // namespace canopy::test
