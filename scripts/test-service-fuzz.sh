#!/usr/bin/env bash
# Fuzzes the session service's HTTP API with schemathesis against its served OpenAPI document:
# the real vault-service binary on 127.0.0.1, over a real PostgreSQL database, once unsigned, once
# with requests signed by a parent wallet and once by the admin wallet (a hook signs each request
# the way the service's auth requires: crates/session-service/fuzz/signing_hook.py). Every check
# is on; any failure fails the script.
#
#   scripts/test-service-fuzz.sh
#
# Environment:
#   DATABASE_URL           use this database; unset, or naming the local dev database, the local
#                          server is started (scripts/postgres.sh) and the run gets a database of
#                          its own on it, vault_service_fuzz
#   SERVICE_FUZZ_EXAMPLES  examples per operation and pass (default 40)
#   SERVICE_FUZZ_SEED      the generation seed (default 20261129, so a run is repeatable)
#
# schemathesis (pinned) is installed once into .local/venv.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

SCHEMATHESIS_VERSION="4.32.5"
CRYPTOGRAPHY_VERSION="50.0.2"
EXAMPLES="${SERVICE_FUZZ_EXAMPLES:-40}"
SEED="${SERVICE_FUZZ_SEED:-20261129}"
VENV="$REPO_ROOT/.local/venv"
WORK="$REPO_ROOT/.local/service-fuzz"
HOOKS_DIR="$REPO_ROOT/crates/session-service/fuzz"

ensure_schemathesis() {
  if "$VENV/bin/python" - "$SCHEMATHESIS_VERSION" "$CRYPTOGRAPHY_VERSION" >/dev/null 2>&1 <<'EOF'
import sys
from importlib.metadata import version
assert version("schemathesis") == sys.argv[1] and version("cryptography") == sys.argv[2]
EOF
  then
    return
  fi
  python3 -m venv --help >/dev/null 2>&1 && python3 -c 'import ensurepip' 2>/dev/null || ensure_apt python3-venv
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  log "installing schemathesis $SCHEMATHESIS_VERSION into .local/venv"
  "$VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION" "cryptography==$CRYPTOGRAPHY_VERSION"
}

free_port() {
  "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

ensure_schemathesis
mkdir -p "$WORK"
rm -f "$WORK"/count-* "$WORK"/report-*

# On the project's own server (DATABASE_URL unset, or naming its dev database, as scripts/test.sh
# exports it) the run gets a database of its own; any other DATABASE_URL is used as it is.
if [ -z "${DATABASE_URL:-}" ] || [ "$DATABASE_URL" = "$("$REPO_ROOT/scripts/postgres.sh" url)" ]; then
  DATABASE_URL="$(env -u DATABASE_URL VAULT_PG_DATABASE=vault_service_fuzz "$REPO_ROOT/scripts/postgres.sh" start |
    sed -n 's/^DATABASE_URL=//p')"
else
  "$REPO_ROOT/scripts/postgres.sh" start >/dev/null
fi
[ -n "$DATABASE_URL" ] || die "no DATABASE_URL"

log "building vault-service"
ensure_toolchain
(cd "$REPO_ROOT" && cargo build -q -p vault-session-service --bin vault-service)
SERVICE_BIN="$REPO_ROOT/target/debug/vault-service"

# A test KEK, and the two wallets' keys (fresh for every run).
KEK_FILE="$WORK/keks.txt"
(umask 077 && printf 'fuzz=%s\n' "$(head -c 32 /dev/urandom | base64)" >"$KEK_FILE")
PARENT_SEED="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
ADMIN_SEED="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
ADMIN_WALLET="$(PYTHONPATH="$HOOKS_DIR" "$VENV/bin/python" "$HOOKS_DIR/signing_hook.py" "$ADMIN_SEED")"

PORT="$(free_port)"
# The relay is on, pointed at a port nothing listens on, with a key in the URL: no response may
# ever show it.
RPC_URL="http://127.0.0.1:$(free_port)/?api-key=fuzz-secret-rpc-key"
BASE="http://127.0.0.1:$PORT"

SERVICE_PID=""
stop_service() {
  if [ -n "$SERVICE_PID" ] && kill -0 "$SERVICE_PID" 2>/dev/null; then
    kill "$SERVICE_PID" 2>/dev/null || true
    wait "$SERVICE_PID" 2>/dev/null || true
  fi
}
trap stop_service EXIT

log "starting vault-service on $BASE"
DATABASE_URL="$DATABASE_URL" VAULT_SERVICE_KEK_FILE="$KEK_FILE" VAULT_SERVICE_ACTIVE_KEK=fuzz \
  RUST_LOG="${RUST_LOG:-warn}" \
  "$SERVICE_BIN" --listen "127.0.0.1:$PORT" --admin-wallet "$ADMIN_WALLET" --relay --rpc-url "$RPC_URL" \
  >"$WORK/service.log" 2>&1 &
SERVICE_PID=$!
for _ in $(seq 1 100); do
  curl -fsS "$BASE/health" >/dev/null 2>&1 && break
  kill -0 "$SERVICE_PID" 2>/dev/null || { cat "$WORK/service.log" >&2; die "vault-service did not start"; }
  sleep 0.2
done

failed=0
total_requests=0
# The document carries schemas, not examples: schemathesis's `examples` phase would have nothing to
# send and report every operation as skipped, so it is not asked for.
run_pass() {
  local name="$1" seed_hex="$2"
  local -a auth=()
  [ -n "$seed_hex" ] && auth=(-H "X-Vault-Signature: sign-me")
  log "schemathesis: $name requests ($EXAMPLES examples per operation, seed $SEED)"
  local rc=0
  PYTHONPATH="$HOOKS_DIR" SCHEMATHESIS_HOOKS=signing_hook VAULT_FUZZ_SEED="$seed_hex" \
    VAULT_FUZZ_COUNT_FILE="$WORK/count-$name" \
    "$VENV/bin/schemathesis" run "$BASE/openapi.json" --url "$BASE" \
      --checks all --max-examples "$EXAMPLES" --seed "$SEED" --workers 1 \
      --phases coverage,fuzzing,stateful \
      --generation-database none --no-color --suppress-health-check all \
      --report junit --report-junit-path "$WORK/report-$name.xml" \
      "${auth[@]}" || rc=$?
  local n
  n="$(cat "$WORK/count-$name" 2>/dev/null || echo 0)"
  total_requests=$((total_requests + n))
  local f
  f="$(grep -o 'failures="[0-9]*"' "$WORK/report-$name.xml" 2>/dev/null | head -1 | tr -dc 0-9)"
  log "$name: $n requests, ${f:-?} failing operations, exit $rc"
  [ "$rc" -eq 0 ] || failed=$((failed + 1))
}

run_pass unsigned ""
run_pass parent "$PARENT_SEED"
run_pass admin "$ADMIN_SEED"

# The RPC URL's key never reaches a client; in the server's log it is redacted too.
if grep -q 'fuzz-secret-rpc-key' "$WORK/service.log"; then
  warn "the server log shows the RPC URL's key"
  failed=$((failed + 1))
fi

stop_service
log "service fuzzing: $total_requests requests in 3 passes, $failed failing pass(es)"
[ "$failed" -eq 0 ] || die "schemathesis found failures (reports in .local/service-fuzz)"
