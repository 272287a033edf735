// Signed run receipts (util/receipt.h): a receipt verifies with its key;
// one byte changed anywhere in the document, or another key, does not.
#include "util/receipt.h"

#include <gtest/gtest.h>

namespace baton::util {
namespace {

Json Statement() {
  return Json{{"version", 1},
              {"jobId", "0190aa0b1c2d3e4f"},
              {"tenant", "acme"},
              {"attempt", 2},
              {"images", Json::array({"127.0.0.1:5000/acme/etl@sha256:0123"})},
              {"specSha256", Sha256Hex("spec")},
              {"node", "node-1"},
              {"startedAt", "2026-12-03T17:00:00.000000Z"},
              {"finishedAt", "2026-12-03T17:00:04.250000Z"},
              {"exitCode", 0},
              {"oomKilled", false},
              {"resources", {{"cpuLimitMillicores", 500}, {"memoryLimitBytes", 67108864}, {"peakMemoryBytes", nullptr}}},
              {"logSha256", Sha256Hex("stdout: hello\n")}};
}

ReceiptSigner NewSigner() {
  auto key = ReceiptSigner::NewPrivateKey();
  EXPECT_TRUE(key.ok());
  auto signer = ReceiptSigner::FromPrivateKey(*key);
  EXPECT_TRUE(signer.ok()) << signer.status().ToString();
  return *signer;
}

TEST(ReceiptTest, AReceiptVerifiesWithItsKey) {
  ReceiptSigner signer = NewSigner();
  auto doc = signer.Sign(Statement());
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ((*doc)["signature"]["keyId"], signer.KeyId());
  EXPECT_EQ((*doc)["signature"]["value"].get<std::string>().size(), 128u);
  // As printed (pretty) and compact: the signature covers the content, not the layout.
  EXPECT_TRUE(VerifyReceipt(doc->dump(2), signer.PublicKeyPem()).ok());
  EXPECT_TRUE(VerifyReceipt(doc->dump(), signer.PublicKeyPem()).ok());
  EXPECT_NE(signer.PublicKeyPem().find("BEGIN PUBLIC KEY"), std::string::npos);
}

TEST(ReceiptTest, OneByteChangedAnywhereDoesNotVerify) {
  ReceiptSigner signer = NewSigner();
  auto doc = signer.Sign(Statement());
  ASSERT_TRUE(doc.ok());
  const std::string text = doc->dump(2);
  ASSERT_TRUE(VerifyReceipt(text, signer.PublicKeyPem()).ok());
  // Every position, one bit flipped: never accepted (either not a receipt
  // document any more, or a signature that does not match).
  int rejected = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    std::string changed = text;
    changed[i] = static_cast<char>(changed[i] ^ 0x01);
    Status v = VerifyReceipt(changed, signer.PublicKeyPem());
    EXPECT_FALSE(v.ok()) << "byte " << i << " ('" << text[i] << "') changed and still verified";
    rejected += v.ok() ? 0 : 1;
  }
  EXPECT_EQ(rejected, static_cast<int>(text.size()));
  // A changed value that is still well-formed JSON: Unauthenticated.
  Json forged = *doc;
  forged["receipt"]["exitCode"] = 1;
  EXPECT_EQ(VerifyReceipt(forged.dump(2), signer.PublicKeyPem()).code(), StatusCode::kUnauthenticated);
  forged = *doc;
  forged["receipt"]["tenant"] = "acmf";
  EXPECT_EQ(VerifyReceipt(forged.dump(2), signer.PublicKeyPem()).code(), StatusCode::kUnauthenticated);
}

TEST(ReceiptTest, AnotherKeyOrGarbageIsRefused) {
  ReceiptSigner signer = NewSigner();
  ReceiptSigner other = NewSigner();
  auto doc = signer.Sign(Statement());
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(VerifyReceipt(doc->dump(), other.PublicKeyPem()).code(), StatusCode::kUnauthenticated);
  // The other key's id with a valid-looking signature from the first key.
  Json relabeled = *doc;
  relabeled["signature"]["keyId"] = other.KeyId();
  EXPECT_EQ(VerifyReceipt(relabeled.dump(), other.PublicKeyPem()).code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(VerifyReceipt(doc->dump(), "not a key").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyReceipt("{}", signer.PublicKeyPem()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyReceipt("[1,2", signer.PublicKeyPem()).code(), StatusCode::kInvalidArgument);
  Json extra = *doc;
  extra["note"] = "unsigned text beside the receipt";
  EXPECT_EQ(VerifyReceipt(extra.dump(), signer.PublicKeyPem()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ReceiptSigner::FromPrivateKey("short").status().code(), StatusCode::kInvalidArgument);
  // The same key signs the same statement the same way (Ed25519 is deterministic).
  auto again = signer.Sign(Statement());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)["signature"]["value"], (*doc)["signature"]["value"]);
}

}  // namespace
}  // namespace baton::util
