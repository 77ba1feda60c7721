//! Drift between runs: `GET /api/v1/runs/{id}/drift?reference=RUN` (or a window of earlier runs,
//! `reference=A,B,C`, stacked) and the `/runs/{id}/drift` page.

use strata_app::model::{ColumnKind, DriftResult, DriftView, Role, Task};

use super::params::{self, DriftParams, StreamDriftParams};
use super::{AppState, ServiceError};
use crate::charts;

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
        let (label_r, label_c) = (refs[0].label.clone(), cur.label.clone());
        let a = if refs.len() == 1 {
            self.frame(&ids[0]).await?
        } else {
            // A window of runs: their shared columns stacked (each run's label under the first's name).
            let mut stacked: Option<polars::prelude::DataFrame> = None;
            for r in &refs {
                let f = self.frame(&r.summary.id).await?;
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
        let started = std::time::Instant::now();
        let (features, base) = self.work.run_tracked(move |progress| -> Result<_, ServiceError> {
            let f = crate::eval::drift::drift_tracked(&a, &b, &features, &scores, progress)?;
            // Prior-probability shift: the base rates and a two-proportion z-test.
            let base = if binary {
                let (ya, yb) = (crate::eval::f64_values(&a, &label_r)?, crate::eval::f64_values(&b, &label_c)?);
                let rate = |y: &[f64]| { let v: Vec<f64> = y.iter().copied().filter(|x| x.is_finite()).collect(); (v.iter().sum::<f64>() / v.len().max(1) as f64, v.len() as f64) };
                let ((pa, na), (pb, nb)) = (rate(&ya), rate(&yb));
                let pooled = (pa * na + pb * nb) / (na + nb);
                let se = (pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb)).sqrt();
                let p = if se > 0.0 { crate::eval::stats::two_sided_p((pb - pa) / se) } else { 1.0 };
                Some((pa, pb, p))
            } else {
                None
            };
            Ok((f, base))
        })
        .await??;
        Ok(DriftResult {
            reference,
            current: id.to_string(),
            features,
            base_rate_reference: base.map(|b| b.0),
            base_rate_current: base.map(|b| b.1),
            base_rate_p_value: base.map(|b| b.2),
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// The drift page: the runs to choose a reference from, the ranked table, one feature's histograms.
    pub async fn drift_view(&self, id: &str, query: &str) -> Result<DriftView, ServiceError> {
        let (page, api) = params::split(query, params::DRIFT_PAGE_KEYS);
        let api: DriftParams = params::decode_pairs(&api)?;
        let feature = page.into_iter().find(|(k, _)| k == "feature").map(|(_, v)| v);
        let runs = self.store.list_runs().await?.into_iter().filter(|r| r.id != id).map(|r| (r.id, r.name)).collect();
        let detail = self.run_detail(id).await?;
        let (stream, stream_note) = if detail.summary.task == Task::Binary {
            match self.stream_drift_from(&detail, StreamDriftParams::default()).await {
                Ok(s) => (Some(s), None),
                Err(ServiceError::BadRequest(m)) => (None, Some(m)),
                Err(e) => return Err(e),
            }
        } else {
            (None, Some("the stream detectors watch a binary classifier's errors; this run is not binary".to_string()))
        };
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
        let frame = self.frame(id).await?;
        let label = detail.label.clone();
        self.work.run(move || -> Result<strata_app::model::StreamDrift, ServiceError> {
            let y = crate::eval::f64_values(&frame, &label)?;
            let p = crate::eval::f64_values(&frame, &model)?;
            let key = frame.column(&order_by)?.cast(&polars::prelude::DataType::String)?;
            let key: Vec<Option<String>> = key.str()?.iter().map(|v| v.map(str::to_string)).collect();
            let mut order: Vec<usize> = (0..y.len()).filter(|i| y[*i].is_finite() && p[*i].is_finite()).collect();
            order.sort_by(|a, b| key[*a].cmp(&key[*b]));
            let point = |i: usize| strata_app::model::StreamPoint { index: i as u64, at: key[order[i]].clone().unwrap_or_default() };
            let (mut ddm, mut md3) = (crate::eval::detectors::Ddm::default(), crate::eval::detectors::Md3::new(threshold, margin, 500, 3.0, 4));
            let (mut adwin, mut lfr) = (crate::eval::detectors::Adwin::default(), crate::eval::detectors::LinearFourRates::default());
            let (mut warnings, mut drifts, mut md3_drifts) = (vec![], vec![], vec![]);
            let (mut adwin_drifts, mut lfr_warnings, mut lfr_drifts) = (vec![], vec![], vec![]);
            let (mut in_warning, mut md3_active, mut lfr_warning) = (false, false, false);
            let errors: Vec<f64> = order.iter().map(|r| f64::from(u8::from((p[*r] >= threshold) != (y[*r] == 1.0)))).collect();
            for (i, r) in order.iter().enumerate() {
                use crate::eval::detectors::Signal;
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
        .await?
    }
}
