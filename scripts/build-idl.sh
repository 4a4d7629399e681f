#!/usr/bin/env bash
# Writes target/idl/ephemeral_vault.json. Uses `anchor idl build` when the Anchor CLI is
# installed, else tools/idl-gen (Anchor's IDL builder as a library). The IDL build compiles the
# program for the host with `idl-build`, in its own target dir so it does not evict the test
# build's artifacts.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$REPO_ROOT"
mkdir -p target/idl
out=target/idl/ephemeral_vault.json
if command -v anchor >/dev/null 2>&1 && [ -z "${EPHEMERAL_VAULT_OWN_SBF_ROUTE:-}" ]; then
  anchor idl build -p ephemeral_vault -o "$out"
else
  ensure_toolchain
  cargo build -q -p idl-gen
  CARGO_TARGET_DIR="$REPO_ROOT/target/idl-build" target/debug/idl-gen programs/ephemeral-vault "$out"
fi
