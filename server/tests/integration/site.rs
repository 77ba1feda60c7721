//! DNS rebinding and cross-site requests: a Host the server is not known by is refused, and so is
//! a state-changing request from another site's page (an API client without Origin still works).

use axum::body::Body;
use axum::http::{Request, StatusCode};

use crate::helpers::TestApp;

fn req(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebinding_and_cross_site_requests_are_refused() {
    let app = TestApp::sqlite().await;
    // A page on another site that re-pointed its own name at 127.0.0.1.
    let (s, b) = app.request(req("GET", "/api/v1/runs", &[("host", "rebind.evil.example:3000")])).await;
    assert_eq!(s, StatusCode::MISDIRECTED_REQUEST, "{}", String::from_utf8_lossy(&b));
    assert!(String::from_utf8_lossy(&b).contains("STRATA_ALLOWED_HOSTS"));
    let (s, _) = app.request(req("GET", "/", &[("host", "localhost:3000")])).await;
    assert_eq!(s, StatusCode::OK);

    // A form post or fetch from another site's page: refused whatever the route.
    for (method, uri) in [("DELETE", "/api/v1/runs/x"), ("POST", "/api/v1/runs"), ("PUT", "/api/v1/alerts/webhook"), ("POST", "/api/set_webhook")] {
        let (s, b) = app.request(req(method, uri, &[("host", "127.0.0.1:3000"), ("origin", "http://evil.example")])).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{method} {uri}: {}", String::from_utf8_lossy(&b));
        let (s, _) = app.request(req(method, uri, &[("host", "127.0.0.1:3000"), ("sec-fetch-site", "cross-site")])).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{method} {uri} without Origin but cross-site");
        let (s, _) = app.request(req(method, uri, &[("host", "127.0.0.1:3000"), ("origin", "null")])).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{method} {uri} from an opaque origin");
    }
    // The same requests from Strata's own pages, or from an API client, reach their handlers.
    let (s, _) = app.request(req("DELETE", "/api/v1/runs/x", &[("host", "127.0.0.1:3000"), ("origin", "http://127.0.0.1:3000")])).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.request(req("DELETE", "/api/v1/runs/x", &[("host", "127.0.0.1:3000")])).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Every answer tells browsers not to frame or sniff it.
    let res = tower::ServiceExt::oneshot(app.router.clone(), req("GET", "/", &[])).await.unwrap();
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    let csp = res.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("frame-ancestors 'none'"));
    // A page allows only Strata's own scripts and the inline scripts of this render, by nonce.
    let nonce = csp.split("'nonce-").nth(1).and_then(|r| r.split('\'').next()).expect("a nonce in the page's policy").to_string();
    assert!(csp.contains(&format!("script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'")), "{csp}");
    assert!(!csp.split(';').any(|d| d.trim().starts_with("script-src") && d.contains("unsafe-inline")), "{csp}");
    let html = String::from_utf8(http_body_util::BodyExt::collect(res.into_body()).await.unwrap().to_bytes().to_vec()).unwrap();
    let inline: Vec<&str> = html.split("<script").skip(1).filter(|tag| !tag.split('>').next().unwrap_or("").contains("src=")).collect();
    assert!(!inline.is_empty(), "the page has its hydration script");
    for tag in inline {
        assert!(tag.split('>').next().unwrap().contains(&format!("nonce=\"{nonce}\"")), "an inline script without this render's nonce: <script{}", &tag[..tag.len().min(80)]);
    }
    // Other answers: nothing inline at all.
    let res = tower::ServiceExt::oneshot(app.router.clone(), req("GET", "/api/v1/runs", &[])).await.unwrap();
    assert_eq!(res.headers()["content-security-policy"], strata_server::site::DEFAULT_CSP);
}
