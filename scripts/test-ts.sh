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
cd "$REPO_ROOT"
started=$SECONDS

# Node 20.18+ (what @anchor-lang/core asks for); npm comes with it.
if ! command -v node >/dev/null 2>&1; then
  ensure_apt nodejs
fi
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=18)?0:1)' ||
  die "Node.js >= 20.18 is required (found $(node --version))"

# Dependencies: one install in app/, shared with the tests through tests/node_modules.
lock_hash="$(sha256sum app/package-lock.json | cut -d' ' -f1)"
stamp=app/node_modules/.installed-lock.sha256
if [ ! -d app/node_modules ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_hash" ]; then
  log "npm ci in app/"
  (cd app && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_hash" > "$stamp"
fi
if [ "$(readlink tests/node_modules 2>/dev/null || true)" != "../app/node_modules" ]; then
  rm -rf tests/node_modules
  ln -s ../app/node_modules tests/node_modules
fi

# The program and its IDL.
if [ ! -f target/deploy/ephemeral_vault.so ] || [ ! -f target/idl/ephemeral_vault.json ]; then
  log "target/deploy/ephemeral_vault.so or target/idl/ephemeral_vault.json is missing: building the program"
  scripts/build-program.sh
fi

log "building app/ (tsc)"
(cd app && npm run --silent build)
log "type-checking tests/"
app/node_modules/.bin/tsc -p tests/tsconfig.json

cd tests
if [ "$#" -gt 0 ]; then files=("$@"); else files=(*.test.ts); fi
if [ -n "${ANCHOR_PROVIDER_URL:-}${VAULT_RPC_URL:-}" ]; then
  log "running ${#files[@]} test files against ${VAULT_RPC_URL:-$ANCHOR_PROVIDER_URL}"
  concurrency=(--test-concurrency=1)
else
  log "running ${#files[@]} test files against the program in litesvm"
  concurrency=()
fi
tap="$(mktemp)"
trap 'rm -f "$tap"' EXIT
set +e
node --import tsx --test "${concurrency[@]}" \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" \
  "${files[@]}"
status=$?
set -e
passed="$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tap" | tail -1)"
failed="$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tap" | tail -1)"
echo "ts-tests: ${passed:-0} passed, ${failed:-0} failed"
log "TypeScript client tests finished in $((SECONDS - started))s"
exit "$status"
