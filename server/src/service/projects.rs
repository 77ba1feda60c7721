//! Continuous evaluation: projects (a model's runs over time), their versioned validation gates,
//! validating a run against them, and the `/projects/{p}` page's metric over time.

use polars::prelude::*;
use strata_app::model::{GateSet, GateSetVersion, ProjectView, Role, RunDetail, RunSummary, Task, TimePoint, Validation};

use super::params::{self, ProjectParams};
use super::{AppState, MAX_SLICES, ServiceError, normalize_label, request_error};
use crate::charts;
use crate::eval::gates;
use crate::eval::sliced::{MetricsRequest, compute_prepared, prepare};

/// The column a period of a run's rows is put in for `by=week` / `by=day` (not a user column:
/// the engine slices by it like any other).
const PERIOD: &str = "strata_period";
/// Most runs one project page plots.
const MAX_RUNS: usize = 60;

fn bad(m: impl Into<String>) -> ServiceError {
    ServiceError::BadRequest(m.into())
}

/// A metrics request for a run with the engine's defaults.
pub(super) fn request(detail: &RunDetail, model: &str, specs: Vec<String>, thresholds: Vec<f64>, ci: f64) -> MetricsRequest {
    MetricsRequest {
        label: detail.label.clone(),
        model: model.to_string(),
        class_scores: detail.class_scores(model),
        weight: detail.columns.iter().find(|c| c.role == Role::Weight).map(|c| c.name.clone()),
        specs,
        thresholds,
        ci,
        bootstrap: 200,
        seed: 0,
        baseline: "overall".into(),
        min_size: 1,
        max_slices: MAX_SLICES,
        alpha: 0.05,
    }
}

impl AppState {
    /// Puts a run into a project (or out of it, with no project) with a version label.
    pub async fn set_project(&self, id: &str, project: Option<String>, version: Option<String>) -> Result<RunSummary, ServiceError> {
        let project = normalize_label("project", project)?;
        let version = normalize_label("version", version)?;
        if !self.store.set_project(id, project.as_deref(), version.as_deref()).await? {
            return Err(ServiceError::NotFound(id.to_string()));
        }
        Ok(self.run_detail(id).await?.summary)
    }

    /// Saves a new version of a project's gates after checking them.
    pub async fn put_gates(&self, project: &str, set: GateSet) -> Result<GateSetVersion, ServiceError> {
        let project = normalize_label("project", Some(project.to_string()))?.ok_or_else(|| bad("name the project"))?;
        gates::check(&set).map_err(bad)?;
        Ok(self.store.put_gates(&project, &set).await?)
    }

    pub async fn gates(&self, project: &str, version: Option<i64>) -> Result<GateSetVersion, ServiceError> {
        self.store.get_gates(project, version).await?.ok_or_else(|| {
            ServiceError::Missing(match version {
                Some(v) => format!("project '{project}' has no gates version {v}"),
                None => format!("project '{project}' has no gates (PUT /api/v1/projects/{project}/gates first)"),
            })
        })
    }

    /// The baseline of a validation: the named run, or the project's newest run before `run`.
    async fn baseline_of(&self, project: &str, run: &RunSummary, named: Option<&str>) -> Result<Option<RunDetail>, ServiceError> {
        match named.map(str::trim).filter(|b| !b.is_empty() && *b != "previous") {
            Some(id) => {
                if id == run.id {
                    return Err(bad("the baseline run is the run being validated"));
                }
                Ok(Some(self.run_detail(id).await.map_err(|_| bad(format!("the gates' baseline run '{id}' does not exist")))?))
            }
            None => {
                let runs = self.store.project_runs(project).await?;
                let before = runs.iter().filter(|r| r.id != run.id && (r.run_time.as_str(), r.created_at.as_str()) < (run.run_time.as_str(), run.created_at.as_str())).next_back();
                match before {
                    Some(r) => Ok(Some(self.run_detail(&r.id).await?)),
                    None => Ok(None),
                }
            }
        }
    }

    /// A baseline run's metrics for change gates, with the same rules as the candidate when there are.
    async fn baseline_metrics(&self, b: &RunDetail, model: &str, req: crate::eval::sliced::MetricsRequest, threshold: f64, rules: Option<&strata_app::model::RuleSetVersion>) -> Result<strata_app::model::MetricsResult, ServiceError> {
        match rules {
            None => self.compute_metrics(&b.summary.id, req, b.summary.task).await,
            Some(r) => {
                let ruled = self.apply_rules(&b.summary.id, b, model, threshold, &r.source).await?;
                self.compute_metrics_on(ruled.frame, req, b.summary.task).await
            }
        }
    }

    /// Judges a run against its project's gates (the newest version, or `gates_version`), stores
    /// the verdict, and raises alerts for failures and drift.
    pub async fn validate(&self, project: &str, id: &str, gates_version: Option<i64>) -> Result<Validation, ServiceError> {
        self.validate_with(project, id, gates_version, None).await
    }

    /// [`AppState::validate`], judging the model with the project's rules applied when `rules` is
    /// given (`Some(None)`: the newest version; `Some(Some(v))`: version v), the run's and the
    /// baseline's decisions overridden alike.
    pub async fn validate_with(&self, project: &str, id: &str, gates_version: Option<i64>, rules: Option<Option<i64>>) -> Result<Validation, ServiceError> {
        let detail = self.run_detail(id).await?;
        if detail.summary.project.as_deref() != Some(project) {
            return Err(bad(format!(
                "run {id} is not in project '{project}' (it is in {}); set it with PATCH /api/v1/runs/{id}",
                detail.summary.project.as_deref().map(|p| format!("'{p}'")).unwrap_or_else(|| "none".into())
            )));
        }
        let gv = self.gates(project, gates_version).await?;
        let set = gv.gates.clone();
        let model = set.model.clone().unwrap_or_else(|| detail.summary.models.first().cloned().unwrap_or_default());
        if !detail.summary.models.contains(&model) {
            return Err(bad(format!("the gates judge model '{model}', which run {id} does not have (models: {})", detail.summary.models.join(", "))));
        }
        let (specs, thresholds) = gates::requirements(&set);
        let task = detail.summary.task;
        if let Some((i, g)) = set.gates.iter().enumerate().find(|(_, g)| g.discover.is_none() && !gates::metric_of_task(&g.metric, task, detail.class_scores(&model).len())) {
            return Err(bad(format!("gate {} ({}): model '{model}' of this {} run has no metric '{}'", i + 1, g.metric, task.as_str(), g.metric)));
        }
        let mut notes = vec![];
        let rules = match rules {
            Some(version) => Some(self.rules(project, version).await?),
            None => None,
        };
        let candidate = match &rules {
            None => self.compute_metrics(id, request(&detail, &model, specs.clone(), thresholds.clone(), set.ci), task).await?,
            Some(r) => {
                let ruled = self.apply_rules(id, &detail, &model, set.threshold, &r.source).await?;
                notes.push(format!("rules v{} applied: {} decision(s) changed, {} row(s) flagged", r.version, ruled.changed(), ruled.applied.flags.iter().filter(|f| !f.is_empty()).count()));
                self.compute_metrics_on(ruled.frame, request(&detail, &model, specs.clone(), thresholds.clone(), set.ci), task).await?
            }
        };
        let baseline = self.baseline_of(project, &detail.summary, set.baseline.as_deref()).await?;
        let base_result = match &baseline {
            None => {
                notes.push("no baseline run (this is the project's first run): change gates were skipped".to_string());
                None
            }
            Some(b) if !b.summary.models.contains(&model) || b.summary.task != task => {
                notes.push(format!("the baseline run {} has no {} model '{model}': change gates were skipped", b.summary.id, task.as_str()));
                None
            }
            Some(b) => match self.baseline_metrics(b, &model, request(b, &model, specs, thresholds, set.ci), set.threshold, rules.as_ref()).await {
                Ok(r) => Some(r),
                // E.g. the baseline lacks a column the gates slice by: judge the values, say why not the changes.
                Err(ServiceError::BadRequest(m)) => {
                    notes.push(format!("the baseline run {} cannot be sliced like this run ({m}): change gates were skipped", b.summary.id));
                    None
                }
                Err(e) => return Err(e),
            },
        };
        let mut outcomes = gates::evaluate(&set, &candidate, base_result.as_ref());
        for g in &set.gates {
            let Some(d) = &g.discover else { continue };
            if rules.is_some() {
                notes.push(format!("the discovery gate on {} searched the model's own decisions (rules are not applied to slice discovery)", g.metric));
            }
            let query = serde_urlencoded::to_string([
                ("model", model.clone()),
                ("metric", g.metric.clone()),
                ("thresholds", g.threshold.unwrap_or(set.threshold).to_string()),
                ("min_support", d.min_support.to_string()),
                ("level", d.level.unwrap_or(3).to_string()),
                ("fdr", d.fdr.unwrap_or(0.05).to_string()),
                ("top_k", "100".to_string()),
            ])
            .map_err(|e| bad(e.to_string()))?;
            let found = self.discover(id, &query).await.map_err(|e| match e {
                ServiceError::BadRequest(m) => bad(format!("discovery gate on {}: {m}", g.metric)),
                other => other,
            })?;
            outcomes.push(gates::judge_discovered(g, d, &found));
        }
        let failures = gates::failures(&outcomes, &set);
        let mut drifted_features = vec![];
        if set.drift {
            if let Some(b) = &baseline {
                let q = serde_urlencoded::to_string([("reference", b.summary.id.as_str())]).map_err(|e| bad(e.to_string()))?;
                match self.drift(id, &q).await {
                    Ok(d) => drifted_features = d.features.iter().filter(|f| f.drifted && f.kind != "score" && f.kind != "label").map(|f| f.feature.clone()).collect(),
                    Err(e) => notes.push(format!("drift against the baseline was not checked: {e}")),
                }
            }
        }
        let mut v = Validation {
            id: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            project: project.to_string(),
            run_id: id.to_string(),
            gates_version: gv.version,
            rules_version: rules.as_ref().map(|r| r.version),
            model,
            baseline_run: baseline.as_ref().map(|b| b.summary.id.clone()),
            passed: failures.is_empty(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            outcomes,
            failures,
            drifted_features,
            notes,
            review: None,
        };
        self.store.insert_validation(&v).await?;
        self.alert_on(&v, &detail.summary).await?;
        v.review = Some((&self.review_state(id).await?).into());
        Ok(v)
    }

    /// The `/projects/{p}` page: a metric for a slicing across the project's runs (one point per
    /// run at its time, or per week / day of the runs' own timestamps).
    pub async fn project_view(&self, project: &str, query: &str) -> Result<ProjectView, ServiceError> {
        let runs = self.store.project_runs(project).await?;
        let Some(first) = runs.first() else {
            return Err(ServiceError::Missing(format!("no project '{project}' (no run belongs to it)")));
        };
        let task = first.task;
        let models: Vec<String> = {
            let mut m: Vec<String> = vec![];
            for r in &runs {
                for x in &r.models {
                    if !m.contains(x) {
                        m.push(x.clone());
                    }
                }
            }
            m
        };
        // Multiclass: top-k accuracy and log loss too, since runs whose model has per-class scores report them.
        let metric_names = strata_app::metrics::task_names(task, usize::MAX);
        let p: ProjectParams = params::decode(query)?;
        let metric = p.metric.unwrap_or_else(|| {
            match task {
                Task::Binary => "auc_roc",
                Task::Multiclass => "accuracy",
                Task::Regression => "mae",
            }
            .to_string()
        });
        let model = p.model.unwrap_or_else(|| models.first().cloned().unwrap_or_default());
        let slice = p.slice.map(|s| s.trim().to_string()).unwrap_or_else(|| "overall".to_string());
        let threshold = p.threshold.unwrap_or(0.5);
        if !(0.0..=1.0).contains(&threshold) {
            return Err(bad(format!("threshold '{threshold}' is not in [0, 1]")));
        }
        let by = p.by.unwrap_or_else(|| "run".to_string());
        let ci = p.ci.unwrap_or(0.95);
        if !(0.5..1.0).contains(&ci) {
            return Err(bad(format!("ci '{ci}' is not in [0.5, 1)")));
        }
        if !metric_names.contains(&metric) {
            return Err(bad(format!("unknown metric '{metric}' (one of: {})", metric_names.join(", "))));
        }
        if !models.contains(&model) {
            return Err(bad(format!("model '{model}' is not a score column of this project's runs (models: {})", models.join(", "))));
        }
        let period_us: Option<i64> = match by.as_str() {
            "run" => None,
            "week" => Some(7 * 86_400_000_000),
            "day" => Some(86_400_000_000),
            other => return Err(bad(format!("by='{other}': use run, week or day"))),
        };
        let at = strata_app::metrics::at_threshold(task, &metric).then_some(threshold);
        let user_spec = if slice == "overall" { None } else { Some(slice.clone()) };
        let mut points = vec![];
        for r in runs.iter().rev().take(MAX_RUNS).rev() {
            if r.task != task || !r.models.contains(&model) {
                continue;
            }
            let detail = self.run_detail(&r.id).await?;
            let result = match period_us {
                None => {
                    let req = request(&detail, &model, user_spec.iter().cloned().collect(), vec![threshold], ci);
                    self.compute_metrics(&r.id, req, task).await?
                }
                Some(width) => {
                    let Some(ts) = detail.columns.iter().find(|c| c.role == Role::Timestamp).map(|c| c.name.clone()) else { continue };
                    let spec = match &user_spec {
                        Some(s) => format!("{PERIOD},{s}"),
                        None => PERIOD.to_string(),
                    };
                    let req = request(&detail, &model, vec![spec], vec![threshold], ci);
                    let frame = self.frame(&r.id).await?;
                    self.work.run(move || -> Result<_, ServiceError> {
                        let with_period = add_period(&frame, &ts, width)?;
                        let prep = prepare(&with_period, &req, task).map_err(request_error)?;
                        compute_prepared(&prep, &req).map_err(request_error)
                    })
                    .await??
                }
            };
            for s in &result.slices {
                let (time, label) = match period_us {
                    None => {
                        if user_spec.is_some() == s.key.is_empty() {
                            continue;
                        }
                        (r.run_time.clone(), s.label())
                    }
                    Some(_) => {
                        let Some(p) = s.key.get(PERIOD) else { continue };
                        let mut key = s.key.clone();
                        key.remove(PERIOD);
                        if user_spec.is_some() == key.is_empty() {
                            continue;
                        }
                        let label = if key.is_empty() { "overall".to_string() } else { key.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ") };
                        (p.clone(), label)
                    }
                };
                let e = s.estimate(&metric, at);
                points.push(TimePoint {
                    time,
                    run_id: r.id.clone(),
                    version: r.version.clone(),
                    slice: label,
                    count: s.count,
                    value: e.and_then(|e| e.value),
                    lo: e.and_then(|e| e.lo),
                    hi: e.and_then(|e| e.hi),
                });
            }
        }
        let several_runs = points.iter().map(|p| &p.run_id).collect::<std::collections::BTreeSet<_>>().len() > 1;
        let y_title = match at {
            Some(t) => format!("{metric} @ {t} ({}% CI)", ci * 100.0),
            None => format!("{metric} ({}% CI)", ci * 100.0),
        };
        let run_label = |p: &TimePoint| p.version.clone().unwrap_or_else(|| p.run_id.clone());
        let chart = if period_us.is_some() && several_runs {
            charts::metric_over_time(&points, |p| format!("{} · {}", p.slice, run_label(p)), |p| p.time.clone(), true, true, &y_title)
        } else if period_us.is_none() && runs_share_a_time(&runs) {
            // Releases evaluated on the same data share a run time: one point per run, in order.
            charts::metric_over_time(&points, |p| p.slice.clone(), |p| format!("{} ({})", run_label(p), p.time.get(..10).unwrap_or(&p.time)), false, true, &y_title)
        } else if period_us.is_some() {
            charts::metric_over_time(&points, |p| p.slice.clone(), |p| p.time.clone(), true, true, &y_title)
        } else {
            // One point per release at its time: a line only when the releases come at a regular pace.
            let mut times: Vec<f64> = runs.iter().filter_map(|r| chrono::DateTime::parse_from_rfc3339(&r.run_time).ok()).map(|t| t.timestamp() as f64).collect();
            times.sort_by(f64::total_cmp);
            charts::metric_over_time(&points, |p| p.slice.clone(), |p| p.time.clone(), true, charts::evenly_spaced(&times), &y_title)
        };
        let validations = self.store.project_validations(project).await?;
        let gates = self.store.get_gates(project, None).await?;
        let rules = self.store.get_rules(project, None).await?;
        let columns = match runs.last() {
            Some(r) => self.column_briefs(&self.run_detail(&r.id).await?).await?,
            None => Vec::new(),
        };
        Ok(ProjectView { project: project.to_string(), runs, validations, models, model, metric, metric_names, slice, threshold, by, points, chart, gates, rules, columns })
    }
}

/// Do two of the runs stand for the same time?
fn runs_share_a_time(runs: &[RunSummary]) -> bool {
    let mut times: Vec<&str> = runs.iter().map(|r| r.run_time.as_str()).collect();
    times.sort_unstable();
    times.windows(2).any(|w| w[0] == w[1])
}

/// The frame with a `strata_period` column: each row's timestamp floored to its period (weeks
/// start on Monday, UTC), as the period's first day `YYYY-MM-DD`; rows without a time get none.
fn add_period(frame: &DataFrame, ts: &str, width_us: i64) -> Result<DataFrame, ServiceError> {
    if frame.get_column_names().iter().any(|c| c.as_str() == PERIOD) {
        return Err(bad(format!("the run has a column named '{PERIOD}', which by=week/day needs for itself")));
    }
    let t = frame.column(ts)?.cast(&DataType::Int64)?;
    // 1970-01-01 was a Thursday: shift by four days so weeks start on Mondays.
    let offset = if width_us == 7 * 86_400_000_000 { 4 * 86_400_000_000 } else { 0 };
    let labels: StringChunked = t
        .i64()?
        .iter()
        .map(|v| {
            v.and_then(|us| {
                let start = (us - offset).div_euclid(width_us) * width_us + offset;
                chrono::DateTime::from_timestamp_micros(start).map(|d| d.format("%Y-%m-%d").to_string())
            })
        })
        .collect();
    let mut out = frame.clone();
    out.with_column(labels.with_name(PERIOD.into()).into_series().into_column())?;
    Ok(out)
}
