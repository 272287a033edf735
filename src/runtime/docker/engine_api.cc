#include "runtime/docker/engine_api.h"

#include <openssl/evp.h>

#include <cstdio>

namespace baton::runtime::docker {
namespace {

std::string Base64Url(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(n);
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

}  // namespace

// A time as the events API takes it: "<unix seconds>.<microseconds>".
std::string EventTime(TimePoint t) {
  int64_t us = ToUnixMicros(t);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%lld.%06lld", static_cast<long long>(us / 1000000),
                static_cast<long long>(us % 1000000));
  return buf;
}

// An Engine API answer (or one line of a stream) through the one JSON entry
// point; a discarded value when it is not JSON within ParseJson's limits.
Json ParseAnswer(std::string_view text) {
  Json j;
  if (!ParseJson(text, &j).ok()) return Json(Json::value_t::discarded);
  return j;
}

// Docker's error message from a non-2xx answer.
std::string MessageOf(const DockerResponse& r) {
  Json j = ParseAnswer(r.body);
  if (j.is_object() && j.contains("message") && j["message"].is_string()) return j["message"];
  return r.body.substr(0, 300);
}

// Replaces every secret value in `text` (errors may quote what was sent).
std::string Scrub(std::string text, const std::vector<std::string>& secrets) {
  for (const std::string& secret : secrets) {
    if (secret.size() < 2) continue;
    for (size_t pos; (pos = text.find(secret)) != std::string::npos;) text.replace(pos, secret.size(), "***");
  }
  return text;
}

Status FromDocker(const DockerResponse& r, const std::string& what, const std::vector<std::string>& secrets) {
  std::string message = what + ": " + Scrub(MessageOf(r), secrets);
  switch (r.status) {
    case 400: return InvalidArgumentError(message);
    case 404: return NotFoundError(message);
    case 409: return FailedPreconditionError(message);
    default: return InternalError(message + " (HTTP " + std::to_string(r.status) + ")");
  }
}

std::optional<TimePoint> DockerTime(const Json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_string()) return std::nullopt;
  const std::string& text = j[key].get_ref<const std::string&>();
  if (text.rfind("0001-01-01", 0) == 0) return std::nullopt;  // Docker's "never"
  TimePoint t;
  if (!ParseIso8601(text, &t)) return std::nullopt;
  return t;
}

std::string RegistryAuthHeader(const RegistryCredentials& c) {
  return Base64Url(Json{{"username", c.username}, {"password", c.password}, {"serveraddress", c.server}}.dump());
}

// "host:5000/a/b:tag" -> ("host:5000/a/b", "tag"); "repo@sha256:…" -> ("repo", "sha256:…").
std::pair<std::string, std::string> SplitReference(const std::string& image) {
  size_t at = image.find('@');
  if (at != std::string::npos) return {image.substr(0, at), image.substr(at + 1)};
  size_t slash = image.rfind('/');
  size_t colon = image.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    return {image.substr(0, colon), image.substr(colon + 1)};
  }
  return {image, "latest"};
}

std::string FilterJson(const std::map<std::string, std::string>& labels) {
  Json l = Json::array();
  for (const auto& [k, v] : labels) l.push_back(k + "=" + v);
  return QueryEscape(Json{{"label", l}}.dump());
}

bool LogDemuxer::Feed(std::string_view data) {
  pending_.append(data);
  size_t i = 0;
  while (i + 8 <= pending_.size()) {
    int type = static_cast<unsigned char>(pending_[i]);
    uint32_t size = (static_cast<uint32_t>(static_cast<unsigned char>(pending_[i + 4])) << 24) |
                    (static_cast<uint32_t>(static_cast<unsigned char>(pending_[i + 5])) << 16) |
                    (static_cast<uint32_t>(static_cast<unsigned char>(pending_[i + 6])) << 8) |
                    static_cast<uint32_t>(static_cast<unsigned char>(pending_[i + 7]));
    if (i + 8 + size > pending_.size()) break;
    if (type == 1 || type == 2) {
      std::string& acc = partial_[type];
      acc.append(pending_, i + 8, size);
      for (size_t nl; (nl = acc.find('\n')) != std::string::npos;) {
        std::string text = acc.substr(0, nl);
        acc.erase(0, nl + 1);
        if (!Emit(type, std::move(text))) return false;
      }
      // A line without end is cut, so that no output is held whole.
      while (acc.size() > kMaxLineBytes) {
        std::string text = acc.substr(0, kMaxLineBytes);
        acc.erase(0, kMaxLineBytes);
        if (!Emit(type, std::move(text))) return false;
      }
    }
    i += 8 + size;
  }
  pending_.erase(0, i);
  return true;
}

void LogDemuxer::Finish() {
  for (int t : {1, 2}) {
    if (!partial_[t].empty()) Emit(t, std::move(partial_[t]));
    partial_[t].clear();
  }
}

bool LogDemuxer::Emit(int type, std::string text) {
  LogLine line;
  line.stream = type == 1 ? LogLine::Stream::kStdout : LogLine::Stream::kStderr;
  size_t space = text.find(' ');
  if (space != std::string::npos && ParseIso8601(std::string_view(text).substr(0, space), &line.time)) {
    text.erase(0, space + 1);
  }
  line.text = std::move(text);
  return emit_(std::move(line));
}

}  // namespace baton::runtime::docker
