#pragma once
// testing::app_probe: one app started in this process (standalone, loopback, free ports)
// and raw frames thrown at its ROUTER the way any peer could. The harness behind every
// app's dispatch fuzz target (fuzz/dispatch_fuzz.cpp) and the corpus replays in the app's
// tests: a frame goes the whole way — the server's decoder, the app's routing, the process
// that serves the op — and check() says what is wrong with how it was answered.
// Thread-safety: one thread uses a probe.
//
//   canopy::cache_app::app cache;
//   auto probe = canopy::testing::app_probe::start(cache);
//   std::string broken = probe->check(frame);   // "" when the app answered well
//
// What check() requires of the answer (docs/protocol.md "Reply"): exactly one reply frame
// that is a msgpack map with `id` (the request's, when the frame had a readable one, else
// nil), `ok`, and `result` or `error` {code: one of the protocol's, message: str}; never
// `internal` (a handler crashed). A request may take long legitimately (a task's await, up
// to its timeout): with no reply within 2 s check() instead requires that the app still
// answers `ping` on a second connection, and a late reply is checked when it comes.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "canopy/app/application.hpp"

namespace canopy::testing {

class app_probe {
 public:
  // Starts `app` (which must outlive the probe) on free loopback ports with `s` otherwise;
  // aborts with the reason if it cannot start (a harness has no one to report to).
  static std::unique_ptr<app_probe> start(app::application& app, app::settings s = {});
  ~app_probe();
  app_probe(const app_probe&) = delete;
  app_probe& operator=(const app_probe&) = delete;

  // Sends `frame` as one request; "" if it was answered well, else what was wrong.
  std::string check(std::string_view frame);

  // check() for every file in `dir` (a fuzz corpus): "<file>: <what was wrong>" per failure.
  std::vector<std::string> replay(const std::filesystem::path& dir);

  // check(), aborting with what was wrong (a fuzz target's way to report a finding).
  void require(std::string_view frame);

 private:
  struct impl;
  explicit app_probe(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

// The whole of an app's LLVMFuzzerTestOneInput: the app `make_app()` returns, started on
// the first input and kept to the end of the process (libFuzzer exits from anywhere), gets
// the input as one frame.
//   extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* d, std::size_t n) {
//     return canopy::testing::fuzz_dispatch(canopy::cache_app::fuzz::dispatch_app, d, n);
//   }
template <class MakeApp>
int fuzz_dispatch(MakeApp make_app, const std::uint8_t* data, std::size_t size) {
  static auto* const served = make_app().release();
  static auto* const probe = app_probe::start(*served).release();
  probe->require(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}

}  // namespace canopy::testing
