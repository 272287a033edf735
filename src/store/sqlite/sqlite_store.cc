#include "baton/sqlite_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <future>
#include <set>
#include <utility>
#include <variant>

#include "baton/json.h"
#include "baton/store_reader.h"
#include "store/migrations.h"
#include "store/sqlite/migrations.h"
#include "util/overloaded.h"
#include "store/sqlite/sqlite_store_impl.h"
#include "store/instance_query.h"
#include "util/hex.h"
#include "util/log.h"
#include "util/node_id.h"
#include "util/metrics.h"

namespace baton {
namespace sqlite {
namespace {

using util::Overloaded;

constexpr size_t kMaxInstanceIdLength = 256;
// Bounds one work item so an instance flooded with events still makes
// progress in episodes of reasonable size.
constexpr size_t kMaxMessagesPerWorkItem = 10000;
// Reader connections kept open between reads; more are opened on demand
// when many threads read at once, and closed again afterwards.
constexpr size_t kMaxIdleReaders = 4;
// PurgeInstances deletes in transactions of this many instances, so a large
// purge does not hold up other writers for long.
constexpr int kPurgeChunk = 1000;

// ---- SQL ----
// Writer statements.
constexpr const char* kSelectHead =
    "SELECT status, history_size, execution_id FROM instances WHERE instance_id = ?1";
constexpr const char* kInsertInstance =
    "INSERT INTO instances (instance_id, name, version, execution_id, status, created_at, "
    "updated_at, scheduled_start, input, parent_instance_id, tags, history_size) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8, ?9, ?10, 0)";
constexpr const char* kUpdateInstance =
    "UPDATE instances SET execution_id = ?2, status = ?3, output = ?4, custom_status = ?5, "
    "failure = ?6, updated_at = ?7, completed_at = ?8, history_size = ?9, "
    "history_generation = history_generation + ?10, "
    "input = CASE WHEN ?10 THEN ?11 ELSE input END WHERE instance_id = ?1";
constexpr const char* kMarkRewinding =
    "UPDATE instances SET status = 'Pending', completed_at = NULL, updated_at = ?2 WHERE instance_id = ?1";
constexpr const char* kDeleteInstance = "DELETE FROM instances WHERE instance_id = ?1";
constexpr const char* kDeleteHistory = "DELETE FROM history WHERE instance_id = ?1";
constexpr const char* kDeleteInboxOfInstance = "DELETE FROM inbox WHERE instance_id = ?1";
constexpr const char* kDeleteTasksOfInstance = "DELETE FROM activity_tasks WHERE instance_id = ?1";
constexpr const char* kInsertHistory =
    "INSERT INTO history (instance_id, chunk, events) VALUES (?1, ?2, ?3)";
constexpr const char* kInsertInbox =
    "INSERT INTO inbox (seq, instance_id, execution_id, visible_at, event) "
    "VALUES (?1, ?2, ?3, ?4, ?5)";
constexpr const char* kDeleteInboxSeq = "DELETE FROM inbox WHERE seq = ?1";
constexpr const char* kInsertTask =
    "INSERT INTO activity_tasks (seq, instance_id, execution_id, task_id, name, version, input, "
    "visible_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
constexpr const char* kDeleteTaskSeq = "DELETE FROM activity_tasks WHERE seq = ?1";
constexpr const char* kBegin = "BEGIN IMMEDIATE";
constexpr const char* kCommit = "COMMIT";
constexpr const char* kSavepoint = "SAVEPOINT op";
constexpr const char* kRelease = "RELEASE op";
constexpr const char* kRollbackTo = "ROLLBACK TO op";

// Reader statements. The first 12 columns are the same in both, so one
// decoder serves GetInstance, QueryInstances and fetches.
constexpr const char* kStateColumns =
    "instance_id, name, version, execution_id, status, created_at, updated_at, completed_at, "
    "scheduled_start, parent_instance_id, history_size, history_generation";
constexpr const char* kPayloadColumns = ", input, output, custom_status, failure";
// Last, after the payload columns when there are any (DecodeState's with_tags).
constexpr const char* kTagsColumn = ", tags";

// Times in the store are microseconds; truncating in memory too keeps what a
// fetch returns identical before and after a reopen.
TimePoint TruncateToMicros(TimePoint t) { return FromUnixMicros(ToUnixMicros(t)); }

bool IsUnset(TimePoint t) { return t == TimePoint{}; }

// The smallest string greater than every string starting with `prefix`, or
// "" when there is none (the prefix is all 0xff bytes).
std::string PrefixUpperBound(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xff) prefix.pop_back();
  if (!prefix.empty())
    prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

std::vector<OrchestrationStatus> TerminalStatuses() {
  return {OrchestrationStatus::kCompleted, OrchestrationStatus::kFailed,
          OrchestrationStatus::kTerminated, OrchestrationStatus::kCanceled};
}

std::string TagsJson(const std::map<std::string, std::string>& tags) {
  if (tags.empty()) return std::string();
  Json j = Json::object();
  for (const auto& [k, v] : tags) j[k] = v;
  return DumpJson(j);
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

// Decodes the columns of kStateColumns (and kPayloadColumns when
// `include_payloads`) of the current row.
Result<InstanceState> DecodeState(const Statement& row, bool include_payloads,
                                  int64_t* history_size, int64_t* history_generation = nullptr,
                                  bool with_tags = false) {
  InstanceState s;
  s.instance_id = row.Text(0);
  s.name = row.Text(1);
  s.version = row.Text(2);
  s.execution_id = row.Text(3);
  std::string_view status = row.TextView(4);
  if (!ParseOrchestrationStatus(status, &s.status)) {
    return DataLossError("instance '" + s.instance_id + "' has unknown status '" +
                         std::string(status) + "'");
  }
  s.created_at = FromUnixMicros(row.Int(5));
  s.last_updated_at = FromUnixMicros(row.Int(6));
  if (!row.IsNull(7)) s.completed_at = FromUnixMicros(row.Int(7));
  if (!row.IsNull(8)) s.scheduled_start = FromUnixMicros(row.Int(8));
  s.parent_instance_id = row.Text(9);
  if (history_size != nullptr) *history_size = row.Int(10);
  if (history_generation != nullptr) *history_generation = row.Int(11);
  if (include_payloads) {
    s.input = row.Text(12);
    s.output = row.Text(13);
    s.custom_status = row.Text(14);
    if (!row.IsNull(15)) {
      Result<FailureDetails> f = ParseFailure(row.TextView(15));
      if (!f.ok()) {
        return DataLossError("instance '" + s.instance_id + "': " + f.status().message());
      }
      s.failure = std::move(f).value();
    }
  }
  if (with_tags) BATON_RETURN_IF_ERROR(DecodeTags(row.TextView(include_payloads ? 16 : 12), s.instance_id, &s.tags));
  return s;
}

// QueryInstances and GetHistory on a reader connection, shared by the store
// and its read-only reader (OpenSqliteStoreReader).
Result<QueryPage> QueryInstancesOn(Connection& reader, const InstanceQuery& query) {
  BATON_ASSIGN_OR_RETURN(store::QueryCursor cursor, store::InstanceQueryStart(query));

  // Only the shape of the SQL varies with the filter, so each shape is
  // prepared once per reader connection. `filter` is every condition but the
  // statuses and the cursor: the per-status counts share it.
  using Param = std::variant<int64_t, std::string>;
  std::vector<Param> params;
  auto next = [&](Param v) {
    params.push_back(std::move(v));
    return "?" + std::to_string(params.size());
  };
  std::string filter;
  if (query.created_from) filter += " AND created_at >= " + next(ToUnixMicros(*query.created_from));
  if (query.created_to) filter += " AND created_at < " + next(ToUnixMicros(*query.created_to));
  auto prefix = [&](const char* column, const std::string& value) {
    if (value.empty()) return;
    filter += std::string(" AND ") + column + " >= " + next(value);
    std::string upper = PrefixUpperBound(value);
    if (!upper.empty()) filter += std::string(" AND ") + column + " < " + next(upper);
  };
  prefix("instance_id", query.instance_id_prefix);
  prefix("name", query.name_prefix);
  if (query.exclude_entities) {
    // IsEntityInstanceId in SQL: the id, or its part after the hub's "::",
    // is "@name@key".
    filter +=
        " AND NOT (instance_id GLOB '@*@*' OR (instr(instance_id, '::') > 0 AND "
        "substr(instance_id, instr(instance_id, '::') + 2) GLOB '@*@*'))";
  }
  const size_t filter_params = params.size();

  std::string where = filter;
  if (!query.statuses.empty()) {
    where += " AND status IN (";
    for (size_t i = 0; i < query.statuses.size(); ++i) {
      where += (i ? ", " : "") + next(std::string(OrchestrationStatusName(query.statuses[i])));
    }
    where += ")";
  }
  std::string order;
  switch (query.order) {
    case InstanceOrder::kInstanceId:
      if (cursor.has_cursor) where += " AND instance_id > " + next(cursor.instance_id);
      order = " ORDER BY instance_id";
      break;
    case InstanceOrder::kNewestFirst:
    case InstanceOrder::kOldestFirst: {
      const bool newest = query.order == InstanceOrder::kNewestFirst;
      if (cursor.has_cursor) {
        const std::string t = next(cursor.created_micros);
        const std::string id = next(cursor.instance_id);
        const char* op = newest ? " < " : " > ";
        where += " AND (created_at" + std::string(op) + t + " OR (created_at = " + t +
                 " AND instance_id" + op + id + "))";
      }
      order = newest ? " ORDER BY created_at DESC, instance_id DESC"
                     : " ORDER BY created_at, instance_id";
      break;
    }
  }
  std::string sql = std::string("SELECT ") + kStateColumns;
  if (query.include_payloads) sql += kPayloadColumns;
  sql += kTagsColumn;
  sql += " FROM instances WHERE 1" + where + order + " LIMIT " + next(int64_t{query.page_size} + 1);

  auto bind = [](Statement& st, const std::vector<Param>& values, size_t count) {
    for (size_t i = 0; i < count; ++i) {
      std::visit([&](const auto& v) { st.Bind(static_cast<int>(i + 1), v); }, values[i]);
    }
  };

  QueryPage page;
  {
    BATON_ASSIGN_OR_RETURN(Statement st, reader.Prepare(sql));
    bind(st, params, params.size());
    for (;;) {
      BATON_ASSIGN_OR_RETURN(bool row, st.Step("query instances"));
      if (!row) break;
      if (static_cast<int>(page.instances.size()) == query.page_size) {
        page.continuation_token = store::EncodeQueryCursor(query, page.instances.back());
        break;
      }
      BATON_ASSIGN_OR_RETURN(InstanceState state,
                             DecodeState(st, query.include_payloads, nullptr, nullptr, /*with_tags=*/true));
      page.instances.push_back(std::move(state));
    }
  }
  if (query.count_by_status) {
    BATON_ASSIGN_OR_RETURN(
        Statement st,
        reader.Prepare("SELECT status, count(*) FROM instances WHERE 1" + filter + " GROUP BY status"));
    bind(st, params, filter_params);
    for (;;) {
      BATON_ASSIGN_OR_RETURN(bool row, st.Step("count instances"));
      if (!row) break;
      OrchestrationStatus status;
      if (!ParseOrchestrationStatus(st.Text(0), &status)) continue;
      page.status_counts.emplace_back(status, st.Int(1));
    }
    std::sort(page.status_counts.begin(), page.status_counts.end());
  }
  return page;
}

Result<std::vector<HistoryEvent>> GetHistoryOn(Connection& reader, const std::string& instance_id) {
  // One read transaction: the existence check and the chunks come from the
  // same snapshot.
  BATON_RETURN_IF_ERROR(reader.Exec("BEGIN", "begin history read"));
  {
    BATON_ASSIGN_OR_RETURN(Statement st,
                           reader.Prepare("SELECT 1 FROM instances WHERE instance_id = ?1"));
    st.Bind(1, instance_id);
    BATON_ASSIGN_OR_RETURN(bool row, st.Step("read instance"));
    if (!row) return NotFoundError("instance '" + instance_id + "' does not exist");
  }
  std::vector<HistoryEvent> history;
  {
    BATON_ASSIGN_OR_RETURN(
        Statement st,
        reader.Prepare("SELECT chunk, events FROM history WHERE instance_id = ?1 ORDER BY chunk"));
    st.Bind(1, instance_id);
    for (;;) {
      BATON_ASSIGN_OR_RETURN(bool row, st.Step("read history"));
      if (!row) break;
      Result<std::vector<HistoryEvent>> chunk = ParseEvents(st.TextView(1));
      if (!chunk.ok()) {
        return DataLossError("history of instance '" + instance_id + "', chunk " +
                             std::to_string(st.Int(0)) + ": " + chunk.status().message());
      }
      for (HistoryEvent& e : chunk.value()) history.push_back(std::move(e));
    }
  }
  BATON_RETURN_IF_ERROR(reader.Exec("COMMIT", "end history read"));
  return history;
}

// The writer's metrics (docs/metrics.md): group commits and their sync.
struct SqliteMetrics {
  util::metrics::Registry& r = util::metrics::Default();
  util::metrics::Histogram& commit = r.GetHistogram(
      "baton_store_commit_seconds", "A group commit: the writer's transaction from BEGIN to COMMIT done",
      {{"store", "sqlite"}});
  util::metrics::Histogram& sync_full = r.GetHistogram(
      "baton_store_sync_seconds",
      "The COMMIT of a group commit: WAL append, and fsync when sync=full (acknowledged writes)",
      {{"store", "sqlite"}, {"sync", "full"}});
  util::metrics::Histogram& sync_normal = r.GetHistogram(
      "baton_store_sync_seconds",
      "The COMMIT of a group commit: WAL append, and fsync when sync=full (acknowledged writes)",
      {{"store", "sqlite"}, {"sync", "normal"}});
  util::metrics::Counter& ops =
      r.GetCounter("baton_store_writes_total", "Writes the store's writer ran (many per group commit)",
                   {{"store", "sqlite"}});
  util::metrics::Counter& failed =
      r.GetCounter("baton_store_commit_failures_total", "Group commits that failed as a whole (I/O error, disk full)",
                   {{"store", "sqlite"}});
  util::metrics::Counter& waits = r.GetCounter(
      "baton_store_group_commit_waits_total",
      "Group commits whose idle writer first waited (up to group_commit_wait) for more writes to share its fsync",
      {{"store", "sqlite"}});
};

SqliteMetrics& StoreMetrics() {
  static SqliteMetrics m;
  return m;
}

}  // namespace

Result<SchemaVersion> Migrate(Connection& c, const std::string& path) {
  // BEGIN IMMEDIATE takes the write lock: a second migrator waits (busy
  // timeout) and then finds the work done.
  BATON_RETURN_IF_ERROR(c.Exec("BEGIN IMMEDIATE", "begin migration of " + path));
  auto fail = [&](Status s) -> Status {
    c.Exec("ROLLBACK", "rollback migration").IgnoreError();
    return s;
  };
  Status s = c.Exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations ("
      "  version    INTEGER PRIMARY KEY,"
      "  name       TEXT NOT NULL,"
      "  applied_at INTEGER NOT NULL)",
      "create schema_migrations in " + path);
  if (!s.ok()) return fail(s);
  SchemaVersion v;
  {
    Result<Statement> st = c.Prepare("SELECT coalesce(max(version), 0) FROM schema_migrations");
    if (!st.ok()) return fail(st.status());
    Result<bool> row = st->Step("read schema version");
    if (!row.ok()) return fail(row.status());
    v.before = static_cast<int>(st->Int(0));
  }
  v.after = v.before;
  const int latest = store::LatestVersion(kSqliteMigrations);
  if (v.before > latest) {
    return fail(FailedPreconditionError("store " + path + " has schema version " +
                                        std::to_string(v.before) + "; this build knows up to " +
                                        std::to_string(latest)));
  }
  for (const store::Migration& m : kSqliteMigrations) {
    if (m.version <= v.before) continue;
    s = c.Exec(m.sql, "apply migration " + std::to_string(m.version) + " (" + m.name + ") to " + path);
    if (!s.ok()) return fail(s);
    Result<Statement> st =
        c.Prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)");
    if (!st.ok()) return fail(st.status());
    s = st->Bind(1, static_cast<int64_t>(m.version))
            .Bind(2, m.name)
            .Bind(3, ToUnixMicros(std::chrono::system_clock::now()))
            .Run("record migration");
    if (!s.ok()) return fail(s);
    v.after = m.version;
  }
  BATON_RETURN_IF_ERROR(c.Exec("COMMIT", "commit migration of " + path));
  return v;
}

// Borrows a reader connection from the pool for one read and gives it back,
// rolled back to autocommit, when it goes out of scope.
class SqliteStore::ReaderLease {
 public:
  ReaderLease(SqliteStore* store, std::unique_ptr<Connection> conn)
      : store_(store), conn_(std::move(conn)) {}
  ~ReaderLease() {
    if (!sqlite3_get_autocommit(conn_->db())) conn_->Exec("ROLLBACK", "end read").IgnoreError();
    store_->ReleaseReader(std::move(conn_));
  }
  ReaderLease(const ReaderLease&) = delete;
  ReaderLease& operator=(const ReaderLease&) = delete;
  Connection& operator*() { return *conn_; }
  Connection* operator->() { return conn_.get(); }

 private:
  SqliteStore* store_;
  std::unique_ptr<Connection> conn_;
};

// ---------------------------------------------------------------------------
// Open, close.

SqliteStore::SqliteStore(SqliteStoreOptions options)
    : options_(std::move(options)), clock_(options_.clock) {}

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(SqliteStoreOptions options) {
  if (options.path.empty()) return InvalidArgumentError("SqliteStoreOptions.path is empty");
  if (options.lease_duration <= std::chrono::milliseconds::zero()) {
    return InvalidArgumentError("SqliteStoreOptions.lease_duration must be positive");
  }
  if (options.max_batch < 1)
    return InvalidArgumentError("SqliteStoreOptions.max_batch must be >= 1");
  if (options.group_commit_wait < std::chrono::microseconds::zero() ||
      options.group_commit_wait > std::chrono::milliseconds(100)) {
    return InvalidArgumentError("SqliteStoreOptions.group_commit_wait must be 0 to 100 ms");
  }
  if (options.clock == nullptr) options.clock = SystemClock();
  std::unique_ptr<SqliteStore> store(new SqliteStore(std::move(options)));
  BATON_RETURN_IF_ERROR(store->Initialize());
  return store;
}

Status SqliteStore::Initialize() {
  const std::string& path = options_.path;

  // One owner per file: leases live in the owner's memory.
  std::string lock_path = path + ".lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) {
    return UnavailableError("open " + lock_path + ": " + std::strerror(errno));
  }
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    char buf[32] = {};
    ssize_t n = ::pread(lock_fd_, buf, sizeof buf - 1, 0);
    std::string holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "unknown";
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    ::close(lock_fd_);
    lock_fd_ = -1;
    if (err == EWOULDBLOCK) {
      return FailedPreconditionError("store " + path + " is in use by process " + holder +
                                     " (lock file " + lock_path + ")");
    }
    return UnavailableError("lock " + lock_path + ": " + std::strerror(err));
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(lock_fd_, 0) != 0 ||
      ::pwrite(lock_fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    util::Log().warn("could not record pid in {}: {}", lock_path, std::strerror(errno));
  }

  BATON_ASSIGN_OR_RETURN(writer_conn_, Connection::Open(path, /*create=*/true));
  Connection& c = *writer_conn_;
  {
    BATON_ASSIGN_OR_RETURN(Statement st, c.Prepare("PRAGMA journal_mode=WAL"));
    BATON_ASSIGN_OR_RETURN(bool row, st.Step("set journal_mode=WAL on " + path));
    std::string mode = row ? st.Text(0) : std::string();
    if (mode != "wal") {
      return UnavailableError("sqlite: " + path + " cannot use WAL mode (journal_mode is '" + mode +
                              "')");
    }
  }
  // Temporary b-trees (sorts of large queries) have no reason to touch disk.
  BATON_RETURN_IF_ERROR(c.Exec("PRAGMA temp_store=MEMORY", "configure " + path));

  BATON_ASSIGN_OR_RETURN(SchemaVersion version, Migrate(c, path));
  (void)version;

  BATON_RETURN_IF_ERROR(LoadQueues());

  writer_thread_ = std::thread([this] { WriterLoop(); });
  keeper_thread_ = std::thread([this] { KeeperLoop(); });
  opened_at_ = TruncateToMicros(clock_->Now());

  wake_hub_ = std::make_shared<WakeHub>();
  wake_hub_->store = this;
  clock_subscription_ = clock_->Subscribe([hub = wake_hub_] {
    std::lock_guard lock(hub->mu);
    if (hub->store != nullptr) hub->store->OnClockJump();
  });
  return Status::Ok();
}

Status SqliteStore::LoadQueues() {
  Connection& c = *writer_conn_;
  TimePoint now = TruncateToMicros(clock_->Now());
  uint64_t max_seq = 0;
  std::lock_guard lock(mu_);
  {
    BATON_ASSIGN_OR_RETURN(
        Statement st,
        c.Prepare("SELECT seq, instance_id, execution_id, visible_at, event FROM inbox "
                  "ORDER BY seq"));
    for (;;) {
      BATON_ASSIGN_OR_RETURN(bool row, st.Step("load inbox"));
      if (!row) break;
      Message m;
      m.seq = static_cast<uint64_t>(st.Int(0));
      max_seq = std::max(max_seq, m.seq);
      m.instance_id = st.Text(1);
      m.execution_id = st.Text(2);
      m.visible_at = FromUnixMicros(st.Int(3));
      Result<HistoryEvent> event = ParseEvent(st.TextView(4));
      if (!event.ok()) {
        // Left in the table for inspection; loading the rest keeps every
        // other instance running.
        util::Log().error("inbox row seq={} for instance '{}' is unreadable and is skipped: {}",
                          m.seq, m.instance_id, event.status().ToString());
        continue;
      }
      m.event = std::move(event).value();
      AddMessage(std::move(m), now);
    }
  }
  {
    BATON_ASSIGN_OR_RETURN(
        Statement st, c.Prepare("SELECT seq, instance_id, execution_id, task_id, name, version, "
                                "input, visible_at FROM activity_tasks ORDER BY seq"));
    for (;;) {
      BATON_ASSIGN_OR_RETURN(bool row, st.Step("load activity_tasks"));
      if (!row) break;
      ActivityTask t;
      t.seq = static_cast<uint64_t>(st.Int(0));
      max_seq = std::max(max_seq, t.seq);
      t.instance_id = st.Text(1);
      t.execution_id = st.Text(2);
      t.task_id = static_cast<int32_t>(st.Int(3));
      t.name = st.Text(4);
      t.version = st.Text(5);
      t.input = st.Text(6);
      t.visible_at = FromUnixMicros(st.Int(7));
      AddTask(std::move(t), now);
    }
  }
  next_seq_ = max_seq + 1;
  return Status::Ok();
}

SqliteStore::~SqliteStore() {
  if (wake_hub_ != nullptr) {
    clock_->Unsubscribe(clock_subscription_);
    std::lock_guard lock(wake_hub_->mu);
    wake_hub_->store = nullptr;
  }
  if (keeper_thread_.joinable()) {
    {
      std::lock_guard lock(mu_);
      keeper_stopping_ = true;
    }
    keeper_cv_.notify_all();
    keeper_thread_.join();
  }
  if (writer_thread_.joinable()) {
    {
      std::lock_guard lock(writer_mu_);
      writer_stopping_ = true;
    }
    writer_cv_.notify_one();
    writer_thread_.join();
  }
  std::vector<std::shared_ptr<AsyncWaiter>> async;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, w] : async_by_id_) async.push_back(w);
  }
  for (const auto& w : async) EndAsyncWait(w, CancelledError("the store closed"));
  idle_readers_.clear();
  writer_conn_.reset();
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

// ---------------------------------------------------------------------------
// The writer.

void SqliteStore::Enqueue(WriteOp op) {
  bool wake;
  {
    std::lock_guard lock(writer_mu_);
    writer_queue_.push_back(std::move(op));
    // A writer in group commit's wait is woken once its batch is full, not
    // by every write (each wake-up is a context switch).
    wake = !lingering_ || writer_queue_.size() >= linger_target_;
  }
  if (wake) writer_cv_.notify_one();
}

Status SqliteStore::RunSync(std::function<Status(Connection&)> execute,
                            std::function<void()> publish) {
  // Shared so the promise outlives set_value even after this thread returns.
  auto promise = std::make_shared<std::promise<Status>>();
  std::future<Status> future = promise->get_future();
  WriteOp op;
  op.execute = std::move(execute);
  op.publish = std::move(publish);
  op.done = [promise](const Status& s) { promise->set_value(s); };
  op.sync = true;
  Enqueue(std::move(op));
  return future.get();
}

void SqliteStore::WriterLoop() {
  std::vector<WriteOp> batch;
  for (;;) {
    {
      std::unique_lock lock(writer_mu_);
      // Idle: nothing was queued when the last transaction ended.
      const bool idle = writer_queue_.empty();
      writer_cv_.wait(lock, [this] { return writer_stopping_ || !writer_queue_.empty(); });
      if (writer_queue_.empty()) return;  // stopping, and every queued op has run
      // Group commit (SqliteStoreOptions::group_commit_wait). Only a writer
      // that was idle waits: one that is behind commits at once. Only a
      // batch that will be fsync'ed gains by it (RunBatch's `full`). The wait
      // ends early once as many writes are queued as the last transaction
      // had (Enqueue wakes the writer only then); a wait that ran its full
      // length makes the writer skip the next 1, 3, 7, … 63 chances (callers
      // that each wait for the other's commit never queue together, and
      // waiting for them costs more than the fsync it would save).
      const auto linger = options_.group_commit_wait;
      const bool will_sync = options_.durability == Durability::kFull ||
                             std::any_of(writer_queue_.begin(), writer_queue_.end(),
                                         [](const WriteOp& op) { return op.sync; });
      if (linger.count() > 0 && idle && last_batch_ >= 2 && writer_queue_.size() < last_batch_ &&
          !writer_stopping_ && will_sync) {
        if (linger_skip_ > 0) {
          --linger_skip_;
          linger_skipped_.fetch_add(1, std::memory_order_relaxed);
        } else {
          lingering_ = true;
          linger_target_ = last_batch_;
          const auto deadline = std::chrono::steady_clock::now() + linger;
          // Cut short: woken by the write that filled the batch, before the
          // deadline (a wait that timed out re-checks and may find it full).
          const bool filled =
              writer_cv_.wait_until(lock, deadline,
                                    [this] { return writer_stopping_ || writer_queue_.size() >= linger_target_; }) &&
              !writer_stopping_ && std::chrono::steady_clock::now() < deadline;
          lingering_ = false;
          lingered_.fetch_add(1, std::memory_order_relaxed);
          StoreMetrics().waits.Inc();
          if (filled) {
            linger_filled_.fetch_add(1, std::memory_order_relaxed);
            linger_backoff_ = 0;
          } else {
            linger_backoff_ = std::min<uint32_t>(linger_backoff_ * 2 + 1, 63);
            linger_skip_ = linger_backoff_;
          }
        }
      }
      size_t n = std::min(writer_queue_.size(), static_cast<size_t>(options_.max_batch));
      last_batch_ = n;
      batch.clear();
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(writer_queue_.front()));
        writer_queue_.pop_front();
      }
    }
    RunBatch(batch);
  }
}

Status SqliteStore::ApplySynchronous(bool full) {
  int wanted = full ? 2 : 1;
  if (current_synchronous_ == wanted) return Status::Ok();
  // FULL fsyncs the WAL at every commit; NORMAL leaves the WAL to the OS
  // until the next FULL commit or checkpoint.
  BATON_ASSIGN_OR_RETURN(Statement st, writer_conn_->Prepare(full ? "PRAGMA synchronous=FULL"
                                                                  : "PRAGMA synchronous=NORMAL"));
  BATON_RETURN_IF_ERROR(st.Run("set synchronous"));
  current_synchronous_ = wanted;
  return Status::Ok();
}

void SqliteStore::RunBatch(std::vector<WriteOp>& batch) {
  Connection& c = *writer_conn_;
  auto run = [&c](const char* sql) -> Status {
    BATON_ASSIGN_OR_RETURN(Statement st, c.Prepare(sql));
    return st.Run(sql);
  };

  const auto batch_start = util::metrics::StartTimer();
  bool full = options_.durability == Durability::kFull ||
              std::any_of(batch.begin(), batch.end(), [](const WriteOp& op) { return op.sync; });
  std::vector<Status> results(batch.size());
  Status batch_status = ApplySynchronous(full);
  if (batch_status.ok()) batch_status = run(kBegin);
  if (batch_status.ok()) {
    for (size_t i = 0; i < batch.size(); ++i) {
      Status s = run(kSavepoint);
      if (s.ok()) s = batch[i].execute(c);
      if (s.ok()) s = run(kRelease);
      if (!s.ok()) {
        if (sqlite3_get_autocommit(c.db())) {
          // SQLite rolled back the whole transaction (I/O error, disk full):
          // every op of the batch is lost with it.
          batch_status = s;
          break;
        }
        Status rb = run(kRollbackTo);
        if (rb.ok()) rb = run(kRelease);
        if (!rb.ok()) {
          batch_status = rb;
          break;
        }
      }
      results[i] = std::move(s);
    }
    if (batch_status.ok()) {
      // In WAL mode COMMIT appends the batch's frames to the WAL and, with
      // synchronous=FULL, fsyncs it: its time is the store's sync latency.
      const auto commit_start = util::metrics::StartTimer();
      batch_status = run(kCommit);
      (full ? StoreMetrics().sync_full : StoreMetrics().sync_normal).ObserveSince(commit_start);
    }
    if (!batch_status.ok() && !sqlite3_get_autocommit(c.db())) {
      c.Exec("ROLLBACK", "rollback failed batch").IgnoreError();
    }
  }
  if (!batch_status.ok()) {
    util::Log().error("sqlite store: a batch of {} writes failed: {}", batch.size(),
                      batch_status.ToString());
    for (Status& s : results) {
      if (s.ok()) s = batch_status;
    }
  } else {
    transactions_.fetch_add(1, std::memory_order_relaxed);
  }
  ops_.fetch_add(batch.size(), std::memory_order_relaxed);
  StoreMetrics().commit.ObserveSince(batch_start);
  StoreMetrics().ops.Inc(batch.size());
  if (!batch_status.ok()) StoreMetrics().failed.Inc();

  {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < batch.size(); ++i) {
      if (results[i].ok()) {
        if (batch[i].publish) batch[i].publish();
      } else if (batch[i].discard) {
        batch[i].discard();
      }
    }
  }
  std::vector<std::shared_ptr<AsyncWaiter>> checks;
  {
    std::lock_guard lock(mu_);
    // Filled by the publish steps above (NotifyStatusChanged).
    checks.swap(async_to_check_);
  }
  // Waits first: whoever learns that a commit is done can rely on the
  // waits it answered having been answered.
  if (!checks.empty()) CheckAsyncWaits(c, checks);
  for (size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].done) batch[i].done(results[i]);
  }
  batch.clear();
}

bool SqliteStore::Reached(const InstanceState& state, WaitCondition condition) {
  return condition == WaitCondition::kStarted ? state.status != OrchestrationStatus::kPending
                                              : IsTerminal(state.status);
}

void SqliteStore::CheckAsyncWaits(Connection& c, const std::vector<std::shared_ptr<AsyncWaiter>>& waits) {
  for (const auto& w : waits) {
    {
      std::lock_guard lock(mu_);
      if (!async_by_id_.contains(w->id)) continue;  // ended or cancelled
    }
    Result<std::optional<InstanceState>> row = ReadInstance(c, w->instance_id, w->include_payloads, nullptr);
    if (!row.ok()) {
      EndAsyncWait(w, row.status());
    } else if (!row.value()) {
      EndAsyncWait(w, NotFoundError("instance '" + w->instance_id + "' does not exist"));
    } else if (Reached(**row, w->condition)) {
      EndAsyncWait(w, std::move(**row));
    }
  }
}

std::shared_ptr<SqliteStore::AsyncWaiter> SqliteStore::TakeAsyncWaitLocked(uint64_t id) {
  auto by_id = async_by_id_.find(id);
  if (by_id == async_by_id_.end()) return nullptr;
  std::shared_ptr<AsyncWaiter> w = std::move(by_id->second);
  async_by_id_.erase(by_id);
  auto it = async_waiters_.find(w->instance_id);
  if (it != async_waiters_.end()) {
    std::erase(it->second, w);
    if (it->second.empty()) async_waiters_.erase(it);
  }
  return w;
}

void SqliteStore::EndAsyncWait(const std::shared_ptr<AsyncWaiter>& w, Result<InstanceState> result) {
  {
    std::lock_guard lock(mu_);
    if (TakeAsyncWaitLocked(w->id) == nullptr) return;  // ended or cancelled already
  }
  w->done(std::move(result));
}

uint64_t SqliteStore::WaitForInstanceAsync(const std::string& instance_id, WaitCondition condition,
                                           bool include_payloads, WaitCallback done) {
  auto w = std::make_shared<AsyncWaiter>();
  w->instance_id = instance_id;
  w->condition = condition;
  w->include_payloads = include_payloads;
  w->done = std::move(done);
  bool interrupted = false;
  {
    std::lock_guard lock(mu_);
    interrupted = interrupted_;
    w->id = ++next_async_wait_;
    // Registered before the first read, so a commit between that read and
    // the return is checked by the writer.
    if (!interrupted) {
      async_by_id_[w->id] = w;
      async_waiters_[instance_id].push_back(w);
    }
  }
  Result<InstanceState> state = GetInstance(instance_id, include_payloads);
  if (interrupted) {
    // As WaitForInstance: what is there already is answered, nothing waits.
    if (!state.ok() || Reached(*state, condition)) {
      w->done(std::move(state));
    } else {
      w->done(CancelledError("store interrupted while waiting for '" + instance_id + "'"));
    }
    return w->id;
  }
  if (!state.ok() || Reached(*state, condition)) EndAsyncWait(w, std::move(state));
  return w->id;
}

void SqliteStore::CancelWait(uint64_t wait) {
  std::lock_guard lock(mu_);
  TakeAsyncWaitLocked(wait);
}

// ---- Writer helpers (inside a write transaction) ----

Result<std::optional<SqliteStore::RowHead>> SqliteStore::ReadHead(Connection& c,
                                                                  const std::string& id) {
  BATON_ASSIGN_OR_RETURN(Statement st, c.Prepare(kSelectHead));
  st.Bind(1, id);
  BATON_ASSIGN_OR_RETURN(bool row, st.Step("read instance status"));
  if (!row) return std::optional<RowHead>();
  RowHead head;
  std::string_view status = st.TextView(0);
  if (!ParseOrchestrationStatus(status, &head.status)) {
    return DataLossError("instance '" + id + "' has unknown status '" + std::string(status) + "'");
  }
  head.history_size = st.Int(1);
  head.execution_id = std::string(st.TextView(2));
  return std::optional<RowHead>(head);
}

Status SqliteStore::DeleteInstanceRows(Connection& c, const std::string& id) {
  for (const char* sql :
       {kDeleteInstance, kDeleteHistory, kDeleteInboxOfInstance, kDeleteTasksOfInstance}) {
    BATON_ASSIGN_OR_RETURN(Statement st, c.Prepare(sql));
    BATON_RETURN_IF_ERROR(st.Bind(1, id).Run("delete instance rows"));
  }
  return Status::Ok();
}

Status SqliteStore::InsertInstanceRow(Connection& c, const events::ExecutionStarted& e,
                                      TimePoint now) {
  BATON_ASSIGN_OR_RETURN(Statement st, c.Prepare(kInsertInstance));
  std::string tags = TagsJson(e.tags);
  st.Bind(1, e.instance_id)
      .Bind(2, e.name)
      .Bind(3, e.version)
      .Bind(4, e.execution_id)
      .Bind(5, OrchestrationStatusName(OrchestrationStatus::kPending))
      .Bind(6, ToUnixMicros(now));
  if (e.scheduled_start) {
    st.Bind(7, ToUnixMicros(*e.scheduled_start));
  } else {
    st.BindNull(7);
  }
  st.BindPayload(8, e.input);
  if (e.parent) {
    st.BindPayload(9, e.parent->instance_id);
  } else {
    st.BindNull(9);
  }
  st.BindPayload(10, tags);
  return st.Run("insert instance");
}

Status SqliteStore::CreateEntityRow(Connection& c, const std::string& instance_id, TimePoint now) {
  // "[hub::]@name@key": the row is named after the entity.
  std::string_view hub = HubOf(instance_id);
  std::string_view local = std::string_view(instance_id).substr(hub.empty() ? 0 : hub.size() + kHubSeparator.size());
  size_t second = local.find('@', 1);
  events::ExecutionStarted row;
  row.instance_id = instance_id;
  row.name = std::string(local.substr(1, second - 1));
  row.execution_id = "entity";
  return InsertInstanceRow(c, row, now);
}

Status SqliteStore::InsertInbox(Connection& c, Message& message, const std::string& event_json) {
  message.seq = next_seq_++;
  BATON_ASSIGN_OR_RETURN(Statement st, c.Prepare(kInsertInbox));
  return st.Bind(1, static_cast<int64_t>(message.seq))
      .Bind(2, message.instance_id)
      .Bind(3, message.execution_id)
      .Bind(4, ToUnixMicros(message.visible_at))
      .Bind(5, event_json)
      .Run("insert inbox message");
}

Status SqliteStore::InsertTask(Connection& c, ActivityTask& task) {
  task.seq = next_seq_++;
  BATON_ASSIGN_OR_RETURN(Statement st, c.Prepare(kInsertTask));
  return st.Bind(1, static_cast<int64_t>(task.seq))
      .Bind(2, task.instance_id)
      .Bind(3, task.execution_id)
      .Bind(4, static_cast<int64_t>(task.task_id))
      .Bind(5, task.name)
      .Bind(6, task.version)
      .BindPayload(7, task.input)
      .Bind(8, ToUnixMicros(task.visible_at))
      .Run("insert activity task");
}

Status SqliteStore::DeliverMessage(Connection& c, Message message, const std::string& event_json,
                                   TimePoint now, Effects* effects) {
  if (const auto* started = std::get_if<events::ExecutionStarted>(&message.event.body)) {
    // A sub-orchestration (or any instance started by an orchestration).
    BATON_ASSIGN_OR_RETURN(std::optional<RowHead> head, ReadHead(c, message.instance_id));
    // The first event of a generation the instance itself just began (a
    // continue-as-new run by an external worker: its history was reset to
    // nothing under this execution id in the same commit) goes to its inbox.
    const bool own_new_generation = head && !IsTerminal(head->status) && head->history_size == 0 &&
                                    !message.execution_id.empty() && head->execution_id == message.execution_id;
    if (own_new_generation) {
      BATON_RETURN_IF_ERROR(InsertInbox(c, message, event_json));
      effects->steps.emplace_back(std::move(message));
      return Status::Ok();
    }
    if (head && !IsTerminal(head->status)) {
      if (!started->parent) {
        util::Log().warn(
            "dropping ExecutionStarted for instance '{}': it exists with status {} and the "
            "event names no parent to notify",
            message.instance_id, OrchestrationStatusName(head->status));
        return Status::Ok();
      }
      const ParentInstance& parent = *started->parent;
      HistoryEvent failed{
          -1, now,
          events::SubOrchestrationInstanceFailed{
              parent.task_scheduled_id,
              FailureDetails{"InstanceAlreadyExists",
                             "an orchestration instance with id '" + message.instance_id +
                                 "' already exists with status " +
                                 std::string(OrchestrationStatusName(head->status)),
                             "",
                             "",
                             /*is_non_retriable=*/true,
                             {}}}};
      Message reply;
      reply.instance_id = parent.instance_id;
      reply.execution_id = parent.execution_id;
      reply.visible_at = now;
      reply.event = std::move(failed);
      std::string reply_json = SerializeEvent(reply.event);
      return DeliverMessage(c, std::move(reply), reply_json, now, effects);
    }
    if (head) {
      BATON_RETURN_IF_ERROR(DeleteInstanceRows(c, message.instance_id));
      effects->steps.emplace_back(Wipe{message.instance_id});
    }
    events::ExecutionStarted row = *started;
    row.instance_id = message.instance_id;  // the address wins over the body
    BATON_RETURN_IF_ERROR(InsertInstanceRow(c, row, now));
    effects->status_changed.push_back(message.instance_id);
  } else {
    BATON_ASSIGN_OR_RETURN(std::optional<RowHead> head, ReadHead(c, message.instance_id));
    if (head && head->status == OrchestrationStatus::kFailed &&
        std::holds_alternative<events::ExecutionRewound>(message.event.body)) {
      // A child rewound with its parent: Pending at once, as in SendMessage.
      BATON_ASSIGN_OR_RETURN(Statement st, c.Prepare(kMarkRewinding));
      BATON_RETURN_IF_ERROR(st.Bind(1, message.instance_id).Bind(2, ToUnixMicros(now)).Run("mark rewinding"));
      effects->status_changed.push_back(message.instance_id);
    }
    if (!head && IsEntityInstanceId(message.instance_id)) {
      BATON_RETURN_IF_ERROR(CreateEntityRow(c, message.instance_id, now));
    } else if (!head) {
      util::Log().debug("dropping {} to instance '{}', which does not exist",
                        EventKindName(message.event.body), message.instance_id);
      return Status::Ok();
    }
  }
  BATON_RETURN_IF_ERROR(InsertInbox(c, message, event_json));
  effects->steps.emplace_back(std::move(message));
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Readers.

Result<std::unique_ptr<Connection>> SqliteStore::AcquireReader() {
  {
    std::lock_guard lock(readers_mu_);
    if (!idle_readers_.empty()) {
      std::unique_ptr<Connection> conn = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return conn;
    }
  }
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn,
                         Connection::Open(options_.path, /*create=*/false));
  // A reader must never write, even by mistake.
  BATON_RETURN_IF_ERROR(conn->Exec("PRAGMA query_only=1", "configure reader"));
  return conn;
}

void SqliteStore::ReleaseReader(std::unique_ptr<Connection> conn) {
  std::lock_guard lock(readers_mu_);
  if (idle_readers_.size() < kMaxIdleReaders) idle_readers_.push_back(std::move(conn));
}

Result<std::optional<InstanceState>> SqliteStore::ReadInstance(Connection& c, const std::string& id,
                                                               bool include_payloads,
                                                               int64_t* history_size,
                                                               int64_t* history_generation) {
  static const std::string kWithPayloads = std::string("SELECT ") + kStateColumns +
                                           kPayloadColumns + kTagsColumn +
                                           " FROM instances WHERE instance_id = ?1";
  static const std::string kWithoutPayloads =
      std::string("SELECT ") + kStateColumns + kTagsColumn + " FROM instances WHERE instance_id = ?1";
  BATON_ASSIGN_OR_RETURN(Statement st,
                         c.Prepare(include_payloads ? kWithPayloads : kWithoutPayloads));
  st.Bind(1, id);
  BATON_ASSIGN_OR_RETURN(bool row, st.Step("read instance"));
  if (!row) return std::optional<InstanceState>();
  BATON_ASSIGN_OR_RETURN(InstanceState state, DecodeState(st, include_payloads, history_size, history_generation, /*with_tags=*/true));
  return std::optional<InstanceState>(std::move(state));
}

// ---------------------------------------------------------------------------
// Work queues. Everything below until the public methods REQUIRES mu_.

void SqliteStore::ApplySteps(std::vector<Step>& steps, TimePoint now) {
  for (Step& step : steps) {
    std::visit(Overloaded{
                   [&](Wipe& w) { WipeInstance(w.instance_id); },
                   [&](Message& m) { AddMessage(std::move(m), now); },
                   [&](ActivityTask& t) { AddTask(std::move(t), now); },
               },
               step);
  }
}

void SqliteStore::AddMessage(Message message, TimePoint now) {
  std::string id = message.instance_id;
  TimePoint visible_at = message.visible_at;
  uint64_t seq = message.seq;
  InstanceQueue& q = instances_[id];
  q.messages.emplace(seq, PendingMessage{std::move(message), 0});
  if (visible_at > now) {
    ScheduleInstance(id, visible_at);
  } else {
    ReevaluateInstance(id, now);
  }
}

void SqliteStore::AddTask(ActivityTask task, TimePoint now) {
  uint64_t seq = task.seq;
  TimePoint visible_at = task.visible_at;
  tasks_by_instance_[task.instance_id].insert(seq);
  TaskEntry& t = tasks_[seq];
  t.task = std::move(task);
  if (visible_at > now) {
    ScheduleTask(seq, visible_at);
  } else {
    ReevaluateTask(seq, now);
  }
}

void SqliteStore::WipeInstance(const std::string& id) {
  auto it = instances_.find(id);
  if (it != instances_.end()) {
    if (it->second.lease_listed) orch_leases_.erase(it->second.lease_it);
    instances_.erase(it);
  }
  auto tasks = tasks_by_instance_.find(id);
  if (tasks != tasks_by_instance_.end()) {
    std::set<uint64_t> seqs = std::move(tasks->second);
    tasks_by_instance_.erase(tasks);
    for (uint64_t seq : seqs) {
      auto t = tasks_.find(seq);
      if (t == tasks_.end()) continue;
      if (t->second.lease_listed) task_leases_.erase(t->second.lease_it);
      tasks_.erase(t);
    }
  }
}

void SqliteStore::RemoveTask(uint64_t seq) {
  auto it = tasks_.find(seq);
  if (it == tasks_.end()) return;
  if (it->second.lease_listed) task_leases_.erase(it->second.lease_it);
  auto by_instance = tasks_by_instance_.find(it->second.task.instance_id);
  if (by_instance != tasks_by_instance_.end()) {
    by_instance->second.erase(seq);
    if (by_instance->second.empty()) tasks_by_instance_.erase(by_instance);
  }
  tasks_.erase(it);
}

void SqliteStore::ReevaluateInstance(const std::string& id, TimePoint now) {
  auto it = instances_.find(id);
  if (it == instances_.end()) return;
  InstanceQueue& q = it->second;
  if (q.locked || q.committing) return;
  if (q.messages.empty()) {
    instances_.erase(it);  // a stale ready_ entry, if any, is skipped at pop
    return;
  }
  if (q.in_ready || q.not_before > now) return;  // not_before has its own due entry
  for (const auto& [seq, pm] : q.messages) {
    if (pm.message.visible_at <= now) {
      q.in_ready = true;
      ready_.push_back(id);
      orch_cv_.notify_one();
      return;
    }
  }
  // Only future messages: each has its own due entry.
}

void SqliteStore::ReevaluateTask(uint64_t seq, TimePoint now) {
  auto it = tasks_.find(seq);
  if (it == tasks_.end()) return;
  TaskEntry& t = it->second;
  if (t.locked || t.committing || t.in_ready) return;
  if (t.task.visible_at > now || t.not_before > now) return;
  t.in_ready = true;
  task_ready_.push_back(seq);
  task_cv_.notify_one();
}

void SqliteStore::ScheduleInstance(const std::string& id, TimePoint at) {
  orch_due_.push({at, id});
  WakeSleeperBefore(orch_sleepers_, orch_cv_, at);
}

void SqliteStore::ScheduleTask(uint64_t seq, TimePoint at) {
  task_due_.push({at, seq});
  WakeSleeperBefore(task_sleepers_, task_cv_, at);
}

void SqliteStore::WakeSleeperBefore(const std::multiset<TimePoint>& sleepers,
                                    std::condition_variable& cv, TimePoint at) {
  // Sleepers plan to wake at the earliest due time they knew of; one that
  // wakes now re-plans around `at`.
  if (!sleepers.empty() && at < *sleepers.begin()) cv.notify_one();
}

void SqliteStore::UnlockInstance(InstanceQueue& q) {
  if (q.lease_listed) {
    orch_leases_.erase(q.lease_it);
    q.lease_listed = false;
  }
  q.locked = false;
  q.committing = false;
  q.renewable = false;
  q.lock_token = 0;
}

void SqliteStore::UnlockTask(TaskEntry& t) {
  if (t.lease_listed) {
    task_leases_.erase(t.lease_it);
    t.lease_listed = false;
  }
  t.locked = false;
  t.committing = false;
  t.renewable = false;
  t.lock_token = 0;
}

void SqliteStore::PromoteInstances(TimePoint now) {
  while (!orch_due_.empty() && orch_due_.top().at <= now) {
    std::string id = orch_due_.top().key;
    orch_due_.pop();
    ReevaluateInstance(id, now);
  }
  while (!orch_leases_.empty() && orch_leases_.begin()->first <= now) {
    std::string id = orch_leases_.begin()->second;
    orch_leases_.erase(orch_leases_.begin());
    auto it = instances_.find(id);
    if (it == instances_.end()) continue;
    InstanceQueue& q = it->second;
    q.lease_listed = false;
    // A lease whose Complete is already in the writer ends with that commit.
    if (q.committing) continue;
    util::Log().debug("lease {} on instance '{}' expired", q.lock_token, id);
    UnlockInstance(q);
    ReevaluateInstance(id, now);
  }
}

void SqliteStore::PromoteTasks(TimePoint now) {
  while (!task_due_.empty() && task_due_.top().at <= now) {
    uint64_t seq = task_due_.top().key;
    task_due_.pop();
    ReevaluateTask(seq, now);
  }
  while (!task_leases_.empty() && task_leases_.begin()->first <= now) {
    uint64_t seq = task_leases_.begin()->second;
    task_leases_.erase(task_leases_.begin());
    auto it = tasks_.find(seq);
    if (it == tasks_.end()) continue;
    TaskEntry& t = it->second;
    t.lease_listed = false;
    if (t.committing) continue;
    UnlockTask(t);
    ReevaluateTask(seq, now);
  }
}

std::optional<TimePoint> SqliteStore::NextInstanceDue() const {
  std::optional<TimePoint> due;
  if (!orch_due_.empty()) due = orch_due_.top().at;
  if (!orch_leases_.empty() && (!due || orch_leases_.begin()->first < *due)) {
    due = orch_leases_.begin()->first;
  }
  return due;
}

std::optional<TimePoint> SqliteStore::NextTaskDue() const {
  std::optional<TimePoint> due;
  if (!task_due_.empty()) due = task_due_.top().at;
  if (!task_leases_.empty() && (!due || task_leases_.begin()->first < *due)) {
    due = task_leases_.begin()->first;
  }
  return due;
}

void SqliteStore::WaitForWork(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                              std::multiset<TimePoint>& sleepers, std::optional<TimePoint> due,
                              TimePoint now, std::chrono::steady_clock::time_point deadline) {
  TimePoint wake = now + clock_->MaxSleep();
  if (due && *due < wake) wake = *due;
  auto real_left = deadline - std::chrono::steady_clock::now();
  auto clock_left = std::chrono::duration_cast<std::chrono::steady_clock::duration>(wake - now);
  auto sleep = std::min(real_left, clock_left);
  if (sleep <= std::chrono::steady_clock::duration::zero()) return;
  auto it = sleepers.insert(wake);
  cv.wait_for(lock, sleep);
  sleepers.erase(it);
}

void SqliteStore::NotifyStatusChanged(const std::string& id) {
  if (auto a = async_waiters_.find(id); a != async_waiters_.end()) {
    async_to_check_.insert(async_to_check_.end(), a->second.begin(), a->second.end());
  }
  auto it = waiters_.find(id);
  if (it == waiters_.end()) return;
  for (Waiter* w : it->second) {
    w->signaled = true;
    w->cv.notify_one();
  }
}

void SqliteStore::KeeperLoop() {
  // A lease is renewed once a third of it has passed, checked every sixth
  // of it (between 10 ms and 2 s): half of it is left at the latest, a wide
  // margin for a keeper delayed on a loaded machine.
  const auto interval = std::clamp<std::chrono::milliseconds>(
      std::chrono::duration_cast<std::chrono::milliseconds>(options_.lease_duration / 6),
      std::chrono::milliseconds(10), std::chrono::milliseconds(2000));
  std::unique_lock lock(mu_);
  while (!keeper_stopping_) {
    keeper_cv_.wait_for(lock, interval, [this] { return keeper_stopping_; });
    if (keeper_stopping_) return;
    lock.unlock();
    RenewHeldLeases();
    lock.lock();
  }
}

namespace {

// Extends to `until` the leases in `leases` (by expiry) that end after `now`
// and before `horizon` and whose entry in `entries` may be renewed; returns
// how many. Instances and tasks alike.
template <typename Key, typename Entries>
uint64_t RenewLeases(std::multimap<TimePoint, Key>& leases, Entries& entries, TimePoint now, TimePoint horizon,
                     TimePoint until) {
  std::vector<Key> due;
  for (auto it = leases.begin(); it != leases.end() && it->first < horizon; ++it) {
    if (it->first > now) due.push_back(it->second);  // expired ones are not renewed
  }
  uint64_t renewed = 0;
  for (const Key& key : due) {
    auto it = entries.find(key);
    if (it == entries.end() || !it->second.renewable || !it->second.lease_listed) continue;
    leases.erase(it->second.lease_it);
    it->second.locked_until = until;
    it->second.lease_it = leases.emplace(until, key);
    ++renewed;
  }
  return renewed;
}

}  // namespace

void SqliteStore::RenewHeldLeases() {
  std::lock_guard lock(mu_);
  const TimePoint now = TruncateToMicros(clock_->Now());
  const TimePoint until = now + options_.lease_duration;
  const TimePoint horizon = now + 2 * options_.lease_duration / 3;
  const uint64_t renewed = RenewLeases(orch_leases_, instances_, now, horizon, until) +
                           RenewLeases(task_leases_, tasks_, now, horizon, until);
  renewals_.fetch_add(renewed, std::memory_order_relaxed);
}

void SqliteStore::OnClockJump() {
  std::lock_guard lock(mu_);
  orch_cv_.notify_all();
  task_cv_.notify_all();
}

bool SqliteStore::TakeReadyInstance(TimePoint now, OrchestrationWorkItem* item) {
  while (!ready_.empty()) {
    std::string id = std::move(ready_.front());
    ready_.pop_front();
    auto it = instances_.find(id);
    if (it == instances_.end()) continue;
    InstanceQueue& q = it->second;
    q.in_ready = false;
    if (q.locked || q.committing || q.not_before > now) continue;
    item->messages.clear();
    int dequeue_count = 0;
    for (auto& [seq, pm] : q.messages) {
      if (pm.message.visible_at > now) continue;
      dequeue_count = std::max(dequeue_count, ++pm.dequeue_count);
      item->messages.push_back(pm.message);
      if (item->messages.size() == kMaxMessagesPerWorkItem) break;
    }
    if (item->messages.empty()) continue;
    q.locked = true;
    q.renewable = true;
    q.lock_token = next_token_++;
    q.locked_until = now + options_.lease_duration;
    q.lease_it = orch_leases_.emplace(q.locked_until, id);
    q.lease_listed = true;
    WakeSleeperBefore(orch_sleepers_, orch_cv_, q.locked_until);
    item->instance_id = id;
    item->lock_token = q.lock_token;
    item->locked_until = q.locked_until;
    item->dequeue_count = dequeue_count;
    return true;
  }
  return false;
}

bool SqliteStore::TakeReadyTask(TimePoint now, ActivityWorkItem* item) {
  while (!task_ready_.empty()) {
    uint64_t seq = task_ready_.front();
    task_ready_.pop_front();
    auto it = tasks_.find(seq);
    if (it == tasks_.end()) continue;
    TaskEntry& t = it->second;
    t.in_ready = false;
    if (t.locked || t.committing || t.task.visible_at > now || t.not_before > now) continue;
    t.locked = true;
    t.renewable = true;
    t.lock_token = next_token_++;
    t.locked_until = now + options_.lease_duration;
    t.lease_it = task_leases_.emplace(t.locked_until, seq);
    t.lease_listed = true;
    WakeSleeperBefore(task_sleepers_, task_cv_, t.locked_until);
    item->task = t.task;
    item->lock_token = t.lock_token;
    item->locked_until = t.locked_until;
    item->dequeue_count = ++t.dequeue_count;
    return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Client side.

Status SqliteStore::CreateInstance(const CreateInstanceRequest& request) {
  auto promise = std::make_shared<std::promise<Status>>();
  std::future<Status> future = promise->get_future();
  CreateInstanceAsync(request, [promise](const Status& s) { promise->set_value(s); });
  return future.get();
}

void SqliteStore::CreateInstanceAsync(const CreateInstanceRequest& request, CommitCallback done) {
  if (request.instance_id.empty()) return done(InvalidArgumentError("instance id is empty"));
  if (request.instance_id.size() > kMaxInstanceIdLength) {
    return done(InvalidArgumentError("instance id is longer than " +
                                     std::to_string(kMaxInstanceIdLength) + " characters"));
  }
  if (request.name.empty()) return done(InvalidArgumentError("orchestration name is empty"));
  if (request.execution_id.empty()) return done(InvalidArgumentError("execution id is empty"));

  TimePoint now = TruncateToMicros(clock_->Now());
  events::ExecutionStarted started{request.name,
                                   request.version,
                                   request.input,
                                   request.instance_id,
                                   request.execution_id,
                                   std::nullopt,
                                   request.scheduled_start
                                       ? std::optional(TruncateToMicros(*request.scheduled_start))
                                       : std::nullopt,
                                   request.tags};
  auto message = std::make_shared<Message>();
  message->instance_id = request.instance_id;
  message->execution_id = request.execution_id;
  message->visible_at = started.scheduled_start.value_or(now);
  message->event = HistoryEvent{-1, now, started};
  auto event_json = std::make_shared<const std::string>(SerializeEvent(message->event));
  auto effects = std::make_shared<Effects>();
  auto replaceable = std::make_shared<const std::vector<OrchestrationStatus>>(request.replaceable_statuses);

  WriteOp op;
  op.execute = [this, effects, message, event_json, replaceable, now](Connection& c) -> Status {
    const std::string& id = message->instance_id;
    const auto& started = std::get<events::ExecutionStarted>(message->event.body);
    BATON_ASSIGN_OR_RETURN(std::optional<RowHead> head, ReadHead(c, id));
    if (head) {
      if (std::find(replaceable->begin(), replaceable->end(), head->status) == replaceable->end()) {
        return AlreadyExistsError("instance '" + id + "' already exists with status " +
                                  std::string(OrchestrationStatusName(head->status)));
      }
      BATON_RETURN_IF_ERROR(DeleteInstanceRows(c, id));
      effects->steps.emplace_back(Wipe{id});
    }
    BATON_RETURN_IF_ERROR(InsertInstanceRow(c, started, now));
    Message m = *message;
    BATON_RETURN_IF_ERROR(InsertInbox(c, m, *event_json));
    effects->steps.emplace_back(std::move(m));
    effects->status_changed.push_back(id);
    return Status::Ok();
  };
  op.publish = [this, effects, now] { PublishEffects(*effects, now); };
  op.done = std::move(done);
  op.sync = true;  // a client call: acknowledged (Durability)
  Enqueue(std::move(op));
}

void SqliteStore::PublishEffects(Effects& effects, TimePoint now) {
  ApplySteps(effects.steps, now);
  for (const std::string& id : effects.status_changed) NotifyStatusChanged(id);
}

Status SqliteStore::SendMessage(Message message) {
  if (message.instance_id.empty()) return InvalidArgumentError("message has no instance id");
  TimePoint now = TruncateToMicros(clock_->Now());
  message.seq = 0;
  message.visible_at = IsUnset(message.visible_at) ? now : TruncateToMicros(message.visible_at);
  message.event.timestamp =
      IsUnset(message.event.timestamp) ? now : TruncateToMicros(message.event.timestamp);
  std::string event_json = SerializeEvent(message.event);
  auto effects = std::make_shared<Effects>();
  return RunSync(
      [&, effects](Connection& c) -> Status {
        BATON_ASSIGN_OR_RETURN(std::optional<RowHead> head, ReadHead(c, message.instance_id));
        if (!head && IsEntityInstanceId(message.instance_id)) {
          BATON_RETURN_IF_ERROR(CreateEntityRow(c, message.instance_id, now));
          head = RowHead{};
          head->status = OrchestrationStatus::kPending;
        }
        if (!head) return NotFoundError("instance '" + message.instance_id + "' does not exist");
        const bool rewind = std::holds_alternative<events::ExecutionRewound>(message.event.body) &&
                            head->status == OrchestrationStatus::kFailed;
        if (IsTerminal(head->status) && !rewind) {
          return FailedPreconditionError("instance '" + message.instance_id + "' is " +
                                         std::string(OrchestrationStatusName(head->status)));
        }
        if (rewind) {
          // Pending until a worker rewrites the history (worker.cc Rewind),
          // so that waiters for completion wait for the rewound run.
          BATON_ASSIGN_OR_RETURN(Statement st, c.Prepare(kMarkRewinding));
          BATON_RETURN_IF_ERROR(st.Bind(1, message.instance_id).Bind(2, ToUnixMicros(now)).Run("mark rewinding"));
          effects->status_changed.push_back(message.instance_id);
        }
        Message m = message;
        BATON_RETURN_IF_ERROR(InsertInbox(c, m, event_json));
        effects->steps.emplace_back(std::move(m));
        return Status::Ok();
      },
      [this, effects, now] { PublishEffects(*effects, now); });
}

Result<InstanceState> SqliteStore::GetInstance(const std::string& instance_id,
                                               bool include_payloads) {
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, AcquireReader());
  ReaderLease reader(this, std::move(conn));
  BATON_ASSIGN_OR_RETURN(std::optional<InstanceState> state,
                         ReadInstance(*reader, instance_id, include_payloads, nullptr));
  if (!state) return NotFoundError("instance '" + instance_id + "' does not exist");
  return std::move(*state);
}

Result<QueryPage> SqliteStore::QueryInstances(const InstanceQuery& query) {
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, AcquireReader());
  ReaderLease reader(this, std::move(conn));
  return QueryInstancesOn(*reader, query);
}

Result<std::vector<HistoryEvent>> SqliteStore::GetHistory(const std::string& instance_id) {
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, AcquireReader());
  ReaderLease reader(this, std::move(conn));
  return GetHistoryOn(*reader, instance_id);
}


Result<int> SqliteStore::PurgeInstance(const std::string& instance_id) {
  auto effects = std::make_shared<Effects>();
  TimePoint now = TruncateToMicros(clock_->Now());
  Status s = RunSync(
      [&, effects](Connection& c) -> Status {
        BATON_ASSIGN_OR_RETURN(std::optional<RowHead> head, ReadHead(c, instance_id));
        if (!head) return NotFoundError("instance '" + instance_id + "' does not exist");
        if (IsEntityInstanceId(instance_id)) {
          // An entity never ends; it may go when nothing is pending for it.
          std::lock_guard lock(mu_);
          auto it = instances_.find(instance_id);
          if (it != instances_.end() && (!it->second.messages.empty() || it->second.locked)) {
            return FailedPreconditionError("entity '" + instance_id + "' has operations pending");
          }
        } else if (!IsTerminal(head->status)) {
          return FailedPreconditionError("instance '" + instance_id + "' is " +
                                         std::string(OrchestrationStatusName(head->status)) +
                                         "; only terminal instances can be purged");
        }
        BATON_RETURN_IF_ERROR(DeleteInstanceRows(c, instance_id));
        effects->steps.emplace_back(Wipe{instance_id});
        effects->status_changed.push_back(instance_id);
        return Status::Ok();
      },
      [this, effects, now] { PublishEffects(*effects, now); });
  if (!s.ok()) return s;
  return 1;
}

Result<int> SqliteStore::PurgeInstances(const PurgeFilter& filter) {
  std::vector<OrchestrationStatus> statuses;
  for (OrchestrationStatus s : filter.statuses.empty() ? TerminalStatuses() : filter.statuses) {
    if (IsTerminal(s)) statuses.push_back(s);  // only terminal instances are ever purged
  }
  if (statuses.empty()) return 0;

  std::string sql = "SELECT instance_id FROM instances WHERE status IN (";
  for (size_t i = 0; i < statuses.size(); ++i) {
    sql += (i ? ", '" : "'") + std::string(OrchestrationStatusName(statuses[i])) + "'";
  }
  sql += ")";
  if (filter.created_from) sql += " AND created_at >= ?1";
  if (filter.created_to) sql += " AND created_at < ?2";
  if (!filter.instance_id_prefix.empty()) sql += " AND substr(instance_id, 1, length(?3)) = ?3";
  sql += " LIMIT " + std::to_string(kPurgeChunk);

  int total = 0;
  for (;;) {
    auto effects = std::make_shared<Effects>();
    TimePoint now = TruncateToMicros(clock_->Now());
    int purged = 0;
    Status s = RunSync(
        [&, effects](Connection& c) -> Status {
          std::vector<std::string> ids;
          {
            BATON_ASSIGN_OR_RETURN(Statement st, c.Prepare(sql));
            if (filter.created_from) st.Bind(1, ToUnixMicros(*filter.created_from));
            if (filter.created_to) st.Bind(2, ToUnixMicros(*filter.created_to));
            if (!filter.instance_id_prefix.empty()) st.Bind(3, filter.instance_id_prefix);
            for (;;) {
              BATON_ASSIGN_OR_RETURN(bool row, st.Step("select instances to purge"));
              if (!row) break;
              ids.push_back(st.Text(0));
            }
          }
          for (const std::string& id : ids) {
            BATON_RETURN_IF_ERROR(DeleteInstanceRows(c, id));
            effects->steps.emplace_back(Wipe{id});
            effects->status_changed.push_back(id);
          }
          purged = static_cast<int>(ids.size());
          return Status::Ok();
        },
        [this, effects, now] { PublishEffects(*effects, now); });
    if (!s.ok()) return s;
    total += purged;
    if (purged < kPurgeChunk) return total;
  }
}

Result<InstanceState> SqliteStore::WaitForInstance(const std::string& instance_id,
                                                   WaitCondition condition,
                                                   std::chrono::milliseconds timeout,
                                                   bool include_payloads) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  Waiter waiter;
  // Registered before the first read, so a commit between that read and the
  // wait still signals this waiter.
  {
    std::lock_guard lock(mu_);
    waiters_[instance_id].push_back(&waiter);
  }
  auto unregister = [&] {
    std::lock_guard lock(mu_);
    auto it = waiters_.find(instance_id);
    if (it == waiters_.end()) return;
    std::erase(it->second, &waiter);
    if (it->second.empty()) waiters_.erase(it);
  };
  for (;;) {
    Result<InstanceState> state = GetInstance(instance_id, include_payloads);
    if (!state.ok()) {
      unregister();
      return state;
    }
    if (Reached(*state, condition)) {
      unregister();
      return state;
    }
    std::unique_lock lock(mu_);
    waiter.cv.wait_until(lock, deadline, [&] { return waiter.signaled || interrupted_; });
    if (waiter.signaled) {
      waiter.signaled = false;
      continue;
    }
    bool interrupted = interrupted_;
    lock.unlock();
    unregister();
    if (interrupted)
      return CancelledError("store interrupted while waiting for '" + instance_id + "'");
    return DeadlineExceededError("instance '" + instance_id + "' did not " +
                                 (condition == WaitCondition::kStarted ? "start" : "complete") +
                                 " within " + std::to_string(timeout.count()) + " ms");
  }
}

// ---------------------------------------------------------------------------
// Engine side: orchestrations.

Result<std::optional<OrchestrationWorkItem>> SqliteStore::FetchOrchestrationWorkItem(
    std::chrono::milliseconds max_wait) {
  auto deadline = std::chrono::steady_clock::now() + max_wait;
  for (;;) {
    OrchestrationWorkItem item;
    {
      std::unique_lock lock(mu_);
      for (;;) {
        if (interrupted_) return std::optional<OrchestrationWorkItem>();
        TimePoint now = TruncateToMicros(clock_->Now());
        PromoteInstances(now);
        if (TakeReadyInstance(now, &item)) break;
        if (std::chrono::steady_clock::now() >= deadline) {
          return std::optional<OrchestrationWorkItem>();
        }
        WaitForWork(lock, orch_cv_, orch_sleepers_, NextInstanceDue(), now, deadline);
      }
    }

    int64_t history_size = 0, history_generation = 0;
    Result<std::optional<InstanceState>> row = [&]() -> Result<std::optional<InstanceState>> {
      BATON_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, AcquireReader());
      ReaderLease reader(this, std::move(conn));
      return ReadInstance(*reader, item.instance_id, /*include_payloads=*/false, &history_size,
                          &history_generation);
    }();
    if (!row.ok()) {
      AbandonOrchestrationWorkItem(item, std::chrono::milliseconds::zero());
      return row.status();
    }
    if (!row.value()) {
      DropOrphanMessages(item);
      continue;
    }
    item.instance = std::move(*row.value());
    item.history_size = history_size;
    item.history_generation = history_generation;
    return std::optional<OrchestrationWorkItem>(std::move(item));
  }
}

void SqliteStore::DropOrphanMessages(const OrchestrationWorkItem& item) {
  util::Log().warn("dropping {} message(s) to instance '{}', which does not exist",
                   item.messages.size(), item.instance_id);
  std::vector<uint64_t> seqs;
  {
    std::lock_guard lock(mu_);
    auto it = instances_.find(item.instance_id);
    if (it == instances_.end() || it->second.lock_token != item.lock_token) return;
    for (const Message& m : item.messages) {
      it->second.messages.erase(m.seq);
      seqs.push_back(m.seq);
    }
    UnlockInstance(it->second);
    ReevaluateInstance(item.instance_id, TruncateToMicros(clock_->Now()));
  }
  WriteOp op;
  op.sync = false;
  op.execute = [seqs = std::move(seqs)](Connection& c) -> Status {
    for (uint64_t seq : seqs) {
      BATON_ASSIGN_OR_RETURN(Statement st, c.Prepare(kDeleteInboxSeq));
      BATON_RETURN_IF_ERROR(st.Bind(1, static_cast<int64_t>(seq)).Run("delete orphan message"));
    }
    return Status::Ok();
  };
  op.done = [id = item.instance_id](const Status& s) {
    if (!s.ok()) {
      util::Log().warn("could not delete messages to missing instance '{}': {}", id, s.ToString());
    }
  };
  Enqueue(std::move(op));
}

namespace {

// What CompleteOrchestrationWorkItem hands to its op: everything serialized
// on the caller's thread, so the single writer thread only runs SQL.
struct OrchestrationCommit {
  std::string instance_id;
  uint64_t lock_token = 0;
  std::vector<uint64_t> consumed;
  OrchestrationUpdate update;
  std::string history_json;
  std::string failure_json;
  std::vector<std::string> outbox_json;
  TimePoint now;
  bool reserved = false;  // this op marked the lease as committing
};

}  // namespace

void SqliteStore::CompleteOrchestrationWorkItem(const OrchestrationWorkItem& item,
                                                OrchestrationUpdate update, CommitCallback done) {
  auto commit = std::make_shared<OrchestrationCommit>();
  commit->instance_id = item.instance_id;
  commit->lock_token = item.lock_token;
  commit->now = TruncateToMicros(clock_->Now());
  commit->consumed.reserve(item.messages.size());
  for (const Message& m : item.messages) commit->consumed.push_back(m.seq);
  if (!update.new_events.empty()) commit->history_json = SerializeEvents(update.new_events);
  if (update.failure) commit->failure_json = SerializeFailure(*update.failure);
  for (Message& m : update.outbox) {
    m.seq = 0;
    m.visible_at = IsUnset(m.visible_at) ? commit->now : TruncateToMicros(m.visible_at);
    m.event.timestamp =
        IsUnset(m.event.timestamp) ? commit->now : TruncateToMicros(m.event.timestamp);
    if (m.instance_id.empty()) {
      if (const auto* s = std::get_if<events::ExecutionStarted>(&m.event.body)) {
        m.instance_id = s->instance_id;
      }
    }
    commit->outbox_json.push_back(SerializeEvent(m.event));
  }
  for (ActivityTask& t : update.tasks) {
    t.seq = 0;
    if (t.instance_id.empty()) t.instance_id = item.instance_id;
    if (t.execution_id.empty()) t.execution_id = update.execution_id;
    t.visible_at = IsUnset(t.visible_at) ? commit->now : TruncateToMicros(t.visible_at);
  }
  bool sync = update.sync || options_.durability == Durability::kFull;
  commit->update = std::move(update);
  auto effects = std::make_shared<Effects>();

  WriteOp op;
  op.sync = sync;
  op.done = std::move(done);
  op.execute = [this, commit, effects](Connection& c) -> Status {
    const std::string& id = commit->instance_id;
    const OrchestrationUpdate& u = commit->update;
    {
      std::lock_guard lock(mu_);
      auto it = instances_.find(id);
      if (it == instances_.end() || !it->second.locked ||
          it->second.lock_token != commit->lock_token || it->second.committing) {
        return AbortedError("lease " + std::to_string(commit->lock_token) + " on instance '" + id +
                            "' is no longer held");
      }
      TimePoint now = TruncateToMicros(clock_->Now());
      if (it->second.locked_until <= now) {
        UnlockInstance(it->second);
        ReevaluateInstance(id, now);
        return AbortedError("lease " + std::to_string(commit->lock_token) + " on instance '" + id +
                            "' expired");
      }
      it->second.committing = true;
      it->second.renewable = false;  // a failed commit's lease runs out
      commit->reserved = true;
    }
    for (uint64_t seq : commit->consumed) {
      BATON_ASSIGN_OR_RETURN(Statement st, c.Prepare(kDeleteInboxSeq));
      BATON_RETURN_IF_ERROR(st.Bind(1, static_cast<int64_t>(seq)).Run("delete consumed message"));
    }
    BATON_ASSIGN_OR_RETURN(std::optional<RowHead> head, ReadHead(c, id));
    if (!head) return AbortedError("instance '" + id + "' no longer exists");
    if (u.consume_only) {
      // Nothing of the instance changes; a concurrent SendMessage (a rewind
      // marking it Pending) keeps what it wrote.
    } else if (u.reset_history) {
      BATON_ASSIGN_OR_RETURN(Statement st, c.Prepare(kDeleteHistory));
      BATON_RETURN_IF_ERROR(st.Bind(1, id).Run("reset history"));
    }
    int64_t chunk = u.reset_history ? 0 : head->history_size;
    if (!u.consume_only && !commit->history_json.empty()) {
      BATON_ASSIGN_OR_RETURN(Statement st, c.Prepare(kInsertHistory));
      BATON_RETURN_IF_ERROR(
          st.Bind(1, id).Bind(2, chunk).Bind(3, commit->history_json).Run("append history"));
    }
    if (!u.consume_only) {
      BATON_ASSIGN_OR_RETURN(Statement st, c.Prepare(kUpdateInstance));
      st.Bind(1, id)
          .Bind(2, u.execution_id)
          .Bind(3, OrchestrationStatusName(u.status))
          .BindPayload(4, u.output)
          .BindPayload(5, u.custom_status)
          .BindPayload(6, commit->failure_json)
          .Bind(7, ToUnixMicros(commit->now));
      if (IsTerminal(u.status)) {
        st.Bind(8, ToUnixMicros(commit->now));
      } else {
        st.BindNull(8);
      }
      st.Bind(9, chunk + static_cast<int64_t>(u.new_events.size()))
          .Bind(10, static_cast<int64_t>(u.reset_history))
          .BindPayload(11, u.input);
      BATON_RETURN_IF_ERROR(st.Run("update instance"));
    }
    if (!u.consume_only && head->status != u.status) effects->status_changed.push_back(id);
    for (size_t i = 0; i < u.outbox.size(); ++i) {
      BATON_RETURN_IF_ERROR(
          DeliverMessage(c, u.outbox[i], commit->outbox_json[i], commit->now, effects.get()));
    }
    for (const ActivityTask& task : u.tasks) {
      ActivityTask t = task;
      BATON_RETURN_IF_ERROR(InsertTask(c, t));
      effects->steps.emplace_back(std::move(t));
    }
    return Status::Ok();
  };
  op.publish = [this, commit, effects] {
    TimePoint now = TruncateToMicros(clock_->Now());
    auto it = instances_.find(commit->instance_id);
    if (it != instances_.end() && it->second.lock_token == commit->lock_token) {
      for (uint64_t seq : commit->consumed) it->second.messages.erase(seq);
      UnlockInstance(it->second);
    }
    PublishEffects(*effects, now);
    ReevaluateInstance(commit->instance_id, now);
  };
  op.discard = [this, commit] {
    if (!commit->reserved) return;
    auto it = instances_.find(commit->instance_id);
    if (it == instances_.end() || it->second.lock_token != commit->lock_token) return;
    InstanceQueue& q = it->second;
    q.committing = false;
    TimePoint now = TruncateToMicros(clock_->Now());
    // The lease may have run out while the commit was in flight; expiry
    // skipped it then, so it ends here.
    if (q.locked_until <= now) {
      UnlockInstance(q);
      ReevaluateInstance(commit->instance_id, now);
    }
  };
  Enqueue(std::move(op));
}

void SqliteStore::AbandonOrchestrationWorkItem(const OrchestrationWorkItem& item,
                                               std::chrono::milliseconds delay) {
  std::lock_guard lock(mu_);
  auto it = instances_.find(item.instance_id);
  if (it == instances_.end()) return;
  InstanceQueue& q = it->second;
  if (!q.locked || q.lock_token != item.lock_token || q.committing) return;  // stale token
  TimePoint now = TruncateToMicros(clock_->Now());
  UnlockInstance(q);
  if (delay > std::chrono::milliseconds::zero()) {
    q.not_before = now + delay;
    ScheduleInstance(item.instance_id, q.not_before);
  }
  ReevaluateInstance(item.instance_id, now);
}

// ---------------------------------------------------------------------------
// Engine side: activities.

Result<std::optional<ActivityWorkItem>> SqliteStore::FetchActivityWorkItem(
    std::chrono::milliseconds max_wait) {
  auto deadline = std::chrono::steady_clock::now() + max_wait;
  std::unique_lock lock(mu_);
  for (;;) {
    if (interrupted_) return std::optional<ActivityWorkItem>();
    TimePoint now = TruncateToMicros(clock_->Now());
    PromoteTasks(now);
    ActivityWorkItem item;
    if (TakeReadyTask(now, &item)) return std::optional<ActivityWorkItem>(std::move(item));
    if (std::chrono::steady_clock::now() >= deadline) return std::optional<ActivityWorkItem>();
    WaitForWork(lock, task_cv_, task_sleepers_, NextTaskDue(), now, deadline);
  }
}

namespace {

struct ActivityCommit {
  uint64_t seq = 0;
  uint64_t lock_token = 0;
  Message result;
  std::string result_json;
  TimePoint now;
  bool reserved = false;
};

}  // namespace

void SqliteStore::CompleteActivityWorkItem(const ActivityWorkItem& item, Message result,
                                           CommitCallback done) {
  auto commit = std::make_shared<ActivityCommit>();
  commit->seq = item.task.seq;
  commit->lock_token = item.lock_token;
  commit->now = TruncateToMicros(clock_->Now());
  result.seq = 0;
  if (result.instance_id.empty()) result.instance_id = item.task.instance_id;
  if (result.execution_id.empty()) result.execution_id = item.task.execution_id;
  result.visible_at =
      IsUnset(result.visible_at) ? commit->now : TruncateToMicros(result.visible_at);
  result.event.timestamp =
      IsUnset(result.event.timestamp) ? commit->now : TruncateToMicros(result.event.timestamp);
  commit->result_json = SerializeEvent(result.event);
  commit->result = std::move(result);
  auto effects = std::make_shared<Effects>();

  WriteOp op;
  op.sync = options_.durability == Durability::kFull;
  op.done = std::move(done);
  op.execute = [this, commit, effects](Connection& c) -> Status {
    {
      std::lock_guard lock(mu_);
      auto it = tasks_.find(commit->seq);
      if (it == tasks_.end() || !it->second.locked || it->second.lock_token != commit->lock_token ||
          it->second.committing) {
        return AbortedError("lease " + std::to_string(commit->lock_token) + " on activity task " +
                            std::to_string(commit->seq) + " is no longer held");
      }
      TimePoint now = TruncateToMicros(clock_->Now());
      if (it->second.locked_until <= now) {
        UnlockTask(it->second);
        ReevaluateTask(commit->seq, now);
        return AbortedError("lease " + std::to_string(commit->lock_token) + " on activity task " +
                            std::to_string(commit->seq) + " expired");
      }
      it->second.committing = true;
      it->second.renewable = false;  // a failed commit's lease runs out
      commit->reserved = true;
    }
    {
      BATON_ASSIGN_OR_RETURN(Statement st, c.Prepare(kDeleteTaskSeq));
      BATON_RETURN_IF_ERROR(
          st.Bind(1, static_cast<int64_t>(commit->seq)).Run("delete activity task"));
    }
    return DeliverMessage(c, commit->result, commit->result_json, commit->now, effects.get());
  };
  op.publish = [this, commit, effects] {
    auto it = tasks_.find(commit->seq);
    if (it != tasks_.end() && it->second.lock_token == commit->lock_token) RemoveTask(commit->seq);
    PublishEffects(*effects, TruncateToMicros(clock_->Now()));
  };
  op.discard = [this, commit] {
    if (!commit->reserved) return;
    auto it = tasks_.find(commit->seq);
    if (it == tasks_.end() || it->second.lock_token != commit->lock_token) return;
    TaskEntry& t = it->second;
    t.committing = false;
    TimePoint now = TruncateToMicros(clock_->Now());
    if (t.locked_until <= now) {
      UnlockTask(t);
      ReevaluateTask(commit->seq, now);
    }
  };
  Enqueue(std::move(op));
}

void SqliteStore::AbandonActivityWorkItem(const ActivityWorkItem& item,
                                          std::chrono::milliseconds delay) {
  std::lock_guard lock(mu_);
  auto it = tasks_.find(item.task.seq);
  if (it == tasks_.end()) return;
  TaskEntry& t = it->second;
  if (!t.locked || t.lock_token != item.lock_token || t.committing) return;  // stale token
  TimePoint now = TruncateToMicros(clock_->Now());
  UnlockTask(t);
  if (delay > std::chrono::milliseconds::zero()) {
    t.not_before = now + delay;
    ScheduleTask(item.task.seq, t.not_before);
  }
  ReevaluateTask(item.task.seq, now);
}

void SqliteStore::Interrupt() {
  std::vector<std::shared_ptr<AsyncWaiter>> async;
  {
    std::lock_guard lock(mu_);
    interrupted_ = true;
    orch_cv_.notify_all();
    task_cv_.notify_all();
    for (auto& [id, list] : waiters_) {
      for (Waiter* w : list) w->cv.notify_one();
    }
    for (auto& [id, w] : async_by_id_) async.push_back(w);
  }
  for (const auto& w : async) {
    EndAsyncWait(w, CancelledError("store interrupted while waiting for '" + w->instance_id + "'"));
  }
}

void SqliteStore::ResumeFetching() {
  std::lock_guard lock(mu_);
  interrupted_ = false;
}

// The hub of an instance id in SQL, as HubOf() (instance.h) has it.
#define BATON_SQL_HUB                                                         \
  "CASE WHEN substr(instance_id, 1, 1) = '@' OR instr(instance_id, '::') = 0 " \
  "THEN '' ELSE substr(instance_id, 1, instr(instance_id, '::') - 1) END"

Result<std::vector<QueueDepth>> SqliteStore::QueueDepths(TimePoint now) {
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, AcquireReader());
  ReaderLease reader(this, std::move(conn));
  BATON_ASSIGN_OR_RETURN(
      Statement st,
      reader->Prepare("SELECT hub, sum(m), sum(t), min(v) FROM ("
                      " SELECT " BATON_SQL_HUB " AS hub, 1 AS m, 0 AS t,"
                      "  CASE WHEN visible_at <= ?1 THEN visible_at END AS v FROM inbox"
                      " UNION ALL"
                      " SELECT " BATON_SQL_HUB ", 0, 1, CASE WHEN visible_at <= ?1 THEN visible_at END"
                      "  FROM activity_tasks"
                      ") GROUP BY hub ORDER BY hub"));
  st.Bind(1, ToUnixMicros(now));
  std::vector<QueueDepth> out;
  for (;;) {
    BATON_ASSIGN_OR_RETURN(bool row, st.Step("read queue depths"));
    if (!row) break;
    QueueDepth d;
    d.hub = st.Text(0);
    d.orchestration_messages = st.Int(1);
    d.activity_tasks = st.Int(2);
    if (!st.IsNull(3)) d.oldest_visible = FromUnixMicros(st.Int(3));
    out.push_back(std::move(d));
  }
  return out;
}
#undef BATON_SQL_HUB

void SqliteStore::SetNodeReporter(std::function<NodeReport()> reporter) {
  std::lock_guard lock(reporter_mu_);
  reporter_ = std::move(reporter);
}

Result<std::vector<NodeInfo>> SqliteStore::ListNodes() {
  NodeInfo n;
  n.node_id = util::ProcessNodeId();
  n.state = NodeState::kUp;
  {
    std::lock_guard lock(reporter_mu_);
    if (reporter_) {
      NodeReport report = reporter_();
      n.version = std::move(report.version);
      n.details = std::move(report.details);
    }
  }
  if (n.details.empty()) n.details = "{}";
  const TimePoint now = clock_->Now();
  n.started_at = opened_at_;
  n.heartbeat_at = TruncateToMicros(now);
  {
    // The lease lists hold exactly the live leases (expiry unlists them).
    std::lock_guard lock(mu_);
    std::set<std::string> instances;
    for (const auto& [until, id] : orch_leases_) {
      if (until > now) instances.insert(id);
    }
    n.instance_leases = static_cast<int64_t>(instances.size());
    for (const std::string& id : instances) {
      if (n.leased_instances.size() >= static_cast<size_t>(kMaxListedLeases)) break;
      n.leased_instances.push_back(id);
    }
    std::set<uint64_t> seqs;
    for (const auto& [until, seq] : task_leases_) {
      if (until > now) seqs.insert(seq);
    }
    n.task_leases = static_cast<int64_t>(seqs.size());
    for (uint64_t seq : seqs) {
      if (n.leased_tasks.size() >= static_cast<size_t>(kMaxListedLeases)) break;
      auto it = tasks_.find(seq);
      if (it == tasks_.end()) continue;
      n.leased_tasks.push_back(LeasedTask{seq, it->second.task.instance_id, it->second.task.name});
    }
  }
  return std::vector<NodeInfo>{std::move(n)};
}

}  // namespace sqlite

Result<SchemaVersion> MigrateSqliteStore(const std::string& path) {
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<sqlite::Connection> conn,
                         sqlite::Connection::Open(path, /*create=*/true));
  return sqlite::Migrate(*conn, path);
}

namespace {

// OpenSqliteStoreReader's reader: one read-only connection, no lock file, no
// writer, no queues (baton/store_reader.h).
class SqliteStoreReader final : public StoreReader {
 public:
  explicit SqliteStoreReader(std::unique_ptr<sqlite::Connection> conn) : conn_(std::move(conn)) {}
  Result<QueryPage> QueryInstances(const InstanceQuery& query) override {
    return sqlite::QueryInstancesOn(*conn_, query);
  }
  Result<std::vector<HistoryEvent>> GetHistory(const std::string& instance_id) override {
    return sqlite::GetHistoryOn(*conn_, instance_id);
  }

 private:
  std::unique_ptr<sqlite::Connection> conn_;
};

}  // namespace

Result<std::unique_ptr<StoreReader>> OpenSqliteStoreReader(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return NotFoundError("no task hub file at " + path);
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<sqlite::Connection> conn,
                         sqlite::Connection::OpenReadOnly(path));
  // A file that is not a Baton task hub fails here rather than at the first query.
  BATON_RETURN_IF_ERROR(conn->Exec("SELECT instance_id, history_size FROM instances LIMIT 0",
                                   "read the instances table of " + path));
  return std::unique_ptr<StoreReader>(new SqliteStoreReader(std::move(conn)));
}

Result<std::unique_ptr<Store>> OpenSqliteStore(const SqliteStoreOptions& options) {
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<sqlite::SqliteStore> store,
                         sqlite::SqliteStore::Open(options));
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace baton
