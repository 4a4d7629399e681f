#!/usr/bin/env bash
# Installs everything the project needs on a fresh machine, idempotently: a second run checks
# and skips. Called by scripts/test.sh and scripts/demo.sh; safe to run by hand.
#   - apt: PostgreSQL (server for tests and the demo), build tools for -sys crates
#   - rustup: the toolchain pinned in rust-toolchain.toml (+rust-src for the SBF route)
#   - cargo: sbpf-linker, when `cargo build-sbf` is not installed
#   - npm: the TypeScript client's dependencies (in scripts/test-ts.sh)
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

ensure_apt postgresql pkg-config libssl-dev python3 curl ca-certificates iproute2
ensure_toolchain
if ! command -v cargo-build-sbf >/dev/null 2>&1; then
  ensure_cargo_tool sbpf-linker 0.2.6
fi
if ! command -v node >/dev/null 2>&1; then
  ensure_apt nodejs npm
fi
log "setup complete ($(rustup run "$PINNED_TOOLCHAIN" rustc --version))"
