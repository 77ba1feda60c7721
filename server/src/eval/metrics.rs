//! Weighted metric definitions, following scikit-learn's (checked against it in the golden tests).

/// Binary classification: label in {0, 1}, score = P(label = 1), weight >= 0.
pub struct Binary<'a> {
    y: &'a [f64],
    p: &'a [f64],
    w: &'a [f64],
}

/// Undefined when no weight is present.
fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0).then(|| num / den)
}

impl<'a> Binary<'a> {
    pub fn new(y: &'a [f64], p: &'a [f64], w: &'a [f64]) -> Self {
        Binary { y, p, w }
    }

    fn rows(&self) -> impl Iterator<Item = (f64, f64, f64)> + '_ {
        self.y.iter().zip(self.p).zip(self.w).map(|((y, p), w)| (*y, *p, *w)).filter(|(y, p, _)| y.is_finite() && p.is_finite())
    }

    /// Share of weight whose decision `score >= threshold` equals the label.
    pub fn accuracy_at(&self, threshold: f64) -> Option<f64> {
        let (mut hit, mut total) = (0.0, 0.0);
        for (y, p, w) in self.rows() {
            total += w;
            if (p >= threshold) == (y == 1.0) {
                hit += w;
            }
        }
        ratio(hit, total)
    }

    /// Area under the ROC curve; tied scores form one step (trapezoid), as in scikit-learn.
    pub fn auc_roc(&self) -> Option<f64> {
        let mut rows: Vec<(f64, f64, f64)> = self.rows().collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        let (pos, neg) = rows.iter().fold((0.0, 0.0), |(p, n), (y, _, w)| if *y == 1.0 { (p + w, n) } else { (p, n + w) });
        if pos <= 0.0 || neg <= 0.0 {
            return None;
        }
        let (mut tp, mut fp, mut area) = (0.0, 0.0, 0.0);
        let mut i = 0;
        while i < rows.len() {
            let (tp0, fp0) = (tp, fp);
            let s = rows[i].1;
            while i < rows.len() && rows[i].1 == s {
                if rows[i].0 == 1.0 {
                    tp += rows[i].2;
                } else {
                    fp += rows[i].2;
                }
                i += 1;
            }
            area += (fp - fp0) * (tp + tp0) / 2.0;
        }
        Some(area / (pos * neg))
    }

    /// Mean negative log-likelihood, probabilities clipped to [1e-15, 1 - 1e-15].
    pub fn log_loss(&self) -> Option<f64> {
        let (mut s, mut total) = (0.0, 0.0);
        for (y, p, w) in self.rows() {
            let p = p.clamp(1e-15, 1.0 - 1e-15);
            s -= w * if y == 1.0 { p.ln() } else { (1.0 - p).ln() };
            total += w;
        }
        ratio(s, total)
    }

    pub fn brier_score(&self) -> Option<f64> {
        let (mut s, mut total) = (0.0, 0.0);
        for (y, p, w) in self.rows() {
            s += w * (p - y) * (p - y);
            total += w;
        }
        ratio(s, total)
    }

    /// Weighted share of positive labels.
    pub fn base_rate(&self) -> Option<f64> {
        let (mut s, mut total) = (0.0, 0.0);
        for (y, _, w) in self.rows() {
            s += w * y;
            total += w;
        }
        ratio(s, total)
    }

    pub fn mean_score(&self) -> Option<f64> {
        let (mut s, mut total) = (0.0, 0.0);
        for (_, p, w) in self.rows() {
            s += w * p;
            total += w;
        }
        ratio(s, total)
    }
}

/// Regression: label and prediction are real numbers.
pub struct Regression<'a> {
    y: &'a [f64],
    p: &'a [f64],
    w: &'a [f64],
}

impl<'a> Regression<'a> {
    pub fn new(y: &'a [f64], p: &'a [f64], w: &'a [f64]) -> Self {
        Regression { y, p, w }
    }

    fn rows(&self) -> impl Iterator<Item = (f64, f64, f64)> + '_ {
        self.y.iter().zip(self.p).zip(self.w).map(|((y, p), w)| (*y, *p, *w)).filter(|(y, p, _)| y.is_finite() && p.is_finite())
    }

    fn weighted_mean(&self, f: impl Fn(f64, f64) -> f64) -> Option<f64> {
        let (mut s, mut total) = (0.0, 0.0);
        for (y, p, w) in self.rows() {
            s += w * f(y, p);
            total += w;
        }
        ratio(s, total)
    }

    pub fn mae(&self) -> Option<f64> {
        self.weighted_mean(|y, p| (y - p).abs())
    }

    pub fn mse(&self) -> Option<f64> {
        self.weighted_mean(|y, p| (y - p) * (y - p))
    }

    pub fn rmse(&self) -> Option<f64> {
        self.mse().map(f64::sqrt)
    }

    /// Mean of `label - prediction`: positive means the model under-predicts.
    pub fn mean_residual(&self) -> Option<f64> {
        self.weighted_mean(|y, p| y - p)
    }

    /// Coefficient of determination, `1 - SS_res / SS_tot` (weighted).
    pub fn r2(&self) -> Option<f64> {
        let mean_y = self.weighted_mean(|y, _| y)?;
        let (mut res, mut tot) = (0.0, 0.0);
        for (y, p, w) in self.rows() {
            res += w * (y - p) * (y - p);
            tot += w * (y - mean_y) * (y - mean_y);
        }
        (tot > 0.0).then(|| 1.0 - res / tot)
    }
}

/// Linear-interpolation quantile (numpy's default) of sorted values; NaN when empty.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos.fract());
    if i + 1 < sorted.len() { sorted[i] + frac * (sorted[i + 1] - sorted[i]) } else { sorted[i] }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: f64) {
        let a = a.expect("defined");
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    // Small hand-checked cases; the golden tests compare with scikit-learn on the demo data.
    #[test]
    fn auc_handles_ties_like_sklearn() {
        // sklearn.metrics.roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
        let ones = [1.0; 4];
        close(Binary::new(&[0., 0., 1., 1.], &[0.1, 0.4, 0.35, 0.8], &ones).auc_roc(), 0.75);
        // All scores tied: 0.5.
        close(Binary::new(&[0., 1., 0., 1.], &[0.5; 4], &ones).auc_roc(), 0.5);
        assert_eq!(Binary::new(&[1., 1.], &[0.2, 0.3], &[1., 1.]).auc_roc(), None);
    }

    #[test]
    fn weights_equal_repeated_rows() {
        let b1 = Binary::new(&[0., 1., 1.], &[0.2, 0.7, 0.4], &[1., 3., 1.]);
        let b2 = Binary::new(&[0., 1., 1., 1., 1.], &[0.2, 0.7, 0.7, 0.7, 0.4], &[1.; 5]);
        close(b1.log_loss(), b2.log_loss().unwrap());
        close(b1.accuracy_at(0.5), b2.accuracy_at(0.5).unwrap());
        close(b1.auc_roc(), b2.auc_roc().unwrap());
    }

    #[test]
    fn regression_basics() {
        let r = Regression::new(&[1., 2., 3.], &[1., 2., 5.], &[1.; 3]);
        close(r.mae(), 2.0 / 3.0);
        close(r.rmse(), (4.0f64 / 3.0).sqrt());
        close(r.r2(), 1.0 - 4.0 / 2.0);
        close(r.mean_residual(), -2.0 / 3.0);
    }

    #[test]
    fn quantiles_interpolate() {
        assert_eq!(quantile_sorted(&[1., 2., 3., 4.], 0.5), 2.5);
        assert_eq!(quantile_sorted(&[7.], 0.9), 7.0);
    }
}
