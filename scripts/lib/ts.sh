# The TypeScript client's Node dependencies. Source it after lib/common.sh.

# Node 20.18+ (what @anchor-lang/core asks for), then `npm ci` in app/ only when app/node_modules
# is missing or app/package-lock.json changed since the last install; tests/node_modules links to
# it. Callers that go offline afterwards (scripts/anchor-test.sh) run this first.
ensure_ts_deps() {
  if ! command -v node >/dev/null 2>&1; then
    ensure_apt nodejs npm
  fi
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=18)?0:1)' ||
    die "Node.js >= 20.18 is required (found $(node --version))"
  local lock_hash stamp="$REPO_ROOT/app/node_modules/.installed-lock.sha256"
  lock_hash="$(sha256sum "$REPO_ROOT/app/package-lock.json" | cut -d' ' -f1)"
  if [ ! -d "$REPO_ROOT/app/node_modules" ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_hash" ]; then
    log "npm ci in app/"
    (cd "$REPO_ROOT/app" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock_hash" > "$stamp"
  fi
  if [ "$(readlink "$REPO_ROOT/tests/node_modules" 2>/dev/null || true)" != "../app/node_modules" ]; then
    rm -rf "$REPO_ROOT/tests/node_modules"
    ln -s ../app/node_modules "$REPO_ROOT/tests/node_modules"
  fi
}
