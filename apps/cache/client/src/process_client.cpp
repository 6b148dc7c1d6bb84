#include "canopy/cache_client/process_client.hpp"

#include "replies.hpp"

namespace canopy::cache_client {

task<msg::outcome<bool>> process_client::put(std::string key, wire::value value,
                                             std::optional<std::chrono::milliseconds> ttl) {
  msg::reply r = co_await remote_.call(
      "put", ttl ? 3 : 2,
      [&](wire::packer& p) {
        p.pack("key");
        p.pack(key);
        p.pack("value");
        value.write_to(p);
        detail::write_ttl(p, ttl);
      },
      {.timeout = timeout_});
  auto o = msg::as_outcome(std::move(r), "put");
  if (!o) co_return o.error();
  co_return true;
}

task<msg::outcome<std::optional<item>>> process_client::get(std::string key) {
  msg::reply r = co_await remote_.call(
      "get", 1,
      [&](wire::packer& p) {
        p.pack("key");
        p.pack(key);
      },
      {.timeout = timeout_});
  co_return detail::get_of(msg::as_outcome(std::move(r), "get"));
}

task<msg::outcome<bool>> process_client::erase(std::string key) {
  msg::reply r = co_await remote_.call(
      "delete", 1,
      [&](wire::packer& p) {
        p.pack("key");
        p.pack(key);
      },
      {.timeout = timeout_});
  co_return detail::flag_of(msg::as_outcome(std::move(r), "delete"), "deleted", "delete");
}

task<msg::outcome<std::map<std::string, wire::value>>> process_client::mget(std::vector<std::string> keys) {
  msg::reply r = co_await remote_.call(
      "mget", 1,
      [&](wire::packer& p) {
        p.pack("keys");
        p.pack(keys);
      },
      {.timeout = timeout_});
  co_return detail::mget_of(msg::as_outcome(std::move(r), "mget"));
}

task<msg::outcome<std::vector<std::string>>> process_client::keys(std::string prefix, std::uint32_t limit,
                                                                  std::string after) {
  msg::reply r = co_await remote_.call(
      "keys", detail::keys_arg_pairs(after), [&](wire::packer& p) { detail::write_keys_args(p, prefix, limit, after); },
      {.timeout = timeout_});
  co_return detail::keys_of(msg::as_outcome(std::move(r), "keys"));
}

}  // namespace canopy::cache_client
