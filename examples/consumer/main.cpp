// The smallest program against the installed package: one process, one call.
#include <cstdio>

#include "canopy/core/process.hpp"
#include "canopy/core/runtime.hpp"

struct ping {};

class echo final : public canopy::process {
 protected:
  void receive(canopy::message& m) override {
    if (m.get<ping>()) reply(m.reply_to(), 42);
  }
};

int main() {
  canopy::runtime rt;
  auto answer = rt.call<int>(rt.spawn<echo>(), ping{});
  std::printf("installed canopy answers %d\n", answer.value_or(-1));
  return answer && *answer == 42 ? 0 : 1;
}
