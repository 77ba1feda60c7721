//! Downloads of a fairness view (not under `/api/v1`: they are links on the page):
//! `/runs/{id}/fairness/export?…&format=html|csv|json` and `/compare/export?runs=A,B&…`.

use axum::Json;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::ApiError;
use crate::service::{AppState, params};

/// The export routes; `site_root` holds the plotly.js the HTML report inlines.
pub fn export_routes(site_root: std::path::PathBuf) -> Router<AppState> {
    let plotly = std::sync::Arc::new(site_root.join("vendor/plotly.min.js"));
    let p2 = plotly.clone();
    Router::new()
        .route(
            "/runs/{id}/fairness/export",
            get(move |State(s): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery| export(s, vec![id], q, plotly.clone())),
        )
        .route("/compare/export", get(move |State(s): State<AppState>, RawQuery(q): RawQuery| export(s, vec![], q, p2.clone())))
}

async fn export(s: AppState, ids: Vec<String>, q: Option<String>, plotly: std::sync::Arc<std::path::PathBuf>) -> Result<Response, ApiError> {
    use crate::service::export::{AbPair, fairness_csv, fairness_html};
    let q = q.unwrap_or_default();
    let (format, _) = params::split(&q, &["format"]);
    let format: params::ExportParams = params::decode_pairs(&format)?;
    let format = format.format.unwrap_or_else(|| "html".to_string());
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
            let first = |k: &str| strata_app::pickers::query_values(&q, k).into_iter().find(|x| !x.trim().is_empty());
            let ab = AbPair { a: first("a"), b: first("b") };
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8".to_string()), (header::CONTENT_DISPOSITION, attach("strata-fairness.html"))], fairness_html(&view, &request, js.as_deref(), &ab)).into_response()
        }
        other => return Err(crate::service::ServiceError::BadRequest(format!("format '{other}' is not one of html, csv, json")).into()),
    })
}
