#include "canopy/ctl/ctl.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <deque>
#include <functional>
#include <sstream>
#include <map>
#include <memory>
#include <optional>

#include "canopy/ctl/values.hpp"
#include "canopy/msg/client.hpp"
#include "canopy/msg/subscriber.hpp"
#include "canopy/wire/value.hpp"

namespace canopy::ctl {

int exit_code_of(wire::error_code code) noexcept { return 10 + static_cast<int>(code); }

namespace {

using namespace std::chrono_literals;

// How a word on the command line becomes an argument.
enum class as : std::uint8_t {
  text,      // a string
  literal,   // JSON if it parses as JSON, else a string (values: 42, true, {"a": 1}, hello)
  json,      // strictly JSON (maps: --data, --meta)
  duration,  // 250ms, 5s, 2m, 1h -> ms
  count,     // an unsigned integer
  pairs,     // the rest of the words, key=value each -> a map
  words,     // the rest of the words -> an array of strings
};

struct param {
  std::string arg;  // the protocol's argument name
  as kind;
  bool required = true;
};
struct option {
  std::string flag;  // "--ttl"
  std::string arg;   // "ttl_ms"
  as kind;
  std::string help;
};
struct op_spec {
  std::string app, op, help;
  std::vector<param> positionals;
  std::vector<option> options;
};

const std::vector<op_spec>& ops() {
  static const std::vector<op_spec> table = {
      // registry
      {"registry", "register", "hold a name under a lease", {{"name", as::text}, {"endpoint", as::text}},
       {{"--meta", "meta", as::json, "a JSON object"}, {"--ttl", "ttl_ms", as::duration, "the lease's ttl"},
        {"--lease", "lease", as::text, "an existing lease"}}},
      {"registry", "renew", "renew a lease", {{"lease", as::text}}, {}},
      {"registry", "unregister", "give a name up", {{"name", as::text}, {"lease", as::text}}, {}},
      {"registry", "lookup", "where a name is", {{"name", as::text}}, {}},
      {"registry", "list", "every name (by prefix)", {{"prefix", as::text, false}}, {}},
      {"registry", "join", "join a group", {{"group", as::text}, {"member", as::text}},
       {{"--endpoint", "endpoint", as::text, ""}, {"--meta", "meta", as::json, "a JSON object"},
        {"--ttl", "ttl_ms", as::duration, ""}, {"--lease", "lease", as::text, ""}}},
      {"registry", "leave", "leave a group", {{"group", as::text}, {"member", as::text}}, {}},
      {"registry", "members", "a group's members", {{"group", as::text}}, {}},
      // cache
      {"cache", "put", "store a value", {{"key", as::text}, {"value", as::literal}}, {{"--ttl", "ttl_ms", as::duration, ""}}},
      {"cache", "get", "read a value", {{"key", as::text}}, {}},
      {"cache", "delete", "remove a key", {{"key", as::text}}, {}},
      {"cache", "incr", "add to an integer", {{"key", as::text}, {"by", as::literal, false}},
       {{"--ttl", "ttl_ms", as::duration, ""}}},
      {"cache", "mput", "store key=value pairs", {{"items", as::pairs}}, {{"--ttl", "ttl_ms", as::duration, ""}}},
      {"cache", "mget", "read many keys", {{"keys", as::words}}, {}},
      {"cache", "expire", "give a key a ttl", {{"key", as::text}, {"ttl_ms", as::duration}}, {}},
      {"cache", "ttl", "a key's time left", {{"key", as::text}}, {}},
      {"cache", "keys", "keys by prefix", {{"prefix", as::text, false}},
       {{"--limit", "limit", as::count, ""}, {"--after", "after", as::text, "the last key of the previous page"}}},
      {"cache", "clear", "remove every key", {}, {}},
      {"cache", "stats", "hits, misses, memory", {}, {}},
      // session_manager
      {"session_manager", "open", "open (or refresh) a session", {{"user", as::text}},
       {{"--idle", "idle_timeout_ms", as::duration, "the idle timeout"}, {"--data", "data", as::json, "a JSON object"}}},
      {"session_manager", "refresh", "reset the idle timer", {{"user", as::text}}, {}},
      {"session_manager", "send", "append a message", {{"user", as::text}, {"message", as::literal}}, {}},
      {"session_manager", "messages", "page through messages", {{"user", as::text}},
       {{"--after", "after", as::count, "a seq"}, {"--limit", "limit", as::count, ""}}},
      {"session_manager", "get", "a session", {{"user", as::text}}, {}},
      {"session_manager", "update", "merge into its data", {{"user", as::text}, {"data", as::json}}, {}},
      {"session_manager", "close", "end a session", {{"user", as::text}}, {}},
      {"session_manager", "list", "users by prefix", {{"prefix", as::text, false}}, {{"--limit", "limit", as::count, ""}}},
      {"session_manager", "count", "open sessions", {}, {}},
      // task_runner
      {"task_runner", "submit", "run a task: kind then its args as key=value", {{"kind", as::text}, {"args", as::pairs, false}},
       {{"--timeout", "timeout_ms", as::duration, "per attempt"}, {"--max-attempts", "max_attempts", as::count, ""},
        {"--backoff", "backoff_ms", as::duration, ""}, {"--delay", "delay_ms", as::duration, ""},
        {"--key", "key", as::text, "an idempotency key"}}},
      {"task_runner", "status", "a task", {{"task_id", as::text}}, {}},
      {"task_runner", "await", "wait for a task to finish", {{"task_id", as::text}},
       {{"--timeout", "timeout_ms", as::duration, "how long to wait"}}},
      {"task_runner", "cancel", "stop a task", {{"task_id", as::text}}, {}},
      {"task_runner", "list", "tasks, newest first", {},
       {{"--state", "state", as::text, "queued, running, succeeded, ..."}, {"--limit", "limit", as::count, ""}}},
      {"task_runner", "stats", "counts and limits", {}, {}},
  };
  return table;
}

const std::vector<std::string> app_ids = {"registry", "cache", "session_manager", "task_runner"};

struct settings {
  std::string registry = "tcp://127.0.0.1:7400";
  std::string endpoint;  // overrides the registry's answer
  bool json = false;
  std::string timeout = "5s";
};

// The words of one op, as CLI11 collected them.
struct collected {
  const op_spec* spec;
  std::vector<std::string> positionals;
  std::map<std::string, std::string> options;  // arg -> word
};

canopy::result<void> pack_word(wire::packer& p, as kind, const std::string& word, const std::string& arg) {
  switch (kind) {
    case as::text:
      p.pack(word);
      return {};
    case as::literal:
      pack_literal(p, word);
      return {};
    case as::json:
      if (auto ok = pack_json(p, word); !ok) return error(errc::invalid_argument, arg + ": " + ok.error().to_string());
      return {};
    case as::duration: {
      auto d = parse_duration(word);
      if (!d) return error(errc::invalid_argument, arg + ": " + d.error().to_string());
      p.pack(static_cast<std::uint64_t>(d->count()));
      return {};
    }
    case as::count: {
      std::uint64_t n = 0;
      auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), n);
      if (ec != std::errc() || end != word.data() + word.size())
        return error(errc::invalid_argument, arg + ": not a whole number: " + word);
      p.pack(n);
      return {};
    }
    default:
      return error(errc::invalid_argument, arg + ": internal: not a single word");
  }
}

// The request's args map from what was typed.
canopy::result<std::string> args_of(const collected& c) {
  msgpack::sbuffer buf;
  wire::packer p(buf);
  std::uint32_t pairs = 0;
  msgpack::sbuffer body;
  wire::packer b(body);
  std::size_t at = 0;
  for (const param& prm : c.spec->positionals) {
    if (prm.kind == as::pairs || prm.kind == as::words) {
      std::vector<std::string> rest(c.positionals.begin() + static_cast<std::ptrdiff_t>(std::min(at, c.positionals.size())),
                                    c.positionals.end());
      at = c.positionals.size();
      if (rest.empty() && !prm.required) continue;
      b.pack(prm.arg);
      if (prm.kind == as::words) {
        b.pack(rest);
      } else {
        b.pack_map(static_cast<std::uint32_t>(rest.size()));
        for (const std::string& kv : rest) {
          const auto eq = kv.find('=');
          if (eq == std::string::npos || eq == 0)
            return error(errc::invalid_argument, prm.arg + ": '" + kv + "' is not key=value");
          b.pack(kv.substr(0, eq));
          pack_literal(b, kv.substr(eq + 1));
        }
      }
      ++pairs;
      continue;
    }
    if (at >= c.positionals.size()) {
      if (prm.required) return error(errc::invalid_argument, prm.arg + " is missing");
      continue;
    }
    b.pack(prm.arg);
    if (auto ok = pack_word(b, prm.kind, c.positionals[at++], prm.arg); !ok) return ok.error();
    ++pairs;
  }
  if (at < c.positionals.size()) return error(errc::invalid_argument, "too many words: '" + c.positionals[at] + "'");
  for (const option& o : c.spec->options) {
    auto it = c.options.find(o.arg);
    if (it == c.options.end()) continue;
    b.pack(o.arg);
    if (auto ok = pack_word(b, o.kind, it->second, o.flag); !ok) return ok.error();
    ++pairs;
  }
  p.pack_map(pairs);
  buf.write(body.data(), body.size());
  return std::string(buf.data(), buf.size());
}

class session {
 public:
  session(settings s, std::ostream& out, std::ostream& err) : s_(std::move(s)), out_(out), err_(err) {}

  std::chrono::milliseconds timeout() const {
    auto d = parse_duration(s_.timeout);
    return d ? *d : 5000ms;
  }

  // The endpoint of `app` (the registry's answer, unless --endpoint); empty after saying why.
  std::string endpoint_of(const std::string& app, std::string* events = nullptr) {
    if (!s_.endpoint.empty() && app != "*") return s_.endpoint;
    if (app == "registry") return s_.registry;
    auto r = call(s_.registry, "lookup", [&](wire::packer& p) {
      p.pack_map(1);
      p.pack("name");
      p.pack(app);
    });
    if (!r) return {};
    if (!r->ok) {
      err_ << "canopyctl: " << app << " is not registered with the registry at " << s_.registry << " ("
           << wire::to_string(r->code) << ": " << r->message << ")\n";
      last_code_ = exit_code_of(r->code);
      return {};
    }
    if (events) {
      const msgpack::object* meta = wire::find(*r->result, "meta");
      const msgpack::object* ev = meta ? wire::find(*meta, "events") : nullptr;
      if (ev && ev->type == msgpack::type::STR) *events = std::string(ev->via.str.ptr, ev->via.str.size);
    }
    return wire::find(*r->result, "endpoint")->as<std::string>();
  }

  // One request whose args map write_args_map packs whole; nothing (after saying why) if
  // the app cannot be reached.
  std::optional<msg::reply> call(const std::string& endpoint, std::string_view op,
                                 const std::function<void(wire::packer&)>& write_args_map) {
    msg::client* c = client(endpoint);
    if (!c) return std::nullopt;
    msgpack::sbuffer b;
    wire::packer p(b);
    write_args_map(p);
    return call_raw(*c, op, std::string(b.data(), b.size()), timeout());
  }

  // The request is built here (encode_request writes the args map's header itself; these
  // args are a whole map already).
  std::optional<msg::reply> call_raw(msg::client& c, std::string_view op, const std::string& args_map,
                                     std::chrono::milliseconds wait) {
    msgpack::sbuffer b;
    wire::packer p(b);
    const std::uint64_t id = next_id_++;
    p.pack_map(3);
    p.pack("id");
    p.pack(id);
    p.pack("op");
    p.pack(std::string(op));
    p.pack("args");
    b.write(args_map.data(), args_map.size());
    if (!c.send_frames({std::string(b.data(), b.size())})) {
      err_ << "canopyctl: nothing answers at " << current_ << " (is the app running?)\n";
      last_code_ = exit_unreachable;
      return std::nullopt;
    }
    const auto until = std::chrono::steady_clock::now() + wait;
    while (std::chrono::steady_clock::now() < until) {
      auto r = c.receive(std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()));
      if (!r) break;
      if (r->id && *r->id == id) return r;
    }
    err_ << "canopyctl: no answer from " << current_ << " within " << wait.count() << " ms\n";
    last_code_ = exit_unreachable;
    return std::nullopt;
  }

  msg::client* client(const std::string& endpoint) {
    current_ = endpoint;
    auto it = clients_.find(endpoint);
    if (it != clients_.end()) return it->second.get();
    auto c = msg::client::connect(endpoint, {.send_timeout = timeout()});
    if (!c) {
      err_ << "canopyctl: " << endpoint << ": " << c.error().to_string() << "\n";
      last_code_ = exit_usage;
      return nullptr;
    }
    return (clients_[endpoint] = std::move(*c)).get();
  }

  // Prints a reply; its exit status.
  int show(const msg::reply& r) {
    if (!r.ok) {
      if (s_.json) {
        out_ << "{\"ok\":false,\"error\":{\"code\":\"" << wire::to_string(r.code) << "\",\"message\":";
        msgpack::sbuffer b;
        wire::packer p(b);
        p.pack(r.message);
        auto h = msgpack::unpack(b.data(), b.size());
        out_ << to_json(h.get()) << "}}\n";
      }
      err_ << "canopyctl: " << wire::to_string(r.code) << ": " << r.message << "\n";
      return exit_code_of(r.code);
    }
    if (s_.json) {
      out_ << to_json(*r.result) << "\n";
    } else {
      out_ << to_text(*r.result);
    }
    return 0;
  }

  int op(const collected& c, bool then_await) {
    auto args = args_of(c);
    if (!args) {
      err_ << "canopyctl: " << c.spec->app << " " << c.spec->op << ": " << args.error().to_string() << "\n";
      return exit_usage;
    }
    const std::string endpoint = endpoint_of(c.spec->app);
    if (endpoint.empty()) return last_code_;
    msg::client* cl = client(endpoint);
    if (!cl) return last_code_;
    std::chrono::milliseconds wait = timeout();
    if (c.spec->op == "await") {
      // The app waits up to timeout_ms: wait for its answer a little longer than that.
      auto it = c.options.find("timeout_ms");
      const auto asked = it == c.options.end() ? std::optional(5000ms) : std::optional(*parse_duration(it->second));
      wait = std::max(wait, *asked + 2s);
    }
    auto r = call_raw(*cl, c.spec->op, *args, wait);
    if (!r) return last_code_;
    if (then_await && r->ok) {
      const std::string id = wire::find(*r->result, "task_id")->as<std::string>();
      msgpack::sbuffer b;
      wire::packer p(b);
      p.pack_map(2);
      p.pack("task_id");
      p.pack(id);
      p.pack("timeout_ms");
      p.pack(static_cast<std::uint64_t>(await_for_.count()));
      auto done = call_raw(*cl, "await", std::string(b.data(), b.size()), await_for_ + 2s);
      if (!done) return last_code_;
      return show(*done);
    }
    return show(*r);
  }

  // Any op by name: args as key=value words.
  int generic(const std::string& app, const std::string& op, const std::vector<std::string>& words) {
    static const op_spec spec{"", "", "", {{"args", as::pairs, false}}, {}};
    collected c{&spec, words, {}};
    auto args = args_of(c);
    if (!args) {
      err_ << "canopyctl: " << args.error().to_string() << "\n";
      return exit_usage;
    }
    // args_of wraps them in {args: {...}}: unwrap.
    auto h = msgpack::unpack(args->data(), args->size());
    const msgpack::object* inner = wire::find(h.get(), "args");
    std::string map = "\x80";
    if (inner) map = std::string(wire::value::from_object(*inner).bytes());
    const std::string endpoint = endpoint_of(app);
    if (endpoint.empty()) return last_code_;
    msg::client* cl = client(endpoint);
    if (!cl) return last_code_;
    auto r = call_raw(*cl, op, map, timeout());
    if (!r) return last_code_;
    return show(*r);
  }

  // The supervision trees of every registered app, as one tree.
  int tree() {
    std::vector<std::pair<std::string, std::string>> apps;  // id, endpoint
    if (!s_.endpoint.empty()) {
      apps.emplace_back("app", s_.endpoint);
    } else {
      msg::client* reg = client(s_.registry);
      if (!reg) return last_code_;
      auto listed = call_raw(*reg, "list", "\x80", timeout());
      if (!listed) return last_code_;
      if (!listed->ok) return show(*listed);
      apps.emplace_back("registry", s_.registry);
      const msgpack::object* names = wire::find(*listed->result, "names");
      for (std::uint32_t i = 0; names && i < names->via.array.size; ++i) {
        const msgpack::object& n = names->via.array.ptr[i];
        const std::string name = wire::find(n, "name")->as<std::string>();
        if (std::find(app_ids.begin(), app_ids.end(), name) != app_ids.end())
          apps.emplace_back(name, wire::find(n, "endpoint")->as<std::string>());
      }
    }
    int status = 0;
    std::string json = "{";
    std::string text = "canopy\n";
    for (std::size_t i = 0; i < apps.size(); ++i) {
      const auto& [name, endpoint] = apps[i];
      msg::client* cl = client(endpoint);
      auto r = cl ? call_raw(*cl, "tree", "\x80", timeout()) : std::nullopt;
      const bool last = i + 1 == apps.size();
      if (!r || !r->ok) {
        text += std::string(last ? "└─ " : "├─ ") + name + " (" + endpoint + "): " +
                (r ? std::string(wire::to_string(r->code)) : std::string("unreachable")) + "\n";
        json += std::string(i ? "," : "") + "\"" + name + "\":null";
        status = exit_unreachable;
        continue;
      }
      json += std::string(i ? "," : "") + "\"" + name + "\":" + to_json(*r->result);
      draw(text, *r->result, last ? "   " : "│  ", last ? "└─ " : "├─ ", name + " " + endpoint + "  ");
    }
    json += "}";
    out_ << (s_.json ? json + "\n" : text);
    return status;
  }

  // Events by topic prefix from every app (or --endpoint's events address given as
  // --events), until `count` arrived or `for_ms` passed.
  int watch(const std::vector<std::string>& prefixes, const std::string& events, std::size_t count,
            std::optional<std::chrono::milliseconds> for_ms) {
    std::vector<std::string> sources;
    if (!events.empty()) {
      sources.push_back(events);
    } else {
      for (const std::string& app : app_ids) {
        std::string ev;
        if (app == "registry") {
          auto r = call_raw(*client(s_.registry), "info", "\x80", timeout());
          if (r && r->ok) sources.push_back(wire::find(*r->result, "events_endpoint")->as<std::string>());
          continue;
        }
        if (!endpoint_of(app, &ev).empty() && !ev.empty()) sources.push_back(ev);
      }
      if (sources.empty()) {
        err_ << "canopyctl: no app to watch (the registry at " << s_.registry << " lists none)\n";
        return exit_unreachable;
      }
    }
    std::vector<std::unique_ptr<msg::subscriber>> subs;
    const std::vector<std::string> filter = prefixes.empty() ? std::vector<std::string>{""} : prefixes;
    for (const std::string& e : sources) {
      auto s = msg::subscriber::connect(e, filter);
      if (s) subs.push_back(std::move(*s));
    }
    const auto until = for_ms ? std::chrono::steady_clock::now() + *for_ms : std::chrono::steady_clock::time_point::max();
    std::size_t seen = 0;
    while ((count == 0 || seen < count) && std::chrono::steady_clock::now() < until) {
      for (auto& s : subs) {
        auto ev = s->receive(subs.size() > 1 ? 10ms : 100ms);
        if (!ev) continue;
        if (s_.json) {
          out_ << "{\"topic\":\"" << ev->topic << "\",\"event\":" << to_json(*ev->body) << "}\n";
        } else {
          out_ << ev->topic << " " << to_json(*ev->body) << "\n";
        }
        out_.flush();
        if (++seen == count && count != 0) break;
      }
    }
    return 0;
  }

  void set_await_for(std::chrono::milliseconds d) { await_for_ = d; }

 private:
  static void draw(std::string& out, const msgpack::object& node, const std::string& pad, const std::string& branch,
                   const std::string& label) {
    const std::string id = wire::find(node, "id") ? wire::find(node, "id")->as<std::string>() : "?";
    const std::string pid = wire::find(node, "pid") ? wire::find(node, "pid")->as<std::string>() : "?";
    std::string line = branch + label + id + " " + pid;
    if (const auto* s = wire::find(node, "strategy")) line += " " + s->as<std::string>();
    if (const auto* r = wire::find(node, "restarts"); r && r->via.u64 > 0) line += " restarts=" + std::to_string(r->via.u64);
    out += line + "\n";
    const msgpack::object* kids = wire::find(node, "children");
    const std::uint32_t n = kids && kids->type == msgpack::type::ARRAY ? kids->via.array.size : 0;
    const msgpack::object* omitted = wire::find(node, "omitted");
    for (std::uint32_t i = 0; i < n; ++i) {
      const bool last = i + 1 == n && omitted == nullptr;
      draw(out, kids->via.array.ptr[i], pad + (last ? "   " : "│  "), pad + (last ? "└─ " : "├─ "), "");
    }
    if (omitted) out += pad + "└─ ... " + std::to_string(omitted->via.u64) + " more\n";
  }

  settings s_;
  std::ostream& out_;
  std::ostream& err_;
  std::map<std::string, std::unique_ptr<msg::client>> clients_;
  std::string current_;
  std::uint64_t next_id_ = 1;
  int last_code_ = exit_unreachable;
  std::chrono::milliseconds await_for_{30000};
};

}  // namespace

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  settings s;
  CLI::App cli{"canopyctl: every op of every Canopy app (docs/protocol.md)", "canopyctl"};
  cli.require_subcommand(1);
  cli.add_option("--registry", s.registry, "the registry's request endpoint")->capture_default_str();
  cli.add_option("--endpoint", s.endpoint, "talk to this endpoint instead of asking the registry");
  cli.add_flag("--json", s.json, "JSON output, one line per reply or event");
  cli.add_option("--timeout", s.timeout, "how long to wait for a reply (250ms, 5s, ...)")->capture_default_str();

  std::optional<collected> chosen;
  std::vector<std::unique_ptr<collected>> holders;
  std::deque<op_spec> common_specs;  // ping, info, tree for each app (a deque: stable addresses)
  bool then_await = false;
  std::string await_for = "30s";
  for (const std::string& app : app_ids) {
    CLI::App* a = cli.add_subcommand(app, "the " + app + " app")->require_subcommand(1);
    for (const char* common : {"ping", "info", "tree"}) {
      const op_spec& spec = common_specs.emplace_back(op_spec{app, common, std::string("the common op ") + common, {}, {}});
      auto h = std::make_unique<collected>(collected{&spec, {}, {}});
      collected* hp = h.get();
      a->add_subcommand(common, spec.help)->callback([&chosen, hp] { chosen = *hp; });
      holders.push_back(std::move(h));
    }
    for (const op_spec& spec : ops()) {
      if (spec.app != app) continue;
      auto h = std::make_unique<collected>(collected{&spec, {}, {}});
      collected* hp = h.get();
      CLI::App* o = a->add_subcommand(spec.op, spec.help);
      std::string names;
      for (const param& p : spec.positionals) names += (names.empty() ? "" : " ") + std::string(p.required ? "" : "[") + p.arg + (p.required ? "" : "]");
      o->add_option("words", hp->positionals, names.empty() ? "(none)" : names);
      for (const option& opt : spec.options)
        o->add_option_function<std::string>(
            opt.flag, [hp, arg = opt.arg](const std::string& v) { hp->options[arg] = v; }, opt.help);
      if (spec.app == "task_runner" && spec.op == "submit") {
        o->add_flag("--await", then_await, "wait for the task to finish and print its status");
        o->add_option("--await-timeout", await_for, "how long --await waits")->capture_default_str();
      }
      o->callback([&chosen, hp] { chosen = *hp; });
      holders.push_back(std::move(h));
    }
  }
  std::vector<std::string> generic_words;
  std::string generic_app, generic_op;
  CLI::App* call = cli.add_subcommand("call", "any op by name: canopyctl call APP OP [key=value ...]");
  call->add_option("app", generic_app, "the app")->required()->check(CLI::IsMember(app_ids));
  call->add_option("op", generic_op, "the op")->required();
  call->add_option("args", generic_words, "key=value arguments (values as JSON when they parse)");
  std::vector<std::string> prefixes;
  std::string events;
  std::size_t count = 0;
  std::string for_text;
  CLI::App* watch = cli.add_subcommand("watch", "stream events: canopyctl watch [topic-prefix ...]");
  watch->add_option("prefixes", prefixes, "topic prefixes (cache., task_runner.failed, ...)");
  watch->add_option("--events", events, "one app's events endpoint instead of every registered app's");
  watch->add_option("--count", count, "stop after this many events");
  watch->add_option("--for", for_text, "stop after this long (5s, 1m, ...)");
  CLI::App* tree = cli.add_subcommand("tree", "the supervision trees of every running app, as one tree");

  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    cli.parse(reversed);
  } catch (const CLI::ParseError& e) {
    std::ostringstream o, x;
    const int code = cli.exit(e, o, x);
    out << o.str();
    err << x.str();
    return code == 0 ? 0 : exit_usage;
  }
  if (!parse_duration(s.timeout)) {
    err << "canopyctl: --timeout: " << parse_duration(s.timeout).error().to_string() << "\n";
    return exit_usage;
  }
  session ses(s, out, err);
  if (*call) return ses.generic(generic_app, generic_op, generic_words);
  if (*tree) return ses.tree();
  if (*watch) {
    std::optional<std::chrono::milliseconds> for_ms;
    if (!for_text.empty()) {
      auto d = parse_duration(for_text);
      if (!d) {
        err << "canopyctl: --for: " << d.error().to_string() << "\n";
        return exit_usage;
      }
      for_ms = *d;
    }
    return ses.watch(prefixes, events, count, for_ms);
  }
  if (!chosen) return exit_usage;
  if (then_await) {
    auto d = parse_duration(await_for);
    if (!d) {
      err << "canopyctl: --await-timeout: " << d.error().to_string() << "\n";
      return exit_usage;
    }
    ses.set_await_for(*d);
  }
  return ses.op(*chosen, then_await);
}

}  // namespace canopy::ctl
