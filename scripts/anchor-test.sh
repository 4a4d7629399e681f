#!/usr/bin/env bash
# `anchor test` as a Solana developer types it, with the real Anchor CLI: it starts
# solana-test-validator with the program in its genesis (upgradeable, at the id of Anchor.toml,
# the wallet as upgrade authority), runs Anchor.toml's test script (scripts/test-ts.sh: the
# TypeScript tests through JSON-RPC) and stops the validator.
#
#   scripts/anchor-test.sh [more `anchor test` arguments]
#
# What it adds around `anchor test --skip-build --validator legacy`, each step skipped when done:
#   - anchor-cli (the version Anchor.toml pins), built from crates.io once per machine into the
#     tools cache unless it is on PATH (scripts/lib/anchor.sh);
#   - solana-test-validator, likewise (scripts/validator.sh ensure), put first on PATH;
#   - the program and its IDL (scripts/build-program.sh: `anchor build` needs Solana's
#     platform-tools, which cannot be downloaded everywhere, hence --skip-build);
#   - the test wallet Anchor.toml names (.local/anchor/wallet.json), made by `anchor keygen new`;
#   - the Node packages, installed before the run goes offline.
# Anchor 1.x would start surfpool; `--validator legacy` selects solana-test-validator.
#
# solana-test-validator listens on every interface whatever --bind-address says, so the whole
# run (anchor, the validator, the tests) happens in a network namespace that has only loopback:
# nothing is reachable from outside and Anchor's fixed ports (8899, 8900, 9900) cannot collide
# with another validator on this machine. Where no namespace can be made it runs on the host,
# with a warning.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/validator.sh"
source "$(dirname "$0")/lib/anchor.sh"
source "$(dirname "$0")/lib/ts.sh"
cd "$REPO_ROOT"

anchor="$(ensure_anchor_cli)"
validator="$(ensure_validator)"
log "anchor: $anchor ($("$anchor" --version)); solana-test-validator: $validator"
if [ ! -f target/deploy/ephemeral_vault.so ] || [ ! -f target/idl/ephemeral_vault.json ]; then
  scripts/build-program.sh
fi
# The id Anchor.toml deploys at must be the program keypair's (what `anchor keys list` reads).
keypair_id="$("$anchor" keygen pubkey target/deploy/ephemeral_vault-keypair.json)"
toml_id="$(sed -n 's/^ephemeral_vault *= *"\(.*\)"/\1/p' Anchor.toml | head -n 1)"
[ "$keypair_id" = "$toml_id" ] ||
  die "Anchor.toml deploys ephemeral_vault at $toml_id but target/deploy/ephemeral_vault-keypair.json is $keypair_id"

wallet="$(sed -n 's/^wallet *= *"\(.*\)"/\1/p' Anchor.toml | head -n 1)"
if [ ! -f "$wallet" ]; then
  log "creating the test wallet $wallet (anchor keygen new)"
  mkdir -p "$(dirname "$wallet")"
  "$anchor" keygen new --no-passphrase --silent --outfile "$wallet" >/dev/null
fi
ensure_ts_deps
ensure_apt iproute2

export PATH="$(dirname "$validator"):$(dirname "$anchor"):$PATH"
args=(test --skip-build --validator legacy "$@")
log "anchor ${args[*]}"
if unshare --net true 2>/dev/null; then
  ns=(unshare --net)
elif unshare --net --map-root-user true 2>/dev/null; then
  ns=(unshare --net --map-root-user)
else
  ns=()
  warn "cannot create a network namespace here: the validator's ports listen on every interface"
fi
# A process group of its own, stopped whole when this script ends however it ends: Anchor stops
# its validator when the tests finish, but not when it is itself killed.
if [ ${#ns[@]} -gt 0 ]; then
  setsid "${ns[@]}" -- bash -c 'ip link set lo up && exec "$@"' anchor-test anchor "${args[@]}" &
else
  setsid anchor "${args[@]}" &
fi
group=$!
trap 'kill -TERM -- "-$group" 2>/dev/null || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
wait "$group"
