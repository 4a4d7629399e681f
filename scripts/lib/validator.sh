# The local validator: find one, or build one from crates.io once per machine. Source it after
# lib/common.sh; scripts/validator.sh is the command-line face of these functions.

# agave-validator 4.2.2 ships solana-test-validator; it is the newest release that builds with
# Rust 1.95, the toolchain it was measured with (newer ones need newer Rust).
AGAVE_VERSION="${VAULT_AGAVE_VERSION:-4.2.2}"
AGAVE_TOOLCHAIN="${VAULT_AGAVE_TOOLCHAIN:-1.95.0}"
AGAVE_ROOT="$TOOLS_CACHE/agave-$AGAVE_VERSION"

# The validator binary to use: one on PATH wins, then the cached build. Prints nothing (and
# fails) when there is neither.
find_validator() {
  if [ -n "${VAULT_TEST_VALIDATOR:-}" ] && [ -x "$VAULT_TEST_VALIDATOR" ]; then
    echo "$VAULT_TEST_VALIDATOR"
  elif command -v solana-test-validator >/dev/null 2>&1; then
    command -v solana-test-validator
  elif [ -x "$AGAVE_ROOT/bin/solana-test-validator" ]; then
    echo "$AGAVE_ROOT/bin/solana-test-validator"
  else
    return 1
  fi
}

# Builds solana-test-validator into the tools cache. Most of the time goes to C/C++ built from
# source (RocksDB, protobuf, OpenSSL, jemalloc): 24m40s measured on two cores (up to an hour on a
# busier machine).
build_validator() {
  ensure_apt clang libclang-dev cmake protobuf-compiler libudev-dev pkg-config llvm-dev libssl-dev
  local free_gb
  # A fresh machine has no ~/.cache yet: make the cache first so df has something to measure.
  mkdir -p "$TOOLS_CACHE"
  free_gb=$(df -Pk "$TOOLS_CACHE" | awk 'NR==2 { print int($4 / 1048576) }')
  [ "$free_gb" -ge 6 ] || die "building the validator needs ~6 GB free disk; $free_gb GB free"
  warn "building solana-test-validator (agave-validator $AGAVE_VERSION) from crates.io:"
  warn "this takes about 25 minutes on two cores (longer on a busy machine), once per machine;"
  warn "later runs reuse it from $AGAVE_ROOT (set VAULT_TEST_VALIDATOR or put"
  warn "solana-test-validator on PATH to skip the build)"
  cargo_install_cached agave-validator "$AGAVE_VERSION" solana-test-validator "$AGAVE_TOOLCHAIN" "$AGAVE_ROOT"
}

# One build at a time per machine: a second caller waits for the first, then finds its binary.
ensure_validator() {
  ensure_cached_tool find_validator build_validator .agave-build.lock
}
