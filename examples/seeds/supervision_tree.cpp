// Seed: the supervision tree — a root one_for_one supervisor over a one_for_all and a
// rest_for_one sub-supervisor, each with workers.
#include <string>

#include "canopy/otp/supervisor.hpp"
#include "check.hpp"

struct crash {};

class worker final : public canopy::gen_server {
 protected:
  result handle_cast(canopy::message& m) override {
    if (m.get<crash>()) throw std::runtime_error("worker crashed");
    return noreply();
  }
};

canopy::pid find(canopy::runtime& rt, const canopy::pid& sup, const std::string& id) {
  auto children = canopy::supervisor::which_children(rt, sup);  // kept: we iterate into it
  if (!children) return {};
  for (auto& c : *children)
    if (c.id == id) return c.child;
  return {};
}

int main() {
  using namespace canopy;
  runtime rt({.mode = scheduling::manual});
  auto root = supervisor::start(
      rt, {.strategy = strategy::one_for_one},
      {supervisor::spec("all", {.strategy = strategy::one_for_all},
                        {child_spec::worker<worker>("a1"), child_spec::worker<worker>("a2")}),
       supervisor::spec("rest", {.strategy = strategy::rest_for_one},
                        {child_spec::worker<worker>("r1"), child_spec::worker<worker>("r2"), child_spec::worker<worker>("r3")})});
  check(root.has_value(), "the tree started");
  std::printf("%s", render(*supervisor::tree(rt, *root)).c_str());
  pid all = find(rt, *root, "all");
  pid rest = find(rt, *root, "rest");

  pid a1 = find(rt, all, "a1");
  pid a2 = find(rt, all, "a2");
  rt.cast(a1, crash{});
  rt.run_until_idle();
  check(find(rt, all, "a1") != a1 && find(rt, all, "a2") != a2, "one_for_all: a1 crashed, both restarted");

  pid r1 = find(rt, rest, "r1");
  pid r2 = find(rt, rest, "r2");
  pid r3 = find(rt, rest, "r3");
  rt.cast(r2, crash{});
  rt.run_until_idle();
  check(find(rt, rest, "r1") == r1, "rest_for_one: r1, started before r2, untouched");
  check(find(rt, rest, "r2") != r2 && find(rt, rest, "r3") != r3, "rest_for_one: r2 and r3 restarted");
  check(find(rt, *root, "all") == all && find(rt, *root, "rest") == rest, "the root saw nothing");
  return 0;
}
