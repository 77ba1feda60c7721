//! Server functions: the pages' only way to the data, through the `Backend` the server provides.

use leptos::prelude::*;

use crate::model::{ExamplesPage, FairnessView, ResidualsView, RunOverview, RunSummary, SliceView, WhatIfView};

#[cfg(feature = "ssr")]
pub use backend::{Backend, BackendError, SharedBackend};

#[cfg(feature = "ssr")]
mod backend {
    use std::sync::Arc;

    use crate::model::{ExamplesPage, FairnessView, ResidualsView, RunOverview, RunSummary, SliceView, WhatIfView};

    /// What a failed backend call tells the page.
    #[derive(Debug, thiserror::Error)]
    pub enum BackendError {
        #[error("{0}")]
        NotFound(String),
        #[error("{0}")]
        BadRequest(String),
        /// Busy, or the database is unreachable: try again in this many seconds.
        #[error("{0}")]
        Unavailable(String, u64),
        /// Logged in full by the server; the page only sees a generic message.
        #[error("internal error")]
        Internal,
    }

    /// The data the pages need. The server crate implements it on its state and provides it to
    /// every request through Leptos context, so this crate needs no database or Polars.
    #[async_trait::async_trait]
    pub trait Backend: Send + Sync + 'static {
        async fn list_runs(&self) -> Result<Vec<RunSummary>, BackendError>;
        async fn run_overview(
            &self,
            id: &str,
            model: Option<&str>,
        ) -> Result<RunOverview, BackendError>;
        async fn examples(
            &self,
            id: &str,
            offset: u64,
            limit: u64,
        ) -> Result<ExamplesPage, BackendError>;
        /// Metrics per slice; `query` is the page's URL query (the API's parameters).
        async fn slice_view(&self, id: &str, query: &str) -> Result<SliceView, BackendError>;
        /// Residual analysis; `query` is the page's URL query (the API's parameters).
        async fn residuals_view(&self, id: &str, query: &str) -> Result<ResidualsView, BackendError>;
        /// The fairness view of one run (`run_ids = [id]`) or a comparison (`runs=` in `query`).
        async fn fairness_view(&self, run_ids: &[String], query: &str) -> Result<FairnessView, BackendError>;
        /// The what-if page; `query` is its URL query.
        async fn whatif_view(&self, id: &str, query: &str) -> Result<WhatIfView, BackendError>;
        /// Saves an edited example (`edits` as a URL query of `set.*` pairs) under `name`.
        async fn save_whatif(&self, id: &str, name: &str, example: &str, edits: &str) -> Result<(), BackendError>;
        /// Deletes a saved example.
        async fn delete_whatif(&self, id: &str, name: &str) -> Result<(), BackendError>;
        /// The drift page; `query` is its URL query.
        async fn drift_view(&self, id: &str, query: &str) -> Result<crate::model::DriftView, BackendError>;
        /// Fits and stores the benchmark model; returns a sentence about it.
        async fn train_benchmark(&self, id: &str) -> Result<String, BackendError>;
        /// Saves the fairness limits with a run; returns them in canonical form.
        async fn save_limits(&self, id: &str, limits: &str) -> Result<String, BackendError>;
        /// The project page; `query` is its URL query.
        async fn project_view(&self, project: &str, query: &str) -> Result<crate::model::ProjectView, BackendError>;
        async fn list_projects(&self) -> Result<Vec<crate::model::ProjectSummary>, BackendError>;
        /// Judges a run against its project's newest gates (and stores the verdict).
        async fn validate(&self, project: &str, id: &str) -> Result<crate::model::Validation, BackendError>;
        async fn alerts_view(&self) -> Result<crate::model::AlertsView, BackendError>;
        /// Sets the alert webhook (blank removes it); returns a sentence about it.
        async fn set_webhook(&self, url: &str) -> Result<String, BackendError>;
    }

    pub type SharedBackend = Arc<dyn Backend>;
}

/// What a page's server function tells the page when it fails: typed, so the page shows the
/// message and the server-rendered response carries the matching status (404, 400, 500).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, thiserror::Error)]
pub enum AppError {
    /// No such run, project or saved example (the message says which).
    #[error("{0}")]
    NotFound(String),
    /// The page's URL or form asks for something invalid (the message says what).
    #[error("{0}")]
    BadRequest(String),
    /// The server is busy or its database is unreachable: a moment later may work.
    #[error("{0}")]
    Unavailable(String),
    /// Logged in full by the server; the page only sees this.
    #[error("internal error; see the server log")]
    Internal,
    /// The call itself failed (network, encoding).
    #[error("{0}")]
    Call(String),
}

impl leptos::server_fn::error::FromServerFnError for AppError {
    type Encoder = leptos::server_fn::codec::JsonEncoding;

    fn from_server_fn_error(e: leptos::server_fn::error::ServerFnErrorErr) -> Self {
        AppError::Call(e.to_string())
    }
}

#[cfg(feature = "ssr")]
fn backend() -> Result<SharedBackend, AppError> {
    use_context::<SharedBackend>().ok_or_else(|| AppError::Call("no backend in context".into()))
}

#[cfg(feature = "ssr")]
fn to_server_error(e: BackendError) -> AppError {
    let (status, error) = match e {
        BackendError::NotFound(m) => (http::StatusCode::NOT_FOUND, AppError::NotFound(m)),
        BackendError::BadRequest(m) => (http::StatusCode::BAD_REQUEST, AppError::BadRequest(m)),
        BackendError::Internal => (http::StatusCode::INTERNAL_SERVER_ERROR, AppError::Internal),
        BackendError::Unavailable(m, retry) => {
            if let Some(opts) = use_context::<leptos_axum::ResponseOptions>() {
                opts.insert_header(http::header::RETRY_AFTER, http::HeaderValue::from(retry));
            }
            (http::StatusCode::SERVICE_UNAVAILABLE, AppError::Unavailable(m))
        }
    };
    if let Some(opts) = use_context::<leptos_axum::ResponseOptions>() {
        opts.set_status(status);
    }
    error
}

#[server]
pub async fn list_runs() -> Result<Vec<RunSummary>, AppError> {
    backend()?.list_runs().await.map_err(to_server_error)
}

#[server]
pub async fn get_run_overview(
    id: String,
    model: Option<String>,
) -> Result<RunOverview, AppError> {
    backend()?
        .run_overview(&id, model.as_deref())
        .await
        .map_err(to_server_error)
}

#[server]
pub async fn get_examples(
    id: String,
    offset: u64,
    limit: u64,
) -> Result<ExamplesPage, AppError> {
    backend()?
        .examples(&id, offset, limit.min(500))
        .await
        .map_err(to_server_error)
}

#[server]
pub async fn get_slice_view(id: String, query: String) -> Result<SliceView, AppError> {
    backend()?.slice_view(&id, &query).await.map_err(to_server_error)
}

#[server]
pub async fn get_residuals_view(id: String, query: String) -> Result<ResidualsView, AppError> {
    backend()?.residuals_view(&id, &query).await.map_err(to_server_error)
}

#[server]
pub async fn get_fairness_view(ids: Vec<String>, query: String) -> Result<FairnessView, AppError> {
    backend()?.fairness_view(&ids, &query).await.map_err(to_server_error)
}

#[server]
pub async fn save_fairness_limits(id: String, limits: String) -> Result<String, AppError> {
    backend()?.save_limits(&id, &limits).await.map_err(to_server_error)
}

#[server]
pub async fn get_whatif_view(id: String, query: String) -> Result<WhatIfView, AppError> {
    backend()?.whatif_view(&id, &query).await.map_err(to_server_error)
}

#[server]
pub async fn train_benchmark(id: String) -> Result<String, AppError> {
    backend()?.train_benchmark(&id).await.map_err(to_server_error)
}

#[server]
pub async fn save_what_if(id: String, name: String, example: String, edits: String) -> Result<(), AppError> {
    backend()?.save_whatif(&id, &name, &example, &edits).await.map_err(to_server_error)
}

#[server]
pub async fn delete_what_if(id: String, name: String) -> Result<(), AppError> {
    backend()?.delete_whatif(&id, &name).await.map_err(to_server_error)
}

#[server]
pub async fn get_drift_view(id: String, query: String) -> Result<crate::model::DriftView, AppError> {
    backend()?.drift_view(&id, &query).await.map_err(to_server_error)
}

#[server]
pub async fn get_project_view(project: String, query: String) -> Result<crate::model::ProjectView, AppError> {
    backend()?.project_view(&project, &query).await.map_err(to_server_error)
}

#[server]
pub async fn list_projects() -> Result<Vec<crate::model::ProjectSummary>, AppError> {
    backend()?.list_projects().await.map_err(to_server_error)
}

#[server]
pub async fn validate_run(project: String, id: String) -> Result<crate::model::Validation, AppError> {
    backend()?.validate(&project, &id).await.map_err(to_server_error)
}

#[server]
pub async fn get_alerts_view() -> Result<crate::model::AlertsView, AppError> {
    backend()?.alerts_view().await.map_err(to_server_error)
}

#[server]
pub async fn set_webhook(url: String) -> Result<String, AppError> {
    backend()?.set_webhook(&url).await.map_err(to_server_error)
}
