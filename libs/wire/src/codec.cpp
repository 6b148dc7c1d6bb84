#include "canopy/wire/codec.hpp"

#include <algorithm>
#include <array>
#include <memory>
#include <string>
#include <vector>

namespace canopy::wire {

// ---- error codes ---------------------------------------------------------------------------

namespace {
constexpr std::array<std::string_view, 11> code_names = {
    "bad_request", "unknown_op", "invalid_args", "not_found",    "already_exists", "overloaded",
    "timeout",     "too_large",  "unavailable",  "unauthorized", "internal",
};
}  // namespace

std::string_view to_string(error_code code) noexcept { return code_names[static_cast<std::size_t>(code)]; }

std::optional<error_code> error_code_from_string(std::string_view name) noexcept {
  for (std::size_t i = 0; i < code_names.size(); ++i)
    if (code_names[i] == name) return static_cast<error_code>(i);
  return std::nullopt;
}

// ---- the bounded first pass -------------------------------------------------------------------

namespace {

// Walks a value without building anything, refusing what the limits do not allow before
// msgpack-cxx would allocate for it.
class bounded_walk : public msgpack::null_visitor {
 public:
  bounded_walk(const decode_limits& limits, std::size_t frame_bytes) : limits_(limits), frame_bytes_(frame_bytes) {}

  bool visit_str(const char* data, std::uint32_t size) {
    if (in_top_key_ && std::string_view(data, size) == "id") {
      ids_seen_ += 1;
      next_value_is_id_ = true;
    }
    return sized("a string", size, limits_.max_str);
  }
  // The top-level map's "id", kept while walking so that a value past a limit later in the
  // request is answered too_large *with* its id (clients write id first).
  bool start_map_key() {
    in_top_key_ = depth_ == 1;
    return true;
  }
  bool end_map_key() {
    in_top_key_ = false;
    return true;
  }
  bool start_map_value() {
    value_is_id_ = depth_ == 1 && next_value_is_id_;
    next_value_is_id_ = false;
    return true;
  }
  bool end_map_value() {
    value_is_id_ = false;
    return true;
  }
  bool visit_positive_integer(std::uint64_t v) {
    if (value_is_id_) id_ = v;
    return true;
  }
  bool visit_bin(const char*, std::uint32_t size) { return sized("a binary", size, limits_.max_bin); }
  bool visit_ext(const char*, std::uint32_t size) { return sized("an ext value", size, limits_.max_ext); }
  bool start_array(std::uint32_t n) { return open("an array", n, n, limits_.max_array); }
  bool end_array() {
    --depth_;
    return true;
  }
  bool start_map(std::uint32_t n) { return open("a map", n, 2 * static_cast<std::size_t>(n), limits_.max_map); }
  bool end_map() {
    --depth_;
    return true;
  }
  void parse_error(std::size_t, std::size_t) { refuse(error_code::bad_request, "the payload is not msgpack"); }
  void insufficient_bytes(std::size_t, std::size_t) {
    refuse(error_code::bad_request, "the payload is truncated msgpack");
  }

  std::optional<decode_failure> failure;

 private:
  bool refuse(error_code code, std::string message) {
    // A limit passed in a well-formed request keeps the id read so far (a duplicated id is
    // nil, as in decode_request); malformed input has none.
    std::optional<std::uint64_t> id;
    if (code == error_code::too_large && ids_seen_ == 1) id = id_;
    if (!failure) failure = decode_failure{code, std::move(message), id};
    return false;
  }
  bool sized(const char* what, std::uint32_t size, std::size_t limit) {
    if (size <= limit) return true;
    return refuse(error_code::too_large,
                  std::string(what) + " of " + std::to_string(size) + " bytes (limit " + std::to_string(limit) + ")");
  }
  bool open(const char* what, std::uint32_t count, std::size_t elements, std::size_t limit) {
    if (++depth_ > limits_.max_depth)
      return refuse(error_code::too_large, "nesting deeper than " + std::to_string(limits_.max_depth));
    // Every element takes at least one byte of the frame: more cannot be real.
    declared_ += elements;
    if (declared_ > frame_bytes_)
      return refuse(error_code::bad_request, std::string(what) + " declares " + std::to_string(count) +
                                                 " entries, more than the " + std::to_string(frame_bytes_) +
                                                 "-byte payload can hold");
    if (count > limit)
      return refuse(error_code::too_large, std::string(what) + " of " + std::to_string(count) +
                                               " entries (limit " + std::to_string(limit) + ")");
    return true;
  }

  const decode_limits& limits_;
  std::size_t frame_bytes_;
  std::size_t declared_ = 0;
  std::size_t depth_ = 0;
  bool in_top_key_ = false, next_value_is_id_ = false, value_is_id_ = false;
  unsigned ids_seen_ = 0;
  std::optional<std::uint64_t> id_;
};

// Strings, binaries and ext point into the frame (which the request keeps alive).
bool reference_everything(msgpack::type::object_type, std::size_t, void*) { return true; }

const msgpack::object& empty_map() {
  static const msgpack::object empty = [] {
    msgpack::object o;
    o.type = msgpack::type::MAP;
    o.via.map.size = 0;
    o.via.map.ptr = nullptr;
    return o;
  }();
  return empty;
}

std::string_view str_of(const msgpack::object& o) noexcept { return {o.via.str.ptr, o.via.str.size}; }

}  // namespace

std::optional<decode_failure> check_value(std::string_view bytes, const decode_limits& limits) {
  if (bytes.size() > limits.max_message_bytes)
    return decode_failure{error_code::too_large,
                          "a payload of " + std::to_string(bytes.size()) + " bytes (limit " +
                              std::to_string(limits.max_message_bytes) + ")",
                          std::nullopt};
  if (bytes.empty()) return decode_failure{error_code::bad_request, "an empty payload", std::nullopt};
  bounded_walk walk(limits, bytes.size());
  std::size_t off = 0;
  const bool parsed = msgpack::v2::parse(bytes.data(), bytes.size(), off, walk);
  if (walk.failure) return walk.failure;
  if (!parsed) return decode_failure{error_code::bad_request, "the payload is not msgpack", std::nullopt};
  if (off != bytes.size())
    return decode_failure{error_code::bad_request,
                          std::to_string(bytes.size() - off) + " bytes after the msgpack value", std::nullopt};
  return std::nullopt;
}

// ---- request storage and its pools ----------------------------------------------------------

namespace {
// msgpack-cxx's default zone starts with an 8 KiB chunk: a malloc that dwarfs a typical
// request, held as long as the request is. Strings are referenced, not copied, so a
// request's objects take a few times its bytes (a 40-byte get: 128 bytes of objects, a
// 150-byte put about 200); a frame dense in tiny values (up to 32 bytes of objects per
// byte) grows the zone instead.
std::size_t zone_chunk_for(std::size_t frame_bytes) noexcept {
  return std::min<std::size_t>(MSGPACK_ZONE_CHUNK_SIZE, 4 * frame_bytes + 256);
}
constexpr std::size_t pooled_frame_bytes = 1024;  // frames up to this come from the pool
constexpr std::size_t pooled_zone_chunk = 512;    // a pooled zone's first chunk, kept
constexpr std::size_t pool_keep = 256;            // storages kept per thread (~1-2 KiB each)
}  // namespace

class detail::request_storage {
 public:
  request_storage(std::size_t chunk, bool from_pool) : zone(chunk), pooled(from_pool) {}
  std::string frame;
  msgpack::zone zone;
  const bool pooled;
};

namespace {
struct storage_pool {
  std::vector<detail::request_storage*> free;
  storage_pool() { free.reserve(pool_keep); }
  ~storage_pool();
};
// Trivially destructible, so still readable while the thread's exit destroys the pool (and
// after): a storage released then is freed.
thread_local bool pool_gone = false;
thread_local storage_pool pool_of_thread;

storage_pool::~storage_pool() {
  pool_gone = true;
  for (detail::request_storage* s : free) delete s;
}

detail::request_storage* take_storage(std::size_t frame_bytes) {
  if (frame_bytes > pooled_frame_bytes) return new detail::request_storage(zone_chunk_for(frame_bytes), false);
  if (!pool_gone && !pool_of_thread.free.empty()) {
    detail::request_storage* s = pool_of_thread.free.back();
    pool_of_thread.free.pop_back();
    return s;
  }
  return new detail::request_storage(pooled_zone_chunk, true);
}
}  // namespace

// Back to the releasing thread's pool (a request may be released on another thread than
// the one that decoded it), unless full or the frame grew past what a pooled one keeps.
void detail::release_storage::operator()(request_storage* s) const noexcept {
  if (s->pooled && !pool_gone && s->frame.capacity() <= pooled_frame_bytes &&
      pool_of_thread.free.size() < pool_keep) {
    s->zone.clear();  // keeps its first chunk
    s->frame.clear();  // keeps its capacity
    pool_of_thread.free.push_back(s);  // within the capacity reserved: no allocation
    return;
  }
  delete s;
}

// ---- requests ---------------------------------------------------------------------------------

struct decode_access {
  static void keep(request& r, std::unique_ptr<detail::request_storage, detail::release_storage> held) {
    r.held_ = std::move(held);
  }
};

namespace {
// The second pass, on bytes check_value accepted: unpacks into the storage's zone and reads
// the request's map; the request keeps the storage.
decoded decode_checked(std::unique_ptr<detail::request_storage, detail::release_storage> held,
                       const decode_limits& limits) {
  const std::string_view bytes = held->frame;
  msgpack::zone& zone = held->zone;
  msgpack::object root;
  try {
    std::size_t off = 0;
    bool referenced = false;
    const msgpack::unpack_limit bounds(limits.max_array, limits.max_map, limits.max_str, limits.max_bin,
                                       limits.max_ext, limits.max_depth);
    root = msgpack::unpack(zone, bytes.data(), bytes.size(), off, referenced, reference_everything, nullptr, bounds);
  } catch (const std::exception& e) {  // the first pass should have caught it; never let it out
    return decoded(decode_failure{error_code::bad_request, std::string("undecodable payload: ") + e.what(), std::nullopt});
  }

  if (root.type != msgpack::type::MAP)
    return decoded(decode_failure{error_code::bad_request, "the payload is not a map", std::nullopt});

  request r;
  const msgpack::object* id = nullptr;
  const msgpack::object* op = nullptr;
  const msgpack::object* args = nullptr;
  const msgpack::object* deadline = nullptr;
  for (std::uint32_t i = 0; i < root.via.map.size; ++i) {
    const msgpack::object_kv& kv = root.via.map.ptr[i];
    if (kv.key.type != msgpack::type::STR) continue;  // unknown keys are ignored
    const std::string_view key = str_of(kv.key);
    const msgpack::object** slot = key == "id"            ? &id
                                   : key == "op"          ? &op
                                   : key == "args"        ? &args
                                   : key == "deadline_ms" ? &deadline
                                                          : nullptr;
    if (slot != nullptr && *slot == nullptr) *slot = &kv.val;
  }
  if (id == nullptr) return decoded(decode_failure{error_code::bad_request, "the request has no id", std::nullopt});
  if (id->type != msgpack::type::POSITIVE_INTEGER)
    return decoded(decode_failure{error_code::bad_request, "id is not an unsigned integer", std::nullopt});
  r.id = id->via.u64;
  if (op == nullptr) return decoded(decode_failure{error_code::bad_request, "the request has no op", r.id});
  if (op->type != msgpack::type::STR)
    return decoded(decode_failure{error_code::bad_request, "op is not a string", r.id});
  r.op = str_of(*op);
  if (args != nullptr && args->type != msgpack::type::MAP)
    return decoded(decode_failure{error_code::bad_request, "args is not a map", r.id});
  r.args = args != nullptr ? args : &empty_map();
  if (deadline != nullptr) {
    if (deadline->type != msgpack::type::POSITIVE_INTEGER)
      return decoded(decode_failure{error_code::bad_request, "deadline_ms is not an unsigned integer", r.id});
    r.deadline_ms = deadline->via.u64;
  }
  decode_access::keep(r, std::move(held));
  return decoded(std::move(r));
}
}  // namespace

decoded decode_request(std::string_view frame, const decode_limits& limits) {
  if (auto refused = check_value(frame, limits)) return decoded(std::move(*refused));
  std::unique_ptr<detail::request_storage, detail::release_storage> held(take_storage(frame.size()));
  held->frame.assign(frame);  // into the capacity a pooled storage kept: no allocation
  return decode_checked(std::move(held), limits);
}

decoded decode_request(std::string frame, const decode_limits& limits) {
  if (auto refused = check_value(frame, limits)) return decoded(std::move(*refused));
  std::unique_ptr<detail::request_storage, detail::release_storage> held(take_storage(frame.size()));
  if (held->pooled) {
    held->frame.assign(frame);
  } else {
    held->frame = std::move(frame);
  }
  return decode_checked(std::move(held), limits);
}

// ---- replies --------------------------------------------------------------------------------

void encode_error(msgpack::sbuffer& out, std::optional<std::uint64_t> id, error_code code, std::string_view message) {
  packer p(out);
  p.pack_map(3);
  p.pack("id");
  if (id) {
    p.pack(*id);
  } else {
    p.pack_nil();
  }
  p.pack("ok");
  p.pack(false);
  p.pack("error");
  p.pack_map(2);
  p.pack("code");
  const std::string_view name = to_string(code);
  p.pack_str(static_cast<std::uint32_t>(name.size()));
  p.pack_str_body(name.data(), static_cast<std::uint32_t>(name.size()));
  p.pack("message");
  p.pack_str(static_cast<std::uint32_t>(message.size()));
  p.pack_str_body(message.data(), static_cast<std::uint32_t>(message.size()));
}

// ---- arguments --------------------------------------------------------------------------------

const msgpack::object* find(const msgpack::object& map, std::string_view key) noexcept {
  if (map.type != msgpack::type::MAP) return nullptr;
  for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
    const msgpack::object_kv& kv = map.via.map.ptr[i];
    if (kv.key.type == msgpack::type::STR && str_of(kv.key) == key) return &kv.val;
  }
  return nullptr;
}

namespace {

arg_error missing(std::string_view key) { return arg_error{"missing argument '" + std::string(key) + "'"}; }
arg_error wrong(std::string_view key, const char* expected) {
  return arg_error{"argument '" + std::string(key) + "' must be " + expected};
}

// The typed reading of one present value.
template <class T>
arg<T> read(const msgpack::object& v, std::string_view key);

template <>
arg<std::string_view> read(const msgpack::object& v, std::string_view key) {
  if (v.type != msgpack::type::STR) return wrong(key, "a string");
  return str_of(v);
}
template <>
arg<std::uint64_t> read(const msgpack::object& v, std::string_view key) {
  if (v.type != msgpack::type::POSITIVE_INTEGER) return wrong(key, "an unsigned integer");
  return v.via.u64;
}
template <>
arg<std::int64_t> read(const msgpack::object& v, std::string_view key) {
  if (v.type == msgpack::type::NEGATIVE_INTEGER) return v.via.i64;
  if (v.type == msgpack::type::POSITIVE_INTEGER && v.via.u64 <= static_cast<std::uint64_t>(INT64_MAX))
    return static_cast<std::int64_t>(v.via.u64);
  return wrong(key, "a signed 64-bit integer");
}
template <>
arg<bool> read(const msgpack::object& v, std::string_view key) {
  if (v.type != msgpack::type::BOOLEAN) return wrong(key, "a boolean");
  return v.via.boolean;
}

template <class T>
arg<T> required(const msgpack::object& args, std::string_view key) {
  const msgpack::object* v = find(args, key);
  if (v == nullptr) return missing(key);
  return read<T>(*v, key);
}

template <class T>
arg<std::optional<T>> optional(const msgpack::object& args, std::string_view key) {
  const msgpack::object* v = find(args, key);
  if (v == nullptr || v->type == msgpack::type::NIL) return std::optional<T>();
  arg<T> got = read<T>(*v, key);
  if (auto* e = std::get_if<arg_error>(&got)) return *e;
  return std::optional<T>(std::get<T>(got));
}

}  // namespace

arg<std::string_view> string_arg(const msgpack::object& args, std::string_view key) {
  return required<std::string_view>(args, key);
}
arg<std::optional<std::string_view>> optional_string_arg(const msgpack::object& args, std::string_view key) {
  return optional<std::string_view>(args, key);
}
arg<std::uint64_t> uint_arg(const msgpack::object& args, std::string_view key) {
  return required<std::uint64_t>(args, key);
}
arg<std::optional<std::uint64_t>> optional_uint_arg(const msgpack::object& args, std::string_view key) {
  return optional<std::uint64_t>(args, key);
}
arg<std::int64_t> int_arg(const msgpack::object& args, std::string_view key) { return required<std::int64_t>(args, key); }
arg<std::optional<std::int64_t>> optional_int_arg(const msgpack::object& args, std::string_view key) {
  return optional<std::int64_t>(args, key);
}
arg<bool> bool_arg(const msgpack::object& args, std::string_view key) { return required<bool>(args, key); }
arg<const msgpack::object*> value_arg(const msgpack::object& args, std::string_view key) {
  const msgpack::object* v = find(args, key);
  if (v == nullptr) return missing(key);
  return v;
}

}  // namespace canopy::wire
