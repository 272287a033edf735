// Hostile input against a real `baton serve` child process: bodies nested
// 100,000 levels deep on every JSON endpoint (HTTP and gRPC), bytes that are
// not UTF-8, integers that would truncate, malformed HTTP on raw sockets and a
// hostile Host header. Each gets its 4xx (or INVALID_ARGUMENT) naming what is
// wrong, changes nothing, and the server keeps serving.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "baton/json.h"
#include "orchestrator_service.grpc.pb.h"
#include "testing/http_client.h"
#include "testing/server_process.h"
#include "testing/test_util.h"

namespace baton {
namespace {

using testing::HttpCall;
using testing::HttpResult;

const std::string kBase = "/runtime/webhooks/durabletask";
constexpr int kDeep = 100000;

std::string Deep(int levels = kDeep) { return std::string(levels, '[') + std::string(levels, ']'); }

Json BodyOf(const std::string& text) {
  Json j;
  return ParseJson(text, &j).ok() ? j : Json();
}

// The "field" of a JSON error answer, or "?" when the answer is not one.
std::string ErrorField(const std::string& body) {
  Json j = BodyOf(body);
  return j.is_object() && j.contains("error") && j["error"].is_object() ? j["error"].value("field", "?") : "?";
}

// Sends `bytes` on a fresh loopback connection and reads until the server
// closes it. The answer's status (0 if none) and body.
struct RawAnswer {
  int status = 0;
  std::string body;
  std::string raw;
};
RawAnswer RawExchange(unsigned short port, const std::string& bytes) {
  RawAnswer out;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval guard{60, 0};  // a hang guard, not a timing assertion
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof guard);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &guard, sizeof guard);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return out;
  }
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer and stop reading early
    sent += static_cast<size_t>(n);
  }
  shutdown(fd, SHUT_WR);
  char buf[16384];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.raw.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  if (out.raw.rfind("HTTP/1.1 ", 0) == 0) out.status = std::stoi(out.raw.substr(9, 3));
  size_t blank = out.raw.find("\r\n\r\n");
  if (blank != std::string::npos) out.body = out.raw.substr(blank + 4);
  return out;
}

class InputLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<testing::ServerProcess>(BATON_BINARY, dir_.File("data"));
    admin_ = server_->admin_key();
    ASSERT_FALSE(admin_.empty());
    ASSERT_EQ(Call(admin_, "POST", "/api/v1/admin/tenants", R"({"id":"acme"})").status, 201);
    HttpResult k = Call(admin_, "POST", "/api/v1/admin/tenants/acme/keys", R"({"name":"test"})");
    ASSERT_EQ(k.status, 201) << k.body;
    acme_ = BodyOf(k.body)["key"].get<std::string>();
  }

  HttpResult Call(const std::string& key, const std::string& method, const std::string& target,
                  const std::string& body = "", std::map<std::string, std::string> headers = {}) {
    if (!key.empty()) headers["Authorization"] = "Bearer " + key;
    if (!body.empty() && !headers.count("Content-Type")) headers["Content-Type"] = "application/json";
    return HttpCall(server_->port(), method, target, body, headers);
  }

  // The server still answers, and still does real work.
  void ExpectServing(const std::string& after) {
    HttpResult health = Call("", "GET", "/healthz");
    ASSERT_EQ(health.status, 200) << "the server is down after " << after << ": " << health.error;
    HttpResult start = Call(admin_, "POST", kBase + "/orchestrators/HelloCities", "[\"Oslo\"]");
    ASSERT_EQ(start.status, 202) << "after " << after << ": " << start.body;
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::ServerProcess> server_;
  std::string admin_, acme_;
};

// Every route that parses a JSON body answers a body nested 100,000 levels
// with 400 naming "body", and stores nothing.
TEST_F(InputLimitsTest, DeepBodiesAreRefusedOnEveryJsonEndpoint) {
  ASSERT_EQ(Call(admin_, "POST", kBase + "/orchestrators/AwaitApproval/waiting", "1").status, 202);
  struct Endpoint {
    std::string key, method, target;
  };
  const std::vector<Endpoint> endpoints = {
      {admin_, "POST", kBase + "/orchestrators/HelloCities"},
      {admin_, "POST", kBase + "/orchestrators/HelloCities/deep-start"},
      {admin_, "POST", kBase + "/instances/waiting/raiseEvent/approval"},
      {admin_, "POST", kBase + "/entities/Counter/deep?op=add"},
      {admin_, "POST", kBase + "/entities/clean"},
      {acme_, "POST", kBase + "/orchestrators/HelloCities"},
      {acme_, "POST", "/api/v1/jobs"},
      {admin_, "POST", "/api/v1/admin/tenants"},
      {admin_, "POST", "/api/v1/admin/tenants/acme/keys"},
      {admin_, "POST", "/api/v1/admin/keys"},
      {admin_, "PUT", "/api/v1/admin/tenants/acme/quota"},
      {admin_, "PATCH", "/api/v1/admin/tenants/acme/settings"},
  };
  const std::string deep = Deep();
  for (const std::string& body : {deep, "{\"a\":" + deep + "}", std::string(kDeep, '[')}) {
    for (const Endpoint& e : endpoints) {
      HttpResult r = Call(e.key, e.method, e.target, body);
      EXPECT_EQ(r.status, 400) << e.method << " " << e.target << ": " << r.body << r.error;
      EXPECT_EQ(ErrorField(r.body), "body") << e.target << ": " << r.body;
      ExpectServing(e.method + " " + e.target);
    }
  }
  EXPECT_NE(BodyOf(Call(admin_, "POST", kBase + "/orchestrators/HelloCities", deep).body)["error"]["message"]
                .get<std::string>()
                .find("nested deeper than 128 levels"),
            std::string::npos);
  // Nothing was stored: no instance, no entity, no job, no tenant, no key.
  EXPECT_EQ(Call(admin_, "GET", kBase + "/instances/deep-start").status, 404);
  EXPECT_EQ(Call(admin_, "GET", kBase + "/entities/Counter/deep").status, 404);
  EXPECT_EQ(BodyOf(Call(acme_, "GET", "/api/v1/jobs").body)["jobs"].size(), 0u);
  EXPECT_EQ(BodyOf(Call(admin_, "GET", "/api/v1/admin/tenants").body).size(), 1u);
  EXPECT_EQ(BodyOf(Call(admin_, "GET", "/api/v1/admin/tenants/acme/keys").body).size(), 1u);
  // A job's callback checks its token first; a deep body changes nothing there either.
  HttpResult callback = Call("not-a-job-token", "POST", "/api/v1/jobs/0123456789abcdef/callback", deep);
  EXPECT_EQ(callback.status, 401);
  // Routes without a JSON body ignore one: they answer as they would anyway.
  EXPECT_EQ(Call(admin_, "POST", kBase + "/instances/waiting/suspend", deep).status, 202);
  EXPECT_EQ(Call(admin_, "POST", kBase + "/instances/waiting/resume", deep).status, 202);
  EXPECT_EQ(Call(admin_, "POST", kBase + "/instances/waiting/terminate", deep).status, 202);
  ExpectServing("the body-less routes");
}

TEST_F(InputLimitsTest, BytesThatAreNotUtf8Are400NamingTheField) {
  struct Probe {
    std::string key, method, target, field;
  };
  const std::string bad = "%ff%fe";
  const std::vector<Probe> probes = {
      {admin_, "GET", kBase + "/instances/" + bad, "id"},
      {admin_, "DELETE", kBase + "/instances/" + bad, "id"},
      {admin_, "POST", kBase + "/instances/" + bad + "/raiseEvent/x", "id"},
      {admin_, "POST", kBase + "/instances/x/raiseEvent/" + bad, "event"},
      {admin_, "POST", kBase + "/instances/" + bad + "/terminate", "id"},
      {admin_, "POST", kBase + "/instances/" + bad + "/suspend", "id"},
      {admin_, "POST", kBase + "/instances/" + bad + "/resume", "id"},
      {admin_, "POST", kBase + "/instances/" + bad + "/rewind", "id"},
      {admin_, "POST", kBase + "/instances/" + bad + "/restart", "id"},
      {admin_, "POST", kBase + "/orchestrators/" + bad, "name"},
      {admin_, "POST", kBase + "/orchestrators/HelloCities/" + bad, "instanceId"},
      {admin_, "GET", kBase + "/entities/" + bad, "name"},
      {admin_, "GET", kBase + "/entities/Counter/" + bad, "key"},
      {admin_, "POST", kBase + "/entities/Counter/" + bad + "?op=add", "key"},
      {admin_, "DELETE", kBase + "/entities/Counter/" + bad, "key"},
      {acme_, "GET", "/api/v1/jobs/" + bad, "id"},
      {acme_, "POST", "/api/v1/jobs/" + bad + "/cancel", "id"},
      {acme_, "GET", "/api/v1/jobs/" + bad + "/logs", "id"},
      {acme_, "GET", "/api/v1/jobs/" + bad + "/events", "id"},
      {acme_, "POST", "/api/v1/jobs/" + bad + "/callback", "id"},
      {admin_, "POST", "/api/v1/admin/tenants/" + bad + "/disable", "tenant"},
      {admin_, "GET", "/api/v1/admin/tenants/" + bad + "/keys", "tenant"},
      {admin_, "PUT", "/api/v1/admin/tenants/" + bad + "/quota", "tenant"},
      {admin_, "DELETE", "/api/v1/admin/keys/" + bad, "key"},
      {admin_, "POST", kBase + "/instances/x/terminate?reason=" + bad, "reason"},
      {admin_, "GET", kBase + "/instances?instanceIdPrefix=" + bad, "instanceIdPrefix"},
      {acme_, "GET", "/api/v1/jobs?name=" + bad, "name"},
  };
  for (const Probe& p : probes) {
    HttpResult r = Call(p.key, p.method, p.target);
    EXPECT_EQ(r.status, 400) << p.method << " " << p.target << ": " << r.body;
    EXPECT_EQ(ErrorField(r.body), p.field) << p.method << " " << p.target << ": " << r.body;
  }
  // In a JSON body, and as an entity operation's raw text input.
  HttpResult body = Call(admin_, "POST", kBase + "/orchestrators/HelloCities", "[\"\xff\xfe\"]");
  EXPECT_EQ(body.status, 400);
  EXPECT_EQ(ErrorField(body.body), "body");
  EXPECT_NE(body.body.find("not valid UTF-8"), std::string::npos) << body.body;
  HttpResult text = Call(admin_, "POST", kBase + "/entities/Counter/c?op=add", "\xff\xfe", {{"Content-Type", "text/plain"}});
  EXPECT_EQ(text.status, 400);
  EXPECT_EQ(ErrorField(text.body), "body");
  EXPECT_EQ(Call(admin_, "GET", kBase + "/entities/Counter/c").status, 404) << "nothing was signaled";
  ExpectServing("invalid UTF-8");
}

TEST_F(InputLimitsTest, IntegersThatWouldTruncateAre400NamingTheField) {
  const Json base = {{"name", "job"}, {"image", "127.0.0.1:5000/acme/job:1"}};
  struct Case {
    Json patch;
    std::string field;
  };
  const std::vector<Case> cases = {
      {{{"network", "bridge"}, {"ports", {4294967376ULL}}}, "ports[0]"},  // was port 80
      {{{"restartPolicy", {{"policy", "OnFailure"}, {"maxAttempts", 4294967297ULL}}}}, "restartPolicy.maxAttempts"},
      {{{"restartPolicy", {{"policy", "OnFailure"}, {"backoffSeconds", 4294967306ULL}}}},
       "restartPolicy.backoffSeconds"},
      {{{"memoryMb", 4294967302ULL}}, "memoryMb"},
      {{{"memoryMb", 18446744073709551615ULL}}, "memoryMb"},
      {{{"timeoutSeconds", 18446744073709551615ULL}}, "timeoutSeconds"},
      {{{"timeoutSeconds", 4294967297ULL}}, "timeoutSeconds"},
      {{{"network", "bridge"}, {"completion", {{"mode", "jobUrl"}, {"port", 4294967376ULL}}}}, "completion.port"},
      {{{"priority", 4294967296ULL}}, "priority"},
      {{{"priority", 18446744073709551615ULL}}, "priority"},
      {{{"cpu", 1e300}}, "cpu"},
      {{{"network", "bridge"},
        {"sidecars", {{{"name", "side"}, {"image", "127.0.0.1:5000/acme/side:1"}, {"ports", {65616}}}}}},
       "sidecars[0].ports[0]"},
  };
  for (const Case& c : cases) {
    Json spec = base;
    spec.update(c.patch);
    HttpResult r = Call(acme_, "POST", "/api/v1/jobs", spec.dump());
    EXPECT_EQ(r.status, 400) << spec.dump() << ": " << r.body;
    EXPECT_EQ(ErrorField(r.body), c.field) << spec.dump() << ": " << r.body;
  }
  EXPECT_EQ(BodyOf(Call(acme_, "GET", "/api/v1/jobs").body)["jobs"].size(), 0u) << "no job was stored";

  HttpResult before = Call(admin_, "GET", "/api/v1/admin/tenants/acme/quota");
  ASSERT_EQ(before.status, 200);
  for (const auto& [field, value] : std::vector<std::pair<std::string, Json>>{
           {"memoryMb", 18446744073709551615ULL}, {"jobs", 4294967297ULL}, {"cpu", -1}, {"weight", "2"}}) {
    HttpResult r = Call(admin_, "PUT", "/api/v1/admin/tenants/acme/quota", Json{{field, value}}.dump());
    EXPECT_EQ(r.status, 400) << field << ": " << r.body;
    EXPECT_EQ(ErrorField(r.body), field) << r.body;
  }
  EXPECT_EQ(Call(admin_, "GET", "/api/v1/admin/tenants/acme/quota").body, before.body) << "the quota is unchanged";

  for (const auto& [target, field] : std::vector<std::pair<std::string, std::string>>{
           {kBase + "/instances?top=4294967297", "top"},
           {kBase + "/instances?top=18446744073709551617", "top"},
           {kBase + "/orchestrators/HelloCities?timeout=4294967296", "timeout"},
           {kBase + "/entities/Counter?top=-1", "top"}}) {
    HttpResult r = Call(admin_, target.find("orchestrators") != std::string::npos ? "POST" : "GET", target);
    EXPECT_EQ(r.status, 400) << target << ": " << r.body;
    EXPECT_EQ(ErrorField(r.body), field) << target << ": " << r.body;
  }
  HttpResult page = Call(acme_, "GET", "/api/v1/jobs?pageSize=4294967297");
  EXPECT_EQ(page.status, 400);
  EXPECT_EQ(ErrorField(page.body), "pageSize");
  ExpectServing("out-of-range integers");
}

TEST_F(InputLimitsTest, BodiesOfTheWrongShapeAre400NamingTheField) {
  for (const std::string& target :
       {std::string("/api/v1/admin/tenants"), std::string("/api/v1/admin/tenants/acme/keys"),
        std::string("/api/v1/admin/keys"), std::string("/api/v1/admin/tenants/acme/quota"),
        std::string("/api/v1/admin/tenants/acme/settings"), std::string("/api/v1/jobs")}) {
    const std::string method = target.ends_with("quota") ? "PUT" : target.ends_with("settings") ? "PATCH" : "POST";
    const std::string& key = target == "/api/v1/jobs" ? acme_ : admin_;
    for (const char* body : {"[\"name\"]", "\"name\"", "42", "true"}) {
      HttpResult r = Call(key, method, target, body);
      EXPECT_EQ(r.status, 400) << target << " " << body << ": " << r.body;
      EXPECT_EQ(ErrorField(r.body), "body") << target << " " << body << ": " << r.body;
    }
  }
  HttpResult name = Call(admin_, "POST", "/api/v1/admin/tenants/acme/keys", R"({"name": 7})");
  EXPECT_EQ(name.status, 400);
  EXPECT_EQ(ErrorField(name.body), "name");
  HttpResult display = Call(admin_, "POST", "/api/v1/admin/tenants", R"({"id":"globex","displayName":[]})");
  EXPECT_EQ(display.status, 400);
  EXPECT_EQ(ErrorField(display.body), "displayName");
  HttpResult clean = Call(admin_, "POST", kBase + "/entities/clean", R"({"removeEmptyEntities":"yes"})");
  EXPECT_EQ(clean.status, 400);
  EXPECT_EQ(ErrorField(clean.body), "removeEmptyEntities");
  HttpResult policy = Call(acme_, "POST", "/api/v1/jobs",
                           R"({"name":"j","image":"127.0.0.1:5000/acme/j:1","restartPolicy":{"policy":1}})");
  EXPECT_EQ(policy.status, 400);
  EXPECT_EQ(ErrorField(policy.body), "restartPolicy.policy");
  EXPECT_EQ(BodyOf(Call(admin_, "GET", "/api/v1/admin/tenants/acme/keys").body).size(), 1u);
  EXPECT_EQ(BodyOf(Call(admin_, "GET", "/api/v1/admin/tenants").body).size(), 1u);
  ExpectServing("bodies of the wrong shape");
}

TEST_F(InputLimitsTest, MalformedHttpGetsAJsonErrorNotAClosedConnection) {
  struct Case {
    std::string name, bytes;
    int status;
    std::string field;
  };
  const std::string host = "Host: 127.0.0.1\r\n";
  const std::vector<Case> cases = {
      {"huge request line", "GET /" + std::string(100000, 'a') + " HTTP/1.1\r\n" + host + "\r\n", 431, "header"},
      {"huge header", "GET /healthz HTTP/1.1\r\n" + host + "X-Junk: " + std::string(100000, 'j') + "\r\n\r\n", 431,
       "header"},
      {"body over the limit", "POST /api/v1/jobs HTTP/1.1\r\n" + host + "Content-Length: 2000000\r\n\r\n" +
                                  std::string(2000000, 'x'),
       413, "body"},
      {"duplicate Content-Length", "POST /api/v1/jobs HTTP/1.1\r\n" + host +
                                       "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
       400, "Content-Length"},
      {"conflicting Content-Length", "POST /api/v1/jobs HTTP/1.1\r\n" + host +
                                         "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
       400, "Content-Length"},
      {"negative Content-Length", "POST /api/v1/jobs HTTP/1.1\r\n" + host + "Content-Length: -2\r\n\r\n{}", 400,
       "Content-Length"},
      {"non-numeric Content-Length", "POST /api/v1/jobs HTTP/1.1\r\n" + host + "Content-Length: two\r\n\r\n{}", 400,
       "Content-Length"},
      {"Content-Length with Transfer-Encoding", "POST /api/v1/jobs HTTP/1.1\r\n" + host +
                                                    "Content-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
       400, "Content-Length"},
      {"Transfer-Encoding gzip", "POST /api/v1/jobs HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip\r\n\r\n", 501,
       "Transfer-Encoding"},
      {"Transfer-Encoding gzip, chunked", "POST /api/v1/jobs HTTP/1.1\r\n" + host +
                                              "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
       501, "Transfer-Encoding"},
      {"bare LF", "GET /healthz HTTP/1.1\nHost: 127.0.0.1\n\n", 400, ""},
      {"bare LF in a header", "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\nX: y\r\n\r\n", 400, ""},
      {"garbage", std::string("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03garbage\r\n\r\n", 22), 400, ""},
      {"bad version", "GET /healthz HTTP/7.1\r\n" + host + "\r\n", 400, ""},
  };
  for (const Case& c : cases) {
    RawAnswer a = RawExchange(server_->port(), c.bytes);
    EXPECT_EQ(a.status, c.status) << c.name << ": " << a.raw.substr(0, 300);
    Json body = BodyOf(a.body);
    ASSERT_TRUE(body.is_object() && body.contains("error")) << c.name << ": " << a.raw.substr(0, 300);
    EXPECT_EQ(body["error"].value("field", "?"), c.field) << c.name;
    EXPECT_NE(a.raw.find("Content-Type: application/json"), std::string::npos) << c.name;
    ExpectServing(c.name);
  }
  // A well-formed chunked request still works.
  RawAnswer chunked = RawExchange(server_->port(), "GET /healthz HTTP/1.1\r\n" + host +
                                                       "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n");
  EXPECT_EQ(chunked.status, 200) << chunked.raw;
}

TEST_F(InputLimitsTest, StatusUrisIgnoreAHostileHostHeader) {
  const std::string self = "http://127.0.0.1:" + std::to_string(server_->port());
  HttpResult r = Call(admin_, "POST", kBase + "/orchestrators/AwaitApproval/a%20b%2Fc%3F", "1",
                      {{"Host", "evil.example"}, {"X-Forwarded-Host", "evil.example"}});
  ASSERT_EQ(r.status, 202) << r.body;
  Json body = BodyOf(r.body);
  EXPECT_EQ(body["id"], "a b/c?");
  const std::string status_uri = self + kBase + "/instances/a%20b%2Fc%3F";
  EXPECT_EQ(body["statusQueryGetUri"], status_uri);
  EXPECT_EQ(r.headers["location"], status_uri);
  for (const auto& [name, uri] : body.items()) {
    if (name == "id") continue;
    EXPECT_EQ(uri.get<std::string>().rfind(status_uri, 0), 0u) << name << ": " << uri;
    EXPECT_EQ(uri.get<std::string>().find("evil"), std::string::npos) << name;
  }
  HttpResult status = Call(admin_, "GET", kBase + "/instances/a%20b%2Fc%3F", "", {{"Host", "evil.example"}});
  EXPECT_EQ(status.status, 202);
  EXPECT_EQ(status.headers["location"], status_uri);
  // The URL the client follows is the one that works.
  EXPECT_EQ(Call(admin_, "GET", status_uri.substr(self.size())).status, 202);
}

TEST(InputLimitsPublicUrl, StatusUrisUseTheConfiguredPublicUrl) {
  testing::TempDir dir;
  testing::ServerProcess server(BATON_BINARY, dir.File("data"), {"--public-url", "https://baton.example.com/api"});
  HttpResult r = HttpCall(server.port(), "POST", kBase + "/orchestrators/HelloCities/x1", "[\"Oslo\"]",
                          {{"Authorization", "Bearer " + server.admin_key()}, {"Host", "evil.example"}});
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(BodyOf(r.body)["statusQueryGetUri"], "https://baton.example.com/api" + kBase + "/instances/x1");
  // A public URL that is not one stops the server at start, with a message.
  testing::TempDir other;
  EXPECT_THROW(testing::ServerProcess(BATON_BINARY, other.File("data"), {"--public-url", "http://x/?q"}),
               std::runtime_error);
}

// ---- gRPC: the same limits on the sidecar of the same server ----

class InputLimitsGrpcTest : public InputLimitsTest {
 protected:
  void SetUp() override {
    InputLimitsTest::SetUp();
    ASSERT_GT(server_->grpc_port(), 0);
    stub_ = ::TaskHubSidecarService::NewStub(::grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(server_->grpc_port()), ::grpc::InsecureChannelCredentials()));
  }
  std::unique_ptr<::grpc::ClientContext> Ctx() {
    auto ctx = std::make_unique<::grpc::ClientContext>();
    ctx->AddMetadata("authorization", "Bearer " + admin_);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return ctx;
  }
  ::grpc::Status Start(const std::string& id, const std::string& input) {
    ::CreateInstanceRequest req;
    req.set_name("HelloCities");
    req.set_instanceid(id);
    req.mutable_input()->set_value(input);
    ::CreateInstanceResponse resp;
    return stub_->StartInstance(Ctx().get(), req, &resp);
  }
  void ExpectGrpcServing(const std::string& after) {
    static int n = 0;
    ::grpc::Status s = Start("ok-" + std::to_string(++n), "[\"Oslo\"]");
    ASSERT_TRUE(s.ok()) << "after " << after << ": " << s.error_message();
    ExpectServing(after);
  }
  std::unique_ptr<::TaskHubSidecarService::Stub> stub_;
};

TEST_F(InputLimitsGrpcTest, DeepPayloadsAreInvalidArgumentNamingTheField) {
  const std::string deep = Deep();
  ::grpc::Status start = Start("deep", deep);
  EXPECT_EQ(start.error_code(), ::grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(start.error_message().rfind("input ", 0), 0u) << start.error_message();
  EXPECT_NE(start.error_message().find("nested deeper than 128 levels"), std::string::npos);
  ExpectGrpcServing("StartInstance");

  ASSERT_TRUE(Start("target", "[\"Oslo\"]").ok());
  ::RaiseEventRequest raise;
  raise.set_instanceid("target");
  raise.set_name("approval");
  raise.mutable_input()->set_value(deep);
  ::RaiseEventResponse raised;
  ::grpc::Status r = stub_->RaiseEvent(Ctx().get(), raise, &raised);
  EXPECT_EQ(r.error_code(), ::grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(r.error_message().rfind("input ", 0), 0u) << r.error_message();
  ExpectGrpcServing("RaiseEvent");

  ::TerminateRequest terminate;
  terminate.set_instanceid("target");
  terminate.mutable_output()->set_value(deep);
  ::TerminateResponse terminated;
  ::grpc::Status t = stub_->TerminateInstance(Ctx().get(), terminate, &terminated);
  EXPECT_EQ(t.error_code(), ::grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(t.error_message().rfind("output ", 0), 0u) << t.error_message();
  ExpectGrpcServing("TerminateInstance");

  ::SignalEntityRequest signal;
  signal.set_instanceid("@counter@deep");
  signal.set_name("add");
  signal.mutable_input()->set_value(deep);
  ::SignalEntityResponse signaled;
  ::grpc::Status e = stub_->SignalEntity(Ctx().get(), signal, &signaled);
  EXPECT_EQ(e.error_code(), ::grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(e.error_message().rfind("input ", 0), 0u) << e.error_message();
  ExpectGrpcServing("SignalEntity");

  // Nothing was stored.
  ::GetInstanceRequest get;
  get.set_instanceid("deep");
  ::GetInstanceResponse got;
  ASSERT_TRUE(stub_->GetInstance(Ctx().get(), get, &got).ok());
  EXPECT_FALSE(got.exists());
  ::GetEntityRequest get_entity;
  get_entity.set_instanceid("@counter@deep");
  ::GetEntityResponse entity;
  ASSERT_TRUE(stub_->GetEntity(Ctx().get(), get_entity, &entity).ok());
  EXPECT_FALSE(entity.exists());
  // Not JSON at all is refused the same way; a JSON string is fine.
  EXPECT_EQ(Start("text", "not json").error_code(), ::grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(Start("string", "\"Oslo\"").ok());
}

TEST_F(InputLimitsGrpcTest, StringsThatAreNotUtf8AreRefused) {
  // proto3 strings are UTF-8: the server refuses to parse the message at all.
  ::grpc::Status id = Start("bad-\xff\xfe", "1");
  EXPECT_FALSE(id.ok());
  ::grpc::Status input = Start("bad-input", "\"\xff\xfe\"");
  EXPECT_FALSE(input.ok());
  ExpectGrpcServing("strings that are not UTF-8");
  EXPECT_EQ(Call(admin_, "GET", kBase + "/instances/bad-input").status, 404);
}

TEST_F(InputLimitsGrpcTest, MessagesLargerThanTheHttpBodyLimitAreRefused) {
  // --max-body-bytes is 1 MiB by default, and so is the gRPC receive limit.
  const std::string big = "\"" + std::string(1100 * 1024, 'x') + "\"";
  ::grpc::Status s = Start("big", big);
  EXPECT_EQ(s.error_code(), ::grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_TRUE(Start("fits", "\"" + std::string(900 * 1024, 'x') + "\"").ok());
  ExpectGrpcServing("a message over the limit");
  // HTTP draws the line at the same size.
  EXPECT_EQ(Call(admin_, "POST", kBase + "/orchestrators/HelloCities", big).status, 413);
}

TEST(InputLimitsGrpcFlag, TheGrpcLimitFollowsItsFlag) {
  testing::TempDir dir;
  testing::ServerProcess server(BATON_BINARY, dir.File("data"), {"--grpc-max-message-bytes", "4194304"});
  auto stub = ::TaskHubSidecarService::NewStub(
      ::grpc::CreateChannel("127.0.0.1:" + std::to_string(server.grpc_port()), ::grpc::InsecureChannelCredentials()));
  ::grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + server.admin_key());
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  ::CreateInstanceRequest req;
  req.set_name("HelloCities");
  req.set_instanceid("big");
  req.mutable_input()->set_value("[\"" + std::string(2 << 20, 'x') + "\"]");
  ::CreateInstanceResponse resp;
  ::grpc::Status s = stub->StartInstance(&ctx, req, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
}

// Each open WaitForInstance… call holds a server thread: a task hub may have
// --grpc-max-waits-per-hub of them (16 by default), one more is refused with
// RESOURCE_EXHAUSTED and changes nothing, and another hub keeps its own.
TEST(InputLimitsGrpcFlag, WaitsPerHubFollowTheirFlag) {
  testing::TempDir dir;
  testing::ServerProcess server(BATON_BINARY, dir.File("data"), {"--grpc-max-waits-per-hub", "2"});
  auto stub = ::TaskHubSidecarService::NewStub(
      ::grpc::CreateChannel("127.0.0.1:" + std::to_string(server.grpc_port()), ::grpc::InsecureChannelCredentials()));
  auto as = [&](const std::string& hub, std::chrono::seconds deadline) {
    auto ctx = std::make_unique<::grpc::ClientContext>();
    ctx->AddMetadata("authorization", "Bearer " + server.admin_key());
    ctx->AddMetadata("taskhub", hub);
    ctx->set_deadline(std::chrono::system_clock::now() + deadline);
    return ctx;
  };
  // Instances no worker runs: a wait for their completion lasts until its
  // deadline.
  for (const char* hub : {"acme", "beta"}) {
    ::CreateInstanceRequest req;
    req.set_name("NobodyRunsThis");
    req.set_instanceid("w");
    ::CreateInstanceResponse resp;
    ASSERT_TRUE(stub->StartInstance(as(hub, std::chrono::seconds(30)).get(), req, &resp).ok());
  }
  ::GetInstanceRequest wait;
  wait.set_instanceid("w");
  // Two waits of hub acme, each asked again while refused, held 10 s.
  std::atomic<int> served{0};
  std::vector<std::thread> waiters;
  for (int i = 0; i < 2; ++i) {
    waiters.emplace_back([&] {
      for (int attempt = 0; attempt < 1000; ++attempt) {
        ::GetInstanceResponse resp;
        auto code = stub->WaitForInstanceCompletion(as("acme", std::chrono::seconds(10)).get(), wait, &resp).error_code();
        if (code == ::grpc::StatusCode::RESOURCE_EXHAUSTED) {
          std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a probe holds the slot for 1 s
          continue;
        }
        if (code == ::grpc::StatusCode::DEADLINE_EXCEEDED) {
          ++served;
        } else {
          ADD_FAILURE() << "a wait ended with code " << static_cast<int>(code);
        }
        return;
      }
    });
  }
  // Once both are open, one more of the hub is refused at once (a probe let
  // in before that holds a slot for its 1 s).
  ::grpc::StatusCode probe = ::grpc::StatusCode::OK;
  for (int i = 0; i < 600 && probe != ::grpc::StatusCode::RESOURCE_EXHAUSTED; ++i) {
    ::GetInstanceResponse resp;
    probe = stub->WaitForInstanceCompletion(as("acme", std::chrono::seconds(1)).get(), wait, &resp).error_code();
    ASSERT_TRUE(probe == ::grpc::StatusCode::RESOURCE_EXHAUSTED || probe == ::grpc::StatusCode::DEADLINE_EXCEEDED)
        << static_cast<int>(probe);
  }
  EXPECT_EQ(probe, ::grpc::StatusCode::RESOURCE_EXHAUSTED);
  // Another hub is served meanwhile: its wait runs to its deadline.
  ::GetInstanceResponse other;
  EXPECT_EQ(stub->WaitForInstanceCompletion(as("beta", std::chrono::seconds(1)).get(), wait, &other).error_code(),
            ::grpc::StatusCode::DEADLINE_EXCEEDED);
  for (auto& t : waiters) t.join();
  EXPECT_EQ(served.load(), 2);
  // The refused calls changed nothing: the instance still waits for a worker.
  ::GetInstanceRequest get;
  get.set_instanceid("w");
  ::GetInstanceResponse state;
  ASSERT_TRUE(stub->GetInstance(as("acme", std::chrono::seconds(30)).get(), get, &state).ok());
  EXPECT_EQ(state.orchestrationstate().orchestrationstatus(), ::ORCHESTRATION_STATUS_PENDING);
}

}  // namespace
}  // namespace baton
