#pragma once
// canopy::wire: the messages of docs/protocol.md in msgpack — requests decoded from
// untrusted bytes, replies and events encoded. No sockets; depends on msgpack-cxx only.
// Thread-safety: decode_request and the encoders are reentrant; a decoded request is a
// value owned by one thread at a time (released on any).
//
//   wire::decode_limits limits;                        // from the app's config
//   auto d = wire::decode_request(frame, limits);
//   if (!d.ok()) { wire::encode_error(out, d.failure().id, d.failure().code, d.failure().message); ... }
//   const wire::request& r = d.value();                // r.id, r.op, r.args (a msgpack map)
//   wire::encode_ok(out, r.id, [&](wire::packer& p) { p.pack_map(1); p.pack("pong"); p.pack(true); });
//
// Decoding is bounded before anything is allocated: a first pass walks the bytes without
// building anything and refuses a frame larger than max_message_bytes (too_large), nesting
// deeper than max_depth, strings / binaries / ext larger than their limits or containers
// longer than theirs (too_large), more declared elements than the frame has bytes (each
// element takes at least one: `dd ff ff ff ff` declares 4 billion in 5 bytes: bad_request),
// malformed or truncated msgpack and trailing bytes after the value (bad_request). Only
// then is the value built, in one zone, strings and binaries pointing into the frame. The
// request's top-level map is read in place: no std::map per message. Values keep their
// msgpack types exactly (bin stays bin, str stays str).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <msgpack.hpp>

#include "canopy/wire/error_code.hpp"

namespace canopy::wire {

using packer = msgpack::packer<msgpack::sbuffer>;

struct decode_limits {
  std::size_t max_message_bytes = std::size_t{1} << 20;  // docs/protocol.md: 1 MiB
  std::size_t max_depth = 32;
  std::size_t max_array = 1u << 20;  // elements
  std::size_t max_map = 1u << 20;    // pairs
  std::size_t max_str = std::size_t{1} << 20;
  std::size_t max_bin = std::size_t{1} << 20;
  std::size_t max_ext = std::size_t{1} << 20;
};

namespace detail {
// What a request owns: the frame its strings point into and the zone of its args
// (codec.cpp). Released rather than deleted: small ones go back to a pool.
class request_storage;
struct release_storage {
  void operator()(request_storage* s) const noexcept;
};
}  // namespace detail

// A decoded request. `args` is a map (an empty one when the request had none).
class request {
 public:
  std::uint64_t id = 0;
  std::string_view op;  // points into the frame
  const msgpack::object* args = nullptr;
  std::optional<std::uint64_t> deadline_ms;

  request() = default;
  request(request&&) noexcept = default;
  request& operator=(request&&) noexcept = default;

 private:
  friend struct decode_access;
  std::unique_ptr<detail::request_storage, detail::release_storage> held_;
};

// Why a frame was refused, and the id to answer with if one could be read.
struct decode_failure {
  error_code code;
  std::string message;
  std::optional<std::uint64_t> id;
};

class decoded {
 public:
  explicit decoded(request r) : v_(std::move(r)) {}
  explicit decoded(decode_failure f) : v_(std::move(f)) {}
  [[nodiscard]] bool ok() const noexcept { return v_.index() == 0; }
  [[nodiscard]] request& value() { return std::get<0>(v_); }
  [[nodiscard]] const decode_failure& failure() const { return std::get<1>(v_); }

 private:
  std::variant<request, decode_failure> v_;
};

// Checks `bytes` as one bounded msgpack value (the first pass above); an empty optional if
// it is acceptable.
std::optional<decode_failure> check_value(std::string_view bytes, const decode_limits& limits);

// Decodes one request frame. The request's strings point into its own copy of the bytes,
// which lives with the zone its args are unpacked into; for frames up to 1 KiB (most
// requests) both come from a per-thread pool and go back to it when the request is
// released, so a steady flow of requests allocates nothing (a malloc and a free of each
// cost a serving thread 40 ns of its 270 per request, docs/messaging.md). Nothing is
// allocated for a refused frame.
decoded decode_request(std::string_view frame, const decode_limits& limits);
// The same, taking the frame over (a large one is kept as it is, not copied).
decoded decode_request(std::string frame, const decode_limits& limits);

// {id, ok: true, result: <what write_result packs: exactly one value>}
template <class F>
void encode_ok(msgpack::sbuffer& out, std::uint64_t id, F&& write_result) {
  packer p(out);
  p.pack_map(3);
  p.pack("id");
  p.pack(id);
  p.pack("ok");
  p.pack(true);
  p.pack("result");
  write_result(p);
}

// {id (nil if unknown), ok: false, error: {code, message}}
void encode_error(msgpack::sbuffer& out, std::optional<std::uint64_t> id, error_code code, std::string_view message);

// An event's map: {ts_ms, <the `fields` pairs write_fields packs>}.
template <class F>
void encode_event(msgpack::sbuffer& out, std::int64_t ts_ms, std::uint32_t fields, F&& write_fields) {
  packer p(out);
  p.pack_map(fields + 1);
  p.pack("ts_ms");
  p.pack(ts_ms);
  write_fields(p);
}

// ---- reading arguments ------------------------------------------------------------------------

// The value under `key` in a msgpack map, or null (also when `map` is not a map).
const msgpack::object* find(const msgpack::object& map, std::string_view key) noexcept;

// What a handler answers when an argument is wrong: invalid_args with this message.
struct arg_error {
  std::string message;
};

template <class T>
using arg = std::variant<T, arg_error>;

// Required (missing: an error) or optional (missing: nullopt) arguments of each wire type.
arg<std::string_view> string_arg(const msgpack::object& args, std::string_view key);
arg<std::optional<std::string_view>> optional_string_arg(const msgpack::object& args, std::string_view key);
arg<std::uint64_t> uint_arg(const msgpack::object& args, std::string_view key);
arg<std::optional<std::uint64_t>> optional_uint_arg(const msgpack::object& args, std::string_view key);
arg<std::int64_t> int_arg(const msgpack::object& args, std::string_view key);
arg<std::optional<std::int64_t>> optional_int_arg(const msgpack::object& args, std::string_view key);
arg<bool> bool_arg(const msgpack::object& args, std::string_view key);
// Any value (present: the object; its type is the caller's business).
arg<const msgpack::object*> value_arg(const msgpack::object& args, std::string_view key);

}  // namespace canopy::wire
