#!/usr/bin/env bash
# Builds the TypeScript client (app/) and runs its tests (tests/*.test.ts) against the real
# program: target/deploy/ephemeral_vault.so in litesvm by default, or a local validator when
# ANCHOR_PROVIDER_URL or VAULT_RPC_URL is set (see app/README.md).
#
#   scripts/test-ts.sh                 everything
#   scripts/test-ts.sh sol-instructions.test.ts ...   only these test files
#
# Node dependencies are installed with `npm ci` only when app/node_modules is missing or
# app/package-lock.json changed since the last install. The program and its IDL are built
# (scripts/build-program.sh) only when missing.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/ts.sh"
cd "$REPO_ROOT"
started=$SECONDS

ensure_ts_deps

# The program and its IDL.
if [ ! -f target/deploy/ephemeral_vault.so ] || [ ! -f target/idl/ephemeral_vault.json ]; then
  log "target/deploy/ephemeral_vault.so or target/idl/ephemeral_vault.json is missing: building the program"
  scripts/build-program.sh
fi

log "building app/ (tsc)"
(cd app && npm run --silent build)
log "type-checking tests/"
app/node_modules/.bin/tsc -p tests/tsconfig.json

# `anchor test` passes the wallet as Anchor.toml spells it, relative to the workspace root.
[ -z "${ANCHOR_WALLET:-}" ] || ANCHOR_WALLET="$(realpath "$ANCHOR_WALLET")"
cd tests
if [ "$#" -gt 0 ]; then files=("$@"); else files=(*.test.ts); fi
if [ -n "${ANCHOR_PROVIDER_URL:-}${VAULT_RPC_URL:-}" ]; then
  log "running ${#files[@]} test files against ${VAULT_RPC_URL:-$ANCHOR_PROVIDER_URL}"
  concurrency=(--test-concurrency=1)
else
  log "running ${#files[@]} test files against the program in litesvm"
  concurrency=()
fi
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
set +e
# --test-force-exit: a test that fails before closing a subscription would otherwise keep its
# file's process (and `anchor test`, and CI) waiting forever. It also exits before a file
# reporter is flushed, so the counts come from the spec reporter's summary on stdout.
node --import tsx --test --test-force-exit "${concurrency[@]}" --test-reporter=spec "${files[@]}" | tee "$out"
status=${PIPESTATUS[0]}
set -e
passed="$(sed -n 's/^ℹ pass \([0-9]*\)$/\1/p' "$out" | tail -1)"
failed="$(sed -n 's/^ℹ fail \([0-9]*\)$/\1/p' "$out" | tail -1)"
echo "ts-tests: ${passed:-0} passed, ${failed:-0} failed"
log "TypeScript client tests finished in $((SECONDS - started))s"
exit "$status"
