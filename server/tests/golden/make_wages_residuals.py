"""Reference residual statistics for the GSS wages demo run (prediction_gbt), from scipy and
statsmodels, for `server/tests/integration/residuals_golden.rs`.

python3 server/tests/golden/make_wages_residuals.py   # writes wages_residuals.json beside it
"""
import json
import os

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.stattools import durbin_watson
from statsmodels.tsa.stattools import acf

here = os.path.dirname(os.path.abspath(__file__))
df = pd.read_parquet(os.path.join(here, "../../../demo/wages/eval.parquet"))
df = df[np.isfinite(df["label"]) & np.isfinite(df["prediction_gbt"])].reset_index(drop=True)
r = (df["label"] - df["prediction_gbt"]).to_numpy()
out = {"n": int(len(r)), "mean": float(r.mean()), "sd": float(r.std(ddof=1)), "features": {}}
for c in ["year", "age", "prestg10", "childs"]:
    x = df[c].to_numpy(dtype=float)
    ok = np.isfinite(x)
    s = stats.spearmanr(x[ok], r[ok])
    p = stats.pearsonr(x[ok], r[ok])
    out["features"][c] = {"spearman": float(s.statistic), "spearman_p": float(s.pvalue),
                          "pearson": float(p.statistic), "pearson_p": float(p.pvalue), "n": int(ok.sum())}
for c in ["occrecode", "wrkstat", "gender", "educcat", "maritalcat"]:
    g = df[c].fillna("(missing)")
    groups = [r[(g == v).to_numpy()] for v in sorted(g.unique())]
    f = stats.f_oneway(*groups)
    ss_between = sum(len(x) * (x.mean() - r.mean()) ** 2 for x in groups)
    ss_total = ((r - r.mean()) ** 2).sum()
    out["features"][c] = {"eta": float(np.sqrt(ss_between / ss_total)), "f": float(f.statistic), "p": float(f.pvalue)}
order = df["timestamp"].argsort(kind="stable").to_numpy()
ro = r[order]
out["durbin_watson"] = float(durbin_watson(ro))
vals, conf = acf(ro, nlags=40, alpha=0.05, fft=False, adjusted=False)
out["acf"] = [float(v) for v in vals]
out["acf_lo"] = [float(v) for v in conf[:, 0]]
with open(os.path.join(here, "wages_residuals.json"), "w") as f:
    json.dump(out, f, indent=1)
