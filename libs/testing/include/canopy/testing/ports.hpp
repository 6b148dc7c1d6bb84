#pragma once
// free_tcp_port: a loopback TCP port nothing listens on right now (the kernel's pick), for
// a test or the soak to give a program that binds it a moment later. Another process could
// take it in between; on a test machine that is rare enough.
// Thread-safety: any thread.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace canopy::testing {

inline int free_tcp_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    socklen_t n = sizeof a;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n) == 0) port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

}  // namespace canopy::testing
