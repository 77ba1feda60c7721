//! ADWIN: adaptive windowing over a stream (see [`Adwin`]).

use std::collections::VecDeque;

use super::Signal;

/// Summary of `2^row` consecutive elements: their sum and their sum of squared deviations from
/// their own mean.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    total: f64,
    variance: f64,
}

/// ADWIN: keeps the longest recent window in which no two sub-windows have significantly
/// different means.
///
/// **The window.** Elements are stored in an exponential histogram: row `i` of `rows` holds
/// buckets that each summarise `2^i` consecutive elements (their sum and sum of squared
/// deviations), oldest first. A new element enters row 0 as a bucket of one; when a row holds
/// `max_buckets + 1` buckets, its two oldest merge into one bucket of the next row (Chan et al.'s
/// pairwise formula for the combined squared deviations), which can cascade. The window of `W`
/// elements thus takes `O(max_buckets · log W)` memory, and the only cut points ADWIN considers
/// are bucket boundaries.
///
/// **The test.** Every `clock` elements, once the window is longer than `grace_period`, each
/// bucket boundary splits the window into an older part `W0` (`n0` elements) and a newer part
/// `W1` (`n1`), scanning from the oldest boundary forward. A cut is significant when both parts
/// hold at least `min_window_length` elements and
///
/// ```text
/// |mean(W0) − mean(W1)| > sqrt(2 · m · σ² · δ') + (2/3) · δ' · m,
///     m  = 1/(n0 − min_window_length + 1) + 1/(n1 − min_window_length + 1),
///     δ' = ln(2 · ln(W) / delta),   σ² = the variance of the whole window,
/// ```
///
/// the Bernstein-type bound of the paper (section 4, the ADWIN2 version as in MOA and river).
/// On a significant cut the oldest bucket is dropped and the scan starts over, until no cut is
/// significant; the element is then reported as [`Signal::Drift`].
///
/// **After a drift** the next `update` starts from an empty window, as `river.drift.ADWIN` does
/// (the paper instead keeps the shrunken window). Between the two, `width`, `estimation` and
/// `variance` describe the shrunken window. ADWIN has no warning zone.
///
/// The arithmetic (order of the floating-point operations included) follows river, so that the
/// same stream gives the same detections and the same window, bit for bit.
#[derive(Clone, Debug)]
pub struct Adwin {
    pub delta: f64,
    pub clock: usize,
    pub max_buckets: usize,
    pub min_window_length: usize,
    pub grace_period: usize,
    /// `rows[i]`: buckets of `2^i` elements, oldest first; the last row holds the oldest data.
    rows: Vec<VecDeque<Bucket>>,
    width: usize,
    total: f64,
    /// Sum of squared deviations from the window mean.
    variance: f64,
    tick: usize,
    drifted: bool,
}

impl Default for Adwin {
    fn default() -> Self {
        Adwin::new(0.002, 32, 5, 5, 10)
    }
}

impl Adwin {
    /// `delta`: confidence of the cut test (smaller = fewer, later detections); `clock`: test every
    /// this many elements; `max_buckets`: buckets per histogram row before two merge;
    /// `min_window_length`: least elements on each side of a cut; `grace_period`: no test until the
    /// window is longer than this.
    pub fn new(delta: f64, clock: usize, max_buckets: usize, min_window_length: usize, grace_period: usize) -> Self {
        assert!(delta > 0.0 && delta < 1.0, "delta in (0, 1)");
        assert!(clock >= 1 && max_buckets >= 1, "clock and max_buckets at least 1");
        Adwin {
            delta,
            clock,
            max_buckets,
            min_window_length,
            grace_period,
            rows: vec![VecDeque::with_capacity(max_buckets + 1)],
            width: 0,
            total: 0.0,
            variance: 0.0,
            tick: 0,
            drifted: false,
        }
    }

    fn reset(&mut self) {
        *self = Adwin::new(self.delta, self.clock, self.max_buckets, self.min_window_length, self.grace_period);
    }

    /// Number of elements in the window.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Mean of the window (0 when empty).
    pub fn estimation(&self) -> f64 {
        if self.width == 0 { 0.0 } else { self.total / self.width as f64 }
    }

    /// Population variance of the window (0 when empty). river's `ADWIN.variance` property is the
    /// sum of squared deviations, i.e. this times `width()`.
    pub fn variance(&self) -> f64 {
        if self.width == 0 { 0.0 } else { self.variance / self.width as f64 }
    }

    /// Adds one element; [`Signal::Drift`] when the window was cut at this element.
    pub fn update(&mut self, x: f64) -> Signal {
        if self.drifted {
            self.reset();
        }
        self.insert(x);
        self.tick += 1;
        if self.tick.is_multiple_of(self.clock) && self.width > self.grace_period {
            // Shrink until no cut is significant.
            while self.significant_cut_exists() {
                self.drop_oldest_bucket();
                self.drifted = true;
            }
        }
        if self.drifted { Signal::Drift } else { Signal::Stable }
    }

    fn insert(&mut self, x: f64) {
        self.rows[0].push_back(Bucket { total: x, variance: 0.0 });
        // Welford's update of the sum of squared deviations.
        self.width += 1;
        let w = self.width as f64;
        if self.width > 1 {
            let d = x - self.total / (w - 1.0);
            self.variance += (w - 1.0) * d * d / w;
        }
        self.total += x;
        // Merge the two oldest buckets of any overfull row into the next row, cascading up.
        let mut row = 0;
        while self.rows[row].len() > self.max_buckets {
            let size = (1u64 << row) as f64;
            let a = self.rows[row].pop_front().expect("overfull row");
            let b = self.rows[row].pop_front().expect("overfull row");
            let (mean_a, mean_b) = (a.total / size, b.total / size);
            // Squared deviations of the union: both parts' own plus n_a·n_b/(n_a+n_b)·Δmean².
            let merged = Bucket { total: a.total + b.total, variance: a.variance + b.variance + size * 0.5 * (mean_a - mean_b) * (mean_a - mean_b) };
            if row + 1 == self.rows.len() {
                self.rows.push(VecDeque::with_capacity(self.max_buckets + 1));
            }
            self.rows[row + 1].push_back(merged);
            row += 1;
        }
    }

    /// Scans the bucket boundaries from the oldest forward; true at the first significant cut.
    fn significant_cut_exists(&self) -> bool {
        let (mut n0, mut n1) = (0.0f64, self.width as f64);
        let (mut u0, mut u1) = (0.0f64, self.total);
        let min_len = self.min_window_length as f64;
        for (row, buckets) in self.rows.iter().enumerate().rev() {
            let size = (1u64 << row) as f64;
            for (k, b) in buckets.iter().enumerate() {
                n0 += size;
                n1 -= size;
                u0 += b.total;
                u1 -= b.total;
                if row == 0 && k + 1 == buckets.len() {
                    // W1 would be empty.
                    return false;
                }
                if n0 >= min_len && n1 >= min_len && self.cut_is_significant(n0, n1, u0 / n0 - u1 / n1) {
                    return true;
                }
            }
        }
        false
    }

    fn cut_is_significant(&self, n0: f64, n1: f64, mean_difference: f64) -> bool {
        let w = self.width as f64;
        let min_len = self.min_window_length as f64;
        let delta_prime = (2.0 * w.ln() / self.delta).ln();
        let m = 1.0 / (n0 - min_len + 1.0) + 1.0 / (n1 - min_len + 1.0);
        let epsilon = (2.0 * m * (self.variance / w) * delta_prime).sqrt() + 2.0 / 3.0 * delta_prime * m;
        mean_difference.abs() > epsilon
    }

    /// Removes the oldest bucket (the front of the last row) and its share of the statistics.
    fn drop_oldest_bucket(&mut self) {
        let last = self.rows.len() - 1;
        let size = (1u64 << last) as f64;
        let b = self.rows[last].pop_front().expect("the last row is never empty");
        self.width -= 1 << last;
        let w = self.width as f64;
        self.total -= b.total;
        let (mean_b, mean_rest) = (b.total / size, self.total / w);
        self.variance -= b.variance + size * w * (mean_b - mean_rest) * (mean_b - mean_rest) / (size + w);
        if self.rows[last].is_empty() && last > 0 {
            self.rows.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::eval::detectors::tests::bernoulli;
    use crate::eval::rng::SplitMix;

    #[test]
    fn adwin_matches_river_on_the_same_streams() {
        // adwin_river.txt (make_adwin_golden.py): per stream its name, values, river's drift
        // indices, river's width after each element, and the final width, estimation and
        // river's variance (sum of squared deviations).
        let text = include_str!("../../../tests/golden/adwin_river.txt");
        let mut lines = text.lines().filter(|l| !l.starts_with('#'));
        let parse_f = |l: &str| -> Vec<f64> { l.split(',').filter(|x| !x.is_empty()).map(|x| x.parse().unwrap()).collect() };
        let parse_u = |l: &str| -> Vec<usize> { l.split(',').filter(|x| !x.is_empty()).map(|x| x.parse().unwrap()).collect() };
        let mut streams = 0;
        while let Some(name) = lines.next() {
            if name.is_empty() {
                continue;
            }
            let stream = parse_f(lines.next().unwrap());
            let drifts = parse_u(lines.next().unwrap_or(""));
            let widths = parse_u(lines.next().unwrap());
            let last = parse_f(lines.next().unwrap());
            let mut d = Adwin::default();
            let mut found = vec![];
            for (i, x) in stream.iter().enumerate() {
                if d.update(*x) == Signal::Drift {
                    found.push(i);
                }
                assert_eq!(d.width(), widths[i], "{name}: width after element {i}");
            }
            assert_eq!(found, drifts, "{name}: drift points");
            assert!(!found.is_empty(), "{name}: the stream should drift");
            assert_eq!(d.width() as f64, last[0], "{name}: final width");
            assert!((d.estimation() - last[1]).abs() < 1e-9, "{name}: estimation {} vs {}", d.estimation(), last[1]);
            assert!((d.variance() * d.width() as f64 - last[2]).abs() < 1e-9 * last[2].max(1.0), "{name}: variance");
            streams += 1;
        }
        assert_eq!(streams, 3);
    }

    #[test]
    fn adwin_window_statistics_are_exact_on_a_short_stream() {
        let mut d = Adwin::default();
        for x in [1.0, 2.0, 3.0, 4.0, 5.0] {
            assert_eq!(d.update(x), Signal::Stable);
        }
        assert_eq!(d.width(), 5);
        assert_eq!(d.estimation(), 3.0);
        assert_eq!(d.variance(), 2.0);
    }

    #[test]
    fn adwin_finds_a_rate_jump_and_stays_quiet_on_stationary_streams() {
        // Stationary: p = 0.2, 20 streams of 10,000 elements.
        let mut alarms = 0;
        for seed in 0..20 {
            let mut rng = SplitMix(seed);
            let mut d = Adwin::default();
            alarms += (0..10_000).filter(|_| d.update(bernoulli(&mut rng, 0.2)) == Signal::Drift).count();
        }
        // Measured: 0 false alarms over the 200,000 elements.
        assert!(alarms <= 2, "{alarms} false alarms over 200,000 stationary elements");
        // A jump from 0.2 to 0.5 at element 2000: found in every one of 20 streams. Measured
        // delays 47 to 175 elements, median 79 (the test runs every `clock` = 32 elements, hence
        // the steps of 32); bound: all within 300, median within 150.
        let mut delays: Vec<usize> = (0..20)
            .map(|seed| {
                let mut rng = SplitMix(100 + seed);
                let mut d = Adwin::default();
                let found = (0..4000).position(|i| d.update(bernoulli(&mut rng, if i < 2000 { 0.2 } else { 0.5 })) == Signal::Drift && i >= 2000);
                found.expect("detected") - 2000
            })
            .collect();
        delays.sort_unstable();
        assert!(delays[19] <= 300 && delays[10] <= 150, "delays {delays:?}");
    }
}
