//! `/api/v1/jobs/{job}`: the progress of a long request its client tracks, and cancelling it;
//! and the middleware that tracks a request whose client names a job (the `X-Strata-Job` header,
//! or a server function's `job` field).

use axum::extract::{Path, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use strata_app::model::{ApiError as ApiErrorBody, Caller, JobState, JobStatus};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiError;
use crate::auth::FormFields;
use crate::service::{AppState, jobs};

/// The header that names a request's job.
pub const JOB_HEADER: &str = "x-strata-job";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_job, cancel_job))
}

/// Whose jobs a caller sees: the account (or share link) it acts as.
fn owner(caller: Option<&Caller>) -> String {
    caller.map(crate::auth::actor).unwrap_or_else(|| "anonymous".into())
}

fn not_yours(job: &str) -> ApiError {
    ApiError::NotFound(format!("no job '{job}' of yours (jobs are kept 10 minutes after they end)"))
}

/// A job's progress: steps done of the total, rows read (uploads), an estimate of the time left.
/// Only the caller that started it sees it.
#[utoipa::path(get, path = "/api/v1/jobs/{job}", params(("job" = String, Path, description = "the id the client gave the job")), responses((status = 200, body = JobStatus), (status = 404, body = ApiErrorBody)))]
async fn get_job(State(s): State<AppState>, caller: Option<Extension<Caller>>, Path(job): Path<String>) -> Result<Json<JobStatus>, ApiError> {
    let who = owner(caller.as_ref().map(|c| &c.0));
    s.jobs.status(&job, &who).map(Json).ok_or_else(|| not_yours(&job))
}

/// Cancels a job: its work stops at its next check and its worker is freed; its request is
/// answered 409. Cancelling an ended job changes nothing.
#[utoipa::path(delete, path = "/api/v1/jobs/{job}", params(("job" = String, Path, description = "the id the client gave the job")), responses((status = 200, body = JobStatus), (status = 404, body = ApiErrorBody)))]
async fn cancel_job(State(s): State<AppState>, caller: Option<Extension<Caller>>, Path(job): Path<String>) -> Result<Json<JobStatus>, ApiError> {
    let who = owner(caller.as_ref().map(|c| &c.0));
    s.jobs.cancel(&job, &who).map(Json).ok_or_else(|| not_yours(&job))
}

/// Ends a tracked job as cancelled when its request is dropped (the client went away).
struct EndOnDrop {
    jobs: std::sync::Arc<jobs::Jobs>,
    id: String,
    progress: Option<std::sync::Arc<crate::progress::Progress>>,
}

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.progress.take() {
            p.cancel();
            self.jobs.end(&self.id, JobState::Cancelled);
        }
    }
}

/// Tracks a request whose client named a job: its work reports into the job's progress, and it
/// is cancelled when the job is (or when the request is dropped). Runs inside the access gate.
pub async fn track(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let from_header = req.headers().get(JOB_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
    let from_form = || req.extensions().get::<FormFields>().and_then(|f| f.0.iter().find(|(k, _)| k == "job").map(|(_, v)| v.clone()));
    let Some(id) = from_header.or_else(from_form).filter(|j| !j.is_empty()) else {
        return next.run(req).await;
    };
    let who = owner(req.extensions().get::<Caller>());
    let progress = match s.jobs.start(&id, &who) {
        Ok(p) => p,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let mut guard = EndOnDrop { jobs: s.jobs.clone(), id: id.clone(), progress: Some(progress.clone()) };
    let response = jobs::scope(progress, next.run(req)).await;
    guard.progress = None;
    s.jobs.end(&id, if response.status().is_success() { JobState::Done } else { JobState::Failed });
    response
}
