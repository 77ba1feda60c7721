#!/usr/bin/env bash
# Builds Strata and serves it on http://127.0.0.1:3000 (STRATA_ADDR to change) with the demo runs
# loaded into ./strata-data/strata.db (SQLite; set DATABASE_URL=postgres://… for PostgreSQL).
# Extra arguments go to `strata serve` (e.g. --no-demo, --addr 0.0.0.0:8080).
# The server is built in the `release` profile (what users run: cold paths ~2x faster than the dev
# build the tests use; see docs/benchmarks.md "Which build serves"); STRATA_SERVE_PROFILE=dev serves
# the tests' build instead (quicker to rebuild while developing).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
# Set-up (the wasm32 target, the wasm-bindgen CLI, plotly.js) runs beside the server's build, which
# does not need it: a cold build leaves one core idle much of the time.
setup_log=$(mktemp)
bash scripts/setup.sh >"$setup_log" 2>&1 &
setup=$!
profile="${STRATA_SERVE_PROFILE:-release}"
case "$profile" in
  release) dir=release ;;
  dev) dir=debug ;;
  *) echo "STRATA_SERVE_PROFILE must be release or dev, not '$profile'" >&2; exit 2 ;;
esac
export STRATA_SERVER_PROFILE="$profile"
cargo build -p strata-server --bin strata --profile "$profile"
if ! wait "$setup"; then cat "$setup_log"; exit 1; fi
cat "$setup_log"
bash scripts/build.sh
export LEPTOS_SITE_ROOT="$PWD/target/site"
exec "$CARGO_TARGET_DIR/$dir/strata" serve "$@"
