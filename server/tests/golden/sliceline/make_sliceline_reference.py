#!/usr/bin/env python3
"""Generate the SliceLine golden file (adult.json) with the reference `sliceline` package.

Usage: python3 make_sliceline_reference.py [--csv PATH] [--out PATH]

Reads the Adult demo evaluation set (default: ../../../demo/adult/eval.csv relative to this script,
i.e. demo/adult/eval.csv in the repository), builds 13 categorical features (8 text columns with
missing values as "(missing)", 5 numeric columns binned with fixed edges), takes as error the 0/1
misclassification of `score_logreg` at threshold 0.5 (y_hat = 1 iff score >= 0.5) against `label`,
and runs `sliceline.Slicefinder` with its defaults and with (alpha=0.95, k=10, max_l=3,
min_sup=100). Also runs a few small handmade cases (ties, a slice made only of errors, min_sup edge,
non-dyadic float errors, no valid slice). Everything the package reports is stored at full float
precision (floats additionally as IEEE-754 bit patterns, `*_bits`, for exact comparison).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.metadata
import inspect
import json
import logging
import math
import platform
import re
import struct
import warnings
from pathlib import Path

import numpy as np
import sklearn
from sliceline.slicefinder import Slicefinder

warnings.simplefilter("ignore")

TEXT_COLUMNS = ["workclass", "education", "marital_status", "occupation", "relationship", "race", "sex", "native_country"]
# Fixed bin edges: bin i holds edges[i-1] <= x < edges[i] (edges[-1] = -inf, edges[len] = +inf).
NUMERIC_EDGES = {
    "age": [25, 35, 45, 55, 65],
    "education_num": [9, 10, 13],
    "hours_per_week": [35, 41, 50],
    "capital_gain": [1, 5000],
    "capital_loss": [1],
}
# Feature order = column order of the CSV.
FEATURES = ["age", "workclass", "education", "education_num", "marital_status", "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country"]
MISSING = "(missing)"
SCORE_COLUMN, THRESHOLD = "score_logreg", 0.5


def bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", float(x)))[0]


def fmt_edge(e) -> str:
    if e == -math.inf:
        return "-inf"
    if e == math.inf:
        return "inf"
    return str(int(e)) if float(e).is_integer() else repr(float(e))


def bin_label(x: float, edges: list) -> str:
    lo, hi = -math.inf, math.inf
    for e in edges:
        if x < e:
            hi = e
            break
        lo = e
    return f"{'(' if lo == -math.inf else '['}{fmt_edge(lo)}, {fmt_edge(hi)})"


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def run(X: np.ndarray, errors: np.ndarray, params: dict) -> dict:
    """Fit Slicefinder; return the package's output plus per-level counts parsed from its log."""
    logger = logging.getLogger("sliceline.slicefinder")
    cap = _Capture()
    logger.addHandler(cap)
    try:
        sf = Slicefinder(verbose=True, **params).fit(X, errors)
    finally:
        logger.removeHandler(cap)
    per_level = []
    for m in cap.messages:
        if (g := re.match(r"Dropping (\d+)/(\d+) features below min_sup", m)):
            per_level.append([int(g[2]), int(g[2]) - int(g[1])])
        elif (g := re.match(r" -- valid slices after eval: (\d+)/(\d+)", m)):
            per_level.append([int(g[2]), int(g[1])])
    cats = [list(c) for c in sf._one_hot_encoder.categories_]
    top = []
    for sl, st in zip(sf.top_slices_, sf.top_slices_statistics_):
        items = [[f, cats[f].index(v)] for f, v in enumerate(sl) if v is not None]
        top.append({
            "values": [None if v is None else (v.item() if hasattr(v, "item") else v) for v in sl],
            "items": items,
            **{k: v for k, v in st.items()},
            **{k + "_bits": bits(v) for k, v in st.items()},
        })
    return {
        "params": params,
        "average_error": sf.average_error_,
        "average_error_bits": bits(sf.average_error_),
        "categories": [[c.item() if hasattr(c, "item") else c for c in cs] for cs in cats],
        "per_level": per_level,
        "top": top,
    }


def handmade_cases() -> list:
    cases = []

    def add(name, note, codes, errors, params, cardinalities=None):
        codes = [list(map(int, c)) for c in codes]
        errors = [float(e) for e in errors]
        X = np.array(codes, dtype=np.int64).T  # integer codes: encoder categories = sorted observed codes
        res = run(X, np.array(errors), params)
        # items in the caller's code space (the values), not the encoder's column index
        for s in res["top"]:
            s["items"] = [[f, int(v)] for f, v in enumerate(s["values"]) if v is not None]
        cases.append({
            "name": name, "note": note, "codes": codes,
            "cardinalities": cardinalities or [max(c) + 1 for c in codes],
            "errors": errors, "errors_bits": [bits(e) for e in errors], **res,
        })

    # 1. Ties: two features with identical structure -> equal scores; k=1 returns all tied slices.
    a = [0] * 10 + [1] * 10 + [2] * 10
    b = [1] * 10 + [0] * 10 + [2] * 10
    e = [1] * 6 + [0] * 4 + [1] * 6 + [0] * 4 + [0] * 10
    add("ties_k1", "4 one-predicate slices tie (f0=0,f0=1,f1=0,f1=1): k=1 keeps all ties, lexsort order",
        [a, b], e, {"alpha": 0.95, "k": 1, "max_l": 2, "min_sup": 1})
    add("ties_k3", "same data, k=3: rank-min <= 3 keeps all 4 tied slices",
        [a, b], e, {"alpha": 0.95, "k": 3, "max_l": 2, "min_sup": 1})
    c = [0] * 5 + [1] * 5 + [2] * 5 + [3] * 5 + [4] * 20
    d = [i % 2 for i in range(40)]
    e = [1] * 5 + [1, 1, 1, 1, 0] + [1, 1, 1, 1, 0] + [1, 1, 1, 1, 0] + [0] * 20
    add("ties_at_k", "f0=0 best; f0=1,2,3 tie for rank 2 with k=2, max_l=1: all kept (4 slices)",
        [c, d], e, {"alpha": 0.95, "k": 2, "max_l": 1, "min_sup": 1})
    # 2. A slice made only of errors (avg error in slice 1, max error 1).
    f0 = [0] * 8 + [1] * 12 + [2] * 20
    f1 = [i % 3 for i in range(40)]
    f2 = [i % 2 for i in range(40)]
    e = [1] * 8 + [1 if i % 5 == 0 else 0 for i in range(32)]
    add("all_error_slice", "f0=0 has only errors", [f0, f1, f2], e,
        {"alpha": 0.9, "k": 4, "max_l": 3, "min_sup": 2})
    # 3. min_sup edge: slices of size exactly min_sup kept, min_sup-1 dropped.
    f0 = [0] * 5 + [1] * 4 + [2] * 31
    f1 = [0, 1] * 20
    e = [1] * 5 + [1] * 4 + [1 if i % 4 == 0 else 0 for i in range(31)]
    add("min_sup_edge_5", "f0=0 has 5 rows (= min_sup, kept), f0=1 has 4 (dropped)", [f0, f1], e,
        {"alpha": 0.8, "k": 3, "max_l": 2, "min_sup": 5})
    add("min_sup_edge_4", "same data, min_sup=4: f0=1 now eligible", [f0, f1], e,
        {"alpha": 0.8, "k": 3, "max_l": 2, "min_sup": 4})
    # 4. Non-dyadic float errors, more features, unobserved code (cardinality 7 for feature 3).
    rng = np.random.default_rng(20240601)
    n = 600
    cards = [3, 4, 5, 6, 2, 8]
    codes = [rng.integers(0, c, n) for c in cards]
    codes[3] = np.where(codes[3] == 3, 6, codes[3])  # code 3 never occurs, code 6 does
    cards[3] = 7
    err = rng.random(n) * 0.3
    hot = (codes[0] == 1) & (codes[2] == 2)
    err = np.where(hot, err + rng.random(n) * 0.9, err)
    hot2 = (codes[1] == 3) & (codes[4] == 0) & (codes[5] < 3)
    err = np.where(hot2, err + 0.55, err)
    add("float_errors", "random float errors; exact sums in row order; unobserved code 3 of feature 3",
        codes, err, {"alpha": 0.9, "k": 6, "max_l": 4, "min_sup": 5}, cardinalities=cards)
    add("float_errors_defaults", "same data, package defaults", codes, err,
        {"alpha": 0.6, "k": 1, "max_l": 4, "min_sup": 10}, cardinalities=cards)
    # 6. Lossy package ids: prod(d+1) > 2^53, so the package's float ids collide and it merges
    #    distinct candidates (visible in per_level); the port must replay that.
    rng = np.random.default_rng(7)
    n = 400
    cards = [2, 30, 3, 25, 5, 20, 8, 30, 12, 4, 28, 7, 30, 6, 26, 9]
    codes = [rng.integers(0, c, n) for c in cards]
    err = (rng.random(n) < np.where((codes[0] == 0) & (codes[2] == 1), 0.7, 0.15)).astype(float)
    add("lossy_ids", "16 features, prod(d+1) ~ 1e19 > 2^53: package ids collide",
        codes, err, {"alpha": 0.95, "k": 5, "max_l": 3, "min_sup": 3})
    # 5. No errors at all -> no slice.
    add("no_errors", "all errors 0: nothing found", [[0, 1, 0, 1] * 5, [0, 0, 1, 1] * 5], [0.0] * 20,
        {"alpha": 0.6, "k": 2, "max_l": 2, "min_sup": 1})
    # 6. Score ties across levels, k=2: a 2-predicate slice equal to a 1-predicate one.
    f0 = [0] * 10 + [1] * 10
    f1 = [0] * 10 + [1] * 10
    e = [1] * 7 + [0] * 13
    add("duplicate_rowsets", "f0 and f1 identical: f0=0, f1=0 and f0=0&f1=0 tie; k=2", [f0, f1], e,
        {"alpha": 0.6, "k": 2, "max_l": 2, "min_sup": 1})
    return cases


def main() -> None:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", default=str(here / "../../../demo/adult/eval.csv"))
    ap.add_argument("--out", default=str(here / "adult.json"))
    args = ap.parse_args()

    raw = Path(args.csv).read_bytes()
    with open(args.csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    columns = []
    for name in FEATURES:
        if name in NUMERIC_EDGES:
            columns.append([bin_label(float(r[name]), NUMERIC_EDGES[name]) for r in rows])
        else:
            columns.append([r[name] if r[name] != "" else MISSING for r in rows])
    X = np.array(columns, dtype=object).T
    y_hat = np.array([1 if float(r[SCORE_COLUMN]) >= THRESHOLD else 0 for r in rows])
    label = np.array([int(r["label"]) for r in rows])
    errors = (y_hat != label).astype(np.float64)

    configs = []
    sig = inspect.signature(Slicefinder.__init__).parameters
    defaults = {k: sig[k].default for k in ("alpha", "k", "max_l", "min_sup")}
    for name, params in [("defaults", defaults), ("alpha095_k10_l3_sup100", {"alpha": 0.95, "k": 10, "max_l": 3, "min_sup": 100})]:
        res = run(X, errors, params)
        configs.append({"name": name, **res})
    categories = configs[0]["categories"]
    for f, name in enumerate(FEATURES):
        assert categories[f] == sorted(set(X[:, f])), name

    out = {
        "generator": "make_sliceline_reference.py",
        "versions": {"python": platform.python_version(), "sliceline": importlib.metadata.version("sliceline"),
                     "numpy": np.__version__, "sklearn": sklearn.__version__,
                     "numba": "not installed (package's NumPy code paths)"},
        "data": {"csv": "demo/adult/eval.csv", "rows": len(rows), "sha256": hashlib.sha256(raw).hexdigest()},
        "errors": {"rule": "error = 1 if (score_logreg >= 0.5) != label else 0", "score_column": SCORE_COLUMN,
                   "threshold": THRESHOLD, "sum": float(errors.sum())},
        "binning": "bin i: edges[i-1] <= x < edges[i]; labels '(-inf, a)', '[a, b)', '[b, inf)'",
        "missing": MISSING,
        "features": [
            {"name": name, "kind": "numeric" if name in NUMERIC_EDGES else "text",
             **({"edges": NUMERIC_EDGES[name]} if name in NUMERIC_EDGES else {}),
             "categories": categories[f]}
            for f, name in enumerate(FEATURES)
        ],
        "package_defaults": defaults,
        "configs": [{k: v for k, v in c.items() if k != "categories"} for c in configs],
        "handmade": handmade_cases(),
    }
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    for c in configs:
        print(c["name"], c["params"], "per_level", c["per_level"])
        for s in c["top"]:
            print("  ", {FEATURES[f]: categories[f][v] for f, v in s["items"]}, s["slice_score"], s["sum_slice_error"], s["slice_size"])


if __name__ == "__main__":
    main()
