#!/usr/bin/env bash
# Builds the site the way cargo-leptos would, with nothing but cargo and wasm-bindgen:
#   1. the server binary `strata` (host target, `ssr`),
#   2. the WASM crate `strata-frontend` (wasm32, `hydrate`), turned into an ES module by wasm-bindgen,
#   3. `target/site/`: pkg/strata.{js,wasm,css} and the files of `public/`.
# Installing cargo-leptos took ~12 of a first run's minutes on a 2-core machine, and it orchestrates
# only these steps. The LEPTOS_* variables are the ones Leptos reads at compile time (the file names
# in the hydration script), so `cargo test` in scripts/test.sh sees the same values and shares the build.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh
log() { printf '\033[1;34m[build]\033[0m %s\n' "$*"; }

# The server's profile: dev (what the tests use) unless the caller asks for release (scripts/serve.sh).
server_profile="${STRATA_SERVER_PROFILE:-dev}"
log "server (strata, profile $server_profile)"
cargo build -p strata-server --bin strata --profile "$server_profile"

# The browser bundle is size-optimised (`wasm-release`: opt-level z, LTO, one codegen unit, then
# binaryen's wasm-opt -Oz): 24 MB in a dev build, a fraction of it here (docs/benchmarks.md, "First
# load"). STRATA_WASM_PROFILE=dev builds the quick debug bundle while iterating.
wasm_profile="${STRATA_WASM_PROFILE:-wasm-release}"
log "browser bundle (strata-frontend, wasm32, profile $wasm_profile)"
cargo build -p strata-frontend --lib --target wasm32-unknown-unknown --profile "$wasm_profile"
case "$wasm_profile" in dev) wasm_dir=debug ;; *) wasm_dir="$wasm_profile" ;; esac

site="$PWD/$LEPTOS_SITE_ROOT"
pkg="$site/$LEPTOS_SITE_PKG_DIR"
staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
wasm-bindgen --target web --no-typescript --out-name "$LEPTOS_OUTPUT_NAME" --out-dir "$staging" \
  "$CARGO_TARGET_DIR/wasm32-unknown-unknown/$wasm_dir/strata_frontend.wasm"
if [ "$wasm_profile" != dev ]; then
  log "wasm-opt -Oz"
  # The features rustc enables for wasm32 by default, so wasm-opt accepts and keeps them.
  node_modules/.bin/wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    -o "$staging/opt.wasm" "$staging/${LEPTOS_OUTPUT_NAME}_bg.wasm"
  mv "$staging/opt.wasm" "$staging/${LEPTOS_OUTPUT_NAME}_bg.wasm"
fi
mkdir -p "$pkg"
# Leptos asks for <name>.wasm when LEPTOS_OUTPUT_NAME was set at compile time (no `_bg`).
mv "$staging/${LEPTOS_OUTPUT_NAME}_bg.wasm" "$pkg/$LEPTOS_OUTPUT_NAME.wasm"
mv "$staging/$LEPTOS_OUTPUT_NAME.js" "$pkg/$LEPTOS_OUTPUT_NAME.js"
rm -rf "$pkg/snippets"
[ -d "$staging/snippets" ] && mv "$staging/snippets" "$pkg/snippets"
cp style/main.css "$pkg/$LEPTOS_OUTPUT_NAME.css"
cp -R public/. "$site/"
log "site in $site, server at $CARGO_TARGET_DIR/debug/strata"
