-- Migration 1 of a SqliteStore file (include/baton/sqlite_store.h): the
-- task hub's tables.
--
-- Embedded into the binary at build time (baton_embed_migrations in
-- src/store/CMakeLists.txt) and applied once by the migration runner at open,
-- which records it in schema_migrations. Its statements are idempotent
-- because files made before migrations were versioned already hold these
-- tables. Never edit an applied migration: add the next file instead. The
-- connection, not the file, sets journal_mode=WAL and the synchronous level,
-- because those are operational choices, not data.
--
-- Conventions:
--   * Times are INTEGER microseconds since the Unix epoch (baton/clock.h):
--     cheap to compare and index, exact at the precision Baton keeps.
--   * Payloads (inputs, outputs, custom status) are the serialized JSON text
--     the API carries; the store never parses them. NULL means "no value".
--   * Leases (which worker holds an instance or a task, and until when) are
--     NOT stored: they live in the memory of the one process that holds the
--     file lock, and die with it, which is exactly when they must end.

-- Metadata about the file itself. schema_version is what binaries from
-- before schema_migrations read; schema_migrations is the record now.
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '1');

-- One row per orchestration instance: the Durable Task OrchestrationState.
-- Read by GetInstance/QueryInstances and at every fetch; rewritten by every
-- committed episode.
CREATE TABLE IF NOT EXISTS instances (
  instance_id        TEXT PRIMARY KEY,
  name               TEXT NOT NULL,
  version            TEXT NOT NULL DEFAULT '',
  -- Changes at every continue-as-new; messages naming another execution are
  -- stale and are dropped by the engine.
  execution_id       TEXT NOT NULL,
  -- OrchestrationStatusName() spelling ("Running", "Completed", ...): readable
  -- with the sqlite3 shell and stable if the enum's numbering ever changes.
  status             TEXT NOT NULL,
  created_at         INTEGER NOT NULL,
  updated_at         INTEGER NOT NULL,
  completed_at       INTEGER,            -- set when status becomes terminal
  scheduled_start    INTEGER,            -- set when the client asked to start later
  input              TEXT,
  output             TEXT,
  custom_status      TEXT,
  failure            TEXT,               -- SerializeFailure() JSON, when Failed
  parent_instance_id TEXT,               -- set for sub-orchestrations
  -- Number of events in the current execution's history. Kept here so a fetch
  -- can tell the engine whether its cached history is current without
  -- reading the history, and so an append knows its chunk number.
  history_size       INTEGER NOT NULL DEFAULT 0,
  tags               TEXT                -- JSON object of string tags
);

-- QueryInstances filters by status and pages by instance_id; PurgeInstances
-- selects terminal statuses. Including instance_id lets a status-filtered page
-- be read in key order straight from the index.
CREATE INDEX IF NOT EXISTS instances_by_status ON instances (status, instance_id);
-- Time-range filters of QueryInstances and PurgeInstances.
CREATE INDEX IF NOT EXISTS instances_by_created_at ON instances (created_at);

-- The current execution's history, one row per committed episode rather than
-- one per event: an episode appends one row whatever its size, which keeps
-- commits small and fast, and a replay reads a handful of rows.
CREATE TABLE IF NOT EXISTS history (
  instance_id TEXT NOT NULL,
  -- Position of the chunk's first event in the execution's history (the
  -- instance's history_size before the append). Increasing, so ordering by
  -- chunk yields the events oldest first; continue-as-new deletes the rows
  -- and starts again at 0.
  chunk       INTEGER NOT NULL,
  events      TEXT NOT NULL,  -- JSON array written by SerializeEvents()
  PRIMARY KEY (instance_id, chunk)
);

-- Pending messages to instances (new events, raised events, due and future
-- timers). A row is deleted by the commit of the episode that consumed it.
-- At open the whole table is loaded into the in-memory work queues.
CREATE TABLE IF NOT EXISTS inbox (
  -- Assigned by the store from one counter shared with activity_tasks;
  -- FIFO order of an instance's messages.
  seq          INTEGER PRIMARY KEY,
  instance_id  TEXT NOT NULL,
  execution_id TEXT NOT NULL DEFAULT '',  -- '' = any execution
  visible_at   INTEGER NOT NULL,          -- not delivered before this time
  event        TEXT NOT NULL              -- SerializeEvent() JSON
);
-- Purge and instance replacement delete an instance's messages.
CREATE INDEX IF NOT EXISTS inbox_by_instance ON inbox (instance_id);

-- Activity tasks waiting for (or leased to) an activity worker. Deleted by the
-- commit that delivers the task's result. Loaded into memory at open.
CREATE TABLE IF NOT EXISTS activity_tasks (
  seq          INTEGER PRIMARY KEY,
  instance_id  TEXT NOT NULL,
  execution_id TEXT NOT NULL,
  task_id      INTEGER NOT NULL,  -- the TaskScheduled event id
  name         TEXT NOT NULL,
  version      TEXT NOT NULL DEFAULT '',
  input        TEXT,
  visible_at   INTEGER NOT NULL
);
-- Purge deletes an instance's tasks.
CREATE INDEX IF NOT EXISTS activity_tasks_by_instance ON activity_tasks (instance_id);
