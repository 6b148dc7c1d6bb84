#pragma once
// What must hold for any bytes given to record::decode (the fuzzer checks it on random
// input; record_test replays the corpus through it): decoding never crashes or throws; a
// record it accepts encodes to bytes that decode to the same encoding; merging any map
// into it either applies within the limits or refuses without changing it.
#include <string>
#include <string_view>

#include "canopy/session_app/record.hpp"
#include "canopy/wire/codec.hpp"

namespace canopy::session_app::fuzz {

// Empty when the property holds; else what broke.
inline std::string check_record_bytes(std::string_view bytes) {
  const record_limits limits{.max_messages = 8, .max_message_value_bytes = 512, .max_data_bytes = 2048};
  std::string why;
  std::optional<record> r = record::decode(bytes, limits, &why);
  if (!r) return why.empty() ? "refused without a reason" : "";
  const wire::value once = r->encode();
  std::optional<record> again = record::decode(once.bytes(), limits, &why);
  if (!again) return "its own encoding was refused: " + why;
  if (again->encode() != once) return "encode(decode(encode(r))) differs from encode(r)";
  // The same bytes, if they form a map, as changes to the record's data.
  if (!wire::check_value(bytes, wire::decode_limits{})) {
    msgpack::object_handle h = msgpack::unpack(bytes.data(), bytes.size());
    const wire::value before = r->data();
    const refusal result = r->merge(h.get(), limits);
    if (result != refusal::none && r->data() != before) return "a refused merge changed the data";
    if (r->data().bytes().size() > limits.max_data_bytes && result == refusal::none)
      return "a merge passed max_data_bytes";
  }
  return "";
}

}  // namespace canopy::session_app::fuzz
