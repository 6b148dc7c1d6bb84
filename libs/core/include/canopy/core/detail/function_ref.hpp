#pragma once
// Internal: a non-owning reference to a callable, so spawn's template stays a thin shim
// over one non-template function without allocating a std::function.

#include <memory>
#include <type_traits>
#include <utility>

namespace canopy::detail {

template <class Sig>
class function_ref;

template <class R, class... A>
class function_ref<R(A...)> {
 public:
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, function_ref>>>
  function_ref(F&& f) noexcept  // NOLINT: implicit by design
      : obj_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* o, A... args) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(o))(std::forward<A>(args)...);
        }) {}
  R operator()(A... args) const { return call_(obj_, std::forward<A>(args)...); }

 private:
  void* obj_;
  R (*call_)(void*, A...);
};

}  // namespace canopy::detail
