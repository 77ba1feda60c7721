//! Analysis answers are revalidated, not recomputed or resent: an `ETag` keyed by the code
//! version, the request and the answer; `If-None-Match` with it answers 304.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

use crate::helpers::{TestApp, demo};

async fn send(router: &axum::Router, uri: &str, if_none_match: Option<&str>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut req = Request::get(uri);
    if let Some(tag) = if_none_match {
        req = req.header(header::IF_NONE_MATCH, tag);
    }
    let resp = router.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, headers, resp.into_body().collect().await.unwrap().to_bytes().to_vec())
}

#[tokio::test]
async fn same_request_is_304_a_changed_request_or_build_is_200() {
    let app = TestApp::sqlite().await;
    let csv = std::fs::read(demo().join("adult/eval.csv")).unwrap();
    let (s, body) = app.upload("eval.csv", &csv, &json!({"name": "etag", "label": "label", "scores": ["score_logreg", "score_gbt"]}), &[]).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap();
    let uri = format!("/api/v1/runs/{id}/metrics?model=score_gbt&slice=race&thresholds=0.5&bootstrap=20");

    let (s, headers, first) = send(&app.router, &uri, None).await;
    assert_eq!(s, StatusCode::OK);
    let tag = headers.get(header::ETAG).expect("an ETag").to_str().unwrap().to_string();
    assert_eq!(headers.get(header::CACHE_CONTROL).unwrap(), "private, no-cache");
    assert!(serde_json::from_slice::<serde_json::Value>(&first).is_ok());

    // The same request with the tag: 304, no body, the same tag.
    let (s, headers, body) = send(&app.router, &uri, Some(&tag)).await;
    assert_eq!(s, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    assert_eq!(headers.get(header::ETAG).unwrap().to_str().unwrap(), tag);
    // Without the tag, or with another one: the answer again, byte for byte.
    let (s, headers, again) = send(&app.router, &uri, Some("\"not-this-one\"")).await;
    assert_eq!((s, again.as_slice()), (StatusCode::OK, first.as_slice()));
    assert_eq!(headers.get(header::ETAG).unwrap().to_str().unwrap(), tag);

    // A changed request: a new answer and a new tag, even sent with the old one.
    let changed = uri.replace("thresholds=0.5", "thresholds=0.3");
    let (s, headers, body) = send(&app.router, &changed, Some(&tag)).await;
    assert_eq!(s, StatusCode::OK);
    assert_ne!(body, first);
    assert_ne!(headers.get(header::ETAG).unwrap().to_str().unwrap(), tag);

    // Another build of the code: the old tag does not revalidate.
    let options = strata_server::leptos_options(std::path::Path::new("."), "127.0.0.1:0".parse().unwrap());
    let rebuilt = strata_server::router_for_version(app.state.clone(), options, strata_server::etag::CodeVersion::new("another build"));
    let (s, headers, body) = send(&rebuilt, &uri, Some(&tag)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, first, "the same numbers");
    assert_ne!(headers.get(header::ETAG).unwrap().to_str().unwrap(), tag);

    // Errors and writes are not tagged.
    let (s, headers, _) = send(&app.router, &format!("/api/v1/runs/{id}/metrics?slice=nope"), None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(headers.get(header::ETAG).is_none());
}
