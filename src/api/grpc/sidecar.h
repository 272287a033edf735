// The Durable Task sidecar: serves TaskHubSidecarService (protos/
// orchestrator_service.proto, the protocol the official Durable Task SDKs
// speak) over gRPC, translating between protobuf and Baton's core types at
// this edge only.
//
// Task hubs and tenants: a call's `authorization: Bearer <key>` metadata names
// the caller; a tenant key acts on its tenant's hub only (ids in requests and
// answers are local to it, like the HTTP API's), an admin key on the hub named
// by the `taskhub` metadata (or the default hub). With `allow_anonymous`, a
// call without a key acts on the `taskhub` it names.
//
// Client RPCs (start, get, wait, raise, terminate, suspend, resume, query,
// list ids, purge, restart, history, entities, task hubs) act through the
// Client. Worker RPCs: set dispatcher() as the in-process Worker's
// WorkerOptions::external, and the orchestrators and activities it does not
// know go to the SDK workers connected with GetWorkItems (per task hub),
// whose Complete… calls commit the episode, the activity result or the
// entity batch with the same store and durability. Entities whose name the
// registry does not know run in the SDK workers too; Baton keeps their locks
// and queues and hands the workers only the operations that may run.
//
// Client payloads (inputs, event data, terminate output) must be JSON text
// within ParseJson's limits (baton/json.h), else INVALID_ARGUMENT naming the
// field; every message is bounded by max_message_bytes.
//
// Thread-safety: Start/Stop from one thread.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "baton/client.h"
#include "baton/status.h"
#include "baton/store.h"
#include "baton/worker.h"
#include "tenancy/admission.h"
#include "tenancy/tenant_directory.h"

namespace baton::sidecar {

struct SidecarOptions {
  std::string address = "127.0.0.1";
  int port = 4001;  // 0 = any free port
  bool allow_anonymous = false;
  // Upper bound of a WaitForInstance… call (the SDKs send no deadline).
  std::chrono::seconds max_wait{std::chrono::minutes(10)};
  // Per-tenant request rate (client calls; GetWorkItems and the work-item
  // completions are not counted) and stored-instance cap; null = none.
  tenancy::Admission* admission = nullptr;
  // Largest message a call may send (gRPC's max receive size); a larger one
  // fails with RESOURCE_EXHAUSTED before it is read. `baton serve` sets the
  // HTTP body limit unless --grpc-max-message-bytes says otherwise.
  size_t max_message_bytes = 1 << 20;
  // Open at once, at most: worker streams per task hub and in all, waits
  // (WaitForInstance…) per task hub. One more is refused with
  // RESOURCE_EXHAUSTED (retryable), so no tenant can take every stream or
  // wait. A synchronous wait (a store without asynchronous calls) holds a
  // server thread while it lasts; an asynchronous one holds memory only.
  int max_worker_streams_per_hub = 16;
  int max_worker_streams = 512;
  int max_waits_per_hub = 16;
  // The gRPC server's threads, at most, and the asynchronous waits open at
  // once in all hubs, the default hub's included (backstops: the caps above
  // come first).
  int max_threads = 2048;
  // How long work no stream of its hub can take waits in memory for one
  // (ParkedWorkItems) before it goes back to the store. On one node the
  // default keeps it until a worker connects; on nodes sharing a PostgreSQL
  // store `baton serve` sets 1 s, because the hub's SDK worker may be
  // connected to another node, which fetches the work once it is given back.
  std::chrono::milliseconds park_for{60000};
  // Called after a terminate, suspend or resume was accepted (the job
  // monitor's Nudge: jobs started from orchestrations follow at once).
  std::function<void()> on_instance_control;
};

// One open GetWorkItems stream: an SDK worker connected to this node
// (Sidecar::WorkerStreams).
struct WorkerStreamInfo {
  uint64_t id = 0;             // this node's stream number, from 1
  std::string hub_prefix;      // "acme::"; "" = the default hub
  std::chrono::system_clock::time_point connected_at;
  std::string peer;            // gRPC's peer address, e.g. "ipv4:127.0.0.1:50412"
  int max_orchestrations = 0;  // the worker's concurrency limits (0 = none)
  int max_activities = 0;
  int max_entities = 0;
  int orchestrations = 0;      // work items handed to it and not yet completed
  int activities = 0;
  int entities = 0;
};

class Sidecar {
 public:
  // Everything given must outlive the sidecar.
  Sidecar(Client& client, Store& store, tenancy::TenantDirectory& directory, SidecarOptions options);
  ~Sidecar();
  // Unavailable when the address cannot be bound (the port is never shared
  // with another listener: SO_REUSEPORT is off).
  Status Start();
  int port() const;
  void Stop();
  // Hands work to the connected SDK workers (WorkerOptions::external).
  ExternalDispatcher* dispatcher();
  // Whether an SDK worker has run an orchestrator of this name since the
  // start (so the HTTP API can start it too). Thread-safe.
  bool HasRunOrchestrator(std::string_view name) const;
  // The dispatch record. Work no GetWorkItems stream of its hub could take
  // waits in memory (parked), at most park_for (then it goes back to the store,
  // for another node's worker), and is handed to a stream of the hub the
  // moment one connects or has room — never retried on a timer. Parked now,
  // and handed to a stream as it connected since the start (each such
  // hand-over is also logged, naming the work). Thread-safe.
  size_t ParkedWorkItems() const;
  uint64_t HandedOnConnect() const;
  // SDK worker streams (GetWorkItems) open now for a task hub, by its id
  // prefix ("acme::"; "" = the default hub). For `baton why`. Thread-safe.
  int ConnectedWorkers(std::string_view hub_prefix) const;
  // Every SDK worker stream open on this node now, by hub then id (each
  // node of a shared store knows only its own). Thread-safe.
  std::vector<WorkerStreamInfo> WorkerStreams() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace baton::sidecar
