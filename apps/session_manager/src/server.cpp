// The server process: every session op arrives here. It answers list and count from the
// registry, starts sessions for open, and hands the rest to the user's session process,
// which answers them itself (sessions work in parallel; the server only looks up and
// forwards).
#include <spdlog/logger.h>

#include <algorithm>
#include <queue>
#include <stdexcept>

#include "canopy/app/handler.hpp"
#include "canopy/core/runtime.hpp"
#include "canopy/otp/gen_server.hpp"
#include "canopy/otp/supervisor.hpp"
#include "parts.hpp"

namespace canopy::session_app {

using canopy::app::invalid_args;
using canopy::app::take;

std::string_view user_arg(const msgpack::object& args, const options& o) {
  const std::string_view user = take(wire::string_arg(args, "user"));
  if (user.empty()) throw invalid_args("user must not be empty");
  if (user.size() > o.max_user_bytes)
    throw invalid_args("user is longer than " + std::to_string(o.max_user_bytes) + " bytes");
  return user;
}

namespace {

struct wait_for_restore {};

// An open handed back this often (its session kept ending under it, or kept restarting)
// is answered internal rather than tried forever.
constexpr unsigned max_open_attempts = 50;
constexpr auto restarting_retry = std::chrono::milliseconds(2);

class server final : public gen_server {
 public:
  explicit server(std::shared_ptr<manager_env> env) : env_(std::move(env)) {}

 protected:
  result init() override {
    dir_ = directory::whereis(directory_name);
    sessions_ = resolve(sessions_name);
    store_ = resolve(store_name);
    if (!dir_ || !sessions_)
      return stop(exit_reason::other("no_sessions", "the registry or the sessions' supervisor is not running"));
    return ok().and_continue(wait_for_restore{});
  }

  // Requests queue behind this until the sessions the cache holds are back (or the wait
  // times out), so nobody sees a restored session missing.
  result handle_continue(message&) override {
    await_restore();
    return noreply();
  }

  result handle_cast(message& m) override {
    if (auto* req = m.get<msg::incoming>()) {
      serve(*req, 0);
    } else if (auto* again = m.get<retry_open>()) {
      serve(again->req, again->attempts);
    }
    return noreply();
  }

  result handle_info(message& m) override {
    if (auto* again = m.get<retry_open>()) serve(again->req, again->attempts);  // a timer's
    return noreply();
  }

 private:
  [[nodiscard]] const options& opts() const noexcept { return env_->opts; }

  async await_restore() {
    if (!store_) co_return;
    await_restored ask;
    auto done = co_await process::call<bool>(store_, std::move(ask), opts().restore_timeout);
    if (!done)
      env_->ctx->log().warn("canopy-session-manager: serving before the restore from the cache finished: {}",
                            done.error().to_string());
  }

  void serve(msg::incoming& req, unsigned attempts) {
    canopy::app::answer(req, [&] { route(req, attempts); });
  }

  struct found {
    pid owner;
    std::shared_ptr<session_state> state;
  };
  // The user's running session, if any (a holder that is exiting counts as none).
  found live(std::string_view user) const {
    std::vector<directory::entry> e = dir_->lookup(std::string(user));
    if (e.empty() || !system().is_alive(e[0].owner)) return {};
    return {e[0].owner, e[0].value};
  }

  void route(msg::incoming& req, unsigned attempts) {
    const std::string_view op = req.op();
    const msgpack::object& args = req.args();
    if (op == "count") {
      const auto n = static_cast<std::uint64_t>(dir_->count());
      req.reply_ok([&](wire::packer& p) {
        p.pack_map(1);
        p.pack("count");
        p.pack(n);
      });
      return;
    }
    if (op == "list") return list(req);
    if (op == "crash" && wire::find(args, "user") == nullptr)
      throw std::runtime_error("fault injection: the crash op on the session manager's server");

    const std::string_view user = user_arg(args, opts());
    found s = live(user);
    if (op == "open") return open(req, user, std::move(s), attempts);
    if (!s.owner) {
      if (op == "close") {
        req.reply_ok([](wire::packer& p) {
          p.pack_map(1);
          p.pack("closed");
          p.pack(false);
        });
      } else if (env_->link.restarting(user)) {
        req.reply_error(wire::error_code::internal, "the session's process crashed and is being restarted; retry");
      } else {
        req.reply_error(wire::error_code::not_found, "no session for user " + std::string(user));
      }
      return;
    }
    forward(s, std::move(req), false, attempts);
  }

  void forward(const found& s, msg::incoming req, bool created, unsigned attempts) {
    process::cast(s.owner, session_request(std::move(req), created, attempts, s.state, &system()));
  }

  void open(msg::incoming& req, std::string_view user, found s, unsigned attempts) {
    const msgpack::object& args = req.args();
    // Checked here, before a session exists, so a bad open creates nothing.
    const auto idle = take(wire::optional_uint_arg(args, "idle_timeout_ms"));
    if (idle && (*idle < 1 || *idle > static_cast<std::uint64_t>(opts().max_idle_timeout.count())))
      throw invalid_args("idle_timeout_ms must be between 1 and " + std::to_string(opts().max_idle_timeout.count()));
    const msgpack::object* data = wire::find(args, "data");
    if (data != nullptr && data->type == msgpack::type::NIL) data = nullptr;
    if (data != nullptr && data->type != msgpack::type::MAP) throw invalid_args("data must be a map");

    if (s.owner) return forward(s, std::move(req), false, attempts);
    if (attempts >= max_open_attempts) {
      req.reply_error(wire::error_code::internal, "the session kept ending while it was opened; retry");
      return;
    }
    if (env_->link.restarting(user)) {  // its state comes back with the restart: wait for it
      send_after(restarting_retry, self(), retry_open{std::move(req), attempts + 1});
      return;
    }
    const std::uint64_t now_ms = canopy::app::context::wall_ms();
    record rec(std::string(user), now_ms, idle ? std::chrono::milliseconds(*idle) : opts().idle_timeout);
    if (data != nullptr && rec.merge(*data, opts().limits) == refusal::too_large) {
      req.reply_error(wire::error_code::too_large,
                      "data has more than " + std::to_string(opts().limits.max_data_bytes) + " bytes");
      return;
    }
    auto st = std::make_shared<session_state>(std::move(rec));
    st->deadline = deadline_after(system().clock().now(), st->rec.idle_timeout());
    start(std::move(req), std::move(st), attempts);
  }

  async start(msg::incoming req, std::shared_ptr<session_state> st, unsigned attempts) {
    start_child_request ask{session_spec(env_, *dir_, st)};
    auto started = co_await process::call<canopy::result<pid>>(sessions_, std::move(ask), std::chrono::seconds(5));
    if (!started) {
      req.reply_error(wire::error_code::internal, "the sessions' supervisor did not answer: " + started.error().to_string());
      co_return;
    }
    if (*started) {
      forward({**started, st}, std::move(req), true, attempts);
      co_return;
    }
    switch (started->code()) {
      case errc::already_started:  // the restore started it meanwhile: it is an open of that one
      case errc::ignored:
        serve(req, attempts + 1);
        break;
      case errc::max_children:
        req.reply_error(wire::error_code::overloaded, "the session manager holds its max_sessions (" +
                                                          std::to_string(opts().max_sessions) + ") sessions");
        break;
      default:
        req.reply_error(wire::error_code::internal, "the session did not start: " + started->error().to_string());
    }
  }

  // The first `limit` users in bytewise order, kept in a bounded heap while the registry is
  // walked (a million sessions are not copied to list a thousand).
  void list(msg::incoming& req) {
    const msgpack::object& args = req.args();
    const std::string prefix(take(wire::optional_string_arg(args, "prefix")).value_or(""));
    const std::uint64_t limit = take(wire::optional_uint_arg(args, "limit")).value_or(1000);
    if (limit < 1 || limit > 100000) throw invalid_args("limit must be between 1 and 100000");
    std::priority_queue<std::string> smallest;  // its top: the largest kept
    (void)dir_->select([&](const std::string& user, const pid&, const std::shared_ptr<session_state>&) {
      if (user.compare(0, prefix.size(), prefix) != 0) return false;
      if (smallest.size() < limit) {
        smallest.push(user);
      } else if (user < smallest.top()) {
        smallest.pop();
        smallest.push(user);
      }
      return false;  // nothing is copied out
    });
    std::vector<std::string> users;
    users.reserve(smallest.size());
    while (!smallest.empty()) {
      users.push_back(smallest.top());
      smallest.pop();
    }
    std::reverse(users.begin(), users.end());
    req.reply_ok([&](wire::packer& p) {
      p.pack_map(1);
      p.pack("users");
      p.pack(users);
    });
  }

  std::shared_ptr<manager_env> env_;
  std::optional<directory> dir_;
  pid sessions_, store_;
};

}  // namespace

child_spec server_spec(const std::shared_ptr<manager_env>& env) {
  return canopy::app::named_worker<server>(server_name, server_name, env);
}

}  // namespace canopy::session_app
