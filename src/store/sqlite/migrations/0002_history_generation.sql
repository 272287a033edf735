-- Migration 2 of a SqliteStore file: the history generation (store.h
-- OrchestrationWorkItem::history_generation).
--
-- A rewind rewrites an instance's history in place, keeping its execution
-- id, and the rewritten history can reach a size the old one had: execution
-- id and size alone then name two different histories, and a worker that
-- cached the old one (its orchestration cache) would run its stale
-- coroutine. The generation counts the rewrites: every commit with
-- reset_history (rewind, continue-as-new) adds one, and a fetch returns it.
ALTER TABLE instances ADD COLUMN history_generation INTEGER NOT NULL DEFAULT 0;
