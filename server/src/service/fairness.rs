//! The fairness view (`/runs/{id}/fairness`) and the comparison of models and runs
//! (`/compare?runs=A,B`): parse the URL's query, run the engine per model, check the criteria,
//! draw the charts, export the view.

use strata_app::model::{ColumnKind, FairnessCard, FairnessEntry, FairnessView, MetricsResult, Role, RunDetail, Task};

use super::{AppState, MAX_SLICES, ServiceError, params};
use crate::charts;
use crate::eval::fairness::{check, default_limits, parse_limits, suggest_thresholds};
use crate::eval::sliced::{MetricsRequest, parse_thresholds};
use strata_app::metrics::fairness_names;

// The metrics the fairness view offers (Fairness Indicators' set, plus accuracy and ranking) are
// the registry's `fairness` ones: `strata_app::metrics::fairness_names`.
/// The setting key the limits are stored under.
pub const LIMITS_KEY: &str = "fairness_limits";

/// A fairness request, parsed.
#[derive(Clone, Debug)]
pub struct FairnessQuery {
    /// (run id, model) pairs; filled from `runs` / `model` by the caller's route.
    pub models: Vec<String>,
    pub runs: Vec<String>,
    pub feature: Option<String>,
    pub thresholds: Vec<f64>,
    pub metrics: Vec<String>,
    pub baseline: String,
    pub min_size: u64,
    pub ci: f64,
    pub bootstrap: usize,
    pub seed: u64,
    pub alpha: f64,
    pub limits: Option<String>,
    pub criterion: String,
    /// Compute counterfactual flip rates through the attached model.
    pub flip: bool,
    pub flip_sample: usize,
}

/// The fairness request from its parameters: the defaults and every check, once for the API, the
/// comparison, the page and the export. Every mistake is a 400 that names it.
pub fn fairness_query(p: params::FairnessParams) -> Result<FairnessQuery, ServiceError> {
    let bad = ServiceError::BadRequest;
    let mut metrics: Vec<String> = Vec::new();
    for m in params::comma_list(&p.metric) {
        if !fairness_names().any(|f| f == m) {
            return Err(bad(format!("unknown metric '{m}' (one of: {})", fairness_names().collect::<Vec<_>>().join(", "))));
        }
        if !metrics.contains(&m) {
            metrics.push(m);
        }
    }
    if metrics.is_empty() {
        metrics = vec!["fpr".into(), "tpr".into(), "positive_rate".into()];
    }
    let criterion = p.criterion.unwrap_or_else(|| "equal_opportunity".into());
    if criterion != "equal_opportunity" && criterion != "demographic_parity" {
        return Err(bad(format!("criterion '{criterion}' is not one of equal_opportunity, demographic_parity")));
    }
    let flip_sample = p.flip_sample.unwrap_or(2000);
    if !(10..=20_000).contains(&flip_sample) {
        return Err(bad("flip_sample is a whole number in 10..=20000".into()));
    }
    let thresholds = match p.thresholds {
        Some(t) => parse_thresholds(&t).map_err(bad)?,
        None => vec![0.3, 0.5, 0.7],
    };
    if thresholds.is_empty() || thresholds.len() > 10 {
        return Err(bad("give between 1 and 10 thresholds".into()));
    }
    let q = FairnessQuery {
        models: params::comma_list(&p.model),
        runs: params::comma_list(&p.runs),
        feature: p.feature,
        thresholds,
        metrics,
        baseline: p.baseline.unwrap_or_else(|| "overall".into()),
        min_size: p.min_size.unwrap_or(30),
        ci: p.ci.unwrap_or(0.95),
        bootstrap: p.bootstrap.unwrap_or(200),
        seed: p.seed.unwrap_or(0),
        alpha: p.alpha.unwrap_or(0.05),
        limits: p.limits,
        criterion,
        flip: p.flip.is_some_and(|v| v == "1" || v == "true"),
        flip_sample,
    };
    if q.models.len() > 6 || q.runs.len() > 12 {
        return Err(bad("compare at most 6 models or 12 runs at once".into()));
    }
    Ok(q)
}

/// Parses a fairness query string (the page's keys, `sort` and `format`, are not the API's and
/// are left out).
pub fn parse_fairness_query(query: &str) -> Result<FairnessQuery, ServiceError> {
    let (_, api) = params::split(query, params::FAIRNESS_PAGE_KEYS);
    fairness_query(params::decode_pairs(&api)?)
}

fn categorical_features(d: &RunDetail) -> Vec<String> {
    d.columns.iter().filter(|c| c.role == Role::Feature && c.kind != ColumnKind::Numeric).map(|c| c.name.clone()).collect()
}

impl AppState {
    /// The fairness view of one run (`run_ids = [id]`, models from `model=`) or a comparison of
    /// runs (`runs=A,B`, each with its first model or the `model=` it has).
    pub async fn fairness_view(&self, run_ids: &[String], query: &str) -> Result<FairnessView, ServiceError> {
        let q = parse_fairness_query(query)?;
        let run_ids: Vec<String> = if run_ids.is_empty() { q.runs.clone() } else { run_ids.to_vec() };
        if run_ids.is_empty() {
            return Err(ServiceError::BadRequest("name the runs to compare: runs=A,B".into()));
        }
        let mut details = Vec::new();
        for id in &run_ids {
            let d = self.run_detail(id).await?;
            if d.summary.task != Task::Binary {
                return Err(ServiceError::BadRequest(format!("run '{}' is {}: the fairness view is for binary classification", d.summary.name, d.summary.task.as_str())));
            }
            details.push(d);
        }
        let first = &details[0];
        let features = categorical_features(first);
        let feature = q.feature.clone().or_else(|| features.iter().find(|f| f.as_str() == "race").or(features.first()).cloned())
            .ok_or_else(|| ServiceError::BadRequest("the run has no categorical feature to compare groups by; name one with feature=".into()))?;
        // Entries: several models of one run, or one model per run.
        let mut pairs: Vec<(usize, String)> = Vec::new();
        if details.len() == 1 {
            let models = if q.models.is_empty() { vec![first.summary.models.first().cloned().unwrap_or_default()] } else { q.models.clone() };
            for m in models {
                if !first.summary.models.contains(&m) {
                    return Err(ServiceError::BadRequest(format!("model '{m}' is not a score column of this run (models: {})", first.summary.models.join(", "))));
                }
                pairs.push((0, m));
            }
        } else {
            for (i, d) in details.iter().enumerate() {
                let m = q.models.iter().find(|m| d.summary.models.contains(m)).cloned().or_else(|| d.summary.models.first().cloned()).unwrap_or_default();
                pairs.push((i, m));
            }
        }
        let stored = self.store.get_setting(&run_ids[0], LIMITS_KEY).await?;
        let base_limits = match &stored {
            Some(text) => parse_limits(text, &default_limits()).unwrap_or_else(|_| default_limits()),
            None => default_limits(),
        };
        let limits = match &q.limits {
            Some(text) => parse_limits(text, &base_limits).map_err(ServiceError::BadRequest)?,
            None => base_limits,
        };
        let request = |d: &RunDetail, model: &str, thresholds: Vec<f64>, bootstrap: usize| MetricsRequest {
            label: d.label.clone(),
            model: model.to_string(),
            class_scores: d.class_scores(model),
            weight: d.columns.iter().find(|c| c.role == Role::Weight).map(|c| c.name.clone()),
            specs: vec![feature.clone()],
            thresholds,
            ci: q.ci,
            bootstrap,
            seed: q.seed,
            baseline: q.baseline.clone(),
            min_size: q.min_size,
            max_slices: MAX_SLICES,
            alpha: q.alpha,
        };
        let mut entries = Vec::new();
        // One model of one run: its other models are guessed at once the view is answered.
        let mut guess = None;
        for (i, model) in &pairs {
            let d = &details[*i];
            let req = request(d, model, q.thresholds.clone(), q.bootstrap);
            let result = self.compute_metrics(&d.summary.id, req.clone(), Task::Binary).await?;
            if details.len() == 1 && pairs.len() == 1 {
                guess = Some((d.summary.id.clone(), req, d.summary.models.clone()));
            }
            entries.push(FairnessEntry { run_id: d.summary.id.clone(), run_name: d.summary.name.clone(), created_at: d.summary.created_at.clone(), model: model.clone(), result });
        }
        let cards: Vec<FairnessCard> = entries
            .iter()
            .enumerate()
            .flat_map(|(e, entry)| {
                let limits = &limits;
                entry.result.criteria.iter().filter(|c| c.spec == feature).map(move |c| FairnessCard { entry: e, threshold: c.threshold, groups: c.groups, checks: check(c, limits) })
            })
            .collect();
        // The trade-off over the whole threshold range, for the first entry (no bootstrap: the
        // prepared cells are cached, so this is one more pass).
        let grid_thresholds = parse_thresholds("0:1:0.01").map_err(ServiceError::BadRequest)?;
        let grid: MetricsResult = self.compute_metrics(&entries[0].run_id, request(&details[pairs[0].0], &entries[0].model, grid_thresholds, 0), Task::Binary).await?;
        let suggestion = suggest_thresholds(&grid, &feature, &q.criterion, q.min_size, q.thresholds[0], 0.02);
        let charts = q.metrics.iter().map(|m| (m.clone(), charts::fairness_bars(&entries, &feature, m, q.min_size))).collect();
        let over_time_chart = (details.len() >= 2).then(|| charts::fairness_over_time(&entries, &feature, &q.metrics[0], q.thresholds[0]));
        let (flip, flip_note) = if q.flip { self.flip_rates(&details[pairs[0].0], &entries[0].model, &feature, &entries[0].result, q.thresholds[0], q.flip_sample, q.seed).await? } else { (None, None) };
        if let Some((id, req, models)) = guess {
            self.warm_other_models(&id, &req, Task::Binary, &models);
        }
        Ok(FairnessView {
            flip,
            flip_note,
            tradeoff_chart: Some(charts::fairness_tradeoff(&grid, &feature, q.min_size)),
            entries,
            feature,
            thresholds: q.thresholds.clone(),
            metrics: q.metrics.clone(),
            baseline: q.baseline.clone(),
            min_size: q.min_size,
            cards,
            charts,
            suggestion,
            over_time_chart,
            models: first.summary.models.clone(),
            features,
            metric_names: fairness_names().map(str::to_string).collect(),
            limits,
            limits_stored: stored.is_some(),
            columns: self.column_briefs(first).await?,
        })
    }

    /// Flip rates of the first model at the first threshold on a sample (needs a single sensitive
    /// feature and a model file attached for the score column).
    async fn flip_rates(&self, d: &RunDetail, model: &str, feature: &str, result: &MetricsResult, threshold: f64, sample: usize, seed: u64) -> Result<(Option<strata_app::model::FlipRates>, Option<String>), ServiceError> {
        if feature.contains(',') || feature.contains(':') {
            return Ok((None, Some("flip rates swap one sensitive feature's values: choose a single feature (not a cross or buckets)".into())));
        }
        if !crate::service::models::attached_models(d).iter().any(|(s, _)| s == model) {
            return Ok((None, Some(format!("no model file is attached for '{model}', so nothing can be re-predicted"))));
        }
        let values: Vec<String> = result.slices.iter().filter(|s| s.spec == feature).filter_map(|s| s.key.get(feature).cloned()).filter(|v| v != crate::eval::slicing::MISSING).collect();
        // Each sampled row with each of the feature's values swapped in.
        let rows = (sample as u64).min(d.summary.rows);
        if let Err(e) = self.check_predictions(rows * values.len() as u64, "flip-rate check", "sample fewer rows (flip_sample=)") {
            return Ok((None, Some(e.to_string())));
        }
        let m = self.model(&d.summary.id, d, model).await?;
        let frame = self.frame(&d.summary.id).await?;
        let rows = crate::eval::sample_rows(frame.height(), sample, seed);
        let batch = crate::models::Batch::from_frame(&crate::eval::take_rows(&frame, &rows)?)?;
        let feature = feature.to_string();
        let r = self.work.run(move || crate::models::flip::flip_rates(m.as_ref(), &batch, &feature, &values, threshold))
            .await??;
        Ok((Some(r), None))
    }

    /// Saves the fairness limits with a run (validated; `name:value,…`).
    pub async fn save_limits(&self, id: &str, text: &str) -> Result<Vec<(String, f64)>, ServiceError> {
        let limits = parse_limits(text, &default_limits()).map_err(ServiceError::BadRequest)?;
        let canonical = limits.iter().map(|(n, v)| format!("{n}:{v}")).collect::<Vec<_>>().join(",");
        if !self.store.put_setting(id, LIMITS_KEY, &canonical).await? {
            return Err(ServiceError::NotFound(id.to_string()));
        }
        Ok(limits)
    }
}
