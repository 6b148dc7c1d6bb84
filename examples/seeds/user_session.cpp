// Seed: UserSession — a GenServer per user, named by a via tuple in a unique Registry;
// send_message answers not_found for a user without a session.
//
//   def start_link(user_id), do: GenServer.start_link(__MODULE__, user_id, name: via(user_id))
//   defp via(user_id), do: {:via, Registry, {SessionRegistry, user_id}}
//   def send_message(user_id, msg) do
//     case Registry.lookup(SessionRegistry, user_id) do
//       [{pid, _}] -> GenServer.cast(pid, {:message, msg})
//       [] -> {:error, :not_found}
//     end
//   end
#include <string>
#include <vector>

#include "canopy/otp/gen_server.hpp"
#include "canopy/otp/registry.hpp"
#include "check.hpp"

using session_registry = canopy::registry<std::string>;

struct user_message {
  std::string text;
};
struct get_messages {};

class user_session final : public canopy::gen_server {
 protected:
  result handle_cast(canopy::message& m) override {
    if (auto* msg = m.get<user_message>()) messages_.push_back(msg->text);
    return noreply();
  }
  result handle_call(canopy::message& m, const canopy::reply_address& from) override {
    if (m.get<get_messages>()) return reply(messages_);
    return gen_server::handle_call(m, from);
  }

 private:
  std::vector<std::string> messages_;
};

canopy::process_name via(const session_registry& r, const std::string& user) { return canopy::via(r, user); }

canopy::result<canopy::pid> start_session(canopy::runtime& rt, const session_registry& r, const std::string& user) {
  return canopy::gen_server::start<user_session>(rt, {.name = via(r, user)});
}

canopy::result<void> send_message(canopy::runtime& rt, const session_registry& r, const std::string& user,
                                  std::string text) {
  auto found = r.lookup(user);
  if (found.empty()) return canopy::error(canopy::errc::not_found, user);
  canopy::gen_server::cast(rt, found[0].owner, user_message{std::move(text)});
  return {};
}

int main() {
  canopy::runtime rt;
  auto sessions = session_registry::start(rt, {.name = "SessionRegistry"});
  check(sessions.has_value(), "SessionRegistry (unique keys) started");
  check(start_session(rt, *sessions, "alice").has_value(), "UserSession.start_link(\"alice\")");
  check(start_session(rt, *sessions, "alice").code() == canopy::errc::already_started,
        "a second session for alice: already_started");
  check(send_message(rt, *sessions, "alice", "hello").has_value(), "send_message(\"alice\", \"hello\")");
  check(send_message(rt, *sessions, "alice", "again").has_value(), "send_message(\"alice\", \"again\")");
  auto got = canopy::gen_server::call<std::vector<std::string>>(rt, via(*sessions, "alice"), get_messages{});
  check(got && *got == std::vector<std::string>{"hello", "again"}, "alice's session holds both messages, in order");
  check(send_message(rt, *sessions, "bob", "hi").code() == canopy::errc::not_found,
        "send_message(\"bob\", ...) without a session: not_found");

  const canopy::pid alice = sessions->lookup("alice").at(0).owner;
  check(canopy::gen_server::stop(rt, alice).has_value(), "alice's session stops");
  check(send_message(rt, *sessions, "alice", "late").code() == canopy::errc::not_found,
        "after it stopped, alice is not_found");
  return 0;
}
