// Secrets at rest: the sealed box (util/secret_box.h) and the vault that
// keeps jobs' secrets with it (batch/secret_vault.h), on real files.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "batch/secret_vault.h"
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
  testing::TempDir dir;
  auto box = util::SecretBox::OpenOrCreate(dir.File("k"));
  ASSERT_TRUE(box.ok()) << box.status().ToString();
  EXPECT_EQ(ModeOf(dir.File("k")), 0600);
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
  auto other = util::SecretBox::OpenOrCreate(dir.File("other"));
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->Open(*sealed, "job-1/main/env/PASSWORD").status().code(), StatusCode::kDataLoss);
  // The same file opens the same key.
  auto reread = util::SecretBox::OpenOrCreate(dir.File("k"));
  ASSERT_TRUE(reread.ok());
  EXPECT_EQ(*reread->Open(*sealed, "job-1/main/env/PASSWORD"), "hunter2");
  // A malformed key file is data loss, never silently a new key.
  std::ofstream(dir.File("bad")) << "zz not-hex\n";
  EXPECT_EQ(util::SecretBox::OpenOrCreate(dir.File("bad")).status().code(), StatusCode::kDataLoss);
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
    auto vault = batch::SecretVault::Open(dir.File("secrets.db"), dir.File("secrets.key"));
    ASSERT_TRUE(vault.ok()) << vault.status().ToString();
    ASSERT_TRUE((*vault)->Put("job.acme.1", SpecWithSecrets(plain_env, plain_file)).ok());
    EXPECT_EQ(*(*vault)->Count("job.acme.1"), 3);
    batch::JobSpec redacted = SpecWithSecrets("***", "***");
    ASSERT_TRUE((*vault)->Fill("job.acme.1", &redacted).ok());
    EXPECT_EQ(redacted.containers[0].secret_env.at("PASSWORD"), plain_env);
    EXPECT_EQ(redacted.containers[0].secret_files.at("db.pass"), plain_file);
    EXPECT_EQ(redacted.containers[1].secret_env.at("SIDE"), "side-" + plain_env);
    // At rest, nowhere in the vault's files is a value in the clear.
    for (const char* f : {"secrets.db", "secrets.db-wal"}) {
      EXPECT_EQ(ReadAll(dir.File(f)).find(plain_env), std::string::npos) << f;
      EXPECT_EQ(ReadAll(dir.File(f)).find(plain_file), std::string::npos) << f;
    }
    EXPECT_EQ(ModeOf(dir.File("secrets.db")), 0600);
    auto jobs = (*vault)->Jobs("", 10);
    ASSERT_TRUE(jobs.ok());
    EXPECT_EQ(*jobs, std::vector<std::string>{"job.acme.1"});
    ASSERT_TRUE((*vault)->Delete("job.acme.1").ok());
    EXPECT_EQ(*(*vault)->Count("job.acme.1"), 0);
    EXPECT_TRUE((*vault)->Jobs("", 10)->empty());
  }
}

TEST(SecretsVaultTest, AnotherKeyFileCannotOpenAndRotationResealsEverything) {
  testing::TempDir dir;
  auto vault = batch::SecretVault::Open(dir.File("secrets.db"), dir.File("secrets.key"));
  ASSERT_TRUE(vault.ok());
  ASSERT_TRUE((*vault)->Put("job.acme.1", SpecWithSecrets("a-value", "b-value")).ok());
  vault->reset();
  const std::string old_keys = ReadAll(dir.File("secrets.key"));
  // Rotation: a new active key first; the old one still opens until resealed.
  ASSERT_TRUE(util::SecretBox::Rotate(dir.File("secrets.key")).ok());
  auto rotated = batch::SecretVault::Open(dir.File("secrets.db"), dir.File("secrets.key"));
  ASSERT_TRUE(rotated.ok());
  auto resealed = (*rotated)->ResealAll();
  ASSERT_TRUE(resealed.ok()) << resealed.status().ToString();
  EXPECT_EQ(*resealed, 3);
  EXPECT_EQ(*(*rotated)->ResealAll(), 0);
  rotated->reset();
  ASSERT_TRUE(util::SecretBox::RetireAllButActive(dir.File("secrets.key")).ok());
  auto after = batch::SecretVault::Open(dir.File("secrets.db"), dir.File("secrets.key"));
  ASSERT_TRUE(after.ok());
  batch::JobSpec spec = SpecWithSecrets("***", "***");
  ASSERT_TRUE((*after)->Fill("job.acme.1", &spec).ok());
  EXPECT_EQ(spec.containers[0].secret_env.at("PASSWORD"), "a-value");
  after->reset();
  // The retired key alone can no longer open them.
  std::ofstream(dir.File("secrets.key"), std::ios::trunc) << old_keys;
  auto stale = batch::SecretVault::Open(dir.File("secrets.db"), dir.File("secrets.key"));
  ASSERT_TRUE(stale.ok());
  batch::JobSpec refused = SpecWithSecrets("***", "***");
  EXPECT_EQ((*stale)->Fill("job.acme.1", &refused).code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace baton
