//! Test helpers shared by the numerics' and the residual diagnostics' golden tests.

use std::collections::HashMap;

use super::special::normal_quantile;

// Golden values written by `server/tests/golden/make_residual_golden.py`
// (SciPy / statsmodels / mpmath); the path is relative to this file.
// Format: one record per line, `<key> <float> <float> ...`; `#` = comment.
const GOLDEN: &str = include_str!("../../../tests/golden/residual_stats.txt");

pub(crate) fn golden() -> HashMap<&'static str, Vec<f64>> {
    GOLDEN
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut it = l.split_whitespace();
            let key = it.next().unwrap();
            let vals = it
                .map(|v| {
                    v.parse::<f64>()
                        .unwrap_or_else(|_| panic!("bad float {v} in {key}"))
                })
                .collect();
            (key, vals)
        })
        .collect()
}

pub(crate) fn get<'a>(g: &'a HashMap<&'static str, Vec<f64>>, key: &str) -> &'a [f64] {
    g.get(key)
        .unwrap_or_else(|| panic!("golden key {key} missing"))
}

/// Relative tolerance used for everything compared with SciPy/statsmodels.
pub(crate) const REL: f64 = 1e-9;
/// Absolute floor for quantities that can be (close to) zero — never used
/// for p-values, which are compared relatively however small they are.
pub(crate) const ABS: f64 = 1e-12;

/// `|got - want| <= max(rel |want|, abs)`. Set `GOLDEN_REPORT=1` and run
/// with `--nocapture` to print the achieved relative errors.
#[track_caller]
pub(crate) fn close(what: &str, got: f64, want: f64, rel: f64, abs: f64) {
    let err = (got - want).abs();
    if std::env::var_os("GOLDEN_REPORT").is_some() {
        let r = if want != 0.0 { err / want.abs() } else { err };
        eprintln!("{what:<28} rel_err={r:.2e}");
    }
    assert!(
        err <= (rel * want.abs()).max(abs),
        "{what}: got {got:e}, want {want:e} (err {err:e})"
    );
}

#[track_caller]
pub(crate) fn close_all(what: &str, got: &[f64], want: &[f64], rel: f64, abs: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
        close(&format!("{what}[{i}]"), a, b, rel, abs);
    }
}

/// Deterministic pseudo-random numbers for the property tests (xorshift64*).
pub(crate) struct Rng(pub(crate) u64);
impl Rng {
    pub(crate) fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
    pub(crate) fn normal(&mut self) -> f64 {
        normal_quantile(self.uniform().max(1e-300))
    }
}
