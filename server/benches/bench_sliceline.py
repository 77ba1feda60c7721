#!/usr/bin/env python3
"""Benchmark the reference `sliceline` package and write its input for the Rust port.

Synthetic data:  bench_sliceline.py --rows 100000 --features 20 --seed 1 --out data.bin
Uniform card.:   bench_sliceline.py --rows 10000 --features 5 --cardinality 1000 --out data.bin
Adult demo:      bench_sliceline.py --adult-csv demo/adult/eval.csv --out adult.bin

Writes `--out` (binary, little endian: b"SLB1", u32 rows, u32 features, u32 cardinality[features],
u32 codes[features][rows] (feature-major), f64 errors[rows]) and `<out>.json` (the result below).
Runs `Slicefinder(max_l=3, other params at their defaults)` (override with --alpha/--k/--min-sup)
in a child process killed after --timeout seconds; peak RSS is the child's ru_maxrss.
Prints JSON: {rows, features, cardinalities, seconds | "timeout after S s", wall_seconds,
peak_rss_mb, params, per_level, top}. `server/benches/discover.rs` runs it and compares Strata's port
of the package and Strata's own search on the same file:
  cargo bench -p strata-server --bench discover --profile dev
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import resource
import struct
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

MIXED_CARDINALITIES = [2, 3, 5, 8, 12, 20, 50, 100, 4, 7]


def bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", float(x)))[0]


def synthetic(rows: int, features: int, seed: int, cardinality: int | None):
    """Skewed categorical codes (mixed cardinalities unless --cardinality) and 0/1 errors with a
    base rate of 3% plus four planted 1-, 2- and 3-predicate slices with high error rates."""
    rng = np.random.default_rng(seed)
    cards = [cardinality or MIXED_CARDINALITIES[f % len(MIXED_CARDINALITIES)] for f in range(features)]
    codes = []
    for c in cards:
        w = 1.0 / np.arange(1, c + 1) ** 1.1  # Zipfian: a few frequent codes, a long tail
        codes.append(rng.choice(c, size=rows, p=w / w.sum()).astype(np.uint32))
    p = np.full(rows, 0.03)
    f = lambda i: codes[i % features]  # noqa: E731
    p[f(0) == 0] = 0.8
    p[(f(1) == 0) & (f(2) == 0)] = 0.6
    p[(f(2) == 1) & (f(3) == 0) & (f(4) == 0)] = 0.9
    p[(f(5) == 0) & (f(6) == 1)] = 0.4
    errors = (rng.random(rows) < p).astype(np.float64)
    return cards, codes, errors


def adult(csv_path: str):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    # The golden file's encoding, from its generating script (server/tests/golden/sliceline/).
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "golden" / "sliceline"))
    import make_sliceline_reference as ref  # noqa: PLC0415
    import csv  # noqa: PLC0415

    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    cards, codes = [], []
    for name in ref.FEATURES:
        if name in ref.NUMERIC_EDGES:
            vals = [ref.bin_label(float(r[name]), ref.NUMERIC_EDGES[name]) for r in rows]
        else:
            vals = [r[name] if r[name] != "" else ref.MISSING for r in rows]
        cats = sorted(set(vals))
        idx = {v: i for i, v in enumerate(cats)}
        codes.append(np.array([idx[v] for v in vals], dtype=np.uint32))
        cards.append(len(cats))
    y_hat = np.array([1 if float(r[ref.SCORE_COLUMN]) >= ref.THRESHOLD else 0 for r in rows])
    errors = (y_hat != np.array([int(r["label"]) for r in rows])).astype(np.float64)
    return cards, codes, errors


def write_bin(path: str, cards, codes, errors) -> None:
    with open(path, "wb") as fh:
        fh.write(b"SLB1" + struct.pack("<II", len(errors), len(cards)))
        fh.write(np.asarray(cards, dtype="<u4").tobytes())
        for c in codes:
            fh.write(np.asarray(c, dtype="<u4").tobytes())
        fh.write(np.asarray(errors, dtype="<f8").tobytes())


def read_bin(path: str):
    buf = Path(path).read_bytes()
    assert buf[:4] == b"SLB1"
    n, nf = struct.unpack_from("<II", buf, 4)
    o = 12
    cards = np.frombuffer(buf, "<u4", nf, o).tolist()
    o += 4 * nf
    codes = np.frombuffer(buf, "<u4", n * nf, o).reshape(nf, n)
    o += 4 * n * nf
    errors = np.frombuffer(buf, "<f8", n, o).copy()
    return cards, codes, errors


def child(data: str, result: str, params: dict) -> None:
    """Run the package (in the child process) and write its result."""
    warnings.simplefilter("ignore")
    from sliceline.slicefinder import Slicefinder  # noqa: PLC0415

    _, codes, errors = read_bin(data)
    X = codes.T.astype(np.int64)
    messages = []

    class H(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    logger = logging.getLogger("sliceline.slicefinder")
    logger.addHandler(H(logging.DEBUG))
    t = time.perf_counter()
    try:
        sf = Slicefinder(verbose=True, **params).fit(X, errors)
        failure = None
    except MemoryError as exc:  # keep the per-level counts logged so far
        sf, failure = None, f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - t
    per_level = []
    for m in messages:
        if (g := re.match(r"Dropping (\d+)/(\d+) features below min_sup", m)):
            per_level.append([int(g[2]), int(g[2]) - int(g[1])])
        elif (g := re.match(r" -- valid slices after eval: (\d+)/(\d+)", m)):
            per_level.append([int(g[2]), int(g[1])])
    if failure:
        Path(result).write_text(json.dumps({"seconds": f"failed after {seconds:.1f} s ({failure})", "per_level": per_level, "top": None}))
        return
    top = []
    for sl, st in zip(sf.top_slices_, sf.top_slices_statistics_):
        top.append({"items": [[f, int(v)] for f, v in enumerate(sl) if v is not None], **st,
                    **{k + "_bits": bits(v) for k, v in st.items()}})
    Path(result).write_text(json.dumps({"seconds": seconds, "per_level": per_level, "top": top}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10000)
    ap.add_argument("--features", type=int, default=5)
    ap.add_argument("--cardinality", type=int, default=None, help="same cardinality for every feature (default: mixed)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--adult-csv", default=None, help="use the Adult demo CSV (encoded as make_sliceline_reference.py)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--mem-limit-gb", type=float, default=16.0, help="address-space cap of the child")
    ap.add_argument("--max-l", type=int, default=3)
    ap.add_argument("--alpha", type=float, default=None)
    ap.add_argument("--k", type=int, default=None)
    ap.add_argument("--min-sup", type=int, default=None)
    ap.add_argument("--child", nargs=2, metavar=("DATA", "RESULT"), help=argparse.SUPPRESS)
    ap.add_argument("--params", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1], json.loads(args.params))
        return

    if args.adult_csv:
        cards, codes, errors = adult(args.adult_csv)
    else:
        cards, codes, errors = synthetic(args.rows, args.features, args.seed, args.cardinality)
    write_bin(args.out, cards, codes, errors)
    params = {"alpha": 0.6, "k": 1, "max_l": args.max_l, "min_sup": 10}  # package defaults except max_l
    for key, val in (("alpha", args.alpha), ("k", args.k), ("min_sup", args.min_sup)):
        if val is not None:
            params[key] = val
    result = args.out + ".result.tmp"
    cmd = [sys.executable, __file__, "--out", args.out, "--child", args.out, result, "--params", json.dumps(params)]
    t = time.perf_counter()
    try:
        cap = int(args.mem_limit_gb * 2**30)
        subprocess.run(cmd, timeout=args.timeout, check=True,
                       preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (cap, cap)))
        res = json.loads(Path(result).read_text())
        Path(result).unlink()
    except subprocess.CalledProcessError as exc:
        res = {"seconds": f"failed (exit {exc.returncode}; memory cap {args.mem_limit_gb:g} GB?)", "per_level": None, "top": None}
    except subprocess.TimeoutExpired:  # subprocess.run kills and reaps the child
        res = {"seconds": f"timeout after {args.timeout:g} s", "per_level": None, "top": None}
    wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0  # KiB -> MiB on Linux
    out = {"rows": len(errors), "features": len(cards), "cardinalities": cards, "seconds": res["seconds"],
           "wall_seconds": wall, "peak_rss_mb": round(peak, 1), "params": params,
           "per_level": res["per_level"], "top": res["top"]}
    Path(args.out + ".json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
