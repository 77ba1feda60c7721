//! `/api/v1/runs`: upload, list, inspect and delete runs, their rows and attachments; the upload
//! page's preview; `/healthz`.

use std::io::Write;

use axum::{Extension, Json};
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use strata_app::model::{ApiError as ApiErrorBody, Created, ExamplesPage, IngestSpec, Preview, RegisterRun, RunDetail, RunSummary};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use super::ApiError;
use crate::auth::AuditTarget;
use strata_app::model::{Caller, On, Perm, Scope};
use crate::service::{AppState, Attachment};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        // Uploads stream to a spool file under their own size limit (`Limits::max_upload_bytes`).
        .routes(routes!(list_runs, create_run).layer(DefaultBodyLimit::disable()))
        .routes(routes!(get_run, delete_run, super::projects::patch_run))
        .routes(routes!(get_examples))
        .routes(routes!(get_attachment))
        .routes(routes!(attach_model).layer(DefaultBodyLimit::disable()))
        .routes(routes!(model_cards))
        .routes(routes!(preview).layer(DefaultBodyLimit::max(PREVIEW_MAX_BYTES)))
        .routes(routes!(healthz))
}

/// Largest body the preview endpoint reads (the page sends a file's head, or a small Parquet file).
const PREVIEW_MAX_BYTES: usize = 80 * 1024 * 1024;

#[utoipa::path(get, path = "/api/v1/runs", responses((status = 200, body = Vec<RunSummary>)))]
async fn list_runs(State(s): State<AppState>) -> Result<Json<Vec<RunSummary>>, ApiError> {
    Ok(Json(s.store.list_runs().await.map_err(crate::service::ServiceError::from)?))
}

#[utoipa::path(get, path = "/api/v1/runs/{id}", params(("id" = String, Path, description = "the run")), responses((status = 200, body = RunDetail), (status = 404, body = ApiErrorBody)))]
async fn get_run(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<RunDetail>, ApiError> {
    Ok(Json(s.run_detail(&id).await?))
}

#[utoipa::path(delete, path = "/api/v1/runs/{id}", params(("id" = String, Path, description = "the run")), responses((status = 204), (status = 404, body = ApiErrorBody)))]
async fn delete_run(State(s): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    s.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
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

#[utoipa::path(get, path = "/api/v1/runs/{id}/examples", params(("id" = String, Path, description = "the run"), PageQuery), responses((status = 200, body = ExamplesPage)))]
async fn get_examples(State(s): State<AppState>, Path(id): Path<String>, Query(q): Query<PageQuery>) -> Result<Json<ExamplesPage>, ApiError> {
    if q.limit > 1000 {
        return Err(ApiError::bad("limit may be at most 1000"));
    }
    Ok(Json(s.examples(&id, q.offset, q.limit).await?))
}

#[utoipa::path(get, path = "/api/v1/runs/{id}/attachments/{name}", params(("id" = String, Path, description = "the run"), ("name" = String, Path)), responses((status = 200, description = "the file")))]
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
    let ping = tokio::time::timeout(std::time::Duration::from_secs(3), s.store.ping()).await;
    match ping {
        Ok(Ok(())) => Json(Health { status: "ok".into(), database: "reachable".into() }).into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %crate::service::error_chain(&e), "health check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: "error".into(), database: "unreachable".into() })).into_response()
        }
        Err(_) => {
            tracing::warn!("health check: the database did not answer within 3 s");
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
        tmp.write_all(&chunk).map_err(|e| ApiError::internal(format!("spooling upload: {e}")))?;
    }
    tmp.flush().map_err(|e| ApiError::internal(format!("spooling upload: {e}")))?;
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

/// Largest JSON body that registers an external run.
const REGISTER_MAX_BYTES: usize = 64 * 1024;

/// Upload a run: multipart with a `file` part (CSV, Parquet or JSON Lines), a `spec` part (JSON,
/// see `IngestSpec`; only `name` is required) and any number of `model` parts (ONNX files to
/// store with the run; the part's file name is kept). Or register an external run: a JSON body
/// (`RegisterRun`: roles and `"source": {"parquet": "/path/dir-file-or-glob"}`); its rows stay in
/// the dataset, read when a view needs them. In team mode the path must be under a directory an
/// admin allowed (`--external-root`), else 403.
#[utoipa::path(post, path = "/api/v1/runs", request_body(content((RegisterRun = "application/json"), (IngestSpec = "multipart/form-data")), description = "an upload (multipart: file + spec (+ model)) or an external run (JSON)"),
    responses((status = 201, body = Created), (status = 400, body = ApiErrorBody), (status = 403, body = ApiErrorBody), (status = 413, body = ApiErrorBody)))]
async fn create_run(State(s): State<AppState>, Extension(caller): Extension<Caller>, req: axum::extract::Request) -> Result<Response, ApiError> {
    let json = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("application/json"));
    if json {
        return register_run(s, caller, req).await.map(IntoResponse::into_response);
    }
    let mut mp = match <Multipart as axum::extract::FromRequest<AppState>>::from_request(req, &s).await {
        Ok(mp) => mp,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    upload_run(s, caller, &mut mp).await.map(IntoResponse::into_response)
}

/// `POST /api/v1/runs` with a JSON body: an external run (see [`create_run`]).
async fn register_run(s: AppState, caller: Caller, req: axum::extract::Request) -> Result<(StatusCode, Extension<AuditTarget>, Json<Created>), ApiError> {
    let bytes = axum::body::to_bytes(req.into_body(), REGISTER_MAX_BYTES)
        .await
        .map_err(|_| ApiError::TooLarge(format!("an external run's JSON body is at most {REGISTER_MAX_BYTES} bytes"), serde_json::Value::Null))?;
    let reg: RegisterRun = serde_json::from_slice(&bytes).map_err(|e| ApiError::bad(format!("the body is not a valid external run (RegisterRun): {e}")))?;
    if reg.source.is_none() {
        return Err(ApiError::bad("an external run needs a source: {\"parquet\": \"/path/to/a/file, directory or glob\"} or {\"spark\": {\"remote\": \"sc://host:15002\", \"table\": \"db.preds\"}} (to upload rows, send multipart/form-data)"));
    }
    let into = reg.project.as_deref().map(str::trim).filter(|p| !p.is_empty());
    if !caller.may(Perm::Edit, into.map_or(On::Instance, On::Project), Scope::Write) {
        return Err(ApiError::Forbidden(match into {
            Some(p) => format!("registering a run into project '{p}' needs edit permission on it"),
            None => "registering a run outside projects needs the editor role".into(),
        }));
    }
    let access = s.external_access().await;
    let id = s.register_external(reg, access).await?;
    Ok((StatusCode::CREATED, Extension(AuditTarget(format!("run:{id}"))), Json(Created { id })))
}

/// `POST /api/v1/runs` with a multipart body: an upload (see [`create_run`]).
async fn upload_run(s: AppState, caller: Caller, mp: &mut Multipart) -> Result<(StatusCode, Extension<AuditTarget>, Json<Created>), ApiError> {
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
                let mut tmp = tempfile::NamedTempFile::new_in(&s.tmp_dir).map_err(|e| ApiError::internal(format!("temp file: {e}")))?;
                spool(&mut field, &mut tmp, s.limits.max_upload_bytes, &name).await?;
                upload = Some((tmp, name));
            }
            "model" => {
                // Spooled to disk under the model size limit, like the data file; read back only
                // once whole.
                let name = clean_file_name(field.file_name().unwrap_or("model.onnx"));
                let mut tmp = tempfile::NamedTempFile::new_in(&s.tmp_dir).map_err(|e| ApiError::internal(format!("temp file: {e}")))?;
                spool(&mut field, &mut tmp, s.limits.max_model_bytes, &name).await?;
                let content = std::fs::read(tmp.path()).map_err(|e| ApiError::internal(format!("reading a spooled model: {e}")))?;
                let media_type = if name.ends_with(".json") { "application/json" } else { "application/onnx" };
                attachments.push(Attachment { name, media_type: media_type.into(), model: None, content });
            }
            other => return Err(ApiError::bad(format!("unexpected multipart part '{other}' (expected file, spec, model)"))),
        }
    }
    let (tmp, name) = upload.ok_or_else(|| ApiError::bad("no 'file' part in the upload"))?;
    let spec = spec.ok_or_else(|| ApiError::bad("no 'spec' part in the upload (JSON with at least a name)"))?;
    // The route needs edit permission somewhere; here, where the run goes is known.
    let into = spec.project.as_deref().map(str::trim).filter(|p| !p.is_empty());
    if !caller.may(Perm::Edit, into.map_or(On::Instance, On::Project), Scope::Write) {
        return Err(ApiError::Forbidden(match into {
            Some(p) => format!("uploading into project '{p}' needs edit permission on it"),
            None => "uploading a run outside projects needs the editor role".into(),
        }));
    }
    let id = s.ingest(tmp.path(), &name, spec, attachments).await?;
    Ok((StatusCode::CREATED, Extension(AuditTarget(format!("run:{id}"))), Json(Created { id })))
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
    let mut tmp = tempfile::NamedTempFile::new_in(&s.tmp_dir).map_err(|e| ApiError::internal(format!("temp file: {e}")))?;
    tmp.write_all(data).map_err(|e| ApiError::internal(format!("temp file: {e}")))?;
    let p = s.work.run(move || crate::ingest::preview_file(tmp.path(), &name, &IngestSpec::default(), 10)).await??;
    Ok(Json(p))
}

/// Attach a model to an existing run: multipart with one `model` part (an ONNX file; a stored file
/// of the same name is replaced) and an optional `score` part (the score column it produces). The
/// model is loaded first (refused if it does not load), then its predictions of the run's first
/// rows are compared with that score column (`check`: a mismatch is reported, not refused).
/// The model card of each ONNX file attached to the run: inputs, outputs, operators, opsets, the
/// exporter, the output read as the score, the operators rewritten, whether it loads.
#[utoipa::path(get, path = "/api/v1/runs/{id}/models", params(("id" = String, Path, description = "the run")), responses((status = 200, body = Vec<strata_app::model::ModelCard>), (status = 404, body = ApiErrorBody)))]
async fn model_cards(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<Vec<strata_app::model::ModelCard>>, ApiError> {
    Ok(Json(s.model_cards(&id).await?))
}

#[utoipa::path(post, path = "/api/v1/runs/{id}/models", params(("id" = String, Path, description = "the run")), request_body(content_type = "multipart/form-data", description = "model (+ score)"),
    responses((status = 201, body = strata_app::model::AttachedModel), (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody), (status = 413, body = ApiErrorBody)))]
async fn attach_model(State(s): State<AppState>, Path(id): Path<String>, mut mp: Multipart) -> Result<(StatusCode, Json<strata_app::model::AttachedModel>), ApiError> {
    let mut model: Option<(String, Vec<u8>)> = None;
    let mut score: Option<String> = None;
    while let Some(mut field) = mp.next_field().await.map_err(|e| ApiError::bad(format!("malformed multipart body: {e}")))? {
        match field.name().unwrap_or_default() {
            "model" if model.is_none() => {
                let name = clean_file_name(field.file_name().unwrap_or("model.onnx"));
                let mut tmp = tempfile::NamedTempFile::new_in(&s.tmp_dir).map_err(|e| ApiError::internal(format!("temp file: {e}")))?;
                spool(&mut field, &mut tmp, s.limits.max_model_bytes, &name).await?;
                let content = std::fs::read(tmp.path()).map_err(|e| ApiError::internal(format!("reading a spooled model: {e}")))?;
                model = Some((name, content));
            }
            "model" => return Err(ApiError::bad("one model part per request")),
            "score" => {
                let bytes = read_capped(&mut field, 4096, "the score part").await?;
                let text = String::from_utf8(bytes).map_err(|_| ApiError::bad("the score part is not UTF-8"))?;
                score = Some(text.trim().to_string()).filter(|t| !t.is_empty());
            }
            other => return Err(ApiError::bad(format!("unexpected multipart part '{other}' (expected model, score)"))),
        }
    }
    let (name, content) = model.ok_or_else(|| ApiError::bad("no 'model' part"))?;
    Ok((StatusCode::CREATED, Json(s.attach_model(&id, &name, content, score).await?)))
}
