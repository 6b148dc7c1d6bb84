#pragma once
// resident_bytes: a process's resident set (RSS), for benches that report memory per item
// and the soak's memory bounds. Linux only (/proc). Thread-safety: call from any thread.

#include <unistd.h>

#include <fstream>
#include <string>

namespace canopy::testing {

// The resident set of process `os_pid` (0: this one) in bytes; 0 if it cannot be read
// (the process is gone). Signed, so two readings subtract.
inline long resident_bytes(int os_pid = 0) {
  std::ifstream statm(os_pid == 0 ? std::string("/proc/self/statm") : "/proc/" + std::to_string(os_pid) + "/statm");
  long pages_total = 0;
  long pages_resident = 0;
  if (!(statm >> pages_total >> pages_resident)) return 0;
  return pages_resident * ::sysconf(_SC_PAGESIZE);
}

}  // namespace canopy::testing
