//! One module per route.

pub mod run;
pub mod runs;
pub mod discover;
pub mod drift;
pub mod explain;
pub mod fairness;
pub mod fairness_compare;
pub mod gates;
pub mod models;
pub mod projects;
pub mod residuals;
pub mod rules;
pub mod slices;
pub mod team;
pub mod whatif;
pub mod upload;

use leptos::prelude::*;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(opts) = use_context::<leptos_axum::ResponseOptions>() {
        opts.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <h1>"Page not found"</h1>
        <p><a href="/">"Back to the runs"</a></p>
    }
}
