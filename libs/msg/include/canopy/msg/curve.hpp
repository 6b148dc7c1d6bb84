#pragma once
// CURVE: libzmq's encryption and authentication (CurveZMQ) for Canopy's sockets, optional.
// Keys are Z85 text, 40 characters (32 bytes). A server with a secret key encrypts its
// ROUTER and PUB and lets in only the clients whose public keys it lists: a ZAP handler
// on the server's I/O thread checks each handshake, and ZMQ_ZAP_ENFORCE_DOMAIN makes the
// sockets fail closed if that handler is missing. A plain (NULL) client, or one with an
// unknown key, never completes its handshake: it is never served and never sees an event.
//
//   auto server_keys = canopy::msg::generate_curve_keypair();   // tools/keygen writes files
//   server_options o{.curve = {.secret_key = server_keys->secret_key,
//                              .allowed_clients = {client_public}}};
//   client_options c{.curve = {.server_key = server_keys->public_key,
//                              .public_key = client_public, .secret_key = client_secret}};
//
// Key files (tools/keygen NAME): NAME.key holds the secret key (mode 0600), NAME.pub the
// public one; one key per file, blank lines and lines starting with '#' ignored.

#include <string>
#include <string_view>
#include <vector>

#include "canopy/core/result.hpp"

namespace canopy::msg {

struct curve_keypair {
  std::string public_key;  // Z85
  std::string secret_key;  // Z85
};

// A server's side: empty secret_key = no CURVE (the plain NULL mechanism).
struct curve_server_keys {
  std::string secret_key;
  std::vector<std::string> allowed_clients;  // public keys; empty: nobody gets in
  [[nodiscard]] bool enabled() const noexcept { return !secret_key.empty(); }
};

// A client's (or subscriber's) side: empty server_key = no CURVE.
struct curve_client_keys {
  std::string server_key;  // the server's public key
  std::string public_key;
  std::string secret_key;
  [[nodiscard]] bool enabled() const noexcept { return !server_key.empty(); }
};

// A fresh key pair. errc::unavailable if this libzmq was built without CURVE.
canopy::result<curve_keypair> generate_curve_keypair();
// The public key that belongs to `secret_key`. errc::invalid_argument for a malformed key.
canopy::result<std::string> curve_public_key(std::string_view secret_key);
// errc::invalid_argument naming `what` unless `key` is 40 characters of valid Z85.
canopy::result<void> check_curve_key(std::string_view key, std::string_view what);
// The one key in a key file (see above). errc::invalid_argument with the path and reason.
canopy::result<std::string> read_curve_key_file(const std::string& path);
// Writes NAME.key (0600) and NAME.pub into `directory`; refuses to overwrite.
canopy::result<void> write_curve_key_files(const curve_keypair& keys, const std::string& directory,
                                          const std::string& name);

// Whether every key in `keys` is well-formed (and a client's are complete).
canopy::result<void> check(const curve_server_keys& keys);
canopy::result<void> check(const curve_client_keys& keys);

}  // namespace canopy::msg
