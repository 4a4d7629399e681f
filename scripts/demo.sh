#!/usr/bin/env bash
# The main job (README): on a fresh machine it installs what it needs, then runs the whole system
# locally and prints a summary read back from PostgreSQL:
#   1. a local validator on 127.0.0.1 with the program deployed (scripts/validator.sh; the first
#      run builds solana-test-validator from crates.io, ~25 min on two cores, unless one is on PATH)
#   2. the local PostgreSQL, a fresh `ephemeral_vault_demo` database, migrations applied
#   3. the indexer following the validator (vault-indexer stream --source rpc), with metrics
#   4. the scenario: several parents, SOL and Token-2022 (transfer fee) sessions, deposits,
#      trades, a refused over-cap trade, a fee top-up, a rotation, a revoke, expiries
#   5. one round of the cleanup bot, paid its rewards
#   6. the summary, checked against what the scenario implies
# It stops what it started when it ends or is interrupted.
#   --hold   keep the chain, the indexer and the database running until Ctrl-C, to look around
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/validator.sh"
cd "$REPO_ROOT"

hold=""
[ "${1:-}" = "--hold" ] && hold=1
started=$(date +%s)
DEMO_DIR="$REPO_ROOT/.local/demo"
METRICS_ADDR="127.0.0.1:${VAULT_METRICS_PORT:-9464}"
mkdir -p "$DEMO_DIR"

step() { printf '\n\033[1;32m[%s/6]\033[0m %s\n' "$1" "$2"; }

"$REPO_ROOT/scripts/setup.sh"
"$REPO_ROOT/scripts/build-program.sh"
log "building the indexer, cleanup bot and demo driver"
cargo build -p vault-indexer -p vault-devkit -p vault-db --bin vault-indexer --bin vault-demo --bin vault-migrate
BIN="$REPO_ROOT/target/debug"
ensure_validator >/dev/null

pg_started=""
indexer_pid=""
finalizer_pid=""
driver_pid=""
cleanup() {
  set +e
  for pid in $driver_pid $indexer_pid $finalizer_pid; do
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  "$REPO_ROOT/scripts/validator.sh" stop
  [ -n "$pg_started" ] && "$REPO_ROOT/scripts/postgres.sh" stop >/dev/null 2>&1
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step 1 "local validator with the program deployed"
"$BIN/vault-demo" keygen "$DEMO_DIR/admin.json" >/dev/null
eval "$("$REPO_ROOT/scripts/validator.sh" start --upgrade-authority "$DEMO_DIR/admin.json" | grep -E '^(RPC|WS)_URL=')"
echo "  JSON-RPC $RPC_URL, websocket $WS_URL (validator log: .local/validator/ledger/validator.log)"

step 2 "PostgreSQL, a fresh demo database, migrations"
if [ -z "${DATABASE_URL:-}" ]; then
  "$REPO_ROOT/scripts/postgres.sh" status >/dev/null 2>&1 || pg_started=1
  DEMO_DB_URL="$(VAULT_PG_DATABASE=ephemeral_vault_demo "$REPO_ROOT/scripts/postgres.sh" reset | sed -n 's/^DATABASE_URL=//p')"
else
  # The caller's database, which must be empty: migrated, not recreated.
  DEMO_DB_URL="$DATABASE_URL"
  "$REPO_ROOT/scripts/postgres.sh" start >/dev/null
fi
echo "  $DEMO_DB_URL"

step 3 "the indexer follows the validator"
RUST_LOG="${RUST_LOG:-info}" "$BIN/vault-indexer" --database-url "$DEMO_DB_URL" stream --source rpc \
  --rpc-url "$RPC_URL" --metrics-addr "$METRICS_ADDR" >"$DEMO_DIR/indexer.log" 2>&1 &
indexer_pid=$!
# A second stream at `finalized` moves rows from confirmed to finalized as the chain roots them
# (both write idempotently; each keeps its own cursor).
RUST_LOG="${RUST_LOG:-info}" "$BIN/vault-indexer" --database-url "$DEMO_DB_URL" stream --source rpc \
  --rpc-url "$RPC_URL" --commitment finalized >"$DEMO_DIR/indexer-finalized.log" 2>&1 &
finalizer_pid=$!
echo "  vault-indexer stream --source rpc (log: .local/demo/indexer.log, metrics: http://$METRICS_ADDR/metrics)"
echo "  vault-indexer stream --source rpc --commitment finalized (log: .local/demo/indexer-finalized.log)"

step 4 "sessions driven through signed transactions; 5. the cleanup bot; 6. the summary"
# In the background and waited for, so a TERM or Ctrl-C reaches the trap at once (bash runs traps
# only between commands, and waiting on a foreground command would delay it).
"$BIN/vault-demo" run --rpc-url "$RPC_URL" --admin-keypair "$DEMO_DIR/admin.json" --database-url "$DEMO_DB_URL" \
  --wait-finalized &
driver_pid=$!
wait "$driver_pid"
driver_pid=""

kill -0 "$indexer_pid" 2>/dev/null || die "the indexer exited; see .local/demo/indexer.log"
echo
echo "indexer metrics:"
curl -s "http://$METRICS_ADDR/metrics" | grep -E '^vault_indexer_(transactions|current_slot|lag)' | sed 's/^/  /' || true
echo
echo "Look further:"
echo "  psql $DEMO_DB_URL        (tables, and the views active_sessions_view, cleanup_candidates_view, alerts_summary_view)"
echo "  http://$METRICS_ADDR/metrics   (while running: scripts/demo.sh --hold keeps everything up)"
echo "  .local/demo/indexer.log, .local/validator/ledger/validator.log"
log "main job done in $(( $(date +%s) - started )) s"
if [ -n "$hold" ]; then
  echo "holding: the validator, the indexer and PostgreSQL keep running; Ctrl-C stops them"
  wait "$indexer_pid"
fi
