#!/usr/bin/env bash
# Installs, idempotently, what building and testing Strata needs: the wasm32 target, the
# wasm-bindgen CLI matching Cargo.lock, npm packages (plotly.js, playwright-core) and, with
# --browser, Debian's Chromium. Safe to run again; each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

want_browser=0
[ "${1:-}" = "--browser" ] && want_browser=1

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

export PATH="$HOME/.cargo/bin:$PATH"

if ! rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$'; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# scripts/build.sh turns the WASM crate into an ES module with the wasm-bindgen CLI, which must be
# exactly the version of the wasm-bindgen crate in Cargo.lock; it comes from crates.io.
wbg_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -q " $wbg_version\$"; then
  log "installing wasm-bindgen-cli $wbg_version (a few minutes, once)"
  # Not --locked: its lock file pins a webpki-roots release the registry no longer serves.
  cargo install wasm-bindgen-cli --version "$wbg_version"
fi

if [ ! -d node_modules/plotly.js-cartesian-dist-min ] || [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/oidc-provider ] \
   || [ ! -d node_modules/axe-core ] || [ ! -d node_modules/binaryen ] \
   || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm packages"
  npm ci --no-audit --no-fund
fi
mkdir -p public/vendor
# plotly.js's cartesian bundle: every trace type Strata draws, a third of the full bundle's size.
if ! cmp -s node_modules/plotly.js-cartesian-dist-min/plotly-cartesian.min.js public/vendor/plotly.min.js; then
  cp node_modules/plotly.js-cartesian-dist-min/plotly-cartesian.min.js public/vendor/plotly.min.js
fi

if [ "$want_browser" = 1 ] && ! [ -x /usr/bin/chromium ]; then
  log "installing Debian's chromium for the end-to-end tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium chromium-driver >/dev/null
fi
