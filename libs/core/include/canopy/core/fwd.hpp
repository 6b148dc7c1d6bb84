#pragma once
// Forward declarations of canopy::core's public types.

namespace canopy {
class error;
enum class errc : unsigned char;
template <class T> class result;
class exit_reason;
class pid;
class message;
class reply_address;
class monitor_ref;
class timer_ref;
class clock;
class process;
class runtime;
struct runtime_config;
struct down_message;
struct exit_message;
}  // namespace canopy
