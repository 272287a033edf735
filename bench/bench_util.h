// Helpers shared by the benchmark programs in bench/: time and percentiles, a
// keep-alive HTTP connection to a `baton serve` on loopback, the bench tenant.
//
// Benchmark code only: errors throw (the HTTP calls throw boost::system_error
// when the connection fails or a call exceeds its deadline).
#pragma once

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "baton/json.h"

namespace baton::bench {

using Clock_ = std::chrono::steady_clock;

// A duration (of any clock) in milliseconds.
template <class Rep, class Period>
double Ms(std::chrono::duration<Rep, Period> d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// The nearest-rank percentile `p` (0..1) of `v`; 0 for an empty `v`.
inline double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  return v[i];
}

// One keep-alive HTTP connection to the server on 127.0.0.1. Not thread-safe:
// one per client thread.
class HttpConnection {
 public:
  explicit HttpConnection(unsigned short port) : stream_(io_) {
    boost::asio::ip::tcp::resolver resolver(io_);
    stream_.connect(resolver.resolve("127.0.0.1", std::to_string(port)));
  }
  // Returns the status code and fills `body`. Each call must finish within
  // 120 s (longer than any server-side wait the benchmarks ask for).
  int Call(boost::beast::http::verb method, const std::string& target, const std::string& key,
           const std::string& body_in, std::string* body) {
    namespace http = boost::beast::http;
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::authorization, "Bearer " + key);
    req.set(http::field::content_type, "application/json");
    req.keep_alive(true);
    req.body() = body_in;
    req.prepare_payload();
    stream_.expires_after(std::chrono::seconds(120));
    http::write(stream_, req);
    http::response<http::string_body> res;
    http::read(stream_, buffer_, res);
    *body = std::move(res.body());
    return res.result_int();
  }

 private:
  boost::asio::io_context io_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
};

// Creates the tenant "bench" and returns a key for it.
inline std::string BenchTenantKey(HttpConnection& admin, const std::string& admin_key) {
  namespace http = boost::beast::http;
  std::string body;
  admin.Call(http::verb::post, "/api/v1/admin/tenants", admin_key, R"({"id":"bench"})", &body);
  // A benchmark measures Baton, not the admission limits a tenant has by
  // default (docs/SECURITY.md): the bench tenant may go as fast as it can, and
  // run the sample images.
  admin.Call(http::verb::patch, "/api/v1/admin/tenants/bench/settings", admin_key,
             R"({"grants":{"imagePrefixes":["127.0.0.1:5000/samples/"]},)"
             R"("limits":{"requestsPerSecond":1000000,"burst":1000000,"maxQueuedJobs":1000000,"maxInstances":1000000000}})",
             &body);
  admin.Call(http::verb::post, "/api/v1/admin/tenants/bench/keys", admin_key, "{}", &body);
  return Json::parse(body)["key"];
}

}  // namespace baton::bench
