#!/usr/bin/env bash
# The project's test command (README, .ci/run): on a fresh machine it installs what it needs,
# builds the program to SBF, starts a local PostgreSQL, and runs every test suite:
#   1. the program in litesvm (Rust): success paths, refusals, sealevel attacks, conservation
#   2. the database, indexer, session service, cleanup bot and the main job's driver (Rust, real
#      PostgreSQL; on a local validator too when one is built, see scripts/validator.sh)
#   3. the TypeScript client against the program in litesvm, and against the local validator
#      when one is built
# VAULT_PROPERTY_STEPS lengthens the conservation property test (default 10,000 steps).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$REPO_ROOT"
started=$(date +%s)

"$REPO_ROOT/scripts/setup.sh"
"$REPO_ROOT/scripts/build-program.sh"

# What this run started, stopped when it ends however it ends.
stop_pg=""
validator_dir=""
finish() {
  [ -z "$validator_dir" ] || "$REPO_ROOT/scripts/validator.sh" stop --dir "$validator_dir" || true
  [ -z "$stop_pg" ] || "$REPO_ROOT/scripts/postgres.sh" stop >/dev/null 2>&1 || true
}
trap finish EXIT

if [ -z "${DATABASE_URL:-}" ]; then
  # Stop the server at the end only if this run started it.
  "$REPO_ROOT/scripts/postgres.sh" status >/dev/null 2>&1 || stop_pg=1
  # Captured first: a failed start must stop this script (eval of nothing would not).
  pg_env="$("$REPO_ROOT/scripts/postgres.sh" start)"
  eval "$(grep '^DATABASE_URL=' <<<"$pg_env" | sed 's/^/export /')"
  # The server is the project's own: the PostgreSQL-restart test may stop and start it.
  export VAULT_PG_RESTARTABLE=1
fi
export DATABASE_URL
# Tests that need a local validator (tests/main_job.rs) run when one is available and skip
# otherwise; say which here, since cargo hides a passing test's output.
if validator="$("$REPO_ROOT/scripts/validator.sh" find 2>/dev/null)"; then
  log "local validator: $validator (the validator tests run)"
else
  warn "no local validator: the tests that need one SKIP (scripts/validator.sh ensure builds one, ~25 min"
  warn "once per machine); the litesvm and gRPC tests cover the same code paths"
fi
log "Rust tests (program in litesvm; database, indexer and services against $DATABASE_URL)"
cargo test --workspace

log "TypeScript client tests"
"$REPO_ROOT/scripts/test-ts.sh"

if [ -n "${validator:-}" ]; then
  # The same TypeScript tests through JSON-RPC, as `anchor test` runs them against a validator.
  log "TypeScript client tests against the local validator"
  validator_dir="$REPO_ROOT/.local/test-validator"
  "$REPO_ROOT/target/debug/vault-demo" keygen "$validator_dir/admin.json" >/dev/null
  rpc_url="$(VAULT_RPC_PORT="${VAULT_TEST_RPC_PORT:-18899}" "$REPO_ROOT/scripts/validator.sh" start \
    --dir "$validator_dir" --upgrade-authority "$validator_dir/admin.json" | sed -n 's/^RPC_URL=//p')"
  VAULT_RPC_URL="$rpc_url" VAULT_ADMIN_KEYPAIR="$validator_dir/admin.json" "$REPO_ROOT/scripts/test-ts.sh"
fi

log "all test suites passed in $(( $(date +%s) - started )) s"
