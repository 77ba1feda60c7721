#!/usr/bin/env bash
# Load test in one command: starts an already built server on a free loopback port with a new
# temporary data directory (SQLite, no demo runs), waits for /healthz, runs scripts/load/load.mjs
# against it (which uploads a large run, then drives virtual users and prints a Markdown table),
# stops the server with SIGTERM and removes the data directory. Builds nothing.
#   bash scripts/load.sh [load.mjs options: --users 50 --duration 120 --rows 1000000 …]
# STRATA_BIN: the server binary (default $CARGO_TARGET_DIR/debug/strata, see scripts/env.sh);
# LEPTOS_SITE_ROOT: the built site (default target/site); STRATA_LOAD_LOG: where the server's
# log (stderr) is kept (default: a new file under $TMPDIR, printed). Exit code: load.mjs's.
set -euo pipefail
cd "$(dirname "$0")/.."
site_root="${LEPTOS_SITE_ROOT:-}"
# shellcheck source=scripts/env.sh
source scripts/env.sh
export LEPTOS_SITE_ROOT="${site_root:-$PWD/target/site}"
bin="${STRATA_BIN:-$CARGO_TARGET_DIR/debug/strata}"
log() { printf '\033[1;34m[load]\033[0m %s\n' "$*" >&2; }

[ -x "$bin" ] || { log "no server binary at $bin (build it with scripts/build.sh, or set STRATA_BIN)"; exit 2; }
command -v node >/dev/null || { log "node (20 or later) is needed"; exit 2; }

data_dir=$(mktemp -d "${TMPDIR:-/tmp}/strata-load-data.XXXXXX")
server_log="${STRATA_LOAD_LOG:-$(mktemp "${TMPDIR:-/tmp}/strata-load-server.XXXXXX.log")}"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && { log "server $pid ignored SIGTERM for 10 s; killing it"; kill -KILL "$pid" 2>/dev/null || true; }
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$data_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free loopback port (the kernel's choice; a small race with other programs is acceptable here).
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
base="http://127.0.0.1:$port"

log "server $bin on $base, data in $data_dir, log in $server_log"
# DATABASE_URL unset: SQLite in the data directory.
NO_COLOR=1 env -u DATABASE_URL "$bin" serve --addr "127.0.0.1:$port" --data-dir "$data_dir" --no-demo 2>"$server_log" >&2 &
pid=$!

for i in $(seq 300); do
  if curl -fsS -o /dev/null --max-time 2 "$base/healthz" 2>/dev/null; then break; fi
  kill -0 "$pid" 2>/dev/null || { log "the server exited during start-up:"; tail -20 "$server_log" >&2; exit 2; }
  [ "$i" = 300 ] && { log "no answer from $base/healthz after 60 s"; tail -20 "$server_log" >&2; exit 2; }
  sleep 0.2
done
log "server up (pid $pid)"

status=0
node scripts/load/load.mjs --base "$base" --pid "$pid" "$@" || status=$?
kill -0 "$pid" 2>/dev/null || { log "the server died during the load test (log: $server_log)"; tail -20 "$server_log" >&2; status=1; }
errors=$(grep -c "ERROR" "$server_log" || true)
log "server log: $server_log ($errors ERROR lines)"
exit "$status"
