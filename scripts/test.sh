#!/usr/bin/env bash
# The project's test command (README, .ci/run): on a fresh machine it installs what it needs -
# including solana-test-validator and the Anchor CLI, built from crates.io once per machine into
# ~/.cache/ephemeral-vault - builds the program to SBF, starts a local PostgreSQL, and runs every
# test suite; none skips for lack of a tool:
#   1. the program in litesvm (Rust): success paths, refusals, sealevel attacks, conservation
#   2. the database, indexer, session service, cleanup bot and the main job's driver (Rust, real
#      PostgreSQL), the main job and the RPC source on a local validator
#   3. the TypeScript client against the program in litesvm, then the same tests through JSON-RPC
#      by `anchor test` on solana-test-validator (scripts/anchor-test.sh)
#   4. the client bundled for a browser, offline and on a local validator (scripts/test-browser.sh)
#   5. the session service's API fuzzed against its OpenAPI document (scripts/test-service-fuzz.sh)
# Before any of them: cargo fmt --check and cargo clippy -D warnings over the workspace.
# VAULT_PROPERTY_STEPS lengthens the conservation property test (default 10,000 steps).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$REPO_ROOT"
started=$(date +%s)

# Each step's duration, for the README's CI figures.
step_started=$(date +%s)
step_done() {
  log "$1 ($(( $(date +%s) - step_started )) s)"
  step_started=$(date +%s)
}

"$REPO_ROOT/scripts/setup.sh"
# Style and lints first: a failure here costs seconds, not a whole run.
log "cargo fmt --check and cargo clippy -D warnings (every crate, tests included)"
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
step_done "fmt and clippy clean"
"$REPO_ROOT/scripts/build-program.sh"
step_done "setup and program build done"
# The chain tests need these; the first run on a machine builds them into the tools cache
# (about 30 minutes together on two idle cores, see the README), later runs find them.
validator="$("$REPO_ROOT/scripts/validator.sh" ensure | tail -n 1)"
source "$REPO_ROOT/scripts/lib/anchor.sh"
anchor="$(ensure_anchor_cli | tail -n 1)"
step_done "solana-test-validator: $validator; anchor: $anchor"
# With the validator there, a test that cannot find one fails instead of skipping.
export VAULT_REQUIRE_VALIDATOR=1

# What this run started, stopped when it ends however it ends.
stop_pg=""
finish() {
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
log "Rust tests (program in litesvm; database, indexer and services against $DATABASE_URL; the main job and the RPC source on solana-test-validator)"
cargo test --workspace
step_done "Rust tests passed"

log "the session service's API fuzzed by schemathesis against the OpenAPI document (signed requests)"
"$REPO_ROOT/scripts/test-service-fuzz.sh"
step_done "API fuzzing passed"

log "TypeScript client tests (program in litesvm)"
"$REPO_ROOT/scripts/test-ts.sh"
step_done "TypeScript tests in litesvm passed"

log "TypeScript client tests through JSON-RPC: anchor test on solana-test-validator"
"$REPO_ROOT/scripts/anchor-test.sh"
step_done "anchor test passed"

log "the TypeScript client in a browser (Vite and webpack bundles in headless Chromium)"
"$REPO_ROOT/scripts/test-browser.sh"
step_done "browser tests passed"

log "all test suites passed in $(( $(date +%s) - started )) s"
