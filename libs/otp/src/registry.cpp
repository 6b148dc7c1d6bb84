#include "canopy/otp/registry.hpp"

#include <stdexcept>

namespace canopy::detail {

namespace {

// The registry's process: it publishes the registry under its name while alive and closes
// it when it exits, so the registry lives and dies (and restarts) with a process.
class registry_server final : public process {
 public:
  registry_server(runtime_core& rt, std::shared_ptr<registry_base> state) : rt_(rt), state_(std::move(state)) {}
  ~registry_server() override {
    const registry_base& state = *state_;
    withdraw_resource(rt_, state.options().name, typeid(state), &state);
    state_->close();
  }

 protected:
  void receive(message&) override {}

 private:
  runtime_core& rt_;
  std::shared_ptr<registry_base> state_;
};

}  // namespace

pid registry_base::owner() const {
  std::lock_guard lk(mu_);
  return owner_;
}

void registry_base::put_meta(const std::string& key, std::any value) {
  std::lock_guard lk(mu_);
  meta_[key] = std::move(value);
}

std::optional<std::any> registry_base::meta(const std::string& key) const {
  std::lock_guard lk(mu_);
  auto it = meta_.find(key);
  if (it == meta_.end()) return std::nullopt;
  return it->second;
}

void registry_base::set_owner(pid owner) {
  std::lock_guard lk(mu_);
  owner_ = std::move(owner);
}

void registry_base::close() noexcept {
  alive_.store(false, std::memory_order_release);
  clear_entries();
}

canopy::result<pid> start_registry(runtime_core& rt, process_cell* parent, std::shared_ptr<registry_base> state) {
  const std::string name = state->options().name;
  auto construct = [&](void* mem) -> process* { return new (mem) registry_server(rt, state); };
  spawn_args args{sizeof(registry_server), alignof(registry_server), construct, parent,
                  parent ? spawn_tie::link : spawn_tie::none};
  // The local name and the published registry both come before anyone can use the process.
  // (The local name is unique, so publishing cannot find the name taken; if it did, the
  // start fails rather than run a registry nobody can find.)
  auto started = start_process(rt, args, process_name(name), [&](process&) {
    state->set_owner(pid_of(current_process()));  // after_init runs as the new process
    const registry_base& published = *state;
    if (!publish_resource(rt, name, typeid(published), state))
      throw std::logic_error("a registry named " + name + " is already published");
  });
  return started;
}

std::shared_ptr<registry_base> find_registry(runtime_core& rt, const std::string& name, const std::type_info& type) {
  auto found = std::static_pointer_cast<registry_base>(find_resource(rt, name, type));
  if (found && !found->alive()) return nullptr;
  return found;
}

unsigned default_partitions(runtime_core& rt) noexcept { return schedulers_of(rt); }

runtime_core& current_core() {
  process_cell* p = current_process();
  if (p == nullptr) throw std::logic_error("registry::whereis(name) without a runtime is called from inside a process");
  return core_of(p);
}

void throw_registry_outside_process(const char* what) {
  throw std::logic_error(std::string(what) + " acts for the calling process: call it from inside a process");
}

}  // namespace canopy::detail
