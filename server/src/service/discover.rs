//! Slice discovery for a run (`GET /api/v1/runs/{id}/discover`, the discovery page): the request's
//! checks and defaults, the search off the async workers, the answer in the API's terms.

use strata_app::model::{Ci, ColumnKind, DiscoveredSlice, DiscoveryResult, DiscoveryView, NamedSlice, Role, Task};

use crate::eval::slicing::SliceSpec;

use super::{AppState, ServiceError, params};
use crate::eval::discover::{self, Params, Scoring, frame};

/// Most distinct values of a text feature the search takes by default (an id-like column would
/// make as many one-row slices).
const MAX_DEFAULT_CARDINALITY: u64 = 1000;

/// Candidate slices the search evaluates per level at most (it says when it stops there).
pub const MAX_CANDIDATES: usize = 1_000_000;

/// Bound on the work of one search: rows read × passes (one pass per set of features that has
/// candidates, at most every set of up to `level` features). 1M rows × 50 features at level 3 fit.
const MAX_ROW_PASSES: u64 = 25_000_000_000;

impl AppState {
    /// Finds the slices where a model is significantly worse than on the rest of the rows.
    pub async fn discover(&self, id: &str, query: &str) -> Result<DiscoveryResult, ServiceError> {
        let bad = ServiceError::BadRequest;
        let p: params::DiscoverParams = params::decode(query)?;
        let detail = self.run_detail(id).await?;
        let task = detail.summary.task;
        let models = &detail.summary.models;
        let model = match p.model.clone().filter(|m| !m.is_empty()) {
            Some(m) if !models.contains(&m) => return Err(bad(format!("model '{m}' is not a score column of this run (models: {})", models.join(", ")))),
            Some(m) => m,
            None => models.first().cloned().ok_or_else(|| bad("the run has no model column".into()))?,
        };
        let names = frame::metric_names(task);
        let metric = p.metric.clone().filter(|m| !m.is_empty()).unwrap_or_else(|| names[0].to_string());
        if !names.contains(&metric.as_str()) {
            return Err(bad(format!("slice discovery does not support metric '{metric}' for a {} run (one of: {})", task.as_str(), names.join(", "))));
        }
        let at_threshold = task == Task::Binary && !["log_loss", "brier_score", "expected_calibration_error", "auc_roc"].contains(&metric.as_str());
        let threshold = p.thresholds.unwrap_or(0.5);
        if !(0.0..=1.0).contains(&threshold) {
            return Err(bad(format!("threshold {threshold} is outside [0, 1]")));
        }
        let feature_cols: Vec<(String, ColumnKind, u64)> = detail.columns.iter().filter(|c| c.role == Role::Feature && c.kind != ColumnKind::Timestamp).map(|c| (c.name.clone(), c.kind, c.distinct)).collect();
        let asked = params::comma_list(&p.features);
        let chosen: Vec<(String, bool)> = if asked.is_empty() {
            feature_cols.iter().filter(|(_, k, d)| *k == ColumnKind::Numeric || *d <= MAX_DEFAULT_CARDINALITY).map(|(n, k, _)| (n.clone(), *k == ColumnKind::Numeric)).collect()
        } else {
            if asked.len() > 200 {
                return Err(bad("at most 200 features".into()));
            }
            asked
                .iter()
                .map(|f| match feature_cols.iter().find(|(n, _, _)| n == f) {
                    Some((n, k, _)) => Ok((n.clone(), *k == ColumnKind::Numeric)),
                    None => {
                        let close = crate::eval::names::closest(f, feature_cols.iter().map(|c| c.0.as_str()));
                        let hint = match close.first() {
                            Some(c) => format!("did you mean '{c}'?"),
                            None => format!("the features are {}", feature_cols.iter().map(|c| c.0.as_str()).collect::<Vec<_>>().join(", ")),
                        };
                        Err(bad(format!("'{f}' is not a feature column of this run; {hint}")))
                    }
                })
                .collect::<Result<_, _>>()?
        };
        if chosen.is_empty() {
            return Err(bad("the run has no feature column to slice by".into()));
        }
        let buckets = p.buckets.unwrap_or(5);
        let level = p.level.unwrap_or(3);
        let top_k = p.top_k.unwrap_or(20);
        let (fdr, ci, alpha) = (p.fdr.unwrap_or(0.05), p.ci.unwrap_or(0.95), p.alpha.unwrap_or(0.95));
        if !(2..=10).contains(&buckets) || !(1..=3).contains(&level) || !(1..=100).contains(&top_k) {
            return Err(bad("buckets is 2..=10, level 1..=3, top_k 1..=100".into()));
        }
        if !(fdr > 0.0 && fdr < 1.0) || !(ci > 0.0 && ci < 1.0) || !(alpha > 0.0 && alpha <= 1.0) {
            return Err(bad("fdr and ci are in (0, 1), alpha in (0, 1]".into()));
        }
        let scoring = match p.scoring.as_deref().filter(|s| !s.is_empty()).unwrap_or("gap") {
            "gap" => Scoring::Gap,
            "sliceline" => Scoring::SliceLine { alpha },
            other => return Err(bad(format!("scoring '{other}' is gap or sliceline"))),
        };
        let holdout = p.holdout.as_deref().is_some_and(|v| v == "1" || v == "true");
        let memo = format!("{}discover\u{0}{model}\u{0}{p:?}", super::attack::analysis_key(id));
        if let Some(done) = self.recall::<DiscoveryResult>(&memo) {
            return Ok(done);
        }
        // An external run's search reads its row sample (stated with the result): the slices
        // it finds can be opened in the slices view, which counts them over every row.
        let super::external::Rows { frame: df, sample } = self.rows(id).await?;
        let rows = df.height() as u64;
        let min_support = p.min_support.unwrap_or_else(|| (rows / 100).max(30));
        if min_support == 0 {
            return Err(bad("min_support is at least 1".into()));
        }
        let f = chosen.len() as u64;
        let sets = f + if level >= 2 { f * (f - 1) / 2 } else { 0 } + if level >= 3 { (f * (f - 1) * (f - 2) / 6).min(MAX_CANDIDATES as u64) } else { 0 };
        if sets.saturating_mul(rows) > MAX_ROW_PASSES {
            return Err(bad(format!(
                "a level-{level} search over {f} features may read the {rows} rows up to {sets} times, more than this server allows: pick fewer features (features=) or fewer features per slice (level=)"
            )));
        }
        let label = detail.label.clone();
        let weight = detail.columns.iter().find(|c| c.role == Role::Weight).map(|c| c.name.clone());
        let params = Params { max_level: level, min_support, top_k, fdr, ci, scoring, holdout, seed: p.seed.unwrap_or(0), max_candidates: MAX_CANDIDATES };
        let (model_c, metric_c) = (model.clone(), metric.clone());
        let result = self
            .work
            .run_tracked(move |progress| -> Result<DiscoveryResult, ServiceError> {
                let started = std::time::Instant::now();
                let encoded = frame::encode(&df, &chosen, buckets)?;
                let (target, worse) = frame::target(&df, task, &label, &model_c, weight.as_deref(), &metric_c, threshold)?;
                let found = discover::discover_tracked(&encoded.features, &target, worse, &params, progress).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
                let ci_of = |e: &discover::Estimate| Ci { value: e.value, lo: e.lo, hi: e.hi };
                let slices = found
                    .slices
                    .iter()
                    .map(|s| DiscoveredSlice {
                        key: s.items.iter().map(|it| (encoded.features[it.feature as usize].name.clone(), encoded.cond(it).label())).collect(),
                        features: s.items.iter().map(|it| encoded.features[it.feature as usize].name.clone()).collect(),
                        count: s.count,
                        metric: ci_of(&s.metric),
                        complement: ci_of(&s.complement),
                        gap: ci_of(&s.gap),
                        score: s.score,
                        p_value: s.p_value,
                        q_value: s.q_value,
                        parent_p: s.parent_p,
                        parent_q: s.parent_q,
                        group: s.group,
                        overlap: s.overlap,
                        filter: encoded.filter(&s.items),
                        spec: encoded.spec(&s.items),
                    })
                    .collect();
                Ok(DiscoveryResult {
                    task,
                    model: model_c,
                    metric: metric_c,
                    threshold: at_threshold.then_some(threshold),
                    scoring: if matches!(params.scoring, Scoring::Gap) { "gap".into() } else { "sliceline".into() },
                    rows: found.rows,
                    examined: found.examined,
                    per_level: found.per_level.clone(),
                    pruned: found.pruned,
                    truncated: found.truncated,
                    overall: ci_of(&found.overall),
                    features: encoded.features.iter().map(|f| f.name.clone()).collect(),
                    min_support,
                    max_level: level,
                    fdr,
                    holdout_rows: found.holdout_rows,
                    seconds: started.elapsed().as_secs_f64(),
                    slices,
                    row_sample: sample,
                })
            })
            .await??;
        self.remember(&memo, result.clone());
        Ok(result)
    }

    /// The discovery page: the result and what its pickers offer.
    pub async fn discovery_view(&self, id: &str, query: &str) -> Result<DiscoveryView, ServiceError> {
        let detail = self.run_detail(id).await?;
        let result = self.discover(id, query).await?;
        Ok(DiscoveryView {
            result,
            models: detail.summary.models.clone(),
            metric_names: frame::metric_names(detail.summary.task).iter().map(|m| m.to_string()).collect(),
            feature_names: detail.columns.iter().filter(|c| c.role == Role::Feature && c.kind != ColumnKind::Timestamp).map(|c| c.name.clone()).collect(),
            project: detail.summary.project.clone(),
        })
    }
}

/// The setting holding a project's named slices (JSON list).
fn named_key(project: &str) -> String {
    format!("project.slices.{project}")
}

/// Most named slices a project keeps.
const MAX_NAMED_SLICES: usize = 100;

impl AppState {
    /// A project's named slices, oldest first.
    pub async fn named_slices(&self, project: &str) -> Result<Vec<NamedSlice>, ServiceError> {
        let text = self.store.get_app_setting(&named_key(project)).await?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default())
    }

    /// Saves (or replaces) a named slice of a project. The filter must be a filter spec
    /// (`sex=Female`, `sex=Female & age in [25, 45)`); its columns are checked when it is used.
    pub async fn save_named_slice(&self, project: &str, name: &str, filter: &str, metric: Option<String>) -> Result<NamedSlice, ServiceError> {
        let bad = ServiceError::BadRequest;
        let name = super::normalize_label("slice name", Some(name.to_string()))?.ok_or_else(|| bad("a named slice needs a name".into()))?;
        if filter.len() > 2000 {
            return Err(bad("a slice filter has at most 2,000 characters".into()));
        }
        match SliceSpec::parse(filter).map_err(|e| bad(e.to_string()))? {
            SliceSpec::Filter { .. } | SliceSpec::Where(_) => {}
            _ => return Err(bad(format!("'{filter}' is not a filter: write column=value, joined by ' & ' (ranges as 'age in [25, 45)')"))),
        }
        if self.store.project_runs(project).await?.is_empty() {
            return Err(ServiceError::NotFound(format!("project '{project}' has no runs")));
        }
        let mut all = self.named_slices(project).await?;
        all.retain(|s| s.name != name);
        if all.len() >= MAX_NAMED_SLICES {
            return Err(bad(format!("a project keeps at most {MAX_NAMED_SLICES} named slices")));
        }
        let saved = NamedSlice { name, filter: filter.trim().to_string(), metric: metric.filter(|m| !m.is_empty()), created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true) };
        all.push(saved.clone());
        let text = serde_json::to_string(&all).map_err(|e| bad(e.to_string()))?;
        self.store.put_app_setting(&named_key(project), Some(&text)).await?;
        Ok(saved)
    }

    /// Deletes a named slice; `NotFound` if there was none.
    pub async fn delete_named_slice(&self, project: &str, name: &str) -> Result<(), ServiceError> {
        let mut all = self.named_slices(project).await?;
        let before = all.len();
        all.retain(|s| s.name != name);
        if all.len() == before {
            return Err(ServiceError::NotFound(format!("project '{project}' has no slice named '{name}'")));
        }
        let text = serde_json::to_string(&all).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        self.store.put_app_setting(&named_key(project), (!all.is_empty()).then_some(text.as_str())).await?;
        Ok(())
    }
}
