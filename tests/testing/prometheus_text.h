// A strict reader of the Prometheus text exposition format (0.0.4), for the
// tests of /metrics: every line must be a "# HELP", a "# TYPE" or a sample
// `name{label="value",...} number`; a family's TYPE comes before its samples
// and at most once; a histogram's buckets are cumulative, end with le="+Inf"
// and that bucket equals its _count. Written from the format's description
// (prometheus.io/docs/instrumenting/exposition_formats), not from our writer.
#pragma once

#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace baton::testing {

struct PromSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct PromText {
  std::map<std::string, std::string> types;  // family -> counter|gauge|histogram|summary|untyped
  std::vector<PromSample> samples;
  std::string error;  // "" when the text parsed

  // The sum of the samples named `name` whose labels include `match`.
  double Sum(const std::string& name, const std::map<std::string, std::string>& match = {}) const {
    double total = 0;
    for (const PromSample& s : samples) {
      if (s.name != name) continue;
      bool ok = true;
      for (const auto& [k, v] : match) {
        auto it = s.labels.find(k);
        ok = ok && it != s.labels.end() && it->second == v;
      }
      if (ok) total += s.value;
    }
    return total;
  }
  bool Has(const std::string& name) const {
    for (const PromSample& s : samples) {
      if (s.name == name) return true;
    }
    return false;
  }
};

namespace prom_internal {

inline bool NameChar(char c, bool first, bool colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':') ||
         (!first && c >= '0' && c <= '9');
}

inline std::string ReadName(std::string_view& s, bool colon) {
  size_t i = 0;
  while (i < s.size() && NameChar(s[i], i == 0, colon)) ++i;
  std::string name(s.substr(0, i));
  s.remove_prefix(i);
  return name;
}

inline std::optional<double> ReadValue(std::string_view s) {
  if (s == "+Inf") return HUGE_VAL;
  if (s == "-Inf") return -HUGE_VAL;
  if (s == "NaN") return NAN;
  std::string text(s);
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0') return std::nullopt;
  return v;
}

// The family a sample belongs to (a histogram's _bucket/_sum/_count).
inline std::string FamilyOf(const std::string& name, const std::map<std::string, std::string>& types) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string sfx = suffix;
    if (name.size() > sfx.size() && name.compare(name.size() - sfx.size(), sfx.size(), sfx) == 0) {
      const std::string base = name.substr(0, name.size() - sfx.size());
      auto it = types.find(base);
      if (it != types.end() && (it->second == "histogram" || it->second == "summary")) return base;
    }
  }
  return name;
}

}  // namespace prom_internal

inline PromText ParsePromText(std::string_view text) {
  using namespace prom_internal;
  PromText out;
  std::set<std::string> helped, seen_samples;
  int line_no = 0;
  auto fail = [&](const std::string& why, std::string_view line) {
    out.error = "line " + std::to_string(line_no) + ": " + why + ": '" + std::string(line) + "'";
    return out;
  };
  if (!text.empty() && text.back() != '\n') {
    out.error = "the text does not end with a newline";
    return out;
  }
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    ++line_no;
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::string_view rest = line.substr(1);
      if (rest.starts_with(" HELP ") || rest.starts_with(" TYPE ")) {
        const bool is_type = rest.starts_with(" TYPE ");
        rest.remove_prefix(6);
        std::string name = ReadName(rest, true);
        if (name.empty() || rest.empty() || rest[0] != ' ') return fail("bad HELP/TYPE", line);
        rest.remove_prefix(1);
        if (is_type) {
          if (out.types.count(name)) return fail("second TYPE for " + name, line);
          if (seen_samples.count(name)) return fail("TYPE after samples of " + name, line);
          const std::string type(rest);
          if (type != "counter" && type != "gauge" && type != "histogram" && type != "summary" && type != "untyped") {
            return fail("unknown type", line);
          }
          out.types[name] = type;
        } else if (!helped.insert(name).second) {
          return fail("second HELP for " + name, line);
        }
      }
      continue;  // other comments are allowed
    }
    PromSample s;
    std::string_view rest = line;
    s.name = ReadName(rest, true);
    if (s.name.empty()) return fail("no metric name", line);
    if (!rest.empty() && rest[0] == '{') {
      rest.remove_prefix(1);
      while (!rest.empty() && rest[0] != '}') {
        std::string label = ReadName(rest, false);
        if (label.empty() || rest.size() < 2 || rest[0] != '=' || rest[1] != '"') return fail("bad label", line);
        rest.remove_prefix(2);
        std::string value;
        bool closed = false;
        while (!rest.empty()) {
          char c = rest[0];
          rest.remove_prefix(1);
          if (c == '"') {
            closed = true;
            break;
          }
          if (c == '\\') {
            if (rest.empty()) return fail("dangling escape", line);
            char e = rest[0];
            rest.remove_prefix(1);
            if (e == 'n') {
              value += '\n';
            } else if (e == '\\' || e == '"') {
              value += e;
            } else {
              return fail("bad escape", line);
            }
          } else if (c == '\n') {
            return fail("newline in a label value", line);
          } else {
            value += c;
          }
        }
        if (!closed) return fail("unterminated label value", line);
        if (!s.labels.emplace(label, value).second) return fail("label twice", line);
        if (!rest.empty() && rest[0] == ',') rest.remove_prefix(1);
      }
      if (rest.empty()) return fail("unterminated labels", line);
      rest.remove_prefix(1);
    }
    if (rest.empty() || rest[0] != ' ') return fail("no value", line);
    rest.remove_prefix(1);
    const size_t sp = rest.find(' ');  // an optional timestamp follows
    auto v = ReadValue(rest.substr(0, sp));
    if (!v) return fail("bad value", line);
    s.value = *v;
    seen_samples.insert(FamilyOf(s.name, out.types));
    out.samples.push_back(std::move(s));
  }
  // Histograms: cumulative buckets ending in +Inf == _count, per series.
  for (const auto& [family, type] : out.types) {
    if (type != "histogram") continue;
    std::map<std::string, std::vector<std::pair<double, double>>> buckets;  // series -> (le, count)
    std::map<std::string, double> counts;
    auto key_of = [](std::map<std::string, std::string> labels) {
      labels.erase("le");
      std::string k;
      for (const auto& [n, v] : labels) k += n + "=" + v + ",";
      return k;
    };
    for (const PromSample& s : out.samples) {
      if (s.name == family + "_bucket") {
        auto le = s.labels.find("le");
        if (le == s.labels.end()) {
          out.error = family + ": a bucket without le";
          return out;
        }
        auto bound = ReadValue(le->second);
        if (!bound) {
          out.error = family + ": bad le " + le->second;
          return out;
        }
        buckets[key_of(s.labels)].emplace_back(*bound, s.value);
      } else if (s.name == family + "_count") {
        counts[key_of(s.labels)] = s.value;
      }
    }
    for (const auto& [series, list] : buckets) {
      for (size_t i = 1; i < list.size(); ++i) {
        if (list[i].first <= list[i - 1].first || list[i].second < list[i - 1].second) {
          out.error = family + ": buckets not increasing for {" + series + "}";
          return out;
        }
      }
      if (list.empty() || !std::isinf(list.back().first) || !counts.count(series) ||
          counts[series] != list.back().second) {
        out.error = family + ": +Inf bucket missing or not equal to _count for {" + series + "}";
        return out;
      }
    }
  }
  return out;
}

}  // namespace baton::testing
