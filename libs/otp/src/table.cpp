#include "canopy/otp/table.hpp"

namespace canopy::detail {

std::size_t next_read_slot() noexcept {
  static std::atomic<std::size_t> next{0};
  return next.fetch_add(1, std::memory_order_relaxed) % read_mostly_lock::slots;
}

namespace {

// Held by the owner process: deletes the table or hands it to the heir when it exits.
class table_owner_hook final : public exit_hook {
 public:
  explicit table_owner_hook(std::shared_ptr<table_base> table) : table_(std::move(table)) {}
  [[nodiscard]] const void* tag() const noexcept override { return table_.get(); }
  void on_exit(const pid& who, const exit_reason&) noexcept override { table_->owner_exited(who); }

 private:
  std::shared_ptr<table_base> table_;
};


}  // namespace

pid table_base::owner() const {
  std::lock_guard lk(mu_);
  return owner_;
}

void table_base::check_read() const {
  if (options_.access != table_access::owner_only) return;
  if (current_process() != owner_cell_.load(std::memory_order_acquire))
    throw table_error("table " + options_.name + " is private to its owner " + owner().to_string());
}

void table_base::check_write() const {
  if (options_.access == table_access::everyone) return;
  if (current_process() != owner_cell_.load(std::memory_order_acquire))
    throw table_error("only the owner " + owner().to_string() + " writes to table " + options_.name);
}

void table_base::set_owner(pid owner, runtime_core* rt, const std::type_info* published_as) {
  std::lock_guard lk(mu_);
  owner_cell_.store(owner.cell().get(), std::memory_order_release);
  owner_ = std::move(owner);
  if (rt) rt_ = rt;
  if (published_as) published_as_ = published_as;
}

void table_base::remove() {
  if (current_process() != owner_cell_.load(std::memory_order_acquire))
    throw table_error("only the owner " + owner().to_string() + " deletes table " + options_.name);
  delete_now();
}

void table_base::owner_exited(const pid& who) noexcept {
  pid heir;
  {
    std::lock_guard lk(mu_);
    if (owner_ != who || !alive()) return;  // given away, or deleted, before
    if (options_.heir && !heir_used_ && options_.heir != who && is_alive(options_.heir)) {
      heir_used_ = true;  // inherited once: the heir's own exit deletes it
      heir = options_.heir;
      owner_cell_.store(heir.cell().get(), std::memory_order_release);
      owner_ = heir;
    }
  }
  if (!heir) {
    delete_now();
    return;
  }
  // The hook first, then the message: the heir adopts the hook before it can read the
  // transfer, and if it died meanwhile the hook deletes the table at once.
  try {
    attach_exit_hook(heir, std::make_unique<table_owner_hook>(shared_from_this()));
    send_transfer(heir, who);
  } catch (...) {
    delete_now();  // out of memory while handing over: nobody can own it
  }
}

void table_base::delete_now() noexcept {
  if (!alive_.exchange(false, std::memory_order_acq_rel)) return;
  runtime_core* rt = nullptr;
  const std::type_info* published = nullptr;
  {
    std::lock_guard lk(mu_);
    rt = rt_;
    published = published_as_;
  }
  if (rt && published) {
    withdraw_resource(*rt, options_.name, *published, this);
    withdraw_resource(*rt, options_.name, typeid(table_base), this);
  }
  clear_all();
}

canopy::result<void> install_table(runtime_core& rt, const std::shared_ptr<table_base>& table,
                                   const std::type_info& type) {
  process_cell* self = current_process();
  const table_options& o = table->options();
  if (o.heir && o.heir == pid_of(self)) return error(errc::invalid_argument, "a table's heir cannot be its owner");
  if (!o.name.empty()) {
    if (!publish_resource(rt, o.name, typeid(table_base), table))
      return error(errc::already_started, "a table named " + o.name + " exists");
    // Names are one namespace across key and value types (the untyped entry); whereis
    // finds the table under its own type (the typed one).
    if (!publish_resource(rt, o.name, type, table)) {
      withdraw_resource(rt, o.name, typeid(table_base), table.get());
      return error(errc::already_started, "a table named " + o.name + " exists");
    }
    table->set_owner(pid_of(self), &rt, &type);
  } else {
    table->set_owner(pid_of(self), &rt, nullptr);
  }
  add_exit_hook(self, std::make_unique<table_owner_hook>(table));
  return {};
}

std::shared_ptr<table_base> find_table(runtime_core& rt, const std::string& name, const std::type_info& type) {
  auto found = std::static_pointer_cast<table_base>(find_resource(rt, name, type));
  if (found && !found->alive()) return nullptr;
  return found;
}

runtime_core& table_current_core() {
  process_cell* p = current_process();
  if (p == nullptr) throw table_error("tables are created (and found without a runtime) from inside a process");
  return core_of(p);
}

unsigned default_table_shards(runtime_core& rt) noexcept { return 8 * schedulers_of(rt); }

}  // namespace canopy::detail
