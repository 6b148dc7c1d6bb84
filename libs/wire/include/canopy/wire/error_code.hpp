#pragma once
// The error codes of docs/protocol.md ("Reply"), as an enum a client can switch on.
// Thread-safety: values and pure functions.

#include <cstdint>
#include <optional>
#include <string_view>

namespace canopy::wire {

enum class error_code : std::uint8_t {
  bad_request,     // not msgpack, not a map, or no well-typed id / op
  unknown_op,      // no such operation on this app
  invalid_args,    // an argument is missing or has the wrong type or range
  not_found,       // the thing named does not exist
  already_exists,  // a unique name or key is taken
  overloaded,      // a queue or limit is full; retry later
  timeout,         // the operation did not finish in time
  too_large,       // the payload or a value exceeds a configured limit
  unavailable,     // a dependency (another app) cannot be reached
  unauthorized,    // the peer may not do this
  internal,        // a handler crashed; its supervisor restarted it
};

// The code's name on the wire ("bad_request", ...).
[[nodiscard]] std::string_view to_string(error_code code) noexcept;
// The code named `name`, if it is one of the protocol's.
[[nodiscard]] std::optional<error_code> error_code_from_string(std::string_view name) noexcept;

}  // namespace canopy::wire
