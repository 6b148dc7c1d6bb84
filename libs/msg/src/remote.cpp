#include "canopy/msg/remote.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <functional>
#include <future>
#include <queue>
#include <thread>
#include <unordered_map>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "canopy/core/runtime.hpp"
#include "curve_socket.hpp"
#include "handoff.hpp"

namespace canopy::msg {

namespace {

reply error_reply(std::optional<std::uint64_t> id, wire::error_code code, std::string message) {
  reply r;
  r.id = id;
  r.ok = false;
  r.code = code;
  r.message = std::move(message);
  return r;
}

}  // namespace

namespace detail {

struct remote_job {
  reply_address to;
  outgoing request;
};

// The I/O thread: owns the DEALER, the requests in flight and their deadlines.
class remote_io {
 public:
  remote_io(runtime& rt, std::string endpoint, client_options options)
      : rt_(rt), endpoint_(std::move(endpoint)), options_(std::move(options)) {}

  // Binds the socket on the I/O thread; the empty string, or why it failed.
  std::string start() {
    std::promise<std::string> connected;
    auto outcome = connected.get_future();
    thread_ = std::thread([this, c = std::move(connected)]() mutable { run(std::move(c)); });
    std::string failure = outcome.get();
    if (!failure.empty()) thread_.join();
    return failure;
  }

  // From the gateway: false once stopped (the caller answers for it).
  bool submit(reply_address to, outgoing request) {
    in_flight.fetch_add(1, std::memory_order_relaxed);
    if (jobs_.push({std::move(to), std::move(request)})) return true;
    in_flight.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }

  void stop() {
    jobs_.close();
    if (thread_.joinable()) thread_.join();
  }

  std::atomic<std::uint64_t> next_id{1};
  std::atomic<std::uint64_t> sent{0}, replies{0}, timeouts{0}, unavailable{0}, in_flight{0};

 private:
  using clock = std::chrono::steady_clock;

  struct pending {
    reply_address to;
    std::string bytes;  // kept while a (re)send may still be needed
    request_options options;
    unsigned attempts_left = 0;  // after the current one
    bool waiting_for_connection = false;
    clock::time_point deadline;  // of the current attempt, or of the wait for a connection
  };
  using timer = std::pair<clock::time_point, std::uint64_t>;

  void run(std::promise<std::string> connected);
  void accept(remote_job job);
  void try_send(std::uint64_t id, pending& p);
  void send_backlog();
  void receive_replies();
  void expire(clock::time_point now);
  void answer(std::uint64_t id, reply r);
  void answer_all_unavailable(const std::string& why);
  [[nodiscard]] int poll_timeout_ms() const;

  runtime& rt_;
  std::string endpoint_;
  client_options options_;
  handoff<remote_job> jobs_;
  std::thread thread_;

  // I/O thread only.
  zmq::socket_t* socket_ = nullptr;
  std::unordered_map<std::uint64_t, pending> waiting_;
  std::deque<std::uint64_t> backlog_;  // ids waiting for a connection, in order
  std::priority_queue<timer, std::vector<timer>, std::greater<>> timers_;
};

void remote_io::run(std::promise<std::string> connected) {
  zmq::context_t ctx(1);
  zmq::socket_t socket(ctx, zmq::socket_type::dealer);
  try {
    socket.set(zmq::sockopt::linger, static_cast<int>(options_.linger.count()));
    socket.set(zmq::sockopt::sndhwm, options_.send_hwm);
    socket.set(zmq::sockopt::rcvhwm, options_.receive_hwm);
    socket.set(zmq::sockopt::immediate, 1);  // queue only to completed connections
    apply_client_curve(socket, options_.curve);
    socket.connect(endpoint_);
  } catch (const zmq::error_t& e) {
    connected.set_value(std::string("cannot connect to ") + endpoint_ + ": " + e.what());
    return;
  }
  connected.set_value({});
  socket_ = &socket;

  zmq_pollitem_t items[] = {{socket.handle(), 0, ZMQ_POLLIN, 0}, {nullptr, jobs_.fd(), ZMQ_POLLIN, 0}};
  for (;;) {
    items[0].events = static_cast<short>(ZMQ_POLLIN | (backlog_.empty() ? 0 : ZMQ_POLLOUT));
    jobs_.set_sleeping(true);
    try {
      zmq::poll(items, 2, std::chrono::milliseconds(jobs_.pending() ? 0 : poll_timeout_ms()));
    } catch (const zmq::error_t& e) {
      jobs_.set_sleeping(false);
      if (e.num() == EINTR) continue;
      spdlog::error("msg remote {}: poll failed: {}", endpoint_, e.what());
      break;
    }
    jobs_.set_sleeping(false);
    if ((items[1].revents & ZMQ_POLLIN) || jobs_.pending()) {
      for (auto& job : jobs_.take({}, (items[1].revents & ZMQ_POLLIN) != 0)) accept(std::move(job));
      if (jobs_.closed()) break;
    }
    if (items[0].revents & ZMQ_POLLIN) receive_replies();
    if (!backlog_.empty() && (items[0].revents & ZMQ_POLLOUT)) send_backlog();
    expire(clock::now());
  }
  for (auto& job : jobs_.take()) accept(std::move(job));  // the last ones, to answer below
  answer_all_unavailable("the remote for " + endpoint_ + " was stopped");
  socket_ = nullptr;
}

int remote_io::poll_timeout_ms() const {
  if (timers_.empty()) return -1;
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(timers_.top().first - clock::now());
  return static_cast<int>(std::max<std::int64_t>(0, left.count()));
}

void remote_io::accept(remote_job job) {
  const std::uint64_t id = job.request.id;
  pending p{std::move(job.to), std::move(job.request.bytes), job.request.options,
            std::max(1u, job.request.options.attempts) - 1, false, {}};
  auto [it, inserted] = waiting_.try_emplace(id, std::move(p));  // p untouched if not inserted
  if (!inserted) {  // ids come from one counter: cannot happen, but never answer the wrong caller
    in_flight.fetch_sub(1, std::memory_order_relaxed);
    rt_.reply(p.to, error_reply(id, wire::error_code::internal, "duplicate request id"));
    return;
  }
  try_send(id, it->second);
}

void remote_io::try_send(std::uint64_t id, pending& p) {
  const auto now = clock::now();
  bool sent_now = false;
  if (backlog_.empty()) {  // else: wait behind the others, in order
    try {
      sent_now = socket_->send(zmq::buffer(p.bytes), zmq::send_flags::dontwait).has_value();
    } catch (const zmq::error_t& e) {
      spdlog::debug("msg remote {}: send failed: {}", endpoint_, e.what());
    }
  }
  if (sent_now) {
    sent.fetch_add(1, std::memory_order_relaxed);
    p.waiting_for_connection = false;
    p.deadline = now + p.options.timeout;
    if (p.attempts_left == 0) std::string().swap(p.bytes);  // never sent again
  } else {
    p.waiting_for_connection = true;
    p.deadline = now + options_.send_timeout;
    backlog_.push_back(id);
  }
  timers_.emplace(p.deadline, id);
}

void remote_io::send_backlog() {
  while (!backlog_.empty()) {
    auto it = waiting_.find(backlog_.front());
    if (it == waiting_.end() || !it->second.waiting_for_connection) {  // answered meanwhile
      backlog_.pop_front();
      continue;
    }
    pending& p = it->second;
    bool ok = false;
    try {
      ok = socket_->send(zmq::buffer(p.bytes), zmq::send_flags::dontwait).has_value();
    } catch (const zmq::error_t& e) {
      spdlog::debug("msg remote {}: send failed: {}", endpoint_, e.what());
    }
    if (!ok) return;
    backlog_.pop_front();
    sent.fetch_add(1, std::memory_order_relaxed);
    p.waiting_for_connection = false;
    p.deadline = clock::now() + p.options.timeout;
    if (p.attempts_left == 0) std::string().swap(p.bytes);
    timers_.emplace(p.deadline, it->first);
  }
}

void remote_io::receive_replies() {
  // A bounded batch, so new requests are not starved by a flood of replies.
  for (int i = 0; i < 256; ++i) {
    std::vector<zmq::message_t> frames;
    std::optional<std::size_t> got;
    try {
      got = zmq::recv_multipart(*socket_, std::back_inserter(frames), zmq::recv_flags::dontwait);
    } catch (const zmq::error_t& e) {
      spdlog::debug("msg remote {}: receive failed: {}", endpoint_, e.what());
      return;
    }
    if (!got) return;
    if (frames.empty()) continue;
    std::optional<reply> r = decode_reply(frames.back().to_string(), options_.limits);
    if (!r || !r->id) {
      spdlog::debug("msg remote {}: a reply without a readable id was dropped", endpoint_);
      continue;
    }
    const std::uint64_t id = *r->id;
    auto it = waiting_.find(id);
    if (it == waiting_.end()) continue;  // its caller gave up: dropped
    if (it->second.to) replies.fetch_add(1, std::memory_order_relaxed);  // else a cast's
    answer(id, std::move(*r));
  }
}

void remote_io::expire(clock::time_point now) {
  while (!timers_.empty() && timers_.top().first <= now) {
    const auto [when, id] = timers_.top();
    timers_.pop();
    auto it = waiting_.find(id);
    if (it == waiting_.end() || it->second.deadline != when) continue;  // stale
    pending& p = it->second;
    if (p.waiting_for_connection) {
      unavailable.fetch_add(1, std::memory_order_relaxed);
      answer(id, error_reply(id, wire::error_code::unavailable,
                             "no connection to " + endpoint_ + " took the request within " +
                                 std::to_string(options_.send_timeout.count()) + " ms"));
    } else if (p.attempts_left > 0) {
      --p.attempts_left;
      try_send(id, p);
    } else {
      timeouts.fetch_add(1, std::memory_order_relaxed);
      answer(id, error_reply(id, wire::error_code::timeout,
                             "no reply from " + endpoint_ + " within " + std::to_string(p.options.timeout.count()) +
                                 " ms"));
    }
  }
}

void remote_io::answer(std::uint64_t id, reply r) {
  auto it = waiting_.find(id);
  if (it == waiting_.end()) return;
  reply_address to = std::move(it->second.to);
  waiting_.erase(it);
  in_flight.fetch_sub(1, std::memory_order_relaxed);
  rt_.reply(to, std::move(r));
}

void remote_io::answer_all_unavailable(const std::string& why) {
  std::vector<std::uint64_t> ids;
  ids.reserve(waiting_.size());
  for (const auto& [id, p] : waiting_) ids.push_back(id);
  for (std::uint64_t id : ids) {
    unavailable.fetch_add(1, std::memory_order_relaxed);
    answer(id, error_reply(id, wire::error_code::unavailable, why));
  }
  backlog_.clear();
}

// Hands each call to the I/O thread with its reply address; the I/O thread answers it.
class gateway final : public process {
 public:
  explicit gateway(std::shared_ptr<remote_io> io) : io_(std::move(io)) {}

 protected:
  void receive(message& m) override {
    auto* out = m.get<outgoing>();
    if (out == nullptr) return;  // nothing else is meant for a gateway
    const std::uint64_t id = out->id;
    if (!io_->submit(m.reply_to(), std::move(*out))) {
      io_->unavailable.fetch_add(1, std::memory_order_relaxed);
      reply(m.reply_to(), error_reply(id, wire::error_code::unavailable, "the remote was stopped"));
    }
  }

 private:
  std::shared_ptr<remote_io> io_;
};

}  // namespace detail

remote::remote(runtime& rt, std::string endpoint, std::chrono::milliseconds send_timeout,
               std::shared_ptr<detail::remote_io> io)
    : rt_(rt), endpoint_(std::move(endpoint)), send_timeout_(send_timeout), io_(std::move(io)) {
  gateway_ = rt_.spawn<detail::gateway>(io_);
}

canopy::result<std::unique_ptr<remote>> remote::start(runtime& rt, const std::string& endpoint,
                                                      client_options options) {
  if (auto ok = check(options.curve); !ok) return ok.error();
  const auto send_timeout = options.send_timeout;
  auto io = std::make_shared<detail::remote_io>(rt, endpoint, std::move(options));
  if (std::string failure = io->start(); !failure.empty()) return error(errc::invalid_argument, failure);
  return std::unique_ptr<remote>(new remote(rt, endpoint, send_timeout, std::move(io)));
}

remote::~remote() { stop(); }

void remote::stop() {
  if (stopped_) return;
  stopped_ = true;
  io_->stop();  // answers what is in flight; the gateway answers anything later itself
  rt_.exit(gateway_, exit_reason::shutdown());
}

std::uint64_t remote::next_id() noexcept { return io_->next_id.fetch_add(1, std::memory_order_relaxed); }

remote::call_awaiter remote::start_call(detail::outgoing out) {
  canopy::detail::process_cell* self = canopy::detail::current_process();
  if (self == nullptr) throw std::logic_error("msg::remote::call is made from inside a process");
  // The I/O thread answers every request (timeout, unavailable) before this runs out.
  const auto limit = out.options.timeout * std::max(1u, out.options.attempts) + send_timeout_ +
                     std::chrono::seconds(1);
  return call_awaiter(canopy::detail::call_as<reply>(self, gateway_, std::move(out), limit));
}

void remote::start_cast(detail::outgoing out) {
  // Straight to the I/O thread's queue, not through the gateway: a cast made just before
  // stop() (an app's unregister as its tree stops) is then in the queue the I/O thread
  // drains before it closes, instead of in a gateway's mailbox nobody reads any more.
  if (!io_->submit(reply_address{}, std::move(out))) io_->unavailable.fetch_add(1, std::memory_order_relaxed);
}

reply remote::call_awaiter::settle(canopy::result<reply> r) {
  if (r) return std::move(*r);
  // The gateway is gone (stopped) or, past the I/O thread's own answer, the call timed out.
  return error_reply(std::nullopt, r.code() == errc::timeout ? wire::error_code::timeout : wire::error_code::unavailable,
                     r.error().to_string());
}

remote_stats remote::stats() const {
  return {io_->sent.load(), io_->replies.load(), io_->timeouts.load(), io_->unavailable.load(),
          io_->in_flight.load()};
}

}  // namespace canopy::msg
