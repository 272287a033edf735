#include "batch/job_token.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace baton::batch {
namespace {

constexpr char kPrefix[] = "bjt_";
constexpr size_t kKeyBytes = 32;

std::string Hex(const unsigned char* data, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 15]);
  }
  return out;
}

bool Unhex(const std::string& hex, std::string* out) {
  if (hex.size() % 2 != 0) return false;
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  out->clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = digit(hex[i]), lo = digit(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

std::string Mac(const std::string& key, const std::string& message) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(message.data()),
       message.size(), mac, &len);
  return Hex(mac, len);
}

}  // namespace

Result<JobTokens> JobTokens::OpenOrCreateKey(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (in) {
    std::stringstream s;
    s << in.rdbuf();
    std::string key = s.str();
    if (key.size() != kKeyBytes) return InternalError("job token key '" + path + "' is not " + std::to_string(kKeyBytes) + " bytes");
    return JobTokens(std::move(key));
  }
  unsigned char bytes[kKeyBytes];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return InternalError("no randomness for the job token key");
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return UnavailableError("cannot create the job token key '" + path + "'");
  bool ok = ::write(fd, bytes, sizeof bytes) == static_cast<ssize_t>(sizeof bytes) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return UnavailableError("cannot write the job token key '" + path + "'");
  return JobTokens(std::string(reinterpret_cast<const char*>(bytes), sizeof bytes));
}

std::string JobTokens::Sign(const std::string& instance, int attempt) const {
  const std::string message = instance + "|" + std::to_string(attempt);
  return kPrefix + Hex(reinterpret_cast<const unsigned char*>(instance.data()), instance.size()) + "_" +
         std::to_string(attempt) + "_" + Mac(key_, message);
}

Result<JobTokenClaims> JobTokens::Verify(const std::string& token) const {
  auto invalid = [] { return Status(StatusCode::kUnauthenticated, "the job token is not valid"); };
  const std::string prefix = kPrefix;
  if (token.size() > 1024 || token.compare(0, prefix.size(), prefix) != 0) return invalid();
  size_t a = token.find('_', prefix.size());
  size_t b = a == std::string::npos ? a : token.find('_', a + 1);
  if (b == std::string::npos) return invalid();
  JobTokenClaims claims;
  if (!Unhex(token.substr(prefix.size(), a - prefix.size()), &claims.instance) || claims.instance.empty()) {
    return invalid();
  }
  const std::string attempt = token.substr(a + 1, b - a - 1);
  if (attempt.empty() || attempt.size() > 6 || attempt.find_first_not_of("0123456789") != std::string::npos) {
    return invalid();
  }
  claims.attempt = std::stoi(attempt);
  const std::string expected = Mac(key_, claims.instance + "|" + attempt);
  const std::string given = token.substr(b + 1);
  if (given.size() != expected.size() || CRYPTO_memcmp(given.data(), expected.data(), given.size()) != 0) {
    return invalid();
  }
  return claims;
}

}  // namespace baton::batch
