#pragma once
// Internal: CURVE settings on sockets (keys checked beforehand with msg::check).

#include <zmq.h>

#include <string>
#include <zmq.hpp>

#include "canopy/msg/curve.hpp"

#ifndef ZMQ_ZAP_ENFORCE_DOMAIN  // a draft option in libzmq 4.3's headers, honoured by the library
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

namespace canopy::msg::detail {

// Where libzmq sends its ZAP requests (RFC 27), inside the socket's context.
inline constexpr const char* zap_endpoint = "inproc://zeromq.zap.01";
inline constexpr const char* zap_domain = "canopy";

inline void apply_server_curve(zmq::socket_t& s, const curve_server_keys& keys) {
  if (!keys.enabled()) return;
  s.set(zmq::sockopt::curve_server, 1);
  s.set(zmq::sockopt::curve_secretkey, keys.secret_key);
  s.set(zmq::sockopt::zap_domain, std::string(zap_domain));
  // Fail closed: without a ZAP handler, no handshake completes.
  const int enforce = 1;
  if (zmq_setsockopt(s.handle(), ZMQ_ZAP_ENFORCE_DOMAIN, &enforce, sizeof enforce) != 0)
    throw zmq::error_t();
}

inline void apply_client_curve(zmq::socket_t& s, const curve_client_keys& keys) {
  if (!keys.enabled()) return;
  s.set(zmq::sockopt::curve_serverkey, keys.server_key);
  s.set(zmq::sockopt::curve_publickey, keys.public_key);
  s.set(zmq::sockopt::curve_secretkey, keys.secret_key);
}

}  // namespace canopy::msg::detail
