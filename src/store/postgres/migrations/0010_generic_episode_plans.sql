-- Migration 10: baton_complete_orchestration and baton_claim_instances keep
-- generic plans.
--
-- Inside a plpgsql function each statement's plan is cached per session, and
-- PostgreSQL's plan cache chooses, per statement, between a generic plan and
-- a custom plan made anew for each call's values. For the episode commit's
-- inbox DELETE (`seq = ANY (p_consumed) AND instance_id = p_id`) it chose
-- custom plans in ≈ 40 % of the calls on hello5-pg (pg_stat_statements with
-- track_planning: 3,324 plans for 8,400 calls), and planning that statement
-- took longer than running it. Every statement of the function looks rows
-- up by key (the instance, a message seq, a task), so the generic plan is
-- the custom plan without the planning: the function says so for all of
-- them. Nothing else changes: same signatures, same results, same fence.

ALTER FUNCTION baton_complete_orchestration(text, bigint, bigint, boolean, bigint[], boolean,
                                            boolean, text, text, text, text, text, text, text,
                                            integer, jsonb, jsonb, integer, bigint, text)
  SET plan_cache_mode = force_generic_plan;

-- The claim of several instances (migration 6) planned both its statements
-- anew on every call (custom plans: the queue's due_at range and the LIMIT
-- are the call's values), which took longer than running them. Generic
-- plans are made once per session, possibly while the tables are still
-- small, when a sequential scan of the inbox looks cheapest; on a queue
-- that churns it is not, so the function also rules sequential scans out:
-- every lookup it makes has an index (instance_queue_due, the primary keys,
-- inbox_by_instance).
ALTER FUNCTION baton_claim_instances(bigint, bigint, text, integer, integer)
  SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION baton_claim_instances(bigint, bigint, text, integer, integer)
  SET enable_seqscan = off;
