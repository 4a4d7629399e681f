#!/usr/bin/env bash
# The database suite on its own: starts (or reuses) the local PostgreSQL of scripts/postgres.sh,
# or uses $DATABASE_URL when set, and runs the off-chain crates' tests against it. Each test makes
# and drops its own database, so the development data in ephemeral_vault is left alone.
# Extra arguments go to cargo test (e.g. scripts/test-db.sh --test audit_chain).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$REPO_ROOT"
ensure_toolchain
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"

url="$("$REPO_ROOT/scripts/postgres.sh" start | sed -n 's/^DATABASE_URL=//p' | tail -n 1)"
[ -n "$url" ] || die "scripts/postgres.sh start printed no DATABASE_URL"
export DATABASE_URL="$url"
log "off-chain crate tests against $DATABASE_URL"
cargo test -p vault-db -p vault-indexer -p vault-session-service -p vault-cleanup-bot "$@"
