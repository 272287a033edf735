// PortReservation: a TCP port held by a listening socket of this process, so
// that `baton serve` claims every port it needs before it creates a file or
// prints a key, and a second server on a busy port fails at once.
//
// The socket sets SO_REUSEADDR (a restart binds over TIME_WAIT connections)
// and never SO_REUSEPORT, so the bind fails while any other socket listens on
// the port, whether or not that one set SO_REUSEPORT.
//
// Thread-safety: none; a value owned by one thread.
#pragma once

#include <string>

#include "baton/status.h"

namespace baton::app {

class PortReservation {
 public:
  PortReservation() = default;
  PortReservation(PortReservation&& other) noexcept;
  PortReservation& operator=(PortReservation&& other) noexcept;
  PortReservation(const PortReservation&) = delete;
  PortReservation& operator=(const PortReservation&) = delete;
  ~PortReservation();

  // Binds and listens on `address` (a numeric IPv4 or IPv6 address) and
  // `port` (1-65535). AlreadyExists when the port is in use; InvalidArgument
  // for an address that is not numeric; Unavailable for any other failure.
  static Result<PortReservation> Take(const std::string& address, int port);

  // Closes the socket, so that the real server can bind the port now.
  // Idempotent.
  void Release();

 private:
  int fd_ = -1;
};

}  // namespace baton::app
