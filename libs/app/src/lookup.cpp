#include "canopy/app/lookup.hpp"

#include "canopy/msg/remote.hpp"

namespace canopy::app {

namespace {
std::string text(const msgpack::object* o) {
  return o != nullptr && o->type == msgpack::type::STR ? std::string(o->via.str.ptr, o->via.str.size) : std::string();
}
}  // namespace

task<msg::outcome<located>> lookup(context& ctx, std::string name, std::chrono::milliseconds timeout) {
  msg::remote* registry = ctx.registry();
  if (registry == nullptr)
    co_return msg::failure{wire::error_code::unavailable, "no registry: " + ctx.app_id() + " runs standalone"};
  msg::reply r = co_await registry->call(
      "lookup", 1,
      [&](wire::packer& p) {
        p.pack("name");
        p.pack(name);
      },
      {.timeout = timeout});
  if (!r.ok) co_return msg::failure{r.code, r.message};
  located found{name, text(r.result ? wire::find(*r.result, "endpoint") : nullptr), {}};
  if (found.endpoint.empty()) co_return msg::failure{wire::error_code::internal, "the registry's lookup reply has no endpoint"};
  if (const msgpack::object* meta = wire::find(*r.result, "meta")) found.events_endpoint = text(wire::find(*meta, "events"));
  co_return found;
}

}  // namespace canopy::app
