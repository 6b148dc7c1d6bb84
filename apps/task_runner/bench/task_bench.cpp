// tools/bench task_runner: no-op tasks (echo) submitted by 50 clients, 16 submits in
// flight each, until every one has succeeded — with the journal off, with group commit
// (the default), and with an fsync per write batch:
//   canopy.task_runner.noop.<journal_off|group_commit|fsync_always>   tasks/s, submit to succeeded
//   canopy.task_runner.submit.<...>                                   acknowledged submits/s
// and, from the journal-off run, what each finished task kept costs (they are all retained):
//   canopy.task_runner.retained.rss_bytes_per_task        the app's RSS growth / tasks
//   canopy.task_runner.retained.estimated_bytes_per_task  stats.retained_bytes / tasks
//
//   canopy_task_bench [--scale F]

#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "canopy/app/instance.hpp"
#include "canopy/msg/client.hpp"
#include "canopy/task_app/app.hpp"
#include "canopy/testing/memory.hpp"
#include "canopy/testing/wait.hpp"
#include "load.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

std::uint64_t stat(canopy::msg::client& c, const char* name) {
  auto r = c.call("stats", std::chrono::seconds(10));
  if (!r || !r->ok) return 0;
  return canopy::wire::find(*r->result, name)->via.u64;
}

void run(const char* name, bool journal, canopy::task_app::fsync_policy policy, std::size_t n) {
  const auto dir = std::filesystem::temp_directory_path() / ("canopy_task_bench_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  canopy::task_app::options o;
  o.journal = journal;
  o.fsync = policy;
  o.limits.queue_limit = n + 1000;
  o.limits.max_retained = n + 1000;
  canopy::task_app::app runner;
  runner.set_options(o);
  canopy::app::settings s;
  s.endpoint = "tcp://127.0.0.1:0";
  s.events_endpoint = "tcp://127.0.0.1:0";
  s.registry = "none";
  s.data_dir = dir.string();
  s.max_in_flight = 100000;
  auto quiet = std::make_shared<spdlog::logger>("bench", std::make_shared<spdlog::sinks::null_sink_mt>());
  auto started = canopy::app::instance::start(runner, s, quiet);
  if (!started) {
    std::fprintf(stderr, "task bench: cannot start: %s\n", started.error().to_string().c_str());
    std::exit(1);
  }
  auto& app = *started;
  auto watcher = canopy::msg::client::connect(app->endpoint());
  const long rss0 = canopy::testing::resident_bytes();
  const auto t0 = clock_type::now();
  const double submits = canopy::bench::drive(app->endpoint(), 50, 16, 0, n, [](std::size_t, std::uint64_t id) {
    return canopy::msg::encode_request(id, "submit", 1, [](canopy::wire::packer& p) {
      p.pack("kind");
      p.pack("echo");
    });
  });
  if (!canopy::testing::wait_until([&] { return stat(**watcher, "succeeded") >= n; }, std::chrono::seconds(300))) {
    std::fprintf(stderr, "task bench: not every task succeeded within 300 s\n");
    std::exit(1);
  }
  const double secs = std::chrono::duration<double>(clock_type::now() - t0).count();
  std::printf("canopy.task_runner.noop.%s: %.4g tasks/s\n", name, static_cast<double>(n) / secs);
  std::printf("canopy.task_runner.submit.%s: %.4g submits/s\n", name, submits);
  if (!journal) {
    const double tasks = static_cast<double>(n);
    std::printf("canopy.task_runner.retained.rss_bytes_per_task: %.4g B\n",
                static_cast<double>(canopy::testing::resident_bytes() - rss0) / tasks);
    std::printf("canopy.task_runner.retained.estimated_bytes_per_task: %.4g B\n",
                static_cast<double>(stat(**watcher, "retained_bytes")) / tasks);
  }
  std::fflush(stdout);
  app->stop();
  std::filesystem::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
  double scale = 1.0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--scale") == 0 && i + 1 < argc) {
      scale = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--scale F]\n", argv[0]);
      return 2;
    }
  }
  const std::size_t n = std::max<std::size_t>(1000, static_cast<std::size_t>(200000 * scale));
  run("journal_off", false, canopy::task_app::fsync_policy::group, n);
  run("group_commit", true, canopy::task_app::fsync_policy::group, n);
  run("fsync_always", true, canopy::task_app::fsync_policy::always, n);
  std::fprintf(stderr, "# task_runner: an in-process canopy-task-runner on loopback; %zu echo tasks from 50 DEALERs, 16 in flight each; journal in %s\n",
               n, std::filesystem::temp_directory_path().c_str());
  return 0;
}
