// Secrets at rest: the sealed box (util/secret_box.h) and the vault that
// keeps jobs' secrets with it (batch/secret_vault.h), on real files.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "batch/secret_vault.h"
#include "testing/platform_stores.h"
#include "testing/test_util.h"
#include "util/secret_box.h"

namespace baton {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int ModeOf(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 0777) : -1;
}

TEST(SecretsBoxTest, SealsOpensAndRefusesTamperingOtherContextsAndOtherKeys) {
  auto text = util::SecretBox::NewKeysText();
  ASSERT_TRUE(text.ok());
  auto box = util::SecretBox::FromText(*text);
  ASSERT_TRUE(box.ok()) << box.status().ToString();
  auto sealed = box->Seal("hunter2", "job-1/main/env/PASSWORD");
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(sealed->find("hunter2"), std::string::npos);
  auto again = box->Seal("hunter2", "job-1/main/env/PASSWORD");
  EXPECT_NE(*sealed, *again);  // a fresh nonce each time
  auto opened = box->Open(*sealed, "job-1/main/env/PASSWORD");
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(*opened, "hunter2");
  EXPECT_EQ(box->Open(*sealed, "job-2/main/env/PASSWORD").status().code(), StatusCode::kDataLoss);
  std::string flipped = *sealed;
  flipped[flipped.size() / 2] ^= 1;
  EXPECT_EQ(box->Open(flipped, "job-1/main/env/PASSWORD").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(box->Open("short", "x").status().code(), StatusCode::kDataLoss);
  auto other = util::SecretBox::FromText(*util::SecretBox::NewKeysText());
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->Open(*sealed, "job-1/main/env/PASSWORD").status().code(), StatusCode::kDataLoss);
  // Rotation keeps the old key for opening, and seals with the new one.
  auto rotated = util::SecretBox::FromText(*util::SecretBox::Rotated(*text));
  ASSERT_TRUE(rotated.ok());
  EXPECT_EQ(*rotated->Open(*sealed, "job-1/main/env/PASSWORD"), "hunter2");
  EXPECT_FALSE(rotated->SealedWithActiveKey(*sealed));
  EXPECT_TRUE(rotated->SealedWithActiveKey(*rotated->Seal("x", "y")));
  // A malformed key text is data loss, never silently a new key.
  EXPECT_EQ(util::SecretBox::FromText("zz not-hex\n").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(util::SecretBox::FromText("").status().code(), StatusCode::kDataLoss);
}

batch::JobSpec SpecWithSecrets(const std::string& env_value, const std::string& file_value) {
  auto spec = batch::ParseJobSpec(Json{{"name", "s"},
                                       {"image", "127.0.0.1:5000/acme/s:1"},
                                       {"secretEnv", {{"PASSWORD", env_value}}},
                                       {"secretFiles", {{"db.pass", file_value}}},
                                       {"sidecars", {{{"name", "side"}, {"image", "127.0.0.1:5000/acme/t:1"},
                                                      {"secretEnv", {{"SIDE", "side-" + env_value}}}}}}});
  EXPECT_TRUE(spec.ok()) << spec.status().ToString();
  return *spec;
}

TEST(SecretsVaultTest, SecretsAreSealedOnDiskFilledBackAndGoneAfterDelete) {
  testing::TempDir dir;
  const std::string plain_env = "env-secret-5f0c9a7e", plain_file = "file-secret-9d41b2c3";
  {
    testing::SqlitePlatform platform;
    ASSERT_TRUE(platform.Open(dir.path()).ok());
    auto& vault = platform.vault;
    ASSERT_TRUE(vault->Put("job.acme.1", SpecWithSecrets(plain_env, plain_file)).ok());
    EXPECT_EQ(*vault->Count("job.acme.1"), 3);
    batch::JobSpec redacted = SpecWithSecrets("***", "***");
    ASSERT_TRUE(vault->Fill("job.acme.1", &redacted).ok());
    EXPECT_EQ(redacted.containers[0].secret_env.at("PASSWORD"), plain_env);
    EXPECT_EQ(redacted.containers[0].secret_files.at("db.pass"), plain_file);
    EXPECT_EQ(redacted.containers[1].secret_env.at("SIDE"), "side-" + plain_env);
    // At rest, nowhere in the vault's files is a value in the clear.
    for (const char* f : {"secrets.db", "secrets.db-wal"}) {
      EXPECT_EQ(ReadAll(dir.File(f)).find(plain_env), std::string::npos) << f;
      EXPECT_EQ(ReadAll(dir.File(f)).find(plain_file), std::string::npos) << f;
    }
    EXPECT_EQ(ModeOf(dir.File("secrets.db")), 0600);
    EXPECT_EQ(ModeOf(dir.File("secrets.key")), 0600);
    auto jobs = vault->Jobs("", 10);
    ASSERT_TRUE(jobs.ok());
    EXPECT_EQ(*jobs, std::vector<std::string>{"job.acme.1"});
    ASSERT_TRUE(vault->Delete("job.acme.1").ok());
    EXPECT_EQ(*vault->Count("job.acme.1"), 0);
    EXPECT_TRUE(vault->Jobs("", 10)->empty());
  }
}

// A job whose sealed secrets are gone (swept, deleted, a data dir restored
// without them) must not start with the redacted "***" as its secrets.
TEST(SecretsVaultTest, FillRefusesASpecWhoseSecretsAreNotInTheVault) {
  testing::TempDir dir;
  testing::SqlitePlatform platform;
  ASSERT_TRUE(platform.Open(dir.path()).ok());
  auto& vault = platform.vault;
  batch::JobSpec never_put = SpecWithSecrets("***", "***");
  Status missing = vault->Fill("job.acme.2", &never_put);
  EXPECT_EQ(missing.code(), StatusCode::kDataLoss) << missing.ToString();
  EXPECT_NE(missing.message().find("PASSWORD"), std::string::npos) << missing.ToString();
  ASSERT_TRUE(vault->Put("job.acme.3", SpecWithSecrets("v", "f")).ok());
  ASSERT_TRUE(vault->Delete("job.acme.3").ok());
  batch::JobSpec deleted = SpecWithSecrets("***", "***");
  EXPECT_EQ(vault->Fill("job.acme.3", &deleted).code(), StatusCode::kDataLoss);
  // A spec without secrets needs nothing from the vault.
  auto plain = batch::ParseJobSpec(Json{{"name", "p"}, {"image", "127.0.0.1:5000/acme/p:1"}});
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(vault->Fill("job.acme.4", &*plain).ok());
}

TEST(SecretsVaultTest, AnotherKeyCannotOpenAndRotationResealsEverything) {
  testing::TempDir dir;
  auto secrets = store::OpenSqliteSecretStore(dir.File("secrets.db"));
  ASSERT_TRUE(secrets.ok());
  auto keys = store::OpenFileKeyStore(dir.path());
  {
    auto vault = batch::SecretVault::Open(**secrets, *keys);
    ASSERT_TRUE(vault.ok());
    ASSERT_TRUE((*vault)->Put("job.acme.1", SpecWithSecrets("a-value", "b-value")).ok());
  }
  const std::string old_keys = *keys->GetOrCreate("secrets", [] { return util::SecretBox::NewKeysText(); });
  // Rotation: a new active key first; the old one still opens until resealed.
  ASSERT_TRUE(keys->Put("secrets", *util::SecretBox::Rotated(old_keys)).ok());
  {
    auto rotated = batch::SecretVault::Open(**secrets, *keys);
    ASSERT_TRUE(rotated.ok());
    auto resealed = (*rotated)->ResealAll();
    ASSERT_TRUE(resealed.ok()) << resealed.status().ToString();
    EXPECT_EQ(*resealed, 3);
    EXPECT_EQ(*(*rotated)->ResealAll(), 0);
  }
  const std::string both = *keys->GetOrCreate("secrets", [] { return util::SecretBox::NewKeysText(); });
  ASSERT_TRUE(keys->Put("secrets", *util::SecretBox::ActiveOnly(both)).ok());
  {
    auto after = batch::SecretVault::Open(**secrets, *keys);
    ASSERT_TRUE(after.ok());
    batch::JobSpec spec = SpecWithSecrets("***", "***");
    ASSERT_TRUE((*after)->Fill("job.acme.1", &spec).ok());
    EXPECT_EQ(spec.containers[0].secret_env.at("PASSWORD"), "a-value");
  }
  // The retired key alone can no longer open them.
  ASSERT_TRUE(keys->Put("secrets", old_keys).ok());
  auto stale = batch::SecretVault::Open(**secrets, *keys);
  ASSERT_TRUE(stale.ok());
  batch::JobSpec refused = SpecWithSecrets("***", "***");
  EXPECT_EQ((*stale)->Fill("job.acme.1", &refused).code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace baton
