#pragma once
// cache_client::process_client: the cache's ops from inside a process, over a msg::remote —
// each op is a task the process co_awaits, parked, without holding a scheduler thread (the
// session manager writes sessions through to the cache with it).
// Thread-safety: use from inside processes of the remote's runtime; the remote outlives it.
//
//   canopy::cache_client::process_client cache(*remote);
//   auto saved = co_await cache.put("session:alice", value, 30min);
//   auto got = co_await cache.get("session:alice");    // outcome<optional<item>>
//
// Transport failures come back as the protocol's codes (unavailable, timeout), like the
// cache's own errors.

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "canopy/cache_client/client.hpp"
#include "canopy/core/async.hpp"
#include "canopy/msg/remote.hpp"

namespace canopy::cache_client {

class process_client {
 public:
  explicit process_client(msg::remote& r, std::chrono::milliseconds timeout = std::chrono::milliseconds(2000))
      : remote_(r), timeout_(timeout) {}

  task<msg::outcome<bool>> put(std::string key, wire::value value,
                               std::optional<std::chrono::milliseconds> ttl = std::nullopt);
  task<msg::outcome<std::optional<item>>> get(std::string key);
  task<msg::outcome<bool>> erase(std::string key);
  task<msg::outcome<std::map<std::string, wire::value>>> mget(std::vector<std::string> keys);
  // Sorted; `after` (not empty): only keys after it, for paging.
  task<msg::outcome<std::vector<std::string>>> keys(std::string prefix, std::uint32_t limit = 1000,
                                                    std::string after = "");

 private:
  msg::remote& remote_;
  std::chrono::milliseconds timeout_;
};

}  // namespace canopy::cache_client
