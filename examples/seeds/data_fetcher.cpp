// Seed: DataFetcher — three Task.async fetches, awaited together with a 5000 ms timeout.
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "canopy/otp/tasks.hpp"
#include "check.hpp"

std::string fetch(const std::string& source) { return "data from " + source; }

class data_fetcher final : public canopy::process {
 public:
  data_fetcher(std::vector<std::string>* out, std::atomic<bool>* done) : out_(out), done_(done) {}

 protected:
  void on_start() override { fetch_all(out_, done_); }
  void receive(canopy::message&) override {}

 private:
  static canopy::async fetch_all(std::vector<std::string>* out, std::atomic<bool>* done) {
    std::vector<canopy::task_handle<std::string>> tasks;
    for (const char* source : {"users", "orders", "stock"}) {
      std::string s = source;
      tasks.push_back(canopy::tasks::async([s] { return fetch(s); }));
    }
    *out = co_await canopy::tasks::await_many(tasks, std::chrono::milliseconds(5000));
    done->store(true);
  }
  std::vector<std::string>* out_;
  std::atomic<bool>* done_;
};

int main() {
  canopy::runtime rt;
  std::vector<std::string> results;
  std::atomic<bool> done{false};
  rt.spawn<data_fetcher>(&results, &done);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!done && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  check(done.load(), "await_many finished within its timeout");
  check(results == std::vector<std::string>{"data from users", "data from orders", "data from stock"},
        "three fetches, results in the order started");
  return 0;
}
