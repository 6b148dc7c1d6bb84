// The fuzzer's corpus (seeds and every finding) replayed through the decoder on each build:
// nothing throws, refusals carry a message, accepted requests are well-formed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "canopy/wire/codec.hpp"

namespace canopy::wire {
namespace {

TEST(FuzzCorpus, EveryFileDecodesOrIsRefusedCleanly) {
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(CANOPY_WIRE_CORPUS_DIR)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::string frame((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ++files;
    decoded d = decode_request(frame, decode_limits{});
    if (d.ok()) {
      EXPECT_FALSE(d.value().op.empty() && d.value().args == nullptr) << entry.path();
      EXPECT_EQ(d.value().args->type, msgpack::type::MAP) << entry.path();
      EXPECT_FALSE(check_value(frame, decode_limits{})) << entry.path();
    } else {
      EXPECT_FALSE(d.failure().message.empty()) << entry.path();
    }
  }
  EXPECT_GE(files, 9u);
}

}  // namespace
}  // namespace canopy::wire
