// Signed run receipts (docs/receipts.md): a JSON statement of what one job
// attempt ran and how it ended, signed with the deployment's Ed25519 key, that
// anyone holding the public key can check offline.
//
// A receipt document is
//
//   {"receipt": {…the statement…},
//    "signature": {"algorithm": "Ed25519", "keyId": "<16 hex>", "value": "<128 hex>"}}
//
// The signature covers the canonical form of "receipt": nlohmann's compact
// dump, keys sorted, no whitespace, UTF-8 (every value Baton puts there is a
// string, an integer, a boolean or null, so the form has one spelling).
// keyId is the first 8 bytes of SHA-256 of the raw 32-byte public key.
//
// Thread-safety: the functions are pure; ReceiptSigner is immutable.
#pragma once

#include <string>

#include "baton/json.h"
#include "baton/status.h"

namespace baton::util {

class ReceiptSigner {
 public:
  // A new random Ed25519 private key, raw (32 bytes). Internal: no randomness.
  static Result<std::string> NewPrivateKey();
  // From a raw 32-byte private key. InvalidArgument: wrong size.
  static Result<ReceiptSigner> FromPrivateKey(std::string raw_private_key);

  // The signed document for `statement` (an object). Internal: OpenSSL failed.
  Result<Json> Sign(const Json& statement) const;
  // The public key as PEM (SubjectPublicKeyInfo), for `--public-key` files.
  const std::string& PublicKeyPem() const { return public_pem_; }
  const std::string& KeyId() const { return key_id_; }

 private:
  ReceiptSigner() = default;
  std::string private_raw_;
  std::string public_raw_;
  std::string public_pem_;
  std::string key_id_;
};

// Checks a receipt document (its text, as printed) against a PEM public key.
// OK: well-formed and signed by that key. InvalidArgument: not a receipt
// document or not a PEM Ed25519 key. Unauthenticated: the signature does not
// match (a changed byte, another key).
Status VerifyReceipt(std::string_view document, std::string_view public_key_pem);

// The canonical bytes a signature covers.
std::string CanonicalReceipt(const Json& statement);

// SHA-256 of `bytes`, lower-case hex: the digests inside receipts.
std::string Sha256Hex(std::string_view bytes);

}  // namespace baton::util
