#pragma once
// cache_client::client: the cache app's ops (docs/protocol.md "cache") as C++ calls, for
// tools, tests and programs on plain threads. Inside a process, send the same ops through
// a msg::remote. Values are wire::values, kept byte-exact both ways.
// Thread-safety: one thread at a time (it holds a msg::client).
//
//   auto cache = canopy::cache_client::client::connect("tcp://127.0.0.1:7410");
//   (*cache)->put("user:1", canopy::wire::value::of_int(42), 30s);
//   auto got = (*cache)->get("user:1");          // got->value is the value, if found
//   auto n = (*cache)->incr("hits");

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "canopy/core/result.hpp"
#include "canopy/msg/client.hpp"
#include "canopy/msg/outcome.hpp"
#include "canopy/wire/value.hpp"

namespace canopy::cache_client {

struct item {
  wire::value value;
  std::optional<std::chrono::milliseconds> ttl_left;  // nothing: never expires
};

struct stats {
  std::uint64_t items = 0, bytes = 0, max_bytes = 0, hits = 0, misses = 0, evictions = 0, expired = 0;
};

class client {
 public:
  static canopy::result<std::unique_ptr<client>> connect(const std::string& endpoint, msg::client_options options = {});

  msg::outcome<bool> put(const std::string& key, const wire::value& value,
                         std::optional<std::chrono::milliseconds> ttl = std::nullopt);
  // Nothing inside when the key is not there (a miss is not an error).
  msg::outcome<std::optional<item>> get(const std::string& key);
  msg::outcome<bool> erase(const std::string& key);
  msg::outcome<std::int64_t> incr(const std::string& key, std::int64_t by = 1,
                                  std::optional<std::chrono::milliseconds> ttl = std::nullopt);
  msg::outcome<bool> mput(const std::map<std::string, wire::value>& items,
                          std::optional<std::chrono::milliseconds> ttl = std::nullopt);
  msg::outcome<std::map<std::string, wire::value>> mget(const std::vector<std::string>& keys);
  msg::outcome<bool> expire(const std::string& key, std::chrono::milliseconds ttl);
  // Sorted; `after` (not empty): only keys after it, for paging.
  msg::outcome<std::vector<std::string>> keys(const std::string& prefix = "", std::uint32_t limit = 1000,
                                              const std::string& after = "");
  msg::outcome<std::uint64_t> clear();
  msg::outcome<cache_client::stats> stats();

  void set_timeout(std::chrono::milliseconds t) noexcept { timeout_ = t; }
  [[nodiscard]] msg::client& raw() noexcept { return *client_; }

 private:
  explicit client(std::unique_ptr<msg::client> c) : client_(std::move(c)) {}
  template <class F>
  msg::outcome<msg::reply> call(std::string_view op, std::uint32_t pairs, F&& write);

  std::unique_ptr<msg::client> client_;
  std::chrono::milliseconds timeout_{5000};
};

}  // namespace canopy::cache_client
