#pragma once
// session_app::record: one user session's contents — its data map, its bounded message
// list, its times — with no process, socket or clock inside (times are passed in), so the
// rules of docs/protocol.md "Sessions" are tested alone. It is also what the session manager
// writes through to the cache: encode() / decode() are that format.
// Thread-safety: a value; one owner at a time (the session's process).
//
//   record r("alice", now_ms, 30min);
//   r.merge(*wire::find(args, "data"), limits);       // nil removes a key
//   std::uint64_t seq = r.append(wire::value::from_object(msg), now_ms, limits);
//   for (const stored_message* m : r.messages_after(0, 100)) ...
//   wire::value copy = r.encode();                     // for the cache
//   auto back = record::decode(copy.bytes(), limits);  // at the next start

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "canopy/wire/value.hpp"

namespace canopy::session_app {

struct record_limits {
  std::size_t max_messages = 100;              // the list keeps the newest this many
  std::size_t max_message_value_bytes = 4096;  // one sent message, msgpack-encoded
  std::size_t max_data_bytes = 65536;          // the whole data map, msgpack-encoded
};

struct stored_message {
  std::uint64_t seq = 0;
  std::uint64_t ts_ms = 0;  // wall clock, ms since the epoch
  wire::value message;
};

// Why a change was refused (nothing was changed).
enum class refusal : std::uint8_t { none, not_a_map, too_large };

class record {
 public:
  record(std::string user, std::uint64_t created_ms, std::chrono::milliseconds idle_timeout);

  [[nodiscard]] const std::string& user() const noexcept { return user_; }
  [[nodiscard]] std::uint64_t created_ms() const noexcept { return created_ms_; }
  [[nodiscard]] std::uint64_t last_active_ms() const noexcept { return last_active_ms_; }
  [[nodiscard]] std::chrono::milliseconds idle_timeout() const noexcept { return idle_timeout_; }
  // The seq of the newest message (0: none sent yet). Seqs start at 1 and never repeat.
  [[nodiscard]] std::uint64_t last_seq() const noexcept { return last_seq_; }
  // Messages held now (at most max_messages; older ones were dropped).
  [[nodiscard]] std::size_t message_count() const noexcept { return ring_.size(); }
  // The data map's msgpack bytes ({} when never given).
  [[nodiscard]] const wire::value& data() const noexcept { return data_; }

  // Activity: the session was used at `now_ms`.
  void touch(std::uint64_t now_ms) noexcept { last_active_ms_ = now_ms; }
  void set_idle_timeout(std::chrono::milliseconds t) noexcept { idle_timeout_ = t; }

  // Shallow merge of `changes` into data: each key replaces the one with the same
  // (byte-exact) key; a nil value removes the key. not_a_map / too_large (the result would
  // pass max_data_bytes) leave the data as it was.
  refusal merge(const msgpack::object& changes, const record_limits& limits);

  // Appends a message at `now_ms`, dropping the oldest past max_messages; its seq. The
  // caller checks max_message_value_bytes first (message_fits).
  std::uint64_t append(wire::value message, std::uint64_t now_ms, const record_limits& limits);
  [[nodiscard]] static bool message_fits(const wire::value& message, const record_limits& limits) noexcept {
    return message.bytes().size() <= limits.max_message_value_bytes;
  }

  // Messages with seq > `after`, oldest first, at most `limit`.
  [[nodiscard]] std::vector<const stored_message*> messages_after(std::uint64_t after, std::size_t limit) const;

  // The cache's copy: a msgpack map {v: 1, user, created_ms, last_active_ms,
  // idle_timeout_ms, last_seq, data, messages: [[seq, ts_ms, message], ...]}.
  [[nodiscard]] wire::value encode() const;
  // A record from encode()'s bytes; nothing (and `why` says what is wrong) for anything else.
  // Messages beyond limits.max_messages are dropped, oldest first.
  static std::optional<record> decode(std::string_view bytes, const record_limits& limits, std::string* why = nullptr);
  // The worst case of encode()'s size under `limits` with a user of `max_user_bytes`.
  [[nodiscard]] static std::size_t max_encoded_bytes(const record_limits& limits, std::size_t max_user_bytes) noexcept;

 private:
  std::string user_;
  std::uint64_t created_ms_ = 0;
  std::uint64_t last_active_ms_ = 0;
  std::chrono::milliseconds idle_timeout_;
  std::uint64_t last_seq_ = 0;
  wire::value data_ = wire::value::empty_map();
  // The newest messages, a ring once full: ring_[head_] is the oldest. Empty sessions
  // allocate nothing (a million of them must fit in memory).
  std::vector<stored_message> ring_;
  std::uint32_t head_ = 0;
};

}  // namespace canopy::session_app
