// Seed: the application tree — a unique Registry and a DynamicSupervisor under one
// supervisor; DynamicWorker children are named by via tuples and found by key.
//
//   children = [
//     {Registry, keys: :unique, name: MyApp.Registry},
//     {DynamicSupervisor, name: MyApp.DynamicSupervisor, strategy: :one_for_one}
//   ]
//   DynamicWorker.start_link(id): name: {:via, Registry, {MyApp.Registry, id}}
#include <string>

#include "canopy/otp/dynamic_supervisor.hpp"
#include "canopy/otp/registry.hpp"
#include "canopy/otp/supervisor.hpp"
#include "canopy/testing/wait.hpp"
#include "check.hpp"

using app_registry = canopy::registry<std::string>;

struct get_state {};
struct set_state {
  std::string value;
};

class dynamic_worker final : public canopy::gen_server {
 public:
  explicit dynamic_worker(std::string id) : state_("initial state of " + id) {}

 protected:
  result handle_call(canopy::message& m, const canopy::reply_address& from) override {
    if (m.get<get_state>()) return reply(state_);
    return gen_server::handle_call(m, from);
  }
  result handle_cast(canopy::message& m) override {
    if (auto* s = m.get<set_state>()) state_ = s->value;
    return noreply();
  }

 private:
  std::string state_;
};

// DynamicWorker's child spec: started (and restarted) under its key in MyApp.Registry.
canopy::child_spec worker_spec(const std::string& id) {
  return canopy::child_spec("dynamic_worker:" + id, [id] {
    auto registry = app_registry::whereis("MyApp.Registry");
    if (!registry) return canopy::child_start::ready(canopy::error(canopy::errc::noproc, "MyApp.Registry"));
    return canopy::child_start::ready(
        canopy::gen_server::start_link<dynamic_worker>({.name = canopy::via(*registry, id)}, id));
  });
}

int main() {
  canopy::runtime rt;
  auto app = canopy::supervisor::start(
      rt, {.strategy = canopy::strategy::one_for_one},
      {app_registry::spec({.name = "MyApp.Registry", .keys = canopy::registry_keys::unique}),
       canopy::child_spec("MyApp.DynamicSupervisor",
                          [] { return canopy::dynamic_supervisor::start_link({}, "MyApp.DynamicSupervisor"); })
           .type(canopy::child_type::supervisor)},
      "MyApp.Supervisor");
  check(app.has_value(), "the application supervisor started its Registry and DynamicSupervisor");
  auto registry = app_registry::whereis(rt, "MyApp.Registry");
  const canopy::pid dynsup = rt.whereis("MyApp.DynamicSupervisor");
  check(registry && dynsup, "both are found by name");

  for (const char* id : {"worker-1", "worker-2"})
    check(canopy::dynamic_supervisor::start_child(rt, dynsup, worker_spec(id)).has_value(),
          std::string("DynamicSupervisor.start_child(DynamicWorker, ") + id + ")");
  auto found = registry->lookup("worker-1");
  check(found.size() == 1, "Registry.lookup(MyApp.Registry, \"worker-1\") finds it");
  auto name = canopy::via(*registry, "worker-2");
  check(canopy::gen_server::call<std::string>(rt, name, get_state{}).value_or("") == "initial state of worker-2",
        "a call by its via name reaches worker-2");
  canopy::gen_server::cast(rt, name, set_state{"updated"});
  check(canopy::gen_server::call<std::string>(rt, name, get_state{}).value_or("") == "updated",
        "a cast by its via name updated it");

  // A crashed worker is restarted by the DynamicSupervisor under the same key.
  const canopy::pid old = found[0].owner;
  rt.exit(old, canopy::exit_reason::kill());
  const bool restarted = canopy::testing::wait_until([&] {
    auto again = registry->lookup("worker-1");
    return again.size() == 1 && again[0].owner != old;
  });
  check(restarted, "a killed worker is restarted and registered under its key again");
  check(!canopy::gen_server::call<std::string>(rt, canopy::via(*registry, "worker-9"), get_state{}),
        "a call to an unknown key answers an error (noproc)");
  return 0;
}
