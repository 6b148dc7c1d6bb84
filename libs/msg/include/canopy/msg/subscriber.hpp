#pragma once
// msg::subscriber: a SUB socket for an app's events (docs/protocol.md "Events"): frames
// [topic, msgpack map with ts_ms], filtered by topic prefix. Thread-safety: one thread at a
// time (a socket).
//
//   auto sub = canopy::msg::subscriber::connect("tcp://127.0.0.1:7411", {"cache."});
//   while (auto ev = (*sub)->receive(1s)) log(ev->topic, *ev->body);
//
// Events are bounded-decoded like requests; a malformed one is skipped (and counted).

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "canopy/core/result.hpp"
#include "canopy/msg/curve.hpp"
#include "canopy/wire/codec.hpp"

namespace canopy::msg {

struct event {
  std::string topic;
  const msgpack::object* body = nullptr;  // a map with at least ts_ms
  std::shared_ptr<msgpack::object_handle> handle;  // owns what body points to
};

class subscriber {
 public:
  static canopy::result<std::unique_ptr<subscriber>> connect(const std::string& endpoint,
                                                             const std::vector<std::string>& prefixes,
                                                             wire::decode_limits limits = {},
                                                             const curve_client_keys& curve = {});
  ~subscriber();
  subscriber(const subscriber&) = delete;
  subscriber& operator=(const subscriber&) = delete;

  void subscribe(const std::string& prefix);
  void unsubscribe(const std::string& prefix);
  // The next well-formed event, or nothing within `timeout`.
  std::optional<event> receive(std::chrono::milliseconds timeout);
  // Events skipped because they were not [topic, one bounded msgpack map].
  [[nodiscard]] std::uint64_t malformed() const noexcept { return malformed_; }

 private:
  struct impl;
  explicit subscriber(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
  std::uint64_t malformed_ = 0;
};

}  // namespace canopy::msg
