//! Attributions of one prediction: KernelSHAP through any callable model, exact TreeSHAP for a tree
//! ensemble Strata can read; the example may carry what-if edits.

use std::collections::BTreeMap;

use strata_app::model::{AttributionValue, Attributions, Task};

use super::models::feature_columns;
use super::{AppState, ServiceError, params};
use crate::eval::{sample_rows, take_rows};
use crate::models::{Batch, Values};

/// An attribution request (`GET /api/v1/runs/{id}/attributions?example=…`, edits as `set.<feature>=`).
#[derive(Clone, Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttributionQuery {
    /// The example's id.
    pub example: String,
    /// The model (score column or endpoint); the first callable one when absent.
    pub model: Option<String>,
    /// `kernel` (default: any model) or `tree` (exact TreeSHAP: a bare ONNX tree ensemble).
    pub method: Option<String>,
    /// KernelSHAP coalitions sampled (10..=10000, default 500); all of them when 2^M − 2 fit.
    pub samples: Option<usize>,
    /// Background rows (a seeded uniform sample of the run; 5..=1000, default 50).
    pub background: Option<usize>,
    pub seed: Option<u64>,
}

/// The query and the example's edits.
pub fn decode_attribution_query(query: &str) -> Result<(AttributionQuery, BTreeMap<String, String>), ServiceError> {
    let (edits, rest) = params::split(query, &[params::WHATIF_EDIT_PREFIX]);
    let edits = edits.into_iter().map(|(k, v)| (k[params::WHATIF_EDIT_PREFIX.len()..].to_string(), v)).collect();
    Ok((params::decode_pairs(&rest)?, edits))
}

impl AppState {
    /// SHAP values of one (possibly edited) example of a run against a background sample of it.
    pub async fn attributions(&self, id: &str, q: AttributionQuery, edits: &BTreeMap<String, String>) -> Result<Attributions, ServiceError> {
        let bad = ServiceError::BadRequest;
        let (samples, background, seed) = (q.samples.unwrap_or(500), q.background.unwrap_or(50), q.seed.unwrap_or(0));
        let method = q.method.clone().unwrap_or_else(|| "kernel".into());
        if !(10..=10_000).contains(&samples) || !(5..=1000).contains(&background) || !["kernel", "tree"].contains(&method.as_str()) {
            return Err(bad("samples is 10..=10000, background 5..=1000, method kernel or tree".into()));
        }
        let detail = self.run_detail(id).await?;
        if detail.summary.task == Task::Multiclass {
            return Err(bad("attributions support binary and regression runs".into()));
        }
        let model_name = match q.model.clone() {
            Some(m) => m,
            None => self.callable_models(id, &detail).await?.first().map(|(s, _)| s.clone()).ok_or_else(|| bad("the run has no model to call".into()))?,
        };
        let memo = format!("{}attributions\u{0}{model_name}\u{0}{q:?}\u{0}{edits:?}", super::attack::analysis_key(id));
        if let Some(done) = self.recall::<Attributions>(&memo) {
            return Ok(done);
        }
        let model = self.model(id, &detail, &model_name).await?;
        let frame = self.rows(id).await?.frame;
        let ids = super::whatif::RowIds::of(&frame, &detail)?;
        let row = ids.row_of(&q.example)?;
        let example = super::whatif::edited(&Batch::from_frame(&take_rows(&frame, &[row])?)?, edits, &detail)?;
        let rows = sample_rows(frame.height(), background, seed);
        let back = Batch::from_frame(&take_rows(&frame, &rows)?)?;
        let inputs = model.input_names();
        let features: Vec<String> = feature_columns(&detail).into_iter().map(|(n, _)| n).filter(|f| inputs.contains(f)).collect();
        if method == "kernel" {
            // Every sampled coalition is predicted once per background row.
            self.check_predictions((samples as u64 + 2) * rows.len() as u64, "attribution", "sample fewer coalitions (samples=) or background rows (background=)")?;
        } else if model.trees().is_none() {
            return Err(bad(format!("model '{model_name}' is not a tree ensemble Strata can read (one ONNX TreeEnsembleClassifier/Regressor over one [N, k] input): use method=kernel")));
        }
        let (example_id, name) = (q.example.clone(), model_name.clone());
        let result = self
            .work
            .run(move || -> Result<Attributions, ServiceError> {
                let started = std::time::Instant::now();
                let (base, prediction, values, exact, coalitions, predictions, output) = match model.trees() {
                    Some(trees) if method == "tree" => {
                        let round = |x: f64| if trees.float32 { x as f32 as f64 } else { x };
                        let vector = |b: &Batch, i: usize| -> Vec<f64> {
                            trees.columns.iter().map(|c| match b.columns.get(c) { Some(Values::Numeric(v)) => round(v[i]), _ => f64::NAN }).collect()
                        };
                        let x = vector(&example, 0);
                        let r: Vec<Vec<f64>> = (0..back.rows).map(|i| vector(&back, i)).collect();
                        let phi = trees.ensemble.tree_shap(&x, &r, trees.target);
                        let base = r.iter().map(|r| trees.ensemble.margin(r, trees.target)).sum::<f64>() / r.len().max(1) as f64;
                        let values = trees.columns.iter().cloned().zip(phi).collect::<Vec<_>>();
                        (base, trees.ensemble.margin(&x, trees.target), values, true, 0, 0, if trees.post_transform == "NONE" { "score" } else { "margin" })
                    }
                    _ => {
                        let a = crate::models::shap::kernel_shap(model.as_ref(), &example, &back, &features, samples, seed)?;
                        (a.base, a.prediction, a.values, a.exact, a.coalitions, a.predictions, "score")
                    }
                };
                let mut values: Vec<AttributionValue> = values.into_iter().map(|(feature, attribution)| AttributionValue { value: super::whatif::text(&example, &feature), feature, attribution }).collect();
                values.sort_by(|a, b| b.attribution.abs().total_cmp(&a.attribution.abs()).then_with(|| a.feature.cmp(&b.feature)));
                Ok(Attributions {
                    model: name,
                    example: example_id,
                    method,
                    output: output.into(),
                    base,
                    prediction,
                    values,
                    exact,
                    coalitions: coalitions as u64,
                    predictions: predictions as u64,
                    background: back.rows as u64,
                    samples: samples as u64,
                    seed,
                    elapsed_ms: started.elapsed().as_millis() as u64,
                })
            })
            .await??;
        self.remember(&memo, result.clone());
        Ok(result)
    }
}
