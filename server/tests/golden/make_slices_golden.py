"""Golden per-slice metrics for Strata's engine, from scikit-learn on the demo data.

Run from the repository root:  python3 server/tests/golden/make_slices_golden.py
(needs scikit-learn, pandas, pyarrow; writes server/tests/golden/slices.json)
"""
import json
import pathlib

import numpy as np
import pandas as pd
from sklearn import metrics as skm

root = pathlib.Path(__file__).resolve().parents[3]
out = {"binary": {}, "regression": {}}
THRESHOLDS = [0.3, 0.5, 0.7]

adult = pd.read_parquet(root / "demo/adult/eval.parquet")
adult["age_bucket"] = pd.cut(adult["age"], [-np.inf, 30, 45, 60, np.inf], right=False,
                             labels=["(-inf, 30)", "[30, 45)", "[45, 60)", "[60, inf)"]).astype(str)


def binary_metrics(g, model):
    y, p = g["label"].to_numpy(), g[model].to_numpy()
    res = {"count": int(len(g)), "auc_roc": skm.roc_auc_score(y, p), "auc_pr": skm.average_precision_score(y, p),
           "log_loss": skm.log_loss(y, p, labels=[0, 1]), "brier_score": skm.brier_score_loss(y, p),
           "base_rate": float(y.mean()), "mean_score": float(p.mean()), "at": {}}
    for t in THRESHOLDS:
        d = (p >= t).astype(int)
        tn, fp, fn, tp = skm.confusion_matrix(y, d, labels=[0, 1]).ravel()
        res["at"][str(t)] = {
            "tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn),
            "accuracy": skm.accuracy_score(y, d), "precision": skm.precision_score(y, d, zero_division=0),
            "recall": skm.recall_score(y, d), "f1": skm.f1_score(y, d), "mcc": skm.matthews_corrcoef(y, d),
            "balanced_accuracy": skm.balanced_accuracy_score(y, d),
            "fpr": fp / (fp + tn), "tnr": tn / (tn + fp), "fnr": fn / (fn + tp), "positive_rate": float(d.mean()),
        }
    return res


for spec, col in [("sex", "sex"), ("race", "race"), ("age:[30,45,60]", "age_bucket")]:
    for value, g in adult.groupby(col):
        out["binary"][f"{spec}|{value}"] = binary_metrics(g, "score_gbt")
out["binary"]["overall|"] = binary_metrics(adult, "score_gbt")

wages = pd.read_parquet(root / "demo/wages/eval.parquet")
for value, g in wages.groupby("gender"):
    y, p = g["label"].to_numpy(), g["prediction_gbt"].to_numpy()
    out["regression"][f"gender|{value}"] = {
        "count": int(len(g)), "mae": skm.mean_absolute_error(y, p), "mse": skm.mean_squared_error(y, p),
        "rmse": float(np.sqrt(skm.mean_squared_error(y, p))), "r2": skm.r2_score(y, p),
        "mean_residual": float((y - p).mean()), "median_absolute_error": skm.median_absolute_error(y, p),
        "mape": skm.mean_absolute_percentage_error(y, p),
    }

path = pathlib.Path(__file__).with_name("slices.json")
path.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
print(f"wrote {path}")
