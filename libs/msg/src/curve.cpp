#include "canopy/msg/curve.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <zmq.h>

namespace canopy::msg {

namespace {

constexpr std::size_t z85_key_length = 40;

bool curve_supported() { return zmq_has("curve") != 0; }

std::string trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(first, last - first + 1));
}

// Creates `path` exclusively with `mode` and writes `text`.
canopy::result<void> write_new_file(const std::string& path, const std::string& text, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return error(errc::invalid_argument, "cannot create " + path + ": " + std::strerror(errno));
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      return error(errc::invalid_argument, "cannot write " + path + ": " + why);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0)
    return error(errc::invalid_argument, "cannot write " + path + ": " + std::strerror(errno));
  return {};
}

}  // namespace

canopy::result<void> check_curve_key(std::string_view key, std::string_view what) {
  if (key.size() != z85_key_length)
    return error(errc::invalid_argument, std::string(what) + ": a CURVE key is 40 characters of Z85, not " +
                                             std::to_string(key.size()));
  const std::string text(key);
  std::uint8_t bytes[32];
  if (zmq_z85_decode(bytes, text.c_str()) == nullptr)
    return error(errc::invalid_argument, std::string(what) + ": not valid Z85");
  return {};
}

canopy::result<curve_keypair> generate_curve_keypair() {
  if (!curve_supported()) return error(errc::unavailable, "this libzmq was built without CURVE support");
  char public_key[z85_key_length + 1];
  char secret_key[z85_key_length + 1];
  if (zmq_curve_keypair(public_key, secret_key) != 0)
    return error(errc::unavailable, std::string("zmq_curve_keypair: ") + zmq_strerror(zmq_errno()));
  return curve_keypair{public_key, secret_key};
}

canopy::result<std::string> curve_public_key(std::string_view secret_key) {
  if (auto ok = check_curve_key(secret_key, "secret key"); !ok) return ok.error();
  if (!curve_supported()) return error(errc::unavailable, "this libzmq was built without CURVE support");
  const std::string secret(secret_key);
  char public_key[z85_key_length + 1];
  if (zmq_curve_public(public_key, secret.c_str()) != 0)
    return error(errc::invalid_argument, std::string("zmq_curve_public: ") + zmq_strerror(zmq_errno()));
  return std::string(public_key);
}

canopy::result<std::string> read_curve_key_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return error(errc::invalid_argument, "cannot read the key file " + path + ": " + std::strerror(errno));
  std::string line, key;
  while (std::getline(in, line)) {
    std::string t = trim(line);
    // No key starts with '#': it is Z85's last digit, and a group starting with it would
    // exceed 32 bits.
    if (t.empty() || t.front() == '#') continue;
    if (!key.empty()) return error(errc::invalid_argument, "the key file " + path + " holds more than one key");
    key = std::move(t);
  }
  if (key.empty()) return error(errc::invalid_argument, "the key file " + path + " holds no key");
  if (auto ok = check_curve_key(key, "the key file " + path); !ok) return ok.error();
  return key;
}

canopy::result<void> write_curve_key_files(const curve_keypair& keys, const std::string& directory,
                                          const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos)
    return error(errc::invalid_argument, "a key name is a plain file name, not '" + name + "'");
  const std::string base = (directory.empty() ? std::string(".") : directory) + "/" + name;
  if (auto ok = write_new_file(base + ".key",
                               "# CURVE secret key (Z85) — keep private; see docs/security.md\n" + keys.secret_key + "\n",
                               0600);
      !ok)
    return ok;
  return write_new_file(base + ".pub", "# CURVE public key (Z85)\n" + keys.public_key + "\n", 0644);
}

canopy::result<void> check(const curve_server_keys& keys) {
  if (!keys.enabled()) {
    if (!keys.allowed_clients.empty())
      return error(errc::invalid_argument, "CURVE: allowed client keys are listed but no server secret key is set");
    return {};
  }
  if (!curve_supported()) return error(errc::unavailable, "CURVE is configured but this libzmq has no CURVE support");
  if (auto ok = check_curve_key(keys.secret_key, "CURVE server secret key"); !ok) return ok;
  for (std::size_t i = 0; i < keys.allowed_clients.size(); ++i)
    if (auto ok = check_curve_key(keys.allowed_clients[i], "CURVE allowed client key #" + std::to_string(i + 1)); !ok)
      return ok;
  return {};
}

canopy::result<void> check(const curve_client_keys& keys) {
  if (!keys.enabled()) {
    if (!keys.public_key.empty() || !keys.secret_key.empty())
      return error(errc::invalid_argument, "CURVE: client keys are set but not the server's public key");
    return {};
  }
  if (!curve_supported()) return error(errc::unavailable, "CURVE is configured but this libzmq has no CURVE support");
  if (auto ok = check_curve_key(keys.server_key, "CURVE server public key"); !ok) return ok;
  if (auto ok = check_curve_key(keys.public_key, "CURVE client public key"); !ok) return ok;
  if (auto ok = check_curve_key(keys.secret_key, "CURVE client secret key"); !ok) return ok;
  if (auto derived = curve_public_key(keys.secret_key); !derived || *derived != keys.public_key)
    return error(errc::invalid_argument, "CURVE: the client public key does not belong to its secret key");
  return {};
}

}  // namespace canopy::msg
