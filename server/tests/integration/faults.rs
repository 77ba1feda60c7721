//! Faults and overload: a panicking handler, a request over its time limit, a full work queue, a
//! model endpoint that never answers, SIGTERM during a request, `kill -9` during an upload.

use std::io::{Read, Write};
use std::time::Duration;

use axum::http::{Request, StatusCode};
use serde_json::json;
use strata_server::settings::{DatabaseTarget, Limits};
use tower::ServiceExt;

use crate::helpers::{TestApp, start};

#[tokio::test]
async fn a_panicking_handler_answers_500_and_a_slow_one_503() {
    let app = axum::Router::new()
        .route("/boom", axum::routing::get(|| async { if true { panic!("boom") } else { "" } }))
        .route("/slow", axum::routing::get(|| async { tokio::time::sleep(Duration::from_secs(5)).await; "late" }));
    let app = strata_server::harden(app, Duration::from_millis(200));
    let res = app.clone().oneshot(Request::get("/boom").body(axum::body::Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = http_body_util::BodyExt::collect(res.into_body()).await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("internal error"), "a JSON error, not a dropped connection");
    let res = app.oneshot(Request::get("/slow").body(axum::body::Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
}

/// A model server whose one model sleeps 3 s before it answers.
async fn sleepy_model() -> String {
    let app = axum::Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        axum::Json(json!({"outputs": [{"name": "probability", "shape": [1, 1], "datatype": "FP64", "data": [0.5]}]}))
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_503_with_retry_after_and_a_hung_endpoint_holds_one_worker_for_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let target = DatabaseTarget::Sqlite(dir.path().join("strata.db"));
    let app = TestApp::with(target, dir, Limits { workers: 1, max_queue: 0, ..Limits::default() }).await;
    let mut csv = String::from("id,label,score,age\n");
    for i in 0..50 {
        csv.push_str(&format!("r{i},{},{},{}\n", i % 2, (i % 10) as f64 / 10.0, 20 + i));
    }
    let (s, b) = app.upload("q.csv", csv.as_bytes(), &json!({"name": "q", "label": "label", "scores": ["score"], "id": "id"}), &[]).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let id = b["id"].as_str().unwrap().to_string();
    let url = sleepy_model().await;
    let put = Request::put(format!("/api/v1/runs/{id}/endpoints"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(json!([{"name": "sleepy", "url": url, "protocol": "kserve-v2", "model": "m", "timeout_ms": 1500}]).to_string()))
        .unwrap();
    assert_eq!(app.request(put).await.0, StatusCode::OK);
    // An analysis computed once is kept.
    let (s, first) = app.get_json(&format!("/api/v1/runs/{id}/metrics?model=score&bootstrap=50")).await;
    assert_eq!(s, StatusCode::OK);

    // The hung endpoint takes the only worker…
    let predict = {
        let router = app.router.clone();
        let req = Request::post(format!("/api/v1/runs/{id}/predict"))
            .header("content-type", "application/json")
            // (More than 100 examples: a batch job, not the quick lane of a what-if edit.)
            .body(axum::body::Body::from(json!({"examples": vec![json!({"age": 30}); 101], "models": ["sleepy"]}).to_string()))
            .unwrap();
        tokio::spawn(async move { router.oneshot(req).await.unwrap() })
    };
    let t = std::time::Instant::now();
    while app.state.work.load().0 == 0 {
        assert!(t.elapsed() < Duration::from_secs(10), "the prediction never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // …so an analysis is refused at once, with a hint when to come back.
    let res = app.router.clone().oneshot(Request::get(format!("/api/v1/runs/{id}/metrics?model=score")).body(axum::body::Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().get("retry-after").is_some());
    // Pages say so too (503 with Retry-After, not a 500).
    let res = app.router.clone().oneshot(Request::get(format!("/runs/{id}/slices?model=score&slice=age:q4")).body(axum::body::Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().get("retry-after").is_some());
    // …but an identical repeat of a finished analysis needs no worker.
    let (s, again) = app.get_json(&format!("/api/v1/runs/{id}/metrics?model=score&bootstrap=50")).await;
    assert_eq!((s, &again), (StatusCode::OK, &first));
    // The endpoint's timeout (1.5 s, not its 3 s) frees the worker.
    let res = predict.await.unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(t.elapsed() < Duration::from_millis(2900), "held the worker for {:?}", t.elapsed());
    let (s, _) = app.get_json(&format!("/api/v1/runs/{id}/metrics?model=score")).await;
    assert_eq!(s, StatusCode::OK, "served again once the worker is free");
}

/// Sends a multipart upload of `rows` generated rows over a raw connection, `pieces` writes with
/// `pause` between them (a slow client); `before_last` runs before the last piece.
fn slow_upload(addr: &str, rows: usize, pieces: usize, pause: Duration, before_last: impl FnOnce()) -> std::io::Result<String> {
    let boundary = "faultsboundary";
    let mut csv = String::from("id,label,score,age\n");
    for i in 0..rows {
        csv.push_str(&format!("r{i},{},{},{}\n", i % 2, (i % 10) as f64 / 10.0, 20 + i % 50));
    }
    let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"spec\"\r\n\r\n{}\r\n", json!({"name": "slow", "label": "label", "scores": ["score"], "id": "id"}));
    body.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.csv\"\r\n\r\n{csv}\r\n--{boundary}--\r\n"));
    let mut conn = std::net::TcpStream::connect(addr)?;
    conn.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(conn, "POST /api/v1/runs HTTP/1.1\r\nHost: {addr}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())?;
    let bytes = body.as_bytes();
    let size = bytes.len().div_ceil(pieces);
    let chunks: Vec<&[u8]> = bytes.chunks(size).collect();
    let mut before_last = Some(before_last);
    for (i, c) in chunks.iter().enumerate() {
        if i + 1 == chunks.len()
            && let Some(f) = before_last.take()
        {
            f();
        }
        conn.write_all(c)?;
        conn.flush()?;
        if i + 1 < chunks.len() {
            std::thread::sleep(pause);
        }
    }
    let mut answer = String::new();
    conn.read_to_string(&mut answer)?;
    Ok(answer)
}

fn runs(addr: &str) -> serde_json::Value {
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    write!(conn, "GET /api/v1/runs HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap_or("null")).unwrap_or(serde_json::Value::Null)
}

#[test]
fn sigterm_lets_an_in_flight_upload_finish_and_kill_9_leaves_no_partial_run_or_spool_file() {
    let dir = tempfile::tempdir().unwrap();
    // SIGTERM while an upload is half sent: the upload still completes (201), then the server exits 0.
    let mut server = start(dir.path());
    let pid = server.child.id();
    let answer = slow_upload(&server.addr, 20_000, 4, Duration::from_millis(300), || {
        let ok = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap().success();
        assert!(ok, "kill -TERM");
    })
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{}", &answer[..answer.len().min(300)]);
    let status = server.child.wait().unwrap();
    assert!(status.success(), "exit after draining: {status:?}");

    // kill -9 mid-upload: the spool file stays behind; the next start removes it, and no
    // partial run was stored.
    let mut server = start(dir.path());
    assert_eq!(runs(&server.addr).as_array().map(Vec::len), Some(1));
    let spool = dir.path().join("tmp");
    let addr = server.addr.clone();
    let upload = std::thread::spawn(move || slow_upload(&addr, 200_000, 10, Duration::from_millis(400), || {}));
    let t = std::time::Instant::now();
    while std::fs::read_dir(&spool).unwrap().count() == 0 {
        assert!(t.elapsed() < Duration::from_secs(30), "no spool file appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let _ = upload.join();
    assert!(std::fs::read_dir(&spool).unwrap().count() > 0, "the crash left its spool file");
    let mut server = start(dir.path());
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0, "removed at start");
    assert_eq!(runs(&server.addr).as_array().map(Vec::len), Some(1), "no partial run");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

/// Concurrent saves of edited examples (different names) and of one setting: none is lost, none
/// fails (a read-modify-write of one list lost updates; delete-then-insert collided).
async fn concurrent_saves_lose_nothing(app: TestApp) {
    let mut csv = String::from("id,label,score,age\n");
    for i in 0..20 {
        csv.push_str(&format!("r{i},{},{},{}\n", i % 2, (i % 10) as f64 / 10.0, 20 + i));
    }
    let (s, b) = app.upload("c.csv", csv.as_bytes(), &json!({"name": "c", "label": "label", "scores": ["score"], "id": "id"}), &[]).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let id = b["id"].as_str().unwrap().to_string();
    let saves: Vec<_> = (0..12)
        .map(|i| {
            let (state, id) = (app.state.clone(), id.clone());
            tokio::spawn(async move {
                let edits = [("age".to_string(), (30 + i).to_string())].into_iter().collect();
                state.save_whatif(&id, &format!("edit {i}"), "r1", edits).await
            })
        })
        .collect();
    for s in saves {
        s.await.unwrap().expect("every concurrent save succeeds");
    }
    let saved = app.state.saved_whatifs(&id).await.unwrap();
    assert_eq!(saved.len(), 12, "{:?}", saved.iter().map(|s| &s.name).collect::<Vec<_>>());
    let puts: Vec<_> = (0..12)
        .map(|i| {
            let (store, id) = (app.state.store.clone(), id.clone());
            tokio::spawn(async move { store.put_setting(&id, "limits", &format!("v{i}")).await })
        })
        .collect();
    for p in puts {
        assert!(p.await.unwrap().expect("every concurrent write succeeds"));
    }
    assert!(app.state.store.get_setting(&id, "limits").await.unwrap().unwrap().starts_with('v'));
    assert!(!app.state.store.put_setting("no-such-run", "limits", "x").await.unwrap(), "a missing run is reported");
    let left = app.state.delete_whatif(&id, "edit 3").await.unwrap();
    assert_eq!(left.len(), 11);
    // Deleting the run empties its caches after the commit.
    app.get_json(&format!("/api/v1/runs/{id}/metrics?model=score")).await;
    assert!(app.state.cache.get(&id).is_some());
    let (s, _) = app.request(Request::delete(format!("/api/v1/runs/{id}")).body(axum::body::Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(app.state.cache.get(&id).is_none() && app.state.results.bytes() == 0);
}
crate::on_both_databases!(concurrent_saves_lose_nothing);

/// Concurrent cold requests for one run decode it once: every caller gets the same frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cold_loads_decode_a_run_once() {
    let app = TestApp::sqlite().await;
    let mut csv = String::from("id,label,score\n");
    for i in 0..5000 {
        csv.push_str(&format!("r{i},{},{}\n", i % 2, (i % 10) as f64 / 10.0));
    }
    let (s, b) = app.upload("o.csv", csv.as_bytes(), &json!({"name": "o", "label": "label", "scores": ["score"], "id": "id"}), &[]).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let id = b["id"].as_str().unwrap().to_string();
    app.state.forget(&id);
    let loads: Vec<_> = (0..8).map(|_| { let (state, id) = (app.state.clone(), id.clone()); tokio::spawn(async move { state.frame(&id).await.unwrap() }) }).collect();
    let mut frames = Vec::new();
    for l in loads {
        frames.push(l.await.unwrap());
    }
    assert!(frames.iter().all(|f| std::sync::Arc::ptr_eq(f, &frames[0])), "decoded more than once");
}

/// A run read while its deletion is in flight leaves nothing in the caches once the deletion
/// commits. (The caches used to be emptied before the deletion: a read in between filled them
/// again with a run that no longer existed.) PostgreSQL: a second connection holds the run's row,
/// so the deletion waits inside its transaction while the read happens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_read_during_its_deletion_leaves_no_cache_behind() {
    use sqlx::Connection;
    let app = TestApp::postgres().await;
    let mut csv = String::from("id,label,score\n");
    for i in 0..200 {
        csv.push_str(&format!("r{i},{},{}\n", i % 2, (i % 10) as f64 / 10.0));
    }
    let (s, b) = app.upload("d.csv", csv.as_bytes(), &json!({"name": "d", "label": "label", "scores": ["score"], "id": "id"}), &[]).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let id = b["id"].as_str().unwrap().to_string();
    app.state.forget(&id);

    let mut blocker = sqlx::PgConnection::connect(app.postgres_url.as_deref().unwrap()).await.unwrap();
    sqlx::Executor::execute(&mut blocker, "BEGIN").await.unwrap();
    sqlx::query("SELECT id FROM runs WHERE id = $1 FOR UPDATE").bind(&id).execute(&mut blocker).await.unwrap();
    let deletion = { let (state, id) = (app.state.clone(), id.clone()); tokio::spawn(async move { state.delete(&id).await }) };
    // Wait until the deletion waits for the row.
    let t = std::time::Instant::now();
    loop {
        let waiting: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'").fetch_one(&mut blocker).await.unwrap();
        if waiting > 0 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "the deletion never waited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A read meanwhile: the run still exists for everyone else, and gets cached.
    let (s, _) = app.get_json(&format!("/api/v1/runs/{id}/metrics?model=score&bootstrap=0")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(app.state.cache.get(&id).is_some());
    sqlx::Executor::execute(&mut blocker, "COMMIT").await.unwrap();
    deletion.await.unwrap().expect("deleted");
    assert!(app.state.cache.get(&id).is_none(), "a deleted run is still cached");
    let (s, _) = app.get_json(&format!("/api/v1/runs/{id}/metrics?model=score&bootstrap=0")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// Concurrent first calls of a run's ONNX model load and optimise it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_calls_load_a_model_once() {
    let app = TestApp::sqlite().await;
    strata_server::demo::load_if_empty(&app.state).await.unwrap();
    let (_, runs) = app.get_json("/api/v1/runs").await;
    let id = runs.as_array().unwrap().iter().find(|r| r["name"] == "Adult income (demo)").unwrap()["id"].as_str().unwrap().to_string();
    let detail = app.state.run_detail(&id).await.unwrap();
    app.state.forget(&id);
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let (state, id, detail) = (app.state.clone(), id.clone(), detail.clone());
            tokio::spawn(async move { state.model(&id, &detail, "score_gbt").await.unwrap() })
        })
        .collect();
    let mut models = Vec::new();
    for c in calls {
        models.push(c.await.unwrap());
    }
    assert!(models.iter().all(|m| std::sync::Arc::ptr_eq(m, &models[0])), "loaded more than once");
}
