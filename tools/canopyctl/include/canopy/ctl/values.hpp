#pragma once
// canopyctl's values: what a user types on the command line becomes msgpack, and what an
// app answers becomes text — indented for people, JSON for scripts.
// Thread-safety: functions of their arguments only.
//
//   pack_literal(p, "42");            // an integer;  "4.5" a float; true / false / null
//   pack_literal(p, "hello");         // a string (anything that is not another literal)
//   pack_literal(p, R"({"a": [1]})"); // JSON objects and arrays become maps and arrays
//   std::string s = to_json(obj);     // bin as {"$bin": "<base64>"}, ext as {"$ext": n, "data": ...}
//   std::string t = to_text(obj);     // "key: value" lines, nested ones indented

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "canopy/core/result.hpp"
#include "canopy/wire/codec.hpp"

namespace canopy::ctl {

// A command-line word as one msgpack value: JSON (objects, arrays, numbers, true, false,
// null, "strings") when it parses as JSON, else the word as a string.
void pack_literal(wire::packer& p, std::string_view word);
// Strictly JSON (for --data, --meta): errc::invalid_argument with where it stopped.
canopy::result<void> pack_json(wire::packer& p, std::string_view json);

// "250ms", "5s", "2m", "1h", "1d", or a number of ms. errc::invalid_argument.
canopy::result<std::chrono::milliseconds> parse_duration(std::string_view text);

[[nodiscard]] std::string to_json(const msgpack::object& o);
[[nodiscard]] std::string to_text(const msgpack::object& o);

}  // namespace canopy::ctl
