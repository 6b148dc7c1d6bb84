#include <gtest/gtest.h>

#include <atomic>

#include "canopy/core/process.hpp"
#include "canopy/core/runtime.hpp"
#include "canopy/testing/wait.hpp"

namespace canopy {
namespace {

struct get {};
struct add { int n; };

class counter final : public process {
 public:
  explicit counter(int start) : n_(start) {}

 protected:
  void receive(message& m) override {
    if (auto* a = m.get<add>()) n_ += a->n;
    if (m.get<get>()) reply(m.reply_to(), n_);
  }

 private:
  int n_;
};

TEST(Process, HandlesMessagesInOrderAndAnswersCalls) {
  runtime rt({.threads = 2});
  pid c = rt.spawn<counter>(10);
  for (int i = 0; i < 100; ++i) rt.send(c, add{1});
  auto r = rt.call<int>(c, get{});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(*r, 110);
}

}  // namespace
}  // namespace canopy
