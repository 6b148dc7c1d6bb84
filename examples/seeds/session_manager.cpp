// Seed: SessionManager — a GenServer with an idle timeout: any request refreshes it; when it
// expires the session stops with reason normal.
#include <chrono>

#include "canopy/otp/gen_server.hpp"
#include "canopy/testing/virtual_clock.hpp"
#include "check.hpp"

using namespace std::chrono_literals;

struct touch {};

class session final : public canopy::gen_server {
 public:
  explicit session(canopy::duration idle) : idle_(idle) {}

 protected:
  result init() override { return ok().idle_timeout(idle_); }
  result handle_call(canopy::message& m, const canopy::reply_address& from) override {
    if (m.get<touch>()) return reply(true).idle_timeout(idle_);  // a refresh re-arms it
    return gen_server::handle_call(m, from);
  }
  result handle_info(canopy::message& m) override {
    if (m.get<canopy::timeout_message>()) return stop(canopy::exit_reason::normal());
    return noreply().idle_timeout(idle_);
  }

 private:
  canopy::duration idle_;
};

int main() {
  auto clk = std::make_shared<canopy::testing::virtual_clock>();
  canopy::runtime rt({.mode = canopy::scheduling::manual, .clock = clk});
  auto s = canopy::gen_server::start<session>(rt, {}, 30min);
  check(s.has_value(), "session started with a 30 min idle timeout");
  auto exited = rt.watch(*s);
  clk->advance(29min);
  check(rt.call<bool>(*s, touch{}).value_or(false), "a request after 29 min refreshes it");
  clk->advance(29min);
  rt.run_until_idle();
  check(rt.is_alive(*s), "58 min after start but 29 after the refresh: still alive");
  clk->advance(1min);
  rt.run_until_idle();
  auto reason = exited.wait(0ms);
  check(reason && reason->is_normal(), "30 idle minutes: the session stopped with reason normal");
  return 0;
}
