#!/usr/bin/env python3
"""Generate golden reference values for the residual_stats Rust module.

Usage:  python3 server/tests/golden/make_residual_golden.py   # (re)writes residual_stats.txt beside it
(needs numpy, scipy, statsmodels, mpmath: pip install numpy scipy statsmodels mpmath)

Output format (deliberately trivial so the Rust test can parse it without any
dependency): one record per line,

    <key> <v1> <v2> ...

where every value is a float written with Python's ``repr`` (shortest string
that round-trips exactly, so Rust's ``str::parse::<f64>`` reproduces the very
same double).  Lines starting with ``#`` are comments.  Inputs (the datasets)
are written too, so the Rust side never has to reproduce numpy's RNG.

References:
  * scipy.stats.pearsonr / spearmanr / f_oneway / probplot / t.interval
  * statsmodels.stats.stattools.durbin_watson
  * statsmodels.tsa.stattools.acf(..., fft=False, adjusted=False, alpha=...)
  * mpmath (60 significant digits) for the special functions, because those
    are tested to ~1e-15 and need a reference better than double precision.
"""

import os

import mpmath
import numpy as np
import scipy
import scipy.special as sps
import statsmodels
from scipy import stats
from statsmodels.stats.stattools import durbin_watson
from statsmodels.tsa.stattools import acf

mpmath.mp.dps = 60

lines = []


def emit(key, values):
    if np.ndim(values) == 0:
        values = [values]
    vals = [float(v) for v in np.asarray(values, dtype=float).ravel()]
    for v in vals:
        if not np.isfinite(v):
            raise ValueError(f"non-finite value for {key}")
    lines.append(key + " " + " ".join(repr(v) for v in vals))


def emit_corr(prefix, x, y):
    r = stats.pearsonr(x, y)
    emit(prefix + ".pearson", [r.statistic, r.pvalue])
    s = stats.spearmanr(x, y)
    emit(prefix + ".spearman", [s.statistic, s.pvalue])


def emit_qq(prefix, resid):
    (osm, osr), (slope, intercept, r) = stats.probplot(resid, dist="norm", fit=True)
    emit(prefix + ".osm", osm)
    emit(prefix + ".osr", osr)
    emit(prefix + ".line", [slope, intercept, r])


def emit_acf(prefix, x, nlags, level):
    kw = dict(nlags=nlags, alpha=1.0 - level, fft=False, adjusted=False)
    try:  # statsmodels >= 0.15 warns unless the return type is chosen explicitly
        res = acf(x, result_object=False, **kw)
    except TypeError:
        res = acf(x, **kw)
    vals, ci = res[0], res[1]
    emit(prefix + ".values", vals)
    emit(prefix + ".lo", ci[:, 0])
    emit(prefix + ".hi", ci[:, 1])


def emit_binned(prefix, x, y, bins, level):
    """Equal-count bins exactly as the Rust code defines them: stable sort by x,
    k = min(bins, n // 2) chunks, chunk i = sorted positions [i*n//k, (i+1)*n//k)."""
    n = len(x)
    k = min(bins, n // 2)
    order = np.argsort(x, kind="stable")
    rows = []
    for i in range(k):
        idx = order[i * n // k:(i + 1) * n // k]
        xs, ys = x[idx], y[idx]
        m = len(ys)
        mean = ys.mean()
        lo, hi = stats.t.interval(level, m - 1, loc=mean, scale=stats.sem(ys))
        rows.append([xs.min(), xs.max(), xs.mean(), mean, lo, hi, m])
    emit(prefix + ".bins", np.array(rows))


def emit_eta(prefix, codes, y):
    uniq = sorted(set(codes.tolist()))
    groups = [y[codes == c] for c in uniq]
    f, p = stats.f_oneway(*groups)
    grand = y.mean()
    ssb = sum(len(g) * (g.mean() - grand) ** 2 for g in groups)
    sst = ((y - grand) ** 2).sum()
    emit(prefix + ".eta", [np.sqrt(ssb / sst), f, p, len(groups), len(y)])


def main():
    rng = np.random.default_rng(20240611)
    lines.append(f"# numpy {np.__version__} scipy {scipy.__version__} "
                 f"statsmodels {statsmodels.__version__} mpmath {mpmath.__version__}")

    # --- 1. n = 500 linear dependence + noise (moderate p-value ~1e-10) ------
    n = 500
    x = rng.normal(size=n)
    y = 0.3 * x + rng.normal(size=n)
    emit("lin.x", x)
    emit("lin.y", y)
    emit_corr("lin", x, y)
    emit("lin.dw", durbin_watson(y))
    resid = y - 0.3 * x
    emit("lin.resid", resid)
    emit_qq("lin.qq", resid)
    emit_binned("lin.b10", x, y, 10, 0.95)
    emit_binned("lin.b7", x, y, 7, 0.90)

    # --- 2. strong dependence: tiny p-value (~1e-70) tests the far tail --------
    y2 = x + rng.normal(size=n)
    emit("strong.y", y2)
    emit_corr("strong", x, y2)

    # --- 3. independent data: p-value of order 0.1-0.9 -------------------------
    y3 = rng.normal(size=n)
    emit("null.y", y3)
    emit_corr("null", x, y3)

    # --- 4. small n = 12 with ties -------------------------------------------
    tx = rng.integers(0, 5, size=12).astype(float)
    ty = (tx + rng.integers(0, 4, size=12)).astype(float)
    ty[3] += 0.5
    emit("ties.x", tx)
    emit("ties.y", ty)
    emit_corr("ties", tx, ty)
    emit("ties.rank_x", stats.rankdata(tx, method="average"))
    emit("ties.rank_y", stats.rankdata(ty, method="average"))
    emit_qq("ties.qq", ty)

    # --- 5. tiny odd-sized sample for the QQ plot -----------------------------
    q7 = rng.standard_t(df=3, size=7)
    emit("q7.x", q7)
    emit_qq("q7.qq", q7)

    # --- 6. small continuous sample for binned means (df = 3 or 4 per bin) ----
    sx = rng.uniform(0, 10, size=23)
    sy = np.sin(sx) + 0.3 * rng.normal(size=23)
    emit("small.x", sx)
    emit("small.y", sy)
    emit_binned("small.b5", sx, sy, 5, 0.99)
    emit_binned("small.b20", sx, sy, 20, 0.95)  # k = 11 bins of 2-3 points (df 1-2)

    # --- 7. AR(1) with phi = 0.6 for ACF / Durbin-Watson ----------------------
    phi = 0.6
    m = 300
    e = rng.normal(size=m)
    ar = np.empty(m)
    ar[0] = e[0] / np.sqrt(1 - phi ** 2)
    for t in range(1, m):
        ar[t] = phi * ar[t - 1] + e[t]
    ar += 5.0  # non-zero mean: acf must demean
    emit("ar1.x", ar)
    emit("ar1.dw", durbin_watson(ar - ar.mean()))
    emit("ar1.dw_raw", durbin_watson(ar))
    emit_acf("ar1.acf20", ar, 20, 0.95)
    emit_acf("ar1.acf10", ar, 10, 0.90)
    # Over-differenced noise -> negative lag-1 autocorrelation, DW ~ 3.
    neg = np.diff(rng.normal(size=201))
    emit("neg.x", neg)
    emit("neg.dw", durbin_watson(neg))
    emit_acf("neg.acf5", neg, 5, 0.99)

    # --- 8. four categories with different means (non-contiguous codes) -------
    codes_lut = np.array([3, 7, 10, 42])
    means = np.array([0.0, 0.4, 0.2, 1.0])
    gi = rng.integers(0, 4, size=200)
    gy = means[gi] + rng.normal(size=200)
    emit("grp.codes", codes_lut[gi])
    emit("grp.y", gy)
    emit_eta("grp", codes_lut[gi], gy)
    # Three categories, no effect -> moderate p-value.
    gi0 = rng.integers(0, 3, size=60)
    gy0 = rng.normal(size=60)
    emit("grp0.codes", gi0)
    emit("grp0.y", gy0)
    emit_eta("grp0", gi0, gy0)

    # --- 9. special functions (mpmath, 60 digits) -----------------------------
    erfc_x = [-3.0, -1.0, -0.3, 0.0, 1e-10, 0.1, 0.5, 0.9, 1.2, 1.2247, 1.3,
              1.7, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 26.0]
    emit("sf.erfc.x", erfc_x)
    emit("sf.erfc.v", [float(mpmath.erfc(mpmath.mpf(v))) for v in erfc_x])

    lg_x = [1e-8, 0.1, 0.5, 1.0, 1.5, 2.0, 2.5, 3.7, 10.0, 24.5, 100.0, 249.0,
            1234.5, 1e5]
    emit("sf.lgamma.x", lg_x)
    emit("sf.lgamma.v", [float(mpmath.loggamma(mpmath.mpf(v))) for v in lg_x])

    ppf_p = [1e-300, 1e-20, 1e-10, 1e-5, 0.001, 0.01, 0.02425, 0.025, 0.1, 0.3,
             0.5, 0.7, 0.9, 0.975, 0.999, 1 - 1e-10]
    emit("sf.ppf.p", ppf_p)

    def norm_ppf(p):
        # Solve log(Phi(x)) = log(p) in 60-digit arithmetic (erfinv(2p - 1) would
        # lose everything for p = 1e-300).
        p = mpmath.mpf(p)
        phi = lambda x: mpmath.erfc(-x / mpmath.sqrt(2)) / 2
        return mpmath.findroot(lambda x: mpmath.log(phi(x)) - mpmath.log(p),
                               mpmath.mpf(float(sps.ndtri(float(p)))))

    emit("sf.ppf.v", [float(norm_ppf(p)) for p in ppf_p])

    beta_cases = [(0.5, 0.5, 0.3), (2.0, 3.0, 0.4), (249.0, 0.5, 0.81),
                  (249.0, 0.5, 0.99), (0.5, 249.0, 0.001), (10.0, 10.0, 0.5),
                  (1.5, 98.5, 0.02), (30.0, 2.0, 0.999), (5.0, 0.5, 1e-6),
                  # large a, x near 1: the large-a expansion branch
                  (5e5, 1.5, 1 - 3e-6), (2e3, 12.5, 0.995), (0.5, 5e7, 2e-8)]
    emit("sf.beta.abx", np.array(beta_cases))
    emit("sf.beta.v", [float(mpmath.betainc(mpmath.mpf(a), mpmath.mpf(b), 0,
                                            mpmath.mpf(xx), regularized=True))
                       for a, b, xx in beta_cases])

    lb_cases = [(0.1, 0.2), (0.5, 0.5), (3.0, 7.0), (0.5, 9.99), (0.5, 10.0),
                (2.0, 30.0), (0.5, 5e5), (1.5, 98.5), (12.0, 40.0), (250.0, 250.0),
                (1e4, 3e6)]
    emit("sf.lbeta.ab", np.array(lb_cases))
    emit("sf.lbeta.v", [float(mpmath.log(mpmath.beta(mpmath.mpf(a), mpmath.mpf(b))))
                        for a, b in lb_cases])

    t_cases = [(0.0, 5.0), (0.5, 1.0), (2.0, 3.0), (-2.5, 10.0), (6.8, 498.0),
               (40.0, 498.0), (1.96, 1e6), (12.7062, 1.0), (100.0, 4.0),
               (5.0, 1e7), (0.01, 3e5)]
    emit("sf.t2p.tdf", np.array(t_cases))

    def t_two_sided(t, df):
        t, df = mpmath.mpf(t), mpmath.mpf(df)
        return mpmath.betainc(df / 2, mpmath.mpf(1) / 2, 0, df / (df + t * t),
                              regularized=True)

    emit("sf.t2p.v", [float(t_two_sided(t, df)) for t, df in t_cases])

    f_cases = [(0.5, 3.0, 196.0), (12.0, 3.0, 196.0), (1.0, 1.0, 1.0),
               (80.0, 2.0, 57.0), (3.0, 10.0, 20.0),
               (3.0, 4.0, 1e7), (0.5, 2.0, 1e9), (25.0, 3.0, 2e6)]
    emit("sf.fsf.fdd", np.array(f_cases))

    def f_sf(f, d1, d2):
        f, d1, d2 = mpmath.mpf(f), mpmath.mpf(d1), mpmath.mpf(d2)
        return mpmath.betainc(d2 / 2, d1 / 2, 0, d2 / (d2 + d1 * f), regularized=True)

    emit("sf.fsf.v", [float(f_sf(*c)) for c in f_cases])

    tq_cases = [(0.975, 1.0), (0.975, 2.0), (0.995, 3.0), (0.95, 4.0),
                (0.025, 9.0), (0.9, 49.0), (0.999999, 5.0), (0.6, 2.5),
                (1e-12, 7.0), (0.975, 1e6)]
    emit("sf.tq.pdf", np.array(tq_cases))
    # scipy's t.ppf (Boost) is used as the reference here, as for t.interval.
    emit("sf.tq.v", [stats.t.ppf(p, df) for p, df in tq_cases])

    # Cross-check that scipy agrees with mpmath where both are used.
    assert np.allclose(sps.erfc(erfc_x), [float(mpmath.erfc(v)) for v in erfc_x],
                       rtol=1e-13, atol=0)

    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "residual_stats.txt")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} records to {out}")


if __name__ == "__main__":
    main()
