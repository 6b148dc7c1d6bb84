// The cache link and the store process: finding the cache, probing it, restoring sessions
// from it at start, and writing what changed while it was away.
#include <spdlog/logger.h>

#include "canopy/app/lookup.hpp"
#include "canopy/cache_client/process_client.hpp"
#include "canopy/core/runtime.hpp"
#include "canopy/otp/gen_server.hpp"
#include "canopy/otp/supervisor.hpp"
#include "parts.hpp"

namespace canopy::session_app {

const char* to_string(store_state s) noexcept {
  switch (s) {
    case store_state::standalone:
      return "standalone";
    case store_state::connecting:
      return "connecting";
    case store_state::available:
      return "available";
    case store_state::unavailable:
      return "unavailable";
  }
  return "unknown";
}

// ---- cache_link ---------------------------------------------------------------------------------

cache_link::cache_link(std::string prefix, std::chrono::milliseconds timeout, bool enabled)
    : prefix_(std::move(prefix)),
      timeout_(timeout),
      enabled_(enabled),
      state_(enabled ? store_state::connecting : store_state::standalone) {}

std::shared_ptr<msg::remote> cache_link::available() const {
  std::lock_guard lk(mu_);
  return state_ == store_state::available ? remote_ : nullptr;
}

std::shared_ptr<msg::remote> cache_link::current() const {
  std::lock_guard lk(mu_);
  return remote_;
}

store_state cache_link::state() const {
  std::lock_guard lk(mu_);
  return state_;
}

void cache_link::set_remote(std::shared_ptr<msg::remote> r) {
  std::lock_guard lk(mu_);
  if (remote_) retired_.push_back(std::move(remote_));
  remote_ = std::move(r);
}

void cache_link::set_state(store_state s, std::string last_error) {
  std::lock_guard lk(mu_);
  state_ = s;
  if (!last_error.empty() || s == store_state::available) last_error_ = std::move(last_error);
}

void cache_link::write_failed(std::string_view user, std::string why) {
  std::lock_guard lk(mu_);
  if (state_ == store_state::available) state_ = store_state::unavailable;
  last_error_ = "write: " + why;
  dirty_.emplace(user);
}

void cache_link::delete_failed(std::string_view user, std::string why) {
  std::lock_guard lk(mu_);
  if (state_ == store_state::available) state_ = store_state::unavailable;
  last_error_ = "delete: " + why;
  deleted_.emplace(user);
}

void cache_link::note_dirty(std::string_view user) {
  std::lock_guard lk(mu_);
  dirty_.emplace(user);
}

void cache_link::note_deleted(std::string_view user) {
  std::lock_guard lk(mu_);
  deleted_.emplace(user);
}

std::vector<std::string> cache_link::take_dirty() {
  std::lock_guard lk(mu_);
  std::vector<std::string> out(dirty_.begin(), dirty_.end());
  dirty_.clear();
  return out;
}

std::vector<std::string> cache_link::take_deleted() {
  std::lock_guard lk(mu_);
  std::vector<std::string> out(deleted_.begin(), deleted_.end());
  deleted_.clear();
  return out;
}

void cache_link::mark_restarting(std::string_view user) {
  std::lock_guard lk(mu_);
  restarting_.emplace(user);
}

void cache_link::clear_restarting(std::string_view user) {
  std::lock_guard lk(mu_);
  restarting_.erase(std::string(user));
}

bool cache_link::restarting(std::string_view user) const {
  std::lock_guard lk(mu_);
  return restarting_.count(std::string(user)) > 0;
}

void cache_link::clear_all_restarting() {
  std::lock_guard lk(mu_);
  restarting_.clear();
}

void cache_link::write_info(wire::packer& p) const {
  std::lock_guard lk(mu_);
  const bool endpoint = remote_ != nullptr;
  const bool error = !last_error_.empty() && state_ != store_state::available;
  p.pack_map(3 + (endpoint ? 1 : 0) + (error ? 1 : 0));
  p.pack("state");
  p.pack(to_string(state_));
  if (endpoint) {
    p.pack("endpoint");
    p.pack(remote_->endpoint());
  }
  if (error) {
    p.pack("last_error");
    p.pack(last_error_);
  }
  p.pack("dirty");
  p.pack(static_cast<std::uint64_t>(dirty_.size()));
  p.pack("pending_deletes");
  p.pack(static_cast<std::uint64_t>(deleted_.size()));
}

void cache_link::stop() {
  std::vector<std::shared_ptr<msg::remote>> all;
  {
    std::lock_guard lk(mu_);
    all = std::move(retired_);
    if (remote_) all.push_back(remote_);
    if (enabled_) state_ = store_state::unavailable;
  }
  for (const auto& r : all) r->stop();
}

// ---- the store process --------------------------------------------------------------------------

namespace {

struct probe_tick {};

constexpr std::uint32_t restore_page = 1000;

class store final : public gen_server {
 public:
  explicit store(std::shared_ptr<manager_env> env) : env_(std::move(env)), link_(env_->link) {}

 protected:
  result init() override {
    process_flag(trap_exit::on);  // terminate stops the remotes when the app stops
    // A restart of this process follows one of the sessions' supervisor (rest_for_one):
    // nothing is being restarted any more, and the sessions come back from the cache.
    link_.clear_all_restarting();
    dir_ = directory::whereis(directory_name);
    sessions_ = resolve(sessions_name);
    if (!dir_ || !sessions_)
      return stop(exit_reason::other("no_sessions", "the registry or the sessions' supervisor is not running"));
    if (!link_.enabled()) {
      first_round_done_ = true;
      link_.set_state(store_state::standalone);
      return ok();
    }
    return ok().and_continue(probe_tick{});
  }

  void terminate(const exit_reason& reason) override {
    if (reason.is_shutdown()) link_.stop();
  }

  result handle_continue(message&) override {
    round();
    return noreply();
  }

  result handle_info(message& m) override {
    if (m.get<probe_tick>()) round();
    return noreply();
  }

  result handle_call(message& m, const reply_address& from) override {
    if (m.get<await_restored>()) {
      if (first_round_done_) return reply(true);
      waiting_.push_back(from);
      return noreply();
    }
    return gen_server::handle_call(m, from);
  }

 private:
  [[nodiscard]] const options& opts() const noexcept { return env_->opts; }

  // One probe of the cache: find it, ping it, and when it answers restore (the first time)
  // and flush what changed while it was away.
  async round() {
    std::shared_ptr<msg::remote> remote = link_.current();
    if (!remote || link_.state() != store_state::available) {
      std::string endpoint = co_await find_cache();
      if (endpoint.empty()) {
        settle_first_round();
        again();
        co_return;
      }
      if (!remote || remote->endpoint() != endpoint) {
        auto started = msg::remote::start(system(), endpoint,
                                          {.linger = std::chrono::milliseconds(200),
                                           .send_timeout = opts().cache_timeout,
                                           .curve = env_->cache_curve});
        if (!started) {
          link_.set_state(store_state::unavailable, "cache endpoint " + endpoint + ": " + started.error().to_string());
          settle_first_round();
          again();
          co_return;
        }
        remote = std::shared_ptr<msg::remote>(std::move(*started));
        link_.set_remote(remote);
      }
    }
    msg::reply pong = co_await remote->call("ping", {.timeout = opts().cache_timeout});
    if (!pong.ok) {
      if (link_.state() == store_state::available)
        env_->ctx->log().warn("canopy-session-manager: the cache at {} stopped answering ({}); sessions go on in memory",
                              remote->endpoint(), pong.message);
      link_.set_state(store_state::unavailable, std::string(wire::to_string(pong.code)) + ": " + pong.message);
      settle_first_round();
      again();
      co_return;
    }
    if (link_.state() != store_state::available)
      env_->ctx->log().info("canopy-session-manager: writing sessions through to the cache at {}", remote->endpoint());
    link_.set_state(store_state::available);
    if (!restored_) restored_ = co_await restore(*remote);
    settle_first_round();
    co_await flush(*remote);
    again();
  }

  // The cache's endpoint: the configured one, or the registry's answer (empty if none).
  task<std::string> find_cache() {
    if (opts().cache_endpoint != "") co_return opts().cache_endpoint;
    std::string name = "cache";  // named: see async.hpp's GCC note
    auto lookup = canopy::app::lookup(*env_->ctx, std::move(name), opts().cache_timeout * 4);
    auto found = co_await lookup;
    if (found) co_return found->endpoint;
    link_.set_state(store_state::unavailable, "looking the cache up in the registry: " + found.error().to_string());
    co_return std::string();
  }

  // Starts every live session the cache holds that is not running already. False if the
  // cache stopped answering half-way (the next round that reaches it tries again).
  task<bool> restore(msg::remote& remote) {
    cache_client::process_client cache(remote, opts().cache_timeout * 4);
    const auto started_at = std::chrono::steady_clock::now();
    std::int64_t restored = 0, skipped = 0;
    std::string after;
    for (;;) {
      std::string prefix = link_.prefix();
      std::string from = after;
      auto page = cache.keys(std::move(prefix), restore_page, std::move(from));
      msg::outcome<std::vector<std::string>> keys = co_await page;
      if (!keys) {
        link_.set_state(store_state::unavailable, "restore: keys: " + keys.error().to_string());
        co_return false;
      }
      if (keys->empty()) break;
      after = keys->back();
      std::vector<std::string> wanted = *keys;
      auto fetch = cache.mget(std::move(wanted));
      msg::outcome<std::map<std::string, wire::value>> items = co_await fetch;
      if (!items) {
        link_.set_state(store_state::unavailable, "restore: mget: " + items.error().to_string());
        co_return false;
      }
      for (auto& [key, value] : *items) {
        const bool started = co_await start_restored(key, value);
        (started ? restored : skipped) += 1;
      }
      if (keys->size() < restore_page) break;
    }
    env_->stats.restored += restored;
    env_->stats.restore_skipped += skipped;
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_at);
    env_->ctx->log().info("canopy-session-manager: restored {} sessions from the cache in {} ms ({} skipped)", restored,
                          took.count(), skipped);
    co_return true;
  }

  // False for a record that is corrupt, expired, or whose user is running already.
  task<bool> start_restored(const std::string& key, const wire::value& value) {
    std::string why;
    std::optional<record> rec = record::decode(value.bytes(), opts().limits, &why);
    if (!rec || link_.key_of(rec->user()) != key) {
      env_->ctx->log().warn("canopy-session-manager: skipping the cache's {}: {}", key,
                            rec ? "its user does not match the key" : why);
      co_return false;
    }
    const auto now_ms = static_cast<std::int64_t>(canopy::app::context::wall_ms());
    const auto due_ms = static_cast<std::int64_t>(rec->last_active_ms() + rec->idle_timeout().count());
    if (due_ms <= now_ms) co_return false;  // expired while we were away
    if (!dir_->lookup(rec->user()).empty()) co_return false;  // opened again already
    auto st = std::make_shared<session_state>(std::move(*rec));
    st->deadline = deadline_after(system().clock().now(), std::chrono::milliseconds(due_ms - now_ms));
    start_child_request start{session_spec(env_, *dir_, st)};
    auto started = co_await process::call<canopy::result<pid>>(sessions_, std::move(start), std::chrono::seconds(5));
    co_return started && *started;
  }

  // What changed while the cache was away: deletes first, then each changed session that
  // is still open writes itself (a reopened user's write then comes after its delete).
  task<> flush(msg::remote& remote) {
    std::vector<std::string> deleted = link_.take_deleted();
    if (!deleted.empty()) {
      cache_client::process_client cache(remote, opts().cache_timeout);
      for (std::size_t i = 0; i < deleted.size(); ++i) {
        if (!dir_->lookup(deleted[i]).empty()) continue;  // open again: its own write follows
        std::string key = link_.key_of(deleted[i]);
        auto erase = cache.erase(std::move(key));
        msg::outcome<bool> erased = co_await erase;
        if (!erased) {
          for (std::size_t j = i; j < deleted.size(); ++j) link_.note_deleted(deleted[j]);
          link_.set_state(store_state::unavailable, "delete: " + erased.error().to_string());
          co_return;
        }
      }
    }
    for (const std::string& user : link_.take_dirty()) {
      auto found = dir_->lookup(user);
      if (!found.empty()) process::cast(found[0].owner, flush_request{});
    }
  }

  void settle_first_round() {
    if (first_round_done_) return;
    first_round_done_ = true;
    for (const reply_address& w : waiting_) reply(w, true);
    waiting_.clear();
  }

  void again() { send_after(opts().cache_check, self(), probe_tick{}); }

  std::shared_ptr<manager_env> env_;
  cache_link& link_;
  std::optional<directory> dir_;
  pid sessions_;
  bool restored_ = false;
  bool first_round_done_ = false;
  std::vector<reply_address> waiting_;
};

}  // namespace

child_spec store_spec(const std::shared_ptr<manager_env>& env) {
  return canopy::app::named_worker<store>(store_name, store_name, env)
      .shutdown(shutdown_policy::timeout(std::chrono::seconds(2)));
}

}  // namespace canopy::session_app
