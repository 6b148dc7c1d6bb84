// Seed: UserCache — a GenServer whose state is a map: put (cast), get (call), delete.
#include <map>
#include <optional>
#include <string>

#include "canopy/otp/gen_server.hpp"
#include "check.hpp"

struct put {
  std::string id;
  std::string name;
};
struct get {
  std::string id;
};
struct remove_user {
  std::string id;
};

class user_cache final : public canopy::gen_server {
 protected:
  result handle_call(canopy::message& m, const canopy::reply_address& from) override {
    if (auto* g = m.get<get>()) {
      auto it = users_.find(g->id);
      return reply(it == users_.end() ? std::optional<std::string>() : std::optional<std::string>(it->second));
    }
    return gen_server::handle_call(m, from);
  }
  result handle_cast(canopy::message& m) override {
    if (auto* p = m.get<put>()) users_[p->id] = p->name;
    if (auto* r = m.get<remove_user>()) users_.erase(r->id);
    return noreply();
  }
  std::string format_status() const override { return "user_cache with " + std::to_string(users_.size()) + " users"; }

 private:
  std::map<std::string, std::string> users_;
};

int main() {
  canopy::runtime rt;
  auto cache = canopy::gen_server::start<user_cache>(rt, {});
  check(cache.has_value(), "UserCache started");
  canopy::gen_server::cast(rt, *cache, put{"1", "ada"});
  canopy::gen_server::cast(rt, *cache, put{"2", "grace"});
  auto ada = canopy::gen_server::call<std::optional<std::string>>(rt, *cache, get{"1"});
  check(ada && *ada == std::optional<std::string>("ada"), "get(1) finds ada");
  canopy::gen_server::cast(rt, *cache, remove_user{"1"});
  auto gone = canopy::gen_server::call<std::optional<std::string>>(rt, *cache, get{"1"});
  check(gone && !gone->has_value(), "after delete, get(1) finds nobody");
  check(*canopy::gen_server::state_summary(rt, *cache) == "user_cache with 1 users", "the state summary counts one user");
  return 0;
}
