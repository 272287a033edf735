#include "baton/history.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "baton/json.h"

namespace baton {
namespace {

TimePoint At(int64_t micros) { return FromUnixMicros(micros); }

FailureDetails SampleFailure() {
  FailureDetails inner{"std::runtime_error", "disk on fire", "at Foo()", "", true, {}};
  return FailureDetails{
      "ActivityFailed", "activity 'Charge' failed", "trace", R"({"code":42})", false, {inner}};
}

// One event of every kind, with every field set to a non-default value.
std::vector<HistoryEvent> OneOfEachKind() {
  const int64_t t0 = 1'780'000'000'123'456;  // microsecond precision on purpose
  std::vector<HistoryEvent> events;
  events.push_back({-1, At(t0),
                    events::ExecutionStarted{"Checkout",
                                             "v2",
                                             R"({"cart":[1,2]})",
                                             "order-1",
                                             "exec-1",
                                             ParentInstance{7, "Parent", "parent-1", "pexec-1"},
                                             At(t0 + 5'000'000),
                                             {{"team", "payments"}, {"tier", "gold"}}}});
  events.push_back(
      {-1, At(t0 + 1),
       events::ExecutionCompleted{OrchestrationStatus::kFailed, R"("out")", SampleFailure()}});
  events.push_back({-1, At(t0 + 2), events::ExecutionTerminated{R"("operator said so")", true}});
  events.push_back({3, At(t0 + 3), events::TaskScheduled{"Charge", "1", R"({"amount":10})"}});
  events.push_back({-1, At(t0 + 4), events::TaskCompleted{3, R"({"ok":true})"}});
  events.push_back({-1, At(t0 + 5), events::TaskFailed{3, SampleFailure()}});
  events.push_back(
      {4, At(t0 + 6), events::SubOrchestrationInstanceCreated{"child-1", "Ship", "3", "[1]"}});
  events.push_back({-1, At(t0 + 7), events::SubOrchestrationInstanceCompleted{4, "42"}});
  events.push_back({-1, At(t0 + 8), events::SubOrchestrationInstanceFailed{4, SampleFailure()}});
  events.push_back({5, At(t0 + 9), events::TimerCreated{At(t0 + 3'600'000'000)}});
  events.push_back({-1, At(t0 + 10), events::TimerFired{At(t0 + 3'600'000'000), 5}});
  events.push_back({-1, At(t0 + 11), events::OrchestratorStarted{}});
  events.push_back({-1, At(t0 + 12), events::OrchestratorCompleted{}});
  events.push_back({6, At(t0 + 13), events::EventSent{"other-1", "Approve", R"({"by":"me"})"}});
  events.push_back({-1, At(t0 + 14), events::EventRaised{"Approve", R"({"by":"me"})"}});
  events.push_back({-1, At(t0 + 15), events::ContinueAsNew{R"({"n":2})"}});
  events.push_back({-1, At(t0 + 16), events::ExecutionSuspended{R"("pause")"}});
  events.push_back({-1, At(t0 + 17), events::ExecutionResumed{R"("go")"}});
  events.push_back({-1, At(t0 + 17), events::ExecutionRewound{"the service is back"}});
  events.push_back({5, At(t0 + 18),
                    events::EntityOperationSignaled{"req-1", "add", At(t0 + 1000), "1", "@counter@k"}});
  events.push_back({6, At(t0 + 19),
                    events::EntityOperationCalled{"req-2", "get", std::nullopt, "", "orch-1", "exec-1", "@counter@k"}});
  events.push_back({-1, At(t0 + 20), events::EntityOperationCompleted{"req-2", "42"}});
  events.push_back({-1, At(t0 + 21),
                    events::EntityOperationFailed{"req-3", FailureDetails{"Rejected", "no", "", "{}", true, {}}}});
  events.push_back({7, At(t0 + 22),
                    events::EntityLockRequested{"cs-1", {"@a@1", "@b@2"}, 1, "orch-1"}});
  events.push_back({-1, At(t0 + 23), events::EntityLockGranted{"cs-1"}});
  events.push_back({8, At(t0 + 24), events::EntityUnlockSent{"cs-1", "orch-1", "@a@1"}});
  return events;
}

TEST(HistoryTest, SamplesCoverEveryKind) {
  std::set<size_t> kinds;
  for (const HistoryEvent& e : OneOfEachKind()) kinds.insert(e.body.index());
  EXPECT_EQ(kinds.size(), std::variant_size_v<EventBody>);
}

TEST(HistoryTest, EveryKindRoundTrips) {
  for (const HistoryEvent& event : OneOfEachKind()) {
    std::string text = SerializeEvent(event);
    Result<HistoryEvent> parsed = ParseEvent(text);
    ASSERT_TRUE(parsed.ok()) << text << ": " << parsed.status().ToString();
    EXPECT_EQ(*parsed, event) << text;
    EXPECT_EQ(SerializeEvent(*parsed), text);
  }
}

TEST(HistoryTest, DefaultEventsRoundTrip) {
  // Empty strings and absent optionals are omitted and must read back as such.
  for (size_t i = 0; i < std::variant_size_v<EventBody>; ++i) {
    HistoryEvent event;
    event.timestamp = At(0);
    event.body = OneOfEachKind()[i].body;
    std::visit([](auto& body) { body = std::decay_t<decltype(body)>{}; }, event.body);
    Result<HistoryEvent> parsed = ParseEvent(SerializeEvent(event));
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    EXPECT_EQ(*parsed, event) << SerializeEvent(event);
  }
}

TEST(HistoryTest, ListRoundTrips) {
  std::vector<HistoryEvent> events = OneOfEachKind();
  Result<std::vector<HistoryEvent>> parsed = ParseEvents(SerializeEvents(events));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed, events);

  Result<std::vector<HistoryEvent>> empty = ParseEvents(SerializeEvents({}));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(HistoryTest, FormatIsTheDocumentedOne) {
  HistoryEvent event{3, At(1'780'000'000'123'456),
                     events::TaskScheduled{"Charge", "", R"({"amount":10})"}};
  std::string text = SerializeEvent(event);
  // "kind" first; payloads stay JSON text inside a JSON string; empty fields omitted.
  EXPECT_EQ(text,
            R"({"kind":"TaskScheduled","eventId":3,"timestamp":"2026-05-28T20:26:40.123456Z",)"
            R"("name":"Charge","input":"{\"amount\":10}"})");

  Json completed = Json::parse(SerializeEvent(
      {-1, At(0), events::ExecutionCompleted{OrchestrationStatus::kCompleted, "", std::nullopt}}));
  EXPECT_EQ(completed["status"], "Completed");
  EXPECT_FALSE(completed.contains("result"));
  EXPECT_FALSE(completed.contains("failure"));
}

TEST(HistoryTest, ParsingToleratesOmittedAndUnknownFields) {
  Result<HistoryEvent> e = ParseEvent(
      R"({"kind":"TaskCompleted","timestamp":"2026-01-02T03:04:05Z","futureField":[1,2]})");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->event_id, -1);
  const auto& body = std::get<events::TaskCompleted>(e->body);
  EXPECT_EQ(body.task_scheduled_id, -1);
  EXPECT_EQ(body.result, "");

  // Null reads as absent.
  e = ParseEvent(R"({"kind":"EventRaised","eventId":-1,"timestamp":"2026-01-02T03:04:05.5Z",)"
                 R"("name":"Go","input":null})");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(std::get<events::EventRaised>(e->body).input, "");
  EXPECT_EQ(ToUnixMicros(e->timestamp) % 1'000'000, 500'000);
}

TEST(HistoryTest, MalformedInputIsDataLoss) {
  const char* bad[] = {
      "",
      "not json",
      "[]",
      "42",
      R"({"eventId":1,"timestamp":"2026-01-02T03:04:05Z"})",          // no kind
      R"({"kind":7,"timestamp":"2026-01-02T03:04:05Z"})",             // kind not a string
      R"({"kind":"NoSuchKind","timestamp":"2026-01-02T03:04:05Z"})",  // unknown kind
      R"({"kind":"OrchestratorStarted"})",                            // no timestamp
      R"({"kind":"OrchestratorStarted","timestamp":"yesterday"})",    // bad timestamp
      R"({"kind":"OrchestratorStarted","timestamp":"2026-01-02T03:04:05Z","eventId":"3"})",
      R"({"kind":"TaskScheduled","timestamp":"2026-01-02T03:04:05Z","name":5})",
      R"({"kind":"TaskCompleted","timestamp":"2026-01-02T03:04:05Z","taskScheduledId":1e20})",
      R"({"kind":"TaskFailed","timestamp":"2026-01-02T03:04:05Z","failure":"boom"})",
      R"({"kind":"TaskFailed","timestamp":"2026-01-02T03:04:05Z","failure":{"inner":3}})",
      R"({"kind":"ExecutionCompleted","timestamp":"2026-01-02T03:04:05Z","status":"Weird"})",
      R"({"kind":"ExecutionStarted","timestamp":"2026-01-02T03:04:05Z","tags":{"a":1}})",
      R"({"kind":"ExecutionStarted","timestamp":"2026-01-02T03:04:05Z","parent":[]})",
      R"({"kind":"TimerFired","timestamp":"2026-01-02T03:04:05Z","fireAt":12})",
      R"({"kind":"ExecutionTerminated","timestamp":"2026-01-02T03:04:05Z","recurse":"yes"})",
  };
  for (const char* text : bad) {
    Result<HistoryEvent> e = ParseEvent(text);
    ASSERT_FALSE(e.ok()) << text;
    EXPECT_EQ(e.status().code(), StatusCode::kDataLoss) << text;
    EXPECT_FALSE(e.status().message().empty());
  }

  Result<HistoryEvent> unknown = ParseEvent(R"({"kind":"NoSuchKind","timestamp":"x"})");
  EXPECT_NE(unknown.status().message().find("NoSuchKind"), std::string::npos);

  EXPECT_EQ(ParseEvents("{}").status().code(), StatusCode::kDataLoss);
  Result<std::vector<HistoryEvent>> list =
      ParseEvents(R"([{"kind":"OrchestratorStarted","timestamp":"2026-01-02T03:04:05Z"},{}])");
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(list.status().message().find("[1]"), std::string::npos) << list.status().message();
}

TEST(HistoryTest, DeeplyNestedFailureIsRejectedNotOverflowed) {
  std::string text = "{}";
  for (int i = 0; i < 1000; ++i) text = R"({"errorType":"E","inner":)" + text + "}";
  Result<FailureDetails> f = ParseFailure(text);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kDataLoss);
}

TEST(HistoryTest, FailureRoundTrips) {
  FailureDetails failure = SampleFailure();
  Result<FailureDetails> parsed = ParseFailure(SerializeFailure(failure));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed, failure);

  // More than one inner failure is not expected, but is kept rather than dropped.
  failure.inner.push_back(failure.inner.front());
  parsed = ParseFailure(SerializeFailure(failure));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed, failure);

  EXPECT_EQ(ParseFailure("").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(ParseFailure("[1]").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(ParseFailure(R"({"isNonRetriable":"no"})").status().code(), StatusCode::kDataLoss);
}

TEST(HistoryTest, StatusNames) {
  const OrchestrationStatus all[] = {
      OrchestrationStatus::kRunning,        OrchestrationStatus::kCompleted,
      OrchestrationStatus::kContinuedAsNew, OrchestrationStatus::kFailed,
      OrchestrationStatus::kCanceled,       OrchestrationStatus::kTerminated,
      OrchestrationStatus::kPending,        OrchestrationStatus::kSuspended};
  for (OrchestrationStatus s : all) {
    OrchestrationStatus parsed;
    ASSERT_TRUE(ParseOrchestrationStatus(OrchestrationStatusName(s), &parsed));
    EXPECT_EQ(parsed, s);
  }
  EXPECT_EQ(OrchestrationStatusName(OrchestrationStatus::kContinuedAsNew), "ContinuedAsNew");
  OrchestrationStatus parsed;
  ASSERT_TRUE(ParseOrchestrationStatus("rUnNiNg", &parsed));
  EXPECT_EQ(parsed, OrchestrationStatus::kRunning);
  EXPECT_FALSE(ParseOrchestrationStatus("Runningx", &parsed));
  EXPECT_FALSE(ParseOrchestrationStatus("", &parsed));

  EXPECT_TRUE(IsTerminal(OrchestrationStatus::kCompleted));
  EXPECT_TRUE(IsTerminal(OrchestrationStatus::kFailed));
  EXPECT_TRUE(IsTerminal(OrchestrationStatus::kTerminated));
  EXPECT_TRUE(IsTerminal(OrchestrationStatus::kCanceled));
  EXPECT_FALSE(IsTerminal(OrchestrationStatus::kRunning));
  EXPECT_FALSE(IsTerminal(OrchestrationStatus::kPending));
  EXPECT_FALSE(IsTerminal(OrchestrationStatus::kSuspended));
  EXPECT_FALSE(IsTerminal(OrchestrationStatus::kContinuedAsNew));
}

TEST(HistoryTest, KindNames) {
  EXPECT_EQ(EventKindName(events::TimerFired{}), "TimerFired");
  EXPECT_EQ(EventKindName(events::SubOrchestrationInstanceCreated{}),
            "SubOrchestrationInstanceCreated");
  std::set<std::string_view> names;
  for (const HistoryEvent& e : OneOfEachKind()) names.insert(EventKindName(e.body));
  EXPECT_EQ(names.size(), std::variant_size_v<EventBody>);
}

}  // namespace
}  // namespace baton
