#!/usr/bin/env bash
# Indexer throughput, CPU, latency and a durable run against a raw COPY ceiling, on the local
# PostgreSQL (or DATABASE_URL's server, which must be a superuser connection: the benchmark
# creates databases, disables triggers for the COPY and uses ALTER SYSTEM for its durable run,
# restoring the settings afterwards).
#   scripts/bench-indexer.sh [transactions] [options]   (default 200,000; --help lists options)
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
