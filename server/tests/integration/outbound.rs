//! Calls to addresses users pick (model endpoints, webhooks): the allow-list, private addresses,
//! redirects, answer size, the model name in the path, remote error bodies, and secrets at rest —
//! each against real listeners on loopback addresses.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode, Uri};
use serde_json::{Value, json};
use strata_server::outbound::Outbound;

use crate::helpers::TestApp;

/// A small binary run with two features, to attach endpoints to.
async fn small_run(app: &TestApp) -> String {
    let mut csv = String::from("id,label,score,age,sex\n");
    for i in 0..40 {
        csv.push_str(&format!("r{i},{},{},{},{}\n", i % 2, (i % 10) as f64 / 10.0, 20 + i, if i % 3 == 0 { "F" } else { "M" }));
    }
    let (s, b) = app.upload("small.csv", csv.as_bytes(), &json!({"name": "small", "label": "label", "scores": ["score"], "id": "id"}), &[]).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b["id"].as_str().unwrap().to_string()
}

fn send(method: &str, uri: String, body: Value) -> axum::http::Request<axum::body::Body> {
    axum::http::Request::builder().method(method).uri(uri).header("content-type", "application/json").body(axum::body::Body::from(body.to_string())).unwrap()
}

async fn put_endpoints(app: &TestApp, id: &str, list: Value) -> (StatusCode, String) {
    let (s, b) = app.request(send("PUT", format!("/api/v1/runs/{id}/endpoints"), list)).await;
    (s, String::from_utf8_lossy(&b).to_string())
}

async fn predict(app: &TestApp, id: &str, model: &str) -> (StatusCode, String) {
    let (s, b) = app.request(send("POST", format!("/api/v1/runs/{id}/predict"), json!({"examples": [{"age": 30, "sex": "F"}], "models": [model]}))).await;
    (s, String::from_utf8_lossy(&b).to_string())
}

/// What the hostile model server saw: (path as sent, authorization header).
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A model server with every misbehaviour: redirects, a huge answer, an error page with a secret,
/// and a KServe model `m` that scores 0.25. Records every request's raw path and credentials.
async fn hostile_server() -> (String, Seen) {
    use axum::response::IntoResponse;
    let seen: Seen = Default::default();
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let log = log.clone();
        async move {
            let path = uri.path().to_string();
            log.lock().unwrap().push((path.clone(), headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string)));
            match path.as_str() {
                "/v2/models/redirect/infer" => (StatusCode::TEMPORARY_REDIRECT, [("location", "/v2/models/m/infer")]).into_response(),
                "/v2/models/huge/infer" => {
                    // 64 MiB of JSON-ish bytes, streamed.
                    let chunk = bytes::Bytes::from(vec![b' '; 1 << 20]);
                    let stream = futures::stream::iter((0..64).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
                    axum::body::Body::from_stream(stream).into_response()
                }
                "/v2/models/secret/infer" => (StatusCode::INTERNAL_SERVER_ERROR, "TOP-SECRET-STACK-TRACE db password=hunter2").into_response(),
                _ => axum::Json(json!({"outputs": [{"name": "probability", "shape": [1, 1], "datatype": "FP64", "data": [0.25]}]})).into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_calls_need_the_allow_list_and_private_addresses_need_a_setting() {
    let (url, seen) = hostile_server().await;
    let port = url.rsplit(':').next().unwrap();

    // Off by default: saving an endpoint or a webhook is refused, naming the setting.
    let app = TestApp::sqlite_with_outbound(Outbound::default()).await;
    let id = small_run(&app).await;
    let (s, b) = put_endpoints(&app, &id, json!([{"name": "remote", "url": url, "protocol": "kserve-v2", "model": "m"}])).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(b.contains("STRATA_OUTBOUND_ALLOW"), "{b}");
    let (s, b) = app.request(send("PUT", "/api/v1/alerts/webhook".into(), json!({"url": format!("{url}/hook")}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&b).contains("STRATA_OUTBOUND_ALLOW"));

    // Allowed host, but a loopback address without the private setting: refused at save time
    // (an IP literal) or at call time (a name that resolves to loopback), and nothing is sent.
    let app = TestApp::sqlite_with_outbound(Outbound::new(&format!("127.0.0.1, localhost:{port}"), false, 1 << 20).unwrap()).await;
    let id = small_run(&app).await;
    let (s, b) = put_endpoints(&app, &id, json!([{"name": "remote", "url": url, "protocol": "kserve-v2", "model": "m"}])).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(b.contains("STRATA_OUTBOUND_PRIVATE"), "{b}");
    let by_name = format!("http://localhost:{port}");
    let (s, b) = put_endpoints(&app, &id, json!([{"name": "remote", "url": by_name, "protocol": "kserve-v2", "model": "m"}])).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = predict(&app, &id, "remote").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(b.contains("private, loopback or link-local"), "{b}");
    // A host not on the list, and cloud metadata even when everything is allowed.
    let (s, b) = put_endpoints(&app, &id, json!([{"name": "remote", "url": "http://10.0.0.1:8080", "protocol": "mlflow"}])).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b.contains("not on the server's allow-list"), "{b}");
    let open = TestApp::sqlite_with_outbound(Outbound::new("*", true, 1 << 20).unwrap()).await;
    let oid = small_run(&open).await;
    for metadata in ["http://169.254.169.254/latest", "http://[::ffff:169.254.169.254]/", "http://0.0.0.0:80/"] {
        let (s, b) = put_endpoints(&open, &oid, json!([{"name": "remote", "url": metadata, "protocol": "mlflow"}])).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{metadata}: {b}");
        assert!(b.contains("never calls"), "{b}");
    }
    assert!(seen.lock().unwrap().is_empty(), "no request reached the listener: {:?}", seen.lock().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_answers_are_bounded_and_never_echoed() {
    let (url, seen) = hostile_server().await;
    let app = TestApp::sqlite_with_outbound(Outbound::new("127.0.0.1", true, 1 << 20).unwrap()).await;
    let id = small_run(&app).await;
    let endpoints = json!([
        {"name": "redirect", "url": url, "protocol": "kserve-v2", "model": "redirect"},
        {"name": "huge", "url": url, "protocol": "kserve-v2", "model": "huge"},
        {"name": "secret", "url": url, "protocol": "kserve-v2", "model": "secret"},
        {"name": "traversal", "url": format!("{url}/base/?q=1#f"), "protocol": "kserve-v2", "model": "a/../../admin?x=1#y"},
        {"name": "tf", "url": url, "protocol": "tf-serving", "model": "../m"},
    ]);
    let (s, b) = put_endpoints(&app, &id, endpoints).await;
    assert_eq!(s, StatusCode::OK, "{b}");

    // A redirect is an error, and its target is never called.
    let (s, b) = predict(&app, &id, "redirect").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(b.contains("redirects are not followed"), "{b}");
    assert!(!seen.lock().unwrap().iter().any(|(p, _)| p == "/v2/models/m/infer"), "the redirect was followed");

    // A 64 MiB answer stops at the 1 MiB cap, quickly.
    let t = std::time::Instant::now();
    let (s, b) = predict(&app, &id, "huge").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(b.contains("more than the limit of 1 MiB"), "{b}");
    assert!(t.elapsed() < std::time::Duration::from_secs(20));

    // An error page is reported by its status only.
    let (s, b) = predict(&app, &id, "secret").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(b.contains("500 Internal Server Error") && !b.contains("TOP-SECRET") && !b.contains("hunter2"), "{b}");

    // The model name is one path segment; the base URL's query and fragment are dropped.
    let (s, b) = predict(&app, &id, "traversal").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = predict(&app, &id, "tf").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "the fallback answers in KServe's shape: {b}");
    let paths: Vec<String> = seen.lock().unwrap().iter().map(|(p, _)| p.clone()).collect();
    assert!(paths.contains(&"/base/v2/models/a%2F..%2F..%2Fadmin%3Fx=1%23y/infer".to_string()), "{paths:?}");
    assert!(paths.contains(&"/v1/models/..%2Fm:predict".to_string()), "{paths:?}");
    let (s, b) = put_endpoints(&app, &id, json!([{"name": "dots", "url": url, "protocol": "kserve-v2", "model": ".."}])).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_webhook_secrets_are_sealed_at_rest_and_never_returned() {
    let (url, seen) = hostile_server().await;
    let app = TestApp::sqlite_with_outbound(Outbound::new("127.0.0.1", true, 1 << 20).unwrap()).await;
    let id = small_run(&app).await;
    let (s, b) = put_endpoints(&app, &id, json!([{"name": "remote", "url": url, "protocol": "kserve-v2", "model": "m", "token": "tok-123-very-secret"}])).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(!b.contains("tok-123") && b.contains("\"has_token\":true"), "{b}");
    let (_, listed) = app.get_json(&format!("/api/v1/runs/{id}/endpoints")).await;
    assert!(!listed.to_string().contains("tok-123") && listed[0]["has_token"] == true, "{listed}");
    let raw = app.state.store.get_setting(&id, "endpoints").await.unwrap().unwrap();
    assert!(!raw.contains("tok-123") && raw.contains("sealed:v1:"), "stored sealed: {raw}");

    // The token is sent as a bearer token; an update without it keeps it; "" removes it.
    let (s, b) = predict(&app, &id, "remote").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let auth = |seen: &Seen| seen.lock().unwrap().last().unwrap().1.clone();
    assert_eq!(auth(&seen).as_deref(), Some("Bearer tok-123-very-secret"));
    put_endpoints(&app, &id, json!([{"name": "remote", "url": url, "protocol": "kserve-v2", "model": "m", "timeout_ms": 5000}])).await;
    predict(&app, &id, "remote").await;
    assert_eq!(auth(&seen).as_deref(), Some("Bearer tok-123-very-secret"), "kept");
    put_endpoints(&app, &id, json!([{"name": "remote", "url": url, "protocol": "kserve-v2", "model": "m", "token": ""}])).await;
    predict(&app, &id, "remote").await;
    assert_eq!(auth(&seen), None, "removed");

    // The webhook: secret sealed, URL masked in the API (a chat webhook's path is a credential).
    let hook = format!("{url}/services/T000/B000/XXXXSECRETPATH");
    let (s, b) = app.request(send("PUT", "/api/v1/alerts/webhook".into(), json!({"url": hook, "secret": "s3cret-signing-key"}))).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let raw = app.state.store.get_app_setting("webhook").await.unwrap().unwrap();
    assert!(!raw.contains("s3cret-signing-key") && raw.contains("sealed:v1:"), "{raw}");
    let (_, got) = app.get_json("/api/v1/alerts/webhook").await;
    assert_eq!(got["secret"], "(set)");
    assert!(!got.to_string().contains("XXXXSECRETPATH"), "{got}");
    let (_, view) = app.get_json("/api/v1/alerts").await;
    assert!(!view.to_string().contains("XXXXSECRETPATH"), "{view}");
    // The sealed secret still signs deliveries: the opened webhook carries it.
    assert_eq!(app.state.webhook().await.unwrap().unwrap().secret.as_deref(), Some("s3cret-signing-key"));
}
