//! What-if: call the run's models (see `models`) on edited examples, partial dependence, the
//! nearest counterfactual, saved examples; the `/runs/{id}/whatif` page's data and the matching API.

use std::collections::BTreeMap;
use std::sync::Arc;

use polars::prelude::*;
use strata_app::model::{ColumnKind, Counterfactual, EditableFeature, ExamplesPage, PartialDependence, Role, RunDetail, Task, WhatIfExample, WhatIfPdp, WhatIfPrediction, WhatIfView};

use super::models::{feature_columns, is_numeric};
use super::{AppState, ServiceError, json_rows, params};
use super::external::Rows;
use crate::charts;
use crate::eval::whatif::nearest_counterfactual;
use crate::eval::{sample_rows, take_rows};
use crate::models::{Batch, Values};
use super::attack::AttackRequest;

/// The ids of a run's rows (the id column's text, or the row number), read one at a time: a
/// page needs a dozen of them, not a string per row of a 10M-row run.
#[derive(Clone)]
pub(crate) struct RowIds(Option<StringChunked>);

impl RowIds {
    pub(crate) fn of(df: &DataFrame, detail: &RunDetail) -> Result<RowIds, ServiceError> {
        Ok(RowIds(match detail.columns.iter().find(|c| c.role == Role::Id) {
            Some(c) => Some(df.column(&c.name)?.cast(&DataType::String)?.str()?.clone()),
            None => None,
        }))
    }

    pub(crate) fn get(&self, i: usize) -> String {
        match &self.0 {
            Some(s) => s.get(i).unwrap_or("").to_string(),
            None => i.to_string(),
        }
    }

    /// The row of an example id; a 400 that names it when there is none.
    pub(crate) fn row_of(&self, id: &str) -> Result<usize, ServiceError> {
        let found = match &self.0 {
            Some(s) => s.iter().position(|v| v == Some(id)),
            None => id.parse::<usize>().ok(),
        };
        found.ok_or_else(|| ServiceError::BadRequest(format!("no example with id '{id}'")))
    }
}

/// A what-if request, its defaults applied.
struct WhatIfQuery {
    model: Option<String>,
    example: Option<String>,
    threshold: Option<f64>,
    filter: String,
    offset: u64,
    pdp: Option<String>,
    x: Option<String>,
    sample: usize,
    grid: usize,
    seed: u64,
    edits: BTreeMap<String, String>,
    attack_noise: Option<f64>,
    /// Browser filters: a slice filter spec (`sex=Female`) and a score range.
    slice: Option<String>,
    score_min: Option<f64>,
    score_max: Option<f64>,
    /// Scatter colour: `label` (default) or `correct`.
    color: Option<String>,
    attack_swap: Option<f64>,
    attack_slice: Option<String>,
    adv: bool,
    adv_immutable: Vec<String>,
    adv_radius: Option<f64>,
    adv_slice: Option<String>,
    explain: Option<String>,
    importance: Option<String>,
    importance_slice: Option<String>,
}

/// The what-if parameters (see [`params::WhatIfParams`]) with their defaults and checks.
fn parse_whatif_query(query: &str) -> Result<WhatIfQuery, ServiceError> {
    let bad = ServiceError::BadRequest;
    let (p, edits) = params::decode_whatif(query)?;
    if let Some(t) = p.threshold
        && !(0.0..=1.0).contains(&t)
    {
        return Err(bad(format!("threshold {t} is outside [0, 1]")));
    }
    let filter = p.filter.unwrap_or_else(|| "all".into());
    if !["all", "correct", "incorrect", "positive", "negative"].contains(&filter.as_str()) {
        return Err(bad(format!("filter '{filter}' is not one of all, correct, incorrect, positive, negative")));
    }
    let sample = p.sample.unwrap_or(500);
    if !(10..=5000).contains(&sample) {
        return Err(bad("sample is a whole number in 10..=5000".into()));
    }
    let grid = p.grid.unwrap_or(20);
    if !(2..=100).contains(&grid) {
        return Err(bad("grid is a whole number in 2..=100".into()));
    }
    if let Some(c) = &p.color
        && c != "label"
        && c != "correct"
    {
        return Err(bad(format!("color '{c}' is not one of label, correct")));
    }
    Ok(WhatIfQuery {
        model: p.model,
        example: p.example,
        threshold: p.threshold,
        filter,
        offset: p.offset.unwrap_or(0),
        pdp: p.pdp,
        x: p.x,
        sample,
        grid,
        seed: p.seed.unwrap_or(0),
        edits,
        attack_noise: p.attack_noise,
        slice: p.slice,
        score_min: p.score_min,
        score_max: p.score_max,
        color: p.color,
        attack_swap: p.attack_swap,
        attack_slice: p.attack_slice,
        adv: p.adv == Some(1),
        adv_immutable: p.adv_immutable.unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect(),
        adv_radius: p.adv_radius,
        adv_slice: p.adv_slice.filter(|s| !s.trim().is_empty()),
        explain: p.explain.filter(|s| !s.trim().is_empty()),
        importance: p.importance.filter(|s| !s.trim().is_empty()),
        importance_slice: p.importance_slice.filter(|s| !s.trim().is_empty()),
    })
}

/// A one-row batch with `edits` applied (numbers parsed; an empty value is missing).
pub(crate) fn edited(original: &Batch, edits: &BTreeMap<String, String>, detail: &RunDetail) -> Result<Batch, ServiceError> {
    let mut b = original.clone();
    for (name, value) in edits {
        if !original.columns.contains_key(name) {
            return Err(ServiceError::BadRequest(format!("set.{name}: '{name}' is not a column of the run")));
        }
        let v = if is_numeric(detail, name) {
            let x = if value.trim().is_empty() { f64::NAN } else { value.trim().parse::<f64>().map_err(|_| ServiceError::BadRequest(format!("set.{name}: '{value}' is not a number")))? };
            Values::Numeric(vec![x])
        } else {
            Values::Text(vec![value.clone()])
        };
        b.columns.insert(name.clone(), v);
    }
    Ok(b)
}

/// A one-row batch's value of `name` as the editor shows it (a missing number is blank).
pub(crate) fn text(b: &Batch, name: &str) -> String {
    match b.columns.get(name) {
        Some(Values::Numeric(v)) => v.first().filter(|x| x.is_finite()).map(|x| format!("{x}")).unwrap_or_default(),
        Some(Values::Text(v)) => v.first().cloned().unwrap_or_default(),
        None => String::new(),
    }
}

/// The setting key of a run's saved what-if examples.
pub const SAVED_KEY: &str = "whatif_saved";
/// The setting key prefix of one saved example (`whatif:<name>`).
pub const SAVED_PREFIX: &str = "whatif:";

impl AppState {
    /// Scores examples (JSON objects) with the run's attached models (`models` empty = all).
    pub async fn predict(&self, id: &str, examples: &[serde_json::Map<String, serde_json::Value>], models: &[String]) -> Result<Vec<BTreeMap<String, f64>>, ServiceError> {
        if examples.len() > 10_000 {
            return Err(ServiceError::BadRequest("at most 10000 examples per request".into()));
        }
        let detail = self.run_detail(id).await?;
        let names: Vec<String> = if models.is_empty() { self.callable_models(id, &detail).await?.into_iter().map(|(s, _)| s).collect() } else { models.to_vec() };
        if names.is_empty() {
            return Err(ServiceError::BadRequest("the run has no model file attached".into()));
        }
        self.check_predictions((examples.len() * names.len()) as u64, "request", "send fewer examples or name fewer models")?;
        let columns: Vec<String> = detail.columns.iter().map(|c| c.name.clone()).collect();
        let batch = Batch::from_json(examples, &|n| is_numeric(&detail, n), &columns).map_err(ServiceError::BadRequest)?;
        let batch = Arc::new(batch);
        let mut out = vec![BTreeMap::new(); examples.len()];
        for name in names {
            let model = self.model(id, &detail, &name).await?;
            let b = batch.clone();
            // A handful of examples (what a person edits) takes the quick lane.
            let lane = if b.rows <= 100 { &self.quick } else { &self.work };
            let scores = lane.run(move || model.predict(&b)).await??;
            for (o, s) in out.iter_mut().zip(scores) {
                o.insert(name.clone(), s);
            }
        }
        Ok(out)
    }

    /// Partial dependence of one feature for one model (`model`, default the run's first score
    /// column; `feature`, `sample`, `grid`, `seed`, and `example` + `set.*` for the selected
    /// example's own curve).
    pub async fn pdp(&self, id: &str, query: &str) -> Result<PartialDependence, ServiceError> {
        let detail = self.run_detail(id).await?;
        let q = parse_whatif_query(query)?;
        let model_name = q.model.clone().or_else(|| detail.summary.models.first().cloned()).ok_or_else(|| ServiceError::BadRequest("the run has no model".into()))?;
        self.pdp_of(id, &detail, &q, &model_name).await
    }

    /// [`AppState::pdp`] of a parsed request for `model_name`.
    async fn pdp_of(&self, id: &str, detail: &RunDetail, q: &WhatIfQuery, model_name: &str) -> Result<PartialDependence, ServiceError> {
        let feature = q.pdp.clone().ok_or_else(|| ServiceError::BadRequest("name the feature: feature=".into()))?;
        let Rows { frame, sample: row_sample } = self.rows(id).await?;
        let example = match &q.example {
            Some(e) => {
                let row = RowIds::of(&frame, detail)?.row_of(e)?;
                Some(edited(&Batch::from_frame(&take_rows(&frame, &[row])?)?, &q.edits, detail)?)
            }
            None => None,
        };
        let mut pd = self.partial_dependence(id, detail, &frame, model_name, feature, q, example).await?;
        pd.row_sample = row_sample;
        Ok(pd)
    }

    /// Partial dependence (+ ICE) of `feature` for a run's model over a sample of its rows, with
    /// `example`'s own curve: shared by the API and the what-if page.
    #[allow(clippy::too_many_arguments)]
    async fn partial_dependence(&self, id: &str, detail: &RunDetail, frame: &DataFrame, model_name: &str, feature: String, q: &WhatIfQuery, example: Option<Batch>) -> Result<PartialDependence, ServiceError> {
        if !feature_columns(detail).iter().any(|(f, _)| *f == feature) {
            return Err(ServiceError::BadRequest(format!("'{feature}' is not a feature column of the run")));
        }
        let rows = (q.sample.min(frame.height()) + usize::from(example.is_some())) as u64;
        self.check_predictions(rows * q.grid as u64, "partial dependence", "sample fewer rows (sample=) or use a coarser grid (grid=)")?;
        let model = self.model(id, detail, model_name).await?;
        let rows = sample_rows(frame.height(), q.sample, q.seed);
        let sample = Batch::from_frame(&take_rows(frame, &rows)?)?;
        let source = Batch::from_frame(&frame.select([feature.as_str()])?)?.columns.remove(&feature);
        let grid = q.grid;
        Ok(self.work.run_tracked(move |progress| crate::models::pdp::partial_dependence_tracked(model.as_ref(), &sample, &feature, grid, example.as_ref(), source.as_ref(), progress))
            .await??)
    }

    /// The nearest example with the other decision (binary runs), from the stored scores.
    pub async fn counterfactual(&self, id: &str, query: &str) -> Result<Option<Counterfactual>, ServiceError> {
        let detail = self.run_detail(id).await?;
        let q = parse_whatif_query(query)?;
        let frame = self.rows(id).await?.frame;
        let example = q.example.clone().ok_or_else(|| ServiceError::BadRequest("name the example: example=".into()))?;
        let ids = RowIds::of(&frame, &detail)?;
        let row = ids.row_of(&example)?;
        self.counterfactual_of(frame, &detail, ids, row, q.model.as_deref(), q.threshold.unwrap_or(0.5)).await
    }

    /// The nearest row with the other decision: a scan of every row, run as a worker job.
    async fn counterfactual_of(&self, frame: Arc<DataFrame>, detail: &RunDetail, ids: RowIds, row: usize, model: Option<&str>, threshold: f64) -> Result<Option<Counterfactual>, ServiceError> {
        if detail.summary.task != Task::Binary {
            return Err(ServiceError::BadRequest("counterfactuals need a binary classification run (a decision to flip)".into()));
        }
        let score = model.map(str::to_string).or_else(|| detail.summary.models.first().cloned()).unwrap_or_default();
        if !detail.summary.models.contains(&score) {
            return Err(ServiceError::BadRequest(format!("model '{score}' is not a score column of this run")));
        }
        let features = feature_columns(detail);
        self.work
            .run(move || -> Result<_, ServiceError> {
                let scores = crate::eval::f64_values(&frame, &score)?;
                Ok(nearest_counterfactual(&frame, &features, &|i| ids.get(i), row, &scores, threshold)?)
            })
            .await?
    }

    /// The what-if page apart from the selected example (see [`AppState::whatif_example`]).
    pub async fn whatif_view(&self, id: &str, query: &str) -> Result<WhatIfView, ServiceError> {
        let detail = self.run_detail(id).await?;
        let q = parse_whatif_query(query)?;
        let Rows { frame, sample: row_sample } = self.rows(id).await?;
        let binary = detail.summary.task == Task::Binary;
        let threshold = q.threshold.unwrap_or(0.5);
        let attached: Vec<String> = self.callable_models(id, &detail).await?.into_iter().map(|(s, _)| s).collect();
        let score_col = model_of(&q, &detail)?;
        let features = feature_columns(&detail);
        let ids = RowIds::of(&frame, &detail)?;
        let y = crate::eval::f64_values(&frame, &detail.label).unwrap_or_default();
        let p = crate::eval::f64_values(&frame, &score_col)?;

        // Browser: the filtered rows, a page of 12.
        let keep = |i: usize| match q.filter.as_str() {
            "correct" if binary => (p[i] >= threshold) == (y.get(i).copied() == Some(1.0)),
            "incorrect" if binary => (p[i] >= threshold) != (y.get(i).copied() == Some(1.0)),
            "positive" => y.get(i).copied() == Some(1.0),
            "negative" => y.get(i).copied() == Some(0.0),
            _ => true,
        };
        let mut slice_hint = None;
        let in_slice: Option<crate::eval::slicing::SliceIds> = match q.slice.as_deref() {
            Some(spec) => {
                let parsed = crate::eval::slicing::SliceSpec::parse(spec).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
                if !matches!(parsed, crate::eval::slicing::SliceSpec::Filter { .. } | crate::eval::slicing::SliceSpec::Where(_)) {
                    return Err(ServiceError::BadRequest(format!("slice '{spec}' must be a filter such as sex=Female")));
                }
                let rows = crate::eval::slicing::assign(&frame, spec, &parsed, 1).map_err(|e| ServiceError::BadRequest(e.to_string()))?.slice_of_row;
                if rows.iter().all(|s| s.is_none()) {
                    slice_hint = crate::eval::slicing::filter_hint(&frame, &parsed);
                }
                Some(rows)
            }
            None => None,
        };
        let in_range = |i: usize| q.score_min.is_none_or(|m| p[i] >= m) && q.score_max.is_none_or(|m| p[i] <= m);
        let matching: Vec<usize> = (0..frame.height()).filter(|i| keep(*i) && in_range(*i) && in_slice.as_ref().is_none_or(|s| s.get(*i).is_some())).collect();
        let page_rows: Vec<usize> = matching.iter().skip(q.offset as usize).take(12).copied().collect();
        let (columns, rows) = json_rows(&take_rows(&frame, &page_rows)?);
        let browser = ExamplesPage { columns, rows, offset: q.offset, limit: 12, total: matching.len() as u64, note: None, sample: row_sample };
        let browser_ids = page_rows.iter().map(|i| ids.get(*i)).collect();

        // Scatter of a feature against the score, a sample of the filtered rows.
        let x_feature = q.x.clone().or_else(|| features.iter().find(|(_, k)| *k == ColumnKind::Numeric).map(|(n, _)| n.clone())).unwrap_or_default();
        let sample = sample_rows(matching.len(), 1500, 7).into_iter().map(|i| matching[i]).collect::<Vec<_>>();
        let xs = if x_feature.is_empty() { vec![] } else { crate::eval::f64_values(&frame, &x_feature).unwrap_or_default() };
        let scatter_chart = charts::whatif_scatter(
            &sample.iter().map(|i| xs.get(*i).copied().unwrap_or(f64::NAN)).collect::<Vec<_>>(),
            &sample.iter().map(|i| p[*i]).collect::<Vec<_>>(),
            &sample
                .iter()
                .map(|i| match (q.color.as_deref(), binary) {
                    (Some("correct"), true) => if (p[*i] >= threshold) == (y.get(*i).copied() == Some(1.0)) { "right decision".to_string() } else { "wrong decision".to_string() },
                    _ => format!("label {}", y.get(*i).copied().unwrap_or(f64::NAN)),
                })
                .collect::<Vec<_>>(),
            &sample.iter().map(|i| ids.get(*i)).collect::<Vec<_>>(),
            &x_feature,
            &score_col,
        );

        let mut view = WhatIfView {
            run_name: detail.summary.name.clone(),
            task: detail.summary.task.as_str().to_string(),
            threshold,
            model: score_col.clone(),
            score_columns: detail.summary.models.clone(),
            models: attached.clone(),
            filter: q.filter.clone(),
            browser,
            slice_hint,
            browser_ids,
            scatter_chart,
            scatter_x: x_feature.clone(),
            feature_names: features.iter().map(|(n, _)| n.clone()).collect(),
            columns: self.column_briefs(&detail).await?,
            attack: None,
            adversarial: None,
            importance: None,
            saved: self.saved_whatifs(id).await?,
        };
        if let Some(noise) = q.attack_noise {
            let req = AttackRequest { model: Some(score_col.clone()), noise, swap: q.attack_swap.unwrap_or(0.05), sample: 2000, seed: q.seed, slice: q.attack_slice.clone(), threshold };
            if attached.contains(&score_col) {
                view.attack = Some(self.attack(id, req).await?);
            }
        }
        if q.adv && binary && attached.contains(&score_col) {
            let req = super::attack::AdversarialRequest {
                model: Some(score_col.clone()),
                seed: Some(q.seed),
                threshold: Some(threshold),
                immutable: q.adv_immutable.clone(),
                max_radius: q.adv_radius,
                slice: q.adv_slice.clone(),
                ..Default::default()
            };
            view.adversarial = Some(self.adversarial(id, req).await?);
        }
        if let Some(metric) = q.importance.clone()
            && attached.contains(&score_col)
        {
            let req = super::attack::ImportanceQuery { model: Some(score_col.clone()), metric: Some(metric), repeats: Some(5), sample: Some(1000), seed: Some(q.seed), threshold: Some(threshold), slice: q.importance_slice.clone() };
            view.importance = Some(self.importance(id, req).await?);
        }
        Ok(view)
    }

    /// The what-if page's selected example (`example=`, required) with the edits (`set.*`): the
    /// editor's features, every callable model's score before and after, the counterfactual.
    pub async fn whatif_example(&self, id: &str, query: &str) -> Result<WhatIfExample, ServiceError> {
        let detail = self.run_detail(id).await?;
        let q = parse_whatif_query(query)?;
        let example = q.example.clone().ok_or_else(|| ServiceError::BadRequest("name the example: example=".into()))?;
        let frame = self.rows(id).await?.frame;
        let binary = detail.summary.task == Task::Binary;
        let threshold = q.threshold.unwrap_or(0.5);
        let attached: Vec<String> = self.callable_models(id, &detail).await?.into_iter().map(|(s, _)| s).collect();
        let score_col = model_of(&q, &detail)?;
        let features = feature_columns(&detail);
        let ids = RowIds::of(&frame, &detail)?;
        let row = ids.row_of(&example)?;
        let original = Batch::from_frame(&take_rows(&frame, &[row])?)?;
        let changed = edited(&original, &q.edits, &detail)?;
        let features = features
            .iter()
            .map(|(name, kind)| {
                let info = detail.columns.iter().find(|c| c.name == *name);
                let (orig, value) = (text(&original, name), text(&changed, name));
                let mut options: Vec<String> = info.map(|c| c.top_values.iter().map(|v| v.value.clone()).collect()).unwrap_or_default();
                if *kind != ColumnKind::Numeric {
                    for v in [&orig, &value] {
                        if !options.contains(v) {
                            options.push(v.clone());
                        }
                    }
                    options.sort();
                }
                EditableFeature {
                    name: name.clone(),
                    kind: if *kind == ColumnKind::Numeric { "numeric" } else { "categorical" }.into(),
                    edited: orig != value,
                    original: orig,
                    value,
                    options: if *kind == ColumnKind::Numeric { vec![] } else { options },
                    min: info.and_then(|c| c.min),
                    max: info.and_then(|c| c.max),
                }
            })
            .collect();
        // Both versions through every attached model, in one call each.
        let both = {
            let mut b = original.clone();
            for (k, v) in &changed.columns {
                let merged = match (b.columns.get(k), v) {
                    (Some(Values::Numeric(a)), Values::Numeric(c)) => Values::Numeric(vec![a[0], c[0]]),
                    (Some(Values::Text(a)), Values::Text(c)) => Values::Text(vec![a[0].clone(), c[0].clone()]),
                    _ => v.clone(),
                };
                b.columns.insert(k.clone(), merged);
            }
            b.rows = 2;
            Arc::new(b)
        };
        let mut predictions = Vec::with_capacity(attached.len());
        for name in &attached {
            let model = self.model(id, &detail, name).await?;
            let b = both.clone();
            let s = self.quick.run(move || model.predict(&b)).await??;
            let stored = crate::eval::f64_values(&frame, name).ok().and_then(|v| v.get(row).copied());
            predictions.push(WhatIfPrediction {
                model: name.clone(),
                stored,
                original: s[0],
                edited: s[1],
                decision_original: binary.then(|| s[0] >= threshold),
                decision_edited: binary.then(|| s[1] >= threshold),
            });
        }
        let counterfactual = if binary { self.counterfactual_of(frame.clone(), &detail, ids.clone(), row, Some(&score_col), threshold).await? } else { None };
        let attributions = match q.explain.clone() {
            Some(method) if attached.contains(&score_col) => {
                let req = super::explain::AttributionQuery { example: example.clone(), model: Some(score_col.clone()), method: Some(method), seed: Some(q.seed), ..Default::default() };
                Some(self.attributions(id, req, &q.edits).await?)
            }
            _ => None,
        };
        Ok(WhatIfExample { example, features, predictions, counterfactual, attributions })
    }

    /// The what-if page's partial dependence (`pdp=<feature>`, required) for the page's model,
    /// with the selected (edited) example's own curve when `example=` is given, and its chart.
    pub async fn whatif_pdp(&self, id: &str, query: &str) -> Result<WhatIfPdp, ServiceError> {
        let detail = self.run_detail(id).await?;
        let q = parse_whatif_query(query)?;
        let model = model_of(&q, &detail)?;
        let pdp = self.pdp_of(id, &detail, &q, &model).await?;
        let binary = detail.summary.task == Task::Binary;
        let chart = charts::pdp_figure(&pdp, binary.then(|| q.threshold.unwrap_or(0.5)));
        Ok(WhatIfPdp { pdp, chart })
    }
}

/// The model a what-if request is about: `model=` (a score column of the run), else the run's
/// first score column, the default of every other page (overview, slices, counterfactuals), so
/// the pages open on the same model.
fn model_of(q: &WhatIfQuery, detail: &RunDetail) -> Result<String, ServiceError> {
    let models = &detail.summary.models;
    let model = q.model.clone().or_else(|| models.first().cloned()).unwrap_or_default();
    if !models.contains(&model) {
        return Err(ServiceError::BadRequest(format!("model '{model}' is not a score column of this run (models: {})", models.join(", "))));
    }
    Ok(model)
}

impl AppState {
    /// The edited examples saved with a run, oldest first. Each is its own setting
    /// (`whatif:<name>`), so saving or deleting one never rewrites (or loses) the others; a list
    /// stored by an earlier version under one key is read too.
    pub async fn saved_whatifs(&self, id: &str) -> Result<Vec<strata_app::model::SavedWhatIf>, ServiceError> {
        let unreadable = |e: serde_json::Error| ServiceError::Model(format!("saved what-if examples are unreadable: {e}"));
        let mut saved: Vec<strata_app::model::SavedWhatIf> = match self.store.get_setting(id, SAVED_KEY).await? {
            Some(t) => serde_json::from_str(&t).map_err(unreadable)?,
            None => vec![],
        };
        for (_, text) in self.store.settings_with_prefix(id, SAVED_PREFIX).await? {
            let one: strata_app::model::SavedWhatIf = serde_json::from_str(&text).map_err(unreadable)?;
            saved.retain(|s| s.name != one.name);
            saved.push(one);
        }
        saved.sort_by(|a, b| a.saved_at.cmp(&b.saved_at).then_with(|| a.name.cmp(&b.name)));
        Ok(saved)
    }

    /// Saves an edited example under `name` (replacing one of the same name). The example must
    /// exist and every edited column must be a feature of the run.
    pub async fn save_whatif(&self, id: &str, name: &str, example: &str, edits: BTreeMap<String, String>) -> Result<Vec<strata_app::model::SavedWhatIf>, ServiceError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(ServiceError::BadRequest("a saved example needs a name of 1 to 100 characters".into()));
        }
        let detail = self.run_detail(id).await?;
        let frame = self.rows(id).await?.frame;
        let row = RowIds::of(&frame, &detail)?.row_of(example)?;
        let features = feature_columns(&detail);
        if let Some(bad) = edits.keys().find(|k| !features.iter().any(|(f, _)| f == *k)) {
            return Err(ServiceError::BadRequest(format!("'{bad}' is not a feature column of the run")));
        }
        // Keep only what differs from the example (the editor sends every feature).
        let original = Batch::from_frame(&take_rows(&frame, &[row])?)?;
        let edits: BTreeMap<String, String> = edits
            .into_iter()
            .filter(|(k, v)| match original.columns.get(k) {
                Some(Values::Numeric(x)) => v.trim().parse::<f64>().ok() != Some(x[0]) && !(v.trim().is_empty() && !x[0].is_finite()),
                Some(Values::Text(x)) => *v != x[0],
                None => true,
            })
            .collect();
        let one = strata_app::model::SavedWhatIf {
            name: name.to_string(),
            example: example.to_string(),
            edits,
            saved_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        };
        let text = serde_json::to_string(&one).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        if !self.store.put_setting(id, &format!("{SAVED_PREFIX}{name}"), &text).await? {
            return Err(ServiceError::NotFound(id.to_string()));
        }
        self.saved_whatifs(id).await
    }

    /// Deletes a saved example; not found if there is none of that name.
    pub async fn delete_whatif(&self, id: &str, name: &str) -> Result<Vec<strata_app::model::SavedWhatIf>, ServiceError> {
        let mut found = self.store.delete_setting(id, &format!("{SAVED_PREFIX}{name}")).await?;
        // An example from the older one-list format.
        if let Some(t) = self.store.get_setting(id, SAVED_KEY).await? {
            let mut legacy: Vec<strata_app::model::SavedWhatIf> = serde_json::from_str(&t).unwrap_or_default();
            let before = legacy.len();
            legacy.retain(|s| s.name != name);
            if legacy.len() != before {
                found = true;
                let text = serde_json::to_string(&legacy).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
                self.store.put_setting(id, SAVED_KEY, &text).await?;
            }
        }
        if !found {
            return Err(ServiceError::Missing(format!("run {id} has no saved example '{name}'")));
        }
        self.saved_whatifs(id).await
    }
}
