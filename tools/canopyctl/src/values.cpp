#include "canopy/ctl/values.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <vector>

namespace canopy::ctl {

namespace {

// A small JSON reader that packs as it goes (no tree in between).
class json_reader {
 public:
  json_reader(std::string_view text, wire::packer& p) : s_(text), p_(p) {}

  canopy::result<void> whole() {
    space();
    if (auto v = value(0); !v) return v;
    space();
    if (at_ != s_.size()) return fail("unexpected text after the value");
    return {};
  }

 private:
  canopy::result<void> fail(const std::string& why) const {
    return error(errc::invalid_argument, "not JSON at character " + std::to_string(at_) + ": " + why);
  }
  void space() {
    while (at_ < s_.size() && (s_[at_] == ' ' || s_[at_] == '\t' || s_[at_] == '\n' || s_[at_] == '\r')) ++at_;
  }
  bool eat(char c) {
    space();
    if (at_ < s_.size() && s_[at_] == c) {
      ++at_;
      return true;
    }
    return false;
  }
  bool word(std::string_view w) {
    if (s_.substr(at_, w.size()) != w) return false;
    at_ += w.size();
    return true;
  }

  canopy::result<void> value(int depth) {
    if (depth > 64) return fail("nested too deep");
    space();
    if (at_ >= s_.size()) return fail("a value is missing");
    const char c = s_[at_];
    if (c == '{') return object(depth);
    if (c == '[') return array(depth);
    if (c == '"') {
      std::string out;
      if (auto ok = string(out); !ok) return ok;
      p_.pack(out);
      return {};
    }
    if (word("true")) {
      p_.pack(true);
      return {};
    }
    if (word("false")) {
      p_.pack(false);
      return {};
    }
    if (word("null")) {
      p_.pack_nil();
      return {};
    }
    return number();
  }

  canopy::result<void> object(int depth) {
    ++at_;  // {
    // Count the pairs first: msgpack writes the size before the contents.
    std::vector<std::pair<std::string, std::string>> pairs;
    if (!eat('}')) {
      do {
        space();
        std::string key;
        if (at_ >= s_.size() || s_[at_] != '"') return fail("an object key must be a string");
        if (auto ok = string(key); !ok) return ok;
        if (!eat(':')) return fail("':' expected");
        std::string packed;
        if (auto ok = element(depth, packed); !ok) return ok;
        pairs.emplace_back(std::move(key), std::move(packed));
      } while (eat(','));
      if (!eat('}')) return fail("'}' or ',' expected");
    }
    p_.pack_map(static_cast<std::uint32_t>(pairs.size()));
    for (auto& [k, v] : pairs) {
      p_.pack(k);
      p_.pack_bin_body(v.data(), static_cast<std::uint32_t>(v.size()));  // raw, already packed
    }
    return {};
  }

  // A container's element at the cursor, packed on its own into `out` (the container's
  // count is written before its elements, so they wait until it is known).
  canopy::result<void> element(int depth, std::string& out) {
    msgpack::sbuffer inner;
    wire::packer ip(inner);
    json_reader sub(s_, ip);
    sub.at_ = at_;
    if (auto ok = sub.value(depth + 1); !ok) return ok;
    at_ = sub.at_;
    out.assign(inner.data(), inner.size());
    return {};
  }

  canopy::result<void> array(int depth) {
    ++at_;  // [
    std::vector<std::string> items;
    if (!eat(']')) {
      do {
        std::string packed;
        if (auto ok = element(depth, packed); !ok) return ok;
        items.push_back(std::move(packed));
      } while (eat(','));
      if (!eat(']')) return fail("']' or ',' expected");
    }
    p_.pack_array(static_cast<std::uint32_t>(items.size()));
    for (const std::string& v : items) p_.pack_bin_body(v.data(), static_cast<std::uint32_t>(v.size()));
    return {};
  }

  canopy::result<void> string(std::string& out) {
    ++at_;  // "
    while (at_ < s_.size() && s_[at_] != '"') {
      char c = s_[at_++];
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (at_ >= s_.size()) break;
      c = s_[at_++];
      switch (c) {
        case 'n': out.push_back('\n'); break;
        case 't': out.push_back('\t'); break;
        case 'r': out.push_back('\r'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'u': {
          if (at_ + 4 > s_.size()) return fail("a short \\u escape");
          unsigned code = 0;
          auto [end, ec] = std::from_chars(s_.data() + at_, s_.data() + at_ + 4, code, 16);
          if (ec != std::errc() || end != s_.data() + at_ + 4) return fail("a bad \\u escape");
          at_ += 4;
          // UTF-8 of a code point in the BMP (surrogate pairs are passed through as such).
          if (code < 0x80) {
            out.push_back(static_cast<char>(code));
          } else if (code < 0x800) {
            out.push_back(static_cast<char>(0xC0 | (code >> 6)));
            out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
          } else {
            out.push_back(static_cast<char>(0xE0 | (code >> 12)));
            out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
          }
          break;
        }
        default: out.push_back(c);  // \" \\ \/
      }
    }
    if (at_ >= s_.size()) return fail("a string is not closed");
    ++at_;  // "
    return {};
  }

  canopy::result<void> number() {
    const std::size_t start = at_;
    if (at_ < s_.size() && (s_[at_] == '-' || s_[at_] == '+')) ++at_;
    bool fraction = false;
    while (at_ < s_.size()) {
      const char c = s_[at_];
      if (c >= '0' && c <= '9') {
        ++at_;
      } else if (c == '.' || c == 'e' || c == 'E' || ((c == '-' || c == '+') && fraction)) {
        fraction = true;
        ++at_;
      } else {
        break;
      }
    }
    const std::string_view text = s_.substr(start, at_ - start);
    if (text.empty() || text == "-" || text == "+") return fail("a value is expected");
    const char* b = text.data() + (text[0] == '+' ? 1 : 0);
    const char* e = text.data() + text.size();
    if (!fraction) {
      if (text[0] == '-') {
        std::int64_t v = 0;
        if (auto [end, ec] = std::from_chars(b, e, v); ec == std::errc() && end == e) {
          p_.pack(v);
          return {};
        }
      } else {
        std::uint64_t v = 0;
        if (auto [end, ec] = std::from_chars(b, e, v); ec == std::errc() && end == e) {
          p_.pack(v);
          return {};
        }
      }
    }
    double d = 0;
    if (auto [end, ec] = std::from_chars(b, e, d); ec == std::errc() && end == e && std::isfinite(d)) {
      p_.pack(d);
      return {};
    }
    return fail("not a number: " + std::string(text));
  }

  std::string_view s_;
  wire::packer& p_;
  std::size_t at_ = 0;
};

void json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

std::string base64(std::string_view bytes) {
  static constexpr char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out.push_back(table[(v >> k) & 63]);
  }
  if (const std::size_t left = bytes.size() - i; left > 0) {
    unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    if (left == 2) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out.push_back(table[(v >> 18) & 63]);
    out.push_back(table[(v >> 12) & 63]);
    out.push_back(left == 2 ? table[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::string number_text(double d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

void json_of(std::string& out, const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::NIL: out += "null"; break;
    case msgpack::type::BOOLEAN: out += o.via.boolean ? "true" : "false"; break;
    case msgpack::type::POSITIVE_INTEGER: out += std::to_string(o.via.u64); break;
    case msgpack::type::NEGATIVE_INTEGER: out += std::to_string(o.via.i64); break;
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: out += std::isfinite(o.via.f64) ? number_text(o.via.f64) : "null"; break;
    case msgpack::type::STR: json_string(out, {o.via.str.ptr, o.via.str.size}); break;
    case msgpack::type::BIN:
      out += "{\"$bin\":\"" + base64({o.via.bin.ptr, o.via.bin.size}) + "\"}";
      break;
    case msgpack::type::EXT:
      out += "{\"$ext\":" + std::to_string(static_cast<int>(o.via.ext.type())) + ",\"data\":\"" +
             base64({o.via.ext.data(), o.via.ext.size - 1}) + "\"}";
      break;
    case msgpack::type::ARRAY:
      out.push_back('[');
      for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
        if (i) out.push_back(',');
        json_of(out, o.via.array.ptr[i]);
      }
      out.push_back(']');
      break;
    case msgpack::type::MAP:
      out.push_back('{');
      for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        if (i) out.push_back(',');
        const msgpack::object& k = o.via.map.ptr[i].key;
        if (k.type == msgpack::type::STR) {
          json_string(out, {k.via.str.ptr, k.via.str.size});
        } else {
          std::string key;
          json_of(key, k);
          json_string(out, key);  // JSON keys are strings: a non-string key as its JSON text
        }
        out.push_back(':');
        json_of(out, o.via.map.ptr[i].val);
      }
      out.push_back('}');
      break;
  }
}

bool scalar(const msgpack::object& o) { return o.type != msgpack::type::ARRAY && o.type != msgpack::type::MAP; }

std::string scalar_text(const msgpack::object& o) {
  if (o.type == msgpack::type::STR) return {o.via.str.ptr, o.via.str.size};
  std::string out;
  json_of(out, o);
  return out;
}

void text_of(std::string& out, const msgpack::object& o, int indent) {
  const std::string pad(static_cast<std::size_t>(indent) * 2, ' ');
  if (o.type == msgpack::type::MAP) {
    if (o.via.map.size == 0) {
      out += pad + "{}\n";
      return;
    }
    for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
      const auto& kv = o.via.map.ptr[i];
      out += pad + scalar_text(kv.key) + ":";
      if (scalar(kv.val) || (kv.val.type == msgpack::type::ARRAY && kv.val.via.array.size == 0) ||
          (kv.val.type == msgpack::type::MAP && kv.val.via.map.size == 0)) {
        out += " " + (scalar(kv.val) ? scalar_text(kv.val) : std::string(kv.val.type == msgpack::type::MAP ? "{}" : "[]")) + "\n";
      } else {
        out += "\n";
        text_of(out, kv.val, indent + 1);
      }
    }
    return;
  }
  if (o.type == msgpack::type::ARRAY) {
    if (o.via.array.size == 0) {
      out += pad + "[]\n";
      return;
    }
    for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
      const msgpack::object& v = o.via.array.ptr[i];
      if (scalar(v)) {
        out += pad + "- " + scalar_text(v) + "\n";
      } else {
        out += pad + "-\n";
        text_of(out, v, indent + 1);
      }
    }
    return;
  }
  out += pad + scalar_text(o) + "\n";
}

}  // namespace

void pack_literal(wire::packer& p, std::string_view word) {
  msgpack::sbuffer attempt;
  wire::packer ap(attempt);
  if (json_reader(word, ap).whole()) {
    p.pack_bin_body(attempt.data(), static_cast<std::uint32_t>(attempt.size()));
    return;
  }
  p.pack_str(static_cast<std::uint32_t>(word.size()));
  p.pack_str_body(word.data(), static_cast<std::uint32_t>(word.size()));
}

canopy::result<void> pack_json(wire::packer& p, std::string_view json) {
  msgpack::sbuffer attempt;
  wire::packer ap(attempt);
  if (auto ok = json_reader(json, ap).whole(); !ok) return ok;
  p.pack_bin_body(attempt.data(), static_cast<std::uint32_t>(attempt.size()));
  return {};
}

canopy::result<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end == text.data())
    return error(errc::invalid_argument, "not a duration: '" + std::string(text) + "' (say 250ms, 5s, 2m, 1h)");
  const std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  std::uint64_t scale = 0;
  if (unit.empty() || unit == "ms") scale = 1;
  else if (unit == "s") scale = 1000;
  else if (unit == "m") scale = 60000;
  else if (unit == "h") scale = 3600000;
  else if (unit == "d") scale = 86400000;
  else return error(errc::invalid_argument, "unknown unit in '" + std::string(text) + "' (ms, s, m, h, d)");
  return std::chrono::milliseconds(static_cast<std::int64_t>(n * scale));
}

std::string to_json(const msgpack::object& o) {
  std::string out;
  json_of(out, o);
  return out;
}

std::string to_text(const msgpack::object& o) {
  std::string out;
  text_of(out, o, 0);
  return out;
}

}  // namespace canopy::ctl
