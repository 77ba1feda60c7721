//! Regression: a pass over the cells per spec.

use super::*;

/// Regression metrics per slice for one weighting of the cells.
pub(super) fn regression_pass(prep: &Prepared, spec: usize, w: &[f64]) -> Vec<BTreeMap<String, Option<f64>>> {
    let (y, p, slice_of_cell) = (&prep.y, &prep.p, &prep.slice_of_cell[spec]);
    let n = prep.keys[spec].len();
    #[derive(Clone, Default)]
    struct S { w: f64, res: f64, abs: f64, sq: f64, wy: f64, wy2: f64, ape: f64, w_ape: f64, abs_vals: Vec<(f64, f64)> }
    let mut s = vec![S::default(); n];
    for i in 0..y.len() {
        let Some(k) = slice_of_cell.get(i) else { continue };
        if w[i] <= 0.0 || !y[i].is_finite() || !p[i].is_finite() {
            continue;
        }
        let e = &mut s[k as usize];
        let r = y[i] - p[i];
        e.w += w[i];
        e.res += w[i] * r;
        e.abs += w[i] * r.abs();
        e.sq += w[i] * r * r;
        e.wy += w[i] * y[i];
        e.wy2 += w[i] * y[i] * y[i];
        if y[i] != 0.0 {
            e.ape += w[i] * (r / y[i]).abs();
            e.w_ape += w[i];
        }
        e.abs_vals.push((r.abs(), w[i]));
    }
    s.into_iter()
        .map(|mut e| {
            let r = |a: f64, b: f64| (b > 0.0).then(|| a / b);
            let ss_tot = e.wy2 - e.wy * e.wy / e.w.max(f64::MIN_POSITIVE);
            e.abs_vals.sort_by(|a, b| a.0.total_cmp(&b.0));
            // Weighted median (lower median for even totals, as numpy's median on repeated rows).
            let median = (e.w > 0.0).then(|| {
                let half = e.w / 2.0;
                let mut acc = 0.0;
                let mut out = f64::NAN;
                for (i, (v, wi)) in e.abs_vals.iter().enumerate() {
                    acc += wi;
                    if acc > half {
                        out = *v;
                        break;
                    }
                    if acc == half {
                        out = (v + e.abs_vals.get(i + 1).map(|x| x.0).unwrap_or(*v)) / 2.0;
                        break;
                    }
                }
                out
            });
            BTreeMap::from([
                ("mae".to_string(), r(e.abs, e.w)),
                ("mse".to_string(), r(e.sq, e.w)),
                ("rmse".to_string(), r(e.sq, e.w).map(f64::sqrt)),
                ("r2".to_string(), (ss_tot > 0.0).then(|| 1.0 - e.sq / ss_tot)),
                ("mean_residual".to_string(), r(e.res, e.w)),
                ("median_absolute_error".to_string(), median),
                ("mape".to_string(), r(e.ape, e.w_ape)),
            ])
        })
        .collect()
}
