#pragma once
// Cache snapshots: the whole store in one file, written atomically (a temp file, fsync,
// rename, fsync of the directory) and checked when read (a CRC-32 over everything, and a
// trailer), so a truncated or corrupt file is refused — loudly — rather than served.
// Thread-safety: none; the cache server process calls these.
//
// Format (little-endian): "CNPYCSH1", u32 version (1), u64 entries; per entry: u32 key
// length, key, u32 value length, value (msgpack bytes as kept), i64 expiry in wall-clock ms
// since the epoch (0: none); then u32 CRC-32 of all the bytes before it, and "END!".
// Expiries are wall-clock so TTLs keep running while the app is down; entries already due
// at load are skipped. Entries are written least recently used first, so loading keeps the
// recency order.

#include <cstdint>
#include <string>

#include "canopy/cache_app/store.hpp"
#include "canopy/core/result.hpp"
#include "canopy/wire/codec.hpp"

namespace canopy::cache_app {

// The wall clock and the runtime's monotonic clock at one instant, to convert expiries.
struct clocks {
  time_point mono;
  std::int64_t wall_ms;
};

// errc::invalid_argument with the path and the system's reason when it cannot be written.
canopy::result<std::uint64_t> write_snapshot(const store& s, const std::string& path, clocks now);

struct loaded {
  std::uint64_t entries = 0;
  std::uint64_t expired = 0;  // skipped: already due
};
// errc::not_found when there is no file; errc::invalid_argument naming what is wrong with a
// truncated or corrupt one (the store is left empty then).
canopy::result<loaded> read_snapshot(store& s, const std::string& path, clocks now, const wire::decode_limits& limits);

}  // namespace canopy::cache_app
