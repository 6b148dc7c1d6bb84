// libFuzzer target: any bytes as one request frame to a running session_manager (docs/protocol.md),
// through the server's decoder, the app's routing and the process serving the op
// (testing::app_probe says what a good answer is). The app keeps its state between inputs.
// Built by the `fuzz` preset; CI runs it briefly from dispatch_corpus/ with dispatch.dict
// (tests/fuzz/dispatch_corpus.py writes both), and the app's tests replay that corpus.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "canopy/testing/app_probe.hpp"
#include "dispatch_setup.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Kept to the end of the process (never destroyed: libFuzzer exits from anywhere).
  static auto* const served = canopy::session_app::fuzz::dispatch_app().release();
  static auto* const probe = canopy::testing::app_probe::start(*served).release();
  const std::string broken = probe->check(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!broken.empty()) {
    std::fprintf(stderr, "session_manager dispatch property broken: %s\n", broken.c_str());
    std::abort();
  }
  return 0;
}
