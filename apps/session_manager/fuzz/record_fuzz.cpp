// libFuzzer target: any bytes as a session record read back from the cache
// (record::decode), then encoded again and merged into (fuzz/record_property.hpp). Built by
// the `fuzz` preset; CI runs it briefly from corpus/, and record_test replays that corpus.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "record_property.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string broken =
      canopy::session_app::fuzz::check_record_bytes(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!broken.empty()) {
    std::fprintf(stderr, "record property broken: %s\n", broken.c_str());
    std::abort();
  }
  return 0;
}
