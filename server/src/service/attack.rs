//! Robustness and importance through a run's model, per slice: random attacks (decision flips and
//! the accuracy or MAE change under noise), adversarial search (the smallest constrained flips, with a
//! random search of the same budget) and permutation importance.

use std::collections::BTreeMap;

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
        let frame = self.rows(id).await?.frame;
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

/// The prefix of a run's remembered model analyses (adversarial search, importance, attributions):
/// forgotten when the run's models change (an attachment or its endpoints).
pub(crate) fn analysis_key(id: &str) -> String {
    format!("{id}\u{0}model-analysis\u{0}")
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
        let memo = format!("{}importance\u{0}{model_name}\u{0}{q:?}", analysis_key(id));
        if let Some(done) = self.recall::<strata_app::model::FeatureImportance>(&memo) {
            return Ok(done);
        }
        let model = self.model(id, &detail, &model_name).await?;
        let inputs = model.input_names();
        let features: Vec<String> = feature_columns(&detail).into_iter().map(|(n, _)| n).filter(|f| inputs.contains(f)).collect();
        let frame = self.rows(id).await?.frame;
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
        let result = self
            .work
            .run_tracked(move |progress| -> Result<strata_app::model::FeatureImportance, ServiceError> {
                let sorted = |mut v: Vec<strata_app::model::ImportanceRow>| {
                    v.sort_by(|a, b| b.mean.total_cmp(&a.mean).then_with(|| a.feature.cmp(&b.feature)));
                    v
                };
                let (baseline, rows) = crate::models::importance::permutation_importance_tracked(model.as_ref(), &batch, &labels, &features, scoring, repeats, seed, progress)?;
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
            .await??;
        self.remember(&memo, result.clone());
        Ok(result)
    }
}

/// Bounds of a numeric feature in an adversarial search.
#[derive(Clone, Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeatureRange {
    /// Lowest allowed value (default: the lowest observed).
    pub min: Option<f64>,
    /// Highest allowed value (default: the highest observed).
    pub max: Option<f64>,
    /// Changes are multiples of this (default: 1 for a column of whole numbers, else none).
    pub step: Option<f64>,
}

/// An adversarial-search request (`POST /api/v1/runs/{id}/adversarial`). Unknown fields are refused:
/// a misspelt `immutable` must not silently let the search change a protected feature.
#[derive(Clone, Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdversarialRequest {
    /// The model (score column or endpoint); the first callable one when absent.
    pub model: Option<String>,
    /// Examples searched (a seeded uniform sample; 10..=1000, default 200).
    pub sample: Option<usize>,
    pub seed: Option<u64>,
    /// The decision threshold (default 0.5).
    pub threshold: Option<f64>,
    /// Features the search must not change (e.g. `["sex", "race", "age"]`).
    #[serde(default)]
    pub immutable: Vec<String>,
    /// Allowed ranges and steps of numeric features.
    #[serde(default)]
    pub ranges: BTreeMap<String, FeatureRange>,
    /// Allowed values of categorical features (default: the observed ones, most frequent first, at most 10).
    #[serde(default)]
    pub values: BTreeMap<String, Vec<String>>,
    /// The largest change tried (0 < r ≤ 50, default 3): Σ |Δx| / sd + 1 per changed category.
    pub max_radius: Option<f64>,
    /// Greedy steps per example (1..=100, default 20).
    pub max_steps: Option<usize>,
    /// A slice spec (`sex`, `age:q4`) to break the results down by.
    pub slice: Option<String>,
}

impl AppState {
    /// Searches a sample of a binary run for the smallest constrained changes that flip the model's
    /// decision, with a random search of the same budget as the baseline; summarised per slice.
    pub async fn adversarial(&self, id: &str, req: AdversarialRequest) -> Result<strata_app::model::AdversarialResult, ServiceError> {
        use crate::models::adversarial::{Feature, Settings, Space, observed_space, random_search};
        use strata_app::model::{AdversarialChange, AdversarialExample, AdversarialResult, AdversarialSlice, ColumnKind, FeatureUse};
        let bad = ServiceError::BadRequest;
        let (sample, seed, threshold) = (req.sample.unwrap_or(200), req.seed.unwrap_or(0), req.threshold.unwrap_or(0.5));
        let (max_radius, max_steps) = (req.max_radius.unwrap_or(3.0), req.max_steps.unwrap_or(20));
        if !(10..=1000).contains(&sample) || !(0.0..=1.0).contains(&threshold) || !(max_radius > 0.0 && max_radius <= 50.0) || !(1..=100).contains(&max_steps) {
            return Err(bad("sample is 10..=1000, threshold 0..=1, max_radius in (0, 50], max_steps 1..=100".into()));
        }
        let detail = self.run_detail(id).await?;
        if detail.summary.task != Task::Binary {
            return Err(bad("adversarial search flips decisions: it supports binary runs".into()));
        }
        let model_name = match req.model.clone() {
            Some(m) => m,
            None => self.callable_models(id, &detail).await?.first().map(|(s, _)| s.clone()).ok_or_else(|| bad("the run has no model to call".into()))?,
        };
        // The same search again (a page reload, an edit elsewhere on the what-if page): remembered.
        let memo = format!("{}adversarial\u{0}{model_name}\u{0}{req:?}", analysis_key(id));
        if let Some(done) = self.recall::<strata_app::model::AdversarialResult>(&memo) {
            return Ok(done);
        }
        let model = self.model(id, &detail, &model_name).await?;
        let inputs = model.input_names();
        let all = feature_columns(&detail);
        let names = || all.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ");
        for f in req.immutable.iter().chain(req.ranges.keys()).chain(req.values.keys()) {
            if !all.iter().any(|(n, _)| n == f) {
                return Err(bad(format!("'{f}' is not a feature of the run (features: {})", names())));
            }
        }
        let frame = self.rows(id).await?.frame;
        // Spread, whole-number check and the most frequent values on a sample: enough for a unit
        // of distance and the allowed values, bounded work; exact ranges from the run's summary.
        let stats = Batch::from_frame(&take_rows(&frame, &sample_rows(frame.height(), 100_000, 0))?)?;
        let mut features = Vec::new();
        for (name, kind) in all.iter().filter(|(n, _)| inputs.contains(n) && !req.immutable.contains(n)) {
            let numeric = *kind == ColumnKind::Numeric;
            if numeric && req.values.contains_key(name) {
                return Err(bad(format!("values: '{name}' is numeric; give it a range instead")));
            }
            if !numeric && req.ranges.contains_key(name) {
                return Err(bad(format!("ranges: '{name}' is categorical; list its allowed values instead")));
            }
            let Some(observed) = stats.columns.get(name).and_then(|v| observed_space(v, 10)) else { continue };
            let space = match observed {
                Space::Numeric { sd, min, max, step } => {
                    let info = detail.columns.iter().find(|c| c.name == *name);
                    let r = req.ranges.get(name).cloned().unwrap_or_default();
                    let min = r.min.or(info.and_then(|c| c.min)).unwrap_or(min);
                    let max = r.max.or(info.and_then(|c| c.max)).unwrap_or(max);
                    let step = r.step.or(step);
                    if min > max || step.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
                        return Err(bad(format!("ranges: '{name}' needs min ≤ max and a positive step")));
                    }
                    Space::Numeric { sd, min, max, step }
                }
                Space::Categorical { values } => match req.values.get(name) {
                    Some(v) if v.len() > 1000 || v.iter().any(|s| s.len() > 1000) => return Err(bad(format!("values: '{name}' lists at most 1000 values of at most 1000 bytes"))),
                    Some(v) if v.len() > 1 => Space::Categorical { values: v.clone() },
                    Some(_) => continue,
                    None => Space::Categorical { values },
                },
            };
            features.push(Feature { name: name.clone(), space });
        }
        if features.is_empty() {
            return Err(bad("no feature of the model can change: every one is immutable or constant".into()));
        }
        // Moves per example and step (see models::adversarial), for the greedy and shrinking
        // phases; the random search gets as many calls, at most 500 per example.
        let per_step: usize = features.iter().map(|f| match &f.space {
            Space::Numeric { .. } => 5,
            Space::Categorical { values } => values.len().min(12),
        }).sum();
        let tries_cap = 500;
        let cost = sample as u64 * (2 + (per_step * (max_steps + 8)) as u64 + tries_cap as u64);
        self.check_predictions(cost, "adversarial search", "search fewer examples (sample=), fewer steps (max_steps=) or fewer features")?;
        let rows = sample_rows(frame.height(), sample, seed);
        let sub = take_rows(&frame, &rows)?;
        let groups: Vec<String> = slice_labels(&sub, req.slice.as_deref())?.into_iter().map(|g| g.unwrap_or_else(|| "(other)".into())).collect();
        let ids = super::whatif::RowIds::of(&frame, &detail)?;
        let row_ids: Vec<String> = rows.iter().map(|r| ids.get(*r)).collect();
        let batch = Batch::from_frame(&sub)?;
        let settings = Settings { threshold, max_radius, max_steps, seed };
        let immutable: Vec<String> = all.iter().map(|(n, _)| n.clone()).filter(|n| inputs.contains(n) && !features.iter().any(|f| f.name == *n)).collect();
        let result = self
            .work
            .run_tracked(move |progress| -> Result<AdversarialResult, ServiceError> {
                let started = std::time::Instant::now();
                let found = crate::models::adversarial::search_tracked(model.as_ref(), &batch, &features, &settings, progress)?;
                let search_ms = started.elapsed().as_millis() as u64;
                let queries = found.iter().map(|f| f.queries).sum::<usize>() as f64 / found.len().max(1) as f64;
                let started = std::time::Instant::now();
                let random = random_search(model.as_ref(), &batch, &features, &settings, (queries.round() as usize).clamp(1, tries_cap))?;
                let random_ms = started.elapsed().as_millis() as u64;
                let quantile = |mut v: Vec<f64>, q: f64| -> Option<f64> {
                    v.sort_by(f64::total_cmp);
                    (!v.is_empty()).then(|| v[((v.len() - 1) as f64 * q).round() as usize])
                };
                let summarise = |name: String, idx: Vec<usize>| {
                    let n = idx.len().max(1) as f64;
                    let radii: Vec<f64> = idx.iter().filter(|&&i| found[i].flipped).map(|&i| found[i].radius).collect();
                    let random_radii: Vec<f64> = idx.iter().filter_map(|&i| random[i]).collect();
                    AdversarialSlice {
                        slice: name,
                        n: idx.len() as u64,
                        flipped: radii.len() as f64 / n,
                        random_flipped: random_radii.len() as f64 / n,
                        radius_p10: quantile(radii.clone(), 0.1),
                        radius_median: quantile(radii.clone(), 0.5),
                        radius_p90: quantile(radii, 0.9),
                        random_radius_median: quantile(random_radii, 0.5),
                    }
                };
                let mut slices = vec![summarise("overall".into(), (0..found.len()).collect())];
                let mut names: Vec<&String> = groups.iter().collect();
                names.sort();
                names.dedup();
                for g in names {
                    slices.push(summarise(g.clone(), (0..found.len()).filter(|&i| groups[i] == *g).collect()));
                }
                let flipped: Vec<usize> = (0..found.len()).filter(|&i| found[i].flipped).collect();
                let mut uses: Vec<FeatureUse> = features
                    .iter()
                    .map(|f| FeatureUse { feature: f.name.clone(), share: flipped.iter().filter(|&&i| found[i].changes.iter().any(|(c, _, _)| *c == f.name)).count() as f64 / flipped.len().max(1) as f64 })
                    .collect();
                uses.sort_by(|a, b| b.share.total_cmp(&a.share).then_with(|| a.feature.cmp(&b.feature)));
                let mut nearest = flipped.clone();
                nearest.sort_by(|&a, &b| found[a].radius.total_cmp(&found[b].radius).then(a.cmp(&b)));
                let examples = nearest
                    .into_iter()
                    .take(20)
                    .map(|i| AdversarialExample {
                        id: row_ids[i].clone(),
                        before: found[i].before,
                        after: found[i].after,
                        radius: found[i].radius,
                        changes: found[i].changes.iter().map(|(feature, from, to)| AdversarialChange { feature: feature.clone(), from: from.clone(), to: to.clone() }).collect(),
                    })
                    .collect();
                Ok(AdversarialResult {
                    model: model_name,
                    threshold,
                    sample: found.len() as u64,
                    seed,
                    max_radius,
                    max_steps: max_steps as u64,
                    immutable,
                    queries_per_example: queries,
                    search_ms,
                    random_ms,
                    slices,
                    features: uses,
                    examples,
                })
            })
            .await??;
        self.remember(&memo, result.clone());
        Ok(result)
    }
}
