//! `/api/v1` what-if on a run: scoring with its models, partial dependence, counterfactuals,
//! random attacks, saved examples, HTTP model endpoints and the benchmark model.

use axum::Json;
use axum::extract::{Path, Query, RawQuery, State};
use serde::Deserialize;
use strata_app::model::{ApiError as ApiErrorBody, AttackResult, Counterfactual, EndpointTest, PartialDependence, SavedWhatIf};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiError;
use crate::models::http::Endpoint;
use crate::service::AppState;
use crate::service::benchmark::BenchmarkInfo;
#[allow(unused_imports)] // named in the OpenAPI attributes
use crate::service::params::WhatIfParams;
use crate::service::attack::AttackRequest;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(predict))
        .routes(routes!(post_attack))
        .routes(routes!(post_adversarial))
        .routes(routes!(get_attributions))
        .routes(routes!(get_importance))
        .routes(routes!(post_benchmark))
        .routes(routes!(list_saved, save_whatif))
        .routes(routes!(delete_whatif))
        .routes(routes!(get_endpoints, put_endpoints))
        .routes(routes!(test_endpoint))
        .routes(routes!(get_pdp))
        .routes(routes!(get_counterfactual))
}

/// Examples to score: feature values by column name (absent = missing).
#[derive(Deserialize, utoipa::ToSchema)]
pub struct PredictBody {
    #[schema(value_type = Vec<Object>)]
    pub examples: Vec<serde_json::Map<String, serde_json::Value>>,
    /// Score columns whose attached models to call; all attached models when absent.
    #[serde(default)]
    pub models: Vec<String>,
}

/// One object per example: model (score column) → score.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct PredictAnswer {
    #[schema(value_type = Vec<Object>)]
    pub predictions: Vec<std::collections::BTreeMap<String, f64>>,
}

/// Scores examples with the run's models: attached ONNX files (run in-process) and named HTTP endpoints.
#[utoipa::path(post, path = "/api/v1/runs/{id}/predict", params(("id" = String, Path, description = "the run")), request_body = PredictBody, responses((status = 200, body = PredictAnswer), (status = 400, body = ApiErrorBody), (status = 422, body = ApiErrorBody)))]
async fn predict(State(s): State<AppState>, Path(id): Path<String>, Json(body): Json<PredictBody>) -> Result<Json<PredictAnswer>, ApiError> {
    Ok(Json(PredictAnswer { predictions: s.predict(&id, &body.examples, &body.models).await? }))
}

/// Partial dependence + ICE: `?model=&feature=&sample=500&grid=20&seed=&example=&set.<feature>=`.
#[utoipa::path(get, path = "/api/v1/runs/{id}/pdp", params(("id" = String, Path, description = "the run"), WhatIfParams), responses((status = 200, body = PartialDependence), (status = 400, body = ApiErrorBody)))]
async fn get_pdp(State(s): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> Result<Json<PartialDependence>, ApiError> {
    Ok(Json(s.pdp(&id, q.as_deref().unwrap_or("")).await?))
}

/// The nearest example whose decision differs: `?example=ID&model=&threshold=0.5` (`null` if none).
#[utoipa::path(get, path = "/api/v1/runs/{id}/counterfactual", params(("id" = String, Path, description = "the run"), WhatIfParams), responses((status = 200, body = Option<Counterfactual>), (status = 400, body = ApiErrorBody)))]
async fn get_counterfactual(State(s): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> Result<Json<Option<Counterfactual>>, ApiError> {
    Ok(Json(s.counterfactual(&id, q.as_deref().unwrap_or("")).await?))
}

/// Random attack: perturb a sample (numeric noise in standard deviations, categorical swaps) and
/// report decision flips and the accuracy (regression: MAE) before and after, overall and per slice.
#[utoipa::path(post, path = "/api/v1/runs/{id}/attacks", params(("id" = String, Path, description = "the run")), request_body = AttackRequest, responses((status = 200, body = AttackResult), (status = 400, body = ApiErrorBody)))]
async fn post_attack(State(s): State<AppState>, Path(id): Path<String>, Json(body): Json<AttackRequest>) -> Result<Json<AttackResult>, ApiError> {
    Ok(Json(s.attack(&id, body).await?))
}

/// Adversarial search: for a sample of a binary run, the smallest change of the mutable features
/// (within ranges, steps and allowed values) that flips the model's decision, found by a greedy
/// black-box search through the real model; per slice the share flipped within `max_radius`, the
/// robustness radius, a random search of the same budget, the features used and the nearest flips.
#[utoipa::path(post, path = "/api/v1/runs/{id}/adversarial", params(("id" = String, Path, description = "the run")), request_body = crate::service::attack::AdversarialRequest,
    responses((status = 200, body = strata_app::model::AdversarialResult), (status = 400, body = ApiErrorBody)))]
async fn post_adversarial(State(s): State<AppState>, Path(id): Path<String>, Json(body): Json<crate::service::attack::AdversarialRequest>) -> Result<Json<strata_app::model::AdversarialResult>, ApiError> {
    Ok(Json(s.adversarial(&id, body).await?))
}

/// SHAP attributions of one example's prediction (what-if edits as `set.<feature>=value`):
/// KernelSHAP through the model against a background sample of the run (exact when every coalition
/// fits in `samples`), or exact interventional TreeSHAP of a bare ONNX tree ensemble's margin.
#[utoipa::path(get, path = "/api/v1/runs/{id}/attributions", params(("id" = String, Path, description = "the run"), crate::service::explain::AttributionQuery),
    responses((status = 200, body = strata_app::model::Attributions), (status = 400, body = ApiErrorBody)))]
async fn get_attributions(State(s): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> Result<Json<strata_app::model::Attributions>, ApiError> {
    let (query, edits) = crate::service::explain::decode_attribution_query(q.as_deref().unwrap_or(""))?;
    Ok(Json(s.attributions(&id, query, &edits).await?))
}

/// An edited example to save: `{"name": "older", "example": "adult-00002", "edits": {"age": "41"}}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct SaveBody {
    pub name: String,
    pub example: String,
    #[serde(default)]
    pub edits: std::collections::BTreeMap<String, String>,
}

/// The what-if examples saved with a run.
#[utoipa::path(get, path = "/api/v1/runs/{id}/whatif-examples", params(("id" = String, Path, description = "the run")), responses((status = 200, body = Vec<SavedWhatIf>)))]
async fn list_saved(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<Vec<SavedWhatIf>>, ApiError> {
    s.run_detail(&id).await?;
    Ok(Json(s.saved_whatifs(&id).await?))
}

/// Saves an edited example (replacing one of the same name); answers the saved list.
#[utoipa::path(post, path = "/api/v1/runs/{id}/whatif-examples", params(("id" = String, Path, description = "the run")), request_body = SaveBody, responses((status = 200, body = Vec<SavedWhatIf>), (status = 400, body = ApiErrorBody)))]
async fn save_whatif(State(s): State<AppState>, Path(id): Path<String>, Json(b): Json<SaveBody>) -> Result<Json<Vec<SavedWhatIf>>, ApiError> {
    Ok(Json(s.save_whatif(&id, &b.name, &b.example, b.edits).await?))
}

/// Deletes a saved example.
#[utoipa::path(delete, path = "/api/v1/runs/{id}/whatif-examples/{name}", params(("id" = String, Path, description = "the run"), ("name" = String, Path)), responses((status = 200, body = Vec<SavedWhatIf>), (status = 404, body = ApiErrorBody)))]
async fn delete_whatif(State(s): State<AppState>, Path((id, name)): Path<(String, String)>) -> Result<Json<Vec<SavedWhatIf>>, ApiError> {
    Ok(Json(s.delete_whatif(&id, &name).await?))
}

/// Options of the benchmark fit.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct BenchmarkBody {
    /// Inverse L2 penalty, as scikit-learn's `C` (default 1).
    #[serde(default = "one")]
    pub c: f64,
    /// Rows sampled to fit on (default 20000).
    #[serde(default = "twenty_thousand")]
    pub max_rows: usize,
}

fn one() -> f64 {
    1.0
}

fn twenty_thousand() -> usize {
    20_000
}

/// Fits Strata's benchmark model on the run (logistic regression for binary runs, ridge for
/// regression) and stores it; the run then lists `strata_benchmark` as one more model, so every
/// view (slices, fairness, residuals, what-if) compares the user's models to it.
#[utoipa::path(post, path = "/api/v1/runs/{id}/benchmark", params(("id" = String, Path, description = "the run")), request_body = BenchmarkBody, responses((status = 200, body = BenchmarkInfo), (status = 400, body = ApiErrorBody)))]
async fn post_benchmark(State(s): State<AppState>, Path(id): Path<String>, Json(body): Json<BenchmarkBody>) -> Result<Json<BenchmarkInfo>, ApiError> {
    Ok(Json(s.train_benchmark(&id, body.c, body.max_rows).await?))
}

/// The HTTP model endpoints stored with a run.
#[utoipa::path(get, path = "/api/v1/runs/{id}/endpoints", params(("id" = String, Path, description = "the run")), responses((status = 200, body = Vec<Endpoint>), (status = 404, body = ApiErrorBody)))]
async fn get_endpoints(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<Vec<Endpoint>>, ApiError> {
    s.run_detail(&id).await?;
    Ok(Json(s.endpoints(&id).await?))
}

/// Replaces the HTTP model endpoints of a run: a list of `{"name", "url", "protocol": "kserve-v2" |
/// "tf-serving" | "mlflow", "model", "inputs"?, "timeout_ms"?}`. They are then called like
/// attached models (predict, what-if, PDP).
#[utoipa::path(put, path = "/api/v1/runs/{id}/endpoints", params(("id" = String, Path, description = "the run")), request_body = Vec<Endpoint>, responses((status = 200, body = Vec<Endpoint>), (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn put_endpoints(State(s): State<AppState>, Path(id): Path<String>, Json(body): Json<Vec<Endpoint>>) -> Result<Json<Vec<Endpoint>>, ApiError> {
    Ok(Json(s.save_endpoints(&id, &body).await?))
}

/// What to test an endpoint on.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EndpointTestQuery {
    /// The run's first rows to send (1..=1000, default 100).
    rows: Option<usize>,
    /// The score column to compare with (default: the run's column named like the endpoint).
    compare: Option<String>,
}

/// Tests an endpoint: predicts the run's first rows through it and compares the predictions
/// with a stored score column (largest and mean difference, the worst row). An endpoint that
/// cannot predict is an answer too: `error` says why and which setting to change.
#[utoipa::path(post, path = "/api/v1/runs/{id}/endpoints/{name}/test", params(("id" = String, Path, description = "the run"), ("name" = String, Path, description = "the endpoint"), EndpointTestQuery), responses((status = 200, body = EndpointTest), (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn test_endpoint(State(s): State<AppState>, Path((id, name)): Path<(String, String)>, Query(q): Query<EndpointTestQuery>) -> Result<Json<EndpointTest>, ApiError> {
    Ok(Json(s.test_endpoint(&id, &name, q.rows, q.compare.as_deref()).await?))
}

/// Permutation feature importance through the run's model: for each feature the model reads, how much
/// the metric (`auc_roc`, `accuracy`, `log_loss`; `mae` for regression) worsens when its values are
/// shuffled over a seeded sample, with a 95% interval from the repeats; per slice with `slice=`.
#[utoipa::path(get, path = "/api/v1/runs/{id}/importance", params(("id" = String, Path, description = "the run"), crate::service::attack::ImportanceQuery),
    responses((status = 200, body = strata_app::model::FeatureImportance), (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn get_importance(State(s): State<AppState>, Path(id): Path<String>, Query(q): Query<crate::service::attack::ImportanceQuery>) -> Result<Json<strata_app::model::FeatureImportance>, ApiError> {
    Ok(Json(s.importance(&id, q).await?))
}
