#pragma once
// Internal: the cache's requests' arguments and replies, shared by the thread client and the
// process client (one reading of the protocol).

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "canopy/cache_client/client.hpp"

namespace canopy::cache_client::detail {

inline msg::failure bad_reply(std::string_view op) {
  return {wire::error_code::internal, "the cache's reply to " + std::string(op) + " is not what the protocol says"};
}

inline std::optional<std::uint64_t> uint(const msgpack::object* o) {
  if (o == nullptr || o->type != msgpack::type::POSITIVE_INTEGER) return std::nullopt;
  return o->via.u64;
}

inline void write_ttl(wire::packer& p, std::optional<std::chrono::milliseconds> ttl) {
  if (!ttl) return;
  p.pack("ttl_ms");
  p.pack(static_cast<std::uint64_t>(ttl->count()));
}

inline std::uint32_t keys_arg_pairs(const std::string& after) { return after.empty() ? 2 : 3; }
inline void write_keys_args(wire::packer& p, const std::string& prefix, std::uint32_t limit, const std::string& after) {
  p.pack("prefix");
  p.pack(prefix);
  p.pack("limit");
  p.pack(limit);
  if (after.empty()) return;
  p.pack("after");
  p.pack(after);
}

inline msg::outcome<bool> flag_of(const msg::outcome<msg::reply>& r, const char* name, std::string_view op) {
  if (!r) return r.error();
  const auto* f = wire::find(*r->result, name);
  if (f == nullptr || f->type != msgpack::type::BOOLEAN) return bad_reply(op);
  return f->via.boolean;
}

inline msg::outcome<std::optional<item>> get_of(const msg::outcome<msg::reply>& r) {
  if (!r) return r.error();
  const auto* found = wire::find(*r->result, "found");
  if (found == nullptr || found->type != msgpack::type::BOOLEAN) return bad_reply("get");
  if (!found->via.boolean) return std::optional<item>();
  const auto* value = wire::find(*r->result, "value");
  if (value == nullptr) return bad_reply("get");
  item it{wire::value::from_object(*value), std::nullopt};
  if (auto ttl = uint(wire::find(*r->result, "ttl_ms"))) it.ttl_left = std::chrono::milliseconds(*ttl);
  return std::optional<item>(std::move(it));
}

inline msg::outcome<std::map<std::string, wire::value>> mget_of(const msg::outcome<msg::reply>& r) {
  if (!r) return r.error();
  const auto* items = wire::find(*r->result, "items");
  if (items == nullptr || items->type != msgpack::type::MAP) return bad_reply("mget");
  std::map<std::string, wire::value> out;
  for (std::uint32_t i = 0; i < items->via.map.size; ++i) {
    const msgpack::object_kv& kv = items->via.map.ptr[i];
    if (kv.key.type != msgpack::type::STR) return bad_reply("mget");
    out.emplace(std::string(kv.key.via.str.ptr, kv.key.via.str.size), wire::value::from_object(kv.val));
  }
  return out;
}

inline msg::outcome<std::vector<std::string>> keys_of(const msg::outcome<msg::reply>& r) {
  if (!r) return r.error();
  const auto* keys = wire::find(*r->result, "keys");
  if (keys == nullptr || keys->type != msgpack::type::ARRAY) return bad_reply("keys");
  std::vector<std::string> out;
  for (std::uint32_t i = 0; i < keys->via.array.size; ++i) {
    const msgpack::object& k = keys->via.array.ptr[i];
    if (k.type != msgpack::type::STR) return bad_reply("keys");
    out.emplace_back(k.via.str.ptr, k.via.str.size);
  }
  return out;
}

}  // namespace canopy::cache_client::detail
