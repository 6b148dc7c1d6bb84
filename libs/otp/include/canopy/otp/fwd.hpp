#pragma once
// Forward declarations of canopy::otp's public types.

namespace canopy {
class gen_server;
class gen_server_result;
struct gen_server_options;
struct timeout_message;
}  // namespace canopy
