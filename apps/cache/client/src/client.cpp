#include "canopy/cache_client/client.hpp"

namespace canopy::cache_client {

namespace {

msg::failure bad_reply(std::string_view op) {
  return {wire::error_code::internal, "the cache's reply to " + std::string(op) + " is not what the protocol says"};
}

std::optional<std::uint64_t> uint(const msgpack::object* o) {
  if (o == nullptr || o->type != msgpack::type::POSITIVE_INTEGER) return std::nullopt;
  return o->via.u64;
}

msg::outcome<bool> flag(const msg::outcome<msg::reply>& r, const char* name, std::string_view op) {
  if (!r) return r.error();
  const auto* f = wire::find(*r->result, name);
  if (f == nullptr || f->type != msgpack::type::BOOLEAN) return bad_reply(op);
  return f->via.boolean;
}

void write_ttl(wire::packer& p, std::optional<std::chrono::milliseconds> ttl) {
  if (!ttl) return;
  p.pack("ttl_ms");
  p.pack(static_cast<std::uint64_t>(ttl->count()));
}

}  // namespace

canopy::result<std::unique_ptr<client>> client::connect(const std::string& endpoint, msg::client_options options) {
  auto c = msg::client::connect(endpoint, options);
  if (!c) return c.error();
  return std::unique_ptr<client>(new client(std::move(*c)));
}

template <class F>
msg::outcome<msg::reply> client::call(std::string_view op, std::uint32_t pairs, F&& write) {
  return msg::call_outcome(*client_, op, pairs, std::forward<F>(write), timeout_);
}

msg::outcome<bool> client::put(const std::string& key, const wire::value& value,
                               std::optional<std::chrono::milliseconds> ttl) {
  auto r = call("put", ttl ? 3 : 2, [&](wire::packer& p) {
    p.pack("key");
    p.pack(key);
    p.pack("value");
    value.write_to(p);
    write_ttl(p, ttl);
  });
  if (!r) return r.error();
  return true;
}

msg::outcome<std::optional<item>> client::get(const std::string& key) {
  auto r = call("get", 1, [&](wire::packer& p) {
    p.pack("key");
    p.pack(key);
  });
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

msg::outcome<bool> client::erase(const std::string& key) {
  return flag(call("delete", 1,
                   [&](wire::packer& p) {
                     p.pack("key");
                     p.pack(key);
                   }),
              "deleted", "delete");
}

msg::outcome<std::int64_t> client::incr(const std::string& key, std::int64_t by,
                                        std::optional<std::chrono::milliseconds> ttl) {
  auto r = call("incr", ttl ? 3 : 2, [&](wire::packer& p) {
    p.pack("key");
    p.pack(key);
    p.pack("by");
    p.pack(by);
    write_ttl(p, ttl);
  });
  if (!r) return r.error();
  const auto* v = wire::find(*r->result, "value");
  if (v == nullptr || (v->type != msgpack::type::POSITIVE_INTEGER && v->type != msgpack::type::NEGATIVE_INTEGER))
    return bad_reply("incr");
  return v->as<std::int64_t>();
}

msg::outcome<bool> client::mput(const std::map<std::string, wire::value>& items,
                                std::optional<std::chrono::milliseconds> ttl) {
  auto r = call("mput", ttl ? 2 : 1, [&](wire::packer& p) {
    p.pack("items");
    p.pack_map(static_cast<std::uint32_t>(items.size()));
    for (const auto& [k, v] : items) {
      p.pack(k);
      v.write_to(p);
    }
    write_ttl(p, ttl);
  });
  if (!r) return r.error();
  return true;
}

msg::outcome<std::map<std::string, wire::value>> client::mget(const std::vector<std::string>& keys) {
  auto r = call("mget", 1, [&](wire::packer& p) {
    p.pack("keys");
    p.pack(keys);
  });
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

msg::outcome<bool> client::expire(const std::string& key, std::chrono::milliseconds ttl) {
  return flag(call("expire", 2,
                   [&](wire::packer& p) {
                     p.pack("key");
                     p.pack(key);
                     write_ttl(p, ttl);
                   }),
              "updated", "expire");
}

msg::outcome<std::vector<std::string>> client::keys(const std::string& prefix, std::uint32_t limit) {
  auto r = call("keys", 2, [&](wire::packer& p) {
    p.pack("prefix");
    p.pack(prefix);
    p.pack("limit");
    p.pack(limit);
  });
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

msg::outcome<std::uint64_t> client::clear() {
  auto r = call("clear", 0, [](wire::packer&) {});
  if (!r) return r.error();
  const auto removed = uint(wire::find(*r->result, "removed"));
  if (!removed) return bad_reply("clear");
  return *removed;
}

msg::outcome<cache_client::stats> client::stats() {
  auto r = call("stats", 0, [](wire::packer&) {});
  if (!r) return r.error();
  cache_client::stats s;
  const msgpack::object& res = *r->result;
  auto read = [&](const char* name, std::uint64_t& into) {
    auto v = uint(wire::find(res, name));
    if (!v) return false;
    into = *v;
    return true;
  };
  if (!read("items", s.items) || !read("bytes", s.bytes) || !read("max_bytes", s.max_bytes) || !read("hits", s.hits) ||
      !read("misses", s.misses) || !read("evictions", s.evictions) || !read("expired", s.expired))
    return bad_reply("stats");
  return s;
}

}  // namespace canopy::cache_client
