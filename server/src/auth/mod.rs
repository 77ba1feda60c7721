//! Who may do what. Two modes:
//! - **open** (zero setup): no accounts exist and `--auth` was not given; only allowed on a
//!   loopback address (`strata serve` refuses otherwise). Everyone who reaches the port is the
//!   local admin; the site guard still checks `Host` and `Origin`.
//! - **team**: as soon as an account exists (or `--auth`): every route needs what
//!   [`policy::RULES`] says, proved by a session cookie, an API token or a share link.
//!
//! The gate middleware resolves the caller once per request, checks the route's rule, puts the
//! [`Caller`] into the request's extensions (handlers, pages and server functions read it from
//! there) and writes the audit log for the actions the table marks.

pub mod handlers;
pub mod limit;
pub mod oidc;
pub mod password;
pub mod policy;

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::Digest;
use strata_app::model::{Caller, CallerKind, On, Perm, ShareScope};

use crate::api::ApiError;
use crate::service::AppState;
use crate::store::teams::Account;
use policy::{Need, Src, Target};

pub const SESSION_COOKIE: &str = "strata_session";
pub const SHARE_COOKIE: &str = "strata_share";

/// How sign-in behaves (from the command line / environment).
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// Team mode even before the first account exists (`--auth`).
    pub forced: bool,
    /// A session ends after this long without a request.
    pub idle: Duration,
    /// A session ends this long after sign-in, used or not.
    pub absolute: Duration,
    /// Cookies get `Secure` (set when Strata is served over TLS, e.g. behind a proxy).
    pub secure_cookies: bool,
    /// Share links need a signed-in account to open, whatever the link says.
    pub links_require_sign_in: bool,
    /// OpenID Connect sign-in, when configured.
    pub oidc: Option<oidc::OidcConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            forced: false,
            idle: Duration::from_secs(12 * 3600),
            absolute: Duration::from_secs(7 * 24 * 3600),
            secure_cookies: false,
            links_require_sign_in: false,
            oidc: None,
        }
    }
}

/// Sign-in state shared by every request.
pub struct Auth {
    pub config: AuthConfig,
    team: AtomicBool,
    checked: Mutex<Option<Instant>>,
    pub limiter: limit::Limiter,
    pub oidc: Option<oidc::Oidc>,
}

impl Auth {
    /// Panics on an invalid OpenID Connect configuration: check it first with [`oidc::Oidc::new`].
    pub fn new(config: AuthConfig) -> Self {
        Auth {
            oidc: config.oidc.clone().map(|c| oidc::Oidc::new(c).expect("a checked OpenID Connect configuration")),
            team: AtomicBool::new(config.forced),
            config,
            checked: Mutex::new(None),
            // 5 failures per account, 20 per address, in 15 minutes.
            limiter: limit::Limiter::new(Duration::from_secs(15 * 60), 5, 20),
        }
    }

    /// Whether the server is in team mode: forced, or an account exists. Once on it stays on;
    /// while off, the database is asked at most once a second (an account added by the CLI
    /// while the server runs switches it on within a second).
    pub async fn team_mode(&self, state: &AppState) -> Result<bool, ApiError> {
        if self.team.load(Ordering::Relaxed) {
            return Ok(true);
        }
        {
            let mut checked = self.checked.lock().expect("auth lock");
            if checked.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
                return Ok(false);
            }
            *checked = Some(Instant::now());
        }
        let n = state.store.count_users().await.map_err(crate::service::ServiceError::from)?;
        if n > 0 {
            self.team.store(true, Ordering::Relaxed);
        }
        Ok(n > 0)
    }

    /// Switches team mode on (the first account was just created).
    pub fn team_on(&self) {
        self.team.store(true, Ordering::Relaxed);
    }

    /// `Set-Cookie` for `name=value` living `max_age` (zero clears it).
    pub fn cookie(&self, name: &str, value: &str, max_age: Duration) -> String {
        format!(
            "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
            max_age.as_secs(),
            if self.config.secure_cookies { "; Secure" } else { "" }
        )
    }
}

/// A new random secret (256 bits, URL-safe) and its hash as stored.
pub fn new_secret(prefix: &str) -> (String, String) {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    let clear = format!("{prefix}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    let hash = secret_hash(&clear);
    (clear, hash)
}

/// How a secret (session id, token, link) is stored: SHA-256, hex. The secrets are 256 random
/// bits, so a fast hash is enough: the database never holds a usable credential.
pub fn secret_hash(secret: &str) -> String {
    let d = sha2::Sha256::digest(secret.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty() && v.len() <= 200)
}

/// The client's address (for rate limits and the audit log), when the server knows it.
#[derive(Clone, Debug)]
pub struct ClientAddr(pub Option<String>);

/// The account behind a session or token, for handlers that act on "my" things.
#[derive(Clone, Debug)]
pub struct AccountId(pub String);

/// What a handler tells the audit log about the thing it acted on (e.g. a new run's id).
#[derive(Clone, Debug)]
pub struct AuditTarget(pub String);

/// The name an action is recorded under.
pub fn actor(c: &Caller) -> String {
    match c.kind {
        CallerKind::Open => "local".into(),
        CallerKind::Anonymous => "anonymous".into(),
        CallerKind::Share => format!("share:{}", c.share.as_ref().map(|s| s.link.as_str()).unwrap_or("?")),
        CallerKind::User | CallerKind::Token => c.name.clone().unwrap_or_default(),
    }
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

fn parse_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&chrono::Utc))
}

/// Why no caller could be resolved.
enum Refusal {
    /// A token that is not valid: 401 whatever the route.
    BadToken,
    /// A share cookie of a revoked or expired link (and nothing else presented).
    ShareGone,
}

/// The caller of a request in team mode, and the account id behind it.
async fn resolve(state: &AppState, headers: &HeaderMap) -> Result<Result<(Caller, Option<String>), Refusal>, ApiError> {
    let store = &state.store;
    let svc = |e| ApiError::from(crate::service::ServiceError::from(e));
    let with_grants = |a: Account, kind: CallerKind, scopes| async move {
        let grants = store.grants_of(&a.id).await.map_err(svc)?;
        Ok::<_, ApiError>((Caller { kind, name: Some(a.name), role: Some(a.role), grants, scopes, share: None }, Some(a.id)))
    };
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let token = auth.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(str::trim).filter(|t| !t.is_empty() && t.len() <= 200);
        let Some(token) = token else { return Ok(Err(Refusal::BadToken)) };
        let Some(row) = store.token(&secret_hash(token)).await.map_err(svc)? else { return Ok(Err(Refusal::BadToken)) };
        if row.account.disabled || row.expires_at.as_deref().and_then(parse_time).is_some_and(|t| t <= now()) {
            return Ok(Err(Refusal::BadToken));
        }
        return Ok(Ok(with_grants(row.account, CallerKind::Token, row.scopes).await?));
    }
    if let Some(sid) = cookie_value(headers, SESSION_COOKIE) {
        let hash = secret_hash(&sid);
        if let Some(s) = store.session(&hash).await.map_err(svc)? {
            let idle = chrono::Duration::from_std(state.auth.config.idle).unwrap_or(chrono::Duration::hours(12));
            let last = parse_time(&s.last_seen);
            let live = !s.account.disabled && parse_time(&s.expires_at).is_some_and(|t| t > now()) && last.is_some_and(|l| now() - l < idle);
            if live {
                // Last activity is written at most once a minute per session.
                if last.is_some_and(|l| now() - l > chrono::Duration::seconds(60)) {
                    store.touch_session(&hash).await.map_err(svc)?;
                }
                return Ok(Ok(with_grants(s.account, CallerKind::User, vec![]).await?));
            }
            store.delete_session(&hash).await.map_err(svc)?;
        }
    }
    if let Some(secret) = cookie_value(headers, SHARE_COOKIE) {
        if let Some(link) = store.share_by_hash(&secret_hash(&secret)).await.map_err(svc)? {
            let info = link.info;
            let live = info.revoked_at.is_none() && parse_time(&info.expires_at).is_some_and(|t| t > now());
            if !live {
                return Ok(Err(Refusal::ShareGone));
            }
            if !info.require_sign_in && !state.auth.config.links_require_sign_in {
                let share = ShareScope { link: info.id, run: info.run_id, project: info.project, view: info.view };
                return Ok(Ok((Caller { kind: CallerKind::Share, name: None, role: None, grants: vec![], scopes: vec![], share: Some(share) }, None)));
            }
        }
    }
    Ok(Ok((Caller::anonymous(), None)))
}

/// The values a rule's source names in this request.
fn values(src: Src, params: &[(&'static str, String)], query: &str, form: &[(String, String)]) -> Vec<String> {
    let split = |v: &str| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect::<Vec<_>>();
    let from_query = |q: &str, name: &str| form_urlencoded::parse(q.as_bytes()).filter(|(k, _)| k == name).flat_map(|(_, v)| split(&v)).collect::<Vec<_>>();
    match src {
        Src::Path(name) => params.iter().filter(|(k, _)| *k == name).map(|(_, v)| v.clone()).collect(),
        Src::Query(name) => from_query(query, name),
        Src::Form(name) => form
            .iter()
            .filter(|(k, _)| k == name || k.strip_prefix(name).is_some_and(|rest| rest.starts_with('[')))
            .map(|(_, v)| v.clone())
            .collect(),
        Src::FormQuery(field, name) => form.iter().filter(|(k, _)| k == field).flat_map(|(_, v)| from_query(v, name)).collect(),
    }
}

/// Owned form of [`On`], resolved from the database.
enum Resource {
    Instance,
    Run(String, Option<String>),
    Project(String),
}

impl Resource {
    fn on(&self) -> On<'_> {
        match self {
            Resource::Instance => On::Instance,
            Resource::Run(id, p) => On::Run { id, project: p.as_deref() },
            Resource::Project(p) => On::Project(p),
        }
    }
    fn describe(&self) -> Option<String> {
        match self {
            Resource::Instance => None,
            Resource::Run(id, _) => Some(format!("run:{id}")),
            Resource::Project(p) => Some(format!("project:{p}")),
        }
    }
}

async fn run_resource(state: &AppState, id: String) -> Result<Resource, ApiError> {
    let project = state.store.run_project(&id).await.map_err(|e| ApiError::from(crate::service::ServiceError::from(e)))?.flatten();
    Ok(Resource::Run(id, project))
}

/// The resources a rule's target names in this request.
async fn resources(state: &AppState, target: Target, params: &[(&'static str, String)], query: &str, form: &[(String, String)]) -> Result<Vec<Resource>, ApiError> {
    Ok(match target {
        Target::Instance | Target::Anywhere => vec![Resource::Instance],
        Target::Run(src) => match values(src, params, query, form).into_iter().next() {
            Some(id) => vec![run_resource(state, id).await?],
            None => vec![Resource::Instance],
        },
        Target::Runs(srcs) => {
            let mut out = Vec::new();
            for id in srcs.iter().flat_map(|s| values(*s, params, query, form)).take(64) {
                out.push(run_resource(state, id).await?);
            }
            if out.is_empty() {
                out.push(Resource::Instance);
            }
            out
        }
        Target::Project(src) => match values(src, params, query, form).into_iter().next() {
            Some(p) => vec![Resource::Project(p)],
            None => vec![Resource::Instance],
        },
        Target::Share(src) => {
            let link = match values(src, params, query, form).into_iter().next() {
                Some(id) => state.store.share_by_id(&id).await.map_err(|e| ApiError::from(crate::service::ServiceError::from(e)))?,
                None => None,
            };
            match link.map(|l| l.info) {
                Some(l) if l.run_id.is_some() => vec![run_resource(state, l.run_id.unwrap_or_default()).await?],
                Some(l) if l.project.is_some() => vec![Resource::Project(l.project.unwrap_or_default())],
                _ => vec![Resource::Instance],
            }
        }
    })
}

fn allowed(caller: &Caller, need: &Need, found: &[Resource]) -> bool {
    if need.account && !caller.is_account() {
        return false;
    }
    if need.on == Target::Anywhere {
        return caller.may_anywhere(need.perm, need.scope);
    }
    found.iter().all(|r| caller.may(need.perm, r.on(), need.scope))
}

/// A page a browser asked for (not the API, not a server function, not a file).
fn wants_page(req: &Request) -> bool {
    req.method() == Method::GET
        && !req.uri().path().starts_with("/api/")
        && req.headers().get(header::ACCEPT).and_then(|a| a.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

/// A server function's form fields, as the gate read them (the job tracker reads `job`).
#[derive(Clone, Debug)]
pub struct FormFields(pub Vec<(String, String)>);

/// The largest server-function body the gate reads to find the resource it names.
const MAX_FORM_BYTES: usize = 2 << 20;

/// The middleware: resolve the caller, check the route's rule, record audited actions.
pub async fn gate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match gate_inner(state, req, next).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn gate_inner(state: AppState, mut req: Request, next: Next) -> Result<Response, ApiError> {
    let address = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
    req.extensions_mut().insert(ClientAddr(address.clone()));
    let path = req.uri().path().to_string();
    let matched = policy::find(req.method().as_str(), &path);
    let team = state.auth.team_mode(&state).await?;
    let (caller, account_id) = if team {
        match resolve(&state, req.headers()).await? {
            Ok(c) => c,
            Err(Refusal::BadToken) => return Err(ApiError::Unauthorized("the API token is not valid (unknown, expired, revoked or its account disabled)".into())),
            Err(Refusal::ShareGone) if matched.as_ref().is_some_and(|m| m.rule.need.is_some()) => {
                return Ok(handlers::gone_page("This share link has been revoked or has expired. Ask its author for a new one."));
            }
            Err(Refusal::ShareGone) => (Caller::anonymous(), None),
        }
    } else {
        (Caller::open(), None)
    };
    // No rule: a GET falls through to the static files / not-found page for accounts; any other
    // method is refused (a route added without a rule is closed, and the matrix test fails).
    let (need, audit, params) = match &matched {
        Some(m) => (m.rule.need, m.rule.audit, m.params.clone()),
        None if req.method() == Method::GET || req.method() == Method::HEAD => {
            (Some(Need { perm: Perm::Read, on: Target::Instance, scope: strata_app::model::Scope::Read, account: true }), None, vec![])
        }
        None => return Err(ApiError::Forbidden(format!("{} {path} has no access rule", req.method()))),
    };
    let query = req.uri().query().unwrap_or("").to_string();
    let mut found = vec![Resource::Instance];
    if let Some(need) = &need {
        let needs_form = matches!(need.on, Target::Run(Src::Form(_) | Src::FormQuery(..)) | Target::Project(Src::Form(_)) | Target::Share(Src::Form(_)))
            || matches!(need.on, Target::Runs(srcs) if srcs.iter().any(|s| matches!(s, Src::Form(_) | Src::FormQuery(..))));
        let mut form = Vec::new();
        if needs_form {
            let (parts, body) = req.into_parts();
            let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES).await.map_err(|_| ApiError::TooLarge("the request body is too large".into(), serde_json::Value::Null))?;
            form = form_urlencoded::parse(&bytes).into_owned().collect();
            req = Request::from_parts(parts, Body::from(bytes));
        }
        found = resources(&state, need.on, &params, &query, &form).await?;
        if !allowed(&caller, need, &found) {
            return Ok(refuse(&caller, &req, need));
        }
        if needs_form {
            req.extensions_mut().insert(FormFields(form));
        }
    }
    req.extensions_mut().insert(caller.clone());
    if let Some(id) = account_id {
        req.extensions_mut().insert(AccountId(id));
    }
    let response = next.run(req).await;
    if let Some(action) = audit
        && (response.status().is_success() || response.status().is_redirection())
    {
        let target = response.extensions().get::<AuditTarget>().map(|t| t.0.clone()).or_else(|| found.iter().filter_map(Resource::describe).next());
        if let Err(e) = state.store.audit(&actor(&caller), action, target.as_deref(), None, address.as_deref()).await {
            tracing::warn!(error = %crate::service::error_chain(&e), action, "could not write the audit log");
        }
    }
    Ok(response)
}

/// The answer to a refused request: sign in (pages redirect to the sign-in page), or 403.
fn refuse(caller: &Caller, req: &Request, need: &Need) -> Response {
    let signed_out = caller.kind == CallerKind::Anonymous;
    if signed_out && wants_page(req) {
        let next = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let to = format!("/login?next={}", form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>());
        return (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response();
    }
    if signed_out {
        return ApiError::Unauthorized("sign in or send an API token (Authorization: Bearer …)".into()).into_response();
    }
    let what = match (caller.kind, need.account) {
        (CallerKind::Share, _) => "a share link opens only its own run's views, read-only".to_string(),
        (_, true) if !caller.is_account() => "this needs a signed-in account".to_string(),
        (CallerKind::Token, _) => format!("this needs {} permission and a token with the '{}' scope", need.perm.as_str(), need.scope.as_str()),
        _ => format!("this needs {} permission", need.perm.as_str()),
    };
    if wants_page(req) {
        return handlers::message_page(StatusCode::FORBIDDEN, "Not allowed", &format!("You cannot open this page: {what}."));
    }
    ApiError::Forbidden(what).into_response()
}
