-- Migration 6: fewer round trips on the path of one workflow (docs/postgres.md,
-- "Where the time goes"). Two calls now return what the node would otherwise
-- ask for in a round trip of its own:
--
--   * baton_start_instance: migration 1's baton_create_instance in one
--     statement for a new id, and, when the caller asks (p_lease: it has an
--     idle fetcher) and the start is due, the new instance is created leased
--     to that node, so no claim is needed to run its first episode. An id
--     that exists goes to baton_create_instance unchanged (replace or refuse;
--     never leased then).
--   * baton_complete_orchestration returns the database time it wrote
--     (o_now: updated_at, and completed_at when terminal), so the node can
--     hand the instance's new state to its own waiters without reading it.
--     Otherwise migration 5's function, unchanged: the same fence, the same
--     writes.

DROP FUNCTION baton_complete_orchestration(text, bigint, bigint, boolean, bigint[], boolean, boolean,
                                           text, text, text, text, text, text, text, integer, jsonb,
                                           jsonb, integer, bigint, text);

CREATE FUNCTION baton_complete_orchestration(
    p_id text, p_token bigint, p_now bigint, p_sync boolean, p_consumed bigint[],
    p_consume_only boolean, p_reset boolean, p_execution_id text, p_status text,
    p_input text, p_output text, p_custom_status text, p_failure text,
    p_history text, p_event_count integer, p_outbox jsonb, p_tasks jsonb,
    p_claim_tasks integer, p_lease bigint, p_node text)
RETURNS TABLE (o_result text, o_orch_work boolean, o_tasks integer, o_changed text[],
               o_claimed jsonb, o_now bigint)
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
  o_now := v_now;
  RETURN NEXT;
END $$;

-- Returns o_result ('ok' or 'exists:<status>', as baton_create_instance),
-- o_now (created_at), and, when it leased the new instance to p_node, the
-- lease (o_lock_token, o_locked_until) and the seq of its ExecutionStarted
-- message (o_seq); they are NULL otherwise. p_lease NULL = do not lease.
CREATE FUNCTION baton_start_instance(p_key bigint, p_now bigint, p_id text, p_name text,
                                     p_version text, p_input text, p_execution text,
                                     p_scheduled bigint, p_tags text, p_replaceable text[],
                                     p_event text, p_lease bigint, p_node text)
RETURNS TABLE (o_result text, o_now bigint, o_lock_token bigint, o_locked_until bigint,
               o_seq bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v_now bigint := coalesce(p_now, baton_now());
  v_visible bigint := coalesce(p_scheduled, v_now);
  v_token bigint;
  v_until bigint := 0;
  v_seq bigint;
BEGIN
  IF p_lease IS NOT NULL AND v_visible <= v_now THEN
    v_token := nextval('baton_lease_token');
    v_until := v_now + p_lease;
  END IF;
  -- A new id: both rows, the message and the commit_log key in one
  -- statement. The queue row is inserted first: an id that exists (or is
  -- being created by another transaction, which this waits for) writes
  -- nothing here.
  WITH q AS (INSERT INTO instance_queue (instance_id, ready_at, lock_token, locked_until, locked_by,
                                         dequeue_count)
             VALUES (p_id, v_visible, v_token, v_until,
                     CASE WHEN v_token IS NOT NULL THEN p_node END,
                     CASE WHEN v_token IS NOT NULL THEN 1 ELSE 0 END)
             ON CONFLICT (instance_id) DO NOTHING
             RETURNING instance_id),
       i AS (INSERT INTO instances (instance_id, name, version, execution_id, status, created_at,
                                    updated_at, scheduled_start, input, parent_instance_id, tags)
             SELECT p_id, p_name, coalesce(p_version, ''), p_execution, 'Pending', v_now, v_now,
                    p_scheduled, p_input, NULL, p_tags FROM q),
       c AS (INSERT INTO commit_log SELECT p_key, v_now FROM q)
  INSERT INTO inbox (instance_id, execution_id, visible_at, event)
  SELECT p_id, coalesce(p_execution, ''), v_visible, p_event FROM q
  RETURNING seq INTO v_seq;
  o_now := v_now;
  IF v_seq IS NULL THEN
    o_result := baton_create_instance(p_key, v_now, p_id, p_name, p_version, p_input, p_execution,
                                      p_scheduled, p_tags, p_replaceable, p_event);
    RETURN NEXT;
    RETURN;
  END IF;
  o_result := 'ok';
  IF v_token IS NOT NULL THEN
    o_lock_token := v_token;
    o_locked_until := v_until;
    o_seq := v_seq;
  END IF;
  RETURN NEXT;
END $$;

-- baton_claim_instance for up to p_count instances at once: the ones due
-- longest, each leased with its own token, returned as baton_claim_instance
-- returns one (the rows of one instance together, in seq order; instances
-- in instance_id order). A fetcher whose node keeps a backlog of work
-- (PostgresStoreOptions::prefetch_backlog) takes it in this one claim
-- instead of one claim per instance. A leased instance without a visible
-- message (ready_at behind the inbox: never expected) is repaired and
-- released, as in baton_claim_instance, and not returned.
CREATE FUNCTION baton_claim_instances(p_now bigint, p_lease bigint, p_node text, p_max integer,
                                      p_count integer)
RETURNS TABLE (o_instance_id text, o_name text, o_version text, o_execution_id text,
               o_status text, o_created_at bigint, o_updated_at bigint, o_completed_at bigint,
               o_scheduled_start bigint, o_parent_instance_id text, o_history_size integer,
               o_lock_token bigint, o_locked_until bigint, o_dequeue_count integer,
               o_seq bigint, o_msg_execution_id text, o_visible_at bigint, o_event text,
               o_next_due_in bigint, o_history_generation bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v_now bigint := coalesce(p_now, baton_now());
  v_ids text[];
  v_tokens bigint[];
  v_untils bigint[];
  v_counts integer[];
  v_all_ready boolean;
  v_ignored text;
BEGIN
  -- As baton_claim_instance: a lost claim is harmless.
  v_ignored := set_config('synchronous_commit', 'off', true);
  WITH c AS (SELECT q.instance_id FROM instance_queue q WHERE q.due_at <= v_now
              ORDER BY q.due_at LIMIT p_count FOR NO KEY UPDATE SKIP LOCKED),
       u AS (UPDATE instance_queue q SET lock_token = nextval('baton_lease_token'),
                                         locked_until = v_now + p_lease, locked_by = p_node,
                                         dequeue_count = q.dequeue_count + 1
               FROM c WHERE q.instance_id = c.instance_id
             RETURNING q.instance_id, q.lock_token, q.locked_until, q.dequeue_count)
  SELECT array_agg(u.instance_id), array_agg(u.lock_token), array_agg(u.locked_until),
         array_agg(u.dequeue_count),
         bool_and(EXISTS (SELECT 1 FROM inbox x WHERE x.instance_id = u.instance_id
                                                  AND x.visible_at <= v_now))
    INTO v_ids, v_tokens, v_untils, v_counts, v_all_ready
    FROM u;
  IF v_ids IS NULL THEN
    o_next_due_in := (SELECT min(q.due_at) FROM instance_queue q WHERE q.due_at IS NOT NULL) - v_now;
    RETURN NEXT;
    RETURN;
  END IF;
  IF NOT v_all_ready THEN
    UPDATE instance_queue q SET lock_token = NULL, locked_by = NULL, locked_until = 0,
                                ready_at = (SELECT min(x.visible_at) FROM inbox x
                                             WHERE x.instance_id = q.instance_id)
     WHERE q.instance_id = ANY (v_ids)
       AND NOT EXISTS (SELECT 1 FROM inbox x WHERE x.instance_id = q.instance_id
                                              AND x.visible_at <= v_now);
  END IF;
  RETURN QUERY
    SELECT i.instance_id::text, i.name, i.version, i.execution_id, i.status, i.created_at,
           i.updated_at, i.completed_at, i.scheduled_start, i.parent_instance_id,
           i.history_size, u.lock_token, u.locked_until, u.dequeue_count,
           m.seq, m.execution_id, m.visible_at, m.event, NULL::bigint, i.history_generation
      FROM unnest(v_ids, v_tokens, v_untils, v_counts)
             AS u(instance_id, lock_token, locked_until, dequeue_count)
      JOIN instances i ON i.instance_id = u.instance_id,
           LATERAL (SELECT * FROM inbox x WHERE x.instance_id = u.instance_id AND x.visible_at <= v_now
                     ORDER BY x.seq LIMIT p_max) m
     ORDER BY u.instance_id, m.seq;
  IF NOT FOUND THEN
    -- Everything leased was repaired and released: nothing to run now.
    o_next_due_in := 0;
    RETURN NEXT;
  END IF;
END $$;
