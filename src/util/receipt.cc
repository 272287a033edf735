#include "util/receipt.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <memory>

#include "util/hex.h"

namespace baton::util {
namespace {

constexpr size_t kKeyBytes = 32;
constexpr size_t kSignatureBytes = 64;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

Status Unauthenticated(std::string m) { return Status(StatusCode::kUnauthenticated, std::move(m)); }

std::string KeyIdOf(const std::string& public_raw) { return Sha256Hex(public_raw).substr(0, 16); }

}  // namespace

std::string Sha256Hex(std::string_view bytes) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  return HexEncode(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

std::string CanonicalReceipt(const Json& statement) {
  // Json keeps object keys sorted (std::map); dump() without indent has no
  // whitespace; error_handler strict never meets invalid UTF-8 here because
  // every string came through ParseJson or from Baton itself.
  return statement.dump(-1, ' ', false, Json::error_handler_t::strict);
}

Result<std::string> ReceiptSigner::NewPrivateKey() {
  unsigned char bytes[kKeyBytes];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return InternalError("no randomness for the receipt key");
  return std::string(reinterpret_cast<const char*>(bytes), sizeof bytes);
}

Result<ReceiptSigner> ReceiptSigner::FromPrivateKey(std::string raw) {
  if (raw.size() != kKeyBytes) return InvalidArgumentError("an Ed25519 private key is 32 bytes");
  Pkey key(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr,
                                        reinterpret_cast<const unsigned char*>(raw.data()), raw.size()));
  if (!key) return InternalError("OpenSSL refused the Ed25519 key");
  unsigned char pub[kKeyBytes];
  size_t pub_len = sizeof pub;
  if (EVP_PKEY_get_raw_public_key(key.get(), pub, &pub_len) != 1 || pub_len != kKeyBytes) {
    return InternalError("cannot derive the Ed25519 public key");
  }
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key.get()) != 1) return InternalError("cannot write the public key");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  ReceiptSigner s;
  s.private_raw_ = std::move(raw);
  s.public_raw_.assign(reinterpret_cast<const char*>(pub), pub_len);
  s.public_pem_.assign(data, static_cast<size_t>(n));
  s.key_id_ = KeyIdOf(s.public_raw_);
  return s;
}

Result<Json> ReceiptSigner::Sign(const Json& statement) const {
  if (!statement.is_object()) return InvalidArgumentError("a receipt statement is a JSON object");
  const std::string message = CanonicalReceipt(statement);
  Pkey key(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr,
                                        reinterpret_cast<const unsigned char*>(private_raw_.data()),
                                        private_raw_.size()));
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  unsigned char sig[kSignatureBytes];
  size_t sig_len = sizeof sig;
  if (!key || !ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), sig, &sig_len, reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1) {
    return InternalError("Ed25519 signing failed");
  }
  return Json{{"receipt", statement},
              {"signature",
               {{"algorithm", "Ed25519"},
                {"keyId", key_id_},
                {"value", HexEncode(std::string_view(reinterpret_cast<const char*>(sig), sig_len))}}}};
}

Status VerifyReceipt(std::string_view document, std::string_view public_key_pem) {
  Json doc;
  JsonLimits limits;
  if (Status s = ParseJson(document, &doc, limits); !s.ok()) {
    return InvalidArgumentError("not a receipt document: " + s.message());
  }
  if (!doc.is_object() || doc.size() != 2 || !doc.contains("receipt") || !doc.contains("signature") ||
      !doc["receipt"].is_object() || !doc["signature"].is_object()) {
    return InvalidArgumentError("not a receipt document: expected {\"receipt\": {…}, \"signature\": {…}}");
  }
  const Json& sig = doc["signature"];
  if (sig.value("algorithm", "") != "Ed25519" || !sig.contains("value") || !sig["value"].is_string()) {
    return InvalidArgumentError("the signature is not an Ed25519 signature");
  }
  std::string sig_bytes;
  const std::string sig_hex = sig["value"].get<std::string>();
  // Strict: lower-case hex of exactly 64 bytes, so one text has one meaning.
  if (sig_hex.size() != 2 * kSignatureBytes || !HexDecode(sig_hex, &sig_bytes) || HexEncode(sig_bytes) != sig_hex) {
    return Unauthenticated("the signature value is not 128 lower-case hex digits");
  }
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(public_key_pem.data(), static_cast<int>(public_key_pem.size())));
  Pkey key(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key || EVP_PKEY_id(key.get()) != EVP_PKEY_ED25519) {
    return InvalidArgumentError("the public key is not a PEM Ed25519 public key");
  }
  unsigned char pub[kKeyBytes];
  size_t pub_len = sizeof pub;
  if (EVP_PKEY_get_raw_public_key(key.get(), pub, &pub_len) != 1) return InvalidArgumentError("unreadable public key");
  const std::string key_id = KeyIdOf(std::string(reinterpret_cast<const char*>(pub), pub_len));
  if (sig.value("keyId", "") != key_id) {
    return Unauthenticated("signed by key " + sig.value("keyId", std::string("?")) + ", not by key " + key_id);
  }
  const std::string message = CanonicalReceipt(doc["receipt"]);
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1) {
    return InternalError("OpenSSL could not start a verification");
  }
  if (EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig_bytes.data()), sig_bytes.size(),
                       reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1) {
    return Unauthenticated("the signature does not match the receipt");
  }
  return Status::Ok();
}

}  // namespace baton::util
