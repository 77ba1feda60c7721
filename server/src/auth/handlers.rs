//! Sign-in, sign-out and opening a share link: plain form posts and redirects, so they work
//! without JavaScript. The sign-in form itself is a page of the app (`/login`).

use axum::Extension;
use axum::Form;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use strata_app::model::{Caller, CallerKind};

use super::{ClientAddr, SESSION_COOKIE, SHARE_COOKIE, cookie_value, new_secret, password, secret_hash};
use crate::api::ApiError;
use crate::service::export::html_escape as escape;
use crate::service::{AppState, ServiceError};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/s/{token}", get(open_share).post(unlock_share))
        .route("/auth/oidc/login", get(oidc_login))
        .route("/auth/oidc/callback", get(oidc_callback))
}

#[derive(serde::Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// `GET /auth/oidc/login?next=…`: off to the OpenID provider.
async fn oidc_login(State(s): State<AppState>, axum::extract::Query(q): axum::extract::Query<NextQuery>) -> Result<Response, ApiError> {
    let Some(oidc) = s.auth.oidc.as_ref() else { return Ok(message_page(StatusCode::NOT_FOUND, "No single sign-on", "This Strata has no OpenID Connect provider configured.")) };
    match oidc.start(safe_next(q.next.as_deref())).await {
        Ok(url) => Ok((StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response()),
        Err(e) => {
            tracing::warn!(error = %e, "OpenID Connect sign-in could not start");
            Ok(message_page(StatusCode::BAD_GATEWAY, "Sign-in unavailable", "The single sign-on provider cannot be reached right now; try again, or sign in with a password."))
        }
    }
}

#[derive(serde::Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /auth/oidc/callback?code=…&state=…`: the provider sends the browser back here.
async fn oidc_callback(State(s): State<AppState>, Extension(addr): Extension<ClientAddr>, axum::extract::Query(q): axum::extract::Query<CallbackQuery>) -> Result<Response, ApiError> {
    let Some(oidc) = s.auth.oidc.as_ref() else { return Ok(message_page(StatusCode::NOT_FOUND, "No single sign-on", "This Strata has no OpenID Connect provider configured.")) };
    let (Some(code), Some(state)) = (q.code, q.state) else {
        let why = q.error.unwrap_or_else(|| "no code".into());
        return Ok(message_page(StatusCode::UNAUTHORIZED, "Sign-in failed", &format!("The provider did not sign you in ({why}).")));
    };
    let id = match oidc.finish(code, &state).await {
        Ok(id) => id,
        Err(e) => {
            tracing::warn!(error = %e, "OpenID Connect sign-in failed");
            audit(&s, "anonymous", "sign_in.failed", Some("oidc"), &addr).await;
            return Ok(message_page(StatusCode::UNAUTHORIZED, "Sign-in failed", &format!("{e}.")));
        }
    };
    let Some(role) = id.role else {
        audit(&s, &id.name, "sign_in.refused", Some("oidc: no role"), &addr).await;
        return Ok(message_page(StatusCode::FORBIDDEN, "No access", "Your account is not in a group that may use Strata. Ask an admin to add you."));
    };
    let account = match s.store.account_by_subject(&id.subject).await.map_err(ServiceError::from)? {
        Some(a) => {
            if a.disabled {
                return Ok(message_page(StatusCode::FORBIDDEN, "Account disabled", "Your Strata account is disabled."));
            }
            // The provider's groups decide the role at every sign-in.
            if a.role != role {
                s.store.update_user(&a.name, Some(role), None, None).await.map_err(ServiceError::from)?;
            }
            a
        }
        None => {
            let base = super::oidc::account_name(&id.name);
            let mut created = None;
            for n in 1..=50 {
                let name = if n == 1 { base.clone() } else { format!("{base}-{n}") };
                if s.store.create_user(&name, role, "oidc", None, Some(&id.subject)).await.map_err(ServiceError::from)? {
                    created = Some(name);
                    break;
                }
            }
            let name = created.ok_or_else(|| ApiError::internal("no free account name for an OpenID Connect user"))?;
            s.auth.team_on();
            audit(&s, &name, "user.create", Some(&format!("user:{name}")), &addr).await;
            s.store.account_by_name(&name).await.map_err(ServiceError::from)?.ok_or_else(|| ApiError::internal("a new account vanished"))?
        }
    };
    let (sid, hash) = new_secret("");
    let expires = chrono::Utc::now() + chrono::Duration::from_std(s.auth.config.absolute).unwrap_or(chrono::Duration::days(7));
    s.store.create_session(&hash, &account.id, &crate::store::projects::stamp(expires)).await.map_err(ServiceError::from)?;
    s.store.touch_sign_in(&account.id).await.map_err(ServiceError::from)?;
    audit(&s, &account.name, "sign_in", Some("oidc"), &addr).await;
    let cookie = s.auth.cookie(SESSION_COOKIE, &sid, s.auth.config.absolute);
    Ok((StatusCode::SEE_OTHER, [(header::SET_COOKIE, cookie), (header::LOCATION, id.next)]).into_response())
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Strata</title><link rel=\"stylesheet\" href=\"/pkg/strata.css\"></head><body><header class=\"topbar\"><a class=\"brand\" href=\"/\">Strata</a></header>\
         <main><section class=\"auth-box\">{body}</section></main></body></html>",
        escape(title)
    )
}

/// A small page with a heading and a sentence, answered with `status`.
pub fn message_page(status: StatusCode, title: &str, text: &str) -> Response {
    (status, Html(page(title, &format!("<h1>{}</h1><p>{}</p><p><a href=\"/login\">Sign in</a></p>", escape(title), escape(text))))).into_response()
}

pub fn gone_page(text: &str) -> Response {
    message_page(StatusCode::GONE, "Link no longer valid", text)
}

/// A path on this site to go to after sign-in: relative, no scheme or host (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') && !n.chars().any(char::is_control) && n.len() < 2000 => n.to_string(),
        _ => "/".to_string(),
    }
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|a| a.to_str().ok()).is_some_and(|a| a.contains("application/json") && !a.contains("text/html"))
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    name: String,
    password: String,
    next: Option<String>,
}

/// `POST /auth/login` (form: name, password, next): a session cookie and a redirect to `next`;
/// a wrong name or password goes back to the form with `error=1`. Rate-limited per account and
/// per address (429 with Retry-After, the password not even checked).
async fn login(State(s): State<AppState>, Extension(addr): Extension<ClientAddr>, headers: HeaderMap, Form(f): Form<LoginForm>) -> Result<Response, ApiError> {
    let address = addr.0.clone().unwrap_or_else(|| "unknown".into());
    let name = f.name.trim().to_string();
    let next = safe_next(f.next.as_deref());
    if let Some(wait) = s.auth.limiter.check(&name, &address) {
        audit(&s, &name, "sign_in.locked", None, &addr).await;
        return Err(ApiError::TooMany(format!("too many failed sign-ins; try again in {} minute(s)", wait.div_ceil(60)), wait));
    }
    let account = s.store.account_by_name(&name).await.map_err(ServiceError::from)?;
    let (pw, hash) = (f.password.clone(), account.as_ref().and_then(|a| a.password_hash.clone()));
    let ok = s
        .quick
        .run(move || match hash {
            Some(h) => password::verify(&pw, &h),
            None => {
                password::verify(&pw, password::decoy());
                false
            }
        })
        .await?;
    let account = account.filter(|a| ok && !a.disabled);
    let Some(account) = account else {
        s.auth.limiter.failed(&name, &address);
        audit(&s, &name, "sign_in.failed", None, &addr).await;
        if wants_json(&headers) {
            return Err(ApiError::Unauthorized("wrong name or password".into()));
        }
        let to = format!("/login?error=1&next={}", form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>());
        return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response());
    };
    s.auth.limiter.succeeded(&name);
    let (sid, hash) = new_secret("");
    let expires = chrono::Utc::now() + chrono::Duration::from_std(s.auth.config.absolute).unwrap_or(chrono::Duration::days(7));
    s.store.create_session(&hash, &account.id, &crate::store::projects::stamp(expires)).await.map_err(ServiceError::from)?;
    s.store.touch_sign_in(&account.id).await.map_err(ServiceError::from)?;
    audit(&s, &account.name, "sign_in", None, &addr).await;
    let cookie = s.auth.cookie(SESSION_COOKIE, &sid, s.auth.config.absolute);
    if wants_json(&headers) {
        return Ok(([(header::SET_COOKIE, cookie)], axum::Json(serde_json::json!({"name": account.name, "role": account.role}))).into_response());
    }
    Ok((StatusCode::SEE_OTHER, [(header::SET_COOKIE, cookie), (header::LOCATION, next)]).into_response())
}

/// `POST /auth/logout`: ends this session (and drops a share link's cookie).
async fn logout(State(s): State<AppState>, Extension(caller): Extension<Caller>, Extension(addr): Extension<ClientAddr>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(sid) = cookie_value(&headers, SESSION_COOKIE) {
        s.store.delete_session(&secret_hash(&sid)).await.map_err(ServiceError::from)?;
        audit(&s, &super::actor(&caller), "sign_out", None, &addr).await;
    }
    let zero = std::time::Duration::ZERO;
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/login".to_string())]).into_response();
    for c in [s.auth.cookie(SESSION_COOKIE, "", zero), s.auth.cookie(SHARE_COOKIE, "", zero)] {
        r.headers_mut().append(header::SET_COOKIE, c.parse().expect("ASCII cookie"));
    }
    Ok(r)
}

async fn audit(s: &AppState, actor: &str, action: &str, target: Option<&str>, addr: &ClientAddr) {
    if let Err(e) = s.store.audit(actor, action, target, None, addr.0.as_deref()).await {
        tracing::warn!(error = %crate::service::error_chain(&e), action, "could not write the audit log");
    }
}

/// The link behind a secret, if it can still be opened; else the page that says why not.
async fn live_link(s: &AppState, token: &str) -> Result<Result<crate::store::teams::ShareRow, Response>, ApiError> {
    if token.len() > 200 {
        return Ok(Err(message_page(StatusCode::NOT_FOUND, "No such link", "This share link does not exist.")));
    }
    let Some(link) = s.store.share_by_hash(&secret_hash(token)).await.map_err(ServiceError::from)? else {
        return Ok(Err(message_page(StatusCode::NOT_FOUND, "No such link", "This share link does not exist.")));
    };
    if link.info.revoked_at.is_some() {
        return Ok(Err(gone_page("This share link has been revoked. Ask its author for a new one.")));
    }
    let expired = chrono::DateTime::parse_from_rfc3339(&link.info.expires_at).map(|t| t <= chrono::Utc::now()).unwrap_or(true);
    if expired {
        return Ok(Err(gone_page("This share link has expired. Ask its author for a new one.")));
    }
    Ok(Ok(link))
}

fn password_form(token: &str, wrong: bool) -> Response {
    let note = if wrong { "<p class=\"error\">That password is not right.</p>" } else { "" };
    let body = format!(
        "<h1>This link is protected</h1><p>Its author gave it a password.</p>{note}\
         <form method=\"post\" action=\"/s/{}\"><label>Password <input type=\"password\" name=\"password\" autofocus required></label> <button type=\"submit\">Open</button></form>",
        escape(token)
    );
    (if wrong { StatusCode::UNAUTHORIZED } else { StatusCode::OK }, Html(page("Protected link", &body))).into_response()
}

/// Gives the browser the link's cookie and sends it to the shared view.
async fn enter(s: &AppState, token: &str, link: &crate::store::teams::ShareRow, addr: &ClientAddr, caller: &Caller) -> Result<Response, ApiError> {
    s.store.share_opened(&link.info.id).await.map_err(ServiceError::from)?;
    let who = if caller.is_account() && caller.kind != CallerKind::Open { super::actor(caller) } else { format!("share:{}", link.info.id) };
    audit(s, &who, "share.open", Some(&format!("share:{}", link.info.id)), addr).await;
    let left = chrono::DateTime::parse_from_rfc3339(&link.info.expires_at).map(|t| (t.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds().max(0) as u64).unwrap_or(0);
    let cookie = s.auth.cookie(SHARE_COOKIE, token, std::time::Duration::from_secs(left));
    Ok((StatusCode::SEE_OTHER, [(header::SET_COOKIE, cookie), (header::LOCATION, safe_next(Some(&link.info.view)))]).into_response())
}

/// `GET /s/{token}`: opens a share link (410 once revoked or expired).
async fn open_share(State(s): State<AppState>, Path(token): Path<String>, Extension(caller): Extension<Caller>, Extension(addr): Extension<ClientAddr>, headers: HeaderMap) -> Result<Response, ApiError> {
    let link = match live_link(&s, &token).await? {
        Ok(l) => l,
        Err(page) => return Ok(page),
    };
    let signed_in = matches!(caller.kind, CallerKind::User | CallerKind::Token | CallerKind::Open);
    if (link.info.require_sign_in || s.auth.config.links_require_sign_in) && !signed_in {
        let to = format!("/login?next={}", form_urlencoded::byte_serialize(format!("/s/{token}").as_bytes()).collect::<String>());
        return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response());
    }
    let holds = cookie_value(&headers, SHARE_COOKIE).is_some_and(|c| c == token);
    if link.password_hash.is_some() && !holds {
        return Ok(password_form(&token, false));
    }
    enter(&s, &token, &link, &addr, &caller).await
}

#[derive(serde::Deserialize)]
struct UnlockForm {
    password: String,
}

/// `POST /s/{token}` (form: password): opens a password-protected link. Rate-limited like sign-in.
async fn unlock_share(State(s): State<AppState>, Path(token): Path<String>, Extension(caller): Extension<Caller>, Extension(addr): Extension<ClientAddr>, Form(f): Form<UnlockForm>) -> Result<Response, ApiError> {
    let link = match live_link(&s, &token).await? {
        Ok(l) => l,
        Err(page) => return Ok(page),
    };
    let key = format!("share:{}", link.info.id);
    let address = addr.0.clone().unwrap_or_else(|| "unknown".into());
    if let Some(wait) = s.auth.limiter.check(&key, &address) {
        return Err(ApiError::TooMany(format!("too many wrong passwords; try again in {} minute(s)", wait.div_ceil(60)), wait));
    }
    let Some(hash) = link.password_hash.clone() else { return enter(&s, &token, &link, &addr, &caller).await };
    let pw = f.password;
    let ok = s.quick.run(move || password::verify(&pw, &hash)).await?;
    if !ok {
        s.auth.limiter.failed(&key, &address);
        return Ok(password_form(&token, true));
    }
    s.auth.limiter.succeeded(&key);
    enter(&s, &token, &link, &addr, &caller).await
}
