"""fairlearn's MetricFrame on the engine benchmark's data, for the ratio in `benches/engine.rs`.

Usage: python3 fairlearn_bench.py FILE.parquet [STEP]
Computes, per (sex, race) group and overall, at each threshold of the grid 0:1:STEP (default 0.1:
11 thresholds; one MetricFrame takes ~15 s on 1M rows here, so the 101-threshold grid would take
about 25 minutes), the four
confusion counts' rates that Strata reports (selection rate, TPR, FPR, TNR, FNR, precision,
accuracy) -- one MetricFrame per threshold, which is how fairlearn is used for a threshold sweep --
plus AUC-ROC once. Prints the wall time in seconds on the last line.
"""
import sys
import time
import warnings

import numpy as np
import pandas as pd
from fairlearn.metrics import (MetricFrame, false_negative_rate, false_positive_rate, selection_rate,
                               true_negative_rate, true_positive_rate)
from sklearn.metrics import accuracy_score, precision_score, roc_auc_score

warnings.filterwarnings("ignore")
df = pd.read_parquet(sys.argv[1], columns=["sex", "race", "label", "score_gbt"])
y = df["label"].to_numpy()
s = df["score_gbt"].to_numpy()
groups = df[["sex", "race"]]
metrics = {
    "selection_rate": selection_rate,
    "tpr": true_positive_rate,
    "fpr": false_positive_rate,
    "tnr": true_negative_rate,
    "fnr": false_negative_rate,
    "precision": lambda a, b: precision_score(a, b, zero_division=0),
    "accuracy": accuracy_score,
}
start = time.perf_counter()
step = float(sys.argv[2]) if len(sys.argv) > 2 else 0.1
for t in np.round(np.arange(0, 1.0001, step), 4):
    mf = MetricFrame(metrics=metrics, y_true=y, y_pred=(s >= t).astype(int), sensitive_features=groups)
    mf.by_group, mf.overall
auc = MetricFrame(metrics=roc_auc_score, y_true=y, y_pred=s, sensitive_features=groups)
auc.by_group
print(f"{time.perf_counter() - start:.3f}")
