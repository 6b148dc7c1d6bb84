#include "registration.hpp"

#include <spdlog/logger.h>
#include <unistd.h>

#include <algorithm>

#include "canopy/core/runtime.hpp"
#include "canopy/msg/remote.hpp"
#include "canopy/otp/gen_server.hpp"

namespace canopy::app {

namespace {

struct tick {};

class registration final : public gen_server {
 public:
  registration(context* ctx, std::string endpoint, std::string events_endpoint, std::string version)
      : ctx_(ctx), endpoint_(std::move(endpoint)), events_(std::move(events_endpoint)), version_(std::move(version)) {}

 protected:
  result init() override {
    process_flag(trap_exit::on);  // so terminate runs on the supervisor's shutdown
    ctx_->set_registration({"registering", {}, {}});
    return ok().and_continue(tick{});
  }
  result handle_continue(message&) override {
    step();
    return noreply();
  }
  result handle_info(message& m) override {
    if (m.get<tick>()) step();
    return noreply();
  }
  void terminate(const exit_reason&) override {
    if (lease_.empty() || ctx_->registry() == nullptr) return;
    // Best effort, not awaited: the remote sends it while it stops.
    const std::string name = ctx_->app_id();
    const std::string lease = lease_;
    ctx_->registry()->cast("unregister", 2, [&](wire::packer& p) {
      p.pack("name");
      p.pack(name);
      p.pack("lease");
      p.pack(lease);
    });
  }

 private:
  [[nodiscard]] std::chrono::milliseconds ttl() const { return ctx_->config().registry_ttl; }

  async step() {
    msg::remote* reg = ctx_->registry();
    const msg::request_options opts{.timeout = std::min(ttl() / 3, std::chrono::milliseconds(2000))};
    if (!lease_.empty()) {
      const std::string lease = lease_;
      msg::reply r = co_await reg->call(
          "renew", 1,
          [&](wire::packer& p) {
            p.pack("lease");
            p.pack(lease);
          },
          opts);
      if (r.ok) {
        failures_ = 0;
        ctx_->set_registration({"registered", lease_, {}});
        again(ttl() / 3);
        co_return;
      }
      if (r.code != wire::error_code::not_found) {
        failed(r, "renew");
        co_return;
      }
      ctx_->log().info("canopy-{}: the registry forgot lease {}; registering again", ctx_->app_id(), lease_);
      lease_.clear();
    }
    const std::string name = ctx_->app_id();
    const auto ttl_ms = static_cast<std::uint64_t>(ttl().count());
    msg::reply r = co_await reg->call(
        "register", 4,
        [&](wire::packer& p) {
          p.pack("name");
          p.pack(name);
          p.pack("endpoint");
          p.pack(endpoint_);
          p.pack("ttl_ms");
          p.pack(ttl_ms);
          p.pack("meta");
          p.pack_map(3);
          p.pack("events");
          p.pack(events_);
          p.pack("version");
          p.pack(version_);
          p.pack("os_pid");
          p.pack(static_cast<std::int64_t>(::getpid()));
        },
        opts);
    const msgpack::object* lease = r.ok && r.result ? wire::find(*r.result, "lease") : nullptr;
    if (lease != nullptr && lease->type == msgpack::type::STR) {
      lease_.assign(lease->via.str.ptr, lease->via.str.size);
      failures_ = 0;
      ctx_->set_registration({"registered", lease_, {}});
      ctx_->log().info("canopy-{}: registered with the registry at {} (lease {})", name, reg->endpoint(), lease_);
      again(ttl() / 3);
      co_return;
    }
    failed(r, "register");
  }

  void failed(const msg::reply& r, const char* what) {
    ++failures_;
    const std::string why = std::string(what) + ": " + std::string(wire::to_string(r.code)) + " " + r.message;
    const bool taken = r.code == wire::error_code::already_exists;
    ctx_->set_registration({taken ? "name_taken" : "unavailable", lease_, why});
    if (failures_ == 1) ctx_->log().warn("canopy-{}: registry {}: {}; retrying", ctx_->app_id(), ctx_->registry()->endpoint(), why);
    // Backoff 200 ms, 400 ms, ... up to a third of the ttl (a held name frees within a ttl).
    const auto backoff = std::chrono::milliseconds(200) * (1 << std::min(failures_ - 1, 6));
    again(std::min<std::chrono::milliseconds>(backoff, ttl() / 3));
  }

  void again(std::chrono::milliseconds after) { send_after(after, self(), tick{}); }

  context* ctx_;
  std::string endpoint_, events_, version_;
  std::string lease_;
  int failures_ = 0;
};

}  // namespace

child_spec registration_spec(context* ctx, std::string endpoint, std::string events_endpoint, std::string version) {
  return named_worker<registration>("app.registration", "app.registration", ctx, std::move(endpoint),
                                    std::move(events_endpoint), std::move(version))
      .shutdown(shutdown_policy::timeout(std::chrono::seconds(1)));
}

void write_registration(wire::packer& p, const registration_status& s) {
  const std::uint32_t n = 1 + (s.lease.empty() ? 0 : 1) + (s.last_error.empty() ? 0 : 1);
  p.pack_map(n);
  p.pack("state");
  p.pack(s.state);
  if (!s.lease.empty()) {
    p.pack("lease");
    p.pack(s.lease);
  }
  if (!s.last_error.empty()) {
    p.pack("last_error");
    p.pack(s.last_error);
  }
}

registration_status context::registration() const {
  std::lock_guard lk(registration_mu_);
  return registration_;
}

void context::set_registration(registration_status s) {
  std::lock_guard lk(registration_mu_);
  registration_ = std::move(s);
}

}  // namespace canopy::app
