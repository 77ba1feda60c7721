"""scipy reference values for the drift statistics, for `server/tests/integration/drift.rs`.

The Adult demo rows split in two by time (first 8000 rows = reference, the rest = current), and
a drifted copy of the current half (age + 10 years, occupation moved to the next category in
sorted order). PSI / JS / Hellinger use Strata's bins (reference deciles, open ends, a missing
bin; categories as they are, a missing bin), computed here with numpy.

python3 server/tests/golden/make_drift_golden.py   # writes drift.json beside it
"""
import json
import os

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency, ks_2samp, kstwobign

here = os.path.dirname(os.path.abspath(__file__))
d = pd.read_parquet(os.path.join(here, "../../../demo/adult/eval.parquet"))
features = ["age", "workclass", "education", "education_num", "marital_status", "occupation", "relationship",
            "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country"]
ref, cur = d.iloc[:8000], d.iloc[8000:].copy()
drifted = cur.copy()
drifted["age"] = drifted["age"] + 10
occ = sorted(d["occupation"].dropna().unique())
drifted["occupation"] = drifted["occupation"].map(lambda v: occ[(occ.index(v) + 1) % len(occ)] if v in occ else v)


def shares(h):
    return h / max(h.sum(), 1)


def dist(hr, hc):
    r, c = shares(hr), shares(hc)
    rf, cf = np.maximum(r, 1e-4), np.maximum(c, 1e-4)
    psi = float(((cf - rf) * np.log(cf / rf)).sum())
    m = (r + c) / 2
    kl = lambda p: float(np.sum(np.where(p > 0, p * np.log2(np.where(p > 0, p, 1) / np.where(m > 0, m, 1)), 0)))
    js = float(np.sqrt(max(0.5 * kl(r) + 0.5 * kl(c), 0)))
    hell = float(np.sqrt(max(1 - np.sum(np.sqrt(r * c)), 0)))
    return psi, js, hell


def stats(a, b):
    out = {}
    for f in features:
        x, y = a[f], b[f]
        if pd.api.types.is_numeric_dtype(x):
            xs, ys = x.dropna().to_numpy(float), y.dropna().to_numpy(float)
            edges = np.unique(np.quantile(np.sort(xs), [i / 10 for i in range(1, 10)]))
            def hist(v):
                v = v.to_numpy(float)
                h = np.zeros(len(edges) + 2)
                ok = np.isfinite(v)
                np.add.at(h, np.searchsorted(edges, v[ok], side="right"), 1)
                h[-1] = (~ok).sum()
                return h
            ks = ks_2samp(xs, ys, method="asymp")
            # Strata reports the classical asymptotic p-value: Kolmogorov's limiting distribution at
            # sqrt(n m / (n + m)) D (scipy.stats.kstwobign). (ks_2samp's "asymp" uses kstwo with
            # n = round(n m / (n + m)) instead; the two differ in the third digit for mid-range p.)
            en = len(xs) * len(ys) / (len(xs) + len(ys))
            p = float(kstwobign.sf(np.sqrt(en) * ks.statistic))
            psi, js, hell = dist(hist(x), hist(y))
            out[f] = {"test": "ks", "statistic": float(ks.statistic), "p": p, "psi": psi, "js": js, "hellinger": hell}
        else:
            cats = sorted(set(x.dropna()) | set(y.dropna()))
            def hist(v):
                h = np.array([(v == c).sum() for c in cats] + [0, v.isna().sum()], dtype=float)
                return h
            hr, hc = hist(x), hist(y)
            keep = (hr + hc) > 0
            chi2, p, _, _ = chi2_contingency(np.vstack([hr[keep], hc[keep]]), correction=False)
            psi, js, hell = dist(hr, hc)
            out[f] = {"test": "chi2", "statistic": float(chi2), "p": float(p), "psi": psi, "js": js, "hellinger": hell}
    return out


with open(os.path.join(here, "drift.json"), "w") as fh:
    json.dump({"natural": stats(ref, cur), "drifted": stats(ref, drifted)}, fh, indent=1)
