// One HTTP/1.1 exchange with a server on 127.0.0.1 (a job's URL, published on
// loopback): connect, send, read the answer, all within `timeout`.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "baton/status.h"

namespace baton::batch {

struct LoopbackAnswer {
  unsigned status = 0;
  std::string body;
};

// Unavailable when nothing answers in time.
Result<LoopbackAnswer> LoopbackHttp(const std::string& method, uint16_t port, const std::string& target,
                                    const std::string& body, std::chrono::milliseconds timeout);

}  // namespace baton::batch
