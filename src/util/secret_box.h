// SecretBox: authenticated encryption of small secrets at rest (AES-256-GCM,
// OpenSSL), with keys kept in a key file readable by the server's user only.
//
// Key file: one key per line, "<key id: 8 hex> <key: 64 hex>"; the first
// line is the active key (it seals), every line can open. Created at the
// first OpenOrCreate with one random key, mode 0600. Rotation
// (docs/SECURITY.md#secrets-at-rest): Rotate() puts a new random key first
// and keeps the old ones so existing boxes still open; after re-sealing
// everything, RetireAllButActive() drops them.
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
  // Reads `path`, or creates it (mode 0600) with one fresh key.
  // DataLoss: the file exists but is malformed. Unavailable: it cannot be
  // read or created.
  static Result<SecretBox> OpenOrCreate(const std::string& path);
  // Adds a new random active key to the file at `path` (keeping the others).
  static Status Rotate(const std::string& path);
  // Keeps only the first (active) key of the file at `path`.
  static Status RetireAllButActive(const std::string& path);

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
  static Result<std::vector<Key>> ReadKeys(const std::string& path);
  static Status WriteKeys(const std::string& path, const std::vector<Key>& keys);
  static Result<Key> NewKey();

  std::vector<Key> keys_;  // keys_[0] seals
};

}  // namespace baton::util
