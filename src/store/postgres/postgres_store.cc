#include "baton/postgres_store.h"
#include "baton/store_reader.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <cctype>
#include <cstdlib>
#include <random>
#include <set>
#include <string_view>
#include <utility>
#include <variant>

#include "baton/json.h"
#include "store/migrations.h"
#include "store/postgres/migrations.h"
#include "store/postgres/postgres_store_impl.h"
#include "store/instance_query.h"
#include "util/hex.h"
#include "util/log.h"
#include "util/node_id.h"
#include "util/metrics.h"

namespace baton {
namespace pg {
namespace {

constexpr size_t kMaxInstanceIdLength = 256;
// Bounds one work item, as in the SQLite store.
constexpr int kMaxMessagesPerWorkItem = 10000;
constexpr int kPurgeChunk = 1000;
// Deadlocks and serialization failures roll back everything; the call is
// retried this many times.
constexpr int kMaxRetries = 10;
// At most this many queued commits go in one transaction (one round trip).
constexpr size_t kMaxCommitBatch = 8;
// ... and at most this many bytes of parameters (a bigger call goes alone):
// what a batch sends fits in the socket's buffer (PgConnection::ExecPipeline).
constexpr size_t kMaxCommitBatchBytes = 64 * 1024;
// A NOTIFY payload must stay below 8000 bytes.
constexpr size_t kMaxNotifyPayload = 7000;
// commit_log rows live this long: far longer than any wait for an outcome.
constexpr int64_t kCommitLogRetentionUs = 15LL * 60 * 1'000'000;
constexpr auto kPruneEvery = std::chrono::minutes(1);
// How often a node looks at the database's sessions for nodes that died, and
// how long all of a node's sessions must have been gone before its leases
// are released (longer than a reconnect after a blip).
constexpr auto kWatchPeersEvery = std::chrono::milliseconds(500);
constexpr auto kPeerGoneFor = std::chrono::seconds(3);
// Sessions of a node carry this prefix and its id in application_name.
constexpr std::string_view kNodeSessionPrefix = "baton node ";
// Whether a node with this id names its sessions after it: the id fits in
// application_name (63 bytes) and needs no quoting. Only such nodes are
// watched (WatchPeers).
bool NamesItsSessions(std::string_view node_id) {
  return !node_id.empty() && node_id.size() <= 63 - kNodeSessionPrefix.size() &&
         std::all_of(node_id.begin(), node_id.end(), [](char ch) {
           return std::isalnum(static_cast<unsigned char>(ch)) ||
                  std::string_view("._:@/-").find(ch) != std::string_view::npos;
         });
}
// Serializes concurrent migrators ("baton" in ASCII).
constexpr int64_t kMigrationLockKey = 0x6261746f6e;

constexpr const char* kWorkChannel = "baton_work";
constexpr const char* kStatusChannel = "baton_status";

// ---- Statements (functions of migrations/0001_task_hub.sql) ----
const Statement kStartInstance{
    "baton_start_instance",
    "SELECT * FROM baton_start_instance($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::text[], $11, $12, "
    "$13)"};
const Statement kLeaseHolder{
    "baton_lease_holder",
    "SELECT lock_token FROM instance_queue WHERE instance_id = $1 AND locked_by = $2 "
    "AND lock_token IS NOT NULL"};
const Statement kSendMessage{"baton_send_message",
                             "SELECT baton_send_message($1, $2, $3, $4, $5, $6, $7, $8)"};
const Statement kPurgeInstance{"baton_purge_instance",
                               "SELECT baton_purge_instance($1, $2, $3, $4)"};
const Statement kPurgeInstances{"baton_purge_instances",
                                "SELECT baton_purge_instances($1, $2, $3::text[], $4, $5, $6, $7)"};
const Statement kClaimInstance{"baton_claim_instance",
                               "SELECT * FROM baton_claim_instance($1, $2, $3, $4)"};
const Statement kCompleteOrchestration{
    "baton_complete_orchestration",
    "SELECT * FROM baton_complete_orchestration($1, $2, $3, $4, $5::bigint[], $6, $7, $8, $9, $10, "
    "$11, $12, $13, $14, $15, $16::jsonb, $17::jsonb, $18, $19, $20)"};
const Statement kClaimInstances{"baton_claim_instances",
                                "SELECT * FROM baton_claim_instances($1, $2, $3, $4, $5)"};
const Statement kAbandonInstance{"baton_abandon_instance",
                                 "SELECT baton_abandon_instance($1, $2, $3, $4)"};
const Statement kClaimTask{"baton_claim_task", "SELECT * FROM baton_claim_task($1, $2, $3)"};
const Statement kCompleteTask{
    "baton_complete_task",
    "SELECT * FROM baton_complete_task($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"};
const Statement kAbandonTask{"baton_abandon_task", "SELECT baton_abandon_task($1, $2, $3, $4)"};
const Statement kRenewLeases{"baton_renew_leases",
                             "SELECT * FROM baton_renew_leases($1, $2, $3::text[], $4::bigint[], "
                             "$5::bigint[], $6::bigint[])"};
const Statement kReleaseLeases{
    "baton_release_leases",
    "SELECT baton_release_leases($1::text[], $2::bigint[], $3::bigint[], $4::bigint[])"};
const Statement kCommitLanded{"baton_commit_landed",
                              "SELECT EXISTS (SELECT 1 FROM commit_log WHERE commit_key = $1)"};
const Statement kSessionAlive{
    "baton_session_alive",
    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND backend_start::text = $2)"};
const Statement kReleaseNodeLeases{"baton_release_node_leases",
                                   "SELECT * FROM baton_release_node_leases($1, $2)"};
const Statement kPruneCommitLog{
    "baton_prune_commit_log",
    "DELETE FROM commit_log WHERE committed_at < coalesce($1, baton_now()) - $2"};

// Reads: the state columns first, the payload columns after, as in SQLite.
constexpr const char* kStateColumns =
    "instance_id, name, version, execution_id, status, created_at, updated_at, completed_at, "
    "scheduled_start, parent_instance_id, history_size";
constexpr const char* kPayloadColumns = ", input, output, custom_status, failure";
// Last, after the payload columns when there are any (DecodeState's with_tags).
constexpr const char* kTagsColumn = ", tags";
const std::string kGetInstanceSql =
    std::string("SELECT ") + kStateColumns + kTagsColumn + " FROM instances WHERE instance_id = $1";
const std::string kGetInstanceWithPayloadsSql = std::string("SELECT ") + kStateColumns +
                                                kPayloadColumns + kTagsColumn +
                                                " FROM instances WHERE instance_id = $1";
const Statement kGetInstance{"baton_get_instance", kGetInstanceSql.c_str()};
const Statement kGetInstanceWithPayloads{"baton_get_instance_payloads",
                                         kGetInstanceWithPayloadsSql.c_str()};
// One statement, so the existence check and the chunks share a snapshot.
const Statement kGetHistory{"baton_get_history",
                            "SELECT h.position, h.events FROM instances i LEFT JOIN history h "
                            "ON h.instance_id = i.instance_id AND h.execution_id = i.execution_id "
                            "WHERE i.instance_id = $1 ORDER BY h.position"};

bool IsUnset(TimePoint t) { return t == TimePoint{}; }
TimePoint TruncateToMicros(TimePoint t) { return FromUnixMicros(ToUnixMicros(t)); }

std::vector<OrchestrationStatus> TerminalStatuses() {
  return {OrchestrationStatus::kCompleted, OrchestrationStatus::kFailed,
          OrchestrationStatus::kTerminated, OrchestrationStatus::kCanceled};
}

std::string TagsJson(const std::map<std::string, std::string>& tags) {
  if (tags.empty()) return std::string();
  Json j = Json::object();
  for (const auto& [k, v] : tags) j[k] = v;
  return j.dump();
}

// The tags column ("" or a JSON object of strings) as a map; DataLoss when
// it is something else.
Status DecodeTags(std::string_view text, const std::string& instance_id, std::map<std::string, std::string>* out) {
  if (text.empty()) return Status::Ok();
  Json j;
  if (Status s = ParseJson(text, &j); !s.ok() || !j.is_object()) {
    return DataLossError("instance '" + instance_id + "' has tags that are not a JSON object");
  }
  for (const auto& [k, v] : j.items()) {
    if (!v.is_string()) return DataLossError("instance '" + instance_id + "' has a tag that is not a string");
    (*out)[k] = v.get<std::string>();
  }
  return Status::Ok();
}

// The entity name of "[hub::]@name@key", for the row its first message
// creates; "" when `instance_id` is not an entity's.
std::string EntityNameOf(const std::string& instance_id) {
  if (!IsEntityInstanceId(instance_id)) return std::string();
  std::string_view hub = HubOf(instance_id);
  std::string_view local =
      std::string_view(instance_id).substr(hub.empty() ? 0 : hub.size() + kHubSeparator.size());
  size_t second = local.find('@', 1);
  return std::string(local.substr(1, second - 1));
}

// Kind of a message for baton_deliver: 1 ExecutionStarted, 2 ExecutionRewound.
int DeliveryKind(const HistoryEvent& event) {
  if (std::holds_alternative<events::ExecutionStarted>(event.body)) return 1;
  if (std::holds_alternative<events::ExecutionRewound>(event.body)) return 2;
  return 0;
}

// Decodes kStateColumns (and kPayloadColumns) of `row`, starting at column
// `at`.
Result<InstanceState> DecodeState(const PgResult& r, int row, bool include_payloads,
                                  int64_t* history_size, int at = 0, bool with_tags = false) {
  InstanceState s;
  s.instance_id = r.Text(row, at + 0);
  s.name = r.Text(row, at + 1);
  s.version = r.Text(row, at + 2);
  s.execution_id = r.Text(row, at + 3);
  std::string_view status = r.View(row, at + 4);
  if (!ParseOrchestrationStatus(status, &s.status)) {
    return DataLossError("instance '" + s.instance_id + "' has unknown status '" +
                         std::string(status) + "'");
  }
  s.created_at = FromUnixMicros(r.Int(row, at + 5));
  s.last_updated_at = FromUnixMicros(r.Int(row, at + 6));
  if (!r.IsNull(row, at + 7)) s.completed_at = FromUnixMicros(r.Int(row, at + 7));
  if (!r.IsNull(row, at + 8)) s.scheduled_start = FromUnixMicros(r.Int(row, at + 8));
  s.parent_instance_id = r.Text(row, at + 9);
  if (history_size != nullptr) *history_size = r.Int(row, at + 10);
  if (include_payloads) {
    s.input = r.Text(row, 11);
    s.output = r.Text(row, 12);
    s.custom_status = r.Text(row, 13);
    if (!r.IsNull(row, 14)) {
      Result<FailureDetails> f = ParseFailure(r.View(row, 14));
      if (!f.ok())
        return DataLossError("instance '" + s.instance_id + "': " + f.status().message());
      s.failure = std::move(f).value();
    }
  }
  if (with_tags) BATON_RETURN_IF_ERROR(DecodeTags(r.View(row, include_payloads ? 15 : 11), s.instance_id, &s.tags));
  return s;
}

std::string DefaultNodeId() { return util::ProcessNodeId(); }

// The SQL of QueryInstances (its parameters into `p`), and the decoding of
// its rows and of GetHistory's: shared by the store and its read-only reader
// (OpenPostgresStoreReader).
using QueryReader = std::function<Result<PgResult>(const std::string& sql, const Params& p, const char* what)>;

Result<QueryPage> QueryInstancesWith(const InstanceQuery& query, const QueryReader& read) {
  BATON_ASSIGN_OR_RETURN(store::QueryCursor cursor, store::InstanceQueryStart(query));
  // Every condition but the statuses and the cursor, appended to `p`: the
  // page and the per-status counts share it.
  auto filter = [&query](Params& p, int& n) {
    std::string sql;
    if (query.created_from) {
      sql += " AND created_at >= $" + std::to_string(++n);
      p.Int(ToUnixMicros(*query.created_from));
    }
    if (query.created_to) {
      sql += " AND created_at < $" + std::to_string(++n);
      p.Int(ToUnixMicros(*query.created_to));
    }
    if (!query.instance_id_prefix.empty()) {
      sql += " AND starts_with(instance_id, $" + std::to_string(++n) + ")";
      p.Text(query.instance_id_prefix);
      // The same range as an index condition (byte order, "C" collation).
      sql += " AND instance_id >= $" + std::to_string(n);
    }
    if (!query.name_prefix.empty()) {
      sql += " AND starts_with(name, $" + std::to_string(++n) + ")";
      p.Text(query.name_prefix);
    }
    if (query.exclude_entities) {
      // IsEntityInstanceId in SQL: the id, or its part after the hub's "::",
      // is "@name@key".
      sql +=
          " AND NOT (instance_id LIKE '@%@%' OR (strpos(instance_id, '::') > 0 AND "
          "substr(instance_id, strpos(instance_id, '::') + 2) LIKE '@%@%'))";
    }
    return sql;
  };
  Params p;
  int n = 0;
  std::string sql = std::string("SELECT ") + kStateColumns;
  if (query.include_payloads) sql += kPayloadColumns;
  sql += kTagsColumn;
  sql += " FROM instances WHERE true" + filter(p, n);
  if (!query.statuses.empty()) {
    std::vector<std::string> names;
    for (OrchestrationStatus s : query.statuses) names.emplace_back(OrchestrationStatusName(s));
    sql += " AND status = ANY ($" + std::to_string(++n) + "::text[])";
    p.TextArray(names);
  }
  switch (query.order) {
    case InstanceOrder::kInstanceId:
      if (cursor.has_cursor) {
        sql += " AND instance_id > $" + std::to_string(++n);
        p.Text(cursor.instance_id);
      }
      sql += " ORDER BY instance_id";
      break;
    case InstanceOrder::kNewestFirst:
    case InstanceOrder::kOldestFirst: {
      const bool newest = query.order == InstanceOrder::kNewestFirst;
      if (cursor.has_cursor) {
        // A row comparison: one index range on (created_at, instance_id).
        sql += std::string(" AND (created_at, instance_id) ") + (newest ? "<" : ">") + " ($" +
               std::to_string(n + 1) + "::bigint, $" + std::to_string(n + 2) + ")";
        n += 2;
        p.Int(cursor.created_micros).Text(cursor.instance_id);
      }
      sql += newest ? " ORDER BY created_at DESC, instance_id DESC" : " ORDER BY created_at, instance_id";
      break;
    }
  }
  sql += " LIMIT " + std::to_string(query.page_size + 1);
  BATON_ASSIGN_OR_RETURN(PgResult r, read(sql, p, "query instances"));
  QueryPage page;
  for (int row = 0; row < r.rows(); ++row) {
    if (static_cast<int>(page.instances.size()) == query.page_size) {
      page.continuation_token = store::EncodeQueryCursor(query, page.instances.back());
      break;
    }
    BATON_ASSIGN_OR_RETURN(InstanceState s, DecodeState(r, row, query.include_payloads, nullptr, 0, /*with_tags=*/true));
    page.instances.push_back(std::move(s));
  }
  if (query.count_by_status) {
    Params cp;
    int cn = 0;
    std::string count_sql = "SELECT status, count(*) FROM instances WHERE true" + filter(cp, cn) + " GROUP BY status";
    BATON_ASSIGN_OR_RETURN(PgResult counts, read(count_sql, cp, "count instances"));
    for (int row = 0; row < counts.rows(); ++row) {
      OrchestrationStatus status;
      if (!ParseOrchestrationStatus(counts.Text(row, 0), &status)) continue;
      page.status_counts.emplace_back(status, counts.Int(row, 1));
    }
    std::sort(page.status_counts.begin(), page.status_counts.end());
  }
  return page;
}

Result<std::vector<HistoryEvent>> DecodeHistory(const PgResult& r, const std::string& instance_id) {
  if (r.rows() == 0) return NotFoundError("instance '" + instance_id + "' does not exist");
  std::vector<HistoryEvent> history;
  for (int row = 0; row < r.rows(); ++row) {
    if (r.IsNull(row, 1)) continue;  // no history yet
    Result<std::vector<HistoryEvent>> chunk = ParseEvents(r.View(row, 1));
    if (!chunk.ok()) {
      return DataLossError("history of instance '" + instance_id + "', position " +
                           std::to_string(r.Int(row, 0)) + ": " + chunk.status().message());
    }
    for (HistoryEvent& e : chunk.value()) history.push_back(std::move(e));
  }
  return history;
}

}  // namespace

// ---------------------------------------------------------------------------
// Migrations.

int LatestSchemaVersion() { return store::LatestVersion(kPostgresMigrations); }

Result<SchemaVersion> Migrate(PgConnection& conn) {
  BATON_RETURN_IF_ERROR(conn.Exec("BEGIN", "begin migration").status());
  auto fail = [&](Status s) -> Status {
    conn.Exec("ROLLBACK", "rollback migration").status().IgnoreError();
    return s;
  };
  Result<PgResult> r =
      conn.Exec("SELECT pg_advisory_xact_lock(" + std::to_string(kMigrationLockKey) +
                    ");"
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    "  version integer PRIMARY KEY, name text NOT NULL,"
                    "  applied_at timestamptz NOT NULL DEFAULT now());"
                    "SELECT coalesce(max(version), 0) FROM schema_migrations",
                "read schema version");
  if (!r.ok()) return fail(r.status());
  SchemaVersion v;
  v.before = static_cast<int>(r->Int(0, 0));
  v.after = v.before;
  const int latest = LatestSchemaVersion();
  if (v.before > latest) {
    return fail(FailedPreconditionError("the database has schema version " +
                                        std::to_string(v.before) + "; this build knows up to " +
                                        std::to_string(latest)));
  }
  for (const store::Migration& m : kPostgresMigrations) {
    if (m.version <= v.before) continue;
    Result<PgResult> applied =
        conn.Exec(m.sql, "apply migration " + std::to_string(m.version) + " (" + m.name + ")");
    if (!applied.ok()) return fail(applied.status());
    Params p;
    p.Int(m.version).Text(m.name);
    Result<PgResult> recorded = conn.ExecParams(
        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", p, "record migration");
    if (!recorded.ok()) return fail(recorded.status());
    v.after = m.version;
  }
  BATON_RETURN_IF_ERROR(conn.Exec("COMMIT", "commit migration").status());
  if (v.after != v.before) {
    util::Log().info("postgres store: schema migrated from version {} to {}", v.before, v.after);
  }
  return v;
}

// ---------------------------------------------------------------------------
// The pool.

Result<ConnectionPool::Lease> ConnectionPool::Acquire(std::chrono::milliseconds wait) {
  std::unique_lock lock(mu_);
  auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    if (!idle_.empty()) {
      std::unique_ptr<PgConnection> conn = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(conn));
    }
    if (open_ < max_) break;
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
        open_ >= max_) {
      return Status(StatusCode::kResourceExhausted,
                    "postgres: all " + std::to_string(max_) + " connections are busy");
    }
  }
  ++open_;
  lock.unlock();
  Result<std::unique_ptr<PgConnection>> conn = PgConnection::Connect(conninfo_, setup_);
  if (!conn.ok()) {
    lock.lock();
    --open_;
    cv_.notify_one();
    return conn.status();
  }
  (*conn)->CountRoundTrips(round_trips_);
  lock.lock();
  pids_.insert((*conn)->backend_pid());
  lock.unlock();
  return Lease(this, std::move(conn).value());
}

std::unordered_set<int64_t> ConnectionPool::Pids() {
  std::lock_guard lock(mu_);
  return pids_;
}

void ConnectionPool::Release(std::unique_ptr<PgConnection> conn) {
  std::lock_guard lock(mu_);
  if (conn->broken()) {
    --open_;
    pids_.erase(conn->backend_pid());
  } else {
    idle_.push_back(std::move(conn));
  }
  cv_.notify_one();
}

void ConnectionPool::Clear() {
  std::vector<std::unique_ptr<PgConnection>> closing;
  {
    std::lock_guard lock(mu_);
    closing.swap(idle_);
    open_ -= static_cast<int>(closing.size());
    for (const auto& conn : closing) pids_.erase(conn->backend_pid());
  }
}

// ---------------------------------------------------------------------------
// Open, close.

PostgresStore::PostgresStore(PostgresStoreOptions options)
    : options_(std::move(options)), clock_(options_.clock) {}

Result<std::unique_ptr<PostgresStore>> PostgresStore::Open(PostgresStoreOptions options) {
  if (options.url.empty()) return InvalidArgumentError("PostgresStoreOptions.url is empty");
  if (options.lease_duration < std::chrono::seconds(1)) {
    return InvalidArgumentError("PostgresStoreOptions.lease_duration must be at least 1 s");
  }
  if (options.poll_interval <= std::chrono::milliseconds::zero()) {
    return InvalidArgumentError("PostgresStoreOptions.poll_interval must be positive");
  }
  if (options.prefetch_backlog < 0 || options.prefetch_backlog > 64) {
    return InvalidArgumentError("PostgresStoreOptions.prefetch_backlog must be 0..64");
  }
  if (options.max_connections < 2 || options.commit_threads < 1 ||
      options.commit_threads >= options.max_connections) {
    return InvalidArgumentError(
        "PostgresStoreOptions: need commit_threads >= 1 and max_connections > commit_threads");
  }
  if (options.node_id.empty()) options.node_id = DefaultNodeId();
  std::unique_ptr<PostgresStore> store(new PostgresStore(std::move(options)));
  BATON_RETURN_IF_ERROR(store->Start());
  return store;
}

Status PostgresStore::Start() {
  // A session idle inside a transaction holds row locks; none of ours ever
  // is (every call is one statement), so one that is must be a client that
  // hung mid-call: the server ends it well before its lease would expire.
  const auto idle_timeout = std::max<std::chrono::milliseconds>(std::chrono::milliseconds(500),
                                                                options_.lease_duration / 2);
  // The node id in application_name lets the other nodes see when this one's
  // sessions are all gone (WatchPeers). One that does not fit (63 bytes) or
  // needs quoting is left out: that node's leases then only expire.
  const std::string application_name =
      NamesItsSessions(options_.node_id) ? std::string(kNodeSessionPrefix) + options_.node_id
                                         : "baton";
  setup_sql_ =
      "SET application_name = '" + application_name + "'; SET synchronous_commit = on; "
      "SET client_min_messages = warning; "
      "SET idle_in_transaction_session_timeout = " +
      std::to_string(idle_timeout.count());
  pool_ = std::make_unique<ConnectionPool>(options_.url, setup_sql_, options_.max_connections,
                                           round_trips_);
  {
    BATON_ASSIGN_OR_RETURN(ConnectionPool::Lease conn, pool_->Acquire());
    if (options_.migrate) {
      BATON_ASSIGN_OR_RETURN(SchemaVersion v, Migrate(*conn));
      (void)v;
    } else {
      Result<PgResult> r =
          conn->Exec("SELECT coalesce((SELECT max(version) FROM schema_migrations), 0)",
                     "read schema version");
      int version = r.ok() ? static_cast<int>(r->Int(0, 0)) : 0;
      if (version != LatestSchemaVersion()) {
        return FailedPreconditionError(
            "the database has schema version " + std::to_string(version) + "; this build needs " +
            std::to_string(LatestSchemaVersion()) + " (run `baton migrate`)");
      }
    }
  }

  // The node's row exists once the store is open (a failure is only logged:
  // the keeper heartbeats again).
  Heartbeat(/*starting=*/true);
  for (int i = 0; i < options_.commit_threads; ++i) {
    committers_.emplace_back([this] { CommitterLoop(); });
  }
  keeper_ = std::thread([this] { KeeperLoop(); });
  if (options_.notifications) {
    listener_wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (listener_wake_fd_ < 0) return InternalError("eventfd failed");
    listener_ = std::thread([this] { ListenerLoop(); });
    notifier_ = std::thread([this] { NotifierLoop(); });
  }
  if (clock_ != nullptr) {
    wake_hub_ = std::make_shared<WakeHub>();
    wake_hub_->store = this;
    clock_subscription_ = clock_->Subscribe([hub = wake_hub_] {
      std::lock_guard lock(hub->mu);
      if (hub->store != nullptr) hub->store->OnClockJump();
    });
  }
  return Status::Ok();
}

PostgresStore::~PostgresStore() {
  if (wake_hub_ != nullptr) {
    clock_->Unsubscribe(clock_subscription_);
    std::lock_guard lock(wake_hub_->mu);
    wake_hub_->store = nullptr;
  }
  stopping_ = true;
  Interrupt();
  // Queued commits run to the end: their callers wait for their callbacks.
  {
    std::lock_guard lock(commit_mu_);
    committers_stopping_ = true;
  }
  commit_cv_.notify_all();
  for (std::thread& t : committers_) t.join();
  { std::lock_guard lock(leases_mu_); }
  keeper_cv_.notify_all();
  if (keeper_.joinable()) keeper_.join();
  // Leases still held end now, so other nodes need not wait for expiry.
  if (!held_.empty()) {
    std::vector<std::string> ids;
    std::vector<int64_t> id_tokens, seqs, seq_tokens;
    for (const auto& [token, lease] : held_) {
      if (lease.task) {
        seqs.push_back(lease.seq);
        seq_tokens.push_back(static_cast<int64_t>(token));
      } else {
        ids.push_back(lease.instance_id);
        id_tokens.push_back(static_cast<int64_t>(token));
      }
    }
    Params p;
    p.TextArray(ids).IntArray(id_tokens).IntArray(seqs).IntArray(seq_tokens);
    Result<Outcome> released = Mutate(kReleaseLeases, p, 0, "release leases");
    if (released.ok()) {
      Announce(true, 1, {});
    } else {
      util::Log().warn("postgres store: could not release {} lease(s) at close: {}", held_.size(),
                       released.status().ToString());
    }
  }
  // A clean stop: the node reads as "stopped", not "gone".
  {
    Params p;
    p.Text(options_.node_id).OptionalInt(NowParam());
    Result<PgResult> stopped =
        ReadSql("UPDATE nodes SET stopped_at = coalesce($2, baton_now()), heartbeat_at = "
                "coalesce($2, baton_now()) WHERE node_id = $1",
                p, "record the node's stop", /*counted=*/false);
    if (!stopped.ok()) {
      util::Log().debug("postgres store: recording the node's stop: {}", stopped.status().ToString());
    }
  }
  { std::lock_guard lock(notify_mu_); }
  notify_cv_.notify_all();
  if (notifier_.joinable()) notifier_.join();
  if (listener_.joinable()) {
    uint64_t one = 1;
    if (write(listener_wake_fd_, &one, sizeof one) < 0) util::Log().warn("eventfd write failed");
    listener_.join();
  }
  if (listener_wake_fd_ >= 0) close(listener_wake_fd_);
  pool_->Clear();
}

PostgresStats PostgresStore::stats() const {
  PostgresStats s;
  s.claims = claims_.load();
  s.empty_claims = empty_claims_.load();
  s.commits = commits_.load();
  // Claims run as reads too.
  const uint64_t reads = reads_.load(), claims = claims_.load();
  s.reads = reads > claims ? reads - claims : 0;
  s.round_trips = round_trips_->load();
  s.notifications = notifications_.load();
  s.notified = notified_.load();
  s.renewals = renewals_.load();
  s.unknown_outcomes = unknown_outcomes_.load();
  s.inline_commits = inline_commits_.load();
  s.known_waits = known_waits_.load();
  s.notifications_skipped = notifications_skipped_.load();
  s.alone = alone_.load();
  s.listening = listening_.load();
  s.peers = peers_seen_.load();
  s.peers_gone = peers_gone_.load();
  s.leases_released = leases_released_.load();
  return s;
}

int PostgresStore::idle_orchestration_fetchers() const {
  std::lock_guard lock(mu_);
  return orchestrations_.sleepers;
}

int PostgresStore::waiting() const {
  std::lock_guard lock(mu_);
  int n = 0;
  for (const auto& [id, list] : waiters_) n += static_cast<int>(list.size());
  return n;
}

// ---------------------------------------------------------------------------
// Time.

std::optional<int64_t> PostgresStore::NowParam() const {
  if (clock_ == nullptr) return std::nullopt;
  return ToUnixMicros(clock_->Now());
}

std::optional<int64_t> PostgresStore::VisibleParam(TimePoint visible_at) const {
  if (IsUnset(visible_at)) return NowParam();
  if (clock_ == nullptr && visible_at <= std::chrono::system_clock::now()) {
    // Due now: the database clock says when "now" is, so a node whose clock
    // runs ahead of the database's does not delay the message.
    return std::nullopt;
  }
  return ToUnixMicros(visible_at);
}

int64_t PostgresStore::LocalMicros() const {
  if (clock_ != nullptr) return ToUnixMicros(clock_->Now());
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t PostgresStore::NewClientKey() {
  // Negative, so it never meets a lease token (positive, from a sequence).
  thread_local std::mt19937_64 rng(std::random_device{}());
  return -1 - static_cast<int64_t>(rng() >> 1);
}

// ---------------------------------------------------------------------------
// Running calls.

Result<PostgresStore::Outcome> PostgresStore::Mutate(const Statement& statement,
                                                     const Params& params, int64_t commit_key,
                                                     std::string_view what) {
  if (!params.status().ok()) return params.status();
  const auto deadline = std::chrono::steady_clock::now() + options_.retry_budget;
  auto backoff = std::chrono::milliseconds(20);
  int retries = 0;
  for (;;) {
    Result<ConnectionPool::Lease> conn = pool_->Acquire();
    if (!conn.ok()) {
      // Nothing was sent: nothing was written. Keep trying while the
      // database restarts, within the budget.
      if (conn.status().code() != StatusCode::kUnavailable ||
          std::chrono::steady_clock::now() + backoff >= deadline) {
        return conn.status();
      }
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
      continue;
    }
    commits_.fetch_add(1, std::memory_order_relaxed);
    Result<PgResult> r = (*conn)->ExecPrepared(statement, params, what);
    if (r.ok()) return Outcome{std::move(r).value(), false};
    if (!(*conn)->broken()) {
      // The statement failed and was rolled back whole.
      if (r.status().code() == StatusCode::kAborted && ++retries <= kMaxRetries) {
        util::Log().debug("postgres store: {} retried after {}", what, r.status().ToString());
        continue;
      }
      return r.status();
    }
    if (commit_key == 0) return r.status();  // idempotent calls need no read-back
    // The connection broke with the call in flight: it may have committed.
    unknown_outcomes_.fetch_add(1, std::memory_order_relaxed);
    const std::string session =
        std::to_string((*conn)->backend_pid()) + "\n" + (*conn)->backend_start();
    util::Log().warn("postgres store: connection lost during {} ({}); reading the outcome back",
                     what, r.status().ToString());
    {
      ConnectionPool::Lease dropped = std::move(conn).value();  // broken: closed on release
    }
    Result<bool> landed = ResolveOutcome(session, commit_key, deadline);
    if (!landed.ok()) {
      return UnavailableError("postgres: the outcome of " + std::string(what) +
                              " is unknown (connection lost during the commit; " +
                              landed.status().message() + ")");
    }
    if (*landed) return Outcome{PgResult(), true};
    // It did not commit: nothing was written, and the call can run again.
  }
}

Result<bool> PostgresStore::ResolveOutcome(const std::string& session, int64_t commit_key,
                                           std::chrono::steady_clock::time_point deadline) {
  const size_t newline = session.find('\n');
  const int64_t pid = std::atoll(session.substr(0, newline).c_str());
  const std::string started = session.substr(newline + 1);
  const auto terminate_after = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  Status last = UnavailableError("no attempt");
  while (std::chrono::steady_clock::now() < deadline) {
    Result<ConnectionPool::Lease> conn = pool_->Acquire();
    if (conn.ok()) {
      // Until the old session has ended, its transaction may still commit.
      Params alive;
      alive.Int(pid).Text(started);
      Result<PgResult> a = (*conn)->ExecPrepared(kSessionAlive, alive, "check old session");
      if (a.ok() && a->rows() == 1 && !a->Bool(0, 0)) {
        Params key;
        key.Int(commit_key);
        Result<PgResult> landed = (*conn)->ExecPrepared(kCommitLanded, key, "read commit log");
        if (landed.ok()) return landed->rows() == 1 && landed->Bool(0, 0);
        last = landed.status();
      } else if (a.ok() && std::chrono::steady_clock::now() > terminate_after) {
        // Our own session, stuck (a half-open socket): end it.
        Params p;
        p.Int(pid);
        (*conn)
            ->ExecParams("SELECT pg_terminate_backend($1)", p, "end old session")
            .status()
            .IgnoreError();
      } else if (!a.ok()) {
        last = a.status();
      }
    } else {
      last = conn.status();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return last;
}

Result<PgResult> PostgresStore::Read(const Statement& statement, const Params& params,
                                     std::string_view what, bool counted) {
  if (!params.status().ok()) return params.status();
  if (counted) reads_.fetch_add(1, std::memory_order_relaxed);
  for (int attempt = 0;; ++attempt) {
    BATON_ASSIGN_OR_RETURN(ConnectionPool::Lease conn, pool_->Acquire());
    Result<PgResult> r = conn->ExecPrepared(statement, params, what);
    if (r.ok() || !conn->broken() || attempt == 1) return r;
  }
}

Result<PgResult> PostgresStore::ReadSql(const std::string& sql, const Params& params,
                                        std::string_view what, bool counted) {
  if (!params.status().ok()) return params.status();
  if (counted) reads_.fetch_add(1, std::memory_order_relaxed);
  for (int attempt = 0;; ++attempt) {
    BATON_ASSIGN_OR_RETURN(ConnectionPool::Lease conn, pool_->Acquire());
    Result<PgResult> r = conn->ExecParams(sql, params, what);
    if (r.ok() || !conn->broken() || attempt == 1) return r;
  }
}

namespace {

// One commit (a batch counts once) of `writes` calls, timed from `start`.
void ObserveCommit(util::metrics::Clock::time_point start, size_t writes) {
  // The whole round trip, the database's fsync (when a call needs sync)
  // included; PostgreSQL's own WAL sync time is pg_stat_wal's (docs/metrics.md).
  static util::metrics::Histogram& commit = util::metrics::Default().GetHistogram(
      "baton_store_commit_seconds", "A group commit: the writer's transaction from BEGIN to COMMIT done",
      {{"store", "postgres"}});
  static util::metrics::Counter& counted = util::metrics::Default().GetCounter(
      "baton_store_writes_total", "Writes the store's writer ran (many per group commit)", {{"store", "postgres"}});
  commit.ObserveSince(start);
  counted.Inc(writes);
}

}  // namespace

void PostgresStore::Submit(CommitJob job) {
  {
    std::unique_lock lock(commit_mu_);
    const bool run_here =
        options_.inline_commits && commits_in_flight_ == 0 && !committers_stopping_;
    // Counted before it runs, so that commits submitted meanwhile go to the
    // committers (and batch there) instead of running inline beside this one.
    ++commits_in_flight_;
    if (!run_here) {
      commit_queue_.push_back(std::move(job));
      lock.unlock();
      commit_cv_.notify_one();
      return;
    }
  }
  inline_commits_.fetch_add(1, std::memory_order_relaxed);
  const auto start = util::metrics::StartTimer();
  Result<Outcome> outcome = Mutate(*job.statement, job.params(), job.commit_key, job.what);
  ObserveCommit(start, 1);
  {
    // Before the wake-ups: the next step's commit, submitted by a thread
    // they wake, may run inline too.
    std::lock_guard lock(commit_mu_);
    --commits_in_flight_;
  }
  Finish(job, std::move(outcome));
}

void PostgresStore::Finish(CommitJob& job, Result<Outcome> outcome) {
  Status status = job.finish(std::move(outcome));
  if (job.done) job.done(status);
}

void PostgresStore::CommitterLoop() {
  for (;;) {
    std::vector<CommitJob> jobs;
    {
      std::unique_lock lock(commit_mu_);
      commit_cv_.wait(lock, [this] { return committers_stopping_ || !commit_queue_.empty(); });
      if (commit_queue_.empty()) return;
      // What is queued now goes together: a burst costs one transaction.
      size_t bytes = 0;
      while (!commit_queue_.empty() && jobs.size() < kMaxCommitBatch &&
             (jobs.empty() || bytes + commit_queue_.front().bytes <= kMaxCommitBatchBytes)) {
        bytes += commit_queue_.front().bytes;
        jobs.push_back(std::move(commit_queue_.front()));
        commit_queue_.pop_front();
      }
    }
    const auto start = util::metrics::StartTimer();
    const size_t n = jobs.size();
    if (jobs.size() == 1) {
      CommitJob& job = jobs.front();
      Finish(job, Mutate(*job.statement, job.params(), job.commit_key, job.what));
    } else {
      CommitBatch(jobs);
    }
    ObserveCommit(start, n);
    std::lock_guard lock(commit_mu_);
    commits_in_flight_ -= static_cast<int>(n);
  }
}

void PostgresStore::CommitBatch(std::vector<CommitJob>& jobs) {
  // The same lock order in every batch: two batches never wait on each
  // other's instances (a deadlock would only cost the fallback below).
  std::stable_sort(jobs.begin(), jobs.end(),
                   [](const CommitJob& a, const CommitJob& b) { return a.lock_key < b.lock_key; });
  std::vector<Params> params;
  params.reserve(jobs.size());
  std::vector<std::pair<const Statement*, const Params*>> calls;
  bool sync = false;
  for (CommitJob& job : jobs) params.push_back(job.params());
  for (size_t i = 0; i < jobs.size(); ++i) {
    calls.emplace_back(jobs[i].statement, &params[i]);
    sync |= jobs[i].sync;
  }
  auto one_by_one = [&](size_t from) {
    for (size_t i = from; i < jobs.size(); ++i) {
      Finish(jobs[i], Mutate(*jobs[i].statement, params[i], jobs[i].commit_key, jobs[i].what));
    }
  };
  for (const Params& p : params) {
    if (!p.status().ok()) return one_by_one(0);  // each reports its own error
  }
  Result<ConnectionPool::Lease> conn = pool_->Acquire();
  if (!conn.ok()) return one_by_one(0);  // nothing sent; Mutate waits for the database
  commits_.fetch_add(1, std::memory_order_relaxed);
  // Each call sets synchronous_commit off for the transaction unless it
  // needs sync; if any does, the last statement turns it back on.
  Result<std::vector<PgResult>> r = (*conn)->ExecPipeline(
      calls, sync ? "SELECT set_config('synchronous_commit', 'on', true)" : "",
      "commit batch");
  if (r.ok()) {
    for (size_t i = 0; i < jobs.size(); ++i) {
      Finish(jobs[i], Outcome{std::move((*r)[i]), false});
    }
    return;
  }
  if (!(*conn)->broken()) {
    // Rolled back whole (a deadlock, a serialization failure, an error in
    // one call): nothing was written. Each runs again on its own.
    util::Log().debug("postgres store: commit batch of {} ran one by one after {}", jobs.size(),
                      r.status().ToString());
    { ConnectionPool::Lease done = std::move(conn).value(); }
    return one_by_one(0);
  }
  // The connection broke with the batch in flight: it committed whole or not
  // at all. Each call's commit_log row says which; a call without one either
  // did not commit or was fenced out (and wrote nothing): it runs again on
  // its own, and is fenced out again if its lease is gone.
  unknown_outcomes_.fetch_add(1, std::memory_order_relaxed);
  const std::string session =
      std::to_string((*conn)->backend_pid()) + "\n" + (*conn)->backend_start();
  util::Log().warn("postgres store: connection lost during a commit batch ({}); reading the "
                   "outcomes back",
                   r.status().ToString());
  { ConnectionPool::Lease dropped = std::move(conn).value(); }
  const auto deadline = std::chrono::steady_clock::now() + options_.retry_budget;
  for (size_t i = 0; i < jobs.size(); ++i) {
    Result<bool> landed = ResolveOutcome(session, jobs[i].commit_key, deadline);
    if (!landed.ok()) {
      Finish(jobs[i], UnavailableError("postgres: the outcome of " + jobs[i].what +
                                       " is unknown (connection lost during the commit; " +
                                       landed.status().message() + ")"));
    } else if (*landed) {
      Finish(jobs[i], Outcome{PgResult(), true});
    } else {
      Finish(jobs[i], Mutate(*jobs[i].statement, params[i], jobs[i].commit_key, jobs[i].what));
    }
  }
}

// ---------------------------------------------------------------------------
// Wake-ups.

class PostgresStore::InsideFetch {
 public:
  InsideFetch(PostgresStore* store, FetchQueue& queue) : store_(store), queue_(queue) {
    std::lock_guard lock(store_->mu_);
    ++queue_.inside;
    queue_.last_fetch = std::chrono::steady_clock::now();
  }
  ~InsideFetch() {
    std::lock_guard lock(store_->mu_);
    --queue_.inside;
    queue_.permits = std::min(queue_.permits, queue_.inside);
  }

 private:
  PostgresStore* store_;
  FetchQueue& queue_;
};

void PostgresStore::Wake(FetchQueue& queue, int count, bool in_database) {
  const bool all = count == kWakeAll || count > 1;
  {
    std::lock_guard lock(mu_);
    if (in_database) ++queue.epoch;
    if (queue.inside == 0) return;  // every fetcher is busy: none can miss the work
    queue.permits =
        std::min(queue.inside, queue.permits + (count == kWakeAll ? queue.inside : count));
  }
  if (all) {
    queue.cv.notify_all();
  } else {
    queue.cv.notify_one();
  }
}

void PostgresStore::SignalWaiters(const std::vector<std::string>& ids,
                                  const std::optional<KnownStatus>& known) {
  std::lock_guard lock(mu_);
  for (const std::string& id : ids) {
    if (auto k = known_status_.find(id); k != known_status_.end()) {
      if (!known || known->instance_id != id) {
        known_status_.erase(k);  // changed by a call whose result this node did not see
      } else if (IsTerminal(known->status)) {
        known_status_.erase(k);  // a later waiter reads the final state
      } else if (known->status != OrchestrationStatus::kPending) {
        // Only forward: a start's own announcement (Pending) may come after
        // its first episode's commit.
        k->second = known->status;
      }
    }
    auto it = waiters_.find(id);
    if (it == waiters_.end()) continue;
    for (Waiter* w : it->second) {
      if (known && known->instance_id == id) {
        // A waiter for completion need not re-read an instance that is
        // merely running now; a later change signals it again.
        const bool reached = w->condition == WaitCondition::kStarted
                                 ? known->status != OrchestrationStatus::kPending
                                 : IsTerminal(known->status);
        if (!reached) continue;
        if (known->state && !w->include_payloads) w->state = known->state;
      }
      w->signaled = true;
      w->cv.notify_one();
    }
  }
}

void PostgresStore::SignalAllWaiters() {
  std::lock_guard lock(mu_);
  known_status_.clear();
  for (auto& [id, list] : waiters_) {
    for (Waiter* w : list) {
      w->signaled = true;
      w->cv.notify_one();
    }
  }
}

void PostgresStore::Announce(bool orchestrations, int tasks,
                             const std::vector<std::string>& changed,
                             const std::optional<KnownStatus>& known) {
  if (orchestrations) WakeOrchestrations(false);
  if (tasks > 0) Wake(tasks_, tasks);
  if (!changed.empty()) SignalWaiters(changed, known);
  if (!options_.notifications || (!orchestrations && !tasks && changed.empty())) return;
  {
    std::lock_guard lock(notify_mu_);
    notify_orch_ |= orchestrations;
    notify_task_ |= tasks > 0;
    for (const std::string& id : changed) notify_changed_.insert(id);
  }
  notify_cv_.notify_one();
}

void PostgresStore::AnnounceEverything() {
  WakeOrchestrations(true);
  WakeTasks(true);
  SignalAllWaiters();
  if (!options_.notifications) return;
  {
    std::lock_guard lock(notify_mu_);
    notify_orch_ = notify_task_ = true;
    notify_all_changed_ = true;
  }
  notify_cv_.notify_one();
}

void PostgresStore::OnClockJump() {
  WakeOrchestrations(true);
  WakeTasks(true);
  keeper_cv_.notify_all();
}

std::chrono::steady_clock::duration PostgresStore::IdlePeriod(
    std::optional<int64_t> next_due_in_us) const {
  std::chrono::steady_clock::duration period = options_.poll_interval;
  if (next_due_in_us) {
    period = std::min<std::chrono::steady_clock::duration>(
        period, std::chrono::microseconds(std::max<int64_t>(*next_due_in_us, 0) + 500));
  }
  if (clock_ != nullptr) {
    period = std::min<std::chrono::steady_clock::duration>(
        period,
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(clock_->MaxSleep()));
  }
  return period;
}

bool PostgresStore::TakePermit(FetchQueue& queue, std::chrono::steady_clock::duration sleep) {
  std::unique_lock lock(mu_);
  if (queue.permits == 0 && !interrupted_ && sleep > std::chrono::steady_clock::duration::zero()) {
    ++queue.sleepers;
    queue.cv.wait_for(lock, sleep, [&] { return interrupted_ || queue.permits > 0; });
    --queue.sleepers;
  }
  if (queue.permits == 0 || interrupted_) return false;
  --queue.permits;
  return true;
}

// ---------------------------------------------------------------------------
// Leases held.

void PostgresStore::TrackLease(uint64_t token, const std::string& instance_id,
                               std::optional<uint64_t> task_seq, int64_t claimed_at_local,
                               TimePoint locked_until) {
  const int64_t lease =
      std::chrono::duration_cast<std::chrono::microseconds>(options_.lease_duration).count();
  HeldLease h;
  h.task = task_seq.has_value();
  h.seq = static_cast<int64_t>(task_seq.value_or(0));
  if (!h.task) h.instance_id = instance_id;
  // With the database clock, the local monotonic clock measures the lease
  // from just before the claim was sent: never later than the database's.
  h.expires = clock_ != nullptr ? ToUnixMicros(locked_until) : claimed_at_local + lease;
  h.renew_at = h.expires - 2 * lease / 3;
  {
    std::lock_guard lock(leases_mu_);
    held_[token] = h;
  }
}

void PostgresStore::ForgetLease(uint64_t token) {
  std::lock_guard lock(leases_mu_);
  held_.erase(token);
}

void PostgresStore::KeeperLoop() {
  auto next_prune = std::chrono::steady_clock::now();
  // The first look waits a little: at start the first calls are the node's own.
  auto next_watch = std::chrono::steady_clock::now() + kWatchPeersEvery;
  auto next_heartbeat = std::chrono::steady_clock::now() + kNodeHeartbeatEvery;
  for (;;) {
    bool heartbeat = false;
    {
      std::unique_lock lock(leases_mu_);
      if (stopping_) return;
      auto sleep = std::chrono::steady_clock::duration(std::chrono::seconds(1));
      sleep = std::min<std::chrono::steady_clock::duration>(
          sleep, heartbeat_now_ ? std::chrono::steady_clock::duration::zero()
                                : next_heartbeat - std::chrono::steady_clock::now());
      if (options_.release_gone_nodes) {
        sleep = std::min<std::chrono::steady_clock::duration>(
            sleep, next_watch - std::chrono::steady_clock::now());
      }
      const int64_t now = LocalMicros();
      for (const auto& [token, h] : held_) {
        if (h.expires <= now) continue;  // lost already: its completion will abort
        sleep = std::min<std::chrono::steady_clock::duration>(
            sleep, std::chrono::microseconds(std::max<int64_t>(h.renew_at - now, 0)));
      }
      if (clock_ != nullptr) {
        sleep = std::min<std::chrono::steady_clock::duration>(
            sleep,
            std::chrono::duration_cast<std::chrono::steady_clock::duration>(clock_->MaxSleep()));
      }
      if (sleep > std::chrono::steady_clock::duration::zero()) keeper_cv_.wait_for(lock, sleep);
      if (stopping_) return;
      heartbeat = heartbeat_now_ || std::chrono::steady_clock::now() >= next_heartbeat;
      heartbeat_now_ = false;
    }
    RenewLeases();
    if (heartbeat) {
      next_heartbeat = std::chrono::steady_clock::now() + kNodeHeartbeatEvery;
      Heartbeat(/*starting=*/false);
    }
    if (options_.release_gone_nodes && std::chrono::steady_clock::now() >= next_watch) {
      next_watch = std::chrono::steady_clock::now() + kWatchPeersEvery;
      WatchPeers();
    }
    if (std::chrono::steady_clock::now() >= next_prune) {
      next_prune = std::chrono::steady_clock::now() + kPruneEvery;
      Params p;
      p.OptionalInt(NowParam()).Int(kCommitLogRetentionUs);
      Result<PgResult> pruned = Read(kPruneCommitLog, p, "prune commit log", /*counted=*/false);
      if (!pruned.ok()) {
        util::Log().debug("postgres store: pruning commit_log: {}", pruned.status().ToString());
      }
      Params q;
      q.OptionalInt(NowParam()).Int(std::chrono::duration_cast<std::chrono::microseconds>(kNodeForgottenAfter).count());
      Result<PgResult> forgotten =
          ReadSql("DELETE FROM nodes WHERE heartbeat_at < coalesce($1, baton_now()) - $2", q,
                  "forget old nodes", /*counted=*/false);
      if (!forgotten.ok()) {
        util::Log().debug("postgres store: forgetting old nodes: {}", forgotten.status().ToString());
      }
    }
  }
}

void PostgresStore::WatchPeers() {
  // The nodes with a session now ('s'), and the holders of live leases ('l').
  static const std::string kSql =
      "SELECT 's', substr(application_name, " + std::to_string(kNodeSessionPrefix.size() + 1) +
      "), pid FROM pg_stat_activity WHERE datname = current_database() AND "
      "(starts_with(application_name, '" + std::string(kNodeSessionPrefix) +
      "') OR application_name = 'baton') UNION SELECT 'l', locked_by, NULL FROM instance_queue WHERE due_at > coalesce($1, "
      "baton_now()) AND lock_token IS NOT NULL UNION SELECT 'l', locked_by, NULL FROM activity_tasks "
      "WHERE due_at > coalesce($1, baton_now()) AND lock_token IS NOT NULL";
  Params params;
  params.OptionalInt(NowParam());
  const uint64_t heard = heard_from_others_.load();
  // A failed look (the database is down or restarting) proves nothing.
  Result<PgResult> r = ReadSql(kSql, params, "watch nodes", /*counted=*/false);
  if (!r.ok()) {
    alone_ = false;
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  // This store's own sessions, known after the look: one opened meanwhile
  // is ours; one of ours that broke and lingers counts as another node's.
  std::unordered_set<int64_t> mine = pool_->Pids();
  mine.insert(notifier_pid_.load());
  mine.insert(listener_pid_.load());
  bool others = false;
  std::set<std::string> present;
  std::set<std::string> holders;
  for (int i = 0; i < r->rows(); ++i) {
    if (r->Text(i, 0) == "s") {
      others |= !mine.contains(r->Int(i, 2));
      present.insert(r->Text(i, 1));
    } else {
      holders.insert(r->Text(i, 1));
    }
  }
  present.erase(options_.node_id);
  present.erase("");  // application_name 'baton': a node that cannot name itself
  peers_seen_ = static_cast<int>(present.size());
  // No session but this store's (whatever their node ids): its NOTIFYs
  // would reach no one. A node that started during the look announces
  // itself (ListenerLoop), which moves heard_from_others_.
  alone_ = options_.notifications && !others && heard_from_others_.load() == heard;
  for (const std::string& id : present) peers_[id].reset();
  // A holder that was never seen counts too (it may have died before this
  // node's first look), if it would name its sessions: one that does not
  // (an id too long or needing quotes) is never taken for dead.
  for (const std::string& id : holders) {
    if (id != options_.node_id && NamesItsSessions(id)) peers_.try_emplace(id, now);
  }
  for (auto it = peers_.begin(); it != peers_.end();) {
    if (present.contains(it->first)) {
      ++it;
      continue;
    }
    if (!it->second) it->second = now;
    if (now - *it->second < kPeerGoneFor) {
      ++it;
      continue;
    }
    if (!holders.contains(it->first)) {  // gone, and holds nothing
      it = peers_.erase(it);
      continue;
    }
    // Every session of that node has been gone for a while: it died. Its
    // work need not wait for its leases to expire.
    Params p;
    p.Text(it->first).OptionalInt(NowParam());
    Result<PgResult> released = Read(kReleaseNodeLeases, p, "release a gone node's leases", /*counted=*/false);
    if (!released.ok()) {
      util::Log().debug("postgres store: releasing the leases of node '{}': {}", it->first,
                        released.status().ToString());
      ++it;  // tried again at the next look
      continue;
    }
    const int instances = static_cast<int>(released->Int(0, 0));
    const int tasks = static_cast<int>(released->Int(0, 1));
    peers_gone_.fetch_add(1, std::memory_order_relaxed);
    leases_released_.fetch_add(static_cast<uint64_t>(instances + tasks), std::memory_order_relaxed);
    if (instances > 0 || tasks > 0) {
      util::Log().info(
          "postgres store: node '{}' has no session left; released its {} instance and {} task "
          "lease(s)",
          it->first, instances, tasks);
      Announce(instances > 0, tasks, {});
    }
    it = peers_.erase(it);
  }
}

void PostgresStore::Heartbeat(bool starting) {
  NodeReport report;
  {
    std::lock_guard lock(reporter_mu_);
    if (reporter_) report = reporter_();
  }
  if (report.details.empty()) report.details = "{}";
  // started_at is set when the store opens, and kept by later heartbeats (a
  // row forgotten meanwhile comes back with the heartbeat's time).
  static const std::string kSql =
      "INSERT INTO nodes (node_id, version, details, started_at, heartbeat_at) VALUES ($1, $3, $4, "
      "coalesce($2, baton_now()), coalesce($2, baton_now())) ON CONFLICT (node_id) DO UPDATE SET "
      "version = EXCLUDED.version, details = EXCLUDED.details, heartbeat_at = EXCLUDED.heartbeat_at, "
      "stopped_at = NULL";
  static const std::string kStartSql = kSql + ", started_at = EXCLUDED.started_at";
  Params p;
  p.Text(options_.node_id).OptionalInt(NowParam()).Text(report.version).Text(report.details);
  Result<PgResult> r = ReadSql(starting ? kStartSql : kSql, p, "node heartbeat", /*counted=*/false);
  if (!r.ok()) util::Log().debug("postgres store: node heartbeat: {}", r.status().ToString());
}

void PostgresStore::SetNodeReporter(std::function<NodeReport()> reporter) {
  {
    std::lock_guard lock(reporter_mu_);
    reporter_ = std::move(reporter);
  }
  {
    std::lock_guard lock(leases_mu_);
    heartbeat_now_ = true;
  }
  keeper_cv_.notify_all();
}

Result<std::vector<NodeInfo>> PostgresStore::ListNodes() {
  // The live leases by holder (the due_at indexes: a live lease has
  // due_at >= locked_until > now), joined with the nodes that heartbeat.
  static const std::string kSql =
      "WITH now AS (SELECT coalesce($1, baton_now()) AS t), "
      "l AS (SELECT q.locked_by AS node, q.instance_id, NULL::bigint AS seq, NULL::text AS name "
      "  FROM instance_queue q, now WHERE q.due_at > now.t AND q.locked_until > now.t "
      "  AND q.lock_token IS NOT NULL AND q.locked_by IS NOT NULL "
      " UNION ALL SELECT a.locked_by, a.instance_id, a.seq, a.name "
      "  FROM activity_tasks a, now WHERE a.due_at > now.t AND a.locked_until > now.t "
      "  AND a.lock_token IS NOT NULL AND a.locked_by IS NOT NULL), "
      "c AS (SELECT node, count(*) FILTER (WHERE seq IS NULL) AS instances, count(seq) AS tasks, "
      "  array_to_json((array_agg(instance_id ORDER BY instance_id) FILTER (WHERE seq IS NULL))[1:$2::int]) AS ilist, "
      "  array_to_json((array_agg(json_build_object('seq', seq, 'instanceId', instance_id, 'name', name) "
      "   ORDER BY seq) FILTER (WHERE seq IS NOT NULL))[1:$2::int]) AS tlist "
      "  FROM l GROUP BY node) "
      "SELECT coalesce(n.node_id, c.node), n.version, n.details, n.started_at, n.heartbeat_at, "
      " n.stopped_at, (SELECT t FROM now), coalesce(c.instances, 0), coalesce(c.tasks, 0), "
      " c.ilist::text, c.tlist::text, n.node_id IS NOT NULL "
      "FROM nodes n FULL JOIN c ON c.node = n.node_id ORDER BY 1";
  Params p;
  p.OptionalInt(NowParam()).Int(kMaxListedLeases);
  BATON_ASSIGN_OR_RETURN(PgResult r, ReadSql(kSql, p, "list nodes"));
  const int64_t gone_after =
      std::chrono::duration_cast<std::chrono::microseconds>(kNodeGoneAfter).count();
  std::vector<NodeInfo> out;
  for (int row = 0; row < r.rows(); ++row) {
    NodeInfo n;
    n.node_id = r.Text(row, 0);
    const int64_t now = r.Int(row, 6);
    if (r.Bool(row, 11)) {
      n.version = r.Text(row, 1);
      n.details = r.Text(row, 2);
      n.started_at = FromUnixMicros(r.Int(row, 3));
      n.heartbeat_at = FromUnixMicros(r.Int(row, 4));
      if (!r.IsNull(row, 5)) n.stopped_at = FromUnixMicros(r.Int(row, 5));
      n.state = n.stopped_at                            ? NodeState::kStopped
                : r.Int(row, 4) >= now - gone_after ? NodeState::kUp
                                                        : NodeState::kGone;
    } else {
      n.state = NodeState::kUnknown;
    }
    n.instance_leases = r.Int(row, 7);
    n.task_leases = r.Int(row, 8);
    Json list;
    if (!r.IsNull(row, 9) && ParseJson(r.View(row, 9), &list).ok() && list.is_array()) {
      for (const Json& id : list) {
        if (id.is_string()) n.leased_instances.push_back(id.get<std::string>());
      }
    }
    if (!r.IsNull(row, 10) && ParseJson(r.View(row, 10), &list).ok() && list.is_array()) {
      for (const Json& t : list) {
        if (!t.is_object()) continue;
        LeasedTask task;
        task.seq = t.value("seq", uint64_t{0});
        task.instance_id = t.value("instanceId", std::string());
        task.name = t.value("name", std::string());
        n.leased_tasks.push_back(std::move(task));
      }
    }
    out.push_back(std::move(n));
  }
  return out;
}

void PostgresStore::RenewLeases() {
  std::vector<int64_t> tokens;
  std::vector<std::string> ids;
  std::vector<int64_t> id_tokens, seqs, seq_tokens;
  const int64_t started = LocalMicros();
  {
    std::lock_guard lock(leases_mu_);
    for (const auto& [token, h] : held_) {
      if (h.renew_at > started || h.expires <= started) continue;
      tokens.push_back(static_cast<int64_t>(token));
      if (h.task) {
        seqs.push_back(h.seq);
        seq_tokens.push_back(static_cast<int64_t>(token));
      } else {
        ids.push_back(h.instance_id);
        id_tokens.push_back(static_cast<int64_t>(token));
      }
    }
  }
  if (tokens.empty()) return;
  Params p;
  p.OptionalInt(NowParam())
      .Int(std::chrono::duration_cast<std::chrono::microseconds>(options_.lease_duration).count())
      .TextArray(ids)
      .IntArray(id_tokens)
      .IntArray(seqs)
      .IntArray(seq_tokens);
  // Idempotent: extending a lease twice is harmless, so no read-back.
  Result<Outcome> r = Mutate(kRenewLeases, p, 0, "renew leases");
  if (!r.ok()) {
    util::Log().warn("postgres store: renewing {} lease(s) failed: {}", tokens.size(),
                     r.status().ToString());
    return;
  }
  const int64_t lease =
      std::chrono::duration_cast<std::chrono::microseconds>(options_.lease_duration).count();
  std::lock_guard lock(leases_mu_);
  std::set<int64_t> renewed;
  for (int i = 0; i < r->result.rows(); ++i) {
    const int64_t token = r->result.Int(i, 0);
    renewed.insert(token);
    auto it = held_.find(static_cast<uint64_t>(token));
    if (it == held_.end()) continue;
    it->second.expires = clock_ != nullptr ? r->result.Int(i, 1) : started + lease;
    it->second.renew_at = it->second.expires - 2 * lease / 3;
    renewals_.fetch_add(1, std::memory_order_relaxed);
  }
  for (int64_t token : tokens) {
    if (renewed.contains(token)) continue;
    // Completed meanwhile, or lost: either way there is nothing to keep.
    auto it = held_.find(static_cast<uint64_t>(token));
    if (it != held_.end()) it->second.expires = 0;
  }
}

// ---------------------------------------------------------------------------
// Notifications between nodes.

void PostgresStore::NotifierLoop() {
  std::unique_ptr<PgConnection> conn;
  for (;;) {
    bool orch = false, task = false, all_changed = false;
    std::set<std::string> changed;
    {
      std::unique_lock lock(notify_mu_);
      notify_cv_.wait(lock, [this] {
        return stopping_ || notify_orch_ || notify_task_ || !notify_changed_.empty() ||
               notify_all_changed_;
      });
      if (!notify_orch_ && !notify_task_ && notify_changed_.empty() && !notify_all_changed_) return;
      std::swap(orch, notify_orch_);
      std::swap(task, notify_task_);
      std::swap(all_changed, notify_all_changed_);
      changed.swap(notify_changed_);
    }
    // Channel baton_work: "o" orchestration work, "t" activity work.
    // Channel baton_status: a JSON array of instance ids whose status
    // changed, or "*" for "any instance".
    if (alone_) {
      // No other node has a session: nobody would receive it (a node that
      // starts polls at once and announces itself, see WatchPeers).
      notifications_skipped_.fetch_add(1, std::memory_order_relaxed);
      if (stopping_) continue;
      std::this_thread::sleep_for(options_.notify_interval);
      continue;
    }
    std::vector<std::pair<std::string, std::string>> notes;
    if (orch || task)
      notes.emplace_back(kWorkChannel, std::string(orch ? "o" : "") + (task ? "t" : ""));
    if (all_changed) {
      notes.emplace_back(kStatusChannel, "*");
    } else if (!changed.empty()) {
      Json ids = Json::array();
      size_t size = 2;
      for (const std::string& id : changed) {
        if (size + id.size() + 8 > kMaxNotifyPayload && !ids.empty()) {
          notes.emplace_back(kStatusChannel, ids.dump());
          ids = Json::array();
          size = 2;
        }
        size += id.size() + 8;
        ids.push_back(id);
      }
      notes.emplace_back(kStatusChannel, ids.dump());
    }
    std::string sql = "SELECT ";
    Params p;
    for (size_t i = 0; i < notes.size(); ++i) {
      if (i) sql += ", ";
      sql += "pg_notify($" + std::to_string(2 * i + 1) + ", $" + std::to_string(2 * i + 2) + ")";
      p.Text(notes[i].first).Text(notes[i].second);
    }
    if (conn == nullptr || conn->broken()) {
      // NOTIFY is a hint: no reason to wait for its WAL flush.
      Result<std::unique_ptr<PgConnection>> c =
          PgConnection::Connect(options_.url, setup_sql_ + "; SET synchronous_commit = off");
      if (c.ok()) {
        conn = std::move(c).value();
        conn->CountRoundTrips(round_trips_);
        notifier_pid_ = conn->backend_pid();
      } else {
        conn.reset();
      }
    }
    if (conn != nullptr) {
      Result<PgResult> r = conn->ExecParams(sql, p, "notify");
      if (r.ok()) {
        notifications_.fetch_add(1, std::memory_order_relaxed);
      } else {
        util::Log().debug("postgres store: notify failed (other nodes will poll): {}",
                          r.status().ToString());
      }
    }
    if (stopping_) continue;  // flush what is left, then exit
    // Coalesce: whatever commits meanwhile goes into the next notification.
    std::this_thread::sleep_for(options_.notify_interval);
  }
}

void PostgresStore::ListenerLoop() {
  std::unique_ptr<PgConnection> conn;
  auto backoff = std::chrono::milliseconds(100);
  while (!stopping_) {
    if (conn == nullptr || conn->broken()) {
      conn.reset();
      Result<std::unique_ptr<PgConnection>> c = PgConnection::Connect(options_.url, setup_sql_);
      Status s = c.ok() ? Status::Ok() : c.status();
      if (c.ok()) {
        // And say so ("n", which nodes that only look for 'o' and 't'
        // ignore): a node that stopped notifying because it was alone
        // (WatchPeers) starts again at once.
        s = (*c)->Exec(std::string("LISTEN ") + kWorkChannel + "; LISTEN " + kStatusChannel +
                           "; NOTIFY " + kWorkChannel + ", 'n'",
                       "listen")
                .status();
      }
      if (!s.ok()) {
        util::Log().debug("postgres store: listener cannot connect: {}", s.ToString());
        pollfd wake{listener_wake_fd_, POLLIN, 0};
        poll(&wake, 1, static_cast<int>(backoff.count()));
        // At most a second: after a database restart the node's sessions
        // are back well within kPeerGoneFor, so no node takes it for dead.
        backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
        continue;
      }
      conn = std::move(c).value();
      listener_pid_ = conn->backend_pid();
      backoff = std::chrono::milliseconds(100);
      // Whatever was notified while we were not listening is lost: poll now.
      WakeOrchestrations(true);
      WakeTasks(true);
      SignalAllWaiters();
      listening_ = true;
    }
    pollfd fds[2] = {{PQsocket(conn->raw()), POLLIN, 0}, {listener_wake_fd_, POLLIN, 0}};
    int n = poll(fds, 2, 1000);
    if (n < 0 || (fds[1].revents & POLLIN)) continue;  // interrupted, or woken to stop
    if (n == 0) continue;
    if (PQconsumeInput(conn->raw()) == 0) {
      util::Log().warn("postgres store: listening connection lost; reconnecting");
      listening_ = false;
      conn.reset();
      continue;
    }
    bool orch = false, task = false, all = false;
    std::vector<std::string> changed;
    while (PGnotify* note = PQnotifies(conn->raw())) {
      if (note->be_pid != notifier_pid_.load() && note->be_pid != conn->backend_pid()) {
        notified_.fetch_add(1, std::memory_order_relaxed);
        // Another node is there (and listens): notify it from now on.
        heard_from_others_.fetch_add(1);
        alone_ = false;
        std::string_view channel = note->relname;
        std::string_view payload = note->extra;
        if (channel == kWorkChannel) {
          orch |= payload.find('o') != std::string_view::npos;
          task |= payload.find('t') != std::string_view::npos;
        } else if (payload == "*") {
          all = true;
        } else {
          Json ids;
          if (ParseJson(payload, &ids).ok() && ids.is_array()) {
            for (const Json& id : ids) {
              if (id.is_string()) changed.push_back(id.get<std::string>());
            }
          }
        }
      }
      PQfreemem(note);
    }
    if (orch) WakeOrchestrations(false);
    if (task) WakeTasks(false);
    if (all) {
      SignalAllWaiters();
    } else if (!changed.empty()) {
      SignalWaiters(changed);
    }
  }
}

// ---------------------------------------------------------------------------
// Client side.

Status PostgresStore::CreateInstance(const CreateInstanceRequest& request) {
  if (request.instance_id.empty()) return InvalidArgumentError("instance id is empty");
  if (request.instance_id.size() > kMaxInstanceIdLength) {
    return InvalidArgumentError("instance id is longer than " +
                                std::to_string(kMaxInstanceIdLength) + " characters");
  }
  if (request.name.empty()) return InvalidArgumentError("orchestration name is empty");
  if (request.execution_id.empty()) return InvalidArgumentError("execution id is empty");

  const TimePoint now = TruncateToMicros(clock_ ? clock_->Now() : std::chrono::system_clock::now());
  std::optional<TimePoint> scheduled;
  if (request.scheduled_start) scheduled = TruncateToMicros(*request.scheduled_start);
  events::ExecutionStarted started{request.name,        request.version,      request.input,
                                   request.instance_id, request.execution_id, std::nullopt,
                                   scheduled,           request.tags};
  const std::string event_json = SerializeEvent(HistoryEvent{-1, now, started});
  std::vector<std::string> replaceable;
  for (OrchestrationStatus s : request.replaceable_statuses) {
    replaceable.emplace_back(OrchestrationStatusName(s));
  }
  const int64_t key = NewClientKey();
  // An idle orchestration fetcher of this node gets the new instance leased
  // by the same statement, saving it a claim round trip.
  const bool lease = PrefetchWanted(orchestrations_, orch_prefetched_) > 0;
  Params p;
  p.Int(key)
      .OptionalInt(NowParam())
      .Text(request.instance_id)
      .Text(request.name)
      .Text(request.version)
      .Payload(request.input)
      .Text(request.execution_id)
      .OptionalInt(scheduled ? std::optional<int64_t>(ToUnixMicros(*scheduled)) : std::nullopt)
      .Payload(TagsJson(request.tags))
      .TextArray(replaceable)
      .Text(event_json);
  if (lease) {
    p.Int(LeaseMicros());
  } else {
    p.Null();
  }
  p.Text(options_.node_id);
  const int64_t started_at = LocalMicros();
  // A node alone sees every change of the instances it starts (its own
  // commits; another node that appears notifies it of its changes): it
  // remembers their status, so a waiter need not read one that has not
  // reached what it waits for (WaitForInstance). Entered before the start
  // commits, so that no commit of its first episode can come before it.
  const uint64_t heard = heard_from_others_.load();
  bool remembered = false;
  if (alone_) {
    std::lock_guard lock(mu_);
    if (known_status_.size() < kMaxKnownStatuses) {
      remembered =
          known_status_.try_emplace(request.instance_id, OrchestrationStatus::kPending).second;
    }
  }
  auto forget = [&] {
    if (!remembered) return;
    std::lock_guard lock(mu_);
    known_status_.erase(request.instance_id);
  };
  Result<Outcome> outcome = Mutate(kStartInstance, p, key, "create instance");
  if (!outcome.ok() || outcome->read_back || !alone_ || heard_from_others_.load() != heard ||
      outcome->result.Text(0, 0) != "ok") {
    forget();
  }
  BATON_ASSIGN_OR_RETURN(Outcome o, std::move(outcome));
  if (o.read_back) {
    // It landed, but we did not see whether it leased the instance to us: if
    // so, give the lease back now rather than let it expire.
    if (lease) ReleaseStartLease(request.instance_id);
    Announce(true, 0, {request.instance_id});
    return Status::Ok();
  }
  std::string code = o.result.Text(0, 0);
  if (code.starts_with("exists:")) {
    return AlreadyExistsError("instance '" + request.instance_id +
                              "' already exists with status " + code.substr(7));
  }
  // A new instance is Pending: no waiter needs waking for it.
  const KnownStatus pending{request.instance_id, OrchestrationStatus::kPending, std::nullopt};
  if (o.result.IsNull(0, 2)) {
    Announce(true, 0, {request.instance_id}, pending);
    return Status::Ok();
  }
  // Leased to this node: the work item a claim would have returned.
  const TimePoint created = FromUnixMicros(o.result.Int(0, 1));
  OrchestrationWorkItem item;
  item.instance_id = request.instance_id;
  item.lock_token = static_cast<uint64_t>(o.result.Int(0, 2));
  item.locked_until = FromUnixMicros(o.result.Int(0, 3));
  item.instance.instance_id = request.instance_id;
  item.instance.name = request.name;
  item.instance.version = request.version;
  item.instance.execution_id = request.execution_id;
  item.instance.status = OrchestrationStatus::kPending;
  item.instance.created_at = created;
  item.instance.last_updated_at = created;
  item.instance.scheduled_start = scheduled;
  Message m;
  m.seq = static_cast<uint64_t>(o.result.Int(0, 4));
  m.instance_id = request.instance_id;
  m.execution_id = request.execution_id;
  m.visible_at = scheduled ? *scheduled : created;
  Result<HistoryEvent> event = ParseEvent(event_json);  // exactly what a claim would read
  if (!event.ok()) return event.status();
  m.event = std::move(event).value();
  item.messages.push_back(std::move(m));
  TrackLease(item.lock_token, item.instance_id, std::nullopt, started_at, item.locked_until);
  bool interrupted;
  {
    std::lock_guard lock(mu_);
    interrupted = interrupted_;
    if (!interrupted) orch_prefetched_.push_back(item);
  }
  if (interrupted) {
    AbandonOrchestrationWorkItem(item, std::chrono::milliseconds(0));  // nobody will fetch it
  } else {
    Wake(orchestrations_, 1, /*in_database=*/false);
  }
  // Waiters (here and on other nodes) learn of it; no other fetcher need claim.
  Announce(false, 0, {request.instance_id}, pending);
  return Status::Ok();
}

void PostgresStore::ReleaseStartLease(const std::string& instance_id) {
  Params p;
  p.Text(instance_id).Text(options_.node_id);
  Result<PgResult> r = Read(kLeaseHolder, p, "read the lease of a new instance", false);
  if (!r.ok() || r->rows() == 0) return;  // not leased to us, or already released
  // Never tracked, so only the abandon (fenced by the token). Should the
  // lease have expired and a fetcher of this node claimed the instance
  // meanwhile, its commit is then refused and the episode runs again.
  Params a;
  a.Text(instance_id).Int(r->Int(0, 0)).OptionalInt(NowParam()).Int(0);
  Result<Outcome> done = Mutate(kAbandonInstance, a, 0, "release the lease of a new instance");
  if (!done.ok()) {
    util::Log().warn("releasing the lease of new instance '{}' failed (it will expire): {}",
                     instance_id, done.status().ToString());
  }
}

Status PostgresStore::SendMessage(Message message) {
  if (message.instance_id.empty()) return InvalidArgumentError("message has no instance id");
  const TimePoint now = TruncateToMicros(clock_ ? clock_->Now() : std::chrono::system_clock::now());
  if (IsUnset(message.event.timestamp)) message.event.timestamp = now;
  message.event.timestamp = TruncateToMicros(message.event.timestamp);
  const int64_t key = NewClientKey();
  const std::string entity = EntityNameOf(message.instance_id);
  Params p;
  p.Int(key)
      .OptionalInt(NowParam())
      .Text(message.instance_id)
      .Text(message.execution_id)
      .OptionalInt(VisibleParam(IsUnset(message.visible_at) ? message.visible_at
                                                            : TruncateToMicros(message.visible_at)))
      .Int(DeliveryKind(message.event))
      .Text(SerializeEvent(message.event))
      .Payload(entity);
  BATON_ASSIGN_OR_RETURN(Outcome o, Mutate(kSendMessage, p, key, "send message"));
  std::vector<std::string> changed;
  if (o.read_back) {
    changed.push_back(message.instance_id);
  } else {
    std::string code = o.result.Text(0, 0);
    if (code == "notfound") {
      return NotFoundError("instance '" + message.instance_id + "' does not exist");
    }
    if (code.starts_with("terminal:")) {
      return FailedPreconditionError("instance '" + message.instance_id + "' is " + code.substr(9));
    }
    if (code == "ok:changed") changed.push_back(message.instance_id);
  }
  Announce(true, 0, changed);
  return Status::Ok();
}

Result<InstanceState> PostgresStore::GetInstance(const std::string& instance_id,
                                                 bool include_payloads) {
  Params p;
  p.Text(instance_id);
  BATON_ASSIGN_OR_RETURN(
      PgResult r,
      Read(include_payloads ? kGetInstanceWithPayloads : kGetInstance, p, "read instance"));
  if (r.rows() == 0) return NotFoundError("instance '" + instance_id + "' does not exist");
  return DecodeState(r, 0, include_payloads, nullptr, 0, /*with_tags=*/true);
}

Result<QueryPage> PostgresStore::QueryInstances(const InstanceQuery& query) {
  return QueryInstancesWith(query, [this](const std::string& sql, const Params& p, const char* what) {
    return ReadSql(sql, p, what);
  });
}

Result<std::vector<HistoryEvent>> PostgresStore::GetHistory(const std::string& instance_id) {
  Params p;
  p.Text(instance_id);
  BATON_ASSIGN_OR_RETURN(PgResult r, Read(kGetHistory, p, "read history"));
  return DecodeHistory(r, instance_id);
}

Result<std::vector<QueueDepth>> PostgresStore::QueueDepths(TimePoint now) {
  // The hub of an instance id, as HubOf() (instance.h) has it.
  constexpr const char* kHub =
      "CASE WHEN left(instance_id, 1) = '@' OR strpos(instance_id, '::') = 0 THEN '' "
      "ELSE left(instance_id, strpos(instance_id, '::') - 1) END";
  const std::string sql = std::string("SELECT hub, sum(m)::bigint, sum(t)::bigint, min(v) FROM (") +
                          " SELECT " + kHub + " AS hub, 1 AS m, 0 AS t,"
                          "  CASE WHEN visible_at <= $1 THEN visible_at END AS v FROM inbox"
                          " UNION ALL"
                          " SELECT " + kHub + ", 0, 1, CASE WHEN visible_at <= $1 THEN visible_at END"
                          "  FROM activity_tasks"
                          ") q GROUP BY hub ORDER BY hub";
  Params p;
  p.Int(ToUnixMicros(now));
  BATON_ASSIGN_OR_RETURN(PgResult r, ReadSql(sql, p, "read queue depths"));
  std::vector<QueueDepth> out;
  for (int row = 0; row < r.rows(); ++row) {
    QueueDepth d;
    d.hub = std::string(r.View(row, 0));
    d.orchestration_messages = r.Int(row, 1);
    d.activity_tasks = r.Int(row, 2);
    if (!r.IsNull(row, 3)) d.oldest_visible = FromUnixMicros(r.Int(row, 3));
    out.push_back(std::move(d));
  }
  return out;
}

Result<int> PostgresStore::PurgeInstance(const std::string& instance_id) {
  const int64_t key = NewClientKey();
  Params p;
  p.Int(key).OptionalInt(NowParam()).Text(instance_id).Bool(IsEntityInstanceId(instance_id));
  BATON_ASSIGN_OR_RETURN(Outcome o, Mutate(kPurgeInstance, p, key, "purge instance"));
  if (!o.read_back) {
    std::string code = o.result.Text(0, 0);
    if (code == "notfound") return NotFoundError("instance '" + instance_id + "' does not exist");
    if (code == "busy") {
      return FailedPreconditionError("entity '" + instance_id + "' has operations pending");
    }
    if (code.starts_with("active:")) {
      return FailedPreconditionError("instance '" + instance_id + "' is " + code.substr(7) +
                                     "; only terminal instances can be purged");
    }
  }
  Announce(false, 0, {instance_id});
  return 1;
}

Result<int> PostgresStore::PurgeInstances(const PurgeFilter& filter) {
  std::vector<std::string> statuses;
  for (OrchestrationStatus s : filter.statuses.empty() ? TerminalStatuses() : filter.statuses) {
    if (IsTerminal(s)) statuses.emplace_back(OrchestrationStatusName(s));
  }
  if (statuses.empty()) return 0;
  int total = 0;
  for (;;) {
    const int64_t key = NewClientKey();
    Params p;
    p.Int(key)
        .OptionalInt(NowParam())
        .TextArray(statuses)
        .OptionalInt(filter.created_from
                         ? std::optional<int64_t>(ToUnixMicros(*filter.created_from))
                         : std::nullopt)
        .OptionalInt(filter.created_to ? std::optional<int64_t>(ToUnixMicros(*filter.created_to))
                                       : std::nullopt)
        .Text(filter.instance_id_prefix)
        .Int(kPurgeChunk);
    BATON_ASSIGN_OR_RETURN(Outcome o, Mutate(kPurgeInstances, p, key, "purge instances"));
    if (o.read_back) {
      // Landed, count unknown: the next round finds what is left.
      AnnounceEverything();
      continue;
    }
    std::vector<std::string> ids = o.result.TextArray(0, 0);
    total += static_cast<int>(ids.size());
    Announce(false, 0, ids);
    if (static_cast<int>(ids.size()) < kPurgeChunk) return total;
  }
}

Result<InstanceState> PostgresStore::WaitForInstance(const std::string& instance_id,
                                                     WaitCondition condition,
                                                     std::chrono::milliseconds timeout,
                                                     bool include_payloads) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Waiter waiter;
  waiter.condition = condition;
  waiter.include_payloads = include_payloads;
  auto reached_by = [&](OrchestrationStatus status) {
    return condition == WaitCondition::kStarted ? status != OrchestrationStatus::kPending
                                                : IsTerminal(status);
  };
  // Whether this node knows, from its own commits, that the instance has
  // not reached the condition: then the first read is skipped (the change
  // that reaches it signals this waiter; the poll re-reads anyway).
  bool skip_read = false;
  {
    std::lock_guard lock(mu_);
    waiters_[instance_id].push_back(&waiter);
    if (auto k = known_status_.find(instance_id); k != known_status_.end()) {
      skip_read = !reached_by(k->second);
    }
  }
  auto unregister = [&] {
    std::lock_guard lock(mu_);
    auto it = waiters_.find(instance_id);
    if (it == waiters_.end()) return;
    std::erase(it->second, &waiter);
    if (it->second.empty()) waiters_.erase(it);
  };
  for (;;) {
    if (skip_read) {
      skip_read = false;
      known_waits_.fetch_add(1, std::memory_order_relaxed);
    } else {
      Result<InstanceState> state = GetInstance(instance_id, include_payloads);
      if (!state.ok() && state.status().code() == StatusCode::kUnavailable &&
          std::chrono::steady_clock::now() + std::chrono::milliseconds(100) < deadline) {
        // The database is restarting or unreachable: keep waiting for it.
        std::unique_lock lock(mu_);
        waiter.cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return interrupted_; });
        if (!interrupted_) continue;
      }
      if (!state.ok() || reached_by(state->status)) {
        unregister();
        return state;
      }
    }
    std::unique_lock lock(mu_);
    // Woken by a commit naming the instance (here or, via NOTIFY, on another
    // node); re-read at least every poll_interval in case a hint was lost.
    auto wake = std::min(deadline, std::chrono::steady_clock::now() + options_.poll_interval);
    waiter.cv.wait_until(lock, wake, [&] { return waiter.signaled || interrupted_; });
    waiter.signaled = false;
    if (waiter.state) {
      // A commit of this node reached the condition and told us the state.
      InstanceState reached_state = std::move(*waiter.state);
      lock.unlock();
      unregister();
      return reached_state;
    }
    if (interrupted_) {
      lock.unlock();
      unregister();
      return CancelledError("store interrupted while waiting for '" + instance_id + "'");
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      lock.unlock();
      unregister();
      return DeadlineExceededError("instance '" + instance_id + "' did not " +
                                   (condition == WaitCondition::kStarted ? "start" : "complete") +
                                   " within " + std::to_string(timeout.count()) + " ms");
    }
  }
}

// ---------------------------------------------------------------------------
// Engine side: orchestrations.

Result<OrchestrationWorkItem> PostgresStore::TakeClaimedInstance(const PgResult& r, int at,
                                                                 int generation_column,
                                                                 int64_t claimed_at, int first_row,
                                                                 int end_row) {
  if (end_row < 0) end_row = r.rows();
  OrchestrationWorkItem item;
  item.instance_id = r.Text(first_row, at);
  BATON_ASSIGN_OR_RETURN(item.instance,
                         DecodeState(r, first_row, false, &item.history_size, at));
  item.lock_token = static_cast<uint64_t>(r.Int(first_row, at + 11));
  item.locked_until = FromUnixMicros(r.Int(first_row, at + 12));
  item.dequeue_count = static_cast<int>(r.Int(first_row, at + 13));
  item.history_generation = r.Int(first_row, generation_column);
  TrackLease(item.lock_token, item.instance_id, std::nullopt, claimed_at, item.locked_until);
  for (int row = first_row; row < end_row; ++row) {
    Message m;
    m.seq = static_cast<uint64_t>(r.Int(row, at + 14));
    m.instance_id = item.instance_id;
    m.execution_id = r.Text(row, at + 15);
    m.visible_at = FromUnixMicros(r.Int(row, at + 16));
    Result<HistoryEvent> event = ParseEvent(r.View(row, at + 17));
    if (!event.ok()) {
      // Left in the table; the instance cannot run until someone looks.
      util::Log().error("inbox row seq={} for instance '{}' is unreadable: {}", m.seq,
                        item.instance_id, event.status().ToString());
      AbandonOrchestrationWorkItem(item, std::chrono::minutes(1));
      return DataLossError("inbox message " + std::to_string(m.seq) + " of instance '" +
                           item.instance_id + "': " + event.status().message());
    }
    m.event = std::move(event).value();
    item.messages.push_back(std::move(m));
  }
  return item;
}

template <typename Item, typename Claim>
Result<std::optional<Item>> PostgresStore::Fetch(FetchQueue& queue, std::deque<Item>& prefetched,
                                                 std::chrono::milliseconds max_wait, Claim claim) {
  const auto deadline = std::chrono::steady_clock::now() + max_wait;
  InsideFetch inside(this, queue);
  for (;;) {
    uint64_t epoch;
    {
      std::unique_lock lock(mu_);
      if (interrupted_) return std::optional<Item>();
      if (!prefetched.empty()) {
        Item item = std::move(prefetched.front());
        prefetched.pop_front();
        return std::optional<Item>(std::move(item));
      }
      const auto now = std::chrono::steady_clock::now();
      if (max_wait.count() > 0 && queue.quiet_epoch == queue.epoch && now < queue.quiet_until) {
        // A claim found nothing and no work was announced since: wait for a
        // wake-up instead of asking the database again.
        lock.unlock();
        if (!TakePermit(queue, std::min(queue.quiet_until, deadline) - now) &&
            std::chrono::steady_clock::now() >= deadline) {
          return std::optional<Item>();
        }
        continue;
      }
      epoch = queue.epoch;
    }
    std::optional<int64_t> next_due_in;
    claims_.fetch_add(1, std::memory_order_relaxed);
    {
      std::lock_guard lock(mu_);
      ++queue.claiming;
    }
    Result<std::optional<Item>> claimed = claim(&next_due_in);
    {
      std::unique_lock lock(mu_);
      if (--queue.claiming == 0 && queue.claim_waiters > 0) queue.claims_done.notify_all();
      if (&queue == &orchestrations_ && claimed.ok() && !claimed->has_value()) {
        // Found nothing: perhaps because a claim of this node, in flight
        // alongside, took the candidates for its backlog (they are queued
        // before it ends). Take one of those rather than report no work.
        ++queue.claim_waiters;
        queue.claims_done.wait(lock, [&] { return queue.claiming == 0 || interrupted_; });
        --queue.claim_waiters;
        if (!interrupted_ && !prefetched.empty()) {
          Item item = std::move(prefetched.front());
          prefetched.pop_front();
          empty_claims_.fetch_add(1, std::memory_order_relaxed);
          return std::optional<Item>(std::move(item));
        }
      }
    }
    BATON_ASSIGN_OR_RETURN(std::optional<Item> item, std::move(claimed));
    if (item) return item;
    empty_claims_.fetch_add(1, std::memory_order_relaxed);
    {
      std::lock_guard lock(mu_);
      if (queue.epoch == epoch) {
        queue.quiet_epoch = epoch;
        queue.quiet_until = std::chrono::steady_clock::now() + IdlePeriod(next_due_in);
      }
    }
    if (!TakePermit(queue, std::min(IdlePeriod(next_due_in),
                                    deadline - std::chrono::steady_clock::now())) &&
        std::chrono::steady_clock::now() >= deadline) {
      return std::optional<Item>();  // nothing woke us: the next call polls
    }
  }
}

Result<std::optional<OrchestrationWorkItem>> PostgresStore::FetchOrchestrationWorkItem(
    std::chrono::milliseconds max_wait) {
  const int64_t lease =
      std::chrono::duration_cast<std::chrono::microseconds>(options_.lease_duration).count();
  return Fetch<OrchestrationWorkItem>(
      orchestrations_, orch_prefetched_, max_wait,
      [&](std::optional<int64_t>* next_due_in) -> Result<std::optional<OrchestrationWorkItem>> {
        const int64_t claimed_at = LocalMicros();
        // This fetcher's item, and the backlog this node keeps (as an
        // activity result does): several instances in one claim.
        const int extra = PrefetchWanted(orchestrations_, orch_prefetched_,
                                         options_.prefetch_backlog);
        Params p;
        p.OptionalInt(NowParam()).Int(lease).Text(options_.node_id).Int(kMaxMessagesPerWorkItem);
        if (extra > 0) p.Int(1 + extra);
        BATON_ASSIGN_OR_RETURN(
            PgResult r, Read(extra > 0 ? kClaimInstances : kClaimInstance, p, "claim instance"));
        if (r.rows() == 0 || r.IsNull(0, 0)) {
          if (r.rows() > 0 && !r.IsNull(0, 18)) *next_due_in = r.Int(0, 18);
          return std::optional<OrchestrationWorkItem>();
        }
        // Rows of one instance are together; the first instance is ours.
        int end = 1;
        while (end < r.rows() && r.View(end, 0) == r.View(0, 0)) ++end;
        Result<OrchestrationWorkItem> item = TakeClaimedInstance(r, 0, 19, claimed_at, 0, end);
        std::vector<OrchestrationWorkItem> more;
        for (int first = end; first < r.rows(); first = end) {
          end = first + 1;
          while (end < r.rows() && r.View(end, 0) == r.View(first, 0)) ++end;
          Result<OrchestrationWorkItem> other =
              TakeClaimedInstance(r, 0, 19, claimed_at, first, end);
          if (other.ok()) more.push_back(std::move(other).value());  // else abandoned, logged
        }
        if (!more.empty()) {
          bool interrupted;
          {
            std::lock_guard lock(mu_);
            interrupted = interrupted_;
            if (!interrupted) {
              for (OrchestrationWorkItem& m : more) orch_prefetched_.push_back(std::move(m));
            }
          }
          if (interrupted) {
            for (const OrchestrationWorkItem& m : more) {
              AbandonOrchestrationWorkItem(m, std::chrono::milliseconds(0));
            }
          } else {
            Wake(orchestrations_, static_cast<int>(more.size()), /*in_database=*/false);
          }
        }
        if (!item.ok()) return item.status();
        return std::optional<OrchestrationWorkItem>(std::move(item).value());
      });
}

void PostgresStore::CompleteOrchestrationWorkItem(const OrchestrationWorkItem& item,
                                                  OrchestrationUpdate update, CommitCallback done) {
  // Everything is serialized here, on the caller's thread.
  const TimePoint now = TruncateToMicros(clock_ ? clock_->Now() : std::chrono::system_clock::now());
  std::vector<int64_t> consumed;
  consumed.reserve(item.messages.size());
  for (const Message& m : item.messages) consumed.push_back(static_cast<int64_t>(m.seq));
  Json outbox = Json::array();
  for (Message& m : update.outbox) {
    if (IsUnset(m.event.timestamp)) m.event.timestamp = now;
    m.event.timestamp = TruncateToMicros(m.event.timestamp);
    const auto* started = std::get_if<events::ExecutionStarted>(&m.event.body);
    if (m.instance_id.empty() && started != nullptr) m.instance_id = started->instance_id;
    Json j = Json::object();
    j["instance_id"] = m.instance_id;
    j["execution_id"] = m.execution_id;
    if (std::optional<int64_t> v =
            VisibleParam(IsUnset(m.visible_at) ? m.visible_at : TruncateToMicros(m.visible_at))) {
      j["visible_at"] = *v;
    }
    j["event"] = SerializeEvent(m.event);
    j["kind"] = DeliveryKind(m.event);
    if (std::string entity = EntityNameOf(m.instance_id); !entity.empty()) j["entity"] = entity;
    if (started != nullptr) {
      Json s = Json::object();
      s["name"] = started->name;
      s["execution_id"] = started->execution_id;
      s["version"] = started->version;
      if (!started->input.empty()) s["input"] = started->input;
      if (started->scheduled_start) s["scheduled_start"] = ToUnixMicros(*started->scheduled_start);
      if (!started->tags.empty()) s["tags"] = TagsJson(started->tags);
      if (started->parent) {
        const ParentInstance& parent = *started->parent;
        s["parent"] = parent.instance_id;
        s["reply_instance"] = parent.instance_id;
        s["reply_execution"] = parent.execution_id;
        // The database appends the status it finds to errorMessage.
        s["reply_event"] = SerializeEvent(
            HistoryEvent{-1, now,
                         events::SubOrchestrationInstanceFailed{
                             parent.task_scheduled_id,
                             FailureDetails{"InstanceAlreadyExists",
                                            "an orchestration instance with id '" + m.instance_id +
                                                "' already exists with status ",
                                            "",
                                            "",
                                            /*is_non_retriable=*/true,
                                            {}}}});
      }
      j["start"] = std::move(s);
    }
    outbox.push_back(std::move(j));
  }
  Json tasks = Json::array();
  for (const ActivityTask& t : update.tasks) {
    Json j = Json::object();
    j["instance_id"] = t.instance_id.empty() ? item.instance_id : t.instance_id;
    j["execution_id"] = t.execution_id.empty() ? update.execution_id : t.execution_id;
    j["task_id"] = t.task_id;
    j["name"] = t.name;
    j["version"] = t.version;
    if (!t.input.empty()) j["input"] = t.input;
    if (std::optional<int64_t> v =
            VisibleParam(IsUnset(t.visible_at) ? t.visible_at : TruncateToMicros(t.visible_at))) {
      j["visible_at"] = *v;
    }
    tasks.push_back(std::move(j));
  }
  const bool sync = update.sync || options_.sync_all;
  auto params = std::make_shared<Params>();
  params->Text(item.instance_id)
      .Int(static_cast<int64_t>(item.lock_token))
      .OptionalInt(NowParam())
      .Bool(sync)
      .IntArray(consumed)
      .Bool(update.consume_only)
      .Bool(update.reset_history)
      .Text(update.execution_id)
      .Text(OrchestrationStatusName(update.status))
      .Payload(update.input)
      .Payload(update.output)
      .Payload(update.custom_status)
      .Payload(update.failure ? SerializeFailure(*update.failure) : std::string());
  if (update.new_events.empty()) {
    params->Null();
  } else {
    params->Text(SerializeEvents(update.new_events));
  }
  params->Int(static_cast<int64_t>(update.new_events.size()))
      .Text(outbox.dump())
      .Text(tasks.dump());
  // The instance's status once this commits (consume_only keeps the old one).
  const OrchestrationStatus status_after =
      update.consume_only ? item.instance.status : update.status;
  // And its state without payloads, for this node's waiters (updated_at and
  // completed_at are the database's time, o_now). consume_only writes none.
  std::optional<InstanceState> state_after;
  if (!update.consume_only) {
    state_after = item.instance;
    state_after->execution_id = update.execution_id;
    state_after->status = update.status;
    state_after->input.clear();
    state_after->output.clear();
    state_after->custom_status.clear();
    state_after->failure.reset();
  }
  CommitJob job;
  job.statement = &kCompleteOrchestration;
  job.commit_key = static_cast<int64_t>(item.lock_token);
  job.what = "complete orchestration work item";
  job.sync = sync;
  job.lock_key = item.instance_id;
  job.bytes = params->bytes() + 256;  // and what the committer adds
  auto started = std::make_shared<int64_t>(0);
  job.params = [this, params, started] {
    // Idle activity fetchers here get the episode's tasks with it.
    Params p = *params;
    p.Int(PrefetchWanted(tasks_, task_prefetched_)).Int(LeaseMicros()).Text(options_.node_id);
    *started = LocalMicros();
    return p;
  };
  job.done = std::move(done);
  job.finish = [this, started, token = item.lock_token, id = item.instance_id, status_after,
                state_after = std::move(state_after)](Result<Outcome> o) mutable {
    ForgetLease(token);
    Status status;
    if (!o.ok()) {
      status = o.status();
    } else if (o->read_back) {
      AnnounceEverything();
    } else if (o->result.Text(0, 0) == "aborted") {
      status = AbortedError("lease " + std::to_string(token) + " on instance '" + id +
                            "' is no longer held");
    } else {
      if (!o->result.IsNull(0, 4)) TakeClaimedTasks(o->result.View(0, 4), *started);
      if (state_after) {
        const TimePoint now = FromUnixMicros(o->result.Int(0, 5));
        state_after->last_updated_at = now;
        state_after->completed_at.reset();
        if (IsTerminal(state_after->status)) state_after->completed_at = now;
      }
      Announce(o->result.Bool(0, 1), static_cast<int>(o->result.Int(0, 2)),
               o->result.TextArray(0, 3), KnownStatus{id, status_after, std::move(state_after)});
    }
    return status;
  };
  Submit(std::move(job));
}

void PostgresStore::AbandonOrchestrationWorkItem(const OrchestrationWorkItem& item,
                                                 std::chrono::milliseconds delay) {
  Params p;
  p.Text(item.instance_id)
      .Int(static_cast<int64_t>(item.lock_token))
      .OptionalInt(NowParam())
      .Int(std::chrono::duration_cast<std::chrono::microseconds>(delay).count());
  Result<Outcome> r = Mutate(kAbandonInstance, p, 0, "abandon orchestration work item");
  ForgetLease(item.lock_token);
  if (!r.ok()) {
    util::Log().warn("abandoning '{}' failed (its lease will expire): {}", item.instance_id,
                     r.status().ToString());
    return;
  }
  Announce(true, 0, {});
}

// ---------------------------------------------------------------------------
// Engine side: activities.

Result<std::optional<ActivityWorkItem>> PostgresStore::FetchActivityWorkItem(
    std::chrono::milliseconds max_wait) {
  const int64_t lease =
      std::chrono::duration_cast<std::chrono::microseconds>(options_.lease_duration).count();
  return Fetch<ActivityWorkItem>(
      tasks_, task_prefetched_, max_wait,
      [&](std::optional<int64_t>* next_due_in) -> Result<std::optional<ActivityWorkItem>> {
        const int64_t claimed_at = LocalMicros();
        Params p;
        p.OptionalInt(NowParam()).Int(lease).Text(options_.node_id);
        BATON_ASSIGN_OR_RETURN(PgResult r, Read(kClaimTask, p, "claim activity task"));
        if (r.rows() == 0 || r.IsNull(0, 0)) {
          if (r.rows() > 0 && !r.IsNull(0, 11)) *next_due_in = r.Int(0, 11);
          return std::optional<ActivityWorkItem>();
        }
        ActivityWorkItem item;
        item.task.seq = static_cast<uint64_t>(r.Int(0, 0));
        item.task.instance_id = r.Text(0, 1);
        item.task.execution_id = r.Text(0, 2);
        item.task.task_id = static_cast<int32_t>(r.Int(0, 3));
        item.task.name = r.Text(0, 4);
        item.task.version = r.Text(0, 5);
        item.task.input = r.Text(0, 6);
        item.task.visible_at = FromUnixMicros(r.Int(0, 7));
        item.lock_token = static_cast<uint64_t>(r.Int(0, 8));
        item.locked_until = FromUnixMicros(r.Int(0, 9));
        item.dequeue_count = static_cast<int>(r.Int(0, 10));
        TrackLease(item.lock_token, item.task.instance_id, item.task.seq, claimed_at,
                   item.locked_until);
        return std::optional<ActivityWorkItem>(std::move(item));
      });
}

void PostgresStore::CompleteActivityWorkItem(const ActivityWorkItem& item, Message result,
                                             CommitCallback done) {
  const TimePoint now = TruncateToMicros(clock_ ? clock_->Now() : std::chrono::system_clock::now());
  if (result.instance_id.empty()) result.instance_id = item.task.instance_id;
  if (result.execution_id.empty()) result.execution_id = item.task.execution_id;
  if (IsUnset(result.event.timestamp)) result.event.timestamp = now;
  result.event.timestamp = TruncateToMicros(result.event.timestamp);
  auto params = std::make_shared<Params>();
  params->Int(static_cast<int64_t>(item.task.seq))
      .Int(static_cast<int64_t>(item.lock_token))
      .OptionalInt(NowParam())
      .Bool(options_.sync_all)
      .Text(result.instance_id)
      .Text(result.execution_id)
      .OptionalInt(VisibleParam(IsUnset(result.visible_at) ? result.visible_at
                                                           : TruncateToMicros(result.visible_at)))
      .Text(SerializeEvent(result.event));
  CommitJob job;
  job.statement = &kCompleteTask;
  job.commit_key = static_cast<int64_t>(item.lock_token);
  job.what = "complete activity work item";
  job.sync = options_.sync_all;
  job.lock_key = result.instance_id;
  job.bytes = params->bytes() + 256;  // and what the committer adds
  auto started = std::make_shared<int64_t>(0);
  job.params = [this, params, started] {
    // An idle orchestration fetcher here gets the instance the result wakes.
    Params p = *params;
    if (PrefetchWanted(orchestrations_, orch_prefetched_, options_.prefetch_backlog) > 0) {
      p.Int(LeaseMicros());
    } else {
      p.Null();
    }
    p.Text(options_.node_id);
    *started = LocalMicros();
    return p;
  };
  job.done = std::move(done);
  job.finish = [this, started, token = item.lock_token, seq = item.task.seq](Result<Outcome> o) {
    ForgetLease(token);
    Status status;
    if (!o.ok()) {
      status = o.status();
    } else if (o->read_back) {
      AnnounceEverything();
    } else if (o->result.Text(0, 0) == "aborted") {
      status = AbortedError("lease " + std::to_string(token) + " on activity task " +
                            std::to_string(seq) + " is no longer held");
    } else {
      if (!o->result.IsNull(0, 2)) {
        Result<OrchestrationWorkItem> claimed = TakeClaimedInstance(o->result, 2, 20, *started);
        if (claimed.ok()) {
          bool interrupted;
          {
            std::lock_guard lock(mu_);
            interrupted = interrupted_;
            if (!interrupted) orch_prefetched_.push_back(*claimed);
          }
          if (interrupted) {
            AbandonOrchestrationWorkItem(*claimed,
                                         std::chrono::milliseconds(0));  // nobody will fetch it
          } else {
            Wake(orchestrations_, 1, /*in_database=*/false);
          }
        }
      }
      Announce(o->result.Bool(0, 1), 0, {});
    }
    return status;
  };
  Submit(std::move(job));
}

void PostgresStore::AbandonActivityWorkItem(const ActivityWorkItem& item,
                                            std::chrono::milliseconds delay) {
  Params p;
  p.Int(static_cast<int64_t>(item.task.seq))
      .Int(static_cast<int64_t>(item.lock_token))
      .OptionalInt(NowParam())
      .Int(std::chrono::duration_cast<std::chrono::microseconds>(delay).count());
  Result<Outcome> r = Mutate(kAbandonTask, p, 0, "abandon activity work item");
  ForgetLease(item.lock_token);
  if (!r.ok()) {
    util::Log().warn("abandoning activity task {} failed (its lease will expire): {}",
                     item.task.seq, r.status().ToString());
    return;
  }
  Announce(false, 1, {});
}

int64_t PostgresStore::LeaseMicros() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(options_.lease_duration).count();
}

template <typename Item>
int PostgresStore::PrefetchWanted(FetchQueue& queue, const std::deque<Item>& prefetched,
                                  int backlog) {
  if (!options_.prefetch) return 0;
  std::lock_guard lock(mu_);
  if (interrupted_) return 0;
  int wanted = queue.sleepers;
  if (backlog > 0 && (queue.inside > 0 || std::chrono::steady_clock::now() - queue.last_fetch <
                                              options_.poll_interval)) {
    wanted = std::max(wanted, backlog);
  }
  return std::max(0, wanted - static_cast<int>(prefetched.size()));
}

void PostgresStore::TakeClaimedTasks(std::string_view json, int64_t claimed_at) {
  Json tasks;
  if (!ParseJson(json, &tasks).ok() || !tasks.is_array()) return;
  std::vector<ActivityWorkItem> items;
  for (const Json& t : tasks) {
    ActivityWorkItem item;
    item.task.seq = t.value("seq", uint64_t{0});
    item.task.instance_id = t.value("instance_id", std::string());
    item.task.execution_id = t.value("execution_id", std::string());
    item.task.task_id = t.value("task_id", int32_t{-1});
    item.task.name = t.value("name", std::string());
    item.task.version = t.value("version", std::string());
    if (t.contains("input") && t["input"].is_string())
      item.task.input = t["input"].get<std::string>();
    item.task.visible_at = FromUnixMicros(t.value("visible_at", int64_t{0}));
    item.lock_token = t.value("lock_token", uint64_t{0});
    item.locked_until = FromUnixMicros(t.value("locked_until", int64_t{0}));
    item.dequeue_count = 1;
    TrackLease(item.lock_token, item.task.instance_id, item.task.seq, claimed_at,
               item.locked_until);
    items.push_back(std::move(item));
  }
  bool interrupted;
  {
    std::lock_guard lock(mu_);
    interrupted = interrupted_;
    if (!interrupted) {
      for (ActivityWorkItem& item : items) task_prefetched_.push_back(std::move(item));
    }
  }
  if (interrupted) {
    for (const ActivityWorkItem& item : items)
      AbandonActivityWorkItem(item, std::chrono::milliseconds(0));
    return;
  }
  Wake(tasks_, static_cast<int>(items.size()), /*in_database=*/false);
}

void PostgresStore::Interrupt() {
  std::deque<OrchestrationWorkItem> orchestrations;
  std::deque<ActivityWorkItem> tasks;
  {
    std::lock_guard lock(mu_);
    interrupted_ = true;
    for (auto& [id, list] : waiters_) {
      for (Waiter* w : list) w->cv.notify_one();
    }
    orchestrations.swap(orch_prefetched_);
    tasks.swap(task_prefetched_);
  }
  orchestrations_.cv.notify_all();
  tasks_.cv.notify_all();
  orchestrations_.claims_done.notify_all();
  // Work leased ahead for fetchers that are leaving goes back at once.
  for (const OrchestrationWorkItem& item : orchestrations) {
    AbandonOrchestrationWorkItem(item, std::chrono::milliseconds(0));
  }
  for (const ActivityWorkItem& item : tasks)
    AbandonActivityWorkItem(item, std::chrono::milliseconds(0));
}

void PostgresStore::ResumeFetching() {
  std::lock_guard lock(mu_);
  interrupted_ = false;
}

}  // namespace pg

Result<std::unique_ptr<Store>> OpenPostgresStore(const PostgresStoreOptions& options) {
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<pg::PostgresStore> store,
                         pg::PostgresStore::Open(options));
  return std::unique_ptr<Store>(std::move(store));
}

namespace {

// OpenPostgresStoreReader's reader: one session in which PostgreSQL itself
// refuses writes (default_transaction_read_only), no pool, no threads, no
// leases (baton/store_reader.h).
class PostgresStoreReader final : public StoreReader {
 public:
  explicit PostgresStoreReader(std::unique_ptr<pg::PgConnection> conn) : conn_(std::move(conn)) {}
  Result<QueryPage> QueryInstances(const InstanceQuery& query) override {
    return pg::QueryInstancesWith(query, [this](const std::string& sql, const pg::Params& p,
                                                const char* what) -> Result<pg::PgResult> {
      if (!p.status().ok()) return p.status();
      return conn_->ExecParams(sql, p, what);
    });
  }
  Result<std::vector<HistoryEvent>> GetHistory(const std::string& instance_id) override {
    pg::Params p;
    p.Text(instance_id);
    if (!p.status().ok()) return p.status();
    BATON_ASSIGN_OR_RETURN(pg::PgResult r, conn_->ExecPrepared(pg::kGetHistory, p, "read history"));
    return pg::DecodeHistory(r, instance_id);
  }

 private:
  std::unique_ptr<pg::PgConnection> conn_;
};

}  // namespace

Result<std::unique_ptr<StoreReader>> OpenPostgresStoreReader(const std::string& url) {
  BATON_ASSIGN_OR_RETURN(
      std::unique_ptr<pg::PgConnection> conn,
      pg::PgConnection::Connect(url,
                                "SET application_name = 'baton reader'; SET client_min_messages = "
                                "warning; SET default_transaction_read_only = on"));
  return std::unique_ptr<StoreReader>(new PostgresStoreReader(std::move(conn)));
}

Result<SchemaVersion> MigratePostgresStore(const std::string& url) {
  BATON_ASSIGN_OR_RETURN(
      std::unique_ptr<pg::PgConnection> conn,
      pg::PgConnection::Connect(
          url, "SET application_name = 'baton migrate'; SET client_min_messages = warning"));
  return pg::Migrate(*conn);
}

}  // namespace baton
