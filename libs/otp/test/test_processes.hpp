#pragma once
// Processes the otp suites share.

#include "canopy/core/process.hpp"
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

}  // namespace canopy::test
