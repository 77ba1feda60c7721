#![recursion_limit = "512"]
//! Strata's server library: storage, ingest, the metrics engine and the HTTP surface.

pub mod api;
pub mod auth;
pub mod charts;
pub mod demo;
pub mod etag;
pub mod eval;
pub mod ingest;
pub mod models;
pub mod outbound;
pub mod progress;
pub mod secrets;
pub mod service;
pub mod settings;
pub mod site;
pub mod spark;
pub mod store;

use std::sync::Arc;

use axum::Router;
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use strata_app::server_fns::SharedBackend;
use strata_app::{App, shell};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::service::AppState;

/// The whole HTTP application: pages (SSR + server functions), static files and `/api/v1`.
pub fn router(state: AppState, options: LeptosOptions) -> Router {
    router_for_version(state, options, etag::CodeVersion::of_this_build())
}

/// [`router`] with the code version its answers' `ETag`s are keyed by (tests name one).
pub fn router_for_version(state: AppState, options: LeptosOptions, version: etag::CodeVersion) -> Router {
    let routes = generate_route_list(App);
    let backend: SharedBackend = Arc::new(state.clone());
    let context = move || {
        provide_context(backend.clone());
        // A page's Content-Security-Policy names the nonce Leptos gave this render's inline
        // scripts (hydration, resolved resources): no other inline script runs.
        if let (Some(nonce), Some(res)) = (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>())
            && let Ok(v) = axum::http::HeaderValue::from_str(&site::page_csp(&nonce))
        {
            res.insert_header(axum::http::header::CONTENT_SECURITY_POLICY, v);
        }
    };
    let site_root = std::path::PathBuf::from(&*options.site_root);
    let guard = Arc::new(site::SiteGuard::new(options.site_addr, &state.allowed_hosts));
    let pages = Router::new()
        .leptos_routes_with_context(&options, routes, context.clone(), {
            let options = options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context(context, shell))
        .with_state(options);
    let timeout = state.limits.request_timeout;
    let app = pages
        .merge(api::routes().with_state(state.clone()))
        .merge(api::export_routes(site_root).with_state(state.clone()))
        .merge(auth::handlers::routes().with_state(state.clone()))
        // JSON answers tagged for revalidation (inside compression: the tag is of the plain JSON;
        // inside the gate: only answers the caller may see are tagged or revalidated).
        .layer(axum::middleware::from_fn_with_state(version, etag::revalidate))
        // Inner to outer: the access gate (caller, route rule, audit), then the site guard
        // (Host, Origin), which runs first.
        // Innermost: a request whose client names a job is tracked (it needs the gate's caller).
        .layer(axum::middleware::from_fn_with_state(state.clone(), api::jobs::track))
        .layer(axum::middleware::from_fn_with_state(state, auth::gate))
        .layer(axum::middleware::from_fn_with_state(guard, site::guard));
    harden(app, timeout)
}

/// The layers every route gets: compression; a time limit per request (then 503); a panic in a
/// handler answered 500 and logged, never a dropped connection; a trace of each request.
pub fn harden(app: Router, timeout: std::time::Duration) -> Router {
    app.layer(CompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::SERVICE_UNAVAILABLE, timeout))
        .layer(CatchPanicLayer::custom(panic_response))
        // 5xx answers are counted by the trace as failures: a 503 (busy, database down) is
        // expected under faults, so they are warnings; a real 500 is logged as an error where
        // it happens.
        .layer(TraceLayer::new_for_http().on_failure(tower_http::trace::DefaultOnFailure::new().level(tracing::Level::WARN)))
}

fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let what = panic.downcast_ref::<String>().map(String::as_str).or_else(|| panic.downcast_ref::<&str>().copied()).unwrap_or("(no message)");
    tracing::error!(panic = %what, "a request handler panicked");
    let body = strata_app::model::ApiError { error: "internal error; see the server log".into(), detail: serde_json::Value::Null };
    (axum::http::StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
}

/// Leptos options for a site built by cargo-leptos into `site_root`.
pub fn leptos_options(site_root: &std::path::Path, addr: std::net::SocketAddr) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("strata")
        .site_root(site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build()
}
