#pragma once
// Shared by the seed examples: each example checks its own behaviour and exits non-zero
// (with the reason) when something is not as the seed describes; CTest runs them.
#include <cstdio>
#include <cstdlib>
#include <string>

inline void check(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  if (!ok) std::exit(1);
}
