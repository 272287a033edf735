// JobMonitor: turns what happens to job containers into the job
// orchestrations' external events, and cleans up what nobody owns.
//
//   - Docker's "die" event of a job's main container becomes "Completed"
//     (exit code 0) or "Failed" on its orchestration, with {"attempt",
//     "exitCode", "source": "docker"}.
//   - Job-URL jobs are polled (GET /status): a changed "progress" becomes a
//     "Progress" event, a final "status" a "Completed" / "Failed" event.
//   - The reconciler, at Start and every `reconcile_interval`:
//       * removes every group of this node that no live attempt owns (its
//         instance is gone or finished, or is on another attempt);
//       * reports the exit of a main container whose die event was missed
//         (the server was down);
//       * raises "ContainerLost" for a running attempt whose group vanished;
//         the orchestration's restart policy decides what follows;
//       * deletes the vault's secrets of jobs that ended without deleting
//         them (terminated, purged; the orchestration deletes its own);
//       * makes jobs started from a tenant's orchestration follow it
//         (job_orchestration.h): "Cancel" when the parent was terminated
//         (or the "baton.Job" sub-orchestration waiting for the job ended
//         or is gone), suspended while the parent or that sub-orchestration
//         is suspended (held: the job acts on nothing until resumed), resumed
//         when neither is; the indexes of an array job follow their array
//         job the same way (held while it is suspended, canceled when it
//         ended without them);
//       * tells a "baton.Job" sub-orchestration still waiting for a job
//         that ended without telling it (an admin terminated the job
//         orchestration, or it failed outside its own error handling) that
//         the job ended, with a Canceled or Failed result, so the tenant's
//         orchestration goes on;
//       * releases the scheduler's grant or queue place of a job whose
//         orchestration ended without releasing it (terminated, or gone),
//         so its quota is not held forever.
//     The last two act only when two passes in a row saw the same thing:
//     the job's own news may be in flight.
// Events may be raised more than once: the orchestration ignores those of
// an attempt it is no longer waiting on.
//
// The runtime may go away (dockerd stopped, restarted, overloaded) and come
// back at any time; the monitor outlives it:
//   - the events stream is reopened every second, from the time of the last
//     event seen (events are replayed; duplicates are harmless). A restarted
//     dockerd has forgotten what happened before it stopped, so the first
//     successful reconnection after a failure also runs a reconcile pass at
//     once, which reports the exits nobody saw;
//   - only the runtime's answer "no such group" counts as a vanished
//     container, never an error (Unavailable is not NotFound), and only when
//     two reconcile passes in a row found the running attempt without its
//     group (ContainerLost is final for the attempt, so it waits for a
//     second look);
//   - a failing stream or pass is logged when it starts failing and when it
//     recovers, not at every retry.
//
// Thread-safety: Start/Stop from one thread; ReconcileOnce may be called
// concurrently with the monitor's own threads.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <optional>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "baton/client.h"
#include "runtime/container_runtime.h"
#include "store/lease_store.h"

namespace baton::batch {

class SecretVault;

struct JobMonitorOptions {
  // The "baton.deployment" label of the groups this deployment's nodes
  // create: every node of a deployment watches them all ("" = use node_id).
  std::string deployment_id;
  std::string node_id;  // the "baton.node" label of this node's groups
  SecretVault* vault = nullptr;  // swept of ended jobs' secrets; null = no sweep
  // With many nodes, one of them reconciles and polls job URLs at a time:
  // the holder of the lease "job-monitor/<deployment>"; another takes over
  // when it dies (the lease lapses after lease_ttl). Null: this node alone.
  // Die events are watched by every node (raising one twice is harmless).
  store::LeaseStore* leases = nullptr;
  std::chrono::milliseconds lease_ttl{std::chrono::seconds(15)};
  std::chrono::milliseconds reconcile_interval{std::chrono::seconds(30)};
  std::chrono::milliseconds job_url_poll_interval{std::chrono::seconds(2)};
};

struct ReconcileReport {
  int groups_removed = 0;
  int exits_reported = 0;
  int containers_lost = 0;
  int secrets_swept = 0;  // jobs whose secrets were deleted
  int parents_ended = 0;  // jobs canceled because their parent orchestration was terminated
  int held = 0;           // jobs suspended with their parent
  int released = 0;       // jobs resumed with their parent
  int bridges_told = 0;   // "baton.Job" sub-orchestrations told of a job that ended without telling them
  int grants_released = 0;  // quota held by jobs that ended without releasing it
};

// The reconciler's memory between passes: a finding acts only once two
// passes in a row made it (the first may have raced what it looks at). A
// Pass takes what the previous pass kept, so a pass that fails before Keep()
// leaves nothing behind; Saw(key) records a finding of this pass and says
// whether the previous one made it too; Keep() keeps this pass's findings
// for the next.
class SeenTwice {
 public:
  class Pass {
   public:
    Pass(const Pass&) = delete;
    Pass& operator=(const Pass&) = delete;
    explicit Pass(SeenTwice& memory) : memory_(memory) {
      std::lock_guard lock(memory_.mu_);
      before_.swap(memory_.seen_);
    }
    bool Saw(const std::string& key) {
      now_.insert(key);
      return before_.count(key) != 0;
    }
    void Keep() {
      std::lock_guard lock(memory_.mu_);
      memory_.seen_ = std::move(now_);
    }

   private:
    SeenTwice& memory_;
    std::set<std::string> before_;
    std::set<std::string> now_;
  };

 private:
  std::mutex mu_;
  std::set<std::string> seen_;
};

class JobMonitor {
 public:
  JobMonitor(runtime::ContainerRuntime& runtime, Client& client, JobMonitorOptions options);
  ~JobMonitor();
  JobMonitor(const JobMonitor&) = delete;
  JobMonitor& operator=(const JobMonitor&) = delete;

  // Runs a first reconcile pass, then starts watching.
  void Start();
  void Stop();

  Result<ReconcileReport> ReconcileOnce();
  // An orchestration was terminated, suspended or resumed through an API:
  // the jobs started from orchestrations follow their parents now (a pass
  // every 500 ms for the next 5 s, on this node whether or not it leads),
  // rather than at the next reconcile pass. Cheap and coalesced; any thread.
  void Nudge();
  // Whether this node does the deployment's reconciling now (acquires or
  // renews the lease; true without a LeaseStore).
  bool Leading();
  // What the last Leading() found (false before the first): whether this
  // node reconciles now, for reports (the nodes' heartbeat). Thread-safe.
  bool Reconciling() const { return reconciling_.load(std::memory_order_relaxed); }

 private:
  void WatchLoop();
  void PollLoop();
  // Asks the poller for a reconcile pass now (after the events stream came back).
  void RequestReconcile();
  void PollJobUrls();
  // ReconcileOnce's step for a job started from an orchestration.
  Status FollowParents(ReconcileReport& report);  // ReconcileOnce's step 5
  void FollowParent(const InstanceState& job, const Json& parent, ReconcileReport& report);
  // ... and for an index of an array job, given its array job's status (nullopt: gone).
  void FollowArray(const InstanceState& child, std::optional<OrchestrationStatus> array, ReconcileReport& report);
  // ReconcileOnce's steps for what a job that ended abnormally left behind.
  Status TellWaitingBridges(ReconcileReport& report);
  Status ReleaseGrantsOfEndedJobs(ReconcileReport& report);
  // Raises an event about `attempt` on `instance`; errors are logged.
  void Raise(const std::string& instance, const std::string& name, const Json& data);
  std::map<std::string, std::string> Selector() const;
  bool SleepFor(std::chrono::milliseconds d);  // false when stopping

  runtime::ContainerRuntime& runtime_;
  Client& client_;
  JobMonitorOptions options_;
  SeenTwice vault_unknown_;  // vault entries whose job has no instance
  bool leading_ = false;  // PollLoop's thread only
  std::atomic<bool> reconciling_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool reconcile_requested_ = false;
  std::chrono::steady_clock::time_point follow_until_;  // guarded by mu_ (Nudge)
  std::thread watcher_;
  std::thread poller_;
  // Job-URL state seen last, by "<instance>/<attempt>".
  std::map<std::string, std::string> last_progress_;
  std::set<std::string> reported_;
  // ReconcileOnce's memory between passes: running attempts
  // ("<instance>/<attempt>") without a group, bridges waiting for an ended
  // job, scheduler entries of ended jobs.
  SeenTwice missing_;
  SeenTwice waiting_bridges_;
  SeenTwice ended_grants_;
};

}  // namespace baton::batch
