// A program against the installed package: a GenServer (canopy::otp) and a request encoded
// and decoded as the wire protocol says (canopy::msg, canopy::wire).
#include <cstdio>

#include "canopy/msg/client.hpp"
#include "canopy/otp/gen_server.hpp"
#include "canopy/wire/codec.hpp"

struct get {};
struct add {
  int n;
};

class counter final : public canopy::gen_server {
 protected:
  result handle_call(canopy::message& m, const canopy::reply_address& from) override {
    if (m.get<get>()) return reply(n_);
    return gen_server::handle_call(m, from);
  }
  result handle_cast(canopy::message& m) override {
    if (auto* a = m.get<add>()) n_ += a->n;
    return noreply();
  }

 private:
  int n_ = 0;
};

int main() {
  canopy::runtime rt;
  auto c = canopy::gen_server::start<counter>(rt, {.name = "counter"});
  if (!c) return 1;
  canopy::gen_server::cast(rt, *c, add{40});
  canopy::gen_server::cast(rt, *c, add{2});
  auto answer = canopy::gen_server::call<int>(rt, *c, get{});
  const std::string bytes = canopy::msg::encode_request(7, "ping", 0, [](canopy::wire::packer&) {});
  auto decoded = canopy::wire::decode_request(bytes, canopy::wire::decode_limits{});
  std::printf("installed canopy: the counter answers %d; a request decodes as op %s\n", answer.value_or(-1),
              decoded.ok() ? std::string(decoded.value().op).c_str() : "(refused)");
  return answer && *answer == 42 && decoded.ok() && decoded.value().id == 7 ? 0 : 1;
}
