#pragma once
// Internal: what the session manager's processes share (see app.hpp for the tree).

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "canopy/app/application.hpp"
#include "canopy/core/clock.hpp"
#include "canopy/msg/remote.hpp"
#include "canopy/msg/server.hpp"
#include "canopy/otp/registry.hpp"
#include "canopy/session_app/app.hpp"
#include "canopy/session_app/record.hpp"

namespace canopy::session_app {

inline constexpr const char* server_name = "session_manager.server";
inline constexpr const char* store_name = "session_manager.store";
inline constexpr const char* sessions_name = "session_manager.sessions";
inline constexpr const char* directory_name = "session_manager.registry";

// One session's state, shared by its child spec and each incarnation of its process, so a
// restart after a crash continues with it. Only the running process touches `rec` and the
// times; `ended` is read by any thread.
struct session_state {
  explicit session_state(record r) : rec(std::move(r)) {}
  record rec;
  time_point deadline{};          // idle expiry, on the runtime's clock
  std::uint32_t incarnations = 0;  // processes started for it
  std::atomic<bool> ended{false};  // closed or expired: requests still queued are not_found
};

using directory = registry<std::string, std::shared_ptr<session_state>>;

enum class store_state : std::uint8_t { standalone, connecting, available, unavailable };
[[nodiscard]] const char* to_string(store_state s) noexcept;

// Where the write-through to the cache stands, shared by the store process and every
// session. Thread-safe.
class cache_link {
 public:
  cache_link(std::string prefix, std::chrono::milliseconds timeout, bool enabled);

  [[nodiscard]] bool enabled() const noexcept { return enabled_; }
  [[nodiscard]] std::string key_of(std::string_view user) const { return prefix_ + std::string(user); }
  [[nodiscard]] const std::string& prefix() const noexcept { return prefix_; }
  [[nodiscard]] std::chrono::milliseconds timeout() const noexcept { return timeout_; }

  // The remote while the cache answers; null otherwise (a write is skipped and the user
  // remembered as dirty).
  [[nodiscard]] std::shared_ptr<msg::remote> available() const;
  // The remote whatever the state (the store probes with it).
  [[nodiscard]] std::shared_ptr<msg::remote> current() const;
  [[nodiscard]] store_state state() const;
  void set_remote(std::shared_ptr<msg::remote> r);  // a new endpoint: the old remote is kept until stop
  void set_state(store_state s, std::string last_error = {});

  // A write or delete for `user` failed for want of the cache (the transport's codes:
  // unavailable, timeout, overloaded, internal): it counts as unavailable until the store's
  // next probe answers, and the write is owed.
  void write_failed(std::string_view user, std::string why);
  void delete_failed(std::string_view user, std::string why);
  // Whether a cache error means the cache is away (above) rather than refusing this one
  // record (too_large, invalid_args: retrying would fail the same way).
  [[nodiscard]] static bool is_outage(wire::error_code code) noexcept {
    return code == wire::error_code::unavailable || code == wire::error_code::timeout ||
           code == wire::error_code::overloaded || code == wire::error_code::internal;
  }
  void note_dirty(std::string_view user);    // written when the cache is back
  void note_deleted(std::string_view user);  // deleted from the cache when it is back
  [[nodiscard]] std::vector<std::string> take_dirty();
  [[nodiscard]] std::vector<std::string> take_deleted();

  // A session whose process crashed and is being restarted: `open` waits for it instead of
  // starting a fresh session under the same user.
  void mark_restarting(std::string_view user);
  void clear_restarting(std::string_view user);
  [[nodiscard]] bool restarting(std::string_view user) const;
  void clear_all_restarting();

  // info.store
  void write_info(wire::packer& p) const;
  // Stops every remote (the store, as the tree stops). Idempotent.
  void stop();

 private:
  std::string prefix_;
  std::chrono::milliseconds timeout_;
  bool enabled_;
  mutable std::mutex mu_;
  std::shared_ptr<msg::remote> remote_;
  std::vector<std::shared_ptr<msg::remote>> retired_;  // sessions may still hold them
  store_state state_;
  std::string last_error_;
  std::unordered_set<std::string> dirty_, deleted_, restarting_;
};

// Counters of info.stats, looked up once (a lookup takes the counters' lock).
struct session_stats {
  explicit session_stats(canopy::app::counters& c)
      : sessions(c["sessions"]),
        opened(c["opened"]),
        closed(c["closed"]),
        expired(c["expired"]),
        crashed(c["crashed"]),
        messages(c["messages"]),
        store_writes(c["store_writes"]),
        store_failures(c["store_failures"]),
        store_refused(c["store_refused"]),
        restored(c["restored"]),
        restore_skipped(c["restore_skipped"]) {}
  std::atomic<std::int64_t>& sessions;
  std::atomic<std::int64_t>& opened;
  std::atomic<std::int64_t>& closed;
  std::atomic<std::int64_t>& expired;
  std::atomic<std::int64_t>& crashed;
  std::atomic<std::int64_t>& messages;
  std::atomic<std::int64_t>& store_writes;
  std::atomic<std::int64_t>& store_failures;
  std::atomic<std::int64_t>& store_refused;  // records the cache would not take
  std::atomic<std::int64_t>& restored;
  std::atomic<std::int64_t>& restore_skipped;
};

// What every session process and the server share: one per start of the app.
struct manager_env {
  manager_env(canopy::app::context& c, options o, bool write_through)
      : ctx(&c), opts(std::move(o)), link(opts.cache_prefix, opts.cache_timeout, write_through), stats(c.stats()) {}
  canopy::app::context* ctx;
  options opts;
  cache_link link;
  session_stats stats;
  msg::curve_client_keys cache_curve;  // CURVE to the cache, if it wants it
};

// A request the server hands a session's process. If it dies unanswered (the session ended
// or crashed before reading it), its destructor answers for it: `open` goes back to the
// server to be tried again, `close` is {closed: false}, anything else not_found (ended) or
// internal (being restarted).
struct session_request {
  session_request(msg::incoming r, bool c, unsigned a, std::shared_ptr<session_state> s, runtime* rt)
      : req(std::move(r)), created(c), attempts(a), state(std::move(s)), rt_(rt) {}
  session_request(session_request&&) noexcept = default;
  session_request& operator=(session_request&&) = delete;
  ~session_request();
  msg::incoming req;
  bool created;       // open: the server has just started this session
  unsigned attempts;  // open: how often it was handed back already
  std::shared_ptr<session_state> state;
  runtime* rt_;
};

// An `open` handed back to the server (its session ended under it, or is restarting).
struct retry_open {
  msg::incoming req;
  unsigned attempts;
};

// The store asks a session to write itself (the cache is back after it changed).
struct flush_request {};
// The server asks the store, as it starts, to answer once the first restore is done.
struct await_restored {};

// The session process's child spec (sessions.cpp).
child_spec session_spec(const std::shared_ptr<manager_env>& sh, const directory& dir, std::shared_ptr<session_state> st);
// The store's and the server's (store.cpp, server.cpp).
child_spec store_spec(const std::shared_ptr<manager_env>& sh);
child_spec server_spec(const std::shared_ptr<manager_env>& sh);

// The user argument of a request: invalid_args unless a non-empty string of at most
// max_user_bytes.
std::string_view user_arg(const msgpack::object& args, const options& o);

}  // namespace canopy::session_app
