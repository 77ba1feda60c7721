//! What-if: call the run's attached models on edited examples, partial dependence, the nearest
//! counterfactual; the `/runs/{id}/whatif` page's data and the matching API.

use std::collections::BTreeMap;
use std::sync::Arc;

use polars::prelude::*;
use strata_app::model::{ColumnKind, Counterfactual, EditableFeature, ExamplesPage, PartialDependence, Role, RunDetail, Task, WhatIfPrediction, WhatIfView};

use super::{AppState, ServiceError, json_rows};
use crate::charts;
use crate::eval::whatif::nearest_counterfactual;
use crate::models::http::{Endpoint, HttpModel};
use crate::models::onnx::OnnxModel;
use crate::models::pdp::partial_dependence;
use crate::models::{Batch, Model, ModelError, Values};

impl From<ModelError> for ServiceError {
    fn from(e: ModelError) -> Self {
        match e {
            ModelError::MissingInput { .. } | ModelError::WrongType { .. } => ServiceError::BadRequest(e.to_string()),
            other => ServiceError::Model(other.to_string()),
        }
    }
}

/// The models a run can call: (score column, attachment name) for each ONNX attachment. An
/// attachment without a declared score column is matched by name (`model_gbt.onnx` ↔ `score_gbt`
/// or `prediction_gbt`), else called by its file stem.
pub fn attached_models(detail: &RunDetail) -> Vec<(String, String)> {
    detail
        .attachments
        .iter()
        .filter(|a| a.media_type == "application/onnx" || a.name.ends_with(".onnx"))
        .map(|a| {
            let stem = a.name.trim_end_matches(".onnx");
            let suffix = stem.strip_prefix("model_").unwrap_or(stem);
            let score = a.model.clone().or_else(|| detail.summary.models.iter().find(|m| m.rsplit_once('_').map(|(_, s)| s) == Some(suffix)).cloned()).unwrap_or_else(|| stem.to_string());
            (score, a.name.clone())
        })
        .collect()
}

fn is_numeric(detail: &RunDetail, name: &str) -> bool {
    detail.columns.iter().any(|c| c.name == name && matches!(c.kind, ColumnKind::Numeric | ColumnKind::Boolean))
}

fn feature_columns(detail: &RunDetail) -> Vec<(String, ColumnKind)> {
    detail.columns.iter().filter(|c| c.role == Role::Feature).map(|c| (c.name.clone(), c.kind)).collect()
}

/// The id of every row: the id column's text, or the row number.
fn row_ids(df: &DataFrame, detail: &RunDetail) -> Result<Vec<String>, ServiceError> {
    match detail.columns.iter().find(|c| c.role == Role::Id) {
        Some(c) => {
            let s = df.column(&c.name)?.cast(&DataType::String)?;
            Ok(s.str()?.iter().map(|v| v.unwrap_or("").to_string()).collect())
        }
        None => Ok((0..df.height()).map(|i| i.to_string()).collect()),
    }
}

/// A parsed what-if query.
#[derive(Default)]
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
}

fn parse_whatif_query(query: &str) -> Result<WhatIfQuery, ServiceError> {
    let bad = ServiceError::BadRequest;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).map_err(|e| bad(format!("malformed query string: {e}")))?;
    let mut q = WhatIfQuery { filter: "all".into(), sample: 500, grid: 20, ..Default::default() };
    for (k, v) in pairs {
        if let Some(feature) = k.strip_prefix("set.") {
            q.edits.insert(feature.to_string(), v);
            continue;
        }
        if v.trim().is_empty() {
            continue;
        }
        match k.as_str() {
            "model" => q.model = Some(v),
            "example" => q.example = Some(v),
            "threshold" => {
                let t: f64 = v.parse().map_err(|_| bad(format!("threshold='{v}' is not a number")))?;
                if !(0.0..=1.0).contains(&t) {
                    return Err(bad(format!("threshold {t} is outside [0, 1]")));
                }
                q.threshold = Some(t);
            }
            "filter" => {
                if !["all", "correct", "incorrect", "positive", "negative"].contains(&v.as_str()) {
                    return Err(bad(format!("filter '{v}' is not one of all, correct, incorrect, positive, negative")));
                }
                q.filter = v;
            }
            "offset" => q.offset = v.parse().map_err(|_| bad(format!("offset='{v}' is not a whole number")))?,
            "pdp" | "feature" => q.pdp = Some(v),
            "x" => q.x = Some(v),
            "sample" => q.sample = v.parse().ok().filter(|s| (10..=5000).contains(s)).ok_or_else(|| bad("sample is a whole number in 10..=5000".into()))?,
            "grid" => q.grid = v.parse().ok().filter(|g| (2..=100).contains(g)).ok_or_else(|| bad("grid is a whole number in 2..=100".into()))?,
            "seed" => q.seed = v.parse().map_err(|_| bad(format!("seed='{v}' is not a whole number")))?,
            "attack_noise" => q.attack_noise = Some(v.parse().map_err(|_| bad(format!("attack_noise='{v}' is not a number")))?),
            "attack_swap" => q.attack_swap = Some(v.parse().map_err(|_| bad(format!("attack_swap='{v}' is not a number")))?),
            "attack_slice" => q.attack_slice = Some(v),
            "slice" => q.slice = Some(v),
            "score_min" => q.score_min = Some(v.parse().map_err(|_| bad(format!("score_min='{v}' is not a number")))?),
            "score_max" => q.score_max = Some(v.parse().map_err(|_| bad(format!("score_max='{v}' is not a number")))?),
            "color" => {
                if v != "label" && v != "correct" {
                    return Err(bad(format!("color '{v}' is not one of label, correct")));
                }
                q.color = Some(v)
            }
            other => return Err(bad(format!("unknown parameter '{other}'"))),
        }
    }
    Ok(q)
}

pub(crate) use crate::eval::sample_rows;

pub(crate) fn take_rows(df: &DataFrame, rows: &[usize]) -> Result<DataFrame, PolarsError> {
    let idx = IdxCa::from_vec("idx".into(), rows.iter().map(|r| *r as IdxSize).collect());
    df.take(&idx)
}

/// A one-row batch with `edits` applied (numbers parsed; an empty value is missing).
fn edited(original: &Batch, edits: &BTreeMap<String, String>, detail: &RunDetail) -> Result<Batch, ServiceError> {
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

/// The setting key of a run's saved what-if examples.
pub const SAVED_KEY: &str = "whatif_saved";

/// The setting key of a run's HTTP endpoints.
pub const ENDPOINTS_KEY: &str = "endpoints";

impl AppState {
    /// The HTTP endpoints stored with a run.
    pub async fn endpoints(&self, id: &str) -> Result<Vec<Endpoint>, ServiceError> {
        Ok(match self.store.get_setting(id, ENDPOINTS_KEY).await? {
            Some(text) => serde_json::from_str(&text).map_err(|e| ServiceError::Model(format!("stored endpoints are unreadable: {e}")))?,
            None => vec![],
        })
    }

    /// Replaces a run's HTTP endpoints (validated).
    pub async fn save_endpoints(&self, id: &str, endpoints: &[Endpoint]) -> Result<(), ServiceError> {
        for e in endpoints {
            e.validate().map_err(ServiceError::BadRequest)?;
        }
        let text = serde_json::to_string(endpoints).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        if !self.store.put_setting(id, ENDPOINTS_KEY, &text).await? {
            return Err(ServiceError::NotFound(id.to_string()));
        }
        self.models.lock().unwrap_or_else(|p| p.into_inner()).retain(|k, _| !k.starts_with(&format!("{id}\u{0}endpoint:")));
        Ok(())
    }

    /// Every model a run can call: attached ONNX files, then named HTTP endpoints, as
    /// (name, source) where source is the attachment or `endpoint:NAME`.
    pub async fn callable_models(&self, id: &str, detail: &RunDetail) -> Result<Vec<(String, String)>, ServiceError> {
        let mut out = attached_models(detail);
        out.extend(self.endpoints(id).await?.into_iter().map(|e| (e.name.clone(), format!("endpoint:{}", e.name))));
        if detail.summary.models.iter().any(|m| m == super::benchmark::COLUMN) {
            out.push((super::benchmark::COLUMN.to_string(), "benchmark".to_string()));
        }
        Ok(out)
    }

    /// The model behind a run's score column or endpoint name (loaded once, then cached).
    pub async fn model(&self, id: &str, detail: &RunDetail, score: &str) -> Result<Arc<dyn Model>, ServiceError> {
        let attached = self.callable_models(id, detail).await?;
        let Some((_, file)) = attached.iter().find(|(s, _)| s == score) else {
            return Err(ServiceError::BadRequest(format!(
                "no model file is attached for '{score}' (attached: {})",
                if attached.is_empty() { "none".to_string() } else { attached.iter().map(|(s, f)| format!("{s} ← {f}")).collect::<Vec<_>>().join(", ") }
            )));
        };
        let key = format!("{id}\u{0}{file}");
        if let Some(m) = self.models.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(m.clone());
        }
        if file == "benchmark" {
            return self.benchmark_model(id).await?.ok_or_else(|| ServiceError::NotFound(format!("{id}: no benchmark model")));
        }
        if let Some(name) = file.strip_prefix("endpoint:") {
            let endpoint = self.endpoints(id).await?.into_iter().find(|e| e.name == name).ok_or_else(|| ServiceError::NotFound(format!("{id}/{file}")))?;
            let features: Vec<String> = if endpoint.inputs.is_empty() { feature_columns(detail).into_iter().map(|(n, _)| n).collect() } else { endpoint.inputs.clone() };
            let columns = features.into_iter().map(|c| { let numeric = is_numeric(detail, &c); (c, numeric) }).collect();
            let model: Arc<dyn Model> = Arc::new(HttpModel::new(endpoint, columns)?);
            self.models.lock().unwrap_or_else(|p| p.into_inner()).insert(key, model.clone());
            return Ok(model);
        }
        let (_, bytes) = self.store.get_attachment(id, file).await?.ok_or_else(|| ServiceError::NotFound(format!("{id}/{file}")))?;
        // A single [N, k] input needs its columns named: from the run's models.json, if any.
        let card = self.store.get_attachment(id, "models.json").await?.and_then(|(_, b)| serde_json::from_slice::<serde_json::Value>(&b).ok());
        let matrix = card.and_then(|c| c["inputs"].as_array().map(|a| a.iter().filter_map(|i| i["name"].as_str().map(str::to_string)).collect::<Vec<_>>()));
        let name = score.to_string();
        let model: Arc<dyn Model> = tokio::task::spawn_blocking(move || OnnxModel::load(&name, &bytes, matrix))
            .await
            .map_err(|e| ServiceError::Join(e.to_string()))?
            .map(|m| Arc::new(m) as Arc<dyn Model>)?;
        self.models.lock().unwrap_or_else(|p| p.into_inner()).insert(key, model.clone());
        Ok(model)
    }

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
        let columns: Vec<String> = detail.columns.iter().map(|c| c.name.clone()).collect();
        let batch = Batch::from_json(examples, &|n| is_numeric(&detail, n), &columns).map_err(ServiceError::BadRequest)?;
        let batch = Arc::new(batch);
        let mut out = vec![BTreeMap::new(); examples.len()];
        for name in names {
            let model = self.model(id, &detail, &name).await?;
            let b = batch.clone();
            let scores = tokio::task::spawn_blocking(move || model.predict(&b)).await.map_err(|e| ServiceError::Join(e.to_string()))??;
            for (o, s) in out.iter_mut().zip(scores) {
                o.insert(name.clone(), s);
            }
        }
        Ok(out)
    }

    /// Partial dependence of one feature for one model (`model`, `feature`, `sample`, `grid`,
    /// `seed`, and `example` + `set.*` for the selected example's own curve).
    pub async fn pdp(&self, id: &str, query: &str) -> Result<PartialDependence, ServiceError> {
        let detail = self.run_detail(id).await?;
        let q = parse_whatif_query(query)?;
        let model_name = q.model.clone().or_else(|| attached_models(&detail).first().map(|(s, _)| s.clone())).ok_or_else(|| ServiceError::BadRequest("the run has no model file attached".into()))?;
        let feature = q.pdp.clone().ok_or_else(|| ServiceError::BadRequest("name the feature: feature=".into()))?;
        if !feature_columns(&detail).iter().any(|(f, _)| *f == feature) {
            return Err(ServiceError::BadRequest(format!("'{feature}' is not a feature column of the run")));
        }
        let frame = self.frame(id).await?;
        let model = self.model(id, &detail, &model_name).await?;
        let example = match &q.example {
            Some(e) => {
                let ids = row_ids(&frame, &detail)?;
                let row = ids.iter().position(|x| x == e).ok_or_else(|| ServiceError::BadRequest(format!("no example with id '{e}'")))?;
                Some(edited(&Batch::from_frame(&take_rows(&frame, &[row])?)?, &q.edits, &detail)?)
            }
            None => None,
        };
        let rows = sample_rows(frame.height(), q.sample, q.seed);
        let sample = Batch::from_frame(&take_rows(&frame, &rows)?)?;
        let source = Batch::from_frame(&frame.select([feature.as_str()])?)?.columns.remove(&feature);
        let grid = q.grid;
        Ok(tokio::task::spawn_blocking(move || partial_dependence(model.as_ref(), &sample, &feature, grid, example.as_ref(), source.as_ref()))
            .await
            .map_err(|e| ServiceError::Join(e.to_string()))??)
    }

    /// The nearest example with the other decision (binary runs), from the stored scores.
    pub async fn counterfactual(&self, id: &str, query: &str) -> Result<Option<Counterfactual>, ServiceError> {
        let detail = self.run_detail(id).await?;
        let q = parse_whatif_query(query)?;
        let frame = self.frame(id).await?;
        let example = q.example.clone().ok_or_else(|| ServiceError::BadRequest("name the example: example=".into()))?;
        let ids = row_ids(&frame, &detail)?;
        let row = ids.iter().position(|x| *x == example).ok_or_else(|| ServiceError::BadRequest(format!("no example with id '{example}'")))?;
        self.counterfactual_of(&frame, &detail, &ids, row, q.model.as_deref(), q.threshold.unwrap_or(0.5))
    }

    fn counterfactual_of(&self, frame: &DataFrame, detail: &RunDetail, ids: &[String], row: usize, model: Option<&str>, threshold: f64) -> Result<Option<Counterfactual>, ServiceError> {
        if detail.summary.task != Task::Binary {
            return Err(ServiceError::BadRequest("counterfactuals need a binary classification run (a decision to flip)".into()));
        }
        let score = model.map(str::to_string).or_else(|| detail.summary.models.first().cloned()).unwrap_or_default();
        if !detail.summary.models.contains(&score) {
            return Err(ServiceError::BadRequest(format!("model '{score}' is not a score column of this run")));
        }
        let scores = crate::eval::f64_values(frame, &score)?;
        Ok(nearest_counterfactual(frame, &feature_columns(detail), ids, row, &scores, threshold)?)
    }

    /// The what-if page.
    pub async fn whatif_view(&self, id: &str, query: &str) -> Result<WhatIfView, ServiceError> {
        let detail = self.run_detail(id).await?;
        let q = parse_whatif_query(query)?;
        let frame = self.frame(id).await?;
        let binary = detail.summary.task == Task::Binary;
        let threshold = q.threshold.unwrap_or(0.5);
        let attached: Vec<String> = self.callable_models(id, &detail).await?.into_iter().map(|(s, _)| s).collect();
        let score_col = q.model.clone().or_else(|| attached.first().cloned()).or_else(|| detail.summary.models.first().cloned()).unwrap_or_default();
        if !detail.summary.models.contains(&score_col) {
            return Err(ServiceError::BadRequest(format!("model '{score_col}' is not a score column of this run")));
        }
        let features = feature_columns(&detail);
        let ids = row_ids(&frame, &detail)?;
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
        let in_slice: Option<Vec<Option<u32>>> = match q.slice.as_deref() {
            Some(spec) => {
                let parsed = crate::eval::slicing::SliceSpec::parse(spec).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
                if !matches!(parsed, crate::eval::slicing::SliceSpec::Filter { .. }) {
                    return Err(ServiceError::BadRequest(format!("slice '{spec}' must be a filter such as sex=Female")));
                }
                Some(crate::eval::slicing::assign(&frame, spec, &parsed, 1).map_err(|e| ServiceError::BadRequest(e.to_string()))?.slice_of_row)
            }
            None => None,
        };
        let in_range = |i: usize| q.score_min.is_none_or(|m| p[i] >= m) && q.score_max.is_none_or(|m| p[i] <= m);
        let matching: Vec<usize> = (0..frame.height()).filter(|i| keep(*i) && in_range(*i) && in_slice.as_ref().is_none_or(|s| s[*i].is_some())).collect();
        let page_rows: Vec<usize> = matching.iter().skip(q.offset as usize).take(12).copied().collect();
        let (columns, rows) = json_rows(&take_rows(&frame, &page_rows)?);
        let browser = ExamplesPage { columns, rows, offset: q.offset, limit: 12, total: matching.len() as u64 };
        let browser_ids = page_rows.iter().map(|i| ids[*i].clone()).collect();

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
            &sample.iter().map(|i| ids[*i].clone()).collect::<Vec<_>>(),
            &x_feature,
            &score_col,
        );

        let mut view = WhatIfView {
            run_name: detail.summary.name.clone(),
            task: detail.summary.task.as_str().to_string(),
            threshold,
            models: attached.clone(),
            filter: q.filter.clone(),
            browser,
            browser_ids,
            scatter_chart,
            example: None,
            features: vec![],
            predictions: vec![],
            counterfactual: None,
            pdp: None,
            pdp_chart: None,
            feature_names: features.iter().map(|(n, _)| n.clone()).collect(),
            attack: None,
            saved: self.saved_whatifs(id).await?,
        };
        if let Some(noise) = q.attack_noise {
            let req = AttackRequest { model: Some(score_col.clone()), noise, swap: q.attack_swap.unwrap_or(0.05), sample: 2000, seed: q.seed, slice: q.attack_slice.clone(), threshold };
            if attached.contains(&score_col) {
                view.attack = Some(self.attack(id, req).await?);
            }
        }
        let Some(example) = q.example.clone() else { return Ok(view) };
        let row = ids.iter().position(|x| *x == example).ok_or_else(|| ServiceError::BadRequest(format!("no example with id '{example}'")))?;
        let original = Batch::from_frame(&take_rows(&frame, &[row])?)?;
        let changed = edited(&original, &q.edits, &detail)?;
        let text = |b: &Batch, name: &str| match b.columns.get(name) {
            Some(Values::Numeric(v)) => v.first().filter(|x| x.is_finite()).map(|x| format!("{x}")).unwrap_or_default(),
            Some(Values::Text(v)) => v.first().cloned().unwrap_or_default(),
            None => String::new(),
        };
        view.features = features
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
        for name in &attached {
            let model = self.model(id, &detail, name).await?;
            let b = both.clone();
            let s = tokio::task::spawn_blocking(move || model.predict(&b)).await.map_err(|e| ServiceError::Join(e.to_string()))??;
            let stored = crate::eval::f64_values(&frame, name).ok().and_then(|v| v.get(row).copied());
            view.predictions.push(WhatIfPrediction {
                model: name.clone(),
                stored,
                original: s[0],
                edited: s[1],
                decision_original: binary.then(|| s[0] >= threshold),
                decision_edited: binary.then(|| s[1] >= threshold),
            });
        }
        if binary {
            view.counterfactual = self.counterfactual_of(&frame, &detail, &ids, row, Some(&score_col), threshold)?;
        }
        if let Some(feature) = q.pdp.clone() {
            if attached.contains(&score_col) {
                let model = self.model(id, &detail, &score_col).await?;
                let rows = sample_rows(frame.height(), q.sample, q.seed);
                let sample = Batch::from_frame(&take_rows(&frame, &rows)?)?;
                if !features.iter().any(|(f, _)| *f == feature) {
                    return Err(ServiceError::BadRequest(format!("'{feature}' is not a feature column of the run")));
                }
                let source = Batch::from_frame(&frame.select([feature.as_str()])?)?.columns.remove(&feature);
                let grid = q.grid;
                let pdp = tokio::task::spawn_blocking(move || partial_dependence(model.as_ref(), &sample, &feature, grid, Some(&changed), source.as_ref()))
                    .await
                    .map_err(|e| ServiceError::Join(e.to_string()))??;
                view.pdp_chart = Some(charts::pdp_figure(&pdp, binary.then_some(threshold)));
                view.pdp = Some(pdp);
            }
        }
        view.example = Some(example);
        Ok(view)
    }
}

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
        let slices = tokio::task::spawn_blocking(move || {
            let perturbed = crate::models::attack::perturb(&batch, &features, noise, swap, seed);
            crate::models::attack::attack(model.as_ref(), &batch, &perturbed, &labels, &groups, binary, threshold, label_sd)
        })
        .await
        .map_err(|e| ServiceError::Join(e.to_string()))??;
        Ok(strata_app::model::AttackResult { model: model_name, noise, swap, threshold, sample: rows.len() as u64, seed, slices })
    }
}

impl AppState {
    /// The edited examples saved with a run, oldest first.
    pub async fn saved_whatifs(&self, id: &str) -> Result<Vec<strata_app::model::SavedWhatIf>, ServiceError> {
        Ok(match self.store.get_setting(id, SAVED_KEY).await? {
            Some(t) => serde_json::from_str(&t).map_err(|e| ServiceError::Model(format!("saved what-if examples are unreadable: {e}")))?,
            None => vec![],
        })
    }

    /// Saves an edited example under `name` (replacing one of the same name). The example must
    /// exist and every edited column must be a feature of the run.
    pub async fn save_whatif(&self, id: &str, name: &str, example: &str, edits: BTreeMap<String, String>) -> Result<Vec<strata_app::model::SavedWhatIf>, ServiceError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(ServiceError::BadRequest("a saved example needs a name of 1 to 100 characters".into()));
        }
        let detail = self.run_detail(id).await?;
        let frame = self.frame(id).await?;
        let row = row_ids(&frame, &detail)?.iter().position(|x| x == example).ok_or_else(|| ServiceError::BadRequest(format!("no example with id '{example}'")))?;
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
        let mut saved = self.saved_whatifs(id).await?;
        saved.retain(|s| s.name != name);
        saved.push(strata_app::model::SavedWhatIf {
            name: name.to_string(),
            example: example.to_string(),
            edits,
            saved_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        });
        self.write_saved(id, &saved).await?;
        Ok(saved)
    }

    /// Deletes a saved example; not found if there is none of that name.
    pub async fn delete_whatif(&self, id: &str, name: &str) -> Result<Vec<strata_app::model::SavedWhatIf>, ServiceError> {
        let mut saved = self.saved_whatifs(id).await?;
        let before = saved.len();
        saved.retain(|s| s.name != name);
        if saved.len() == before {
            return Err(ServiceError::NotFound(format!("saved example '{name}'")));
        }
        self.write_saved(id, &saved).await?;
        Ok(saved)
    }

    async fn write_saved(&self, id: &str, saved: &[strata_app::model::SavedWhatIf]) -> Result<(), ServiceError> {
        let text = serde_json::to_string(saved).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        if !self.store.put_setting(id, SAVED_KEY, &text).await? {
            return Err(ServiceError::NotFound(id.to_string()));
        }
        Ok(())
    }
}
