#include "canopy/wire/value.hpp"

#include <limits>

namespace canopy::wire {

value value::from_object(const msgpack::object& o) {
  msgpack::sbuffer buf;
  packer p(buf);
  p.pack(o);
  return value(std::string(buf.data(), buf.size()));
}

std::optional<value> value::from_bytes(std::string bytes, const decode_limits& limits, decode_failure* why) {
  if (auto refused = check_value(bytes, limits)) {
    if (why) *why = std::move(*refused);
    return std::nullopt;
  }
  return value(std::move(bytes));
}

msgpack::type::object_type value::type() const {
  auto h = msgpack::unpack(bytes_.data(), bytes_.size());
  return h.get().type;
}

std::optional<std::int64_t> value::as_int() const {
  auto h = msgpack::unpack(bytes_.data(), bytes_.size());
  const msgpack::object& o = h.get();
  if (o.type == msgpack::type::NEGATIVE_INTEGER) return o.via.i64;
  if (o.type == msgpack::type::POSITIVE_INTEGER && o.via.u64 <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    return static_cast<std::int64_t>(o.via.u64);
  return std::nullopt;
}

value value::of_int(std::int64_t v) {
  msgpack::sbuffer buf;
  packer p(buf);
  p.pack(v);
  return value(std::string(buf.data(), buf.size()));
}

value value::of_str(std::string_view text) {
  msgpack::sbuffer buf;
  packer p(buf);
  p.pack_str(static_cast<std::uint32_t>(text.size()));
  p.pack_str_body(text.data(), static_cast<std::uint32_t>(text.size()));
  return value(std::string(buf.data(), buf.size()));
}

}  // namespace canopy::wire
