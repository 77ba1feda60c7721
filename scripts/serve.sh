#!/usr/bin/env bash
# Builds Strata and serves it on http://127.0.0.1:3000 (STRATA_ADDR to change) with the demo runs
# loaded into ./strata-data/strata.db (SQLite; set DATABASE_URL=postgres://… for PostgreSQL).
# Extra arguments go to `strata serve` (e.g. --no-demo, --addr 0.0.0.0:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/setup.sh
bash scripts/build.sh
export LEPTOS_SITE_ROOT="$PWD/target/site"
exec "$CARGO_TARGET_DIR/debug/strata" serve "$@"
