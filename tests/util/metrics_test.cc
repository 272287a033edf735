// util/metrics.h: counters, gauges, histograms and collectors come out as
// valid Prometheus text (read back by the strict reader of
// tests/testing/prometheus_text.h), label values are escaped, recording
// from many threads loses nothing, and the switch stops recording.
#include "util/metrics.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "testing/prometheus_text.h"

namespace baton::util::metrics {
namespace {

using testing::ParsePromText;

class MetricsTest : public ::testing::Test {
 protected:
  void TearDown() override { SetEnabled(true); }
};

TEST_F(MetricsTest, ExpositionParsesAndCarriesEveryKind) {
  Registry r;
  r.GetCounter("t_requests_total", "Requests.", {{"route", "/a"}, {"code", "200"}}).Inc(3);
  r.GetCounter("t_requests_total", "Requests.", {{"route", "/b"}, {"code", "404"}}).Inc();
  r.GetGauge("t_workers", "Workers.").Set(7);
  Histogram& h = r.GetHistogram("t_latency_seconds", "Latency.");
  h.Observe(std::chrono::microseconds(50));    // first bucket
  h.Observe(std::chrono::milliseconds(3));     // 0.005
  h.Observe(std::chrono::seconds(100));        // above every bound
  uint64_t id = r.AddCollector([](Sink& sink) {
    sink.Gauge("t_queue_depth", "Queue.", {{"hub", "acme"}}, 12);
    sink.Counter("t_collected_total", "Collected.", {}, 5);
  });

  const std::string text = r.Expose();
  auto parsed = ParsePromText(text);
  ASSERT_EQ(parsed.error, "") << text;
  EXPECT_EQ(parsed.types["t_requests_total"], "counter");
  EXPECT_EQ(parsed.types["t_workers"], "gauge");
  EXPECT_EQ(parsed.types["t_latency_seconds"], "histogram");
  EXPECT_EQ(parsed.types["t_queue_depth"], "gauge");
  EXPECT_EQ(parsed.Sum("t_requests_total"), 4);
  EXPECT_EQ(parsed.Sum("t_requests_total", {{"route", "/a"}, {"code", "200"}}), 3);
  EXPECT_EQ(parsed.Sum("t_workers"), 7);
  EXPECT_EQ(parsed.Sum("t_latency_seconds_count"), 3);
  EXPECT_EQ(parsed.Sum("t_latency_seconds_bucket", {{"le", "0.0001"}}), 1);
  EXPECT_EQ(parsed.Sum("t_latency_seconds_bucket", {{"le", "0.005"}}), 2);
  EXPECT_EQ(parsed.Sum("t_latency_seconds_bucket", {{"le", "30"}}), 2);
  EXPECT_EQ(parsed.Sum("t_latency_seconds_bucket", {{"le", "+Inf"}}), 3);
  EXPECT_NEAR(parsed.Sum("t_latency_seconds_sum"), 100.00305, 1e-9);
  EXPECT_EQ(parsed.Sum("t_queue_depth", {{"hub", "acme"}}), 12);
  EXPECT_EQ(parsed.Sum("t_collected_total"), 5);

  r.RemoveCollector(id);
  EXPECT_FALSE(ParsePromText(r.Expose()).Has("t_queue_depth"));
}

TEST_F(MetricsTest, LabelValuesAreEscapedAndHostileNamesFromCollectorsAreDropped) {
  Registry r;
  const std::string hostile = "a\"b\\c\nd} x 1\n# TYPE";
  r.GetCounter("t_total", "Help with \\ and\nnewline.", {{"tenant", hostile}}).Inc();
  r.AddCollector([&](Sink& sink) {
    sink.Gauge("bad name{", "x", {}, 1);         // not a metric name
    sink.Gauge("t_gauge", "x", {{"le", "1"}}, 1);  // reserved label
    sink.Gauge("t_gauge", "x", {{"bad-label", "1"}}, 1);
    sink.Gauge("t_ok", "x", {{"tenant", hostile}}, 2);
  });
  const std::string text = r.Expose();
  auto parsed = ParsePromText(text);
  ASSERT_EQ(parsed.error, "") << text;
  EXPECT_EQ(parsed.Sum("t_total", {{"tenant", hostile}}), 1);
  EXPECT_EQ(parsed.Sum("t_ok", {{"tenant", hostile}}), 2);
  EXPECT_FALSE(parsed.Has("t_gauge"));
  EXPECT_EQ(parsed.samples.size(), 2u) << text;
}

TEST_F(MetricsTest, TheSameNameAndLabelsIsTheSameMetric) {
  Registry r;
  Counter& a = r.GetCounter("t_total", "x", {{"k", "v"}});
  Counter& b = r.GetCounter("t_total", "x", {{"k", "v"}});
  Counter& c = r.GetCounter("t_total", "x", {{"k", "w"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &c);
}

TEST_F(MetricsTest, ConcurrentRecordingLosesNothing) {
  Registry r;
  Counter& c = r.GetCounter("t_total", "x");
  Histogram& h = r.GetHistogram("t_seconds", "x");
  constexpr int kThreads = 4, kEach = 50000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        c.Inc();
        h.Observe(std::chrono::microseconds(i % 1000 + t));
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.Value(), uint64_t{kThreads} * kEach);
  Histogram::Snapshot s = h.Snap();
  EXPECT_EQ(s.count, uint64_t{kThreads} * kEach);
  auto parsed = ParsePromText(r.Expose());
  ASSERT_EQ(parsed.error, "");
  EXPECT_EQ(parsed.Sum("t_seconds_count"), kThreads * kEach);
}

TEST_F(MetricsTest, OffRecordsNothingAndTimesNothing) {
  Registry r;
  Counter& c = r.GetCounter("t_total", "x");
  Histogram& h = r.GetHistogram("t_seconds", "x");
  c.Inc();
  SetEnabled(false);
  EXPECT_EQ(StartTimer(), Clock::time_point());
  c.Inc(10);
  h.Observe(std::chrono::milliseconds(1));
  h.ObserveSince(Clock::now() - std::chrono::seconds(1));
  EXPECT_EQ(c.Value(), 1u);
  EXPECT_EQ(h.Snap().count, 0u);
  SetEnabled(true);
  Clock::time_point t = StartTimer();
  EXPECT_NE(t, Clock::time_point());
  h.ObserveSince(t);
  EXPECT_EQ(h.Snap().count, 1u);
}

}  // namespace
}  // namespace baton::util::metrics
