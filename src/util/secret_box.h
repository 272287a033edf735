// SecretBox: authenticated encryption of small secrets at rest (AES-256-GCM,
// OpenSSL), with keys kept in a key file readable by the server's user only.
//
// Keys travel as text, one key per line, "<key id: 8 hex> <key: 64 hex>";
// the first line is the active key (it seals), every line can open. Where
// that text lives is a store::KeyStore's business (a 0600 file on one node,
// the shared database on many). Rotation (docs/SECURITY.md): Rotated() puts
// a new random key first and keeps the old ones so existing boxes still
// open; after re-sealing everything, ActiveOnly() drops them.
//
// A sealed box is binary: version (1 byte, 1) | key id (4 bytes) | nonce
// (12 bytes, random) | ciphertext | tag (16 bytes). `aad` (associated data)
// is authenticated, not stored: a box opens only with the same aad, so a
// ciphertext moved to another row (another job, another name) is refused.
//
// Thread-safety: a SecretBox is immutable after construction; Seal and Open
// may be called concurrently.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "baton/status.h"

namespace baton::util {

class SecretBox {
 public:
  // The text of a fresh set of one random key.
  static Result<std::string> NewKeysText();
  // DataLoss: `text` is not a well-formed set of keys.
  static Result<SecretBox> FromText(const std::string& text);
  // `text` with a new random active key before the others.
  static Result<std::string> Rotated(const std::string& text);
  // `text` with only its first (active) key.
  static Result<std::string> ActiveOnly(const std::string& text);

  // Seals `plaintext`; Internal only if OpenSSL fails.
  Result<std::string> Seal(std::string_view plaintext, std::string_view aad) const;
  // DataLoss: not a box, an unknown key id, or tampered (or other aad).
  Result<std::string> Open(std::string_view box, std::string_view aad) const;

  // The id of the key that seals ("" if none).
  std::string active_key_id() const;
  // Whether `box` was sealed with the active key.
  bool SealedWithActiveKey(std::string_view box) const;

 private:
  struct Key {
    std::array<unsigned char, 4> id;
    std::array<unsigned char, 32> bytes;
  };
  explicit SecretBox(std::vector<Key> keys) : keys_(std::move(keys)) {}
  static Result<std::vector<Key>> ParseKeys(const std::string& text);
  static std::string KeysText(const std::vector<Key>& keys);
  static Result<Key> NewKey();

  std::vector<Key> keys_;  // keys_[0] seals
};

}  // namespace baton::util
