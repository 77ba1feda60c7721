#!/usr/bin/env bash
# Issue 18's measurements in one command: generates 10M and 100M rows of binary-classification
# predictions as partitioned Parquet (once, under STRATA_BENCH_DATA, default /tmp/strata-scale:
# ~1.3 GB; check `df -h` first), measures Strata's external-run path on them (first request, peak
# memory, repeat requests, against a bare Parquet scan), then starts the local Spark cluster
# (scripts/spark-cluster.sh) with two workers and with one, and times the push-down cell query
# against one aggregation per threshold. Prints the tables of docs/benchmarks.md ("Scale").
#   scripts/bench-scale.sh            (~35-60 min on 2 cores; the dev profile, as the tests build)
#   STRATA_BENCH_CLEAN=1 scripts/bench-scale.sh     also deletes the generated data at the end
# Other knobs (sizes, parts, workers, naive thresholds): see server/benches/scale.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
log=${STRATA_BENCH_LOG:-/tmp/strata-bench-scale.log}
cargo bench -p strata-server --bench scale --profile dev 2>&1 | tee "$log"
if [ "${STRATA_BENCH_CLEAN:-0}" = 1 ]; then
  rm -rf "${STRATA_BENCH_DATA:-/tmp/strata-scale}"
fi
