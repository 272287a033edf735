#!/usr/bin/env bash
# `bench/dbos/run.sh POSTGRES_URL [N] [C]` (run by `scripts/bench hello5-pg`):
# hello5 with DBOS Transact on a fresh database of the cluster that
# POSTGRES_URL names (the same one Baton's hello5-pg uses), dropped at the
# end. Installs the pinned SDK from npm on first use (package-lock.json).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
url="$1"
shift
cd "$here"
if [ ! -d node_modules/@dbos-inc/dbos-sdk ]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
db="dbos_bench_$$_$RANDOM"
psql "$url" -qAt -v ON_ERROR_STOP=1 \
  -c "CREATE DATABASE $db ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0" >/dev/null
cleanup() {
  psql "$url" -qAt -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT
# The same URL with the fresh database in place of the one it names. DBOS
# wants a user and a host name in the URL; node-postgres lets the `host`
# query parameter (the unix socket's directory, as scripts/pg-up prints it)
# override the host name, so both connect the same way.
db_url="$(node -e '
  const u = new URL(process.argv[1]);
  u.pathname = "/" + process.argv[2];
  if (!u.hostname) u.hostname = "localhost";
  if (!u.username) u.username = u.searchParams.get("user") || "postgres";
  console.log(u.toString());' "$url" "$db")"
# node-postgres 8 warns that DBOS overlaps queries on one client; not ours to fix.
node --no-deprecation hello5.js "$db_url" "$@"
# PostgreSQL's count of DBOS's transactions over the whole run (warm-up, c1
# and the measured part), complete once its connections have closed.
sleep 1.5
wf=$(( ${1:-2000} + 400 ))
psql "$url" -qAt -F ' ' -c "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = '$db'" |
  awk -v wf="$wf" '{ printf "dbos database: %.1f transactions/wf committed, %d rolled back (%d wf)\n", $1 / wf, $2, wf }' >&2
