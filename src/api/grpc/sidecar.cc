#include "api/grpc/sidecar.h"

#include <google/protobuf/descriptor.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_interceptor.h>

#include <absl/synchronization/mutex.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <future>
#include <set>
#include <thread>
#include <tuple>
#include <utility>
#include <unordered_map>

#include "api/grpc/convert.h"
#include "baton/json.h"
#include "baton/worker.h"
#include "engine/episode_update.h"
#include "orchestrator_service.grpc.pb.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/uuid.h"

namespace baton::sidecar {
namespace {

using ::grpc::ServerContext;
using GrpcStatus = ::grpc::Status;
using ::google::protobuf::Empty;

GrpcStatus ToGrpc(const Status& s) {
  // Baton's StatusCode uses gRPC's numbering (status.h).
  return GrpcStatus(static_cast<::grpc::StatusCode>(static_cast<int>(s.code())), s.message());
}

GrpcStatus Invalid(const std::string& message) { return GrpcStatus(::grpc::StatusCode::INVALID_ARGUMENT, message); }

// A client's payload: JSON text (the protocol's form), "" for none, kept as
// the exact bytes sent (`null` stays `null`, members keep their order). It is
// checked like any JSON Baton reads (ValidateJson), so a payload nested too
// deeply or not UTF-8 is refused here, by field name, before anything is stored.
GrpcStatus Payload(bool has, const std::string& text, const char* field, JsonText* out) {
  out->text.clear();
  if (!has || text.empty()) return GrpcStatus::OK;
  if (Status s = ValidateJson(text); !s.ok()) return Invalid(std::string(field) + " " + s.message());
  out->text = text;
  return GrpcStatus::OK;
}

std::string Metadata(const ::grpc::ServerContextBase* ctx, const std::string& key) {
  auto range = ctx->client_metadata().equal_range(key);
  if (range.first == range.second) return "";
  return std::string(range.first->second.data(), range.first->second.size());
}

std::string PrefixOf(const std::string& instance_id) {
  std::string_view hub = HubOf(instance_id);
  return hub.empty() ? std::string() : std::string(hub) + std::string(kHubSeparator);
}

// Who each call in flight acts for, by its ServerContext: set by
// Authenticate, read (and dropped) by the CallRecorder when the call ends.
class CallTenants {
 public:
  void Set(const ::grpc::ServerContextBase* ctx, std::string tenant) {
    std::lock_guard lock(mu_);
    tenants_[ctx] = std::move(tenant);
  }
  std::string Take(const ::grpc::ServerContextBase* ctx) {
    std::lock_guard lock(mu_);
    auto it = tenants_.find(ctx);
    if (it == tenants_.end()) return "";
    std::string t = std::move(it->second);
    tenants_.erase(it);
    return t;
  }

 private:
  std::mutex mu_;
  std::unordered_map<const ::grpc::ServerContextBase*, std::string> tenants_;
};

CallTenants& Tenants() {
  static CallTenants* t = new CallTenants();
  return *t;
}

// The method names of TaskHubSidecarService: what a call may be labelled
// with (a client may call any name; an unknown one is "unknown").
const std::set<std::string>& KnownMethods() {
  static const std::set<std::string> names = [] {
    std::set<std::string> out;
    const auto* service =
        ::google::protobuf::DescriptorPool::generated_pool()->FindServiceByName("TaskHubSidecarService");
    for (int i = 0; service != nullptr && i < service->method_count(); ++i) out.insert(service->method(i)->name());
    return out;
  }();
  return names;
}

util::metrics::Gauge& SdkWorkers() {
  static util::metrics::Gauge& g = util::metrics::Default().GetGauge(
      "baton_sdk_workers_connected", "GetWorkItems streams open: SDK workers connected over gRPC");
  return g;
}

// The dispatch record of SDK work items, by route: "stream" (written to a
// connected worker's stream at once), "parked" (no stream of its hub had
// room), "handed" (a parked item taken by a stream that connected or made
// room), "given_back" (returned to the store: parked too long, more parked
// than memory keeps, its stream ended, the server stopped).
util::metrics::Counter& WorkRoute(const char* route) {
  return util::metrics::Default().GetCounter(
      "baton_sdk_work_items_total", "SDK work items by dispatch route: stream, parked, handed, given_back",
      {{"route", route}});
}

// A method's label and its metrics, looked up once (a work item's calls are
// the hot path: no registry lookup per call).
class MethodRecord {
 public:
  explicit MethodRecord(std::string name) : name_(std::move(name)) {}
  const std::string& name() const { return name_; }
  util::metrics::Counter& Requests(::grpc::StatusCode code) {
    const size_t i = static_cast<size_t>(code) < kCodes ? static_cast<size_t>(code) : kCodes - 1;
    util::metrics::Counter* c = requests_[i].load(std::memory_order_acquire);
    if (c == nullptr) {
      const std::string code_name = std::string(StatusCodeName(static_cast<StatusCode>(static_cast<int>(code))));
      c = &util::metrics::Default().GetCounter("baton_grpc_requests_total",
                                               "gRPC calls of the Durable Task sidecar, by method and status code",
                                               {{"method", name_}, {"code", code_name}});
      requests_[i].store(c, std::memory_order_release);  // the registry gives the same counter to a racer
    }
    return *c;
  }
  util::metrics::Histogram& Duration() {
    util::metrics::Histogram* h = duration_.load(std::memory_order_acquire);
    if (h == nullptr) {
      h = &util::metrics::Default().GetHistogram("baton_grpc_request_duration_seconds",
                                                 "Duration of sidecar calls, by method", {{"method", name_}});
      duration_.store(h, std::memory_order_release);
    }
    return *h;
  }

 private:
  static constexpr size_t kCodes = 17;  // OK … UNAUTHENTICATED
  std::string name_;
  std::array<std::atomic<util::metrics::Counter*>, kCodes> requests_{};
  std::atomic<util::metrics::Histogram*> duration_{nullptr};
};

// By the full method path ("/TaskHubSidecarService/GetWorkItems"); any other
// path is "unknown".
MethodRecord& MethodRecordOf(std::string_view full) {
  static auto* by_path = [] {
    auto* out = new std::unordered_map<std::string, std::unique_ptr<MethodRecord>>();
    for (const std::string& name : KnownMethods()) {
      (*out)["/TaskHubSidecarService/" + name] = std::make_unique<MethodRecord>(name);
    }
    return out;
  }();
  static MethodRecord* unknown = new MethodRecord("unknown");
  auto it = by_path->find(std::string(full));
  return it == by_path->end() ? *unknown : *it->second;
}

// Counts a call by method and status code, times it, and writes its access
// log line ("grpc_request": method, code, tenant, ms).
void RecordCall(MethodRecord& record, ::grpc::StatusCode code, const std::string& tenant,
                std::chrono::steady_clock::duration took) {
  const std::string& method = record.name();
  if (util::metrics::Enabled()) {
    record.Requests(code).Inc();
    // A GetWorkItems stream lasts as long as its worker: not a latency.
    if (method != "GetWorkItems") record.Duration().Observe(took);
  }
  // Work-item traffic is every episode and activity of SDK workers: debug.
  const bool work = method.starts_with("Complete") || method.starts_with("Abandon");
  const auto level = work ? spdlog::level::debug : spdlog::level::info;
  if (util::Log().should_log(level)) {
    util::LogEvent(level, "grpc_request",
                   Json{{"method", method},
                        {"code", std::string(StatusCodeName(static_cast<StatusCode>(static_cast<int>(code))))},
                        {"tenant", tenant},
                        {"ms", std::chrono::duration<double, std::milli>(took).count()}});
  }
}

// The callback methods (GetWorkItems, CompleteOrchestratorTask,
// CompleteActivityTask) record themselves (RecordCall): an interceptor would
// put every message of theirs through the interception machinery.
bool RecordsItself(std::string_view full_method) {
  return full_method == "/TaskHubSidecarService/GetWorkItems" ||
         full_method == "/TaskHubSidecarService/CompleteOrchestratorTask" ||
         full_method == "/TaskHubSidecarService/CompleteActivityTask";
}

// One per call of the other methods: RecordCall when its status is sent.
class CallRecorder final : public ::grpc::experimental::Interceptor {
 public:
  explicit CallRecorder(::grpc::experimental::ServerRpcInfo* info)
      : ctx_(info->server_context()),
        start_(std::chrono::steady_clock::now()),
        record_(MethodRecordOf(info->method() != nullptr ? info->method() : "")) {}
  ~CallRecorder() override {
    if (!recorded_) Tenants().Take(ctx_);
  }
  void Intercept(::grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(::grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      Record(methods->GetSendStatus().error_code());
    }
    methods->Proceed();
  }

 private:
  void Record(::grpc::StatusCode code) {
    recorded_ = true;
    RecordCall(record_, code, Tenants().Take(ctx_), std::chrono::steady_clock::now() - start_);
  }

  const ::grpc::ServerContextBase* ctx_;
  std::chrono::steady_clock::time_point start_;
  MethodRecord& record_;
  bool recorded_ = false;
};

class CallRecorderFactory final : public ::grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  ::grpc::experimental::Interceptor* CreateServerInterceptor(::grpc::experimental::ServerRpcInfo* info) override {
    if (info->method() != nullptr && RecordsItself(info->method())) return nullptr;
    return new CallRecorder(info);
  }
};

// A request message that does not parse. gRPC 1.51's callback handlers
// answer it UNIMPLEMENTED ("this method does not exist", which it does) and
// run no code of ours; the synchronous handlers answer INTERNAL. ParseChecked
// wraps a callback handler: it runs it as if the message had parsed, and the
// reactor getter it was made with (CheckedUnary; GetWorkItems' in
// MarkWorkerCallsParseChecked), seeing ParseFailure(), answers INTERNAL and
// records the call like any other. The failed message never reaches the
// method.
struct ParseFailureOf {
  const ::grpc::ServerContextBase* call = nullptr;
  const ::grpc::Status* status = nullptr;
};
thread_local ParseFailureOf t_parse_failure;

// The parse failure of the call `ctx` whose handler runs on this thread, or null.
const ::grpc::Status* ParseFailure(const ::grpc::ServerContextBase* ctx) {
  return t_parse_failure.call == ctx ? t_parse_failure.status : nullptr;
}

GrpcStatus Unparsable(const ::grpc::Status& parse) {
  std::string message = "the request is not a valid message of this method";
  if (!parse.error_message().empty()) message += ": " + parse.error_message();
  return GrpcStatus(::grpc::StatusCode::INTERNAL, message);
}

template <class Handler>
class ParseChecked;

// A unary method's callback handler, in a ParseChecked: `factory` makes the
// call's reactor from a request that parsed; an unparsable one is answered
// here (and recorded here for the methods that record themselves).
template <class Req, class Resp, class Factory>
::grpc::internal::MethodHandler* CheckedUnary(std::string_view path, Factory factory) {
  using Handler = ::grpc::internal::CallbackUnaryHandler<Req, Resp>;
  return new ParseChecked<Handler>(new Handler(
      [path = std::string(path), factory](::grpc::CallbackServerContext* ctx, const Req* req,
                                          Resp* resp) -> ::grpc::ServerUnaryReactor* {
        if (const ::grpc::Status* bad = ParseFailure(ctx)) {
          const GrpcStatus status = Unparsable(*bad);
          if (RecordsItself(path)) {
            RecordCall(MethodRecordOf(path), status.error_code(), "", std::chrono::steady_clock::duration::zero());
          }
          ::grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
          reactor->Finish(status);
          return reactor;
        }
        return factory(ctx, req, resp);
      }));
}

template <class Handler>
class ParseChecked final : public ::grpc::internal::MethodHandler {
 public:
  explicit ParseChecked(Handler* inner) : inner_(inner) {}

  void RunHandler(const HandlerParameter& param) override {
    if (param.status.ok()) return inner_->RunHandler(param);
    // The handler's message holder (internal_data) was made before the
    // parse, so the handler can run; the factory answers before reading it.
    // The failure is this call's only, and only while its handler runs.
    struct Restore {
      ParseFailureOf saved;
      ~Restore() { t_parse_failure = saved; }
    } restore{t_parse_failure};
    t_parse_failure = {param.server_context, &param.status};
    inner_->RunHandler(HandlerParameter(param.call, param.server_context, param.request, ::grpc::Status::OK,
                                        param.internal_data, param.call_requester));
  }

  void* Deserialize(grpc_call* call, grpc_byte_buffer* req, ::grpc::Status* status, void** handler_data) override {
    return inner_->Deserialize(call, req, status, handler_data);
  }

 private:
  std::unique_ptr<Handler> inner_;
};

// The worker RPCs, GetWorkItems and the completions of orchestrator and
// activity work items, use gRPC's callback API: a work item is written to its
// stream by the thread that dispatched it, and a completion is answered by
// the store's commit callback, so no server thread waits for either (the
// synchronous API put two thread hand-offs on every work item). With a
// store that answers asynchronously, so are the client calls made for
// every instance (MarkClientCallsAsync). The other RPCs are synchronous.
using ServiceBase = ::TaskHubSidecarService::WithCallbackMethod_GetWorkItems<
    ::TaskHubSidecarService::WithCallbackMethod_CompleteActivityTask<
        ::TaskHubSidecarService::WithCallbackMethod_CompleteOrchestratorTask<::TaskHubSidecarService::Service>>>;

class Service final : public ServiceBase, public ExternalDispatcher {
 public:
  Service(Client& client, Store& store, tenancy::TenantDirectory& directory, SidecarOptions options)
      : client_(client), store_(store), directory_(directory), options_(std::move(options)) {
    MarkWorkerCallsParseChecked();
    if (store_.SupportsAsyncClientCalls()) MarkClientCallsAsync();
  }

  static int MethodIndex(const char* name) {
    static const auto* service =
        ::google::protobuf::DescriptorPool::generated_pool()->FindServiceByName("TaskHubSidecarService");
    return service->FindMethodByName(name)->index();
  }

  // The worker RPCs' callback handlers (marked by ServiceBase), each in a
  // ParseChecked.
  void MarkWorkerCallsParseChecked() {
    using StreamHandler = ::grpc::internal::CallbackServerStreamingHandler<::GetWorkItemsRequest, ::WorkItem>;
    ::grpc::Service::MarkMethodCallback(
        MethodIndex("GetWorkItems"),
        new ParseChecked(new StreamHandler(
            [this](::grpc::CallbackServerContext* ctx,
                   const ::GetWorkItemsRequest* req) -> ::grpc::ServerWriteReactor<::WorkItem>* {
              if (const ::grpc::Status* bad = ParseFailure(ctx)) return new RefusedStream(ctx, Unparsable(*bad));
              return GetWorkItems(ctx, req);
            })));
    ::grpc::Service::MarkMethodCallback(
        MethodIndex("CompleteActivityTask"),
        CheckedUnary<::ActivityResponse, ::CompleteTaskResponse>(
            "/TaskHubSidecarService/CompleteActivityTask",
            [this](::grpc::CallbackServerContext* ctx, const ::ActivityResponse* req, ::CompleteTaskResponse* resp) {
              return CompleteActivityTask(ctx, req, resp);
            }));
    ::grpc::Service::MarkMethodCallback(
        MethodIndex("CompleteOrchestratorTask"),
        CheckedUnary<::OrchestratorResponse, ::CompleteTaskResponse>(
            "/TaskHubSidecarService/CompleteOrchestratorTask",
            [this](::grpc::CallbackServerContext* ctx, const ::OrchestratorResponse* req,
                   ::CompleteTaskResponse* resp) { return CompleteOrchestratorTask(ctx, req, resp); }));
  }

  // With a store that answers without blocking, the client calls a
  // DurableTaskClient makes for every instance (start it, wait for it) use
  // the callback API as well: the store's writer answers them when it
  // commits, and no server thread waits per call. With another store they
  // stay synchronous.
  void MarkClientCallsAsync() {
    ::grpc::Service::MarkMethodCallback(
        MethodIndex("StartInstance"),
        CheckedUnary<::CreateInstanceRequest, ::CreateInstanceResponse>(
            "/TaskHubSidecarService/StartInstance",
            [this](::grpc::CallbackServerContext* ctx, const ::CreateInstanceRequest* req,
                   ::CreateInstanceResponse* resp) { return StartInstanceAsync(ctx, req, resp); }));
    ::grpc::Service::MarkMethodCallback(
        MethodIndex("WaitForInstanceStart"),
        CheckedUnary<::GetInstanceRequest, ::GetInstanceResponse>(
            "/TaskHubSidecarService/WaitForInstanceStart",
            [this](::grpc::CallbackServerContext* ctx, const ::GetInstanceRequest* req, ::GetInstanceResponse* resp) {
              return WaitAsync(ctx, req, resp, false);
            }));
    ::grpc::Service::MarkMethodCallback(
        MethodIndex("WaitForInstanceCompletion"),
        CheckedUnary<::GetInstanceRequest, ::GetInstanceResponse>(
            "/TaskHubSidecarService/WaitForInstanceCompletion",
            [this](::grpc::CallbackServerContext* ctx, const ::GetInstanceRequest* req, ::GetInstanceResponse* resp) {
              return WaitAsync(ctx, req, resp, true);
            }));
  }

  // ---- Caller and hub ----

  // The hub prefix ("<tenant>::", or "" for the default hub) the call acts on.
  // Client calls (`admit`) also pass the tenant's request rate.
  GrpcStatus Hub(::grpc::ServerContextBase* ctx, std::string* prefix, bool admit = true) {
    bool admin = false;
    GrpcStatus s = Authenticate(ctx, prefix, &admin);
    if (!s.ok() || !admit || options_.admission == nullptr || prefix->empty() || admin) return s;
    const std::string tenant = prefix->substr(0, prefix->size() - kHubSeparator.size());
    std::chrono::milliseconds retry_after{1000};
    if (Status admitted = options_.admission->AdmitRequest(tenant, &retry_after); !admitted.ok()) {
      ctx->AddTrailingMetadata("retry-after", std::to_string(std::max<int64_t>(1, (retry_after.count() + 999) / 1000)));
      return ToGrpc(admitted);
    }
    return GrpcStatus::OK;
  }

  // The tenant's cap on stored instances, for calls that create one.
  GrpcStatus AdmitInstance(const std::string& prefix) {
    if (options_.admission == nullptr || prefix.empty()) return GrpcStatus::OK;
    const std::string tenant = prefix.substr(0, prefix.size() - kHubSeparator.size());
    auto settings = directory_.GetSettings(tenant);
    if (!settings.ok()) return GrpcStatus::OK;  // the default hub of an anonymous caller: no tenant
    const int64_t limit = settings->limits.max_instances;
    InstanceQuery q;
    q.instance_id_prefix = prefix;
    return ToGrpc(options_.admission->AdmitObject(tenant, "stored instances", limit,
                                                  [&] { return client_.Count(q, limit + 1); }));
  }

  GrpcStatus Authenticate(::grpc::ServerContextBase* ctx, std::string* prefix, bool* admin) {
    const std::string auth = Metadata(ctx, "authorization");
    const std::string taskhub = Metadata(ctx, "taskhub");
    constexpr std::string_view kBearer = "Bearer ";
    if (auth.empty()) {
      if (!options_.allow_anonymous) {
        return GrpcStatus(::grpc::StatusCode::UNAUTHENTICATED,
                          "an 'authorization: Bearer <API key>' metadata entry is required");
      }
      return HubPrefix(taskhub, prefix);
    }
    if (auth.size() <= kBearer.size() || auth.compare(0, kBearer.size(), kBearer) != 0) {
      return GrpcStatus(::grpc::StatusCode::UNAUTHENTICATED, "authorization must be 'Bearer <API key>'");
    }
    auto principal = directory_.Authenticate(auth.substr(kBearer.size()));
    if (!principal.ok()) return ToGrpc(principal.status());
    Tenants().Set(ctx, principal->admin ? "(admin)" : principal->tenant_id);
    if (principal->admin) {
      *admin = true;
      return HubPrefix(taskhub, prefix);
    }
    if (!taskhub.empty() && taskhub != principal->tenant_id) {
      return GrpcStatus(::grpc::StatusCode::PERMISSION_DENIED,
                        "a tenant key acts on its own task hub ('" + principal->tenant_id + "') only");
    }
    *prefix = principal->tenant_id + std::string(kHubSeparator);
    return GrpcStatus::OK;
  }

  static GrpcStatus HubPrefix(const std::string& taskhub, std::string* prefix) {
    if (!taskhub.empty() && !tenancy::IsValidTenantId(taskhub)) {
      return Invalid("taskhub '" + taskhub + "' is not a valid task hub name");
    }
    *prefix = taskhub.empty() ? "" : taskhub + std::string(kHubSeparator);
    return GrpcStatus::OK;
  }

  // The store id of a hub-local id; INVALID_ARGUMENT for a bad one (the
  // Durable Task Scheduler's limit: at most 100 characters, entities too).
  static GrpcStatus Qualify(const std::string& prefix, const std::string& id, std::string* out) {
    if (id.empty() || id.size() > kMaxInstanceIdChars) {
      return Invalid("instanceId has 1 to " + std::to_string(kMaxInstanceIdChars) + " characters (this one has " +
                     std::to_string(id.size()) + ")");
    }
    if (id.find(kHubSeparator) != std::string::npos) return Invalid("an instance id cannot contain '::'");
    *out = prefix + id;
    return GrpcStatus::OK;
  }

  static bool InHub(const std::string& prefix, const std::string& id) {
    if (prefix.empty()) return id.find(kHubSeparator) == std::string::npos;
    return id.compare(0, prefix.size(), prefix) == 0;
  }

#define BATON_GRPC_HUB(ctx, prefix)                    \
  std::string prefix;                                  \
  if (GrpcStatus s_ = Hub(ctx, &prefix); !s_.ok()) return s_

#define BATON_GRPC_ID(prefix, local, out)                       \
  std::string out;                                              \
  if (GrpcStatus s_ = Qualify(prefix, local, &out); !s_.ok()) return s_

  // ---- RPCs ----

  // An orchestrator, event or operation name: 1 to kMaxNameChars characters.
  static GrpcStatus Name(const std::string& name, const char* field) {
    if (name.empty()) return Invalid(std::string(field) + " is required");
    if (name.size() > kMaxNameChars) {
      return Invalid(std::string(field) + " has at most " + std::to_string(kMaxNameChars) + " characters");
    }
    return GrpcStatus::OK;
  }

  GrpcStatus Hello(ServerContext*, const Empty*, Empty*) override { return GrpcStatus::OK; }

  // A StartInstance request checked and admitted: the new instance's id in
  // its hub (`local`), its options and input.
  GrpcStatus PrepareStart(::grpc::ServerContextBase* ctx, const ::CreateInstanceRequest* req, std::string* local,
                          ScheduleOptions* out, JsonText* input) {
    BATON_GRPC_HUB(ctx, prefix);
    if (GrpcStatus s = Name(req->name(), "name"); !s.ok()) return s;
    *local = req->instanceid().empty() ? util::NewRandomUuid() : req->instanceid();
    BATON_GRPC_ID(prefix, *local, id);
    ScheduleOptions& o = *out;
    o.instance_id = id;
    if (req->has_version()) o.version = req->version().value();
    if (req->has_scheduledstarttimestamp() && IsSet(req->scheduledstarttimestamp())) {
      o.start_at = FromProto(req->scheduledstarttimestamp());
    }
    for (const auto& [k, v] : req->tags()) o.tags[k] = v;
    if (req->has_orchestrationidreusepolicy()) {
      for (int s : req->orchestrationidreusepolicy().replaceablestatus()) {
        o.replaceable_statuses.push_back(FromProto(static_cast<::OrchestrationStatus>(s)));
      }
    }
    if (GrpcStatus s = Payload(req->has_input(), req->input().value(), "input", input); !s.ok()) return s;
    return AdmitInstance(prefix);
  }

  GrpcStatus StartInstance(ServerContext* ctx, const ::CreateInstanceRequest* req,
                           ::CreateInstanceResponse* resp) override {
    std::string local;
    ScheduleOptions o;
    JsonText input;
    if (GrpcStatus s = PrepareStart(ctx, req, &local, &o, &input); !s.ok()) return s;
    auto started = client_.ScheduleNewOrchestration(req->name(), input, o);
    if (!started.ok()) return ToGrpc(started.status());
    resp->set_instanceid(local);
    return GrpcStatus::OK;
  }

  // StartInstance answered by the store's commit (MarkClientCallsAsync).
  ::grpc::ServerUnaryReactor* StartInstanceAsync(::grpc::CallbackServerContext* ctx,
                                                 const ::CreateInstanceRequest* req, ::CreateInstanceResponse* resp) {
    ::grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    std::string local;
    ScheduleOptions o;
    JsonText input;
    if (GrpcStatus s = PrepareStart(ctx, req, &local, &o, &input); !s.ok()) {
      reactor->Finish(s);
      return reactor;
    }
    client_.ScheduleNewOrchestrationAsync(req->name(), input, o,
                                          [reactor, resp, local](Result<std::string> started) {
                                            if (!started.ok()) return reactor->Finish(ToGrpc(started.status()));
                                            resp->set_instanceid(local);
                                            reactor->Finish(GrpcStatus::OK);
                                          });
    return reactor;
  }

  GrpcStatus GetInstance(ServerContext* ctx, const ::GetInstanceRequest* req, ::GetInstanceResponse* resp) override {
    BATON_GRPC_HUB(ctx, prefix);
    BATON_GRPC_ID(prefix, req->instanceid(), id);
    auto s = client_.GetState(id, req->getinputsandoutputs());
    if (!s.ok() && s.status().code() == StatusCode::kNotFound) {
      resp->set_exists(false);
      return GrpcStatus::OK;
    }
    if (!s.ok()) return ToGrpc(s.status());
    resp->set_exists(true);
    ToProto(*s, prefix, resp->mutable_orchestrationstate());
    return GrpcStatus::OK;
  }

  // A wait holds a thread: a hub gets max_waits_per_hub at once.
  class WaitGuard {
   public:
    WaitGuard(Service* s, std::string prefix) : s_(s), prefix_(std::move(prefix)) {}
    ~WaitGuard() {
      std::lock_guard lock(s_->mu_);
      if (--s_->waits_[prefix_] <= 0) s_->waits_.erase(prefix_);
    }

   private:
    Service* s_;
    std::string prefix_;
  };

  // How long a wait may last: the server's limit, or the call's deadline
  // when sooner (zero or less: passed).
  std::chrono::milliseconds WaitTimeout(const ::grpc::ServerContextBase* ctx) const {
    auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(options_.max_wait);
    if (ctx->deadline() != std::chrono::system_clock::time_point::max()) {
      timeout = std::min(timeout, std::chrono::duration_cast<std::chrono::milliseconds>(
                                      ctx->deadline() - std::chrono::system_clock::now()));
    }
    return timeout;
  }

  // Counts a wait against its hub's cap; RESOURCE_EXHAUSTED when the hub has
  // max_waits_per_hub open. REQUIRES: mu_.
  GrpcStatus AdmitWaitLocked(const std::string& prefix) {
    if (!prefix.empty() && waits_[prefix] >= options_.max_waits_per_hub) {
      return GrpcStatus(::grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "this task hub already has " + std::to_string(options_.max_waits_per_hub) +
                            " waits open; try again when one ends");
    }
    ++waits_[prefix];
    return GrpcStatus::OK;
  }

  GrpcStatus Wait(ServerContext* ctx, const ::GetInstanceRequest* req, ::GetInstanceResponse* resp, bool completion) {
    BATON_GRPC_HUB(ctx, prefix);
    BATON_GRPC_ID(prefix, req->instanceid(), id);
    {
      std::lock_guard lock(mu_);
      if (GrpcStatus s = AdmitWaitLocked(prefix); !s.ok()) return s;
    }
    WaitGuard guard(this, prefix);
    const auto timeout = WaitTimeout(ctx);
    if (timeout.count() <= 0) return GrpcStatus(::grpc::StatusCode::DEADLINE_EXCEEDED, "the deadline passed");
    auto s = completion ? client_.WaitForCompletion(id, timeout, req->getinputsandoutputs())
                        : client_.WaitForStart(id, timeout, req->getinputsandoutputs());
    if (!s.ok()) return ToGrpc(s.status());
    resp->set_exists(true);
    ToProto(*s, prefix, resp->mutable_orchestrationstate());
    return GrpcStatus::OK;
  }

  GrpcStatus WaitForInstanceStart(ServerContext* ctx, const ::GetInstanceRequest* req,
                                  ::GetInstanceResponse* resp) override {
    return Wait(ctx, req, resp, false);
  }
  GrpcStatus WaitForInstanceCompletion(ServerContext* ctx, const ::GetInstanceRequest* req,
                                       ::GetInstanceResponse* resp) override {
    return Wait(ctx, req, resp, true);
  }

  // A WaitForInstance… call of the callback API (MarkClientCallsAsync). It
  // ends once, by the first of: the store's answer, its deadline (the
  // janitor), the client's cancel, the server's stop (EndWait). `reactor`
  // and `resp` are valid until then; `deadline` is guarded by mu_.
  struct WaitCall;
  using WaitDeadlines = std::multimap<std::chrono::steady_clock::time_point, std::shared_ptr<WaitCall>>;
  struct WaitCall {
    ::grpc::ServerUnaryReactor* reactor = nullptr;
    ::GetInstanceResponse* resp = nullptr;
    std::string prefix;  // the hub's
    std::string id;      // in the store
    bool completion = true;
    std::chrono::milliseconds timeout{0};
    std::atomic<bool> ended{false};
    std::atomic<uint64_t> store_wait{0};
    std::optional<WaitDeadlines::iterator> deadline;
  };

  class WaitReactor final : public ::grpc::ServerUnaryReactor {
   public:
    WaitReactor(Service* service, std::shared_ptr<WaitCall> call) : service_(service), call_(std::move(call)) {}
    void OnCancel() override {
      service_->EndWait(call_, GrpcStatus(::grpc::StatusCode::CANCELLED, "the call was cancelled"), nullptr,
                        /*from_store=*/false);
    }
    void OnDone() override { delete this; }

   private:
    Service* service_;
    std::shared_ptr<WaitCall> call_;
  };

  ::grpc::ServerUnaryReactor* WaitAsync(::grpc::CallbackServerContext* ctx, const ::GetInstanceRequest* req,
                                        ::GetInstanceResponse* resp, bool completion) {
    auto call = std::make_shared<WaitCall>();
    auto* reactor = new WaitReactor(this, call);
    call->reactor = reactor;
    call->resp = resp;
    call->completion = completion;
    if (GrpcStatus s = BeginWait(ctx, req, call); !s.ok()) {
      call->ended = true;
      reactor->Finish(s);
      return reactor;
    }
    const uint64_t wait = store_.WaitForInstanceAsync(
        call->id, completion ? WaitCondition::kCompleted : WaitCondition::kStarted, req->getinputsandoutputs(),
        [this, call](Result<InstanceState> state) {
          if (call->ended) return;  // ended otherwise (perhaps by a stop: the service may be gone)
          if (!state.ok()) return EndWait(call, ToGrpc(state.status()), nullptr, /*from_store=*/true);
          EndWait(call, GrpcStatus::OK, &*state, /*from_store=*/true);
        });
    call->store_wait = wait;
    if (call->ended) store_.CancelWait(wait);  // ended (cancelled) before the id was known
    return reactor;
  }

  // Checks the call and counts it against its hub's open waits, with its
  // deadline for the janitor.
  GrpcStatus BeginWait(::grpc::CallbackServerContext* ctx, const ::GetInstanceRequest* req,
                       const std::shared_ptr<WaitCall>& call) {
    BATON_GRPC_HUB(ctx, prefix);
    BATON_GRPC_ID(prefix, req->instanceid(), id);
    const auto timeout = WaitTimeout(ctx);
    if (timeout.count() <= 0) return GrpcStatus(::grpc::StatusCode::DEADLINE_EXCEEDED, "the deadline passed");
    call->prefix = prefix;
    call->id = id;
    call->timeout = timeout;
    std::lock_guard lock(mu_);
    if (stopping_) return GrpcStatus(::grpc::StatusCode::UNAVAILABLE, "the server is stopping");
    // Every hub's together, the default hub's included (it has no cap of its own).
    if (wait_deadlines_.size() >= static_cast<size_t>(std::max(16, options_.max_threads))) {
      return GrpcStatus(::grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "the server already has " + std::to_string(wait_deadlines_.size()) +
                            " waits open; try again when one ends");
    }
    if (GrpcStatus s = AdmitWaitLocked(prefix); !s.ok()) return s;
    auto it = wait_deadlines_.emplace(std::chrono::steady_clock::now() + timeout, call);
    call->deadline = it;
    if (it == wait_deadlines_.begin()) janitor_cv_.notify_all();
    return GrpcStatus::OK;
  }

  // Ends `call` unless it ended already: answers it with `state` (OK) or
  // `status`, withdraws the store's wait (unless the store answered) and
  // frees its place among its hub's waits.
  void EndWait(const std::shared_ptr<WaitCall>& call, const GrpcStatus& status, const InstanceState* state,
               bool from_store) {
    if (call->ended.exchange(true)) return;
    if (!from_store) {
      if (uint64_t wait = call->store_wait.load(); wait != 0) store_.CancelWait(wait);
    }
    {
      std::lock_guard lock(mu_);
      if (call->deadline) {
        wait_deadlines_.erase(*call->deadline);
        call->deadline.reset();
      }
      if (--waits_[call->prefix] <= 0) waits_.erase(call->prefix);
    }
    if (status.ok() && state != nullptr) {
      call->resp->set_exists(true);
      ToProto(*state, call->prefix, call->resp->mutable_orchestrationstate());
    }
    call->reactor->Finish(status);
  }

  // The waits whose deadline is `now` or earlier, or every wait (`now` is
  // max()), taken out of wait_deadlines_.
  std::vector<std::shared_ptr<WaitCall>> TakeWaitsDueLocked(std::chrono::steady_clock::time_point now) {
    std::vector<std::shared_ptr<WaitCall>> out;
    while (!wait_deadlines_.empty() && wait_deadlines_.begin()->first <= now) {
      out.push_back(wait_deadlines_.begin()->second);
      out.back()->deadline.reset();
      wait_deadlines_.erase(wait_deadlines_.begin());
    }
    return out;
  }

  void EndWaitsPastDeadline(const std::vector<std::shared_ptr<WaitCall>>& due) {
    for (const auto& call : due) {
      EndWait(call,
              GrpcStatus(::grpc::StatusCode::DEADLINE_EXCEEDED,
                         "instance '" + call->id + "' did not " + (call->completion ? "complete" : "start") +
                             " within " + std::to_string(call->timeout.count()) + " ms"),
              nullptr, /*from_store=*/false);
    }
  }

  GrpcStatus RaiseEvent(ServerContext* ctx, const ::RaiseEventRequest* req, ::RaiseEventResponse*) override {
    BATON_GRPC_HUB(ctx, prefix);
    BATON_GRPC_ID(prefix, req->instanceid(), id);
    if (GrpcStatus s = Name(req->name(), "name"); !s.ok()) return s;
    JsonText input;
    if (GrpcStatus s = Payload(req->has_input(), req->input().value(), "input", &input); !s.ok()) return s;
    return ToGrpc(client_.RaiseEvent(id, req->name(), input));
  }

  GrpcStatus TerminateInstance(ServerContext* ctx, const ::TerminateRequest* req, ::TerminateResponse*) override {
    BATON_GRPC_HUB(ctx, prefix);
    BATON_GRPC_ID(prefix, req->instanceid(), id);
    JsonText output;
    if (GrpcStatus s = Payload(req->has_output(), req->output().value(), "output", &output); !s.ok()) return s;
    Status done = client_.Terminate(id, output, req->recursive());
    if (done.ok() && options_.on_instance_control) options_.on_instance_control();
    return ToGrpc(done);
  }

  GrpcStatus SuspendInstance(ServerContext* ctx, const ::SuspendRequest* req, ::SuspendResponse*) override {
    BATON_GRPC_HUB(ctx, prefix);
    BATON_GRPC_ID(prefix, req->instanceid(), id);
    Status done = client_.Suspend(id, req->has_reason() ? req->reason().value() : "");
    if (done.ok() && options_.on_instance_control) options_.on_instance_control();
    return ToGrpc(done);
  }

  GrpcStatus ResumeInstance(ServerContext* ctx, const ::ResumeRequest* req, ::ResumeResponse*) override {
    BATON_GRPC_HUB(ctx, prefix);
    BATON_GRPC_ID(prefix, req->instanceid(), id);
    Status done = client_.Resume(id, req->has_reason() ? req->reason().value() : "");
    if (done.ok() && options_.on_instance_control) options_.on_instance_control();
    return ToGrpc(done);
  }

  GrpcStatus RewindInstance(ServerContext* ctx, const ::RewindInstanceRequest* req,
                            ::RewindInstanceResponse*) override {
    BATON_GRPC_HUB(ctx, prefix);
    BATON_GRPC_ID(prefix, req->instanceid(), id);
    return ToGrpc(client_.Rewind(id, req->has_reason() ? req->reason().value() : ""));
  }

  GrpcStatus RestartInstance(ServerContext* ctx, const ::RestartInstanceRequest* req,
                             ::RestartInstanceResponse* resp) override {
    BATON_GRPC_HUB(ctx, prefix);
    BATON_GRPC_ID(prefix, req->instanceid(), id);
    auto restarted = client_.Restart(id, req->restartwithnewinstanceid());
    if (!restarted.ok()) return ToGrpc(restarted.status());
    resp->set_instanceid(restarted->substr(std::min(prefix.size(), restarted->size())));
    return GrpcStatus::OK;
  }

  GrpcStatus QueryInstances(ServerContext* ctx, const ::QueryInstancesRequest* req,
                            ::QueryInstancesResponse* resp) override {
    BATON_GRPC_HUB(ctx, prefix);
    const ::InstanceQuery& in = req->query();
    InstanceQuery q;
    for (int s : in.runtimestatus()) q.statuses.push_back(FromProto(static_cast<::OrchestrationStatus>(s)));
    if (in.has_createdtimefrom()) q.created_from = FromProto(in.createdtimefrom());
    if (in.has_createdtimeto()) q.created_to = FromProto(in.createdtimeto());
    q.instance_id_prefix = prefix + (in.has_instanceidprefix() ? in.instanceidprefix().value() : "");
    q.page_size = in.maxinstancecount() <= 0 ? 100 : std::min(in.maxinstancecount(), 1000);
    if (in.has_continuationtoken()) q.continuation_token = in.continuationtoken().value();
    q.include_payloads = in.fetchinputsandoutputs();
    auto page = client_.Query(q);
    if (!page.ok()) return ToGrpc(page.status());
    for (const InstanceState& s : page->instances) {
      if (!InHub(prefix, s.instance_id) || IsEntityInstanceId(s.instance_id)) continue;
      ToProto(s, prefix, resp->add_orchestrationstate());
    }
    if (!page->continuation_token.empty()) resp->mutable_continuationtoken()->set_value(page->continuation_token);
    return GrpcStatus::OK;
  }

  GrpcStatus ListInstanceIds(ServerContext* ctx, const ::ListInstanceIdsRequest* req,
                             ::ListInstanceIdsResponse* resp) override {
    BATON_GRPC_HUB(ctx, prefix);
    InstanceQuery q;
    for (int s : req->runtimestatus()) q.statuses.push_back(FromProto(static_cast<::OrchestrationStatus>(s)));
    q.instance_id_prefix = prefix;
    q.page_size = req->pagesize() <= 0 ? 100 : std::min(req->pagesize(), 1000);
    if (req->has_lastinstancekey()) q.continuation_token = req->lastinstancekey().value();
    auto page = client_.Query(q);
    if (!page.ok()) return ToGrpc(page.status());
    const bool from = req->has_completedtimefrom(), to = req->has_completedtimeto();
    for (const InstanceState& s : page->instances) {
      if (!InHub(prefix, s.instance_id) || IsEntityInstanceId(s.instance_id)) continue;
      if ((from || to) && !s.completed_at) continue;
      if (from && *s.completed_at < FromProto(req->completedtimefrom())) continue;
      if (to && *s.completed_at >= FromProto(req->completedtimeto())) continue;
      resp->add_instanceids(s.instance_id.substr(prefix.size()));
    }
    if (!page->continuation_token.empty()) resp->mutable_lastinstancekey()->set_value(page->continuation_token);
    return GrpcStatus::OK;
  }

  GrpcStatus PurgeInstances(ServerContext* ctx, const ::PurgeInstancesRequest* req,
                            ::PurgeInstancesResponse* resp) override {
    BATON_GRPC_HUB(ctx, prefix);
    int deleted = 0;
    auto purge_one = [&](const std::string& local) -> GrpcStatus {
      BATON_GRPC_ID(prefix, local, id);
      if (req->recursive()) {
        Status s = PurgeChildren(id, /*depth=*/0, &deleted);
        if (!s.ok()) return ToGrpc(s);
      }
      auto n = client_.Purge(id);
      if (!n.ok() && n.status().code() != StatusCode::kNotFound) return ToGrpc(n.status());
      if (n.ok()) deleted += *n;
      return GrpcStatus::OK;
    };
    switch (req->request_case()) {
      case ::PurgeInstancesRequest::kInstanceId:
        if (GrpcStatus s = purge_one(req->instanceid()); !s.ok()) return s;
        break;
      case ::PurgeInstancesRequest::kInstanceBatch:
        if (req->instancebatch().instanceids_size() > 500) return Invalid("a batch holds at most 500 instance ids");
        for (const std::string& local : req->instancebatch().instanceids()) {
          if (GrpcStatus s = purge_one(local); !s.ok()) return s;
        }
        break;
      case ::PurgeInstancesRequest::kPurgeInstanceFilter: {
        const ::PurgeInstanceFilter& f = req->purgeinstancefilter();
        PurgeFilter filter;
        filter.instance_id_prefix = prefix;
        if (f.has_createdtimefrom()) filter.created_from = FromProto(f.createdtimefrom());
        if (f.has_createdtimeto()) filter.created_to = FromProto(f.createdtimeto());
        for (int s : f.runtimestatus()) filter.statuses.push_back(FromProto(static_cast<::OrchestrationStatus>(s)));
        auto n = client_.Purge(filter);
        if (!n.ok()) return ToGrpc(n.status());
        deleted += *n;
        break;
      }
      default:
        return Invalid("give instanceId, purgeInstanceFilter or instanceBatch");
    }
    resp->set_deletedinstancecount(deleted);
    resp->mutable_iscomplete()->set_value(true);
    return GrpcStatus::OK;
  }

  // Purges the sub-orchestrations `id` created, theirs first (recursive purge).
  Status PurgeChildren(const std::string& id, int depth, int* deleted) {
    if (depth > 16) return Status::Ok();
    auto history = client_.GetHistory(id);
    if (!history.ok()) return history.status().code() == StatusCode::kNotFound ? Status::Ok() : history.status();
    for (const HistoryEvent& e : *history) {
      const auto* created = std::get_if<events::SubOrchestrationInstanceCreated>(&e.body);
      if (created == nullptr) continue;
      BATON_RETURN_IF_ERROR(PurgeChildren(created->instance_id, depth + 1, deleted));
      auto n = client_.Purge(created->instance_id);
      if (!n.ok() && n.status().code() != StatusCode::kNotFound) return n.status();
      if (n.ok()) *deleted += *n;
    }
    return Status::Ok();
  }

  GrpcStatus StreamInstanceHistory(ServerContext* ctx, const ::StreamInstanceHistoryRequest* req,
                                   ::grpc::ServerWriter<::HistoryChunk>* writer) override {
    BATON_GRPC_HUB(ctx, prefix);
    BATON_GRPC_ID(prefix, req->instanceid(), id);
    auto history = client_.GetHistory(id);
    if (!history.ok()) return ToGrpc(history.status());
    constexpr size_t kChunk = 500;
    for (size_t i = 0; i < history->size(); i += kChunk) {
      ::HistoryChunk chunk;
      for (size_t j = i; j < std::min(history->size(), i + kChunk); ++j) {
        if (SentToSdk((*history)[j])) ToProto((*history)[j], prefix, chunk.add_events());
      }
      if (!writer->Write(chunk)) return GrpcStatus(::grpc::StatusCode::CANCELLED, "the client went away");
    }
    return GrpcStatus::OK;
  }

  GrpcStatus CreateTaskHub(ServerContext* ctx, const ::CreateTaskHubRequest*, ::CreateTaskHubResponse*) override {
    BATON_GRPC_HUB(ctx, prefix);
    return GrpcStatus::OK;  // hubs exist with their tenants
  }
  GrpcStatus DeleteTaskHub(ServerContext* ctx, const ::DeleteTaskHubRequest*, ::DeleteTaskHubResponse*) override {
    BATON_GRPC_HUB(ctx, prefix);
    return GrpcStatus(::grpc::StatusCode::FAILED_PRECONDITION,
                      "a task hub is deleted with its tenant (baton tenant disable), not over the sidecar");
  }

  // ---- Entities ----

  GrpcStatus SignalEntity(ServerContext* ctx, const ::SignalEntityRequest* req, ::SignalEntityResponse*) override {
    BATON_GRPC_HUB(ctx, prefix);
    if (!IsEntityInstanceId(req->instanceid())) return Invalid("an entity instance id is '@name@key'");
    BATON_GRPC_ID(prefix, req->instanceid(), id);
    if (GrpcStatus s = Name(req->name(), "name"); !s.ok()) return s;
    if (!client_.GetState(id, /*include_payloads=*/false).ok()) {  // a signal to a new entity creates it
      if (GrpcStatus admitted = AdmitInstance(prefix); !admitted.ok()) return admitted;
    }
    std::optional<TimePoint> at;
    if (req->has_scheduledtime() && IsSet(req->scheduledtime())) at = FromProto(req->scheduledtime());
    JsonText input;
    if (GrpcStatus s = Payload(req->has_input(), req->input().value(), "input", &input); !s.ok()) return s;
    return ToGrpc(client_.SignalEntity(id, req->name(), input, at));
  }

  GrpcStatus GetEntity(ServerContext* ctx, const ::GetEntityRequest* req, ::GetEntityResponse* resp) override {
    BATON_GRPC_HUB(ctx, prefix);
    if (!IsEntityInstanceId(req->instanceid())) return Invalid("an entity instance id is '@name@key'");
    BATON_GRPC_ID(prefix, req->instanceid(), id);
    auto e = client_.GetEntity(id);
    if (!e.ok() && e.status().code() == StatusCode::kNotFound) {
      resp->set_exists(false);
      return GrpcStatus::OK;
    }
    if (!e.ok()) return ToGrpc(e.status());
    resp->set_exists(e->has_state);
    if (e->has_state) Fill(*e, prefix, req->includestate(), resp->mutable_entity());
    return GrpcStatus::OK;
  }

  static void Fill(const EntityState& e, const std::string& prefix, bool include_state, ::EntityMetadata* out) {
    out->set_instanceid(e.instance_id.substr(std::min(prefix.size(), e.instance_id.size())));
    ToProto(e.last_modified, out->mutable_lastmodifiedtime());
    out->set_backlogqueuesize(e.backlog);
    if (!e.locked_by.empty()) out->mutable_lockedby()->set_value(e.locked_by.substr(std::min(prefix.size(), e.locked_by.size())));
    if (include_state && e.has_state) out->mutable_serializedstate()->set_value(e.state);
  }

  GrpcStatus QueryEntities(ServerContext* ctx, const ::QueryEntitiesRequest* req,
                           ::QueryEntitiesResponse* resp) override {
    BATON_GRPC_HUB(ctx, prefix);
    const ::EntityQuery& in = req->query();
    EntityQuery q;
    q.hub = prefix.empty() ? "" : prefix.substr(0, prefix.size() - kHubSeparator.size());
    if (in.has_instanceidstartswith()) {
      std::string start = in.instanceidstartswith().value();  // "@name" or "@name@key-prefix"
      if (!start.empty() && start[0] == '@') start = start.substr(1);
      if (start.find('@') != std::string::npos) start = start.substr(0, start.find('@'));
      q.name_prefix = start;
    }
    if (in.has_lastmodifiedfrom()) q.last_modified_from = FromProto(in.lastmodifiedfrom());
    if (in.has_lastmodifiedto()) q.last_modified_to = FromProto(in.lastmodifiedto());
    q.include_state = in.includestate();
    q.include_empty = in.includetransient();
    if (in.has_pagesize() && in.pagesize().value() > 0) q.page_size = std::min(in.pagesize().value(), 1000);
    if (in.has_continuationtoken()) q.continuation_token = in.continuationtoken().value();
    auto page = client_.QueryEntities(q);
    if (!page.ok()) return ToGrpc(page.status());
    const std::string starts = in.has_instanceidstartswith() ? in.instanceidstartswith().value() : "";
    for (const EntityState& e : page->entities) {
      std::string local = e.instance_id.substr(std::min(prefix.size(), e.instance_id.size()));
      if (!starts.empty() && local.compare(0, starts.size(), starts) != 0) continue;
      Fill(e, prefix, q.include_state, resp->add_entities());
    }
    if (!page->continuation_token.empty()) resp->mutable_continuationtoken()->set_value(page->continuation_token);
    return GrpcStatus::OK;
  }

  GrpcStatus CleanEntityStorage(ServerContext* ctx, const ::CleanEntityStorageRequest* req,
                                ::CleanEntityStorageResponse* resp) override {
    BATON_GRPC_HUB(ctx, prefix);
    const std::string hub = prefix.empty() ? "" : prefix.substr(0, prefix.size() - kHubSeparator.size());
    auto r = client_.CleanEntityStorage(hub, req->removeemptyentities(), req->releaseorphanedlocks());
    if (!r.ok()) return ToGrpc(r.status());
    resp->set_emptyentitiesremoved(r->empty_entities_removed);
    resp->set_orphanedlocksreleased(r->orphaned_locks_released);
    return GrpcStatus::OK;
  }

  // ---- Worker RPCs: external SDK workers ----
  //
  // A GetWorkItems stream is a connected worker of one task hub. Work items
  // of orchestrators and activities the in-process registry does not know
  // come here (ExternalDispatcher), go to a stream of their hub, and are
  // remembered by completion token until the worker completes or abandons
  // them. A stream that ends gives its unfinished items back to the store.

  class StreamReactor;

  // One GetWorkItems stream. Its queue, `writing`, `closed` and `finished`
  // are guarded by mu_; `current` belongs to the write in flight. Pump starts
  // the writes, never with mu_ held (a write may complete, and call back,
  // before StartWrite returns).
  struct WorkerStream {
    uint64_t id = 0;
    StreamReactor* reactor = nullptr;  // valid until `finished` (OnDone deletes it)
    std::string prefix;
    std::chrono::system_clock::time_point connected_at;
    std::string peer;
    int max_orchestrations = 0;  // 0 = no limit
    int max_activities = 0;
    int max_entities = 0;
    int orchestrations = 0;      // pending on this stream
    int activities = 0;
    int entities = 0;
    std::deque<::WorkItem> queue;
    ::WorkItem current;   // being written
    bool writing = false;
    bool closed = false;    // the worker went away or the server stops: no new work
    bool finished = false;  // Finish called
  };

  class StreamReactor final : public ::grpc::ServerWriteReactor<::WorkItem> {
   public:
    StreamReactor(Service* service, std::shared_ptr<WorkerStream> stream, const ::grpc::ServerContextBase* ctx)
        : service_(service), stream_(std::move(stream)), ctx_(ctx), start_(std::chrono::steady_clock::now()) {}
    void OnWriteDone(bool ok) override { service_->WriteDone(stream_, ok); }
    void OnCancel() override { service_->CloseStream(stream_); }
    void OnDone() override {
      service_->StreamDone(stream_);
      RecordCall(MethodRecordOf("/TaskHubSidecarService/GetWorkItems"), ::grpc::StatusCode::OK,
                 Tenants().Take(ctx_), std::chrono::steady_clock::now() - start_);
      delete this;
    }

   private:
    Service* service_;
    std::shared_ptr<WorkerStream> stream_;
    const ::grpc::ServerContextBase* ctx_;
    std::chrono::steady_clock::time_point start_;
  };

  // A GetWorkItems call refused before it became a stream.
  class RefusedStream final : public ::grpc::ServerWriteReactor<::WorkItem> {
   public:
    RefusedStream(const ::grpc::ServerContextBase* ctx, const GrpcStatus& status) {
      RecordCall(MethodRecordOf("/TaskHubSidecarService/GetWorkItems"), status.error_code(), Tenants().Take(ctx),
                 std::chrono::steady_clock::duration::zero());
      Finish(status);
    }
    void OnDone() override { delete this; }
  };

  using Streams = std::vector<std::shared_ptr<WorkerStream>>;

  // Starts the next write of `stream` when none is in flight, or finishes
  // the call once it is closed and idle. Called without mu_.
  void Pump(const std::shared_ptr<WorkerStream>& stream) {
    bool finish = false;
    {
      std::lock_guard lock(mu_);
      if (stream->writing || stream->finished) return;
      if (stream->closed || stopping_) {
        stream->closed = true;
        stream->finished = true;
        finish = true;
      } else if (stream->queue.empty()) {
        return;
      } else {
        stream->current = std::move(stream->queue.front());
        stream->queue.pop_front();
        stream->writing = true;
      }
    }
    // `writing` (or `finished`, set here only) keeps the reactor alive: its
    // call cannot end before this write completes or this Finish is made.
    if (finish) {
      stream->reactor->Finish(GrpcStatus::OK);
    } else {
      stream->reactor->StartWrite(&stream->current);
    }
  }

  void PumpAll(const Streams& streams) {
    for (const auto& stream : streams) Pump(stream);
  }

  void WriteDone(const std::shared_ptr<WorkerStream>& stream, bool ok) {
    {
      std::lock_guard lock(mu_);
      stream->writing = false;
      stream->current.Clear();
      if (!ok) stream->closed = true;  // the worker went away
    }
    Pump(stream);
  }

  void CloseStream(const std::shared_ptr<WorkerStream>& stream) {
    {
      std::lock_guard lock(mu_);
      stream->closed = true;
    }
    Pump(stream);
  }

  // The call is over: its unfinished work goes back to the store.
  void StreamDone(const std::shared_ptr<WorkerStream>& stream) {
    DropStream(stream);
    SdkWorkers().Add(-1);
    util::Log().info("sidecar: worker stream {} ended", stream->id);
  }

  struct PendingWork {
    uint64_t stream = 0;
    std::optional<OrchestrationWorkItem> orchestration;
    std::optional<ActivityWorkItem> activity;
    std::optional<ExternalEntityWork> entity;
    std::vector<HistoryEvent> past_events;  // the committed history (sub-orchestrations, for terminate)
    std::vector<HistoryEvent> new_events;   // an episode's events, to record verbatim
    std::string name;                       // the orchestrator
    std::optional<ParentInstance> parent;
  };

  enum class Kind { kOrchestration, kActivity, kEntity };

  // Work no stream of its hub had room for yet (Enqueue).
  struct Parked {
    Kind kind;
    std::string what;  // "entity '@tally@x'", for the log
    ::WorkItem item;
    PendingWork pending;
    std::chrono::steady_clock::time_point give_back_at;
  };

  static int& Used(WorkerStream& stream, Kind kind) {
    return kind == Kind::kOrchestration ? stream.orchestrations
           : kind == Kind::kActivity    ? stream.activities
                                        : stream.entities;
  }

  bool ConnectedLocked(const std::string& prefix) const {
    return std::any_of(streams_.begin(), streams_.end(),
                       [&](const auto& s) { return !s.second->closed && s.second->prefix == prefix; });
  }

  // Picks a stream of `prefix` with room, round robin; null when none.
  std::shared_ptr<WorkerStream> PickLocked(const std::string& prefix, Kind kind) {
    auto fits = [&](WorkerStream& stream) {
      if (stream.closed || stream.prefix != prefix) return false;
      const int limit = kind == Kind::kOrchestration ? stream.max_orchestrations
                        : kind == Kind::kActivity    ? stream.max_activities
                                                     : stream.max_entities;
      return limit <= 0 || Used(stream, kind) < limit;
    };
    for (auto it = streams_.upper_bound(last_pick_); it != streams_.end(); ++it) {
      if (fits(*it->second)) {
        last_pick_ = it->first;
        return it->second;
      }
    }
    for (auto it = streams_.begin(); it != streams_.end() && it->first <= last_pick_; ++it) {
      if (fits(*it->second)) {
        last_pick_ = it->first;
        return it->second;
      }
    }
    return nullptr;
  }

  void DispatchOrchestration(ExternalOrchestrationWork work) override {
    const std::string& id = work.item.instance_id;
    const std::string prefix = PrefixOf(id);
    ::WorkItem item;
    item.set_completiontoken(util::NewRandomUuid());
    ::OrchestratorRequest* req = item.mutable_orchestratorrequest();
    req->set_instanceid(id.substr(prefix.size()));
    req->mutable_executionid()->set_value(work.item.instance.execution_id);
    PendingWork pending;
    for (const HistoryEvent& e : work.past_events) {
      if (SentToSdk(e)) ToProto(e, prefix, req->add_pastevents());
      if (auto* started = std::get_if<events::ExecutionStarted>(&e.body)) {
        pending.name = started->name;
        pending.parent = started->parent;
      }
    }
    for (const HistoryEvent& e : work.new_events) {
      if (SentToSdk(e)) ToProto(e, prefix, req->add_newevents());
      if (auto* started = std::get_if<events::ExecutionStarted>(&e.body)) {
        pending.name = started->name;
        pending.parent = started->parent;
      }
    }
    pending.new_events = std::move(work.new_events);
    pending.past_events = std::move(work.past_events);
    pending.orchestration = std::move(work.item);
    const std::string what = "orchestrator '" + pending.name + "'";
    Enqueue(prefix, Kind::kOrchestration, what, std::move(item), std::move(pending));
  }

  void DispatchActivity(ActivityWorkItem work) override {
    const std::string prefix = PrefixOf(work.task.instance_id);
    ::WorkItem item;
    item.set_completiontoken(util::NewRandomUuid());
    ::ActivityRequest* req = item.mutable_activityrequest();
    req->set_name(work.task.name);
    if (!work.task.version.empty()) req->mutable_version()->set_value(work.task.version);
    if (!work.task.input.empty()) req->mutable_input()->set_value(work.task.input);
    req->mutable_orchestrationinstance()->set_instanceid(work.task.instance_id.substr(prefix.size()));
    req->mutable_orchestrationinstance()->mutable_executionid()->set_value(work.task.execution_id);
    req->set_taskid(work.task.task_id);
    const std::string what = "activity '" + work.task.name + "'";
    PendingWork pending;
    pending.activity = std::move(work);
    Enqueue(prefix, Kind::kActivity, what, std::move(item), std::move(pending));
  }

  // An entity batch goes out in the older form (EntityBatchRequest): Baton
  // remembers which operations were calls and who called.
  void DispatchEntity(ExternalEntityWork work) override {
    const std::string& id = work.item.instance_id;
    const std::string prefix = PrefixOf(id);
    ::WorkItem item;
    item.set_completiontoken(util::NewRandomUuid());
    ::EntityBatchRequest* req = item.mutable_entityrequest();
    req->set_instanceid(id.substr(prefix.size()));
    if (work.has_state) req->mutable_entitystate()->set_value(work.state);
    for (const EntityOperationRequest& op : work.operations) {
      ::OperationRequest* o = req->add_operations();
      o->set_operation(op.operation);
      o->set_requestid(op.request_id);
      if (!op.input.empty()) o->mutable_input()->set_value(op.input);
    }
    const std::string what = "entity '" + id.substr(prefix.size()) + "'";
    PendingWork pending;
    pending.entity = std::move(work);
    Enqueue(prefix, Kind::kEntity, what, std::move(item), std::move(pending));
  }

  // Queues `item` on a stream of `prefix` with room for `kind`, remembering
  // `pending` under its completion token. With no such stream the work is
  // parked in memory (ParkLocked), not given back to the store to be fetched
  // again: a stream of the hub that connects, or one that finishes a work
  // item, takes it at once (DrainLocked).
  void Enqueue(const std::string& prefix, Kind kind, const std::string& what, ::WorkItem item, PendingWork pending) {
    std::unique_lock lock(mu_);
    if (std::shared_ptr<WorkerStream> stream = PickLocked(prefix, kind)) {
      AssignLocked(*stream, kind, std::move(item), std::move(pending));
      lock.unlock();
      routed_stream_.Inc();
      Pump(stream);  // written from this thread when the stream is idle
      return;
    }
    const bool connected = ConnectedLocked(prefix);
    if (parked_count_ < kMaxParked && !stopping_) {
      parked_[prefix].push_back(Parked{kind, what, std::move(item), std::move(pending),
                                       std::chrono::steady_clock::now() + options_.park_for});
      ++parked_count_;
      routed_parked_.Inc();  // under mu_, as "handed" is: never seen after its hand-over
      janitor_cv_.notify_all();
      lock.unlock();
      if (!connected) WarnNoWorker(prefix, what);
      return;
    }
    // More parked than the server keeps in memory: back to the store.
    lock.unlock();
    if (!connected) WarnNoWorker(prefix, what);
    GiveBack(pending, kOverflowRetry);
  }

  // Hands `item` to `stream` and remembers `pending` under its token.
  void AssignLocked(WorkerStream& stream, Kind kind, ::WorkItem item, PendingWork pending) {
    pending.stream = stream.id;
    ++Used(stream, kind);
    pending_[item.completiontoken()] = std::move(pending);
    stream.queue.push_back(std::move(item));
  }

  // Hands the parked work of `prefix` to its streams with room, oldest first;
  // returns what was handed (for the connect record), and adds the streams
  // that got work to `pump` (to Pump once mu_ is released).
  std::vector<std::string> DrainLocked(const std::string& prefix, Streams* pump) {
    std::vector<std::string> handed;
    auto it = parked_.find(prefix);
    if (it == parked_.end()) return handed;
    std::deque<Parked>& queue = it->second;
    for (auto p = queue.begin(); p != queue.end();) {
      std::shared_ptr<WorkerStream> stream = PickLocked(prefix, p->kind);
      if (!stream) {
        ++p;
        continue;
      }
      handed.push_back(p->what);
      AssignLocked(*stream, p->kind, std::move(p->item), std::move(p->pending));
      if (std::find(pump->begin(), pump->end(), stream) == pump->end()) pump->push_back(stream);
      p = queue.erase(p);
      --parked_count_;
      routed_handed_.Inc();
    }
    if (queue.empty()) parked_.erase(it);
    return handed;
  }

  // Parked work waits for a stream for at most options_.park_for, then goes back to
  // the store (at once): on several nodes sharing a store, the SDK worker may
  // be connected to another node, which then fetches it. Sleeps until the
  // oldest parked item is due — never a poll.
  //
  // It also ends the asynchronous waits whose deadline passed.
  void Janitor() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      auto due = std::chrono::steady_clock::time_point::max();
      for (const auto& [prefix, queue] : parked_) {
        for (const Parked& p : queue) due = std::min(due, p.give_back_at);
      }
      if (!wait_deadlines_.empty()) due = std::min(due, wait_deadlines_.begin()->first);
      if (due == std::chrono::steady_clock::time_point::max()) {
        janitor_cv_.wait(lock);
      } else {
        janitor_cv_.wait_until(lock, due);
      }
      if (stopping_) break;
      const auto now = std::chrono::steady_clock::now();
      std::vector<std::shared_ptr<WaitCall>> late = TakeWaitsDueLocked(now);
      if (!late.empty()) {
        lock.unlock();
        EndWaitsPastDeadline(late);
        lock.lock();
      }
      std::vector<Parked> expired = TakeParkedLocked(now);
      if (expired.empty()) continue;
      lock.unlock();
      util::Log().info("sidecar: {} work item(s) waited {} ms for an SDK worker of their task hub; given back to the store",
                       expired.size(), options_.park_for.count());
      for (const Parked& p : expired) GiveBack(p.pending, std::chrono::milliseconds(0));
      lock.lock();
    }
  }

  // Removes and returns the parked work due by `now` (every item when `now`
  // is max()).
  std::vector<Parked> TakeParkedLocked(std::chrono::steady_clock::time_point now) {
    std::vector<Parked> out;
    for (auto it = parked_.begin(); it != parked_.end();) {
      std::deque<Parked>& queue = it->second;
      for (auto p = queue.begin(); p != queue.end();) {
        if (p->give_back_at <= now) {
          out.push_back(std::move(*p));
          p = queue.erase(p);
          --parked_count_;
        } else {
          ++p;
        }
      }
      it = queue.empty() ? parked_.erase(it) : std::next(it);
    }
    return out;
  }

  // Abandons the work item `w` holds, to be fetched again after `delay`.
  void GiveBack(const PendingWork& w, std::chrono::milliseconds delay) {
    routed_given_back_.Inc();
    if (w.orchestration) store_.AbandonOrchestrationWorkItem(*w.orchestration, delay);
    if (w.activity) store_.AbandonActivityWorkItem(*w.activity, delay);
    if (w.entity) store_.AbandonOrchestrationWorkItem(w.entity->item, delay);
  }

  ::grpc::ServerWriteReactor<::WorkItem>* GetWorkItems(::grpc::CallbackServerContext* ctx,
                                                        const ::GetWorkItemsRequest* req) override {
    std::string prefix;
    if (GrpcStatus s_ = Hub(ctx, &prefix, /*admit=*/false); !s_.ok()) return new RefusedStream(ctx, s_);
    auto stream = std::make_shared<WorkerStream>();
    std::vector<std::string> handed;
    Streams pump;
    stream->prefix = prefix;
    stream->connected_at = std::chrono::system_clock::now();
    stream->peer = ctx->peer();
    stream->max_orchestrations = std::max(0, req->maxconcurrentorchestrationworkitems());
    stream->max_activities = std::max(0, req->maxconcurrentactivityworkitems());
    stream->max_entities = std::max(0, req->maxconcurrententityworkitems());
    {
      std::lock_guard lock(mu_);
      // A hub gets a few streams (an SDK worker process opens one), the
      // server a bounded number.
      const int of_hub = static_cast<int>(std::count_if(
          streams_.begin(), streams_.end(), [&](const auto& s) { return s.second->prefix == prefix; }));
      if (stopping_) return new RefusedStream(ctx, GrpcStatus(::grpc::StatusCode::UNAVAILABLE, "the server is stopping"));
      if (of_hub >= options_.max_worker_streams_per_hub ||
          static_cast<int>(streams_.size()) >= options_.max_worker_streams) {
        return new RefusedStream(ctx, GrpcStatus(::grpc::StatusCode::RESOURCE_EXHAUSTED,
                                            "too many worker streams: a task hub may have " +
                                                std::to_string(options_.max_worker_streams_per_hub) +
                                                " open at once"));
      }
      stream->id = ++next_stream_;
      stream->reactor = new StreamReactor(this, stream, ctx);
      streams_[stream->id] = stream;
      // Work that waited for a worker of this hub goes to it now, before its
      // first read of the queue: the dispatch is recorded in the log.
      handed = DrainLocked(prefix, &pump);
      handed_on_connect_ += handed.size();
    }
    if (handed.empty()) {
      util::Log().info("sidecar: worker stream {} connected (task hub '{}')", stream->id, prefix);
    } else {
      std::string list;
      for (const std::string& what : handed) list += (list.empty() ? "" : ", ") + what;
      util::Log().info("sidecar: worker stream {} connected (task hub '{}'); handed it {} work item(s) that waited "
                       "for a worker: {}",
                       stream->id, prefix, handed.size(), list);
    }
    SdkWorkers().Add(1);
    StreamReactor* reactor = stream->reactor;
    // Writes started before the reactor is returned wait in gRPC for it.
    PumpAll(pump);
    return reactor;
  }

  // Gives the unfinished work of a stream back to the store, at once.
  void DropStream(const std::shared_ptr<WorkerStream>& stream) {
    std::vector<PendingWork> orphans;
    {
      std::lock_guard lock(mu_);
      stream->closed = true;
      streams_.erase(stream->id);
      for (auto it = pending_.begin(); it != pending_.end();) {
        if (it->second.stream == stream->id) {
          orphans.push_back(std::move(it->second));
          it = pending_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (const PendingWork& w : orphans) GiveBack(w, std::chrono::milliseconds(0));
  }

  // Work that neither the in-process registry nor a connected SDK worker can
  // run waits (parked): an SDK worker may be restarting.
  // Says so at most once a minute per hub, so a misspelt name is noticed.
  void WarnNoWorker(const std::string& prefix, const std::string& what) {
    const auto now = std::chrono::steady_clock::now();
    {
      std::lock_guard lock(mu_);
      auto [it, fresh] = last_no_worker_warning_.try_emplace(prefix, now);
      if (!fresh && now - it->second < std::chrono::minutes(1)) return;
      it->second = now;
    }
    util::Log().warn(
        "sidecar: {} is not registered in this process and no SDK worker is connected for task hub '{}'; "
        "its work waits for one (handed to the first that connects)",
        what, prefix.empty() ? std::string("(default)") : prefix.substr(0, prefix.size() - kHubSeparator.size()));
  }

  // Takes the pending work of `token`; NOT_FOUND when unknown or stale.
  GrpcStatus Take(const std::string& token, PendingWork* out) {
    Streams pump;
    GrpcStatus s = Take(token, out, &pump);
    PumpAll(pump);
    return s;
  }
  GrpcStatus Take(const std::string& token, PendingWork* out, Streams* pump) {
    std::lock_guard lock(mu_);
    auto it = pending_.find(token);
    if (it == pending_.end()) {
      return GrpcStatus(::grpc::StatusCode::NOT_FOUND,
                        "no work item has this completion token (completed, abandoned, or its stream ended)");
    }
    *out = std::move(it->second);
    pending_.erase(it);
    if (auto s = streams_.find(out->stream); s != streams_.end()) {
      if (out->orchestration) --s->second->orchestrations;
      if (out->activity) --s->second->activities;
      if (out->entity) --s->second->entities;
      if (!parked_.empty()) DrainLocked(s->second->prefix, pump);  // room for work that waited
    }
    return GrpcStatus::OK;
  }

  // A completion call: answered (and recorded, RecordCall) once, by Finish,
  // which also frees it.
  class CompletionCall {
   public:
    CompletionCall(::grpc::CallbackServerContext* ctx, std::string_view method)
        : reactor_(ctx->DefaultReactor()), record_(MethodRecordOf(method)), start_(std::chrono::steady_clock::now()) {}
    ::grpc::ServerUnaryReactor* reactor() const { return reactor_; }
    void Finish(const GrpcStatus& status) {
      RecordCall(record_, status.error_code(), "", std::chrono::steady_clock::now() - start_);
      ::grpc::ServerUnaryReactor* reactor = reactor_;
      delete this;
      reactor->Finish(status);
    }

   private:
    ::grpc::ServerUnaryReactor* reactor_;
    MethodRecord& record_;
    std::chrono::steady_clock::time_point start_;
  };

  // What a completion answers for its commit's outcome.
  static GrpcStatus CommitStatus(const Status& s) {
    if (s.code() == StatusCode::kAborted) {
      return GrpcStatus(::grpc::StatusCode::NOT_FOUND, "the work item's lease was lost: " + s.message());
    }
    return ToGrpc(s);
  }

  // Waits for a commit (the synchronous RPCs).
  static GrpcStatus Commit(std::function<void(CommitCallback)> commit) {
    auto done = std::make_shared<std::promise<Status>>();
    auto result = done->get_future();
    commit([done](const Status& s) { done->set_value(s); });
    return CommitStatus(result.get());
  }

  ::grpc::ServerUnaryReactor* CompleteActivityTask(::grpc::CallbackServerContext* ctx, const ::ActivityResponse* resp,
                                                   ::CompleteTaskResponse*) override {
    auto* call = new CompletionCall(ctx, "/TaskHubSidecarService/CompleteActivityTask");
    ::grpc::ServerUnaryReactor* reactor = call->reactor();  // `call` is gone once finished
    if (GrpcStatus s = CompleteActivity(resp, call); !s.ok()) call->Finish(s);
    return reactor;
  }

  // Starts the commit of an activity's result, which finishes `reactor`; an
  // error instead when there is nothing to commit.
  GrpcStatus CompleteActivity(const ::ActivityResponse* resp, CompletionCall* reactor) {
    PendingWork work;
    if (GrpcStatus s = Take(resp->completiontoken(), &work); !s.ok()) return s;
    if (!work.activity) {
      GiveBack(work, std::chrono::milliseconds(0));  // to be dispatched again: its lease is renewed while held
      return Invalid("the completion token is not an activity's");
    }
    const ActivityTask& task = work.activity->task;
    const TimePoint now = std::chrono::system_clock::now();
    HistoryEvent result{-1, now, events::OrchestratorStarted{}};
    if (resp->has_failuredetails()) {
      result.body = events::TaskFailed{task.task_id, FromProto(resp->failuredetails())};
    } else {
      result.body = events::TaskCompleted{task.task_id, resp->has_result() ? resp->result().value() : ""};
    }
    Message message{0, task.instance_id, task.execution_id, now, std::move(result)};
    store_.CompleteActivityWorkItem(*work.activity, std::move(message),
                                    [reactor](const Status& s) { reactor->Finish(CommitStatus(s)); });
    return GrpcStatus::OK;
  }

  ::grpc::ServerUnaryReactor* CompleteOrchestratorTask(::grpc::CallbackServerContext* ctx,
                                                       const ::OrchestratorResponse* resp,
                                                       ::CompleteTaskResponse*) override {
    auto* call = new CompletionCall(ctx, "/TaskHubSidecarService/CompleteOrchestratorTask");
    ::grpc::ServerUnaryReactor* reactor = call->reactor();  // `call` is gone once finished
    if (GrpcStatus s = CompleteOrchestrator(resp, call); !s.ok()) call->Finish(s);
    return reactor;
  }

  // Starts the commit of an episode, which finishes `reactor`; an error
  // instead when there is nothing to commit.
  GrpcStatus CompleteOrchestrator(const ::OrchestratorResponse* resp, CompletionCall* reactor) {
    PendingWork work;
    if (GrpcStatus s = Take(resp->completiontoken(), &work); !s.ok()) return s;
    if (!work.orchestration) {
      GiveBack(work, std::chrono::milliseconds(0));
      return Invalid("the completion token is not an orchestration's");
    }
    const OrchestrationWorkItem& item = *work.orchestration;
    const std::string& id = item.instance_id;
    const TimePoint now = work.new_events.front().timestamp;
    core::Episode episode;
    episode.custom_status = resp->has_customstatus() ? resp->customstatus().value() : "";
    std::optional<std::string> next_version;  // continue-as-new
    std::vector<events::EventRaised> carryover;
    std::vector<std::string> terminate;  // other instances to terminate
    std::vector<bool> terminate_recurse;
    for (const ::OrchestratorAction& a : resp->actions()) {
      core::Action action;
      action.id = a.id();
      switch (a.orchestratorActionType_case()) {
        case ::OrchestratorAction::kScheduleTask: {
          const auto& t = a.scheduletask();
          action.body = core::actions::ScheduleTask{t.name(), t.has_version() ? t.version().value() : "",
                                                    t.has_input() ? t.input().value() : ""};
          break;
        }
        case ::OrchestratorAction::kCreateSubOrchestration: {
          const auto& t = a.createsuborchestration();
          action.body = core::actions::CreateSubOrchestration{
              QualifyInHub(id, t.instanceid().empty() ? util::NewRandomUuid() : t.instanceid()), t.name(),
              t.has_version() ? t.version().value() : "", t.has_input() ? t.input().value() : ""};
          break;
        }
        case ::OrchestratorAction::kCreateTimer:
          action.body = core::actions::CreateTimer{FromProto(a.createtimer().fireat())};
          break;
        case ::OrchestratorAction::kSendEvent: {
          const auto& t = a.sendevent();
          action.body = core::actions::SendEvent{QualifyInHub(id, t.instance().instanceid()), t.name(),
                                                 t.has_data() ? t.data().value() : ""};
          break;
        }
        case ::OrchestratorAction::kSendEntityMessage: {
          const auto& m = a.sendentitymessage();
          if (m.has_entityoperationsignaled()) {
            const auto& e = m.entityoperationsignaled();
            std::optional<TimePoint> at;
            if (e.has_scheduledtime() && IsSet(e.scheduledtime())) at = FromProto(e.scheduledtime());
            action.body = core::actions::SignalEntity{e.requestid(), QualifyInHub(id, e.targetinstanceid().value()),
                                                      e.operation(), e.has_input() ? e.input().value() : "", at};
          } else if (m.has_entityoperationcalled()) {
            const auto& e = m.entityoperationcalled();
            action.body = core::actions::CallEntity{e.requestid(), QualifyInHub(id, e.targetinstanceid().value()),
                                                    e.operation(), e.has_input() ? e.input().value() : ""};
          } else if (m.has_entitylockrequested()) {
            const auto& e = m.entitylockrequested();
            std::vector<std::string> lock_set;
            for (const std::string& target : e.lockset()) lock_set.push_back(QualifyInHub(id, target));
            std::sort(lock_set.begin(), lock_set.end());
            action.body = core::actions::LockEntities{e.criticalsectionid(), std::move(lock_set)};
          } else if (m.has_entityunlocksent()) {
            const auto& e = m.entityunlocksent();
            action.body = core::actions::UnlockEntity{e.criticalsectionid(), QualifyInHub(id, e.targetinstanceid().value())};
          } else {
            continue;
          }
          break;
        }
        case ::OrchestratorAction::kTerminateOrchestration:
          terminate.push_back(QualifyInHub(id, a.terminateorchestration().instanceid()));
          terminate_recurse.push_back(a.terminateorchestration().recurse());
          continue;
        case ::OrchestratorAction::kCompleteOrchestration: {
          const auto& c = a.completeorchestration();
          core::Completion completion;
          completion.status = FromProto(c.orchestrationstatus());
          completion.result = c.has_result() ? c.result().value() : "";
          if (c.has_failuredetails()) completion.failure = FromProto(c.failuredetails());
          if (completion.status == OrchestrationStatus::kFailed && !completion.failure) {
            completion.failure = FailureDetails{"OrchestrationFailed", completion.result};
          }
          if (completion.status == OrchestrationStatus::kContinuedAsNew) {
            if (c.has_newversion()) next_version = c.newversion().value();
            for (const ::HistoryEvent& e : c.carryoverevents()) {
              if (e.has_eventraised()) {
                carryover.push_back(events::EventRaised{
                    e.eventraised().name(), e.eventraised().has_input() ? e.eventraised().input().value() : ""});
              }
            }
          }
          episode.completion = std::move(completion);
          continue;
        }
        default:
          continue;  // rewind and unknown actions
      }
      episode.actions.push_back(std::move(action));
    }
    // What the core executor tracks for in-process orchestrations: whether
    // the instance is suspended, and on a recursive terminate, which
    // sub-orchestrations are still running.
    bool suspended = item.instance.status == OrchestrationStatus::kSuspended;
    bool recursive_terminate = false;
    for (const HistoryEvent& e : work.new_events) {
      if (std::holds_alternative<events::ExecutionSuspended>(e.body)) suspended = true;
      if (std::holds_alternative<events::ExecutionResumed>(e.body)) suspended = false;
      if (auto* t = std::get_if<events::ExecutionTerminated>(&e.body)) recursive_terminate |= t->recurse;
    }
    if (recursive_terminate && episode.completion &&
        episode.completion->status == OrchestrationStatus::kTerminated) {
      std::map<int32_t, std::string> children;  // created and not yet ended
      for (const auto* list : {&work.past_events, &work.new_events}) {
        for (const HistoryEvent& e : *list) {
          if (auto* c = std::get_if<events::SubOrchestrationInstanceCreated>(&e.body)) children[e.event_id] = c->instance_id;
          if (auto* c = std::get_if<events::SubOrchestrationInstanceCompleted>(&e.body)) children.erase(c->task_scheduled_id);
          if (auto* c = std::get_if<events::SubOrchestrationInstanceFailed>(&e.body)) children.erase(c->task_scheduled_id);
        }
      }
      for (const auto& [task, child] : children) episode.completion->terminate_children.push_back(child);
    }
    OrchestrationUpdate update;
    update.execution_id = item.instance.execution_id;
    update.new_events = std::move(work.new_events);
    engine::AddActions(episode.actions, id, update.execution_id, work.name, now, update);
    if (episode.completion) ReleaseHeldLocks(id, work.past_events, now, update);
    if (episode.completion && episode.completion->status == OrchestrationStatus::kContinuedAsNew) {
      // The next generation starts from nothing; its first episode runs on
      // the worker as usual, from the ExecutionStarted sent here. What the
      // old one sent in this episode is still sent.
      events::ExecutionStarted started;
      started.name = work.name;
      started.version = next_version.value_or(item.instance.version);
      started.input = episode.completion->result;
      started.instance_id = id;
      started.execution_id = util::NewExecutionId();
      started.parent = work.parent;
      update.reset_history = true;
      update.new_events.clear();
      update.execution_id = started.execution_id;
      update.input = started.input;
      update.status = OrchestrationStatus::kRunning;
      update.custom_status = episode.custom_status;
      update.sync = true;
      update.outbox.push_back(Message{0, id, started.execution_id, now, HistoryEvent{-1, now, started}});
      for (events::EventRaised& e : carryover) {
        update.outbox.push_back(Message{0, id, "", now, HistoryEvent{-1, now, std::move(e)}});
      }
    } else {
      engine::FinishEpisode(episode, work.parent, id, now, /*sync_every_episode=*/false, update);
    }
    if (!episode.completion && suspended) update.status = OrchestrationStatus::kSuspended;
    for (size_t i = 0; i < terminate.size(); ++i) {
      update.outbox.push_back(Message{0, terminate[i], "", now,
                                      HistoryEvent{-1, now, events::ExecutionTerminated{"", terminate_recurse[i]}}});
    }
    // What the history will be after the commit, for the next dispatch
    // (events as a read of the store would give them: AsStored).
    std::optional<HistoryCacheEntry> next;
    if (!update.reset_history && !IsTerminal(update.status)) {
      next.emplace();
      next->execution_id = update.execution_id;
      next->history_generation = item.history_generation;  // appended: the generation stays
      next->events = std::move(work.past_events);
      for (const HistoryEvent& e : update.new_events) {
        std::optional<HistoryEvent> stored = AsStored(e);
        if (!stored) {
          next.reset();
          break;
        }
        next->events.push_back(std::move(*stored));
      }
    }
    const OrchestrationStatus final_status = update.status;
    // The next history goes in the cache before the commit: the store may
    // hand out the instance's next work item before the commit callback
    // runs. It is only used for a work item whose history size matches it
    // (CachedHistory), which a failed commit never gives; the callback drops it.
    uint64_t stamp = 0;
    {
      std::lock_guard lock(history_mu_);
      if (next) {
        if (histories_.size() >= kHistoryCacheInstances) histories_.clear();
        next->stamp = stamp = ++history_stamp_;
        histories_[id] = std::move(*next);
      } else {
        histories_.erase(id);
      }
    }
    store_.CompleteOrchestrationWorkItem(
        item, std::move(update),
        [this, reactor, id, stamp, final_status, name = std::move(work.name)](const Status& s) {
          if (s.ok() && IsTerminal(final_status)) {
            util::metrics::Default()
                .GetCounter("baton_orchestrations_completed_total", "Orchestration executions that ended, by status",
                            {{"status", std::string(OrchestrationStatusName(final_status))}})
                .Inc();
          }
          {
            std::lock_guard lock(history_mu_);
            if (s.ok() && !name.empty()) external_names_.insert(name);
            if (!s.ok()) {
              auto it = histories_.find(id);
              if (it != histories_.end() && it->second.stamp == stamp) histories_.erase(it);
            }
          }
          reactor->Finish(CommitStatus(s));  // the last use of `this`: Stop waits for it
        });
    return GrpcStatus::OK;
  }

  // At the end of an execution, whatever its outcome, the locks it holds or
  // asked for are released in the same commit, as the C++ executor does
  // (core/executor.cc ReleaseHeldLocks): an EntityUnlockSent message to each
  // locked entity the orchestrator did not unlock itself. Messages only, not
  // history the SDK would have to replay. (An unlock for a lock not granted
  // yet is ignored by the entity; a grant that arrives later is answered by
  // the engine.)
  // `past` is the committed history; `update.new_events` holds this
  // episode's events and those its actions recorded (AddActions).
  static void ReleaseHeldLocks(const std::string& id, const std::vector<HistoryEvent>& past, TimePoint now,
                               OrchestrationUpdate& update) {
    std::map<std::string, std::vector<std::string>> sections;  // critical section → lock set
    std::set<std::pair<std::string, std::string>> unlocked;    // (critical section, entity)
    for (const std::vector<HistoryEvent>* list : {&past, &std::as_const(update.new_events)}) {
      for (const HistoryEvent& e : *list) {
        if (auto* r = std::get_if<events::EntityLockRequested>(&e.body)) sections[r->critical_section_id] = r->lock_set;
        if (auto* u = std::get_if<events::EntityUnlockSent>(&e.body)) {
          unlocked.emplace(u->critical_section_id, u->target_instance_id);
        }
      }
    }
    for (const auto& [section, lock_set] : sections) {
      for (const std::string& target : lock_set) {
        if (unlocked.count({section, target}) != 0) continue;
        update.outbox.push_back(Message{0, target, "", now,
                                        HistoryEvent{-1, now, events::EntityUnlockSent{section, id, target}}});
      }
    }
  }

  std::optional<std::vector<HistoryEvent>> CachedHistory(const std::string& instance_id,
                                                         const std::string& execution_id,
                                                         int64_t history_generation,
                                                         int64_t history_size) override {
    std::lock_guard lock(history_mu_);
    auto it = histories_.find(instance_id);
    if (it == histories_.end()) return std::nullopt;
    if (it->second.execution_id != execution_id ||
        it->second.history_generation != history_generation ||
        static_cast<int64_t>(it->second.events.size()) != history_size) {
      histories_.erase(it);
      return std::nullopt;
    }
    // Taken, not copied: this episode's commit puts the next one back.
    std::vector<HistoryEvent> events = std::move(it->second.events);
    histories_.erase(it);
    return events;
  }

  GrpcStatus AbandonTaskOrchestratorWorkItem(ServerContext*, const ::AbandonOrchestrationTaskRequest* req,
                                             ::AbandonOrchestrationTaskResponse*) override {
    PendingWork work;
    if (GrpcStatus s = Take(req->completiontoken(), &work); !s.ok()) return s;
    if (work.orchestration) store_.AbandonOrchestrationWorkItem(*work.orchestration, kAbandonRetry);
    return GrpcStatus::OK;
  }

  GrpcStatus CompleteEntityTask(ServerContext*, const ::EntityBatchResult* resp, ::CompleteTaskResponse*) override {
    PendingWork work;
    if (GrpcStatus s = Take(resp->completiontoken(), &work); !s.ok()) return s;
    if (!work.entity) {
      GiveBack(work, std::chrono::milliseconds(0));
      return Invalid("the completion token is not an entity's");
    }
    const OrchestrationWorkItem& item = work.entity->item;
    if (resp->has_failuredetails()) {
      // The whole batch failed in the worker's framework: run it again later.
      const FailureDetails f = FromProto(resp->failuredetails());
      util::Log().warn("sidecar: entity batch of '{}' failed in the worker ({}: {}); retrying", item.instance_id,
                       f.error_type, f.error_message);
      store_.AbandonOrchestrationWorkItem(item, kAbandonRetry);
      return GrpcStatus::OK;
    }
    const std::string& id = item.instance_id;
    const TimePoint now = std::chrono::system_clock::now();
    std::vector<EntityOperationResult> results;
    for (const ::OperationResult& r : resp->results()) {
      EntityOperationResult out;
      if (r.has_failure()) {
        out.failure = FromProto(r.failure().failuredetails());
      } else {
        out.output = r.success().has_result() ? r.success().result().value() : "";
      }
      results.push_back(std::move(out));
    }
    // What the operations sent (the SDK reports them for the whole batch).
    std::vector<Message> sends;
    for (const ::OperationAction& a : resp->actions()) {
      if (a.has_sendsignal()) {
        const auto& t = a.sendsignal();
        if (!IsEntityInstanceId(t.instanceid())) continue;
        const std::string target = QualifyInHub(id, t.instanceid());
        std::optional<TimePoint> at;
        if (t.has_scheduledtime() && IsSet(t.scheduledtime())) at = FromProto(t.scheduledtime());
        events::EntityOperationSignaled e{util::NewRandomUuid(), t.name(), at, t.has_input() ? t.input().value() : "",
                                          target};
        sends.push_back(Message{0, target, "", at.value_or(now), HistoryEvent{-1, now, std::move(e)}});
      } else if (a.has_startneworchestration()) {
        const auto& t = a.startneworchestration();
        events::ExecutionStarted started;
        started.name = t.name();
        if (t.has_version()) started.version = t.version().value();
        started.input = t.has_input() ? t.input().value() : "";
        started.instance_id = QualifyInHub(id, t.instanceid().empty() ? util::NewRandomUuid() : t.instanceid());
        started.execution_id = util::NewExecutionId();
        TimePoint at = now;
        if (t.has_scheduledtime() && IsSet(t.scheduledtime())) at = FromProto(t.scheduledtime());
        std::string target = started.instance_id, execution = started.execution_id;
        sends.push_back(Message{0, target, execution, at, HistoryEvent{-1, now, std::move(started)}});
      }
    }
    // The SDK rolls back what a failed operation sent, so the batch's sends
    // belong to operations that succeeded; they go with the last of them.
    if (results.size() > work.entity->operations.size()) results.resize(work.entity->operations.size());
    auto succeeded = std::find_if(results.rbegin(), results.rend(), [](const auto& r) { return !r.failure; });
    if (succeeded != results.rend()) {
      for (Message& m : sends) succeeded->sends.push_back(std::move(m));
    }
    OrchestrationUpdate update =
        work.entity->finish(resp->has_entitystate(), resp->has_entitystate() ? resp->entitystate().value() : "",
                            std::move(results));
    return Commit([&](CommitCallback done) { store_.CompleteOrchestrationWorkItem(item, std::move(update), done); });
  }

  GrpcStatus AbandonTaskEntityWorkItem(ServerContext*, const ::AbandonEntityTaskRequest* req,
                                       ::AbandonEntityTaskResponse*) override {
    PendingWork work;
    if (GrpcStatus s = Take(req->completiontoken(), &work); !s.ok()) return s;
    if (work.entity) store_.AbandonOrchestrationWorkItem(work.entity->item, kAbandonRetry);
    return GrpcStatus::OK;
  }

  GrpcStatus AbandonTaskActivityWorkItem(ServerContext*, const ::AbandonActivityTaskRequest* req,
                                         ::AbandonActivityTaskResponse*) override {
    PendingWork work;
    if (GrpcStatus s = Take(req->completiontoken(), &work); !s.ok()) return s;
    if (work.activity) store_.AbandonActivityWorkItem(*work.activity, kAbandonRetry);
    return GrpcStatus::OK;
  }

  void StartJanitor() { janitor_ = std::thread([this] { Janitor(); }); }

  // Ends the streams and the janitor, and gives parked work back to the store.
  void StopStreams() {
    std::vector<Parked> parked;
    Streams open;
    std::vector<std::shared_ptr<WaitCall>> waits;
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      janitor_cv_.notify_all();
      parked = TakeParkedLocked(std::chrono::steady_clock::time_point::max());
      for (const auto& [id, stream] : streams_) open.push_back(stream);
      waits = TakeWaitsDueLocked(std::chrono::steady_clock::time_point::max());
    }
    for (const auto& call : waits) {
      EndWait(call, GrpcStatus(::grpc::StatusCode::UNAVAILABLE, "the server is stopping"), nullptr,
              /*from_store=*/false);
    }
    for (const auto& stream : open) CloseStream(stream);  // each finishes once its write in flight is done
    if (janitor_.joinable()) janitor_.join();
    for (const Parked& p : parked) GiveBack(p.pending, std::chrono::milliseconds(0));
  }

#undef BATON_GRPC_HUB
#undef BATON_GRPC_ID

 private:
  static constexpr size_t kMaxInstanceIdChars = 100;
  static constexpr size_t kMaxNameChars = 256;
  // Parked work (no stream with room): kept in memory up to kMaxParked
  // items, each for at most options_.park_for; beyond the cap, given back to the store
  // to be fetched again after kOverflowRetry.
  static constexpr size_t kMaxParked = 10000;
  static constexpr std::chrono::milliseconds kOverflowRetry{5000};
  static constexpr size_t kHistoryCacheInstances = 10000;

  struct HistoryCacheEntry {
    uint64_t stamp = 0;  // which commit put it there
    std::string execution_id;
    int64_t history_generation = 0;
    std::vector<HistoryEvent> events;
  };
  static constexpr std::chrono::milliseconds kAbandonRetry{1000};

  Client& client_;
  Store& store_;
  tenancy::TenantDirectory& directory_;
  SidecarOptions options_;
  std::mutex mu_;
  std::map<uint64_t, std::shared_ptr<WorkerStream>> streams_;
  std::map<std::string, int> waits_;  // open WaitForInstance… calls by hub prefix
  WaitDeadlines wait_deadlines_;       // the asynchronous ones, by deadline
  std::map<std::string, PendingWork> pending_;
  std::map<std::string, std::deque<Parked>> parked_;  // by hub prefix, oldest first
  size_t parked_count_ = 0;
  uint64_t handed_on_connect_ = 0;
  util::metrics::Counter& routed_stream_ = WorkRoute("stream");
  util::metrics::Counter& routed_parked_ = WorkRoute("parked");
  util::metrics::Counter& routed_handed_ = WorkRoute("handed");
  util::metrics::Counter& routed_given_back_ = WorkRoute("given_back");
  std::condition_variable janitor_cv_;
  std::thread janitor_;
  uint64_t next_stream_ = 0;
  std::map<std::string, std::chrono::steady_clock::time_point> last_no_worker_warning_;  // by hub prefix
  uint64_t last_pick_ = 0;
  bool stopping_ = false;
  std::mutex history_mu_;
  uint64_t history_stamp_ = 0;
  std::unordered_map<std::string, HistoryCacheEntry> histories_;  // external instances' histories
  std::set<std::string, std::less<>> external_names_;  // orchestrators SDK workers have run

 public:
  size_t ParkedWorkItems() {
    std::lock_guard lock(mu_);
    return parked_count_;
  }
  uint64_t HandedOnConnect() {
    std::lock_guard lock(mu_);
    return handed_on_connect_;
  }
  int WorkerStreams(std::string_view prefix) {
    std::lock_guard lock(mu_);
    return static_cast<int>(
        std::count_if(streams_.begin(), streams_.end(), [&](const auto& s) { return s.second->prefix == prefix; }));
  }

  std::vector<WorkerStreamInfo> StreamInfos() {
    std::vector<WorkerStreamInfo> out;
    std::lock_guard lock(mu_);
    for (const auto& [id, s] : streams_) {
      out.push_back(WorkerStreamInfo{id, s->prefix, s->connected_at, s->peer, s->max_orchestrations,
                                     s->max_activities, s->max_entities, s->orchestrations, s->activities,
                                     s->entities});
    }
    std::sort(out.begin(), out.end(), [](const WorkerStreamInfo& a, const WorkerStreamInfo& b) {
      return std::tie(a.hub_prefix, a.id) < std::tie(b.hub_prefix, b.id);
    });
    return out;
  }

  bool HasRunOrchestrator(std::string_view name) {
    std::lock_guard lock(history_mu_);
    return external_names_.find(name) != external_names_.end();
  }
};

}  // namespace

class Sidecar::Impl {
 public:
  Impl(Client& client, Store& store, tenancy::TenantDirectory& directory, SidecarOptions options)
      : options_(options), service_(client, store, directory, options) {}

  Status Start() {
    // Debian's Abseil checks every absl::Mutex (gRPC's, one per call) for
    // lock-order cycles, a debugging aid that costs a graph update per lock
    // and per mutex destroyed; gRPC's own release builds have it off.
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
    service_.StartJanitor();
    ::grpc::ServerBuilder builder;
    builder.AddListeningPort(options_.address + ":" + std::to_string(options_.port),
                             ::grpc::InsecureServerCredentials(), &port_);
    // gRPC sets SO_REUSEPORT by default: a second server on the same port
    // would then bind too and silently take part of the SDK calls. Off, the
    // second one fails to bind.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    // The same bound as the HTTP body limit by default: one message must not
    // cost the server more than one request may (larger: RESOURCE_EXHAUSTED).
    builder.SetMaxReceiveMessageSize(static_cast<int>(std::min<size_t>(options_.max_message_bytes, INT32_MAX)));
    // A backstop for every thread the sync server would start (the per-hub
    // caps of the service come first).
    ::grpc::ResourceQuota quota("baton-sidecar");
    quota.SetMaxThreads(std::max(16, options_.max_threads));
    builder.SetResourceQuota(quota);
    // The synchronous RPCs (client calls): keep up to 64 idle server threads
    // rather than gRPC's 2, so the threads that served a burst of waits are
    // reused, not ended and started again per call.
    builder.SetSyncServerOption(::grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 64);
    builder.RegisterService(&service_);
    SdkWorkers();  // shown (as 0) before the first worker connects
    std::vector<std::unique_ptr<::grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
    interceptors.push_back(std::make_unique<CallRecorderFactory>());
    builder.experimental().SetInterceptorCreators(std::move(interceptors));
    server_ = builder.BuildAndStart();
    if (!server_ || port_ == 0) {
      return UnavailableError("cannot listen for gRPC on " + options_.address + ":" + std::to_string(options_.port));
    }
    return Status::Ok();
  }
  void Stop() {
    service_.StopStreams();
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_.reset();
  }

  SidecarOptions options_;
  Service service_;
  std::unique_ptr<::grpc::Server> server_;
  int port_ = 0;
};

Sidecar::Sidecar(Client& client, Store& store, tenancy::TenantDirectory& directory, SidecarOptions options)
    : impl_(std::make_unique<Impl>(client, store, directory, std::move(options))) {}
ExternalDispatcher* Sidecar::dispatcher() { return &impl_->service_; }
bool Sidecar::HasRunOrchestrator(std::string_view name) const { return impl_->service_.HasRunOrchestrator(name); }
size_t Sidecar::ParkedWorkItems() const { return impl_->service_.ParkedWorkItems(); }
uint64_t Sidecar::HandedOnConnect() const { return impl_->service_.HandedOnConnect(); }
int Sidecar::ConnectedWorkers(std::string_view hub_prefix) const { return impl_->service_.WorkerStreams(hub_prefix); }
std::vector<WorkerStreamInfo> Sidecar::WorkerStreams() const { return impl_->service_.StreamInfos(); }
Sidecar::~Sidecar() { Stop(); }
Status Sidecar::Start() { return impl_->Start(); }
int Sidecar::port() const { return impl_->port_; }
void Sidecar::Stop() { impl_->Stop(); }

}  // namespace baton::sidecar
