//! Revalidation of JSON answers: an `ETag` keyed by the code version, the request and the answer,
//! `Cache-Control: private, no-cache`, and `304 Not Modified` for a matching `If-None-Match`.
//!
//! An analysis answer depends on the run (its rows, and settings such as stored fairness limits),
//! the request (path and query) and the code that computed it. The tag hashes all three — the run's
//! state through the answer itself, so a changed run is never answered 304 — and the version of the
//! binary, so a new build never revalidates an old answer. `no-cache` makes the browser (or any
//! client) ask every time, and `private` keeps shared caches out (answers depend on the caller's
//! access). A 304 saves the transfer and the client's parsing; the server's own result cache saves
//! the computation. The layer sits inside the compression layer: the tag is of the plain JSON.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// Answers larger than this are passed through untagged (the analysis answers are far smaller).
const MAX_TAGGED_BYTES: u64 = 32 << 20;

/// What the tags of this build are keyed by: a new build answers every old tag with 200.
#[derive(Clone, Debug)]
pub struct CodeVersion(Arc<str>);

impl CodeVersion {
    pub fn new(version: impl Into<Arc<str>>) -> Self {
        CodeVersion(version.into())
    }

    /// This binary: the package version and the executable's size and modification time (any
    /// rebuild changes them; no build script, so the shared build cache stays warm).
    pub fn of_this_build() -> Self {
        let exe = std::env::current_exe().ok().and_then(|p| std::fs::metadata(p).ok());
        let stamp = exe
            .map(|m| {
                let modified = m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_nanos()).unwrap_or(0);
                format!("{}-{modified}", m.len())
            })
            .unwrap_or_default();
        CodeVersion::new(format!("{}+{stamp}", env!("CARGO_PKG_VERSION")))
    }
}

/// Tags GET answers under `/api/` that are JSON and 200, and answers a matching `If-None-Match`
/// with 304 (no body). Anything else passes through unchanged.
pub async fn revalidate(State(version): State<CodeVersion>, req: Request, next: Next) -> Response {
    if !(req.method() == Method::GET || req.method() == Method::HEAD) || !req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let target = req.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let if_none_match = req.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let response = next.run(req).await;
    let json = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| t.starts_with("application/json"));
    let no_store = response.headers().get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()).is_some_and(|c| c.contains("no-store"));
    let small = axum::body::HttpBody::size_hint(response.body()).upper().is_some_and(|n| n <= MAX_TAGGED_BYTES);
    if response.status() != StatusCode::OK || !json || no_store || !small {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_TAGGED_BYTES as usize).await else {
        // The size hint said it fits: a body failing here failed on its own.
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let tag = tag_of(&version, &target, &bytes);
    let cache = HeaderValue::from_static("private, no-cache");
    if if_none_match.as_deref().is_some_and(|h| matches(h, &tag)) {
        let mut not_modified = StatusCode::NOT_MODIFIED.into_response();
        let h = not_modified.headers_mut();
        h.insert(header::CACHE_CONTROL, cache);
        if let Ok(v) = HeaderValue::from_str(&tag) {
            h.insert(header::ETAG, v);
        }
        return not_modified;
    }
    parts.headers.insert(header::CACHE_CONTROL, cache);
    if let Ok(v) = HeaderValue::from_str(&tag) {
        parts.headers.insert(header::ETAG, v);
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}

/// A strong tag: SHA-256 of version, request target and answer, 128 bits in hex, quoted.
fn tag_of(version: &CodeVersion, target: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    for part in [version.0.as_bytes(), target.as_bytes()] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.update(body);
    let digest = h.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// `If-None-Match`: `*`, or a comma-separated list of tags (a weak `W/` prefix compares equal).
fn matches(header: &str, tag: &str) -> bool {
    header.split(',').map(str::trim).any(|t| t == "*" || t.trim_start_matches("W/") == tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_differ_by_version_request_and_answer() {
        let (a, b) = (CodeVersion::new("1"), CodeVersion::new("2"));
        let t = tag_of(&a, "/api/v1/runs/x/metrics?slice=race", b"{}");
        assert_eq!(t, tag_of(&a, "/api/v1/runs/x/metrics?slice=race", b"{}"));
        assert_ne!(t, tag_of(&b, "/api/v1/runs/x/metrics?slice=race", b"{}"));
        assert_ne!(t, tag_of(&a, "/api/v1/runs/x/metrics?slice=sex", b"{}"));
        assert_ne!(t, tag_of(&a, "/api/v1/runs/x/metrics?slice=race", b"{ }"));
        assert!(matches(&format!("\"other\", W/{t}"), &t));
        assert!(!matches("\"other\"", &t));
    }
}
