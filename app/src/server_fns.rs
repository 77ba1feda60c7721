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
        /// The caller may not do this.
        #[error("{0}")]
        Forbidden(String),
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
        /// The slice-discovery page; `query` is its URL query.
        async fn discovery_view(&self, id: &str, query: &str) -> Result<crate::model::DiscoveryView, BackendError>;
        /// The fairness view of one run (`run_ids = [id]`) or a comparison (`runs=` in `query`).
        async fn fairness_view(&self, run_ids: &[String], query: &str) -> Result<FairnessView, BackendError>;
        /// The what-if page but its selected example; `query` is its URL query.
        async fn whatif_view(&self, id: &str, query: &str) -> Result<WhatIfView, BackendError>;
        /// The what-if page's selected example (`example=`, `set.*` edits in `query`).
        async fn whatif_example(&self, id: &str, query: &str) -> Result<crate::model::WhatIfExample, BackendError>;
        /// The what-if page's partial dependence (`pdp=<feature>` in `query`).
        async fn whatif_pdp(&self, id: &str, query: &str) -> Result<crate::model::WhatIfPdp, BackendError>;
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
        /// The model card of each ONNX file attached to a run.
        async fn model_cards(&self, id: &str) -> Result<Vec<crate::model::ModelCard>, BackendError>;
        /// Rules as a what-if on the project's newest binary run (`source`: unsaved text).
        async fn preview_rules(&self, project: &str, source: &str) -> Result<crate::model::RulesImpact, BackendError>;
        /// Saves the project's rules as a new version.
        async fn save_rules(&self, project: &str, source: &str) -> Result<crate::model::RuleSetVersion, BackendError>;
        /// Saves the project's gates as a new version (checked as `PUT /api/v1/projects/{p}/gates` checks them).
        async fn save_gates(&self, project: &str, gates: crate::model::GateSet) -> Result<crate::model::GateSetVersion, BackendError>;
        async fn named_slices(&self, project: &str) -> Result<Vec<crate::model::NamedSlice>, BackendError>;
        async fn save_named_slice(&self, project: &str, name: &str, filter: &str, metric: Option<String>) -> Result<crate::model::NamedSlice, BackendError>;
        async fn alerts_view(&self) -> Result<crate::model::AlertsView, BackendError>;
        /// Sets the alert webhook (blank removes it); returns a sentence about it.
        async fn set_webhook(&self, url: &str) -> Result<String, BackendError>;
        /// A run's HTTP model endpoints (no secrets).
        async fn endpoint_briefs(&self, id: &str) -> Result<Vec<crate::model::EndpointBrief>, BackendError>;
        /// Predicts the run's first rows through an endpoint and compares them with its stored scores.
        async fn test_endpoint(&self, id: &str, name: &str) -> Result<crate::model::EndpointTest, BackendError>;
        /// A run's reviews, approvals and whether it is blessed.
        async fn review_state(&self, id: &str) -> Result<crate::model::ReviewState, BackendError>;
        async fn add_review(&self, id: &str, author: &str, review: crate::model::NewReview) -> Result<crate::model::Review, BackendError>;
        /// A reviewer link to a view of a run, made by `creator`.
        async fn create_share(&self, creator: &str, id: &str, share: crate::model::NewShare) -> Result<crate::model::CreatedShare, BackendError>;
        /// A reviewer link to a project's page (and its runs' views).
        async fn create_project_share(&self, creator: &str, project: &str, share: crate::model::NewShare) -> Result<crate::model::CreatedShare, BackendError>;
        async fn run_shares(&self, id: &str) -> Result<Vec<crate::model::ShareInfo>, BackendError>;
        async fn revoke_share(&self, sid: &str) -> Result<(), BackendError>;
        async fn admin_view(&self) -> Result<crate::model::AdminView, BackendError>;
        async fn add_user(&self, user: crate::model::NewUser) -> Result<crate::model::UserInfo, BackendError>;
        async fn set_user(&self, name: &str, patch: crate::model::UserPatch) -> Result<crate::model::UserInfo, BackendError>;
        /// An account's tokens and links (`name`: the signed-in account).
        async fn account_view(&self, name: &str) -> Result<crate::model::AccountView, BackendError>;
        async fn create_personal_token(&self, name: &str, token: crate::model::NewToken) -> Result<crate::model::CreatedToken, BackendError>;
        /// Deletes one of the account's own tokens.
        async fn delete_personal_token(&self, name: &str, token_id: &str) -> Result<(), BackendError>;
        /// Ends every session of the account; returns how many.
        async fn sign_out_everywhere(&self, name: &str) -> Result<u64, BackendError>;
        /// How one may sign in (password, single sign-on).
        fn sign_in_options(&self) -> crate::model::SignInOptions;
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
    /// The caller may not do this (the message says what it needs).
    #[error("{0}")]
    Forbidden(String),
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

/// Who is calling: the caller the server's access gate put on the request.
#[cfg(feature = "ssr")]
fn caller() -> crate::model::Caller {
    use_context::<http::request::Parts>().and_then(|p| p.extensions.get::<crate::model::Caller>().cloned()).unwrap_or_else(crate::model::Caller::anonymous)
}

#[cfg(feature = "ssr")]
fn to_server_error(e: BackendError) -> AppError {
    let (status, error) = match e {
        BackendError::NotFound(m) => (http::StatusCode::NOT_FOUND, AppError::NotFound(m)),
        BackendError::BadRequest(m) => (http::StatusCode::BAD_REQUEST, AppError::BadRequest(m)),
        BackendError::Forbidden(m) => (http::StatusCode::FORBIDDEN, AppError::Forbidden(m)),
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

#[server(endpoint = "list_runs")]
pub async fn list_runs() -> Result<Vec<RunSummary>, AppError> {
    backend()?.list_runs().await.map_err(to_server_error)
}

#[server(endpoint = "get_run_overview")]
pub async fn get_run_overview(
    id: String,
    model: Option<String>,
) -> Result<RunOverview, AppError> {
    backend()?
        .run_overview(&id, model.as_deref())
        .await
        .map_err(to_server_error)
}

#[server(endpoint = "get_examples")]
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

/// `job`: as for [`get_discovery_view`] (a first analysis or a large bootstrap's progress).
#[server(endpoint = "get_slice_view")]
pub async fn get_slice_view(id: String, query: String, job: Option<String>) -> Result<SliceView, AppError> {
    let _ = job;
    backend()?.slice_view(&id, &query).await.map_err(to_server_error)
}

#[server(endpoint = "get_residuals_view")]
pub async fn get_residuals_view(id: String, query: String) -> Result<ResidualsView, AppError> {
    backend()?.residuals_view(&id, &query).await.map_err(to_server_error)
}

/// `job`: an id the page chose to follow the search's progress and cancel it
/// (`/api/v1/jobs/{job}`); the server's job tracker reads it from the request's form.
#[server(endpoint = "get_discovery_view")]
pub async fn get_discovery_view(id: String, query: String, job: Option<String>) -> Result<crate::model::DiscoveryView, AppError> {
    let _ = job;
    backend()?.discovery_view(&id, &query).await.map_err(to_server_error)
}

/// `job`: as for [`get_discovery_view`].
#[server(endpoint = "get_fairness_view")]
pub async fn get_fairness_view(ids: Vec<String>, query: String, job: Option<String>) -> Result<FairnessView, AppError> {
    let _ = job;
    backend()?.fairness_view(&ids, &query).await.map_err(to_server_error)
}

#[server(endpoint = "save_fairness_limits")]
pub async fn save_fairness_limits(id: String, limits: String) -> Result<String, AppError> {
    backend()?.save_limits(&id, &limits).await.map_err(to_server_error)
}

/// `job`: as for [`get_discovery_view`] (an adversarial search or permutation importance through
/// the model takes seconds).
#[server(endpoint = "get_whatif_view")]
pub async fn get_whatif_view(id: String, query: String, job: Option<String>) -> Result<WhatIfView, AppError> {
    let _ = job;
    backend()?.whatif_view(&id, &query).await.map_err(to_server_error)
}

#[server(endpoint = "get_whatif_example")]
pub async fn get_whatif_example(id: String, query: String) -> Result<crate::model::WhatIfExample, AppError> {
    backend()?.whatif_example(&id, &query).await.map_err(to_server_error)
}

/// `job`: as for [`get_discovery_view`] (the model calls' progress).
#[server(endpoint = "get_whatif_pdp")]
pub async fn get_whatif_pdp(id: String, query: String, job: Option<String>) -> Result<crate::model::WhatIfPdp, AppError> {
    let _ = job;
    backend()?.whatif_pdp(&id, &query).await.map_err(to_server_error)
}

#[server(endpoint = "train_benchmark")]
pub async fn train_benchmark(id: String) -> Result<String, AppError> {
    backend()?.train_benchmark(&id).await.map_err(to_server_error)
}

#[server(endpoint = "save_what_if")]
pub async fn save_what_if(id: String, name: String, example: String, edits: String) -> Result<(), AppError> {
    backend()?.save_whatif(&id, &name, &example, &edits).await.map_err(to_server_error)
}

#[server(endpoint = "delete_what_if")]
pub async fn delete_what_if(id: String, name: String) -> Result<(), AppError> {
    backend()?.delete_whatif(&id, &name).await.map_err(to_server_error)
}

/// `job`: as for [`get_discovery_view`] (drift of two large runs takes seconds).
#[server(endpoint = "get_drift_view")]
pub async fn get_drift_view(id: String, query: String, job: Option<String>) -> Result<crate::model::DriftView, AppError> {
    let _ = job;
    backend()?.drift_view(&id, &query).await.map_err(to_server_error)
}

#[server(endpoint = "get_project_view")]
pub async fn get_project_view(project: String, query: String) -> Result<crate::model::ProjectView, AppError> {
    backend()?.project_view(&project, &query).await.map_err(to_server_error)
}

#[server(endpoint = "list_projects")]
pub async fn list_projects() -> Result<Vec<crate::model::ProjectSummary>, AppError> {
    backend()?.list_projects().await.map_err(to_server_error)
}

#[server(endpoint = "validate_run")]
pub async fn validate_run(project: String, id: String) -> Result<crate::model::Validation, AppError> {
    backend()?.validate(&project, &id).await.map_err(to_server_error)
}

#[server(endpoint = "get_model_cards")]
pub async fn get_model_cards(id: String) -> Result<Vec<crate::model::ModelCard>, AppError> {
    backend()?.model_cards(&id).await.map_err(to_server_error)
}

#[server(endpoint = "preview_rules")]
pub async fn preview_rules(project: String, source: String) -> Result<crate::model::RulesImpact, AppError> {
    backend()?.preview_rules(&project, &source).await.map_err(to_server_error)
}

#[server(endpoint = "save_rules")]
pub async fn save_rules(project: String, source: String) -> Result<crate::model::RuleSetVersion, AppError> {
    backend()?.save_rules(&project, &source).await.map_err(to_server_error)
}

/// The largest gate set the page may send, as JSON text (the API's own limit is the gate count).
pub const MAX_GATES_JSON: usize = 64 * 1024;

/// Saves the project's gates (`gates`: a gate set as JSON, the API's body) as a new version.
#[server(endpoint = "save_gates")]
pub async fn save_gates(project: String, gates: String) -> Result<crate::model::GateSetVersion, AppError> {
    if gates.len() > MAX_GATES_JSON {
        return Err(to_server_error(BackendError::BadRequest(format!("the gates are {} bytes of JSON; at most {MAX_GATES_JSON}", gates.len()))));
    }
    let set: crate::model::GateSet = serde_json::from_str(&gates).map_err(|e| to_server_error(BackendError::BadRequest(format!("the gates are not a valid gate set: {e}"))))?;
    backend()?.save_gates(&project, set).await.map_err(to_server_error)
}

#[server(endpoint = "get_named_slices")]
pub async fn get_named_slices(project: String) -> Result<Vec<crate::model::NamedSlice>, AppError> {
    backend()?.named_slices(&project).await.map_err(to_server_error)
}

#[server(endpoint = "save_named_slice")]
pub async fn save_named_slice(project: String, name: String, filter: String, metric: Option<String>) -> Result<crate::model::NamedSlice, AppError> {
    backend()?.save_named_slice(&project, &name, &filter, metric).await.map_err(to_server_error)
}

#[server(endpoint = "get_alerts_view")]
pub async fn get_alerts_view() -> Result<crate::model::AlertsView, AppError> {
    backend()?.alerts_view().await.map_err(to_server_error)
}

#[server(endpoint = "set_webhook")]
pub async fn set_webhook(url: String) -> Result<String, AppError> {
    backend()?.set_webhook(&url).await.map_err(to_server_error)
}

/// Who is asking (the page header and what the pages offer depend on it).
#[server(endpoint = "who_am_i")]
pub async fn who_am_i() -> Result<crate::model::Caller, AppError> {
    Ok(caller())
}

#[server(endpoint = "get_run_endpoints")]
pub async fn get_run_endpoints(id: String) -> Result<Vec<crate::model::EndpointBrief>, AppError> {
    backend()?.endpoint_briefs(&id).await.map_err(to_server_error)
}

#[server(endpoint = "test_run_endpoint")]
pub async fn test_run_endpoint(id: String, name: String) -> Result<crate::model::EndpointTest, AppError> {
    backend()?.test_endpoint(&id, &name).await.map_err(to_server_error)
}

#[server(endpoint = "get_review_state")]
pub async fn get_review_state(id: String) -> Result<crate::model::ReviewState, AppError> {
    backend()?.review_state(&id).await.map_err(to_server_error)
}

/// `verdict`: approve, request_changes or comment.
#[server(endpoint = "add_review")]
pub async fn add_review(id: String, verdict: String, comment: String, view: String) -> Result<crate::model::Review, AppError> {
    let who = caller();
    let author = who.name.clone().unwrap_or_else(|| "local".into());
    let verdict = crate::model::ReviewVerdict::parse(&verdict).ok_or_else(|| AppError::BadRequest(format!("'{verdict}' is not a verdict")))?;
    let review = crate::model::NewReview { verdict, comment, view: Some(view) };
    backend()?.add_review(&id, &author, review).await.map_err(to_server_error)
}

/// A reviewer link to `view` (a page under the run); `password` empty for none;
/// `require_sign_in` present (a checked box) when opening it needs an account.
#[server(endpoint = "create_share")]
pub async fn create_share(id: String, view: String, expires_in_days: u32, password: String, require_sign_in: Option<String>) -> Result<crate::model::CreatedShare, AppError> {
    let who = caller();
    let creator = who.name.clone().unwrap_or_else(|| "local".into());
    let share = crate::model::NewShare { view: Some(view), expires_in_days: Some(expires_in_days), password: Some(password).filter(|p| !p.is_empty()), require_sign_in: require_sign_in.is_some() };
    backend()?.create_share(&creator, &id, share).await.map_err(to_server_error)
}

/// A reviewer link to `view` (the project's page) — like `create_share`, for a project.
#[server(endpoint = "create_project_share")]
pub async fn create_project_share(project: String, view: String, expires_in_days: u32, password: String, require_sign_in: Option<String>) -> Result<crate::model::CreatedShare, AppError> {
    let who = caller();
    let creator = who.name.clone().unwrap_or_else(|| "local".into());
    let share = crate::model::NewShare { view: Some(view), expires_in_days: Some(expires_in_days), password: Some(password).filter(|p| !p.is_empty()), require_sign_in: require_sign_in.is_some() };
    backend()?.create_project_share(&creator, &project, share).await.map_err(to_server_error)
}

#[server(endpoint = "get_run_shares")]
pub async fn get_run_shares(id: String) -> Result<Vec<crate::model::ShareInfo>, AppError> {
    backend()?.run_shares(&id).await.map_err(to_server_error)
}

#[server(endpoint = "revoke_share")]
pub async fn revoke_share(sid: String) -> Result<(), AppError> {
    backend()?.revoke_share(&sid).await.map_err(to_server_error)
}

#[server(endpoint = "get_admin_view")]
pub async fn get_admin_view() -> Result<crate::model::AdminView, AppError> {
    backend()?.admin_view().await.map_err(to_server_error)
}

/// `role`: viewer, editor or admin.
#[server(endpoint = "add_user")]
pub async fn add_user(name: String, role: String, password: String) -> Result<crate::model::UserInfo, AppError> {
    let role = crate::model::UserRole::parse(&role).ok_or_else(|| AppError::BadRequest(format!("'{role}' is not a role")))?;
    let user = crate::model::NewUser { name, role, password: Some(password), service: false };
    backend()?.add_user(user).await.map_err(to_server_error)
}

/// Changes an account: a role (empty: unchanged) and/or enables or disables it.
#[server(endpoint = "set_user")]
pub async fn set_user(name: String, role: String, disabled: Option<bool>) -> Result<crate::model::UserInfo, AppError> {
    let role = if role.is_empty() { None } else { Some(crate::model::UserRole::parse(&role).ok_or_else(|| AppError::BadRequest(format!("'{role}' is not a role")))?) };
    backend()?.set_user(&name, crate::model::UserPatch { role, disabled, password: None }).await.map_err(to_server_error)
}

#[server(endpoint = "sign_in_options")]
pub async fn sign_in_options() -> Result<crate::model::SignInOptions, AppError> {
    Ok(backend()?.sign_in_options())
}

/// The signed-in account's name, or a clear error (open mode has no accounts; a link is not one).
#[cfg(feature = "ssr")]
fn account_name() -> Result<String, AppError> {
    let c = caller();
    match (c.kind, c.name) {
        (crate::model::CallerKind::User | crate::model::CallerKind::Token, Some(n)) => Ok(n),
        (crate::model::CallerKind::Open, _) => Err(AppError::BadRequest("this Strata has no accounts yet (open mode): create one with `strata users add`".into())),
        _ => Err(AppError::Forbidden("sign in first".into())),
    }
}

#[server(endpoint = "get_account_view")]
pub async fn get_account_view() -> Result<crate::model::AccountView, AppError> {
    let name = account_name()?;
    backend()?.account_view(&name).await.map_err(to_server_error)
}

/// `scope`: read, write, validate or admin.
#[server(endpoint = "create_personal_token")]
pub async fn create_personal_token(name: String, scope: String, expires_in_days: u32) -> Result<crate::model::CreatedToken, AppError> {
    let account = account_name()?;
    let scope = crate::model::Scope::parse(&scope).ok_or_else(|| AppError::BadRequest(format!("'{scope}' is not a scope")))?;
    backend()?.create_personal_token(&account, crate::model::NewToken { name, scopes: vec![scope], expires_in_days: Some(expires_in_days) }).await.map_err(to_server_error)
}

#[server(endpoint = "delete_personal_token")]
pub async fn delete_personal_token(tid: String) -> Result<(), AppError> {
    let account = account_name()?;
    backend()?.delete_personal_token(&account, &tid).await.map_err(to_server_error)
}

#[server(endpoint = "sign_out_everywhere")]
pub async fn sign_out_everywhere() -> Result<u64, AppError> {
    let account = account_name()?;
    backend()?.sign_out_everywhere(&account).await.map_err(to_server_error)
}
