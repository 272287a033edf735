// Unit tests of the pure pieces of the `baton` client verbs: server URL
// parsing, query encoding, the HTTP-status-to-exit-code map, output
// formatting and option validation. No server is involved; the verbs
// themselves are covered by the integration tests.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <sstream>

#include "app/cli/commands.h"
#include "app/cli/http_client.h"

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

TEST_F(ParseTest, UnreachableServerIsExitOne) {
  // Port 1 on loopback: nothing listens, so the connection is refused at once.
  EXPECT_EQ(Run({"tenant", "list", "--server", "http://127.0.0.1:1"}), kExitError);
  EXPECT_NE(err_.str().find("cannot reach Baton at http://127.0.0.1:1"), std::string::npos)
      << err_.str();
}

}  // namespace
}  // namespace baton::cli
