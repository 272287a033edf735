#include "util/uuid.h"

#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>

namespace baton::util {
namespace {

std::string Format(const uint8_t* b) {
  char out[37];
  std::snprintf(out, sizeof out,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return out;
}

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string NewRandomUuid() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  uint8_t b[16];
  uint64_t a = rng(), c = rng();
  for (int i = 0; i < 8; ++i) {
    b[i] = static_cast<uint8_t>(a >> (i * 8));
    b[8 + i] = static_cast<uint8_t>(c >> (i * 8));
  }
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  return Format(b);
}

std::string NewExecutionId() {
  std::string id = NewRandomUuid();
  std::string out;
  out.reserve(32);
  for (char c : id) {
    if (c != '-') out.push_back(c);
  }
  return out;
}

std::string NameBasedUuid(std::string_view ns, std::string_view name) {
  std::array<uint8_t, 16> ns_bytes{};
  std::string hex;
  for (char c : ns) {
    if (c != '-') hex.push_back(c);
  }
  for (size_t i = 0; i < 16 && 2 * i + 1 < hex.size(); ++i) {
    int hi = Hex(hex[2 * i]), lo = Hex(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) break;
    ns_bytes[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  std::string buffer(reinterpret_cast<const char*>(ns_bytes.data()), ns_bytes.size());
  buffer.append(name);
  uint8_t digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  EVP_Digest(buffer.data(), buffer.size(), digest, &digest_len, EVP_sha1(), nullptr);
  digest[6] = (digest[6] & 0x0f) | 0x50;
  digest[8] = (digest[8] & 0x3f) | 0x80;
  return Format(digest);
}

}  // namespace baton::util
