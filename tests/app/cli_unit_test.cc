// Unit tests of the pure pieces of the `baton` client verbs: server URL
// parsing, query encoding, the HTTP-status-to-exit-code map, output
// formatting, option validation, and for the job verbs the spec built from
// flags, the default job name and the rendering of jobs. No server is
// involved; the verbs themselves are covered by the integration tests.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/cli/commands.h"
#include "app/cli/http_client.h"
#include "app/cli/job_commands.h"

namespace baton::cli {
namespace {

// ---- ParseServerUrl ----

TEST(ParseServerUrlTest, HostPortAndBasePath) {
  auto url = ParseServerUrl("http://baton.internal:9090/prefix/");
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  EXPECT_EQ(url->host, "baton.internal");
  EXPECT_EQ(url->port, 9090);
  EXPECT_EQ(url->base_path, "/prefix");
  EXPECT_EQ(url->ToString(), "http://baton.internal:9090/prefix");
}

TEST(ParseServerUrlTest, DefaultsPortTo80AndPathToEmpty) {
  auto url = ParseServerUrl("HTTP://127.0.0.1");
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  EXPECT_EQ(url->host, "127.0.0.1");
  EXPECT_EQ(url->port, 80);
  EXPECT_EQ(url->base_path, "");
}

TEST(ParseServerUrlTest, SchemeMayBeOmitted) {
  auto url = ParseServerUrl("localhost:8080");
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  EXPECT_EQ(url->host, "localhost");
  EXPECT_EQ(url->port, 8080);
}

TEST(ParseServerUrlTest, BracketedIpv6) {
  auto url = ParseServerUrl("http://[::1]:8080/");
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, 8080);
  EXPECT_EQ(url->base_path, "");
  EXPECT_EQ(url->ToString(), "http://[::1]:8080");
}

TEST(ParseServerUrlTest, RejectsHttpsWithAClearMessage) {
  auto url = ParseServerUrl("https://baton.example.com");
  ASSERT_FALSE(url.ok());
  EXPECT_EQ(url.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(url.status().message().find("https:// is not supported"), std::string::npos);
}

TEST(ParseServerUrlTest, RejectsMalformedUrls) {
  for (const char* bad :
       {"ftp://host", "http://", "http://:8080", "http://host:", "http://host:0",
        "http://host:65536", "http://host:80x", "http://user:pw@host", "http://host/?q=1",
        "http://host/#frag", "http://::1:8080", "http://[::1", "http://[::1]x", "http://ho st"}) {
    auto url = ParseServerUrl(bad);
    ASSERT_FALSE(url.ok()) << bad;
    EXPECT_EQ(url.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

// ---- Query encoding ----

TEST(PercentEncodeTest, KeepsUnreservedEncodesTheRest) {
  EXPECT_EQ(PercentEncode("Az09-._~"), "Az09-._~");
  EXPECT_EQ(PercentEncode("a b/c?d&e=f+g%"), "a%20b%2Fc%3Fd%26e%3Df%2Bg%25");
  EXPECT_EQ(PercentEncode("\xC3\xA9"), "%C3%A9");  // UTF-8 bytes, upper-case hex
}

TEST(BuildQueryStringTest, KeepsOrderAndEncodes) {
  EXPECT_EQ(BuildQueryString({}), "");
  EXPECT_EQ(BuildQueryString({{"taskHub", "acme"}, {"reason", "no longer needed"}}),
            "?taskHub=acme&reason=no%20longer%20needed");
  EXPECT_EQ(BuildQueryString({{"createdTimeFrom", "2026-01-31T12:00:00Z"}}),
            "?createdTimeFrom=2026-01-31T12%3A00%3A00Z");
}

// ---- Exit codes ----

TEST(ExitCodeForHttpStatusTest, MapsEveryClass) {
  EXPECT_EQ(ExitCodeForHttpStatus(200), kExitOk);
  EXPECT_EQ(ExitCodeForHttpStatus(201), kExitOk);
  EXPECT_EQ(ExitCodeForHttpStatus(202), kExitOk);
  EXPECT_EQ(ExitCodeForHttpStatus(404), kExitNotFound);
  EXPECT_EQ(ExitCodeForHttpStatus(409), kExitConflict);
  EXPECT_EQ(ExitCodeForHttpStatus(410), kExitConflict);
  EXPECT_EQ(ExitCodeForHttpStatus(412), kExitConflict);
  EXPECT_EQ(ExitCodeForHttpStatus(401), kExitUnauthenticated);
  EXPECT_EQ(ExitCodeForHttpStatus(403), kExitUnauthenticated);
  EXPECT_EQ(ExitCodeForHttpStatus(400), kExitBadRequest);
  EXPECT_EQ(ExitCodeForHttpStatus(405), kExitBadRequest);
  EXPECT_EQ(ExitCodeForHttpStatus(413), kExitBadRequest);
  EXPECT_EQ(ExitCodeForHttpStatus(500), kExitError);
  EXPECT_EQ(ExitCodeForHttpStatus(501), kExitError);
  EXPECT_EQ(ExitCodeForHttpStatus(503), kExitError);
  EXPECT_EQ(ExitCodeForHttpStatus(302), kExitError);
}

TEST(ExitCodeForHttpStatusTest, ConstantsMatchTheDocumentedValues) {
  EXPECT_EQ(kExitOk, 0);
  EXPECT_EQ(kExitError, 1);
  EXPECT_EQ(kExitUsage, 2);
  EXPECT_EQ(kExitNotFound, 3);
  EXPECT_EQ(kExitConflict, 4);
  EXPECT_EQ(kExitUnauthenticated, 5);
  EXPECT_EQ(kExitBadRequest, 6);
  EXPECT_EQ(kExitNotCompleted, 7);
}

// ---- Formatting ----

TEST(FormatTableTest, AlignsColumnsWithoutTrailingSpaces) {
  std::string table =
      FormatTable({"INSTANCE ID", "NAME", "STATUS"},
                  {{"a", "HelloCities", "Running"}, {"order-17", "Pay", "Completed"}});
  EXPECT_EQ(table,
            "INSTANCE ID  NAME         STATUS\n"
            "a            HelloCities  Running\n"
            "order-17     Pay          Completed\n");
}

TEST(FormatTableTest, HeaderOnlyWhenNoRows) {
  EXPECT_EQ(FormatTable({"ID", "NAME"}, {}), "ID  NAME\n");
}

TEST(FormatTableTest, CountsUtf8CodePointsAndFlattensNewlines) {
  std::string table = FormatTable({"A", "B"}, {{"\xC3\xA9t\xC3\xA9", "x"}, {"line1\nline2", "y"}});
  EXPECT_EQ(table,
            "A            B\n"
            "\xC3\xA9t\xC3\xA9          x\n"
            "line1 line2  y\n");
}

TEST(FormatTableTest, ShortRowsGetEmptyCells) {
  EXPECT_EQ(FormatTable({"A", "B", "C"}, {{"1"}}), "A  B  C\n1\n");
}

TEST(FormatKeyValuesTest, AlignsValuesAndIndentsContinuationLines) {
  std::string text =
      FormatKeyValues({{"Instance ID", "abc"}, {"Status", "Failed"}, {"Error", "one\ntwo"}});
  EXPECT_EQ(text,
            "Instance ID:  abc\n"
            "Status:       Failed\n"
            "Error:        one\n"
            "              two\n");
}

TEST(FormatKeyValuesTest, EmptyValueHasNoTrailingSpaces) {
  EXPECT_EQ(FormatKeyValues({{"Name", ""}, {"ID", "x"}}), "Name:\nID:    x\n");
}

TEST(DescribeErrorResponseTest, UsesTheServersErrorBody) {
  EXPECT_EQ(
      DescribeErrorResponse(
          404,
          R"({"error":{"code":"NotFound","message":"instance 'x' was not found","field":"instanceId"}})"),
      "instance 'x' was not found (HTTP 404 NotFound; field: instanceId)");
  EXPECT_EQ(DescribeErrorResponse(
                409, R"({"error":{"code":"AlreadyExists","message":"taken","field":""}})"),
            "taken (HTTP 409 AlreadyExists)");
}

TEST(DescribeErrorResponseTest, FallsBackToTheRawBody) {
  EXPECT_EQ(DescribeErrorResponse(502, "Bad Gateway\n"), "HTTP 502: Bad Gateway ");
  EXPECT_EQ(DescribeErrorResponse(500, ""), "HTTP 500");
  EXPECT_EQ(DescribeErrorResponse(500, R"({"error":"flat"})"), R"(HTTP 500: {"error":"flat"})");
  std::string long_body(300, 'x');
  EXPECT_EQ(DescribeErrorResponse(500, long_body), "HTTP 500: " + std::string(200, 'x') + "...");
}

// ---- Option validation ----

TEST(NormalizeRuntimeStatusesTest, CanonicalSpellingCaseInsensitive) {
  std::string out, error;
  ASSERT_TRUE(NormalizeRuntimeStatuses("running, FAILED,continuedasnew", &out, &error)) << error;
  EXPECT_EQ(out, "Running,Failed,ContinuedAsNew");
}

TEST(NormalizeRuntimeStatusesTest, RejectsUnknownAndEmpty) {
  std::string out, error;
  EXPECT_FALSE(NormalizeRuntimeStatuses("Running,Done", &out, &error));
  EXPECT_NE(error.find("'Done'"), std::string::npos);
  EXPECT_FALSE(NormalizeRuntimeStatuses(" , ", &out, &error));
}

TEST(NormalizeTimeTest, AcceptsIso8601AndBareDates) {
  std::string out, error;
  ASSERT_TRUE(NormalizeTime("2026-01-31T12:00:00Z", &out, &error)) << error;
  EXPECT_EQ(out, "2026-01-31T12:00:00Z");
  ASSERT_TRUE(NormalizeTime("2026-01-31", &out, &error)) << error;
  EXPECT_EQ(out, "2026-01-31T00:00:00Z");
  EXPECT_FALSE(NormalizeTime("2026-13-01", &out, &error));
  EXPECT_FALSE(NormalizeTime("yesterday", &out, &error));
  EXPECT_FALSE(NormalizeTime("2026-01-31T12:00:00+02:00", &out, &error));
}

// ---- EntityPath ----

TEST(EntityPathTest, EncodesNameAndKey) {
  EXPECT_EQ(EntityPath("counter", "k1"), "/runtime/webhooks/durabletask/entities/counter/k1");
  EXPECT_EQ(EntityPath("my counter", "a/b?c"),
            "/runtime/webhooks/durabletask/entities/my%20counter/a%2Fb%3Fc");
}

TEST(EntityPathTest, EmptyKeyIsDollar) {
  EXPECT_EQ(EntityPath("counter", ""), "/runtime/webhooks/durabletask/entities/counter/$");
  EXPECT_EQ(EntityPath("counter", "$"), "/runtime/webhooks/durabletask/entities/counter/$");
  EXPECT_EQ(EntityPath("counter", "$x"), "/runtime/webhooks/durabletask/entities/counter/%24x");
}

// ---- Job spec from flags ----

using OJson = nlohmann::ordered_json;

TEST(BuildJobSpecTest, FlagsAloneMakeASpecWithADerivedName) {
  JobSpecFlags f;
  f.image = "127.0.0.1:5000/vfx/render:1.4";
  f.cpu = 1.5;
  f.memory_mb = 512;
  f.env = {"QUALITY=high", "EMPTY=", "EQ=a=b"};
  f.secret_env = {"API_TOKEN=s3cret"};
  f.labels = {"team=vfx"};
  f.command = {"/render"};
  f.args = {"--frames", "1-100"};
  f.timeout_seconds = 600;
  f.network = "bridge";
  f.completion = "callback";
  f.priority = -5;
  auto spec = BuildJobSpec(OJson::object(), f);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(*spec, OJson::parse(R"({
    "image": "127.0.0.1:5000/vfx/render:1.4", "cpu": 1.5, "memoryMb": 512,
    "env": {"QUALITY": "high", "EMPTY": "", "EQ": "a=b"},
    "secretEnv": {"API_TOKEN": "s3cret"}, "labels": {"team": "vfx"},
    "command": ["/render"], "args": ["--frames", "1-100"], "timeoutSeconds": 600,
    "network": "bridge", "completion": "callback", "priority": -5, "name": "render"})"));
}

TEST(BuildJobSpecTest, WholeCpuIsSentAsAnInteger) {
  JobSpecFlags f;
  f.image = "busybox";
  f.cpu = 2.0;
  auto spec = BuildJobSpec(OJson::object(), f);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_TRUE((*spec)["cpu"].is_number_integer());
  EXPECT_EQ((*spec)["cpu"], 2);
}

TEST(BuildJobSpecTest, FlagsOverrideTheFileSpec) {
  OJson file = OJson::parse(R"({
    "name": "render", "image": "reg/vfx/render:1.3", "cpu": 0.5,
    "env": {"QUALITY": "low", "KEEP": "1", "TOKEN": "plain"},
    "secretEnv": {"PASSWORD": "x"},
    "labels": {"team": "vfx"}, "command": ["/old"], "args": ["a", "b"],
    "restartPolicy": "OnFailure", "completion": {"mode": "jobUrl", "port": 8080},
    "network": "host", "workingDir": "/work"})");
  JobSpecFlags f;
  f.image = "reg/vfx/render:1.4";
  f.cpu = 2.5;
  f.env = {"QUALITY=high", "PASSWORD=now-plain"};
  f.secret_env = {"TOKEN=now-secret"};
  f.labels = {"stage=prod"};
  f.command = {"/new"};
  f.max_attempts = 5;
  f.completion = "exitCode";
  auto spec = BuildJobSpec(file, f);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  // The name stays the file's (a new image does not rename the job); members
  // the flags do not touch are kept, in the file's order.
  EXPECT_EQ(*spec, OJson::parse(R"({
    "name": "render", "image": "reg/vfx/render:1.4", "cpu": 2.5,
    "env": {"QUALITY": "high", "KEEP": "1", "PASSWORD": "now-plain"},
    "secretEnv": {"TOKEN": "now-secret"},
    "labels": {"team": "vfx", "stage": "prod"}, "command": ["/new"], "args": ["a", "b"],
    "restartPolicy": {"policy": "OnFailure", "maxAttempts": 5}, "completion": "exitCode",
    "network": "host", "workingDir": "/work"})"));
  std::vector<std::string> order;
  for (const auto& [key, value] : spec->items()) order.push_back(key);
  EXPECT_EQ(order.front(), "name");
  EXPECT_EQ(order.back(), "workingDir");
}

TEST(BuildJobSpecTest, FileSpecWithoutFlagsIsSentAsItIs) {
  OJson file = OJson::parse(R"({"name": "x", "image": "busybox", "sidecars": [{"name": "m"}]})");
  auto spec = BuildJobSpec(file, JobSpecFlags{});
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(*spec, file);
}

TEST(BuildJobSpecTest, FileSpecWithoutANameGetsOneFromItsImage) {
  auto spec = BuildJobSpec(OJson::parse(R"({"image": "ghcr.io/acme/Nightly_ETL:2"})"), {});
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ((*spec)["name"], "nightly-etl");
  JobSpecFlags f;
  f.name = "etl";
  spec = BuildJobSpec(OJson::parse(R"({"name": "old", "image": "busybox"})"), f);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ((*spec)["name"], "etl");
}

TEST(BuildJobSpecTest, RestartFlags) {
  JobSpecFlags f;
  f.image = "busybox";
  f.restart = "Always";
  auto spec = BuildJobSpec(OJson::object(), f);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ((*spec)["restartPolicy"], OJson::parse(R"({"policy": "Always"})"));

  f.backoff_seconds = 0;
  spec = BuildJobSpec(OJson::parse(R"({"restartPolicy": {"policy": "OnFailure",
                                                           "maxAttempts": 4}})"),
                      f);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ((*spec)["restartPolicy"],
            OJson::parse(R"({"policy": "Always", "maxAttempts": 4, "backoffSeconds": 0})"));

  // Never allows one attempt, so the file's count goes.
  JobSpecFlags never;
  never.restart = "Never";
  spec = BuildJobSpec(OJson::parse(R"({"image": "busybox", "restartPolicy": {"policy": "OnFailure",
                                                               "maxAttempts": 4}})"),
                      never);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ((*spec)["restartPolicy"], OJson::parse(R"({"policy": "Never"})"));
}

// The message of a usage error, which must name the flag; "" when none.
std::string UsageError(const OJson& base, const JobSpecFlags& flags) {
  auto spec = BuildJobSpec(base, flags);
  if (spec.ok()) return "";
  EXPECT_EQ(spec.status().code(), StatusCode::kInvalidArgument);
  return spec.status().message();
}

TEST(BuildJobSpecTest, BadFlagValuesAreUsageErrorsNamingTheFlag) {
  JobSpecFlags f;
  f.image = "busybox";
  f.env = {"NOEQUALS"};
  EXPECT_EQ(UsageError(OJson::object(), f), "--env: 'NOEQUALS' is not KEY=VALUE");
  f.env = {"=v"};
  EXPECT_EQ(UsageError(OJson::object(), f), "--env: '=v' has an empty key");
  f.env = {"A=1"};
  f.secret_env = {"B"};
  EXPECT_EQ(UsageError(OJson::object(), f), "--secret-env: 'B' is not KEY=VALUE");
  f.secret_env = {"A=2"};
  EXPECT_EQ(UsageError(OJson::object(), f), "--secret-env: 'A' is also given with --env");
  f.secret_env.clear();
  f.labels = {"team"};
  EXPECT_EQ(UsageError(OJson::object(), f), "--label: 'team' is not KEY=VALUE");
  f.labels.clear();
  for (const char* bad : {"Render", "-x", "a_b", ""}) {
    f.name = bad;
    EXPECT_TRUE(UsageError(OJson::object(), f).starts_with("--name: ")) << bad;
  }
  f.name = std::string(64, 'a');
  EXPECT_TRUE(UsageError(OJson::object(), f).starts_with("--name: "));
  f.name = std::string(63, 'a');
  EXPECT_EQ(UsageError(OJson::object(), f), "");
}

TEST(BuildJobSpecTest, RestartFlagsThatContradictAreUsageErrors) {
  JobSpecFlags f;
  f.image = "busybox";
  f.max_attempts = 3;
  EXPECT_TRUE(UsageError(OJson::object(), f).starts_with("--max-attempts: needs a restart policy"));
  f.max_attempts.reset();
  f.backoff_seconds = 5;
  EXPECT_TRUE(UsageError(OJson::object(), f).starts_with("--backoff: needs a restart policy"));
  // The policy may come from the file.
  EXPECT_EQ(UsageError(OJson::parse(R"({"restartPolicy": "OnFailure"})"), f), "");
  f.max_attempts = 3;
  f.restart = "Never";
  EXPECT_TRUE(
      UsageError(OJson::object(), f).starts_with("--max-attempts: the restart policy Never"));
  f.restart.reset();
  EXPECT_TRUE(UsageError(OJson::parse(R"({"restartPolicy": "Never"})"), f)
                  .starts_with("--max-attempts: the restart policy Never"));
  f.max_attempts = 1;
  EXPECT_EQ(UsageError(OJson::parse(R"({"restartPolicy": "Never"})"), f), "");
}

TEST(BuildJobSpecTest, NeedsAnImageAndANameAndAnObject) {
  EXPECT_TRUE(UsageError(OJson::object(), {}).starts_with("--image: is required"));
  EXPECT_TRUE(UsageError(OJson::parse(R"({"name": "x", "image": ""})"), {})
                  .starts_with("--image: is required"));
  EXPECT_EQ(UsageError(OJson::parse(R"({"image": "reg/___:1"})"), {}),
            "--name: cannot derive a job name from the image 'reg/___:1'; pass --name");
  EXPECT_TRUE(UsageError(OJson::array(), {}).starts_with("-f: a job spec is a JSON object"));
}

TEST(DeriveJobNameTest, LastPathSegmentOfTheRepository) {
  EXPECT_EQ(DeriveJobName("busybox"), "busybox");
  EXPECT_EQ(DeriveJobName("busybox:1.36"), "busybox");
  EXPECT_EQ(DeriveJobName("127.0.0.1:5000/vfx/render:1.4"), "render");
  EXPECT_EQ(DeriveJobName("127.0.0.1:5000/vfx/render@sha256:0123abcd"), "render");
  EXPECT_EQ(DeriveJobName("localhost:5000/render:latest@sha256:0123"), "render");
  EXPECT_EQ(DeriveJobName("ghcr.io/Acme/My_App.v2:latest"), "my-app-v2");
}

TEST(DeriveJobNameTest, TrimsDashesAndLength) {
  EXPECT_EQ(DeriveJobName("reg/_tool_:1"), "tool");
  EXPECT_EQ(DeriveJobName("reg/" + std::string(70, 'x')), std::string(63, 'x'));
  // Cut to 63, then no dash is left at the end.
  EXPECT_EQ(DeriveJobName("reg/" + std::string(62, 'x') + "_y"), std::string(62, 'x'));
  EXPECT_EQ(DeriveJobName("reg/___"), "");
  EXPECT_EQ(DeriveJobName(""), "");
}

// ---- Rendering jobs ----

TEST(DescribeWaitingOnTest, ReasonThenDetails) {
  EXPECT_EQ(DescribeWaitingOn(OJson::parse(R"({"reason": "quota", "position": 2})")),
            "quota (position 2)");
  EXPECT_EQ(DescribeWaitingOn(OJson::parse(R"({"reason": "imagePull", "image": "reg/x:1"})")),
            "imagePull (image reg/x:1)");
  EXPECT_EQ(DescribeWaitingOn(OJson::parse(R"({"reason": "container", "attempt": 3})")),
            "container (attempt 3)");
  EXPECT_EQ(DescribeWaitingOn(
                OJson::parse(R"({"reason": "backoff", "retryAt": "2026-11-24T10:00:11Z"})")),
            "backoff (retryAt 2026-11-24T10:00:11Z)");
  EXPECT_EQ(DescribeWaitingOn(OJson::parse(R"({"reason": "quota", "position": null})")), "quota");
  EXPECT_EQ(DescribeWaitingOn(OJson::parse(R"({"reason": "x", "a": 1, "b": {"c": true}})")),
            R"(x (a 1, b {"c":true}))");
}

TEST(DescribeWaitingOnTest, NullIsEmptyOtherShapesAsTheyAre) {
  EXPECT_EQ(DescribeWaitingOn(OJson()), "");
  EXPECT_EQ(DescribeWaitingOn(OJson("quota")), "quota");
  EXPECT_EQ(DescribeWaitingOn(OJson::parse(R"({"position": 2})")), "position 2");
  EXPECT_EQ(DescribeWaitingOn(OJson::parse("[1]")), "[1]");
}

TEST(JobFieldsTest, QueuedJob) {
  OJson job = OJson::parse(R"({
    "id": "3f9c0a1be2d44c71", "name": "render", "status": "Queued",
    "waitingOn": {"reason": "quota", "position": 2}, "attempt": 0, "progress": null,
    "image": "reg/vfx/render@sha256:ab", "createdAt": "2026-11-24T10:00:00.000Z",
    "lastUpdatedAt": "2026-11-24T10:00:01.000Z", "spec": {}, "result": null, "urls": {}})");
  EXPECT_EQ(FormatKeyValues(JobFields(job)),
            "Job ID:        3f9c0a1be2d44c71\n"
            "Name:          render\n"
            "Status:        Queued\n"
            "Waiting on:    quota (position 2)\n"
            "Attempt:       0\n"
            "Image:         reg/vfx/render@sha256:ab\n"
            "Created:       2026-11-24T10:00:00.000Z\n"
            "Last updated:  2026-11-24T10:00:01.000Z\n");
}

TEST(JobFieldsTest, QueuedJobShowsItsAdmissionEta) {
  OJson job = OJson::parse(R"({
    "id": "3f9c0a1be2d44c71", "name": "render", "status": "Queued",
    "waitingOn": {"reason": "quota", "position": 2}, "attempt": 0,
    "eta": {"basis": "history", "startAt": "2026-11-24T10:00:14Z",
            "summary": "expected to start at 10:00:14Z (in 13 s), after 1 running job ends"}})");
  EXPECT_EQ(FormatKeyValues(JobFields(job)),
            "Job ID:          3f9c0a1be2d44c71\n"
            "Name:            render\n"
            "Status:          Queued\n"
            "Waiting on:      quota (position 2)\n"
            "Expected start:  expected to start at 10:00:14Z (in 13 s), after 1 running job ends\n"
            "Attempt:         0\n");
  job["eta"] = nullptr;  // the store could not say: no line
  EXPECT_EQ(FormatKeyValues(JobFields(job)).find("Expected start"), std::string::npos);
}

TEST(JobFieldsTest, EndedJobShowsItsResult) {
  OJson job = OJson::parse(R"({
    "id": "3f9c0a1be2d44c71", "name": "render", "status": "Failed", "waitingOn": null,
    "attempt": 2, "progress": {"done": 40}, "image": "reg/render:1",
    "result": {"status": "Failed", "exitCode": 137, "oomKilled": true, "attempts": 2,
               "logsTail": [{"stream": "stderr", "time": "t", "text": "killed"}, "bye\n"],
               "error": "out of memory"}})");
  auto fields = JobFields(job);
  auto value = [&](const std::string& key) {
    for (const auto& [k, v] : fields)
      if (k == key) return v;
    return std::string("<missing>");
  };
  EXPECT_EQ(value("Waiting on"), "<missing>");
  EXPECT_EQ(value("Progress"), R"({"done":40})");
  EXPECT_EQ(value("Exit code"), "137");
  EXPECT_EQ(value("OOM killed"), "yes");
  EXPECT_EQ(value("Attempts"), "2");
  EXPECT_EQ(value("Error"), "out of memory");
  EXPECT_EQ(value("Logs tail"), "killed\nbye");
}

TEST(JobEventsTableTest, DetailIsTheOtherMembersAsJson) {
  OJson events = OJson::parse(R"([
    {"time": "2026-11-24T10:00:00Z", "type": "Submitted"},
    {"time": "2026-11-24T10:00:01Z", "type": "Queued", "position": 2},
    {"time": "2026-11-24T10:00:09Z", "type": "AttemptEnded", "attempt": 1, "exitCode": 0,
     "oomKilled": false}])");
  EXPECT_EQ(JobEventsTable(events),
            "TIME                  TYPE          ATTEMPT  DETAIL\n"
            "2026-11-24T10:00:00Z  Submitted\n"
            "2026-11-24T10:00:01Z  Queued                 {\"position\":2}\n"
            "2026-11-24T10:00:09Z  AttemptEnded  1        {\"exitCode\":0,\"oomKilled\":false}\n");
}

TEST(NormalizeJobStatusesTest, CanonicalSpellingCaseInsensitive) {
  std::string out, error;
  ASSERT_TRUE(NormalizeJobStatuses("running, QUEUED,backingoff", &out, &error)) << error;
  EXPECT_EQ(out, "Running,Queued,BackingOff");
  EXPECT_FALSE(NormalizeJobStatuses("Terminated", &out, &error));
  EXPECT_NE(error.find("unknown job status 'Terminated'"), std::string::npos) << error;
}

TEST(MergeQuotaTest, FlagsOverTheCurrentQuotaWithoutUsage) {
  OJson current = OJson::parse(R"({"cpu": 4, "memoryMb": 8192, "jobs": 8, "weight": 1,
                                   "running": {"cpu": 1, "memoryMb": 512, "jobs": 1},
                                   "queued": 3})");
  QuotaFlags f;
  f.cpu = 2.5;
  f.jobs = 0;
  f.weight = 3;
  OJson body = MergeQuota(current, f);
  EXPECT_EQ(body, OJson::parse(R"({"cpu": 2.5, "memoryMb": 8192, "jobs": 0, "weight": 3})"));
  EXPECT_TRUE(body["weight"].is_number_integer());
  // Whole numbers read back as doubles are sent as integers.
  current["memoryMb"] = 8192.0;
  current["jobs"] = 8.0;
  EXPECT_TRUE(MergeQuota(current, {})["memoryMb"].is_number_integer());
  EXPECT_EQ(MergeQuota(current, {}), OJson::parse(R"({"cpu": 4, "memoryMb": 8192, "jobs": 8,
                                                      "weight": 1})"));
}

// ---- Command-line parsing (no request is sent: each case fails first) ----

class ParseTest : public ::testing::Test {
 protected:
  // Parses `args` (after "baton") and returns the process exit code the
  // wiring in commands.h would give.
  int Run(std::vector<std::string> args) {
    CLI::App app{"test"};
    app.require_subcommand(1);
    AddClientCommands(app, &exit_code_, out_, err_);
    std::reverse(args.begin(), args.end());  // CLI11 takes them last-first
    try {
      app.parse(args);
    } catch (const CLI::ParseError& e) {
      return ExitForParseError(app, e, out_, err_);
    }
    return exit_code_;
  }

  int exit_code_ = -1;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(ParseTest, InvalidJsonInputIsAUsageError) {
  EXPECT_EQ(Run({"instance", "start", "Hello", "--input", "{not json"}), kExitUsage);
  EXPECT_EQ(exit_code_, -1);  // the verb did not run
}

TEST_F(ParseTest, UnknownStatusIsAUsageError) {
  EXPECT_EQ(Run({"instance", "list", "--status", "Sleeping"}), kExitUsage);
}

TEST_F(ParseTest, MissingVerbIsAUsageError) { EXPECT_EQ(Run({"instance"}), kExitUsage); }

TEST_F(ParseTest, HelpIsSuccessAndShowsTheExitCodes) {
  EXPECT_EQ(Run({"key", "create", "--help"}), kExitOk);
  EXPECT_NE(out_.str().find("Exit codes:"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("BATON_KEY"), std::string::npos) << out_.str();
}

TEST_F(ParseTest, HttpsServerIsAUsageErrorFromTheVerb) {
  EXPECT_EQ(Run({"tenant", "list", "--server", "https://example.com"}), kExitUsage);
  EXPECT_NE(err_.str().find("https:// is not supported"), std::string::npos);
}

TEST_F(ParseTest, PurgeNeedsAnIdOrCreatedFrom) {
  EXPECT_EQ(Run({"instance", "purge", "--server", "http://127.0.0.1:1"}), kExitUsage);
  EXPECT_EQ(Run({"instance", "purge", "x", "--created-from", "2026-01-01", "--server",
                 "http://127.0.0.1:1"}),
            kExitUsage);
}

TEST_F(ParseTest, KeyCreateNeedsTenantOrAdmin) {
  EXPECT_EQ(Run({"key", "create", "--server", "http://127.0.0.1:1"}), kExitUsage);
  EXPECT_EQ(Run({"key", "create", "--admin", "--tenant", "acme"}), kExitUsage);
}

TEST_F(ParseTest, EntityVerbsNeedTheirArguments) {
  EXPECT_EQ(Run({"entity"}), kExitUsage);
  EXPECT_EQ(Run({"entity", "get", "counter"}), kExitUsage);
  EXPECT_EQ(Run({"entity", "signal", "counter", "k1"}), kExitUsage);
  EXPECT_EQ(Run({"entity", "list"}), kExitUsage);
  EXPECT_EQ(exit_code_, -1);  // no verb ran
}

TEST_F(ParseTest, EntitySignalValidatesItsInput) {
  EXPECT_EQ(Run({"entity", "signal", "counter", "k1", "add", "--input", "{not json"}), kExitUsage);
  EXPECT_EQ(
      Run({"entity", "signal", "counter", "k1", "add", "--input", "1", "--input-file", "f.json"}),
      kExitUsage);
  EXPECT_EQ(Run({"entity", "signal", "counter", "k1", "add", "--at", "2026-01-31T12:00:00Z"}),
            kExitUsage);  // the server has no scheduled signals over HTTP
  EXPECT_EQ(exit_code_, -1);
  EXPECT_EQ(Run({"entity", "signal", "counter", "k1", "add", "--input-file",
                 "/nonexistent/input.json", "--server", "http://127.0.0.1:1"}),
            kExitUsage);
  EXPECT_NE(err_.str().find("--input-file: cannot read"), std::string::npos) << err_.str();
}

TEST_F(ParseTest, EntityListValidatesTimesAndTop) {
  EXPECT_EQ(Run({"entity", "list", "counter", "--from", "yesterday"}), kExitUsage);
  EXPECT_EQ(Run({"entity", "list", "counter", "--top", "0"}), kExitUsage);
}

TEST_F(ParseTest, EntityHelpShowsTheExitCodes) {
  EXPECT_EQ(Run({"entity", "clean", "--help"}), kExitOk);
  EXPECT_NE(out_.str().find("Exit codes:"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("--release-orphaned-locks"), std::string::npos) << out_.str();
}

TEST_F(ParseTest, EntityVerbsAreClientCommands) {
  CLI::App app{"test"};
  int exit_code = -1;
  std::ostringstream out, err;
  ClientCommands client = AddClientCommands(app, &exit_code, out, err);
  std::vector<std::string> args = {"entity", "list", "counter", "--server", "http://127.0.0.1:1"};
  std::reverse(args.begin(), args.end());  // CLI11 takes them last-first
  app.parse(args);
  EXPECT_TRUE(client.parsed());
  EXPECT_EQ(exit_code, kExitError);  // nothing listens on port 1
}

TEST_F(ParseTest, JobSubmitBadFlagValuesAreUsageErrorsNamingTheFlag) {
  const std::string server = "http://127.0.0.1:1";  // never reached
  struct Case {
    std::vector<std::string> args;
    std::string flag;
  };
  for (const Case& c : std::vector<Case>{
           {{"--image", "x", "--cpu", "abc"}, "--cpu"},
           {{"--image", "x", "--cpu", "0"}, "--cpu"},
           {{"--image", "x", "--memory", "1.5"}, "--memory"},
           {{"--image", "x", "--memory", "5"}, "--memory"},
           {{"--image", "x", "--network", "wifi"}, "--network"},
           {{"--image", "x", "--restart", "Sometimes"}, "--restart"},
           {{"--image", "x", "--completion", "jobUrl"}, "--completion"},
           {{"--image", "x", "--priority", "101"}, "--priority"},
           {{"--image", "x", "--max-attempts", "0"}, "--max-attempts"},
           {{"--image", "x", "--timeout", "0"}, "--timeout"},
           {{"--image", "x", "--env", "NOEQUALS"}, "--env"},
           {{"--image", "x", "--label", "k"}, "--label"},
           {{"--image", "x", "--name", "Bad_Name"}, "--name"},
           {{"--cpu", "1"}, "--image"},
       }) {
    std::vector<std::string> args = {"job", "submit", "--server", server};
    args.insert(args.end(), c.args.begin(), c.args.end());
    err_.str("");
    EXPECT_EQ(Run(args), kExitUsage) << c.flag;
    EXPECT_NE(err_.str().find(c.flag), std::string::npos) << c.flag << ": " << err_.str();
  }
}

TEST_F(ParseTest, JobSubmitReportsAnUnreadableOrInvalidFile) {
  EXPECT_EQ(Run({"job", "submit", "-f", "/nonexistent/job.json", "--server", "http://127.0.0.1:1"}),
            kExitUsage);
  EXPECT_NE(err_.str().find("-f: cannot read '/nonexistent/job.json'"), std::string::npos)
      << err_.str();

  const std::string path = ::testing::TempDir() + "/cli_unit_test_job.json";
  for (const auto& [text, message] : std::vector<std::pair<std::string, std::string>>{
           {"{\"image\": ", "is not valid JSON"},
           {"[1]", "-f: a job spec is a JSON object, not array"}}) {
    std::ofstream(path) << text;
    err_.str("");
    EXPECT_EQ(Run({"job", "submit", "-f", path, "--server", "http://127.0.0.1:1"}), kExitUsage);
    EXPECT_NE(err_.str().find(message), std::string::npos) << err_.str();
  }
  std::remove(path.c_str());
}

TEST_F(ParseTest, JobVerbsNeedTheirArguments) {
  EXPECT_EQ(Run({"job"}), kExitUsage);
  EXPECT_EQ(Run({"job", "get"}), kExitUsage);
  EXPECT_EQ(Run({"job", "logs"}), kExitUsage);
  EXPECT_EQ(Run({"job", "list", "--status", "Sleeping"}), kExitUsage);
  EXPECT_EQ(Run({"job", "list", "--page-size", "0"}), kExitUsage);
  EXPECT_EQ(Run({"job", "wait", "x", "--timeout", "-1"}), kExitUsage);
  // `tenant quota` alone is a verb now: the caller's own quota (TenantOpsTest).
  EXPECT_EQ(Run({"tenant", "quota", "acme", "--weight", "0.5"}), kExitUsage);
  EXPECT_EQ(Run({"tenant", "quota", "acme", "--jobs", "-1"}), kExitUsage);
  EXPECT_EQ(exit_code_, -1);  // no verb ran
}

TEST_F(ParseTest, JobHelpShowsTheFlagsAndExitCodes) {
  EXPECT_EQ(Run({"job", "submit", "--help"}), kExitOk);
  for (const char* text : {"--secret-env", "--max-attempts", "--wait", "--output", "Exit codes:"})
    EXPECT_NE(out_.str().find(text), std::string::npos) << text;
  out_.str("");
  EXPECT_EQ(Run({"tenant", "quota", "--help"}), kExitOk);
  EXPECT_NE(out_.str().find("--weight"), std::string::npos) << out_.str();
}

TEST_F(ParseTest, JobVerbsAreClientCommands) {
  CLI::App app{"test"};
  int exit_code = -1;
  std::ostringstream out, err;
  ClientCommands client = AddClientCommands(app, &exit_code, out, err);
  std::vector<std::string> args = {"job", "get", "3f9c0a1be2d44c71", "--server",
                                   "http://127.0.0.1:1"};
  std::reverse(args.begin(), args.end());  // CLI11 takes them last-first
  app.parse(args);
  EXPECT_TRUE(client.parsed());
  EXPECT_EQ(exit_code, kExitError);  // nothing listens on port 1
}

TEST_F(ParseTest, UnreachableServerIsExitOne) {
  // Port 1 on loopback: nothing listens, so the connection is refused at once.
  EXPECT_EQ(Run({"tenant", "list", "--server", "http://127.0.0.1:1"}), kExitError);
  EXPECT_NE(err_.str().find("cannot reach Baton at http://127.0.0.1:1"), std::string::npos)
      << err_.str();
}

}  // namespace
}  // namespace baton::cli
