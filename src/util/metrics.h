// Metrics: the process's counters, gauges and latency histograms, and their
// Prometheus text exposition (format 0.0.4), served by GET /metrics
// (docs/metrics.md).
//
// Why not prometheus-cpp (Debian prometheus-cpp-dev 1.0.1): its
// Histogram::Observe takes a std::mutex, its Counter is an atomic<double>
// changed in a compare-and-swap loop, and Family::Add locks and hashes the
// label map on every lookup; the engine's hot paths (every fetch, episode,
// activity and group commit) want one relaxed atomic add per event and no
// lock. What Baton needs of the format is small (counters, gauges,
// histograms, label escaping), so it is written here (~300 lines) rather
// than taking a library and a package for it.
//
// Cost model:
//   - Counter::Inc and Histogram::Observe are lock-free: one (Histogram: four)
//     relaxed atomic add(s) on the metric's own cache line(s), after a relaxed
//     load of the process switch (Enabled()). Nothing allocates.
//   - Registry::GetCounter/GetHistogram/GetGauge look a metric up by name and
//     labels under a mutex: call them once and keep the reference (metrics
//     live as long as the registry: the process), or once per request where
//     the labels vary per request (HTTP routes), never per engine event.
//   - Collectors (gauges read at scrape time: queue depths, jobs by tenant)
//     run only when /metrics is read.
//
// The switch: SetEnabled(false) (`baton serve --metrics off`) turns every
// Inc/Observe into one load and a branch, and stops the callers' timing
// (ShouldTime()); /metrics then answers 404.
//
// Thread-safety: everything here may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace baton::util::metrics {

namespace internal {
inline std::atomic<bool> g_enabled{true};
}  // namespace internal

// Whether metrics are recorded. Process-wide; on by default.
inline bool Enabled() { return internal::g_enabled.load(std::memory_order_relaxed); }
// Turns recording on or off (`--metrics off`). Values recorded so far stay.
void SetEnabled(bool enabled);

using Clock = std::chrono::steady_clock;

// A time to measure from: now when metrics are on, else the epoch (callers
// then skip the clock read too). Pass it to Histogram::ObserveSince.
inline Clock::time_point StartTimer() { return Enabled() ? Clock::now() : Clock::time_point(); }

// Label names and values of one series, in the order given.
using Labels = std::vector<std::pair<std::string, std::string>>;

// A monotonically increasing count.
class Counter {
 public:
  void Inc(uint64_t n = 1) {
    if (Enabled()) value_.fetch_add(n, std::memory_order_relaxed);
  }
  uint64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  alignas(64) std::atomic<uint64_t> value_{0};
};

// A value that goes up and down (connected workers, say).
class Gauge {
 public:
  void Add(int64_t n) { value_.fetch_add(n, std::memory_order_relaxed); }
  void Set(int64_t n) { value_.store(n, std::memory_order_relaxed); }
  int64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  alignas(64) std::atomic<int64_t> value_{0};
};

// Durations in buckets with upper bounds in seconds (cumulative in the
// exposition, as Prometheus wants: `le` buckets, `_sum`, `_count`). The sum
// is kept in integer nanoseconds, so an observation is integer adds only.
class Histogram {
 public:
  // `bounds_seconds`: strictly increasing, finite; +Inf is implied.
  explicit Histogram(std::span<const double> bounds_seconds);

  void Observe(std::chrono::nanoseconds d);
  // Observes Clock::now() - start, unless metrics are off or `start` came
  // from StartTimer() while they were off.
  void ObserveSince(Clock::time_point start) {
    if (Enabled() && start != Clock::time_point()) Observe(Clock::now() - start);
  }

  struct Snapshot {
    std::vector<double> bounds;      // seconds
    std::vector<uint64_t> cumulative;  // per bound, then +Inf (= count)
    double sum_seconds = 0;
    uint64_t count = 0;
  };
  Snapshot Snap() const;

 private:
  std::vector<int64_t> bounds_ns_;
  std::vector<double> bounds_s_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // not cumulative; last = above every bound
  alignas(64) std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_ns_{0};
};

// Bucket bounds for latencies from 100 µs to 30 s.
std::span<const double> LatencyBounds();

// What a collector writes at scrape time. Names follow the rules of
// Registry; the same name must keep the same kind and help.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual void Gauge(std::string_view name, std::string_view help, const Labels& labels, double value) = 0;
  virtual void Counter(std::string_view name, std::string_view help, const Labels& labels, double value) = 0;
};

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // The metric named `name` with these labels, created on first use. Names
  // are [a-zA-Z_:][a-zA-Z0-9_:]* (counters end in "_total"), label names
  // [a-zA-Z_][a-zA-Z0-9_]*; label values are any text (escaped on output).
  // A name already used for another kind, or a bad name, is a programming
  // error: it aborts. The reference stays valid for the registry's lifetime.
  Counter& GetCounter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& GetGauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& GetHistogram(const std::string& name, const std::string& help, const Labels& labels = {},
                          std::span<const double> bounds_seconds = LatencyBounds());

  // A function run at each Expose() to write gauges or counters read then.
  // It may block briefly (a store query) and must not call back into the
  // registry. Returns an id for RemoveCollector, which waits for a running
  // Expose() to finish with it: after it returns the function is not called.
  uint64_t AddCollector(std::function<void(Sink&)> collect);
  void RemoveCollector(uint64_t id);

  // Every metric in the Prometheus text format, version 0.0.4: one "# HELP"
  // and one "# TYPE" line per family, families sorted by name.
  std::string Expose();

 private:
  enum class Kind { kCounter, kGauge, kHistogram };
  struct Series {
    Labels labels;
    std::unique_ptr<class Counter> counter;
    std::unique_ptr<class Gauge> gauge;
    std::unique_ptr<class Histogram> histogram;
  };
  struct Family {
    Kind kind;
    std::string help;
    std::map<std::string, Series> series;  // by rendered labels
  };
  Series& Find(const std::string& name, const std::string& help, Kind kind, const Labels& labels);

  std::mutex mu_;  // guards families_ (and serializes Expose with RemoveCollector)
  std::map<std::string, Family> families_;
  std::mutex collectors_mu_;
  std::map<uint64_t, std::function<void(Sink&)>> collectors_;
  uint64_t next_collector_ = 1;
};

// The process's registry (what /metrics shows).
Registry& Default();

// `{a="x",b="y"}` with values escaped as the text format wants ("" for none).
std::string RenderLabels(const Labels& labels);
// A label value escaped: backslash, double quote and newline.
std::string EscapeLabelValue(std::string_view value);

}  // namespace baton::util::metrics
