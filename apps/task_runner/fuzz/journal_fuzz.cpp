// libFuzzer target: any bytes as the task runner's journal file, replayed into a task book
// (fuzz/journal_property.hpp). Built by the `fuzz` preset; CI runs it briefly from corpus/,
// and task_test replays that corpus.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "journal_property.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string scratch = "/dev/shm/canopy_journal_fuzz_" + std::to_string(::getpid());
  const std::string broken =
      canopy::task_app::fuzz::check_journal_bytes(std::string_view(reinterpret_cast<const char*>(data), size), scratch);
  if (!broken.empty()) {
    std::fprintf(stderr, "journal property broken: %s\n", broken.c_str());
    std::abort();
  }
  return 0;
}
