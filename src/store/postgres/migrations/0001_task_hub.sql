-- Migration 1 of a PostgresStore database (include/baton/postgres_store.h):
-- the task hub's tables and the server-side functions every store call runs.
--
-- Embedded into the binary at build time and applied once, in a transaction,
-- by the migration runner (src/store/postgres/postgres_store.cc), which
-- records it in schema_migrations. Never edit an applied migration: add the
-- next file instead.
--
-- Conventions:
--   * One set of tables for every task hub: an instance id "tenant::id"
--     carries its hub, so a hub is a key prefix, not a schema.
--   * Times are bigint microseconds since the Unix epoch, as in the SQLite
--     store and baton/clock.h: exact, cheap to compare and index. "Now" is
--     the DATABASE clock (baton_now()) unless the caller passes p_now (tests
--     inject a clock that way); every function reads it once.
--   * Payloads are the serialized JSON text the API carries; NULL = none.
--   * instance_id columns use the "C" collation: pages and prefixes are
--     ordered by bytes, as in SQLite, whatever the database's locale.
--   * Leases: a row (an instance's queue row, or an activity task) is leased
--     when lock_token is set and locked_until is in the future. The token
--     comes from one sequence, so a token is never reused. Every completion
--     checks its token and expiry under the row lock before it writes
--     anything (fencing).
--   * An instance is two rows: `instances` (what it is: state and payloads,
--     read by queries) and `instance_queue` (where it stands: pending
--     messages, lease). Fetching and delivering messages rewrite only the
--     narrow queue row and its two indexes; an episode that leaves the status
--     as it was rewrites the instances row in place (a HOT update).
--   * Lock order (deadlock freedom): the queue row IS the instance's lock.
--     Whoever changes an instance (or its inbox, history or tasks) first
--     locks its queue row; a call that touches several instances locks their
--     queue rows in one statement, in instance_id order; activity task rows
--     come after. Rows created meanwhile (a sub-orchestration started by
--     another commit) can still deadlock in theory; PostgreSQL then aborts
--     one transaction, which wrote nothing, and the store retries it.

CREATE SEQUENCE baton_message_seq;   -- inbox and activity_tasks seq: FIFO order
CREATE SEQUENCE baton_lease_token;   -- fencing tokens of instance and task leases

-- The database clock in microseconds. clock_timestamp, not now(): a lease
-- check must see the time of the check, not of the transaction's start.
CREATE FUNCTION baton_now() RETURNS bigint LANGUAGE sql VOLATILE AS
$$ SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint $$;

CREATE FUNCTION baton_is_terminal(p_status text) RETURNS boolean LANGUAGE sql IMMUTABLE AS
$$ SELECT p_status IN ('Completed', 'Failed', 'Terminated', 'Canceled') $$;

-- One row per orchestration instance (and per durable entity): its state.
-- Room left in each page lets an episode's update stay on the page (HOT).
CREATE TABLE instances (
  instance_id        text COLLATE "C" PRIMARY KEY,
  name               text NOT NULL,
  version            text NOT NULL DEFAULT '',
  execution_id       text NOT NULL,    -- changes at every continue-as-new
  status             text NOT NULL,    -- OrchestrationStatusName() spelling
  created_at         bigint NOT NULL,
  updated_at         bigint NOT NULL,
  completed_at       bigint,           -- set when status becomes terminal
  scheduled_start    bigint,
  input              text,
  output             text,
  custom_status      text,
  failure            text,             -- SerializeFailure() JSON, when Failed
  parent_instance_id text,
  history_size       integer NOT NULL DEFAULT 0,  -- events in the current execution
  tags               text              -- JSON object of string tags
) WITH (fillfactor = 70);
CREATE INDEX instances_by_status ON instances (status, instance_id);
CREATE INDEX instances_by_created_at ON instances (created_at);

-- One row per instance: its place in the fetch queue and its lease.
CREATE TABLE instance_queue (
  instance_id   text COLLATE "C" PRIMARY KEY,
  -- The earliest visible_at of the instance's pending messages; NULL when the
  -- inbox is empty. Kept by every function that adds or removes messages.
  ready_at      bigint,
  -- The lease. An abandon with a delay leaves lock_token NULL and
  -- locked_until in the future: nobody holds it, nobody may fetch it yet.
  lock_token    bigint,
  locked_until  bigint NOT NULL DEFAULT 0,
  locked_by     text,                  -- the node (diagnostics)
  -- Fetches of the pending messages since they were last consumed.
  dequeue_count integer NOT NULL DEFAULT 0,
  -- When the instance can next be fetched: it has a message visible and no
  -- live lease. Fetching is one index range scan over due_at <= now.
  due_at        bigint GENERATED ALWAYS AS (
                  CASE WHEN ready_at IS NULL THEN NULL ELSE GREATEST(ready_at, locked_until) END) STORED
);
CREATE INDEX instance_queue_due ON instance_queue (due_at) WHERE due_at IS NOT NULL;

-- The current execution's history: one row per committed episode, keyed by
-- the position of its first event, so a second commit of the same episode
-- (or any overlap) cannot insert.
CREATE TABLE history (
  instance_id  text COLLATE "C" NOT NULL,
  execution_id text NOT NULL,
  position     integer NOT NULL,
  lock_token   bigint,                 -- the lease that wrote it (diagnostics)
  events       text NOT NULL,          -- JSON array written by SerializeEvents()
  PRIMARY KEY (instance_id, execution_id, position)
);

-- Pending messages to instances: new events, raised events, timers.
CREATE TABLE inbox (
  seq          bigint PRIMARY KEY DEFAULT nextval('baton_message_seq'),
  instance_id  text COLLATE "C" NOT NULL,
  execution_id text NOT NULL DEFAULT '',  -- '' = any execution
  visible_at   bigint NOT NULL,
  event        text NOT NULL              -- SerializeEvent() JSON
);
CREATE INDEX inbox_by_instance ON inbox (instance_id, visible_at);

-- Activity tasks waiting for, or leased to, an activity worker.
CREATE TABLE activity_tasks (
  seq           bigint PRIMARY KEY DEFAULT nextval('baton_message_seq'),
  instance_id   text COLLATE "C" NOT NULL,
  execution_id  text NOT NULL,
  task_id       integer NOT NULL,
  name          text NOT NULL,
  version       text NOT NULL DEFAULT '',
  input         text,
  visible_at    bigint NOT NULL,
  lock_token    bigint,
  locked_until  bigint NOT NULL DEFAULT 0,
  locked_by     text,
  dequeue_count integer NOT NULL DEFAULT 0,
  due_at        bigint GENERATED ALWAYS AS (GREATEST(visible_at, locked_until)) STORED
);
CREATE INDEX activity_tasks_due ON activity_tasks (due_at, seq);
CREATE INDEX activity_tasks_by_instance ON activity_tasks (instance_id);

-- Proof that a commit happened, for the one case where the client cannot
-- know: the connection broke during the commit. Every mutating function
-- inserts its caller's key (a lease token for work items, a random negative
-- number for client calls) in the same transaction; the store reads it back
-- after reconnecting. Rows older than a few minutes are pruned.
CREATE TABLE commit_log (
  commit_key   bigint PRIMARY KEY,
  committed_at bigint NOT NULL
);
CREATE INDEX commit_log_by_time ON commit_log USING brin (committed_at);

-- ---------------------------------------------------------------------------
-- Internal helpers. REQUIRES: the caller holds the queue row lock of every
-- instance it passes (see the lock order above).

-- Deletes everything of one instance.
CREATE FUNCTION baton_wipe_instance(p_id text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM inbox WHERE instance_id = p_id;
  DELETE FROM activity_tasks WHERE instance_id = p_id;
  DELETE FROM history WHERE instance_id = p_id;
  DELETE FROM instances WHERE instance_id = p_id;
  DELETE FROM instance_queue WHERE instance_id = p_id;
END $$;

-- Inserts one message into an existing instance's inbox and moves its ready_at.
CREATE FUNCTION baton_enqueue(p_id text, p_execution text, p_visible bigint, p_event text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO inbox (instance_id, execution_id, visible_at, event)
  VALUES (p_id, coalesce(p_execution, ''), p_visible, p_event);
  UPDATE instance_queue SET ready_at = LEAST(ready_at, p_visible) WHERE instance_id = p_id;
END $$;

-- Creates an instance's two rows, and locks the new queue row. False (and
-- nothing written) when the id exists.
CREATE FUNCTION baton_insert_instance(p_now bigint, p_id text, p_name text, p_version text,
                                      p_execution text, p_input text, p_parent text,
                                      p_scheduled bigint, p_tags text)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO instance_queue (instance_id) VALUES (p_id) ON CONFLICT (instance_id) DO NOTHING;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  INSERT INTO instances (instance_id, name, version, execution_id, status, created_at, updated_at,
                         scheduled_start, input, parent_instance_id, tags)
  VALUES (p_id, p_name, coalesce(p_version, ''), p_execution, 'Pending', p_now, p_now,
          p_scheduled, p_input, p_parent, p_tags);
  RETURN true;
END $$;

-- Locks the queue rows of `p_ids` that exist, in instance_id order.
CREATE FUNCTION baton_lock_instances(p_ids text[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM instance_queue WHERE instance_id = ANY (p_ids) ORDER BY instance_id FOR NO KEY UPDATE;
END $$;

-- Delivers one message of an outbox or an activity result (the SQLite
-- store's DeliverMessage). p_kind: 0 a plain event, 1 ExecutionStarted (a
-- sub-orchestration; p_start carries the new row's fields and the reply to
-- send the parent if the id is taken), 2 ExecutionRewound. p_entity names the
-- durable entity whose row the message creates when it has none.
-- Returns the instance whose status it changed, or NULL.
CREATE FUNCTION baton_deliver(p_now bigint, p_id text, p_execution text, p_visible bigint,
                              p_kind integer, p_event text, p_entity text, p_start jsonb)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  v_status text;
  v_size integer;
  v_execution text;
  v_reply jsonb;
BEGIN
  IF p_kind = 1 THEN
    LOOP
      PERFORM 1 FROM instance_queue WHERE instance_id = p_id FOR NO KEY UPDATE;
      SELECT status, history_size, execution_id INTO v_status, v_size, v_execution
        FROM instances WHERE instance_id = p_id;
      IF FOUND AND NOT baton_is_terminal(v_status) THEN
        -- The instance's own next generation (a continue-as-new whose first
        -- episode runs later): its start goes to its inbox.
        IF v_size = 0 AND coalesce(p_execution, '') <> '' AND v_execution = p_execution THEN
          PERFORM baton_enqueue(p_id, p_execution, p_visible, p_event);
          RETURN NULL;
        END IF;
        IF p_start->>'reply_instance' IS NULL THEN
          RAISE LOG 'baton: dropping ExecutionStarted for % (status %): no parent to notify', p_id, v_status;
          RETURN NULL;
        END IF;
        v_reply := (p_start->>'reply_event')::jsonb;
        v_reply := jsonb_set(v_reply, '{failure,errorMessage}',
                             to_jsonb((v_reply #>> '{failure,errorMessage}') || v_status));
        RETURN baton_deliver(p_now, p_start->>'reply_instance', p_start->>'reply_execution', p_now,
                             0, v_reply::text, NULL, NULL);
      END IF;
      IF FOUND THEN
        PERFORM baton_wipe_instance(p_id);  -- a terminal instance is replaced
      END IF;
      EXIT WHEN baton_insert_instance(p_now, p_id, p_start->>'name', p_start->>'version',
                                      p_start->>'execution_id',
                                      p_start->>'input', p_start->>'parent',
                                      (p_start->>'scheduled_start')::bigint, p_start->>'tags');
      -- Created meanwhile by another transaction: decide again on its row.
    END LOOP;
    PERFORM baton_enqueue(p_id, p_execution, p_visible, p_event);
    RETURN p_id;
  END IF;

  PERFORM 1 FROM instance_queue WHERE instance_id = p_id FOR NO KEY UPDATE;
  IF NOT FOUND THEN
    IF p_entity IS NULL THEN
      RETURN NULL;  -- messages to instances that do not exist are dropped
    END IF;
    PERFORM baton_insert_instance(p_now, p_id, p_entity, '', 'entity', NULL, NULL, NULL, NULL);
    PERFORM baton_enqueue(p_id, p_execution, p_visible, p_event);
    RETURN NULL;
  END IF;
  PERFORM baton_enqueue(p_id, p_execution, p_visible, p_event);
  IF p_kind = 2 THEN
    -- A child rewound with its parent: Pending at once, as in a client's rewind.
    UPDATE instances SET status = 'Pending', completed_at = NULL, updated_at = p_now
     WHERE instance_id = p_id AND status = 'Failed';
    IF FOUND THEN
      RETURN p_id;
    END IF;
  END IF;
  RETURN NULL;
END $$;

-- ---------------------------------------------------------------------------
-- Client calls. Each returns 'ok' or a short code the store maps to a Status.

CREATE FUNCTION baton_create_instance(p_key bigint, p_now bigint, p_id text, p_name text,
                                      p_version text, p_input text, p_execution text,
                                      p_scheduled bigint, p_tags text, p_replaceable text[],
                                      p_event text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  v_now bigint := coalesce(p_now, baton_now());
  v_status text;
BEGIN
  LOOP
    PERFORM 1 FROM instance_queue WHERE instance_id = p_id FOR NO KEY UPDATE;
    IF FOUND THEN
      SELECT status INTO v_status FROM instances WHERE instance_id = p_id;
      IF NOT coalesce(v_status = ANY (p_replaceable), false) THEN
        RETURN 'exists:' || v_status;
      END IF;
      PERFORM baton_wipe_instance(p_id);
    END IF;
    EXIT WHEN baton_insert_instance(v_now, p_id, p_name, p_version, p_execution, p_input, NULL,
                                    p_scheduled, p_tags);
  END LOOP;
  PERFORM baton_enqueue(p_id, p_execution, coalesce(p_scheduled, v_now), p_event);
  INSERT INTO commit_log VALUES (p_key, v_now);
  RETURN 'ok';
END $$;

-- p_visible NULL = now. p_kind and p_entity as in baton_deliver.
CREATE FUNCTION baton_send_message(p_key bigint, p_now bigint, p_id text, p_execution text,
                                   p_visible bigint, p_kind integer, p_event text, p_entity text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  v_now bigint := coalesce(p_now, baton_now());
  v_status text;
BEGIN
  PERFORM 1 FROM instance_queue WHERE instance_id = p_id FOR NO KEY UPDATE;
  IF FOUND THEN
    SELECT status INTO v_status FROM instances WHERE instance_id = p_id;
  ELSIF p_entity IS NULL THEN
    RETURN 'notfound';
  ELSE
    PERFORM baton_insert_instance(v_now, p_id, p_entity, '', 'entity', NULL, NULL, NULL, NULL);
    v_status := 'Pending';
  END IF;
  IF baton_is_terminal(v_status) AND NOT (p_kind = 2 AND v_status = 'Failed') THEN
    RETURN 'terminal:' || v_status;
  END IF;
  IF p_kind = 2 AND v_status = 'Failed' THEN
    -- Pending until a worker rewrites the history, so that waiters for
    -- completion wait for the rewound run.
    UPDATE instances SET status = 'Pending', completed_at = NULL, updated_at = v_now
     WHERE instance_id = p_id;
  END IF;
  PERFORM baton_enqueue(p_id, p_execution, coalesce(p_visible, v_now), p_event);
  INSERT INTO commit_log VALUES (p_key, v_now);
  IF p_kind = 2 AND v_status = 'Failed' THEN
    RETURN 'ok:changed';
  END IF;
  RETURN 'ok';
END $$;

CREATE FUNCTION baton_purge_instance(p_key bigint, p_now bigint, p_id text, p_is_entity boolean)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  v_now bigint := coalesce(p_now, baton_now());
  v_queue instance_queue%ROWTYPE;
  v_status text;
BEGIN
  SELECT * INTO v_queue FROM instance_queue WHERE instance_id = p_id FOR NO KEY UPDATE;
  IF NOT FOUND THEN
    RETURN 'notfound';
  END IF;
  SELECT status INTO v_status FROM instances WHERE instance_id = p_id;
  IF p_is_entity THEN
    -- An entity never ends; it may go when nothing is pending for it.
    IF v_queue.ready_at IS NOT NULL OR (v_queue.lock_token IS NOT NULL AND v_queue.locked_until > v_now) THEN
      RETURN 'busy';
    END IF;
  ELSIF NOT baton_is_terminal(v_status) THEN
    RETURN 'active:' || v_status;
  END IF;
  PERFORM baton_wipe_instance(p_id);
  INSERT INTO commit_log VALUES (p_key, v_now);
  RETURN 'ok';
END $$;

-- Purges up to p_limit terminal instances matching the filter; returns their ids.
CREATE FUNCTION baton_purge_instances(p_key bigint, p_now bigint, p_statuses text[],
                                      p_from bigint, p_to bigint, p_prefix text, p_limit integer)
RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
  v_ids text[];
  v_id text;
  v_purged text[] := '{}';
BEGIN
  SELECT coalesce(array_agg(instance_id ORDER BY instance_id), '{}') INTO v_ids FROM (
    SELECT instance_id FROM instances
     WHERE status = ANY (p_statuses) AND baton_is_terminal(status)
       AND (p_from IS NULL OR created_at >= p_from)
       AND (p_to IS NULL OR created_at < p_to)
       AND (p_prefix = '' OR starts_with(instance_id, p_prefix))
     ORDER BY instance_id LIMIT p_limit) s;
  PERFORM baton_lock_instances(v_ids);
  FOREACH v_id IN ARRAY v_ids LOOP
    -- Still terminal now that it is locked (a client may have replaced it).
    IF EXISTS (SELECT 1 FROM instances WHERE instance_id = v_id AND baton_is_terminal(status)) THEN
      PERFORM baton_wipe_instance(v_id);
      v_purged := array_append(v_purged, v_id);
    END IF;
  END LOOP;
  INSERT INTO commit_log VALUES (p_key, coalesce(p_now, baton_now()));
  RETURN v_purged;
END $$;

-- ---------------------------------------------------------------------------
-- Work items.

-- Leases the instance that has been due longest and returns its row with
-- its visible messages (one result row per message, oldest first). When no
-- instance is due: one row with only o_next_due_in set, the microseconds
-- until the next one is (NULL = none at all). SKIP LOCKED steps over rows
-- another fetcher or a commit is locking at this moment, so a fetcher that
-- loses a candidate takes the next one.
CREATE FUNCTION baton_claim_instance(p_now bigint, p_lease bigint, p_node text, p_max integer)
RETURNS TABLE (o_instance_id text, o_name text, o_version text, o_execution_id text,
               o_status text, o_created_at bigint, o_updated_at bigint, o_completed_at bigint,
               o_scheduled_start bigint, o_parent_instance_id text, o_history_size integer,
               o_lock_token bigint, o_locked_until bigint, o_dequeue_count integer,
               o_seq bigint, o_msg_execution_id text, o_visible_at bigint, o_event text,
               o_next_due_in bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v_now bigint := coalesce(p_now, baton_now());
  v_id text;
  v_token bigint;
  v_until bigint;
  v_count integer;
BEGIN
  -- A claim lost in a crash of the server is harmless (the holder's commit
  -- is refused, the work is fetched again): no reason to wait for the flush.
  PERFORM set_config('synchronous_commit', 'off', true);
  FOR attempt IN 1..16 LOOP
    UPDATE instance_queue q SET lock_token = nextval('baton_lease_token'), locked_until = v_now + p_lease,
                                locked_by = p_node, dequeue_count = q.dequeue_count + 1
     WHERE q.instance_id = (SELECT c.instance_id FROM instance_queue c WHERE c.due_at <= v_now
                             ORDER BY c.due_at LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED)
    RETURNING q.instance_id, q.lock_token, q.locked_until, q.dequeue_count
      INTO v_id, v_token, v_until, v_count;
    IF v_id IS NULL THEN
      EXIT;
    END IF;
    RETURN QUERY
      SELECT i.instance_id::text, i.name, i.version, i.execution_id, i.status, i.created_at,
             i.updated_at, i.completed_at, i.scheduled_start, i.parent_instance_id,
             i.history_size, v_token, v_until, v_count,
             m.seq, m.execution_id, m.visible_at, m.event, NULL::bigint
        FROM instances i,
             LATERAL (SELECT * FROM inbox x WHERE x.instance_id = v_id AND x.visible_at <= v_now
                       ORDER BY x.seq LIMIT p_max) m
       WHERE i.instance_id = v_id
       ORDER BY m.seq;
    IF FOUND THEN
      RETURN;
    END IF;
    -- ready_at was behind the inbox (never expected): repair it, release the
    -- lease taken above, try the next instance.
    UPDATE instance_queue q SET lock_token = NULL, locked_by = NULL, locked_until = 0,
                                ready_at = (SELECT min(x.visible_at) FROM inbox x WHERE x.instance_id = v_id)
     WHERE q.instance_id = v_id;
    v_id := NULL;
  END LOOP;
  RETURN QUERY SELECT NULL::text, NULL::text, NULL::text, NULL::text, NULL::text, NULL::bigint,
                      NULL::bigint, NULL::bigint, NULL::bigint, NULL::text, NULL::integer,
                      NULL::bigint, NULL::bigint, NULL::integer, NULL::bigint, NULL::text,
                      NULL::bigint, NULL::text,
                      (SELECT min(q.due_at) FROM instance_queue q WHERE q.due_at IS NOT NULL) - v_now;
END $$;

-- Commits one orchestration episode (store.h OrchestrationUpdate) if the
-- lease p_token still holds, and releases it. 'aborted' = nothing written.
-- p_outbox: JSON array of {instance_id, execution_id, visible_at, event,
-- kind, entity, start}; p_tasks: JSON array of {instance_id, execution_id,
-- task_id, name, version, input, visible_at}. Up to p_claim_tasks of the
-- tasks that are due at once are inserted leased to p_node for p_lease
-- microseconds (the node has idle activity fetchers: they get them without a
-- claim) and returned in o_claimed. Returns whether new messages were added,
-- how many tasks are left for any node to claim (for wake-ups), and the
-- instances whose status changed.
CREATE FUNCTION baton_complete_orchestration(
    p_id text, p_token bigint, p_now bigint, p_sync boolean, p_consumed bigint[],
    p_consume_only boolean, p_reset boolean, p_execution_id text, p_status text,
    p_input text, p_output text, p_custom_status text, p_failure text,
    p_history text, p_event_count integer, p_outbox jsonb, p_tasks jsonb,
    p_claim_tasks integer, p_lease bigint, p_node text)
RETURNS TABLE (o_result text, o_orch_work boolean, o_tasks integer, o_changed text[],
               o_claimed jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  v_now bigint := coalesce(p_now, baton_now());
  v_queue instance_queue%ROWTYPE;
  v_status text;
  v_history_size integer;
  v_position integer;
  v_changed text[] := '{}';
  v_orch boolean := false;
  v_tasks integer := 0;
  v_claimed jsonb;
  v_target text;
  v_due bigint;
  m record;
BEGIN
  IF NOT p_sync THEN
    PERFORM set_config('synchronous_commit', 'off', true);
  END IF;
  IF jsonb_array_length(p_outbox) > 0 THEN
    PERFORM 1 FROM instance_queue
     WHERE instance_id = ANY (array_append(ARRAY(SELECT x->>'instance_id' FROM jsonb_array_elements(p_outbox) x), p_id))
     ORDER BY instance_id FOR NO KEY UPDATE;
  END IF;
  SELECT * INTO v_queue FROM instance_queue WHERE instance_id = p_id FOR NO KEY UPDATE;
  IF NOT FOUND OR v_queue.lock_token IS DISTINCT FROM p_token OR v_queue.locked_until <= v_now THEN
    RETURN QUERY SELECT 'aborted'::text, false, 0, NULL::text[], NULL::jsonb;
    RETURN;
  END IF;

  DELETE FROM inbox WHERE seq = ANY (p_consumed) AND instance_id = p_id;
  IF NOT p_consume_only THEN
    SELECT status, history_size INTO v_status, v_history_size FROM instances WHERE instance_id = p_id;
    IF p_reset THEN
      DELETE FROM history WHERE instance_id = p_id;
      v_position := 0;
    ELSE
      v_position := v_history_size;
    END IF;
    IF p_history IS NOT NULL THEN
      INSERT INTO history (instance_id, execution_id, position, lock_token, events)
      VALUES (p_id, p_execution_id, v_position, p_token, p_history);
    END IF;
    -- Written before the outbox is delivered: a start this episode sends to
    -- itself (a continue-as-new run later) is judged on the new state.
    UPDATE instances SET
        execution_id = p_execution_id, status = p_status, output = p_output,
        custom_status = p_custom_status, failure = p_failure, updated_at = v_now,
        completed_at = CASE WHEN baton_is_terminal(p_status) THEN v_now END,
        history_size = v_position + p_event_count,
        input = CASE WHEN p_reset THEN p_input ELSE input END
      WHERE instance_id = p_id;
    IF v_status <> p_status THEN
      v_changed := array_append(v_changed, p_id);
    END IF;
  END IF;

  FOR m IN SELECT * FROM jsonb_to_recordset(p_outbox)
             AS x(instance_id text, execution_id text, visible_at bigint, event text,
                  kind integer, entity text, start jsonb) LOOP
    v_orch := true;
    IF m.kind = 0 AND m.instance_id = p_id THEN
      -- To itself (a timer): its ready_at is recomputed below.
      INSERT INTO inbox (instance_id, execution_id, visible_at, event)
      VALUES (p_id, coalesce(m.execution_id, ''), coalesce(m.visible_at, v_now), m.event);
    ELSIF m.kind = 0 AND m.entity IS NULL THEN
      -- To another instance (locked above): dropped when it does not exist.
      UPDATE instance_queue SET ready_at = LEAST(ready_at, coalesce(m.visible_at, v_now))
       WHERE instance_id = m.instance_id;
      IF FOUND THEN
        INSERT INTO inbox (instance_id, execution_id, visible_at, event)
        VALUES (m.instance_id, coalesce(m.execution_id, ''), coalesce(m.visible_at, v_now), m.event);
      END IF;
    ELSE
      v_target := baton_deliver(v_now, m.instance_id, m.execution_id, coalesce(m.visible_at, v_now),
                                m.kind, m.event, m.entity, m.start);
      IF v_target IS NOT NULL THEN
        v_changed := array_append(v_changed, v_target);
      END IF;
    END IF;
  END LOOP;

  IF jsonb_array_length(p_tasks) > 0 THEN
    WITH ins AS (
      INSERT INTO activity_tasks (instance_id, execution_id, task_id, name, version, input, visible_at,
                                  lock_token, locked_until, locked_by, dequeue_count)
      SELECT coalesce(t.instance_id, p_id), coalesce(t.execution_id, p_execution_id), t.task_id, t.name,
             coalesce(t.version, ''), t.input, coalesce(t.visible_at, v_now),
             CASE WHEN t.claim THEN nextval('baton_lease_token') END,
             CASE WHEN t.claim THEN v_now + p_lease ELSE 0 END,
             CASE WHEN t.claim THEN p_node END,
             CASE WHEN t.claim THEN 1 ELSE 0 END
        FROM (SELECT r.*, (row_number() OVER () <= p_claim_tasks AND coalesce(r.visible_at, v_now) <= v_now) AS claim
                FROM jsonb_to_recordset(p_tasks)
                  AS r(instance_id text, execution_id text, task_id integer, name text, version text,
                       input text, visible_at bigint)) t
      RETURNING *)
    SELECT count(*) FILTER (WHERE ins.lock_token IS NULL),
           jsonb_agg(jsonb_build_object('seq', ins.seq, 'instance_id', ins.instance_id,
                                        'execution_id', ins.execution_id, 'task_id', ins.task_id,
                                        'name', ins.name, 'version', ins.version, 'input', ins.input,
                                        'visible_at', ins.visible_at, 'lock_token', ins.lock_token,
                                        'locked_until', ins.locked_until))
             FILTER (WHERE ins.lock_token IS NOT NULL)
      INTO v_tasks, v_claimed FROM ins;
  END IF;

  UPDATE instance_queue SET lock_token = NULL, locked_by = NULL, locked_until = 0, dequeue_count = 0,
                            ready_at = (SELECT min(x.visible_at) FROM inbox x WHERE x.instance_id = p_id)
   WHERE instance_id = p_id
   RETURNING due_at INTO v_due;
  IF v_due IS NOT NULL THEN
    v_orch := true;  -- messages that arrived during the episode
  END IF;
  INSERT INTO commit_log VALUES (p_token, v_now);
  RETURN QUERY SELECT 'ok'::text, v_orch, v_tasks, v_changed, v_claimed;
END $$;

-- Releases a lease without consuming anything; the instance may be fetched
-- again after p_delay microseconds. A stale token changes nothing.
CREATE FUNCTION baton_abandon_instance(p_id text, p_token bigint, p_now bigint, p_delay bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  UPDATE instance_queue SET lock_token = NULL, locked_by = NULL,
                            locked_until = CASE WHEN p_delay > 0 THEN coalesce(p_now, baton_now()) + p_delay ELSE 0 END
   WHERE instance_id = p_id AND lock_token = p_token;
  RETURN FOUND;
END $$;

CREATE FUNCTION baton_claim_task(p_now bigint, p_lease bigint, p_node text)
RETURNS TABLE (o_seq bigint, o_instance_id text, o_execution_id text, o_task_id integer,
               o_name text, o_version text, o_input text, o_visible_at bigint,
               o_lock_token bigint, o_locked_until bigint, o_dequeue_count integer,
               o_next_due_in bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v_now bigint := coalesce(p_now, baton_now());
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  RETURN QUERY
    WITH c AS (SELECT t.seq FROM activity_tasks t WHERE t.due_at <= v_now
                ORDER BY t.due_at, t.seq LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED)
    UPDATE activity_tasks t SET lock_token = nextval('baton_lease_token'),
                                locked_until = v_now + p_lease, locked_by = p_node,
                                dequeue_count = t.dequeue_count + 1
      FROM c WHERE t.seq = c.seq
    RETURNING t.seq, t.instance_id::text, t.execution_id, t.task_id, t.name, t.version, t.input,
              t.visible_at, t.lock_token, t.locked_until, t.dequeue_count, NULL::bigint;
  IF NOT FOUND THEN
    RETURN QUERY SELECT NULL::bigint, NULL::text, NULL::text, NULL::integer, NULL::text, NULL::text,
                        NULL::text, NULL::bigint, NULL::bigint, NULL::bigint, NULL::integer,
                        (SELECT min(t.due_at) FROM activity_tasks t) - v_now;
  END IF;
END $$;

-- Deletes the task and delivers its result (TaskCompleted or TaskFailed) if
-- the lease p_token still holds. 'aborted' = nothing written. With p_lease
-- set (the node has an idle orchestration fetcher), an instance the result
-- makes due is leased to p_node in the same write and returned like a claim
-- (baton_claim_instance's columns after o_result and o_orch_work, one row per
-- message); otherwise one row.
CREATE FUNCTION baton_complete_task(p_seq bigint, p_token bigint, p_now bigint, p_sync boolean,
                                    p_id text, p_execution text, p_visible bigint, p_event text,
                                    p_lease bigint, p_node text)
RETURNS TABLE (o_result text, o_orch_work boolean,
               o_instance_id text, o_name text, o_version text, o_execution_id text,
               o_status text, o_created_at bigint, o_updated_at bigint, o_completed_at bigint,
               o_scheduled_start bigint, o_parent_instance_id text, o_history_size integer,
               o_lock_token bigint, o_locked_until bigint, o_dequeue_count integer,
               o_seq bigint, o_msg_execution_id text, o_visible_at bigint, o_event text)
LANGUAGE plpgsql AS $$
DECLARE
  v_now bigint := coalesce(p_now, baton_now());
  v_visible bigint := coalesce(p_visible, v_now);
  v_queue instance_queue%ROWTYPE;
  v_claim boolean;
BEGIN
  IF NOT p_sync THEN
    PERFORM set_config('synchronous_commit', 'off', true);
  END IF;
  -- The instance first (the lock order), then the task.
  SELECT * INTO v_queue FROM instance_queue WHERE instance_id = p_id FOR NO KEY UPDATE;
  DELETE FROM activity_tasks WHERE seq = p_seq AND lock_token = p_token AND locked_until > v_now;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'aborted'::text, false, NULL::text, NULL::text, NULL::text, NULL::text,
                        NULL::text, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::text,
                        NULL::integer, NULL::bigint, NULL::bigint, NULL::integer, NULL::bigint,
                        NULL::text, NULL::bigint, NULL::text;
    RETURN;
  END IF;
  INSERT INTO commit_log VALUES (p_token, v_now);
  IF v_queue.instance_id IS NULL THEN  -- a result for a purged instance is dropped
    RETURN QUERY SELECT 'ok'::text, false, NULL::text, NULL::text, NULL::text, NULL::text,
                        NULL::text, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::text,
                        NULL::integer, NULL::bigint, NULL::bigint, NULL::integer, NULL::bigint,
                        NULL::text, NULL::bigint, NULL::text;
    RETURN;
  END IF;
  INSERT INTO inbox (instance_id, execution_id, visible_at, event)
  VALUES (p_id, coalesce(p_execution, ''), v_visible, p_event);
  v_claim := p_lease IS NOT NULL AND GREATEST(LEAST(v_queue.ready_at, v_visible), v_queue.locked_until) <= v_now;
  IF NOT v_claim THEN
    UPDATE instance_queue SET ready_at = LEAST(ready_at, v_visible) WHERE instance_id = p_id;
    RETURN QUERY SELECT 'ok'::text, true, NULL::text, NULL::text, NULL::text, NULL::text,
                        NULL::text, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::text,
                        NULL::integer, NULL::bigint, NULL::bigint, NULL::integer, NULL::bigint,
                        NULL::text, NULL::bigint, NULL::text;
    RETURN;
  END IF;
  UPDATE instance_queue q SET ready_at = LEAST(q.ready_at, v_visible),
                              lock_token = nextval('baton_lease_token'), locked_until = v_now + p_lease,
                              locked_by = p_node, dequeue_count = q.dequeue_count + 1
   WHERE q.instance_id = p_id
   RETURNING * INTO v_queue;
  RETURN QUERY
    SELECT 'ok'::text, false, i.instance_id::text, i.name, i.version, i.execution_id, i.status,
           i.created_at, i.updated_at, i.completed_at, i.scheduled_start, i.parent_instance_id,
           i.history_size, v_queue.lock_token, v_queue.locked_until, v_queue.dequeue_count,
           m.seq, m.execution_id, m.visible_at, m.event
      FROM instances i,
           LATERAL (SELECT * FROM inbox x WHERE x.instance_id = p_id AND x.visible_at <= v_now
                     ORDER BY x.seq LIMIT 10000) m
     WHERE i.instance_id = p_id
     ORDER BY m.seq;
END $$;

CREATE FUNCTION baton_abandon_task(p_seq bigint, p_token bigint, p_now bigint, p_delay bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  UPDATE activity_tasks SET lock_token = NULL, locked_by = NULL,
                            locked_until = CASE WHEN p_delay > 0 THEN coalesce(p_now, baton_now()) + p_delay ELSE 0 END
   WHERE seq = p_seq AND lock_token = p_token;
  RETURN FOUND;
END $$;

-- Extends the live leases among the given ones (instances by id and token,
-- tasks by seq and token) to now + p_lease. Returns the tokens it extended
-- with their new expiry; a token missing from the result has lost its lease.
CREATE FUNCTION baton_renew_leases(p_now bigint, p_lease bigint, p_ids text[], p_id_tokens bigint[],
                                   p_seqs bigint[], p_seq_tokens bigint[])
RETURNS TABLE (o_token bigint, o_locked_until bigint) LANGUAGE plpgsql AS $$
DECLARE
  v_now bigint := coalesce(p_now, baton_now());
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  RETURN QUERY
    UPDATE instance_queue q SET locked_until = v_now + p_lease
      FROM unnest(p_ids, p_id_tokens) AS u(id, token)
     WHERE q.instance_id = u.id AND q.lock_token = u.token AND q.locked_until > v_now
    RETURNING q.lock_token, q.locked_until;
  RETURN QUERY
    UPDATE activity_tasks t SET locked_until = v_now + p_lease
      FROM unnest(p_seqs, p_seq_tokens) AS u(seq, token)
     WHERE t.seq = u.seq AND t.lock_token = u.token AND t.locked_until > v_now
    RETURNING t.lock_token, t.locked_until;
END $$;

-- Ends the given leases at once (a store closing gracefully), so their work
-- is fetched again without waiting for expiry.
CREATE FUNCTION baton_release_leases(p_ids text[], p_id_tokens bigint[], p_seqs bigint[],
                                     p_seq_tokens bigint[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  UPDATE instance_queue q SET lock_token = NULL, locked_by = NULL, locked_until = 0
    FROM unnest(p_ids, p_id_tokens) AS u(id, token)
   WHERE q.instance_id = u.id AND q.lock_token = u.token;
  UPDATE activity_tasks t SET lock_token = NULL, locked_by = NULL, locked_until = 0
    FROM unnest(p_seqs, p_seq_tokens) AS u(seq, token)
   WHERE t.seq = u.seq AND t.lock_token = u.token;
END $$;
