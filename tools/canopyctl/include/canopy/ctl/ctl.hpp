#pragma once
// canopyctl: every op of every app from the command line (docs/protocol.md), found through
// the registry. The program is a thin main over run(), which tests call in-process.
// Thread-safety: run() uses its own sockets; call it from one thread at a time.
//
//   canopyctl cache put k v --ttl 5s
//   canopyctl session_manager open alice --idle 30m --data '{"lang": "en"}'
//   canopyctl task_runner submit sleep ms=100 --await
//   canopyctl registry list
//   canopyctl --json cache get k
//   canopyctl watch cache.          # events by topic prefix, from every app
//   canopyctl tree                  # the supervision trees of every running app
//   canopyctl call cache stats      # any op by name, args as key=value
//
// Output: the result, indented for people, or JSON with --json (one line per reply or
// event). Exit status (exit_code_of): 0 ok; 2 a usage error; 3 the app could not be
// reached; 10 + the protocol's error code otherwise (see exit_code_of).

#include <ostream>
#include <string>
#include <vector>

#include "canopy/wire/error_code.hpp"

namespace canopy::ctl {

// 10 bad_request, 11 unknown_op, 12 invalid_args, 13 not_found, 14 already_exists,
// 15 overloaded, 16 timeout, 17 too_large, 18 unavailable, 19 unauthorized, 20 internal.
[[nodiscard]] int exit_code_of(wire::error_code code) noexcept;
inline constexpr int exit_usage = 2;
inline constexpr int exit_unreachable = 3;

// args: argv without the program name. `watch` runs until --count events or --for passed
// (or forever).
int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace canopy::ctl
