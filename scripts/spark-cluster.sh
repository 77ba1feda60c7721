#!/usr/bin/env bash
# A real Apache Spark standalone cluster on loopback, for external runs and their tests:
#   scripts/spark-cluster.sh start    master + two workers + a Spark Connect server; prints sc://127.0.0.1:PORT
#                                     (STRATA_SPARK_WORKERS=1 starts one worker instead of two)
#   scripts/spark-cluster.sh status   prints the remote and exits 0 when the Connect port answers, 1 otherwise
#   scripts/spark-cluster.sh stop     stops all four JVMs (idempotent)
# Spark comes from PyPI (the pyspark package ships Spark's jars, the Connect server's jar included,
# and the daemon script), installed once in a Python environment outside the clone keyed by the
# requirements' hash (~/.cache/strata-py/spark-<hash>; STRATA_PY_CACHE overrides), like
# scripts/served-models.sh. Java 17 (/usr/bin/java) runs it. Nothing else is downloaded.
#
# Everything binds 127.0.0.1. Memory is bounded: each daemon 512 MiB, each worker offers 1 core and
# 2 GiB to executors (1 GiB each), the Connect server's driver 1 GiB. Ports are picked free at
# start unless STRATA_SPARK_CONNECT_PORT / STRATA_SPARK_MASTER_PORT are set. Logs, pids and the
# chosen ports live in the state directory (STRATA_SPARK_STATE; default one per clone in /tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1;34m[spark]\033[0m %s\n' "$*" >&2; }

req=scripts/spark/requirements.txt
key=$(sha256sum "$req" | cut -c1-12)
root="${STRATA_PY_CACHE:-$HOME/.cache/strata-py}"
venv="$root/spark-$key"
state="${STRATA_SPARK_STATE:-/tmp/strata-spark-$(pwd | sha256sum | cut -c1-8)}"
# Workers started by `start` (1 core, 2 GiB each): 2 unless STRATA_SPARK_WORKERS says 1 (the scale
# benchmark compares one worker with two). `stop` stops either.
workers="${STRATA_SPARK_WORKERS:-2}"
case "$workers" in 1|2) ;; *) echo "STRATA_SPARK_WORKERS must be 1 or 2, not '$workers'" >&2; exit 2 ;; esac

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ensure_venv() {
  if [ ! -f "$venv/.complete" ]; then
    log "creating $venv (pyspark from PyPI, ~450 MB, once)"
    rm -rf "$venv"
    mkdir -p "$root"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
    touch "$venv/.complete"
  fi
  SPARK_HOME=$("$venv/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
  export SPARK_HOME
}

# The daemon script's environment: where it writes logs and pids, and what every JVM binds to.
daemon_env() {
  export SPARK_LOCAL_IP=127.0.0.1 SPARK_LOCAL_HOSTNAME=localhost SPARK_LOG_DIR="$state/logs" \
    SPARK_PID_DIR="$state/pids" SPARK_IDENT_STRING=strata SPARK_DAEMON_MEMORY=512m \
    SPARK_CONF_DIR="$state/conf" SPARK_WORKER_DIR="$state/work"
  unset SPARK_MASTER
}

remote() { [ -f "$state/connect.port" ] && echo "sc://127.0.0.1:$(cat "$state/connect.port")"; }

daemon() { "$SPARK_HOME/sbin/spark-daemon.sh" "$@" >>"$state/logs/daemon.log" 2>&1; }

alive_workers() {
  curl -fsS "http://127.0.0.1:$(cat "$state/master.webui")/json/" 2>/dev/null \
    | python3 -c 'import json, sys; print(sum(w["state"] == "ALIVE" for w in json.load(sys.stdin)["workers"]))' 2>/dev/null \
    || echo 0
}

status() {
  local port
  port=$(cat "$state/connect.port" 2>/dev/null) || return 1
  answers "$port"
}

stop() {
  [ -d "$state/pids" ] || { log "not running"; return 0; }
  ensure_venv
  daemon_env
  # The daemon script sends SIGTERM and removes its pid file; the pids are read first so that a JVM
  # still exiting is waited for, and one that outlives 10 s is killed.
  local pids
  pids=$(cat "$state"/pids/*.pid 2>/dev/null || true)
  daemon stop org.apache.spark.sql.connect.service.SparkConnectServer 1 || true
  for i in 1 2; do daemon stop org.apache.spark.deploy.worker.Worker "$i" || true; done
  daemon stop org.apache.spark.deploy.master.Master 1 || true
  for pid in $pids; do
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -f "$state"/pids/*.pid
  rm -f "$state/connect.port"
  log "stopped"
}

start() {
  if status; then remote; return 0; fi
  # A half-started or crashed cluster: clear it before starting again.
  if compgen -G "$state/pids/*.pid" >/dev/null; then stop; fi
  ensure_venv
  mkdir -p "$state/logs" "$state/pids" "$state/conf" "$state/work"
  daemon_env
  # Executors, shuffles and the Connect server's session: small and local. 4 shuffle partitions
  # instead of 200 (the cells of a run are a few thousand rows at most).
  cat >"$state/conf/spark-defaults.conf" <<CONF
spark.driver.host                   127.0.0.1
spark.driver.bindAddress            127.0.0.1
spark.ui.enabled                    false
spark.executor.memory               1g
spark.executor.cores                1
spark.cores.max                     2
spark.sql.shuffle.partitions        4
spark.connect.grpc.binding.address  127.0.0.1
spark.master.rest.enabled           false
spark.sql.warehouse.dir             $state/warehouse
CONF
  local t0 master_port webui connect_port
  t0=$(date +%s.%N)
  master_port=${STRATA_SPARK_MASTER_PORT:-$(free_port)}
  webui=$(free_port)
  connect_port=${STRATA_SPARK_CONNECT_PORT:-$(free_port)}
  echo "$webui" >"$state/master.webui"
  log "master on 127.0.0.1:$master_port"
  daemon start org.apache.spark.deploy.master.Master 1 --host 127.0.0.1 --port "$master_port" --webui-port "$webui"
  for _ in $(seq 1 120); do answers "$master_port" && break; sleep 0.5; done
  answers "$master_port" || { log "the master did not start:"; tail -30 "$state"/logs/*Master*.out >&2; exit 1; }
  for i in $(seq 1 "$workers"); do
    daemon start org.apache.spark.deploy.worker.Worker "$i" --host 127.0.0.1 --webui-port "$(free_port)" \
      --cores 1 --memory 2g "spark://127.0.0.1:$master_port"
  done
  for _ in $(seq 1 120); do [ "$(alive_workers)" -ge "$workers" ] && break; sleep 0.5; done
  [ "$(alive_workers)" -ge "$workers" ] || { log "the workers did not register:"; tail -30 "$state"/logs/*Worker*.out >&2; exit 1; }
  log "$workers worker(s) registered; Spark Connect on 127.0.0.1:$connect_port"
  daemon submit org.apache.spark.sql.connect.service.SparkConnectServer 1 --name "Strata Spark Connect" \
    --master "spark://127.0.0.1:$master_port" --driver-memory 1g \
    --conf "spark.connect.grpc.binding.port=$connect_port"
  for _ in $(seq 1 240); do answers "$connect_port" && break; sleep 0.5; done
  answers "$connect_port" || { log "Spark Connect did not start:"; tail -40 "$state"/logs/*SparkConnectServer*.out >&2; exit 1; }
  echo "$connect_port" >"$state/connect.port"
  log "ready in $(python3 -c "import time; print(round(time.time() - $t0, 1))") s (logs: $state/logs)"
  remote
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if status; then remote; else echo "not running" >&2; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
