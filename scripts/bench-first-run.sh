#!/usr/bin/env bash
# Measures a first run of ./scripts/serve.sh (release server build) on empty build caches: clones this repository into a new
# folder and builds it there with a new CARGO_TARGET_DIR and a new wasm-bindgen CLI (installed beside
# the server's build, as serve.sh does). The crates.io download cache is reused (a fresh machine adds
# its downloads). Takes ~25 minutes on 2 cores; prints the time of each step.
#   bash scripts/bench-first-run.sh [WORK_DIR]      (default: a new temporary folder)
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d)}"
mkdir -p "$work" && cd "$work" || exit 2
git clone -q "$repo" strata && cd strata || exit 2
wbg=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
export CARGO_INCREMENTAL=0 CARGO_TARGET_DIR="$work/target"
t0=$(date +%s)
(CARGO_TARGET_DIR="$work/wbg-target" cargo install wasm-bindgen-cli --version "$wbg" --root "$work/wbg" >"$work/wbg.log" 2>&1
 echo "$(( $(date +%s) - t0 ))" >"$work/wbg.seconds") &
wb=$!
source scripts/env.sh
cargo build --release -p strata-server --bin strata >"$work/server.log" 2>&1 || { tail -20 "$work/server.log"; exit 1; }
t1=$(date +%s)
wait $wb || { tail -20 "$work/wbg.log"; exit 1; }
t2=$(date +%s)
export PATH="$work/wbg/bin:$PATH"
STRATA_SERVER_PROFILE=release bash scripts/build.sh >"$work/build.log" 2>&1 || { tail -20 "$work/build.log"; exit 1; }
t3=$(date +%s)
echo "wasm-bindgen-cli installed after $(cat "$work/wbg.seconds") s (beside the server's build)"
echo "server build: $((t1 - t0)) s; site (WASM bundle + wasm-bindgen + files): $((t3 - t2)) s"
echo "first run total: $((t3 - t0)) s ($(( (t3 - t0) / 60 )) min); logs in $work"
