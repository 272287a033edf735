// The Durable Task sidecar's client RPCs, in process, over a real gRPC
// channel on loopback: a C++ worker runs the orchestrations, a generated stub
// plays the SDK's client.
#include "api/grpc/sidecar.h"

#include "api/grpc/convert.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <regex>

#include "baton/client.h"
#include "baton/registry.h"
#include "baton/sqlite_store.h"
#include "baton/worker.h"
#include "orchestrator_service.grpc.pb.h"
#include "store/sqlite/sqlite_platform_stores.h"
#include "testing/test_util.h"
#include "util/metrics.h"

namespace baton::sidecar {
namespace {

using namespace std::chrono_literals;

class SidecarTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BATON_ASSERT_OK(registry_.AddActivity("SayHello", [](ActivityContext& ctx) -> Json {
      return "Hello, " + ctx.GetInput<std::string>() + "!";
    }));
    BATON_ASSERT_OK(registry_.AddOrchestrator("Hello", [](OrchestrationContext& ctx) -> Task<Json> {
      std::string greeting = co_await ctx.CallActivity<std::string>("SayHello", ctx.GetInput<std::string>());
      co_return greeting;
    }));
    BATON_ASSERT_OK(registry_.AddOrchestrator("Approval", [](OrchestrationContext& ctx) -> Task<Json> {
      ctx.SetCustomStatus("waiting");
      Json approval = co_await ctx.WaitForExternalEvent("approve");
      co_return approval;
    }));
    // The platform's own functions ("baton." names, like the job
    // orchestration and its activities): only the default hub may run them.
    BATON_ASSERT_OK(registry_.AddActivity("baton.Secret", [](ActivityContext&) -> Json { return "platform-secret"; }));
    BATON_ASSERT_OK(registry_.AddOrchestrator("baton.Run", [](OrchestrationContext&) -> Task<Json> {
      co_return "platform-ran";
    }));
    // A tenant entry point under a platform name: its own function, the
    // only one a tenant's hub sees under that name.
    BATON_ASSERT_OK(registry_.AddTenantOrchestrator("baton.Run", [](OrchestrationContext& ctx) -> Task<Json> {
      co_return "tenant-entry:" + ctx.InstanceId();
    }));
    BATON_ASSERT_OK(registry_.AddTenantActivity("baton.Open", [](ActivityContext&) -> Json { return "opened"; }));
    // Only platform names are entry points (any other name a tenant reaches anyway).
    EXPECT_EQ(registry_.AddTenantActivity("Open", [](ActivityContext&) -> Json { return nullptr; }).code(),
              StatusCode::kInvalidArgument);
    EXPECT_EQ(registry_.AddTenantActivity("baton.Open", [](ActivityContext&) -> Json { return nullptr; }).code(),
              StatusCode::kAlreadyExists);
    BATON_ASSERT_OK(registry_.AddOrchestrator("CallsPlatform", [](OrchestrationContext& ctx) -> Task<Json> {
      try {
        co_return co_await ctx.CallActivity("baton.Secret", Json());
      } catch (const TaskFailedError& e) {
        co_return e.details().error_type;
      }
    }));
    BATON_ASSERT_OK(registry_.AddOrchestrator("CallsEntryPoints", [](OrchestrationContext& ctx) -> Task<Json> {
      Json sub = co_await ctx.CallSubOrchestrator("baton.Run", Json());
      Json opened = co_await ctx.CallActivity("baton.Open", Json());
      co_return Json{sub, opened};
    }));
    BATON_ASSERT_OK(registry_.AddEntity("counter", [](EntityContext& ctx) -> Json {
      int64_t value = ctx.GetState<int64_t>(0);
      if (ctx.OperationName() == "add") ctx.SetState(value + ctx.GetInput<int64_t>());
      return value;
    }));
    SqliteStoreOptions options;
    options.path = dir_.File("hub.db");
    auto store = OpenSqliteStore(options);
    ASSERT_TRUE(store.ok());
    store_ = std::move(*store);
    worker_ = std::make_unique<Worker>(*store_, registry_);
    BATON_ASSERT_OK(worker_->Start());
    client_ = std::make_unique<Client>(*store_);
    auto tenant_store = store::OpenSqliteTenantStore(dir_.File("tenants.db"));
    ASSERT_TRUE(tenant_store.ok());
    tenant_store_ = std::move(*tenant_store);
    directory_ = std::make_unique<tenancy::TenantDirectory>(*tenant_store_);
    for (const char* t : {"acme", "other"}) {
      ASSERT_TRUE(directory_->CreateTenant(t, t).ok());
      auto key = directory_->CreateKey(t, "test");
      ASSERT_TRUE(key.ok());
      keys_[t] = key->second;
    }
    SidecarOptions sidecar_options;
    sidecar_options.port = 0;
    sidecar_ = std::make_unique<Sidecar>(*client_, *store_, *directory_, sidecar_options);
    BATON_ASSERT_OK(sidecar_->Start());
    auto channel = ::grpc::CreateChannel("127.0.0.1:" + std::to_string(sidecar_->port()),
                                         ::grpc::InsecureChannelCredentials());
    stub_ = ::TaskHubSidecarService::NewStub(channel);
  }
  void TearDown() override {
    if (sidecar_) sidecar_->Stop();
    if (worker_) worker_->Stop();
  }

  // A call context as tenant `tenant` ("" = no key).
  std::unique_ptr<::grpc::ClientContext> As(const std::string& tenant, std::chrono::seconds deadline = 30s) {
    auto ctx = std::make_unique<::grpc::ClientContext>();
    if (!tenant.empty()) ctx->AddMetadata("authorization", "Bearer " + keys_[tenant]);
    ctx->set_deadline(std::chrono::system_clock::now() + deadline);
    return ctx;
  }

  ::grpc::Status Start(const std::string& tenant, const std::string& name, const std::string& id,
                       const std::string& input, std::string* got_id = nullptr) {
    ::CreateInstanceRequest req;
    req.set_name(name);
    req.set_instanceid(id);
    req.mutable_input()->set_value(input);
    ::CreateInstanceResponse resp;
    auto s = stub_->StartInstance(As(tenant).get(), req, &resp);
    if (got_id) *got_id = resp.instanceid();
    return s;
  }

  ::GetInstanceResponse WaitDone(const std::string& tenant, const std::string& id) {
    ::GetInstanceRequest req;
    req.set_instanceid(id);
    req.set_getinputsandoutputs(true);
    ::GetInstanceResponse resp;
    auto s = stub_->WaitForInstanceCompletion(As(tenant).get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }

  testing::TempDir dir_;
  Registry registry_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Worker> worker_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<store::TenantStore> tenant_store_;
  std::unique_ptr<tenancy::TenantDirectory> directory_;
  std::map<std::string, std::string> keys_;
  std::unique_ptr<Sidecar> sidecar_;
  std::unique_ptr<::TaskHubSidecarService::Stub> stub_;
};

TEST_F(SidecarTest, StartsWaitsGetsAndStreamsTheHistory) {
  ::google::protobuf::Empty empty;
  ASSERT_TRUE(stub_->Hello(As("acme").get(), empty, &empty).ok());
  std::string id;
  ASSERT_TRUE(Start("acme", "Hello", "", "\"Tokyo\"", &id).ok());
  EXPECT_FALSE(id.empty());  // a new id, local to the hub
  EXPECT_EQ(id.find("::"), std::string::npos);
  ::GetInstanceResponse done = WaitDone("acme", id);
  ASSERT_TRUE(done.exists());
  EXPECT_EQ(done.orchestrationstate().orchestrationstatus(), ::ORCHESTRATION_STATUS_COMPLETED);
  EXPECT_EQ(done.orchestrationstate().output().value(), "\"Hello, Tokyo!\"");
  EXPECT_EQ(done.orchestrationstate().input().value(), "\"Tokyo\"");
  EXPECT_EQ(done.orchestrationstate().instanceid(), id);
  EXPECT_TRUE(done.orchestrationstate().has_completedtimestamp());

  ::StreamInstanceHistoryRequest hreq;
  hreq.set_instanceid(id);
  auto ctx = As("acme");
  auto reader = stub_->StreamInstanceHistory(ctx.get(), hreq);
  ::HistoryChunk chunk;
  std::vector<::HistoryEvent::EventTypeCase> kinds;
  while (reader->Read(&chunk)) {
    for (const auto& e : chunk.events()) kinds.push_back(e.eventType_case());
  }
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_GE(kinds.size(), 4u);
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), ::HistoryEvent::kExecutionStarted), kinds.end());
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), ::HistoryEvent::kTaskScheduled), kinds.end());
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), ::HistoryEvent::kTaskCompleted), kinds.end());
  // The Durable Task Scheduler's sequence: no OrchestratorCompleted (Baton
  // keeps them in its own history).
  EXPECT_EQ(std::vector<::HistoryEvent::EventTypeCase>(kinds),
            (std::vector<::HistoryEvent::EventTypeCase>{
                ::HistoryEvent::kOrchestratorStarted, ::HistoryEvent::kExecutionStarted,
                ::HistoryEvent::kTaskScheduled, ::HistoryEvent::kOrchestratorStarted,
                ::HistoryEvent::kTaskCompleted, ::HistoryEvent::kExecutionCompleted}));
  auto stored = client_->GetHistory("acme::" + id);
  ASSERT_TRUE(stored.ok());
  EXPECT_TRUE(std::holds_alternative<events::OrchestratorCompleted>(stored->back().body));
}

TEST_F(SidecarTest, ErrorCodesAreTheOnesTheSdksExpect) {
  ASSERT_TRUE(Start("acme", "Approval", "order-1", "1").ok());
  EXPECT_EQ(Start("acme", "Approval", "order-1", "1").error_code(), ::grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(Start("acme", "", "x", "1").error_code(), ::grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Start("acme", "Hello", "bad::id", "1").error_code(), ::grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Start("", "Hello", "x", "1").error_code(), ::grpc::StatusCode::UNAUTHENTICATED);
  ::RaiseEventRequest raise;
  raise.set_instanceid("nope");
  raise.set_name("approve");
  ::RaiseEventResponse raised;
  EXPECT_EQ(stub_->RaiseEvent(As("acme").get(), raise, &raised).error_code(), ::grpc::StatusCode::NOT_FOUND);
  ::RewindInstanceRequest rewind;
  rewind.set_instanceid("order-1");  // Running: only a Failed instance can be rewound
  ::RewindInstanceResponse rewound;
  EXPECT_EQ(stub_->RewindInstance(As("acme").get(), rewind, &rewound).error_code(),
            ::grpc::StatusCode::FAILED_PRECONDITION);
  rewind.set_instanceid("nope");
  EXPECT_EQ(stub_->RewindInstance(As("acme").get(), rewind, &rewound).error_code(), ::grpc::StatusCode::NOT_FOUND);
  // A tenant key naming another hub.
  auto ctx = As("acme");
  ctx->AddMetadata("taskhub", "other");
  ::GetInstanceRequest get;
  get.set_instanceid("order-1");
  ::GetInstanceResponse got;
  EXPECT_EQ(stub_->GetInstance(ctx.get(), get, &got).error_code(), ::grpc::StatusCode::PERMISSION_DENIED);
  // A wait that runs out.
  ::GetInstanceResponse waited;
  EXPECT_EQ(stub_->WaitForInstanceCompletion(As("acme", 1s).get(), get, &waited).error_code(),
            ::grpc::StatusCode::DEADLINE_EXCEEDED);
}

// Sends `bytes` as the one request message of `method` (any kind of method:
// on the wire a unary call is a stream of one message) and returns the
// call's status.
::grpc::Status RawCall(const std::shared_ptr<::grpc::Channel>& channel, const std::string& method,
                       const std::string& bytes, const std::string& key) {
  ::grpc::GenericStub generic(channel);
  ::grpc::ClientContext ctx;
  if (!key.empty()) ctx.AddMetadata("authorization", "Bearer " + key);
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  ::grpc::CompletionQueue cq;
  auto call = generic.PrepareCall(&ctx, method, &cq);
  void* tag = nullptr;
  bool ok = false;
  auto step = [&](intptr_t want) { return cq.Next(&tag, &ok) && reinterpret_cast<intptr_t>(tag) == want; };
  call->StartCall(reinterpret_cast<void*>(1));
  EXPECT_TRUE(step(1));
  ::grpc::Slice slice(bytes);
  ::grpc::ByteBuffer request(&slice, 1);
  call->Write(request, reinterpret_cast<void*>(2));
  EXPECT_TRUE(step(2));
  call->WritesDone(reinterpret_cast<void*>(3));
  EXPECT_TRUE(step(3));
  ::grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(4));
  EXPECT_TRUE(step(4));
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

// A request message that does not parse (a length-delimited field that
// claims 5 bytes and has 2) is answered INTERNAL by every method, callback
// ones included (gRPC's callback handlers alone would answer UNIMPLEMENTED),
// and reaches no method's logic.
TEST_F(SidecarTest, AMessageThatDoesNotParseIsInternalOnEveryMethodAndChangesNothing) {
  auto channel = ::grpc::CreateChannel("127.0.0.1:" + std::to_string(sidecar_->port()),
                                       ::grpc::InsecureChannelCredentials());
  const std::string truncated("\x0a\x05" "ab", 4);  // field 1, length 5, 2 bytes
  // Recorded like any call (the callback methods record themselves).
  auto internal = [](const char* method) -> util::metrics::Counter& {
    return util::metrics::Default().GetCounter("baton_grpc_requests_total",
                                               "gRPC calls of the Durable Task sidecar, by method and status code",
                                               {{"method", method}, {"code", "INTERNAL"}});
  };
  for (const char* method : {"StartInstance", "WaitForInstanceStart", "WaitForInstanceCompletion", "GetWorkItems",
                             "CompleteActivityTask", "CompleteOrchestratorTask", "GetInstance", "RaiseEvent"}) {
    SCOPED_TRACE(method);
    const uint64_t recorded = internal(method).Value();
    ::grpc::Status s = RawCall(channel, std::string("/TaskHubSidecarService/") + method, truncated, keys_["acme"]);
    EXPECT_EQ(s.error_code(), ::grpc::StatusCode::INTERNAL) << s.error_message();
    // The interceptor of the synchronous methods records once the reply is sent.
    for (int i = 0; i < 10000 && internal(method).Value() == recorded; ++i) std::this_thread::sleep_for(1ms);
    EXPECT_EQ(internal(method).Value(), recorded + 1);
  }
  // Nothing was created, and the same methods still answer well-formed calls.
  InstanceQuery all;
  auto page = client_->Query(all);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->instances.empty());
  std::string id;
  ASSERT_TRUE(Start("acme", "Hello", "after-garbage", "\"Tokyo\"", &id).ok());
  EXPECT_EQ(WaitDone("acme", id).orchestrationstate().output().value(), "\"Hello, Tokyo!\"");
}

// With the SQLite store the client calls are answered by the store's
// commits (callback API). A wait ends at the server's own limit with its
// reason, well before the client's deadline.
TEST_F(SidecarTest, AWaitEndsAtTheServersLimitWithItsReason) {
  ASSERT_TRUE(store_->SupportsAsyncClientCalls());
  SidecarOptions o;
  o.port = 0;
  o.max_wait = 1s;
  Sidecar limited(*client_, *store_, *directory_, o);
  BATON_ASSERT_OK(limited.Start());
  auto stub = ::TaskHubSidecarService::NewStub(::grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(limited.port()), ::grpc::InsecureChannelCredentials()));
  ASSERT_TRUE(Start("acme", "Approval", "held", "1").ok());  // waits for an event nobody sends
  ::GetInstanceRequest get;
  get.set_instanceid("held");
  ::GetInstanceResponse resp;
  ::grpc::Status s = stub->WaitForInstanceCompletion(As("acme", 30s).get(), get, &resp);
  EXPECT_EQ(s.error_code(), ::grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_NE(s.error_message().find("did not complete within 1000 ms"), std::string::npos) << s.error_message();
  // A wait for its start is answered (it runs), through the same server
  // (once the fixture's server, whose limit is 10 minutes, saw it start).
  ASSERT_TRUE(stub_->WaitForInstanceStart(As("acme").get(), get, &resp).ok());
  ASSERT_TRUE(stub->WaitForInstanceStart(As("acme").get(), get, &resp).ok());
  EXPECT_EQ(resp.orchestrationstate().orchestrationstatus(), ::ORCHESTRATION_STATUS_RUNNING);
  limited.Stop();
}

// A wait its client cancels gives its place among the hub's waits back at
// once, and a stopping server ends the waits it holds (UNAVAILABLE) rather
// than keeping them until their deadline.
TEST_F(SidecarTest, ACancelledWaitFreesItsPlaceAndStopEndsOpenWaits) {
  SidecarOptions o;
  o.port = 0;
  o.max_wait = 60s;
  o.max_waits_per_hub = 1;
  Sidecar capped(*client_, *store_, *directory_, o);
  BATON_ASSERT_OK(capped.Start());
  auto stub = ::TaskHubSidecarService::NewStub(::grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(capped.port()), ::grpc::InsecureChannelCredentials()));
  ASSERT_TRUE(Start("acme", "Approval", "held", "1").ok());
  ::GetInstanceRequest get;
  get.set_instanceid("held");
  // A wait that retries while the hub's only place is taken (by a probe),
  // on a fresh context each time (kept in `current`, to cancel it).
  struct Holder {
    std::mutex mu;
    std::unique_ptr<::grpc::ClientContext> current;
    ::grpc::Status status;
    std::atomic<bool> done{false};
    std::thread thread;
  };
  auto hold = [&](Holder& h) {
    h.thread = std::thread([&] {
      struct Done {
        std::atomic<bool>& flag;
        ~Done() { flag = true; }
      } done{h.done};
      for (int i = 0; i < 500; ++i) {
        ::grpc::ClientContext* ctx;
        {
          std::lock_guard lock(h.mu);
          h.current = As("acme");
          ctx = h.current.get();
        }
        ::GetInstanceResponse resp;
        h.status = stub->WaitForInstanceCompletion(ctx, get, &resp);
        if (h.status.error_code() != ::grpc::StatusCode::RESOURCE_EXHAUSTED) return;
        std::this_thread::sleep_for(10ms);
      }
    });
  };
  // A refused probe (one let in holds the place for its 1 s) means the
  // holder has the place.
  auto held = [&] {
    ::grpc::StatusCode probe = ::grpc::StatusCode::OK;
    for (int i = 0; i < 200 && probe != ::grpc::StatusCode::RESOURCE_EXHAUSTED; ++i) {
      ::GetInstanceResponse resp;
      probe = stub->WaitForInstanceCompletion(As("acme", 1s).get(), get, &resp).error_code();
      // A probe let in kept the holder out: give it time to retry.
      if (probe != ::grpc::StatusCode::RESOURCE_EXHAUSTED) std::this_thread::sleep_for(200ms);
    }
    return probe == ::grpc::StatusCode::RESOURCE_EXHAUSTED;
  };
  Holder first;
  hold(first);
  ASSERT_TRUE(held());
  // Cancelled (again, should the cancel reach an attempt that had ended).
  for (int i = 0; i < 250 && !first.done; ++i) {
    {
      std::lock_guard lock(first.mu);
      first.current->TryCancel();
    }
    std::this_thread::sleep_for(20ms);
  }
  first.thread.join();
  EXPECT_EQ(first.status.error_code(), ::grpc::StatusCode::CANCELLED) << first.status.error_message();
  // Its place is free long before the 60 s limit: a wait is let in (it runs
  // to its own 1 s deadline) instead of being refused.
  ::grpc::StatusCode next = ::grpc::StatusCode::RESOURCE_EXHAUSTED;
  for (int i = 0; i < 50 && next == ::grpc::StatusCode::RESOURCE_EXHAUSTED; ++i) {
    ::GetInstanceResponse resp;
    next = stub->WaitForInstanceCompletion(As("acme", 1s).get(), get, &resp).error_code();
    if (next == ::grpc::StatusCode::RESOURCE_EXHAUSTED) std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(next, ::grpc::StatusCode::DEADLINE_EXCEEDED);
  // A wait that holds the place is ended by the server's stop, with why.
  Holder second;
  hold(second);
  EXPECT_TRUE(held());
  capped.Stop();
  second.thread.join();
  EXPECT_EQ(second.status.error_code(), ::grpc::StatusCode::UNAVAILABLE) << second.status.error_message();
  EXPECT_EQ(second.status.error_message(), "the server is stopping");
}

TEST_F(SidecarTest, EventsSuspendResumeAndTerminate) {
  ASSERT_TRUE(Start("acme", "Approval", "a1", "1").ok());
  ::GetInstanceRequest get;
  get.set_instanceid("a1");
  ::GetInstanceResponse started;
  ASSERT_TRUE(stub_->WaitForInstanceStart(As("acme").get(), get, &started).ok());
  ::SuspendRequest suspend;
  suspend.set_instanceid("a1");
  ::SuspendResponse suspended;
  ASSERT_TRUE(stub_->SuspendInstance(As("acme").get(), suspend, &suspended).ok());
  ASSERT_TRUE(testing::Eventually([&] {
    ::GetInstanceResponse r;
    return stub_->GetInstance(As("acme").get(), get, &r).ok() &&
           r.orchestrationstate().orchestrationstatus() == ::ORCHESTRATION_STATUS_SUSPENDED;
  }));
  ::ResumeRequest resume;
  resume.set_instanceid("a1");
  ::ResumeResponse resumed;
  ASSERT_TRUE(stub_->ResumeInstance(As("acme").get(), resume, &resumed).ok());
  ::RaiseEventRequest raise;
  raise.set_instanceid("a1");
  raise.set_name("approve");
  raise.mutable_input()->set_value(R"({"by":"ops"})");
  ::RaiseEventResponse raised;
  ASSERT_TRUE(stub_->RaiseEvent(As("acme").get(), raise, &raised).ok());
  EXPECT_EQ(WaitDone("acme", "a1").orchestrationstate().output().value(), R"({"by":"ops"})");

  ASSERT_TRUE(Start("acme", "Approval", "a2", "1").ok());
  ::TerminateRequest terminate;
  terminate.set_instanceid("a2");
  terminate.mutable_output()->set_value("\"enough\"");
  terminate.set_recursive(true);
  ::TerminateResponse terminated;
  ASSERT_TRUE(stub_->TerminateInstance(As("acme").get(), terminate, &terminated).ok());
  ::GetInstanceResponse end = WaitDone("acme", "a2");
  EXPECT_EQ(end.orchestrationstate().orchestrationstatus(), ::ORCHESTRATION_STATUS_TERMINATED);
}

TEST_F(SidecarTest, TenantsSeeOnlyTheirOwnHub) {
  ASSERT_TRUE(Start("acme", "Hello", "mine", "\"A\"").ok());
  WaitDone("acme", "mine");
  ::GetInstanceRequest get;
  get.set_instanceid("mine");
  ::GetInstanceResponse theirs;
  ASSERT_TRUE(stub_->GetInstance(As("other").get(), get, &theirs).ok());
  EXPECT_FALSE(theirs.exists());
  ::QueryInstancesRequest query;
  ::QueryInstancesResponse listed;
  ASSERT_TRUE(stub_->QueryInstances(As("other").get(), query, &listed).ok());
  EXPECT_EQ(listed.orchestrationstate_size(), 0);
  // The same id in another hub is another instance.
  ASSERT_TRUE(Start("other", "Hello", "mine", "\"B\"").ok());
  EXPECT_EQ(WaitDone("other", "mine").orchestrationstate().output().value(), "\"Hello, B!\"");
  EXPECT_EQ(WaitDone("acme", "mine").orchestrationstate().output().value(), "\"Hello, A!\"");
}

// A tenant must not run the platform's functions with inputs of its own
// choosing (the job orchestration would run any spec, with any job's
// secrets): started in its hub, called from its orchestrations, they are not
// there, and a tenant entry point of the same name (Registry::
// AddTenantOrchestrator) runs instead; the default hub still runs them.
TEST_F(SidecarTest, PlatformFunctionsRunOnlyInTheDefaultHub) {
  // Under the name of a tenant entry point, a tenant's hub runs that entry
  // point, never the platform's function.
  ASSERT_TRUE(Start("acme", "baton.Run", "run", "null").ok());
  ::GetInstanceResponse run = WaitDone("acme", "run");
  EXPECT_EQ(run.orchestrationstate().output().value(), "\"tenant-entry:acme::run\"");
  ASSERT_TRUE(Start("acme", "CallsEntryPoints", "entry", "null").ok());
  ::GetInstanceResponse entry = WaitDone("acme", "entry");
  Json both = Json::parse(entry.orchestrationstate().output().value(), nullptr, false);
  ASSERT_TRUE(both.is_array() && both.size() == 2) << entry.orchestrationstate().output().value();
  EXPECT_EQ(both[0].get<std::string>().rfind("tenant-entry:acme::", 0), 0u) << both.dump();  // a child in the hub
  EXPECT_EQ(both[1], "opened");

  ASSERT_TRUE(Start("acme", "CallsPlatform", "calls", "null").ok());
  EXPECT_EQ(WaitDone("acme", "calls").orchestrationstate().output().value(), "\"ActivityNotFound\"");

  auto platform = client_->ScheduleNewOrchestration("CallsPlatform", Json());
  ASSERT_TRUE(platform.ok());
  auto done = client_->WaitForCompletion(*platform, 30s, /*include_payloads=*/true);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->output, "\"platform-secret\"");
  auto ran = client_->ScheduleNewOrchestration("baton.Run", Json());
  ASSERT_TRUE(ran.ok());
  done = client_->WaitForCompletion(*ran, 30s, /*include_payloads=*/true);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->output, "\"platform-ran\"");
}

TEST_F(SidecarTest, QueryListPageAndPurge) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Start("acme", "Hello", "q" + std::to_string(i), "\"x\"").ok());
  for (int i = 0; i < 5; ++i) WaitDone("acme", "q" + std::to_string(i));
  std::set<std::string> seen;
  ::ListInstanceIdsRequest list;
  list.set_pagesize(2);
  for (int pages = 0; pages < 10; ++pages) {
    ::ListInstanceIdsResponse page;
    ASSERT_TRUE(stub_->ListInstanceIds(As("acme").get(), list, &page).ok());
    for (const std::string& id : page.instanceids()) seen.insert(id);
    if (!page.has_lastinstancekey()) break;
    *list.mutable_lastinstancekey() = page.lastinstancekey();
  }
  EXPECT_EQ(seen, (std::set<std::string>{"q0", "q1", "q2", "q3", "q4"}));

  ::QueryInstancesRequest query;
  query.mutable_query()->add_runtimestatus(::ORCHESTRATION_STATUS_COMPLETED);
  query.mutable_query()->mutable_instanceidprefix()->set_value("q1");
  query.mutable_query()->set_fetchinputsandoutputs(true);
  ::QueryInstancesResponse found;
  ASSERT_TRUE(stub_->QueryInstances(As("acme").get(), query, &found).ok());
  ASSERT_EQ(found.orchestrationstate_size(), 1);
  EXPECT_EQ(found.orchestrationstate(0).output().value(), "\"Hello, x!\"");

  ::PurgeInstancesRequest one;
  one.set_instanceid("q0");
  ::PurgeInstancesResponse purged;
  ASSERT_TRUE(stub_->PurgeInstances(As("acme").get(), one, &purged).ok());
  EXPECT_EQ(purged.deletedinstancecount(), 1);
  ::PurgeInstancesRequest by_filter;
  by_filter.mutable_purgeinstancefilter()->add_runtimestatus(::ORCHESTRATION_STATUS_COMPLETED);
  ASSERT_TRUE(stub_->PurgeInstances(As("other").get(), by_filter, &purged).ok());
  EXPECT_EQ(purged.deletedinstancecount(), 0);  // another hub's purge touches nothing here
  ASSERT_TRUE(stub_->PurgeInstances(As("acme").get(), by_filter, &purged).ok());
  EXPECT_EQ(purged.deletedinstancecount(), 4);
}

TEST_F(SidecarTest, EntitiesSignalGetQueryAndClean) {
  for (int i = 1; i <= 3; ++i) {
    ::SignalEntityRequest signal;
    signal.set_instanceid("@counter@a");
    signal.set_name("add");
    signal.mutable_input()->set_value(std::to_string(i));
    signal.set_requestid("r" + std::to_string(i));
    ::SignalEntityResponse signaled;
    ASSERT_TRUE(stub_->SignalEntity(As("acme").get(), signal, &signaled).ok());
  }
  ::GetEntityRequest get;
  get.set_instanceid("@counter@a");
  get.set_includestate(true);
  ASSERT_TRUE(testing::Eventually([&] {
    ::GetEntityResponse e;
    return stub_->GetEntity(As("acme").get(), get, &e).ok() && e.exists() && e.entity().serializedstate().value() == "6";
  }));
  ::GetEntityResponse from_other;
  ASSERT_TRUE(stub_->GetEntity(As("other").get(), get, &from_other).ok());
  EXPECT_FALSE(from_other.exists());
  ::QueryEntitiesRequest query;
  query.mutable_query()->mutable_instanceidstartswith()->set_value("@counter");
  query.mutable_query()->set_includestate(true);
  ::QueryEntitiesResponse found;
  ASSERT_TRUE(stub_->QueryEntities(As("acme").get(), query, &found).ok());
  ASSERT_EQ(found.entities_size(), 1);
  EXPECT_EQ(found.entities(0).instanceid(), "@counter@a");
  ::CleanEntityStorageRequest clean;
  clean.set_removeemptyentities(true);
  clean.set_releaseorphanedlocks(true);
  ::CleanEntityStorageResponse cleaned;
  EXPECT_TRUE(stub_->CleanEntityStorage(As("acme").get(), clean, &cleaned).ok());
  ::SignalEntityRequest bad;
  bad.set_instanceid("counter-a");
  ::SignalEntityResponse r;
  EXPECT_EQ(stub_->SignalEntity(As("acme").get(), bad, &r).error_code(), ::grpc::StatusCode::INVALID_ARGUMENT);
}

// ---- Conformance with the Durable Task Scheduler (issue 14) ----

using DurableTaskConformanceTest = SidecarTest;

TEST_F(DurableTaskConformanceTest, PayloadsAreStoredAsTheBytesSent) {
  const std::string doc = R"({"zeta":1,"alpha":[true,null,{"y":2,"b":"x"}],"n":1.50})";
  ASSERT_TRUE(Start("acme", "Approval", "bytes", doc).ok());
  ASSERT_TRUE(Start("acme", "Approval", "null-input", "null").ok());
  ::GetInstanceRequest get;
  get.set_instanceid("bytes");
  get.set_getinputsandoutputs(true);
  ::GetInstanceResponse got;
  ASSERT_TRUE(stub_->WaitForInstanceStart(As("acme").get(), get, &got).ok());
  EXPECT_EQ(got.orchestrationstate().input().value(), doc);
  EXPECT_TRUE(std::regex_match(got.orchestrationstate().executionid().value(), std::regex("[0-9a-f]{32}")))
      << got.orchestrationstate().executionid().value();
  get.set_instanceid("null-input");
  ASSERT_TRUE(stub_->GetInstance(As("acme").get(), get, &got).ok());
  ASSERT_TRUE(got.orchestrationstate().has_input());
  EXPECT_EQ(got.orchestrationstate().input().value(), "null");

  ::RaiseEventRequest raise;
  raise.set_instanceid("bytes");
  raise.set_name("approve");
  raise.mutable_input()->set_value(doc);
  ::RaiseEventResponse raised;
  ASSERT_TRUE(stub_->RaiseEvent(As("acme").get(), raise, &raised).ok());
  WaitDone("acme", "bytes");
  auto history = client_->GetHistory("acme::bytes");
  ASSERT_TRUE(history.ok());
  auto event = std::find_if(history->begin(), history->end(),
                            [](const HistoryEvent& e) { return std::holds_alternative<events::EventRaised>(e.body); });
  ASSERT_NE(event, history->end());
  EXPECT_EQ(std::get<events::EventRaised>(event->body).input, doc);

  ::TerminateRequest terminate;
  terminate.set_instanceid("null-input");
  terminate.mutable_output()->set_value(doc);
  ::TerminateResponse terminated;
  ASSERT_TRUE(stub_->TerminateInstance(As("acme").get(), terminate, &terminated).ok());
  ::GetInstanceResponse done = WaitDone("acme", "null-input");
  EXPECT_EQ(done.orchestrationstate().orchestrationstatus(), ::ORCHESTRATION_STATUS_TERMINATED);
  EXPECT_EQ(done.orchestrationstate().output().value(), doc);

  // Not JSON, or too deep: refused by field, nothing stored.
  EXPECT_EQ(Start("acme", "Approval", "broken", R"({"a":)").error_code(), ::grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Start("acme", "Approval", "deep", std::string(200, '[') + std::string(200, ']')).error_code(),
            ::grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(client_->GetState("acme::broken").status().code(), StatusCode::kNotFound);
}

TEST_F(DurableTaskConformanceTest, InstanceIdsOverOneHundredCharactersAreInvalid) {
  EXPECT_TRUE(Start("acme", "Approval", std::string(100, 'a'), "1").ok());
  EXPECT_EQ(Start("acme", "Approval", std::string(101, 'b'), "1").error_code(), ::grpc::StatusCode::INVALID_ARGUMENT);
  auto stored = client_->Count(InstanceQuery{.instance_id_prefix = "acme::bbb"}, 10);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(*stored, 0);
  EXPECT_EQ(Start("acme", std::string(257, 'n'), "long-name", "1").error_code(), ::grpc::StatusCode::INVALID_ARGUMENT);
  ::SignalEntityRequest signal;
  signal.set_instanceid("@counter@" + std::string(92, 'k'));  // 101 characters
  signal.set_name("add");
  ::SignalEntityResponse signaled;
  EXPECT_EQ(stub_->SignalEntity(As("acme").get(), signal, &signaled).error_code(),
            ::grpc::StatusCode::INVALID_ARGUMENT);
  signal.set_instanceid("@counter@" + std::string(91, 'k'));  // 100
  EXPECT_TRUE(stub_->SignalEntity(As("acme").get(), signal, &signaled).ok());
}

// Tags and the version given at start come back in OrchestrationState.
TEST_F(DurableTaskConformanceTest, TagsAndVersionAreReturnedByGetWaitAndQuery) {
  ::CreateInstanceRequest req;
  req.set_name("Approval");
  req.set_instanceid("tagged");
  req.mutable_version()->set_value("2.1");
  (*req.mutable_tags())["team"] = "payments";
  (*req.mutable_tags())["env"] = "test";
  ::CreateInstanceResponse resp;
  ASSERT_TRUE(stub_->StartInstance(As("acme").get(), req, &resp).ok());
  auto tags_of = [](const ::OrchestrationState& s) { return std::map<std::string, std::string>(s.tags().begin(), s.tags().end()); };
  const std::map<std::string, std::string> want{{"team", "payments"}, {"env", "test"}};
  ::GetInstanceRequest get;
  get.set_instanceid("tagged");
  ::GetInstanceResponse got;
  ASSERT_TRUE(stub_->WaitForInstanceStart(As("acme").get(), get, &got).ok());
  EXPECT_EQ(tags_of(got.orchestrationstate()), want);
  EXPECT_EQ(got.orchestrationstate().version().value(), "2.1");
  get.set_getinputsandoutputs(true);
  ASSERT_TRUE(stub_->GetInstance(As("acme").get(), get, &got).ok());
  EXPECT_EQ(tags_of(got.orchestrationstate()), want);
  EXPECT_EQ(got.orchestrationstate().version().value(), "2.1");
  ::QueryInstancesRequest query;
  query.mutable_query()->mutable_instanceidprefix()->set_value("tagged");
  ::QueryInstancesResponse found;
  ASSERT_TRUE(stub_->QueryInstances(As("acme").get(), query, &found).ok());
  ASSERT_EQ(found.orchestrationstate_size(), 1);
  EXPECT_EQ(tags_of(found.orchestrationstate(0)), want);
  EXPECT_EQ(found.orchestrationstate(0).version().value(), "2.1");
}

// A raw GetWorkItems stream plays the SDK worker: work for an entity no
// in-process code knows, signalled while no worker of the hub is connected,
// is the first thing the stream gets when it connects — no retry, no clock.
TEST_F(DurableTaskConformanceTest, WorkQueuedBeforeAWorkerConnectsIsHandedToItsStream) {
  worker_->Stop();
  WorkerOptions options;
  options.external = sidecar_->dispatcher();
  worker_ = std::make_unique<Worker>(*store_, registry_, options);
  BATON_ASSERT_OK(worker_->Start());
  ::SignalEntityRequest signal;
  signal.set_instanceid("@sdkonly@early");
  signal.set_name("add");
  signal.mutable_input()->set_value(R"({"z":1,"a":2})");
  ::SignalEntityResponse signaled;
  ASSERT_TRUE(stub_->SignalEntity(As("acme").get(), signal, &signaled).ok());
  // The work is in the sidecar (parked) before the stream exists.
  ASSERT_TRUE(testing::Eventually([&] { return sidecar_->ParkedWorkItems() == 1; }));
  auto ctx = As("acme");
  ::GetWorkItemsRequest req;
  auto stream = stub_->GetWorkItems(ctx.get(), req);
  ::WorkItem item;
  ASSERT_TRUE(stream->Read(&item));
  ASSERT_TRUE(item.has_entityrequest());
  EXPECT_EQ(item.entityrequest().instanceid(), "@sdkonly@early");
  ASSERT_EQ(item.entityrequest().operations_size(), 1);
  EXPECT_EQ(item.entityrequest().operations(0).input().value(), R"({"z":1,"a":2})");
  EXPECT_EQ(sidecar_->ParkedWorkItems(), 0);
  EXPECT_EQ(sidecar_->HandedOnConnect(), 1);
  ::EntityBatchResult result;
  result.set_completiontoken(item.completiontoken());
  result.add_results()->mutable_success()->mutable_result()->set_value("3");
  result.mutable_entitystate()->set_value("3");
  ::CompleteTaskResponse completed;
  ASSERT_TRUE(stub_->CompleteEntityTask(As("acme").get(), result, &completed).ok());
  auto entity = client_->GetEntity("acme::@sdkonly@early");
  ASSERT_TRUE(entity.ok());
  EXPECT_EQ(entity->state, "3");
  ctx->TryCancel();
  stream->Finish().IgnoreError();
}

// The sidecar caches the history an episode commits for the next dispatch in
// the form a read of the store gives (AsStored): the same events, times to
// the microsecond, whether an event kind takes the fast path or the JSON
// round trip.
TEST(SidecarHistoryCacheTest, CachedEventsAreWhatTheStoreGivesBack) {
  const TimePoint t = TimePoint(std::chrono::nanoseconds(1'764'800'000'123'456'789));
  FailureDetails failure{"Boom", "it failed"};
  failure.inner.push_back(FailureDetails{"Inner", "below"});
  std::vector<HistoryEvent> events = {
      {-1, t, events::OrchestratorStarted{}},
      {7, t, events::OrchestratorCompleted{}},
      {0, t, events::TaskScheduled{"SayHello", "v1", "{\"b\":1,\"a\":null}"}},
      {-1, t, events::TaskCompleted{0, "\"Hello, Tokyo!\""}},
      {-1, t, events::TaskFailed{1, failure}},
      {-1, t, events::EventRaised{"approve", "null"}},
      {2, t, events::EventSent{"other", "ping", "[1,2]"}},
      {3, t, events::ExecutionCompleted{OrchestrationStatus::kCompleted, "\"done\"", std::nullopt}},
      {4, t, events::SubOrchestrationInstanceCreated{"acme::child", "Child", "", "1"}},
      {-1, t, events::SubOrchestrationInstanceCompleted{4, "2"}},
      {-1, t, events::SubOrchestrationInstanceFailed{4, failure}},
      {5, t, events::TimerCreated{t + std::chrono::nanoseconds(999)}},
      {-1, t, events::TimerFired{t + std::chrono::nanoseconds(999), 5}},
  };
  for (const HistoryEvent& e : events) {
    auto read = ParseEvent(SerializeEvent(e));
    ASSERT_TRUE(read.ok()) << EventKindName(e.body);
    std::optional<HistoryEvent> cached = AsStored(e);
    ASSERT_TRUE(cached.has_value()) << EventKindName(e.body);
    EXPECT_EQ(*cached, *read) << EventKindName(e.body);
    EXPECT_NE(cached->timestamp, e.timestamp) << "the nanoseconds are dropped: " << EventKindName(e.body);
  }
}

}  // namespace
}  // namespace baton::sidecar
