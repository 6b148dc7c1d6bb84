// libFuzzer target: any bytes as one request frame to a running registry (docs/protocol.md),
// through the server's decoder, the app's routing and the process serving the op
// (testing::app_probe says what a good answer is). The app keeps its state between inputs.
// Built by the `fuzz` preset; CI runs it briefly from dispatch_corpus/ with dispatch.dict
// (tests/fuzz/dispatch_corpus.py writes both), and the app's tests replay that corpus.
#include <cstddef>
#include <cstdint>

#include "canopy/testing/app_probe.hpp"
#include "dispatch_setup.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return canopy::testing::fuzz_dispatch(canopy::registry_app::fuzz::dispatch_app, data, size);
}
