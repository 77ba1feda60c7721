//! The residuals use case: read the page's / API's parameters, run `eval::residuals`, draw the charts.

use strata_app::model::{ColumnKind, ResidualsResult, ResidualsView, Role, RunDetail, Task};

use super::params::{self, ResidualsParams};
use super::{AppState, MAX_SLICES, ServiceError};
use super::external::Rows;
use crate::charts;
use crate::eval::residuals::{ResidualsError, ResidualsRequest, analyse, bias_of_cells};
use crate::eval::sliced::MetricsRequest;

/// The residual analysis request from its parameters against a run's metadata: the defaults and
/// every check of the API and the page; every mistake is a 400 that names it.
pub fn residuals_request(detail: &RunDetail, p: ResidualsParams) -> Result<ResidualsRequest, ServiceError> {
    let models = &detail.summary.models;
    let model = match p.model {
        Some(m) if !models.contains(&m) => {
            return Err(ServiceError::BadRequest(format!("model '{m}' is not a model column of this run (models: {})", models.join(", "))));
        }
        Some(m) => m,
        None => models.first().cloned().unwrap_or_default(),
    };
    let role_col = |r: Role| detail.columns.iter().find(|c| c.role == r).map(|c| c.name.clone());
    let features: Vec<(String, ColumnKind)> = detail.columns.iter().filter(|c| c.role == Role::Feature).map(|c| (c.name.clone(), c.kind)).collect();
    // No feature asked for: the engine charts the one ranked first.
    let feature = p.feature;
    Ok(ResidualsRequest {
        label: detail.label.clone(),
        model,
        task: detail.summary.task,
        kind: p.kind.unwrap_or_else(|| "raw".into()),
        features,
        feature,
        slice: p.slice,
        order_by: role_col(Role::Timestamp).or_else(|| role_col(Role::Id)),
        bins: p.bins.unwrap_or(20),
        sample: p.sample.unwrap_or(2000),
        nlags: p.nlags.unwrap_or(40),
        level: p.level.unwrap_or(0.95),
        alpha: p.alpha.unwrap_or(0.05),
        seed: p.seed.unwrap_or(0),
        max_slices: MAX_SLICES,
    })
}

/// Parses a residuals query string (see [`ResidualsParams`]).
pub fn parse_residuals_query(detail: &RunDetail, query: &str) -> Result<ResidualsRequest, ServiceError> {
    residuals_request(detail, params::decode(query)?)
}

impl AppState {
    /// Residual analysis of one model on a run (see `eval::residuals`).
    pub async fn residuals(&self, id: &str, query: &str) -> Result<ResidualsResult, ServiceError> {
        let detail = self.run_detail(id).await?;
        let req = parse_residuals_query(&detail, query)?;
        self.run_residuals(id, req).await
    }

    async fn run_residuals(&self, id: &str, req: ResidualsRequest) -> Result<ResidualsResult, ServiceError> {
        let Rows { frame, sample } = self.rows(id).await?;
        let bias = (sample.is_some()).then(|| req.clone());
        let mut result = self.work.run(move || analyse(&frame, &req))
            .await?
            .map_err(|e| match e {
                ResidualsError::Eval(e) => ServiceError::Eval(e),
                ResidualsError::Polars(e) => ServiceError::Polars(e),
                other => ServiceError::BadRequest(other.to_string()),
            })?;
        result.row_sample = sample;
        // An external run's bias by slice is a sum over its cells: counted from every row where
        // they are (the slices view's cells), not from the sample.
        if let Some(req) = bias {
            if let (Some(spec), Some(detail)) = (req.slice.as_deref().filter(|s| !s.trim().is_empty()), self.external_source(id).await?) {
                let task = detail.summary.task;
                let request = MetricsRequest {
                    label: req.label.clone(),
                    model: req.model.clone(),
                    class_scores: vec![],
                    weight: None,
                    specs: vec![spec.to_string()],
                    thresholds: vec![],
                    ci: 0.95,
                    bootstrap: 0,
                    seed: 0,
                    baseline: "overall".into(),
                    min_size: 1,
                    max_slices: req.max_slices + 1,
                    alpha: 0.05,
                };
                let cells = self.external_cells(&super::prepared_key(id, task, &request), detail, &request, task).await?;
                if let Some(slices) = bias_of_cells(&cells, spec, &req.kind, req.level, req.alpha) {
                    result.slices = slices;
                    result.slices_of_rows = Some(cells.rows() as u64);
                }
            }
        }
        Ok(result)
    }

    /// The residuals page: the analysis and its charts.
    pub async fn residuals_view(&self, id: &str, query: &str) -> Result<ResidualsView, ServiceError> {
        let detail = self.run_detail(id).await?;
        let req = parse_residuals_query(&detail, query)?;
        let feature_names = req.features.iter().map(|(n, _)| n.clone()).collect();
        let result = self.run_residuals(id, req).await?;
        let what = if detail.summary.task == Task::Binary { "score" } else { "prediction" };
        Ok(ResidualsView {
            chart_vs_prediction: charts::residual_scatter(&result.vs_prediction, &format!("{} ({what})", result.model), result.sampled),
            chart_feature: result.feature.as_ref().map(|f| match f.kind.as_str() {
                "categorical" => charts::residual_boxes(f),
                _ => charts::residual_scatter(f, &f.feature, result.sampled),
            }),
            chart_hist: charts::residual_histogram(&result),
            chart_qq: charts::residual_qq(&result),
            chart_acf: result.autocorrelation.as_ref().map(charts::residual_acf),
            chart_slices: (!result.slices.is_empty()).then(|| charts::residual_slices(&result.slices)),
            models: detail.summary.models.clone(),
            feature_names,
            columns: self.column_briefs(&detail).await?,
            result,
        })
    }
}
