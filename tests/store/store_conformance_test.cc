// The Store conformance suite: the contract of store.h, run against every
// backend. A new backend adds one INSTANTIATE_TEST_SUITE_P at the bottom.

#include "store/store_conformance.h"

#include <atomic>
#include <fstream>
#include <set>
#include <thread>

#include "baton/postgres_store.h"
#include "baton/sqlite_store.h"
#include "testing/postgres_test_db.h"
#include "util/hex.h"

namespace baton::testing {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

// ---- Creating and reading instances ----

TEST_P(StoreConformanceTest, CreateThenGet) {
  CreateInstanceRequest r;
  r.instance_id = "order-1";
  r.name = "Checkout";
  r.version = "2";
  r.input = R"({"cart":[1,2]})";
  r.execution_id = "exec-1";
  r.tags = {{"team", "payments"}};
  ASSERT_TRUE(store().CreateInstance(r).ok());

  Result<InstanceState> s = store().GetInstance("order-1", /*include_payloads=*/true);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->instance_id, "order-1");
  EXPECT_EQ(s->name, "Checkout");
  EXPECT_EQ(s->version, "2");
  EXPECT_EQ(s->execution_id, "exec-1");
  EXPECT_EQ(s->status, OrchestrationStatus::kPending);
  EXPECT_EQ(s->created_at, Now());
  EXPECT_EQ(s->last_updated_at, Now());
  EXPECT_FALSE(s->completed_at.has_value());
  EXPECT_FALSE(s->scheduled_start.has_value());
  EXPECT_EQ(s->input, r.input);
  EXPECT_EQ(s->parent_instance_id, "");

  Result<InstanceState> lean = store().GetInstance("order-1", /*include_payloads=*/false);
  ASSERT_TRUE(lean.ok());
  EXPECT_EQ(lean->input, "");
  EXPECT_EQ(lean->name, "Checkout");

  EXPECT_EQ(store().GetInstance("nope", false).status().code(), StatusCode::kNotFound);
  Result<std::vector<HistoryEvent>> history = store().GetHistory("order-1");
  ASSERT_TRUE(history.ok());
  EXPECT_TRUE(history->empty());
  EXPECT_EQ(store().GetHistory("nope").status().code(), StatusCode::kNotFound);
}

// The asynchronous client calls (Store::SupportsAsyncClientCalls). A
// creation's callback gets what CreateInstance gives. A wait's callback runs
// once: at once for an instance already there, else at the commit that
// brings it there, never for a commit that does not; a cancelled wait is
// not answered; an interrupted store answers Cancelled. A store without
// them says so: its wait answers Unimplemented at once.
TEST_P(StoreConformanceTest, AsyncClientCallsAnswerOnceWhenTheCommitReachesTheCondition) {
  CreateInstanceRequest r;
  r.instance_id = "async";
  r.name = "Orch";
  r.execution_id = "async-e1";
  std::promise<Status> created;
  store().CreateInstanceAsync(r, [&created](const Status& s) { created.set_value(s); });
  ASSERT_TRUE(created.get_future().get().ok());
  std::promise<Status> again;
  store().CreateInstanceAsync(r, [&again](const Status& s) { again.set_value(s); });
  EXPECT_EQ(again.get_future().get().code(), StatusCode::kAlreadyExists);

  struct Answers {
    std::mutex mu;
    std::vector<Result<InstanceState>> got;
    size_t Count() {
      std::lock_guard lock(mu);
      return got.size();
    }
  };
  auto answers = std::make_shared<Answers>();
  auto record = [answers](Result<InstanceState> state) {
    std::lock_guard lock(answers->mu);
    answers->got.push_back(std::move(state));
  };
  if (!store().SupportsAsyncClientCalls()) {
    EXPECT_EQ(store().WaitForInstanceAsync("async", WaitCondition::kCompleted, true, record), 0u);
    ASSERT_EQ(answers->Count(), 1u);
    EXPECT_EQ(answers->got[0].status().code(), StatusCode::kUnimplemented);
    return;
  }
  // Pending: a wait for its start is not answered yet; an unknown id is
  // NotFound at once.
  const uint64_t started = store().WaitForInstanceAsync("async", WaitCondition::kStarted, false, record);
  EXPECT_GT(started, 0u);
  EXPECT_EQ(answers->Count(), 0u);
  store().WaitForInstanceAsync("nope", WaitCondition::kCompleted, false, record);
  ASSERT_EQ(answers->Count(), 1u);
  EXPECT_EQ(answers->got[0].status().code(), StatusCode::kNotFound);
  auto completed = std::make_shared<Answers>();
  store().WaitForInstanceAsync("async", WaitCondition::kCompleted, true,
                               [completed](Result<InstanceState> s) {
                                 std::lock_guard lock(completed->mu);
                                 completed->got.push_back(std::move(s));
                               });
  auto cancelled = std::make_shared<Answers>();
  const uint64_t withdrawn = store().WaitForInstanceAsync("async", WaitCondition::kCompleted, false,
                                                          [cancelled](Result<InstanceState> s) {
                                                            std::lock_guard lock(cancelled->mu);
                                                            cancelled->got.push_back(std::move(s));
                                                          });
  store().CancelWait(withdrawn);
  store().CancelWait(withdrawn);  // again: ignored

  // An episode that leaves it Running answers the start, not the completion.
  std::optional<OrchestrationWorkItem> item = FetchNow();
  ASSERT_TRUE(item.has_value());
  ASSERT_TRUE(Commit(*item, Running(*item, {Event(events::OrchestratorStarted{})})).ok());
  ASSERT_EQ(answers->Count(), 2u);
  ASSERT_TRUE(answers->got[1].ok()) << answers->got[1].status().ToString();
  EXPECT_EQ(answers->got[1]->status, OrchestrationStatus::kRunning);
  EXPECT_EQ(completed->Count(), 0u);

  // The commit that completes it answers the completion, with the output.
  ASSERT_TRUE(Raise("async", "go").ok());
  item = FetchNow();
  ASSERT_TRUE(item.has_value());
  ASSERT_TRUE(Commit(*item, Finished(*item, OrchestrationStatus::kCompleted, "\"done\"")).ok());
  ASSERT_EQ(completed->Count(), 1u);
  ASSERT_TRUE(completed->got[0].ok());
  EXPECT_EQ(completed->got[0]->status, OrchestrationStatus::kCompleted);
  EXPECT_EQ(completed->got[0]->output, "\"done\"");
  EXPECT_EQ(cancelled->Count(), 0u);
  EXPECT_EQ(answers->Count(), 2u);  // each wait answered once

  // Already there: answered before the call returns.
  auto at_once = std::make_shared<Answers>();
  store().WaitForInstanceAsync("async", WaitCondition::kCompleted, false, [at_once](Result<InstanceState> s) {
    std::lock_guard lock(at_once->mu);
    at_once->got.push_back(std::move(s));
  });
  EXPECT_EQ(at_once->Count(), 1u);

  // Interrupted: an open wait is answered Cancelled.
  ASSERT_TRUE(Create("never").ok());
  auto interrupted = std::make_shared<Answers>();
  store().WaitForInstanceAsync("never", WaitCondition::kCompleted, false, [interrupted](Result<InstanceState> s) {
    std::lock_guard lock(interrupted->mu);
    interrupted->got.push_back(std::move(s));
  });
  EXPECT_EQ(interrupted->Count(), 0u);
  store().Interrupt();
  ASSERT_EQ(interrupted->Count(), 1u);
  EXPECT_EQ(interrupted->got[0].status().code(), StatusCode::kCancelled);
  store().ResumeFetching();
}

TEST_P(StoreConformanceTest, CreateValidatesRequest) {
  EXPECT_EQ(Create("").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Create("a", "").code(), StatusCode::kInvalidArgument);
  CreateInstanceRequest no_execution{"a", "Orch", "", "", "", std::nullopt, {}, {}};
  EXPECT_EQ(store().CreateInstance(no_execution).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Create(std::string(257, 'x')).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Create(std::string(256, 'x')).ok());
}

// DurableTaskConformance: the tags given at start come back with the state,
// with or without payloads, from GetInstance (which WaitForInstance reads) and queries;
// payloads are the bytes given (member order, `null`).
TEST_P(StoreConformanceTest, DurableTaskConformanceTagsAndPayloadBytesComeBack) {
  CreateInstanceRequest r{"tagged", "Orch", "", R"({"z":1,"a":null})", "e1", std::nullopt, {}, {}};
  r.tags = {{"team", "payments"}, {"env", "test \"quoted\""}};
  ASSERT_TRUE(store().CreateInstance(r).ok());
  ASSERT_TRUE(Create("plain", "Orch", "null").ok());
  for (bool payloads : {false, true}) {
    Result<InstanceState> s = store().GetInstance("tagged", payloads);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(s->tags, r.tags);
    if (payloads) EXPECT_EQ(s->input, R"({"z":1,"a":null})");
    InstanceQuery q;
    q.include_payloads = payloads;
    Result<QueryPage> page = store().QueryInstances(q);
    ASSERT_TRUE(page.ok());
    ASSERT_EQ(page->instances.size(), 2u);
    EXPECT_EQ(page->instances[0].instance_id, "plain");
    EXPECT_TRUE(page->instances[0].tags.empty());
    if (payloads) EXPECT_EQ(page->instances[0].input, "null");
    EXPECT_EQ(page->instances[1].tags, r.tags);
  }
  Reopen();
  EXPECT_EQ(store().GetInstance("tagged", false)->tags, r.tags);
}

TEST_P(StoreConformanceTest, DuplicateCreateIsAlreadyExistsUnlessReplaceable) {
  ASSERT_TRUE(Create("dup", "Orch", "", "e1").ok());
  EXPECT_EQ(Create("dup", "Orch", "", "e2").code(), StatusCode::kAlreadyExists);

  CreateInstanceRequest r{"dup", "Orch2", "", R"("new")", "e3", std::nullopt, {}, {}};
  r.replaceable_statuses = {OrchestrationStatus::kCompleted};
  EXPECT_EQ(store().CreateInstance(r).code(), StatusCode::kAlreadyExists);
  r.replaceable_statuses = {OrchestrationStatus::kPending};
  ASSERT_TRUE(store().CreateInstance(r).ok());

  Result<InstanceState> s = store().GetInstance("dup", true);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->name, "Orch2");
  EXPECT_EQ(s->execution_id, "e3");
  // The replaced instance's inbox went with it: only the new start is pending.
  std::optional<OrchestrationWorkItem> item = FetchNow();
  ASSERT_TRUE(item.has_value());
  ASSERT_EQ(item->messages.size(), 1u);
  const auto& started = std::get<events::ExecutionStarted>(item->messages[0].event.body);
  EXPECT_EQ(started.execution_id, "e3");
  EXPECT_EQ(started.input, R"("new")");
}

TEST_P(StoreConformanceTest, ReplacingATerminalInstanceDropsItsHistory) {
  CreateAndFinish("again", OrchestrationStatus::kCompleted);
  ASSERT_FALSE(store().GetHistory("again")->empty());
  CreateInstanceRequest r{"again", "Orch", "", "", "again-e2", std::nullopt, {}, {}};
  r.replaceable_statuses = {OrchestrationStatus::kCompleted, OrchestrationStatus::kFailed};
  ASSERT_TRUE(store().CreateInstance(r).ok());
  EXPECT_EQ(StatusOf("again"), OrchestrationStatus::kPending);
  EXPECT_TRUE(store().GetHistory("again")->empty());
  std::optional<OrchestrationWorkItem> item = FetchNow();
  ASSERT_TRUE(item.has_value());
  EXPECT_EQ(item->history_size, 0);
  EXPECT_EQ(item->instance.execution_id, "again-e2");
}

TEST_P(StoreConformanceTest, SendMessageToMissingOrTerminalInstance) {
  EXPECT_EQ(Raise("ghost", "Go").code(), StatusCode::kNotFound);
  CreateAndFinish("done", OrchestrationStatus::kCompleted);
  EXPECT_EQ(Raise("done", "Go").code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(Create("live").ok());
  EXPECT_TRUE(Raise("live", "Go").ok());
}

// ---- Orchestration work items ----

TEST_P(StoreConformanceTest, FetchReturnsMessagesInOrderAndLocksTheInstance) {
  ASSERT_TRUE(Create("a", "Orch", R"({"x":1})").ok());
  ASSERT_TRUE(Raise("a", "First", "1").ok());
  ASSERT_TRUE(Raise("a", "Second", "2").ok());

  std::optional<OrchestrationWorkItem> item = FetchNow();
  ASSERT_TRUE(item.has_value());
  EXPECT_EQ(item->instance_id, "a");
  EXPECT_EQ(item->instance.instance_id, "a");
  EXPECT_EQ(item->instance.name, "Orch");
  EXPECT_EQ(item->instance.status, OrchestrationStatus::kPending);
  EXPECT_EQ(item->instance.input, "") << "payloads are omitted at fetch";
  EXPECT_EQ(item->history_size, 0);
  EXPECT_EQ(item->dequeue_count, 1);
  EXPECT_GT(item->locked_until, Now());
  ASSERT_EQ(item->messages.size(), 3u);
  EXPECT_TRUE(std::holds_alternative<events::ExecutionStarted>(item->messages[0].event.body));
  EXPECT_EQ(std::get<events::ExecutionStarted>(item->messages[0].event.body).input, R"({"x":1})");
  EXPECT_EQ(std::get<events::EventRaised>(item->messages[1].event.body).name, "First");
  EXPECT_EQ(std::get<events::EventRaised>(item->messages[2].event.body).name, "Second");
  EXPECT_LT(item->messages[0].seq, item->messages[1].seq);
  EXPECT_LT(item->messages[1].seq, item->messages[2].seq);
  for (const Message& m : item->messages) EXPECT_EQ(m.instance_id, "a");

  // Locked: neither the same messages nor new ones are handed out again.
  EXPECT_FALSE(FetchNow().has_value());
  ASSERT_TRUE(Raise("a", "Third").ok());
  EXPECT_FALSE(FetchNow().has_value());

  ASSERT_TRUE(Commit(*item, Running(*item)).ok());
  std::optional<OrchestrationWorkItem> next = FetchNow();
  ASSERT_TRUE(next.has_value());
  ASSERT_EQ(next->messages.size(), 1u);
  EXPECT_EQ(std::get<events::EventRaised>(next->messages[0].event.body).name, "Third");
  EXPECT_NE(next->lock_token, item->lock_token);
}

TEST_P(StoreConformanceTest, FetchWithNoWorkReturnsEmpty) {
  auto r = store().FetchOrchestrationWorkItem(milliseconds(20));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  auto a = store().FetchActivityWorkItem(milliseconds(20));
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->has_value());
}

TEST_P(StoreConformanceTest, BlockedFetchWakesOnNewWork) {
  std::promise<std::optional<OrchestrationWorkItem>> got;
  std::thread fetcher([&] {
    auto r = store().FetchOrchestrationWorkItem(milliseconds(30'000));
    got.set_value(r.ok() ? std::move(r).value() : std::nullopt);
  });
  ASSERT_TRUE(Create("wake").ok());
  std::optional<OrchestrationWorkItem> item = got.get_future().get();
  fetcher.join();
  ASSERT_TRUE(item.has_value());
  EXPECT_EQ(item->instance_id, "wake");
}

TEST_P(StoreConformanceTest, CompleteAppendsHistoryAndUpdatesTheRow) {
  ASSERT_TRUE(Create("h").ok());
  std::optional<OrchestrationWorkItem> item = FetchNow();
  ASSERT_TRUE(item.has_value());
  std::vector<HistoryEvent> episode1 = {
      Event(events::OrchestratorStarted{}), item->messages[0].event,
      Event(events::TaskScheduled{"Charge", "", "10"}, 1), Event(events::OrchestratorCompleted{})};
  OrchestrationUpdate u = Running(*item, episode1);
  u.custom_status = R"("charging")";
  clock_->Advance(seconds(1));
  ASSERT_TRUE(Commit(*item, u).ok());

  Result<std::vector<HistoryEvent>> history = store().GetHistory("h");
  ASSERT_TRUE(history.ok()) << history.status().ToString();
  EXPECT_EQ(*history, episode1);
  Result<InstanceState> s = store().GetInstance("h", true);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->status, OrchestrationStatus::kRunning);
  EXPECT_EQ(s->custom_status, R"("charging")");
  EXPECT_EQ(s->last_updated_at, Now());
  EXPECT_GT(s->last_updated_at, s->created_at);
  EXPECT_FALSE(s->completed_at.has_value());

  ASSERT_TRUE(Raise("h", "Go").ok());
  item = FetchNow();
  ASSERT_TRUE(item.has_value());
  EXPECT_EQ(item->history_size, 4);
  EXPECT_EQ(item->instance.status, OrchestrationStatus::kRunning);
  std::vector<HistoryEvent> episode2 = {
      Event(events::OrchestratorStarted{}), item->messages[0].event,
      Event(events::ExecutionCompleted{OrchestrationStatus::kFailed, "",
                                       FailureDetails{"Boom", "it broke", "", "", false, {}}}),
      Event(events::OrchestratorCompleted{})};
  u = Running(*item, episode2);
  u.status = OrchestrationStatus::kFailed;
  u.failure = FailureDetails{"Boom", "it broke", "", "", false, {}};
  u.output = R"("partial")";
  ASSERT_TRUE(Commit(*item, u).ok());

  history = store().GetHistory("h");
  ASSERT_TRUE(history.ok());
  std::vector<HistoryEvent> all = episode1;
  all.insert(all.end(), episode2.begin(), episode2.end());
  EXPECT_EQ(*history, all);
  s = store().GetInstance("h", true);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->status, OrchestrationStatus::kFailed);
  ASSERT_TRUE(s->completed_at.has_value());
  EXPECT_EQ(*s->completed_at, Now());
  ASSERT_TRUE(s->failure.has_value());
  EXPECT_EQ(s->failure->error_type, "Boom");
  EXPECT_EQ(s->output, R"("partial")");
  EXPECT_EQ(s->custom_status, "");
  EXPECT_FALSE(FetchNow().has_value());
}

TEST_P(StoreConformanceTest, ResetHistoryReplacesTheExecution) {
  ASSERT_TRUE(Create("can", "Orch", "1").ok());
  std::optional<OrchestrationWorkItem> item = FetchNow();
  ASSERT_TRUE(item.has_value());
  ASSERT_TRUE(
      Commit(*item, Running(*item, {Event(events::OrchestratorStarted{}), item->messages[0].event,
                                    Event(events::OrchestratorCompleted{})}))
          .ok());
  ASSERT_TRUE(Raise("can", "Next").ok());
  item = FetchNow();
  ASSERT_TRUE(item.has_value());
  ASSERT_EQ(item->history_size, 3);

  // Continue-as-new: a fresh execution whose history is just its start.
  std::vector<HistoryEvent> fresh = {Event(
      events::ExecutionStarted{"Orch", "", "2", "can", "can-e2", std::nullopt, std::nullopt, {}})};
  OrchestrationUpdate u = Running(*item, fresh);
  u.execution_id = "can-e2";
  u.input = "2";
  u.reset_history = true;
  u.outbox.push_back(To("can", events::EventRaised{"Kick", ""}, "can-e2"));
  ASSERT_TRUE(Commit(*item, u).ok());

  EXPECT_EQ(*store().GetHistory("can"), fresh);
  Result<InstanceState> s = store().GetInstance("can", true);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->execution_id, "can-e2");
  EXPECT_EQ(s->input, "2");
  item = FetchNow();
  ASSERT_TRUE(item.has_value());
  EXPECT_EQ(item->history_size, 1);
  EXPECT_EQ(item->instance.execution_id, "can-e2");
  EXPECT_EQ(item->messages[0].execution_id, "can-e2");

  // Without reset_history the input is left alone.
  OrchestrationUpdate keep = Running(*item);
  keep.input = "ignored";
  keep.execution_id = "can-e2";
  ASSERT_TRUE(Commit(*item, keep).ok());
  EXPECT_EQ(store().GetInstance("can", true)->input, "2");
}

// A rewind rewrites the history and keeps the execution id; the rewritten
// history may regrow to a size the old one had. The generation tells the two
// apart (an engine's cached copy of the old one must not pass for the new).
TEST_P(StoreConformanceTest, HistoryGenerationNamesARewrittenHistoryOfTheSameSize) {
  ASSERT_TRUE(Create("gen").ok());
  std::optional<OrchestrationWorkItem> item = FetchNow();
  ASSERT_TRUE(item.has_value());
  EXPECT_EQ(item->history_generation, 0);
  const std::vector<HistoryEvent> three = {Event(events::OrchestratorStarted{}),
                                           item->messages[0].event,
                                           Event(events::OrchestratorCompleted{})};
  ASSERT_TRUE(Commit(*item, Running(*item, three)).ok());
  ASSERT_TRUE(Raise("gen", "Next").ok());
  item = FetchNow();
  ASSERT_TRUE(item.has_value());
  EXPECT_EQ(item->history_size, 3);
  EXPECT_EQ(item->history_generation, 0) << "an append keeps the generation";

  // A rewind: two events kept, same execution, a message to run on.
  OrchestrationUpdate rewind = Running(*item, {three[0], three[1]});
  rewind.reset_history = true;
  rewind.outbox.push_back(To("gen", events::ExecutionRewound{"again"}, "gen-e1"));
  ASSERT_TRUE(Commit(*item, rewind).ok());
  item = FetchNow();
  ASSERT_TRUE(item.has_value());
  EXPECT_EQ(item->history_size, 2);
  EXPECT_EQ(item->history_generation, 1);
  ASSERT_TRUE(Commit(*item, Running(*item, {Event(events::OrchestratorStarted{})})).ok());
  ASSERT_TRUE(Raise("gen", "Next").ok());
  item = FetchNow();
  ASSERT_TRUE(item.has_value());
  EXPECT_EQ(item->instance.execution_id, "gen-e1");
  EXPECT_EQ(item->history_size, 3) << "the size the first history had";
  EXPECT_EQ(item->history_generation, 1) << "but not its generation";

  // Continue-as-new rewrites too; the count survives a restart.
  OrchestrationUpdate next = Running(*item, {three[0]});
  next.execution_id = "gen-e2";
  next.reset_history = true;
  next.outbox.push_back(To("gen", events::EventRaised{"Kick", ""}, "gen-e2"));
  ASSERT_TRUE(Commit(*item, next).ok());
  Reopen();
  item = FetchNow();
  ASSERT_TRUE(item.has_value());
  EXPECT_EQ(item->instance.execution_id, "gen-e2");
  EXPECT_EQ(item->history_size, 1);
  EXPECT_EQ(item->history_generation, 2);
}

TEST_P(StoreConformanceTest, ContinueAsNewCanSendItsOwnStartToRunLater) {
  // How an external worker's continue-as-new is committed: the history is
  // reset to nothing and the new generation's start goes to the inbox.
  ASSERT_TRUE(Create("ext", "Orch", "1").ok());
  std::optional<OrchestrationWorkItem> item = FetchNow();
  ASSERT_TRUE(item.has_value());
  ASSERT_TRUE(Commit(*item, Running(*item, {Event(events::OrchestratorStarted{}), item->messages[0].event,
                                            Event(events::OrchestratorCompleted{})}))
                  .ok());
  ASSERT_TRUE(Raise("ext", "Next").ok());
  item = FetchNow();
  ASSERT_TRUE(item.has_value());
  events::ExecutionStarted next{"Orch", "", "2", "ext", "ext-e2", std::nullopt, std::nullopt, {}};
  OrchestrationUpdate u = Running(*item, {});
  u.execution_id = "ext-e2";
  u.input = "2";
  u.reset_history = true;
  u.outbox.push_back(To("ext", next, "ext-e2"));
  ASSERT_TRUE(Commit(*item, u).ok());
  EXPECT_TRUE(store().GetHistory("ext")->empty());
  item = FetchNow();
  ASSERT_TRUE(item.has_value());
  EXPECT_EQ(item->history_size, 0);
  EXPECT_EQ(item->instance.execution_id, "ext-e2");
  ASSERT_EQ(item->messages.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<events::ExecutionStarted>(item->messages[0].event.body));
  // A start for an execution id the instance does not have is not its own.
  OrchestrationUpdate stray = Running(*item, {Event(events::OrchestratorStarted{}), item->messages[0].event});
  stray.execution_id = "ext-e2";
  stray.outbox.push_back(To("ext", events::ExecutionStarted{"Orch", "", "3", "ext", "ext-e3", std::nullopt,
                                                             std::nullopt, {}},
                            "ext-e3"));
  ASSERT_TRUE(Commit(*item, stray).ok());
  EXPECT_FALSE(FetchNow().has_value());  // dropped (no parent to tell)
}

TEST_P(StoreConformanceTest, OutboxReachesOtherInstancesAndDropsMessagesToMissingOnes) {
  ASSERT_TRUE(Create("sender").ok());
  ASSERT_TRUE(Create("receiver").ok());
  std::optional<OrchestrationWorkItem> first = FetchNow();
  std::optional<OrchestrationWorkItem> second = FetchNow();
  ASSERT_TRUE(first && second);
  OrchestrationWorkItem sender = first->instance_id == "sender" ? *first : *second;
  OrchestrationWorkItem receiver = first->instance_id == "sender" ? *second : *first;
  ASSERT_TRUE(Commit(receiver, Running(receiver)).ok());

  OrchestrationUpdate u = Running(sender);
  u.outbox.push_back(To("receiver", events::EventRaised{"Hello", R"("hi")"}));
  u.outbox.push_back(To("nobody", events::EventRaised{"Hello", ""}));
  ASSERT_TRUE(Commit(sender, u).ok());

  std::optional<OrchestrationWorkItem> item = FetchNow();
  ASSERT_TRUE(item.has_value());
  EXPECT_EQ(item->instance_id, "receiver");
  ASSERT_EQ(item->messages.size(), 1u);
  EXPECT_EQ(std::get<events::EventRaised>(item->messages[0].event.body).input, R"("hi")");
  EXPECT_FALSE(FetchNow().has_value());
  EXPECT_EQ(store().GetInstance("nobody", false).status().code(), StatusCode::kNotFound);
}

TEST_P(StoreConformanceTest, SubOrchestrationCreationAndInstanceAlreadyExists) {
  ASSERT_TRUE(Create("parent").ok());
  std::optional<OrchestrationWorkItem> p = FetchNow();
  ASSERT_TRUE(p.has_value());

  auto start_child = [&](int32_t task_id, const std::string& execution) {
    events::ExecutionStarted started{
        "Child",      "1",       R"({"n":1})",
        "child",      execution, ParentInstance{task_id, "Orch", "parent", "parent-e1"},
        std::nullopt, {}};
    return To("child", started);
  };
  OrchestrationUpdate u = Running(*p);
  u.outbox.push_back(start_child(1, "child-e1"));
  ASSERT_TRUE(Commit(*p, u).ok());

  Result<InstanceState> child = store().GetInstance("child", true);
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  EXPECT_EQ(child->status, OrchestrationStatus::kPending);
  EXPECT_EQ(child->name, "Child");
  EXPECT_EQ(child->version, "1");
  EXPECT_EQ(child->input, R"({"n":1})");
  EXPECT_EQ(child->execution_id, "child-e1");
  EXPECT_EQ(child->parent_instance_id, "parent");

  std::optional<OrchestrationWorkItem> c = FetchNow();
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->instance_id, "child");
  EXPECT_TRUE(std::holds_alternative<events::ExecutionStarted>(c->messages[0].event.body));
  ASSERT_TRUE(Commit(*c, Running(*c)).ok());

  // Starting the same child again while it runs answers the parent instead.
  ASSERT_TRUE(Raise("parent", "Again").ok());
  p = FetchNow();
  ASSERT_TRUE(p.has_value());
  u = Running(*p);
  u.outbox.push_back(start_child(7, "child-e2"));
  ASSERT_TRUE(Commit(*p, u).ok());
  EXPECT_EQ(store().GetInstance("child", false)->execution_id, "child-e1");

  p = FetchNow();
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->instance_id, "parent");
  ASSERT_EQ(p->messages.size(), 1u);
  EXPECT_EQ(p->messages[0].execution_id, "parent-e1");
  const auto* failed =
      std::get_if<events::SubOrchestrationInstanceFailed>(&p->messages[0].event.body);
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ(failed->task_scheduled_id, 7);
  EXPECT_EQ(failed->failure.error_type, "InstanceAlreadyExists");

  // A terminal child is replaced by a new start.
  c = std::nullopt;
  ASSERT_TRUE(Raise("child", "Finish").ok());
  c = FetchNow();
  ASSERT_TRUE(c.has_value());
  ASSERT_TRUE(Commit(*c, Finished(*c, OrchestrationStatus::kCompleted)).ok());
  u = Running(*p);
  u.outbox.push_back(start_child(9, "child-e3"));
  ASSERT_TRUE(Commit(*p, u).ok());
  child = store().GetInstance("child", false);
  ASSERT_TRUE(child.ok());
  EXPECT_EQ(child->status, OrchestrationStatus::kPending);
  EXPECT_EQ(child->execution_id, "child-e3");
  EXPECT_TRUE(store().GetHistory("child")->empty());
}

// ---- Activities ----

TEST_P(StoreConformanceTest, ActivityFetchAndCompleteDeliversTheResult) {
  ASSERT_TRUE(Create("act").ok());
  std::optional<OrchestrationWorkItem> item = FetchNow();
  ASSERT_TRUE(item.has_value());
  OrchestrationUpdate u = Running(*item, {Event(events::TaskScheduled{"Charge", "v1", "10"}, 1)});
  ActivityTask task;
  task.instance_id = "act";
  task.execution_id = item->instance.execution_id;
  task.task_id = 1;
  task.name = "Charge";
  task.version = "v1";
  task.input = "10";
  u.tasks.push_back(task);
  ASSERT_TRUE(Commit(*item, u).ok());

  std::optional<ActivityWorkItem> a = FetchActivityNow();
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->task.instance_id, "act");
  EXPECT_EQ(a->task.execution_id, "act-e1");
  EXPECT_EQ(a->task.task_id, 1);
  EXPECT_EQ(a->task.name, "Charge");
  EXPECT_EQ(a->task.version, "v1");
  EXPECT_EQ(a->task.input, "10");
  EXPECT_GT(a->task.seq, 0u);
  EXPECT_EQ(a->dequeue_count, 1);
  EXPECT_FALSE(FetchActivityNow().has_value()) << "a leased task is not handed out twice";
  EXPECT_FALSE(FetchNow().has_value());

  ASSERT_TRUE(CommitActivity(*a, To("act", events::TaskCompleted{1, R"("paid")"}, "act-e1")).ok());
  EXPECT_FALSE(FetchActivityNow().has_value());
  item = FetchNow();
  ASSERT_TRUE(item.has_value());
  ASSERT_EQ(item->messages.size(), 1u);
  EXPECT_EQ(item->messages[0].execution_id, "act-e1");
  const auto& done = std::get<events::TaskCompleted>(item->messages[0].event.body);
  EXPECT_EQ(done.task_scheduled_id, 1);
  EXPECT_EQ(done.result, R"("paid")");

  // Completing the same lease again finds nothing to complete.
  EXPECT_EQ(CommitActivity(*a, To("act", events::TaskCompleted{1, ""})).code(),
            StatusCode::kAborted);
}

TEST_P(StoreConformanceTest, AbandonMakesWorkVisibleAgainAfterTheDelay) {
  ASSERT_TRUE(Create("ab").ok());
  std::optional<OrchestrationWorkItem> item = FetchNow();
  ASSERT_TRUE(item.has_value());
  store().AbandonOrchestrationWorkItem(*item, milliseconds(10'000));
  EXPECT_FALSE(FetchNow().has_value());
  clock_->Advance(seconds(9));
  EXPECT_FALSE(FetchNow().has_value());
  clock_->Advance(seconds(1));
  std::optional<OrchestrationWorkItem> again = FetchNow();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->messages.size(), 1u);
  EXPECT_EQ(again->dequeue_count, 2);
  EXPECT_NE(again->lock_token, item->lock_token);

  // A stale token's abandon is ignored: the new lease holds.
  store().AbandonOrchestrationWorkItem(*item, milliseconds(0));
  EXPECT_FALSE(FetchNow().has_value());
  store().AbandonOrchestrationWorkItem(*again, milliseconds(0));
  EXPECT_TRUE(FetchNow().has_value());
}

TEST_P(StoreConformanceTest, AbandonedActivityComesBackAfterTheDelay) {
  ASSERT_TRUE(Create("aa").ok());
  std::optional<OrchestrationWorkItem> item = FetchNow();
  ASSERT_TRUE(item.has_value());
  OrchestrationUpdate u = Running(*item);
  u.tasks.push_back(ActivityTask{0, "aa", "aa-e1", 1, "Work", "", "", Now()});
  ASSERT_TRUE(Commit(*item, u).ok());

  std::optional<ActivityWorkItem> a = FetchActivityNow();
  ASSERT_TRUE(a.has_value());
  store().AbandonActivityWorkItem(*a, milliseconds(5'000));
  EXPECT_FALSE(FetchActivityNow().has_value());
  clock_->Advance(seconds(5));
  std::optional<ActivityWorkItem> again = FetchActivityNow();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->task.seq, a->task.seq);
  EXPECT_EQ(again->dequeue_count, 2);
}

TEST_P(StoreConformanceTest, ExpiredLeaseAbortsTheStaleCompleteAndWritesNothing) {
  ASSERT_TRUE(Create("lease").ok());
  std::optional<OrchestrationWorkItem> item = FetchNow();
  ASSERT_TRUE(item.has_value());
  clock_->Advance(item->locked_until - Now() + milliseconds(1));

  OrchestrationUpdate u = Finished(*item, OrchestrationStatus::kCompleted, "1");
  u.outbox.push_back(To("lease", events::EventRaised{"Never", ""}));
  EXPECT_EQ(Commit(*item, u).code(), StatusCode::kAborted);
  EXPECT_EQ(StatusOf("lease"), OrchestrationStatus::kPending);
  EXPECT_TRUE(store().GetHistory("lease")->empty());

  // The messages were not consumed: a new lease gets them, and the old token
  // stays dead even now that the instance is leased again.
  std::optional<OrchestrationWorkItem> again = FetchNow();
  ASSERT_TRUE(again.has_value());
  ASSERT_EQ(again->messages.size(), 1u);
  EXPECT_EQ(again->messages[0].seq, item->messages[0].seq);
  EXPECT_EQ(again->dequeue_count, 2);
  EXPECT_EQ(Commit(*item, u).code(), StatusCode::kAborted);
  ASSERT_TRUE(Commit(*again, Finished(*again, OrchestrationStatus::kCompleted, "2")).ok());
  EXPECT_EQ(store().GetInstance("lease", true)->output, "2");
  EXPECT_FALSE(FetchNow().has_value()) << "the aborted outbox message was never sent";
}

TEST_P(StoreConformanceTest, ExpiredLeaseMakesTheInstanceFetchableAgain) {
  ASSERT_TRUE(Create("exp").ok());
  std::optional<OrchestrationWorkItem> item = FetchNow();
  ASSERT_TRUE(item.has_value());
  EXPECT_FALSE(FetchNow().has_value());
  clock_->Advance(item->locked_until - Now());
  std::optional<OrchestrationWorkItem> again = FetchNow();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->instance_id, "exp");
}

TEST_P(StoreConformanceTest, ExpiredActivityLeaseAbortsTheStaleComplete) {
  ASSERT_TRUE(Create("al").ok());
  std::optional<OrchestrationWorkItem> item = FetchNow();
  ASSERT_TRUE(item.has_value());
  OrchestrationUpdate u = Running(*item);
  u.tasks.push_back(ActivityTask{0, "al", "al-e1", 1, "Work", "", "", Now()});
  ASSERT_TRUE(Commit(*item, u).ok());
  std::optional<ActivityWorkItem> a = FetchActivityNow();
  ASSERT_TRUE(a.has_value());
  clock_->Advance(a->locked_until - Now() + milliseconds(1));
  EXPECT_EQ(CommitActivity(*a, To("al", events::TaskCompleted{1, "1"})).code(),
            StatusCode::kAborted);
  EXPECT_FALSE(FetchNow().has_value()) << "no result was delivered";
  std::optional<ActivityWorkItem> again = FetchActivityNow();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->task.seq, a->task.seq);
  ASSERT_TRUE(CommitActivity(*again, To("al", events::TaskCompleted{1, "2"})).ok());
  EXPECT_TRUE(FetchNow().has_value());
}

// ---- Timers ----

TEST_P(StoreConformanceTest, FutureMessagesAreNotFetchedBeforeTheyAreDue) {
  ASSERT_TRUE(Create("timer").ok());
  std::optional<OrchestrationWorkItem> item = FetchNow();
  ASSERT_TRUE(item.has_value());
  TimePoint fire_at = Now() + hours(1);
  OrchestrationUpdate u = Running(*item, {Event(events::TimerCreated{fire_at}, 1)});
  u.outbox.push_back(To("timer", events::TimerFired{fire_at, 1}, "timer-e1", fire_at));
  ASSERT_TRUE(Commit(*item, u).ok());

  EXPECT_FALSE(FetchNow().has_value());
  clock_->Advance(minutes(59));
  EXPECT_FALSE(FetchNow().has_value());
  // A raised event is delivered on its own; the timer stays behind.
  ASSERT_TRUE(Raise("timer", "Ping").ok());
  item = FetchNow();
  ASSERT_TRUE(item.has_value());
  ASSERT_EQ(item->messages.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<events::EventRaised>(item->messages[0].event.body));
  ASSERT_TRUE(Commit(*item, Running(*item)).ok());

  clock_->Advance(minutes(1));
  item = FetchNow();
  ASSERT_TRUE(item.has_value());
  ASSERT_EQ(item->messages.size(), 1u);
  const auto& fired = std::get<events::TimerFired>(item->messages[0].event.body);
  EXPECT_EQ(fired.timer_id, 1);
  EXPECT_EQ(item->messages[0].visible_at, fire_at);
}

TEST_P(StoreConformanceTest, BlockedFetchWakesWhenTheClockReachesATimer) {
  ASSERT_TRUE(Create("sleepy").ok());
  std::optional<OrchestrationWorkItem> item = FetchNow();
  ASSERT_TRUE(item.has_value());
  TimePoint fire_at = Now() + hours(24);
  OrchestrationUpdate u = Running(*item);
  u.outbox.push_back(To("sleepy", events::TimerFired{fire_at, 1}, "sleepy-e1", fire_at));
  ASSERT_TRUE(Commit(*item, u).ok());

  std::promise<std::optional<OrchestrationWorkItem>> got;
  std::thread fetcher([&] {
    auto r = store().FetchOrchestrationWorkItem(milliseconds(60'000));
    got.set_value(r.ok() ? std::move(r).value() : std::nullopt);
  });
  clock_->Advance(hours(24));
  std::optional<OrchestrationWorkItem> fired = got.get_future().get();
  fetcher.join();
  ASSERT_TRUE(fired.has_value());
  EXPECT_TRUE(std::holds_alternative<events::TimerFired>(fired->messages[0].event.body));
}

TEST_P(StoreConformanceTest, ScheduledStartDelaysTheFirstEpisode) {
  CreateInstanceRequest r{"later", "Orch", "", "", "later-e1", Now() + minutes(5), {}, {}};
  ASSERT_TRUE(store().CreateInstance(r).ok());
  EXPECT_EQ(store().GetInstance("later", false)->scheduled_start, Now() + minutes(5));
  EXPECT_FALSE(FetchNow().has_value());
  clock_->Advance(minutes(5));
  std::optional<OrchestrationWorkItem> item = FetchNow();
  ASSERT_TRUE(item.has_value());
  EXPECT_EQ(item->instance_id, "later");
}

// ---- Waiting ----

TEST_P(StoreConformanceTest, WaitForInstanceWakesOnCompletion) {
  ASSERT_TRUE(Create("w").ok());
  std::promise<Result<InstanceState>> started, completed;
  std::thread start_waiter([&] {
    started.set_value(
        store().WaitForInstance("w", WaitCondition::kStarted, milliseconds(60'000), false));
  });
  std::thread complete_waiter([&] {
    completed.set_value(
        store().WaitForInstance("w", WaitCondition::kCompleted, milliseconds(60'000), true));
  });

  std::optional<OrchestrationWorkItem> item = FetchNow();
  ASSERT_TRUE(item.has_value());
  ASSERT_TRUE(Commit(*item, Running(*item)).ok());
  Result<InstanceState> s = started.get_future().get();
  start_waiter.join();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->status, OrchestrationStatus::kRunning);

  ASSERT_TRUE(Raise("w", "Done").ok());
  item = FetchNow();
  ASSERT_TRUE(item.has_value());
  ASSERT_TRUE(Commit(*item, Finished(*item, OrchestrationStatus::kCompleted, R"("ok")")).ok());
  Result<InstanceState> c = completed.get_future().get();
  complete_waiter.join();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->status, OrchestrationStatus::kCompleted);
  EXPECT_EQ(c->output, R"("ok")");

  // Already satisfied: returns at once.
  EXPECT_TRUE(store().WaitForInstance("w", WaitCondition::kCompleted, milliseconds(0), false).ok());
}

TEST_P(StoreConformanceTest, WaitForInstanceTimesOutAndReportsMissingInstances) {
  ASSERT_TRUE(Create("slow").ok());
  EXPECT_EQ(store()
                .WaitForInstance("slow", WaitCondition::kStarted, milliseconds(30), false)
                .status()
                .code(),
            StatusCode::kDeadlineExceeded);
  EXPECT_EQ(store()
                .WaitForInstance("none", WaitCondition::kStarted, milliseconds(30), false)
                .status()
                .code(),
            StatusCode::kNotFound);
}

TEST_P(StoreConformanceTest, InterruptReleasesBlockedCallsUntilResumed) {
  ASSERT_TRUE(Create("int").ok());
  std::optional<OrchestrationWorkItem> held = FetchNow();
  ASSERT_TRUE(held.has_value());

  std::promise<bool> fetch_empty, activity_empty;
  std::promise<StatusCode> wait_code;
  std::thread fetcher([&] {
    auto r = store().FetchOrchestrationWorkItem(milliseconds(60'000));
    fetch_empty.set_value(r.ok() && !r->has_value());
  });
  std::thread activity_fetcher([&] {
    auto r = store().FetchActivityWorkItem(milliseconds(60'000));
    activity_empty.set_value(r.ok() && !r->has_value());
  });
  std::thread waiter([&] {
    wait_code.set_value(
        store()
            .WaitForInstance("int", WaitCondition::kCompleted, milliseconds(60'000), false)
            .status()
            .code());
  });
  // Whether or not the threads are blocked yet, the interrupt reaches them:
  // it wakes the blocked ones and the flag stops the late ones.
  store().Interrupt();
  EXPECT_TRUE(fetch_empty.get_future().get());
  EXPECT_TRUE(activity_empty.get_future().get());
  EXPECT_EQ(wait_code.get_future().get(), StatusCode::kCancelled);
  fetcher.join();
  activity_fetcher.join();
  waiter.join();

  store().AbandonOrchestrationWorkItem(*held, milliseconds(0));
  EXPECT_FALSE(FetchNow().has_value()) << "fetches return empty while interrupted";
  store().ResumeFetching();
  EXPECT_TRUE(FetchNow().has_value());
}

// ---- Queries and purges ----

TEST_P(StoreConformanceTest, QueryFiltersAndPages) {
  // 12 "q-" instances one second apart (every third completed) and 3 others.
  for (int i = 0; i < 12; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "q-%02d", i);
    if (i % 3 == 0) {
      CreateAndFinish(id, OrchestrationStatus::kCompleted);
    } else {
      ASSERT_TRUE(Create(id, "Orch", R"("in")").ok());
    }
    clock_->Advance(seconds(1));
  }
  for (const char* id : {"p-1", "r-1", "r-2"}) ASSERT_TRUE(Create(id).ok());

  InstanceQuery q;
  q.page_size = 1000;
  Result<QueryPage> all = store().QueryInstances(q);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->instances.size(), 15u);
  EXPECT_EQ(all->continuation_token, "");
  EXPECT_TRUE(std::is_sorted(all->instances.begin(), all->instances.end(),
                             [](const InstanceState& a, const InstanceState& b) {
                               return a.instance_id < b.instance_id;
                             }));
  EXPECT_EQ(all->instances[0].input, "") << "payloads only on request";

  q.instance_id_prefix = "q-";
  q.statuses = {OrchestrationStatus::kCompleted};
  Result<QueryPage> done = store().QueryInstances(q);
  ASSERT_TRUE(done.ok());
  ASSERT_EQ(done->instances.size(), 4u);
  for (const InstanceState& s : done->instances) {
    EXPECT_EQ(s.status, OrchestrationStatus::kCompleted);
  }

  q.statuses = {OrchestrationStatus::kPending, OrchestrationStatus::kRunning};
  q.created_from = FromUnixMicros(kStartMicros) + seconds(2);  // inclusive
  q.created_to = FromUnixMicros(kStartMicros) + seconds(8);    // exclusive
  q.include_payloads = true;
  Result<QueryPage> window = store().QueryInstances(q);
  ASSERT_TRUE(window.ok());
  std::vector<std::string> ids;
  for (const InstanceState& s : window->instances) {
    ids.push_back(s.instance_id);
    EXPECT_EQ(s.input, R"("in")");
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"q-02", "q-04", "q-05", "q-07"}));

  // Paging walks every instance exactly once.
  InstanceQuery paged;
  paged.page_size = 4;
  std::vector<std::string> walked;
  int pages = 0;
  do {
    Result<QueryPage> page = store().QueryInstances(paged);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    ASSERT_LE(page->instances.size(), 4u);
    for (const InstanceState& s : page->instances) walked.push_back(s.instance_id);
    paged.continuation_token = page->continuation_token;
    ++pages;
  } while (!paged.continuation_token.empty() && pages < 10);
  EXPECT_EQ(pages, 4);
  std::vector<std::string> expected;
  for (const InstanceState& s : all->instances) expected.push_back(s.instance_id);
  EXPECT_EQ(walked, expected);
}

TEST_P(StoreConformanceTest, QueryRejectsBadPageSizesAndTokens) {
  InstanceQuery q;
  q.page_size = 0;
  EXPECT_EQ(store().QueryInstances(q).status().code(), StatusCode::kInvalidArgument);
  q.page_size = 1001;
  EXPECT_EQ(store().QueryInstances(q).status().code(), StatusCode::kInvalidArgument);
  q.page_size = 1000;
  q.continuation_token = "%%not a token%%";
  EXPECT_EQ(store().QueryInstances(q).status().code(), StatusCode::kInvalidArgument);
}

// Every page of `q`, walked with its continuation tokens; the ids in order.
std::vector<std::string> WalkPages(Store& store, InstanceQuery q, int* pages = nullptr) {
  std::vector<std::string> walked;
  int n = 0;
  q.continuation_token.clear();
  do {
    Result<QueryPage> page = store.QueryInstances(q);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok()) break;
    EXPECT_LE(static_cast<int>(page->instances.size()), q.page_size);
    for (const InstanceState& s : page->instances) walked.push_back(s.instance_id);
    q.continuation_token = page->continuation_token;
    ++n;
  } while (!q.continuation_token.empty() && n < 1000);
  if (pages != nullptr) *pages = n;
  return walked;
}

TEST_P(StoreConformanceTest, QueryNewestFirstPagesEveryInstanceOnce) {
  // 20 instances; pairs share a creation time (the id breaks the tie), and
  // the ids are not in creation order.
  std::vector<std::pair<int64_t, std::string>> created;
  for (int i = 0; i < 20; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "n-%02d", (i * 7) % 20);
    if (i % 4 == 1) {
      CreateAndFinish(id, OrchestrationStatus::kFailed);
    } else {
      ASSERT_TRUE(Create(id).ok());
    }
    created.emplace_back(ToUnixMicros(Now()), id);
    if (i % 2 == 1) clock_->Advance(milliseconds(3));
  }
  std::vector<std::string> newest;
  std::sort(created.rbegin(), created.rend());
  for (const auto& [t, id] : created) newest.push_back(id);

  InstanceQuery q;
  q.order = InstanceOrder::kNewestFirst;
  q.page_size = 3;
  int pages = 0;
  EXPECT_EQ(WalkPages(store(), q, &pages), newest);
  EXPECT_EQ(pages, 7);

  q.order = InstanceOrder::kOldestFirst;
  EXPECT_EQ(WalkPages(store(), q), std::vector<std::string>(newest.rbegin(), newest.rend()));

  // Filters and order together: the Failed ones, newest first.
  q.order = InstanceOrder::kNewestFirst;
  q.statuses = {OrchestrationStatus::kFailed};
  std::vector<std::string> failed;
  for (const std::string& id : newest) {
    if (StatusOf(id) == OrchestrationStatus::kFailed) failed.push_back(id);
  }
  ASSERT_EQ(failed.size(), 5u);
  EXPECT_EQ(WalkPages(store(), q), failed);

  // An instance created while paging shows up on no page already handed out
  // and shifts none: the next pages go on where the token left off.
  q.statuses.clear();
  q.page_size = 10;
  Result<QueryPage> first = store().QueryInstances(q);
  ASSERT_TRUE(first.ok());
  clock_->Advance(seconds(1));
  ASSERT_TRUE(Create("n-late").ok());
  q.continuation_token = first->continuation_token;
  Result<QueryPage> second = store().QueryInstances(q);
  ASSERT_TRUE(second.ok());
  std::vector<std::string> rest;
  for (const InstanceState& s : second->instances) rest.push_back(s.instance_id);
  EXPECT_EQ(rest, std::vector<std::string>(newest.begin() + 10, newest.end()));
}

TEST_P(StoreConformanceTest, QueryFiltersByNameAndLeavesOutEntities) {
  ASSERT_TRUE(Create("a-1", "Alpha").ok());
  ASSERT_TRUE(Create("a-2", "AlphaBeta").ok());
  ASSERT_TRUE(Create("g-1", "Gamma").ok());
  ASSERT_TRUE(Create("acme::x", "Alpha").ok());
  ASSERT_TRUE(Create("acme::y@z", "Alpha").ok());  // an orchestration, not an entity
  for (const char* entity : {"@counter@k", "acme::@counter@k"}) {
    ASSERT_TRUE(store()
                    .SendMessage(To(entity, events::EntityOperationSignaled{
                                                "r-" + std::string(entity), "add", std::nullopt, "1", entity}))
                    .ok());
  }
  auto ids = [&](InstanceQuery q) {
    q.page_size = 1;  // every filter through the tokens too
    std::vector<std::string> out = WalkPages(store(), q);
    std::sort(out.begin(), out.end());
    return out;
  };
  InstanceQuery q;
  EXPECT_EQ(ids(q).size(), 7u);
  q.exclude_entities = true;
  EXPECT_EQ(ids(q), (std::vector<std::string>{"a-1", "a-2", "acme::x", "acme::y@z", "g-1"}));
  q.name_prefix = "Alpha";
  EXPECT_EQ(ids(q), (std::vector<std::string>{"a-1", "a-2", "acme::x", "acme::y@z"}));
  q.name_prefix = "AlphaB";
  EXPECT_EQ(ids(q), (std::vector<std::string>{"a-2"}));
  q.name_prefix = "Alpha";
  q.instance_id_prefix = "acme::";
  EXPECT_EQ(ids(q), (std::vector<std::string>{"acme::x", "acme::y@z"}));
  q.name_prefix.clear();
  q.exclude_entities = false;
  EXPECT_EQ(ids(q), (std::vector<std::string>{"acme::@counter@k", "acme::x", "acme::y@z"}));
  // Tokens leave out the query's prefix (the HTTP API's hub), in both orders.
  for (InstanceOrder order : {InstanceOrder::kInstanceId, InstanceOrder::kNewestFirst}) {
    q.order = order;
    q.page_size = 1;
    Result<QueryPage> page = store().QueryInstances(q);
    ASSERT_TRUE(page.ok());
    ASSERT_FALSE(page->continuation_token.empty());
    EXPECT_EQ(page->continuation_token.find(util::HexEncode("acme::")), std::string::npos)
        << page->continuation_token;
  }
}

TEST_P(StoreConformanceTest, QueryCountsByStatus) {
  for (int i = 0; i < 6; ++i) CreateAndFinish("c-done-" + std::to_string(i), OrchestrationStatus::kCompleted);
  for (int i = 0; i < 2; ++i) CreateAndFinish("c-failed-" + std::to_string(i), OrchestrationStatus::kFailed);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Create("c-new-" + std::to_string(i)).ok());
  ASSERT_TRUE(Create("other").ok());

  InstanceQuery q;
  q.instance_id_prefix = "c-";
  q.count_by_status = true;
  q.statuses = {OrchestrationStatus::kFailed};  // filters the page, not the counts
  q.page_size = 1;
  Result<QueryPage> page = store().QueryInstances(q);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->instances.size(), 1u);
  EXPECT_EQ(page->status_counts,
            (std::vector<std::pair<OrchestrationStatus, int64_t>>{{OrchestrationStatus::kCompleted, 6},
                                                                  {OrchestrationStatus::kFailed, 2},
                                                                  {OrchestrationStatus::kPending, 3}}));
  q.count_by_status = false;
  page = store().QueryInstances(q);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->status_counts.empty());
}

TEST_P(StoreConformanceTest, QueryRejectsHostileFilters) {
  ASSERT_TRUE(Create("h-1").ok());
  ASSERT_TRUE(Create("h-2").ok());
  InstanceQuery q;
  q.page_size = 1;
  Result<QueryPage> by_id = store().QueryInstances(q);
  ASSERT_TRUE(by_id.ok());
  ASSERT_FALSE(by_id->continuation_token.empty());
  q.order = InstanceOrder::kNewestFirst;
  Result<QueryPage> by_time = store().QueryInstances(q);
  ASSERT_TRUE(by_time.ok());
  ASSERT_FALSE(by_time->continuation_token.empty());

  // A token is good for its own order only.
  q.continuation_token = by_id->continuation_token;
  EXPECT_EQ(store().QueryInstances(q).status().code(), StatusCode::kInvalidArgument);
  q.order = InstanceOrder::kInstanceId;
  q.continuation_token = by_time->continuation_token;
  EXPECT_EQ(store().QueryInstances(q).status().code(), StatusCode::kInvalidArgument);
  q.order = InstanceOrder::kNewestFirst;
  for (std::string bad : {std::string("t"), std::string("tzz"), "t" + util::HexEncode("12x/a"),
                          "t" + util::HexEncode("no-slash"), "t" + util::HexEncode("99999999999999999999999/a")}) {
    q.continuation_token = bad;
    EXPECT_EQ(store().QueryInstances(q).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  q.continuation_token.clear();
  q.instance_id_prefix = std::string(513, 'h');
  EXPECT_EQ(store().QueryInstances(q).status().code(), StatusCode::kInvalidArgument);
  q.instance_id_prefix.clear();
  q.name_prefix = std::string(513, 'O');
  EXPECT_EQ(store().QueryInstances(q).status().code(), StatusCode::kInvalidArgument);
  // SQL-looking and wildcard text is only text.
  q.name_prefix = "%' OR '1'='1";
  Result<QueryPage> none = store().QueryInstances(q);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->instances.empty());
  q.name_prefix = "%";
  none = store().QueryInstances(q);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->instances.empty());
  EXPECT_EQ(StatusOf("h-1"), OrchestrationStatus::kPending);
}

TEST_P(StoreConformanceTest, PurgeInstance) {
  ASSERT_TRUE(Create("running").ok());
  EXPECT_EQ(store().PurgeInstance("running").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store().PurgeInstance("missing").status().code(), StatusCode::kNotFound);

  CreateAndFinish("gone", OrchestrationStatus::kFailed);
  Result<int> n = store().PurgeInstance("gone");
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(store().GetInstance("gone", false).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store().GetHistory("gone").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Create("gone").ok()) << "the id is free again";
}

TEST_P(StoreConformanceTest, PurgeRemovesPendingMessagesAndTasks) {
  ASSERT_TRUE(Create("messy").ok());
  std::optional<OrchestrationWorkItem> item = FetchNow();
  ASSERT_TRUE(item.has_value());
  OrchestrationUpdate u = Finished(*item, OrchestrationStatus::kTerminated);
  u.tasks.push_back(ActivityTask{0, "messy", "messy-e1", 1, "Work", "", "", Now()});
  u.outbox.push_back(To("messy", events::EventRaised{"Late", ""}));
  ASSERT_TRUE(Commit(*item, u).ok());
  std::optional<ActivityWorkItem> a = FetchActivityNow();
  ASSERT_TRUE(a.has_value());

  ASSERT_TRUE(store().PurgeInstance("messy").ok());
  EXPECT_FALSE(FetchNow().has_value());
  EXPECT_EQ(CommitActivity(*a, To("messy", events::TaskCompleted{1, ""})).code(),
            StatusCode::kAborted);
  Reopen();
  EXPECT_FALSE(FetchNow().has_value());
  EXPECT_FALSE(FetchActivityNow().has_value());
}

TEST_P(StoreConformanceTest, PurgeInstancesByFilter) {
  CreateAndFinish("old-done", OrchestrationStatus::kCompleted);
  CreateAndFinish("old-failed", OrchestrationStatus::kFailed);
  ASSERT_TRUE(Create("old-running").ok());
  clock_->Advance(hours(1));
  CreateAndFinish("new-done", OrchestrationStatus::kCompleted);

  PurgeFilter only_failed;
  only_failed.statuses = {OrchestrationStatus::kFailed, OrchestrationStatus::kRunning};
  Result<int> n = store().PurgeInstances(only_failed);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(store().GetInstance("old-failed", false).status().code(), StatusCode::kNotFound);

  PurgeFilter old;
  old.created_to = FromUnixMicros(kStartMicros) + minutes(30);
  n = store().PurgeInstances(old);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(store().GetInstance("old-done", false).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store().GetInstance("old-running", false).ok()) << "running is never purged";
  EXPECT_TRUE(store().GetInstance("new-done", false).ok());

  n = store().PurgeInstances(PurgeFilter{});
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
  EXPECT_TRUE(store().GetInstance("old-running", false).ok());
}

// ---- Durability and concurrency ----

TEST_P(StoreConformanceTest, DataSurvivesReopenAndWorkQueuesAreRebuilt) {
  ASSERT_TRUE(Create("durable", "Orch", R"("in")").ok());
  std::optional<OrchestrationWorkItem> item = FetchNow();
  ASSERT_TRUE(item.has_value());
  std::vector<HistoryEvent> episode = {Event(events::OrchestratorStarted{}),
                                       item->messages[0].event,
                                       Event(events::OrchestratorCompleted{})};
  OrchestrationUpdate u = Running(*item, episode);
  TimePoint fire_at = Now() + minutes(10);
  u.outbox.push_back(To("durable", events::TimerFired{fire_at, 2}, "durable-e1", fire_at));
  u.tasks.push_back(ActivityTask{0, "durable", "durable-e1", 1, "Work", "", R"("x")", Now()});
  ASSERT_TRUE(Commit(*item, u).ok());
  ASSERT_TRUE(Create("fresh").ok());
  ASSERT_TRUE(Raise("durable", "Ping", "1").ok());

  // A lease held at shutdown dies with the process.
  std::optional<OrchestrationWorkItem> held = FetchNow();
  ASSERT_TRUE(held.has_value());
  Reopen();

  Result<InstanceState> s = store().GetInstance("durable", true);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->status, OrchestrationStatus::kRunning);
  EXPECT_EQ(s->input, R"("in")");
  EXPECT_EQ(*store().GetHistory("durable"), episode);

  std::set<std::string> fetched;
  std::optional<OrchestrationWorkItem> w;
  while ((w = FetchNow())) {
    fetched.insert(w->instance_id);
    if (w->instance_id == "durable") {
      ASSERT_EQ(w->messages.size(), 1u) << "the timer is not due yet";
      EXPECT_EQ(std::get<events::EventRaised>(w->messages[0].event.body).input, "1");
      EXPECT_EQ(w->history_size, 3);
    }
    ASSERT_TRUE(Commit(*w, Running(*w)).ok());
  }
  EXPECT_EQ(fetched, (std::set<std::string>{"durable", "fresh"}));

  std::optional<ActivityWorkItem> a = FetchActivityNow();
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->task.input, R"("x")");
  ASSERT_TRUE(CommitActivity(*a, To("durable", events::TaskCompleted{1, ""})).ok());
  w = FetchNow();
  ASSERT_TRUE(w.has_value());
  ASSERT_EQ(w->messages.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<events::TaskCompleted>(w->messages[0].event.body));
  // New sequence numbers continue after the ones on disk.
  EXPECT_GT(w->messages[0].seq, a->task.seq);
  ASSERT_TRUE(Commit(*w, Running(*w)).ok());

  clock_->Advance(minutes(10));
  w = FetchNow();
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(std::get<events::TimerFired>(w->messages[0].event.body).timer_id, 2);
}

TEST_P(StoreConformanceTest, ConcurrentCompletesAllLand) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 40;
  for (int i = 0; i < kThreads * kPerThread; ++i) {
    ASSERT_TRUE(Create("c-" + std::to_string(i)).ok());
  }
  std::atomic<int> committed{0}, failed{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&] {
      std::vector<std::future<Status>> pending;
      for (;;) {
        auto r = store().FetchOrchestrationWorkItem(milliseconds(0));
        if (!r.ok() || !r->has_value()) break;
        OrchestrationWorkItem item = std::move(**r);
        auto done = std::make_shared<std::promise<Status>>();
        pending.push_back(done->get_future());
        store().CompleteOrchestrationWorkItem(item,
                                              Finished(item, OrchestrationStatus::kCompleted, "1"),
                                              [done](const Status& s) { done->set_value(s); });
      }
      for (auto& f : pending) (f.get().ok() ? committed : failed)++;
    });
  }
  for (std::thread& w : workers) w.join();
  EXPECT_EQ(committed.load(), kThreads * kPerThread);
  EXPECT_EQ(failed.load(), 0);

  InstanceQuery q;
  q.page_size = 1000;
  q.statuses = {OrchestrationStatus::kCompleted};
  Result<QueryPage> page = store().QueryInstances(q);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->instances.size(), static_cast<size_t>(kThreads * kPerThread));
}

// ---- Leases ----

TEST_P(StoreConformanceTest, ConcurrentFetchersEachTakeADifferentInstance) {
  // A fetcher that finds its first candidate taken (leased, or being leased
  // this very moment) moves on to the next instead of reporting no work.
  for (int round = 0; round < 20; ++round) {
    const std::string a = "race-a-" + std::to_string(round);
    const std::string b = "race-b-" + std::to_string(round);
    ASSERT_TRUE(Create(a).ok());
    ASSERT_TRUE(Create(b).ok());
    std::promise<void> go;
    std::shared_future<void> start = go.get_future().share();
    std::optional<OrchestrationWorkItem> got[2];
    std::thread fetchers[2];
    for (int i = 0; i < 2; ++i) {
      fetchers[i] = std::thread([&, i] {
        start.wait();
        got[i] = FetchNow();
      });
    }
    go.set_value();
    for (std::thread& t : fetchers) t.join();
    ASSERT_TRUE(got[0].has_value() && got[1].has_value()) << "round " << round;
    EXPECT_NE(got[0]->instance_id, got[1]->instance_id);
    EXPECT_NE(got[0]->lock_token, got[1]->lock_token);
    for (const auto& item : got) ASSERT_TRUE(Commit(*item, Finished(*item, OrchestrationStatus::kCompleted)).ok());
    EXPECT_FALSE(FetchNow().has_value());
  }
}

TEST_P(StoreConformanceTest, CommittedOrAbandonedLeaseCannotCommitAgain) {
  ASSERT_TRUE(Create("once").ok());
  std::optional<OrchestrationWorkItem> item = FetchNow();
  ASSERT_TRUE(item.has_value());
  std::vector<HistoryEvent> episode = {Event(events::OrchestratorStarted{}), item->messages[0].event};
  ASSERT_TRUE(Commit(*item, Running(*item, episode)).ok());
  // The same episode again (a duplicate delivery of the commit) writes nothing.
  EXPECT_EQ(Commit(*item, Running(*item, episode)).code(), StatusCode::kAborted);
  EXPECT_EQ(*store().GetHistory("once"), episode);

  ASSERT_TRUE(Raise("once", "Go").ok());
  std::optional<OrchestrationWorkItem> next = FetchNow();
  ASSERT_TRUE(next.has_value());
  store().AbandonOrchestrationWorkItem(*next, milliseconds(0));
  OrchestrationUpdate late = Finished(*next, OrchestrationStatus::kCompleted, "late");
  late.tasks.push_back(ActivityTask{0, "once", "once-e1", 1, "Work", "", "", Now()});
  EXPECT_EQ(Commit(*next, late).code(), StatusCode::kAborted);
  EXPECT_EQ(StatusOf("once"), OrchestrationStatus::kRunning);
  EXPECT_EQ(store().GetHistory("once")->size(), episode.size());
  EXPECT_FALSE(FetchActivityNow().has_value()) << "the abandoned episode's task was not created";
  std::optional<OrchestrationWorkItem> again = FetchNow();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->messages.size(), 1u);
}

TEST_P(StoreConformanceTest, StaleActivityCompleteAfterAnotherLeaseIsAbortedAndOneResultLands) {
  ASSERT_TRUE(Create("twice").ok());
  std::optional<OrchestrationWorkItem> item = FetchNow();
  ASSERT_TRUE(item.has_value());
  OrchestrationUpdate u = Running(*item);
  u.tasks.push_back(ActivityTask{0, "twice", "twice-e1", 1, "Work", "", "", Now()});
  ASSERT_TRUE(Commit(*item, u).ok());
  std::optional<ActivityWorkItem> first = FetchActivityNow();
  ASSERT_TRUE(first.has_value());
  clock_->Advance(first->locked_until - Now() + milliseconds(1));
  // The first worker is presumed dead; a second one takes the task.
  std::optional<ActivityWorkItem> second = FetchActivityNow();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->task.seq, first->task.seq);
  EXPECT_NE(second->lock_token, first->lock_token);
  EXPECT_EQ(second->dequeue_count, 2);
  // The first worker comes back: its result is refused, the second's lands.
  EXPECT_EQ(CommitActivity(*first, To("twice", events::TaskCompleted{1, "1"}, "twice-e1")).code(),
            StatusCode::kAborted);
  EXPECT_FALSE(FetchNow().has_value());
  ASSERT_TRUE(CommitActivity(*second, To("twice", events::TaskCompleted{1, "2"}, "twice-e1")).ok());
  std::optional<OrchestrationWorkItem> result = FetchNow();
  ASSERT_TRUE(result.has_value());
  ASSERT_EQ(result->messages.size(), 1u);
  EXPECT_EQ(std::get<events::TaskCompleted>(result->messages[0].event.body).result, "2");
  EXPECT_FALSE(FetchActivityNow().has_value());
}

// ---- Backends ----

std::unique_ptr<Store> OpenSqliteForTest(const std::string& dir, std::shared_ptr<Clock> clock) {
  SqliteStoreOptions options;
  options.path = dir + "/baton.db";
  options.clock = std::move(clock);
  options.lease_duration = std::chrono::seconds(30);
  Result<std::unique_ptr<Store>> store = OpenSqliteStore(options);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreConformanceTest,
                         ::testing::Values(StoreBackend{"Sqlite", &OpenSqliteForTest}),
                         BackendName);

// One fresh database per test (per temp dir): created at the first open, and
// opened again by Reopen() through the URL kept in the dir.
std::unique_ptr<Store> OpenPostgresForTest(const std::string& dir, std::shared_ptr<Clock> clock) {
  const std::string marker = dir + "/postgres-url";
  std::string url;
  {
    std::ifstream in(marker);
    std::getline(in, url);
  }
  if (url.empty()) {
    url = CreateTestDatabase();
    if (url.empty()) return nullptr;
    std::ofstream(marker) << url << "\n";
  }
  PostgresStoreOptions options;
  options.url = url;
  options.clock = std::move(clock);
  options.lease_duration = std::chrono::seconds(30);
  Result<std::unique_ptr<Store>> store = OpenPostgresStore(options);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

INSTANTIATE_TEST_SUITE_P(Postgres, StoreConformanceTest,
                         ::testing::Values(StoreBackend{"Postgres", &OpenPostgresForTest}),
                         BackendName);

}  // namespace
}  // namespace baton::testing
