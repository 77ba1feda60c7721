#![recursion_limit = "512"]
//! Strata's server library: storage, ingest, the metrics engine and the HTTP surface.

pub mod api;
pub mod charts;
pub mod demo;
pub mod eval;
pub mod ingest;
pub mod models;
pub mod outbound;
pub mod secrets;
pub mod service;
pub mod settings;
pub mod store;

use std::sync::Arc;

use axum::Router;
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use strata_app::server_fns::SharedBackend;
use strata_app::{App, shell};
use tower_http::compression::CompressionLayer;
use tower_http::trace::TraceLayer;

use crate::service::AppState;

/// The whole HTTP application: pages (SSR + server functions), static files and `/api/v1`.
pub fn router(state: AppState, options: LeptosOptions) -> Router {
    let routes = generate_route_list(App);
    let backend: SharedBackend = Arc::new(state.clone());
    let context = move || provide_context(backend.clone());
    let site_root = std::path::PathBuf::from(&*options.site_root);
    let pages = Router::new()
        .leptos_routes_with_context(&options, routes, context.clone(), {
            let options = options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context(context, shell))
        .with_state(options);
    pages
        .merge(api::routes().with_state(state.clone()))
        .merge(api::export_routes(site_root).with_state(state))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
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
