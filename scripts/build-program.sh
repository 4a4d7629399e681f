#!/usr/bin/env bash
# Builds the on-chain programs to target/deploy: the vault (ephemeral_vault.so, and its IDL to
# target/idl/ephemeral_vault.json) and vault-router (vault_router.so), a test-only program the
# testkit loads into litesvm to reach the vault by CPI; it is never deployed and has no IDL.
#
# With Solana's tools installed, `cargo build-sbf` does the build (so `anchor build` keeps
# working). Without them - platform-tools cannot be downloaded everywhere - the program is built
# with the pinned nightly, a custom SBPF v3 target and sbpf-linker; docs/build.md explains
# each step. Second runs are incremental and install nothing.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$REPO_ROOT"

# package:library, the vault first.
PROGRAMS=(ephemeral-vault:ephemeral_vault vault-router:vault_router)
SBPF_LINKER_VERSION=0.2.6
mkdir -p target/deploy target/idl

build_with_build_sbf() {
  local entry package
  for entry in "${PROGRAMS[@]}"; do
    package="${entry%%:*}"
    log "building $package with cargo build-sbf"
    cargo build-sbf --manifest-path "programs/$package/Cargo.toml" --sbf-out-dir target/deploy
  done
}

# std needs two small changes to build for target_arch = "bpf"; patch a private copy of the
# toolchain's library sources once.
patched_std_sources() {
  local sysroot src dest marker
  sysroot="$(rustup run "$PINNED_TOOLCHAIN" rustc --print sysroot)"
  src="$sysroot/lib/rustlib/src/rust/library"
  dest="$TOOLS_CACHE/rust-src/$PINNED_TOOLCHAIN"
  marker="$dest/.patched-v1"
  if [ ! -f "$marker" ]; then
    log "preparing patched std sources for SBF in $dest"
    rm -rf "$dest" && mkdir -p "$dest"
    cp -r "$src" "$dest/library"
    python3 "$REPO_ROOT/scripts/sbf/patch_std.py" "$dest/library"
    touch "$marker"
  fi
  echo "$dest/library"
}

target_spec() {
  local spec=target/sbf/sbpfv3-solana.json
  if [ ! -f "$spec" ]; then
    mkdir -p target/sbf
    rustup run "$PINNED_TOOLCHAIN" rustc --print target-spec-json -Z unstable-options \
      --target bpfel-unknown-none | python3 "$REPO_ROOT/scripts/sbf/target_spec.py" > "$spec"
  fi
  echo "$REPO_ROOT/$spec"
}

build_with_own_route() {
  ensure_toolchain
  ensure_cargo_tool sbpf-linker "$SBPF_LINKER_VERSION"
  local library spec linker flags
  library="$(patched_std_sources)"
  spec="$(target_spec)"
  linker="$(command -v sbpf-linker)"
  # Each flag fixes a failure seen without it (docs/build.md): lower-atomic for atomics the
  # BPF backend cannot select; no bswap / sign-extending loads / movsx and no jump tables,
  # which SBPF v3 rejects as invalid opcodes; static relocations and a 4 KiB stack frame.
  flags=(
    -C "linker=$linker"
    -C target-cpu=v4
    -C target-feature=+allows-misaligned-mem-access
    -C relocation-model=static
    -C passes=lower-atomic
    -C link-arg=--arch=v3
    -C link-arg=--llvm-args=--bpf-stack-size=4096
    -C link-arg=--llvm-args=--disable-movsx
    -C link-arg=--llvm-args=--disable-ldsx
    -C link-arg=--llvm-args=--disable-bswap
    -C link-arg=--llvm-args=--bpf-min-jump-table-entries=100000
    --cfg 'target_os="solana"'
    -A explicit_builtin_cfgs_in_flags
    -A unexpected_cfgs
  )
  local entry packages=()
  for entry in "${PROGRAMS[@]}"; do packages+=(-p "${entry%%:*}"); done
  log "building ${PROGRAMS[*]%%:*} to SBPF v3 with $PINNED_TOOLCHAIN and sbpf-linker"
  local IFS=$'\x1f'
  # CARGO_ENCODED_RUSTFLAGS reaches the build-std crates but not build scripts.
  RUSTC_BOOTSTRAP_SYNTHETIC_TARGET=1 \
  __CARGO_TESTS_ONLY_SRC_ROOT="$library" \
  CARGO_ENCODED_RUSTFLAGS="${flags[*]}" \
    cargo "+$PINNED_TOOLCHAIN" build --release "${packages[@]}" --lib \
      --target "$spec" -Zjson-target-spec -Zbuild-std=std,panic_abort \
      -Zpanic-immediate-abort --config 'profile.release.panic="immediate-abort"'
  unset IFS
  for entry in "${PROGRAMS[@]}"; do
    cp "target/sbpfv3-solana/release/lib${entry#*:}.so" "target/deploy/${entry#*:}.so"
  done
}

if command -v cargo-build-sbf >/dev/null 2>&1 && [ -z "${EPHEMERAL_VAULT_OWN_SBF_ROUTE:-}" ]; then
  build_with_build_sbf
else
  build_with_own_route
fi
for entry in "${PROGRAMS[@]}"; do
  cp "programs/${entry%%:*}/keys/${entry#*:}-keypair.json" "target/deploy/${entry#*:}-keypair.json"
done

log "generating the vault's IDL"
"$REPO_ROOT/scripts/build-idl.sh"

for entry in "${PROGRAMS[@]}"; do
  log "target/deploy/${entry#*:}.so ($(stat -c %s "target/deploy/${entry#*:}.so") bytes)"
done
log "target/idl/ephemeral_vault.json"
