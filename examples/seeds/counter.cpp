// Seed: Counter — a GenServer with a synchronous call (value) and an asynchronous cast
// (increment).
#include "canopy/otp/gen_server.hpp"
#include "check.hpp"

struct increment {};
struct value {};

class counter final : public canopy::gen_server {
 public:
  explicit counter(int start) : n_(start) {}

 protected:
  result handle_call(canopy::message& m, const canopy::reply_address& from) override {
    if (m.get<value>()) return reply(n_);
    return gen_server::handle_call(m, from);
  }
  result handle_cast(canopy::message& m) override {
    if (m.get<increment>()) ++n_;
    return noreply();
  }

 private:
  int n_;
};

int main() {
  canopy::runtime rt;
  auto c = canopy::gen_server::start<counter>(rt, {.name = "counter"}, 0);
  check(c.has_value(), "Counter.start_link(0)");
  canopy::gen_server::cast(rt, *c, increment{});
  canopy::gen_server::cast(rt, *c, increment{});
  auto v = canopy::gen_server::call<int>(rt, rt.whereis("counter"), value{});
  check(v && *v == 2, "two increments (casts), then value (a call) answers 2");
  return 0;
}
