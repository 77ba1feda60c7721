//! A test application on its own database: SQLite in a temp dir, or a new PostgreSQL database.

use std::path::PathBuf;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use strata_server::outbound::Outbound;
use strata_server::service::AppState;
use strata_server::settings::{DatabaseTarget, Limits};
use strata_server::store::Store;
use tower::ServiceExt;

/// The demo runs and models (`demo/`), as a user finds them in the repository.
pub fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../demo")
}

/// Test fixtures kept in the repository (`testdata/`: the malformed-input corpus).
pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

pub struct TestApp {
    pub state: AppState,
    pub router: Router,
    /// The PostgreSQL database of this test, when it has one (for a second connection).
    pub postgres_url: Option<String>,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn sqlite() -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let target = DatabaseTarget::Sqlite(dir.path().join("strata.db"));
        Self::with(target, dir, Limits::default()).await
    }

    /// A new, empty PostgreSQL database for this test (DATABASE_URL names the server).
    pub async fn postgres() -> TestApp {
        let admin = std::env::var("DATABASE_URL").expect("DATABASE_URL must point at PostgreSQL for the PostgreSQL tests (scripts/test.sh sets it)");
        assert!(admin.starts_with("postgres"), "DATABASE_URL must be a postgres:// URL, got another scheme");
        let name = format!("strata_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await.expect("connect to PostgreSQL");
        sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str()).await.unwrap();
        let (base, query) = admin.split_once('?').map(|(b, q)| (b.to_string(), format!("?{q}"))).unwrap_or((admin.clone(), String::new()));
        let base = base.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(base);
        let url = format!("{base}/{name}{query}");
        let dir = tempfile::tempdir().unwrap();
        let mut app = Self::with(DatabaseTarget::Postgres(url.clone()), dir, Limits::default()).await;
        app.postgres_url = Some(url);
        app
    }

    /// SQLite, with these outbound rules instead of the tests' usual "loopback allowed".
    pub async fn sqlite_with_outbound(outbound: Outbound) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let target = DatabaseTarget::Sqlite(dir.path().join("strata.db"));
        Self::build(target, dir, Limits::default(), outbound).await
    }

    pub async fn with(target: DatabaseTarget, dir: tempfile::TempDir, limits: Limits) -> TestApp {
        // The tests' model servers and webhooks listen on loopback addresses.
        Self::build(target, dir, limits, Outbound::new("127.0.0.1", true, 16 << 20).unwrap()).await
    }

    async fn build(target: DatabaseTarget, dir: tempfile::TempDir, limits: Limits, outbound: Outbound) -> TestApp {
        let store = Store::connect(&target).await.expect("open store");
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let state = AppState::new(store, 256 << 20, limits, tmp).with_outbound(outbound);
        state.start_outbox();
        let options = strata_server::leptos_options(dir.path(), "127.0.0.1:0".parse().unwrap());
        let router = strata_server::router(state.clone(), options);
        TestApp { state, router, postgres_url: None, _dir: dir }
    }

    /// Sends one request. A GET that has not answered within `REQUEST_LIMIT` is retried once,
    /// loudly (stderr and `$TMPDIR/strata-test-stalls.log`): under heavy CPU contention a request on PostgreSQL has, rarely (about one full run
    /// in eight), never completed, with every thread idle and no query in flight (seen on
    /// scenarios that render pages; cause not found yet, see the issue notes). The retry keeps
    /// that stall from failing an unrelated scenario, and the message names the request.
    pub async fn request(&self, req: Request<Body>) -> (StatusCode, Vec<u8>) {
        let (parts, body) = req.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        let attempts = if parts.method == axum::http::Method::GET { 2 } else { 1 };
        for attempt in 1..=attempts {
            let mut again = Request::builder().method(parts.method.clone()).uri(parts.uri.clone()).version(parts.version);
            for (k, v) in &parts.headers {
                again = again.header(k, v);
            }
            let req = again.body(Body::from(bytes.clone())).unwrap();
            let call = async {
                let resp = self.router.clone().oneshot(req).await.unwrap();
                let status = resp.status();
                (status, resp.into_body().collect().await.unwrap().to_bytes().to_vec())
            };
            match tokio::time::timeout(REQUEST_LIMIT, call).await {
                Ok(answer) => return answer,
                Err(_) if attempt < attempts => {
                    // Also in a file: a passing test's stderr is swallowed by the test harness.
                    let line = format!("STALL: {} {} did not answer within {REQUEST_LIMIT:?}; retrying once\n", parts.method, parts.uri);
                    eprint!("{line}");
                    let log = std::env::temp_dir().join("strata-test-stalls.log");
                    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(&log) {
                        let _ = std::io::Write::write_all(&mut f, line.as_bytes());
                    }
                }
                Err(_) => panic!("{} {} did not answer within {REQUEST_LIMIT:?}", parts.method, parts.uri),
            }
        }
        unreachable!("the loop returns or panics")
    }

    pub async fn get_json(&self, uri: &str) -> (StatusCode, serde_json::Value) {
        let (s, b) = self.request(Request::get(uri).body(Body::empty()).unwrap()).await;
        (s, serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null))
    }

    pub async fn get_text(&self, uri: &str) -> (StatusCode, String) {
        let (s, b) = self.request(Request::get(uri).body(Body::empty()).unwrap()).await;
        (s, String::from_utf8_lossy(&b).to_string())
    }

    /// POSTs a multipart upload: `file` (name, bytes), `spec` JSON, optional `model` parts.
    pub async fn upload(&self, file_name: &str, content: &[u8], spec: &serde_json::Value, models: &[(&str, &[u8])]) -> (StatusCode, serde_json::Value) {
        let boundary = "strata-test-boundary-7d3f";
        let body = multipart(boundary, spec, file_name, content, models);
        let req = Request::post("/api/v1/runs")
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(Body::from(body))
            .unwrap();
        let (s, b) = self.request(req).await;
        (s, serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null))
    }
}

/// One request that has not answered after this long is stuck (every request takes seconds).
pub const REQUEST_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// A scenario that has not finished after this long is stuck: it fails with its name instead of
/// holding the whole run (and CI) until its time limit. (Every scenario takes seconds.)
pub const SCENARIO_LIMIT: std::time::Duration = std::time::Duration::from_secs(240);

/// Runs one async scenario on SQLite and on PostgreSQL, as two tests.
#[macro_export]
macro_rules! on_both_databases {
    ($scenario:ident) => {
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let run = async { super::$scenario($crate::helpers::TestApp::sqlite().await).await };
                tokio::time::timeout($crate::helpers::SCENARIO_LIMIT, run).await.expect(concat!(stringify!($scenario), " on SQLite is stuck"))
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let run = async { super::$scenario($crate::helpers::TestApp::postgres().await).await };
                tokio::time::timeout($crate::helpers::SCENARIO_LIMIT, run).await.expect(concat!(stringify!($scenario), " on PostgreSQL is stuck"))
            }
        }
    };
}

/// A running `strata serve` on a free loopback port, with its own data directory.
pub struct Server {
    pub child: std::process::Child,
    pub addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn start(data_dir: &std::path::Path) -> Server {
    start_with(data_dir, &[])
}

/// `start`, with extra environment settings (limits).
pub fn start_with(data_dir: &std::path::Path, env: &[(&str, &str)]) -> Server {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["serve", "--no-demo", "--addr", &addr])
        .env_remove("DATABASE_URL")
        .env("STRATA_DATA_DIR", data_dir)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(t.elapsed() < std::time::Duration::from_secs(60), "the server did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Server { child, addr }
}

/// One HTTP/1.1 request over a raw connection: (status, body).
pub fn raw_request(addr: &str, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(120))).unwrap();
    write!(conn, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).unwrap();
    // A server may answer (413) before it has read the whole body.
    let _ = conn.write_all(body);
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// A multipart upload body: the spec, the file, and model parts.
pub fn multipart(boundary: &str, spec: &serde_json::Value, file_name: &str, content: &[u8], models: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut part = |headers: String, bytes: &[u8]| {
        body.extend_from_slice(format!("--{boundary}\r\n{headers}\r\n\r\n").as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    };
    part("Content-Disposition: form-data; name=\"spec\"".into(), spec.to_string().as_bytes());
    part(format!("Content-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream"), content);
    for (name, bytes) in models {
        part(format!("Content-Disposition: form-data; name=\"model\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream"), bytes);
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

/// The peak resident memory of a process, in MiB (Linux).
pub fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<f64>().ok()).map_or(f64::NAN, |k| k / 1024.0)
}
