//! `/api/v1` handlers of continuous evaluation: projects, gates, validation, alerts.

use axum::Json;
use axum::extract::{Path, Query, RawQuery, State};
use serde::Deserialize;
use strata_app::model::{AlertsView, ApiError as ApiErrorBody, GateSet, GateSetVersion, ProjectSummary, ProjectView, RunSummary, Validation};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiError;
use crate::service::AppState;
use crate::service::alerts::Webhook;
#[allow(unused_imports)] // named in the OpenAPI attributes
use crate::service::params::ProjectParams;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_projects))
        .routes(routes!(get_project))
        .routes(routes!(get_gates, put_gates))
        .routes(routes!(get_rules, put_rules))
        .routes(routes!(rules_impact))
        .routes(routes!(list_named_slices))
        .routes(routes!(put_named_slice, delete_named_slice))
        .routes(routes!(validate))
        .routes(routes!(latest_validation))
        .routes(routes!(list_alerts))
        .routes(routes!(get_webhook, put_webhook))
}

/// A run's project membership and version label; a missing or blank project takes it out.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ProjectPatch {
    pub project: Option<String>,
    pub version: Option<String>,
}

/// Puts a run into a project (`{"project": "adult-income", "version": "v7"}`).
#[utoipa::path(patch, path = "/api/v1/runs/{id}", params(("id" = String, Path, description = "the run")), request_body = ProjectPatch, responses((status = 200, body = RunSummary), (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub async fn patch_run(State(s): State<AppState>, Path(id): Path<String>, axum::Extension(caller): axum::Extension<strata_app::model::Caller>, Json(body): Json<ProjectPatch>) -> Result<Json<RunSummary>, ApiError> {
    // The route needs edit on the run where it is; moving it needs edit where it goes, too.
    use strata_app::model::{On, Perm, Scope};
    let to = body.project.as_deref().map(str::trim).filter(|p| !p.is_empty());
    if !caller.may(Perm::Edit, to.map_or(On::Instance, On::Project), Scope::Write) {
        return Err(ApiError::Forbidden(format!("moving a run {} needs edit permission there", to.map_or("out of its project".to_string(), |p| format!("into project '{p}'")))));
    }
    Ok(Json(s.set_project(&id, body.project, body.version).await?))
}

#[utoipa::path(get, path = "/api/v1/projects", responses((status = 200, body = Vec<ProjectSummary>)))]
async fn list_projects(State(s): State<AppState>) -> Result<Json<Vec<ProjectSummary>>, ApiError> {
    Ok(Json(s.store.list_projects().await.map_err(crate::service::ServiceError::from)?))
}

/// A metric across the project's runs: `?metric=auc_roc&slice=sex&model=&threshold=0.5&by=run|week|day&ci=0.95`.
#[utoipa::path(get, path = "/api/v1/projects/{p}", params(("p" = String, Path, description = "the project"), ProjectParams), responses((status = 200, body = ProjectView), (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn get_project(State(s): State<AppState>, Path(p): Path<String>, RawQuery(q): RawQuery) -> Result<Json<ProjectView>, ApiError> {
    Ok(Json(s.project_view(&p, q.as_deref().unwrap_or("")).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct VersionQuery {
    /// A stored version; the newest when absent.
    pub version: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/projects/{p}/gates", params(("p" = String, Path, description = "the project"), VersionQuery), responses((status = 200, body = GateSetVersion), (status = 404, body = ApiErrorBody)))]
async fn get_gates(State(s): State<AppState>, Path(p): Path<String>, Query(q): Query<VersionQuery>) -> Result<Json<GateSetVersion>, ApiError> {
    Ok(Json(s.gates(&p, q.version).await?))
}

/// Saves the project's gates as a new version (earlier versions stay, and validations name theirs).
#[utoipa::path(put, path = "/api/v1/projects/{p}/gates", params(("p" = String, Path, description = "the project")), request_body = GateSet, responses((status = 200, body = GateSetVersion), (status = 400, body = ApiErrorBody)))]
async fn put_gates(State(s): State<AppState>, Path(p): Path<String>, Json(set): Json<GateSet>) -> Result<Json<GateSetVersion>, ApiError> {
    Ok(Json(s.put_gates(&p, set).await?))
}

/// A project's rules: text in Strata's rule language (one `condition => action` per line; see the README).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesBody {
    pub source: String,
}

#[utoipa::path(get, path = "/api/v1/projects/{p}/rules", params(("p" = String, Path, description = "the project"), VersionQuery),
    responses((status = 200, body = strata_app::model::RuleSetVersion), (status = 404, body = ApiErrorBody)))]
async fn get_rules(State(s): State<AppState>, Path(p): Path<String>, Query(q): Query<VersionQuery>) -> Result<Json<strata_app::model::RuleSetVersion>, ApiError> {
    Ok(Json(s.rules(&p, q.version).await?))
}

/// Saves the project's rules (model assertions) as a new version, after parsing them: a syntax
/// error is a 400 naming the line and column. Column names and types are checked when applied.
#[utoipa::path(put, path = "/api/v1/projects/{p}/rules", params(("p" = String, Path, description = "the project")), request_body = RulesBody,
    responses((status = 200, body = strata_app::model::RuleSetVersion), (status = 400, body = ApiErrorBody)))]
async fn put_rules(State(s): State<AppState>, Path(p): Path<String>, Json(body): Json<RulesBody>) -> Result<Json<strata_app::model::RuleSetVersion>, ApiError> {
    Ok(Json(s.put_rules(&p, &body.source).await?))
}

/// Rules as a what-if on a run: metrics, fairness criteria and the project's gates without and with
/// them, side by side, and the rows each rule touches (unsaved `source`, or a stored version).
#[utoipa::path(post, path = "/api/v1/runs/{id}/rules-impact", params(("id" = String, Path, description = "the run")), request_body = crate::service::rules::RulesImpactRequest,
    responses((status = 200, body = strata_app::model::RulesImpact), (status = 400, body = ApiErrorBody)))]
async fn rules_impact(State(s): State<AppState>, Path(id): Path<String>, Json(body): Json<crate::service::rules::RulesImpactRequest>) -> Result<Json<strata_app::model::RulesImpact>, ApiError> {
    Ok(Json(s.rules_impact(&id, body).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ValidateQuery {
    /// Judge against this stored version of the gates; the newest when absent.
    pub gates_version: Option<i64>,
    /// Apply the project's rules (the newest version) to the decisions before judging.
    pub rules: Option<bool>,
    /// Apply this stored version of the rules (implies `rules=true`).
    pub rules_version: Option<i64>,
}

/// Judges the run against the project's gates; `passed` is false when any slice fails a gate.
/// The answer is 200 either way (the verdict is data); the CLI turns it into an exit code.
#[utoipa::path(post, path = "/api/v1/projects/{p}/runs/{id}/validate", params(("p" = String, Path, description = "the project"), ("id" = String, Path, description = "the run"), ValidateQuery), responses((status = 200, body = Validation), (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn validate(State(s): State<AppState>, Path((p, id)): Path<(String, String)>, Query(q): Query<ValidateQuery>) -> Result<Json<Validation>, ApiError> {
    let rules = (q.rules == Some(true) || q.rules_version.is_some()).then_some(q.rules_version);
    Ok(Json(s.validate_with(&p, &id, q.gates_version, rules).await?))
}

/// The run's newest validation.
#[utoipa::path(get, path = "/api/v1/runs/{id}/validation", params(("id" = String, Path, description = "the run")), responses((status = 200, body = Validation), (status = 404, body = ApiErrorBody)))]
async fn latest_validation(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<Validation>, ApiError> {
    let mut v = s.store.latest_validation(&id).await.map_err(crate::service::ServiceError::from)?;
    if let Some(v) = v.as_mut() {
        v.review = Some((&s.review_state(&id).await?).into());
    }
    Ok(Json(v.ok_or_else(|| crate::service::ServiceError::Missing(format!("run {id} has not been validated")))?))
}

#[utoipa::path(get, path = "/api/v1/alerts", responses((status = 200, body = AlertsView)))]
async fn list_alerts(State(s): State<AppState>) -> Result<Json<AlertsView>, ApiError> {
    Ok(Json(s.alerts_view().await?))
}

/// The webhook as the API shows it: the secret is never sent back, only whether one is set; the
/// URL shows its scheme, host and port only (a chat webhook's path is its credential).
fn masked(mut h: Webhook) -> Webhook {
    h.secret = h.secret.map(|_| "(set)".into());
    h.url = crate::outbound::mask(&h.url);
    h
}

#[utoipa::path(get, path = "/api/v1/alerts/webhook", responses((status = 200, body = Option<Webhook>)))]
async fn get_webhook(State(s): State<AppState>) -> Result<Json<Option<Webhook>>, ApiError> {
    Ok(Json(s.webhook().await?.map(masked)))
}

/// Sets the webhook every alert is posted to (`null` removes it).
#[utoipa::path(put, path = "/api/v1/alerts/webhook", request_body = Option<Webhook>, responses((status = 200, body = Option<Webhook>), (status = 400, body = ApiErrorBody)))]
async fn put_webhook(State(s): State<AppState>, Json(hook): Json<Option<Webhook>>) -> Result<Json<Option<Webhook>>, ApiError> {
    Ok(Json(s.set_webhook(hook).await?.map(masked)))
}

/// A named slice's rows as a filter (`sex=Female & age in [25, 45)`) and, optionally, the metric it
/// was found with.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct NamedSliceBody {
    pub filter: String,
    #[serde(default)]
    pub metric: Option<String>,
}

/// The project's named slices (saved from slice discovery or written by hand).
#[utoipa::path(get, path = "/api/v1/projects/{p}/slices", params(("p" = String, Path, description = "the project")),
    responses((status = 200, body = Vec<strata_app::model::NamedSlice>)))]
async fn list_named_slices(State(s): State<AppState>, Path(p): Path<String>) -> Result<Json<Vec<strata_app::model::NamedSlice>>, ApiError> {
    Ok(Json(s.named_slices(&p).await?))
}

/// Saves (or replaces) a named slice: track it on the project page (`?slice=` its filter) and use
/// its filter as a gate's `slice`.
#[utoipa::path(put, path = "/api/v1/projects/{p}/slices/{name}", params(("p" = String, Path, description = "the project"), ("name" = String, Path, description = "the slice's name")),
    request_body = NamedSliceBody, responses((status = 200, body = strata_app::model::NamedSlice), (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn put_named_slice(State(s): State<AppState>, Path((p, name)): Path<(String, String)>, Json(body): Json<NamedSliceBody>) -> Result<Json<strata_app::model::NamedSlice>, ApiError> {
    Ok(Json(s.save_named_slice(&p, &name, &body.filter, body.metric).await?))
}

/// Deletes a named slice.
#[utoipa::path(delete, path = "/api/v1/projects/{p}/slices/{name}", params(("p" = String, Path, description = "the project"), ("name" = String, Path, description = "the slice's name")),
    responses((status = 204), (status = 404, body = ApiErrorBody)))]
async fn delete_named_slice(State(s): State<AppState>, Path((p, name)): Path<(String, String)>) -> Result<axum::http::StatusCode, ApiError> {
    s.delete_named_slice(&p, &name).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
