"""Golden values for Strata's headline metrics, computed with scikit-learn on the demo data.

Run from the repository root:  python3 server/tests/golden/make_golden.py
(needs scikit-learn, pandas, pyarrow from PyPI; writes server/tests/golden/headline.json)
"""
import json
import pathlib

import numpy as np
import pandas as pd
from sklearn import metrics

root = pathlib.Path(__file__).resolve().parents[3]
out = {}

adult = pd.read_parquet(root / "demo/adult/eval.parquet")
y = adult["label"].to_numpy()
for m in ["score_logreg", "score_gbt"]:
    p = adult[m].to_numpy()
    out[f"adult/{m}"] = {
        "accuracy": metrics.accuracy_score(y, (p >= 0.5).astype(int)),
        "auc_roc": metrics.roc_auc_score(y, p),
        "log_loss": metrics.log_loss(y, p),
        "brier_score": metrics.brier_score_loss(y, p),
        "base_rate": float(y.mean()),
        "mean_score": float(p.mean()),
    }

wages = pd.read_parquet(root / "demo/wages/eval.parquet")
y = wages["label"].to_numpy()
for m in ["prediction_linear", "prediction_gbt"]:
    p = wages[m].to_numpy()
    out[f"wages/{m}"] = {
        "mae": metrics.mean_absolute_error(y, p),
        "rmse": float(np.sqrt(metrics.mean_squared_error(y, p))),
        "r2": metrics.r2_score(y, p),
        "mean_residual": float((y - p).mean()),
    }

# A weighted case: weights 1..n cycling over 1, 2, 3 on the adult logreg scores.
w = np.arange(len(adult)) % 3 + 1
y = adult["label"].to_numpy()
p = adult["score_logreg"].to_numpy()
out["adult/score_logreg/weighted"] = {
    "accuracy": metrics.accuracy_score(y, (p >= 0.5).astype(int), sample_weight=w),
    "auc_roc": metrics.roc_auc_score(y, p, sample_weight=w),
    "log_loss": metrics.log_loss(y, p, sample_weight=w),
    "brier_score": metrics.brier_score_loss(y, p, sample_weight=w),
}

path = pathlib.Path(__file__).with_name("headline.json")
path.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
print(f"wrote {path}")
