#include "baton/worker.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <typeinfo>
#include <unordered_set>
#include <variant>

#include "baton/entity_id.h"
#include "core/executor.h"
#include "util/demangle.h"
#include "util/overloaded.h"
#include "engine/entity_executor.h"
#include "engine/episode_update.h"
#include "engine/orchestration_cache.h"
#include "engine/rewind_plan.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/uuid.h"

namespace baton {
namespace {

using util::Demangle;

using util::Overloaded;

// A generation may continue-as-new this many times in one episode without
// awaiting anything; beyond that it is a runaway loop.
constexpr int kMaxContinueAsNewGenerations = 1000;

constexpr std::chrono::milliseconds kFetchWait{500};

// The engine's metrics (docs/metrics.md), looked up once: on the hot path
// each is a relaxed atomic add (util/metrics.h).
struct EngineMetrics {
  using M = util::metrics::Registry;
  M& r = util::metrics::Default();
  util::metrics::Counter& orchestration_fetched =
      r.GetCounter("baton_work_items_fetched_total", "Work items fetched from the store, by kind",
                   {{"kind", "orchestration"}});
  util::metrics::Counter& activity_fetched =
      r.GetCounter("baton_work_items_fetched_total", "Work items fetched from the store, by kind",
                   {{"kind", "activity"}});
  util::metrics::Histogram& orchestration_fetch_seconds = r.GetHistogram(
      "baton_work_item_fetch_seconds",
      "Duration of a fetch call that returned a work item (includes waiting for work when the queue was empty)",
      {{"kind", "orchestration"}});
  util::metrics::Histogram& activity_fetch_seconds = r.GetHistogram(
      "baton_work_item_fetch_seconds",
      "Duration of a fetch call that returned a work item (includes waiting for work when the queue was empty)",
      {{"kind", "activity"}});
  util::metrics::Histogram& orchestration_commit_seconds =
      r.GetHistogram("baton_work_item_commit_seconds",
                     "From handing a completed work item to the store to its commit's callback (group commit and fsync)",
                     {{"kind", "orchestration"}});
  util::metrics::Histogram& activity_commit_seconds =
      r.GetHistogram("baton_work_item_commit_seconds",
                     "From handing a completed work item to the store to its commit's callback (group commit and fsync)",
                     {{"kind", "activity"}});
  util::metrics::Counter& commit_failures =
      r.GetCounter("baton_work_item_commit_failures_total",
                   "Completed work items whose commit the store refused (lease lost, I/O error)");
  util::metrics::Counter& episodes =
      r.GetCounter("baton_episodes_total", "Orchestration episodes and entity batches run (in process or by SDK workers)");
  util::metrics::Counter& replays = r.GetCounter(
      "baton_replays_total", "Orchestrations rebuilt by replaying their history (cache misses with a history)");
  util::metrics::Counter& replayed_events =
      r.GetCounter("baton_replayed_events_total", "History events re-applied by replays");
  util::metrics::Counter& cache_hits =
      r.GetCounter("baton_orchestration_cache_hits_total", "Episodes that found their orchestration in the cache");
  util::metrics::Counter& cache_misses =
      r.GetCounter("baton_orchestration_cache_misses_total", "Episodes that did not find their orchestration cached");
  util::metrics::Counter& cache_evictions =
      r.GetCounter("baton_orchestration_cache_evictions_total", "Orchestrations evicted from the cache (LRU, memory budget)");
  util::metrics::Counter& started =
      r.GetCounter("baton_orchestrations_started_total", "Orchestration executions started (their first episode ran)");
  util::metrics::Counter& activity_completed =
      r.GetCounter("baton_activity_runs_total", "Activities run in process, by result", {{"result", "completed"}});
  util::metrics::Counter& activity_failed =
      r.GetCounter("baton_activity_runs_total", "Activities run in process, by result", {{"result", "failed"}});
  util::metrics::Histogram& activity_seconds =
      r.GetHistogram("baton_activity_duration_seconds", "Run time of activities run in process");
  util::metrics::Counter& entity_batches =
      r.GetCounter("baton_entity_batches_total", "Entity batches run (in process or by SDK workers)");
  util::metrics::Counter& entity_messages = r.GetCounter(
      "baton_entity_messages_total", "Entity messages processed in batches: operations, signals and lock messages");

  std::array<util::metrics::Counter*, 8> completed = [this] {
    std::array<util::metrics::Counter*, 8> by_status{};
    for (int i = 0; i < 8; ++i) {
      by_status[i] = &r.GetCounter(
          "baton_orchestrations_completed_total", "Orchestration executions that ended, by status",
          {{"status", std::string(OrchestrationStatusName(static_cast<OrchestrationStatus>(i)))}});
    }
    return by_status;
  }();
  util::metrics::Counter& Completed(OrchestrationStatus status) {
    const int i = static_cast<int>(status);
    return *completed[i >= 0 && i < 8 ? i : static_cast<int>(OrchestrationStatus::kFailed)];
  }
};

EngineMetrics& Metrics() {
  static EngineMetrics m;
  return m;
}

}  // namespace

class Worker::Impl {
 public:
  Impl(Store& store, const Registry& registry, WorkerOptions options)
      : store_(store),
        registry_(registry),
        options_(std::move(options)),
        clock_(options_.clock ? options_.clock : SystemClock()),
        cache_(options_.cache_max_bytes, options_.cache_max_bytes == 0 ? 0 : options_.cache_max_instances) {
    collector_ = util::metrics::Default().AddCollector([this](util::metrics::Sink& sink) {
      sink.Gauge("baton_orchestration_cache_instances", "Orchestrations held in the cache", {},
                 static_cast<double>(cache_.size()));
      sink.Gauge("baton_orchestration_cache_bytes", "Estimated memory of the cached orchestrations", {},
                 static_cast<double>(cache_.bytes()));
    });
  }

  ~Impl() {
    util::metrics::Default().RemoveCollector(collector_);
    Stop();
  }

  Status Start() {
    std::lock_guard lock(lifecycle_mu_);
    if (running_) return FailedPreconditionError("worker already started");
    if (options_.orchestration_threads < 1 || options_.activity_threads < 0) {
      return InvalidArgumentError("orchestration_threads must be >= 1 and activity_threads >= 0");
    }
    running_ = true;
    store_.ResumeFetching();
    for (int i = 0; i < options_.orchestration_threads; ++i) {
      threads_.emplace_back([this] { OrchestrationLoop(); });
    }
    for (int i = 0; i < options_.activity_threads; ++i) {
      threads_.emplace_back([this] { ActivityLoop(); });
    }
    return Status::Ok();
  }

  void Stop() {
    std::lock_guard lock(lifecycle_mu_);
    if (!running_) return;
    running_ = false;
    store_.Interrupt();
    for (auto& t : threads_) t.join();
    threads_.clear();
    store_.ResumeFetching();  // the store may serve another worker after this one
    // Wait for the commits of the last episodes and activities.
    std::unique_lock inflight_lock(inflight_mu_);
    inflight_cv_.wait(inflight_lock, [this] { return inflight_ == 0; });
  }

  WorkerStats Stats() const {
    WorkerStats s;
    s.episodes = episodes_.load();
    s.cache_hits = cache_hits_.load();
    s.cache_misses = cache_misses_.load();
    s.cache_evictions = cache_evictions_.load();
    s.replayed_events = replayed_events_.load();
    s.applied_events = applied_events_.load();
    s.activities_executed = activities_executed_.load();
    s.commit_failures = commit_failures_.load();
    s.cached_instances = cache_.size();
    s.cached_bytes = cache_.bytes();
    return s;
  }

 private:
  void OrchestrationLoop() {
    EngineMetrics& m = Metrics();
    while (running_) {
      const auto fetch_start = util::metrics::StartTimer();
      auto item = store_.FetchOrchestrationWorkItem(kFetchWait);
      if (!item.ok()) {
        util::Log().error("fetching orchestration work failed: {}", item.status().ToString());
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        continue;
      }
      if (!item->has_value()) continue;
      m.orchestration_fetched.Inc();
      m.orchestration_fetch_seconds.ObserveSince(fetch_start);
      OrchestrationWorkItem work = std::move(**item);
      try {
        ProcessOrchestration(work);
      } catch (const std::exception& e) {
        util::Log().error("episode of '{}' failed unexpectedly ({}); retrying later",
                          work.instance_id, e.what());
        store_.AbandonOrchestrationWorkItem(work, options_.abandon_delay);
      }
    }
  }

  void ActivityLoop() {
    while (running_) {
      {
        // Bound the results waiting for their commit: a crash loses (and so
        // re-runs) at most that many executed activities. Four per thread
        // keeps the threads busy while a group commit is in flight.
        std::unique_lock lock(activity_results_mu_);
        activity_results_cv_.wait(lock, [this] { return activity_results_pending_ < MaxPendingActivityResults(); });
      }
      const auto fetch_start = util::metrics::StartTimer();
      auto item = store_.FetchActivityWorkItem(kFetchWait);
      if (!item.ok()) {
        util::Log().error("fetching activity work failed: {}", item.status().ToString());
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        continue;
      }
      if (!item->has_value()) continue;
      Metrics().activity_fetched.Inc();
      Metrics().activity_fetch_seconds.ObserveSince(fetch_start);
      RunActivity(std::move(**item));
    }
  }

  void RunActivity(ActivityWorkItem item) {
    const ActivityTask& task = item.task;
    HistoryEvent result;
    const ActivityFn* fn = registry_.FindActivityFor(task.name, task.instance_id);
    if (fn == nullptr && options_.external != nullptr) {
      options_.external->DispatchActivity(std::move(item));
      return;
    }
    if (fn == nullptr) {
      result.body = events::TaskFailed{
          task.task_id, FailureDetails{"ActivityNotFound", "no activity named '" + task.name +
                                                               "' is registered with this worker"}};
    } else {
      ActivityContext ctx(task.name, task.instance_id, task.execution_id, task.task_id, task.input,
                          item.dequeue_count);
      const auto run_start = util::metrics::StartTimer();
      struct Timed {
        util::metrics::Clock::time_point start;
        ~Timed() { Metrics().activity_seconds.ObserveSince(start); }
      } timed{run_start};
      try {
        Json out = (*fn)(ctx);
        result.body = events::TaskCompleted{task.task_id, ToPayload(out)};
      } catch (const DurableError& e) {
        result.body = events::TaskFailed{task.task_id, e.details()};
      } catch (const std::exception& e) {
        result.body = events::TaskFailed{task.task_id, FailureDetails{Demangle(typeid(e).name()), e.what()}};
      } catch (...) {
        result.body = events::TaskFailed{
            task.task_id, FailureDetails{"UnknownError", "the activity threw a value that is not a std::exception"}};
      }
    }
    ++activities_executed_;
    (std::holds_alternative<events::TaskCompleted>(result.body) ? Metrics().activity_completed
                                                                 : Metrics().activity_failed)
        .Inc();
    TimePoint now = clock_->Now();
    result.timestamp = now;
    Message message{0, task.instance_id, task.execution_id, now, std::move(result)};
    BeginCommit();
    {
      std::lock_guard lock(activity_results_mu_);
      ++activity_results_pending_;
    }
    store_.CompleteActivityWorkItem(item, std::move(message), [this, commit_start = util::metrics::StartTimer()](
                                                                  const Status& st) {
      Metrics().activity_commit_seconds.ObserveSince(commit_start);
      if (!st.ok()) {
        Metrics().commit_failures.Inc();
        util::Log().warn("activity result not recorded: {}", st.ToString());
      }
      {
        std::lock_guard lock(activity_results_mu_);
        --activity_results_pending_;
      }
      activity_results_cv_.notify_one();
      EndCommit();
    });
  }

  // One batch of a durable entity's messages, committed like an episode.
  void ProcessEntity(OrchestrationWorkItem& item) {
    auto row = store_.GetInstance(item.instance_id, /*include_payloads=*/true);
    if (!row.ok()) {
      store_.AbandonOrchestrationWorkItem(item, options_.abandon_delay);
      return;
    }
    const TimePoint now = clock_->Now();
    ++episodes_;
    applied_events_ += item.messages.size();
    Metrics().episodes.Inc();
    Metrics().entity_batches.Inc();
    Metrics().entity_messages.Inc(item.messages.size());
    if (options_.external != nullptr) {
      auto name = EntityId::FromInstanceId(item.instance_id);
      if (name && registry_.FindEntity(name->name) == nullptr) {
        engine::EntityBatchPlan plan = engine::PlanEntityBatch(item.instance_id, row->output, item.messages, now);
        if (!plan.operations.empty()) {
          DispatchExternalEntity(item, std::move(plan), now);
          return;
        }
        // Only the lock protocol moved: nothing for a worker to run.
        const bool has_state = plan.has_state;
        Json state = plan.state;
        CommitEntityBatch(item, engine::FinishEntityBatch(std::move(plan), has_state, std::move(state), {}, now));
        return;
      }
    }
    CommitEntityBatch(item, engine::RunEntityBatch(registry_, item.instance_id, row->output, item.messages, now));
  }

  static OrchestrationUpdate EntityUpdate(const OrchestrationWorkItem& item, engine::EntityBatch batch, bool sync) {
    OrchestrationUpdate update;
    update.execution_id = item.instance.execution_id;
    update.status = OrchestrationStatus::kRunning;
    update.output = std::move(batch.state);
    update.outbox = std::move(batch.outbox);
    update.sync = sync;
    return update;
  }

  void DispatchExternalEntity(const OrchestrationWorkItem& item, engine::EntityBatchPlan plan, TimePoint now) {
    ExternalEntityWork work;
    work.item = item;
    work.has_state = plan.has_state;
    work.state = plan.has_state ? plan.state.dump() : std::string();
    work.operations = plan.operations;
    auto shared = std::make_shared<engine::EntityBatchPlan>(std::move(plan));
    // Called by the dispatcher, possibly after this worker stopped: it
    // captures nothing of the worker.
    work.finish = [shared, item, now, sync = options_.sync_every_episode](
                      bool has_state, std::string state, std::vector<EntityOperationResult> results) {
      Json parsed;
      // Not JSON (or nested too deeply to handle safely): kept as a string.
      if (has_state) parsed = state.empty() ? Json(std::string()) : FromPayload(state);
      return EntityUpdate(item, engine::FinishEntityBatch(*shared, has_state, std::move(parsed), std::move(results), now),
                          sync);
    };
    options_.external->DispatchEntity(std::move(work));
  }

  void CommitEntityBatch(OrchestrationWorkItem& item, engine::EntityBatch batch) {
    OrchestrationUpdate update = EntityUpdate(item, std::move(batch), options_.sync_every_episode);
    BeginCommit();
    store_.CompleteOrchestrationWorkItem(item, std::move(update), [this, id = item.instance_id,
                                                                   commit_start = util::metrics::StartTimer()](
                                                                      const Status& st) {
      Metrics().orchestration_commit_seconds.ObserveSince(commit_start);
      if (!st.ok()) {
        Metrics().commit_failures.Inc();
        ++commit_failures_;
        util::Log().warn("batch of entity '{}' was not committed: {}", id, st.ToString());
      }
      EndCommit();
    });
  }

  void ProcessOrchestration(OrchestrationWorkItem& item) {
    const std::string& id = item.instance_id;
    if (IsEntityInstanceId(id)) {
      ProcessEntity(item);
      return;
    }
    if (RewindRequested(item) && item.history_size > 0 &&
        (item.instance.status == OrchestrationStatus::kPending || item.instance.status == OrchestrationStatus::kFailed)) {
      if (Rewind(item)) return;  // false: nothing ended, nothing to rewind (a repeated request)
    }
    if (options_.external != nullptr && registry_.FindOrchestratorFor(item.instance.name, id) == nullptr) {
      DispatchExternal(item);
      return;
    }
    {
      // The previous episode's commit may be visible to the store (the lease
      // is released) before its callback has put the executor back in the
      // cache; wait for that callback rather than rebuild by replay.
      std::unique_lock lock(committing_mu_);
      committing_cv_.wait(lock, [&] { return !committing_.contains(id); });
    }
    std::shared_ptr<engine::CachedOrchestration> entry = cache_.Take(id);
    if (entry && entry->execution_id == item.instance.execution_id &&
        entry->history_generation == item.history_generation &&
        entry->history_size == item.history_size) {
      ++cache_hits_;
      Metrics().cache_hits.Inc();
    } else {
      ++cache_misses_;
      Metrics().cache_misses.Inc();
      // A first episode has no history to load (the lease keeps it so): no
      // round trip to the store for it.
      Result<std::vector<HistoryEvent>> history =
          item.history_size == 0 ? Result<std::vector<HistoryEvent>>(std::vector<HistoryEvent>())
                                 : store_.GetHistory(id);
      if (!history.ok()) {
        util::Log().warn("cannot load history of '{}': {}", id, history.status().ToString());
        store_.AbandonOrchestrationWorkItem(item, options_.abandon_delay);
        return;
      }
      entry = std::make_shared<engine::CachedOrchestration>();
      entry->executor = std::make_unique<core::Executor>(LookupFor(id), id);
      for (const HistoryEvent& e : *history) entry->executor->Apply(e, /*replaying=*/true);
      entry->execution_id = item.instance.execution_id;
      entry->history_generation = item.history_generation;
      entry->history_size = static_cast<int64_t>(history->size());
      replayed_events_ += history->size();
      if (!history->empty()) {
        Metrics().replays.Inc();
        Metrics().replayed_events.Inc(history->size());
      }
    }
    core::Executor& executor = *entry->executor;

    if (IsTerminal(item.instance.status)) {
      // Late messages for a finished instance (a result of an abandoned
      // timer, an event raced with completion): consume them, change nothing.
      ConsumeOnly(item);
      return;
    }

    const TimePoint now = clock_->Now();
    std::chrono::milliseconds wait{0};
    std::optional<std::vector<HistoryEvent>> episode_events = EpisodeEvents(item, executor.Started(), now, &wait);
    if (!episode_events) {
      cache_.Put(id, std::move(entry));
      store_.AbandonOrchestrationWorkItem(item, wait);
      return;
    }
    std::vector<HistoryEvent> new_events = std::move(*episode_events);

    for (const HistoryEvent& e : new_events) executor.Apply(e, /*replaying=*/false);
    applied_events_ += new_events.size();
    ++episodes_;
    Metrics().episodes.Inc();
    core::Episode episode = executor.TakeEpisode();

    OrchestrationUpdate update;
    update.execution_id = item.instance.execution_id;
    update.new_events = std::move(new_events);
    engine::AddActions(episode.actions, id, update.execution_id, executor.Name(), now, update);

    int generations = 0;
    while (episode.completion &&
           episode.completion->status == OrchestrationStatus::kContinuedAsNew) {
      if (++generations > kMaxContinueAsNewGenerations) {
        episode.completion = core::Completion{};
        episode.completion->status = OrchestrationStatus::kFailed;
        episode.completion->failure = FailureDetails{
            "ContinueAsNewLoop", "the orchestrator continued as new " +
                                     std::to_string(kMaxContinueAsNewGenerations) +
                                     " times in one episode without awaiting anything"};
        break;
      }
      episode = StartNextGeneration(*entry, id, *episode.completion, now, update);
    }
    engine::FinishEpisode(episode, entry->executor->Parent(), id, now, options_.sync_every_episode, update);

    const bool terminal = IsTerminal(update.status);
    entry->execution_id = update.execution_id;
    entry->history_generation = item.history_generation + (update.reset_history ? 1 : 0);
    entry->history_size = (update.reset_history ? 0 : item.history_size) +
                          static_cast<int64_t>(update.new_events.size());
    BeginCommit();
    {
      std::lock_guard lock(committing_mu_);
      committing_.insert(id);
    }
    const OrchestrationStatus final_status = update.status;
    store_.CompleteOrchestrationWorkItem(
        item, std::move(update),
        [this, id, entry, terminal, final_status, commit_start = util::metrics::StartTimer()](const Status& st) {
          EngineMetrics& m = Metrics();
          m.orchestration_commit_seconds.ObserveSince(commit_start);
          if (st.ok()) {
            if (terminal) {
              m.Completed(final_status).Inc();
            } else {
              const size_t evicted = cache_.Put(id, entry);
              cache_evictions_ += evicted;
              if (evicted > 0) m.cache_evictions.Inc(evicted);
            }
          } else {
            m.commit_failures.Inc();
            ++commit_failures_;
            util::Log().warn("episode of '{}' was not committed: {}", id, st.ToString());
          }
          {
            std::lock_guard lock(committing_mu_);
            committing_.erase(id);
          }
          committing_cv_.notify_all();
          EndCommit();
        });
  }

  // The events of the next episode: OrchestratorStarted at `now`, then the
  // messages that belong to the current execution (a repeated start
  // dropped). Nullopt when the instance has not started and nothing in the
  // messages starts or ends it: events that arrived before a scheduled start
  // wait for it, and `*wait` says how long (abandon the item for that long).
  std::optional<std::vector<HistoryEvent>> EpisodeEvents(const OrchestrationWorkItem& item, bool started,
                                                         TimePoint now, std::chrono::milliseconds* wait) {
    std::vector<HistoryEvent> new_events;
    new_events.reserve(item.messages.size() + 2);
    new_events.push_back(HistoryEvent{-1, now, events::OrchestratorStarted{}});
    bool has_start = false;
    bool has_terminate = false;
    for (const Message& m : item.messages) {
      if (!m.execution_id.empty() && m.execution_id != item.instance.execution_id) continue;
      if (std::holds_alternative<events::ExecutionStarted>(m.event.body)) {
        if (started || has_start) continue;  // duplicate delivery
        has_start = true;
      }
      if (std::holds_alternative<events::ExecutionTerminated>(m.event.body)) has_terminate = true;
      new_events.push_back(m.event);
    }
    if (has_start) Metrics().started.Inc();
    if (!started && !has_start && !has_terminate) {
      *wait = std::chrono::milliseconds(1000);
      if (item.instance.scheduled_start && *item.instance.scheduled_start > now) {
        *wait = std::chrono::duration_cast<std::chrono::milliseconds>(*item.instance.scheduled_start - now);
      }
      return std::nullopt;
    }
    return new_events;
  }

  // An episode for an external worker: the same checks as a local one, then
  // the dispatcher owns the item.
  void DispatchExternal(OrchestrationWorkItem& item) {
    if (IsTerminal(item.instance.status)) {
      ConsumeOnly(item);
      return;
    }
    Result<std::vector<HistoryEvent>> history =
        options_.external
            ->CachedHistory(item.instance_id, item.instance.execution_id, item.history_generation,
                            item.history_size)
            .value_or(std::vector<HistoryEvent>{});
    if (history->empty() && item.history_size > 0) history = store_.GetHistory(item.instance_id);
    if (!history.ok()) {
      util::Log().warn("cannot load history of '{}': {}", item.instance_id, history.status().ToString());
      store_.AbandonOrchestrationWorkItem(item, options_.abandon_delay);
      return;
    }
    const bool started = std::any_of(history->begin(), history->end(), [](const HistoryEvent& e) {
      return std::holds_alternative<events::ExecutionStarted>(e.body);
    });
    std::chrono::milliseconds wait{0};
    std::optional<std::vector<HistoryEvent>> episode_events = EpisodeEvents(item, started, clock_->Now(), &wait);
    if (!episode_events) {
      store_.AbandonOrchestrationWorkItem(item, wait);
      return;
    }
    ExternalOrchestrationWork work;
    work.new_events = std::move(*episode_events);
    if (work.new_events.size() == 1) {  // only stale messages: consume them
      ConsumeOnly(item);
      return;
    }
    ++episodes_;
    Metrics().episodes.Inc();
    work.past_events = std::move(*history);
    work.item = std::move(item);
    options_.external->DispatchOrchestration(std::move(work));
  }

  // Runs the next generation of a continued-as-new instance in place: its
  // history replaces the old one in the same commit. Messages and tasks the
  // old generation sent in this episode are still sent.
  core::Episode StartNextGeneration(engine::CachedOrchestration& entry, const std::string& instance_id,
                                    const core::Completion& completion, TimePoint now,
                                    OrchestrationUpdate& update) {
    const core::Executor& old = *entry.executor;
    events::ExecutionStarted started;
    started.name = old.Name();
    started.version = old.Version();
    started.input = completion.result;
    started.instance_id = instance_id;
    started.execution_id = util::NewExecutionId();
    started.parent = old.Parent();
    std::vector<HistoryEvent> history;
    history.reserve(2 + completion.carryover_events.size());
    history.push_back(HistoryEvent{-1, now, events::OrchestratorStarted{}});
    history.push_back(HistoryEvent{-1, now, started});
    for (const HistoryEvent& e : completion.carryover_events) history.push_back(e);

    auto fresh = std::make_unique<core::Executor>(LookupFor(instance_id), instance_id);
    for (const HistoryEvent& e : history) fresh->Apply(e, /*replaying=*/false);
    applied_events_ += history.size();
    core::Episode episode = fresh->TakeEpisode();

    update.reset_history = true;
    update.new_events = std::move(history);
    update.execution_id = started.execution_id;
    update.input = started.input;
    entry.executor = std::move(fresh);
    engine::AddActions(episode.actions, instance_id, update.execution_id, started.name, now, update);
    return episode;
  }

  static const events::ExecutionRewound* RewindRequested(const OrchestrationWorkItem& item) {
    for (const Message& m : item.messages) {
      if (const auto* r = std::get_if<events::ExecutionRewound>(&m.event.body)) return r;
    }
    return nullptr;
  }

  // Rewinds a Failed instance (core/rewind.h), for in-process and external
  // orchestrators alike: commits the rewritten history with the instance
  // Running again, and sends the instance an ExecutionRewound that starts
  // its next episode (the orchestrator replays and schedules again what
  // failed), and one to each failed child.
  bool Rewind(const OrchestrationWorkItem& item) {
    const std::string& id = item.instance_id;
    const TimePoint now = clock_->Now();
    auto plan = engine::PlanRewind(store_, id, item.instance.execution_id, now);
    auto state = store_.GetInstance(id, /*include_payloads=*/true);
    if (!plan.ok() || !state.ok()) {
      store_.AbandonOrchestrationWorkItem(item, options_.abandon_delay);
      return true;
    }
    if (!plan->ended) return false;
    const std::string reason = RewindRequested(item)->reason;
    if (!plan->refusal.empty()) {
      // Client::Rewind checks the same; a child rewound by its parent may not.
      util::Log().warn("instance '{}' stays Failed: {}", id, plan->refusal);
      ConsumeOnly(item, OrchestrationStatus::kFailed);
      return true;
    }
    cache_.Take(id);  // the failed run's executor, if any, is stale
    OrchestrationUpdate update;
    update.execution_id = item.instance.execution_id;
    update.status = OrchestrationStatus::kRunning;
    update.input = state->input;  // reset_history rewrites the input column too
    update.custom_status = state->custom_status;
    update.reset_history = true;
    update.new_events = std::move(plan->events);
    update.outbox.push_back(Message{0, id, update.execution_id, now, HistoryEvent{-1, now, events::ExecutionRewound{reason}}});
    for (Message& m : plan->answers) update.outbox.push_back(std::move(m));
    // What else arrived meanwhile (an event, a terminate) is for the rewound
    // run: sent again, after the jump-start. Answers are not: the tasks and
    // timers they answer are scheduled anew, the children answer again.
    for (const Message& m : item.messages) {
      if (std::holds_alternative<events::ExecutionRewound>(m.event.body) || engine::IsAnswer(m.event.body)) continue;
      Message again = m;
      again.seq = 0;
      update.outbox.push_back(std::move(again));
    }
    for (const std::string& child : plan->rewind_children) {
      update.outbox.push_back(Message{0, child, "", now, HistoryEvent{-1, now, events::ExecutionRewound{reason}}});
    }
    update.sync = true;
    util::Log().info("rewinding '{}' ({} children rewound, {} created anew)", id, plan->rewind_children.size(),
                     plan->recreated);
    BeginCommit();
    store_.CompleteOrchestrationWorkItem(item, std::move(update), [this, id](const Status& st) {
      if (!st.ok()) util::Log().warn("rewind of '{}' was not committed: {}", id, st.ToString());
      EndCommit();
    });
    return true;
  }

  // Consumes the item's messages and changes nothing, but the status when
  // `status` is given (a refused rewind puts back Failed).
  void ConsumeOnly(const OrchestrationWorkItem& item, std::optional<OrchestrationStatus> status = std::nullopt) {
    auto state = store_.GetInstance(item.instance_id, /*include_payloads=*/true);
    if (!state.ok()) {
      store_.AbandonOrchestrationWorkItem(item, options_.abandon_delay);
      return;
    }
    OrchestrationUpdate update;
    update.execution_id = state->execution_id;
    update.status = status.value_or(state->status);
    update.consume_only = !status.has_value();  // never write back a status read before the commit
    update.output = state->output;
    update.custom_status = state->custom_status;
    update.failure = state->failure;
    update.sync = false;
    ReleaseLateLocks(item, update);
    BeginCommit();
    store_.CompleteOrchestrationWorkItem(item, std::move(update), [this](const Status&) { EndCommit(); });
  }

  // A lock granted to an orchestration that has already ended (it asked,
  // then was terminated) is released at once, so the entities stay usable.
  void ReleaseLateLocks(const OrchestrationWorkItem& item, OrchestrationUpdate& update) {
    std::vector<std::string> granted;
    for (const Message& m : item.messages) {
      if (const auto* g = std::get_if<events::EntityLockGranted>(&m.event.body)) {
        granted.push_back(g->critical_section_id);
      }
    }
    if (granted.empty()) return;
    auto history = store_.GetHistory(item.instance_id);
    if (!history.ok()) return;
    const TimePoint now = clock_->Now();
    for (const HistoryEvent& e : *history) {
      const auto* request = std::get_if<events::EntityLockRequested>(&e.body);
      if (request == nullptr ||
          std::find(granted.begin(), granted.end(), request->critical_section_id) == granted.end()) {
        continue;
      }
      for (const std::string& target : request->lock_set) {
        update.outbox.push_back(Message{
            0, target, "", now,
            HistoryEvent{-1, now, events::EntityUnlockSent{request->critical_section_id, item.instance_id, target}}});
      }
    }
  }

  void BeginCommit() {
    std::lock_guard lock(inflight_mu_);
    ++inflight_;
  }
  void EndCommit() {
    std::lock_guard lock(inflight_mu_);
    if (--inflight_ == 0) inflight_cv_.notify_all();
  }

  Store& store_;
  const Registry& registry_;
  const WorkerOptions options_;
  std::shared_ptr<Clock> clock_;
  engine::OrchestrationCache cache_;
  // The orchestrators an instance may run: platform ones only in the
  // default hub (Registry::FindOrchestratorFor).
  core::OrchestratorLookup LookupFor(const std::string& instance_id) const {
    return [this, instance_id](std::string_view name) { return registry_.FindOrchestratorFor(name, instance_id); };
  }

  std::mutex lifecycle_mu_;
  std::atomic<bool> running_{false};
  std::vector<std::thread> threads_;

  int MaxPendingActivityResults() const { return std::max(1, 4 * options_.activity_threads); }

  std::mutex activity_results_mu_;
  std::condition_variable activity_results_cv_;
  int activity_results_pending_ = 0;

  // Instances whose episode commit has not yet called back.
  std::mutex committing_mu_;
  std::condition_variable committing_cv_;
  std::unordered_set<std::string> committing_;

  std::mutex inflight_mu_;
  std::condition_variable inflight_cv_;
  int64_t inflight_ = 0;

  uint64_t collector_ = 0;
  std::atomic<uint64_t> episodes_{0}, cache_hits_{0}, cache_misses_{0}, cache_evictions_{0},
      replayed_events_{0}, applied_events_{0}, activities_executed_{0}, commit_failures_{0};
};

Worker::Worker(Store& store, const Registry& registry, WorkerOptions options)
    : impl_(std::make_unique<Impl>(store, registry, std::move(options))) {}
Worker::~Worker() = default;
Status Worker::Start() { return impl_->Start(); }
void Worker::Stop() { impl_->Stop(); }
WorkerStats Worker::Stats() const { return impl_->Stats(); }

}  // namespace baton
