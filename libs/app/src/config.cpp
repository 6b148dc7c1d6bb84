#include "canopy/app/config.hpp"

#include <algorithm>
#include <set>
#include <sstream>
#include <toml++/toml.h>

namespace canopy::app {

struct config::impl {
  toml::table root;
  std::string origin;
  std::set<std::string, std::less<>> known;
  std::vector<std::string> errors;

  toml::node_view<const toml::node> find(std::string_view key) {
    known.emplace(key);
    return std::as_const(root).at_path(key);
  }
  void wrong(std::string_view key, const std::string& what) { errors.push_back(std::string(key) + ": " + what); }

  // Leaf keys of the file (a table's keys, recursively; an array is a leaf).
  void leaves(const toml::table& t, const std::string& prefix, std::vector<std::string>& out) const {
    for (const auto& [k, node] : t) {
      const std::string path = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
      if (const auto* sub = node.as_table()) {
        leaves(*sub, path, out);
      } else {
        out.push_back(path);
      }
    }
  }
};

namespace {

const char* type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date or time";
  }
}

}  // namespace

config::config(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
config::config(config&&) noexcept = default;
config& config::operator=(config&&) noexcept = default;
config::~config() = default;

canopy::result<config> config::load(const std::string& path) {
  try {
    auto p = std::make_unique<impl>();
    p->root = toml::parse_file(path);
    p->origin = path;
    return config(std::move(p));
  } catch (const toml::parse_error& e) {
    std::ostringstream out;
    out << path;
    if (e.source().begin.line > 0) out << ":" << e.source().begin.line;
    out << ": " << e.description();
    return error(errc::invalid_argument, out.str());
  }
}

canopy::result<config> config::parse(std::string_view text, std::string origin) {
  try {
    auto p = std::make_unique<impl>();
    p->root = toml::parse(text, std::string_view(origin));
    p->origin = std::move(origin);
    return config(std::move(p));
  } catch (const toml::parse_error& e) {
    return error(errc::invalid_argument,
                 origin + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
  }
}

config config::empty() {
  auto p = std::make_unique<impl>();
  p->origin = "(defaults)";
  return config(std::move(p));
}

const std::string& config::origin() const noexcept { return impl_->origin; }

bool config::has(std::string_view key) const { return static_cast<bool>(std::as_const(impl_->root).at_path(key)); }

std::string config::string(std::string_view key, std::string fallback) {
  auto v = impl_->find(key);
  if (!v) return fallback;
  if (const auto* s = v.as_string()) return s->get();
  impl_->wrong(key, std::string("expected a string, found ") + type_name(*v.node()));
  return fallback;
}

std::int64_t config::integer(std::string_view key, std::int64_t fallback, std::int64_t min, std::int64_t max) {
  auto v = impl_->find(key);
  if (!v) return fallback;
  const auto* i = v.as_integer();
  if (i == nullptr) {
    impl_->wrong(key, std::string("expected an integer, found ") + type_name(*v.node()));
    return fallback;
  }
  const std::int64_t n = i->get();
  if (n < min || n > max) {
    impl_->wrong(key, std::to_string(n) + " is out of range [" + std::to_string(min) + ", " + std::to_string(max) + "]");
    return fallback;
  }
  return n;
}

bool config::boolean(std::string_view key, bool fallback) {
  auto v = impl_->find(key);
  if (!v) return fallback;
  if (const auto* b = v.as_boolean()) return b->get();
  impl_->wrong(key, std::string("expected true or false, found ") + type_name(*v.node()));
  return fallback;
}

std::chrono::milliseconds config::milliseconds(std::string_view key, std::chrono::milliseconds fallback,
                                               std::chrono::milliseconds min, std::chrono::milliseconds max) {
  return std::chrono::milliseconds(integer(key, fallback.count(), min.count(), max.count()));
}

std::vector<std::string> config::strings(std::string_view key, std::vector<std::string> fallback) {
  auto v = impl_->find(key);
  if (!v) return fallback;
  const auto* a = v.as_array();
  if (a == nullptr) {
    impl_->wrong(key, std::string("expected an array of strings, found ") + type_name(*v.node()));
    return fallback;
  }
  std::vector<std::string> out;
  for (const toml::node& n : *a) {
    const auto* s = n.as_string();
    if (s == nullptr) {
      impl_->wrong(key, std::string("expected an array of strings, it holds ") + type_name(n));
      return fallback;
    }
    out.push_back(s->get());
  }
  return out;
}

std::string config::choice(std::string_view key, std::string fallback, const std::vector<std::string>& allowed) {
  const bool present = has(key);
  std::string v = string(key, fallback);
  if (present && std::find(allowed.begin(), allowed.end(), v) == allowed.end()) {
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    impl_->wrong(key, "'" + v + "' is not one of " + list);
    return fallback;
  }
  return v;
}

void config::fail(std::string_view key, std::string message) { impl_->wrong(key, message); }

canopy::result<void> config::finish() const {
  std::vector<std::string> problems = impl_->errors;
  std::vector<std::string> leaves;
  impl_->leaves(impl_->root, "", leaves);
  for (const std::string& k : leaves)
    if (impl_->known.count(k) == 0) problems.push_back(k + ": unknown key");
  if (problems.empty()) return {};
  std::string text = impl_->origin + ": ";
  for (std::size_t i = 0; i < problems.size(); ++i) text += (i ? "; " : "") + problems[i];
  return error(errc::invalid_argument, text);
}

}  // namespace canopy::app
