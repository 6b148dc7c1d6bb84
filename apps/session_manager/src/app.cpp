#include "canopy/session_app/app.hpp"

#include "canopy/msg/curve.hpp"
#include "canopy/otp/dynamic_supervisor.hpp"
#include "parts.hpp"

namespace canopy::session_app {

namespace {

// The largest session record the cache takes by default (its max_value_bytes): with the
// limits above it, a session could not be written through.
constexpr std::int64_t cache_default_max_value_bytes = 1 << 20;

bool write_through_enabled(const options& o, const canopy::app::settings& s) {
  if (o.cache_endpoint == "none") return false;
  return !o.cache_endpoint.empty() || s.registry != "none";  // empty: found through the registry
}

}  // namespace

app::app() = default;
app::~app() = default;

void app::configure(canopy::app::config& c) {
  using ms = std::chrono::milliseconds;
  options o;
  o.idle_timeout = c.milliseconds("session_manager.idle_timeout_ms", o.idle_timeout, ms(1), ms(1ll << 40));
  o.max_idle_timeout = c.milliseconds("session_manager.max_idle_timeout_ms", o.max_idle_timeout, ms(1), ms(1ll << 40));
  o.max_sessions = static_cast<std::uint64_t>(c.integer("session_manager.max_sessions", 2000000, 1, 1ll << 32));
  o.max_user_bytes = static_cast<std::size_t>(c.integer("session_manager.max_user_bytes", 256, 1, 65536));
  o.limits.max_messages = static_cast<std::size_t>(c.integer("session_manager.max_messages", 100, 0, 100000));
  o.limits.max_message_value_bytes =
      static_cast<std::size_t>(c.integer("session_manager.max_message_value_bytes", 4096, 1, 1 << 20));
  o.limits.max_data_bytes = static_cast<std::size_t>(c.integer("session_manager.max_data_bytes", 65536, 1, 1 << 20));
  o.restart = c.choice("session_manager.restart", "transient", {"transient", "temporary"}) == "temporary"
                  ? restart_type::temporary
                  : restart_type::transient;
  o.max_restarts = static_cast<unsigned>(c.integer("session_manager.max_restarts", 100, 0, 1000000));
  o.restart_period = c.milliseconds("session_manager.restart_period_ms", o.restart_period, ms(1), ms(3600000));
  o.cache_endpoint = c.string("session_manager.cache_endpoint", "");
  o.cache_server_key = c.string("session_manager.cache_server_key", "");
  if (!o.cache_server_key.empty()) {
    if (auto ok = msg::check_curve_key(o.cache_server_key, "session_manager.cache_server_key"); !ok)
      c.fail("session_manager.cache_server_key", ok.error().to_string());
    if (!c.has("curve.secret_key_file"))
      c.fail("session_manager.cache_server_key", "needs curve.secret_key_file (this app's own key pair)");
  }
  o.cache_prefix = c.string("session_manager.cache_prefix", o.cache_prefix);
  o.cache_timeout = c.milliseconds("session_manager.cache_timeout_ms", o.cache_timeout, ms(1), ms(60000));
  o.cache_check = c.milliseconds("session_manager.cache_check_ms", o.cache_check, ms(10), ms(3600000));
  o.restore_timeout = c.milliseconds("session_manager.restore_timeout_ms", o.restore_timeout, ms(0), ms(3600000));
  const std::int64_t cache_max_value =
      c.integer("session_manager.cache_max_value_bytes", cache_default_max_value_bytes, 1024, 64ll << 20);

  if (o.idle_timeout > o.max_idle_timeout)
    c.fail("session_manager.idle_timeout_ms", "is longer than max_idle_timeout_ms");
  if (o.cache_prefix.empty()) c.fail("session_manager.cache_prefix", "must not be empty");
  const std::size_t worst = record::max_encoded_bytes(o.limits, o.max_user_bytes);
  if (worst > static_cast<std::size_t>(cache_max_value))
    c.fail("session_manager.max_messages",
           "a full session record could take " + std::to_string(worst) + " bytes, more than the cache takes (" +
               std::to_string(cache_max_value) +
               " bytes, cache_max_value_bytes): lower max_messages, max_message_value_bytes or max_data_bytes");
  options_ = o;
}

supervisor_flags app::flags() const {
  // rest_for_one: the sessions need the registry; the store and the server need both.
  return {.strategy = strategy::rest_for_one, .max_restarts = 3, .max_seconds = std::chrono::seconds(5)};
}

std::vector<child_spec> app::children(canopy::app::context& ctx) {
  auto env = std::make_shared<manager_env>(ctx, options_, write_through_enabled(options_, ctx.config()));
  if (!options_.cache_server_key.empty()) {
    const std::string& secret = ctx.config().curve.secret_key;
    if (auto pub = msg::curve_public_key(secret)) env->cache_curve = {options_.cache_server_key, *pub, secret};
  }
  env_ = env;
  ctx.add_info("store", [env](wire::packer& p) { env->link.write_info(p); });

  const registry_options directory_options{.name = directory_name, .keys = registry_keys::unique};
  child_spec directory_spec(directory_name, [directory_options]() { return directory::start_link(directory_options); });

  const dynamic_supervisor_options sessions_options{
      .max_children = static_cast<std::size_t>(options_.max_sessions),
      .max_restarts = options_.max_restarts,
      .max_seconds = options_.restart_period,
  };
  child_spec sessions_spec(sessions_name, [sessions_options]() {
    return dynamic_supervisor::start_link(sessions_options, process_name(sessions_name));
  });
  sessions_spec.type(child_type::supervisor);

  return {std::move(directory_spec), std::move(sessions_spec), store_spec(env), server_spec(env)};
}

void app::stopped(canopy::app::context&) {
  if (env_) env_->link.stop();  // the remotes go before the runtime
}

std::string_view app::route(std::string_view op) const {
  static constexpr std::string_view ops[] = {"open",   "refresh", "send", "messages", "get",
                                             "update", "close",   "list", "count",    "crash"};
  for (std::string_view o : ops)
    if (o == op) return server_name;
  return {};
}

}  // namespace canopy::session_app
