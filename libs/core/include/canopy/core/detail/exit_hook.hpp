#pragma once
// Internal: work a process's exit does for libraries built on the core — a Registry
// removing the dying process's keys, a table owner deleting or handing over its tables.
// Hooks run in terminate, on the dying process's thread, after its local names are gone
// and before any link or monitor is told: whoever observes the exit finds its keys gone
// (SEMANTICS 43, 46).
// Thread-safety: a process's hooks are added and found only by that process while it runs,
// or by its starter before it is scheduled.

#include <memory>
#include <string>
#include <typeinfo>

#include "canopy/core/exit_reason.hpp"
#include "canopy/core/pid.hpp"

namespace canopy::detail {

class process_cell;
class runtime_core;

class exit_hook {
 public:
  virtual ~exit_hook() = default;
  // `tag` identifies the hook's owner (a registry's state) so a process keeps one per owner.
  [[nodiscard]] virtual const void* tag() const noexcept = 0;
  virtual void on_exit(const pid& who, const exit_reason& reason) noexcept = 0;

 private:
  friend class process_cell;
  std::unique_ptr<exit_hook> next_;
};

// The process takes ownership; the hook is destroyed after it ran.
void add_exit_hook(process_cell* process, std::unique_ptr<exit_hook> hook);
// From any thread: `target` adopts the hook as a signal (in order with what the caller sent
// it before). If `target` is dead, or dies before adopting it, the hook runs at once (on
// whichever thread learns it) with the target's exit reason or noproc.
void attach_exit_hook(const pid& target, std::unique_ptr<exit_hook> hook);

struct hook_payload {
  std::unique_ptr<exit_hook> hook;
};
// The process's hook with this tag, or null.
exit_hook* find_exit_hook(process_cell* process, const void* tag) noexcept;

// Runtime-wide named objects (named Registries, named tables): published by their owner
// process, withdrawn when it exits. Each kind keeps its own namespace (the type).
// False if the name is taken.
bool publish_resource(runtime_core& rt, const std::string& name, const std::type_info& type,
                      std::shared_ptr<void> object);
std::shared_ptr<void> find_resource(runtime_core& rt, const std::string& name, const std::type_info& type);
// Removes the entry if it still holds `object`.
void withdraw_resource(runtime_core& rt, const std::string& name, const std::type_info& type,
                       const void* object) noexcept;

}  // namespace canopy::detail
