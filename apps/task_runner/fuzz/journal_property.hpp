#pragma once
// What must hold for any journal file (the fuzzer writes random ones; task_test replays
// the corpus through it): reading never crashes; it either refuses the file with a reason
// or rebuilds a book whose own snapshot, read back, rebuilds the same book.
#include <cstdio>
#include <fstream>
#include <string>
#include <string_view>

#include "canopy/task_app/journal.hpp"
#include "canopy/task_app/task_book.hpp"

namespace canopy::task_app::fuzz {

// Empty when the property holds; else what broke. `scratch` is a file it may overwrite.
inline std::string check_journal_bytes(std::string_view bytes, const std::string& scratch) {
  // The bytes as one record's payload too: the checksum would keep most random files from
  // reaching the record parser at all.
  {
    task_book raw({}, 1);
    (void)raw.apply(bytes);
    (void)raw.start_due(~0ull >> 1);
    (void)raw.requeue_interrupted(0);
    raw.snapshot([](std::string) {});
  }
  std::ofstream(scratch, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  task_book book({}, 1);
  auto read = read_journal(scratch, [&](std::string_view r) { return book.apply(r); });
  if (!read) return read.error().to_string().empty() ? "refused without a reason" : "";
  std::string snapshot;
  book.snapshot([&](std::string r) { snapshot += frame_record(r); });
  std::ofstream(scratch, std::ios::binary | std::ios::trunc) << snapshot;
  task_book again({}, 1);
  auto reread = read_journal(scratch, [&](std::string_view r) { return again.apply(r); });
  if (!reread) return "its own snapshot was refused: " + reread.error().to_string();
  std::string second;
  again.snapshot([&](std::string r) { second += frame_record(r); });
  if (second != snapshot) return "a snapshot read back is not the same book";
  return "";
}

}  // namespace canopy::task_app::fuzz
