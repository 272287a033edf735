// How the HTTP server reads a request (request_reader.h) and routes it
// (Router): every malformed or oversize request gets its JSON error, every
// parameter reaches a handler as valid UTF-8.
#include "api/http/request_reader.h"

#include <gtest/gtest.h>

#include <string>

#include "baton/json.h"

namespace baton::api {
namespace {

struct Answer {
  unsigned status = 0;
  std::string code;
  std::string field;
};

// The error ParseRequest answers with, or status 0 when it yields a request.
Answer Refusal(const std::string& bytes, RequestLimits limits = {}) {
  auto parsed = ParseRequest(bytes, limits);
  if (std::holds_alternative<HttpRequest>(parsed)) return {};
  const HttpResponse& r = std::get<HttpResponse>(parsed);
  Json body;
  EXPECT_TRUE(ParseJson(r.body(), &body).ok()) << r.body();
  EXPECT_EQ(r[boost::beast::http::field::content_type], "application/json; charset=utf-8");
  return {r.result_int(), body["error"].value("code", ""), body["error"].value("field", "")};
}

TEST(InputLimitsHttpParser, AWellFormedRequestParses) {
  auto parsed = ParseRequest("POST /a?b=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", {});
  ASSERT_TRUE(std::holds_alternative<HttpRequest>(parsed));
  EXPECT_EQ(std::get<HttpRequest>(parsed).body(), "{}");
  auto chunked =
      ParseRequest("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", {});
  ASSERT_TRUE(std::holds_alternative<HttpRequest>(chunked));
  EXPECT_EQ(std::get<HttpRequest>(chunked).body(), "{}");
}

TEST(InputLimitsHttpParser, OversizeHeaderIs431AndOversizeBodyIs413) {
  Answer line = Refusal("GET /" + std::string(70000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(line.status, 431u);
  EXPECT_EQ(line.code, "RequestHeaderFieldsTooLarge");
  Answer header = Refusal("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(70000, 'a') + "\r\n\r\n");
  EXPECT_EQ(header.status, 431u);
  Answer declared = Refusal("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n");
  EXPECT_EQ(declared.status, 413u);
  EXPECT_EQ(declared.field, "body");
  Answer chunked = Refusal("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n",
                           RequestLimits{kMaxHeaderBytes, 8});
  EXPECT_EQ(chunked.status, 413u);
}

TEST(InputLimitsHttpParser, ContentLengthMustBeOneDecimalNumber) {
  for (const std::string& lengths : {std::string("Content-Length: 5\r\nContent-Length: 5\r\n"),
                                     std::string("Content-Length: 5\r\nContent-Length: 6\r\n"),
                                     std::string("Content-Length: 5, 5\r\n"), std::string("Content-Length: -5\r\n"),
                                     std::string("Content-Length: five\r\n"), std::string("Content-Length: +5\r\n")}) {
    Answer a = Refusal("POST / HTTP/1.1\r\nHost: x\r\n" + lengths + "\r\nhello");
    EXPECT_EQ(a.status, 400u) << lengths;
    EXPECT_EQ(a.code, "MalformedRequest") << lengths;
    EXPECT_EQ(a.field, "Content-Length") << lengths;
  }
}

TEST(InputLimitsHttpParser, TransferEncodingIsChunkedOrRefused) {
  for (const std::string& both : {std::string("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"),
                                  std::string("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n")}) {
    Answer a = Refusal("POST / HTTP/1.1\r\nHost: x\r\n" + both + "\r\n0\r\n\r\n");
    EXPECT_EQ(a.status, 400u) << both;
    EXPECT_EQ(a.field, "Content-Length") << both;
  }
  for (const std::string& coding : {"gzip", "gzip, chunked", "chunked, gzip", "identity"}) {
    Answer a = Refusal("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + coding + "\r\n\r\n0\r\n\r\n");
    EXPECT_EQ(a.status, 501u) << coding;
    EXPECT_EQ(a.code, "NotImplemented") << coding;
    EXPECT_EQ(a.field, "Transfer-Encoding") << coding;
  }
}

TEST(InputLimitsHttpParser, GarbageAndBareLineFeedsAre400) {
  for (const std::string& bytes :
       {std::string("GET / HTTP/1.1\nHost: x\n\n"), std::string("GET / HTTP/1.1\r\nHost: x\n\r\n"),
        std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"), std::string("GET\r\n\r\n"),
        std::string("GET / HTTP/9.9\r\n\r\n"), std::string("G@T / HTTP/1.1\r\n\r\n"),
        std::string("GET / HTTP/1.1\r\nBad Header: x\r\n\r\n"),
        std::string("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")}) {
    Answer a = Refusal(bytes);
    EXPECT_EQ(a.status, 400u) << bytes;
    EXPECT_EQ(a.code, "MalformedRequest") << bytes;
  }
  EXPECT_EQ(Refusal("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort").status, 400u);
}

TEST(InputLimitsHttpParser, RouterRefusesParametersThatAreNotUtf8ByName) {
  Router router;
  router.Add(boost::beast::http::verb::get, "/things/{id}",
             [](const HttpRequest&, const RouteMatch& m) { return JsonResponse(200, Json{{"id", m.params.at("id")}}); });
  auto call = [&](const std::string& target) {
    HttpRequest req{boost::beast::http::verb::get, target, 11};
    HttpResponse res = router.Dispatch(req, "http://127.0.0.1:1");
    Json body;
    EXPECT_TRUE(ParseJson(res.body(), &body).ok()) << res.body();
    return std::make_pair(res.result_int(), body);
  };
  auto [ok, ok_body] = call("/things/caf%C3%A9");
  EXPECT_EQ(ok, 200u);
  EXPECT_EQ(ok_body["id"], "caf\xc3\xa9");
  auto [bad, bad_body] = call("/things/%ff%fe");
  EXPECT_EQ(bad, 400u);
  EXPECT_EQ(bad_body["error"]["field"], "id");
  auto [query, query_body] = call("/things/x?reason=%ff");
  EXPECT_EQ(query, 400u);
  EXPECT_EQ(query_body["error"]["field"], "reason");
  auto [unknown, unknown_body] = call("/other/%ff");
  EXPECT_EQ(unknown, 404u);  // no route: a 404 whose message is still valid JSON
}

TEST(InputLimitsHttpParser, PublicUrlsAreCheckedBeforeUse) {
  for (const char* good : {"http://127.0.0.1:8080", "https://baton.example.com", "http://[::1]:8080",
                           "https://example.com/baton"}) {
    EXPECT_TRUE(IsValidPublicUrl(good)) << good;
  }
  for (const char* bad : {"", "ftp://x", "http://", "http://x/", "http://x?y", "http://x#y", "http://u@x",
                          "http://x:99999", "http://x:", "http://x y", "http://[::1"}) {
    EXPECT_FALSE(IsValidPublicUrl(bad)) << bad;
  }
}

}  // namespace
}  // namespace baton::api
