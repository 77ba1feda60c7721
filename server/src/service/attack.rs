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
        let groups: Vec<String> = match req.slice.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(spec) => {
                let parsed = crate::eval::slicing::SliceSpec::parse(spec).map_err(|e| bad(e.to_string()))?;
                let a = crate::eval::slicing::assign(&sub, spec, &parsed, super::MAX_SLICES).map_err(|e| bad(e.to_string()))?;
                a.slice_of_row.iter().map(|s| s.map(|s| a.keys[s as usize].iter().map(|(c, v)| format!("{c}={v}")).collect::<Vec<_>>().join(", ")).unwrap_or_else(|| "(other)".into())).collect()
            }
            None => vec![],
        };
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
