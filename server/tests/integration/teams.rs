//! Teams: the authorization matrix (every route × every kind of caller, on both databases),
//! sign-in and its rate limit, sessions, tokens, share links, reviews and sign-off, the audit
//! log, CSRF and title injection in team mode.
//!
//! The matrix's expectations are written here, independently of the server's route table
//! (`auth::policy::RULES`): a route added to the server without a rule, or with a rule but no
//! expectation here, fails `every_route_has_a_rule_and_an_expectation`.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use strata_app::model::{Grant, NewShare, NewToken, NewUser, Scope, UserRole};
use strata_server::auth::{new_secret, policy};

use crate::helpers::TestApp;
use crate::on_both_databases;

const PASSWORD: &str = "correct horse battery staple";

/// A small binary run: 400 rows, a score that is better for one sex, an age.
fn csv() -> Vec<u8> {
    let mut out = String::from("label,score,sex,age\n");
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..400 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let u = (state >> 11) as f64 / (1u64 << 53) as f64;
        let label = i % 3 == 0;
        let sex = if i % 2 == 0 { "F" } else { "M" };
        let signal = if label { 0.65 } else { 0.35 };
        let score = if sex == "F" { 0.6 * signal + 0.4 * u } else { 0.3 * signal + 0.7 * u };
        out.push_str(&format!("{},{score:.4},{sex},{}\n", u8::from(label), 20 + i % 50));
    }
    out.into_bytes()
}

/// Who sends a request in the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Anonymous,
    Viewer,
    Editor,
    Admin,
    /// A viewer with an edit grant on project p1 (run A's project).
    Granted,
    TokenRead,
    TokenWrite,
    TokenValidate,
    TokenAdmin,
    /// A share link to run A.
    Share,
}

const EVERYONE: [Who; 10] =
    [Who::Anonymous, Who::Viewer, Who::Editor, Who::Admin, Who::Granted, Who::TokenRead, Who::TokenWrite, Who::TokenValidate, Who::TokenAdmin, Who::Share];

/// The test's own statement of who may call a route (on run A / project p1).
fn allowed(class: &str, who: Who) -> bool {
    use Who::*;
    match class {
        // Anyone, signed in or not.
        "public" => true,
        // Read run A / project p1: every account, every token, run A's share link.
        "read" => who != Anonymous,
        // Read, but accounts only: not run A's share link (the instance's lists, project p1's
        // pages, a model file).
        "account-read" => !matches!(who, Anonymous | Share),
        // Edit on run A (p1), or edit somewhere (upload): editors, admins, p1's grant, write tokens.
        "edit" => matches!(who, Editor | Admin | Granted | TokenWrite | TokenAdmin),
        // Validate on p1: as edit, plus a validate-scoped token.
        "validate" => matches!(who, Editor | Admin | Granted | TokenWrite | TokenValidate | TokenAdmin),
        // Manage on run A / p1: admins (the tokens belong to an admin).
        "manage" => matches!(who, Admin | TokenWrite | TokenAdmin),
        // The instance's administration.
        "admin" => matches!(who, Admin | TokenAdmin),
        // A review: an account that can read the run; tokens need the write scope.
        "review" => matches!(who, Viewer | Editor | Admin | Granted | TokenWrite | TokenAdmin),
        // The account's own tokens and sessions: people, and admin-scoped tokens.
        "own" => matches!(who, Viewer | Editor | Admin | Granted | TokenAdmin),
        other => panic!("unknown class {other}"),
    }
}

/// Every route and its class. Paths as in the server's route table.
fn expectations() -> BTreeMap<(&'static str, &'static str), &'static str> {
    let rows: &[(&str, &str, &str)] = &[
        ("GET", "/healthz", "public"),
        ("GET", "/api/v1/openapi.json", "public"),
        ("GET", "/api/v1/metric-registry", "public"),
        ("GET", "/pkg/{*file}", "public"),
        ("GET", "/vendor/{*file}", "public"),
        ("GET", "/charts.js", "public"),
        ("GET", "/favicon.svg", "public"),
        ("GET", "/login", "public"),
        ("POST", "/auth/login", "public"),
        ("POST", "/auth/logout", "public"),
        ("GET", "/s/{token}", "public"),
        ("POST", "/s/{token}", "public"),
        ("GET", "/api/v1/me", "public"),
        ("GET", "/auth/oidc/login", "public"),
        ("GET", "/auth/oidc/callback", "public"),
        ("POST", "/api/sign_in_options", "public"),
        ("POST", "/api/who_am_i", "public"),
        ("GET", "/", "account-read"),
        ("GET", "/upload", "edit"),
        ("GET", "/runs/{id}", "read"),
        ("GET", "/runs/{id}/slices", "read"),
        ("GET", "/runs/{id}/residuals", "read"),
        ("GET", "/runs/{id}/discover", "read"),
        ("GET", "/runs/{id}/fairness", "read"),
        ("GET", "/runs/{id}/whatif", "read"),
        ("GET", "/runs/{id}/drift", "read"),
        ("GET", "/compare", "read"),
        ("GET", "/projects/{p}", "account-read"),
        ("GET", "/alerts", "account-read"),
        ("GET", "/admin", "admin"),
        ("GET", "/account", "account-read"),
        ("GET", "/runs/{id}/fairness/export", "read"),
        ("GET", "/compare/export", "read"),
        ("GET", "/api/v1/runs", "account-read"),
        ("POST", "/api/v1/runs", "edit"),
        ("POST", "/api/v1/preview", "edit"),
        ("GET", "/api/v1/runs/{id}", "read"),
        ("DELETE", "/api/v1/runs/{id}", "manage"),
        ("PATCH", "/api/v1/runs/{id}", "edit"),
        ("GET", "/api/v1/runs/{id}/examples", "read"),
        ("GET", "/api/v1/runs/{id}/attachments/{name}", "account-read"),
        ("GET", "/api/v1/runs/{id}/metrics", "read"),
        ("GET", "/api/v1/runs/{id}/fairness", "read"),
        ("GET", "/api/v1/compare", "read"),
        ("PUT", "/api/v1/runs/{id}/fairness/limits", "edit"),
        ("GET", "/api/v1/runs/{id}/residuals", "read"),
        ("GET", "/api/v1/runs/{id}/discover", "read"),
        ("GET", "/api/v1/runs/{id}/drift", "read"),
        ("GET", "/api/v1/runs/{id}/stream-drift", "read"),
        ("GET", "/api/v1/runs/{id}/validation", "read"),
        ("POST", "/api/v1/runs/{id}/predict", "read"),
        ("GET", "/api/v1/runs/{id}/pdp", "read"),
        ("GET", "/api/v1/runs/{id}/counterfactual", "read"),
        ("POST", "/api/v1/runs/{id}/attacks", "read"),
        ("POST", "/api/v1/runs/{id}/adversarial", "read"),
        ("GET", "/api/v1/runs/{id}/attributions", "read"),
        ("GET", "/api/v1/runs/{id}/whatif-examples", "read"),
        ("POST", "/api/v1/runs/{id}/whatif-examples", "edit"),
        ("DELETE", "/api/v1/runs/{id}/whatif-examples/{name}", "edit"),
        ("POST", "/api/v1/runs/{id}/benchmark", "edit"),
        ("POST", "/api/v1/runs/{id}/models", "edit"),
        ("GET", "/api/v1/runs/{id}/models", "read"),
        ("GET", "/api/v1/runs/{id}/importance", "read"),
        ("GET", "/api/v1/runs/{id}/endpoints", "read"),
        ("PUT", "/api/v1/runs/{id}/endpoints", "manage"),
        ("POST", "/api/v1/runs/{id}/endpoints/{name}/test", "read"),
        ("GET", "/api/v1/projects", "account-read"),
        ("GET", "/api/v1/projects/{p}", "account-read"),
        ("GET", "/api/v1/projects/{p}/gates", "account-read"),
        ("PUT", "/api/v1/projects/{p}/gates", "manage"),
        ("GET", "/api/v1/projects/{p}/rules", "account-read"),
        ("PUT", "/api/v1/projects/{p}/rules", "manage"),
        ("POST", "/api/v1/runs/{id}/rules-impact", "read"),
        ("GET", "/api/v1/projects/{p}/slices", "account-read"),
        ("PUT", "/api/v1/projects/{p}/slices/{name}", "edit"),
        ("DELETE", "/api/v1/projects/{p}/slices/{name}", "edit"),
        ("POST", "/api/v1/projects/{p}/runs/{id}/validate", "validate"),
        ("GET", "/api/v1/projects/{p}/approvals", "account-read"),
        ("PUT", "/api/v1/projects/{p}/approvals", "manage"),
        ("PUT", "/api/v1/projects/{p}/grants/{user}", "manage"),
        ("GET", "/api/v1/alerts", "account-read"),
        ("GET", "/api/v1/alerts/webhook", "admin"),
        ("PUT", "/api/v1/alerts/webhook", "admin"),
        ("GET", "/api/v1/runs/{id}/reviews", "read"),
        ("POST", "/api/v1/runs/{id}/reviews", "review"),
        ("GET", "/api/v1/runs/{id}/shares", "edit"),
        ("POST", "/api/v1/runs/{id}/shares", "edit"),
        ("POST", "/api/v1/projects/{p}/shares", "edit"),
        ("GET", "/api/v1/shares", "account-read"),
        ("DELETE", "/api/v1/shares/{sid}", "edit"),
        ("POST", "/api/v1/me/sign-out-everywhere", "own"),
        ("GET", "/api/v1/tokens", "account-read"),
        ("POST", "/api/v1/tokens", "own"),
        ("DELETE", "/api/v1/tokens/{tid}", "own"),
        ("GET", "/api/v1/users", "admin"),
        ("POST", "/api/v1/users", "admin"),
        ("PATCH", "/api/v1/users/{name}", "admin"),
        ("POST", "/api/v1/users/{name}/tokens", "admin"),
        ("GET", "/api/v1/audit", "admin"),
        ("GET", "/api/v1/jobs/{job}", "account-read"),
        ("DELETE", "/api/v1/jobs/{job}", "account-read"),
        ("POST", "/api/list_runs", "account-read"),
        ("POST", "/api/list_projects", "account-read"),
        ("POST", "/api/get_run_overview", "read"),
        ("POST", "/api/get_examples", "read"),
        ("POST", "/api/get_slice_view", "read"),
        ("POST", "/api/get_residuals_view", "read"),
        ("POST", "/api/get_discovery_view", "read"),
        ("POST", "/api/get_fairness_view", "read"),
        ("POST", "/api/get_whatif_view", "read"),
        ("POST", "/api/get_whatif_example", "read"),
        ("POST", "/api/get_whatif_pdp", "read"),
        ("POST", "/api/get_drift_view", "read"),
        ("POST", "/api/get_review_state", "read"),
        ("POST", "/api/get_run_endpoints", "read"),
        ("POST", "/api/test_run_endpoint", "read"),
        ("POST", "/api/get_model_cards", "read"),
        ("POST", "/api/save_fairness_limits", "edit"),
        ("POST", "/api/train_benchmark", "edit"),
        ("POST", "/api/save_what_if", "edit"),
        ("POST", "/api/delete_what_if", "edit"),
        ("POST", "/api/add_review", "review"),
        ("POST", "/api/create_share", "edit"),
        ("POST", "/api/create_project_share", "edit"),
        ("POST", "/api/get_run_shares", "edit"),
        ("POST", "/api/revoke_share", "edit"),
        ("POST", "/api/get_project_view", "account-read"),
        ("POST", "/api/validate_run", "validate"),
        ("POST", "/api/preview_rules", "account-read"),
        ("POST", "/api/save_rules", "manage"),
        ("POST", "/api/save_gates", "manage"),
        ("POST", "/api/get_named_slices", "account-read"),
        ("POST", "/api/save_named_slice", "edit"),
        ("POST", "/api/get_alerts_view", "account-read"),
        ("POST", "/api/set_webhook", "admin"),
        ("POST", "/api/get_admin_view", "admin"),
        ("POST", "/api/get_account_view", "account-read"),
        ("POST", "/api/create_personal_token", "own"),
        ("POST", "/api/delete_personal_token", "own"),
        ("POST", "/api/sign_out_everywhere", "own"),
        ("POST", "/api/add_user", "admin"),
        ("POST", "/api/set_user", "admin"),
    ];
    let mut out = BTreeMap::new();
    for (m, p, c) in rows {
        assert!(out.insert((*m, *p), *c).is_none(), "{m} {p} twice in the expectations");
    }
    out
}

/// Every route the server has: the API (OpenAPI), the pages (Leptos), the server functions,
/// and the routes outside both (sign-in, share links, exports, assets) from the route table.
#[tokio::test]
async fn every_route_has_a_rule_and_an_expectation() {
    // (A tokio test: listing the pages renders the route tree, which spawns on the runtime.)
    let expected = expectations();
    let mut routes: Vec<(String, String)> = Vec::new();
    for (path, item) in strata_server::api::openapi().paths.paths {
        for (method, op) in [("GET", &item.get), ("POST", &item.post), ("PUT", &item.put), ("PATCH", &item.patch), ("DELETE", &item.delete)] {
            if op.is_some() {
                routes.push((method.to_string(), path.clone()));
            }
        }
    }
    routes.push(("GET".into(), "/api/v1/openapi.json".into()));
    for r in leptos_axum::generate_route_list(strata_app::App) {
        // Leptos paths (`/runs/:id` or `/runs/{id}`) as axum writes them.
        let path = r.path().split('/').map(|s| s.strip_prefix(':').map(|p| format!("{{{p}}}")).unwrap_or_else(|| s.to_string())).collect::<Vec<_>>().join("/");
        routes.push(("GET".into(), if path.is_empty() { "/".into() } else { path }));
    }
    for (path, method) in leptos::server_fn::axum::server_fn_paths() {
        routes.push((method.to_string(), path.to_string()));
    }
    assert!(routes.len() > 60, "the route sources look empty: {routes:?}");
    for (method, path) in &routes {
        let probe = path.replace("{*file}", "x.js").split('/').map(|s| if s.starts_with('{') { "x" } else { s }).collect::<Vec<_>>().join("/");
        let m = policy::find(method, if probe.is_empty() { "/" } else { &probe }).unwrap_or_else(|| panic!("{method} {path} has no rule in auth::policy::RULES"));
        assert_eq!(m.rule.path, path, "{method} {path} is matched by the rule for {} instead of its own", m.rule.path);
        assert!(expected.contains_key(&(method.as_str(), path.as_str())), "{method} {path} has no expectation in this test's matrix");
    }
    for r in policy::RULES {
        assert!(expected.contains_key(&(r.method, r.path)), "the rule {} {} has no expectation in this test's matrix", r.method, r.path);
    }
    for (method, path) in expected.keys() {
        assert!(policy::RULES.iter().any(|r| r.method == *method && r.path == *path), "the expectation {method} {path} has no rule (a route removed?)");
    }
}

/// The people, tokens, runs and links of a team scenario.
struct Team {
    run_a: String,
    run_b: String,
    tokens: BTreeMap<Who, String>,
    share_secret: String,
    spare_share: String,
}

async fn account(app: &TestApp, name: &str, role: UserRole) {
    app.state.create_user(NewUser { name: name.into(), role, password: Some(PASSWORD.into()), service: false }).await.unwrap();
}

/// A fresh session cookie for an account (as a sign-in would make).
async fn session(app: &TestApp, name: &str) -> String {
    let a = app.state.store.account_by_name(name).await.unwrap().unwrap();
    let (sid, hash) = new_secret("");
    let expires = strata_server::store::projects::stamp(chrono::Utc::now() + chrono::Duration::days(1));
    app.state.store.create_session(&hash, &a.id, &expires).await.unwrap();
    format!("strata_session={sid}")
}

async fn token(app: &TestApp, user: &str, scopes: &[Scope]) -> String {
    let a = app.state.store.account_by_name(user).await.unwrap().unwrap();
    app.state.create_token(&a.id, user, NewToken { name: format!("{scopes:?}"), scopes: scopes.to_vec(), expires_in_days: Some(1) }).await.unwrap().token
}

fn bearer(t: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {t}"))
}

async fn upload_as(app: &TestApp, auth: &(&'static str, String), name: &str, project: &str) -> String {
    let boundary = "strata-team-boundary";
    let body = crate::helpers::multipart(boundary, &json!({"name": name, "label": "label", "scores": ["score"], "project": project}), "t.csv", &csv(), &[]);
    let req = Request::post("/api/v1/runs").header("content-type", format!("multipart/form-data; boundary={boundary}")).header(auth.0, &auth.1).body(Body::from(body)).unwrap();
    let (s, b) = app.request(req).await;
    assert_eq!(s, StatusCode::CREATED, "{}", String::from_utf8_lossy(&b));
    serde_json::from_slice::<Value>(&b).unwrap()["id"].as_str().unwrap().to_string()
}

async fn team(app: &TestApp) -> Team {
    account(app, "ada", UserRole::Admin).await;
    account(app, "eve", UserRole::Editor).await;
    account(app, "vic", UserRole::Viewer).await;
    account(app, "gus", UserRole::Viewer).await;
    let gus = app.state.store.account_by_name("gus").await.unwrap().unwrap();
    app.state.store.set_grant("p1", &gus.id, Some(Grant::Edit)).await.unwrap();
    let mut tokens = BTreeMap::new();
    tokens.insert(Who::TokenRead, token(app, "ada", &[Scope::Read]).await);
    tokens.insert(Who::TokenWrite, token(app, "ada", &[Scope::Write]).await);
    tokens.insert(Who::TokenValidate, token(app, "ada", &[Scope::Validate]).await);
    tokens.insert(Who::TokenAdmin, token(app, "ada", &[Scope::Admin]).await);
    let admin = bearer(&tokens[&Who::TokenAdmin]);
    let run_a = upload_as(app, &admin, "run A", "p1").await;
    let run_b = upload_as(app, &admin, "run B", "p2").await;
    let share = app.state.create_share("eve", Some(&run_a), None, NewShare { view: Some(format!("/runs/{run_a}/fairness")), ..Default::default() }).await.unwrap();
    let spare = app.state.create_share("eve", Some(&run_a), None, NewShare::default()).await.unwrap();
    Team { run_a, run_b, tokens, share_secret: share.path.trim_start_matches("/s/").to_string(), spare_share: spare.info.id }
}

/// The headers that make a request come from `who`.
async fn credentials(app: &TestApp, t: &Team, who: Who) -> Vec<(&'static str, String)> {
    match who {
        Who::Anonymous => vec![],
        Who::Viewer => vec![("cookie", session(app, "vic").await)],
        Who::Editor => vec![("cookie", session(app, "eve").await)],
        Who::Admin => vec![("cookie", session(app, "ada").await)],
        Who::Granted => vec![("cookie", session(app, "gus").await)],
        Who::Share => vec![("cookie", format!("strata_share={}", t.share_secret))],
        tok => vec![bearer(&t.tokens[&tok])],
    }
}

/// A request to `path` (its parameters filled for run `run`) with a body that gets past the gate.
fn request(method: &str, path: &str, run: &str, t: &Team, headers: &[(&'static str, String)]) -> Request<Body> {
    let mut uri = path
        .replace("{id}", run)
        .replace("{p}", "p1")
        .replace("{user}", "vic")
        .replace("{name}", if path.starts_with("/api/v1/users") { "nobody" } else { "x" })
        .replace("{sid}", &t.spare_share)
        .replace("{tid}", "no-such-token")
        .replace("{job}", "no-such-job")
        .replace("{token}", &t.share_secret)
        .replace("{*file}", "strata.css");
    if uri.starts_with("/compare") || uri == "/api/v1/compare" {
        uri.push_str(&format!("?runs={run}"));
    }
    let (content_type, body) = if path.starts_with("/api/") && !path.starts_with("/api/v1/") {
        // A server function: one form that names run A, project p1 and harmless values.
        let form = format!(
            "id={run}&ids[0]={run}&query=&project=p1&name=nobody&example=0&edits=&limits=&offset=0&limit=1&url=&verdict=comment&comment=matrix&view=/runs/{run}&expires_in_days=1&password=&sid={}&role=&disabled=false",
            t.spare_share
        );
        ("application/x-www-form-urlencoded", form)
    } else if path == "/auth/login" {
        ("application/x-www-form-urlencoded", "name=nobody&password=wrong".to_string())
    } else if path == "/s/{token}" {
        ("application/x-www-form-urlencoded", "password=".to_string())
    } else if path == "/api/v1/runs/{id}" && method == "PATCH" {
        ("application/json", json!({"project": "p1"}).to_string())
    } else if path.ends_with("/grants/{user}") {
        ("application/json", json!({"grant": "read"}).to_string())
    } else if path == "/api/v1/alerts/webhook" {
        ("application/json", "null".to_string())
    } else if method == "GET" || method == "DELETE" {
        ("", String::new())
    } else {
        // Any other body: the gate decides before the handler reads it; `{}` is refused (400/422)
        // by the handlers that need more, after the gate let it through.
        ("application/json", "{}".to_string())
    };
    let mut b = Request::builder().method(method).uri(uri).header("accept", "text/html,application/json");
    if !content_type.is_empty() {
        b = b.header("content-type", content_type);
    }
    for (k, v) in headers {
        b = b.header(*k, v);
    }
    b.body(Body::from(body)).unwrap()
}

/// Whether the gate refused: 401, 403, or a page's redirect to the sign-in form.
fn refused(status: StatusCode, body: &[u8], location_login: bool) -> bool {
    let _ = body;
    status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN || (status == StatusCode::SEE_OTHER && location_login)
}

async fn send(app: &TestApp, req: Request<Body>) -> (StatusCode, Vec<u8>, bool) {
    let res = tower::ServiceExt::oneshot(app.router.clone(), req).await.unwrap();
    let status = res.status();
    let login = res.headers().get("location").and_then(|l| l.to_str().ok()).is_some_and(|l| l.starts_with("/login"));
    let body = http_body_util::BodyExt::collect(res.into_body()).await.unwrap().to_bytes().to_vec();
    (status, body, login)
}

async fn authorization_matrix(app: TestApp) {
    let t = team(&app).await;
    let expected = expectations();
    let mut failures = Vec::new();
    for rule in policy::RULES {
        let class = expected[&(rule.method, rule.path)];
        for who in EVERYONE {
            // Deleting a run: each caller gets a run of its own in p1 to delete.
            let run = if rule.method == "DELETE" && rule.path == "/api/v1/runs/{id}" {
                upload_as(&app, &bearer(&t.tokens[&Who::TokenAdmin]), "doomed", "p1").await
            } else {
                t.run_a.clone()
            };
            let headers = credentials(&app, &t, who).await;
            let (status, body, login) = send(&app, request(rule.method, rule.path, &run, &t, &headers)).await;
            // The gate sends only a page (a GET) to the sign-in form; a POST's redirect there
            // (signing out, a wrong password) is that route's own answer.
            let was_refused = refused(status, &body, login && rule.method == "GET");
            if was_refused == allowed(class, who) {
                failures.push(format!("{} {} as {who:?}: {status} ({class}) {}", rule.method, rule.path, String::from_utf8_lossy(&body).chars().take(160).collect::<String>()));
            }
            if was_refused && who == Who::Anonymous && !login {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{} {}: anonymous callers are asked to sign in", rule.method, rule.path);
            }
        }
    }
    assert!(failures.is_empty(), "{} cell(s) of the matrix are wrong:\n{}", failures.len(), failures.join("\n"));

    // The same routes on run B (project p2): the share link and p1's grant do not reach it.
    for rule in policy::RULES.iter().filter(|r| r.path.contains("{id}") && !r.path.contains("{p}")) {
        let class = expected[&(rule.method, rule.path)];
        if rule.method == "DELETE" && rule.path == "/api/v1/runs/{id}" {
            continue;
        }
        let share = credentials(&app, &t, Who::Share).await;
        let (status, body, login) = send(&app, request(rule.method, rule.path, &t.run_b, &t, &share)).await;
        assert!(refused(status, &body, login), "{} {} on run B with run A's link: {status}", rule.method, rule.path);
        if class == "edit" {
            let gus = credentials(&app, &t, Who::Granted).await;
            let (status, body, login) = send(&app, request(rule.method, rule.path, &t.run_b, &t, &gus)).await;
            assert!(refused(status, &body, login), "{} {} on run B by p1's editor: {status}", rule.method, rule.path);
        }
    }
    // A comparison needs every run: run A's link cannot pull run B in beside it.
    let share = credentials(&app, &t, Who::Share).await;
    let uri = format!("/api/v1/compare?runs={},{}", t.run_a, t.run_b);
    let (status, _, _) = send(&app, request("GET", "/api/v1/compare", &t.run_a, &t, &share).map(|_| Body::empty()).map_uri(&uri)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// `Request::map_uri` for the one test that needs a hand-made query.
trait MapUri {
    fn map_uri(self, uri: &str) -> Request<Body>;
}
impl MapUri for Request<Body> {
    fn map_uri(self, uri: &str) -> Request<Body> {
        let (mut parts, body) = self.into_parts();
        parts.uri = uri.parse().unwrap();
        Request::from_parts(parts, body)
    }
}

mod matrix {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let run = async { super::authorization_matrix(crate::helpers::TestApp::sqlite().await).await };
        tokio::time::timeout(std::time::Duration::from_secs(900), run).await.expect("the matrix on SQLite is stuck")
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let run = async { super::authorization_matrix(crate::helpers::TestApp::postgres().await).await };
        tokio::time::timeout(std::time::Duration::from_secs(900), run).await.expect("the matrix on PostgreSQL is stuck")
    }
}

fn form(uri: &str, body: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::post(uri).header("content-type", "application/x-www-form-urlencoded");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::from(body.to_string())).unwrap()
}

fn from(addr: &str, mut req: Request<Body>) -> Request<Body> {
    req.extensions_mut().insert(axum::extract::ConnectInfo::<std::net::SocketAddr>(addr.parse().unwrap()));
    req
}

fn set_cookie(res: &axum::response::Response) -> Option<String> {
    res.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find(|c| c.starts_with("strata_session=") || c.starts_with("strata_share=")).map(str::to_string)
}

/// Sign-in, sessions, sign-out, sign-out everywhere, a disabled account, and the rate limit
/// per account and per address.
async fn sign_in_sessions_and_rate_limit(app: TestApp) {
    account(&app, "ada", UserRole::Admin).await;
    account(&app, "vic", UserRole::Viewer).await;
    // Team mode: nothing without a sign-in.
    let (s, _) = app.get_json("/api/v1/runs").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let res = tower::ServiceExt::oneshot(app.router.clone(), Request::get("/runs/x").header("accept", "text/html").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/login?next=%2Fruns%2Fx");

    // A good sign-in: an HttpOnly, SameSite=Lax session cookie and a redirect to `next` (only a
    // path on this site: an absolute URL goes home instead).
    let body = format!("name=vic&password={}&next=%2Fruns%2Fx", PASSWORD.replace(' ', "+"));
    let res = tower::ServiceExt::oneshot(app.router.clone(), from("10.0.0.1:5000", form("/auth/login", &body, &[]))).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/runs/x");
    let cookie = set_cookie(&res).expect("a session cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_string();
    let me = |cookie: String| {
        let app = &app;
        async move {
            let (s, b) = app.request(Request::get("/api/v1/me").header("cookie", cookie).body(Body::empty()).unwrap()).await;
            assert_eq!(s, StatusCode::OK);
            serde_json::from_slice::<Value>(&b).unwrap()
        }
    };
    let who = me(session.clone()).await;
    assert_eq!((who["kind"].as_str(), who["name"].as_str(), who["role"].as_str()), (Some("user"), Some("vic"), Some("viewer")));
    let evil = format!("name=vic&password={}&next=https%3A%2F%2Fevil.example", PASSWORD.replace(' ', "+"));
    let res = tower::ServiceExt::oneshot(app.router.clone(), form("/auth/login", &evil, &[])).await.unwrap();
    assert_eq!(res.headers()["location"], "/", "no open redirect");

    // Sign-out ends that session; sign-out everywhere ends the others.
    let res = tower::ServiceExt::oneshot(app.router.clone(), form("/auth/logout", "", &[("cookie", &session)])).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(me(session.clone()).await["kind"], "anonymous");
    let (a, b) = (crate::teams::session(&app, "vic").await, crate::teams::session(&app, "vic").await);
    let (s, n) = app.request(Request::post("/api/v1/me/sign-out-everywhere").header("cookie", &a).body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    // Three: these two and the one the open-redirect attempt above signed in.
    assert_eq!(String::from_utf8_lossy(&n), "3");
    assert_eq!(me(b).await["kind"], "anonymous");

    // A disabled account cannot sign in, and its sessions and tokens stop working.
    let c = crate::teams::session(&app, "vic").await;
    let tok = token(&app, "vic", &[Scope::Read]).await;
    app.state.update_user("vic", strata_app::model::UserPatch { disabled: Some(true), ..Default::default() }).await.unwrap();
    assert_eq!(me(c).await["kind"], "anonymous");
    let (s, _) = app.request(Request::get("/api/v1/runs").header("authorization", format!("Bearer {tok}")).body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    app.state.update_user("vic", strata_app::model::UserPatch { disabled: Some(false), ..Default::default() }).await.unwrap();

    // Five wrong passwords lock the account for a while, from any address, even with the right
    // password; other accounts from the same address still sign in.
    for i in 0..5 {
        let res = tower::ServiceExt::oneshot(app.router.clone(), from(&format!("10.0.1.{i}:5000"), form("/auth/login", "name=vic&password=wrong", &[]))).await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert!(res.headers()["location"].to_str().unwrap().contains("error=1"));
    }
    let right = format!("name=vic&password={}", PASSWORD.replace(' ', "+"));
    let res = tower::ServiceExt::oneshot(app.router.clone(), from("10.0.2.1:5000", form("/auth/login", &right, &[]))).await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    let ada = format!("name=ada&password={}", PASSWORD.replace(' ', "+"));
    let res = tower::ServiceExt::oneshot(app.router.clone(), from("10.0.1.0:5000", form("/auth/login", &ada, &[]))).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(set_cookie(&res).is_some());
    // Twenty failures from one address (any names) lock that address, not others.
    for i in 0..20 {
        let body = format!("name=guess{i}&password=wrong");
        let res = tower::ServiceExt::oneshot(app.router.clone(), from("10.9.9.9:5000", form("/auth/login", &body, &[]))).await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "attempt {i}");
    }
    let res = tower::ServiceExt::oneshot(app.router.clone(), from("10.9.9.9:5000", form("/auth/login", &ada, &[]))).await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let res = tower::ServiceExt::oneshot(app.router.clone(), from("10.9.9.8:5000", form("/auth/login", &ada, &[]))).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    // The audit log has the sign-ins, the failures and the lock.
    let (s, log) = app.request(Request::get("/api/v1/audit?limit=500").header("cookie", crate::teams::session(&app, "ada").await).body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    let log: Vec<Value> = serde_json::from_slice(&log).unwrap();
    for action in ["sign_in", "sign_in.failed", "sign_in.locked", "sign_out"] {
        assert!(log.iter().any(|e| e["action"] == action), "no {action} in the audit log");
    }
    assert!(log.iter().any(|e| e["action"] == "sign_in.failed" && e["address"] == "10.9.9.9"));
}
on_both_databases!(sign_in_sessions_and_rate_limit);

/// A share link: opens exactly its view read-only, with the same numbers; other runs, lists and
/// edits are refused; a password protects it; revoked it answers 410.
async fn share_links_review_and_sign_off(app: TestApp) {
    let t = team(&app).await;
    let eve = session(&app, "eve").await;
    let send_json = |method: &str, uri: &str, cookie: &str, body: Value| {
        let req = Request::builder().method(method).uri(uri).header("content-type", "application/json").header("cookie", cookie).body(Body::from(body.to_string())).unwrap();
        let app = &app;
        async move {
            let (s, b) = app.request(req).await;
            (s, serde_json::from_slice::<Value>(&b).unwrap_or(Value::Null))
        }
    };
    let view = format!("/runs/{}/fairness?feature=sex&thresholds=0.5", t.run_a);
    let (s, made) = send_json("POST", &format!("/api/v1/runs/{}/shares", t.run_a), &eve, json!({"view": view, "expires_in_days": 7})).await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    let path = made["path"].as_str().unwrap().to_string();
    // A view outside the run is refused.
    let (s, _) = send_json("POST", &format!("/api/v1/runs/{}/shares", t.run_a), &eve, json!({"view": format!("/runs/{}", t.run_b)})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = send_json("POST", &format!("/api/v1/runs/{}/shares", t.run_a), &eve, json!({"view": "https://evil.example/"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Opening it: a cookie and a redirect to the view.
    let res = tower::ServiceExt::oneshot(app.router.clone(), Request::get(&path).body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], view.as_str());
    let link = set_cookie(&res).unwrap().split(';').next().unwrap().to_string();
    let with = |uri: String, cookie: String| Request::get(uri).header("cookie", cookie).body(Body::empty()).unwrap();
    let api = format!("/api/v1/runs/{}/fairness?feature=sex&thresholds=0.5", t.run_a);
    let (s, theirs) = app.request(with(api.clone(), link.clone())).await;
    assert_eq!(s, StatusCode::OK);
    let (_, ours) = app.request(with(api, eve.clone())).await;
    assert_eq!(theirs, ours, "the reviewer sees exactly the author's numbers");
    let (s, page) = app.request(with(view.clone(), link.clone())).await;
    assert_eq!(s, StatusCode::OK);
    assert!(String::from_utf8_lossy(&page).contains("Shared with you"), "the page says it is a read-only link");
    for uri in [format!("/api/v1/runs/{}", t.run_b), "/api/v1/runs".into(), format!("/runs/{}", t.run_b), "/".into(), "/alerts".into()] {
        let (s, _) = app.request(with(uri.clone(), link.clone())).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{uri}");
    }
    let del = Request::delete(format!("/api/v1/runs/{}", t.run_a)).header("cookie", &link).body(Body::empty()).unwrap();
    assert_eq!(app.request(del).await.0, StatusCode::FORBIDDEN);

    // Listed with its use; revoked → 410 (opening it, and its cookie).
    let (s, links) = send_json("GET", &format!("/api/v1/runs/{}/shares", t.run_a), &eve, Value::Null).await;
    assert_eq!(s, StatusCode::OK);
    let mine = links.as_array().unwrap().iter().find(|l| l["view"] == view.as_str()).unwrap().clone();
    assert_eq!(mine["opens"], 1);
    assert!(mine["last_opened"].is_string());
    let (s, _) = send_json("DELETE", &format!("/api/v1/shares/{}", mine["id"].as_str().unwrap()), &eve, Value::Null).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let res = tower::ServiceExt::oneshot(app.router.clone(), Request::get(&path).body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::GONE);
    let (s, _) = app.request(with(view.clone(), link.clone())).await;
    assert_eq!(s, StatusCode::GONE);

    // A password-protected link asks for it; a wrong one is refused.
    let (_, made) = send_json("POST", &format!("/api/v1/runs/{}/shares", t.run_a), &eve, json!({"password": "a long link password"})).await;
    let path = made["path"].as_str().unwrap().to_string();
    let (s, page) = app.request(Request::get(&path).body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    assert!(String::from_utf8_lossy(&page).contains("type=\"password\""));
    let (s, _) = app.request(form(&path, "password=nope", &[])).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let res = tower::ServiceExt::oneshot(app.router.clone(), form(&path, "password=a+long+link+password", &[])).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], format!("/runs/{}", t.run_a).as_str());

    // A project's link opens its page and its runs, not another project's.
    let (s, made) = send_json("POST", "/api/v1/projects/p1/shares", &eve, json!({})).await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    let res = tower::ServiceExt::oneshot(app.router.clone(), Request::get(made["path"].as_str().unwrap()).body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.headers()["location"], "/projects/p1");
    let plink = set_cookie(&res).unwrap().split(';').next().unwrap().to_string();
    for (uri, want) in [("/api/v1/projects/p1".to_string(), StatusCode::OK), (format!("/api/v1/runs/{}", t.run_a), StatusCode::OK), (format!("/api/v1/runs/{}", t.run_b), StatusCode::FORBIDDEN), ("/api/v1/projects/p2".to_string(), StatusCode::FORBIDDEN)] {
        assert_eq!(app.request(with(uri.clone(), plink.clone())).await.0, want, "{uri} with p1's link");
    }

    // Review and sign-off: p1 needs two approvals and passing gates.
    let ada = session(&app, "ada").await;
    let (s, _) = send_json("PUT", "/api/v1/projects/p1/approvals", &ada, json!({"required": 2})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, g) = send_json("PUT", "/api/v1/projects/p1/gates", &ada, json!({"gates": [{"metric": "auc_roc", "min": 0.5}]})).await;
    assert_eq!(s, StatusCode::OK, "{g}");
    let reviews = format!("/api/v1/runs/{}/reviews", t.run_a);
    let vic = session(&app, "vic").await;
    let fairness = format!("/runs/{}/fairness?feature=sex&thresholds=0.5", t.run_a);
    let (s, r) = send_json("POST", &reviews, &vic, json!({"verdict": "request_changes", "comment": "TPR gap for F?", "view": fairness})).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert!(r["preview"].as_str().unwrap().starts_with("sex · "), "{r}");
    let (s, _) = send_json("POST", &reviews, &vic, json!({"verdict": "approve", "view": format!("/runs/{}", t.run_b)})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a review's view is under its run");
    let (_, state) = send_json("GET", &reviews, &vic, Value::Null).await;
    assert_eq!(state["blessed"], false);
    assert_eq!(state["changes_requested_by"], json!(["vic"]));
    send_json("POST", &reviews, &vic, json!({"verdict": "approve", "comment": "explained: fine"})).await;
    let gus = session(&app, "gus").await;
    send_json("POST", &reviews, &gus, json!({"verdict": "approve"})).await;
    let (_, state) = send_json("GET", &reviews, &vic, Value::Null).await;
    assert_eq!(state["approved_by"], json!(["vic", "gus"]));
    assert_eq!(state["blessed"], false, "two approvals, but the gates have not passed yet: {state}");
    let (s, v) = app
        .request(Request::post(format!("/api/v1/projects/p1/runs/{}/validate", t.run_a)).header("authorization", format!("Bearer {}", t.tokens[&Who::TokenValidate])).body(Body::empty()).unwrap())
        .await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&v));
    let v: Value = serde_json::from_slice(&v).unwrap();
    assert_eq!(v["passed"], true, "{v}");
    assert_eq!(v["review"]["blessed"], true, "{v}");
    let (_, state) = send_json("GET", &reviews, &vic, Value::Null).await;
    assert_eq!(state["blessed"], true);
    assert_eq!(state["gates_passed"], true);
    // The run page shows it.
    let (_, page) = app.request(with(format!("/runs/{}", t.run_a), vic.clone())).await;
    let page = String::from_utf8_lossy(&page);
    assert!(page.contains("Blessed: 2 approval(s), gates passed"), "the run page shows the sign-off");
    assert!(page.contains("TPR gap for F?"));

    // The audit log records it all, with who did it.
    let (_, log) = send_json("GET", "/api/v1/audit?limit=1000", &ada, Value::Null).await;
    let log = log.as_array().unwrap();
    let has = |actor: &str, action: &str| log.iter().any(|e| e["actor"] == actor && e["action"] == action);
    assert!(has("eve", "share.create") && has("eve", "share.revoke") && has("vic", "run.review") && has("gus", "run.review"));
    assert!(has("ada", "project.gates") && has("ada", "project.approvals") && has("ada", "run.upload"));
    assert!(log.iter().any(|e| e["action"] == "share.open" && e["actor"].as_str().unwrap().starts_with("share:")));
}
on_both_databases!(share_links_review_and_sign_off);

/// Team mode keeps the web hygiene: a cross-site form post with a valid session cookie is
/// refused (sign-in, a review, a server function), and page titles stay escaped.
async fn csrf_and_titles_in_team_mode(app: TestApp) {
    let t = team(&app).await;
    let ada = session(&app, "ada").await;
    let evil = [("origin", "http://evil.example"), ("cookie", ada.as_str())];
    for (uri, body) in [
        ("/auth/login".to_string(), format!("name=ada&password={}", PASSWORD.replace(' ', "+"))),
        ("/api/add_review".to_string(), format!("id={}&verdict=approve&comment=&view=/runs/{}", t.run_a, t.run_a)),
        ("/api/set_webhook".to_string(), "url=http://evil.example/".to_string()),
        (format!("/s/{}", t.share_secret), "password=".to_string()),
    ] {
        let (s, b) = app.request(form(&uri, &body, &evil)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{uri}: {}", String::from_utf8_lossy(&b));
    }
    let (_, state) = app.request(Request::get(format!("/api/v1/runs/{}/reviews", t.run_a)).header("cookie", &ada).body(Body::empty()).unwrap()).await;
    assert_eq!(serde_json::from_slice::<Value>(&state).unwrap()["reviews"], json!([]), "the cross-site review was not recorded");

    // Titles from a URL or a run name cannot close <title>.
    let (s, page) = app.request(Request::get("/projects/%3C%2Ftitle%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E").header("cookie", &ada).body(Body::empty()).unwrap()).await;
    let page = String::from_utf8_lossy(&page);
    assert!(s.is_success() || s.is_client_error(), "{s}");
    assert!(!page.contains("<script>alert(1)</script>"), "the project name reached the page unescaped");
    let bad = upload_as(&app, &bearer(&t.tokens[&Who::TokenAdmin]), "</title><script>alert(2)</script>", "p1").await;
    let (_, page) = app.request(Request::get(format!("/runs/{bad}")).header("cookie", &ada).body(Body::empty()).unwrap()).await;
    let page = String::from_utf8_lossy(&page);
    assert!(!page.contains("<script>alert(2)</script>"), "the run name reached the page unescaped");
    assert!(page.contains("<title>"), "a page was rendered");
}
on_both_databases!(csrf_and_titles_in_team_mode);

/// A session ends after its idle time (and its cookie then counts for nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_end() {
    let app = TestApp::sqlite().await;
    account(&app, "vic", UserRole::Viewer).await;
    let config = strata_server::auth::AuthConfig { idle: std::time::Duration::from_secs(1), ..Default::default() };
    let dir = tempfile::tempdir().unwrap();
    let router = strata_server::router(app.state.clone().with_auth(config), strata_server::leptos_options(dir.path(), "127.0.0.1:0".parse().unwrap()));
    let cookie = session(&app, "vic").await;
    let me = |router: axum::Router, cookie: String| async move {
        let res = tower::ServiceExt::oneshot(router, Request::get("/api/v1/me").header("cookie", cookie).body(Body::empty()).unwrap()).await.unwrap();
        let body = http_body_util::BodyExt::collect(res.into_body()).await.unwrap().to_bytes();
        serde_json::from_slice::<Value>(&body).unwrap()["kind"].as_str().unwrap().to_string()
    };
    assert_eq!(me(router.clone(), cookie.clone()).await, "user");
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    assert_eq!(me(router.clone(), cookie.clone()).await, "anonymous");
    let (s, _) = app.request(Request::get("/api/v1/runs").header("cookie", cookie).body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "the expired session was deleted");
}

fn strata(data_dir: &std::path::Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_strata"));
    c.env_remove("DATABASE_URL").env_remove("STRATA_TOKEN").env("STRATA_DATA_DIR", data_dir).env("RUST_LOG", "warn");
    c
}

fn with_stdin(mut c: std::process::Command, input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// The command line: a non-loopback `serve` without accounts refuses to start and says how to
/// make the first admin; `users add` reads the password from standard input; a service account's
/// token works for `strata gates --server` through `STRATA_TOKEN`, within its scopes.
#[test]
fn first_admin_service_tokens_and_the_cli_remote_mode() {
    let dir = tempfile::tempdir().unwrap();
    let out = strata(dir.path()).args(["serve", "--no-demo", "--addr", &format!("0.0.0.0:{}", crate::helpers::free_port())]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to serve") && err.contains("strata users add NAME --role admin"), "{err}");

    let out = with_stdin({ let mut c = strata(dir.path()); c.args(["users", "add", "ann", "--role", "admin"]); c }, "short\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 10 characters"));
    let out = with_stdin({ let mut c = strata(dir.path()); c.args(["users", "add", "ann", "--role", "admin"]); c }, &format!("{PASSWORD}\n"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = strata(dir.path()).args(["users", "add", "ci-bot", "--role", "editor", "--service"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list = String::from_utf8(strata(dir.path()).args(["users", "list"]).output().unwrap().stdout).unwrap();
    assert!(list.lines().any(|l| l.starts_with("ann") && l.contains("admin") && l.contains("local")), "{list}");
    assert!(list.lines().any(|l| l.starts_with("ci-bot") && l.contains("editor") && l.contains("service")), "{list}");
    let token = |scope: &str| {
        let out = strata(dir.path()).args(["tokens", "create", "--user", "ci-bot", "--name", "pipeline", "--scope", scope]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let (validate, write) = (token("validate"), token("write"));
    assert!(validate.starts_with("strata_") && validate.len() > 40);

    // A server in team mode (an account exists), on loopback.
    let server = crate::helpers::start(dir.path());
    let url = format!("http://{}", server.addr);
    let gates = dir.path().join("gates.json");
    std::fs::write(&gates, r#"{"gates": [{"metric": "auc_roc", "min": 0.5}]}"#).unwrap();
    let put = |token: Option<&str>| {
        let mut c = strata(dir.path());
        c.args(["gates", "--project", "credit", "--server", &url, "--file"]).arg(&gates);
        if let Some(t) = token {
            c.env("STRATA_TOKEN", t);
        }
        c.output().unwrap()
    };
    let out = put(None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = put(Some(&validate));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("403"), "a validate token cannot change gates: {}", String::from_utf8_lossy(&out.stderr));
    // An editor's write token still cannot: gates need manage permission.
    let out = put(Some(&write));
    assert!(String::from_utf8_lossy(&out.stderr).contains("403"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = strata(dir.path()).args(["users", "grant", "ci-bot", "--project", "credit", "manage"]).output().unwrap();
    assert!(out.status.success());
    let out = put(Some(&write));
    assert!(out.status.success(), "with a manage grant on the project: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap()["version"], 1);
}
