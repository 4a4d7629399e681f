# Shared helpers for the project's scripts. Source it; do not run it.
# Every install step here is idempotent: a second run checks and skips.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# Tools built once per machine (not per clone) live here, so a fresh clone reuses them.
TOOLS_CACHE="${EPHEMERAL_VAULT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ephemeral-vault}"
# The toolchain pinned in rust-toolchain.toml.
PINNED_TOOLCHAIN="$(sed -n 's/^channel *= *"\(.*\)"/\1/p' "$REPO_ROOT/rust-toolchain.toml")"

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
warn() { printf '\033[1;33mwarning:\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# rustup and cargo, on PATH even in a fresh non-login shell.
ensure_rustup() {
  export PATH="$HOME/.cargo/bin:$PATH"
  command -v rustup >/dev/null 2>&1 && return
  log "installing rustup (minimal profile)"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain none
}

ensure_toolchain() {
  ensure_rustup
  if ! rustup run "$PINNED_TOOLCHAIN" rustc --version >/dev/null 2>&1 ||
     [ ! -d "$(rustup run "$PINNED_TOOLCHAIN" rustc --print sysroot)/lib/rustlib/src/rust/library" ]; then
    log "installing Rust $PINNED_TOOLCHAIN (+rust-src)"
    rustup toolchain install "$PINNED_TOOLCHAIN" --profile minimal -c rust-src -c rustfmt -c clippy
  fi
}

# apt packages by name, installed only when one is missing.
ensure_apt() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return
  log "apt-get install ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# `cargo install NAME --version V` unless that version is already on PATH.
ensure_cargo_tool() {
  local name="$1" version="$2" bin="${3:-$1}"
  ensure_toolchain
  if "$bin" --version 2>/dev/null | grep -q "$version"; then return; fi
  log "cargo install $name $version (once per machine)"
  cargo "+$PINNED_TOOLCHAIN" install "$name" --version "$version" --locked
}

# `cargo install CRATE --version VERSION --bin BIN --root ROOT` with TOOLCHAIN, for the tools built
# once per machine into the tools cache (the validator, the Anchor CLI). Runs outside the checkout
# so its rust-toolchain.toml does not apply, niced, in a target dir of its own that is kept if the
# build is interrupted (the next attempt resumes) and removed once the binary is installed. Build
# output goes to stderr: callers print the tool's path on stdout.
cargo_install_cached() {
  local crate="$1" version="$2" bin="$3" toolchain="$4" root="$5"
  local target="$TOOLS_CACHE/$crate-build-target"
  ensure_rustup
  if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
    log "installing Rust $toolchain for the $crate build"
    rustup toolchain install "$toolchain" --profile minimal >&2
  fi
  mkdir -p "$root" "$target"
  (cd "$TOOLS_CACHE" && CARGO_TARGET_DIR="$target" nice -n 10 \
    cargo "+$toolchain" install "$crate" --version "$version" --locked --bin "$bin" --root "$root") >&2
  rm -rf "$target"
  log "$bin installed in $root/bin"
}

# Prints a cached tool's path: FIND (a function printing it, or failing) else BUILD it first. One
# build per tool and machine at a time: a second caller waits on LOCK, then finds the binary.
ensure_cached_tool() {
  local find="$1" build="$2" lock="$3"
  if ! "$find" >/dev/null; then
    mkdir -p "$TOOLS_CACHE"
    (
      flock 9
      "$find" >/dev/null || "$build"
    ) 9>"$TOOLS_CACHE/$lock"
  fi
  "$find"
}
