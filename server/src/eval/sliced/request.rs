//! What a metrics request asks for, and its thresholds.

use super::*;

/// What to compute.
#[derive(Clone, Debug)]
pub struct MetricsRequest {
    pub label: String,
    pub model: String,
    /// A multiclass model's per-class score columns, (class, column): they add top-k accuracy
    /// and log loss. Empty for a model that only predicts a class.
    pub class_scores: Vec<(String, String)>,
    pub weight: Option<String>,
    /// Slice spec texts (parsed here); the overall slice is always included.
    pub specs: Vec<String>,
    pub thresholds: Vec<f64>,
    /// Confidence level, e.g. 0.95.
    pub ci: f64,
    /// Bootstrap replicates (0 = none: Wilson intervals only, no p-values).
    pub bootstrap: usize,
    pub seed: u64,
    /// `overall` or a filter spec such as `sex=Female`.
    pub baseline: String,
    pub min_size: u64,
    pub max_slices: usize,
    /// False-discovery rate for flagging gaps.
    pub alpha: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Eval(#[from] EvalError),
}

/// Parses `0.3,0.5,0.7` or a grid `start:stop:step` (inclusive) into sorted unique thresholds.
pub fn parse_thresholds(text: &str) -> Result<Vec<f64>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let nums: Vec<&str> = part.split(':').collect();
        match nums.as_slice() {
            [one] => out.push(one.parse::<f64>().map_err(|_| format!("threshold '{one}' is not a number"))?),
            [a, b, s] => {
                let (a, b, s) = (a.parse::<f64>(), b.parse::<f64>(), s.parse::<f64>());
                let (Ok(a), Ok(b), Ok(s)) = (a, b, s) else { return Err(format!("grid '{part}' is start:stop:step")) };
                if s <= 0.0 || b < a {
                    return Err(format!("grid '{part}' needs start <= stop and step > 0"));
                }
                let n = ((b - a) / s + 1e-9).floor() as usize;
                if n > 1000 {
                    return Err(format!("grid '{part}' has more than 1001 thresholds"));
                }
                out.extend((0..=n).map(|i| ((a + s * i as f64) * 1e9).round() / 1e9));
            }
            _ => return Err(format!("'{part}' is neither a threshold nor a start:stop:step grid")),
        }
    }
    for t in &out {
        if !(0.0..=1.0).contains(t) {
            return Err(format!("threshold {t} is outside [0, 1]"));
        }
    }
    out.sort_by(f64::total_cmp);
    out.dedup();
    if out.len() > 1001 {
        return Err("at most 1001 thresholds".into());
    }
    Ok(out)
}

impl MetricsRequest {
    /// The fields `prepare` reads: requests with equal keys (on the same run) share a `Prepared`.
    pub fn prepare_key(&self) -> String {
        format!("{}\u{1f}{}\u{1f}{:?}\u{1f}{:?}\u{1f}{}\u{1f}{}\u{1f}{}", self.label, self.model, self.class_scores, self.weight, self.specs.join("\u{1e}"), self.baseline, self.max_slices)
    }
}
