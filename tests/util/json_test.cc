// The JSON entry point (baton/json.h), UTF-8 validation and percent-encoding:
// the limits every parser of untrusted text relies on.
#include "baton/json.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "baton/clock.h"

#include "util/url.h"
#include "util/utf8.h"

namespace baton {
namespace {

std::string Nested(int depth, char open = '[', char close = ']') {
  return std::string(depth, open) + std::string(depth, close);
}

TEST(InputLimitsJson, ParsesUpToTheDepthLimitAndRefusesOneMore) {
  Json j;
  EXPECT_TRUE(ParseJson(Nested(kMaxJsonDepth), &j).ok());
  EXPECT_EQ(j.dump().size(), static_cast<size_t>(2 * kMaxJsonDepth));
  Json before = Json{{"kept", true}};
  Json out = before;
  Status s = ParseJson(Nested(kMaxJsonDepth + 1), &out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("nested deeper than 128 levels"), std::string::npos) << s.message();
  EXPECT_EQ(out, before) << "a refused text leaves the output alone";
  // Objects count like arrays, and so do mixed levels.
  std::string objects;
  for (int i = 0; i < kMaxJsonDepth + 1; ++i) objects += "{\"a\":";
  objects += "1" + std::string(kMaxJsonDepth + 1, '}');
  EXPECT_FALSE(ParseJson(objects, &j).ok());
  EXPECT_TRUE(ParseJson(Nested(3, '['), &j, JsonLimits{3, 0}).ok());
  EXPECT_FALSE(ParseJson(Nested(4, '['), &j, JsonLimits{3, 0}).ok());
}

TEST(InputLimitsJson, HundredThousandLevelsAreRefusedWithoutRecursion) {
  Json j;
  Status s = ParseJson(Nested(100000), &j);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  // Deep and unbalanced, and deep then invalid: refused before a value exists.
  EXPECT_FALSE(ParseJson(std::string(100000, '['), &j).ok());
  EXPECT_FALSE(ParseJson(std::string(100000, '{'), &j).ok());
}

TEST(InputLimitsJson, BracketsInsideStringsDoNotCount) {
  Json j;
  const std::string text = "[\"" + std::string(1000, '[') + "\\\"" + std::string(1000, '{') + "\"]";
  ASSERT_TRUE(ParseJson(text, &j).ok());
  EXPECT_EQ(j[0].get<std::string>().size(), 2001u);
  // An escaped backslash ends the escape: the quote after it closes the string.
  ASSERT_TRUE(ParseJson(R"(["\\", [1]])", &j).ok());
  EXPECT_EQ(j[1][0], 1);
}

TEST(InputLimitsJson, InvalidUtf8IsRefusedWithItsOffset) {
  Json j;
  for (const std::string& bad : {std::string("\"\xff\xfe\""), std::string("\"\xc0\xaf\""),  // overlong '/'
                                 std::string("\"\xed\xa0\x80\""),                              // surrogate
                                 std::string("\"\xf4\x90\x80\x80\""),                          // > U+10FFFF
                                 std::string("\"abc\xe2\x82\""), std::string("\xff")}) {
    Status s = ParseJson(bad, &j);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("not valid UTF-8"), std::string::npos) << s.message();
  }
  EXPECT_NE(ParseJson("\"abc\xff\"", &j).message().find("(byte 4)"), std::string::npos);
  ASSERT_TRUE(ParseJson("\"caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x8e\xbb\"", &j).ok());
  EXPECT_EQ(j.get<std::string>(), "caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x8e\xbb");
  // Escaped lone surrogates are nlohmann's to refuse, as a syntax error.
  EXPECT_FALSE(ParseJson(R"("\ud800")", &j).ok());
}

TEST(InputLimitsJson, SyntaxErrorsSayWhereAndSizeIsBounded) {
  Json j;
  Status s = ParseJson("{\"a\": tru}", &j);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message().rfind("is not valid JSON: ", 0), 0u) << s.message();
  EXPECT_NE(s.message().find("column"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find("[json.exception"), std::string::npos) << s.message();
  EXPECT_FALSE(ParseJson("", &j).ok());
  EXPECT_FALSE(ParseJson("1 2", &j).ok());
  EXPECT_FALSE(ParseJson("1e999", &j).ok());
  // A long bad token is quoted, but the message stays short.
  EXPECT_LT(ParseJson("\"" + std::string(100000, 'x'), &j).message().size(), 400u);
  Status big = ParseJson("[1,2,3]", &j, JsonLimits{kMaxJsonDepth, 5});
  EXPECT_NE(big.message().find("larger than 5 bytes"), std::string::npos) << big.message();
  OrderedJson o;
  ASSERT_TRUE(ParseJson(R"({"z":1,"a":2})", &o).ok());
  EXPECT_EQ(o.dump(), R"({"z":1,"a":2})");
  EXPECT_FALSE(ParseJson(Nested(200), &o).ok());
}

// ValidateJson accepts and refuses what ParseJson does, with its messages,
// and builds nothing: a JsonText payload keeps its bytes.
TEST(InputLimitsJson, ValidateJsonMatchesParseJson) {
  for (std::string text : std::vector<std::string>{"null", " {\"z\":1,\"a\":[true,null]} ", "0", "\"\"", "1.50", "[]"}) {
    Json j;
    EXPECT_TRUE(ParseJson(text, &j).ok()) << text;
    EXPECT_TRUE(ValidateJson(text).ok()) << text;
  }
  for (std::string text : std::vector<std::string>{"", "{\"a\":", "nul", "1 2", "\xff",
                                                   std::string(129, '[') + std::string(129, ']')}) {
    Json j;
    Status parsed = ParseJson(text, &j);
    Status validated = ValidateJson(text);
    EXPECT_FALSE(validated.ok()) << text;
    EXPECT_EQ(validated.message(), parsed.message()) << text;
  }
  EXPECT_FALSE(ValidateJson("[1]", JsonLimits{.max_depth = 128, .max_bytes = 2}).ok());
}

TEST(InputLimitsJson, FromPayloadNeverThrowsAndNeverBuildsDeepValues) {
  EXPECT_TRUE(FromPayload("").is_null());
  EXPECT_EQ(FromPayload("[1]"), Json::array({1}));
  EXPECT_EQ(FromPayload("hello"), Json("hello"));  // not JSON: the text as a string
  const std::string deep = Nested(100000);
  Json d = FromPayload(deep);
  ASSERT_TRUE(d.is_string());
  EXPECT_EQ(d.get<std::string>().size(), deep.size());
  Json bad = FromPayload("a\xff" "b");
  ASSERT_TRUE(bad.is_string());
  EXPECT_EQ(bad.get<std::string>(), "a\xef\xbf\xbd" "b");
  EXPECT_NO_THROW(bad.dump());
}

TEST(InputLimitsJson, DumpNeverThrowsOnInvalidUtf8) {
  Json j = {{"text", std::string("log line \xff\xfe")}};
  EXPECT_THROW(j.dump(), Json::type_error);
  EXPECT_EQ(DumpJson(j), "{\"text\":\"log line \xef\xbf\xbd\xef\xbf\xbd\"}");
  EXPECT_EQ(ToPayload(j), DumpJson(j));
  EXPECT_EQ(ToPayload(Json()), "");
}

TEST(InputLimitsJson, IntegersAreRangeCheckedNotTruncated) {
  auto parse = [](const std::string& text) {
    Json j;
    EXPECT_TRUE(ParseJson(text, &j).ok()) << text;
    return j;
  };
  EXPECT_EQ(parse("4294967376").get<int>(), 80) << "what nlohmann's get<int>() does";
  EXPECT_FALSE(JsonInteger(parse("4294967376"), 1, 65535));
  EXPECT_FALSE(JsonInteger(parse("4294967297"), 1, 100));
  EXPECT_FALSE(JsonInteger(parse("18446744073709551615"), -1, 100)) << "not -1";
  EXPECT_FALSE(JsonInteger(parse("9223372036854775808"), 0, INT64_MAX));
  EXPECT_EQ(JsonInteger(parse("9223372036854775807"), 0, INT64_MAX), INT64_MAX);
  EXPECT_EQ(JsonInteger(parse("-9223372036854775808"), INT64_MIN, 0), INT64_MIN);
  EXPECT_EQ(JsonInteger(parse("80"), 1, 65535), 80);
  EXPECT_EQ(JsonInteger(parse("-100"), -100, 100), -100);
  EXPECT_FALSE(JsonInteger(parse("-101"), -100, 100));
  EXPECT_FALSE(JsonInteger(parse("80.0"), 1, 65535));
  EXPECT_FALSE(JsonInteger(parse("8e1"), 1, 65535));
  EXPECT_FALSE(JsonInteger(parse("\"80\""), 1, 65535));
  EXPECT_FALSE(JsonInteger(parse("5"), 6, 10));
  EXPECT_FALSE(JsonInteger(parse("5"), -10, -6));
  OrderedJson o;
  ASSERT_TRUE(ParseJson("4294967297", &o).ok());
  EXPECT_FALSE(JsonInteger(o, INT32_MIN, INT32_MAX));
}

TEST(InputLimitsJson, Utf8ValidationFollowsRfc3629) {
  size_t at = 99;
  EXPECT_TRUE(util::IsValidUtf8(""));
  EXPECT_TRUE(util::IsValidUtf8("plain \xc2\xa9 \xe2\x82\xac \xf0\x90\x8d\x88"));
  EXPECT_FALSE(util::IsValidUtf8("ab\xc1\xbf", &at));  // overlong
  EXPECT_EQ(at, 2u);
  EXPECT_FALSE(util::IsValidUtf8("\xe0\x80\xaf"));      // overlong
  EXPECT_FALSE(util::IsValidUtf8("\xed\xbf\xbf"));      // surrogate
  EXPECT_FALSE(util::IsValidUtf8("\xf5\x80\x80\x80"));  // beyond U+10FFFF
  EXPECT_FALSE(util::IsValidUtf8("\x80"));              // lone continuation
  EXPECT_FALSE(util::IsValidUtf8("\xf0\x90\x8d"));      // cut short
  EXPECT_EQ(util::ToValidUtf8("ok"), "ok");
  EXPECT_EQ(util::ToValidUtf8("\xff" "a\xe2\x82"), "\xef\xbf\xbd" "a\xef\xbf\xbd\xef\xbf\xbd");
}

TEST(InputLimitsJson, PercentEncodingRoundTrips) {
  const std::string raw = "a b/c?d&e=f+g%\xc3\xa9::x";
  std::string encoded = util::PercentEncode(raw);
  EXPECT_EQ(encoded, "a%20b%2Fc%3Fd%26e%3Df%2Bg%25%C3%A9%3A%3Ax");
  std::string decoded;
  ASSERT_TRUE(util::PercentDecode(encoded, &decoded));
  EXPECT_EQ(decoded, raw);
  EXPECT_FALSE(util::PercentDecode("%4", &decoded));
  EXPECT_FALSE(util::PercentDecode("%zz", &decoded));
  ASSERT_TRUE(util::PercentDecode("%ff%fe", &decoded));
  EXPECT_FALSE(util::IsValidUtf8(decoded));
}

// Found by the history fuzz target: year 1013 overflowed the nanoseconds of
// a TimePoint (undefined behaviour) in every parser of times.
TEST(InputLimitsJson, TimesATimePointCannotHoldAreRefused) {
  TimePoint t;
  EXPECT_FALSE(ParseIso8601("1013-01-01T02:00:03.000000Z", &t));
  EXPECT_FALSE(ParseIso8601("9999-12-31T23:59:59Z", &t));
  EXPECT_FALSE(ParseIso8601("1677-01-01T00:00:00Z", &t));
  ASSERT_TRUE(ParseIso8601("1678-01-01T00:00:00Z", &t));
  EXPECT_EQ(FormatIso8601(t), "1678-01-01T00:00:00.000000Z");
  ASSERT_TRUE(ParseIso8601("2261-12-31T23:59:59Z", &t));
  EXPECT_EQ(FormatIso8601(t), "2261-12-31T23:59:59.000000Z");
  EXPECT_EQ(FromUnixMicros(INT64_MAX), FromUnixMicros(INT64_MAX / 1000));  // saturates
  EXPECT_EQ(FromUnixMicros(INT64_MIN), FromUnixMicros(-(INT64_MAX / 1000)));
}

}  // namespace
}  // namespace baton
