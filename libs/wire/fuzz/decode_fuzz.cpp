// libFuzzer target: any bytes through decode_request (and, when refused, the error reply).
// Built by the `fuzz` preset (clang, ASan + UBSan); CI runs it briefly from the seed corpus
// in corpus/, and wire_test replays that corpus on every build. A crash it finds becomes a
// file in corpus/ (and so a regression test).
#include <cstddef>
#include <cstdint>
#include <string>

#include "canopy/wire/codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const canopy::wire::decode_limits limits = [] {
    canopy::wire::decode_limits l;
    l.max_message_bytes = 64 * 1024;
    l.max_depth = 16;
    return l;
  }();
  auto d = canopy::wire::decode_request(std::string(reinterpret_cast<const char*>(data), size), limits);
  msgpack::sbuffer out;
  if (!d.ok()) {
    canopy::wire::encode_error(out, d.failure().id, d.failure().code, d.failure().message);
    return 0;
  }
  const canopy::wire::request& r = d.value();
  // Touch what a handler would: every argument, read as each type.
  const msgpack::object& args = *r.args;
  for (std::uint32_t i = 0; i < args.via.map.size; ++i) {
    const msgpack::object& key = args.via.map.ptr[i].key;
    if (key.type != msgpack::type::STR) continue;
    const std::string_view name(key.via.str.ptr, key.via.str.size);
    (void)canopy::wire::string_arg(args, name);
    (void)canopy::wire::uint_arg(args, name);
    (void)canopy::wire::int_arg(args, name);
    (void)canopy::wire::bool_arg(args, name);
  }
  canopy::wire::encode_ok(out, r.id, [&](canopy::wire::packer& p) { p.pack(args); });
  return 0;
}
