#pragma once
// registry_client::client: the registry app's ops (docs/protocol.md "registry") as C++
// calls, for tools, tests and programs on plain threads. Inside a process, send the same
// ops through a msg::remote (the app kit's self-registration does).
// Thread-safety: one thread at a time (it holds a msg::client).
//
//   auto reg = canopy::registry_client::client::connect("tcp://127.0.0.1:7400");
//   auto lease = (*reg)->register_name("cache", "tcp://127.0.0.1:7410", {.ttl = 10s});
//   auto found = (*reg)->lookup("cache");        // found->endpoint, found->ttl_left
//   (*reg)->renew(lease->lease);

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "canopy/core/result.hpp"
#include "canopy/msg/client.hpp"
#include "canopy/msg/outcome.hpp"
#include "canopy/wire/value.hpp"

namespace canopy::registry_client {

struct lease_grant {
  std::string lease;
  std::chrono::milliseconds ttl;
};

struct entry {
  std::string name;
  std::string endpoint;
  wire::value meta;                    // a map ({} when none was given)
  std::chrono::milliseconds ttl_left;  // lookup only
};

struct member {
  std::string member;
  std::string endpoint;
  wire::value meta;
};

struct hold_options {
  std::optional<std::chrono::milliseconds> ttl;  // a new lease's (default: the registry's)
  std::optional<std::string> lease;              // an existing lease instead of a new one
  std::optional<wire::value> meta;               // a map
};

class client {
 public:
  static canopy::result<std::unique_ptr<client>> connect(const std::string& endpoint, msg::client_options options = {});

  msg::outcome<lease_grant> register_name(const std::string& name, const std::string& endpoint, hold_options o = {});
  msg::outcome<std::chrono::milliseconds> renew(const std::string& lease);
  msg::outcome<bool> unregister(const std::string& name, const std::string& lease);
  msg::outcome<entry> lookup(const std::string& name);
  msg::outcome<std::vector<entry>> list(const std::string& prefix = "");
  msg::outcome<lease_grant> join(const std::string& group, const std::string& member, const std::string& endpoint = "",
                                 hold_options o = {});
  msg::outcome<bool> leave(const std::string& group, const std::string& member);
  msg::outcome<std::vector<member>> members(const std::string& group);

  // Each call waits at most this long (default 5 s): then timeout.
  void set_timeout(std::chrono::milliseconds t) noexcept { timeout_ = t; }
  [[nodiscard]] msg::client& raw() noexcept { return *client_; }

 private:
  explicit client(std::unique_ptr<msg::client> c) : client_(std::move(c)) {}
  template <class F>
  msg::outcome<msg::reply> call(std::string_view op, std::uint32_t pairs, F&& write);

  std::unique_ptr<msg::client> client_;
  std::chrono::milliseconds timeout_{5000};
};

}  // namespace canopy::registry_client
