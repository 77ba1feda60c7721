//! Numerics shared by the engine's modules, written once: quantiles, the Wilson interval, normal
//! p-values, and (in [`special`]) the special functions and distributions.

pub mod special;
#[cfg(test)]
pub(crate) mod test_support;

pub use special::{erfc, normal_cdf, normal_quantile};

/// Linear-interpolation quantile (numpy's default) of sorted values; NaN when empty.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos.fract());
    if i + 1 < sorted.len() { sorted[i] + frac * (sorted[i + 1] - sorted[i]) } else { sorted[i] }
}

/// Wilson score interval for a proportion `p` of `n` trials at normal quantile `z`.
pub fn wilson(p: f64, n: f64, z: f64) -> (f64, f64) {
    if n <= 0.0 {
        return (f64::NAN, f64::NAN);
    }
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Two-sided p-value of a standard normal statistic: erfc(|z|/√2).
pub fn two_sided_p(z: f64) -> f64 {
    erfc(z.abs() / std::f64::consts::SQRT_2).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_helpers() {
        assert!((normal_quantile(0.975) - 1.959963984540054).abs() < 1e-8);
        assert!((two_sided_p(1.959963984540054) - 0.05).abs() < 1e-6);
        let (lo, hi) = wilson(0.5, 100.0, 1.959963984540054);
        assert!((lo - 0.4038315).abs() < 1e-6 && (hi - 0.5961685).abs() < 1e-6);
    }

    #[test]
    fn quantiles_interpolate() {
        assert_eq!(quantile_sorted(&[1., 2., 3., 4.], 0.5), 2.5);
        assert_eq!(quantile_sorted(&[7.], 0.9), 7.0);
    }
}
