#!/usr/bin/env bash
# A local Solana validator with the program deployed, reachable only from this machine.
#
#   scripts/validator.sh find                  print the validator binary; exit 3 when there is none
#   scripts/validator.sh ensure                find it, or build it from crates.io (~25 min, once)
#   scripts/validator.sh start --upgrade-authority KEYPAIR_OR_PUBKEY [--dir DIR]
#                                              start a fresh chain; print RPC_URL= and WS_URL=
#   scripts/validator.sh stop [--dir DIR]      stop what `start` started
#
# Ports: JSON-RPC on 127.0.0.1:$VAULT_RPC_PORT (default 8899), websocket on the next port.
#
# solana-test-validator binds its RPC, websocket and faucet ports on every interface whatever
# --bind-address says. So it runs in a network namespace of its own that has only loopback,
# and socat carries the RPC and websocket ports (only those) out to 127.0.0.1 over unix sockets.
# Where no namespace can be made (no root, no user namespaces) it runs on the host, with a
# warning.
#
# The program is in the genesis (--upgradeable-program, at the id of Anchor.toml) with the given
# upgrade authority, which is the key `initialize_config` accepts. Every start resets the ledger.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/validator.sh"

RPC_PORT="${VAULT_RPC_PORT:-8899}"
WS_PORT=$((RPC_PORT + 1))
PROGRAM_SO="$REPO_ROOT/target/deploy/ephemeral_vault.so"
PROGRAM_ID="$(sed -n 's/^ephemeral_vault *= *"\(.*\)"/\1/p' "$REPO_ROOT/Anchor.toml" | head -n 1)"

cmd="${1:-}"
shift || true
dir="$REPO_ROOT/.local/validator"
authority=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --upgrade-authority) authority="$2"; shift 2 ;;
    *) die "unknown argument $1" ;;
  esac
done

# Prints how to make a loopback-only namespace here: "" (root), "--map-root-user", or fails.
netns_mode() {
  if unshare --net true 2>/dev/null; then
    echo ""
  elif unshare --net --map-root-user true 2>/dev/null; then
    echo "--map-root-user"
  else
    return 1
  fi
}

rpc_healthy() {
  curl -s -m 2 -H 'Content-Type: application/json' \
    -d '{"jsonrpc":"2.0","id":1,"method":"getHealth"}' "http://127.0.0.1:$RPC_PORT" 2>/dev/null |
    grep -q '"ok"'
}

current_slot() {
  curl -s -m 2 -H 'Content-Type: application/json' \
    -d '{"jsonrpc":"2.0","id":1,"method":"getSlot","params":[{"commitment":"confirmed"}]}' \
    "http://127.0.0.1:$RPC_PORT" 2>/dev/null | sed -n 's/.*"result": *\([0-9]*\).*/\1/p'
}

stop_all() {
  local pidfile
  for pidfile in "$dir"/run/*.pid; do
    [ -e "$pidfile" ] || continue
    # Each was started as the leader of its own process group (setsid): stop the whole group.
    kill -TERM -- "-$(cat "$pidfile")" 2>/dev/null || true
  done
  local waited=0
  for pidfile in "$dir"/run/*.pid; do
    [ -e "$pidfile" ] || continue
    while kill -0 -- "-$(cat "$pidfile")" 2>/dev/null && [ $waited -lt 100 ]; do
      sleep 0.1; waited=$((waited + 1))
    done
    kill -KILL -- "-$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  done
}

start() {
  [ -n "$authority" ] || die "start needs --upgrade-authority KEYPAIR_OR_PUBKEY"
  [ -f "$PROGRAM_SO" ] || die "$PROGRAM_SO is missing: run scripts/build-program.sh"
  local validator
  validator="$(find_validator)" || die "no solana-test-validator: run scripts/validator.sh ensure"
  ensure_apt socat iproute2 curl
  stop_all
  rpc_healthy && die "port $RPC_PORT already answers JSON-RPC: another validator is running (VAULT_RPC_PORT picks another port)"
  mkdir -p "$dir/run" "$dir/ledger"
  rm -f "$dir"/run/*.sock
  local args=(--ledger "$dir/ledger" --reset --bind-address 127.0.0.1
    --upgradeable-program "$PROGRAM_ID" "$PROGRAM_SO" "$authority")
  local mode
  if mode="$(netns_mode)"; then
    # Inside the namespace the validator keeps its default ports; only the bridges leave it.
    setsid unshare --net $mode -- bash -c '
      set -e
      ip link set lo up
      socat UNIX-LISTEN:"$1/run/rpc.sock",fork,unlink-early TCP:127.0.0.1:8899 &
      socat UNIX-LISTEN:"$1/run/ws.sock",fork,unlink-early TCP:127.0.0.1:8900 &
      shift
      exec "$@"
    ' bridge "$dir" "$validator" "${args[@]}" --rpc-port 8899 >"$dir/run/validator.out" 2>&1 </dev/null &
    echo $! >"$dir/run/validator.pid"
    for _ in $(seq 1 100); do [ -S "$dir/run/rpc.sock" ] && [ -S "$dir/run/ws.sock" ] && break; sleep 0.1; done
    setsid socat TCP-LISTEN:"$RPC_PORT",bind=127.0.0.1,reuseaddr,fork UNIX-CONNECT:"$dir/run/rpc.sock" \
      >/dev/null 2>&1 </dev/null &
    echo $! >"$dir/run/rpc-bridge.pid"
    setsid socat TCP-LISTEN:"$WS_PORT",bind=127.0.0.1,reuseaddr,fork UNIX-CONNECT:"$dir/run/ws.sock" \
      >/dev/null 2>&1 </dev/null &
    echo $! >"$dir/run/ws-bridge.pid"
  else
    warn "cannot create a network namespace here: the validator's RPC, websocket and faucet"
    warn "ports listen on every interface while it runs"
    setsid "$validator" "${args[@]}" --rpc-port "$RPC_PORT" >"$dir/run/validator.out" 2>&1 </dev/null &
    echo $! >"$dir/run/validator.pid"
  fi

  # Healthy RPC first, then a confirmed slot past genesis: before that, transactions are refused.
  local waited=0
  until rpc_healthy && [ "$(current_slot || echo 0)" -gt 1 ] 2>/dev/null; do
    if ! kill -0 "$(cat "$dir/run/validator.pid")" 2>/dev/null; then
      tail -n 20 "$dir/run/validator.out" >&2 || true
      die "the validator exited; its log is $dir/ledger/validator.log"
    fi
    waited=$((waited + 1))
    [ $waited -lt 900 ] || { stop_all; die "the validator did not produce slots within 90 s"; }
    sleep 0.1
  done
  echo "RPC_URL=http://127.0.0.1:$RPC_PORT"
  echo "WS_URL=ws://127.0.0.1:$WS_PORT"
}

case "$cmd" in
  find) find_validator || exit 3 ;;
  ensure) ensure_validator ;;
  start) start ;;
  stop) stop_all ;;
  *) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac
