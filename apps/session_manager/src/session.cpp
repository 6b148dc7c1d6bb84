// The session process: one per user, serving that user's ops on its record, with one
// expiry timer, writing every change through to the cache before it answers.
#include <spdlog/logger.h>

#include <stdexcept>

#include "canopy/app/earliest_timer.hpp"
#include "canopy/app/handler.hpp"
#include "canopy/cache_client/process_client.hpp"
#include "canopy/core/runtime.hpp"
#include "canopy/otp/gen_server.hpp"
#include "parts.hpp"

namespace canopy::session_app {

namespace {

using canopy::app::invalid_args;
using canopy::app::take;

struct expire_tick {};

enum class event : std::uint8_t { none, opened, message };

// What an op decided: the reply (sent once the cache has what it must), and what to do
// around it.
struct decision {
  msgpack::sbuffer reply{128};
  bool write = false;  // write the record through first
  bool close = false;  // delete it from the cache first, then stop
  event announce = event::none;
  std::uint64_t seq = 0;
};

template <class F>
decision decided(const msg::incoming& req, F&& write_result) {
  decision d;
  wire::encode_ok(d.reply, req.id(), std::forward<F>(write_result));
  return d;
}

void empty_map(wire::packer& p) { p.pack_map(0); }

class session final : public gen_server {
 public:
  session(std::shared_ptr<manager_env> env, std::shared_ptr<session_state> st)
      : env_(std::move(env)), st_(std::move(st)) {}

  // Runs on every exit, a kill included: a session that ended neither by close / expiry nor
  // by the app's stop was lost to a crash.
  ~session() override {
    if (!started_) return;
    env_->stats.sessions -= 1;
    if (st_->ended.load(std::memory_order_acquire) || shutting_down_) return;
    env_->stats.crashed += 1;
    if (env_->opts.restart == restart_type::transient) {
      env_->link.mark_restarting(user());  // the supervisor starts it again with st_
      return;
    }
    // temporary: gone for good, in the cache too (the store deletes it on its next round).
    st_->ended.store(true, std::memory_order_release);
    if (env_->link.enabled()) env_->link.note_deleted(user());
    announce_closed("crashed");
  }

 protected:
  result init() override {
    process_flag(trap_exit::on);  // the app's stop runs terminate: the cache keeps the session
    if (st_->incarnations++ > 0) env_->link.clear_restarting(user());
    started_ = true;
    env_->stats.sessions += 1;
    arm();
    return ok();
  }

  void terminate(const exit_reason& reason) override {
    if (reason.is_shutdown()) shutting_down_ = true;
  }

  result handle_cast(message& m) override {
    if (auto* r = m.get<session_request>()) {
      // Fault injection: crash right here, in the callback (terminate runs; the request,
      // still in the message, answers internal as the message goes).
      if (r->req.op() == "crash") throw std::runtime_error("fault injection: the crash op on session " + user());
      const bool created = r->created;
      msg::incoming req = std::move(r->req);  // r now counts as answered
      serve(std::move(req), created);
    } else if (m.get<flush_request>()) {
      flush();
    }
    return noreply();
  }

  result handle_info(message& m) override {
    if (m.get<expire_tick>()) {
      timer_.fired();
      if (now() < st_->deadline) {
        arm();  // activity moved the deadline since the timer was set
        return noreply();
      }
      st_->ended.store(true, std::memory_order_release);
      env_->stats.expired += 1;
      forget_in_cache();
      announce_closed("expired");
      return stop(exit_reason::normal());
    }
    return noreply();
  }

  [[nodiscard]] std::string format_status() const override {
    return "session " + user() + ", " + std::to_string(st_->rec.message_count()) + " messages";
  }

 private:
  [[nodiscard]] const std::string& user() const noexcept { return st_->rec.user(); }
  [[nodiscard]] time_point now() const { return system().clock().now(); }
  [[nodiscard]] const options& opts() const noexcept { return env_->opts; }

  void arm() { timer_.arm(system(), self(), now(), st_->deadline, expire_tick{}); }

  // Activity: the idle timer starts again.
  void active(std::uint64_t now_ms) {
    st_->rec.touch(now_ms);
    st_->deadline = deadline_after(now(), st_->rec.idle_timeout());
    arm();
  }

  async serve(msg::incoming req, bool created) {
    std::optional<decision> d;
    canopy::app::answer(req, [&] { d = apply(req, created); });
    if (!d) co_return;  // answered already (an error)
    if (d->write) co_await write_through();
    if (d->close) {
      st_->ended.store(true, std::memory_order_release);  // what is queued behind us: not_found
      co_await erase_from_cache();
    }
    req.send(std::move(d->reply));
    if (d->announce == event::opened) {
      env_->ctx->publish("opened", 1, [&](wire::packer& p) {
        p.pack("user");
        p.pack(user());
      });
    } else if (d->announce == event::message) {
      env_->ctx->publish("message", 2, [&](wire::packer& p) {
        p.pack("user");
        p.pack(user());
        p.pack("seq");
        p.pack(d->seq);
      });
    }
    if (d->close) {
      env_->stats.closed += 1;
      announce_closed("closed");
      exit(exit_reason::normal());
    }
  }

  // The op's effect on the record and its reply, or nothing after answering an error.
  std::optional<decision> apply(msg::incoming& req, bool created) {
    const std::string_view op = req.op();
    const msgpack::object& args = req.args();
    const std::uint64_t now_ms = canopy::app::context::wall_ms();
    if (op == "open") return open(req, created, now_ms);
    if (op == "refresh") {
      active(now_ms);
      decision d = decided(req, empty_map);
      d.write = true;
      return d;
    }
    if (op == "send") return send_message(req, now_ms);
    if (op == "messages") return messages(req, now_ms);
    if (op == "get") return decided(req, [&](wire::packer& p) { write_get(p); });
    if (op == "update") {
      const msgpack::object* data = wire::find(args, "data");
      if (data == nullptr || data->type == msgpack::type::NIL) throw invalid_args("data is missing");
      if (!merge(req, *data)) return std::nullopt;
      active(now_ms);
      decision d = decided(req, empty_map);
      d.write = true;
      return d;
    }
    if (op == "close") {
      decision d = decided(req, [](wire::packer& p) {
        p.pack_map(1);
        p.pack("closed");
        p.pack(true);
      });
      d.close = true;
      return d;
    }
    req.reply_error(wire::error_code::unknown_op, "no op '" + std::string(op) + "' on a session");
    return std::nullopt;
  }

  std::optional<decision> open(msg::incoming& req, bool created, std::uint64_t now_ms) {
    if (!created) {
      // A second open: refresh, a new idle timeout if given, data merged if given. The
      // server checked the arguments' types and ranges already.
      const msgpack::object& args = req.args();
      if (const msgpack::object* data = wire::find(args, "data"); data != nullptr && data->type != msgpack::type::NIL)
        if (!merge(req, *data)) return std::nullopt;
      if (auto idle = take(wire::optional_uint_arg(args, "idle_timeout_ms")))
        st_->rec.set_idle_timeout(std::chrono::milliseconds(*idle));
      active(now_ms);  // a shorter timeout re-arms the timer earlier (earliest_timer)
    }
    decision d = decided(req, [&](wire::packer& p) {
      p.pack_map(2);
      p.pack("user");
      p.pack(user());
      p.pack("created");
      p.pack(created);
    });
    d.write = true;
    if (created) {
      d.announce = event::opened;
      env_->stats.opened += 1;
    }
    return d;
  }

  std::optional<decision> send_message(msg::incoming& req, std::uint64_t now_ms) {
    const msgpack::object* message = wire::find(req.args(), "message");
    if (message == nullptr || message->type == msgpack::type::NIL) throw invalid_args("message is missing");
    wire::value v = wire::value::from_object(*message);
    if (!record::message_fits(v, opts().limits)) {
      req.reply_error(wire::error_code::too_large, "the message has " + std::to_string(v.bytes().size()) +
                                                       " bytes (limit " +
                                                       std::to_string(opts().limits.max_message_value_bytes) + ")");
      return std::nullopt;
    }
    const std::uint64_t seq = st_->rec.append(std::move(v), now_ms, opts().limits);
    active(now_ms);
    env_->stats.messages += 1;
    decision d = decided(req, [&](wire::packer& p) {
      p.pack_map(1);
      p.pack("seq");
      p.pack(seq);
    });
    d.write = true;
    d.announce = event::message;
    d.seq = seq;
    return d;
  }

  std::optional<decision> messages(msg::incoming& req, std::uint64_t now_ms) {
    const msgpack::object& args = req.args();
    const std::uint64_t after = take(wire::optional_uint_arg(args, "after")).value_or(0);
    const std::uint64_t limit = take(wire::optional_uint_arg(args, "limit")).value_or(100);
    if (limit < 1 || limit > 1000) throw invalid_args("limit must be between 1 and 1000");
    active(now_ms);
    decision d = decided(req, [&](wire::packer& p) {
      const auto found = st_->rec.messages_after(after, limit);
      p.pack_map(1);
      p.pack("messages");
      p.pack_array(static_cast<std::uint32_t>(found.size()));
      for (const stored_message* m : found) {
        p.pack_map(3);
        p.pack("seq");
        p.pack(m->seq);
        p.pack("ts_ms");
        p.pack(m->ts_ms);
        p.pack("message");
        m->message.write_to(p);
      }
    });
    d.write = true;  // activity: the cache's copy carries the new last_active_ms and TTL
    return d;
  }

  void write_get(wire::packer& p) const {
    const record& r = st_->rec;
    p.pack_map(6);
    p.pack("user");
    p.pack(r.user());
    p.pack("created_ms");
    p.pack(r.created_ms());
    p.pack("last_active_ms");
    p.pack(r.last_active_ms());
    p.pack("idle_timeout_ms");
    p.pack(static_cast<std::uint64_t>(r.idle_timeout().count()));
    p.pack("message_count");
    p.pack(static_cast<std::uint64_t>(r.message_count()));
    p.pack("data");
    r.data().write_to(p);
  }

  // False after answering the refusal.
  bool merge(msg::incoming& req, const msgpack::object& data) {
    switch (st_->rec.merge(data, opts().limits)) {
      case refusal::none:
        return true;
      case refusal::not_a_map:
        throw invalid_args("data must be a map");
      case refusal::too_large:
        req.reply_error(wire::error_code::too_large,
                        "the session's data would pass " + std::to_string(opts().limits.max_data_bytes) + " bytes");
        return false;
    }
    return false;
  }

  // ---- the cache ----------------------------------------------------------------------------

  [[nodiscard]] std::chrono::milliseconds ttl_left() const {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(st_->deadline - now());
    return std::max(left, std::chrono::milliseconds(1));
  }

  task<> write_through() {
    cache_link& link = env_->link;
    if (!link.enabled()) co_return;
    std::shared_ptr<msg::remote> remote = link.available();
    if (!remote) {
      link.note_dirty(user());
      co_return;
    }
    cache_client::process_client cache(*remote, link.timeout());
    std::string key = link.key_of(user());
    wire::value copy = st_->rec.encode();
    auto put = cache.put(std::move(key), std::move(copy), ttl_left());
    msg::outcome<bool> written = co_await put;
    if (written) {
      env_->stats.store_writes += 1;
    } else if (cache_link::is_outage(written.code())) {
      env_->stats.store_failures += 1;
      link.write_failed(user(), written.error().to_string());
    } else {
      // The cache refuses this record itself (a value nested deeper or larger than it takes):
      // the session goes on in memory; writing it again would fail the same way.
      env_->stats.store_refused += 1;
      env_->ctx->log().warn("canopy-session-manager: the cache refused session {}: {}", user(),
                            written.error().to_string());
    }
  }

  task<> erase_from_cache() {
    cache_link& link = env_->link;
    if (!link.enabled()) co_return;
    std::shared_ptr<msg::remote> remote = link.available();
    if (!remote) {
      link.note_deleted(user());
      co_return;
    }
    cache_client::process_client cache(*remote, link.timeout());
    std::string key = link.key_of(user());
    auto erase = cache.erase(std::move(key));
    msg::outcome<bool> erased = co_await erase;
    if (!erased && cache_link::is_outage(erased.code())) {
      env_->stats.store_failures += 1;
      link.delete_failed(user(), erased.error().to_string());
    }
  }

  // Not awaited (expiry): the cache's own TTL ends the copy at the same moment anyway.
  void forget_in_cache() {
    cache_link& link = env_->link;
    if (!link.enabled()) return;
    std::shared_ptr<msg::remote> remote = link.available();
    if (!remote) {
      link.note_deleted(user());
      return;
    }
    const std::string key = link.key_of(user());
    remote->cast("delete", 1, [&](wire::packer& p) {
      p.pack("key");
      p.pack(key);
    });
  }

  async flush() { co_await write_through(); }

  void announce_closed(const char* reason) {
    env_->ctx->publish("closed", 2, [&](wire::packer& p) {
      p.pack("user");
      p.pack(user());
      p.pack("reason");
      p.pack(reason);
    });
  }

  std::shared_ptr<manager_env> env_;
  std::shared_ptr<session_state> st_;
  canopy::app::earliest_timer timer_;
  bool started_ = false;
  bool shutting_down_ = false;
};

}  // namespace

child_spec session_spec(const std::shared_ptr<manager_env>& env, const directory& dir,
                        std::shared_ptr<session_state> st) {
  child_spec spec("session", [env, dir, st]() {
    auto started = gen_server::start_link<session>({.name = via(dir, st->rec.user(), st)}, env, st);
    // Someone opened the user again while this one was down: that session stands; this
    // spec is dropped (the supervisor forgets an ignored child).
    if (!started && started.code() == errc::already_started)
      return child_start::ready(error(errc::ignored, "session " + st->rec.user() + " is open again"));
    return child_start::ready(std::move(started));
  });
  spec.restart(env->opts.restart).shutdown(shutdown_policy::timeout(std::chrono::seconds(1)));
  return spec;
}

session_request::~session_request() {
  if (req.replied()) return;  // answered, or handed on
  const std::string_view op = req.op();
  if (op == "open") {
    // The session ended under this open: the server starts a new one.
    if (const pid server = rt_->whereis(server_name)) {
      rt_->cast(server, retry_open{std::move(req), attempts + 1});
      return;
    }
    req.reply_error(wire::error_code::internal, "the session manager is restarting; retry");
    return;
  }
  if (state && !state->ended.load(std::memory_order_acquire)) {
    req.reply_error(wire::error_code::internal, "the session's process crashed and is being restarted; retry");
    return;
  }
  if (op == "close") {
    req.reply_ok([](wire::packer& p) {
      p.pack_map(1);
      p.pack("closed");
      p.pack(false);
    });
    return;
  }
  req.reply_error(wire::error_code::not_found, "no session for that user (it ended)");
}

}  // namespace canopy::session_app
