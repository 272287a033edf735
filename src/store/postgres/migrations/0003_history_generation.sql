-- Migration 3: the history generation (store.h OrchestrationWorkItem::
-- history_generation). A rewind rewrites an instance's history in place,
-- keeping its execution id, and the rewritten history can reach a size the
-- old one had: execution id and size alone then name two different
-- histories, and a node that cached the old one (its orchestration cache)
-- would run its stale coroutine. The generation counts the rewrites: every
-- commit with p_reset (rewind, continue-as-new) adds one, and every claim
-- returns it with the work item.
--
-- The three functions below are those of migration 1 with only that added:
-- o_history_generation as the last column of both claims (the instance's
-- claim and the claim a task's completion makes), and the increment in
-- baton_complete_orchestration.

ALTER TABLE instances ADD COLUMN history_generation bigint NOT NULL DEFAULT 0;

DROP FUNCTION baton_claim_instance(bigint, bigint, text, integer);
DROP FUNCTION baton_complete_task(bigint, bigint, bigint, boolean, text, text, bigint, text, bigint,
                                  text);

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
  RETURN QUERY SELECT NULL::text, NULL::text, NULL::text, NULL::text, NULL::text, NULL::bigint,
                      NULL::bigint, NULL::bigint, NULL::bigint, NULL::text, NULL::integer,
                      NULL::bigint, NULL::bigint, NULL::integer, NULL::bigint, NULL::text,
                      NULL::bigint, NULL::text,
                      (SELECT min(q.due_at) FROM instance_queue q WHERE q.due_at IS NOT NULL) - v_now,
                      NULL::bigint;
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
        history_generation = history_generation + CASE WHEN p_reset THEN 1 ELSE 0 END,
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
                        NULL::text, NULL::bigint, NULL::text, NULL::bigint;
    RETURN;
  END IF;
  INSERT INTO commit_log VALUES (p_token, v_now);
  IF v_queue.instance_id IS NULL THEN  -- a result for a purged instance is dropped
    RETURN QUERY SELECT 'ok'::text, false, NULL::text, NULL::text, NULL::text, NULL::text,
                        NULL::text, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::text,
                        NULL::integer, NULL::bigint, NULL::bigint, NULL::integer, NULL::bigint,
                        NULL::text, NULL::bigint, NULL::text, NULL::bigint;
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
                        NULL::text, NULL::bigint, NULL::text, NULL::bigint;
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
           m.seq, m.execution_id, m.visible_at, m.event, i.history_generation
      FROM instances i,
           LATERAL (SELECT * FROM inbox x WHERE x.instance_id = p_id AND x.visible_at <= v_now
                     ORDER BY x.seq LIMIT 10000) m
     WHERE i.instance_id = p_id
     ORDER BY m.seq;
END $$;
