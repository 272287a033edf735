// Signed run receipts against a real `baton serve`, dockerd and registry: a
// job that runs twice (exit 3, OnFailure) ends with one receipt per attempt,
// signed by the deployment's key; the receipt's log digest is that of the
// logs the API serves; `baton receipt verify` accepts it offline and refuses
// it with one byte changed; another tenant, an admin key and hostile ids get
// 4xx and no receipt.
#include <sys/wait.h>

#include <array>

#include "e2e/job_fixture.h"
#include "testing/run_command.h"
#include "util/receipt.h"

namespace baton::e2e {
namespace {

class ReceiptE2eTest : public JobServerTest {
 protected:
  using CliRun = testing::CommandRun;
  CliRun Baton(const std::string& args) { return testing::RunCommand(std::string(BATON_BINARY) + " " + args); }
  std::string Server() const { return "--server http://127.0.0.1:" + std::to_string(server_->port()); }
};

TEST_F(ReceiptE2eTest, EveryAttemptEndsWithAReceiptThatVerifiesOffline) {
  StartServer(2, 1024);
  const std::string key = CreateTenant("acme", Json{{"cpu", 2}});
  const std::string other = CreateTenant("globex", Json{{"cpu", 2}});
  std::string id = Submit(key, Spec("twice", {"print", "3"}, Json{{"restartPolicy", {{"policy", "Always"}, {"maxAttempts", 2}, {"backoffSeconds", 0}}}}));
  ASSERT_FALSE(id.empty());
  Json end = AwaitEnd(key, id);
  ASSERT_EQ(end.value("status", ""), "Completed") << end.dump();

  HttpResult r = Call(key, "GET", "/api/v1/jobs/" + id + "/receipts");
  ASSERT_EQ(r.status, 200) << r.body;
  Json receipts = ParseOrNull(r.body)["receipts"];
  ASSERT_EQ(receipts.size(), 2u) << r.body;
  HttpResult pk = Call(key, "GET", "/api/v1/receipts/public-key");
  ASSERT_EQ(pk.status, 200) << pk.body;
  const std::string pem = ParseOrNull(pk.body).value("publicKeyPem", "");
  ASSERT_NE(pem.find("BEGIN PUBLIC KEY"), std::string::npos);

  for (int attempt = 1; attempt <= 2; ++attempt) {
    const Json& doc = receipts[attempt - 1];
    const Json& rc = doc["receipt"];
    EXPECT_TRUE(util::VerifyReceipt(doc.dump(2), pem).ok()) << doc.dump(2);
    EXPECT_EQ(rc.value("jobId", ""), id);
    EXPECT_EQ(rc.value("tenant", ""), "acme");
    EXPECT_EQ(rc.value("attempt", 0), attempt);
    EXPECT_EQ(rc.value("exitCode", -1), 0);
    EXPECT_EQ(rc["images"], Json::array({suite_.image->digest}));
    EXPECT_EQ(rc.value("node", ""), node_);
    EXPECT_EQ(rc["resources"].value("memoryLimitBytes", 0), 32 << 20);
    EXPECT_EQ(rc["resources"].value("cpuLimitMillicores", 0), 500);
    EXPECT_EQ(rc.value("specSha256", "").size(), 64u);
    TimePoint started, finished;
    ASSERT_TRUE(ParseIso8601(rc.value("startedAt", ""), &started));
    ASSERT_TRUE(ParseIso8601(rc.value("finishedAt", ""), &finished));
    // (Docker may stamp a quick exit before the start it recorded: no order is checked.)
    // The digest is that of the attempt's kept logs, as the API serves them.
    HttpResult logs = Call(key, "GET", "/api/v1/jobs/" + id + "/logs?attempt=" + std::to_string(attempt));
    ASSERT_EQ(logs.status, 200) << logs.body;
    const Json lines = ParseOrNull(logs.body)["lines"];
    ASSERT_FALSE(lines.empty()) << logs.body;
    std::string all;
    for (const Json& l : lines) {
      all += l.value("stream", "") + ": " + l.value("text", "") + "\n";
    }
    EXPECT_NE(all.find("progress 3/3"), std::string::npos) << logs.body;
    EXPECT_EQ(rc.value("logSha256", ""), util::Sha256Hex(all));
  }
  // Same spec, same hash; secrets never enter it (the spec it hashes is redacted).
  EXPECT_EQ(receipts[0]["receipt"]["specSha256"], receipts[1]["receipt"]["specSha256"]);

  // Offline, with the CLI: the document `job receipt --attempt 1` prints verifies; one byte changed does not.
  CliRun printed = Baton("job receipt " + id + " --attempt 1 --key " + key + " " + Server());
  ASSERT_EQ(printed.exit_code, 0) << printed.out;
  const std::string file = dir_.File("receipt.json"), pem_file = dir_.File("receipt.pub");
  std::ofstream(file) << printed.out;
  CliRun pem_run = Baton("receipt public-key --key " + key + " " + Server());
  ASSERT_EQ(pem_run.exit_code, 0) << pem_run.out;
  std::ofstream(pem_file) << pem_run.out;
  CliRun ok = Baton("receipt verify " + file + " --public-key " + pem_file);
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
  if (const char* keep = std::getenv("BATON_EXAMPLE_DIR")) {  // the outputs docs/receipts.md shows
    std::ofstream(std::string(keep) + "/receipt.json") << printed.out;
    std::ofstream(std::string(keep) + "/receipt.pub") << pem_run.out;
    std::ofstream(std::string(keep) + "/verify.txt") << ok.out;
  }
  std::string changed = printed.out;
  size_t at = changed.find("\"exitCode\": 0");
  ASSERT_NE(at, std::string::npos) << changed;
  changed[at + 12] = '1';
  std::ofstream(file, std::ios::trunc) << changed;
  CliRun bad = Baton("receipt verify " + file + " --public-key " + pem_file);
  EXPECT_EQ(bad.exit_code, 8) << bad.out;
  EXPECT_NE(bad.out.find("NOT VERIFIED"), std::string::npos) << bad.out;

  // Another tenant: not found, nothing shown. An admin key: 403. Hostile ids: 400.
  HttpResult foreign = Call(other, "GET", "/api/v1/jobs/" + id + "/receipts");
  EXPECT_EQ(foreign.status, 404) << foreign.body;
  EXPECT_EQ(foreign.body.find("signature"), std::string::npos);
  EXPECT_EQ(Call(admin_, "GET", "/api/v1/jobs/" + id + "/receipts").status, 403);
  EXPECT_EQ(Call("", "GET", "/api/v1/jobs/" + id + "/receipts").status, 401);
  for (const std::string& hostile : {std::string("..%2F..%2Fetc"), std::string("job.acme.") + id,
                                     std::string("%00") + id, std::string(5000, 'a')}) {
    HttpResult h = Call(key, "GET", "/api/v1/jobs/" + hostile + "/receipts");
    EXPECT_GE(h.status, 400) << hostile;
    EXPECT_LT(h.status, 500) << hostile << ": " << h.body;
  }
}

}  // namespace
}  // namespace baton::e2e
