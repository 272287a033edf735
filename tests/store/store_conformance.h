// The Store conformance suite's fixture. Every Store implementation runs the
// same TEST_P cases (store_conformance_test.cc); a backend joins by adding one
// INSTANTIATE_TEST_SUITE_P line with a StoreBackend whose factory opens its
// store.
//
// Tests run against a ManualClock, so timers, delays and lease expiry are
// driven by Advance() and no test sleeps to wait for time to pass.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "baton/clock.h"
#include "baton/store.h"

namespace baton::testing {

// Opens the store kept under `dir` (a fresh temp dir per test). Called again
// with the same dir after the previous store was destroyed, it must open the
// same data: that is how the suite tests durability across restarts.
// The lease duration must be at least a few seconds; tests read it from
// locked_until.
using StoreFactory =
    std::function<std::unique_ptr<Store>(const std::string& dir, std::shared_ptr<Clock> clock)>;

struct StoreBackend {
  std::string name;
  StoreFactory factory;
};

inline void PrintTo(const StoreBackend& backend, std::ostream* os) { *os << backend.name; }

inline std::string BackendName(const ::testing::TestParamInfo<StoreBackend>& info) {
  return info.param.name;
}

// A temp directory removed with everything in it when destroyed.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "baton-store-test-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class StoreConformanceTest : public ::testing::TestWithParam<StoreBackend> {
 protected:
  // 2026-01-01T00:00:00Z: a whole second, so times compare exactly.
  static constexpr int64_t kStartMicros = 1'767'225'600'000'000;

  void SetUp() override {
    clock_ = std::make_shared<ManualClock>(FromUnixMicros(kStartMicros));
    store_ = GetParam().factory(dir_.path(), clock_);
    ASSERT_NE(store_, nullptr);
  }

  void TearDown() override { store_.reset(); }

  // Closes the store and opens it again on the same data.
  void Reopen() {
    store_.reset();
    store_ = GetParam().factory(dir_.path(), clock_);
    ASSERT_NE(store_, nullptr);
  }

  Store& store() { return *store_; }
  TimePoint Now() const { return clock_->Now(); }

  Status Create(const std::string& id, const std::string& name = "Orch",
                const std::string& input = "", const std::string& execution_id = "") {
    CreateInstanceRequest r;
    r.instance_id = id;
    r.name = name;
    r.input = input;
    r.execution_id = execution_id.empty() ? id + "-e1" : execution_id;
    return store_->CreateInstance(r);
  }

  HistoryEvent Event(EventBody body, int32_t event_id = -1) {
    return HistoryEvent{event_id, Now(), std::move(body)};
  }

  Message To(const std::string& instance_id, EventBody body, const std::string& execution_id = "",
             std::optional<TimePoint> visible_at = std::nullopt) {
    Message m;
    m.instance_id = instance_id;
    m.execution_id = execution_id;
    m.visible_at = visible_at.value_or(Now());
    m.event = Event(std::move(body));
    return m;
  }

  Status Raise(const std::string& id, const std::string& name, const std::string& input = "") {
    return store_->SendMessage(To(id, events::EventRaised{name, input}));
  }

  // Fetch without waiting.
  std::optional<OrchestrationWorkItem> FetchNow() {
    auto r = store_->FetchOrchestrationWorkItem(std::chrono::milliseconds(0));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : std::nullopt;
  }
  std::optional<ActivityWorkItem> FetchActivityNow() {
    auto r = store_->FetchActivityWorkItem(std::chrono::milliseconds(0));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : std::nullopt;
  }

  // Commits and waits for the callback.
  Status Commit(const OrchestrationWorkItem& item, OrchestrationUpdate update) {
    std::promise<Status> done;
    auto f = done.get_future();
    store_->CompleteOrchestrationWorkItem(item, std::move(update),
                                          [&done](const Status& s) { done.set_value(s); });
    return f.get();
  }
  Status CommitActivity(const ActivityWorkItem& item, Message result) {
    std::promise<Status> done;
    auto f = done.get_future();
    store_->CompleteActivityWorkItem(item, std::move(result),
                                     [&done](const Status& s) { done.set_value(s); });
    return f.get();
  }

  // An episode update that keeps the item's execution running.
  OrchestrationUpdate Running(const OrchestrationWorkItem& item,
                              std::vector<HistoryEvent> new_events = {}) {
    OrchestrationUpdate u;
    u.execution_id = item.instance.execution_id;
    u.status = OrchestrationStatus::kRunning;
    u.new_events = std::move(new_events);
    return u;
  }
  OrchestrationUpdate Finished(const OrchestrationWorkItem& item, OrchestrationStatus status,
                               const std::string& output = "") {
    OrchestrationUpdate u = Running(item);
    u.status = status;
    u.output = output;
    u.new_events = {Event(events::ExecutionCompleted{status, output, std::nullopt})};
    return u;
  }

  // Creates `id` and runs it to `status` in one episode. Other instances
  // fetched on the way are handed back untouched.
  void CreateAndFinish(const std::string& id, OrchestrationStatus status) {
    ASSERT_TRUE(Create(id).ok());
    std::vector<OrchestrationWorkItem> others;
    std::optional<OrchestrationWorkItem> item;
    while ((item = FetchNow()) && item->instance_id != id) others.push_back(std::move(*item));
    for (const OrchestrationWorkItem& other : others) {
      store_->AbandonOrchestrationWorkItem(other, std::chrono::milliseconds(0));
    }
    ASSERT_TRUE(item.has_value()) << id << " was never fetched";
    ASSERT_TRUE(Commit(*item, Finished(*item, status)).ok());
  }

  OrchestrationStatus StatusOf(const std::string& id) {
    auto r = store_->GetInstance(id, false);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->status : OrchestrationStatus::kPending;
  }

  TempDir dir_;
  std::shared_ptr<ManualClock> clock_;
  std::unique_ptr<Store> store_;
};

}  // namespace baton::testing
