#!/usr/bin/env bash
# Runs every test: Rust unit + integration tests (SQLite, and a real PostgreSQL that this script
# starts), then the Playwright end-to-end tests in headless Chromium against a freshly built server.
set -euo pipefail
cd "$(dirname "$0")/.."
# The build cache and the LEPTOS_* values the site build uses too, so both share one build.
source scripts/env.sh
log() { printf '\033[1;34m[test]\033[0m %s\n' "$*"; }

# Set-up (wasm32 target, wasm-bindgen CLI, npm packages, Chromium) runs beside the Rust tests' build,
# which does not need it; the site build and the browser tests wait for it.
setup_log=$(mktemp)
bash scripts/setup.sh --browser >"$setup_log" 2>&1 &
setup=$!

# PostgreSQL: start the machine's cluster if it is down, and make a superuser role for us.
if command -v pg_ctlcluster >/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect 15 main start 2>/dev/null || true
  for _ in $(seq 1 30); do pg_isready -q -h /var/run/postgresql && break; sleep 1; done
  if [ "$(id -u)" = 0 ]; then
    su postgres -c "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname='$(whoami)'\"" | grep -q 1 \
      || su postgres -c "createuser -s $(whoami)"
  fi
  export DATABASE_URL="${DATABASE_URL:-postgres:///postgres?host=/var/run/postgresql}"
else
  log "PostgreSQL is not installed: the PostgreSQL tests will fail"
fi

# Real model servers (MLServer, MLflow) for the served-model tests: a Python environment outside the
# clone, made once (about a minute, beside the build).
served_log=$(mktemp)
bash scripts/served-models.sh >"$served_log.path" 2>"$served_log" &
served=$!

# A real Apache Spark cluster on loopback (a master, two workers, a Spark Connect server; pyspark
# from PyPI once, outside the clone) for the Spark tests: started beside the build, stopped after
# the Rust tests (and on any exit).
spark_log=$(mktemp)
bash scripts/spark-cluster.sh start >"$spark_log.remote" 2>"$spark_log" &
spark=$!
trap 'bash scripts/spark-cluster.sh stop >/dev/null 2>&1 || true' EXIT

log "Rust tests (unit, integration: SQLite + PostgreSQL + real model servers + a Spark cluster)"
cargo test -p strata-server -p strata-app --no-run
if ! wait "$served"; then log "the model servers' environment could not be made:"; cat "$served_log"; exit 1; fi
export STRATA_SERVED_VENV="$(cat "$served_log.path")" STRATA_REQUIRE_SERVED=1
if ! wait "$spark"; then log "the Spark cluster did not start:"; cat "$spark_log"; exit 1; fi
cat "$spark_log"
export STRATA_SPARK_REMOTE="$(tail -1 "$spark_log.remote")" STRATA_REQUIRE_SPARK=1
cargo test -p strata-server -p strata-app
bash scripts/spark-cluster.sh stop

if ! wait "$setup"; then log "set-up failed:"; cat "$setup_log"; exit 1; fi
cat "$setup_log"
log "building the site for the end-to-end tests"
bash scripts/build.sh

log "end-to-end tests (Playwright + Chromium)"
data_dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
LEPTOS_SITE_ROOT="$PWD/target/site" DATABASE_URL= "$CARGO_TARGET_DIR/debug/strata" serve \
  --addr "127.0.0.1:$port" --data-dir "$data_dir" >"$data_dir/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$data_dir"' EXIT
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { cat "$data_dir/server.log"; exit 1; }
  sleep 0.5
done
STRATA_URL="http://127.0.0.1:$port" node --test --test-concurrency=1 end2end/tests/ \
  || { log "server log:"; tail -50 "$data_dir/server.log"; exit 1; }
