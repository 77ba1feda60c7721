//! Strata's user interface: the HTML shell, the routes and the pages (SSR + hydration).
#![recursion_limit = "512"]

pub mod metrics;
pub mod names;
pub mod model;
pub mod pickers;
pub mod progress;
pub mod server_fns;

mod components;
mod pages;

/// The fairness comparisons' pure parts (matrix, A-vs-B rows), which the HTML export shares.
pub use pages::fairness_compare;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    SsrMode,
    components::{A, Route, Router, Routes},
    path,
};

/// The HTML document around the app; plotly.js and the chart bridge are served by Strata itself
/// (`/charts.js` fetches plotly.js only on a page that has a chart).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <script src="/charts.js" defer></script>
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    pages::team::provide_caller();
    view! {
        <Stylesheet id="leptos" href="/pkg/strata.css" />
        // leptos_meta writes the title into the SSR head without escaping it: every page's title
        // (which may hold a run or project name from the URL) has its angle brackets replaced here.
        <Title formatter=|page: String| {
            if page.is_empty() { "Strata".to_string() } else { format!("{} · Strata", crate::components::title_text(&page)) }
        } />
        <Router>
            <crate::components::NavigationWatch />
            <header class="topbar">
                <A href="/" attr:class="brand">"Strata"</A>
                <nav>
                    <A href="/">"Runs"</A>
                    <A href="/alerts">"Alerts"</A>
                    <a href="/api/v1/openapi.json" rel="external">"API"</a>
                    <pages::team::AccountBadge />
                </nav>
            </header>
            <main>
                <Routes fallback=|| view! { <pages::NotFound /> }>
                    // Async SSR: every page arrives complete, so it reads (and links work) with
                    // JavaScript off; hydration then makes the controls live.
                    <Route path=path!("/") view=pages::runs::RunsPage ssr=SsrMode::Async />
                    <Route path=path!("/upload") view=pages::upload::UploadPage ssr=SsrMode::Async />
                    <Route path=path!("/runs/:id") view=pages::run::RunPage ssr=SsrMode::Async />
                    <Route path=path!("/runs/:id/slices") view=pages::slices::SlicesPage ssr=SsrMode::Async />
                    <Route path=path!("/runs/:id/residuals") view=pages::residuals::ResidualsPage ssr=SsrMode::Async />
                    <Route path=path!("/runs/:id/discover") view=pages::discover::DiscoverPage ssr=SsrMode::Async />
                    <Route path=path!("/runs/:id/fairness") view=pages::fairness::FairnessPage ssr=SsrMode::Async />
                    <Route path=path!("/compare") view=pages::fairness::FairnessPage ssr=SsrMode::Async />
                    <Route path=path!("/runs/:id/whatif") view=pages::whatif::WhatIfPage ssr=SsrMode::Async />
                    <Route path=path!("/runs/:id/drift") view=pages::drift::DriftPage ssr=SsrMode::Async />
                    <Route path=path!("/projects/:p") view=pages::projects::ProjectPage ssr=SsrMode::Async />
                    <Route path=path!("/alerts") view=pages::projects::AlertsPage ssr=SsrMode::Async />
                    <Route path=path!("/login") view=pages::team::LoginPage ssr=SsrMode::Async />
                    <Route path=path!("/admin") view=pages::team::AdminPage ssr=SsrMode::Async />
                    <Route path=path!("/account") view=pages::team::AccountPage ssr=SsrMode::Async />
                </Routes>
            </main>
        </Router>
    }
}
