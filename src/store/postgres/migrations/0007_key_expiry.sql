-- Migration 7: API keys may expire (issue 16). expires_at is unix
-- microseconds, 0 for a key that never expires (every key made before).
-- The tenancy layer compares it with its clock when a key authenticates.
ALTER TABLE api_keys ADD COLUMN expires_at bigint NOT NULL DEFAULT 0;
