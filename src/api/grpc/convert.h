// Translation between Baton's core types and the sidecar protocol's protobuf
// messages. Only src/api/grpc includes the generated headers (their types are
// in the global namespace and would clash with baton's).
#pragma once

#include <optional>
#include <string>

#include "baton/history.h"
#include "baton/instance.h"
#include "orchestrator_service.pb.h"

namespace baton::sidecar {

TimePoint FromProto(const google::protobuf::Timestamp& t);
void ToProto(TimePoint t, google::protobuf::Timestamp* out);
bool IsSet(const google::protobuf::Timestamp& t);  // not unset and not epoch 0

::OrchestrationStatus ToProto(OrchestrationStatus s);
OrchestrationStatus FromProto(::OrchestrationStatus s);

void ToProto(const FailureDetails& f, ::TaskFailureDetails* out);
FailureDetails FromProto(const ::TaskFailureDetails& f);

// An instance's state; `strip` is the hub prefix to remove from ids.
void ToProto(const InstanceState& s, const std::string& strip, ::OrchestrationState* out);

// Whether an SDK sees `e` (StreamInstanceHistory, work items): the Durable
// Task Scheduler's event sequence has no OrchestratorCompleted, which Baton
// records at the end of each episode for itself.
bool SentToSdk(const HistoryEvent& e);

// `e` as a read of the store gives it back (ParseEvent(SerializeEvent(e))):
// times kept to the microsecond. The kinds whose only time is the timestamp
// (the events of activities, sub-orchestrations, raised and sent events,
// episodes and completions) are copied and truncated without the JSON round
// trip; the others take it. nullopt when the round trip fails.
std::optional<HistoryEvent> AsStored(const HistoryEvent& e);

// A history event, ids relative to the hub (`strip` removed).
void ToProto(const HistoryEvent& e, const std::string& strip, ::HistoryEvent* out);

}  // namespace baton::sidecar
