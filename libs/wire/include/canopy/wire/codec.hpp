#pragma once
// canopy::wire: the messages of docs/protocol.md in msgpack — requests decoded from
// untrusted bytes, replies and events encoded. No sockets; depends on msgpack-cxx only.
// Thread-safety: decode_request and the encoders are reentrant; a decoded request is a
// value owned by one thread at a time.
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
// What a request owns: the frame its strings point into and the zone of its args. Released
// rather than deleted, so small ones go back to a pool (decode_request).
class request_storage {
 public:
  virtual void release() noexcept = 0;  // pooled or freed
  virtual void destroy() noexcept = 0;  // freed

 protected:
  ~request_storage() = default;
};
struct release_storage {
  void operator()(request_storage* s) const noexcept { s->release(); }
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

namespace detail {
// msgpack-cxx's default zone starts with an 8 KiB chunk: a malloc that dwarfs a typical
// request, held as long as the request is. Strings are referenced, not copied, so a
// request's objects take a few times its bytes (a 40-byte get: 128 bytes of objects); a
// frame dense in tiny values (up to 32 bytes of objects per byte) grows the zone instead.
[[nodiscard]] inline std::size_t zone_chunk_for(std::size_t frame_bytes) noexcept {
  return std::min<std::size_t>(MSGPACK_ZONE_CHUNK_SIZE, 4 * frame_bytes + 256);
}
// The second pass, on bytes check_value accepted: unpacks into `zone` and reads the
// request's map; the request keeps `held` (which owns the bytes and the zone).
decoded decode_checked(std::string_view bytes, msgpack::zone& zone,
                       std::unique_ptr<request_storage, release_storage> held, const decode_limits& limits);

// A frame and its zone (frame_storage below). Those of frames up to pooled_frame_bytes
// (most requests) are kept, per thread, for the next request instead of freed: the zone
// cleared keeps its first chunk, so a steady flow of small requests allocates nothing (a
// malloc and a free of each per request cost a serving thread 40 ns of its 270 per
// request, docs/messaging.md). Released on another thread than the one that took it, a
// storage joins that thread's pool; past 256 per thread, it is freed.
inline constexpr std::size_t pooled_frame_bytes = 128;

// This thread's pool of released storages of one kind (one per Frame type), in codec.cpp:
// a thread_local there rather than in this template (clang 14 with sanitizers cannot emit
// a thread_local in a template's COMDAT section). take: null if the pool is empty. give:
// false if the pool is full or the thread is exiting, and the caller frees the storage.
request_storage* pool_take(const void* kind) noexcept;
bool pool_give(const void* kind, request_storage* storage) noexcept;

template <class Frame>
class frame_storage final : public request_storage {
 public:
  // A storage for a frame of `frame_bytes`, from this thread's pool if it is small.
  static frame_storage* take(std::size_t frame_bytes) {
    if (frame_bytes <= pooled_frame_bytes) {
      if (request_storage* s = pool_take(&kind)) return static_cast<frame_storage*>(s);
      return new frame_storage(zone_chunk_for(pooled_frame_bytes), true);
    }
    return new frame_storage(zone_chunk_for(frame_bytes), false);
  }

  void release() noexcept override {
    if (pooled_) {
      zone.clear();  // keeps its first chunk
      frame = Frame();
      if (pool_give(&kind, this)) return;
    }
    destroy();
  }
  void destroy() noexcept override { delete this; }

  Frame frame;
  msgpack::zone zone;

 private:
  frame_storage(std::size_t chunk, bool pooled) : zone(chunk), pooled_(pooled) {}
  ~frame_storage() = default;

  static constexpr char kind = 0;  // its address names the pool
  bool pooled_;
};
}  // namespace detail

// Decodes one request frame, taking it over: the request's strings point into it, and it
// lives, with the zone its args are unpacked into, in one allocation the request holds.
// `bytes_of(frame)` views a Frame's bytes (a std::string, a zmq::message_t: any type that
// keeps its bytes where they are while it stays put). Nothing is allocated for a refused
// frame.
template <class Frame, class BytesOf>
decoded decode_request(Frame frame, BytesOf bytes_of, const decode_limits& limits) {
  const std::string_view unchecked = bytes_of(frame);
  if (auto refused = check_value(unchecked, limits)) return decoded(std::move(*refused));
  std::unique_ptr<detail::request_storage, detail::release_storage> held;
  auto* storage = detail::frame_storage<Frame>::take(unchecked.size());
  held.reset(storage);
  storage->frame = std::move(frame);
  const std::string_view bytes = bytes_of(storage->frame);  // moved: a small frame's bytes moved with it
  return detail::decode_checked(bytes, storage->zone, std::move(held), limits);
}
inline decoded decode_request(std::string frame, const decode_limits& limits) {
  return decode_request(std::move(frame), [](const std::string& s) { return std::string_view(s); }, limits);
}

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
