#include "canopy/registry_client/client.hpp"

namespace canopy::registry_client {

namespace {

msg::failure bad_reply(std::string_view op) {
  return {wire::error_code::internal, "the registry's reply to " + std::string(op) + " is not what the protocol says"};
}

std::string text(const msgpack::object* o) {
  return o != nullptr && o->type == msgpack::type::STR ? std::string(o->via.str.ptr, o->via.str.size) : std::string();
}

std::optional<std::uint64_t> uint(const msgpack::object* o) {
  if (o == nullptr || o->type != msgpack::type::POSITIVE_INTEGER) return std::nullopt;
  return o->via.u64;
}

wire::value meta_of(const msgpack::object* o) {
  return o != nullptr && o->type == msgpack::type::MAP ? wire::value::from_object(*o) : wire::value::empty_map();
}

void write_hold(wire::packer& p, const hold_options& o) {
  if (o.ttl) {
    p.pack("ttl_ms");
    p.pack(static_cast<std::uint64_t>(o.ttl->count()));
  }
  if (o.lease) {
    p.pack("lease");
    p.pack(*o.lease);
  }
  if (o.meta) {
    p.pack("meta");
    o.meta->write_to(p);
  }
}

std::uint32_t hold_pairs(const hold_options& o) {
  return (o.ttl ? 1 : 0) + (o.lease ? 1 : 0) + (o.meta ? 1 : 0);
}

msg::outcome<lease_grant> grant_of(const msg::outcome<msg::reply>& r, std::string_view op) {
  if (!r) return r.error();
  const auto* lease = wire::find(*r->result, "lease");
  const auto ttl = uint(wire::find(*r->result, "ttl_ms"));
  if (lease == nullptr || !ttl) return bad_reply(op);
  return lease_grant{text(lease), std::chrono::milliseconds(*ttl)};
}

msg::outcome<bool> removed_of(const msg::outcome<msg::reply>& r, std::string_view op) {
  if (!r) return r.error();
  const auto* removed = wire::find(*r->result, "removed");
  if (removed == nullptr || removed->type != msgpack::type::BOOLEAN) return bad_reply(op);
  return removed->via.boolean;
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

msg::outcome<lease_grant> client::register_name(const std::string& name, const std::string& endpoint, hold_options o) {
  return grant_of(call("register", 2 + hold_pairs(o),
                       [&](wire::packer& p) {
                         p.pack("name");
                         p.pack(name);
                         p.pack("endpoint");
                         p.pack(endpoint);
                         write_hold(p, o);
                       }),
                  "register");
}

msg::outcome<std::chrono::milliseconds> client::renew(const std::string& lease) {
  auto r = call("renew", 1, [&](wire::packer& p) {
    p.pack("lease");
    p.pack(lease);
  });
  if (!r) return r.error();
  const auto ttl = uint(wire::find(*r->result, "ttl_ms"));
  if (!ttl) return bad_reply("renew");
  return std::chrono::milliseconds(*ttl);
}

msg::outcome<bool> client::unregister(const std::string& name, const std::string& lease) {
  return removed_of(call("unregister", 2,
                         [&](wire::packer& p) {
                           p.pack("name");
                           p.pack(name);
                           p.pack("lease");
                           p.pack(lease);
                         }),
                    "unregister");
}

msg::outcome<entry> client::lookup(const std::string& name) {
  auto r = call("lookup", 1, [&](wire::packer& p) {
    p.pack("name");
    p.pack(name);
  });
  if (!r) return r.error();
  const msgpack::object& res = *r->result;
  const auto ttl = uint(wire::find(res, "ttl_ms"));
  if (!ttl || wire::find(res, "endpoint") == nullptr) return bad_reply("lookup");
  return entry{text(wire::find(res, "name")), text(wire::find(res, "endpoint")), meta_of(wire::find(res, "meta")),
               std::chrono::milliseconds(*ttl)};
}

msg::outcome<std::vector<entry>> client::list(const std::string& prefix) {
  auto r = call("list", prefix.empty() ? 0 : 1, [&](wire::packer& p) {
    if (prefix.empty()) return;
    p.pack("prefix");
    p.pack(prefix);
  });
  if (!r) return r.error();
  const auto* names = wire::find(*r->result, "names");
  if (names == nullptr || names->type != msgpack::type::ARRAY) return bad_reply("list");
  std::vector<entry> out;
  for (std::uint32_t i = 0; i < names->via.array.size; ++i) {
    const msgpack::object& e = names->via.array.ptr[i];
    out.push_back({text(wire::find(e, "name")), text(wire::find(e, "endpoint")), meta_of(wire::find(e, "meta")),
                   std::chrono::milliseconds(0)});
  }
  return out;
}

msg::outcome<lease_grant> client::join(const std::string& group, const std::string& member_name,
                                       const std::string& endpoint, hold_options o) {
  return grant_of(call("join", 2 + (endpoint.empty() ? 0 : 1) + hold_pairs(o),
                       [&](wire::packer& p) {
                         p.pack("group");
                         p.pack(group);
                         p.pack("member");
                         p.pack(member_name);
                         if (!endpoint.empty()) {
                           p.pack("endpoint");
                           p.pack(endpoint);
                         }
                         write_hold(p, o);
                       }),
                  "join");
}

msg::outcome<bool> client::leave(const std::string& group, const std::string& member_name) {
  return removed_of(call("leave", 2,
                         [&](wire::packer& p) {
                           p.pack("group");
                           p.pack(group);
                           p.pack("member");
                           p.pack(member_name);
                         }),
                    "leave");
}

msg::outcome<std::vector<member>> client::members(const std::string& group) {
  auto r = call("members", 1, [&](wire::packer& p) {
    p.pack("group");
    p.pack(group);
  });
  if (!r) return r.error();
  const auto* all = wire::find(*r->result, "members");
  if (all == nullptr || all->type != msgpack::type::ARRAY) return bad_reply("members");
  std::vector<member> out;
  for (std::uint32_t i = 0; i < all->via.array.size; ++i) {
    const msgpack::object& m = all->via.array.ptr[i];
    out.push_back({text(wire::find(m, "member")), text(wire::find(m, "endpoint")), meta_of(wire::find(m, "meta"))});
  }
  return out;
}

}  // namespace canopy::registry_client
