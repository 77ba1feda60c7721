"""Golden log loss at the edges: scores of exactly 0 and 1 (a decile risk score / 10 reaches 1.0),
and scores within machine epsilon of them. scikit-learn (>= 1.5) clips probabilities to
[eps, 1 - eps] with eps the float64 machine epsilon (2.220446049250313e-16), and no longer
renormalises rows; Strata must give the same numbers.

Run from the repository root:  python3 server/tests/golden/make_log_loss_golden.py
(needs scikit-learn; writes server/tests/golden/log_loss_edges.json)
"""
import json
import pathlib

import numpy as np
import sklearn
from sklearn.metrics import log_loss

root = pathlib.Path(__file__).resolve().parents[3]
rng = np.random.default_rng(11)

# Binary: a decile risk score (0.0, 0.1, ..., 1.0) plus the edge values, both labels at each.
edges = [0.0, 1.0, 1e-17, 1 - 1e-17, 2e-16, 1 - 2e-16, 1e-300, 5e-324]
scores = [d / 10 for d in range(11)] + edges
rows = []
for s in scores:
    for y in (0, 1):
        rows.append({"label": y, "score": s, "group": "edge" if s in edges else "decile", "weight": float(rng.integers(1, 4))})
y = np.array([r["label"] for r in rows])
p = np.array([r["score"] for r in rows])
w = np.array([r["weight"] for r in rows])
g = np.array([r["group"] for r in rows])
binary = {
    "rows": rows,
    "overall": log_loss(y, p, labels=[0, 1]),
    "weighted": log_loss(y, p, labels=[0, 1], sample_weight=w),
    "by_group": {k: log_loss(y[g == k], p[g == k], labels=[0, 1]) for k in ("decile", "edge")},
}

# Multiclass with per-class probabilities that hit 0 and 1 exactly.
classes = ["a", "b", "c"]
probs = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [0.0, 0.25, 0.75]]
mrows = []
for pr in probs:
    for t in classes:
        mrows.append({"label": t, **{f"prob_{c}": v for c, v in zip(classes, pr)}})
my = [r["label"] for r in mrows]
mp = np.array([[r[f"prob_{c}"] for c in classes] for r in mrows])
multiclass = {"rows": mrows, "overall": log_loss(my, mp, labels=classes)}

out = {"sklearn": sklearn.__version__, "eps": float(np.finfo(np.float64).eps), "binary": binary, "multiclass": multiclass}
path = root / "server/tests/golden/log_loss_edges.json"
path.write_text(json.dumps(out, indent=1) + "\n")
print(f"wrote {path}: binary {binary['overall']:.6f}, multiclass {multiclass['overall']:.6f}")
