#pragma once
// app::application: what one Canopy app is — its id, its own config keys, the children of
// its supervision tree, which process serves which op, and its counters for `info`. The
// app kit (app::instance, app::run) does the rest the same way for every app: config and
// flags, logging, the msg::server, the common ops (ping / info / tree), self-registration
// with the registry app, signals and ordered shutdown.
// Thread-safety: configure() and children() run once, on the starting thread; route() runs
// on the server's I/O thread for every request and must only read.
//
//   class echo_app final : public canopy::app::application {
//    public:
//     std::string_view id() const override { return "echo"; }
//     void configure(canopy::app::config& c) override { greeting_ = c.string("echo.greeting", "hi"); }
//     std::vector<canopy::child_spec> children(canopy::app::context& ctx) override {
//       return {canopy::child_spec::worker<echo_server>("echo", &ctx, greeting_)};
//     }
//     std::string_view route(std::string_view op) const override { return op == "echo" ? "echo.server" : ""; }
//   };
//
// A request whose op route() maps to a process name is sent to the process registered
// under that name as a msg::incoming (in handle_cast / receive: m.get<msg::incoming>());
// the process answers it, from any thread, once. An op no one routes is `unknown_op`; an op
// whose process is not running at that moment (being restarted) is answered `internal`.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "canopy/app/config.hpp"
#include "canopy/core/pid.hpp"
#include "canopy/msg/curve.hpp"
#include "canopy/otp/child_spec.hpp"
#include "canopy/otp/supervisor.hpp"
#include "canopy/wire/codec.hpp"

namespace spdlog {
class logger;
}

namespace canopy {
class runtime;
}

namespace canopy::msg {
class server;
class remote;
}

namespace canopy::app {

// The keys every app shares (the top level of its TOML file) and their flags.
struct settings {
  std::string endpoint;         // endpoint / --endpoint: where the ROUTER binds
  std::string events_endpoint;  // events / --events: where the PUB binds
  std::string registry = "tcp://127.0.0.1:7400";  // registry_endpoint / --registry; "none": standalone
  std::string data_dir = "data";                  // data_dir / --data-dir
  std::string log_level = "info";                 // log_level / --log-level
  unsigned threads = 0;                           // threads: scheduler threads, 0 = one per core
  // scheduler_polls: the request socket is polled from idle scheduler threads, so a request
  // runs on the thread that received it (msg::server_options::runtime); false: the
  // server's own thread polls and hands requests over.
  bool scheduler_polls = true;
  std::size_t max_message_bytes = 1 << 20;        // max_message_bytes
  std::size_t max_in_flight = 10000;              // max_in_flight: past it, overloaded
  int events_hwm = 10000;                         // events_hwm: events queued per subscriber that lags
  std::chrono::milliseconds shutdown_timeout{5000};  // shutdown_timeout_ms
  std::chrono::milliseconds registry_ttl{10000};     // registry_ttl_ms: the lease's ttl
  msg::curve_server_keys curve;                      // [curve] secret_key_file, allowed_clients
  msg::curve_client_keys registry_curve;             // [curve] registry_server_key, ... (to reach the registry)
  bool fault_injection = false;                      // fault_injection: the `crash` op (tests, soak)
};

// Named counters an app keeps for `info.stats` (and its own ops). Thread-safe.
class counters {
 public:
  // The counter named `name`, created at 0 (references stay valid).
  std::atomic<std::int64_t>& operator[](std::string_view name);
  // {name: value, ...} as one msgpack map.
  void write(wire::packer& p) const;

 private:
  mutable std::mutex mu_;
  std::deque<std::pair<std::string, std::atomic<std::int64_t>>> all_;
};

// Where the app stands with the registry app (info.registry).
struct registration_status {
  std::string state;       // registering, registered, unavailable, name_taken, standalone, self
  std::string lease;       // while registered
  std::string last_error;  // the last failure, if any
};

// What the kit hands an app's processes: the runtime, the settings, the logger, events,
// the connection to the registry app.
class context {
 public:
  context(runtime& rt, settings s, std::shared_ptr<spdlog::logger> log);
  ~context();

  [[nodiscard]] runtime& rt() const noexcept { return rt_; }
  [[nodiscard]] const settings& config() const noexcept { return settings_; }
  [[nodiscard]] spdlog::logger& log() const noexcept { return *log_; }
  [[nodiscard]] const std::shared_ptr<spdlog::logger>& logger() const noexcept { return log_; }
  [[nodiscard]] counters& stats() noexcept { return stats_; }
  [[nodiscard]] const std::string& app_id() const noexcept { return app_id_; }

  // Publishes `<app id>.<event>` with a map of `pairs` key/value pairs written by
  // write_fields, plus ts_ms. From any thread; dropped before the server is up.
  template <class F>
  void publish(std::string_view event, std::uint32_t pairs, F&& write_fields) {
    msgpack::sbuffer buf(128);
    wire::encode_event(buf, wall_ms(), pairs, std::forward<F>(write_fields));
    publish_bytes(app_id_ + "." + std::string(event), std::move(buf));
  }

  // An app's own field of `info` beside the kit's (the session manager's `store`):
  // `write_value` packs exactly one value. It runs in the control process, concurrently with
  // the app's processes, so it must only read thread-safe state. Add fields in children(),
  // before the tree starts.
  void add_info(std::string key, std::function<void(wire::packer&)> write_value);
  [[nodiscard]] const std::vector<std::pair<std::string, std::function<void(wire::packer&)>>>& extra_info() const noexcept {
    return extra_info_;
  }

  // The registry app, for requests from processes (null when standalone).
  [[nodiscard]] msg::remote* registry() const noexcept { return registry_; }
  [[nodiscard]] registration_status registration() const;
  void set_registration(registration_status s);

  // Internal (the kit).
  void attach(msg::server* server, std::string app_id);
  void attach_registry(msg::remote* r) noexcept { registry_ = r; }
  [[nodiscard]] static std::uint64_t wall_ms();

 private:
  void publish_bytes(std::string topic, msgpack::sbuffer payload);

  runtime& rt_;
  settings settings_;
  std::shared_ptr<spdlog::logger> log_;
  counters stats_;
  std::string app_id_;
  std::atomic<msg::server*> server_{nullptr};
  std::vector<std::pair<std::string, std::function<void(wire::packer&)>>> extra_info_;
  msg::remote* registry_ = nullptr;
  mutable std::mutex registration_mu_;
  registration_status registration_;
};

// A gen_server child registered under `name` (what route() answers), started with
// start_link<S>(args...) (args copied for restarts).
template <class S, class... A>
child_spec named_worker(std::string id, std::string name, A... args) {
  return child_spec(std::move(id), [name = std::move(name), args = std::make_tuple(std::move(args)...)]() {
    return child_start::ready(std::apply(
        [&](const auto&... a) { return gen_server::start_link<S>(gen_server_options{.name = name}, a...); }, args));
  });
}

class application {
 public:
  virtual ~application() = default;

  // The app id of docs/protocol.md ("registry", "cache", ...): names the binary
  // (canopy-<id>), the config file (config/<id>.toml), event topics and the registry name.
  [[nodiscard]] virtual std::string_view id() const = 0;
  [[nodiscard]] virtual std::string_view version() const { return "0.1.0"; }
  // The protocol's default endpoints for this app.
  [[nodiscard]] virtual std::string default_endpoint() const = 0;
  [[nodiscard]] virtual std::string default_events_endpoint() const = 0;
  // Whether the app registers itself with the registry app (the registry does not).
  [[nodiscard]] virtual bool self_registers() const { return true; }

  // Reads the app's own keys (under [<id>]); report bad combinations with c.fail().
  virtual void configure(config& c) = 0;
  // The app's strategy and intensity for its top supervisor.
  [[nodiscard]] virtual supervisor_flags flags() const { return {}; }
  // The children of the top supervisor, in start order (stopped in reverse). `ctx` lives
  // as long as the tree.
  virtual std::vector<child_spec> children(context& ctx) = 0;
  // The registered name of the process that serves `op`, or empty: unknown_op.
  [[nodiscard]] virtual std::string_view route(std::string_view op) const = 0;
  // After the tree stopped (also when it did not stop in time and was killed), before the
  // runtime shuts down: release what must go before it (a msg::remote the app's processes
  // made, say). On the stopping thread.
  virtual void stopped(context& /*ctx*/) {}
};

}  // namespace canopy::app
