#include "canopy/registry_app/app.hpp"

#include <spdlog/logger.h>

#include <random>
#include <stdexcept>

#include "canopy/app/earliest_timer.hpp"
#include "canopy/app/handler.hpp"
#include "canopy/core/runtime.hpp"
#include "canopy/msg/server.hpp"
#include "canopy/otp/gen_server.hpp"
#include "canopy/registry_app/lease_book.hpp"

namespace canopy::registry_app {

namespace {

using canopy::app::invalid_args;
using canopy::app::take;

constexpr const char* server_name = "registry.server";

struct expire_tick {};

wire::error_code code_of(refusal r) {
  switch (r) {
    case refusal::already_exists: return wire::error_code::already_exists;
    case refusal::not_found: return wire::error_code::not_found;
    case refusal::unauthorized: return wire::error_code::unauthorized;
    case refusal::none: break;
  }
  return wire::error_code::internal;
}

class server final : public gen_server {
 public:
  server(canopy::app::context* ctx, std::shared_ptr<lease_book> book, limits l)
      : ctx_(ctx),
        book_(std::move(book)),
        limits_(l),
        names_(ctx->stats()["names"]),
        leases_(ctx->stats()["leases"]),
        groups_(ctx->stats()["groups"]),
        registrations_(ctx->stats()["registrations"]),
        expirations_(ctx->stats()["expirations"]) {}

 protected:
  result init() override {
    publish_counts();
    arm(now());  // leases may have passed their time while we were being restarted
    return ok();
  }

  result handle_cast(message& m) override {
    if (auto* req = m.get<msg::incoming>()) {
      canopy::app::answer(*req, [&] { serve(*req); });
      publish_counts();
      arm(now());
    }
    return noreply();
  }

  result handle_info(message& m) override {
    if (m.get<expire_tick>()) {
      expiry_.fired();
      expire(now());
      publish_counts();
      arm(now());
    }
    return noreply();
  }

 private:
  [[nodiscard]] time_point now() const { return system().clock().now(); }

  void serve(msg::incoming& req) {
    const std::string_view op = req.op();
    const time_point t = now();
    expire(t);  // removals are announced before anything else is answered
    if (op == "register") return do_register(req, t);
    if (op == "renew") return do_renew(req, t);
    if (op == "unregister") return do_unregister(req, t);
    if (op == "lookup") return do_lookup(req, t);
    if (op == "list") return do_list(req, t);
    if (op == "join") return do_join(req, t);
    if (op == "leave") return do_leave(req, t);
    if (op == "members") return do_members(req, t);
    if (op == "crash") throw std::runtime_error("fault injection: the crash op");  // the request answers internal
    req.reply_error(wire::error_code::unknown_op, "no op '" + std::string(op) + "' on registry");
  }

  std::string_view bounded(std::string_view text, const char* what) const {
    if (text.empty()) throw invalid_args(std::string(what) + " is empty");
    if (text.size() > limits_.max_name_bytes)
      throw invalid_args(std::string(what) + " is longer than " + std::to_string(limits_.max_name_bytes) + " bytes");
    return text;
  }

  std::chrono::milliseconds ttl_arg(const msgpack::object& args) const {
    const auto given = take(wire::optional_uint_arg(args, "ttl_ms"));
    if (!given) return limits_.default_ttl;
    if (*given < 1 || *given > static_cast<std::uint64_t>(limits_.max_ttl.count()))
      throw invalid_args("ttl_ms must be between 1 and " + std::to_string(limits_.max_ttl.count()));
    return std::chrono::milliseconds(*given);
  }

  static wire::value meta_arg(const msgpack::object& args) {
    const msgpack::object* meta = wire::find(args, "meta");
    if (meta == nullptr || meta->type == msgpack::type::NIL) return wire::value::empty_map();
    if (meta->type != msgpack::type::MAP) throw invalid_args("meta must be a map");
    return wire::value::from_object(*meta);
  }

  static void reply_grant(msg::incoming& req, const grant& g) {
    const auto ttl = static_cast<std::uint64_t>(g.ttl.count());
    req.reply_ok([&](wire::packer& p) {
      p.pack_map(2);
      p.pack("lease");
      p.pack(g.lease);
      p.pack("ttl_ms");
      p.pack(ttl);
    });
  }

  template <class T>
  bool refused(msg::incoming& req, const outcome<T>& o) {
    if (o.ok()) return false;
    req.reply_error(code_of(o.refused), o.why);
    return true;
  }

  void do_register(msg::incoming& req, time_point t) {
    const msgpack::object& args = req.args();
    const std::string_view name = bounded(take(wire::string_arg(args, "name")), "name");
    const std::string_view endpoint = bounded(take(wire::string_arg(args, "endpoint")), "endpoint");
    const auto lease = take(wire::optional_string_arg(args, "lease"));
    const auto ttl = ttl_arg(args);
    wire::value meta = meta_arg(args);
    if (book_->names() >= limits_.max_names && !book_->lookup(name, t)) {
      req.reply_error(wire::error_code::overloaded,
                      "the registry holds its limit of " + std::to_string(limits_.max_names) + " names");
      return;
    }
    outcome<grant> g = book_->register_name(name, endpoint, std::move(meta), ttl, lease, t);
    if (refused(req, g)) return;
    registrations_ += 1;
    reply_grant(req, g.value);
    const std::string n(name), e(endpoint);
    ctx_->publish("registered", 2, [&](wire::packer& p) {
      p.pack("name");
      p.pack(n);
      p.pack("endpoint");
      p.pack(e);
    });
  }

  void do_renew(msg::incoming& req, time_point t) {
    const std::string_view lease = take(wire::string_arg(req.args(), "lease"));
    outcome<std::chrono::milliseconds> r = book_->renew(lease, t);
    if (refused(req, r)) return;
    const auto ttl = static_cast<std::uint64_t>(r.value.count());
    req.reply_ok([&](wire::packer& p) {
      p.pack_map(1);
      p.pack("ttl_ms");
      p.pack(ttl);
    });
  }

  void do_unregister(msg::incoming& req, time_point t) {
    const std::string_view name = take(wire::string_arg(req.args(), "name"));
    const std::string_view lease = take(wire::string_arg(req.args(), "lease"));
    outcome<bool> r = book_->unregister(name, lease, t);
    if (refused(req, r)) return;
    req.reply_ok([&](wire::packer& p) {
      p.pack_map(1);
      p.pack("removed");
      p.pack(r.value);
    });
    if (r.value) announce_removal(std::string(name), removal::unregistered);
  }

  void do_lookup(msg::incoming& req, time_point t) {
    const std::string_view name = take(wire::string_arg(req.args(), "name"));
    auto f = book_->lookup(name, t);
    if (!f) {
      req.reply_error(wire::error_code::not_found, "no name " + std::string(name));
      return;
    }
    const auto left = static_cast<std::uint64_t>(f->left.count());
    req.reply_ok([&](wire::packer& p) {
      p.pack_map(4);
      p.pack("name");
      p.pack(f->record.name);
      p.pack("endpoint");
      p.pack(f->record.endpoint);
      p.pack("meta");
      f->record.meta.write_to(p);
      p.pack("ttl_ms");
      p.pack(left);
    });
  }

  void do_list(msg::incoming& req, time_point t) {
    const auto prefix = take(wire::optional_string_arg(req.args(), "prefix"));
    const std::vector<name_record> all = book_->list(prefix.value_or(""), t);
    req.reply_ok([&](wire::packer& p) {
      p.pack_map(1);
      p.pack("names");
      p.pack_array(static_cast<std::uint32_t>(all.size()));
      for (const name_record& r : all) {
        p.pack_map(3);
        p.pack("name");
        p.pack(r.name);
        p.pack("endpoint");
        p.pack(r.endpoint);
        p.pack("meta");
        r.meta.write_to(p);
      }
    });
  }

  void do_join(msg::incoming& req, time_point t) {
    const msgpack::object& args = req.args();
    const std::string_view group = bounded(take(wire::string_arg(args, "group")), "group");
    const std::string_view member = bounded(take(wire::string_arg(args, "member")), "member");
    const auto endpoint = take(wire::optional_string_arg(args, "endpoint"));
    if (endpoint && endpoint->size() > limits_.max_name_bytes)
      throw invalid_args("endpoint is longer than " + std::to_string(limits_.max_name_bytes) + " bytes");
    const auto lease = take(wire::optional_string_arg(args, "lease"));
    const auto ttl = ttl_arg(args);
    wire::value meta = meta_arg(args);
    if (book_->members(group, t).size() >= limits_.max_members) {
      req.reply_error(wire::error_code::overloaded,
                      "the group holds its limit of " + std::to_string(limits_.max_members) + " members");
      return;
    }
    outcome<grant> g = book_->join(group, member, endpoint.value_or(""), std::move(meta), ttl, lease, t);
    if (refused(req, g)) return;
    reply_grant(req, g.value);
  }

  void do_leave(msg::incoming& req, time_point t) {
    const std::string_view group = take(wire::string_arg(req.args(), "group"));
    const std::string_view member = take(wire::string_arg(req.args(), "member"));
    const bool removed = book_->leave(group, member, t);
    req.reply_ok([&](wire::packer& p) {
      p.pack_map(1);
      p.pack("removed");
      p.pack(removed);
    });
  }

  void do_members(msg::incoming& req, time_point t) {
    const std::string_view group = take(wire::string_arg(req.args(), "group"));
    const std::vector<member_record> all = book_->members(group, t);
    req.reply_ok([&](wire::packer& p) {
      p.pack_map(1);
      p.pack("members");
      p.pack_array(static_cast<std::uint32_t>(all.size()));
      for (const member_record& m : all) {
        p.pack_map(3);
        p.pack("member");
        p.pack(m.member);
        p.pack("endpoint");
        p.pack(m.endpoint);
        p.pack("meta");
        m.meta.write_to(p);
      }
    });
  }

  void expire(time_point t) {
    for (removed_name& r : book_->expire(t)) {
      expirations_ += 1;
      announce_removal(std::move(r.name), r.why);
    }
  }

  void announce_removal(std::string name, removal why) {
    ctx_->publish("unregistered", 2, [&](wire::packer& p) {
      p.pack("name");
      p.pack(name);
      p.pack("reason");
      p.pack(why == removal::expired ? "expired" : "unregistered");
    });
  }

  void arm(time_point t) { expiry_.arm(system(), self(), t, book_->next_expiry(), expire_tick{}); }

  void publish_counts() {
    names_ = static_cast<std::int64_t>(book_->names());
    leases_ = static_cast<std::int64_t>(book_->leases());
    groups_ = static_cast<std::int64_t>(book_->groups());
  }

  canopy::app::context* ctx_;
  std::shared_ptr<lease_book> book_;
  limits limits_;
  canopy::app::earliest_timer expiry_;
  // info.stats counters, looked up once (a lookup takes the counters' lock).
  std::atomic<std::int64_t>& names_;
  std::atomic<std::int64_t>& leases_;
  std::atomic<std::int64_t>& groups_;
  std::atomic<std::int64_t>& registrations_;
  std::atomic<std::int64_t>& expirations_;
};

}  // namespace

app::app() = default;
app::~app() = default;

void app::configure(canopy::app::config& c) {
  using std::chrono::milliseconds;
  limits_.default_ttl = c.milliseconds("registry.default_ttl_ms", limits_.default_ttl, milliseconds(1),
                                       milliseconds(86400000));
  limits_.max_ttl = c.milliseconds("registry.max_ttl_ms", limits_.max_ttl, milliseconds(1), milliseconds(86400000));
  limits_.max_names = static_cast<std::size_t>(c.integer("registry.max_names", 100000, 1, 100000000));
  limits_.max_members = static_cast<std::size_t>(c.integer("registry.max_members", 100000, 1, 100000000));
  limits_.max_name_bytes = static_cast<std::size_t>(c.integer("registry.max_name_bytes", 256, 1, 65536));
  if (limits_.default_ttl > limits_.max_ttl)
    c.fail("registry.default_ttl_ms", "is greater than registry.max_ttl_ms");
}

std::vector<child_spec> app::children(canopy::app::context& ctx) {
  // The book outlives the server's restarts: a crash answers one request internal and
  // loses nothing else.
  book_ = std::make_shared<lease_book>(std::random_device{}() ^ (std::uint64_t{std::random_device{}()} << 32));
  return {canopy::app::named_worker<server>("registry.server", server_name, &ctx, book_, limits_)};
}

std::string_view app::route(std::string_view op) const {
  static constexpr std::string_view ops[] = {"register", "renew", "unregister", "lookup", "list",
                                             "join",     "leave", "members",    "crash"};
  for (std::string_view o : ops)
    if (o == op) return server_name;
  return {};
}

}  // namespace canopy::registry_app
