//! `/api/v1` handlers of teams: who am I, accounts, tokens, project grants, share links,
//! reviews and approvals, the audit log. Who may call each is in `auth::policy::RULES`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use strata_app::model::{
    ApiError as ApiErrorBody, ApprovalRule, AuditEntry, Caller, CallerKind, CreatedShare, CreatedToken, GrantBody, NewReview, NewShare, NewToken, NewUser, Review,
    ReviewState, ShareInfo, TokenInfo, UserInfo, UserPatch,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiError;
use crate::auth::AccountId;
use crate::service::{AppState, ServiceError};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(sign_out_everywhere))
        .routes(routes!(list_users, create_user))
        .routes(routes!(patch_user))
        .routes(routes!(create_service_token))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(delete_token))
        .routes(routes!(put_grant))
        .routes(routes!(list_run_shares, create_run_share))
        .routes(routes!(create_project_share))
        .routes(routes!(list_shares))
        .routes(routes!(revoke_share))
        .routes(routes!(get_reviews, post_review))
        .routes(routes!(get_approvals, put_approvals))
        .routes(routes!(get_audit))
}

/// The account behind the request (sessions and tokens), or 403 for anything else.
fn account_id(id: Option<Extension<AccountId>>) -> Result<String, ApiError> {
    id.map(|Extension(AccountId(id))| id).ok_or_else(|| ApiError::Forbidden("this needs a signed-in account".into()))
}

/// Who the request is from: its kind, account, role, grants, scopes or share link.
#[utoipa::path(get, path = "/api/v1/me", responses((status = 200, body = Caller)))]
async fn me(Extension(c): Extension<Caller>) -> Json<Caller> {
    Json(c)
}

/// Ends every session of the caller's account (tokens stay valid: delete those one by one).
#[utoipa::path(post, path = "/api/v1/me/sign-out-everywhere", responses((status = 200, body = u64)))]
async fn sign_out_everywhere(State(s): State<AppState>, id: Option<Extension<AccountId>>) -> Result<Json<u64>, ApiError> {
    let id = account_id(id)?;
    Ok(Json(s.store.delete_sessions_of(&id).await.map_err(ServiceError::from)?))
}

#[utoipa::path(get, path = "/api/v1/users", responses((status = 200, body = Vec<UserInfo>)))]
async fn list_users(State(s): State<AppState>) -> Result<Json<Vec<UserInfo>>, ApiError> {
    Ok(Json(s.store.list_users().await.map_err(ServiceError::from)?))
}

/// Creates an account: a person (with a password) or a service account (`service: true`, tokens only).
#[utoipa::path(post, path = "/api/v1/users", request_body = NewUser, responses((status = 201, body = UserInfo), (status = 400, body = ApiErrorBody), (status = 409, body = ApiErrorBody)))]
async fn create_user(State(s): State<AppState>, Json(u): Json<NewUser>) -> Result<(StatusCode, Extension<crate::auth::AuditTarget>, Json<UserInfo>), ApiError> {
    let target = crate::auth::AuditTarget(format!("user:{}", u.name));
    Ok((StatusCode::CREATED, Extension(target), Json(s.create_user(u).await?)))
}

/// Changes an account's role, password or disabled flag (disabling signs it out everywhere).
#[utoipa::path(patch, path = "/api/v1/users/{name}", params(("name" = String, Path)), request_body = UserPatch, responses((status = 200, body = UserInfo), (status = 404, body = ApiErrorBody)))]
async fn patch_user(State(s): State<AppState>, Path(name): Path<String>, Json(p): Json<UserPatch>) -> Result<(Extension<crate::auth::AuditTarget>, Json<UserInfo>), ApiError> {
    let detail = crate::auth::AuditTarget(format!("user:{name}"));
    Ok((Extension(detail), Json(s.update_user(&name, p).await?)))
}

/// A token for a service account (or any account), made by an admin; shown once.
#[utoipa::path(post, path = "/api/v1/users/{name}/tokens", params(("name" = String, Path)), request_body = NewToken, responses((status = 201, body = CreatedToken), (status = 404, body = ApiErrorBody)))]
async fn create_service_token(State(s): State<AppState>, Path(name): Path<String>, Json(t): Json<NewToken>) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let a = s.store.account_by_name(&name).await.map_err(ServiceError::from)?.ok_or_else(|| ApiError::NotFound(format!("no account named '{name}'")))?;
    Ok((StatusCode::CREATED, Json(s.create_token(&a.id, &a.name, t).await?)))
}

/// The caller's own tokens (an admin sees every account's).
#[utoipa::path(get, path = "/api/v1/tokens", responses((status = 200, body = Vec<TokenInfo>)))]
async fn list_tokens(State(s): State<AppState>, Extension(c): Extension<Caller>, id: Option<Extension<AccountId>>) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    let all = c.kind == CallerKind::Open || c.may(strata_app::model::Perm::Admin, strata_app::model::On::Instance, strata_app::model::Scope::Admin);
    let id = if all { None } else { Some(account_id(id)?) };
    Ok(Json(s.store.list_tokens(id.as_deref()).await.map_err(ServiceError::from)?))
}

/// A personal token with scopes and an expiry; its secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/tokens", request_body = NewToken, responses((status = 201, body = CreatedToken), (status = 400, body = ApiErrorBody)))]
async fn create_token(State(s): State<AppState>, Extension(c): Extension<Caller>, id: Option<Extension<AccountId>>, Json(t): Json<NewToken>) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let id = account_id(id)?;
    Ok((StatusCode::CREATED, Json(s.create_token(&id, c.name.as_deref().unwrap_or_default(), t).await?)))
}

/// Deletes one of the caller's tokens (an admin may delete anyone's).
#[utoipa::path(delete, path = "/api/v1/tokens/{tid}", params(("tid" = String, Path)), responses((status = 204), (status = 404, body = ApiErrorBody)))]
async fn delete_token(State(s): State<AppState>, Path(tid): Path<String>, Extension(c): Extension<Caller>, id: Option<Extension<AccountId>>) -> Result<StatusCode, ApiError> {
    let admin = c.kind == CallerKind::Open || c.may(strata_app::model::Perm::Admin, strata_app::model::On::Instance, strata_app::model::Scope::Admin);
    let owner = if admin { None } else { Some(account_id(id)?) };
    if s.store.delete_token(&tid, owner.as_deref()).await.map_err(ServiceError::from)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no token '{tid}' of yours")))
    }
}

/// Grants an account read / edit / manage on a project (overrides its role there); `null` removes it.
#[utoipa::path(put, path = "/api/v1/projects/{p}/grants/{user}", params(("p" = String, Path), ("user" = String, Path)), request_body = GrantBody, responses((status = 200, body = UserInfo), (status = 404, body = ApiErrorBody)))]
async fn put_grant(State(s): State<AppState>, Path((p, user)): Path<(String, String)>, Json(g): Json<GrantBody>) -> Result<Json<UserInfo>, ApiError> {
    let a = s.store.account_by_name(&user).await.map_err(ServiceError::from)?.ok_or_else(|| ApiError::NotFound(format!("no account named '{user}'")))?;
    s.store.set_grant(&p, &a.id, g.grant).await.map_err(ServiceError::from)?;
    Ok(Json(s.user(&user).await?))
}

/// A run's share links (never their secrets).
#[utoipa::path(get, path = "/api/v1/runs/{id}/shares", params(("id" = String, Path)), responses((status = 200, body = Vec<ShareInfo>)))]
async fn list_run_shares(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<Vec<ShareInfo>>, ApiError> {
    Ok(Json(s.store.list_shares(Some(&id), None, None).await.map_err(ServiceError::from)?))
}

/// Creates a read-only reviewer link to a view of a run; the answer holds its path once.
#[utoipa::path(post, path = "/api/v1/runs/{id}/shares", params(("id" = String, Path)), request_body = NewShare, responses((status = 201, body = CreatedShare), (status = 400, body = ApiErrorBody)))]
async fn create_run_share(State(s): State<AppState>, Path(id): Path<String>, Extension(c): Extension<Caller>, Json(n): Json<NewShare>) -> Result<(StatusCode, Json<CreatedShare>), ApiError> {
    Ok((StatusCode::CREATED, Json(s.create_share(&crate::auth::actor(&c), Some(&id), None, n).await?)))
}

/// Creates a read-only reviewer link to a project's page (and its runs' views).
#[utoipa::path(post, path = "/api/v1/projects/{p}/shares", params(("p" = String, Path)), request_body = NewShare, responses((status = 201, body = CreatedShare), (status = 400, body = ApiErrorBody)))]
async fn create_project_share(State(s): State<AppState>, Path(p): Path<String>, Extension(c): Extension<Caller>, Json(n): Json<NewShare>) -> Result<(StatusCode, Json<CreatedShare>), ApiError> {
    Ok((StatusCode::CREATED, Json(s.create_share(&crate::auth::actor(&c), None, Some(&p), n).await?)))
}

#[derive(Deserialize, utoipa::IntoParams)]
struct SharesQuery {
    /// Every account's links (admins only).
    #[serde(default)]
    all: bool,
}

/// The links the caller made (`?all=true`: everyone's, for an admin), with when each was last opened.
#[utoipa::path(get, path = "/api/v1/shares", params(SharesQuery), responses((status = 200, body = Vec<ShareInfo>)))]
async fn list_shares(State(s): State<AppState>, Extension(c): Extension<Caller>, Query(q): Query<SharesQuery>) -> Result<Json<Vec<ShareInfo>>, ApiError> {
    let admin = c.may(strata_app::model::Perm::Admin, strata_app::model::On::Instance, strata_app::model::Scope::Admin);
    if q.all && !admin {
        return Err(ApiError::Forbidden("every account's links: admins only".into()));
    }
    let mine = crate::auth::actor(&c);
    Ok(Json(s.store.list_shares(None, None, (!q.all).then_some(mine.as_str())).await.map_err(ServiceError::from)?))
}

/// Revokes a link: opening it answers 410 from now on.
#[utoipa::path(delete, path = "/api/v1/shares/{sid}", params(("sid" = String, Path)), responses((status = 204), (status = 404, body = ApiErrorBody)))]
async fn revoke_share(State(s): State<AppState>, Path(sid): Path<String>) -> Result<(StatusCode, Extension<crate::auth::AuditTarget>), ApiError> {
    if s.store.revoke_share(&sid).await.map_err(ServiceError::from)? {
        Ok((StatusCode::NO_CONTENT, Extension(crate::auth::AuditTarget(format!("share:{sid}")))))
    } else {
        Err(ApiError::NotFound(format!("no share link '{sid}'")))
    }
}

/// A run's reviews, approvals and whether it is blessed (approvals + gates).
#[utoipa::path(get, path = "/api/v1/runs/{id}/reviews", params(("id" = String, Path)), responses((status = 200, body = ReviewState), (status = 404, body = ApiErrorBody)))]
async fn get_reviews(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<ReviewState>, ApiError> {
    Ok(Json(s.review_state(&id).await?))
}

/// Comments on a view of a run and/or gives a verdict (approve, request changes).
#[utoipa::path(post, path = "/api/v1/runs/{id}/reviews", params(("id" = String, Path)), request_body = NewReview, responses((status = 201, body = Review), (status = 400, body = ApiErrorBody)))]
async fn post_review(State(s): State<AppState>, Path(id): Path<String>, Extension(c): Extension<Caller>, Json(r): Json<NewReview>) -> Result<(StatusCode, Json<Review>), ApiError> {
    Ok((StatusCode::CREATED, Json(s.add_review(&id, &crate::auth::actor(&c), r).await?)))
}

#[utoipa::path(get, path = "/api/v1/projects/{p}/approvals", params(("p" = String, Path)), responses((status = 200, body = ApprovalRule)))]
async fn get_approvals(State(s): State<AppState>, Path(p): Path<String>) -> Result<Json<ApprovalRule>, ApiError> {
    Ok(Json(ApprovalRule { required: s.required_approvals(&p).await? }))
}

/// How many approvals a run of this project needs (with passing gates) to be blessed.
#[utoipa::path(put, path = "/api/v1/projects/{p}/approvals", params(("p" = String, Path)), request_body = ApprovalRule, responses((status = 200, body = ApprovalRule), (status = 400, body = ApiErrorBody)))]
async fn put_approvals(State(s): State<AppState>, Path(p): Path<String>, Json(a): Json<ApprovalRule>) -> Result<Json<ApprovalRule>, ApiError> {
    Ok(Json(ApprovalRule { required: s.set_required_approvals(&p, a.required).await? }))
}

#[derive(Deserialize, utoipa::IntoParams)]
struct AuditQuery {
    /// Newest entries to return (default 200, at most 5000).
    limit: Option<i64>,
    /// Only this action, e.g. `run.delete`.
    action: Option<String>,
}

/// The audit log, newest first: who did what, to what, when, from where.
#[utoipa::path(get, path = "/api/v1/audit", params(AuditQuery), responses((status = 200, body = Vec<AuditEntry>)))]
async fn get_audit(State(s): State<AppState>, Query(q): Query<AuditQuery>) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    let limit = q.limit.unwrap_or(200).clamp(1, 5000);
    Ok(Json(s.store.audit_log(limit, q.action.as_deref()).await.map_err(ServiceError::from)?))
}
