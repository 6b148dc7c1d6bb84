#pragma once
// wire::value: one msgpack value kept as its exact bytes — what a cache stores and sends
// back unchanged (a binary stays binary, a float32 stays a float32, map order is kept).
// Thread-safety: a value type; const access from many threads is safe.
//
//   auto v = canopy::wire::value::from_object(*canopy::wire::find(*req.args, "value"));
//   table.insert(key, std::move(v));                       // a table<std::string, wire::value>
//   encode_ok(out, id, [&](packer&) { v.write_to(out); });   // the same bytes, verbatim

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <msgpack.hpp>

#include "canopy/wire/codec.hpp"

namespace canopy::wire {

class value {
 public:
  value() : bytes_(1, '\xc0') {}  // nil

  // Packs `o` (a value from a decoded request): types and order as they arrived.
  static value from_object(const msgpack::object& o);
  // Adopts bytes that must hold exactly one value within `limits` (a snapshot file, say).
  static std::optional<value> from_bytes(std::string bytes, const decode_limits& limits, decode_failure* why = nullptr);
  // Adopts bytes this process packed itself with msgpack's packer (one complete value by
  // construction): not checked, so never give it bytes from outside.
  static value from_packed(std::string bytes) { return value(std::move(bytes)); }

  [[nodiscard]] std::string_view bytes() const noexcept { return bytes_; }
  // Heap and inline bytes this value takes (for a cache's max_bytes).
  [[nodiscard]] std::size_t memory_bytes() const noexcept {
    return sizeof(value) + (bytes_.capacity() > 15 ? bytes_.capacity() + 1 : 0);
  }
  // The value's msgpack type (first byte), e.g. to refuse incr on a non-integer.
  [[nodiscard]] msgpack::type::object_type type() const;
  // The integer it holds, if it holds one that fits.
  [[nodiscard]] std::optional<std::int64_t> as_int() const;
  static value of_int(std::int64_t v);
  static value of_str(std::string_view text);  // a msgpack str

  // Appends the bytes to `out` as the next value of what a packer on `out` is writing (a
  // packer writes through at once, so this may sit between its calls).
  void write_to(msgpack::sbuffer& out) const { out.write(bytes_.data(), bytes_.size()); }
  // The same through a packer (inside a reply_ok writer): msgpack-cxx's *_body calls append
  // raw bytes, so this writes the value exactly as it is kept.
  void write_to(msgpack::packer<msgpack::sbuffer>& p) const {
    p.pack_bin_body(bytes_.data(), static_cast<std::uint32_t>(bytes_.size()));
  }
  static value empty_map() { return value(std::string(1, '\x80')); }

  friend bool operator==(const value& a, const value& b) noexcept { return a.bytes_ == b.bytes_; }

 private:
  explicit value(std::string bytes) : bytes_(std::move(bytes)) {}
  std::string bytes_;
};

}  // namespace canopy::wire
