#!/usr/bin/env bash
# Prints compute units per instruction (SOL, SPL Token, Token-2022, Token-2022 with a transfer
# fee), the .so size, and each account's size and rent, measured in litesvm on the built program.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$REPO_ROOT"
"$REPO_ROOT/scripts/build-program.sh" >&2
cargo run -q -p ephemeral-vault-testkit --bin vault-cu-bench
