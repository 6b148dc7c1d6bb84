// Seed: CacheServer — a GenServer that owns a named public table; writes go through the
// server, readers go to the table directly without calling it.
//
//   def init(_), do: {:ok, :ets.new(:cache_table, [:named_table, :public, read_concurrency: true])}
//   def put(key, value), do: GenServer.cast(__MODULE__, {:put, key, value})
//   def get(key) do
//     case :ets.lookup(:cache_table, key) do
//       [{^key, value}] -> {:ok, value}
//       [] -> :error
//     end
//   end
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "canopy/otp/gen_server.hpp"
#include "canopy/otp/supervisor.hpp"
#include "canopy/otp/table.hpp"
#include "canopy/testing/wait.hpp"
#include "check.hpp"

using cache_table = canopy::table<std::string, std::string>;

struct put {
  std::string key;
  std::string value;
};
struct flush {};

class cache_server final : public canopy::gen_server {
 protected:
  result init() override {
    auto made = cache_table::create({.access = canopy::table_access::everyone, .name = "cache_table"});
    if (!made) return stop(canopy::exit_reason::other(made.error().to_string()));
    table_ = *made;
    return ok();
  }
  result handle_cast(canopy::message& m) override {
    if (auto* p = m.get<put>()) table_.insert(p->key, p->value);
    return noreply();
  }
  result handle_call(canopy::message& m, const canopy::reply_address& from) override {
    if (m.get<flush>()) return reply(true);
    return gen_server::handle_call(m, from);
  }

 private:
  cache_table table_;
};

// CacheServer.get: straight to the table, no message to the server.
std::optional<std::string> get(canopy::runtime& rt, const std::string& key) {
  auto t = cache_table::whereis(rt, "cache_table");
  if (!t) return std::nullopt;
  return t->lookup(key);
}

int main() {
  canopy::runtime rt;
  auto sup = canopy::supervisor::start(
      rt, {}, {canopy::child_spec("CacheServer", [] {
        return canopy::child_start::ready(canopy::gen_server::start_link<cache_server>({.name = "CacheServer"}));
      })});
  check(sup.has_value(), "CacheServer started under a supervisor; it created :cache_table");
  canopy::gen_server::cast(rt, "CacheServer", put{"user:1", "alice"});
  canopy::gen_server::cast(rt, "CacheServer", put{"user:2", "bob"});
  check(canopy::gen_server::call<bool>(rt, "CacheServer", flush{}).has_value(), "two puts (casts) handled");

  // Readers on other threads read the table directly, in parallel, without the server.
  std::vector<std::thread> readers;
  std::atomic<int> hits{0};
  for (int i = 0; i < 4; ++i)
    readers.emplace_back([&] {
      for (int n = 0; n < 1000; ++n)
        if (get(rt, "user:1") == "alice" && get(rt, "user:2") == "bob") ++hits;
    });
  for (auto& r : readers) r.join();
  check(hits == 4000, "4 reader threads x 1000 direct lookups all hit");
  check(!get(rt, "user:3"), "a missing key: :error");

  // The table belongs to the server: when it crashes the table goes, and the restarted
  // server starts with a fresh one.
  const canopy::pid first = rt.whereis("CacheServer");
  auto old_table = cache_table::whereis(rt, "cache_table");
  rt.exit(first, canopy::exit_reason::kill());
  check(canopy::testing::wait_until([&] {
          const canopy::pid now = rt.whereis("CacheServer");
          return now && now != first && cache_table::whereis(rt, "cache_table").has_value();
        }),
        "the supervisor restarted CacheServer, which made a new table");
  check(!old_table->alive(), "the old table died with its owner");
  check(!get(rt, "user:1"), "the new table starts empty");
  return 0;
}
