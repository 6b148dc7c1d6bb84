// msg::server against live peers on loopback: DEALER and REQ round trips, pipelining with
// out-of-order replies, every kind of bad input (each followed by a good request), the
// in-flight limit, dropped requests, events. Ports are picked by the OS (port 0).
#include "canopy/msg/server.hpp"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "canopy/core/runtime.hpp"
#include "canopy/msg/client.hpp"
#include "canopy/msg/subscriber.hpp"
#include "canopy/testing/wait.hpp"

namespace canopy::msg {
namespace {

using namespace std::chrono_literals;

// Answers {op, n} for op "echo" (args n), 16 KiB for "big", unknown_op otherwise; "hold" requests are kept
// until release() answers them in reverse order.
class echo_service {
 public:
  void operator()(incoming req) {
    if (req.op() == "echo") {
      std::uint64_t n = 0;
      if (const auto* v = wire::find(req.args(), "n"); v && v->type == msgpack::type::POSITIVE_INTEGER) n = v->via.u64;
      const std::string op(req.op());
      req.reply_ok([&](wire::packer& p) {
        p.pack_map(2);
        p.pack("op");
        p.pack(op);
        p.pack("n");
        p.pack(n);
      });
    } else if (req.op() == "hold") {
      std::lock_guard lk(mu_);
      held_.push_back(std::move(req));
    } else if (req.op() == "text") {  // args s back, with the op (both point into the frame)
      const auto* s = wire::find(req.args(), "s");
      const std::string text = s && s->type == msgpack::type::STR ? s->as<std::string>() : "";
      req.reply_ok([&](wire::packer& p) { p.pack(std::string(req.op()) + ":" + text); });
    } else if (req.op() == "big") {
      req.reply_ok([](wire::packer& p) { p.pack(std::string(16384, 'b')); });
    } else if (req.op() == "drop") {
      // destroyed unanswered: the server answers internal
    } else {
      req.reply_error(wire::error_code::unknown_op, "no op " + std::string(req.op()));
    }
  }
  std::size_t held() {
    std::lock_guard lk(mu_);
    return held_.size();
  }
  void release() {
    std::vector<incoming> out;
    {
      std::lock_guard lk(mu_);
      out = std::move(held_);
      held_.clear();
    }
    for (auto it = out.rbegin(); it != out.rend(); ++it) {
      const std::uint64_t id = it->id();
      it->reply_ok([&](wire::packer& p) { p.pack(id); });
    }
  }

 private:
  std::mutex mu_;
  std::vector<incoming> held_;
};

class Server : public ::testing::Test {
 protected:
  void SetUp() override { start({}); }
  void start(server_options o) {
    o.events_endpoint = "tcp://127.0.0.1:0";
    auto s = server::start(std::move(o), [this](incoming r) { (*service)(std::move(r)); });
    ASSERT_TRUE(s) << s.error().to_string();
    srv = std::move(*s);
    auto c = client::connect(srv->endpoint());
    ASSERT_TRUE(c);
    cli = std::move(*c);
  }
  // A good request still works (after whatever came before).
  void expect_echo_works() {
    auto r = cli->call("echo", 1, [](wire::packer& p) {
      p.pack("n");
      p.pack(5u);
    });
    ASSERT_TRUE(r) << r.error().to_string();
    ASSERT_TRUE(r->ok) << r->message;
    EXPECT_EQ(wire::find(*r->result, "n")->via.u64, 5u);
  }
  reply expect_refused(const std::vector<std::string>& frames, wire::error_code code) {
    cli->send_frames(frames);
    auto r = cli->receive(10s);
    EXPECT_TRUE(r);
    if (!r) return {};
    EXPECT_FALSE(r->ok);
    EXPECT_EQ(r->code, code) << r->message;
    EXPECT_FALSE(r->message.empty());
    expect_echo_works();
    return *r;
  }

  std::shared_ptr<echo_service> service = std::make_shared<echo_service>();
  std::unique_ptr<server> srv;
  std::unique_ptr<client> cli;
};

std::string packed(const std::function<void(wire::packer&)>& write) {
  msgpack::sbuffer buf;
  wire::packer p(buf);
  write(p);
  return std::string(buf.data(), buf.size());
}

TEST_F(Server, DealerRoundTripAndUnknownOp) {
  expect_echo_works();
  auto r = cli->call("nope");
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->ok);
  EXPECT_EQ(r->code, wire::error_code::unknown_op);
  EXPECT_EQ(r->id, 2u);
}

TEST_F(Server, ReqPeersGetTheirDelimiterBack) {
  zmq::context_t ctx;
  zmq::socket_t req(ctx, zmq::socket_type::req);
  req.set(zmq::sockopt::linger, 0);
  req.connect(srv->endpoint());
  for (std::uint64_t id = 1; id <= 3; ++id) {  // strict request / reply, several times
    const std::string body = packed([&](wire::packer& p) {
      p.pack_map(2);
      p.pack("id");
      p.pack(id);
      p.pack("op");
      p.pack("echo");
    });
    req.send(zmq::buffer(body));
    zmq::message_t msg;
    ASSERT_TRUE(req.recv(msg));
    auto r = decode_reply(msg.to_string(), {});
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->ok);
    EXPECT_EQ(r->id, id);
  }
}

TEST_F(Server, ProxyRoutingFramesShortAndLongComeBackInFrontOfTheReply) {
  zmq::context_t ctx;
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect(srv->endpoint());
  // As a proxy forwards: routing frames (one longer than 254 bytes, one empty of content
  // but for a byte), the delimiter, then the payload; small and large payloads.
  const std::vector<std::string> routing{std::string(300, 'r'), "x"};
  for (std::size_t size : {3u, 100u, 1000u, 100000u}) {
    const std::string text(size, 't');
    const std::string body = packed([&](wire::packer& p) {
      p.pack_map(3);
      p.pack("id");
      p.pack(size);
      p.pack("op");
      p.pack("text");
      p.pack("args");
      p.pack_map(1);
      p.pack("s");
      p.pack(text);
    });
    for (const std::string& f : routing) dealer.send(zmq::buffer(f), zmq::send_flags::sndmore);
    dealer.send(zmq::const_buffer(), zmq::send_flags::sndmore);
    dealer.send(zmq::buffer(body));
    std::vector<zmq::message_t> got;
    zmq_pollitem_t item{dealer.handle(), 0, ZMQ_POLLIN, 0};
    ASSERT_EQ(zmq::poll(&item, 1, 10s), 1);
    ASSERT_TRUE(zmq::recv_multipart(dealer, std::back_inserter(got)));
    ASSERT_EQ(got.size(), 4u);
    EXPECT_EQ(got[0].to_string(), routing[0]);
    EXPECT_EQ(got[1].to_string(), routing[1]);
    EXPECT_EQ(got[2].size(), 0u);
    auto r = decode_reply(got[3].to_string(), {});
    ASSERT_TRUE(r);
    ASSERT_TRUE(r->ok) << r->message;
    EXPECT_EQ(r->id, size);
    EXPECT_EQ(r->result->as<std::string>(), "text:" + text);
  }
}

TEST_F(Server, PipelinedRequestsAnsweredInAnyOrder) {
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 100; ++i) ids.push_back(cli->send("hold"));
  ASSERT_TRUE(testing::wait_until([&] { return service->held() == 100; }));
  service->release();  // in reverse order
  std::vector<std::uint64_t> answered;
  for (int i = 0; i < 100; ++i) {
    auto r = cli->receive(10s);
    ASSERT_TRUE(r);
    ASSERT_TRUE(r->ok);
    EXPECT_EQ(r->result->via.u64, *r->id);  // each reply is its own request's
    answered.push_back(*r->id);
  }
  EXPECT_EQ(answered.front(), ids.back());
  std::sort(answered.begin(), answered.end());
  EXPECT_EQ(answered, ids);
}

TEST_F(Server, BadInputIsAnsweredAndTheServiceGoesOn) {
  expect_refused({"\xc1"}, wire::error_code::bad_request);  // not msgpack
  expect_refused({packed([](wire::packer& p) { p.pack("x"); })}, wire::error_code::bad_request);  // not a map
  auto no_op = expect_refused({packed([](wire::packer& p) {
                                p.pack_map(1);
                                p.pack("id");
                                p.pack(77u);
                              })},
                              wire::error_code::bad_request);
  EXPECT_EQ(no_op.id, 77u);  // the id is echoed when it could be read
  expect_refused({packed([](wire::packer& p) {
                   p.pack_map(1);
                   p.pack("op");
                   p.pack("echo");
                 })},
                 wire::error_code::bad_request);                            // no id: answered with id nil
  expect_refused({"a", "b"}, wire::error_code::bad_request);                  // several payload frames
  expect_refused({std::string("\xdd\xff\xff\xff\xff", 5)}, wire::error_code::bad_request);  // allocation bomb
  expect_refused({std::string((1u << 20) + 1, '\x90')}, wire::error_code::too_large);       // over 1 MiB
  // Still answered below the hard guard (4 x max_message_bytes, docs/protocol.md).
  expect_refused({std::string(3u << 20, '\x90')}, wire::error_code::too_large);
  EXPECT_GE(srv->stats().refused, 8u);
}

TEST_F(Server, ADroppedRequestIsAnsweredInternal) {
  auto r = cli->call("drop");
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->ok);
  EXPECT_EQ(r->code, wire::error_code::internal);
  expect_echo_works();
}

TEST_F(Server, PastMaxInFlightNewRequestsAreOverloaded) {
  srv.reset();
  start({.max_in_flight = 2});
  cli->send("hold");
  cli->send("hold");
  ASSERT_TRUE(testing::wait_until([&] { return service->held() == 2; }));
  auto over = cli->call("echo");
  ASSERT_TRUE(over);
  EXPECT_EQ(over->code, wire::error_code::overloaded);
  service->release();
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(cli->receive(10s));
  expect_echo_works();
}

// A peer that sends and never reads: its replies fill the socket buffers, then its pipe
// (send_hwm); the rest are dropped and counted, and every other peer is served meanwhile.
TEST_F(Server, RepliesToAPeerThatDoesNotReadAreDroppedAndCountedWhileOthersAreServed) {
  srv.reset();
  start({.send_hwm = 10});
  zmq::context_t ctx(1);
  zmq::socket_t deaf(ctx, zmq::socket_type::dealer);
  deaf.set(zmq::sockopt::linger, 0);
  deaf.set(zmq::sockopt::rcvhwm, 10);
  deaf.set(zmq::sockopt::rcvbuf, 65536);
  deaf.connect(srv->endpoint());
  msgpack::sbuffer big;
  wire::packer p(big);
  p.pack_map(2);
  p.pack("id");
  p.pack(1u);
  p.pack("op");
  p.pack("big");
  // 16 KiB replies: 64 MiB in all, far more than loopback's buffers hold.
  for (int i = 0; i < 4096; ++i) ASSERT_TRUE(deaf.send(zmq::buffer(big.data(), big.size()), zmq::send_flags::none));
  ASSERT_TRUE(testing::wait_until([&] { return srv->stats().dropped > 0; }));
  expect_echo_works();
  const server_stats st = srv->stats();
  EXPECT_LE(st.replied + st.dropped, st.received);
}

TEST_F(Server, EndpointInUseIsAClearError) {
  auto again = server::start({.endpoint = srv->endpoint()}, [](incoming) {});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.code(), errc::invalid_argument);
  EXPECT_NE(again.error().to_string().find(srv->endpoint()), std::string::npos);
}

TEST_F(Server, EventsReachSubscribersByTopicPrefix) {
  zmq::context_t ctx;
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::linger, 0);
  sub.set(zmq::sockopt::subscribe, "cache.");
  sub.connect(srv->events_endpoint());
  // A subscription takes a moment to reach the PUB: publish until one arrives.
  zmq::message_t topic;
  bool got = testing::wait_until([&] {
    msgpack::sbuffer other;
    wire::encode_event(other, 1, 0, [](wire::packer&) {});
    srv->publish("registry.registered", std::move(other));  // filtered out
    msgpack::sbuffer ev;
    wire::encode_event(ev, 2, 1, [](wire::packer& p) {
      p.pack("key");
      p.pack("k");
    });
    srv->publish("cache.cleared", std::move(ev));
    return sub.recv(topic, zmq::recv_flags::dontwait).has_value();
  });
  ASSERT_TRUE(got);
  EXPECT_EQ(topic.to_string(), "cache.cleared");
  zmq::message_t body;
  ASSERT_TRUE(sub.recv(body));
  auto h = msgpack::unpack(static_cast<const char*>(body.data()), body.size());
  EXPECT_EQ(wire::find(h.get(), "ts_ms")->via.i64 + 0, 2);
  EXPECT_EQ(wire::find(h.get(), "key")->as<std::string>(), "k");
}

TEST(Client, WithNoServerACallAnswersUnavailableInsteadOfHanging) {
  // A free port nobody listens on: bind one, then let it go.
  std::string endpoint;
  {
    auto s = server::start({}, [](incoming) {});
    ASSERT_TRUE(s);
    endpoint = (*s)->endpoint();
  }
  auto c = client::connect(endpoint, {.send_timeout = std::chrono::milliseconds(100)});
  ASSERT_TRUE(c);
  auto r = (*c)->call("echo", std::chrono::milliseconds(100));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), errc::unavailable);
}

TEST_F(Server, AnIdempotentCallIsRetriedAcrossAServerRestart) {
  const std::string endpoint = srv->endpoint();
  auto c = client::connect(endpoint, {.send_timeout = std::chrono::milliseconds(200)});
  ASSERT_TRUE(c);
  canopy::result<reply> answer = error(errc::timeout);
  std::thread caller([&] {
    answer = (*c)->call_idempotent("hold", 0, [](wire::packer&) {}, std::chrono::milliseconds(200), 100);
  });
  // The first server takes the request and never answers it; then it goes away and a new
  // one on the same endpoint answers "hold" at once.
  ASSERT_TRUE(testing::wait_until([&] { return service->held() == 1; }));
  srv.reset();
  service = std::make_shared<echo_service>();
  auto again = server::start({.endpoint = endpoint}, [](incoming r) {
    const std::uint64_t id = r.id();
    r.reply_ok([&](wire::packer& p) { p.pack(id); });
  });
  ASSERT_TRUE(again) << again.error().to_string();
  caller.join();
  ASSERT_TRUE(answer) << answer.error().to_string();
  EXPECT_TRUE(answer->ok);
  EXPECT_EQ(answer->result->via.u64, *answer->id);
}

TEST_F(Server, TheSubscriberFiltersByPrefixAndSkipsMalformedEvents) {
  auto sub = subscriber::connect(srv->events_endpoint(), {"cache.", "registry.registered"});
  ASSERT_TRUE(sub);
  std::optional<event> got;
  // A subscription takes a moment to reach the PUB: publish until one arrives.
  ASSERT_TRUE(testing::wait_until([&] {
    msgpack::sbuffer filtered;
    wire::encode_event(filtered, 1, 0, [](wire::packer&) {});
    srv->publish("session_manager.opened", std::move(filtered));
    msgpack::sbuffer ev;
    wire::encode_event(ev, 5, 1, [](wire::packer& p) {
      p.pack("removed");
      p.pack(3u);
    });
    srv->publish("cache.cleared", std::move(ev));
    got = (*sub)->receive(std::chrono::milliseconds(20));
    return got.has_value();
  }));
  EXPECT_EQ(got->topic, "cache.cleared");
  EXPECT_EQ(wire::find(*got->body, "removed")->via.u64, 3u);
  EXPECT_EQ(wire::find(*got->body, "ts_ms")->via.i64 + 0, 5);
  // A body that is not a map is skipped and counted; the next good event still arrives.
  msgpack::sbuffer bad;
  wire::packer(bad).pack("not a map");
  srv->publish("cache.bad", std::move(bad));
  msgpack::sbuffer good;
  wire::encode_event(good, 6, 0, [](wire::packer&) {});
  srv->publish("registry.registered", std::move(good));
  std::optional<event> next;
  do {  // more cache.cleared may still be on the way from the loop above
    next = (*sub)->receive(10s);
    ASSERT_TRUE(next);
  } while (next->topic == "cache.cleared");
  EXPECT_EQ(next->topic, "registry.registered");
  EXPECT_EQ((*sub)->malformed(), 1u);
}

// ---- the server polling from a runtime's idle scheduler threads (server_options.runtime) ----

// Answers echo {n} from a process; "spin" keeps its scheduler thread busy until released.
class echo_process final : public process {
 public:
  explicit echo_process(std::atomic<bool>* hold) : hold_(hold) {}

 protected:
  void receive(message& m) override {
    auto* req = m.get<incoming>();
    if (req == nullptr) return;
    if (req->op() == "spin") {
      req->reply_ok([](wire::packer& p) { p.pack_map(0); });
      while (hold_->load()) std::this_thread::yield();  // a CPU-bound handler
      return;
    }
    std::uint64_t n = 0;
    if (const auto* v = wire::find(req->args(), "n"); v && v->type == msgpack::type::POSITIVE_INTEGER) n = v->via.u64;
    req->reply_ok([&](wire::packer& p) {
      p.pack_map(1);
      p.pack("n");
      p.pack(n);
    });
  }

 private:
  std::atomic<bool>* hold_;
};

class ScheduledServer : public ::testing::Test {
 protected:
  void SetUp() override {
    for (auto& h : handlers) h = rt.spawn<echo_process>(&hold);
    srv = start_server();
    auto c = client::connect(srv->endpoint());
    ASSERT_TRUE(c);
    cli = std::move(*c);
  }
  void TearDown() override { hold = false; }
  std::unique_ptr<server> start_server() {
    auto s = server::start({.runtime = &rt}, [this](incoming r) {
      const std::uint64_t id = r.id();
      rt.send(handlers[r.op() == "spin" ? id % 2 : 2 + id % 2], std::move(r));
    });
    EXPECT_TRUE(s) << s.error().to_string();
    return s ? std::move(*s) : nullptr;
  }
  std::uint64_t echo(client& c, std::uint64_t n) {
    auto r = c.call("echo", 1, [&](wire::packer& p) {
      p.pack("n");
      p.pack(n);
    }, 10s);
    EXPECT_TRUE(r && r->ok);
    return r && r->ok ? wire::find(*r->result, "n")->via.u64 : 0;
  }

  std::atomic<bool> hold{true};
  runtime rt{{.threads = 2}};
  std::array<pid, 4> handlers;
  std::unique_ptr<server> srv;
  std::unique_ptr<client> cli;
};

TEST_F(ScheduledServer, PipelinedRequestsAreAllAnswered) {
  constexpr int n = 2000;
  for (int i = 0; i < n; ++i) cli->send("echo");
  for (int i = 0; i < n; ++i) ASSERT_TRUE(cli->receive(10s)) << i;
  EXPECT_EQ(echo(*cli, 7), 7u);
  // Counted by the sending thread after the send: the client may hold the last reply first.
  EXPECT_TRUE(testing::wait_until([&] { return srv->stats().replied == static_cast<std::uint64_t>(n) + 1; }))
      << srv->stats().replied;
}

// A handler that answers, then keeps its scheduler thread busy: that thread never gets
// back to its poll to send the reply and the other one sleeps, so the server's own thread
// takes over and the reply still goes out.
TEST_F(ScheduledServer, AReplyGoesOutWhileTheThreadThatMadeItStaysBusy) {
  cli->send("spin");
  ASSERT_TRUE(cli->receive(10s));
  hold = false;
  EXPECT_EQ(echo(*cli, 4), 4u);
}

TEST_F(ScheduledServer, ASecondServerOnTheSameRuntimePollsOnItsOwnThread) {
  auto second = start_server();  // the runtime has its idle poller already
  ASSERT_TRUE(second);
  auto c = client::connect(second->endpoint());
  ASSERT_TRUE(c);
  EXPECT_EQ(echo(**c, 5), 5u);
  EXPECT_EQ(echo(*cli, 6), 6u);
  second.reset();
  EXPECT_EQ(echo(*cli, 8), 8u);
}

TEST_F(ScheduledServer, StopsAndStartsAgainWhileSchedulerThreadsPoll) {
  for (int i = 0; i < 20; ++i) {
    cli.reset();
    srv.reset();  // a scheduler thread is likely inside its poll: stop waits it out
    srv = start_server();
    ASSERT_TRUE(srv);
    auto c = client::connect(srv->endpoint());
    ASSERT_TRUE(c);
    cli = std::move(*c);
    EXPECT_EQ(echo(*cli, static_cast<std::uint64_t>(i)), static_cast<std::uint64_t>(i));
  }
}

}  // namespace
}  // namespace canopy::msg
