// cache_client against a live cache app: every call, values byte-exact both ways, errors
// with their protocol codes, and a client with no cache answering unavailable.
#include "canopy/cache_client/client.hpp"
#include "canopy/cache_client/process_client.hpp"

#include <gtest/gtest.h>

#include "canopy/app/instance.hpp"
#include "canopy/cache_app/app.hpp"
#include "canopy/core/runtime.hpp"
#include "canopy/otp/gen_server.hpp"
#include "canopy/testing/wait.hpp"

#include <mutex>

namespace canopy::cache_app {
namespace {

using namespace std::chrono_literals;

wire::value text(const std::string& s) { return wire::value::of_str(s); }

TEST(CacheClient, EveryCallAgainstALiveCache) {
  app the_app;
  canopy::app::settings s;
  s.endpoint = "tcp://127.0.0.1:0";
  s.events_endpoint = "tcp://127.0.0.1:0";
  s.registry = "none";
  auto running = canopy::app::instance::start(the_app, s);
  ASSERT_TRUE(running) << running.error().to_string();
  auto c = cache_client::client::connect((*running)->endpoint());
  ASSERT_TRUE(c);
  cache_client::client& cache = **c;

  ASSERT_TRUE(cache.put("a", text("alpha"), 60s));
  auto a = cache.get("a");
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->has_value());
  EXPECT_EQ((*a)->value, text("alpha"));
  EXPECT_LE((*a)->ttl_left, 60s);
  auto miss = cache.get("zz");
  ASSERT_TRUE(miss);
  EXPECT_FALSE(miss->has_value());

  EXPECT_EQ(*cache.incr("n"), 1);
  EXPECT_EQ(*cache.incr("n", 41), 42);
  auto not_int = cache.incr("a");
  ASSERT_FALSE(not_int);
  EXPECT_EQ(not_int.code(), wire::error_code::invalid_args);

  ASSERT_TRUE(cache.mput({{"m:1", text("one")}, {"m:2", wire::value::of_int(2)}}));
  auto got = cache.mget({"m:1", "m:2", "m:3"});
  ASSERT_TRUE(got);
  EXPECT_EQ(got->size(), 2u);
  EXPECT_EQ(got->at("m:2"), wire::value::of_int(2));
  EXPECT_EQ(*cache.keys("m:"), (std::vector<std::string>{"m:1", "m:2"}));
  EXPECT_EQ(*cache.keys("m:", 10, "m:1"), (std::vector<std::string>{"m:2"}));
  EXPECT_TRUE(*cache.expire("m:1", 60s));
  EXPECT_FALSE(*cache.expire("nope", 60s));
  EXPECT_TRUE(*cache.erase("m:1"));
  EXPECT_FALSE(*cache.erase("m:1"));
  auto st = cache.stats();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->items, 3u);
  EXPECT_EQ(*cache.clear(), 3u);

  const std::string endpoint = (*running)->endpoint();
  (*running)->stop();
  auto gone = cache_client::client::connect(endpoint, {.send_timeout = 100ms});
  ASSERT_TRUE(gone);
  auto down = (*gone)->get("a");
  ASSERT_FALSE(down);
  EXPECT_EQ(down.code(), wire::error_code::unavailable);
}

// Runs a script of cache calls from inside a process and records what came back.
class script_runner final : public gen_server {
 public:
  struct run {};
  struct lines {
    std::mutex mu;
    std::vector<std::string> all;
    void add(std::string s) {
      std::lock_guard lk(mu);
      all.push_back(std::move(s));
    }
    std::vector<std::string> get() {
      std::lock_guard lk(mu);
      return all;
    }
  };
  script_runner(msg::remote* r, std::shared_ptr<lines> out) : cache_(*r), out_(std::move(out)) {}

 protected:
  result handle_cast(message& m) override {
    if (m.get<run>()) go();
    return noreply();
  }

 private:
  async go() {
    auto put = co_await cache_.put("s:1", text("one"), 60s);
    out_->add(put ? "put ok" : "put " + put.error().to_string());
    auto got = co_await cache_.get("s:1");
    out_->add(got && *got ? "get " + std::string((**got).value.bytes().substr(1)) : "get failed");
    auto miss = co_await cache_.get("s:none");
    out_->add(miss && !*miss ? "miss" : "miss failed");
    auto keys = co_await cache_.keys("s:");
    out_->add(keys ? "keys " + std::to_string(keys->size()) : "keys failed");
    std::vector<std::string> wanted{"s:1", "s:2"};
    auto many = co_await cache_.mget(std::move(wanted));
    out_->add(many ? "mget " + std::to_string(many->size()) : "mget failed");
    auto gone = co_await cache_.erase("s:1");
    out_->add(gone && *gone ? "erased" : "erase failed");
  }

  cache_client::process_client cache_;
  std::shared_ptr<lines> out_;
};

TEST(CacheProcessClient, AProcessUsesTheCacheWithoutBlocking) {
  app the_app;
  canopy::app::settings s;
  s.endpoint = "tcp://127.0.0.1:0";
  s.events_endpoint = "tcp://127.0.0.1:0";
  s.registry = "none";
  auto running = canopy::app::instance::start(the_app, s);
  ASSERT_TRUE(running) << running.error().to_string();

  runtime rt({.threads = 1});
  auto remote = msg::remote::start(rt, (*running)->endpoint(), {.send_timeout = 200ms});
  ASSERT_TRUE(remote);
  auto out = std::make_shared<script_runner::lines>();
  auto p = gen_server::start<script_runner>(rt, {}, remote->get(), out);
  ASSERT_TRUE(p);
  rt.cast(*p, script_runner::run{});
  ASSERT_TRUE(testing::wait_until([&] { return out->get().size() == 6; }));
  EXPECT_EQ(out->get(), (std::vector<std::string>{"put ok", "get one", "miss", "keys 1", "mget 1", "erased"}));

  // The cache goes away. A call sent before the remote's socket has seen the
  // disconnect is lost with the server and answers timeout; once it has, calls
  // answer unavailable at once. Either way each call answers an error, never blocks.
  (*running)->stop();
  auto put_lines = [&] {
    std::vector<std::string> puts;
    auto all = out->get();
    for (std::size_t i = 6; i < all.size(); i += 6) puts.push_back(all[i]);
    return puts;
  };
  std::size_t runs = 0;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        auto all = out->get();
        if (all.size() < 6 * (runs + 1)) return false;  // the last run is still going
        auto puts = put_lines();
        if (!puts.empty() && puts.back().find("unavailable") != std::string::npos) return true;
        ++runs;
        rt.cast(*p, script_runner::run{});
        return false;
      },
      30s));
  for (auto& line : put_lines()) {
    EXPECT_TRUE(line.find("unavailable") != std::string::npos || line.find("timeout") != std::string::npos) << line;
  }
  remote->reset();
}

}  // namespace
}  // namespace canopy::cache_app
