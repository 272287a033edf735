-- Migration 9: the nodes of a deployment, for operators (GET
-- /api/v1/admin/nodes, `baton nodes`, the dashboard's admin view).
--
-- Each node's store upserts its row every kNodeHeartbeatEvery (2 s) from its
-- keeper thread, beside the lease renewals: never on a work item's path. A
-- clean stop sets stopped_at. A row whose heartbeat is older than
-- kNodeGoneAfter (10 s) reads as "gone"; rows older than kNodeForgottenAfter
-- (1 h) are deleted by any node's keeper. The leases a node holds are not
-- copied here: ListNodes counts them from locked_by, so they are never stale.
-- Times are microseconds of the database clock, as everywhere.
CREATE TABLE nodes (
  node_id      text COLLATE "C" PRIMARY KEY,  -- as leases record it in locked_by
  version      text NOT NULL DEFAULT '',      -- the build (NodeReport::version)
  details      text NOT NULL DEFAULT '{}',    -- NodeReport::details, a JSON object
  started_at   bigint NOT NULL,               -- when the node's store opened
  heartbeat_at bigint NOT NULL,
  stopped_at   bigint                         -- a clean stop; NULL while it runs
);
