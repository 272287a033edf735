-- Migration 8: lists newest first (InstanceOrder).
--
-- The dashboard, `baton instance list` and the HTTP list page instances by
-- (created_at, instance_id), descending, with keyset continuation tokens
-- (src/store/instance_query.h): the page's cursor is the row comparison
-- (created_at, instance_id) < (t, id), which this index answers as one range
-- scan read backwards. It also serves the created-time range filters that
-- the index on created_at alone served.
CREATE INDEX IF NOT EXISTS instances_by_created ON instances (created_at, instance_id);
DROP INDEX IF EXISTS instances_by_created_at;
