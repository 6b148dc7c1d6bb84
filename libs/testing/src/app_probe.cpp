#include "canopy/testing/app_probe.hpp"

#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <optional>
#include <set>
#include <sstream>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "canopy/app/instance.hpp"
#include "canopy/wire/codec.hpp"

namespace canopy::testing {
namespace {

using namespace std::chrono_literals;
using id_type = std::optional<std::uint64_t>;

std::string id_text(const id_type& id) { return id ? std::to_string(*id) : std::string("nil"); }

// What is wrong with `bytes` as a reply (docs/protocol.md "Reply"), "" if nothing; its id in `id`.
std::string check_reply(std::string_view bytes, const wire::decode_limits& limits, id_type& id) {
  if (auto bad = wire::check_value(bytes, limits)) return "the reply is not one msgpack value: " + bad->message;
  const msgpack::object_handle handle = msgpack::unpack(bytes.data(), bytes.size());
  const msgpack::object& root = handle.get();
  if (root.type != msgpack::type::MAP) return "the reply is not a map";
  const msgpack::object* rid = wire::find(root, "id");
  if (rid == nullptr) return "the reply has no id";
  if (rid->type == msgpack::type::POSITIVE_INTEGER) {
    id = rid->via.u64;
  } else if (rid->type != msgpack::type::NIL) {
    return "the reply's id is neither an unsigned integer nor nil";
  }
  const msgpack::object* ok = wire::find(root, "ok");
  if (ok == nullptr || ok->type != msgpack::type::BOOLEAN) return "the reply has no bool ok";
  if (ok->via.boolean) return wire::find(root, "result") ? "" : "an ok reply without a result";
  const msgpack::object* error = wire::find(root, "error");
  if (error == nullptr || error->type != msgpack::type::MAP) return "an error reply without an error map";
  const msgpack::object* code = wire::find(*error, "code");
  const msgpack::object* message = wire::find(*error, "message");
  if (code == nullptr || code->type != msgpack::type::STR) return "an error without a str code";
  if (message == nullptr || message->type != msgpack::type::STR) return "an error without a str message";
  const std::string_view code_text(code->via.str.ptr, code->via.str.size);
  const std::string_view message_text(message->via.str.ptr, message->via.str.size);
  const auto known = wire::error_code_from_string(code_text);
  if (!known) return "an error code the protocol does not have: " + std::string(code_text);
  if (*known == wire::error_code::internal) return "answered internal (a handler crashed?): " + std::string(message_text);
  return "";
}

}  // namespace

struct app_probe::impl {
  std::filesystem::path data_dir;
  std::unique_ptr<app::instance> app;
  wire::decode_limits limits;
  zmq::context_t zmq{1};
  zmq::socket_t peer{zmq, zmq::socket_type::dealer};  // the frames under test
  zmq::socket_t pinger{zmq, zmq::socket_type::dealer};
  std::multiset<id_type> late;  // requests not answered within check()'s wait
  std::uint64_t pings = 0;

  // One reply from `s` before `deadline`: its single frame, or nullopt.
  static std::optional<std::vector<zmq::message_t>> receive(zmq::socket_t& s, std::chrono::steady_clock::time_point deadline) {
    zmq_pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() < 0) return std::nullopt;
      zmq::poll(&item, 1, left);
      std::vector<zmq::message_t> frames;
      if ((item.revents & ZMQ_POLLIN) && zmq::recv_multipart(s, std::back_inserter(frames), zmq::recv_flags::dontwait))
        return frames;
    }
  }

  std::string still_serving() {
    msgpack::sbuffer ping;
    msgpack::packer<msgpack::sbuffer> p(ping);
    const std::uint64_t id = ++pings;
    p.pack_map(3);
    p.pack("id");
    p.pack(id);
    p.pack("op");
    p.pack("ping");
    p.pack("args");
    p.pack_map(0);
    pinger.send(zmq::buffer(ping.data(), ping.size()), zmq::send_flags::none);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (auto frames = receive(pinger, deadline)) {
      id_type got;
      if (frames->size() == 1 && check_reply(frames->front().to_string_view(), limits, got).empty() && got == id) return "";
    }
    return "the app no longer answers ping within 10 s";
  }
};

app_probe::app_probe(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

app_probe::~app_probe() {
  impl_->peer.close();
  impl_->pinger.close();
  if (impl_->app) impl_->app->stop();
  std::error_code ignored;
  std::filesystem::remove_all(impl_->data_dir, ignored);
}

std::unique_ptr<app_probe> app_probe::start(app::application& application, app::settings s) {
  auto p = std::make_unique<impl>();
  std::string dir = (std::filesystem::temp_directory_path() / "canopy-probe-XXXXXX").string();
  if (::mkdtemp(dir.data()) == nullptr) {
    std::perror("app_probe: mkdtemp");
    std::abort();
  }
  p->data_dir = dir;
  s.endpoint = "tcp://127.0.0.1:0";
  s.events_endpoint = "tcp://127.0.0.1:0";
  s.registry = "none";
  s.data_dir = dir;
  p->limits.max_message_bytes = s.max_message_bytes;
  // Bad input is logged at debug level; a fuzzer's millions of lines would drown its own.
  auto quiet = std::make_shared<spdlog::logger>("probe", std::make_shared<spdlog::sinks::null_sink_mt>());
  auto started = app::instance::start(application, s, quiet);
  if (!started) {
    std::fprintf(stderr, "app_probe: %s did not start: %s\n", std::string(application.id()).c_str(),
                 started.error().to_string().c_str());
    std::abort();
  }
  p->app = std::move(*started);
  for (zmq::socket_t* sock : {&p->peer, &p->pinger}) {
    sock->set(zmq::sockopt::linger, 0);
    sock->connect(p->app->endpoint());
  }
  auto probe = std::unique_ptr<app_probe>(new app_probe(std::move(p)));
  if (const std::string broken = probe->impl_->still_serving(); !broken.empty()) {
    std::fprintf(stderr, "app_probe: %s\n", broken.c_str());
    std::abort();
  }
  return probe;
}

std::string app_probe::check(std::string_view frame) {
  impl& m = *impl_;
  // Past the hard guard (4 x max_message_bytes, docs/protocol.md) libzmq drops the
  // connection without a reply, as it should: nothing to check.
  if (frame.size() > 4 * m.limits.max_message_bytes) return "";
  wire::decoded decoded = wire::decode_request(std::string(frame), m.limits);
  const id_type expected = decoded.ok() ? id_type(decoded.value().id) : decoded.failure().id;
  m.peer.send(zmq::buffer(frame.data(), frame.size()), zmq::send_flags::none);
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (auto frames = impl::receive(m.peer, deadline)) {
    // An empty frame is a REQ's delimiter (docs/protocol.md "Frames"): with nothing after it
    // the request is bad_request, and the delimiter comes back in front of the reply.
    const bool delimited = frames->size() == 2 && frames->front().size() == 0;
    if (frames->size() != 1 && !delimited) return "a reply of " + std::to_string(frames->size()) + " frames";
    id_type got;
    if (std::string broken = check_reply(frames->back().to_string_view(), m.limits, got); !broken.empty())
      return broken + " (reply id " + id_text(got) + ")";
    if (got == expected) return "";
    const auto earlier = m.late.find(got);
    if (earlier == m.late.end())
      return "a reply with id " + id_text(got) + " while " + id_text(expected) + " was asked";
    m.late.erase(earlier);
  }
  m.late.insert(expected);
  return m.still_serving();
}

void app_probe::require(std::string_view frame) {
  if (const std::string broken = check(frame); !broken.empty()) {
    std::fprintf(stderr, "dispatch property broken: %s\n", broken.c_str());
    std::abort();
  }
}

std::vector<std::string> app_probe::replay(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::vector<std::string> failures;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    if (std::string broken = check(bytes.str()); !broken.empty())
      failures.push_back(f.filename().string() + ": " + broken);
  }
  if (files.empty()) failures.push_back(dir.string() + ": no corpus files");
  return failures;
}

}  // namespace canopy::testing
