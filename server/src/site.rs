//! Requests from the wrong place are refused before any handler runs: a `Host` the server is not
//! known by (DNS rebinding: a page on another site that re-points its name at 127.0.0.1), and a
//! state-changing request sent by another site's page (a cross-site form post). Every answer also
//! carries headers that keep other sites from framing Strata or sniffing its files.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The names the server answers to (`STRATA_ALLOWED_HOSTS` adds to them).
#[derive(Clone, Debug)]
pub struct SiteGuard {
    /// (host, port): `None` = any port.
    hosts: Vec<(String, Option<u16>)>,
    /// Bound to every interface with no names configured: any Host is accepted (logged at start).
    any_host: bool,
}

/// The setting that adds names, named in refusals.
pub const HOSTS_SETTING: &str = "STRATA_ALLOWED_HOSTS";

impl SiteGuard {
    /// The loopback names of a loopback address (any port when it is 0, as in tests), the address
    /// itself otherwise, plus `extra` (`host` or `host:port`, e.g. the name a reverse proxy uses).
    pub fn new(addr: SocketAddr, extra: &[String]) -> SiteGuard {
        let port = (addr.port() != 0).then_some(addr.port());
        let mut hosts: Vec<(String, Option<u16>)> = Vec::new();
        if addr.ip().is_loopback() {
            for h in ["127.0.0.1", "localhost", "[::1]"] {
                hosts.push((h.to_string(), port));
            }
        } else if !addr.ip().is_unspecified() {
            let ip = match addr {
                SocketAddr::V4(a) => a.ip().to_string(),
                SocketAddr::V6(a) => format!("[{}]", a.ip()),
            };
            hosts.push((ip, port));
        }
        for e in extra.iter().map(|e| e.trim().to_ascii_lowercase()).filter(|e| !e.is_empty()) {
            hosts.push(split_host(&e));
        }
        let any_host = addr.ip().is_unspecified() && extra.iter().all(|e| e.trim().is_empty());
        SiteGuard { hosts, any_host }
    }

    /// Whether every Host is accepted (bound to all interfaces, no names given).
    pub fn accepts_any_host(&self) -> bool {
        self.any_host
    }

    fn allows(&self, host_port: &str) -> bool {
        if self.any_host {
            return true;
        }
        let (host, port) = split_host(&host_port.to_ascii_lowercase());
        self.hosts.iter().any(|(h, p)| *h == host && (p.is_none() || (port.is_none() && *p == Some(80)) || *p == port))
    }
}

/// `host[:port]` (IPv6 in brackets) into its parts.
fn split_host(s: &str) -> (String, Option<u16>) {
    if let Some(end) = s.strip_prefix('[').and_then(|r| r.find(']')) {
        let host = s[..end + 2].to_string();
        let port = s[end + 2..].strip_prefix(':').and_then(|p| p.parse().ok());
        return (host, port);
    }
    match s.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty() => (h.to_string(), p.parse().ok()),
        _ => (s.to_string(), None),
    }
}

fn refuse(status: StatusCode, message: String) -> Response {
    tracing::warn!(%status, %message, "request refused");
    (status, axum::Json(strata_app::model::ApiError { error: message, detail: serde_json::Value::Null })).into_response()
}

/// The middleware: Host check on every request, same-site check on every state-changing one,
/// protective headers on every answer.
pub async fn guard(State(site): State<Arc<SiteGuard>>, req: Request, next: Next) -> Response {
    let text = |v: &HeaderValue| v.to_str().unwrap_or("").to_string();
    // Browsers always send Host; a request without one (HTTP/1.0, in-process) is not a rebinding.
    if let Some(host) = req.headers().get(header::HOST).map(text)
        && !site.allows(&host)
    {
        return refuse(StatusCode::MISDIRECTED_REQUEST, format!("this server does not answer to the name '{host}' (an admin adds names with {HOSTS_SETTING})"));
    }
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if changes_state {
        match req.headers().get(header::ORIGIN).map(text) {
            // Browsers send Origin with every cross-origin request and with same-origin POSTs;
            // "null" is an opaque origin (a sandboxed frame, a file): never this site.
            Some(origin) => {
                let host = url::Url::parse(&origin).ok().and_then(|u| u.host_str().map(|h| match u.port() {
                    Some(p) => format!("{}:{p}", if h.contains(':') && !h.starts_with('[') { format!("[{h}]") } else { h.to_string() }),
                    None => h.to_string(),
                }));
                let same = match (&host, req.headers().get(header::HOST).map(text)) {
                    // The page was served by this server under the name it now posts to.
                    (Some(h), Some(own)) => h.eq_ignore_ascii_case(&own) || (site.allows(h) && !site.any_host),
                    (Some(h), None) => site.allows(h),
                    _ => false,
                };
                if !same {
                    return refuse(StatusCode::FORBIDDEN, format!("a {} from another site ({origin}) is refused", req.method()));
                }
            }
            // No Origin: an API client or the CLI, unless the browser says it is cross-site.
            None => {
                if req.headers().get("sec-fetch-site").map(text).is_some_and(|s| s == "cross-site") {
                    return refuse(StatusCode::FORBIDDEN, format!("a {} from another site is refused", req.method()));
                }
            }
        }
    }
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(DEFAULT_CSP));
    }
    res
}

/// The policy of every answer that is not a page (JSON, files, the sign-in and link pages): no
/// inline script, nothing from elsewhere.
pub const DEFAULT_CSP: &str = "default-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

/// A page's policy: Strata's own scripts, the inline scripts carrying this render's nonce, WASM;
/// its own styles (and inline styles: Plotly sets them); nothing from other sites; not framed.
pub fn page_csp(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; \
         font-src 'self' data:; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_server_answers_to() {
        let g = SiteGuard::new("127.0.0.1:3000".parse().unwrap(), &["strata.example.com".into()]);
        assert!(g.allows("127.0.0.1:3000") && g.allows("localhost:3000") && g.allows("[::1]:3000") && g.allows("LOCALHOST:3000"));
        assert!(!g.allows("127.0.0.1:3001") && !g.allows("evil.example:3000") && !g.allows("localhost.evil.example:3000"));
        assert!(g.allows("strata.example.com") && g.allows("strata.example.com:443"));
        let any_port = SiteGuard::new("127.0.0.1:0".parse().unwrap(), &[]);
        assert!(any_port.allows("127.0.0.1:41234") && !any_port.allows("rebind.evil.example:41234"));
        let all = SiteGuard::new("0.0.0.0:3000".parse().unwrap(), &[]);
        assert!(all.accepts_any_host() && all.allows("whatever:3000"));
        let named = SiteGuard::new("0.0.0.0:3000".parse().unwrap(), &["strata.internal:3000".into()]);
        assert!(!named.accepts_any_host() && named.allows("strata.internal:3000") && !named.allows("other:3000"));
    }
}
