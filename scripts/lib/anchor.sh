# The Anchor CLI (`anchor`): find it, or build it from crates.io once per machine into the tools
# cache. Source it after lib/common.sh; scripts/anchor-test.sh uses it.

# The version Anchor.toml's [toolchain] anchor_version names.
ANCHOR_CLI_VERSION="$(sed -n 's/^anchor_version *= *"\(.*\)"/\1/p' "$REPO_ROOT/Anchor.toml")"
ANCHOR_CLI_TOOLCHAIN="${VAULT_ANCHOR_TOOLCHAIN:-1.95.0}"
ANCHOR_CLI_ROOT="$TOOLS_CACHE/anchor-cli-$ANCHOR_CLI_VERSION"
# Kept between attempts so an interrupted build resumes; removed once the binary is installed.
ANCHOR_CLI_TARGET="$TOOLS_CACHE/anchor-cli-build-target"

# The anchor binary of the pinned version: one on PATH wins, then the cached build. Prints
# nothing (and fails) when there is neither.
find_anchor_cli() {
  local bin
  for bin in "$(command -v anchor 2>/dev/null || true)" "$ANCHOR_CLI_ROOT/bin/anchor"; do
    [ -n "$bin" ] && [ -x "$bin" ] || continue
    if "$bin" --version 2>/dev/null | grep -qw "$ANCHOR_CLI_VERSION"; then
      echo "$bin"
      return 0
    fi
  done
  return 1
}

build_anchor_cli() {
  ensure_apt pkg-config libssl-dev libudev-dev
  ensure_rustup
  if ! rustup run "$ANCHOR_CLI_TOOLCHAIN" rustc --version >/dev/null 2>&1; then
    log "installing Rust $ANCHOR_CLI_TOOLCHAIN for the Anchor CLI build"
    rustup toolchain install "$ANCHOR_CLI_TOOLCHAIN" --profile minimal >&2
  fi
  warn "building the Anchor CLI (anchor-cli $ANCHOR_CLI_VERSION) from crates.io: once per machine,"
  warn "into $ANCHOR_CLI_ROOT (put anchor $ANCHOR_CLI_VERSION on PATH to skip the build)"
  mkdir -p "$ANCHOR_CLI_ROOT" "$ANCHOR_CLI_TARGET"
  # Run outside the checkout so its rust-toolchain.toml does not apply.
  (cd "$TOOLS_CACHE" && CARGO_TARGET_DIR="$ANCHOR_CLI_TARGET" nice -n 10 \
    cargo "+$ANCHOR_CLI_TOOLCHAIN" install anchor-cli --version "$ANCHOR_CLI_VERSION" --locked \
      --bin anchor --root "$ANCHOR_CLI_ROOT") >&2
  rm -rf "$ANCHOR_CLI_TARGET"
  log "anchor installed in $ANCHOR_CLI_ROOT/bin"
}

# One build at a time per machine: a second caller waits for the first, then finds its binary.
ensure_anchor_cli() {
  if ! find_anchor_cli >/dev/null; then
    mkdir -p "$TOOLS_CACHE"
    (
      flock 9
      find_anchor_cli >/dev/null || build_anchor_cli
    ) 9>"$TOOLS_CACHE/.anchor-cli-build.lock"
  fi
  find_anchor_cli
}
