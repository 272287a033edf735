-- Migration 11: baton_complete_orchestration keeps generic plans.
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
-- them. Nothing else changes: same signature, same results, same fence.
-- (The claims are left alone: their result query's generic plan scans a
-- churned inbox sequentially; docs/PERFORMANCE.md.)

ALTER FUNCTION baton_complete_orchestration(text, bigint, bigint, boolean, bigint[], boolean,
                                            boolean, text, text, text, text, text, text, text,
                                            integer, jsonb, jsonb, integer, bigint, text)
  SET plan_cache_mode = force_generic_plan;
