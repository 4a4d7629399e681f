#!/usr/bin/env bash
# The TypeScript client in a real browser. Packs app/ as a frontend would install it (npm pack),
# installs it into tests/browser (a page with no polyfill configuration), type-checks that page
# as a strict consumer (skipLibCheck: false), bundles it with Vite and with webpack 5, prints what
# the client adds to a bundle, and loads both bundles in headless Chromium (Debian's, through
# playwright-core):
#
#   - offline: every instruction builder, account decoding, a signed transaction, error parsing;
#   - with a local validator (scripts/validator.sh find): openSession -> trade -> subscribe ->
#     closeEarly over JSON-RPC and websocket, its results checked on chain.
#
# The page runs with no Buffer, process or global defined, and the test checks they stay so.
#
#   scripts/test-browser.sh
#
# Installs chromium (apt) and the npm packages when missing. The validator it starts listens on
# 127.0.0.1:$VAULT_BROWSER_RPC_PORT (default 28899) and the next port, with its ledger in
# .local/browser-validator; it is stopped when the script ends. Without a validator binary the
# on-chain part is skipped (scripts/validator.sh ensure builds one, ~25 min once).
# Ends with "browser-tests: N passed, N failed".
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$REPO_ROOT"
started=$SECONDS

work="$REPO_ROOT/.local/browser-test"
vdir="$REPO_ROOT/.local/browser-validator"
page="$REPO_ROOT/tests/browser"
mkdir -p "$work"

# Node 20.18+ and Debian's Chromium.
command -v node >/dev/null 2>&1 || ensure_apt nodejs
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=18)?0:1)' ||
  die "Node.js >= 20.18 is required (found $(node --version))"
ensure_apt chromium
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] || die "no Chromium at $CHROMIUM"

# npm ci in a directory when its lockfile changed since the last install.
npm_ci_if_needed() {
  local dir="$1" hash stamp
  hash="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  stamp="$dir/node_modules/.installed-lock.sha256"
  if [ ! -d "$dir/node_modules" ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$hash" ]; then
    log "npm ci in ${dir#"$REPO_ROOT"/}"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$hash" > "$stamp"
  fi
}

# 1. The client as published: built and packed.
npm_ci_if_needed app
# Packed from a copy of app/ (its prepack builds a clean dist/), so that app/dist, which other test
# runs import, is left alone.
log "building and packing app/"
rm -rf "$work/pkg" "$work"/ephemeral-vault-client-*.tgz
mkdir -p "$work/pkg"
cp -r app/package.json app/README.md app/tsconfig.json app/src "$work/pkg/"
ln -s "$REPO_ROOT/app/node_modules" "$work/pkg/node_modules"
(cd "$work/pkg" && npm pack --silent --pack-destination "$work" >/dev/null)
tgz="$(ls "$work"/ephemeral-vault-client-*.tgz)"

# 2. The page's project installs it like any dependency.
npm_ci_if_needed "$page"
rm -rf "$page/node_modules/@ephemeral-vault"
(cd "$page" && npm install --no-save --no-audit --no-fund --loglevel=error "$tgz")

# 3. A strict consumer's type check: skipLibCheck false, with and without Node's types. Without
# them web3.js's and spl-token's own declarations fail (they name Node's http and Buffer); the
# client's must not.
log "type-checking the page as a strict consumer (skipLibCheck: false)"
(cd "$page" && node_modules/.bin/tsc -p tsconfig.json)
set +e
no_node="$(cd "$page" && node_modules/.bin/tsc -p tsconfig.no-node.json 2>&1)"
set -e
ours="$(printf '%s\n' "$no_node" | grep -E 'error TS[0-9]+' | grep -v '^node_modules/@solana/' || true)"
if [ -n "$ours" ]; then
  printf '%s\n' "$ours" >&2
  die "the client's declarations (or the page) need Node's types"
fi

# 4. Bundles: the page (client and web3.js) by Vite and by webpack, and the client alone with
# web3.js and buffer external (what it adds to a Solana frontend).
log "bundling the page with Vite, and with webpack"
(cd "$page" && node_modules/.bin/vite build --logLevel warn)
(cd "$page" && node_modules/.bin/vite build --config vite.size.config.mjs --logLevel warn)
(cd "$page" && rm -rf build-js && node_modules/.bin/tsc -p tsconfig.json --noEmit false --outDir build-js &&
  node_modules/.bin/webpack --config webpack.config.mjs --stats errors-warnings && cp webpack.html dist-webpack/index.html)
(cd "$page" && node -e '
const { gzipSync } = require("node:zlib");
const { readdirSync, readFileSync } = require("node:fs");
const size = (dir) => {
  const files = readdirSync(dir).filter((f) => f.endsWith(".js")).map((f) => readFileSync(`${dir}/${f}`));
  const raw = files.reduce((n, b) => n + b.length, 0);
  const gz = files.reduce((n, b) => n + gzipSync(b).length, 0);
  return `${(raw / 1000).toFixed(1)} kB minified, ${(gz / 1000).toFixed(1)} kB gzip`;
};
console.log(`bundle size: the client adds ${size("dist-size/assets")} (everything it exports; web3.js and buffer external)`);
console.log(`bundle size: the test page (client and web3.js): ${size("dist/assets")}`);
')

# 5. A local validator with the program, when there is one.
unset VAULT_RPC_URL VAULT_WS_URL VAULT_ADMIN_KEYPAIR
if validator_bin="$(scripts/validator.sh find 2>/dev/null)"; then
  if [ ! -f target/deploy/ephemeral_vault.so ]; then
    log "target/deploy/ephemeral_vault.so is missing: building the program"
    scripts/build-program.sh
  fi
  admin="$work/admin.json"
  [ -f "$admin" ] || (cd "$page" && node -e '
    const { Keypair } = require("@solana/web3.js");
    require("node:fs").writeFileSync(process.argv[1], JSON.stringify(Array.from(Keypair.generate().secretKey)));
  ' "$admin")
  export VAULT_RPC_PORT="${VAULT_BROWSER_RPC_PORT:-28899}"
  # A run killed before its trap leaves its validator behind: stop it first.
  scripts/validator.sh stop --dir "$vdir" >/dev/null 2>&1 || true
  trap 'scripts/validator.sh stop --dir "$vdir" >/dev/null 2>&1 || true' EXIT
  log "starting a local validator ($validator_bin) on 127.0.0.1:$VAULT_RPC_PORT"
  urls="$(scripts/validator.sh start --dir "$vdir" --upgrade-authority "$admin")"
  VAULT_RPC_URL="$(printf '%s\n' "$urls" | sed -n 's/^RPC_URL=//p')"
  VAULT_WS_URL="$(printf '%s\n' "$urls" | sed -n 's/^WS_URL=//p')"
  VAULT_ADMIN_KEYPAIR="$admin"
  export VAULT_RPC_URL VAULT_WS_URL VAULT_ADMIN_KEYPAIR
else
  warn "no local validator (scripts/validator.sh ensure builds one): the on-chain browser test is skipped"
fi

# 6. The page in headless Chromium.
log "loading the page in headless Chromium"
tap="$(mktemp)"
set +e
(cd "$page" && node --test \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" \
  run.mjs)
status=$?
set -e
passed="$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tap" | tail -1)"
failed="$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tap" | tail -1)"
skipped="$(grep -c ' # SKIP' "$tap" || true)"
rm -f "$tap"
echo "browser-tests: ${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
log "browser tests finished in $((SECONDS - started))s"
exit "$status"
