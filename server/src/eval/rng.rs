//! The seeded generator of the engine's bootstrap and of the what-if attacks and tests: SplitMix64,
//! with Poisson draws for the Poisson bootstrap.

/// SplitMix64: a small, fast, seedable generator for the Poisson bootstrap.
pub(crate) struct SplitMix(pub(crate) u64);

impl SplitMix {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A Poisson(1) draw by inversion.
    pub(crate) fn poisson1(&mut self) -> f64 {
        // P(X <= k) for Poisson(1), k = 0..=9.
        const CDF: [f64; 10] = [0.36787944117144233, 0.7357588823428847, 0.9196986029286058, 0.9810118431238462, 0.9963401531726563, 0.9994058151824183, 0.9999167588507119, 0.9999897508033253, 0.9999988747974020, 0.9999998885745217];
        let u = self.uniform();
        CDF.iter().position(|c| u < *c).unwrap_or(10) as f64
    }

    /// A Poisson(`mean`) draw: the table above for mean 1 (most cells hold one row), inversion of
    /// the CDF below 10, and Hörmann's transformed rejection with squeeze (PTRS, 1993) above.
    pub(crate) fn poisson(&mut self, mean: f64) -> f64 {
        if mean == 1.0 {
            return self.poisson1();
        }
        if mean < 10.0 {
            let u = self.uniform();
            let (mut k, mut pk) = (0.0, (-mean).exp());
            let mut cdf = pk;
            while u > cdf && k < 1000.0 {
                k += 1.0;
                pk *= mean / k;
                cdf += pk;
            }
            return k;
        }
        let b = 0.931 + 2.53 * mean.sqrt();
        let a = -0.059 + 0.02483 * b;
        let inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
        let v_r = 0.9277 - 3.6224 / (b - 2.0);
        let log_mean = mean.ln();
        loop {
            let u = self.uniform() - 0.5;
            let v = self.uniform();
            let us = 0.5 - u.abs();
            if us <= 0.0 {
                continue;
            }
            let k = ((2.0 * a / us + b) * u + mean + 0.43).floor();
            if us >= 0.07 && v <= v_r {
                return k;
            }
            if k < 0.0 || (us < 0.013 && v > us) {
                continue;
            }
            if (v * inv_alpha / (a / (us * us) + b)).ln() <= -mean + k * log_mean - ln_factorial(k) {
                return k;
            }
        }
    }
}

/// ln(k!) for a whole number k >= 0: a sum below 10, Stirling's series (error < 1e-12) above.
pub(crate) fn ln_factorial(k: f64) -> f64 {
    if k < 10.0 {
        return (2..=k as u32).map(|i| (i as f64).ln()).sum();
    }
    let x = k + 1.0;
    (x - 0.5) * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI).ln() + 1.0 / (12.0 * x) - 1.0 / (360.0 * x.powi(3)) + 1.0 / (1260.0 * x.powi(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_draws_have_the_right_mean_and_variance() {
        for mean in [1.0, 0.5, 4.0, 9.5, 10.0, 37.0, 1000.0] {
            let mut r = SplitMix(11);
            let n = 40_000;
            let xs: Vec<f64> = (0..n).map(|_| r.poisson(mean)).collect();
            let m = xs.iter().sum::<f64>() / n as f64;
            let v = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64;
            // Standard error of the mean is sqrt(mean / n); allow 5 of them.
            assert!((m - mean).abs() < 5.0 * (mean / n as f64).sqrt(), "mean {m} for {mean}");
            assert!((v / mean - 1.0).abs() < 0.05, "variance {v} for {mean}");
            assert!(xs.iter().all(|x| *x >= 0.0 && x.fract() == 0.0));
        }
        assert!((ln_factorial(20.0) - 42.335616460753485).abs() < 1e-10);
        assert!((ln_factorial(9.0) - 12.801827480081469).abs() < 1e-12);
    }
}
