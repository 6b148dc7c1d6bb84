#pragma once
// canopy-cache: a key/value cache with per-key TTL and a memory bound (docs/protocol.md
// "cache"). Thread-safety: an application object is used by one app::instance at a time.
//
// Tree (cache.sup, one_for_one):
//   app.control     ping / info / tree
//   cache.server    every cache op; expiry timers. The store it serves is kept by the app,
//                   so a crash of the server (answered `internal`) loses no data.
// Config ([cache] in config/cache.toml): max_bytes, max_value_bytes, max_key_bytes,
// expire_batch, events_expired, events_evicted, snapshot, snapshot_interval_ms,
// snapshot_path (see that file for defaults and meaning).
// Snapshots: loaded when the tree starts (a missing file: an empty cache; a corrupt one is
// logged as an error, kept aside as <path>.corrupt, and the cache starts empty), written
// every snapshot_interval_ms and when the server stops (also after a crash).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "canopy/app/application.hpp"

namespace canopy::cache_app {

class store;

struct options {
  std::uint64_t max_bytes = 256ull << 20;      // the memory bound; past it, LRU eviction
  std::uint64_t max_value_bytes = 1ull << 20;  // a larger value is too_large
  std::uint64_t max_key_bytes = 1024;          // a longer key is invalid_args
  std::uint64_t expire_batch = 1000;           // entries the expiry timer removes per run
  bool events_expired = false;                 // publish cache.expired {key}
  bool events_evicted = false;                 // publish cache.evicted {key}
  bool snapshot = false;                       // keep a snapshot (snapshot.hpp)
  std::chrono::milliseconds snapshot_interval{60000};  // also every this often; 0: only on stop
  std::string snapshot_path;                   // empty: <data_dir>/cache.snapshot
};

class app final : public canopy::app::application {
 public:
  app();
  ~app() override;

  [[nodiscard]] std::string_view id() const override { return "cache"; }
  [[nodiscard]] std::string default_endpoint() const override { return "tcp://127.0.0.1:7410"; }
  [[nodiscard]] std::string default_events_endpoint() const override { return "tcp://127.0.0.1:7411"; }
  void configure(canopy::app::config& c) override;
  std::vector<child_spec> children(canopy::app::context& ctx) override;
  [[nodiscard]] std::string_view route(std::string_view op) const override;

  // For tests: set before start (configure() does it from the file).
  void set_options(const options& o) { options_ = o; }

 private:
  void load(canopy::app::context& ctx, const std::string& path);

  options options_;
  std::shared_ptr<store> store_;
};

}  // namespace canopy::cache_app
