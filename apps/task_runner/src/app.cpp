#include "canopy/task_app/app.hpp"

#include "canopy/otp/dynamic_supervisor.hpp"
#include "canopy/wire/codec.hpp"
#include "parts.hpp"

namespace canopy::task_app {

app::app(kinds k) : kinds_(std::move(k)) {}
app::~app() = default;

void app::configure(canopy::app::config& c) {
  using ms = std::chrono::milliseconds;
  options o;
  o.limits.queue_limit = static_cast<std::size_t>(c.integer("task_runner.queue_limit", 10000, 1, 100000000));
  o.limits.max_concurrency = static_cast<unsigned>(c.integer("task_runner.max_concurrency", 64, 1, 1000000));
  o.limits.retention_ms = static_cast<std::uint64_t>(
      c.milliseconds("task_runner.retention_ms", ms(3600000), ms(0), ms(1ll << 40)).count());
  o.limits.max_retained = static_cast<std::size_t>(c.integer("task_runner.max_retained", 1000000, 0, 1ll << 32));
  o.limits.max_retained_bytes =
      static_cast<std::size_t>(c.integer("task_runner.max_retained_bytes", 256ll << 20, 0, 1ll << 40));
  o.limits.max_backoff_ms = static_cast<std::uint64_t>(
      c.milliseconds("task_runner.max_backoff_ms", ms(3600000), ms(1), ms(1ll << 40)).count());
  o.max_attempts = static_cast<std::uint64_t>(c.integer("task_runner.max_attempts", 100, 1, 1000000));
  o.max_args_bytes = static_cast<std::size_t>(c.integer("task_runner.max_args_bytes", 65536, 1, 1 << 20));
  o.max_await = c.milliseconds("task_runner.max_await_ms", o.max_await, ms(1), ms(86400000));
  o.journal = c.boolean("task_runner.journal", true);
  o.journal_path = c.string("task_runner.journal_path", "");
  const std::string fsync = c.choice("task_runner.fsync", "group", {"group", "always", "never"});
  o.fsync = fsync == "always" ? fsync_policy::always : fsync == "never" ? fsync_policy::never : fsync_policy::group;
  o.fsync_window = c.milliseconds("task_runner.fsync_ms", o.fsync_window, ms(0), ms(1000));
  o.compact_after = static_cast<std::uint64_t>(c.integer("task_runner.compact_after", 200000, 100, 1ll << 40));
  o.exec.enabled = c.boolean("task_runner.exec.enabled", false);
  o.exec.allow = c.strings("task_runner.exec.allow", {});
  o.exec.max_output_bytes = static_cast<std::size_t>(c.integer("task_runner.exec.max_output_bytes", 65536, 0, 16 << 20));
  o.exec.threads = static_cast<unsigned>(c.integer("task_runner.exec.threads", 4, 1, 256));
  for (const std::string& exe : o.exec.allow)
    if (exe.empty() || exe[0] != '/') c.fail("task_runner.exec.allow", "'" + exe + "' is not an absolute path");
  if (o.exec.enabled && o.exec.allow.empty())
    c.fail("task_runner.exec.allow", "exec is enabled but nothing is allowed to run");
  options_ = o;
}

supervisor_flags app::flags() const {
  // rest_for_one: the server watches the workers; a new workers' supervisor means a new server.
  return {.strategy = strategy::rest_for_one, .max_restarts = 3, .max_seconds = std::chrono::seconds(5)};
}

std::vector<child_spec> app::children(canopy::app::context& ctx) {
  options resolved = options_;
  if (resolved.journal_path.empty()) resolved.journal_path = ctx.config().data_dir + "/task_runner.journal";
  kinds table = kinds_;
  auto env = std::make_shared<runner_env>(ctx, resolved, kinds{});
  if (resolved.exec.enabled) {
    env->exec = make_exec_pool(resolved.exec);
    table.add("exec", exec_kind(*env->exec));
  }
  env->table = std::move(table);
  env_ = env;
  // info.journal: where durability stands (the writer's counters are thread-safe).
  ctx.add_info("journal", [env](wire::packer& p) {
    if (!env->journal) {
      p.pack_map(1);
      p.pack("enabled");
      p.pack(false);
      return;
    }
    const journal_stats s = env->journal->stats();
    p.pack_map(7);
    p.pack("enabled");
    p.pack(true);
    p.pack("path");
    p.pack(env->journal->path());
    p.pack("bytes");
    p.pack(s.bytes);
    p.pack("records");
    p.pack(s.records);
    p.pack("fsyncs");
    p.pack(s.fsyncs);
    p.pack("write_failures");
    p.pack(s.write_failures);
    p.pack("compactions");
    p.pack(s.compactions);
  });

  child_spec workers(workers_name, [] {
    return dynamic_supervisor::start_link({.max_restarts = 0}, process_name(workers_name));
  });
  workers.type(child_type::supervisor);
  return {std::move(workers), server_spec(env)};
}

void app::stopped(canopy::app::context&) {
  if (!env_) return;
  if (env_->journal) env_->journal->stop();  // what was queued is written and fsynced
  env_->exec.reset();                        // children still running are killed
}

std::string_view app::route(std::string_view op) const {
  static constexpr std::string_view ops[] = {"submit", "status", "await", "cancel", "list", "stats", "crash"};
  for (std::string_view o : ops)
    if (o == op) return server_name;
  return {};
}

}  // namespace canopy::task_app
