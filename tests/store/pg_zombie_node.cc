// A Baton node reduced to one scripted work item, for the zombie fencing
// test (postgres_zombie_test.cc): it opens its own PostgresStore, fetches
// one orchestration work item or activity task, prints
//   FETCHED <instance id> <lock token>
// and waits for a line on stdin. The test SIGSTOPs it meanwhile, lets the
// lease expire and another node take the work, SIGCONTs it and sends "GO".
// It then commits what a node that never noticed it had stalled would:
// an episode that completes the instance, sends a message and schedules an
// activity — or the activity's result — and prints
//   RESULT <status code name>
//
// Usage: baton_pg_zombie_node URL orchestration|activity LEASE_MS
#include <cstdio>
#include <future>
#include <iostream>
#include <string>

#include "baton/postgres_store.h"

using namespace baton;

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s URL orchestration|activity LEASE_MS\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[2];
  PostgresStoreOptions options;
  options.url = argv[1];
  options.lease_duration = std::chrono::milliseconds(std::stoll(argv[3]));
  options.node_id = "zombie";
  auto store = OpenPostgresStore(options);
  if (!store.ok()) {
    std::fprintf(stderr, "open: %s\n", store.status().ToString().c_str());
    return 1;
  }
  auto wait_for_go = [] {
    std::string line;
    std::getline(std::cin, line);
  };
  std::promise<Status> done;
  auto callback = [&done](const Status& s) { done.set_value(s); };
  const TimePoint now = std::chrono::system_clock::now();
  if (mode == "orchestration") {
    auto item = (*store)->FetchOrchestrationWorkItem(std::chrono::seconds(30));
    if (!item.ok() || !item->has_value()) {
      std::fprintf(stderr, "nothing fetched\n");
      return 1;
    }
    OrchestrationWorkItem& w = **item;
    std::printf("FETCHED %s %llu\n", w.instance_id.c_str(),
                static_cast<unsigned long long>(w.lock_token));
    std::fflush(stdout);
    wait_for_go();
    OrchestrationUpdate u;
    u.execution_id = w.instance.execution_id;
    u.status = OrchestrationStatus::kCompleted;
    u.output = "\"zombie\"";
    u.new_events.push_back(HistoryEvent{-1, now, events::OrchestratorStarted{}});
    for (const Message& m : w.messages) u.new_events.push_back(m.event);
    u.new_events.push_back(HistoryEvent{1, now, events::TaskScheduled{"Work", "", ""}});
    u.new_events.push_back(HistoryEvent{
        -1, now,
        events::ExecutionCompleted{OrchestrationStatus::kCompleted, "\"zombie\"", std::nullopt}});
    u.tasks.push_back(
        ActivityTask{0, w.instance_id, w.instance.execution_id, 1, "Work", "", "", TimePoint{}});
    Message note;
    note.instance_id = "bystander";
    note.event = HistoryEvent{-1, now, events::EventRaised{"FromTheZombie", ""}};
    u.outbox.push_back(note);
    u.sync = true;
    (*store)->CompleteOrchestrationWorkItem(w, std::move(u), callback);
  } else {
    auto item = (*store)->FetchActivityWorkItem(std::chrono::seconds(30));
    if (!item.ok() || !item->has_value()) {
      std::fprintf(stderr, "nothing fetched\n");
      return 1;
    }
    ActivityWorkItem& w = **item;
    std::printf("FETCHED %s %llu\n", w.task.instance_id.c_str(),
                static_cast<unsigned long long>(w.lock_token));
    std::fflush(stdout);
    wait_for_go();
    Message result{0, w.task.instance_id, w.task.execution_id, TimePoint{},
                   HistoryEvent{-1, now, events::TaskCompleted{w.task.task_id, "\"zombie\""}}};
    (*store)->CompleteActivityWorkItem(w, std::move(result), callback);
  }
  Status s = done.get_future().get();
  std::printf("RESULT %s\n", std::string(StatusCodeName(s.code())).c_str());
  std::fflush(stdout);
  return 0;
}
