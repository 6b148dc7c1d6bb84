#include "canopy/cache_app/app.hpp"

#include <spdlog/logger.h>

#include <filesystem>
#include <stdexcept>

#include "canopy/app/earliest_timer.hpp"
#include "canopy/app/handler.hpp"
#include "canopy/cache_app/snapshot.hpp"
#include "canopy/cache_app/store.hpp"
#include "canopy/core/runtime.hpp"
#include "canopy/msg/server.hpp"
#include "canopy/otp/gen_server.hpp"

namespace canopy::cache_app {

namespace {

using canopy::app::invalid_args;
using canopy::app::take;

constexpr const char* server_name = "cache.server";

struct expire_tick {};
struct snapshot_tick {};

clocks clocks_now(runtime& rt) {
  return {rt.clock().now(), static_cast<std::int64_t>(canopy::app::context::wall_ms())};
}

class server final : public gen_server {
 public:
  server(canopy::app::context* ctx, std::shared_ptr<store> s, options o)
      : ctx_(ctx),
        store_(std::move(s)),
        options_(std::move(o)),
        items_(ctx->stats()["items"]),
        bytes_(ctx->stats()["bytes"]) {}

 protected:
  result init() override {
    arm(now());  // entries may have come due while we were being restarted
    if (options_.snapshot) {
      process_flag(trap_exit::on);  // so terminate (the snapshot on stop) runs on shutdown
      if (options_.snapshot_interval.count() > 0) send_after(options_.snapshot_interval, self(), snapshot_tick{});
    }
    return ok();
  }

  void terminate(const exit_reason&) override {
    if (options_.snapshot) snapshot();
  }

  result handle_cast(message& m) override {
    if (auto* req = m.get<msg::incoming>()) {
      canopy::app::answer(*req, [&] { serve(*req); });
      announce_evictions();
      arm(now());
    }
    return noreply();
  }

  result handle_info(message& m) override {
    if (m.get<snapshot_tick>()) {
      snapshot();
      send_after(options_.snapshot_interval, self(), snapshot_tick{});
    }
    if (m.get<expire_tick>()) {
      expiry_.fired();
      for (const std::string& key : store_->expire_due(now(), options_.expire_batch)) announce("expired", key);
      arm(now());
    }
    return noreply();
  }

 private:
  [[nodiscard]] time_point now() const { return system().clock().now(); }

  void serve(msg::incoming& req) {
    const std::string_view op = req.op();
    const time_point t = now();
    if (op == "get") return do_get(req, t);
    if (op == "put") return do_put(req, t);
    if (op == "delete") return do_delete(req, t);
    if (op == "incr") return do_incr(req, t);
    if (op == "mget") return do_mget(req, t);
    if (op == "mput") return do_mput(req, t);
    if (op == "expire") return do_expire(req, t);
    if (op == "ttl") return do_ttl(req, t);
    if (op == "keys") return do_keys(req, t);
    if (op == "clear") return do_clear(req, t);
    if (op == "stats") return do_stats(req);
    if (op == "crash") throw std::runtime_error("fault injection: the crash op");  // the request answers internal
    req.reply_error(wire::error_code::unknown_op, "no op '" + std::string(op) + "' on cache");
  }

  std::string_view key_of(const msgpack::object& o) const {
    if (o.type != msgpack::type::STR) throw invalid_args("a key must be a string");
    if (o.via.str.size == 0) throw invalid_args("a key must not be empty");
    if (o.via.str.size > options_.max_key_bytes)
      throw invalid_args("a key is longer than " + std::to_string(options_.max_key_bytes) + " bytes");
    return {o.via.str.ptr, o.via.str.size};
  }
  std::string_view key_arg(const msgpack::object& args) const {
    const msgpack::object* k = wire::find(args, "key");
    if (k == nullptr || k->type == msgpack::type::NIL) throw invalid_args("key is missing");
    return key_of(*k);
  }
  // A value to store, or nothing after answering too_large.
  std::optional<wire::value> value_of(msg::incoming& req, const msgpack::object& o, std::string_view key) {
    wire::value v = wire::value::from_object(o);
    if (v.bytes().size() > options_.max_value_bytes) {
      req.reply_error(wire::error_code::too_large, "the value of " + std::string(key) + " has " +
                                                       std::to_string(v.bytes().size()) + " bytes (limit " +
                                                       std::to_string(options_.max_value_bytes) + ")");
      return std::nullopt;
    }
    if (store::entry_bytes(key, v) > options_.max_bytes) {
      req.reply_error(wire::error_code::too_large, "the entry " + std::string(key) + " is larger than max_bytes");
      return std::nullopt;
    }
    return v;
  }
  static std::optional<milliseconds> ttl_arg(const msgpack::object& args) {
    const auto ttl = take(wire::optional_uint_arg(args, "ttl_ms"));
    if (!ttl) return std::nullopt;
    if (*ttl < 1 || *ttl > (std::uint64_t{1} << 40)) throw invalid_args("ttl_ms must be at least 1");
    return milliseconds(*ttl);
  }
  static void empty_ok(msg::incoming& req) {
    req.reply_ok([](wire::packer& p) { p.pack_map(0); });
  }
  template <class T>
  static void one_field(msg::incoming& req, const char* name, const T& value) {
    req.reply_ok([&](wire::packer& p) {
      p.pack_map(1);
      p.pack(name);
      p.pack(value);
    });
  }

  void do_get(msg::incoming& req, time_point t) {
    const std::string_view key = key_arg(req.args());
    const std::optional<got> g = store_->get(key, t);
    req.reply_ok([&](wire::packer& p) {
      p.pack_map(g ? (g->ttl_left ? 3 : 2) : 1);
      p.pack("found");
      p.pack(g.has_value());
      if (!g) return;
      p.pack("value");
      g->value.write_to(p);
      if (g->ttl_left) {
        p.pack("ttl_ms");
        p.pack(static_cast<std::uint64_t>(g->ttl_left->count()));
      }
    });
  }

  void do_put(msg::incoming& req, time_point t) {
    const msgpack::object& args = req.args();
    const std::string_view key = key_arg(args);
    const msgpack::object* value = wire::find(args, "value");
    if (value == nullptr) throw invalid_args("value is missing");
    const auto ttl = ttl_arg(args);
    std::optional<wire::value> v = value_of(req, *value, key);
    if (!v) return;
    store_->put(key, std::move(*v), ttl, t);
    empty_ok(req);
  }

  void do_delete(msg::incoming& req, time_point t) {
    one_field(req, "deleted", store_->erase(key_arg(req.args()), t));
  }

  void do_incr(msg::incoming& req, time_point t) {
    const msgpack::object& args = req.args();
    const std::string_view key = key_arg(args);
    const std::int64_t by = take(wire::optional_int_arg(args, "by")).value_or(1);
    const incr_result r = store_->incr(key, by, ttl_arg(args), t);
    if (r.refused == incr_refusal::not_an_integer)
      throw invalid_args("the value of " + std::string(key) + " is not an integer");
    if (r.refused == incr_refusal::overflow) throw invalid_args("incr would leave the int64 range");
    one_field(req, "value", r.value);
  }

  void do_mget(msg::incoming& req, time_point t) {
    const msgpack::object* keys = wire::find(req.args(), "keys");
    if (keys == nullptr || keys->type != msgpack::type::ARRAY) throw invalid_args("keys must be an array");
    std::vector<std::pair<std::string_view, got>> found;
    for (std::uint32_t i = 0; i < keys->via.array.size; ++i) {
      const std::string_view key = key_of(keys->via.array.ptr[i]);
      if (auto g = store_->get(key, t)) found.emplace_back(key, std::move(*g));
    }
    req.reply_ok([&](wire::packer& p) {
      p.pack_map(1);
      p.pack("items");
      p.pack_map(static_cast<std::uint32_t>(found.size()));
      for (const auto& [k, g] : found) {
        p.pack_str(static_cast<std::uint32_t>(k.size()));
        p.pack_str_body(k.data(), static_cast<std::uint32_t>(k.size()));
        g.value.write_to(p);
      }
    });
  }

  void do_mput(msg::incoming& req, time_point t) {
    const msgpack::object& args = req.args();
    const msgpack::object* items = wire::find(args, "items");
    if (items == nullptr || items->type != msgpack::type::MAP) throw invalid_args("items must be a map");
    const auto ttl = ttl_arg(args);
    // All or nothing: every key and value is checked before any is stored.
    std::vector<std::pair<std::string_view, wire::value>> checked;
    for (std::uint32_t i = 0; i < items->via.map.size; ++i) {
      const std::string_view key = key_of(items->via.map.ptr[i].key);
      std::optional<wire::value> v = value_of(req, items->via.map.ptr[i].val, key);
      if (!v) return;
      checked.emplace_back(key, std::move(*v));
    }
    for (auto& [k, v] : checked) store_->put(k, std::move(v), ttl, t);
    empty_ok(req);
  }

  void do_expire(msg::incoming& req, time_point t) {
    const std::string_view key = key_arg(req.args());
    const auto ttl = ttl_arg(req.args());
    if (!ttl) throw invalid_args("ttl_ms is missing");
    one_field(req, "updated", store_->expire(key, *ttl, t));
  }

  void do_ttl(msg::incoming& req, time_point t) {
    const auto left = store_->ttl(key_arg(req.args()), t);
    req.reply_ok([&](wire::packer& p) {
      p.pack_map(left && *left ? 2 : 1);
      p.pack("found");
      p.pack(left.has_value());
      if (left && *left) {
        p.pack("ttl_ms");
        p.pack(static_cast<std::uint64_t>((*left)->count()));
      }
    });
  }

  void do_keys(msg::incoming& req, time_point t) {
    const auto prefix = take(wire::optional_string_arg(req.args(), "prefix"));
    const auto after = take(wire::optional_string_arg(req.args(), "after"));
    const std::uint64_t limit = take(wire::optional_uint_arg(req.args(), "limit")).value_or(1000);
    if (limit < 1 || limit > 100000) throw invalid_args("limit must be between 1 and 100000");
    const std::vector<std::string> keys = store_->keys(prefix.value_or(""), limit, t, after.value_or(""));
    one_field(req, "keys", keys);
  }

  void do_clear(msg::incoming& req, time_point t) {
    const std::size_t removed = store_->clear(t);
    one_field(req, "removed", static_cast<std::uint64_t>(removed));
    ctx_->publish("cleared", 1, [&](wire::packer& p) {
      p.pack("removed");
      p.pack(static_cast<std::uint64_t>(removed));
    });
  }

  void do_stats(msg::incoming& req) {
    const cache_app::stats s = store_->stats();
    req.reply_ok([&](wire::packer& p) {
      p.pack_map(7);
      p.pack("items");
      p.pack(s.items);
      p.pack("bytes");
      p.pack(s.bytes);
      p.pack("max_bytes");
      p.pack(s.max_bytes);
      p.pack("hits");
      p.pack(s.hits);
      p.pack("misses");
      p.pack(s.misses);
      p.pack("evictions");
      p.pack(s.evictions);
      p.pack("expired");
      p.pack(s.expired);
    });
    publish_counts(s);
  }

  void announce_evictions() {
    std::vector<std::string> evicted = store_->take_evicted();
    if (options_.events_evicted)
      for (const std::string& key : evicted) announce("evicted", key);
    publish_counts(store_->stats());
  }

  void announce(const char* what, const std::string& key) {
    if (std::string_view(what) == "expired" && !options_.events_expired) return;
    ctx_->publish(what, 1, [&](wire::packer& p) {
      p.pack("key");
      p.pack(key);
    });
  }

  void publish_counts(const cache_app::stats& s) {
    items_ = static_cast<std::int64_t>(s.items);
    bytes_ = static_cast<std::int64_t>(s.bytes);
  }

  void snapshot() {
    const auto started = std::chrono::steady_clock::now();
    auto written = write_snapshot(*store_, options_.snapshot_path, clocks_now(system()));
    if (!written) {
      ctx_->log().error("canopy-cache: snapshot failed: {}", written.error().to_string());
      ctx_->stats()["snapshot_failures"] += 1;
      return;
    }
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    ctx_->log().debug("canopy-cache: snapshot of {} entries to {} in {} ms", *written, options_.snapshot_path,
                      took.count());
    ctx_->stats()["snapshots"] += 1;
  }

  void arm(time_point t) { expiry_.arm(system(), self(), t, store_->next_expiry(), expire_tick{}); }

  canopy::app::context* ctx_;
  std::shared_ptr<store> store_;
  options options_;
  canopy::app::earliest_timer expiry_;
  // info.stats counters updated after every request, looked up once (a lookup takes the
  // counters' lock).
  std::atomic<std::int64_t>& items_;
  std::atomic<std::int64_t>& bytes_;
};

}  // namespace

app::app() = default;
app::~app() = default;

void app::configure(canopy::app::config& c) {
  options_.max_bytes = static_cast<std::uint64_t>(c.integer("cache.max_bytes", 256ll << 20, 1 << 16, 1ll << 40));
  options_.max_value_bytes =
      static_cast<std::uint64_t>(c.integer("cache.max_value_bytes", 1 << 20, 1, 64ll << 20));
  options_.max_key_bytes = static_cast<std::uint64_t>(c.integer("cache.max_key_bytes", 1024, 1, 65536));
  options_.expire_batch = static_cast<std::uint64_t>(c.integer("cache.expire_batch", 1000, 1, 1000000));
  options_.events_expired = c.boolean("cache.events_expired", false);
  options_.events_evicted = c.boolean("cache.events_evicted", false);
  options_.snapshot = c.boolean("cache.snapshot", false);
  options_.snapshot_interval = c.milliseconds("cache.snapshot_interval_ms", options_.snapshot_interval,
                                              std::chrono::milliseconds(0), std::chrono::milliseconds(86400000));
  options_.snapshot_path = c.string("cache.snapshot_path", "");
}

std::vector<child_spec> app::children(canopy::app::context& ctx) {
  store_ = std::make_shared<store>(options_.max_bytes);
  options resolved = options_;
  if (resolved.snapshot) {
    if (resolved.snapshot_path.empty()) resolved.snapshot_path = ctx.config().data_dir + "/cache.snapshot";
    load(ctx, resolved.snapshot_path);
  }
  // The server's shutdown budget covers writing the snapshot.
  return {canopy::app::named_worker<server>("cache.server", server_name, &ctx, store_, resolved)
              .shutdown(shutdown_policy::timeout(ctx.config().shutdown_timeout))};
}

void app::load(canopy::app::context& ctx, const std::string& path) {
  wire::decode_limits limits;
  limits.max_message_bytes = options_.max_value_bytes;
  auto got = read_snapshot(*store_, path, clocks_now(ctx.rt()), limits);
  if (got) {
    ctx.log().info("canopy-cache: loaded {} entries from {} ({} already expired)", got->entries, path, got->expired);
    ctx.stats()["snapshot_loaded"] = static_cast<std::int64_t>(got->entries);
    return;
  }
  if (got.code() == errc::not_found) {
    ctx.log().info("canopy-cache: no snapshot at {}; starting empty", path);
    return;
  }
  // Never serve garbage: start empty, say so loudly, keep the file for a post-mortem.
  const std::string aside = path + ".corrupt";
  std::error_code ec;
  std::filesystem::rename(path, aside, ec);
  ctx.log().error("canopy-cache: {}; starting EMPTY (the file is kept as {})", got.error().to_string(), aside);
  ctx.stats()["snapshot_corrupt"] = 1;
}

std::string_view app::route(std::string_view op) const {
  static constexpr std::string_view ops[] = {"get",    "put", "delete", "incr",  "mget", "mput",
                                             "expire", "ttl", "keys",   "clear", "stats", "crash"};
  for (std::string_view o : ops)
    if (o == op) return server_name;
  return {};
}

}  // namespace canopy::cache_app
