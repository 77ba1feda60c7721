//! Drift between runs: `GET /api/v1/runs/{id}/drift?reference=RUN` (or a window of earlier runs,
//! `reference=A,B,C`, stacked) and the `/runs/{id}/drift` page.

use std::collections::HashMap;

use strata_app::model::{ColumnKind, DriftResult, DriftView, Role, RunDetail, RunSource, Task};

use super::params::{self, DriftParams, StreamDriftParams};
use super::{AppState, ServiceError};
use crate::charts;
use crate::eval::drift::{ColumnCounts, Counted, CountedNumbers};

/// Drift of a run whose rows stay in its dataset counts every distinct value of a column; a
/// column with more is left out (and said so): its counts would be as large as the rows.
pub const DRIFT_EXACT_VALUES: usize = 1_000_000;

/// A column drift compares: its name and kind (`numeric`, `categorical`, `score`).
#[derive(Clone, Debug)]
pub(crate) struct Wanted {
    pub name: String,
    pub kind: &'static str,
}

impl Wanted {
    pub fn numeric(&self) -> bool {
        self.kind != "categorical"
    }
}

/// One run's counted columns (those within [`DRIFT_EXACT_VALUES`]), its label as 0/1 counts
/// (binary runs), and notes on the columns left out.
#[derive(Debug, Default)]
pub(crate) struct RunCounts {
    pub columns: HashMap<String, Counted>,
    pub label: Option<CountedNumbers>,
    pub notes: Vec<String>,
    /// Columns left out (too many distinct values).
    pub left_out: Vec<String>,
}

impl RunCounts {
    /// The counts of a window of runs: each column summed; a column one run left out is left out.
    fn merge(mut self, other: RunCounts) -> Result<RunCounts, ServiceError> {
        let mut columns = HashMap::new();
        for (name, mut c) in std::mem::take(&mut self.columns) {
            if let Some(o) = other.columns.get(&name) {
                c.merge(o)?;
                columns.insert(name, c);
            }
        }
        let label = match (self.label, other.label) {
            (Some(mut a), Some(b)) => {
                a.merge(&b);
                Some(a)
            }
            _ => None,
        };
        self.notes.extend(other.notes);
        self.left_out.extend(other.left_out);
        Ok(RunCounts { columns, label, notes: self.notes, left_out: self.left_out })
    }

    /// Counts `frame`'s `wanted` columns (a batch of a dataset) into these; a column past
    /// [`DRIFT_EXACT_VALUES`] distinct values is dropped with a note naming `place`.
    pub fn add_batch(&mut self, frame: &polars::prelude::DataFrame, wanted: &[Wanted], label: Option<&str>, place: &str) -> Result<(), ServiceError> {
        for w in wanted {
            if self.left_out.contains(&w.name) {
                continue;
            }
            let c = self.columns.entry(w.name.clone()).or_insert_with(|| if w.numeric() { Counted::Numbers(Default::default()) } else { Counted::Texts(Default::default()) });
            c.add_frame(frame, &w.name)?;
            if c.distinct() > DRIFT_EXACT_VALUES {
                self.columns.remove(&w.name);
                self.left_out.push(w.name.clone());
                self.notes.push(too_many(&w.name, place));
            }
        }
        if let Some(l) = label {
            self.label.get_or_insert_with(Default::default).merge(&CountedNumbers::of(&crate::eval::f64_values(frame, l)?));
        }
        Ok(())
    }
}

/// The note for a column left out of an external run's drift.
pub(crate) fn too_many(column: &str, place: &str) -> String {
    format!("'{column}' has more than {DRIFT_EXACT_VALUES} distinct values in {place}: its drift is not computed where the rows stay in their dataset (it counts every distinct value; binned drift for such columns is not built yet)")
}

/// Base rates of a binary label (its 0/1 counts) in the reference and the current run, and the
/// two-proportion z-test's p-value.
fn base_rate_shift(a: &CountedNumbers, b: &CountedNumbers) -> (f64, f64, f64) {
    let rate = |c: &CountedNumbers| (c.sum() / c.present().max(1) as f64, c.present() as f64);
    let ((pa, na), (pb, nb)) = (rate(a), rate(b));
    let pooled = (pa * na + pb * nb) / (na + nb);
    let se = (pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb)).sqrt();
    let p = if se > 0.0 { crate::eval::stats::two_sided_p((pb - pa) / se) } else { 1.0 };
    (pa, pb, p)
}

impl AppState {
    /// Every feature's (and score's, and the label's) shift from the reference run to this one.
    pub async fn drift(&self, id: &str, query: &str) -> Result<DriftResult, ServiceError> {
        let p = params::decode(query)?;
        let cur = self.run_detail(id).await?;
        self.drift_from(&cur, p).await
    }

    /// Drift of the run `cur` (its metadata loaded once by the caller).
    async fn drift_from(&self, cur: &strata_app::model::RunDetail, p: DriftParams) -> Result<DriftResult, ServiceError> {
        let id = cur.summary.id.as_str();
        let reference = p.reference.ok_or_else(|| ServiceError::BadRequest("name the reference run: reference=RUN_ID (or a window of runs: A,B,C)".into()))?;
        let ids: Vec<String> = reference.split(',').map(|r| r.trim().to_string()).filter(|r| !r.is_empty()).collect();
        if ids.is_empty() || ids.len() > 20 {
            return Err(ServiceError::BadRequest("the reference is 1 to 20 run ids, comma-separated".into()));
        }
        if ids.iter().any(|r| r == id) {
            return Err(ServiceError::BadRequest(format!("run {id} cannot be its own reference")));
        }
        let mut refs = Vec::with_capacity(ids.len());
        for r in &ids {
            refs.push(self.run_detail(r).await?);
        }
        let features: Vec<(String, ColumnKind)> = cur
            .columns
            .iter()
            .filter(|c| c.role == Role::Feature && refs.iter().all(|refd| refd.columns.iter().any(|r| r.name == c.name)))
            .map(|c| (c.name.clone(), if c.kind == ColumnKind::Numeric { ColumnKind::Numeric } else { ColumnKind::Categorical }))
            .collect();
        if features.is_empty() {
            return Err(ServiceError::BadRequest("the run and its reference share no feature column".into()));
        }
        let scores: Vec<String> = cur.summary.models.iter().filter(|m| refs.iter().all(|r| r.summary.models.contains(m))).cloned().collect();
        let binary = cur.summary.task == Task::Binary && refs.iter().all(|r| r.summary.task == Task::Binary);
        if cur.summary.source.is_some() || refs.iter().any(|r| r.summary.source.is_some()) {
            return self.drift_pushed(cur, &refs, reference, &features, &scores, binary).await;
        }
        // Stored rows do not change: the answer is kept for repeats (the page asks again for each
        // feature's histogram). Keyed by the compared scores too (a benchmark model trained on
        // the reference adds one); forgetting this run drops it.
        let key = format!("{id}\0drift\0{reference}\0{}", scores.join("\0"));
        if let Some(r) = self.recall::<DriftResult>(&key) {
            return Ok(r);
        }
        let (label_r, label_c) = (refs[0].label.clone(), cur.label.clone());
        // A tracked request first reads the runs (a step each; stopped between them when
        // cancelled), then compares their columns (`drift_tracked`: a step each).
        let progress = super::jobs::current();
        let read = |n: u64| -> Result<(), ServiceError> {
            match &progress {
                Some(p) if p.is_cancelled() => Err(ServiceError::Cancelled),
                Some(p) => {
                    p.advance(n);
                    Ok(())
                }
                None => Ok(()),
            }
        };
        if let Some(p) = &progress {
            p.stage("reading");
            p.add_total(refs.len() as u64 + 1);
        }
        let a = if refs.len() == 1 {
            let a = self.frame(&ids[0]).await?;
            read(1)?;
            a
        } else {
            // A window of runs: their shared columns stacked (each run's label under the first's name).
            let mut stacked: Option<polars::prelude::DataFrame> = None;
            for r in &refs {
                let f = self.frame(&r.summary.id).await?;
                read(1)?;
                let mut cols: Vec<polars::prelude::Column> = features.iter().map(|(c, _)| f.column(c).cloned()).chain(scores.iter().map(|c| f.column(c).cloned())).collect::<Result<_, _>>()?;
                if binary {
                    cols.push(f.column(&r.label)?.clone().with_name(label_r.as_str().into()));
                }
                let part = polars::prelude::DataFrame::new(f.height(), cols)?;
                stacked = Some(match stacked {
                    None => part,
                    Some(mut acc) => {
                        for (x, y) in acc.columns().iter().zip(part.columns()) {
                            if x.dtype() != y.dtype() {
                                return Err(ServiceError::BadRequest(format!("column '{}' is {} in one reference run and {} in run {}", x.name(), x.dtype(), y.dtype(), r.summary.id)));
                            }
                        }
                        acc.vstack_mut(&part)?;
                        acc
                    }
                });
            }
            std::sync::Arc::new(stacked.expect("at least one reference"))
        };
        let b = self.frame(id).await?;
        read(1)?;
        let started = std::time::Instant::now();
        let (features, base) = self.work.run_tracked(move |progress| -> Result<_, ServiceError> {
            let f = crate::eval::drift::drift_tracked(&a, &b, &features, &scores, progress)?;
            // Prior-probability shift: the base rates and a two-proportion z-test.
            let base = if binary {
                let (ya, yb) = (crate::eval::f64_values(&a, &label_r)?, crate::eval::f64_values(&b, &label_c)?);
                Some(base_rate_shift(&CountedNumbers::of(&ya), &CountedNumbers::of(&yb)))
            } else {
                None
            };
            Ok((f, base))
        })
        .await??;
        let result = DriftResult {
            reference,
            current: id.to_string(),
            features,
            base_rate_reference: base.map(|b| b.0),
            base_rate_current: base.map(|b| b.1),
            base_rate_p_value: base.map(|b| b.2),
            seconds: started.elapsed().as_secs_f64(),
            notes: vec![],
        };
        self.remember(&key, result.clone());
        Ok(result)
    }

    /// Drift when a run's rows stay in its dataset (an external run on either side): every run's
    /// columns counted where they are — an uploaded run's from its rows, a Parquet dataset's batch
    /// by batch, a Spark table's in one `GROUPING SETS` scan — and the drift computed from the
    /// counts by the same code as between uploaded runs, so the numbers are the same. A column
    /// with more distinct values than [`DRIFT_EXACT_VALUES`] is left out and a note says so. The
    /// result is kept for repeats (the page asks again per chosen feature).
    async fn drift_pushed(&self, cur: &RunDetail, refs: &[RunDetail], reference: String, features: &[(String, ColumnKind)], scores: &[String], binary: bool) -> Result<DriftResult, ServiceError> {
        let key = format!("{}\0drift\0{reference}", cur.summary.id);
        if let Some(r) = self.recall::<DriftResult>(&key) {
            return Ok(r);
        }
        let started = std::time::Instant::now();
        let wanted: Vec<Wanted> = features
            .iter()
            .map(|(n, k)| Wanted { name: n.clone(), kind: if *k == ColumnKind::Numeric { "numeric" } else { "categorical" } })
            .chain(scores.iter().map(|s| Wanted { name: s.clone(), kind: "score" }))
            .collect();
        let mut window: Option<RunCounts> = None;
        for r in refs {
            let counts = self.run_counts(r, &wanted, binary).await?;
            window = Some(match window {
                None => counts,
                Some(acc) => acc.merge(counts)?,
            });
        }
        let (r, c) = (window.expect("at least one reference"), self.run_counts(cur, &wanted, binary).await?);
        let mut notes: Vec<String> = r.notes.iter().chain(&c.notes).cloned().collect();
        notes.dedup();
        let columns: Vec<ColumnCounts> = wanted
            .iter()
            .filter_map(|w| Some(ColumnCounts { name: w.name.clone(), kind: w.kind, reference: r.columns.get(&w.name)?.clone(), current: c.columns.get(&w.name)?.clone() }))
            .collect();
        let base = match (&r.label, &c.label) {
            (Some(a), Some(b)) if binary => Some(base_rate_shift(a, b)),
            _ => None,
        };
        let features = self.work.run(move || crate::eval::drift::drift_of_counts(&columns)).await?;
        let out = DriftResult {
            reference,
            current: cur.summary.id.clone(),
            features,
            base_rate_reference: base.map(|b| b.0),
            base_rate_current: base.map(|b| b.1),
            base_rate_p_value: base.map(|b| b.2),
            seconds: started.elapsed().as_secs_f64(),
            notes,
        };
        self.remember(&key, out.clone());
        Ok(out)
    }

    /// One run's counts of the `wanted` columns (and of its label when `binary`), read where its
    /// rows are.
    async fn run_counts(&self, detail: &RunDetail, wanted: &[Wanted], binary: bool) -> Result<RunCounts, ServiceError> {
        match detail.summary.source.clone() {
            None => {
                let frame = self.frame(&detail.summary.id).await?;
                let (wanted, label) = (wanted.to_vec(), binary.then(|| detail.label.clone()));
                self.work
                    .run(move || -> Result<RunCounts, ServiceError> {
                        let mut out = RunCounts::default();
                        for w in &wanted {
                            out.columns.insert(w.name.clone(), Counted::of(&frame, &w.name, w.kind != "categorical")?);
                        }
                        if let Some(l) = label {
                            out.label = Some(CountedNumbers::of(&crate::eval::f64_values(&frame, &l)?));
                        }
                        Ok(out)
                    })
                    .await?
            }
            Some(RunSource::Parquet(path)) => self.parquet_counts(detail, path, wanted, binary).await,
            Some(RunSource::Spark(src)) => self.spark_counts(detail, src, wanted, binary).await,
        }
    }

    /// The drift page: the runs to choose a reference from, the ranked table, one feature's histograms.
    pub async fn drift_view(&self, id: &str, query: &str) -> Result<DriftView, ServiceError> {
        let (page, api) = params::split(query, params::DRIFT_PAGE_KEYS);
        let api: DriftParams = params::decode_pairs(&api)?;
        let feature = page.into_iter().find(|(k, _)| k == "feature").map(|(_, v)| v);
        let runs = self.store.list_runs().await?.into_iter().filter(|r| r.id != id).map(|r| (r.id, r.name)).collect();
        let detail = self.run_detail(id).await?;
        // A tracked request: the stream detectors are one step, then the comparison's own steps.
        let progress = super::jobs::current();
        if let Some(p) = &progress {
            p.stage("stream detectors");
            p.add_total(1);
        }
        let (stream, stream_note) = if detail.summary.task == Task::Binary {
            match self.stream_drift_from(&detail, StreamDriftParams::default()).await {
                Ok(s) => (Some(s), None),
                Err(ServiceError::BadRequest(m)) => (None, Some(m)),
                Err(ServiceError::NeedsRows) => (None, Some("the stream detectors read the decisions row by row in time order: they need the rows, which an external run keeps in its dataset".to_string())),
                Err(e) => return Err(e),
            }
        } else {
            (None, Some("the stream detectors watch a binary classifier's errors; this run is not binary".to_string()))
        };
        if let Some(p) = &progress {
            p.advance(1);
        }
        if api.reference.is_none() {
            return Ok(DriftView { result: None, runs, chart: None, chart_feature: None, stream, stream_note });
        }
        let result = self.drift_from(&detail, api).await?;
        let feature = feature.or_else(|| result.features.first().map(|f| f.feature.clone()));
        let chosen = feature.as_ref().and_then(|f| result.features.iter().find(|x| &x.feature == f));
        let chart = chosen.map(charts::drift_histogram);
        Ok(DriftView { chart_feature: chosen.map(|f| f.feature.clone()), chart, result: Some(result), runs, stream, stream_note })
    }
}

impl AppState {
    /// DDM and ADWIN over the decisions' errors, Linear Four Rates over the decisions and MD3 over
    /// the scores, rows in time order (timestamp, else id).
    pub async fn stream_drift(&self, id: &str, query: &str) -> Result<strata_app::model::StreamDrift, ServiceError> {
        let p = params::decode(query)?;
        let detail = self.run_detail(id).await?;
        self.stream_drift_from(&detail, p).await
    }

    /// The stream detectors on the run `detail` (its metadata loaded once by the caller).
    async fn stream_drift_from(&self, detail: &strata_app::model::RunDetail, p: StreamDriftParams) -> Result<strata_app::model::StreamDrift, ServiceError> {
        let bad = ServiceError::BadRequest;
        let id = detail.summary.id.as_str();
        if detail.summary.task != Task::Binary {
            return Err(bad("stream drift detectors need a binary classification run (an error stream)".into()));
        }
        let model = p.model.unwrap_or_else(|| detail.summary.models.first().cloned().unwrap_or_default());
        let threshold = p.threshold.unwrap_or(0.5);
        if !(0.0..=1.0).contains(&threshold) {
            return Err(bad(format!("threshold '{threshold}' is not in [0, 1]")));
        }
        let margin = p.margin.unwrap_or(0.1);
        if !(0.0..=0.5).contains(&margin) {
            return Err(bad(format!("margin '{margin}' is not in [0, 0.5]")));
        }
        if !detail.summary.models.contains(&model) {
            return Err(bad(format!("model '{model}' is not a score column of this run")));
        }
        let order_by = detail.columns.iter().find(|c| c.role == Role::Timestamp).or_else(|| detail.columns.iter().find(|c| c.role == Role::Id)).map(|c| c.name.clone())
            .ok_or_else(|| bad("the run has no timestamp or id column to order its examples by".into()))?;
        // Kept for repeats, like the comparison (the drift page shows it on every view).
        let cached = format!("{id}\0stream\0{model}\0{threshold}\0{margin}");
        if let Some(s) = self.recall::<strata_app::model::StreamDrift>(&cached) {
            return Ok(s);
        }
        let frame = self.frame(id).await?;
        let label = detail.label.clone();
        let out = self.work.run_tracked(move |progress| -> Result<strata_app::model::StreamDrift, ServiceError> {
            let y = crate::eval::f64_values(&frame, &label)?;
            let p = crate::eval::f64_values(&frame, &model)?;
            let key = frame.column(&order_by)?.cast(&polars::prelude::DataType::String)?;
            let key: Vec<Option<String>> = key.str()?.iter().map(|v| v.map(str::to_string)).collect();
            let mut order: Vec<usize> = (0..y.len()).filter(|i| y[*i].is_finite() && p[*i].is_finite()).collect();
            if progress.is_cancelled() {
                return Err(ServiceError::Cancelled);
            }
            // Ties keep row order: the same order as a stable sort, by the quicker unstable one.
            order.sort_unstable_by(|a, b| key[*a].cmp(&key[*b]).then(a.cmp(b)));
            let point = |i: usize| strata_app::model::StreamPoint { index: i as u64, at: key[order[i]].clone().unwrap_or_default() };
            let (mut ddm, mut md3) = (crate::eval::detectors::Ddm::default(), crate::eval::detectors::Md3::new(threshold, margin, 500, 3.0, 4));
            let (mut adwin, mut lfr) = (crate::eval::detectors::Adwin::default(), crate::eval::detectors::LinearFourRates::default());
            let (mut warnings, mut drifts, mut md3_drifts) = (vec![], vec![], vec![]);
            let (mut adwin_drifts, mut lfr_warnings, mut lfr_drifts) = (vec![], vec![], vec![]);
            let (mut in_warning, mut md3_active, mut lfr_warning) = (false, false, false);
            let errors: Vec<f64> = order.iter().map(|r| f64::from(u8::from((p[*r] >= threshold) != (y[*r] == 1.0)))).collect();
            if progress.is_cancelled() {
                return Err(ServiceError::Cancelled);
            }
            for (i, r) in order.iter().enumerate() {
                use crate::eval::detectors::Signal;
                // A cancelled request stops here (checked once per 2^16 rows).
                if i & 0xFFFF == 0 && progress.is_cancelled() {
                    return Err(ServiceError::Cancelled);
                }
                match ddm.update(errors[i]) {
                    Signal::Drift => {
                        drifts.push(point(i));
                        in_warning = false;
                    }
                    Signal::Warning if !in_warning => {
                        warnings.push(point(i));
                        in_warning = true;
                    }
                    Signal::Warning => {}
                    Signal::Stable => in_warning = false,
                }
                if adwin.update(errors[i]) == Signal::Drift {
                    adwin_drifts.push(point(i));
                }
                match lfr.update(p[*r] >= threshold, y[*r] == 1.0) {
                    Signal::Drift => {
                        lfr_drifts.push(point(i));
                        lfr_warning = false;
                    }
                    Signal::Warning if !lfr_warning => {
                        lfr_warnings.push(point(i));
                        lfr_warning = true;
                    }
                    Signal::Warning => {}
                    Signal::Stable => lfr_warning = false,
                }
                // MD3 reports the start of each period above its alarm level.
                let alarm = md3.update(p[*r]) == Signal::Drift;
                if alarm && !md3_active {
                    md3_drifts.push(point(i));
                }
                md3_active = alarm;
            }
            let block = (order.len() / 100).max(50);
            let error_rate = errors.chunks(block).map(|c| c.iter().sum::<f64>() / c.len() as f64).collect();
            let mut out = strata_app::model::StreamDrift {
                model,
                order_by,
                threshold,
                n: order.len() as u64,
                ddm_warnings: warnings,
                ddm_drifts: drifts,
                md3_drifts,
                adwin_drifts,
                lfr_warnings,
                lfr_drifts,
                block: block as u64,
                error_rate,
                chart: String::new(),
            };
            out.chart = charts::stream_drift(&out);
            Ok(out)
        })
        .await??;
        self.remember(&cached, out.clone());
        Ok(out)
    }
}
