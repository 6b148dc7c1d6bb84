#include "canopy/cache_client/client.hpp"

#include "replies.hpp"

namespace canopy::cache_client {

using detail::bad_reply;
using detail::uint;
using detail::write_ttl;

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
  return detail::get_of(call("get", 1, [&](wire::packer& p) {
    p.pack("key");
    p.pack(key);
  }));
}

msg::outcome<bool> client::erase(const std::string& key) {
  return detail::flag_of(call("delete", 1,
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
  return detail::mget_of(call("mget", 1, [&](wire::packer& p) {
    p.pack("keys");
    p.pack(keys);
  }));
}

msg::outcome<bool> client::expire(const std::string& key, std::chrono::milliseconds ttl) {
  return detail::flag_of(call("expire", 2,
                   [&](wire::packer& p) {
                     p.pack("key");
                     p.pack(key);
                     write_ttl(p, ttl);
                   }),
              "updated", "expire");
}

msg::outcome<std::vector<std::string>> client::keys(const std::string& prefix, std::uint32_t limit,
                                                    const std::string& after) {
  return detail::keys_of(call("keys", detail::keys_arg_pairs(after),
                              [&](wire::packer& p) { detail::write_keys_args(p, prefix, limit, after); }));
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
