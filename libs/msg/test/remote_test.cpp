// msg::remote: processes calling a live server without blocking scheduler threads — many
// callers sharing one remote, replies in any order, timeouts, no connection, retries
// across a server restart, stop with requests in flight. Ports are picked by the OS.
#include "canopy/msg/remote.hpp"

#include <gtest/gtest.h>

#include <mutex>
#include <vector>

#include "canopy/core/runtime.hpp"
#include "canopy/msg/server.hpp"
#include "canopy/testing/wait.hpp"

namespace canopy::msg {
namespace {

using namespace std::chrono_literals;

// Answers "echo" with args.n; keeps "hold" requests until release() answers them, last
// first, with their n.
class service {
 public:
  void operator()(incoming req) {
    const auto* n = wire::find(req.args(), "n");
    const std::uint64_t value = n && n->type == msgpack::type::POSITIVE_INTEGER ? n->via.u64 : 0;
    if (req.op() == "echo") {
      req.reply_ok([&](wire::packer& p) { p.pack(value); });
    } else if (req.op() == "hold") {
      std::lock_guard lk(mu_);
      held_.emplace_back(std::move(req), value);
    } else {
      req.reply_error(wire::error_code::unknown_op, "no such op");
    }
  }
  std::size_t held() {
    std::lock_guard lk(mu_);
    return held_.size();
  }
  void release() {
    std::vector<std::pair<incoming, std::uint64_t>> out;
    {
      std::lock_guard lk(mu_);
      out.swap(held_);
    }
    for (auto it = out.rbegin(); it != out.rend(); ++it) {
      const std::uint64_t value = it->second;
      it->first.reply_ok([&](wire::packer& p) { p.pack(value); });
    }
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<incoming, std::uint64_t>> held_;
};

struct outcome {
  bool ok = false;
  wire::error_code code = wire::error_code::internal;
  std::uint64_t value = 0;
  std::string message;
  std::uint64_t asked = 0;  // the n this caller sent
};

class outcomes {
 public:
  void push(outcome o) {
    std::lock_guard lk(mu_);
    all_.push_back(std::move(o));
  }
  std::vector<outcome> all() {
    std::lock_guard lk(mu_);
    return all_;
  }
  bool wait_for(std::size_t n) {
    return testing::wait_until([&] {
      std::lock_guard lk(mu_);
      return all_.size() >= n;
    });
  }

 private:
  std::mutex mu_;
  std::vector<outcome> all_;
};

// Makes `calls` calls of `op` with n = first, first + 1, ... one after another, recording
// each outcome; then waits for messages (it stays alive).
class asker final : public process {
 public:
  asker(remote& r, std::string op, std::uint64_t first, unsigned calls, request_options options,
        std::shared_ptr<outcomes> out)
      : remote_(r), op_(std::move(op)), first_(first), calls_(calls), options_(options), out_(std::move(out)) {}

 protected:
  void on_start() override { run(); }
  void receive(message&) override {}

 private:
  async run() {
    for (unsigned i = 0; i < calls_; ++i) {
      const std::uint64_t n = first_ + i;
      msg::reply r = co_await remote_.call(
          op_, 1,
          [n](wire::packer& p) {
            p.pack("n");
            p.pack(n);
          },
          options_);
      out_->push({r.ok, r.code, r.ok ? r.result->via.u64 : 0, r.message, n});
    }
  }

  remote& remote_;
  std::string op_;
  std::uint64_t first_;
  unsigned calls_;
  request_options options_;
  std::shared_ptr<outcomes> out_;
};

struct ping {};
class pinger final : public process {
 protected:
  void receive(message& m) override {
    if (m.get<ping>()) reply(m.reply_to(), 1);
  }
};

class Remote : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = server::start({}, [svc = svc](incoming r) { (*svc)(std::move(r)); });
    ASSERT_TRUE(s) << s.error().to_string();
    srv = std::move(*s);
    auto r = remote::start(rt, srv->endpoint(), {.send_timeout = 2s});
    ASSERT_TRUE(r) << r.error().to_string();
    link = std::move(*r);
  }
  void TearDown() override {
    link.reset();
    rt.shutdown();
  }

  runtime rt{{.threads = 2}};
  std::shared_ptr<service> svc = std::make_shared<service>();
  std::unique_ptr<server> srv;
  std::unique_ptr<remote> link;
  std::shared_ptr<outcomes> out = std::make_shared<outcomes>();
};

TEST_F(Remote, ManyProcessesShareOneRemote) {
  constexpr unsigned processes = 50, calls = 20;
  for (unsigned i = 0; i < processes; ++i) rt.spawn<asker>(*link, "echo", i * 1000, calls, request_options{}, out);
  ASSERT_TRUE(out->wait_for(processes * calls));
  std::vector<std::uint64_t> values;
  for (const outcome& o : out->all()) {
    ASSERT_TRUE(o.ok) << o.message;
    values.push_back(o.value);
  }
  std::sort(values.begin(), values.end());
  std::vector<std::uint64_t> expected;
  for (unsigned i = 0; i < processes; ++i)
    for (unsigned k = 0; k < calls; ++k) expected.push_back(i * 1000 + k);
  EXPECT_EQ(values, expected);
  EXPECT_EQ(link->stats().replies, processes * calls);
  EXPECT_EQ(link->stats().in_flight, 0u);
}

TEST_F(Remote, RepliesInAnyOrderReachTheirOwnCallers) {
  for (std::uint64_t n = 1; n <= 3; ++n) rt.spawn<asker>(*link, "hold", n, 1, request_options{}, out);
  ASSERT_TRUE(testing::wait_until([&] { return svc->held() == 3; }));
  svc->release();  // answers 3, 2, 1
  ASSERT_TRUE(out->wait_for(3));
  // Each caller got the reply to its own request (the order the three processes record
  // them in is the schedulers', not the replies').
  std::vector<std::uint64_t> values;
  for (const outcome& o : out->all()) {
    EXPECT_EQ(o.value, o.asked);
    values.push_back(o.value);
  }
  std::sort(values.begin(), values.end());
  EXPECT_EQ(values, (std::vector<std::uint64_t>{1, 2, 3}));
}

TEST_F(Remote, AWaitingCallerDoesNotHoldItsSchedulerThread) {
  runtime one{{.threads = 1}};
  auto r = remote::start(one, srv->endpoint());
  ASSERT_TRUE(r);
  one.spawn<asker>(**r, "hold", 7, 1, request_options{}, out);
  ASSERT_TRUE(testing::wait_until([&] { return svc->held() == 1; }));
  // The only scheduler thread is free: another process still answers.
  pid p = one.spawn<pinger>();
  auto answer = one.call<int>(p, ping{}, 10s);
  ASSERT_TRUE(answer) << answer.error().to_string();
  svc->release();
  ASSERT_TRUE(out->wait_for(1));
  EXPECT_EQ(out->all().front().value, 7u);
  r->reset();
}

TEST_F(Remote, NoReplyWithinTheTimeoutAnswersTimeoutAndTheCallerGoesOn) {
  rt.spawn<asker>(*link, "hold", 1, 2, request_options{.timeout = 50ms}, out);
  ASSERT_TRUE(out->wait_for(2));
  for (const outcome& o : out->all()) {
    EXPECT_FALSE(o.ok);
    EXPECT_EQ(o.code, wire::error_code::timeout) << o.message;
    EXPECT_NE(o.message.find("50 ms"), std::string::npos) << o.message;
  }
  EXPECT_EQ(link->stats().timeouts, 2u);
  svc->release();  // late replies: dropped
  rt.spawn<asker>(*link, "echo", 9, 1, request_options{}, out);
  ASSERT_TRUE(out->wait_for(3));
  EXPECT_TRUE(out->all().back().ok);
  EXPECT_EQ(out->all().back().value, 9u);
}

TEST_F(Remote, WithNoServerACallAnswersUnavailable) {
  const std::string endpoint = srv->endpoint();
  srv.reset();
  auto r = remote::start(rt, endpoint, {.send_timeout = 100ms});
  ASSERT_TRUE(r);
  rt.spawn<asker>(**r, "echo", 1, 1, request_options{}, out);
  ASSERT_TRUE(out->wait_for(1));
  EXPECT_EQ(out->all().front().code, wire::error_code::unavailable) << out->all().front().message;
  EXPECT_EQ((*r)->stats().unavailable, 1u);
}

TEST_F(Remote, ARequestSentBeforeTheServerIsUpWaitsForTheConnection) {
  const std::string endpoint = srv->endpoint();
  srv.reset();
  auto r = remote::start(rt, endpoint, {.send_timeout = 20s});
  ASSERT_TRUE(r);
  rt.spawn<asker>(**r, "echo", 4, 1, request_options{}, out);
  ASSERT_TRUE(testing::wait_until([&] { return (*r)->stats().in_flight == 1; }));
  auto again = server::start({.endpoint = endpoint}, [svc = svc](incoming q) { (*svc)(std::move(q)); });
  ASSERT_TRUE(again) << again.error().to_string();
  ASSERT_TRUE(out->wait_for(1));
  EXPECT_TRUE(out->all().front().ok) << out->all().front().message;
  EXPECT_EQ(out->all().front().value, 4u);
  r->reset();
}

TEST_F(Remote, AnIdempotentRequestIsRetriedAcrossAServerRestart) {
  const std::string endpoint = srv->endpoint();
  rt.spawn<asker>(*link, "hold", 11, 1, request_options{.timeout = 200ms, .attempts = 100}, out);
  ASSERT_TRUE(testing::wait_until([&] { return svc->held() == 1; }));
  srv.reset();  // the held request dies with it, unanswered
  auto again = server::start({.endpoint = endpoint}, [](incoming q) {
    const std::uint64_t n = wire::find(q.args(), "n")->via.u64;
    q.reply_ok([&](wire::packer& p) { p.pack(n); });
  });
  ASSERT_TRUE(again) << again.error().to_string();
  ASSERT_TRUE(out->wait_for(1));
  EXPECT_TRUE(out->all().front().ok) << out->all().front().message;
  EXPECT_EQ(out->all().front().value, 11u);
  EXPECT_GE(link->stats().sent, 2u);
}

TEST_F(Remote, StopAnswersRequestsInFlightUnavailable) {
  rt.spawn<asker>(*link, "hold", 1, 1, request_options{.timeout = 60s}, out);
  ASSERT_TRUE(testing::wait_until([&] { return svc->held() == 1; }));
  link->stop();
  ASSERT_TRUE(out->wait_for(1));
  EXPECT_EQ(out->all().front().code, wire::error_code::unavailable);
  rt.spawn<asker>(*link, "echo", 1, 1, request_options{}, out);  // after stop: at once
  ASSERT_TRUE(out->wait_for(2));
  EXPECT_EQ(out->all().back().code, wire::error_code::unavailable);
}

TEST_F(Remote, ACastReachesTheServerAndItsReplyIsDropped) {
  link->cast("hold", 1, [](wire::packer& p) {  // from this (non-process) thread
    p.pack("n");
    p.pack(3u);
  });
  ASSERT_TRUE(testing::wait_until([&] { return svc->held() == 1; }));
  svc->release();
  ASSERT_TRUE(testing::wait_until([&] { return link->stats().in_flight == 0; }));
  EXPECT_EQ(link->stats().replies, 0u);  // nobody waited for it
}

TEST_F(Remote, CallingFromOutsideAProcessIsRefused) {
  EXPECT_THROW((void)link->call("echo"), std::logic_error);
}

TEST(RemoteStart, AMalformedEndpointIsAClearError) {
  runtime rt{{.threads = 1}};
  auto r = remote::start(rt, "tcp://no-port-here");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), errc::invalid_argument);
  EXPECT_NE(r.error().to_string().find("no-port-here"), std::string::npos);
}

}  // namespace
}  // namespace canopy::msg
