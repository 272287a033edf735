-- Migration 4: the leases of a node that died are released as soon as its
-- database sessions are gone, instead of when they expire.
--
-- Every session of a store carries application_name 'baton node <node_id>'
-- (the node id that leases record in locked_by). Each node watches the
-- sessions of the database and the holders of live leases; a node whose
-- sessions have all been gone for a while (a process that died: SIGKILL,
-- OOM, a crashed machine whose connections the server has dropped) gets its
-- leases released here, so that its work runs elsewhere within seconds
-- rather than after the lease (15 s by default). This is a hint, like NOTIFY: expiry stays the
-- backstop. It is safe even when the node is in fact alive but cut off from
-- the database: the release clears the lease tokens, so each completion it
-- still sends is refused (fencing), as after an expiry.
--
-- Only rows leased to p_node are touched; both scans use the due_at indexes
-- (a live lease has due_at = locked_until > now).
CREATE FUNCTION baton_release_node_leases(p_node text, p_now bigint)
RETURNS TABLE (o_instances integer, o_tasks integer) LANGUAGE plpgsql AS $$
DECLARE
  v_now bigint := coalesce(p_now, baton_now());
  v_instances integer;
  v_tasks integer;
BEGIN
  UPDATE instance_queue SET lock_token = NULL, locked_by = NULL, locked_until = 0
   WHERE due_at > v_now AND locked_by = p_node AND lock_token IS NOT NULL;
  GET DIAGNOSTICS v_instances = ROW_COUNT;
  UPDATE activity_tasks SET lock_token = NULL, locked_by = NULL, locked_until = 0
   WHERE due_at > v_now AND locked_by = p_node AND lock_token IS NOT NULL;
  GET DIAGNOSTICS v_tasks = ROW_COUNT;
  RETURN QUERY SELECT v_instances, v_tasks;
END $$;
