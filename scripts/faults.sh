#!/usr/bin/env bash
# Fault test in one command: does the server survive a PostgreSQL restart under load?
#
#   bash scripts/faults.sh [--via socket|tcp] [--stop-mode fast|immediate] [--outage-at 15]
#        [--outage 10] [--users 20] [--duration 60] [--rows 50000] [--hang-s 35]
#        [-- more load.mjs options]
#
# 1. Creates a PRIVATE PostgreSQL cluster (initdb into a work directory, run as the postgres user,
#    on a free loopback port with its own socket directory; the shared cluster on 5432 is never
#    touched), a role and a database `strata`.
# 2. Starts the built server (STRATA_BIN, default $CARGO_TARGET_DIR/debug/strata) on a free
#    loopback port with DATABASE_URL pointing at it (--via socket: the unix socket; tcp:
#    127.0.0.1:PORT) and --no-demo.
# 3. Runs scripts/load/load.mjs (small run, 20 users, 60 s; 503 allowed) and a prober (GET /healthz
#    and GET /api/v1/runs every 0.5 s). --outage-at seconds into the load it stops the private
#    cluster (pg_ctl stop -m --stop-mode), waits --outage seconds and starts it again.
# 4. Checks: no network errors or timeouts (a hang or a crash), no request slower than --hang-s
#    (default 35: sqlx's 30 s wait for a connection, plus a margin), no status other than 2xx/503 during
#    the outage (PASS if only 503, and 2xx from what the server had cached), all 2xx again a few
#    seconds after the restart (and the prober's time to recovery), then without restarting the
#    server: /healthz, a run list, a metrics request, a new small upload and an analysis of it
#    answer 200; the server process is alive throughout and exits on SIGTERM.
# 5. Stops the server (SIGTERM) and removes the cluster and the work directory (also on failure
#    or Ctrl-C). A run left behind by a killed faults.sh is cleaned up by the next one.
#
# Output: a report on stdout; the server log, the PostgreSQL log, load.mjs's table and JSON, the
# per-request trace and the prober's log are kept in STRATA_FAULTS_OUT (default: a new directory
# under $TMPDIR, printed). Exit code: 0 all checks passed, 1 a check failed, 2 a set-up error.
# Needs: node 20+, curl, PostgreSQL server binaries (PGBIN, default /usr/lib/postgresql/15/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
site_root="${LEPTOS_SITE_ROOT:-}"
# shellcheck source=scripts/env.sh
source scripts/env.sh
export LEPTOS_SITE_ROOT="${site_root:-$PWD/target/site}"
bin="${STRATA_BIN:-$CARGO_TARGET_DIR/debug/strata}"
log() { printf '\033[1;35m[faults]\033[0m %s\n' "$*" >&2; }
die() { log "$*"; exit 2; }

via=socket stop_mode=fast outage_at=15 outage=10 users=20 duration=60 rows=50000 hang_s=35
load_extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --via) via="$2"; shift 2 ;;
    --stop-mode) stop_mode="$2"; shift 2 ;;
    --outage-at) outage_at="$2"; shift 2 ;;
    --outage) outage="$2"; shift 2 ;;
    --users) users="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --rows) rows="$2"; shift 2 ;;
    --hang-s) hang_s="$2"; shift 2 ;;
    --) shift; load_extra=("$@"); break ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
case "$via" in socket|tcp) ;; *) die "--via is socket or tcp" ;; esac
case "$stop_mode" in smart|fast|immediate) ;; *) die "--stop-mode is fast, immediate or smart" ;; esac
for n in "$outage_at" "$outage" "$users" "$duration" "$rows" "$hang_s"; do [[ "$n" =~ ^[0-9]+$ ]] || die "numbers only: $n"; done
[ $((outage_at + outage + 10)) -le "$duration" ] || die "--duration ($duration) must leave 10 s after the outage (--outage-at $outage_at + --outage $outage)"

PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"
[ -x "$PGBIN/initdb" ] || PGBIN="$(pg_config --bindir 2>/dev/null || true)"
[ -x "$PGBIN/initdb" ] && [ -x "$PGBIN/pg_ctl" ] || die "no PostgreSQL server binaries (set PGBIN to the directory of initdb and pg_ctl)"
[ -x "$bin" ] || die "no server binary at $bin (build it with scripts/build.sh, or set STRATA_BIN)"
command -v node >/dev/null || die "node (20 or later) is needed"
command -v curl >/dev/null || die "curl is needed"

# PostgreSQL refuses to run as root: then its commands run as the postgres user.
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || die "running as root, but there is no postgres user to run PostgreSQL as"
  as_pg() { runuser -u postgres -- "$@"; }
  pg_owner=postgres
else
  as_pg() { "$@"; }
  pg_owner="$(id -un)"
fi

tmp="${TMPDIR:-/tmp}"
# One faults.sh at a time (the work directory has a fixed name, so that a run left behind by a
# killed faults.sh is found and cleaned up).
exec 9>"$tmp/strata-faults.lock"
flock -n 9 || die "another scripts/faults.sh is running (lock $tmp/strata-faults.lock)"
work="$tmp/strata-faults.work"
out="${STRATA_FAULTS_OUT:-$(mktemp -d "$tmp/strata-faults-out.XXXXXX")}"
mkdir -p "$out"
pgdata="$work/pg" sock="$work/sock" data_dir="$work/data"

pg_ctl() { as_pg "$PGBIN/pg_ctl" -D "$pgdata" "$@"; }
pg_running() { [ -f "$pgdata/postmaster.pid" ] && pg_ctl status >/dev/null 2>&1; }

# Removes what a previous faults.sh left behind: its server (only a process whose command line
# names this work directory) and its cluster.
clean_work() {
  if [ -f "$work/server.pid" ]; then
    local old; old="$(cat "$work/server.pid")"
    if [ -n "$old" ] && tr '\0' ' ' <"/proc/$old/cmdline" 2>/dev/null | grep -qF "$data_dir"; then
      log "stopping server $old left by an earlier run"
      kill -TERM "$old" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$old" 2>/dev/null || break; sleep 0.2; done
      kill -KILL "$old" 2>/dev/null || true
    fi
  fi
  if [ -d "$pgdata" ] && pg_running; then
    log "stopping the private cluster left by an earlier run"
    pg_ctl stop -m immediate -w -t 30 >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}

pid="" load_pid="" probe_pid=""
cleanup() {
  local rc=$?
  set +e
  [ -n "$probe_pid" ] && kill "$probe_pid" 2>/dev/null && wait "$probe_pid" 2>/dev/null
  [ -n "$load_pid" ] && kill -0 "$load_pid" 2>/dev/null && { kill -TERM "$load_pid"; wait "$load_pid" 2>/dev/null; }
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && { log "server $pid ignored SIGTERM for 10 s; killing it"; kill -KILL "$pid"; }
    wait "$pid" 2>/dev/null
  fi
  [ -f "$pgdata/postgresql.log" ] && cp "$pgdata/postgresql.log" "$out/postgres.log" 2>/dev/null
  if [ -d "$pgdata" ] && pg_running; then pg_ctl stop -m fast -w -t 30 >/dev/null 2>&1 || pg_ctl stop -m immediate -w -t 30 >/dev/null 2>&1; fi
  rm -rf "$work"
  log "work directory and private cluster removed; logs kept in $out"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { date +%s%3N; }
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

clean_work
mkdir -p "$work" "$sock" "$data_dir"
chmod 755 "$work"
chown "$pg_owner" "$sock"
mkdir "$pgdata" && chown "$pg_owner" "$pgdata" && chmod 700 "$pgdata"

# ---- 1. The private cluster
pgport=$(free_port)
[ "$pgport" != 5432 ] || pgport=$(free_port)
log "private PostgreSQL cluster: $pgdata, port $pgport, socket directory $sock ($("$PGBIN/postgres" --version))"
as_pg "$PGBIN/initdb" -D "$pgdata" -U postgres --auth=trust --no-sync -E UTF8 >"$out/initdb.log" 2>&1 || { cat "$out/initdb.log" >&2; die "initdb failed"; }
cat >>"$pgdata/postgresql.conf" <<EOF
# scripts/faults.sh: a private cluster, never the shared one.
port = $pgport
listen_addresses = '127.0.0.1'
unix_socket_directories = '$sock'
max_connections = 50
fsync = off
EOF
pg_start() { pg_ctl -l "$pgdata/postgresql.log" -w -t 60 start >/dev/null 9>&-; } # 9>&-: the lock stays ours
pg_start || { cat "$pgdata/postgresql.log" >&2; die "the private cluster did not start"; }
psql_pg() { as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$pgport" -U postgres -d postgres "$@"; }
psql_pg -c "CREATE ROLE strata LOGIN" -c "CREATE DATABASE strata OWNER strata" || die "cannot create the role and database"

case "$via" in
  socket) db_url="postgres:///strata?host=$sock&port=$pgport&user=strata" ;;
  tcp) db_url="postgres://strata@127.0.0.1:$pgport/strata" ;;
esac

# ---- 2. The server
port=$(free_port)
base="http://127.0.0.1:$port"
log "server $bin on $base, DATABASE_URL=$db_url, data directory $data_dir"
NO_COLOR=1 DATABASE_URL="$db_url" "$bin" serve --addr "127.0.0.1:$port" --data-dir "$data_dir" --no-demo 2>"$out/server.log" >&2 9>&- &
pid=$!
echo "$pid" >"$work/server.pid"
for i in $(seq 300); do
  curl -fsS -o /dev/null --max-time 2 "$base/healthz" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { tail -20 "$out/server.log" >&2; die "the server exited during start-up"; }
  [ "$i" = 300 ] && { tail -20 "$out/server.log" >&2; die "no answer from $base/healthz after 60 s"; }
  sleep 0.2
done
log "server up (pid $pid)"

# ---- 3. Load, prober, outage
# The prober: one line per request, "start_ms end_ms route status seconds" (status 000: no answer).
probe() {
  local route t0 r
  while kill -0 $$ 2>/dev/null; do # ends with this script, even a killed one
    for route in /healthz /api/v1/runs; do
      t0=$(now_ms)
      r=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 60 "$base$route" 2>/dev/null) || true
      echo "$t0 $(now_ms) $route ${r:-000 0}"
    done
    sleep 0.5
  done
}
probe >"$out/probe.log" 2>/dev/null 9>&- &
probe_pid=$!

: >"$out/trace.jsonl"
log "load: $users users, $duration s, $rows rows; the cluster stops $outage_at s into the load for $outage s (pg_ctl stop -m $stop_mode)"
node scripts/load/load.mjs --base "$base" --pid "$pid" --users "$users" --duration "$duration" --rows "$rows" \
  --allow-status 503 --timeout $((hang_s + 30)) --json "$out/load.json" --trace "$out/trace.jsonl" "${load_extra[@]}" >"$out/load.md" 2>"$out/load.log" 9>&- &
load_pid=$!

# Wait for the users to start (after the upload of the run).
until grep -q '"event":"load-start"' "$out/trace.jsonl" 2>/dev/null; do
  kill -0 "$load_pid" 2>/dev/null || { cat "$out/load.log" >&2; die "load.mjs ended before its users started"; }
  sleep 0.2
done
sleep "$outage_at"
t_stop=$(now_ms)
log "stopping the private cluster (-m $stop_mode)"
pg_ctl stop -m "$stop_mode" -w -t 60 >/dev/null || log "pg_ctl stop failed"
t_stopped=$(now_ms)
log "cluster stopped after $(( (t_stopped - t_stop) )) ms; down for $outage s"
sleep "$outage"
t_start=$(now_ms)
pg_start || { cat "$pgdata/postgresql.log" >&2; die "the private cluster did not start again"; }
t_started=$(now_ms)
log "cluster started again (ready after $((t_started - t_start)) ms)"
alive_after_outage=yes
kill -0 "$pid" 2>/dev/null || alive_after_outage=no

load_rc=0
wait "$load_pid" || load_rc=$?
load_pid=""
kill "$probe_pid" 2>/dev/null; wait "$probe_pid" 2>/dev/null || true
probe_pid=""
[ "$load_rc" -le 1 ] || { cat "$out/load.log" >&2; die "load.mjs failed (exit $load_rc)"; }
t_end=$(now_ms)

# ---- 4. After the restart, without restarting the server
alive_after_load=yes
kill -0 "$pid" 2>/dev/null || alive_after_load=no
run=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).run)' "$out/load.json")
: >"$out/after.log"
check() { # name expected-status curl-args…: one line "name status seconds" in after.log
  local name="$1" want="$2"; shift 2
  local r
  r=$(curl -s -o "$out/after.body" -w '%{http_code} %{time_total}' --max-time 60 "$@" 2>/dev/null) || true
  r="${r:-000 0}"
  echo "$name ${r% *} ${r#* } $( [ "${r%% *}" = "$want" ] && echo ok || echo "FAILED (want $want): $(head -c 300 "$out/after.body" 2>/dev/null | tr '\n' ' ')")" >>"$out/after.log"
  [ "${r%% *}" = "$want" ]
}
# Poll until the server answers from the database again (at most 60 s).
for _ in $(seq 120); do
  curl -fsS -o /dev/null --max-time 5 "$base/healthz" 2>/dev/null && curl -fsS -o /dev/null --max-time 5 "$base/api/v1/runs" 2>/dev/null && break
  sleep 0.5
done
check "GET /healthz" 200 "$base/healthz" || true
check "GET /api/v1/runs" 200 "$base/api/v1/runs" || true
check "GET metrics (load run)" 200 "$base/api/v1/runs/$run/metrics?model=score_logreg&slice=sex&slice=race&bootstrap=0" || true
head -201 demo/adult/eval.csv >"$work/after.csv"
spec='{"name":"faults after restart","label":"label","scores":["score_logreg","score_gbt"],"id":"example_id","timestamp":"timestamp","tags":["faults"]}'
new_run=""
if check "POST /api/v1/runs (200 rows)" 201 -F "spec=$spec;type=application/json" -F "file=@$work/after.csv;type=text/csv" "$base/api/v1/runs"; then
  new_run=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).id)' "$out/after.body")
  check "GET metrics (new run, read from the database)" 200 "$base/api/v1/runs/$new_run/metrics?slice=sex&bootstrap=0" || true
  check "GET page /runs/{new}" 200 "$base/runs/$new_run" || true
fi

# ---- 5. SIGTERM
t_term=$(now_ms)
term_rc=""
if kill -0 "$pid" 2>/dev/null; then
  kill -TERM "$pid"
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then term_rc="still running after 30 s"; else wait "$pid" 2>/dev/null && term_rc=0 || term_rc=$?; fi
fi
t_termed=$(now_ms)
[ "$term_rc" = "still running after 30 s" ] || pid=""

# ---- Report
cat >"$out/times.json" <<EOF
{"via":"$via","stopMode":"$stop_mode","stop":$t_stop,"stopped":$t_stopped,"start":$t_start,"started":$t_started,"end":$t_end,
 "aliveAfterOutage":"$alive_after_outage","aliveAfterLoad":"$alive_after_load","termRc":"$term_rc","termMs":$((t_termed - t_term)),
 "loadRc":$load_rc,"out":"$out","dbUrl":"$db_url","hangS":$hang_s}
EOF
report_rc=0
node - "$out" <<'EOF' || report_rc=$?
const fs = require('fs');
const out = process.argv[2];
const T = JSON.parse(fs.readFileSync(`${out}/times.json`, 'utf8'));
const lines = fs.readFileSync(`${out}/trace.jsonl`, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const start = lines.find((l) => l.event === 'load-start').t;
const reqs = lines.filter((l) => !l.event && !/\(set-up\)$/.test(l.label));
const probes = fs.readFileSync(`${out}/probe.log`, 'utf8').split('\n').filter(Boolean).map((l) => { const [t0, t1, route, status, s] = l.split(' '); return { t0: +t0, t1: +t1, route, status: +status, ms: +s * 1000 }; });
const after = fs.readFileSync(`${out}/after.log`, 'utf8').trim();
const rel = (t) => ((t - start) / 1000).toFixed(1);
const GRACE = 5000; // after the cluster is ready, the pool may still hold a broken connection or two
const down = [T.stop, T.started];
const during = reqs.filter((r) => r.t1 >= down[0] && r.t0 <= down[1]);
const before = reqs.filter((r) => r.t1 < down[0]);
const afterR = reqs.filter((r) => r.t0 > down[1]);
const afterGrace = afterR.filter((r) => r.t0 > down[1] + GRACE);
const count = (rs) => { const m = {}; for (const r of rs) m[r.status || 'net'] = (m[r.status || 'net'] || 0) + 1; return Object.entries(m).sort().map(([k, v]) => `${k}×${v}`).join(' ') || '–'; };
const failures = [];
const o = [];
o.push(`## Strata fault test: PostgreSQL restart under load — ${new Date(start).toISOString()}`);
o.push('');
o.push(`DATABASE_URL \`${T.dbUrl}\` (via ${T.via}); cluster stopped with \`pg_ctl stop -m ${T.stopMode}\` at t=${rel(T.stop)} s (down after ${T.stopped - T.stop} ms), started at t=${rel(T.start)} s, ready at t=${rel(T.started)} s (t = seconds since the users started). Logs: ${out}.`);
o.push('');
o.push('| window | requests | statuses | max latency (ms) |');
o.push('| --- | ---: | --- | ---: |');
const maxMs = (rs) => (rs.length ? Math.max(...rs.map((r) => r.ms)) : 0);
o.push(`| before the outage | ${before.length} | ${count(before)} | ${maxMs(before)} |`);
o.push(`| overlapping the outage | ${during.length} | ${count(during)} | ${maxMs(during)} |`);
o.push(`| after the restart | ${afterR.length} | ${count(afterR)} | ${maxMs(afterR)} |`);
o.push(`| after the restart + ${GRACE / 1000} s | ${afterGrace.length} | ${count(afterGrace)} | ${maxMs(afterGrace)} |`);
o.push('');
// Per route during the outage.
const byLabel = new Map();
for (const r of during) { const k = r.label.replace(/ \((first|cached)\)$/, ''); if (!byLabel.has(k)) byLabel.set(k, []); byLabel.get(k).push(r); }
o.push('Requests overlapping the outage, by route:');
o.push('');
o.push('| route | statuses | max latency (ms) |');
o.push('| --- | --- | ---: |');
for (const [k, rs] of [...byLabel.entries()].sort()) o.push(`| ${k} | ${count(rs)} | ${maxMs(rs)} |`);
o.push('');
// The prober.
const pDuring = probes.filter((p) => p.t1 >= down[0] && p.t0 <= down[1]);
const pAfter = probes.filter((p) => p.t0 >= down[1]);
const firstOk = (route) => pAfter.find((p) => p.route === route && p.status === 200);
const lastBad = (route) => [...probes].reverse().find((p) => p.route === route && p.status !== 200);
for (const route of ['/healthz', '/api/v1/runs']) {
  const ps = pDuring.filter((p) => p.route === route);
  const ok = firstOk(route);
  const bad = lastBad(route);
  o.push(`Prober ${route}: during the outage ${count(ps)}, max ${maxMs(ps).toFixed(0)} ms; first 200 after the restart ${ok ? `${((ok.t1 - T.started) / 1000).toFixed(1)} s after the cluster was ready (${((ok.t1 - T.start) / 1000).toFixed(1)} s after pg_ctl start)` : '**never**'}; last non-200 ${bad ? `at t=${rel(bad.t0)} s (${bad.status === 0 ? 'no answer' : bad.status}, ${bad.ms.toFixed(0)} ms)` : 'none'}.`);
  if (!ok) failures.push(`${route} never answered 200 again during the load`);
}
const lastFail = [...reqs].reverse().find((r) => r.status < 200 || r.status > 299);
const firstFail = reqs.find((r) => r.status < 200 || r.status > 299);
if (firstFail) o.push(`Load requests: first non-2xx at t=${rel(firstFail.t1)} s, last at t=${rel(lastFail.t1)} s (${((lastFail.t1 - T.started) / 1000).toFixed(1)} s after the cluster was ready).`);
o.push('');
// Checks.
// One line per (status, route) with a sample of what the answer said.
const kinds = (rs) => { const m = new Map(); for (const r of rs) { const k = `${r.status || 'no answer'} ${r.method} ${r.label.replace(/ \((first|cached)\)$/, '')}`; if (!m.has(k)) m.set(k, { n: 0, sample: r }); m.get(k).n++; } return [...m.entries()].map(([k, { n, sample }]) => `${n}× ${k} (e.g. \`${sample.url}\`${sample.retryAfter != null ? `, Retry-After ${sample.retryAfter}` : ''}): ${(sample.error || '').slice(0, 200)}`); };
const net = reqs.filter((r) => !r.status);
if (net.length) failures.push(`${net.length} requests got no answer (network error or timeout):\n${kinds(net).map((l) => `  - ${l}`).join('\n')}`);
const odd = during.filter((r) => r.status && r.status !== 503 && (r.status < 200 || r.status > 299));
if (odd.length) failures.push(`${odd.length} requests overlapping the outage answered other than 2xx/503:\n${kinds(odd).map((l) => `  - ${l}`).join('\n')}`);
const ra = during.filter((r) => r.status === 503);
if (ra.length) o.push(`503s overlapping the outage: ${ra.length}, Retry-After ${[...new Set(ra.map((r) => r.retryAfter ?? 'missing'))].join(', ')}; e.g. ${kinds(ra).slice(0, 2).join('; ')}.`);
const lateBad = afterGrace.filter((r) => r.status < 200 || r.status > 299);
if (lateBad.length) failures.push(`${lateBad.length} requests started more than ${GRACE / 1000} s after the restart did not answer 2xx:\n${kinds(lateBad).map((l) => `  - ${l}`).join('\n')}`);
const beforeBad = before.filter((r) => r.status < 200 || r.status > 299);
if (beforeBad.length) o.push(`Note: ${beforeBad.length} non-2xx before the outage (${count(beforeBad)}): ${[...new Set(beforeBad.map((r) => `${r.status} ${r.label}`))].slice(0, 5).join('; ')}.`);
const hang = reqs.filter((r) => r.ms > T.hangS * 1000);
if (hang.length) failures.push(`${hang.length} requests took over ${T.hangS} s (--hang-s): ${hang.slice(0, 5).map((r) => `${r.label} ${r.status || 'no answer'} ${r.ms} ms at t=${rel(r.t0)} s`).join('; ')}`);
const slowOut = during.filter((r) => r.ms > 5000);
if (slowOut.length) o.push(`Requests overlapping the outage that took over 5 s: ${slowOut.length} of ${during.length} (${count(slowOut)}); slowest ${maxMs(slowOut)} ms.`);
if (T.aliveAfterOutage !== 'yes') failures.push('the server process was gone right after the outage');
if (T.aliveAfterLoad !== 'yes') failures.push('the server process was gone after the load');
for (const l of after.split('\n')) if (/FAILED/.test(l)) failures.push(`after the restart: ${l}`);
if (T.termRc !== '0') failures.push(`SIGTERM: the server ${T.termRc === '' ? 'was not running' : T.termRc.startsWith('still') ? T.termRc : `exited with status ${T.termRc}`}`);
o.push('');
o.push('After the load, same server process (name, status, seconds):');
o.push('');
o.push('```');
o.push(after);
o.push('```');
o.push('');
o.push(`SIGTERM: ${T.termRc === '0' ? `exited 0 after ${T.termMs} ms` : T.termRc || 'not running'}.`);
// The server log.
const slog = fs.readFileSync(`${out}/server.log`, 'utf8').split('\n');
const lvl = (l) => (l.match(/\b(ERROR|WARN|INFO|DEBUG|TRACE)\b/) || [])[1];
const errs = slog.filter((l) => lvl(l) === 'ERROR');
const warns = slog.filter((l) => lvl(l) === 'WARN');
const panics = slog.filter((l) => /panick/i.test(l));
const norm = (l) => l.replace(/^\S+\s+/, '').replace(/\b[0-9a-f]{8}-[0-9a-f-]{27,}\b/gi, '<id>').replace(/\d+(\.\d+)?\s*(ms|s|µs)\b/g, '<t>').replace(/:\d{2,5}\b/g, ':<n>').slice(0, 240);
const dist = (ls) => { const m = new Map(); for (const l of ls) m.set(norm(l), (m.get(norm(l)) || 0) + 1); return [...m.entries()].sort((a, b) => b[1] - a[1]); };
o.push('');
o.push(`Server log: ${slog.length - 1} lines, ${errs.length} ERROR, ${warns.length} WARN, ${panics.length} panics (${out}/server.log). Distinct ERROR/WARN lines:`);
o.push('');
o.push('```');
for (const [l, n] of dist([...errs, ...warns]).slice(0, 20)) o.push(`${String(n).padStart(5)}× ${l}`);
o.push('```');
if (panics.length) failures.push(`the server log has ${panics.length} panic lines: ${panics[0].slice(0, 200)}`);
o.push('');
o.push(failures.length ? `**FAILED** (${failures.length}):\n\n${failures.map((f) => `- ${f}`).join('\n')}` : '**PASSED**: the server survived the restart (no hang, no crash, only 503 or cached answers during the outage, 2xx again after it, same process).');
console.log(o.join('\n'));
process.exit(failures.length ? 1 : 0);
EOF
echo
log "load.mjs's own table: $out/load.md"
exit "$report_rc"
