#include "app/port_reservation.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace baton::app {

PortReservation::PortReservation(PortReservation&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

PortReservation& PortReservation::operator=(PortReservation&& other) noexcept {
  if (this != &other) {
    Release();
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

PortReservation::~PortReservation() { Release(); }

void PortReservation::Release() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Result<PortReservation> PortReservation::Take(const std::string& address, int port) {
  if (port < 1 || port > 65535) return InvalidArgumentError("port " + std::to_string(port) + " is not 1-65535");
  sockaddr_storage storage{};
  socklen_t length = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  if (::inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    length = sizeof(sockaddr_in);
  } else if (::inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    length = sizeof(sockaddr_in6);
  } else {
    return InvalidArgumentError("invalid listen address '" + address + "'");
  }
  const std::string where = address + ":" + std::to_string(port);
  PortReservation r;
  r.fd_ = ::socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (r.fd_ < 0) return UnavailableError("cannot open a socket for " + where + ": " + std::strerror(errno));
  const int on = 1;
  ::setsockopt(r.fd_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (::bind(r.fd_, reinterpret_cast<sockaddr*>(&storage), length) != 0 || ::listen(r.fd_, 1) != 0) {
    const int error = errno;
    if (error == EADDRINUSE) return AlreadyExistsError("port " + where + " is in use");
    return UnavailableError("cannot listen on " + where + ": " + std::strerror(error));
  }
  return r;
}

}  // namespace baton::app
