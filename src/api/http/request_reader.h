// Reading one HTTP/1.1 request with the server's limits, and the JSON error
// answer for each way a request can be malformed (docs/http-api.md#errors).
//
// The server reads in two steps on one Beast parser: the request line and
// headers (at most `max_header_bytes`), which CheckHeader then vets before a
// byte of the body is read, and the body (at most `max_body_bytes`). A
// request refused at either step is answered, and its connection closed: once
// framing is in doubt, nothing after it on the connection can be trusted.
//
//   request line + headers over the limit          431 RequestHeaderFieldsTooLarge
//   body over the limit (declared or as it arrives) 413 PayloadTooLarge
//   Content-Length twice, not a decimal number, or
//   with Transfer-Encoding                         400 MalformedRequest (field Content-Length)
//   Transfer-Encoding other than "chunked"          501 NotImplemented (field Transfer-Encoding)
//   anything else Beast's strict parser refuses
//   (bare LF, bad method, target or version,
//   bad header field or chunk)                     400 MalformedRequest
//
// ParseRequest runs the same steps over bytes already in memory: the unit
// tests and the fuzzer (tests/fuzz/) use it, the server uses the pieces.
//
// Thread-safety: free functions of their arguments.
#pragma once

#include <boost/beast/http.hpp>
#include <cstddef>
#include <optional>
#include <string_view>
#include <variant>

#include "api/http/http_server.h"

namespace baton::api {

struct RequestLimits {
  size_t max_header_bytes = kMaxHeaderBytes;
  size_t max_body_bytes = kMaxBodyBytes;
};

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

// Applies the limits to a fresh parser.
void ConfigureParser(const RequestLimits& limits, RequestParser* parser);

// After the header is read: the answer for a header Baton refuses (framing it
// does not support or cannot trust), or nullopt.
std::optional<HttpResponse> CheckHeader(const RequestParser& parser);

// The answer for a read that failed with `ec`, or nullopt when there is no one
// left to answer (end of stream, a request cut short, timeout, reset).
// `parser` is the one that failed (its partial header tells conflicts apart).
std::optional<HttpResponse> ReadErrorResponse(const boost::system::error_code& ec, const RequestParser& parser,
                                              const RequestLimits& limits);

// Whether the client asked to be told to go on before it sends the body.
bool ExpectsContinue(const RequestParser& parser);

// One request from `bytes`: the request, or the answer the server would send
// (a request cut short is 400 here, where the server would wait for more).
// Bytes after the first request are ignored.
std::variant<HttpRequest, HttpResponse> ParseRequest(std::string_view bytes, const RequestLimits& limits);

}  // namespace baton::api
