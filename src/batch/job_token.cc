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

#include "util/hex.h"

namespace baton::batch {
namespace {

constexpr char kPrefix[] = "bjt_";
constexpr size_t kKeyBytes = 32;

std::string Mac(const std::string& key, const std::string& message) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(message.data()),
       message.size(), mac, &len);
  return util::HexEncode(std::string_view(reinterpret_cast<const char*>(mac), len));
}

}  // namespace

Result<JobTokens> JobTokens::FromKeyStore(store::KeyStore& keys) {
  BATON_ASSIGN_OR_RETURN(std::string key, keys.GetOrCreate(kKeyName, []() -> Result<std::string> {
    unsigned char bytes[kKeyBytes];
    if (RAND_bytes(bytes, sizeof bytes) != 1) return InternalError("no randomness for the job token key");
    return std::string(reinterpret_cast<const char*>(bytes), sizeof bytes);
  }));
  if (key.size() != kKeyBytes) {
    return DataLossError("the job token key (" + keys.Describe(kKeyName) + ") is not " + std::to_string(kKeyBytes) +
                         " bytes");
  }
  return JobTokens(std::move(key));
}

Result<JobTokens> JobTokens::ReadKeyFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("cannot read the job token key '" + path + "'");
  std::stringstream s;
  s << in.rdbuf();
  std::string key = s.str();
  if (key.size() != kKeyBytes) return DataLossError("job token key '" + path + "' is not " + std::to_string(kKeyBytes) + " bytes");
  return JobTokens(std::move(key));
}

std::string JobTokens::Sign(const std::string& instance, int attempt) const {
  const std::string message = instance + "|" + std::to_string(attempt);
  return kPrefix + util::HexEncode(instance) + "_" +
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
  const std::string instance_hex = token.substr(prefix.size(), a - prefix.size());
  // Only the canonical (lower-case) spelling Sign() writes.
  if (!util::HexDecode(instance_hex, &claims.instance) || claims.instance.empty() ||
      util::HexEncode(claims.instance) != instance_hex) {
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
