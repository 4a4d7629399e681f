# The Anchor CLI (`anchor`): find it, or build it from crates.io once per machine into the tools
# cache. Source it after lib/common.sh; scripts/anchor-test.sh uses it.

# The version Anchor.toml's [toolchain] anchor_version names.
ANCHOR_CLI_VERSION="$(sed -n 's/^anchor_version *= *"\(.*\)"/\1/p' "$REPO_ROOT/Anchor.toml")"
ANCHOR_CLI_TOOLCHAIN="${VAULT_ANCHOR_TOOLCHAIN:-1.95.0}"
ANCHOR_CLI_ROOT="$TOOLS_CACHE/anchor-cli-$ANCHOR_CLI_VERSION"

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
  warn "building the Anchor CLI (anchor-cli $ANCHOR_CLI_VERSION) from crates.io: once per machine,"
  warn "into $ANCHOR_CLI_ROOT (put anchor $ANCHOR_CLI_VERSION on PATH to skip the build)"
  cargo_install_cached anchor-cli "$ANCHOR_CLI_VERSION" anchor "$ANCHOR_CLI_TOOLCHAIN" "$ANCHOR_CLI_ROOT"
}

# One build at a time per machine: a second caller waits for the first, then finds its binary.
ensure_anchor_cli() {
  ensure_cached_tool find_anchor_cli build_anchor_cli .anchor-cli-build.lock
}
