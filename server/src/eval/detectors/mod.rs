//! Concept-drift detectors over a stream, each a small separately tested unit.
//!
//! - [`Ddm`]: the Drift Detection Method (Gama et al., 2004), statistical process control on the
//!   error rate: warning when p + s ≥ p_min + 2·s_min, drift at + 3·s_min, after a warm start;
//!   state reset after a drift. Matches `river.drift.binary.DDM` step for step (tested on the same
//!   stream with the script in `server/tests/golden/make_ddm_golden.py`).
//! - [`Md3`]: Margin Density Drift Detection (Sethi & Kantardzic, 2015) needs no labels: the share
//!   of scores within `margin` of the threshold over a sliding window, compared with its mean and
//!   standard deviation on a reference window; drift when it moves more than `theta` standard
//!   deviations.
//! - [`Adwin`] (adaptive windowing, Bifet & Gavaldà 2007) on any bounded stream; matches
//!   `river.drift.ADWIN` element for element (`server/tests/golden/make_adwin_golden.py`).
//! - [`LinearFourRates`] (Wang & Abraham 2015) on a classifier's decisions: TPR, TNR, PPV and
//!   NPV with decayed estimates and Monte-Carlo bounds (river has none; follows the paper).

mod adwin;
mod lfr;

pub use adwin::Adwin;
pub use lfr::{LinearFourRates, NPV, PPV, TNR, TPR};

/// What a detector says after one element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Stable,
    Warning,
    Drift,
}

/// The Drift Detection Method on a 0/1 error stream.
#[derive(Clone, Debug)]
pub struct Ddm {
    pub warm_start: usize,
    pub warning_threshold: f64,
    pub drift_threshold: f64,
    n: usize,
    mean: f64,
    p_min: f64,
    s_min: f64,
    ps_min: f64,
    drifted: bool,
}

impl Default for Ddm {
    fn default() -> Self {
        Ddm::new(30, 2.0, 3.0)
    }
}

impl Ddm {
    pub fn new(warm_start: usize, warning_threshold: f64, drift_threshold: f64) -> Self {
        Ddm { warm_start, warning_threshold, drift_threshold, n: 0, mean: 0.0, p_min: f64::INFINITY, s_min: f64::INFINITY, ps_min: f64::INFINITY, drifted: false }
    }

    fn reset(&mut self) {
        *self = Ddm::new(self.warm_start, self.warning_threshold, self.drift_threshold);
    }

    /// Adds one error indicator (1 = the model was wrong).
    pub fn update(&mut self, error: f64) -> Signal {
        if self.drifted {
            self.reset();
        }
        self.n += 1;
        self.mean += (error - self.mean) / self.n as f64;
        let p = self.mean;
        let s = (p * (1.0 - p) / self.n as f64).sqrt();
        if self.n <= self.warm_start {
            return Signal::Stable;
        }
        if p + s <= self.ps_min {
            self.p_min = p;
            self.s_min = s;
            self.ps_min = p + s;
        }
        if p + s > self.p_min + self.drift_threshold * self.s_min {
            self.drifted = true;
            Signal::Drift
        } else if p + s > self.p_min + self.warning_threshold * self.s_min {
            Signal::Warning
        } else {
            Signal::Stable
        }
    }
}

/// Margin Density Drift Detection over a score stream.
#[derive(Clone, Debug)]
pub struct Md3 {
    pub threshold: f64,
    pub margin: f64,
    pub window: usize,
    pub theta: f64,
    recent: std::collections::VecDeque<bool>,
    in_margin: usize,
    /// Reference margin density: mean and standard deviation over the first full windows.
    reference: Vec<f64>,
    reference_windows: usize,
}

impl Md3 {
    /// `threshold` ± `margin` is the margin; densities of `window` scores; the first
    /// `reference_windows` non-overlapping windows define the expected density.
    pub fn new(threshold: f64, margin: f64, window: usize, theta: f64, reference_windows: usize) -> Self {
        Md3 { threshold, margin, window, theta, recent: Default::default(), in_margin: 0, reference: vec![], reference_windows }
    }

    /// The margin density of the current window.
    pub fn density(&self) -> f64 {
        self.in_margin as f64 / self.recent.len().max(1) as f64
    }

    pub fn update(&mut self, score: f64) -> Signal {
        let inside = (score - self.threshold).abs() <= self.margin;
        self.recent.push_back(inside);
        self.in_margin += usize::from(inside);
        if self.recent.len() > self.window {
            if self.recent.pop_front() == Some(true) {
                self.in_margin -= 1;
            }
        }
        if self.recent.len() < self.window {
            return Signal::Stable;
        }
        if self.reference.len() < self.reference_windows {
            // Collect reference densities from non-overlapping windows.
            self.reference.push(self.density());
            self.recent.clear();
            self.in_margin = 0;
            return Signal::Stable;
        }
        let n = self.reference.len() as f64;
        let mean = self.reference.iter().sum::<f64>() / n;
        let sd = (self.reference.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt().max(1e-3);
        let z = (self.density() - mean).abs() / sd;
        if z > self.theta {
            Signal::Drift
        } else if z > self.theta / 2.0 {
            Signal::Warning
        } else {
            Signal::Stable
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::eval::rng::SplitMix;

    /// A 0/1 draw with P(1) = p: the detectors' synthetic streams.
    pub(super) fn bernoulli(rng: &mut SplitMix, p: f64) -> f64 {
        f64::from(u8::from(rng.uniform() < p))
    }

    #[test]
    fn ddm_finds_an_error_rate_jump_quickly_and_stays_quiet_on_a_stationary_stream() {
        // Stationary: error rate 0.2 for 20,000 elements, 20 streams: count false alarms.
        let mut alarms = 0;
        for seed in 0..20 {
            let mut rng = SplitMix(seed);
            let mut d = Ddm::default();
            alarms += (0..20_000).filter(|_| d.update(bernoulli(&mut rng, 0.2)) == Signal::Drift).count();
        }
        assert!(alarms <= 10, "{alarms} false alarms over 400,000 stationary elements");
        // A jump from 0.1 to 0.4 at element 2000: found in every one of 20 streams, within 600
        // elements, median within 250 (the cumulative error rate of the 2000 earlier elements has
        // to move first: DDM is slow on long stable histories, as published).
        let mut delays: Vec<usize> = (0..20)
            .map(|seed| {
                let mut rng = SplitMix(100 + seed);
                let mut d = Ddm::default();
                let found = (0..6000).position(|i| d.update(bernoulli(&mut rng, if i < 2000 { 0.1 } else { 0.4 })) == Signal::Drift && i >= 2000);
                found.expect("detected") - 2000
            })
            .collect();
        delays.sort_unstable();
        assert!(delays[19] <= 600 && delays[10] <= 250, "delays {delays:?}");
    }

    #[test]
    fn ddm_matches_river_on_the_same_stream() {
        // golden/ddm_stream.txt: the stream, then river's indices of warnings and drifts.
        let text = include_str!("../../../tests/golden/ddm_river.txt");
        let mut lines = text.lines();
        let stream: Vec<f64> = lines.next().unwrap().split(',').map(|x| x.parse().unwrap()).collect();
        let parse = |l: &str| -> Vec<usize> { l.split(',').filter(|x| !x.is_empty()).map(|x| x.parse().unwrap()).collect() };
        let (warnings, drifts) = (parse(lines.next().unwrap_or("")), parse(lines.next().unwrap_or("")));
        let mut d = Ddm::default();
        let (mut w, mut dr) = (vec![], vec![]);
        for (i, x) in stream.iter().enumerate() {
            match d.update(*x) {
                Signal::Warning => w.push(i),
                Signal::Drift => dr.push(i),
                Signal::Stable => {}
            }
        }
        assert_eq!(dr, drifts, "drift points");
        assert_eq!(w, warnings, "warning points");
        assert!(!dr.is_empty());
    }

    #[test]
    fn md3_notices_scores_crowding_into_the_margin() {
        let mut rng = SplitMix(7);
        let mut m = Md3::new(0.5, 0.1, 200, 3.0, 10);
        let mut first = None;
        for i in 0..10_000 {
            let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
            // Confident scores, then (from 6000) uncertain ones near the threshold.
            let s = if i < 6000 { if u < 0.5 { u * 0.5 } else { 0.5 + u * 0.5 } } else { 0.35 + 0.3 * u };
            if m.update(s) == Signal::Drift && first.is_none() {
                first = Some(i);
            }
        }
        let at = first.expect("detected");
        assert!((6000..6300).contains(&at), "detected at {at}");
    }
}
