//! Random attacks: perturb a sample of a run, call its model, report decision flips and the
//! accuracy (or MAE) change per slice.

use strata_app::model::Task;

use super::models::feature_columns;
use super::{AppState, ServiceError};
use crate::eval::{sample_rows, take_rows};
use crate::models::Batch;

/// A random-attack request (`POST /api/v1/runs/{id}/attacks`).
#[derive(Clone, Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct AttackRequest {
    /// The model (score column or endpoint) to attack; the first callable one when absent.
    #[serde(default)]
    pub model: Option<String>,
    /// Gaussian noise on numeric features in units of each feature's standard deviation (default 0.1).
    #[serde(default = "default_noise")]
    pub noise: f64,
    /// Probability of swapping a categorical feature for another observed value (default 0.05).
    #[serde(default = "default_swap")]
    pub swap: f64,
    /// Examples attacked (a seeded uniform sample; default 2000).
    #[serde(default = "default_sample")]
    pub sample: usize,
    #[serde(default)]
    pub seed: u64,
    /// A slice spec to break the results down by (e.g. `sex`, `age:q4`).
    #[serde(default)]
    pub slice: Option<String>,
    #[serde(default = "default_threshold")]
    pub threshold: f64,
}

fn default_noise() -> f64 {
    0.1
}
fn default_swap() -> f64 {
    0.05
}
fn default_sample() -> usize {
    2000
}
fn default_threshold() -> f64 {
    0.5
}

impl AppState {
    /// Perturbs a sample of the run and reports flips and the accuracy (or MAE) change per slice.
    pub async fn attack(&self, id: &str, req: AttackRequest) -> Result<strata_app::model::AttackResult, ServiceError> {
        let bad = ServiceError::BadRequest;
        if !(0.0..=10.0).contains(&req.noise) || !(0.0..=1.0).contains(&req.swap) || !(10..=50_000).contains(&req.sample) || !(0.0..=1.0).contains(&req.threshold) {
            return Err(bad("noise is 0..=10 (standard deviations), swap 0..=1, sample 10..=50000, threshold 0..=1".into()));
        }
        let detail = self.run_detail(id).await?;
        if detail.summary.task == Task::Multiclass {
            return Err(bad("random attacks support binary and regression runs".into()));
        }
        let model_name = match req.model.clone() {
            Some(m) => m,
            None => self.callable_models(id, &detail).await?.first().map(|(s, _)| s.clone()).ok_or_else(|| bad("the run has no model to call".into()))?,
        };
        // The sample before and after the perturbation.
        self.check_predictions(2 * req.sample as u64, "attack", "attack fewer examples (sample=)")?;
        let model = self.model(id, &detail, &model_name).await?;
        let frame = self.frame(id).await?;
        let rows = sample_rows(frame.height(), req.sample, req.seed);
        let sub = take_rows(&frame, &rows)?;
        let groups: Vec<String> = slice_labels(&sub, req.slice.as_deref())?.into_iter().map(|g| g.unwrap_or_else(|| "(other)".into())).collect();
        let labels = crate::eval::f64_values(&sub, &detail.label)?;
        let finite: Vec<f64> = labels.iter().copied().filter(|x| x.is_finite()).collect();
        let mean = finite.iter().sum::<f64>() / finite.len().max(1) as f64;
        let label_sd = (finite.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / finite.len().saturating_sub(1).max(1) as f64).sqrt();
        let batch = Batch::from_frame(&sub)?;
        let features: Vec<String> = feature_columns(&detail).into_iter().map(|(n, _)| n).collect();
        let binary = detail.summary.task == Task::Binary;
        let (noise, swap, seed, threshold) = (req.noise, req.swap, req.seed, req.threshold);
        let slices = self.work.run(move || {
            let perturbed = crate::models::attack::perturb(&batch, &features, noise, swap, seed);
            crate::models::attack::attack(model.as_ref(), &batch, &perturbed, &labels, &groups, binary, threshold, label_sd)
        })
        .await??;
        Ok(strata_app::model::AttackResult { model: model_name, noise, swap, threshold, sample: rows.len() as u64, seed, slices })
    }
}

/// Each row's slice of `spec` as `col=value, …` (`None`: in no slice); empty without a spec.
fn slice_labels(sub: &polars::prelude::DataFrame, spec: Option<&str>) -> Result<Vec<Option<String>>, ServiceError> {
    let Some(spec) = spec.filter(|s| !s.trim().is_empty()) else { return Ok(vec![]) };
    let parsed = crate::eval::slicing::SliceSpec::parse(spec).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
    let a = crate::eval::slicing::assign(sub, spec, &parsed, super::MAX_SLICES).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
    Ok(a.slice_of_row.iter().map(|s| s.map(|s| a.keys[s as usize].iter().map(|(c, v)| format!("{c}={v}")).collect::<Vec<_>>().join(", "))).collect())
}

/// A permutation-importance request (`GET /api/v1/runs/{id}/importance`).
#[derive(Clone, Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportanceQuery {
    /// The model (score column or endpoint); the first callable one when absent.
    pub model: Option<String>,
    /// `auc_roc` (default), `accuracy` or `log_loss` for a binary run; `mae` for a regression.
    pub metric: Option<String>,
    /// Permutations per feature (2..=50, default 5).
    pub repeats: Option<usize>,
    /// Rows sampled (a seeded uniform sample; 20..=20000, default 2000).
    pub sample: Option<usize>,
    pub seed: Option<u64>,
    /// The decision threshold of `accuracy` (default 0.5).
    pub threshold: Option<f64>,
    /// A slice spec (`sex`, `age:q4`) for the same per slice (slices of at least 20 sampled rows).
    pub slice: Option<String>,
}

impl AppState {
    /// Permutation feature importance of a run's model on a seeded sample, overall and per slice.
    pub async fn importance(&self, id: &str, q: ImportanceQuery) -> Result<strata_app::model::FeatureImportance, ServiceError> {
        use crate::models::importance::{Scoring, permutation_importance};
        let bad = ServiceError::BadRequest;
        let (repeats, sample, seed, threshold) = (q.repeats.unwrap_or(5), q.sample.unwrap_or(2000), q.seed.unwrap_or(0), q.threshold.unwrap_or(0.5));
        if !(2..=50).contains(&repeats) || !(20..=20_000).contains(&sample) || !(0.0..=1.0).contains(&threshold) {
            return Err(bad("repeats is 2..=50, sample 20..=20000, threshold 0..=1".into()));
        }
        let detail = self.run_detail(id).await?;
        if detail.summary.task == Task::Multiclass {
            return Err(bad("permutation importance supports binary and regression runs".into()));
        }
        let binary = detail.summary.task == Task::Binary;
        let scoring = Scoring::parse(q.metric.as_deref().unwrap_or(if binary { "auc_roc" } else { "mae" }), binary, threshold).map_err(bad)?;
        let model_name = match q.model.clone() {
            Some(m) => m,
            None => self.callable_models(id, &detail).await?.first().map(|(s, _)| s.clone()).ok_or_else(|| bad("the run has no model to call".into()))?,
        };
        let model = self.model(id, &detail, &model_name).await?;
        let inputs = model.input_names();
        let features: Vec<String> = feature_columns(&detail).into_iter().map(|(n, _)| n).filter(|f| inputs.contains(f)).collect();
        let frame = self.frame(id).await?;
        let rows = sample_rows(frame.height(), sample, seed);
        // Overall plus each slice: (1 + features × repeats) predictions of the sample, twice with slices.
        let slices_too = q.slice.as_deref().is_some_and(|s| !s.trim().is_empty());
        let cost = rows.len() as u64 * (1 + features.len() as u64 * repeats as u64) * if slices_too { 2 } else { 1 };
        self.check_predictions(cost, "permutation importance", "sample fewer rows (sample=) or use fewer repeats (repeats=)")?;
        let sub = take_rows(&frame, &rows)?;
        let groups = slice_labels(&sub, q.slice.as_deref())?;
        let labels = crate::eval::f64_values(&sub, &detail.label)?;
        let batch = Batch::from_frame(&sub)?;
        let n = rows.len() as u64;
        let (metric, name) = (scoring.name().to_string(), model_name.clone());
        self.work
            .run(move || -> Result<strata_app::model::FeatureImportance, ServiceError> {
                let sorted = |mut v: Vec<strata_app::model::ImportanceRow>| {
                    v.sort_by(|a, b| b.mean.total_cmp(&a.mean).then_with(|| a.feature.cmp(&b.feature)));
                    v
                };
                let (baseline, rows) = permutation_importance(model.as_ref(), &batch, &labels, &features, scoring, repeats, seed)?;
                let mut names: Vec<&String> = groups.iter().flatten().collect();
                names.sort();
                names.dedup();
                let mut slices = Vec::new();
                for g in names {
                    let idx: Vec<usize> = groups.iter().enumerate().filter(|(_, s)| s.as_ref() == Some(g)).map(|(i, _)| i).collect();
                    if idx.len() < 20 {
                        continue;
                    }
                    let part = batch.take(&idx);
                    let y: Vec<f64> = idx.iter().map(|i| labels[*i]).collect();
                    let (b, r) = permutation_importance(model.as_ref(), &part, &y, &features, scoring, repeats, seed)?;
                    slices.push(strata_app::model::SliceImportance { slice: g.clone(), n: idx.len() as u64, baseline: b, features: sorted(r) });
                }
                Ok(strata_app::model::FeatureImportance { model: name, metric, repeats: repeats as u64, sample: n, seed, baseline, features: sorted(rows), slices })
            })
            .await?
    }
}
