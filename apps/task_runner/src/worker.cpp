// The worker process: one attempt of one task, running its kind (kinds.hpp), reporting
// the end to the server. Also the built-in kinds.
#include <stdexcept>

#include "canopy/core/runtime.hpp"
#include "canopy/otp/gen_server.hpp"
#include "canopy/wire/codec.hpp"
#include "parts.hpp"

namespace canopy::task_app {

namespace {

struct run_now {};
struct resume_after {
  std::uint64_t generation;
};
struct delivered {
  std::function<void(job&)> then;
};

class worker final : public gen_server, public job {
 public:
  worker(std::shared_ptr<runner_env> env, pid server, std::uint64_t number, unsigned attempt, std::string kind,
         wire::value args)
      : env_(std::move(env)),
        server_(std::move(server)),
        number_(number),
        attempt_(attempt),
        id_("t-" + std::to_string(number)),
        kind_(std::move(kind)),
        args_(std::move(args)),
        decoded_(msgpack::unpack(args_.bytes().data(), args_.bytes().size())),
        open_(std::make_shared<std::atomic<bool>>(true)) {}

  // Killed (timeout, cancel), crashed or stopped with the app: what runs outside the
  // process goes too.
  ~worker() override {
    open_->store(false);
    if (!finished_)
      for (auto& release : abandon_) release();
  }

  // ---- job ------------------------------------------------------------------------------------
  [[nodiscard]] const wire::value& args() const noexcept override { return args_; }
  [[nodiscard]] const msgpack::object& args_object() const noexcept override { return decoded_.get(); }
  [[nodiscard]] const std::string& task_id() const noexcept override { return id_; }
  [[nodiscard]] unsigned attempt() const noexcept override { return attempt_; }
  [[nodiscard]] runtime& rt() const noexcept override { return system(); }

  void succeed(wire::value value) override { end(true, std::move(value), std::nullopt); }
  void fail(std::string message, std::string kind) override {
    end(false, std::nullopt, task_error{std::move(message), std::move(kind)});
  }
  void after(std::chrono::milliseconds delay, std::function<void(job&)> then) override {
    continuation_ = std::move(then);
    send_after(delay, self(), resume_after{++generation_});
  }
  delivery deliverer() override {
    waiting_delivery_ = true;
    runtime* rt = &system();
    return [rt, to = self(), open = open_](std::function<void(job&)> then) {
      if (open->load()) rt->send(to, delivered{std::move(then)});
    };
  }
  void on_abandon(std::function<void()> release) override { abandon_.push_back(std::move(release)); }

 protected:
  result init() override { return ok().and_continue(run_now{}); }

  result handle_continue(message&) override {
    const kind_function* fn = env_->table.find(kind_);
    if (fn == nullptr) {
      fail("no kind '" + kind_ + "' in this runner", "failed");
      return noreply();
    }
    run(*fn);
    return noreply();
  }

  result handle_info(message& m) override {
    if (auto* r = m.get<resume_after>(); r != nullptr && r->generation == generation_ && continuation_) {
      auto then = std::move(continuation_);
      continuation_ = nullptr;
      run(then);
    } else if (auto* d = m.get<delivered>(); d != nullptr && !finished_) {
      waiting_delivery_ = false;
      run(d->then);
    }
    return noreply();
  }

 private:
  // Runs a step of the kind. process_exit passes (the crash kind kills the worker); any
  // other exception fails the attempt.
  void run(const std::function<void(job&)>& step) {
    try {
      step(*this);
    } catch (const process_exit&) {
      throw;
    } catch (const std::exception& e) {
      if (!finished_) fail(e.what(), "exception");
      return;
    }
    if (!finished_ && !continuation_ && !waiting_delivery_) fail("the kind neither finished nor continued", "failed");
  }

  void end(bool ok, std::optional<wire::value> value, std::optional<task_error> error) {
    if (finished_) return;
    finished_ = true;
    send(server_, attempt_done{number_, attempt_, ok, std::move(value), std::move(error)});
    exit(exit_reason::normal());
  }

  std::shared_ptr<runner_env> env_;
  pid server_;
  std::uint64_t number_;
  unsigned attempt_;
  std::string id_;
  std::string kind_;
  wire::value args_;
  msgpack::object_handle decoded_;
  std::shared_ptr<std::atomic<bool>> open_;  // deliveries are dropped once this is false
  std::function<void(job&)> continuation_;
  std::uint64_t generation_ = 0;
  bool waiting_delivery_ = false;
  bool finished_ = false;
  std::vector<std::function<void()>> abandon_;
};

const msgpack::object* arg(const job& j, const char* name) {
  const msgpack::object& a = j.args_object();
  return a.type == msgpack::type::MAP ? wire::find(a, name) : nullptr;
}

}  // namespace

child_spec worker_spec(const std::shared_ptr<runner_env>& env, pid server, const task& t) {
  child_spec spec("task", [env, server = std::move(server), number = t.number, attempt = t.attempts,
                           kind = t.spec.kind, args = t.spec.args]() {
    return child_start::ready(gen_server::start_link<worker>({}, env, server, number, attempt, kind, args));
  });
  // Temporary: a crash is the server's to retry (max_attempts), not the supervisor's.
  spec.restart(restart_type::temporary).shutdown(shutdown_policy::brutal_kill());
  return spec;
}

kinds kinds::builtin() {
  kinds k;
  k.add("echo", [](job& j) { j.succeed(j.args()); });
  k.add("sleep", [](job& j) {
    const msgpack::object* ms = arg(j, "ms");
    if (ms != nullptr && ms->type != msgpack::type::POSITIVE_INTEGER) throw std::invalid_argument("sleep: ms must be an unsigned integer");
    j.after(std::chrono::milliseconds(ms ? ms->via.u64 : 0), [](job& done) { done.succeed(wire::value()); });
  });
  k.add("fail", [](job& j) {
    const msgpack::object* message = arg(j, "message");
    throw std::runtime_error(message != nullptr && message->type == msgpack::type::STR
                                 ? std::string(message->via.str.ptr, message->via.str.size)
                                 : std::string("the fail kind failed"));
  });
  k.add("crash", [](job&) { throw process_exit(exit_reason::other("crash", "the crash kind")); });
  return k;
}

}  // namespace canopy::task_app
