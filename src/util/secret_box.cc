#include "util/secret_box.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "util/hex.h"

namespace baton::util {
namespace {

constexpr unsigned char kVersion = 1;
constexpr size_t kNonce = 12;
constexpr size_t kTag = 16;
constexpr size_t kHeader = 1 + 4 + kNonce;

struct CipherCtx {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ~CipherCtx() { EVP_CIPHER_CTX_free(ctx); }
};

}  // namespace

Result<SecretBox::Key> SecretBox::NewKey() {
  Key k;
  if (RAND_bytes(k.id.data(), static_cast<int>(k.id.size())) != 1 ||
      RAND_bytes(k.bytes.data(), static_cast<int>(k.bytes.size())) != 1) {
    return InternalError("no randomness for a secrets key");
  }
  return k;
}

Result<std::vector<SecretBox::Key>> SecretBox::ParseKeys(const std::string& text) {
  std::istringstream in(text);
  std::vector<Key> keys;
  std::string id_hex, key_hex;
  while (in >> id_hex >> key_hex) {
    std::string id, bytes;
    Key k;
    if (!HexDecode(id_hex, &id) || id.size() != k.id.size() || !HexDecode(key_hex, &bytes) ||
        bytes.size() != k.bytes.size()) {
      return DataLossError("the secrets key is malformed");
    }
    std::memcpy(k.id.data(), id.data(), k.id.size());
    std::memcpy(k.bytes.data(), bytes.data(), k.bytes.size());
    keys.push_back(k);
  }
  if (keys.empty()) return DataLossError("the secrets key holds no key");
  return keys;
}

std::string SecretBox::KeysText(const std::vector<Key>& keys) {
  std::string text;
  for (const Key& k : keys) {
    text += HexEncode(std::string_view(reinterpret_cast<const char*>(k.id.data()), k.id.size())) + " " +
            HexEncode(std::string_view(reinterpret_cast<const char*>(k.bytes.data()), k.bytes.size())) + "\n";
  }
  return text;
}

Result<std::string> SecretBox::NewKeysText() {
  BATON_ASSIGN_OR_RETURN(Key k, NewKey());
  return KeysText({k});
}

Result<SecretBox> SecretBox::FromText(const std::string& text) {
  BATON_ASSIGN_OR_RETURN(std::vector<Key> keys, ParseKeys(text));
  return SecretBox(std::move(keys));
}

Result<std::string> SecretBox::Rotated(const std::string& text) {
  BATON_ASSIGN_OR_RETURN(std::vector<Key> keys, ParseKeys(text));
  BATON_ASSIGN_OR_RETURN(Key k, NewKey());
  keys.insert(keys.begin(), k);
  return KeysText(keys);
}

Result<std::string> SecretBox::ActiveOnly(const std::string& text) {
  BATON_ASSIGN_OR_RETURN(std::vector<Key> keys, ParseKeys(text));
  keys.resize(1);
  return KeysText(keys);
}

std::string SecretBox::active_key_id() const {
  if (keys_.empty()) return "";
  return HexEncode(std::string_view(reinterpret_cast<const char*>(keys_[0].id.data()), keys_[0].id.size()));
}

bool SecretBox::SealedWithActiveKey(std::string_view box) const {
  return !keys_.empty() && box.size() >= kHeader && std::memcmp(box.data() + 1, keys_[0].id.data(), 4) == 0;
}

Result<std::string> SecretBox::Seal(std::string_view plaintext, std::string_view aad) const {
  const Key& key = keys_.front();
  std::string out(kHeader + plaintext.size() + kTag, '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  p[0] = kVersion;
  std::memcpy(p + 1, key.id.data(), 4);
  if (RAND_bytes(p + 5, kNonce) != 1) return InternalError("no randomness for a nonce");
  CipherCtx c;
  int len = 0;
  bool ok = c.ctx != nullptr && EVP_EncryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_IVLEN, kNonce, nullptr) == 1 &&
            EVP_EncryptInit_ex(c.ctx, nullptr, nullptr, key.bytes.data(), p + 5) == 1 &&
            EVP_EncryptUpdate(c.ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                              static_cast<int>(aad.size())) == 1 &&
            EVP_EncryptUpdate(c.ctx, p + kHeader, &len, reinterpret_cast<const unsigned char*>(plaintext.data()),
                              static_cast<int>(plaintext.size())) == 1 &&
            EVP_EncryptFinal_ex(c.ctx, p + kHeader + len, &len) == 1 &&
            EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_GET_TAG, kTag, p + kHeader + plaintext.size()) == 1;
  if (!ok) return InternalError("AES-256-GCM sealing failed");
  return out;
}

Result<std::string> SecretBox::Open(std::string_view box, std::string_view aad) const {
  const Status refused = DataLossError("a sealed secret cannot be opened (wrong key, or altered)");
  if (box.size() < kHeader + kTag || static_cast<unsigned char>(box[0]) != kVersion) return refused;
  const Key* key = nullptr;
  for (const Key& k : keys_) {
    if (std::memcmp(box.data() + 1, k.id.data(), 4) == 0) key = &k;
  }
  if (key == nullptr) return refused;
  const auto* p = reinterpret_cast<const unsigned char*>(box.data());
  const size_t n = box.size() - kHeader - kTag;
  std::string out(n, '\0');
  CipherCtx c;
  int len = 0;
  unsigned char tag[kTag];
  std::memcpy(tag, p + kHeader + n, kTag);
  bool ok = c.ctx != nullptr && EVP_DecryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_IVLEN, kNonce, nullptr) == 1 &&
            EVP_DecryptInit_ex(c.ctx, nullptr, nullptr, key->bytes.data(), p + 5) == 1 &&
            EVP_DecryptUpdate(c.ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                              static_cast<int>(aad.size())) == 1 &&
            EVP_DecryptUpdate(c.ctx, reinterpret_cast<unsigned char*>(out.data()), &len, p + kHeader,
                              static_cast<int>(n)) == 1 &&
            EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_TAG, kTag, tag) == 1 &&
            EVP_DecryptFinal_ex(c.ctx, reinterpret_cast<unsigned char*>(out.data()) + len, &len) == 1;
  if (!ok) return refused;
  return out;
}

}  // namespace baton::util
