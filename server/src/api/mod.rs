//! The HTTP API: `/api/v1` handlers by resource, and the OpenAPI document. Thin: parse, call the
//! service, map errors. Every route is registered through `utoipa_axum`'s `routes!`, so a route
//! and its entry in the OpenAPI document come from one place and cannot drift apart.

mod analysis;
mod error;
mod export;
pub mod jobs;
mod projects;
mod runs;
mod teams;
mod whatif;

use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use error::ApiError;
pub use export::export_routes;

use crate::service::AppState;

#[derive(OpenApi)]
#[openapi(info(title = "Strata API", description = "Evaluation runs: upload, list, inspect, delete; metrics per slice, fairness, residuals, drift, what-if; projects, gates and alerts."))]
pub struct ApiDoc;

/// The routes and the OpenAPI document they make.
fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(runs::router())
        .merge(analysis::router())
        .merge(whatif::router())
        .merge(projects::router())
        .merge(teams::router())
        .merge(jobs::router())
        .split_for_parts()
}

/// The OpenAPI document of `/api/v1`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().1
}

/// Routes under `/api/v1`, plus `/healthz`.
pub fn routes() -> Router<AppState> {
    let (router, doc) = api();
    let doc = std::sync::Arc::new(doc);
    router.route("/api/v1/openapi.json", get(move || async move { Json(doc.as_ref().clone()) }))
}
