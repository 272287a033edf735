#include "api/grpc/convert.h"

#include <algorithm>

#include "util/overloaded.h"

namespace baton::sidecar {
namespace {

std::string Strip(const std::string& id, const std::string& prefix) {
  return !prefix.empty() && id.compare(0, prefix.size(), prefix) == 0 ? id.substr(prefix.size()) : id;
}

void SetString(const std::string& v, google::protobuf::StringValue* out) { out->set_value(v); }

}  // namespace

TimePoint FromProto(const google::protobuf::Timestamp& t) {
  // A client's timestamp may be anything; a TimePoint holds about ±292 years
  // of nanoseconds. Saturate (year 1685 or 2255) rather than overflow.
  constexpr int64_t kMaxSeconds = 9'000'000'000;
  const int64_t seconds = std::clamp<int64_t>(t.seconds(), -kMaxSeconds, kMaxSeconds);
  const int64_t nanos = std::clamp<int64_t>(t.nanos(), -999'999'999, 999'999'999);
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(std::chrono::seconds(seconds) +
                                                                   std::chrono::nanoseconds(nanos)));
}

void ToProto(TimePoint t, google::protobuf::Timestamp* out) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  int64_t seconds = ns / 1000000000;
  int64_t nanos = ns % 1000000000;
  if (nanos < 0) {
    nanos += 1000000000;
    --seconds;
  }
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(nanos));
}

bool IsSet(const google::protobuf::Timestamp& t) { return t.seconds() != 0 || t.nanos() != 0; }

::OrchestrationStatus ToProto(OrchestrationStatus s) { return static_cast<::OrchestrationStatus>(static_cast<int>(s)); }
OrchestrationStatus FromProto(::OrchestrationStatus s) { return static_cast<OrchestrationStatus>(static_cast<int>(s)); }

void ToProto(const FailureDetails& f, ::TaskFailureDetails* out) {
  out->set_errortype(f.error_type);
  out->set_errormessage(f.error_message);
  if (!f.stack_trace.empty()) SetString(f.stack_trace, out->mutable_stacktrace());
  out->set_isnonretriable(f.is_non_retriable);
  if (!f.inner.empty()) ToProto(f.inner[0], out->mutable_innerfailure());
}

FailureDetails FromProto(const ::TaskFailureDetails& f) {
  FailureDetails d;
  d.error_type = f.errortype();
  d.error_message = f.errormessage();
  if (f.has_stacktrace()) d.stack_trace = f.stacktrace().value();
  d.is_non_retriable = f.isnonretriable();
  if (f.has_innerfailure()) d.inner.push_back(FromProto(f.innerfailure()));
  return d;
}

void ToProto(const InstanceState& s, const std::string& strip, ::OrchestrationState* out) {
  out->set_instanceid(Strip(s.instance_id, strip));
  out->set_name(s.name);
  if (!s.version.empty()) SetString(s.version, out->mutable_version());
  out->set_orchestrationstatus(ToProto(s.status));
  if (s.scheduled_start) ToProto(*s.scheduled_start, out->mutable_scheduledstarttimestamp());
  ToProto(s.created_at, out->mutable_createdtimestamp());
  ToProto(s.last_updated_at, out->mutable_lastupdatedtimestamp());
  if (s.completed_at) ToProto(*s.completed_at, out->mutable_completedtimestamp());
  if (!s.input.empty()) SetString(s.input, out->mutable_input());
  if (!s.output.empty()) SetString(s.output, out->mutable_output());
  if (!s.custom_status.empty()) SetString(s.custom_status, out->mutable_customstatus());
  if (s.failure) ToProto(*s.failure, out->mutable_failuredetails());
  if (!s.execution_id.empty()) SetString(s.execution_id, out->mutable_executionid());
  if (!s.parent_instance_id.empty()) SetString(Strip(s.parent_instance_id, strip), out->mutable_parentinstanceid());
  for (const auto& [k, v] : s.tags) (*out->mutable_tags())[k] = v;
}

std::optional<HistoryEvent> AsStored(const HistoryEvent& e) {
  const bool timestamp_only =
      std::holds_alternative<events::OrchestratorStarted>(e.body) ||
      std::holds_alternative<events::OrchestratorCompleted>(e.body) ||
      std::holds_alternative<events::TaskScheduled>(e.body) || std::holds_alternative<events::TaskCompleted>(e.body) ||
      std::holds_alternative<events::TaskFailed>(e.body) || std::holds_alternative<events::EventRaised>(e.body) ||
      std::holds_alternative<events::EventSent>(e.body) || std::holds_alternative<events::ExecutionCompleted>(e.body) ||
      std::holds_alternative<events::SubOrchestrationInstanceCreated>(e.body) ||
      std::holds_alternative<events::SubOrchestrationInstanceCompleted>(e.body) ||
      std::holds_alternative<events::SubOrchestrationInstanceFailed>(e.body);
  if (timestamp_only) {
    HistoryEvent out = e;
    out.timestamp = std::chrono::floor<std::chrono::microseconds>(e.timestamp);
    return out;
  }
  auto stored = ParseEvent(SerializeEvent(e));
  if (!stored.ok()) return std::nullopt;
  return std::move(*stored);
}

bool SentToSdk(const HistoryEvent& e) { return !std::holds_alternative<events::OrchestratorCompleted>(e.body); }

void ToProto(const HistoryEvent& e, const std::string& strip, ::HistoryEvent* out) {
  out->set_eventid(e.event_id);
  ToProto(e.timestamp, out->mutable_timestamp());
  auto str = [](const std::string& v, google::protobuf::StringValue* field) {
    if (!v.empty()) field->set_value(v);
  };
  std::visit(
      util::Overloaded{
          [&](const events::ExecutionStarted& b) {
            auto* p = out->mutable_executionstarted();
            p->set_name(b.name);
            str(b.version, p->mutable_version());
            str(b.input, p->mutable_input());
            p->mutable_orchestrationinstance()->set_instanceid(Strip(b.instance_id, strip));
            p->mutable_orchestrationinstance()->mutable_executionid()->set_value(b.execution_id);
            if (b.parent) {
              p->mutable_parentinstance()->set_taskscheduledid(b.parent->task_scheduled_id);
              p->mutable_parentinstance()->mutable_name()->set_value(b.parent->name);
              auto* parent = p->mutable_parentinstance()->mutable_orchestrationinstance();
              parent->set_instanceid(Strip(b.parent->instance_id, strip));
              if (!b.parent->execution_id.empty()) parent->mutable_executionid()->set_value(b.parent->execution_id);
            }
            if (b.scheduled_start) ToProto(*b.scheduled_start, p->mutable_scheduledstarttimestamp());
            for (const auto& [k, v] : b.tags) (*p->mutable_tags())[k] = v;
          },
          [&](const events::ExecutionCompleted& b) {
            auto* p = out->mutable_executioncompleted();
            p->set_orchestrationstatus(ToProto(b.status));
            str(b.result, p->mutable_result());
            if (b.failure) ToProto(*b.failure, p->mutable_failuredetails());
          },
          [&](const events::ExecutionTerminated& b) {
            auto* p = out->mutable_executionterminated();
            str(b.input, p->mutable_input());
            p->set_recurse(b.recurse);
          },
          [&](const events::TaskScheduled& b) {
            auto* p = out->mutable_taskscheduled();
            p->set_name(b.name);
            str(b.version, p->mutable_version());
            str(b.input, p->mutable_input());
          },
          [&](const events::TaskCompleted& b) {
            auto* p = out->mutable_taskcompleted();
            p->set_taskscheduledid(b.task_scheduled_id);
            str(b.result, p->mutable_result());
          },
          [&](const events::TaskFailed& b) {
            auto* p = out->mutable_taskfailed();
            p->set_taskscheduledid(b.task_scheduled_id);
            ToProto(b.failure, p->mutable_failuredetails());
          },
          [&](const events::SubOrchestrationInstanceCreated& b) {
            auto* p = out->mutable_suborchestrationinstancecreated();
            p->set_instanceid(Strip(b.instance_id, strip));
            p->set_name(b.name);
            str(b.version, p->mutable_version());
            str(b.input, p->mutable_input());
          },
          [&](const events::SubOrchestrationInstanceCompleted& b) {
            auto* p = out->mutable_suborchestrationinstancecompleted();
            p->set_taskscheduledid(b.task_scheduled_id);
            str(b.result, p->mutable_result());
          },
          [&](const events::SubOrchestrationInstanceFailed& b) {
            auto* p = out->mutable_suborchestrationinstancefailed();
            p->set_taskscheduledid(b.task_scheduled_id);
            ToProto(b.failure, p->mutable_failuredetails());
          },
          [&](const events::TimerCreated& b) { ToProto(b.fire_at, out->mutable_timercreated()->mutable_fireat()); },
          [&](const events::TimerFired& b) {
            auto* p = out->mutable_timerfired();
            ToProto(b.fire_at, p->mutable_fireat());
            p->set_timerid(b.timer_id);
          },
          [&](const events::OrchestratorStarted&) { out->mutable_orchestratorstarted(); },
          [&](const events::OrchestratorCompleted&) { out->mutable_orchestratorcompleted(); },
          [&](const events::EventSent& b) {
            auto* p = out->mutable_eventsent();
            p->set_instanceid(Strip(b.instance_id, strip));
            p->set_name(b.name);
            str(b.input, p->mutable_input());
          },
          [&](const events::EventRaised& b) {
            auto* p = out->mutable_eventraised();
            p->set_name(b.name);
            str(b.input, p->mutable_input());
          },
          [&](const events::ContinueAsNew& b) { str(b.input, out->mutable_continueasnew()->mutable_input()); },
          [&](const events::ExecutionSuspended& b) { str(b.input, out->mutable_executionsuspended()->mutable_input()); },
          [&](const events::ExecutionResumed& b) { str(b.input, out->mutable_executionresumed()->mutable_input()); },
          [&](const events::ExecutionRewound& b) { out->mutable_executionrewound()->mutable_reason()->set_value(b.reason); },
          [&](const events::EntityOperationSignaled& b) {
            auto* p = out->mutable_entityoperationsignaled();
            p->set_requestid(b.request_id);
            p->set_operation(b.operation);
            if (b.scheduled_time) ToProto(*b.scheduled_time, p->mutable_scheduledtime());
            str(b.input, p->mutable_input());
            str(Strip(b.target_instance_id, strip), p->mutable_targetinstanceid());
          },
          [&](const events::EntityOperationCalled& b) {
            auto* p = out->mutable_entityoperationcalled();
            p->set_requestid(b.request_id);
            p->set_operation(b.operation);
            if (b.scheduled_time) ToProto(*b.scheduled_time, p->mutable_scheduledtime());
            str(b.input, p->mutable_input());
            str(Strip(b.target_instance_id, strip), p->mutable_targetinstanceid());
          },
          [&](const events::EntityOperationCompleted& b) {
            auto* p = out->mutable_entityoperationcompleted();
            p->set_requestid(b.request_id);
            str(b.output, p->mutable_output());
          },
          [&](const events::EntityOperationFailed& b) {
            auto* p = out->mutable_entityoperationfailed();
            p->set_requestid(b.request_id);
            ToProto(b.failure, p->mutable_failuredetails());
          },
          [&](const events::EntityLockRequested& b) {
            auto* p = out->mutable_entitylockrequested();
            p->set_criticalsectionid(b.critical_section_id);
            for (const std::string& id : b.lock_set) p->add_lockset(Strip(id, strip));
            p->set_position(b.position);
          },
          [&](const events::EntityLockGranted& b) {
            out->mutable_entitylockgranted()->set_criticalsectionid(b.critical_section_id);
          },
          [&](const events::EntityUnlockSent& b) {
            auto* p = out->mutable_entityunlocksent();
            p->set_criticalsectionid(b.critical_section_id);
            str(Strip(b.target_instance_id, strip), p->mutable_targetinstanceid());
          },
      },
      e.body);
}

}  // namespace baton::sidecar
