//! `/api/v1` handlers and the OpenAPI document. Thin: parse, call the service, map errors.

mod error;
mod projects;

use std::io::Write;

use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use strata_app::model::{ApiError as ApiErrorBody, Counterfactual, Created, FairnessView, PartialDependence, MetricsResult, ResidualsResult, ExamplesPage, IngestSpec, Preview, RunDetail, RunSummary};
use utoipa::OpenApi;

pub use error::ApiError;

use crate::service::{AppState, Attachment};

#[derive(OpenApi)]
#[openapi(
    info(title = "Strata API", description = "Evaluation runs: upload, list, inspect, delete."),
    paths(list_runs, get_metrics, get_residuals, get_drift, get_stream_drift, post_attack, post_benchmark, list_saved, save_whatif, delete_whatif, get_endpoints, put_endpoints, predict, get_pdp, get_counterfactual, get_fairness, put_fairness_limits, compare, create_run, get_run, delete_run, get_examples, get_attachment, preview, healthz),
    components(schemas(MetricsResult, ResidualsResult, strata_app::model::StreamDrift, strata_app::model::DriftResult, strata_app::model::SavedWhatIf, SaveBody, crate::service::benchmark::BenchmarkInfo, BenchmarkBody, crate::service::whatif::AttackRequest, strata_app::model::AttackResult, crate::models::http::Endpoint, PredictBody, PredictAnswer, PartialDependence, Counterfactual, FairnessView, LimitsBody, RunSummary, RunDetail, ExamplesPage, IngestSpec, Preview, Created, ApiErrorBody))
)]
pub struct ApiDoc;

/// Routes under `/api/v1`, plus `/healthz`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/runs", get(list_runs).post(create_run).layer(DefaultBodyLimit::disable()))
        .route("/api/v1/runs/{id}", get(get_run).delete(delete_run).patch(projects::patch_run))
        .route("/api/v1/runs/{id}/examples", get(get_examples))
        .route("/api/v1/runs/{id}/metrics", get(get_metrics))
        .route("/api/v1/runs/{id}/residuals", get(get_residuals))
        .route("/api/v1/runs/{id}/predict", post(predict))
        .route("/api/v1/runs/{id}/attacks", post(post_attack))
        .route("/api/v1/runs/{id}/drift", get(get_drift))
        .route("/api/v1/runs/{id}/stream-drift", get(get_stream_drift))
        .route("/api/v1/runs/{id}/benchmark", post(post_benchmark))
        .route("/api/v1/runs/{id}/whatif-examples", get(list_saved).post(save_whatif))
        .route("/api/v1/runs/{id}/whatif-examples/{name}", axum::routing::delete(delete_whatif))
        .route("/api/v1/runs/{id}/endpoints", get(get_endpoints).put(put_endpoints))
        .route("/api/v1/runs/{id}/pdp", get(get_pdp))
        .route("/api/v1/runs/{id}/counterfactual", get(get_counterfactual))
        .route("/api/v1/runs/{id}/fairness", get(get_fairness))
        .route("/api/v1/runs/{id}/fairness/limits", axum::routing::put(put_fairness_limits))
        .route("/api/v1/compare", get(compare))
        .route("/api/v1/runs/{id}/attachments/{name}", get(get_attachment))
        .route("/api/v1/preview", post(preview).layer(DefaultBodyLimit::max(PREVIEW_MAX_BYTES)))
        .route("/api/v1/openapi.json", get(|| async { Json(ApiDoc::openapi().merge_from(projects::ProjectsDoc::openapi())) }))
        .route("/healthz", get(healthz))
        .merge(projects::routes())
}

/// Largest body the preview endpoint reads (the page sends a file's head, or a small Parquet file).
const PREVIEW_MAX_BYTES: usize = 80 * 1024 * 1024;

#[utoipa::path(get, path = "/api/v1/runs", responses((status = 200, body = Vec<RunSummary>)))]
async fn list_runs(State(s): State<AppState>) -> Result<Json<Vec<RunSummary>>, ApiError> {
    Ok(Json(s.store.list_runs().await.map_err(crate::service::ServiceError::from)?))
}

#[utoipa::path(get, path = "/api/v1/runs/{id}", responses((status = 200, body = RunDetail), (status = 404, body = ApiErrorBody)))]
async fn get_run(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<RunDetail>, ApiError> {
    Ok(Json(s.run_detail(&id).await?))
}

#[utoipa::path(delete, path = "/api/v1/runs/{id}", responses((status = 204), (status = 404, body = ApiErrorBody)))]
async fn delete_run(State(s): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    s.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Metrics per slice: `?model=COL&slice=SPEC&slice=SPEC…&thresholds=0.3,0.5,0.7&ci=0.95&baseline=overall`
/// (`thresholds` may be a grid `0:1:0.01`; also `min_size`, `bootstrap` (default 200), `seed`, `alpha`).
/// SPEC: a feature (`sex`), a cross (`sex,race`), buckets (`age:q5`, `age:w4`, `age:[18,30,45,65]`) or
/// a filter (`country=US`).
/// The fairness view as numbers (charts included as Plotly JSON). Query: `model` (repeatable),
/// `feature` (a slice spec: `race`, `sex,race`), `thresholds`, `metric` (repeatable), `baseline`,
/// `min_size`, `ci`, `bootstrap`, `seed`, `alpha`, `limits` (`name:value,…`), `criterion`.
#[utoipa::path(get, path = "/api/v1/runs/{id}/fairness", responses((status = 200, body = FairnessView), (status = 400, body = ApiErrorBody)))]
async fn get_fairness(State(s): State<AppState>, Path(id): Path<String>, axum::extract::RawQuery(q): axum::extract::RawQuery) -> Result<Json<FairnessView>, ApiError> {
    Ok(Json(s.fairness_view(&[id], q.as_deref().unwrap_or("")).await?))
}

/// Several runs (`runs=A,B`) or models side by side, with the same parameters as the fairness view.
#[utoipa::path(get, path = "/api/v1/compare", responses((status = 200, body = FairnessView), (status = 400, body = ApiErrorBody)))]
async fn compare(State(s): State<AppState>, axum::extract::RawQuery(q): axum::extract::RawQuery) -> Result<Json<FairnessView>, ApiError> {
    Ok(Json(s.fairness_view(&[], q.as_deref().unwrap_or("")).await?))
}

/// The limits a run's fairness criteria are judged against, e.g.
/// `{"limits": "demographic_parity:0.1,disparate_impact:0.8"}`.
#[derive(Deserialize, serde::Serialize, utoipa::ToSchema)]
pub struct LimitsBody {
    pub limits: String,
}

/// Stores the fairness limits with the run (they become the view's defaults).
#[utoipa::path(put, path = "/api/v1/runs/{id}/fairness/limits", request_body = LimitsBody, responses((status = 200, body = LimitsBody), (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn put_fairness_limits(State(s): State<AppState>, Path(id): Path<String>, Json(body): Json<LimitsBody>) -> Result<Json<LimitsBody>, ApiError> {
    let limits = s.save_limits(&id, &body.limits).await?;
    Ok(Json(LimitsBody { limits: limits.iter().map(|(n, v)| format!("{n}:{v}")).collect::<Vec<_>>().join(",") }))
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

/// Random attack: perturb a sample (numeric noise in standard deviations, categorical swaps) and
/// report decision flips and the accuracy (regression: MAE) before and after, overall and per slice.
#[utoipa::path(post, path = "/api/v1/runs/{id}/attacks", request_body = crate::service::whatif::AttackRequest, responses((status = 200, body = strata_app::model::AttackResult), (status = 400, body = ApiErrorBody)))]
async fn post_attack(State(s): State<AppState>, Path(id): Path<String>, Json(body): Json<crate::service::whatif::AttackRequest>) -> Result<Json<strata_app::model::AttackResult>, ApiError> {
    Ok(Json(s.attack(&id, body).await?))
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
#[utoipa::path(get, path = "/api/v1/runs/{id}/whatif-examples", responses((status = 200, body = Vec<strata_app::model::SavedWhatIf>)))]
async fn list_saved(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<Vec<strata_app::model::SavedWhatIf>>, ApiError> {
    s.run_detail(&id).await?;
    Ok(Json(s.saved_whatifs(&id).await?))
}

/// Saves an edited example (replacing one of the same name); answers the saved list.
#[utoipa::path(post, path = "/api/v1/runs/{id}/whatif-examples", request_body = SaveBody, responses((status = 200, body = Vec<strata_app::model::SavedWhatIf>), (status = 400, body = ApiErrorBody)))]
async fn save_whatif(State(s): State<AppState>, Path(id): Path<String>, Json(b): Json<SaveBody>) -> Result<Json<Vec<strata_app::model::SavedWhatIf>>, ApiError> {
    Ok(Json(s.save_whatif(&id, &b.name, &b.example, b.edits).await?))
}

/// Deletes a saved example.
#[utoipa::path(delete, path = "/api/v1/runs/{id}/whatif-examples/{name}", responses((status = 200, body = Vec<strata_app::model::SavedWhatIf>), (status = 404, body = ApiErrorBody)))]
async fn delete_whatif(State(s): State<AppState>, Path((id, name)): Path<(String, String)>) -> Result<Json<Vec<strata_app::model::SavedWhatIf>>, ApiError> {
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
#[utoipa::path(post, path = "/api/v1/runs/{id}/benchmark", request_body = BenchmarkBody, responses((status = 200, body = crate::service::benchmark::BenchmarkInfo), (status = 400, body = ApiErrorBody)))]
async fn post_benchmark(State(s): State<AppState>, Path(id): Path<String>, Json(body): Json<BenchmarkBody>) -> Result<Json<crate::service::benchmark::BenchmarkInfo>, ApiError> {
    Ok(Json(s.train_benchmark(&id, body.c, body.max_rows).await?))
}

/// Drift from a reference run (`?reference=RUN_ID`): per feature PSI, Jensen–Shannon and Hellinger
/// distances, KS (numeric) or chi-squared (categorical) with p and BH q, a `drifted` flag; the
/// same for shared model columns; the label's base-rate shift.
#[utoipa::path(get, path = "/api/v1/runs/{id}/drift", responses((status = 200, body = strata_app::model::DriftResult), (status = 400, body = ApiErrorBody)))]
async fn get_drift(State(s): State<AppState>, Path(id): Path<String>, axum::extract::RawQuery(q): axum::extract::RawQuery) -> Result<Json<strata_app::model::DriftResult>, ApiError> {
    Ok(Json(s.drift(&id, q.as_deref().unwrap_or("")).await?))
}

/// Concept drift within a run (`?model=&threshold=0.5&margin=0.1`): its examples in time order, DDM
/// over the decisions' errors (warnings and drifts) and MD3 over the scores, with the error rate
/// per block of rows.
#[utoipa::path(get, path = "/api/v1/runs/{id}/stream-drift", responses((status = 200, body = strata_app::model::StreamDrift), (status = 400, body = ApiErrorBody)))]
async fn get_stream_drift(State(s): State<AppState>, Path(id): Path<String>, axum::extract::RawQuery(q): axum::extract::RawQuery) -> Result<Json<strata_app::model::StreamDrift>, ApiError> {
    Ok(Json(s.stream_drift(&id, q.as_deref().unwrap_or("")).await?))
}

/// The HTTP model endpoints stored with a run.
#[utoipa::path(get, path = "/api/v1/runs/{id}/endpoints", responses((status = 200, body = Vec<crate::models::http::Endpoint>), (status = 404, body = ApiErrorBody)))]
async fn get_endpoints(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<Vec<crate::models::http::Endpoint>>, ApiError> {
    s.run_detail(&id).await?;
    Ok(Json(s.endpoints(&id).await?))
}

/// Replaces the HTTP model endpoints of a run: a list of `{"name", "url", "protocol": "kserve-v2" |
/// "tf-serving" | "mlflow", "model", "inputs"?, "timeout_ms"?}`. They are then called like
/// attached models (predict, what-if, PDP).
#[utoipa::path(put, path = "/api/v1/runs/{id}/endpoints", request_body = Vec<crate::models::http::Endpoint>, responses((status = 200, body = Vec<crate::models::http::Endpoint>), (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn put_endpoints(State(s): State<AppState>, Path(id): Path<String>, Json(body): Json<Vec<crate::models::http::Endpoint>>) -> Result<Json<Vec<crate::models::http::Endpoint>>, ApiError> {
    s.save_endpoints(&id, &body).await?;
    Ok(Json(body))
}

/// Scores examples with the run's models: attached ONNX files (run in-process) and named HTTP endpoints.
#[utoipa::path(post, path = "/api/v1/runs/{id}/predict", request_body = PredictBody, responses((status = 200, body = PredictAnswer), (status = 400, body = ApiErrorBody), (status = 422, body = ApiErrorBody)))]
async fn predict(State(s): State<AppState>, Path(id): Path<String>, Json(body): Json<PredictBody>) -> Result<Json<PredictAnswer>, ApiError> {
    Ok(Json(PredictAnswer { predictions: s.predict(&id, &body.examples, &body.models).await? }))
}

/// Partial dependence + ICE: `?model=&feature=&sample=500&grid=20&seed=&example=&set.<feature>=`.
#[utoipa::path(get, path = "/api/v1/runs/{id}/pdp", responses((status = 200, body = PartialDependence), (status = 400, body = ApiErrorBody)))]
async fn get_pdp(State(s): State<AppState>, Path(id): Path<String>, axum::extract::RawQuery(q): axum::extract::RawQuery) -> Result<Json<PartialDependence>, ApiError> {
    Ok(Json(s.pdp(&id, q.as_deref().unwrap_or("")).await?))
}

/// The nearest example whose decision differs: `?example=ID&model=&threshold=0.5` (`null` if none).
#[utoipa::path(get, path = "/api/v1/runs/{id}/counterfactual", responses((status = 200, body = Option<Counterfactual>), (status = 400, body = ApiErrorBody)))]
async fn get_counterfactual(State(s): State<AppState>, Path(id): Path<String>, axum::extract::RawQuery(q): axum::extract::RawQuery) -> Result<Json<Option<Counterfactual>>, ApiError> {
    Ok(Json(s.counterfactual(&id, q.as_deref().unwrap_or("")).await?))
}

/// Residual analysis: binned series, histogram, Q–Q, feature association ranking, ACF and
/// Durbin–Watson, bias per slice. Query: `model`, `kind` (raw|deviance), `feature`, `slice`,
/// `bins`, `sample`, `nlags`, `level`, `alpha`, `seed`.
#[utoipa::path(get, path = "/api/v1/runs/{id}/residuals", responses((status = 200, body = ResidualsResult), (status = 400, body = ApiErrorBody)))]
async fn get_residuals(State(s): State<AppState>, Path(id): Path<String>, axum::extract::RawQuery(q): axum::extract::RawQuery) -> Result<Json<ResidualsResult>, ApiError> {
    Ok(Json(s.residuals(&id, q.as_deref().unwrap_or("")).await?))
}

#[utoipa::path(get, path = "/api/v1/runs/{id}/metrics", responses((status = 200, body = MetricsResult), (status = 400, body = ApiErrorBody)))]
async fn get_metrics(State(s): State<AppState>, Path(id): Path<String>, axum::extract::RawQuery(q): axum::extract::RawQuery) -> Result<Json<MetricsResult>, ApiError> {
    Ok(Json(s.metrics(&id, q.as_deref().unwrap_or("")).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
struct PageQuery {
    #[serde(default)]
    offset: u64,
    #[serde(default = "default_limit")]
    limit: u64,
}

fn default_limit() -> u64 {
    100
}

#[utoipa::path(get, path = "/api/v1/runs/{id}/examples", params(PageQuery), responses((status = 200, body = ExamplesPage)))]
async fn get_examples(State(s): State<AppState>, Path(id): Path<String>, Query(q): Query<PageQuery>) -> Result<Json<ExamplesPage>, ApiError> {
    if q.limit > 1000 {
        return Err(ApiError::bad("limit may be at most 1000"));
    }
    Ok(Json(s.examples(&id, q.offset, q.limit).await?))
}

#[utoipa::path(get, path = "/api/v1/runs/{id}/attachments/{name}", responses((status = 200, description = "the file")))]
async fn get_attachment(State(s): State<AppState>, Path((id, name)): Path<(String, String)>) -> Result<Response, ApiError> {
    let (media_type, content) = s
        .store
        .get_attachment(&id, &name)
        .await
        .map_err(crate::service::ServiceError::from)?
        .ok_or_else(|| ApiError::NotFound(format!("run '{id}' has no attachment '{name}'")))?;
    Ok(([(header::CONTENT_TYPE, media_type), (header::CONTENT_DISPOSITION, "attachment".to_string())], content).into_response())
}

#[derive(Deserialize, serde::Serialize)]
struct Health {
    status: String,
    database: String,
}

#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "database reachable"), (status = 503, description = "database unreachable")))]
async fn healthz(State(s): State<AppState>) -> Response {
    match s.store.ping().await {
        Ok(()) => Json(Health { status: "ok".into(), database: "reachable".into() }).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: "error".into(), database: "unreachable".into() })).into_response()
        }
    }
}

/// Keeps only a file name's last component and characters that are safe to echo back.
fn clean_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    if cleaned.is_empty() { "upload".to_string() } else { cleaned }
}

/// Streams a multipart field to a temporary file, refusing more than `limit` bytes.
async fn spool(field: &mut axum::extract::multipart::Field<'_>, tmp: &mut tempfile::NamedTempFile, limit: u64, file: &str) -> Result<u64, ApiError> {
    let mut written = 0u64;
    while let Some(chunk) = field.chunk().await.map_err(|e| ApiError::bad(format!("the upload was interrupted: {e}")))? {
        written += chunk.len() as u64;
        if written > limit {
            return Err(crate::ingest::IngestError::TooLarge { file: file.to_string(), limit }.into());
        }
        tmp.write_all(&chunk).map_err(|e| ApiError::Internal(format!("spooling upload: {e}")))?;
    }
    tmp.flush().map_err(|e| ApiError::Internal(format!("spooling upload: {e}")))?;
    Ok(written)
}

/// Reads a small multipart part into memory, refusing more than `limit` bytes as they arrive.
async fn read_capped(field: &mut axum::extract::multipart::Field<'_>, limit: u64, what: &str) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| ApiError::bad(format!("reading {what}: {e}")))? {
        if (out.len() + chunk.len()) as u64 > limit {
            return Err(ApiError::TooLarge(format!("{what} is larger than the limit of {limit} bytes"), serde_json::Value::Null));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Upload a run: multipart with a `file` part (CSV, Parquet or JSON Lines), a `spec` part (JSON,
/// see `IngestSpec`; only `name` is required) and any number of `model` parts (ONNX files to
/// store with the run; the part's file name is kept).
#[utoipa::path(post, path = "/api/v1/runs", request_body(content_type = "multipart/form-data", description = "file + spec (+ model)"),
    responses((status = 201, body = Created), (status = 400, body = ApiErrorBody), (status = 413, body = ApiErrorBody)))]
async fn create_run(State(s): State<AppState>, mut mp: Multipart) -> Result<(StatusCode, Json<Created>), ApiError> {
    let mut spec: Option<IngestSpec> = None;
    let mut upload: Option<(tempfile::NamedTempFile, String)> = None;
    let mut attachments = Vec::new();
    while let Some(mut field) = mp.next_field().await.map_err(|e| ApiError::bad(format!("malformed multipart body: {e}")))? {
        match field.name().unwrap_or_default() {
            "spec" => {
                let bytes = read_capped(&mut field, 1 << 20, "the spec part").await?;
                spec = Some(serde_json::from_slice(&bytes).map_err(|e| ApiError::bad(format!("spec is not valid: {e}")))?);
            }
            "file" => {
                let name = clean_file_name(field.file_name().unwrap_or("upload"));
                let mut tmp = tempfile::NamedTempFile::new_in(&s.tmp_dir).map_err(|e| ApiError::Internal(format!("temp file: {e}")))?;
                spool(&mut field, &mut tmp, s.limits.max_upload_bytes, &name).await?;
                upload = Some((tmp, name));
            }
            "model" => {
                let name = clean_file_name(field.file_name().unwrap_or("model.onnx"));
                let content = read_capped(&mut field, s.limits.max_upload_bytes, &format!("model {name}")).await?;
                attachments.push(Attachment { name, media_type: "application/onnx".into(), model: None, content });
            }
            other => return Err(ApiError::bad(format!("unexpected multipart part '{other}' (expected file, spec, model)"))),
        }
    }
    let (tmp, name) = upload.ok_or_else(|| ApiError::bad("no 'file' part in the upload"))?;
    let spec = spec.ok_or_else(|| ApiError::bad("no 'spec' part in the upload (JSON with at least a name)"))?;
    let id = s.ingest(tmp.path(), &name, spec, attachments).await?;
    Ok((StatusCode::CREATED, Json(Created { id })))
}

#[derive(Deserialize, utoipa::IntoParams)]
struct PreviewQuery {
    file_name: String,
    /// The body is the head of a larger text file: drop its last, partial line.
    #[serde(default)]
    truncated: bool,
}

/// What Strata would make of a file: its columns, their inferred types and roles, the first rows.
#[utoipa::path(post, path = "/api/v1/preview", params(PreviewQuery), request_body(content_type = "application/octet-stream"),
    responses((status = 200, body = Preview), (status = 400, body = ApiErrorBody)))]
async fn preview(State(s): State<AppState>, Query(q): Query<PreviewQuery>, body: axum::body::Bytes) -> Result<Json<Preview>, ApiError> {
    let name = clean_file_name(&q.file_name);
    let mut data: &[u8] = &body;
    if q.truncated {
        if let Some(end) = data.iter().rposition(|&b| b == b'\n') {
            data = &data[..=end];
        }
    }
    let mut tmp = tempfile::NamedTempFile::new_in(&s.tmp_dir).map_err(|e| ApiError::Internal(format!("temp file: {e}")))?;
    tmp.write_all(data).map_err(|e| ApiError::Internal(format!("temp file: {e}")))?;
    let p = tokio::task::spawn_blocking(move || crate::ingest::preview_file(tmp.path(), &name, &IngestSpec::default(), 10))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(Json(p))
}

/// Downloads of a fairness view (not under `/api/v1`: they are links on the page):
/// `/runs/{id}/fairness/export?…&format=html|csv|json` and `/compare/export?runs=A,B&…`.
pub fn export_routes(site_root: std::path::PathBuf) -> Router<AppState> {
    let plotly = std::sync::Arc::new(site_root.join("vendor/plotly.min.js"));
    let p2 = plotly.clone();
    Router::new()
        .route(
            "/runs/{id}/fairness/export",
            get(move |State(s): State<AppState>, Path(id): Path<String>, axum::extract::RawQuery(q): axum::extract::RawQuery| export(s, vec![id], q, plotly.clone())),
        )
        .route("/compare/export", get(move |State(s): State<AppState>, axum::extract::RawQuery(q): axum::extract::RawQuery| export(s, vec![], q, p2.clone())))
}

async fn export(s: AppState, ids: Vec<String>, q: Option<String>, plotly: std::sync::Arc<std::path::PathBuf>) -> Result<Response, ApiError> {
    use crate::service::export::{fairness_csv, fairness_html};
    let q = q.unwrap_or_default();
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&q).unwrap_or_default();
    let format = pairs.iter().find(|(k, _)| k == "format").map(|(_, v)| v.as_str()).unwrap_or("html").to_string();
    let view = s.fairness_view(&ids, &q).await?;
    let attach = |name: &str| format!("attachment; filename=\"{name}\"");
    Ok(match format.as_str() {
        "csv" => ([(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()), (header::CONTENT_DISPOSITION, attach("strata-fairness.csv"))], fairness_csv(&view)).into_response(),
        "json" => ([(header::CONTENT_DISPOSITION, attach("strata-fairness.json"))], Json(view)).into_response(),
        "html" => {
            let js = tokio::fs::read_to_string(plotly.as_path()).await.ok();
            if js.is_none() {
                tracing::warn!(path = %plotly.display(), "plotly.js not found: the exported report has tables only");
            }
            let request = q.split('&').filter(|p| !p.starts_with("format=")).collect::<Vec<_>>().join("&");
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8".to_string()), (header::CONTENT_DISPOSITION, attach("strata-fairness.html"))], fairness_html(&view, &request, js.as_deref())).into_response()
        }
        other => return Err(crate::service::ServiceError::BadRequest(format!("format '{other}' is not one of html, csv, json")).into()),
    })
}
