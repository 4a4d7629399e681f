#!/usr/bin/env bash
# Indexer throughput and latency against a raw COPY ceiling, on the local PostgreSQL.
#   scripts/bench-indexer.sh [transactions]   (default 10,000)
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$REPO_ROOT"
"$REPO_ROOT/scripts/build-program.sh" >&2
if [ -z "${DATABASE_URL:-}" ]; then
  # Captured first: a failed start must stop this script (eval of nothing would not).
  pg_env="$("$REPO_ROOT/scripts/postgres.sh" start)"
  eval "$(grep '^DATABASE_URL=' <<<"$pg_env" | sed 's/^/export /')"
fi
cargo run -q --release -p vault-devkit --bin vault-indexer-bench -- "$@"
