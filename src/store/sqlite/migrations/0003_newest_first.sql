-- Migration 4 of a SqliteStore file: lists newest first (InstanceOrder).
--
-- The dashboard, `baton instance list` and the HTTP list page instances by
-- (created_at, instance_id), descending, with keyset continuation tokens
-- (src/store/instance_query.h). An index on created_at alone holds the rowid,
-- not the instance id, so each page would sort its rows in a temporary
-- b-tree; this one serves the order and the cursor condition, and the
-- created-time range filters that the old index served.
CREATE INDEX IF NOT EXISTS instances_by_created ON instances (created_at, instance_id);
DROP INDEX IF EXISTS instances_by_created_at;
