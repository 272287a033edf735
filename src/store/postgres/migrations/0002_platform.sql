-- The platform's state beside the task hub, shared by every node
-- (store/tenant_store.h, job_log_store.h, secret_store.h, key_store.h,
-- lease_store.h). Times are bigint microseconds since the Unix epoch, as in
-- the task hub, except lease expiry, which the database's clock decides.

-- Tenants: each owns the task hub "<id>::".
CREATE TABLE tenants (
  id           text COLLATE "C" PRIMARY KEY,
  display_name text NOT NULL,
  disabled     boolean NOT NULL DEFAULT false,
  created_at   bigint NOT NULL,
  settings     text NOT NULL DEFAULT '{}'     -- grants and limits (tenant_settings.h)
);

-- API keys: only the SHA-256 of the secret part is kept.
CREATE TABLE api_keys (
  key_id      text COLLATE "C" PRIMARY KEY,
  tenant_id   text COLLATE "C" NOT NULL,      -- '' = an admin key
  name        text NOT NULL,
  secret_hash text NOT NULL,
  created_at  bigint NOT NULL,
  revoked     boolean NOT NULL DEFAULT false
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, created_at, key_id);

-- The kept output of finished job attempts; text as bytes (a job may print
-- a NUL, which PostgreSQL text cannot hold).
CREATE TABLE job_logs (
  job     text COLLATE "C" NOT NULL,
  attempt integer NOT NULL,
  seq     integer NOT NULL,
  stderr  boolean NOT NULL,
  time_ms bigint NOT NULL,
  line    bytea NOT NULL,
  PRIMARY KEY (job, attempt, seq)
);

-- Sealed job secrets (batch/secret_vault.h seals them; nothing here is clear).
CREATE TABLE job_secrets (
  job_id    text COLLATE "C" NOT NULL,
  container text NOT NULL,
  kind      text NOT NULL,
  name      text NOT NULL,
  sealed    bytea NOT NULL,
  PRIMARY KEY (job_id, container, kind, name)
);

-- The deployment's keys ("job-token", "secrets", "deployment").
CREATE TABLE platform_keys (
  name text PRIMARY KEY,
  key  bytea NOT NULL
);

-- Named leases: one node at a time does a piece of housekeeping.
CREATE TABLE leases (
  name       text PRIMARY KEY,
  holder     text NOT NULL,
  expires_at timestamptz NOT NULL
);
