//! `/api/v1` analysis of a run: metrics per slice, fairness (and comparisons), residuals, drift.
//! Each handler reads its typed parameters (`service::params`, documented in the OpenAPI
//! document) and answers the service's result as JSON.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use serde::Deserialize;
use strata_app::model::{ApiError as ApiErrorBody, DriftResult, FairnessView, MetricsResult, ResidualsResult, StreamDrift};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiError;
use crate::service::AppState;
#[allow(unused_imports)] // named in the OpenAPI attributes
use crate::service::params::{DiscoverParams, DriftParams, FairnessParams, MetricsParams, ResidualsParams, StreamDriftParams};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_metrics))
        .routes(routes!(get_fairness))
        .routes(routes!(put_fairness_limits))
        .routes(routes!(compare))
        .routes(routes!(get_residuals))
        .routes(routes!(get_discover))
        .routes(routes!(get_drift))
        .routes(routes!(get_stream_drift))
        .routes(routes!(metric_registry))
}

/// Every metric Strata computes: its name, display name, family (binary at a threshold, binary
/// threshold-free, multiclass, regression), which way is better, its interval method and whether
/// the fairness view offers it. Multiclass runs also report `precision[c]`, `recall[c]`, `f1[c]`
/// per class and, with per-class scores, `top_k_accuracy` and `log_loss`.
#[utoipa::path(get, path = "/api/v1/metric-registry", responses((status = 200, body = Vec<strata_app::metrics::MetricInfo>)))]
async fn metric_registry() -> Json<Vec<strata_app::metrics::MetricInfo>> {
    Json(strata_app::metrics::infos())
}

/// Metrics per slice: `?model=COL&slice=SPEC&slice=SPEC…&thresholds=0.3,0.5,0.7&ci=0.95&baseline=overall`
/// (`thresholds` may be a grid `0:1:0.01`; also `min_size`, `bootstrap` (default 200), `seed`, `alpha`).
/// SPEC: a feature (`sex`), a cross (`sex,race`), buckets (`age:q5`, `age:w4`, `age:[18,30,45,65]`) or
/// a filter (`country=US`).
#[utoipa::path(get, path = "/api/v1/runs/{id}/metrics", params(("id" = String, Path, description = "the run"), MetricsParams), responses((status = 200, body = MetricsResult), (status = 400, body = ApiErrorBody)))]
async fn get_metrics(State(s): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> Result<Json<MetricsResult>, ApiError> {
    Ok(Json(s.metrics(&id, q.as_deref().unwrap_or("")).await?))
}

/// The fairness view as numbers (charts included as Plotly JSON). Query: `model` (repeatable),
/// `feature` (a slice spec: `race`, `sex,race`), `thresholds`, `metric` (repeatable), `baseline`,
/// `min_size`, `ci`, `bootstrap`, `seed`, `alpha`, `limits` (`name:value,…`), `criterion`.
#[utoipa::path(get, path = "/api/v1/runs/{id}/fairness", params(("id" = String, Path, description = "the run"), FairnessParams), responses((status = 200, body = FairnessView), (status = 400, body = ApiErrorBody)))]
async fn get_fairness(State(s): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> Result<Json<FairnessView>, ApiError> {
    Ok(Json(s.fairness_view(&[id], q.as_deref().unwrap_or("")).await?))
}

/// Several runs (`runs=A,B`) or models side by side, with the same parameters as the fairness view.
#[utoipa::path(get, path = "/api/v1/compare", params(FairnessParams), responses((status = 200, body = FairnessView), (status = 400, body = ApiErrorBody)))]
async fn compare(State(s): State<AppState>, RawQuery(q): RawQuery) -> Result<Json<FairnessView>, ApiError> {
    Ok(Json(s.fairness_view(&[], q.as_deref().unwrap_or("")).await?))
}

/// The limits a run's fairness criteria are judged against, e.g.
/// `{"limits": "demographic_parity:0.1,disparate_impact:0.8"}`.
#[derive(Deserialize, serde::Serialize, utoipa::ToSchema)]
pub struct LimitsBody {
    pub limits: String,
}

/// Stores the fairness limits with the run (they become the view's defaults).
#[utoipa::path(put, path = "/api/v1/runs/{id}/fairness/limits", params(("id" = String, Path, description = "the run")), request_body = LimitsBody, responses((status = 200, body = LimitsBody), (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn put_fairness_limits(State(s): State<AppState>, Path(id): Path<String>, Json(body): Json<LimitsBody>) -> Result<Json<LimitsBody>, ApiError> {
    let limits = s.save_limits(&id, &body.limits).await?;
    Ok(Json(LimitsBody { limits: limits.iter().map(|(n, v)| format!("{n}:{v}")).collect::<Vec<_>>().join(",") }))
}

/// Slice discovery: the slices (crosses of up to three features; numeric features cut into
/// quantile buckets, ranges of buckets included) where the model is significantly worse than on
/// the rest of the rows, best first, each with its metric and interval, the complement's, the gap
/// and its interval, and a Benjamini–Yekutieli q-value over every slice examined. Query: `model`,
/// `metric`, `thresholds`, `features`, `buckets`, `level`, `min_support`, `top_k`, `fdr`, `ci`,
/// `scoring` (`gap` or `sliceline`), `alpha`, `holdout`, `seed`.
#[utoipa::path(get, path = "/api/v1/runs/{id}/discover", params(("id" = String, Path, description = "the run"), DiscoverParams), responses((status = 200, body = strata_app::model::DiscoveryResult), (status = 400, body = ApiErrorBody)))]
async fn get_discover(State(s): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> Result<Json<strata_app::model::DiscoveryResult>, ApiError> {
    Ok(Json(s.discover(&id, q.as_deref().unwrap_or("")).await?))
}

/// Residual analysis: binned series, histogram, Q–Q, feature association ranking, ACF and
/// Durbin–Watson, bias per slice. Query: `model`, `kind` (raw|deviance), `feature`, `slice`,
/// `bins`, `sample`, `nlags`, `level`, `alpha`, `seed`.
#[utoipa::path(get, path = "/api/v1/runs/{id}/residuals", params(("id" = String, Path, description = "the run"), ResidualsParams), responses((status = 200, body = ResidualsResult), (status = 400, body = ApiErrorBody)))]
async fn get_residuals(State(s): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> Result<Json<ResidualsResult>, ApiError> {
    Ok(Json(s.residuals(&id, q.as_deref().unwrap_or("")).await?))
}

/// Drift from a reference run (`?reference=RUN_ID`): per feature PSI, Jensen–Shannon and Hellinger
/// distances, KS (numeric) or chi-squared (categorical) with p and BH q, a `drifted` flag; the
/// same for shared model columns; the label's base-rate shift.
#[utoipa::path(get, path = "/api/v1/runs/{id}/drift", params(("id" = String, Path, description = "the run"), DriftParams), responses((status = 200, body = DriftResult), (status = 400, body = ApiErrorBody)))]
async fn get_drift(State(s): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> Result<Json<DriftResult>, ApiError> {
    Ok(Json(s.drift(&id, q.as_deref().unwrap_or("")).await?))
}

/// Concept drift within a run (`?model=&threshold=0.5&margin=0.1`): its examples in time order, DDM
/// over the decisions' errors (warnings and drifts) and MD3 over the scores, with the error rate
/// per block of rows.
#[utoipa::path(get, path = "/api/v1/runs/{id}/stream-drift", params(("id" = String, Path, description = "the run"), StreamDriftParams), responses((status = 200, body = StreamDrift), (status = 400, body = ApiErrorBody)))]
async fn get_stream_drift(State(s): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> Result<Json<StreamDrift>, ApiError> {
    Ok(Json(s.stream_drift(&id, q.as_deref().unwrap_or("")).await?))
}
