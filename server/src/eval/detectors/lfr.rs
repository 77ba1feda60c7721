//! Linear Four Rates over a binary classifier's decisions (see [`LinearFourRates`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::Signal;

/// Index of each rate in [`LinearFourRates::rates`].
pub const TPR: usize = 0;
pub const TNR: usize = 1;
pub const PPV: usize = 2;
pub const NPV: usize = 3;

/// Linear Four Rates: drift in any of a binary classifier's TPR, TNR, PPV or NPV.
///
/// **Rates.** A confusion matrix `C[predicted][label]`, started at one in every cell (so each
/// empirical rate starts at 1/2), gives the empirical rates `P̂`: TPR = TP/(TP+FN),
/// TNR = TN/(TN+FP), PPV = TP/(TP+FP), NPV = TN/(TN+FN). Each rate also has a time-decayed
/// estimate, started at 1/2,
///
/// ```text
/// R_t = eta · R_{t−1} + (1 − eta) · 1[predicted == label],
/// ```
///
/// updated only on the elements that enter that rate's denominator (TPR on label = 1, TNR on
/// label = 0, PPV on predicted = 1, NPV on predicted = 0). Under a stable concept each rate's
/// updates are independent Bernoulli(P) trials, so `R` after `N` updates has a known law given P.
///
/// **Bounds.** `BoundTable(P̂, eta, α, N)`: the law of `R_N` under Bernoulli(P̂) trials is
/// simulated (`mc_samples` paths from 1/2) and its α and 1 − α quantiles are the bounds (the
/// k-th smallest and k-th largest of the simulated values, k = max(1, round(α·(mc_samples + 1))),
/// so each tail holds about α). A rate outside its `warn_level` bounds is a warning; outside its
/// `detect_level` bounds, a drift. Both directions count: a rate that improves is a change too.
/// A rate's state is re-evaluated whenever it is updated; the element's [`Signal`] is the worst
/// state over the four. After a drift the next `update` starts over (matrix, estimates, burn-in).
/// No rate is tested during the first `burn_in` elements after a start, while `P̂` is unreliable.
///
/// **Monte Carlo, cached.** One simulation of `mc_samples` paths of length `cap` gives the law of
/// `R_N` for every `N ≤ cap` at once (a path's value after `N` steps is a draw of `R_N`).
/// `cap` is the least `N` with `eta^N ≤ 1e-4`: beyond it the starting value's weight is below
/// `1e-4`, so `R_N` has practically the law of `R_cap`, and the bounds of `R_cap`, widened by
/// `eta^cap`, are used (so, past the cap, an upper bound within `eta^cap` of 1 cannot be crossed:
/// a rate near 1 is not flagged for getting better still). `P̂` is rounded to two decimals (and
/// kept within [0.01, 0.99], so that a near-perfect rate is not simulated as a perfect one, whose
/// bounds no error could stay within); a table per rounded `P̂` is simulated once with a generator
/// seeded from `seed` and `P̂`, and kept in a process-wide cache keyed by all the parameters (at
/// most 99 tables per parameter set, about 3 KB each for the defaults). Results are therefore
/// reproducible and independent of the order in which tables are needed.
///
/// `burn_in` (default 50) is ours, not the paper's (as in MITRE's `menelaus` implementation).
///
/// `mc_samples` defaults to 10,000: the detect bound sits in a tail of probability
/// `detect_level` = 1e-4, which fewer samples cannot resolve (with 1,000 the bound would be the
/// sample extreme, whose tail probability is about 1e-3, ten times the level).
///
/// There is no reference implementation in river (checked in 0.26.1); this follows the paper's
/// Algorithm 1 (Wang & Abraham, "Concept drift detection for streaming data", IJCNN 2015), with
/// `N` the number of real updates of the rate since the start (the paper's denominators include
/// the matrix's pseudo-counts) and the simulated paths started from 1/2 like the estimates.
#[derive(Clone, Debug)]
pub struct LinearFourRates {
    pub eta: f64,
    pub warn_level: f64,
    pub detect_level: f64,
    pub mc_samples: usize,
    pub burn_in: usize,
    pub seed: u64,
    /// `confusion[predicted][label]`, with one pseudo-count per cell.
    confusion: [[u64; 2]; 2],
    decayed: [f64; 4],
    /// Updates of each rate since the start.
    updates: [usize; 4],
    state: [Signal; 4],
    seen: usize,
    drifted: bool,
}

impl Default for LinearFourRates {
    fn default() -> Self {
        LinearFourRates::new(0.9, 0.01, 0.0001, 10_000, 50, 0x5EED_1F12)
    }
}

/// Bounds of `R_N` for `N = 0..=cap`: `[lower warn, upper warn, lower detect, upper detect]`.
#[derive(Debug)]
struct BoundTable {
    bounds: Vec<[f64; 4]>,
}

/// Identifies a bound table: eta, warn and detect levels (as bits), samples, seed, P̂ in hundredths.
type TableKey = (u64, u64, u64, usize, u64, u32);

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The k-th smallest (1-based) of `values`, reordering them.
fn kth_smallest(values: &mut [f64], k: usize) -> f64 {
    *values.select_nth_unstable_by(k - 1, f64::total_cmp).1
}

impl LinearFourRates {
    /// `eta`: decay in [0, 1) (larger = smoother, slower); `warn_level`, `detect_level`: tail
    /// probability of each bound; `mc_samples`: simulated paths per table; `burn_in`: elements
    /// after a start before any test; `seed`: seeds the simulations.
    pub fn new(eta: f64, warn_level: f64, detect_level: f64, mc_samples: usize, burn_in: usize, seed: u64) -> Self {
        assert!((0.0..1.0).contains(&eta), "eta in [0, 1)");
        assert!(detect_level > 0.0 && detect_level <= warn_level && warn_level < 0.5, "0 < detect_level <= warn_level < 0.5");
        assert!(mc_samples >= 2, "at least two Monte-Carlo samples");
        LinearFourRates {
            eta,
            warn_level,
            detect_level,
            mc_samples,
            burn_in,
            seed,
            confusion: [[1, 1], [1, 1]],
            decayed: [0.5; 4],
            updates: [0; 4],
            state: [Signal::Stable; 4],
            seen: 0,
            drifted: false,
        }
    }

    fn reset(&mut self) {
        self.confusion = [[1, 1], [1, 1]];
        self.decayed = [0.5; 4];
        self.updates = [0; 4];
        self.state = [Signal::Stable; 4];
        self.seen = 0;
        self.drifted = false;
    }

    /// The decayed estimates `R` of TPR, TNR, PPV, NPV (indices [`TPR`], [`TNR`], [`PPV`], [`NPV`]).
    pub fn rates(&self) -> [f64; 4] {
        self.decayed
    }

    /// The empirical rates `P̂` since the start (with the pseudo-counts), same order.
    pub fn empirical_rates(&self) -> [f64; 4] {
        let c = &self.confusion;
        let (tn, fn_, fp, tp) = (c[0][0] as f64, c[0][1] as f64, c[1][0] as f64, c[1][1] as f64);
        [tp / (tp + fn_), tn / (tn + fp), tp / (tp + fp), tn / (tn + fn_)]
    }

    /// Adds one (prediction, label) pair.
    pub fn update(&mut self, predicted: bool, label: bool) -> Signal {
        if self.drifted {
            self.reset();
        }
        self.seen += 1;
        self.confusion[usize::from(predicted)][usize::from(label)] += 1;
        let hit = f64::from(u8::from(predicted == label));
        let touched = [label, !label, predicted, !predicted];
        let empirical = self.empirical_rates();
        for rate in 0..4 {
            if !touched[rate] {
                continue;
            }
            self.decayed[rate] = self.eta * self.decayed[rate] + (1.0 - self.eta) * hit;
            self.updates[rate] += 1;
            if self.seen > self.burn_in {
                self.state[rate] = self.test(self.decayed[rate], empirical[rate], self.updates[rate]);
            }
        }
        let worst = if self.state.contains(&Signal::Drift) {
            Signal::Drift
        } else if self.state.contains(&Signal::Warning) {
            Signal::Warning
        } else {
            Signal::Stable
        };
        self.drifted = worst == Signal::Drift;
        worst
    }

    /// Compares a decayed estimate after `n` updates with the bounds for the empirical rate.
    fn test(&self, r: f64, empirical: f64, n: usize) -> Signal {
        let cap = self.cap();
        let hundredths = ((empirical * 100.0).round() as u32).clamp(1, 99);
        let table = self.table(hundredths);
        let [lw, uw, ld, ud] = table.bounds[n.min(cap)];
        // Past the cap, allow for the starting value's remaining weight.
        let slack = if n > cap { self.eta.powi(cap as i32) } else { 0.0 };
        if r < ld - slack || r > ud + slack {
            Signal::Drift
        } else if r < lw - slack || r > uw + slack {
            Signal::Warning
        } else {
            Signal::Stable
        }
    }

    /// The least `N` with `eta^N ≤ 1e-4` (at most 10,000).
    fn cap(&self) -> usize {
        let mut n = 1;
        let mut w = self.eta;
        while w > 1e-4 && n < 10_000 {
            w *= self.eta;
            n += 1;
        }
        n
    }

    fn table(&self, hundredths: u32) -> Arc<BoundTable> {
        static MEMO: OnceLock<Mutex<HashMap<TableKey, Arc<BoundTable>>>> = OnceLock::new();
        let key = (self.eta.to_bits(), self.warn_level.to_bits(), self.detect_level.to_bits(), self.mc_samples, self.seed, hundredths);
        // Simulated under the lock, so that detectors needing the same table wait for it
        // instead of simulating it again; a table is a pure function of its key.
        let mut memo = MEMO.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
        let table = memo.entry(key).or_insert_with(|| Arc::new(self.simulate(f64::from(hundredths) / 100.0, hundredths))).clone();
        drop(memo);
        table
    }

    /// Simulates `mc_samples` paths of the decayed estimate under Bernoulli(`p`) trials and
    /// records the bounds after each step.
    fn simulate(&self, p: f64, hundredths: u32) -> BoundTable {
        let m = self.mc_samples;
        let cap = self.cap();
        let order = |level: f64| ((level * (m + 1) as f64).round() as usize).clamp(1, m);
        let (k_warn, k_detect) = (order(self.warn_level), order(self.detect_level));
        let mut state = self.seed ^ u64::from(hundredths).wrapping_mul(0xD6E8_FEB8_6659_FD93);
        // u < p for u uniform on 53 bits, compared as integers.
        let threshold = (p * (1u64 << 53) as f64) as u64;
        let gain = 1.0 - self.eta;
        let mut paths = vec![0.5f64; m];
        let mut scratch = vec![0.0f64; m];
        let mut bounds = Vec::with_capacity(cap + 1);
        bounds.push([0.5; 4]);
        for _ in 0..cap {
            // Bit for bit the arithmetic of the tracked estimate, eta·R + (1 − eta)·hit.
            for r in paths.iter_mut() {
                *r = if splitmix64(&mut state) >> 11 < threshold { self.eta * *r + gain } else { self.eta * *r };
            }
            scratch.copy_from_slice(&paths);
            // After selecting the k_warn-th smallest, the k_detect-th smallest is among the first
            // k_warn values; likewise at the top.
            let lower_warn = kth_smallest(&mut scratch, k_warn);
            let lower_detect = kth_smallest(&mut scratch[..k_warn], k_detect);
            let upper_warn = kth_smallest(&mut scratch, m + 1 - k_warn);
            let upper_detect = kth_smallest(&mut scratch[m - k_warn..], k_warn + 1 - k_detect);
            bounds.push([lower_warn, upper_warn, lower_detect, upper_detect]);
        }
        BoundTable { bounds }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::eval::detectors::tests::bernoulli;
    use crate::eval::rng::SplitMix;

    fn classify(rng: &mut SplitMix, tpr: f64, tnr: f64) -> (bool, bool) {
        let label = rng.uniform() < 0.4;
        let u = rng.uniform();
        (if label { u < tpr } else { u >= tnr }, label)
    }

    /// First signals after element 3000 (first warning, first drift) when TPR drops 0.9 → 0.5 there.
    fn lfr_tpr_drop(seed: u64) -> (Option<usize>, Option<usize>) {
        let mut rng = SplitMix(1000 + seed);
        let mut d = LinearFourRates::default();
        let (mut warn, mut drift) = (None, None);
        for i in 0..6000 {
            let (p, l) = classify(&mut rng, if i < 3000 { 0.9 } else { 0.5 }, 0.9);
            let s = d.update(p, l);
            if i >= 3000 {
                if s == Signal::Warning && warn.is_none() {
                    warn = Some(i - 3000);
                }
                if s == Signal::Drift {
                    drift = Some(i - 3000);
                    break;
                }
            }
        }
        (warn, drift)
    }

    #[test]
    fn lfr_finds_a_tpr_drop_and_stays_quiet_on_stationary_streams() {
        // Stationary: TPR = TNR = 0.9, 40% positives, 20 streams of 10,000 elements. Measured: 23
        // drifts over the 200,000 elements (1.15 per 10,000), all in the lower tail, far from any
        // start. That is what a per-element level is: each element updates two rates, each
        // tested on both tails at 1e-4, and a rate's decayed estimate enters its lower tail about
        // 0.4 to 0.9 times per 10,000 updates (the tails are exact up to Monte-Carlo error).
        let mut alarms = 0;
        for seed in 0..20 {
            let mut rng = SplitMix(seed);
            let mut d = LinearFourRates::default();
            for _ in 0..10_000 {
                let (p, l) = classify(&mut rng, 0.9, 0.9);
                alarms += usize::from(d.update(p, l) == Signal::Drift);
            }
        }
        assert!(alarms <= 40, "{alarms} false alarms over 200,000 stationary elements");
        // TPR 0.9 → 0.5 at element 3000: found in every one of 20 streams. Measured delays 5 to
        // 117 elements, median 41; bound: all within 250, median within 80.
        let mut delays: Vec<usize> = (0..20).map(|seed| lfr_tpr_drop(seed).1.expect("detected")).collect();
        delays.sort_unstable();
        assert!(delays[19] <= 250 && delays[10] <= 80, "delays {delays:?}");
    }

    #[test]
    fn lfr_warns_before_it_detects() {
        // In each of the 20 streams of the TPR drop a warning comes strictly before the drift
        // (measured: 2 to 92 elements before, median 25).
        for seed in 0..20 {
            let (warn, drift) = lfr_tpr_drop(seed);
            let (warn, drift) = (warn.expect("a warning"), drift.expect("a drift"));
            assert!(warn < drift, "seed {seed}: warning at +{warn}, drift at +{drift}");
        }
    }

    #[test]
    fn lfr_bounds_hold_their_levels_and_results_are_reproducible() {
        // A Bernoulli(0.5) rate past the cap: the share of steps outside the warning bounds is
        // close to 1% per tail (Monte-Carlo bounds from 10,000 paths).
        let d = LinearFourRates::default();
        let cap = d.cap();
        let [lw, uw, ld, ud] = d.table(50).bounds[cap];
        assert!(ld <= lw && lw < 0.5 && 0.5 < uw && uw <= ud, "{:?}", [lw, uw, ld, ud]);
        let mut rng = SplitMix(5);
        let mut r = 0.5;
        let (mut below, mut above) = (0, 0);
        for _ in 0..200_000 {
            r = d.eta * r + (1.0 - d.eta) * bernoulli(&mut rng, 0.5);
            below += usize::from(r < lw);
            above += usize::from(r > uw);
        }
        for share in [below as f64 / 200_000.0, above as f64 / 200_000.0] {
            assert!((0.006..0.015).contains(&share), "tail share {share}");
        }
        // The same stream gives the same signals and the same rates.
        let run = || {
            let mut rng = SplitMix(77);
            let mut d = LinearFourRates::default();
            let signals: Vec<Signal> = (0..3000).map(|_| { let (p, l) = classify(&mut rng, 0.8, 0.7); d.update(p, l) }).collect();
            (signals, d.rates(), d.empirical_rates())
        };
        let (a, b) = (run(), run());
        assert_eq!(a, b);
        assert!(a.0.iter().any(|s| *s != Signal::Stable));
    }
}
