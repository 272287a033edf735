#include "api/http/request_reader.h"

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/string.hpp>

namespace baton::api {

namespace http = boost::beast::http;

namespace {

std::string_view Trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

HttpResponse Malformed(std::string_view why, std::string_view field = "") {
  return ErrorResponse(400, "MalformedRequest", "malformed HTTP request: " + std::string(why), field);
}

}  // namespace

void ConfigureParser(const RequestLimits& limits, RequestParser* parser) {
  parser->header_limit(static_cast<std::uint32_t>(std::min<size_t>(limits.max_header_bytes, UINT32_MAX)));
  parser->body_limit(limits.max_body_bytes);
}

std::optional<HttpResponse> CheckHeader(const RequestParser& parser) {
  const HttpRequest& req = parser.get();
  const size_t lengths = req.count(http::field::content_length);
  const size_t encodings = req.count(http::field::transfer_encoding);
  if (lengths > 0 && encodings > 0) {
    return Malformed("Content-Length together with Transfer-Encoding", "Content-Length");
  }
  if (lengths > 1) return Malformed("more than one Content-Length", "Content-Length");
  if (lengths == 1) {
    std::string_view v = Trim(req[http::field::content_length]);
    if (v.empty() || !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return Malformed("Content-Length is not a decimal number", "Content-Length");
    }
  }
  if (encodings > 1 || (encodings == 1 && !boost::beast::iequals(Trim(req[http::field::transfer_encoding]), "chunked"))) {
    return ErrorResponse(501, "NotImplemented", "the only transfer coding supported is \"chunked\"",
                         "Transfer-Encoding");
  }
  return std::nullopt;
}

std::optional<HttpResponse> ReadErrorResponse(const boost::system::error_code& ec, const RequestParser& parser,
                                              const RequestLimits& limits) {
  if (ec == http::error::header_limit) {
    return ErrorResponse(431, "RequestHeaderFieldsTooLarge",
                         "the request line and headers exceed " + std::to_string(limits.max_header_bytes) + " bytes",
                         "header");
  }
  if (ec == http::error::body_limit) {
    return ErrorResponse(413, "PayloadTooLarge",
                         "the request body exceeds " + std::to_string(limits.max_body_bytes) + " bytes", "body");
  }
  if (ec == http::error::bad_content_length || ec == http::error::multiple_content_length) {
    // Also what Beast reports for a Content-Length after "Transfer-Encoding: chunked".
    if (parser.get().count(http::field::transfer_encoding) > 0) {
      return Malformed("Content-Length together with Transfer-Encoding", "Content-Length");
    }
    return Malformed(ec == http::error::multiple_content_length ? "conflicting Content-Length values"
                                                                : "Content-Length is not a decimal number",
                     "Content-Length");
  }
  if (ec == http::error::bad_transfer_encoding) {
    if (parser.get().count(http::field::content_length) > 0) {
      return Malformed("Content-Length together with Transfer-Encoding", "Content-Length");
    }
    return Malformed("Transfer-Encoding given twice", "Transfer-Encoding");
  }
  if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
      ec != http::error::end_of_stream && ec != http::error::partial_message && ec != http::error::need_more &&
      ec != http::error::short_read) {
    return Malformed(ec.message());
  }
  return std::nullopt;  // the connection is gone or timed out: no one to answer
}

bool ExpectsContinue(const RequestParser& parser) {
  return boost::beast::iequals(Trim(parser.get()[http::field::expect]), "100-continue");
}

std::variant<HttpRequest, HttpResponse> ParseRequest(std::string_view bytes, const RequestLimits& limits) {
  RequestParser parser;
  ConfigureParser(limits, &parser);
  size_t used = 0;
  // Feeds what is left until `done` holds; an error, or need_more when
  // everything was given (the request was cut short).
  auto feed = [&](auto done) -> boost::system::error_code {
    while (!done()) {
      boost::system::error_code ec;
      const size_t n = parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
      used += n;
      if (ec && ec != http::error::need_more) return ec;
      // No progress, or nothing left to give: the request was cut short.
      if (n == 0 || used == bytes.size()) {
        if (done()) break;
        return http::error::need_more;
      }
    }
    return {};
  };
  auto cut_short = [] { return Malformed("the request ends before it is complete"); };
  boost::system::error_code ec = feed([&] { return parser.is_header_done(); });
  if (ec == http::error::need_more) return cut_short();
  if (ec) {
    auto answer = ReadErrorResponse(ec, parser, limits);
    return answer ? std::move(*answer) : cut_short();
  }
  if (auto refused = CheckHeader(parser)) return std::move(*refused);
  ec = feed([&] { return parser.is_done(); });
  if (ec == http::error::need_more) return cut_short();
  if (ec) {
    auto answer = ReadErrorResponse(ec, parser, limits);
    return answer ? std::move(*answer) : cut_short();
  }
  return parser.release();
}

}  // namespace baton::api
