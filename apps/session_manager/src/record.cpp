#include "canopy/session_app/record.hpp"

#include <algorithm>
#include <utility>

#include "canopy/wire/codec.hpp"

namespace canopy::session_app {

namespace {

constexpr std::uint64_t format_version = 1;

std::string packed(const msgpack::object& o) { return std::string(wire::value::from_object(o).bytes()); }

// What the packer made here: one value by construction (the parts written raw are values
// that were checked, or packed, before).
wire::value adopt(const msgpack::sbuffer& buf) { return wire::value::from_packed(std::string(buf.data(), buf.size())); }

bool fail(std::string* why, std::string text) {
  if (why != nullptr) *why = std::move(text);
  return false;
}

const msgpack::object* field(const msgpack::object& map, std::string_view key, msgpack::type::object_type type) {
  const msgpack::object* f = wire::find(map, key);
  return f != nullptr && f->type == type ? f : nullptr;
}

}  // namespace

record::record(std::string user, std::uint64_t created_ms, std::chrono::milliseconds idle_timeout)
    : user_(std::move(user)), created_ms_(created_ms), last_active_ms_(created_ms), idle_timeout_(idle_timeout) {}

refusal record::merge(const msgpack::object& changes, const record_limits& limits) {
  if (changes.type != msgpack::type::MAP) return refusal::not_a_map;
  if (changes.via.map.size == 0) return refusal::none;
  // Keys are compared by their exact bytes, so any msgpack key works as the client sent it.
  std::vector<std::pair<std::string, std::string>> merged;
  msgpack::object_handle current = msgpack::unpack(data_.bytes().data(), data_.bytes().size());
  const msgpack::object& now = current.get();
  merged.reserve(now.via.map.size + changes.via.map.size);
  for (std::uint32_t i = 0; i < now.via.map.size; ++i)
    merged.emplace_back(packed(now.via.map.ptr[i].key), packed(now.via.map.ptr[i].val));
  for (std::uint32_t i = 0; i < changes.via.map.size; ++i) {
    const msgpack::object_kv& kv = changes.via.map.ptr[i];
    std::string key = packed(kv.key);
    auto it = std::find_if(merged.begin(), merged.end(), [&](const auto& e) { return e.first == key; });
    if (kv.val.type == msgpack::type::NIL) {
      if (it != merged.end()) merged.erase(it);
    } else if (it != merged.end()) {
      it->second = packed(kv.val);
    } else {
      merged.emplace_back(std::move(key), packed(kv.val));
    }
  }
  msgpack::sbuffer buf(64);
  wire::packer p(buf);
  p.pack_map(static_cast<std::uint32_t>(merged.size()));
  for (const auto& [k, v] : merged) {
    buf.write(k.data(), k.size());
    buf.write(v.data(), v.size());
  }
  if (buf.size() > limits.max_data_bytes) return refusal::too_large;
  data_ = adopt(buf);
  return refusal::none;
}

std::uint64_t record::append(wire::value message, std::uint64_t now_ms, const record_limits& limits) {
  stored_message m{++last_seq_, now_ms, std::move(message)};
  if (limits.max_messages == 0) return m.seq;
  if (ring_.size() < limits.max_messages) {
    // Not full: the ring is still in order (head_ is 0), so a push keeps it so.
    ring_.push_back(std::move(m));
  } else {
    ring_[head_] = std::move(m);
    head_ = static_cast<std::uint32_t>((head_ + 1) % ring_.size());
  }
  return last_seq_;
}

std::vector<const stored_message*> record::messages_after(std::uint64_t after, std::size_t limit) const {
  std::vector<const stored_message*> out;
  const std::size_t n = ring_.size();
  if (n == 0) return out;
  const std::uint64_t oldest = last_seq_ - n + 1;  // seqs in the ring are consecutive
  const std::uint64_t first = std::max(after + 1, oldest);
  if (first > last_seq_) return out;
  const std::size_t skip = first - oldest;
  const std::size_t count = std::min<std::size_t>(limit, n - skip);
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i) out.push_back(&ring_[(head_ + skip + i) % n]);
  return out;
}

wire::value record::encode() const {
  msgpack::sbuffer buf(128 + data_.bytes().size());
  wire::packer p(buf);
  p.pack_map(8);
  p.pack("v");
  p.pack(format_version);
  p.pack("user");
  p.pack(user_);
  p.pack("created_ms");
  p.pack(created_ms_);
  p.pack("last_active_ms");
  p.pack(last_active_ms_);
  p.pack("idle_timeout_ms");
  p.pack(static_cast<std::uint64_t>(idle_timeout_.count()));
  p.pack("last_seq");
  p.pack(last_seq_);
  p.pack("data");
  data_.write_to(p);
  p.pack("messages");
  const std::vector<const stored_message*> all = messages_after(0, ring_.size());
  p.pack_array(static_cast<std::uint32_t>(all.size()));
  for (const stored_message* m : all) {
    p.pack_array(3);
    p.pack(m->seq);
    p.pack(m->ts_ms);
    m->message.write_to(p);
  }
  return adopt(buf);
}

std::optional<record> record::decode(std::string_view bytes, const record_limits& limits, std::string* why) {
  // Bounded first: the bytes come from another app (the cache), so a container that
  // claims more elements than there are bytes must not reach msgpack's allocator.
  wire::decode_limits bounds;
  bounds.max_message_bytes = bounds.max_str = bounds.max_bin = std::size_t{64} << 20;
  bounds.max_depth = 64 + 3;  // a request's own depth limit, inside the record's map and list
  if (auto refused = wire::check_value(bytes, bounds)) {
    fail(why, refused->message);
    return std::nullopt;
  }
  msgpack::object_handle h;
  try {
    h = msgpack::unpack(bytes.data(), bytes.size());
  } catch (const std::exception& e) {
    fail(why, std::string("not msgpack: ") + e.what());
    return std::nullopt;
  }
  const msgpack::object& o = h.get();
  if (o.type != msgpack::type::MAP) {
    fail(why, "not a map");
    return std::nullopt;
  }
  const auto* version = field(o, "v", msgpack::type::POSITIVE_INTEGER);
  if (version == nullptr || version->via.u64 != format_version) {
    fail(why, "not a version 1 session record");
    return std::nullopt;
  }
  const auto* user = field(o, "user", msgpack::type::STR);
  const auto* created = field(o, "created_ms", msgpack::type::POSITIVE_INTEGER);
  const auto* active = field(o, "last_active_ms", msgpack::type::POSITIVE_INTEGER);
  const auto* idle = field(o, "idle_timeout_ms", msgpack::type::POSITIVE_INTEGER);
  const auto* last_seq = field(o, "last_seq", msgpack::type::POSITIVE_INTEGER);
  const auto* data = field(o, "data", msgpack::type::MAP);
  const auto* messages = field(o, "messages", msgpack::type::ARRAY);
  if (user == nullptr || created == nullptr || active == nullptr || idle == nullptr || last_seq == nullptr || data == nullptr ||
      messages == nullptr || idle->via.u64 == 0) {
    fail(why, "a field is missing or has the wrong type");
    return std::nullopt;
  }
  record r(std::string(user->via.str.ptr, user->via.str.size), created->via.u64,
           std::chrono::milliseconds(idle->via.u64));
  r.last_active_ms_ = active->via.u64;
  r.last_seq_ = last_seq->via.u64;
  r.data_ = wire::value::from_object(*data);
  const std::uint32_t n = messages->via.array.size;
  const std::uint32_t keep = static_cast<std::uint32_t>(std::min<std::size_t>(n, limits.max_messages));
  std::uint64_t expected = r.last_seq_ - n + 1;
  if (n > r.last_seq_) {
    fail(why, "more messages than seqs");
    return std::nullopt;
  }
  r.ring_.reserve(keep);
  for (std::uint32_t i = 0; i < n; ++i, ++expected) {
    const msgpack::object& m = messages->via.array.ptr[i];
    if (m.type != msgpack::type::ARRAY || m.via.array.size != 3 ||
        m.via.array.ptr[0].type != msgpack::type::POSITIVE_INTEGER ||
        m.via.array.ptr[1].type != msgpack::type::POSITIVE_INTEGER || m.via.array.ptr[0].via.u64 != expected) {
      fail(why, "message " + std::to_string(i) + " is malformed or out of sequence");
      return std::nullopt;
    }
    if (i < n - keep) continue;  // fewer kept now than when it was written
    r.ring_.push_back({expected, m.via.array.ptr[1].via.u64, wire::value::from_object(m.via.array.ptr[2])});
  }
  return r;
}

std::size_t record::max_encoded_bytes(const record_limits& limits, std::size_t max_user_bytes) noexcept {
  // Field names, integers (9 bytes at most each) and headers: well under 200 bytes; each
  // message adds an array header and two integers.
  return 200 + max_user_bytes + limits.max_data_bytes + limits.max_messages * (limits.max_message_value_bytes + 20);
}

}  // namespace canopy::session_app
