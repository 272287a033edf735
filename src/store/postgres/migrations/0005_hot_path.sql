-- Migration 5: the hot path in fewer statements (docs/postgres.md, "Where the
-- time goes"). Same functions, same signatures, same results and the same
-- fencing as migration 1; only how much work PostgreSQL does per call changes.
--
-- Inside a plpgsql function every SQL statement (PERFORM, INSERT, RETURN
-- QUERY, ...) starts an executor of its own, and on this workload that start
-- costs about as much as the row work itself. So:
--   * set_config() and other plain expressions are assigned (plpgsql then
--     evaluates them as simple expressions, without an executor) instead of
--     PERFORMed;
--   * writes that always go together share one statement (data-modifying
--     CTEs): the commit_log key with the write it proves, the queue row's
--     update with the inbox insert;
--   * constant answers are returned through the OUT columns with RETURN NEXT
--     instead of RETURN QUERY SELECT;
--   * the queue row and the instance row are read by one statement, and an
--     empty outbox is not looped over.
-- They keep migration 3's history generation (o_history_generation as the
-- last column of both claims, the increment on p_reset).
-- The fence is unchanged: every completion locks the instance's queue row
-- first and writes nothing unless lock_token = p_token and locked_until > now.

DROP FUNCTION baton_claim_instance(bigint, bigint, text, integer);
CREATE FUNCTION baton_claim_instance(p_now bigint, p_lease bigint, p_node text, p_max integer)
RETURNS TABLE (o_instance_id text, o_name text, o_version text, o_execution_id text,
               o_status text, o_created_at bigint, o_updated_at bigint, o_completed_at bigint,
               o_scheduled_start bigint, o_parent_instance_id text, o_history_size integer,
               o_lock_token bigint, o_locked_until bigint, o_dequeue_count integer,
               o_seq bigint, o_msg_execution_id text, o_visible_at bigint, o_event text,
               o_next_due_in bigint, o_history_generation bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v_now bigint := coalesce(p_now, baton_now());
  v_id text;
  v_token bigint;
  v_until bigint;
  v_count integer;
  v_ignored text;
BEGIN
  -- A claim lost in a crash of the server is harmless (the holder's commit
  -- is refused, the work is fetched again): no reason to wait for the flush.
  v_ignored := set_config('synchronous_commit', 'off', true);
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
             m.seq, m.execution_id, m.visible_at, m.event, NULL::bigint, i.history_generation
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
  o_next_due_in := (SELECT min(q.due_at) FROM instance_queue q WHERE q.due_at IS NOT NULL) - v_now;
  RETURN NEXT;
END $$;

CREATE OR REPLACE FUNCTION baton_complete_orchestration(
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
  v_token bigint;
  v_until bigint;
  v_status text;
  v_history_size integer;
  v_position integer;
  v_changed text[] := '{}';
  v_orch boolean := false;
  v_tasks integer := 0;
  v_claimed jsonb;
  v_target text;
  v_due bigint;
  v_has_outbox boolean := jsonb_array_length(p_outbox) > 0;
  v_ignored text;
  m record;
BEGIN
  IF NOT p_sync THEN
    v_ignored := set_config('synchronous_commit', 'off', true);
  END IF;
  IF v_has_outbox THEN
    PERFORM 1 FROM instance_queue
     WHERE instance_id = ANY (array_append(ARRAY(SELECT x->>'instance_id' FROM jsonb_array_elements(p_outbox) x), p_id))
     ORDER BY instance_id FOR NO KEY UPDATE;
  END IF;
  SELECT q.lock_token, q.locked_until, i.status, i.history_size
    INTO v_token, v_until, v_status, v_history_size
    FROM instance_queue q LEFT JOIN instances i ON i.instance_id = q.instance_id
   WHERE q.instance_id = p_id
     FOR NO KEY UPDATE OF q;
  IF NOT FOUND OR v_token IS DISTINCT FROM p_token OR v_until <= v_now THEN
    o_result := 'aborted';
    o_orch_work := false;
    o_tasks := 0;
    RETURN NEXT;
    RETURN;
  END IF;

  IF cardinality(p_consumed) > 0 THEN
    DELETE FROM inbox WHERE seq = ANY (p_consumed) AND instance_id = p_id;
  END IF;
  IF NOT p_consume_only THEN
    IF p_reset THEN
      DELETE FROM history WHERE instance_id = p_id;
      v_position := 0;
    ELSE
      v_position := v_history_size;
    END IF;
    -- Written before the outbox is delivered: a start this episode sends to
    -- itself (a continue-as-new run later) is judged on the new state.
    WITH h AS (
      INSERT INTO history (instance_id, execution_id, position, lock_token, events)
      SELECT p_id, p_execution_id, v_position, p_token, p_history WHERE p_history IS NOT NULL)
    UPDATE instances SET
        execution_id = p_execution_id, status = p_status, output = p_output,
        custom_status = p_custom_status, failure = p_failure, updated_at = v_now,
        completed_at = CASE WHEN baton_is_terminal(p_status) THEN v_now END,
        history_size = v_position + p_event_count,
        history_generation = history_generation + CASE WHEN p_reset THEN 1 ELSE 0 END,
        input = CASE WHEN p_reset THEN p_input ELSE input END
      WHERE instance_id = p_id;
    IF v_status <> p_status THEN
      v_changed := array_append(v_changed, p_id);
    END IF;
  END IF;

  IF v_has_outbox THEN
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
  END IF;

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

  -- The lease ends and the commit is logged in one statement.
  WITH c AS (INSERT INTO commit_log VALUES (p_token, v_now))
  UPDATE instance_queue SET lock_token = NULL, locked_by = NULL, locked_until = 0, dequeue_count = 0,
                            ready_at = (SELECT min(x.visible_at) FROM inbox x WHERE x.instance_id = p_id)
   WHERE instance_id = p_id
   RETURNING due_at INTO v_due;
  o_result := 'ok';
  o_orch_work := v_orch OR v_due IS NOT NULL;  -- or messages that arrived during the episode
  o_tasks := v_tasks;
  o_changed := v_changed;
  o_claimed := v_claimed;
  RETURN NEXT;
END $$;

CREATE OR REPLACE FUNCTION baton_claim_task(p_now bigint, p_lease bigint, p_node text)
RETURNS TABLE (o_seq bigint, o_instance_id text, o_execution_id text, o_task_id integer,
               o_name text, o_version text, o_input text, o_visible_at bigint,
               o_lock_token bigint, o_locked_until bigint, o_dequeue_count integer,
               o_next_due_in bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v_now bigint := coalesce(p_now, baton_now());
  v_ignored text;
BEGIN
  v_ignored := set_config('synchronous_commit', 'off', true);
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
    o_next_due_in := (SELECT min(t.due_at) FROM activity_tasks t) - v_now;
    RETURN NEXT;
  END IF;
END $$;

DROP FUNCTION baton_complete_task(bigint, bigint, bigint, boolean, text, text, bigint, text, bigint,
                                  text);
CREATE FUNCTION baton_complete_task(p_seq bigint, p_token bigint, p_now bigint, p_sync boolean,
                                               p_id text, p_execution text, p_visible bigint, p_event text,
                                               p_lease bigint, p_node text)
RETURNS TABLE (o_result text, o_orch_work boolean,
               o_instance_id text, o_name text, o_version text, o_execution_id text,
               o_status text, o_created_at bigint, o_updated_at bigint, o_completed_at bigint,
               o_scheduled_start bigint, o_parent_instance_id text, o_history_size integer,
               o_lock_token bigint, o_locked_until bigint, o_dequeue_count integer,
               o_seq bigint, o_msg_execution_id text, o_visible_at bigint, o_event text,
               o_history_generation bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v_now bigint := coalesce(p_now, baton_now());
  v_visible bigint := coalesce(p_visible, v_now);
  v_exists boolean;
  v_ready bigint;
  v_until bigint;
  v_token bigint;
  v_count integer;
  v_deleted integer;
  v_ignored text;
BEGIN
  IF NOT p_sync THEN
    v_ignored := set_config('synchronous_commit', 'off', true);
  END IF;
  -- The instance first (the lock order), then the task.
  SELECT true, q.ready_at, q.locked_until INTO v_exists, v_ready, v_until
    FROM instance_queue q WHERE q.instance_id = p_id FOR NO KEY UPDATE;
  -- The fence: the task goes, and the commit is logged, only under a live lease.
  WITH d AS (DELETE FROM activity_tasks
              WHERE seq = p_seq AND lock_token = p_token AND locked_until > v_now RETURNING seq),
       c AS (INSERT INTO commit_log SELECT p_token, v_now FROM d)
  SELECT count(*) INTO v_deleted FROM d;
  IF v_deleted = 0 THEN
    o_result := 'aborted';
    o_orch_work := false;
    RETURN NEXT;
    RETURN;
  END IF;
  o_result := 'ok';
  IF v_exists IS NULL THEN  -- a result for a purged instance is dropped
    o_orch_work := false;
    RETURN NEXT;
    RETURN;
  END IF;
  IF p_lease IS NULL OR GREATEST(LEAST(v_ready, v_visible), v_until) > v_now THEN
    WITH i AS (INSERT INTO inbox (instance_id, execution_id, visible_at, event)
               VALUES (p_id, coalesce(p_execution, ''), v_visible, p_event))
    UPDATE instance_queue SET ready_at = LEAST(ready_at, v_visible) WHERE instance_id = p_id;
    o_orch_work := true;
    RETURN NEXT;
    RETURN;
  END IF;
  -- An idle fetcher of this node waits: lease the instance to it now.
  WITH i AS (INSERT INTO inbox (instance_id, execution_id, visible_at, event)
             VALUES (p_id, coalesce(p_execution, ''), v_visible, p_event))
  UPDATE instance_queue q SET ready_at = LEAST(q.ready_at, v_visible),
                              lock_token = nextval('baton_lease_token'), locked_until = v_now + p_lease,
                              locked_by = p_node, dequeue_count = q.dequeue_count + 1
   WHERE q.instance_id = p_id
   RETURNING q.lock_token, q.locked_until, q.dequeue_count INTO v_token, v_until, v_count;
  -- The inbox row inserted above is visible to the next statement.
  RETURN QUERY
    SELECT 'ok'::text, false, i.instance_id::text, i.name, i.version, i.execution_id, i.status,
           i.created_at, i.updated_at, i.completed_at, i.scheduled_start, i.parent_instance_id,
           i.history_size, v_token, v_until, v_count,
           m.seq, m.execution_id, m.visible_at, m.event, i.history_generation
      FROM instances i,
           LATERAL (SELECT * FROM inbox x WHERE x.instance_id = p_id AND x.visible_at <= v_now
                     ORDER BY x.seq LIMIT 10000) m
     WHERE i.instance_id = p_id
     ORDER BY m.seq;
END $$;
