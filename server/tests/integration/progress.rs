//! Progress and cancellation of long work: a tracked request's progress grows to its total and
//! only its starter sees it; a cancelled analysis (asked, or its client gone) stops early and
//! frees its worker at once.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use strata_app::model::{NewUser, UserRole};
use strata_server::settings::Limits;
use strata_server::settings::DatabaseTarget;

use crate::helpers::TestApp;
use crate::projects::{demo_frame, upload};

/// A bootstrap long enough to watch and cancel: 2000 replicates over slices and thresholds.
fn long_metrics(run: &str) -> String {
    format!("/api/v1/runs/{run}/metrics?model=score_gbt&slice=education&slice=race,sex&thresholds=0.1:0.9:0.1&bootstrap=2000")
}

fn tracked(method: &str, uri: &str, job: &str, auth: Option<&str>) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri).header("x-strata-job", job);
    if let Some(cookie) = auth {
        b = b.header("cookie", cookie);
    }
    b.body(Body::empty()).unwrap()
}

async fn job(app: &TestApp, id: &str, auth: Option<&str>) -> (StatusCode, Value) {
    let mut b = Request::get(format!("/api/v1/jobs/{id}"));
    if let Some(cookie) = auth {
        b = b.header("cookie", cookie);
    }
    let (s, body) = app.request(b.body(Body::empty()).unwrap()).await;
    (s, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Polls job `id` until `until` holds (or fails after 60 s).
async fn wait_for(app: &TestApp, id: &str, until: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let (s, v) = job(app, id, None).await;
        if s == StatusCode::OK && until(&v) {
            return v;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "job {id} never reached the state looked for; last seen {s}: {v}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn app_with_one_worker() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let target = DatabaseTarget::Sqlite(dir.path().join("strata.db"));
    TestApp::with(target, dir, Limits { workers: 1, ..Limits::default() }).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_analysis_stops_early_and_frees_its_worker() {
    let app = app_with_one_worker().await;
    let run = upload(&app, "adult", &mut demo_frame(), "p", "v1").await;
    let request = tokio::spawn({
        let (router, uri) = (app.router.clone(), long_metrics(&run));
        async move { tower::ServiceExt::oneshot(router, tracked("GET", &uri, "job-cancel-0001", None)).await.unwrap().status() }
    });
    let seen = wait_for(&app, "job-cancel-0001", |v| v["done"].as_u64() > Some(0)).await;
    assert_eq!(seen["state"], "running");
    assert_eq!(seen["stage"], "bootstrap");
    let (s, v) = app.request(Request::delete("/api/v1/jobs/job-cancel-0001").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&v));
    assert_eq!(request.await.unwrap(), StatusCode::CONFLICT, "a cancelled analysis is answered 409");
    let stopped = wait_for(&app, "job-cancel-0001", |v| v["state"] == "cancelled").await;
    let (done, total) = (stopped["done"].as_u64().unwrap(), stopped["total"].as_u64().unwrap());
    assert!(done < total, "it stopped early: {done} of {total} replicates");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(job(&app, "job-cancel-0001", None).await.1["done"].as_u64(), Some(done), "its progress no longer grows");
    // The only worker is free: the next job starts at once.
    assert_eq!(app.state.work.load().0, 0);
    let started = Instant::now();
    let (s, _) = app.get_json(&format!("/api/v1/runs/{run}/metrics?model=score_gbt&bootstrap=0")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(20), "the next job waited {:?}", started.elapsed());
}

/// The demo rows `times` over, ids made unique: two such runs take a while to compare.
fn repeated_demo(times: usize) -> polars::prelude::DataFrame {
    use polars::prelude::*;
    let one = demo_frame();
    let mut big = one.clone();
    for _ in 1..times {
        big.vstack_mut(&one).unwrap();
    }
    let ids: Vec<String> = (0..big.height()).map(|i| format!("x{i}")).collect();
    big.with_column(Column::new("example_id".into(), ids)).unwrap();
    big
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drift_reports_its_columns_and_a_cancelled_one_stops_early() {
    let app = app_with_one_worker().await;
    let mut big = repeated_demo(40);
    let (a, b) = (upload(&app, "adult-a", &mut big, "p", "v1").await, upload(&app, "adult-b", &mut big, "p", "v2").await);
    let drift = format!("/api/v1/runs/{b}/drift?reference={a}");
    // Cancelled once it has begun comparing columns (past a step for each run read): answered
    // 409, its progress stops short.
    let request = tokio::spawn({
        let (router, drift) = (app.router.clone(), drift.clone());
        async move { tower::ServiceExt::oneshot(router, tracked("GET", &drift, "job-drift-stop1", None)).await.unwrap().status() }
    });
    wait_for(&app, "job-drift-stop1", |v| v["done"].as_u64() > Some(2)).await;
    let (s, v) = app.request(Request::delete("/api/v1/jobs/job-drift-stop1").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&v));
    assert_eq!(request.await.unwrap(), StatusCode::CONFLICT, "a cancelled drift is answered 409");
    let stopped = wait_for(&app, "job-drift-stop1", |v| v["state"] == "cancelled").await;
    // Tracked to its end: one step per run read (the reference and this one), then one per
    // compared column (features, then scores).
    let (s, body) = app.request(tracked("GET", &drift, "job-drift-done1", None)).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let steps = 2 + serde_json::from_slice::<Value>(&body).unwrap()["features"].as_array().unwrap().len() as u64;
    let (_, v) = job(&app, "job-drift-done1", None).await;
    assert_eq!((v["state"].as_str(), v["stage"].as_str()), (Some("done"), Some("features")), "{v}");
    assert_eq!((v["done"].as_u64(), v["total"].as_u64()), (Some(steps), Some(steps)), "{v}");
    assert!(stopped["done"].as_u64() < Some(steps), "the cancelled one stopped early: {stopped}");
    // Asked again: the kept answer, the same bytes, and no step of work done for it.
    let (s, again) = app.request(tracked("GET", &drift, "job-drift-again", None)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(again, body, "the same answer");
    let (_, v) = job(&app, "job-drift-again", None).await;
    assert_eq!((v["state"].as_str(), v["stage"].as_str()), (Some("done"), Some("")), "kept, not computed again (no stage was entered): {v}");
    assert!(v["total"].as_u64() < Some(steps), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whatif_pages_attack_reports_into_the_pages_job() {
    let app = TestApp::sqlite().await;
    strata_server::demo::load_if_empty(&app.state).await.unwrap();
    let (_, runs) = app.get_json("/api/v1/runs").await;
    let id = runs.as_array().unwrap().iter().find(|r| r["name"] == "Adult income (demo)").unwrap()["id"].as_str().unwrap().to_string();
    // The page's server function names its job in its form, as the browser sends it.
    let form = serde_urlencoded::to_string([("id", id.as_str()), ("query", "adv=1&adv_immutable=sex,race"), ("job", "job-whatif-adv1")]).unwrap();
    let req = Request::post("/api/get_whatif_view").header("content-type", "application/x-www-form-urlencoded").body(Body::from(form)).unwrap();
    let (s, b) = app.request(req).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    assert!(serde_json::from_slice::<Value>(&b).unwrap()["adversarial"].is_object(), "the search ran");
    let (_, v) = job(&app, "job-whatif-adv1", None).await;
    assert_eq!((v["state"].as_str(), v["stage"].as_str()), (Some("done"), Some("search")), "{v}");
    assert!(v["done"].as_u64() > Some(0) && v["done"].as_u64() <= v["total"].as_u64(), "its greedy steps were counted: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_cancels_its_analysis() {
    let app = app_with_one_worker().await;
    let run = upload(&app, "adult", &mut demo_frame(), "p", "v1").await;
    let request = tokio::spawn({
        let (router, uri) = (app.router.clone(), long_metrics(&run));
        async move { tower::ServiceExt::oneshot(router, tracked("GET", &uri, "job-dropped-01", None)).await.map(|r| r.status()) }
    });
    wait_for(&app, "job-dropped-01", |v| v["done"].as_u64() > Some(0)).await;
    // The connection closes: the request's future is dropped.
    request.abort();
    let stopped = wait_for(&app, "job-dropped-01", |v| v["state"] == "cancelled").await;
    let started = Instant::now();
    while app.state.work.load().0 > 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "the worker was never freed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let done = job(&app, "job-dropped-01", None).await.1["done"].as_u64().unwrap();
    assert!(done < stopped["total"].as_u64().unwrap(), "it stopped early");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(job(&app, "job-dropped-01", None).await.1["done"].as_u64(), Some(done), "its progress no longer grows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_only_grows_and_reaches_the_total() {
    let app = TestApp::sqlite().await;
    let run = upload(&app, "adult", &mut demo_frame(), "p", "v1").await;
    let uri = format!("/api/v1/runs/{run}/metrics?model=score_gbt&slice=race&bootstrap=400");
    let request = tokio::spawn({
        let router = app.router.clone();
        async move { tower::ServiceExt::oneshot(router, tracked("GET", &uri, "job-grows-0001", None)).await.unwrap().status() }
    });
    let mut seen: Vec<(u64, u64)> = Vec::new();
    loop {
        let (s, v) = job(&app, "job-grows-0001", None).await;
        if s == StatusCode::OK {
            seen.push((v["done"].as_u64().unwrap(), v["total"].as_u64().unwrap()));
            if v["state"] != "running" {
                assert_eq!(v["state"], "done", "{v}");
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(request.await.unwrap(), StatusCode::OK);
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "done never shrinks: {seen:?}");
    assert!(seen.iter().all(|(d, t)| *t == 0 || d <= t), "done never passes the total: {seen:?}");
    let (done, total) = *seen.last().unwrap();
    // A binary bootstrap's first request on new cells: per replicate, a step for its
    // threshold-free values (kept for later requests) and one for the counts at the thresholds.
    assert_eq!((done, total), (800, 800), "it ends at its total: one step per replicate and part");

    // An upload's job reports the rows it read.
    let csv = std::fs::read(crate::helpers::demo().join("adult/eval.csv")).unwrap();
    let lines = csv.iter().filter(|b| **b == b'\n').count() as u64 - 1;
    let boundary = "strata-progress-boundary";
    let spec = serde_json::json!({"name": "tracked upload", "label": "label", "scores": ["score_logreg", "score_gbt"]});
    let body = crate::helpers::multipart(boundary, &spec, "eval.csv", &csv, &[]);
    let req = Request::post("/api/v1/runs")
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .header("x-strata-job", "job-upload-0001")
        .body(Body::from(body))
        .unwrap();
    let (s, b) = app.request(req).await;
    assert_eq!(s, StatusCode::CREATED, "{}", String::from_utf8_lossy(&b));
    let (_, v) = job(&app, "job-upload-0001", None).await;
    assert_eq!(v["state"], "done");
    assert_eq!(v["rows"].as_u64(), Some(lines), "{v}");
    assert_eq!(v["done"], v["total"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_seen_and_cancelled_only_by_its_starter() {
    let app = TestApp::sqlite().await;
    let run = upload(&app, "adult", &mut demo_frame(), "p", "v1").await;
    let mut cookies = Vec::new();
    for name in ["ann", "bob"] {
        app.state.create_user(NewUser { name: name.into(), role: UserRole::Viewer, password: Some("correct horse battery".into()), service: false }).await.unwrap();
        let a = app.state.store.account_by_name(name).await.unwrap().unwrap();
        let (sid, hash) = strata_server::auth::new_secret("");
        let expires = strata_server::store::projects::stamp(chrono::Utc::now() + chrono::Duration::days(1));
        app.state.store.create_session(&hash, &a.id, &expires).await.unwrap();
        cookies.push(format!("strata_session={sid}"));
    }
    let (ann, bob) = (Some(cookies[0].as_str()), Some(cookies[1].as_str()));
    let (s, _) = app.request(tracked("GET", &format!("/api/v1/runs/{run}/metrics?model=score_gbt&bootstrap=20"), "job-anns-00001", ann)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = job(&app, "job-anns-00001", ann).await;
    assert_eq!((s, v["state"].as_str()), (StatusCode::OK, Some("done")));
    let (s, v) = job(&app, "job-anns-00001", bob).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another user's job is not theirs to see: {v}");
    let (s, _) = app.request(tracked("DELETE", "/api/v1/jobs/job-anns-00001", "", bob)).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "nor to cancel");
    let (s, _) = app.request(tracked("GET", &format!("/api/v1/runs/{run}/metrics?model=score_gbt&bootstrap=0"), "job-anns-00001", bob)).await;
    assert_eq!(s, StatusCode::CONFLICT, "nor to take its id");
    let (s, _) = job(&app, "job-anns-00001", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "signed out: no jobs at all");
    let (s, _) = app.request(tracked("GET", &format!("/api/v1/runs/{run}/metrics?bootstrap=0"), "bad id!", ann)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a job id is checked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_view_spare_workers_compute_the_other_models_ahead() {
    let app = TestApp::sqlite().await;
    let run = upload(&app, "adult", &mut demo_frame(), "p", "v1").await;
    let other = "slice=race&model=score_logreg&thresholds=0.4";
    assert!(!app.state.metrics_cached(&run, other).await.unwrap());
    app.state.slice_view(&run, "slice=race&model=score_gbt&thresholds=0.4").await.unwrap();
    // The view answered; the other model's same request is computed on idle workers.
    let started = Instant::now();
    while !app.state.metrics_cached(&run, other).await.unwrap() {
        assert!(started.elapsed() < Duration::from_secs(60), "the other model was never computed ahead");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ahead = app.state.metrics(&run, other).await.unwrap();
    // The same numbers as a server that computes it when asked.
    let fresh = TestApp::sqlite().await;
    let run2 = upload(&fresh, "adult", &mut demo_frame(), "p", "v1").await;
    let asked = fresh.state.metrics(&run2, other).await.unwrap();
    assert_eq!(serde_json::to_value(&ahead).unwrap(), serde_json::to_value(&asked).unwrap());
    assert_eq!(ahead.model, "score_logreg");
}
