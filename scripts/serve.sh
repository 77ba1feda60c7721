#!/usr/bin/env bash
# Builds Strata and serves it on http://127.0.0.1:3000 (STRATA_ADDR to change) with the demo runs
# loaded into ./strata-data/strata.db (SQLite; set DATABASE_URL=postgres://… for PostgreSQL).
# Extra arguments go to `strata serve` (e.g. --no-demo, --addr 0.0.0.0:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
# Set-up (the wasm32 target, the wasm-bindgen CLI, plotly.js) runs beside the server's build, which
# does not need it: a cold build leaves one core idle much of the time.
setup_log=$(mktemp)
bash scripts/setup.sh >"$setup_log" 2>&1 &
setup=$!
cargo build -p strata-server --bin strata
if ! wait "$setup"; then cat "$setup_log"; exit 1; fi
cat "$setup_log"
bash scripts/build.sh
export LEPTOS_SITE_ROOT="$PWD/target/site"
exec "$CARGO_TARGET_DIR/debug/strata" serve "$@"
