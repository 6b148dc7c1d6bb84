#pragma once
// Helpers for an app's request handlers: read arguments as values or fail the request with
// invalid_args, without a ladder of checks. Thread-safety: none needed (per request).
//
//   canopy::app::answer(req, [&] {
//     auto name = canopy::app::take(canopy::wire::string_arg(req.args(), "name"));
//     auto ttl = canopy::app::take(canopy::wire::optional_uint_arg(req.args(), "ttl_ms"));
//     ...
//     req.reply_ok(...);
//   });

#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

#include "canopy/msg/server.hpp"
#include "canopy/wire/codec.hpp"

namespace canopy::app {

// Thrown by take() and by handlers; answer() turns it into an invalid_args reply.
struct invalid_args : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class T>
T take(wire::arg<T> a) {
  if (auto* e = std::get_if<wire::arg_error>(&a)) throw invalid_args(e->message);
  return std::get<T>(std::move(a));
}

// Runs `fn`; an invalid_args escaping it answers the request with its message. Any other
// exception passes on (a crash of the handling process: the request answers internal).
template <class F>
void answer(msg::incoming& req, F&& fn) {
  try {
    fn();
  } catch (const invalid_args& e) {
    req.reply_error(wire::error_code::invalid_args, e.what());
  }
}

}  // namespace canopy::app
