#pragma once
// Internal: the parts of call/reply shared by process::call (parks the process) and
// runtime::call (blocks a thread).

#include <optional>
#include <string>
#include <utility>

#include "canopy/core/error.hpp"
#include "canopy/core/message.hpp"
#include "canopy/core/result.hpp"

namespace canopy::detail {

// How a call ended: a reply node, or why there is none.
struct call_outcome {
  node_ptr reply;
  std::optional<error> failure;
};

error bad_reply_error(const std::type_info& expected, const std::type_info& got);

template <class R>
result<R> unpack_reply(call_outcome&& out) {
  if (out.failure) return std::move(*out.failure);
  message_node* n = out.reply.get();
  if (n->tag != &tag_for<R>) return bad_reply_error(typeid(R), n->tag->info);
  return std::move(static_cast<typed_node<R>*>(n)->value);
}

}  // namespace canopy::detail
