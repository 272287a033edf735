// The HTTP API against a real `baton serve` on a random loopback port:
// every endpoint's success and error codes, tenant isolation, restart safety.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sys/socket.h>

#include <boost/asio/ip/tcp.hpp>
#include <set>
#include <thread>

#include "baton/json.h"
#include "testing/http_client.h"
#include "testing/server_process.h"
#include "testing/test_util.h"

namespace baton {
namespace {

using testing::HttpCall;
using testing::HttpResult;

const std::string kBase = "/runtime/webhooks/durabletask";

class HttpApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<testing::ServerProcess>(BATON_BINARY, dir_.File("data"));
    admin_ = server_->admin_key();
    ASSERT_FALSE(admin_.empty());
    acme_ = CreateTenantWithKey("acme");
    globex_ = CreateTenantWithKey("globex");
  }

  HttpResult Call(const std::string& key, const std::string& method, const std::string& target,
                  const std::string& body = "", std::map<std::string, std::string> headers = {}) {
    if (!key.empty()) headers["Authorization"] = "Bearer " + key;
    if (!body.empty() && !headers.count("Content-Type")) headers["Content-Type"] = "application/json";
    return HttpCall(server_->port(), method, target, body, headers);
  }

  std::string CreateTenantWithKey(const std::string& id) {
    HttpResult t = Call(admin_, "POST", "/api/v1/admin/tenants", Json{{"id", id}}.dump());
    EXPECT_EQ(t.status, 201) << t.body;
    HttpResult k = Call(admin_, "POST", "/api/v1/admin/tenants/" + id + "/keys", R"({"name":"test"})");
    EXPECT_EQ(k.status, 201) << k.body;
    return Json::parse(k.body)["key"].get<std::string>();
  }

  // Starts `name` for `key` and returns the instance id.
  std::string Start(const std::string& key, const std::string& name, const std::string& id = "",
                    const std::string& input = "") {
    HttpResult r = Call(key, "POST", kBase + "/orchestrators/" + name + (id.empty() ? "" : "/" + id), input);
    EXPECT_EQ(r.status, 202) << r.body;
    return Json::parse(r.body)["id"].get<std::string>();
  }

  Json Status(const std::string& key, const std::string& id) {
    HttpResult r = Call(key, "GET", kBase + "/instances/" + id);
    return r.status == 0 || r.body.empty() ? Json() : Json::parse(r.body);
  }

  // Waits until the instance reaches `status`.
  bool AwaitStatus(const std::string& key, const std::string& id, const std::string& status) {
    return testing::Eventually([&] { return Status(key, id).value("runtimeStatus", "") == status; });
  }

  static std::string ErrorField(const HttpResult& r) {
    Json j = Json::parse(r.body, nullptr, false);
    return j.is_object() && j.contains("error") ? j["error"].value("field", "?") : "?";
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::ServerProcess> server_;
  std::string admin_, acme_, globex_;
};

// The dashboard's files are served without a key, with a strict content
// security policy; its script is valid JavaScript (checked by Node, which
// scripts/install-deps installs for the SDK tests) and reads the job and
// instance APIs.
TEST_F(HttpApiTest, DashboardIsServed) {
  HttpResult root = HttpCall(server_->port(), "GET", "/");
  EXPECT_EQ(root.status, 302);
  EXPECT_EQ(root.headers["location"], "/dashboard");
  HttpResult page = HttpCall(server_->port(), "GET", "/dashboard");
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(page.headers["content-type"], "text/html; charset=utf-8");
  EXPECT_NE(page.headers["content-security-policy"].find("script-src 'self'"), std::string::npos);
  EXPECT_NE(page.body.find("<script src=\"/dashboard.js\""), std::string::npos);
  HttpResult css = HttpCall(server_->port(), "GET", "/dashboard.css");
  EXPECT_EQ(css.status, 200);
  EXPECT_EQ(css.headers["content-type"], "text/css; charset=utf-8");
  HttpResult js = HttpCall(server_->port(), "GET", "/dashboard.js");
  ASSERT_EQ(js.status, 200);
  EXPECT_EQ(js.headers["content-type"], "text/javascript; charset=utf-8");
  EXPECT_NE(js.body.find("/api/v1/jobs"), std::string::npos);
  EXPECT_NE(js.body.find("/runtime/webhooks/durabletask"), std::string::npos);
  const std::string file = dir_.File("dashboard.js");
  {
    std::ofstream out(file);
    out << js.body;
  }
  EXPECT_EQ(std::system(("node --check " + file + " 2>&1").c_str()), 0) << "dashboard.js does not parse";
  EXPECT_EQ(HttpCall(server_->port(), "GET", "/favicon.ico").status, 204);
}

TEST_F(HttpApiTest, HealthAndAuthentication) {
  EXPECT_EQ(Call("", "GET", "/healthz").status, 200);
  HttpResult none = Call("", "GET", kBase + "/instances");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(ErrorField(none), "Authorization");
  EXPECT_EQ(Call("bk_000000000000_" + std::string(48, '0'), "GET", kBase + "/instances").status, 401);
  EXPECT_EQ(Call("not-a-key", "GET", kBase + "/instances").status, 401);
  // A tenant key is no admin key.
  HttpResult forbidden = Call(acme_, "GET", "/api/v1/admin/tenants");
  EXPECT_EQ(forbidden.status, 403);
  EXPECT_EQ(Call(acme_, "GET", "/no/such/route").status, 404);
  EXPECT_EQ(Call(acme_, "PUT", kBase + "/instances").status, 405);
}

TEST_F(HttpApiTest, AdminManagesTenantsAndKeys) {
  HttpResult dup = Call(admin_, "POST", "/api/v1/admin/tenants", R"({"id":"acme"})");
  EXPECT_EQ(dup.status, 409);
  HttpResult bad = Call(admin_, "POST", "/api/v1/admin/tenants", R"({"id":"Not Valid!"})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(ErrorField(bad), "id");
  EXPECT_EQ(Call(admin_, "POST", "/api/v1/admin/tenants", "{oops").status, 400);

  HttpResult list = Call(admin_, "GET", "/api/v1/admin/tenants");
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(Json::parse(list.body).size(), 2u);

  HttpResult keys = Call(admin_, "GET", "/api/v1/admin/tenants/acme/keys");
  ASSERT_EQ(keys.status, 200);
  Json key_list = Json::parse(keys.body);
  ASSERT_EQ(key_list.size(), 1u);
  EXPECT_FALSE(key_list[0].contains("key"));  // secrets are never shown again
  EXPECT_EQ(Call(admin_, "GET", "/api/v1/admin/tenants/nobody/keys").status, 404);

  // A second key; revoking it stops it, and only it.
  HttpResult second = Call(admin_, "POST", "/api/v1/admin/tenants/acme/keys", R"({"name":"ci"})");
  ASSERT_EQ(second.status, 201);
  std::string key2 = Json::parse(second.body)["key"];
  std::string key2_id = Json::parse(second.body)["keyId"];
  EXPECT_EQ(Call(key2, "GET", kBase + "/instances").status, 200);
  EXPECT_EQ(Call(admin_, "DELETE", "/api/v1/admin/keys/" + key2_id).status, 200);
  EXPECT_EQ(Call(key2, "GET", kBase + "/instances").status, 401);
  EXPECT_EQ(Call(acme_, "GET", kBase + "/instances").status, 200);
  EXPECT_EQ(Call(admin_, "DELETE", "/api/v1/admin/keys/ffffffffffff").status, 404);

  // Another admin key works as admin.
  HttpResult admin2 = Call(admin_, "POST", "/api/v1/admin/keys", R"({"name":"ops"})");
  ASSERT_EQ(admin2.status, 201);
  EXPECT_EQ(Call(Json::parse(admin2.body)["key"], "GET", "/api/v1/admin/tenants").status, 200);

  // Disabling a tenant disables its keys and refuses new ones.
  EXPECT_EQ(Call(admin_, "POST", "/api/v1/admin/tenants/globex/disable").status, 200);
  EXPECT_EQ(Call(globex_, "GET", kBase + "/instances").status, 401);
  EXPECT_EQ(Call(admin_, "POST", "/api/v1/admin/tenants/globex/keys", "{}").status, 412);
  EXPECT_EQ(Call(admin_, "POST", "/api/v1/admin/tenants/nobody/disable").status, 404);
}

TEST_F(HttpApiTest, StartAndStatus) {
  HttpResult r = Call(acme_, "POST", kBase + "/orchestrators/HelloCities/order-1", R"(["Oslo","Rome"])");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.headers["retry-after"], "10");
  Json body = Json::parse(r.body);
  EXPECT_EQ(body["id"], "order-1");
  EXPECT_EQ(r.headers["location"], body["statusQueryGetUri"]);
  for (const char* uri : {"statusQueryGetUri", "sendEventPostUri", "terminatePostUri", "purgeHistoryDeleteUri",
                          "restartPostUri", "suspendPostUri", "resumePostUri"}) {
    EXPECT_TRUE(body[uri].is_string()) << uri;
  }
  ASSERT_TRUE(AwaitStatus(acme_, "order-1", "Completed"));
  HttpResult done = Call(acme_, "GET", kBase + "/instances/order-1?showHistory=true&showHistoryOutput=true");
  ASSERT_EQ(done.status, 200);
  Json s = Json::parse(done.body);
  EXPECT_EQ(s["name"], "HelloCities");
  EXPECT_EQ(s["input"], Json({"Oslo", "Rome"}));
  EXPECT_EQ(s["output"], Json({"Hello, Oslo!", "Hello, Rome!"}));
  EXPECT_EQ(s["createdTime"].get<std::string>().size(), 20u);  // yyyy-MM-ddTHH:mm:ssZ
  ASSERT_TRUE(s["historyEvents"].is_array());
  EXPECT_GE(s["historyEvents"].size(), 8u);
  EXPECT_EQ(Json::parse(Call(acme_, "GET", kBase + "/instances/order-1?showInput=false").body)["input"], nullptr);

  // Duplicate id, unknown orchestrator, malformed JSON, bad parameters.
  EXPECT_EQ(Call(acme_, "POST", kBase + "/orchestrators/HelloCities/order-1", "[]").status, 409);
  HttpResult unknown = Call(acme_, "POST", kBase + "/orchestrators/NoSuchThing");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(ErrorField(unknown), "functionName");
  HttpResult bad_json = Call(acme_, "POST", kBase + "/orchestrators/HelloCities", "[\"x\"");
  EXPECT_EQ(bad_json.status, 400);
  EXPECT_EQ(ErrorField(bad_json), "body");
  EXPECT_EQ(ErrorField(Call(acme_, "POST", kBase + "/orchestrators/Hello5?timeout=abc")), "timeout");
  EXPECT_EQ(ErrorField(Call(acme_, "POST", kBase + "/orchestrators/Hello5/a::b")), "instanceId");
  EXPECT_EQ(ErrorField(Call(acme_, "GET", kBase + "/instances/order-1?showHistory=maybe")), "showHistory");
  EXPECT_EQ(Call(acme_, "GET", kBase + "/instances/missing").status, 404);
  // Nothing was created by the rejected requests.
  EXPECT_EQ(Json::parse(Call(acme_, "GET", kBase + "/instances").body).size(), 1u);

  // Start and wait: 200 with the output itself.
  HttpResult waited = Call(acme_, "POST", kBase + "/orchestrators/Hello5?timeout=60&pollingInterval=1");
  ASSERT_EQ(waited.status, 200) << waited.body;
  EXPECT_EQ(Json::parse(waited.body).size(), 5u);

  // Running: 202 with Location and Retry-After.
  Start(acme_, "AwaitApproval", "waiting-1");
  ASSERT_TRUE(AwaitStatus(acme_, "waiting-1", "Running"));
  HttpResult running = Call(acme_, "GET", kBase + "/instances/waiting-1");
  EXPECT_EQ(running.status, 202);
  EXPECT_EQ(running.headers["retry-after"], "5");
  EXPECT_FALSE(running.headers["location"].empty());
  EXPECT_EQ(Json::parse(running.body)["customStatus"], "waiting for the 'approve' event");
}

TEST_F(HttpApiTest, FailedInstanceAndRewind) {
  Start(acme_, "FailWith", "boom", R"("it broke")");
  ASSERT_TRUE(AwaitStatus(acme_, "boom", "Failed"));
  HttpResult s = Call(acme_, "GET", kBase + "/instances/boom");
  EXPECT_EQ(s.status, 200);
  EXPECT_EQ(Json::parse(s.body)["failureDetails"]["errorMessage"], "it broke");
  EXPECT_EQ(Call(acme_, "GET", kBase + "/instances/boom?returnInternalServerErrorOnFailure=true").status, 500);
  // The orchestrator fails by itself, so the rewound run fails again; the
  // history records the rewind (tests/engine covers what a rewind re-runs).
  EXPECT_EQ(Call(acme_, "POST", kBase + "/instances/boom/rewind?reason=retry").status, 202);
  ASSERT_TRUE(testing::Eventually([&] {
    HttpResult h = Call(acme_, "GET", kBase + "/instances/boom?showHistory=true");
    return h.status == 200 && h.body.find("ExecutionRewound") != std::string::npos &&
           Json::parse(h.body)["runtimeStatus"] == "Failed";
  }));
  Start(acme_, "AwaitApproval", "alive");
  EXPECT_EQ(Call(acme_, "POST", kBase + "/instances/alive/rewind").status, 412);
  EXPECT_EQ(Call(acme_, "POST", kBase + "/instances/ghost/rewind").status, 404);
}

TEST_F(HttpApiTest, EventsAndControl) {
  Start(acme_, "AwaitApproval", "ev");
  ASSERT_TRUE(AwaitStatus(acme_, "ev", "Running"));
  HttpResult wrong_type = Call(acme_, "POST", kBase + "/instances/ev/raiseEvent/approve", "true",
                               {{"Content-Type", "text/plain"}});
  EXPECT_EQ(wrong_type.status, 400);
  EXPECT_EQ(ErrorField(wrong_type), "Content-Type");
  EXPECT_EQ(Call(acme_, "POST", kBase + "/instances/ev/raiseEvent/approve", "{bad").status, 400);
  EXPECT_EQ(Call(acme_, "POST", kBase + "/instances/ghost/raiseEvent/approve", "true").status, 404);

  EXPECT_EQ(Call(acme_, "POST", kBase + "/instances/ev/suspend?reason=lunch").status, 202);
  ASSERT_TRUE(AwaitStatus(acme_, "ev", "Suspended"));
  EXPECT_EQ(Call(acme_, "POST", kBase + "/instances/ev/raiseEvent/approve", R"({"by":"ann"})").status, 202);
  EXPECT_EQ(Call(acme_, "POST", kBase + "/instances/ev/resume").status, 202);
  ASSERT_TRUE(AwaitStatus(acme_, "ev", "Completed"));
  EXPECT_EQ(Status(acme_, "ev")["output"]["approval"], Json({{"by", "ann"}}));
  // Finished: 410 Gone.
  EXPECT_EQ(Call(acme_, "POST", kBase + "/instances/ev/raiseEvent/approve", "true").status, 410);
  EXPECT_EQ(Call(acme_, "POST", kBase + "/instances/ev/terminate").status, 410);
  EXPECT_EQ(Call(acme_, "POST", kBase + "/instances/ev/suspend").status, 410);
  EXPECT_EQ(Call(acme_, "POST", kBase + "/instances/ev/resume").status, 410);
  EXPECT_EQ(Call(acme_, "POST", kBase + "/instances/ghost/terminate").status, 404);

  Start(acme_, "AwaitApproval", "term");
  EXPECT_EQ(Call(acme_, "POST", kBase + "/instances/term/terminate?reason=enough").status, 202);
  ASSERT_TRUE(AwaitStatus(acme_, "term", "Terminated"));
  EXPECT_EQ(Status(acme_, "term")["output"], "enough");
}

TEST_F(HttpApiTest, RestartAndPurge) {
  Start(acme_, "HelloCities", "r1", R"(["Kyiv"])");
  ASSERT_TRUE(AwaitStatus(acme_, "r1", "Completed"));
  HttpResult fresh = Call(acme_, "POST", kBase + "/instances/r1/restart");
  ASSERT_EQ(fresh.status, 202);
  std::string new_id = Json::parse(fresh.body)["id"];
  EXPECT_NE(new_id, "r1");
  ASSERT_TRUE(AwaitStatus(acme_, new_id, "Completed"));
  EXPECT_EQ(Status(acme_, new_id)["output"], Json({"Hello, Kyiv!"}));
  HttpResult same = Call(acme_, "POST", kBase + "/instances/r1/restart?restartWithNewInstanceId=false");
  ASSERT_EQ(same.status, 202);
  ASSERT_TRUE(AwaitStatus(acme_, "r1", "Completed"));
  Start(acme_, "AwaitApproval", "busy");
  EXPECT_EQ(Call(acme_, "POST", kBase + "/instances/busy/restart?restartWithNewInstanceId=false").status, 409);
  EXPECT_EQ(Call(acme_, "POST", kBase + "/instances/ghost/restart").status, 404);

  EXPECT_EQ(Call(acme_, "DELETE", kBase + "/instances/busy").status, 412);
  HttpResult purged = Call(acme_, "DELETE", kBase + "/instances/r1");
  ASSERT_EQ(purged.status, 200);
  EXPECT_EQ(Json::parse(purged.body)["instancesDeleted"], 1);
  EXPECT_EQ(Call(acme_, "DELETE", kBase + "/instances/r1").status, 404);

  HttpResult no_from = Call(acme_, "DELETE", kBase + "/instances");
  EXPECT_EQ(no_from.status, 400);
  EXPECT_EQ(ErrorField(no_from), "createdTimeFrom");
  EXPECT_EQ(ErrorField(Call(acme_, "DELETE", kBase + "/instances?createdTimeFrom=yesterday")), "createdTimeFrom");
  HttpResult by_filter = Call(acme_, "DELETE", kBase + "/instances?createdTimeFrom=2020-01-01T00:00:00Z");
  ASSERT_EQ(by_filter.status, 200) << by_filter.body;
  EXPECT_EQ(Json::parse(by_filter.body)["instancesDeleted"], 1);  // new_id; "busy" is running
  EXPECT_EQ(Call(acme_, "DELETE", kBase + "/instances?createdTimeFrom=2020-01-01T00:00:00Z").status, 404);
}

TEST_F(HttpApiTest, ListFiltersAndPages) {
  for (int i = 0; i < 5; ++i) Start(acme_, "HelloCities", "batch-" + std::to_string(i), R"(["A"])");
  Start(acme_, "AwaitApproval", "other");
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(AwaitStatus(acme_, "batch-" + std::to_string(i), "Completed"));
  ASSERT_TRUE(AwaitStatus(acme_, "other", "Running"));

  std::set<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    std::map<std::string, std::string> h;
    if (!token.empty()) h["x-ms-continuation-token"] = token;
    HttpResult page = Call(acme_, "GET", kBase + "/instances?instanceIdPrefix=batch-&top=2", "", h);
    ASSERT_EQ(page.status, 200) << page.body;
    for (const Json& s : Json::parse(page.body)) seen.insert(s["instanceId"]);
    token = page.headers["x-ms-continuation-token"];
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(pages, 3);

  HttpResult running = Call(acme_, "GET", kBase + "/instances?runtimeStatus=Running,Pending");
  ASSERT_EQ(running.status, 200);
  ASSERT_EQ(Json::parse(running.body).size(), 1u);
  EXPECT_EQ(Json::parse(running.body)[0]["instanceId"], "other");
  EXPECT_EQ(ErrorField(Call(acme_, "GET", kBase + "/instances?runtimeStatus=Sleeping")), "runtimeStatus");
  EXPECT_EQ(ErrorField(Call(acme_, "GET", kBase + "/instances?top=0")), "top");
  EXPECT_EQ(ErrorField(Call(acme_, "GET", kBase + "/instances?createdTimeTo=soon")), "createdTimeTo");
  // The admin sees every hub with qualified ids, or one hub with taskHub.
  HttpResult all = Call(admin_, "GET", kBase + "/instances?instanceIdPrefix=acme::batch-");
  EXPECT_EQ(Json::parse(all.body).size(), 5u);
  HttpResult hub = Call(admin_, "GET", kBase + "/instances?taskHub=acme&instanceIdPrefix=batch-");
  EXPECT_EQ(Json::parse(hub.body).size(), 5u);
}

// Lists are newest first by default, count per status, leave out entities,
// filter by name, refuse hostile filters, and never show the hub prefix.
TEST_F(HttpApiTest, ListsNewestFirstWithCountsAndNoEntities) {
  for (const char* id : {"n-a", "n-b", "n-c"}) {
    Start(acme_, "AwaitApproval", id);
    ASSERT_TRUE(AwaitStatus(acme_, id, "Running"));
  }
  Start(acme_, "FailWith", "n-f", R"("boom")");
  ASSERT_TRUE(AwaitStatus(acme_, "n-f", "Failed"));
  ASSERT_EQ(Call(acme_, "POST", kBase + "/entities/Counter/k?op=add", "1").status, 202);
  ASSERT_TRUE(testing::Eventually([&] { return Call(acme_, "GET", kBase + "/entities/Counter/k").status == 200; }));
  auto ids = [&](const std::string& query) {
    HttpResult r = Call(acme_, "GET", kBase + "/instances?" + query);
    EXPECT_EQ(r.status, 200) << r.body;
    std::vector<std::string> out;
    for (const Json& s : Json::parse(r.body)) out.push_back(s["instanceId"]);
    return out;
  };
  EXPECT_EQ(ids(""), (std::vector<std::string>{"n-f", "n-c", "n-b", "n-a"}));
  EXPECT_EQ(ids("sort=oldest"), (std::vector<std::string>{"n-a", "n-b", "n-c", "n-f"}));
  EXPECT_EQ(ids("sort=id&name=Await"), (std::vector<std::string>{"n-a", "n-b", "n-c"}));
  EXPECT_EQ(ids("showEntities=true&instanceIdPrefix=%40"), (std::vector<std::string>{"@counter@k"}));
  HttpResult counted = Call(acme_, "GET", kBase + "/instances?top=1&countByStatus=true&runtimeStatus=Failed");
  ASSERT_EQ(counted.status, 200);
  EXPECT_EQ(counted.headers["x-baton-status-counts"], "Running=3,Failed=1");
  EXPECT_EQ(Json::parse(counted.body).size(), 1u);
  // Pages of two, newest first, with the token.
  HttpResult first = Call(acme_, "GET", kBase + "/instances?top=2");
  ASSERT_FALSE(first.headers["x-ms-continuation-token"].empty());
  EXPECT_EQ(first.headers["x-ms-continuation-token"].find("61636d653a3a"), std::string::npos)
      << "the token holds hex(\"acme::\")";
  HttpResult second = Call(acme_, "GET", kBase + "/instances?top=2", "",
                           {{"x-ms-continuation-token", first.headers["x-ms-continuation-token"]}});
  ASSERT_EQ(second.status, 200);
  EXPECT_EQ(Json::parse(second.body)[0]["instanceId"], "n-b");
  EXPECT_TRUE(second.headers["x-ms-continuation-token"].empty());
  // Hostile filters: 400 naming the parameter.
  EXPECT_EQ(ErrorField(Call(acme_, "GET", kBase + "/instances?sort=random")), "sort");
  EXPECT_EQ(ErrorField(Call(acme_, "GET", kBase + "/instances?name=%00x")), "name");
  EXPECT_EQ(ErrorField(Call(acme_, "GET", kBase + "/instances?instanceIdPrefix=" + std::string(201, 'n'))),
            "instanceIdPrefix");
  EXPECT_EQ(ErrorField(Call(acme_, "GET", kBase + "/instances?createdTimeFrom=2030-01-01T00:00:00Z&"
                                                  "createdTimeTo=2020-01-01T00:00:00Z")),
            "createdTimeTo");
  HttpResult crossed = Call(acme_, "GET", kBase + "/instances?top=2&sort=id", "",
                            {{"x-ms-continuation-token", first.headers["x-ms-continuation-token"]}});
  EXPECT_EQ(crossed.status, 400) << "a newest-first token in the id order";
  EXPECT_EQ(ErrorField(Call(acme_, "GET", "/api/v1/jobs?sort=random")), "sort");
  EXPECT_EQ(ErrorField(Call(acme_, "GET", "/api/v1/jobs?idPrefix=ZZ")), "idPrefix");
  EXPECT_EQ(ErrorField(Call(acme_, "GET", "/api/v1/jobs?labels=%3Dv")), "labels");
  // Messages name ids as the tenant knows them.
  HttpResult missing = Call(acme_, "POST", kBase + "/instances/nope/terminate");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body.find("acme::"), std::string::npos) << missing.body;
  EXPECT_NE(missing.body.find("'nope'"), std::string::npos) << missing.body;
  // Globex sees none of it, counts included.
  HttpResult other = Call(globex_, "GET", kBase + "/instances?countByStatus=true&showEntities=true");
  EXPECT_EQ(other.body, "[]");
  EXPECT_EQ(other.headers["x-baton-status-counts"], "");
  HttpResult tenant = Call(acme_, "GET", "/api/v1/tenant");
  ASSERT_EQ(tenant.status, 200) << tenant.body;
  EXPECT_EQ(Json::parse(tenant.body)["tenant"], "acme");
  EXPECT_EQ(Call(admin_, "GET", "/api/v1/tenant").status, 403);
}

TEST_F(HttpApiTest, OversizeBodiesAreRefused) {
  std::string big = "\"" + std::string(2 << 20, 'x') + "\"";
  HttpResult r = Call(acme_, "POST", kBase + "/orchestrators/HelloCities/huge", big);
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(Call(acme_, "GET", kBase + "/instances/huge").status, 404);
}

TEST_F(HttpApiTest, AStalledClientHoldsNoThread) {
  // Connections that send half a request and stall...
  boost::asio::io_context io;
  std::vector<std::unique_ptr<boost::asio::ip::tcp::socket>> stalled;
  for (int i = 0; i < 40; ++i) {
    auto s = std::make_unique<boost::asio::ip::tcp::socket>(io);
    s->connect({boost::asio::ip::make_address("127.0.0.1"), server_->port()});
    std::string partial = "POST " + kBase + "/orchestrators/Hello5 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{";
    boost::asio::write(*s, boost::asio::buffer(partial));
    stalled.push_back(std::move(s));
  }
  // ...do not keep others from being served (more stalled clients than threads).
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Call(acme_, "GET", kBase + "/instances").status, 200);
}

// Tenant A's key on tenant B's instance is refused on every endpoint, and the
// answer is the same 404 a missing instance gets.
TEST_F(HttpApiTest, TenantsCannotSeeOrTouchEachOthersInstances) {
  Start(globex_, "AwaitApproval", "secret");
  ASSERT_TRUE(AwaitStatus(globex_, "secret", "Running"));
  Start(globex_, "HelloCities", "done", R"(["X"])");
  ASSERT_TRUE(AwaitStatus(globex_, "done", "Completed"));

  struct Attempt {
    std::string method, target, body;
  };
  const std::string i = kBase + "/instances/";
  std::vector<Attempt> attempts = {
      {"GET", i + "secret", ""},
      {"GET", i + "secret?showHistory=true", ""},
      {"POST", i + "secret/raiseEvent/approve", "true"},
      {"POST", i + "secret/terminate", ""},
      {"POST", i + "secret/suspend", ""},
      {"POST", i + "secret/resume", ""},
      {"POST", i + "secret/rewind", ""},
      {"POST", i + "done/restart", ""},
      {"POST", i + "done/restart?restartWithNewInstanceId=false", ""},
      {"DELETE", i + "done", ""},
      {"GET", i + "secret?taskHub=globex", ""},
      {"POST", i + "secret/terminate?taskHub=globex", ""},
  };
  int denied = 0;
  for (const Attempt& a : attempts) {
    HttpResult r = Call(acme_, a.method, a.target, a.body);
    if (r.status == 404) ++denied;
    EXPECT_EQ(r.status, 404) << a.method << " " << a.target << " -> " << r.body;
  }
  // Listing and purging by filter never reach the other hub.
  int list_attempts = 0;
  for (const char* q : {"", "?instanceIdPrefix=globex", "?instanceIdPrefix=secret", "?taskHub=globex"}) {
    ++list_attempts;
    HttpResult r = Call(acme_, "GET", kBase + "/instances" + q);
    if (r.status == 200 && Json::parse(r.body).empty()) ++denied;
  }
  ++list_attempts;
  if (Call(acme_, "DELETE", kBase + "/instances?createdTimeFrom=2020-01-01T00:00:00Z").status == 404) ++denied;
  // Starting with the other's id creates an instance in our own hub only.
  ++list_attempts;
  if (Call(acme_, "POST", kBase + "/orchestrators/HelloCities/done", R"(["mine"])").status == 202) ++denied;

  const int total = static_cast<int>(attempts.size()) + list_attempts;
  std::printf("cross-tenant: %d attempts, %d denied\n", total, denied);
  EXPECT_EQ(denied, total);
  // The other tenant's instances are untouched.
  EXPECT_EQ(Status(globex_, "secret")["runtimeStatus"], "Running");
  EXPECT_EQ(Status(globex_, "done")["output"], Json({"Hello, X!"}));
}

TEST_F(HttpApiTest, Entities) {
  const std::string e = kBase + "/entities/";
  EXPECT_EQ(Call(acme_, "GET", e + "Counter/k1").status, 404);
  EXPECT_EQ(Call(acme_, "POST", e + "Counter/k1?op=add", "5").status, 202);
  EXPECT_EQ(Call(acme_, "POST", e + "counter/k1?op=add", "2").status, 202);  // names are case-insensitive
  EXPECT_EQ(Call(acme_, "POST", e + "Counter/k2?op=add", "1").status, 202);
  ASSERT_TRUE(testing::Eventually([&] { return Call(acme_, "GET", e + "Counter/k1").body == "7"; }));
  ASSERT_TRUE(testing::Eventually([&] { return Call(acme_, "GET", e + "Counter/k2").status == 200; }));
  HttpResult no_op = Call(acme_, "POST", e + "Counter/k1", "1");
  EXPECT_EQ(no_op.status, 400);
  EXPECT_EQ(ErrorField(no_op), "op");
  EXPECT_EQ(ErrorField(Call(acme_, "POST", e + "Count@er/k1?op=add", "1")), "entityName");
  EXPECT_EQ(Call(acme_, "POST", e + "Counter/k1?op=add", "{bad").status, 400);

  HttpResult list = Call(acme_, "GET", e + "Counter?fetchState=true");
  ASSERT_EQ(list.status, 200);
  Json entities = Json::parse(list.body);
  ASSERT_EQ(entities.size(), 2u);
  EXPECT_EQ(entities[0]["entityId"], Json({{"name", "counter"}, {"key", "k1"}}));
  EXPECT_EQ(entities[0]["state"], 7);
  EXPECT_EQ(ErrorField(Call(acme_, "GET", e + "Counter?top=0")), "top");

  // Another tenant sees none of it.
  EXPECT_EQ(Call(globex_, "GET", e + "Counter/k1").status, 404);
  EXPECT_EQ(Json::parse(Call(globex_, "GET", e + "Counter").body).size(), 0u);

  EXPECT_EQ(Call(acme_, "DELETE", e + "Counter/k2").status, 202);
  ASSERT_TRUE(testing::Eventually([&] { return Call(acme_, "GET", e + "Counter/k2").status == 404; }));
  HttpResult cleaned = Call(acme_, "POST", e + "clean", R"({"removeEmptyEntities":true})");
  ASSERT_EQ(cleaned.status, 200) << cleaned.body;
  EXPECT_EQ(Json::parse(cleaned.body)["emptyEntitiesRemoved"], 1);
  EXPECT_EQ(Json::parse(Call(acme_, "GET", e + "Counter").body).size(), 1u);
}

TEST(HttpRestartTest, EveryAcknowledgedStartCompletesAfterSigkill) {
  testing::TempDir dir;
  std::string admin;
  std::string key;
  std::vector<std::string> ids;
  {
    testing::ServerProcess server(BATON_BINARY, dir.File("data"));
    admin = server.admin_key();
    auto call = [&](const std::string& k, const std::string& m, const std::string& t, const std::string& b = "") {
      return HttpCall(server.port(), m, t, b, {{"Authorization", "Bearer " + k}, {"Content-Type", "application/json"}});
    };
    ASSERT_EQ(call(admin, "POST", "/api/v1/admin/tenants", R"({"id":"acme"})").status, 201);
    key = Json::parse(call(admin, "POST", "/api/v1/admin/tenants/acme/keys", "{}").body)["key"];
    for (int n = 0; n < 200; ++n) {
      HttpResult r = call(key, "POST", kBase + "/orchestrators/Hello5/start-" + std::to_string(n));
      ASSERT_EQ(r.status, 202) << r.body;  // acknowledged: it must survive the kill
      ids.push_back("start-" + std::to_string(n));
    }
    server.Kill();  // SIGKILL, right after the last acknowledgement
  }
  testing::ServerProcess server(BATON_BINARY, dir.File("data"));
  EXPECT_TRUE(server.admin_key().empty());  // the admin key is printed once, at the first start
  int completed = 0;
  for (const std::string& id : ids) {
    bool done = testing::Eventually([&] {
      HttpResult r = HttpCall(server.port(), "GET", kBase + "/instances/" + id, "",
                              {{"Authorization", "Bearer " + key}});
      return r.status == 200 && Json::parse(r.body)["runtimeStatus"] == "Completed";
    });
    completed += done ? 1 : 0;
  }
  std::printf("restart safety: %zu starts acknowledged, %d completed after SIGKILL and restart\n", ids.size(),
              completed);
  EXPECT_EQ(completed, 200);
}

// A lock held across a SIGKILL stays held by its (durable) owner, which
// resumes after the restart and releases it; a terminated owner releases it
// at once. Either way the entity becomes usable again.
TEST(HttpEntityLockTest, LocksSurviveSigkillAndAreReleased) {
  testing::TempDir dir;
  std::string key;
  auto call = [&](unsigned short port, const std::string& m, const std::string& t, const std::string& b = "") {
    return HttpCall(port, m, t, b, {{"Authorization", "Bearer " + key}, {"Content-Type", "application/json"}});
  };
  const std::string e = kBase + "/entities/Counter/";
  auto locked_by = [&](unsigned short port, const std::string& k) {
    HttpResult r = call(port, "GET", kBase + "/entities/Counter");
    for (const Json& j : Json::parse(r.body)) {
      if (j["entityId"]["key"] == k) return j.value("lockedBy", "");
    }
    return std::string();
  };
  {
    testing::ServerProcess server(BATON_BINARY, dir.File("data"));
    key = server.admin_key();
    ASSERT_EQ(call(server.port(), "POST", kBase + "/orchestrators/LockAndWait/holder", R"("k")").status, 202);
    ASSERT_EQ(call(server.port(), "POST", kBase + "/orchestrators/LockAndWait/doomed", R"("t")").status, 202);
    ASSERT_TRUE(testing::Eventually([&] { return locked_by(server.port(), "k") == "holder"; }));
    ASSERT_TRUE(testing::Eventually([&] { return locked_by(server.port(), "t") == "doomed"; }));
    // Signals wait for the lock.
    ASSERT_EQ(call(server.port(), "POST", e + "k?op=add", "5").status, 202);
    ASSERT_EQ(call(server.port(), "POST", e + "t?op=add", "5").status, 202);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_EQ(call(server.port(), "GET", e + "k").status, 404);  // no state yet: the add waits
    server.Kill();
  }
  testing::ServerProcess server(BATON_BINARY, dir.File("data"));
  EXPECT_EQ(locked_by(server.port(), "k"), "holder");  // still held after the restart
  ASSERT_EQ(call(server.port(), "POST", kBase + "/instances/doomed/terminate").status, 202);
  ASSERT_TRUE(testing::Eventually([&] { return call(server.port(), "GET", e + "t").body == "5"; }));
  EXPECT_EQ(locked_by(server.port(), "t"), "");
  ASSERT_EQ(call(server.port(), "POST", kBase + "/instances/holder/raiseEvent/release", "true").status, 202);
  ASSERT_TRUE(testing::Eventually([&] { return call(server.port(), "GET", e + "k").body == "6"; }));
  EXPECT_EQ(locked_by(server.port(), "k"), "");
  std::printf("entity locks: held across SIGKILL, released by completion and by terminate\n");
}

TEST(HttpShutdownTest, SigtermDrainsAndExitsCleanly) {
  testing::TempDir dir;
  testing::ServerProcess server(BATON_BINARY, dir.File("data"));
  EXPECT_EQ(HttpCall(server.port(), "GET", "/healthz").status, 200);
  int status = server.Terminate();
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace baton
