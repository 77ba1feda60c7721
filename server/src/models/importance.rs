//! Permutation feature importance through the model: how much a metric worsens when one feature's
//! values are shuffled across the sampled rows (breaking its link to the label while keeping its
//! distribution), repeated with independent permutations for an interval — Breiman's measure as
//! scikit-learn's `permutation_importance` defines it (importance = baseline score − permuted score,
//! with losses negated so that higher always means "the model relies on it").

use strata_app::model::ImportanceRow;

use super::{Batch, Model, ModelError, Values};
use crate::eval::rng::SplitMix;
use crate::eval::stats::special::student_t_quantile;

/// The score a permutation is judged by.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scoring {
    /// Area under the ROC curve (ties averaged: the Mann–Whitney statistic), binary.
    Auc,
    /// Share of correct decisions at a threshold, binary.
    Accuracy(f64),
    /// Log loss with scikit-learn's clipping of probabilities to [eps, 1 − eps] (eps of f64), binary.
    LogLoss,
    /// Mean absolute error, regression.
    Mae,
}

impl Scoring {
    pub fn parse(name: &str, binary: bool, threshold: f64) -> Result<Scoring, String> {
        match (name, binary) {
            ("auc_roc" | "auc", true) => Ok(Scoring::Auc),
            ("accuracy", true) => Ok(Scoring::Accuracy(threshold)),
            ("log_loss", true) => Ok(Scoring::LogLoss),
            ("mae", false) => Ok(Scoring::Mae),
            (other, true) => Err(format!("metric '{other}': a binary run offers auc_roc, accuracy, log_loss")),
            (other, false) => Err(format!("metric '{other}': a regression run offers mae")),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Scoring::Auc => "auc_roc",
            Scoring::Accuracy(_) => "accuracy",
            Scoring::LogLoss => "log_loss",
            Scoring::Mae => "mae",
        }
    }

    /// The score, higher = better (losses negated).
    pub fn score(&self, pred: &[f64], labels: &[f64]) -> f64 {
        let n = pred.len().max(1) as f64;
        match *self {
            Scoring::Auc => auc(pred, labels),
            Scoring::Accuracy(t) => pred.iter().zip(labels).filter(|(p, y)| (**p >= t) == (**y == 1.0)).count() as f64 / n,
            Scoring::LogLoss => {
                let eps = f64::EPSILON;
                -pred.iter().zip(labels).map(|(p, y)| { let p = p.clamp(eps, 1.0 - eps); -(y * p.ln() + (1.0 - y) * (1.0 - p).ln()) }).sum::<f64>() / n
            }
            Scoring::Mae => -pred.iter().zip(labels).map(|(p, y)| (p - y).abs()).sum::<f64>() / n,
        }
    }
}

/// The Mann–Whitney AUC: the mean rank of the positives among all scores (ties get their average
/// rank), as scikit-learn's `roc_auc_score` computes it. NaN when a class is missing.
pub fn auc(scores: &[f64], labels: &[f64]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut positives) = (0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            if labels[k] == 1.0 {
                rank_sum += rank;
                positives += 1.0;
            }
        }
        i = j + 1;
    }
    let negatives = scores.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return f64::NAN;
    }
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

/// A uniformly random permutation of 0..n (Fisher–Yates).
fn permutation(n: usize, rng: &mut SplitMix) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        p.swap(i, j);
    }
    p
}

/// `repeats` copies of `batch`, `feature` permuted independently in each (one predict call).
fn permuted_copies(batch: &Batch, feature: &str, repeats: usize, rng: &mut SplitMix) -> Batch {
    let n = batch.rows;
    let perms: Vec<Vec<usize>> = (0..repeats).map(|_| permutation(n, rng)).collect();
    let columns = batch
        .columns
        .iter()
        .map(|(name, values)| {
            let v = match values {
                Values::Numeric(x) if name == feature => Values::Numeric(perms.iter().flat_map(|p| p.iter().map(|i| x[*i])).collect()),
                Values::Text(x) if name == feature => Values::Text(perms.iter().flat_map(|p| p.iter().map(|i| x[*i].clone())).collect()),
                Values::Numeric(x) => Values::Numeric((0..repeats).flat_map(|_| x.iter().copied()).collect()),
                Values::Text(x) => Values::Text((0..repeats).flat_map(|_| x.iter().cloned()).collect()),
            };
            (name.clone(), v)
        })
        .collect();
    Batch { rows: n * repeats, columns }
}

/// The baseline score and, per feature, the mean drop over `repeats` permutations with its spread
/// and a 95% t interval (features in the given order; the caller sorts).
pub fn permutation_importance(model: &dyn Model, batch: &Batch, labels: &[f64], features: &[String], scoring: Scoring, repeats: usize, seed: u64) -> Result<(f64, Vec<ImportanceRow>), ModelError> {
    permutation_importance_tracked(model, batch, labels, features, scoring, repeats, seed, &crate::progress::Progress::new())
}

/// [`permutation_importance`] reporting one step per feature into `progress`; stops between
/// features when it is cancelled (the caller then throws the answer away).
#[allow(clippy::too_many_arguments)]
pub fn permutation_importance_tracked(
    model: &dyn Model,
    batch: &Batch,
    labels: &[f64],
    features: &[String],
    scoring: Scoring,
    repeats: usize,
    seed: u64,
    progress: &crate::progress::Progress,
) -> Result<(f64, Vec<ImportanceRow>), ModelError> {
    progress.stage("features");
    progress.add_total(features.len() as u64);
    let baseline = scoring.score(&model.predict(batch)?, labels);
    let mut rng = SplitMix(seed ^ 0x1397_5EED);
    let n = batch.rows;
    let mut rows = Vec::with_capacity(features.len());
    for f in features {
        if progress.is_cancelled() {
            break;
        }
        let copies = permuted_copies(batch, f, repeats, &mut rng);
        let pred = model.predict(&copies)?;
        let drops: Vec<f64> = pred.chunks(n.max(1)).map(|p| baseline - scoring.score(p, labels)).collect();
        let r = drops.len() as f64;
        let mean = drops.iter().sum::<f64>() / r;
        let sd = if drops.len() > 1 { (drops.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (r - 1.0)).sqrt() } else { 0.0 };
        let half = if drops.len() > 1 { student_t_quantile(0.975, r - 1.0) * sd / r.sqrt() } else { f64::NAN };
        rows.push(ImportanceRow { feature: f.clone(), mean, sd, lo: mean - half, hi: mean + half, drops });
        progress.advance(1);
    }
    Ok((baseline, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_averages_ties_like_scikit_learn() {
        // sklearn.metrics.roc_auc_score([0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.4, 0.4]) = 0.6666666666666667
        let got = auc(&[0.1, 0.4, 0.35, 0.8, 0.4, 0.4], &[0.0, 0.0, 1.0, 1.0, 0.0, 1.0]);
        assert!((got - 0.6666666666666667).abs() < 1e-15, "{got}");
        assert!(auc(&[0.2, 0.3], &[1.0, 1.0]).is_nan());
    }

    #[test]
    fn permutations_are_permutations() {
        let mut rng = SplitMix(7);
        let mut p = permutation(1000, &mut rng);
        p.sort();
        assert_eq!(p, (0..1000).collect::<Vec<_>>());
    }
}
