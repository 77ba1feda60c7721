//! The residuals use case: parse the page's / API's query, run `eval::residuals`, draw the charts.

use strata_app::model::{ColumnKind, ResidualsResult, ResidualsView, Role, RunDetail, Task};

use super::{AppState, MAX_SLICES, ServiceError};
use crate::charts;
use crate::eval::residuals::{ResidualsError, ResidualsRequest, analyse};

/// Parses a residuals query (`model`, `kind`, `feature`, `slice`, `bins`, `sample`, `nlags`,
/// `level`, `alpha`, `seed`) against a run's metadata; every mistake is a 400 that names it.
pub fn parse_residuals_query(detail: &RunDetail, query: &str) -> Result<ResidualsRequest, ServiceError> {
    let bad = ServiceError::BadRequest;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).map_err(|e| bad(format!("malformed query string: {e}")))?;
    let models = &detail.summary.models;
    let role_col = |r: Role| detail.columns.iter().find(|c| c.role == r).map(|c| c.name.clone());
    let features: Vec<(String, ColumnKind)> = detail.columns.iter().filter(|c| c.role == Role::Feature).map(|c| (c.name.clone(), c.kind)).collect();
    let mut req = ResidualsRequest {
        label: detail.label.clone(),
        model: models.first().cloned().unwrap_or_default(),
        task: detail.summary.task,
        kind: "raw".into(),
        features,
        feature: None,
        slice: None,
        order_by: role_col(Role::Timestamp).or_else(|| role_col(Role::Id)),
        bins: 20,
        sample: 2000,
        nlags: 40,
        level: 0.95,
        alpha: 0.05,
        seed: 0,
        max_slices: MAX_SLICES,
    };
    let whole = |k: &str, v: &str| v.parse::<usize>().map_err(|_| ServiceError::BadRequest(format!("{k}='{v}' is not a whole number")));
    let num = |k: &str, v: &str| v.parse::<f64>().map_err(|_| ServiceError::BadRequest(format!("{k}='{v}' is not a number")));
    for (k, v) in pairs {
        if v.trim().is_empty() {
            continue;
        }
        match k.as_str() {
            "model" => {
                if !models.contains(&v) {
                    return Err(bad(format!("model '{v}' is not a model column of this run (models: {})", models.join(", "))));
                }
                req.model = v;
            }
            "kind" => req.kind = v,
            "feature" => req.feature = Some(v),
            "slice" => req.slice = Some(v),
            "bins" => req.bins = whole(&k, &v)?,
            "sample" => req.sample = whole(&k, &v)?,
            "nlags" => req.nlags = whole(&k, &v)?,
            "level" | "ci" => req.level = num(&k, &v)?,
            "alpha" => req.alpha = num(&k, &v)?,
            "seed" => req.seed = v.parse().map_err(|_| bad(format!("seed='{v}' is not a whole number")))?,
            other => return Err(bad(format!("unknown parameter '{other}'"))),
        }
    }
    if req.feature.is_none() {
        // Chart the first numeric feature by default, so the page shows something useful.
        req.feature = req.features.iter().find(|(_, k)| *k == ColumnKind::Numeric).or(req.features.first()).map(|(n, _)| n.clone());
    }
    Ok(req)
}

impl AppState {
    /// Residual analysis of one model on a run (see `eval::residuals`).
    pub async fn residuals(&self, id: &str, query: &str) -> Result<ResidualsResult, ServiceError> {
        let detail = self.run_detail(id).await?;
        let req = parse_residuals_query(&detail, query)?;
        self.run_residuals(id, req).await
    }

    async fn run_residuals(&self, id: &str, req: ResidualsRequest) -> Result<ResidualsResult, ServiceError> {
        let frame = self.frame(id).await?;
        tokio::task::spawn_blocking(move || analyse(&frame, &req))
            .await
            .map_err(|e| ServiceError::Join(e.to_string()))?
            .map_err(|e| match e {
                ResidualsError::Eval(e) => ServiceError::Eval(e),
                ResidualsError::Polars(e) => ServiceError::Polars(e),
                other => ServiceError::BadRequest(other.to_string()),
            })
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
            result,
        })
    }
}
