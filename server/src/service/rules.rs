//! Model assertions: a project's business rules (see `eval::rules`), versioned like its gates, and
//! applied to a run as a what-if — metrics, fairness criteria and gates without and with them, the
//! rows each rule touches — or in a validation.

use std::collections::BTreeMap;

use polars::prelude::*;
use strata_app::model::{RuleImpact, RuleSetVersion, RulesImpact, RunDetail, Task};

use super::models::is_numeric;
use super::projects::request;
use super::{AppState, ServiceError};
use crate::eval::gates;
use crate::eval::rules::{Action, Applied, ColumnType, RuleSet, compile, parse};
use crate::models::Batch;

fn bad(m: impl Into<String>) -> ServiceError {
    ServiceError::BadRequest(m.into())
}

/// A what-if of rules on a run (`POST /api/v1/runs/{id}/rules-impact`): unsaved text, or a
/// project's stored version (the run's project, the newest version, when neither is given).
#[derive(Clone, Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesImpactRequest {
    /// Rule text to try before saving it.
    pub source: Option<String>,
    /// A stored version of the run's project's rules (the newest when absent).
    pub version: Option<i64>,
    /// The score column (default: the run's first model).
    pub model: Option<String>,
    /// The decision threshold (default 0.5).
    pub threshold: Option<f64>,
    /// Slice specs for the side-by-side metrics and fairness criteria (default: `overall` only).
    #[serde(default)]
    pub slices: Vec<String>,
}

/// A run with a project's rules applied: the frame with the score column overridden, and what each
/// rule did.
pub(crate) struct Ruled {
    pub frame: DataFrame,
    pub set: RuleSet,
    pub applied: Applied,
    /// The model's own decision per row.
    pub decided: Vec<bool>,
}

impl Ruled {
    /// Rows whose decision the rules change.
    pub fn changed(&self) -> u64 {
        self.applied.decision.iter().zip(&self.decided).filter(|(d, m)| d.is_some_and(|d| d != **m)).count() as u64
    }
}

/// The columns' types as the rule checker sees them.
fn schema(detail: &RunDetail) -> BTreeMap<String, ColumnType> {
    detail.columns.iter().map(|c| (c.name.clone(), if is_numeric(detail, &c.name) { ColumnType::Numeric } else { ColumnType::Text })).collect()
}

impl AppState {
    /// Saves a new version of a project's rules after parsing them (names and types are checked
    /// against a run when they are applied: a project's runs may differ in columns).
    pub async fn put_rules(&self, project: &str, source: &str) -> Result<RuleSetVersion, ServiceError> {
        let project = super::normalize_label("project", Some(project.to_string()))?.ok_or_else(|| bad("name the project"))?;
        parse(source).map_err(|e| bad(e.to_string()))?;
        Ok(self.store.put_rules(&project, source).await?)
    }

    pub async fn rules(&self, project: &str, version: Option<i64>) -> Result<RuleSetVersion, ServiceError> {
        self.store.get_rules(project, version).await?.ok_or_else(|| {
            ServiceError::NotFound(match version {
                Some(v) => format!("project '{project}' has no rules version {v}"),
                None => format!("project '{project}' has no rules (PUT /api/v1/projects/{project}/rules first)"),
            })
        })
    }

    /// Applies rule text to a binary run's model: decision overrides become scores of 1 or 0 (so
    /// they hold at every threshold), `score =` overrides the score; the first rule wins per row.
    pub(crate) async fn apply_rules(&self, id: &str, detail: &RunDetail, model: &str, threshold: f64, source: &str) -> Result<Ruled, ServiceError> {
        if detail.summary.task != Task::Binary {
            return Err(bad("rules override decisions: they apply to binary runs"));
        }
        if !detail.summary.models.iter().any(|m| m == model) {
            return Err(bad(format!("'{model}' is not a score column of run {id} (models: {})", detail.summary.models.join(", "))));
        }
        let set = compile(source, &schema(detail)).map_err(|e| bad(e.to_string()))?;
        let frame = self.frame(id).await?;
        let mut needed = set.columns();
        needed.push(model.to_string());
        needed.sort();
        needed.dedup();
        let model_name = model.to_string();
        self.work
            .run(move || -> Result<Ruled, ServiceError> {
                let batch = Batch::from_frame(&frame.select(needed)?)?;
                let applied = crate::eval::rules::apply(&set, &batch, &model_name).map_err(|e| bad(e.to_string()))?;
                let Some(crate::models::Values::Numeric(scores)) = batch.columns.get(&model_name) else {
                    return Err(bad(format!("score column '{model_name}' is not numeric")));
                };
                let decided: Vec<bool> = scores.iter().map(|s| *s >= threshold).collect();
                let ruled: Vec<f64> = scores
                    .iter()
                    .enumerate()
                    .map(|(i, s)| match (applied.decision[i], applied.score[i]) {
                        (Some(d), _) => f64::from(u8::from(d)),
                        (None, Some(x)) => x.clamp(0.0, 1.0),
                        (None, None) => *s,
                    })
                    .collect();
                let mut frame = (*frame).clone();
                frame.with_column(Column::new(model_name.as_str().into(), ruled))?;
                Ok(Ruled { frame, set, applied, decided })
            })
            .await?
    }

    /// Rule text as a what-if on the project's newest binary run, by the slices its gates name.
    pub async fn preview_rules(&self, project: &str, source: &str) -> Result<RulesImpact, ServiceError> {
        let runs = self.store.project_runs(project).await?;
        let run = runs.iter().rev().find(|r| r.task == Task::Binary).ok_or_else(|| bad(format!("project '{project}' has no binary run to try the rules on")))?;
        let gates = self.store.get_gates(project, None).await?;
        let mut slices: Vec<String> = gates.iter().flat_map(|g| g.gates.gates.iter().map(|x| x.slice.clone())).filter(|s| s != "overall").collect();
        slices.sort();
        slices.dedup();
        slices.truncate(5);
        let model = gates.and_then(|g| g.gates.model);
        self.rules_impact(&run.id, RulesImpactRequest { source: Some(source.to_string()), model, slices, ..Default::default() }).await
    }

    /// Metrics, fairness criteria and the project's gates of a run without and with rules.
    pub async fn rules_impact(&self, id: &str, req: RulesImpactRequest) -> Result<RulesImpact, ServiceError> {
        let threshold = req.threshold.unwrap_or(0.5);
        if !(0.0..=1.0).contains(&threshold) || req.slices.len() > 5 {
            return Err(bad("threshold is in [0, 1]; at most 5 slice specs"));
        }
        let detail = self.run_detail(id).await?;
        let (source, version) = match (&req.source, detail.summary.project.as_deref()) {
            (Some(s), _) => (s.clone(), None),
            (None, Some(p)) => {
                let r = self.rules(p, req.version).await?;
                (r.source, Some(r.version))
            }
            (None, None) => return Err(bad(format!("run {id} is in no project: send the rules as `source`"))),
        };
        let model = req.model.clone().unwrap_or_else(|| detail.summary.models.first().cloned().unwrap_or_default());
        let ruled = self.apply_rules(id, &detail, &model, threshold, &source).await?;
        let metrics_request = || request(&detail, &model, req.slices.clone(), vec![threshold], 0.95);
        let without = self.compute_metrics(id, metrics_request(), Task::Binary).await?;
        let with = self.compute_metrics_on(ruled.frame.clone(), metrics_request(), Task::Binary).await?;
        // The project's gates, values only (no baseline), on both: what the rules do to a verdict.
        let (mut gates_without, mut gates_with) = (None, None);
        if let Some(project) = detail.summary.project.as_deref()
            && let Some(gv) = self.store.get_gates(project, None).await?
            && gv.gates.model.as_deref().is_none_or(|m| m == model)
        {
            let (specs, thresholds) = gates::requirements(&gv.gates);
            let gate_request = || request(&detail, &model, specs.clone(), thresholds.clone(), gv.gates.ci);
            let plain = self.compute_metrics(id, gate_request(), Task::Binary).await?;
            let ruled_result = self.compute_metrics_on(ruled.frame.clone(), gate_request(), Task::Binary).await?;
            gates_without = Some(gates::evaluate(&gv.gates, &plain, None));
            gates_with = Some(gates::evaluate(&gv.gates, &ruled_result, None));
        }
        let ids = super::whatif::RowIds::of(&ruled.frame, &detail)?;
        let a = &ruled.applied;
        // The rule that set each row's decision: the first decision rule touching it.
        let mut decided_by: Vec<Option<usize>> = vec![None; ruled.decided.len()];
        for (k, r) in ruled.set.rules.iter().enumerate() {
            if matches!(r.action, Action::Decision(_)) {
                a.touched[k].iter().for_each(|&i| decided_by[i] = decided_by[i].or(Some(k)));
            }
        }
        let rules = ruled
            .set
            .rules
            .iter()
            .enumerate()
            .map(|(k, r)| RuleImpact {
                line: r.line as u64,
                rule: r.to_string(),
                touched: a.touched[k].len() as u64,
                shadowed: a.shadowed[k] as u64,
                conflicts: a.conflicts[k] as u64,
                changed: match r.action {
                    Action::Decision(d) => a.touched[k].iter().filter(|&&i| decided_by[i] == Some(k) && ruled.decided[i] != d).count() as u64,
                    _ => 0,
                },
                examples: a.touched[k].iter().take(10).map(|&i| ids.get(i)).collect(),
            })
            .collect();
        let mut flags: BTreeMap<String, u64> = BTreeMap::new();
        for f in a.flags.iter().flatten() {
            *flags.entry(f.clone()).or_default() += 1;
        }
        Ok(RulesImpact {
            run: id.to_string(),
            model,
            threshold,
            version,
            rows: ruled.decided.len() as u64,
            rules,
            decisions_changed: ruled.changed(),
            flagged: a.flags.iter().filter(|f| !f.is_empty()).count() as u64,
            flags: flags.into_iter().collect(),
            without,
            with,
            gates_without,
            gates_with,
        })
    }
}
