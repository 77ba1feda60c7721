"""fairlearn reference values for the fairness view (Adult demo, score_gbt), for
`server/tests/integration/fairness_golden.rs`.

python3 server/tests/golden/make_fairness_golden.py   # writes fairness.json beside it
(needs: pip install fairlearn scikit-learn pandas pyarrow)
"""
import json
import os
import warnings

import numpy as np
import pandas as pd
from fairlearn.metrics import (MetricFrame, demographic_parity_difference, demographic_parity_ratio,
                               equal_opportunity_difference, equal_opportunity_ratio, equalized_odds_difference,
                               equalized_odds_ratio, false_negative_rate, false_positive_rate, selection_rate,
                               true_negative_rate, true_positive_rate)
from sklearn.metrics import accuracy_score, precision_score, roc_auc_score

warnings.filterwarnings("ignore")
here = os.path.dirname(os.path.abspath(__file__))
df = pd.read_parquet(os.path.join(here, "../../../demo/adult/eval.parquet"))
y = df["label"].to_numpy()
s = df["score_gbt"].to_numpy()
out = {"model": "score_gbt", "thresholds": [0.3, 0.5, 0.7], "features": {}}
for feature in ["race", "sex"]:
    g = df[feature].astype(str)
    per_t = {}
    for t in out["thresholds"]:
        pred = (s >= t).astype(int)
        mf = MetricFrame(metrics={
            "positive_rate": selection_rate,
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
            "tnr": true_negative_rate,
            "fnr": false_negative_rate,
            "precision": lambda a, b: precision_score(a, b, zero_division=np.nan),
            "fdr": lambda a, b: 1 - precision_score(a, b, zero_division=np.nan),
            "for": lambda a, b: ((a == 1) & (b == 0)).sum() / max((b == 0).sum(), 1),
            "accuracy": accuracy_score,
        }, y_true=y, y_pred=pred, sensitive_features=g)
        by_group = {grp: {m: float(v) for m, v in row.items()} for grp, row in mf.by_group.iterrows()}
        kw = dict(y_true=y, y_pred=pred, sensitive_features=g)
        per_t[str(t)] = {
            "by_group": by_group,
            "demographic_parity_difference": float(demographic_parity_difference(**kw)),
            "demographic_parity_ratio": float(demographic_parity_ratio(**kw)),
            "equal_opportunity_difference": float(equal_opportunity_difference(**kw)),
            "equal_opportunity_ratio": float(equal_opportunity_ratio(**kw)),
            "equalized_odds_difference": float(equalized_odds_difference(**kw)),
            "equalized_odds_ratio": float(equalized_odds_ratio(**kw)),
        }
    auc = MetricFrame(metrics=roc_auc_score, y_true=y, y_pred=s, sensitive_features=g)
    out["features"][feature] = {"thresholds": per_t, "auc_roc": {k: float(v) for k, v in auc.by_group.items()}}
with open(os.path.join(here, "fairness.json"), "w") as f:
    json.dump(out, f, indent=1)
