#include "util/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace baton::util::metrics {

void SetEnabled(bool enabled) { internal::g_enabled.store(enabled, std::memory_order_relaxed); }

namespace {

bool ValidName(std::string_view name, bool allow_colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':') ||
                    (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

[[noreturn]] void Misuse(const std::string& what) {
  std::fprintf(stderr, "baton: metrics: %s\n", what.c_str());
  std::abort();
}

// Prometheus floats: integers without a fraction, +Inf/-Inf/NaN by name.
std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof(buf), "%.0f", v);
  } else {
    std::snprintf(buf, sizeof(buf), "%.9g", v);
  }
  return buf;
}

const char* KindName(int kind) {
  switch (kind) {
    case 0: return "counter";
    case 1: return "gauge";
    default: return "histogram";
  }
}

std::string EscapeHelp(std::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// Labels plus one more (`le` of a bucket).
std::string RenderWith(const Labels& labels, const std::string& name, const std::string& value) {
  Labels all = labels;
  all.emplace_back(name, value);
  return RenderLabels(all);
}

}  // namespace

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string RenderLabels(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ',';
    out += labels[i].first;
    out += "=\"";
    out += EscapeLabelValue(labels[i].second);
    out += '"';
  }
  out += '}';
  return out;
}

std::span<const double> LatencyBounds() {
  static const double kBounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                   0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10, 30};
  return kBounds;
}

Histogram::Histogram(std::span<const double> bounds_seconds)
    : bounds_s_(bounds_seconds.begin(), bounds_seconds.end()),
      buckets_(new std::atomic<uint64_t>[bounds_seconds.size() + 1]) {
  for (size_t i = 0; i < bounds_s_.size(); ++i) {
    if (!std::isfinite(bounds_s_[i]) || (i > 0 && bounds_s_[i] <= bounds_s_[i - 1])) {
      Misuse("histogram bounds must be finite and strictly increasing");
    }
    bounds_ns_.push_back(static_cast<int64_t>(std::llround(bounds_s_[i] * 1e9)));
  }
  for (size_t i = 0; i <= bounds_s_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(std::chrono::nanoseconds d) {
  if (!Enabled()) return;
  const int64_t ns = std::max<int64_t>(0, d.count());
  // A handful of bounds: a linear scan beats a binary search's branches.
  size_t i = 0;
  while (i < bounds_ns_.size() && ns > bounds_ns_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(ns), std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Snap() const {
  Snapshot s;
  s.bounds = bounds_s_;
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_s_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  // Read without a lock while observations go on: the +Inf bucket is the
  // sum of the buckets read, so buckets and count always agree.
  s.count = running;
  s.sum_seconds = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
  return s;
}

Registry::Series& Registry::Find(const std::string& name, const std::string& help, Kind kind,
                                 const Labels& labels) {
  if (!ValidName(name, /*allow_colon=*/true)) Misuse("bad metric name '" + name + "'");
  for (const auto& [label, value] : labels) {
    if (!ValidName(label, /*allow_colon=*/false) || label == "le") Misuse("bad label name '" + label + "'");
  }
  std::lock_guard lock(mu_);
  auto [it, inserted] = families_.try_emplace(name, Family{kind, help, {}});
  if (!inserted && it->second.kind != kind) Misuse("metric '" + name + "' registered as two kinds");
  Series& series = it->second.series[RenderLabels(labels)];
  if (series.labels.empty() && !labels.empty()) series.labels = labels;
  return series;
}

Counter& Registry::GetCounter(const std::string& name, const std::string& help, const Labels& labels) {
  Series& s = Find(name, help, Kind::kCounter, labels);
  std::lock_guard lock(mu_);
  if (!s.counter) s.counter = std::make_unique<class Counter>();
  return *s.counter;
}

Gauge& Registry::GetGauge(const std::string& name, const std::string& help, const Labels& labels) {
  Series& s = Find(name, help, Kind::kGauge, labels);
  std::lock_guard lock(mu_);
  if (!s.gauge) s.gauge = std::make_unique<class Gauge>();
  return *s.gauge;
}

Histogram& Registry::GetHistogram(const std::string& name, const std::string& help, const Labels& labels,
                                  std::span<const double> bounds_seconds) {
  Series& s = Find(name, help, Kind::kHistogram, labels);
  std::lock_guard lock(mu_);
  if (!s.histogram) s.histogram = std::make_unique<class Histogram>(bounds_seconds);
  return *s.histogram;
}

uint64_t Registry::AddCollector(std::function<void(Sink&)> collect) {
  std::lock_guard lock(collectors_mu_);
  const uint64_t id = next_collector_++;
  collectors_[id] = std::move(collect);
  return id;
}

void Registry::RemoveCollector(uint64_t id) {
  std::lock_guard lock(collectors_mu_);  // held by Expose() while collectors run
  collectors_.erase(id);
}

std::string Registry::Expose() {
  // Rendered families by name: kind, help and sample lines.
  struct Out {
    int kind = 1;
    std::string help;
    std::map<std::string, std::string> lines;  // by labels: sorted, deduplicated
  };
  std::map<std::string, Out> out;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, family] : families_) {
      Out& o = out[name];
      o.kind = static_cast<int>(family.kind);
      o.help = family.help;
      for (const auto& [rendered, series] : family.series) {
        if (series.counter) {
          o.lines[rendered] = name + rendered + " " + FormatValue(static_cast<double>(series.counter->Value()));
        } else if (series.gauge) {
          o.lines[rendered] = name + rendered + " " + FormatValue(static_cast<double>(series.gauge->Value()));
        } else if (series.histogram) {
          Histogram::Snapshot s = series.histogram->Snap();
          std::string text;
          for (size_t i = 0; i < s.cumulative.size(); ++i) {
            const std::string le = i < s.bounds.size() ? FormatValue(s.bounds[i]) : "+Inf";
            text += name + "_bucket" + RenderWith(series.labels, "le", le) + " " +
                    FormatValue(static_cast<double>(s.cumulative[i])) + "\n";
          }
          text += name + "_sum" + rendered + " " + FormatValue(s.sum_seconds) + "\n";
          text += name + "_count" + rendered + " " + FormatValue(static_cast<double>(s.count));
          o.lines[rendered] = std::move(text);
        }
      }
    }
  }
  class CollectSink final : public Sink {
   public:
    explicit CollectSink(std::map<std::string, Out>& out) : out_(out) {}
    void Gauge(std::string_view name, std::string_view help, const Labels& labels, double value) override {
      Add(name, help, 1, labels, value);
    }
    void Counter(std::string_view name, std::string_view help, const Labels& labels, double value) override {
      Add(name, help, 0, labels, value);
    }

   private:
    void Add(std::string_view name, std::string_view help, int kind, const Labels& labels, double value) {
      std::string n(name);
      if (!ValidName(n, true)) return;  // a collector's mistake: dropped, never a broken exposition
      for (const auto& [label, v] : labels) {
        if (!ValidName(label, false) || label == "le") return;
      }
      auto [it, inserted] = out_.try_emplace(n);
      if (inserted) {
        it->second.kind = kind;
        it->second.help = std::string(help);
      } else if (it->second.kind != kind) {
        return;
      }
      const std::string rendered = RenderLabels(labels);
      it->second.lines[rendered] = n + rendered + " " + FormatValue(value);
    }
    std::map<std::string, Out>& out_;
  } sink(out);
  {
    std::lock_guard lock(collectors_mu_);
    for (auto& [id, collect] : collectors_) collect(sink);
  }
  std::string text;
  for (const auto& [name, o] : out) {
    if (o.lines.empty()) continue;
    text += "# HELP " + name + " " + EscapeHelp(o.help) + "\n";
    text += "# TYPE " + name + " " + KindName(o.kind) + "\n";
    for (const auto& [labels, line] : o.lines) text += line + "\n";
  }
  return text;
}

Registry& Default() {
  static Registry* registry = new Registry();  // never destroyed: metrics outlive every static user
  return *registry;
}

}  // namespace baton::util::metrics
