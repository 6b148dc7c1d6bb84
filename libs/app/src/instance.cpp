#include "canopy/app/instance.hpp"

#include <spdlog/logger.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <stdexcept>

#include "canopy/core/runtime.hpp"
#include "canopy/msg/remote.hpp"
#include "canopy/msg/server.hpp"
#include "canopy/otp/gen_server.hpp"
#include "registration.hpp"

namespace canopy::app {

// ---- counters and context ---------------------------------------------------------------------

std::atomic<std::int64_t>& counters::operator[](std::string_view name) {
  std::lock_guard lk(mu_);
  for (auto& [n, v] : all_)
    if (n == name) return v;
  all_.emplace_back(std::piecewise_construct, std::forward_as_tuple(name), std::forward_as_tuple(0));
  return all_.back().second;
}

void counters::write(wire::packer& p) const {
  std::lock_guard lk(mu_);
  p.pack_map(static_cast<std::uint32_t>(all_.size()));
  for (const auto& [n, v] : all_) {
    p.pack(n);
    p.pack(v.load(std::memory_order_relaxed));
  }
}

context::context(runtime& rt, settings s, std::shared_ptr<spdlog::logger> log)
    : rt_(rt), settings_(std::move(s)), log_(std::move(log)) {}
context::~context() = default;

void context::add_info(std::string key, std::function<void(wire::packer&)> write_value) {
  extra_info_.emplace_back(std::move(key), std::move(write_value));
}

void context::attach(msg::server* server, std::string app_id) {
  app_id_ = std::move(app_id);
  server_.store(server, std::memory_order_release);
}

std::uint64_t context::wall_ms() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

void context::publish_bytes(std::string topic, msgpack::sbuffer payload) {
  if (msg::server* s = server_.load(std::memory_order_acquire)) s->publish(std::move(topic), std::move(payload));
}

// ---- the common ops ---------------------------------------------------------------------------

namespace {

constexpr const char* control_name = "app.control";

void write_tree(wire::packer& p, const supervision_tree& t) {
  const bool sup = t.type == child_type::supervisor;
  p.pack_map((sup ? 6 : 5) + (t.omitted > 0 ? 1 : 0));
  p.pack("id");
  p.pack(t.id);
  p.pack("kind");
  p.pack(sup ? "supervisor" : "worker");
  p.pack("pid");
  p.pack(t.self ? t.self.to_string() : std::string("undefined"));
  if (sup) {
    p.pack("strategy");
    p.pack(to_string(t.strategy));
  }
  p.pack("restarts");
  p.pack(t.restarts);
  p.pack("children");
  p.pack_array(static_cast<std::uint32_t>(t.children.size()));
  for (const supervision_tree& c : t.children) write_tree(p, c);
  if (t.omitted > 0) {  // a dynamic supervisor lists only its first children
    p.pack("omitted");
    p.pack(t.omitted);
  }
}

// Serves ping, info and tree for the whole app.
class control final : public gen_server {
 public:
  struct facts {
    std::string app, version;
    std::string endpoint, events_endpoint;
    std::chrono::steady_clock::time_point started;
    msg::server* server = nullptr;
  };
  control(context* ctx, std::shared_ptr<const facts> f) : ctx_(ctx), facts_(std::move(f)) {}

 protected:
  result handle_cast(message& m) override {
    auto* req = m.get<msg::incoming>();
    if (req == nullptr) return noreply();
    if (req->op() == "ping") {
      req->reply_ok([&](wire::packer& p) {
        p.pack_map(3);
        p.pack("app");
        p.pack(facts_->app);
        p.pack("version");
        p.pack(facts_->version);
        p.pack("protocol");
        p.pack(1);
      });
    } else if (req->op() == "info") {
      answer_info(*req);
    } else if (req->op() == "tree") {
      answer_tree(std::move(*req));
    } else {
      req->reply_error(wire::error_code::unknown_op, "no op " + std::string(req->op()));
    }
    return noreply();
  }

 private:
  void answer_info(msg::incoming& req) {
    const auto uptime = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                              facts_->started);
    const msg::server_stats server = facts_->server->stats();
    const registration_status reg = ctx_->registration();
    req.reply_ok([&](wire::packer& p) {
      p.pack_map(9 + static_cast<std::uint32_t>(ctx_->extra_info().size()));
      p.pack("app");
      p.pack(facts_->app);
      p.pack("version");
      p.pack(facts_->version);
      p.pack("uptime_ms");
      p.pack(static_cast<std::uint64_t>(uptime.count()));
      p.pack("os_pid");
      p.pack(static_cast<std::int64_t>(::getpid()));
      p.pack("endpoint");
      p.pack(facts_->endpoint);
      p.pack("events_endpoint");
      p.pack(facts_->events_endpoint);
      p.pack("stats");
      ctx_->stats().write(p);
      p.pack("server");
      p.pack_map(6);
      p.pack("received");
      p.pack(server.received);
      p.pack("refused");
      p.pack(server.refused);
      p.pack("replied");
      p.pack(server.replied);
      p.pack("dropped");
      p.pack(server.dropped);
      p.pack("in_flight");
      p.pack(server.in_flight);
      p.pack("events");
      p.pack(server.events);
      p.pack("registry");
      write_registration(p, reg);
      for (const auto& [key, write_value] : ctx_->extra_info()) {
        p.pack(key);
        write_value(p);
      }
    });
  }

  async answer_tree(msg::incoming req) {
    auto tree = co_await process::call<supervision_tree>(parent(), tree_request{});
    if (!tree) {
      req.reply_error(wire::error_code::internal, "the tree could not be read: " + tree.error().to_string());
      co_return;
    }
    if (tree->id.empty()) tree->id = facts_->app + ".sup";  // the top supervisor has no spec
    req.reply_ok([&](wire::packer& p) { write_tree(p, *tree); });
  }

  context* ctx_;
  std::shared_ptr<const facts> facts_;
};

}  // namespace

// ---- instance ---------------------------------------------------------------------------------

struct instance::impl {
  application* app = nullptr;
  std::unique_ptr<runtime> rt;
  std::unique_ptr<context> ctx;
  std::unique_ptr<msg::server> server;
  std::unique_ptr<msg::remote> registry;  // after the tree stops, before the runtime
  std::atomic<bool> ready{false};
  pid top;
  bool stopped = false;
  std::chrono::milliseconds shutdown_timeout{5000};

  void route(msg::incoming req) {
    if (!ready.load(std::memory_order_acquire)) {
      req.reply_error(wire::error_code::unavailable, "the app is starting or stopping");
      return;
    }
    const std::string_view op = req.op();
    std::string_view target;
    if (op == "ping" || op == "info" || op == "tree") {
      target = control_name;
    } else if (op == "crash" && !ctx->config().fault_injection) {
      target = {};
    } else {
      target = app->route(op);
    }
    if (target.empty()) {
      req.reply_error(wire::error_code::unknown_op, "no op '" + std::string(op) + "' on " + std::string(app->id()));
      return;
    }
    const pid to = rt->whereis(target);
    if (!to) {
      req.reply_error(wire::error_code::internal,
                      "the process serving '" + std::string(op) + "' is being restarted; retry");
      return;
    }
    rt->cast(to, std::move(req));  // should it die first, the request answers internal itself
  }
};

instance::instance(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
instance::~instance() { stop(); }

canopy::result<std::unique_ptr<instance>> instance::start(application& app, settings s,
                                                          std::shared_ptr<spdlog::logger> log,
                                                          std::shared_ptr<canopy::clock> clock) {
  if (!log) log = spdlog::default_logger();
  auto p = std::make_unique<impl>();
  p->app = &app;
  p->shutdown_timeout = s.shutdown_timeout;
  if (s.endpoint.empty()) s.endpoint = app.default_endpoint();
  if (s.events_endpoint.empty()) s.events_endpoint = app.default_events_endpoint();

  runtime_config rc;
  rc.logger = log;
  rc.clock = std::move(clock);
  if (s.threads > 0) rc.threads = s.threads;
  rc.shutdown_timeout = s.shutdown_timeout;
  p->rt = std::make_unique<runtime>(rc);

  msg::server_options so;
  so.endpoint = s.endpoint;
  so.events_endpoint = s.events_endpoint;
  so.limits.max_message_bytes = s.max_message_bytes;
  so.max_in_flight = s.max_in_flight;
  so.events_hwm = s.events_hwm;
  so.curve = s.curve;
  so.logger = log;
  if (s.scheduler_polls) so.runtime = p->rt.get();
  impl* raw = p.get();
  auto server = msg::server::start(std::move(so), [raw](msg::incoming req) { raw->route(std::move(req)); });
  if (!server) return server.error();
  p->server = std::move(*server);

  p->ctx = std::make_unique<context>(*p->rt, s, log);
  p->ctx->attach(p->server.get(), std::string(app.id()));

  auto facts = std::make_shared<control::facts>();
  facts->app = std::string(app.id());
  facts->version = std::string(app.version());
  facts->endpoint = p->server->endpoint();
  facts->events_endpoint = p->server->events_endpoint();
  facts->started = std::chrono::steady_clock::now();
  facts->server = p->server.get();

  std::vector<child_spec> children;
  children.push_back(named_worker<control>("app.control", control_name, p->ctx.get(),
                                           std::shared_ptr<const control::facts>(facts)));
  for (child_spec& c : app.children(*p->ctx)) children.push_back(std::move(c));
  if (app.self_registers() && s.registry != "none") {
    auto remote = msg::remote::start(*p->rt, s.registry,
                                     {.linger = std::chrono::milliseconds(500),
                                      .send_timeout = std::chrono::milliseconds(1000),
                                      .curve = s.registry_curve});
    if (!remote) {
      p->server->stop();
      return error(errc::invalid_argument, "registry " + s.registry + ": " + remote.error().to_string());
    }
    p->registry = std::move(*remote);
    p->ctx->attach_registry(p->registry.get());
    children.push_back(registration_spec(p->ctx.get(), p->server->endpoint(), p->server->events_endpoint(),
                                         std::string(app.version())));
  } else {
    p->ctx->set_registration({app.self_registers() ? "standalone" : "self", {}, {}});
  }

  auto top = supervisor::start(*p->rt, app.flags(), std::move(children), std::string(app.id()) + ".sup");
  if (!top) {
    app.stopped(*p->ctx);  // what its processes made goes before the runtime does
    p->server->stop();
    return error(errc::start_failed, "the supervision tree of " + std::string(app.id()) +
                                         " did not start: " + top.error().to_string());
  }
  p->top = *top;
  p->ready.store(true, std::memory_order_release);
  log->info("canopy-{} {} serving on {} (events {})", app.id(), app.version(), p->server->endpoint(),
            p->server->events_endpoint());
  return std::unique_ptr<instance>(new instance(std::move(p)));
}

const std::string& instance::endpoint() const noexcept { return impl_->server->endpoint(); }
const std::string& instance::events_endpoint() const noexcept { return impl_->server->events_endpoint(); }
runtime& instance::rt() noexcept { return *impl_->rt; }
context& instance::ctx() noexcept { return *impl_->ctx; }
pid instance::top() const { return impl_->top; }

bool instance::stop() {
  if (impl_->stopped) return true;
  impl_->stopped = true;
  impl_->ready.store(false, std::memory_order_release);
  bool in_time = true;
  if (impl_->top) {
    auto watch = impl_->rt->watch(impl_->top);
    impl_->rt->exit(impl_->top, exit_reason::shutdown());
    in_time = static_cast<bool>(watch.wait(impl_->shutdown_timeout));
    if (!in_time)
      impl_->ctx->log().warn("canopy-{}: the tree did not stop within {} ms; the rest is killed", impl_->app->id(),
                             impl_->shutdown_timeout.count());
  }
  impl_->ctx->attach(nullptr, std::string(impl_->app->id()));
  impl_->app->stopped(*impl_->ctx);
  if (impl_->registry) impl_->registry->stop();  // sends the unregister the tree's stop cast
  impl_->server->stop();
  impl_->rt->shutdown();
  return in_time;
}

}  // namespace canopy::app
