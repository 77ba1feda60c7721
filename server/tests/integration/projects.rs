//! Continuous evaluation through the API: a project's runs over time, versioned gates, a run made
//! worse for one race failing its gate on exactly that slice, alerts and their webhook deliveries.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use polars::prelude::*;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::on_both_databases;

pub fn demo_frame() -> DataFrame {
    let f = std::fs::File::open(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/adult/eval.parquet")).unwrap();
    ParquetReader::new(f).finish().unwrap()
}

/// The demo rows with both models' scores for one race pulled halfway towards noise.
pub fn worse_for(df: &DataFrame, race: &str) -> DataFrame {
    let mut out = df.clone();
    let races: Vec<bool> = df.column("race").unwrap().str().unwrap().iter().map(|r| r == Some(race)).collect();
    for col in ["score_logreg", "score_gbt"] {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let scores: Vec<f64> = df
            .column(col)
            .unwrap()
            .f64()
            .unwrap()
            .iter()
            .zip(&races)
            .map(|(s, hit)| {
                // xorshift noise in [0, 1)
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let u = (state >> 11) as f64 / (1u64 << 53) as f64;
                let s = s.unwrap();
                if *hit { 0.5 * s + 0.5 * u } else { s }
            })
            .collect();
        out.with_column(Column::new(col.into(), scores)).unwrap();
    }
    out
}

pub fn parquet(df: &mut DataFrame) -> Vec<u8> {
    let mut out = Vec::new();
    ParquetWriter::new(&mut out).finish(df).unwrap();
    out
}

pub async fn upload(app: &TestApp, name: &str, df: &mut DataFrame, project: &str, version: &str) -> String {
    let spec = json!({"name": name, "label": "label", "scores": ["score_logreg", "score_gbt"], "id": "example_id", "timestamp": "timestamp", "project": project, "version": version});
    let (s, b) = app.upload(&format!("{name}.parquet"), &parquet(df), &spec, &[]).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b["id"].as_str().unwrap().to_string()
}

pub async fn send_json(app: &TestApp, method: &str, uri: &str, body: &Value) -> (StatusCode, Value) {
    let req = Request::builder().method(method).uri(uri).header("content-type", "application/json").body(Body::from(body.to_string())).unwrap();
    let (s, b) = app.request(req).await;
    (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

/// The gates of the done-when scenario.
pub fn gates() -> Value {
    json!({"gates": [
        {"metric": "auc_roc", "min": 0.85},
        {"metric": "auc_roc", "slice": "race", "min": 0.8, "significant_drop": true},
        {"metric": "accuracy", "slice": "sex", "max_drop": 0.02},
        {"metric": "fpr", "slice": "sex", "max_gap_increase": 0.02}
    ]})
}

/// A webhook receiver that answers 500 to the first call and 200 after; keeps the bodies.
async fn flaky_webhook() -> (String, Arc<Mutex<Vec<Value>>>) {
    let got: Arc<Mutex<Vec<Value>>> = Default::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                // Only deliveries signed with the shared secret count.
                use hmac::Mac;
                let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"s3cret").unwrap();
                mac.update(&body);
                let want: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
                let got = headers.get("x-strata-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
                if got != format!("sha256={want}") {
                    return StatusCode::UNAUTHORIZED;
                }
                let mut v = seen.lock().unwrap();
                v.push(serde_json::from_slice(&body).unwrap());
                if v.len() == 1 { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), got)
}

async fn a_run_worse_for_one_race_fails_its_gate_on_exactly_that_slice(app: TestApp) {
    let base = demo_frame();
    let v1 = upload(&app, "v1", &mut base.clone(), "adult", "v1").await;
    let v2 = upload(&app, "v2 worse for Black", &mut worse_for(&base, "Black"), "adult", "v2").await;

    // Gates are refused with the problem named, then stored as versions.
    let (s, e) = send_json(&app, "PUT", "/api/v1/projects/adult/gates", &json!({"gates": [{"metric": "auc", "min": 0.8}]})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(e["error"].as_str().unwrap().contains("gate 1 (auc): unknown metric"), "{e}");
    let (s, g) = send_json(&app, "PUT", "/api/v1/projects/adult/gates", &json!({"gates": [{"metric": "auc_roc", "min": 0.99}]})).await;
    assert_eq!((s, g["version"].as_i64()), (StatusCode::OK, Some(1)), "{g}");
    let (s, g) = send_json(&app, "PUT", "/api/v1/projects/adult/gates", &gates()).await;
    assert_eq!((s, g["version"].as_i64()), (StatusCode::OK, Some(2)), "{g}");
    let (_, old) = app.get_json("/api/v1/projects/adult/gates?version=1").await;
    assert_eq!(old["gates"]["gates"][0]["min"], 0.99);

    // A webhook that fails once: the alert is retried and both attempts are logged.
    let (hook, received) = flaky_webhook().await;
    let (s, w) = send_json(&app, "PUT", "/api/v1/alerts/webhook", &json!({"url": hook, "backoff_ms": 20, "secret": "s3cret"})).await;
    assert_eq!(s, StatusCode::OK, "{w}");
    assert_eq!(w["secret"], "(set)", "the secret is not sent back");
    let (s, _) = send_json(&app, "PUT", "/api/v1/alerts/webhook", &json!({"url": "ftp://example.com/x"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // The first run passes (nothing to compare with: change gates are skipped, and said so).
    let (s, r1) = send_json(&app, "POST", &format!("/api/v1/projects/adult/runs/{v1}/validate"), &Value::Null).await;
    assert_eq!(s, StatusCode::OK, "{r1}");
    assert_eq!(r1["passed"], true, "{r1}");
    assert_eq!(r1["gates_version"], 2);
    assert!(r1["baseline_run"].is_null());
    assert!(r1["notes"][0].as_str().unwrap().contains("no baseline run"), "{r1}");

    // The worse run fails, on race=Black only, against v1 as its baseline.
    let (s, r2) = send_json(&app, "POST", &format!("/api/v1/projects/adult/runs/{v2}/validate"), &Value::Null).await;
    assert_eq!(s, StatusCode::OK, "{r2}");
    assert_eq!(r2["passed"], false);
    assert_eq!(r2["baseline_run"], v1.as_str());
    let failures: Vec<&str> = r2["failures"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].starts_with("auc_roc on race=Black: "), "{failures:?}");
    assert!(failures[0].contains("significantly worse than the baseline"), "{failures:?}");
    let failed_slices: Vec<&str> = r2["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|o| o["slices"].as_array().unwrap().iter())
        .filter(|s| s["verdict"] == "fail")
        .map(|s| s["slice"].as_str().unwrap())
        .collect();
    assert_eq!(failed_slices, vec!["race=Black"]);
    // The other races are identical to the baseline.
    let race_gate = &r2["outcomes"][1];
    for s in race_gate["slices"].as_array().unwrap().iter().filter(|s| s["slice"] != "race=Black") {
        assert_eq!(s["value"], s["baseline"], "{s}");
        assert_eq!(s["verdict"], "pass", "{s}");
    }
    // Validating against an older version of the gates names that version.
    let (_, r_old) = send_json(&app, "POST", &format!("/api/v1/projects/adult/runs/{v2}/validate?gates_version=1"), &Value::Null).await;
    assert_eq!(r_old["gates_version"], 1);
    assert_eq!(r_old["passed"], false, "AUC 0.99 is out of reach");

    // The verdict is stored with the run and shown on its page.
    let (_, latest) = app.get_json(&format!("/api/v1/runs/{v2}/validation")).await;
    assert_eq!(latest["id"], r_old["id"]);
    let (s, html) = app.get_text(&format!("/runs/{v2}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("FAILED") && html.contains("gates v1 of project") && html.contains("auc_roc on overall: 0.8898 &lt; 0.99"), "run page shows the newest verdict");

    // Alerts: two gate failures (v2 against gates v2 and v1), each delivered after one retry.
    let (_, alerts) = app.get_json("/api/v1/alerts").await;
    let gate_alerts: Vec<&Value> = alerts["alerts"].as_array().unwrap().iter().filter(|a| a["kind"] == "gate").collect();
    assert_eq!(gate_alerts.len(), 2, "{alerts}");
    assert!(gate_alerts.iter().all(|a| a["run_id"] == v2.as_str()));
    let mut delivered = false;
    for _ in 0..100 {
        let (_, a) = app.get_json("/api/v1/alerts").await;
        let statuses: Vec<Vec<i64>> = a["alerts"].as_array().unwrap().iter().map(|x| x["deliveries"].as_array().unwrap().iter().filter_map(|d| d["status"].as_i64()).collect()).collect();
        let total: usize = statuses.iter().map(Vec::len).sum();
        if total == 3 {
            // The first call anywhere got 500 and was retried; every alert ends with a 200.
            assert!(statuses.iter().all(|s| s.last() == Some(&200)), "{statuses:?}");
            assert!(statuses.iter().any(|s| s == &vec![500, 200]), "{statuses:?}");
            delivered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(delivered, "webhook deliveries logged");
    let bodies = received.lock().unwrap().clone();
    assert!(bodies.iter().all(|b| b["alert"]["kind"] == "gate" && b["detail"]["validation"]["passed"] == false), "{bodies:?}");

    // Mistakes are named.
    let (s, e) = send_json(&app, "POST", &format!("/api/v1/projects/other/runs/{v2}/validate"), &Value::Null).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(e["error"].as_str().unwrap().contains("is not in project 'other'"), "{e}");
    let (s, _) = send_json(&app, "PATCH", &format!("/api/v1/runs/{v2}"), &json!({"project": "other", "version": "v9"})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = send_json(&app, "POST", &format!("/api/v1/projects/other/runs/{v2}/validate"), &Value::Null).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    assert!(e["error"].as_str().unwrap().contains("has no gates"), "{e}");
    let (s, e) = send_json(&app, "PATCH", &format!("/api/v1/runs/{v2}"), &json!({"project": "bad name/../x"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    // A gate on a metric a binary run does not have is refused, not skipped into a pass.
    let (s, _) = send_json(&app, "PUT", "/api/v1/projects/other/gates", &json!({"gates": [{"metric": "mae", "max": 1}]})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = send_json(&app, "POST", &format!("/api/v1/projects/other/runs/{v2}/validate"), &Value::Null).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(e["error"].as_str().unwrap().contains("binary run has no metric 'mae'"), "{e}");
    // Two saves at once get two versions.
    let body = gates();
    let (a, b) = tokio::join!(
        send_json(&app, "PUT", "/api/v1/projects/other/gates", &body),
        send_json(&app, "PUT", "/api/v1/projects/other/gates", &body)
    );
    assert_eq!((a.0, b.0), (StatusCode::OK, StatusCode::OK), "{a:?} {b:?}");
    let mut versions = vec![a.1["version"].as_i64().unwrap(), b.1["version"].as_i64().unwrap()];
    versions.sort_unstable();
    assert_eq!(versions, vec![2, 3]);

    // A baseline without the column the gates slice by: values are judged, changes skipped, and said so.
    let no_race = upload(&app, "no race", &mut demo_frame().drop("race").unwrap(), "p2", "v1").await;
    let cand = upload(&app, "candidate", &mut demo_frame(), "p2", "v2").await;
    let set = json!({"baseline": no_race, "gates": [{"metric": "auc_roc", "slice": "race", "min": 0.5, "max_drop": 0.01}]});
    let (s, _) = send_json(&app, "PUT", "/api/v1/projects/p2/gates", &set).await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = send_json(&app, "POST", &format!("/api/v1/projects/p2/runs/{cand}/validate"), &Value::Null).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["passed"], true, "{v}");
    assert!(v["notes"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().contains("cannot be sliced like this run")), "{v}");
}
on_both_databases!(a_run_worse_for_one_race_fails_its_gate_on_exactly_that_slice);

async fn the_project_shows_a_metric_over_runs_and_over_weeks(app: TestApp) {
    let base = demo_frame();
    let v1 = upload(&app, "v1", &mut base.clone(), "adult", "v1").await;
    let v2 = upload(&app, "v2", &mut worse_for(&base, "Black"), "adult", "v2").await;
    let (s, p) = app.get_json("/api/v1/projects/adult?metric=auc_roc&slice=race&by=run").await;
    assert_eq!(s, StatusCode::OK, "{p}");
    let points = p["points"].as_array().unwrap();
    assert_eq!(points.len(), 10, "5 races × 2 runs");
    let black: Vec<f64> = points.iter().filter(|x| x["slice"] == "race=Black").map(|x| x["value"].as_f64().unwrap()).collect();
    assert!(black[0] - black[1] > 0.1, "{black:?}");
    assert!(points.iter().all(|x| x["lo"].as_f64().unwrap() <= x["value"].as_f64().unwrap() && x["value"].as_f64().unwrap() <= x["hi"].as_f64().unwrap()));
    assert_eq!(p["runs"][0]["id"], v1.as_str());
    assert_eq!(p["runs"][1]["id"], v2.as_str());
    // Both releases were evaluated on the same examples (same run time): one point per run on a
    // category axis, in order, rather than a vertical line at one date.
    let chart: Value = serde_json::from_str(p["chart"].as_str().unwrap()).unwrap();
    assert_eq!(chart["layout"]["xaxis"]["type"], "category");
    let line = chart["data"].as_array().unwrap().iter().find(|t| t["mode"] == "lines+markers").unwrap();
    assert_eq!(line["x"][0].as_str().unwrap(), "v1 (2024-03-24)");

    // Per week of the examples' own timestamps: the demo spans twelve weeks.
    let (s, w) = app.get_json("/api/v1/projects/adult?metric=fpr&threshold=0.5&by=week").await;
    assert_eq!(s, StatusCode::OK, "{w}");
    let of_v1: Vec<&Value> = w["points"].as_array().unwrap().iter().filter(|x| x["run_id"] == v1.as_str()).collect();
    let weeks: Vec<&str> = of_v1.iter().map(|x| x["time"].as_str().unwrap()).collect();
    assert_eq!(weeks.len(), 12, "{weeks:?}");
    assert_eq!(weeks[0], "2024-01-01", "weeks start on Mondays");
    assert_eq!(of_v1.iter().map(|x| x["count"].as_u64().unwrap()).sum::<u64>(), 16_000);
    let chart: Value = serde_json::from_str(w["chart"].as_str().unwrap()).unwrap();
    assert!(chart["data"].as_array().unwrap().iter().any(|t| t["fill"] == "toself"), "CI bands");

    let (s, e) = app.get_json("/api/v1/projects/adult?by=month").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (s, _) = app.get_json("/api/v1/projects/nothing").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, html) = app.get_text("/projects/adult?by=week&slice=sex").await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("sex=Female") && html.contains("2024-03-18"), "{}", &html[..html.len().min(2000)]);
    let (_, list) = app.get_json("/api/v1/projects").await;
    assert_eq!(list[0]["project"], "adult");
    assert_eq!(list[0]["runs"], 2);
}
on_both_databases!(the_project_shows_a_metric_over_runs_and_over_weeks);

/// A gate on top-k accuracy judges a multiclass model given as per-class probabilities, slice by
/// slice; a model that only predicts a class has no top-k accuracy to gate.
async fn gates_on_top_k_accuracy(app: TestApp) {
    let csv = std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/multiclass.csv")).unwrap();
    let (s, body) = app.upload("multiclass.csv", &csv, &json!({"name": "animals", "project": "zoo"}), &[]).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let set = json!({"model": "prob_mlp", "gates": [{"metric": "top_2_accuracy", "slice": "group", "min": 0.8}]});
    let (s, g) = send_json(&app, "PUT", "/api/v1/projects/zoo/gates", &set).await;
    assert_eq!(s, StatusCode::OK, "{g}");
    let (s, v) = send_json(&app, "POST", &format!("/api/v1/projects/zoo/runs/{id}/validate"), &Value::Null).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // scikit-learn's top-2 accuracy per group: north 0.945, south 0.805, west 0.790.
    let failures: Vec<&str> = v["failures"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].starts_with("top_2_accuracy on group=west: 0.790"), "{failures:?}");
    let plain = json!({"model": "prediction_model", "gates": [{"metric": "top_2_accuracy", "min": 0.8}]});
    let (s, _) = send_json(&app, "PUT", "/api/v1/projects/zoo/gates", &plain).await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = send_json(&app, "POST", &format!("/api/v1/projects/zoo/runs/{id}/validate"), &Value::Null).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(e["error"].as_str().unwrap().contains("model 'prediction_model' of this multiclass run has no metric 'top_2_accuracy'"), "{e}");
}
on_both_databases!(gates_on_top_k_accuracy);

/// The project page's gates editor saves through the `save_gates` server function: the API's
/// checks, a new version each time, and the check's message for a gate set it refuses.
async fn the_page_saves_gates_as_a_new_version(app: TestApp) {
    let save = |gates: String| {
        let body = serde_urlencoded::to_string([("project", "zoo"), ("gates", gates.as_str())]).unwrap();
        Request::post("/api/save_gates").header("content-type", "application/x-www-form-urlencoded").body(Body::from(body)).unwrap()
    };
    let (s, b) = app.request(save(json!({"gates": [{"metric": "auc_roc", "min": 0.7}]}).to_string())).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!((v["version"].as_i64(), v["gates"]["gates"][0]["min"].as_f64()), (Some(1), Some(0.7)));
    let (s, b) = app.request(save(json!({"gates": [{"metric": "auc_roc", "min": 0.75, "slice": "sex"}], "min_size": 50}).to_string())).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let (_, g) = app.get_json("/api/v1/projects/zoo/gates").await;
    assert_eq!((g["version"].as_i64(), g["gates"]["min_size"].as_u64()), (Some(2), Some(50)), "{g}");
    // Refused, with the reason: no bound; not a gate set; too large. Nothing new is stored.
    let (s, b) = app.request(save(json!({"gates": [{"metric": "auc_roc"}]}).to_string())).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&b).contains("gate 1 (auc_roc): give at least one of min, max"), "{}", String::from_utf8_lossy(&b));
    let (s, b) = app.request(save("{\"gates\": [{\"min\": 0.5}]}".into())).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&b).contains("missing field `metric`"), "{}", String::from_utf8_lossy(&b));
    let (s, _) = app.request(save(format!("{{\"gates\": [], \"model\": \"{}\"}}", "x".repeat(strata_app::server_fns::MAX_GATES_JSON)))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (_, g) = app.get_json("/api/v1/projects/zoo/gates").await;
    assert_eq!(g["version"].as_i64(), Some(2));
}
on_both_databases!(the_page_saves_gates_as_a_new_version);

/// A delivery pending when the process died (the alert stored with its outbox row, nothing sent
/// yet) goes out after a restart: a new server on the same database sends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_webhook_delivery_survives_a_restart() {
    use strata_app::model::Alert;
    let dir = tempfile::tempdir().unwrap();
    let target = strata_server::settings::DatabaseTarget::Sqlite(dir.path().join("strata.db"));
    let got: Arc<Mutex<Vec<Value>>> = Default::default();
    let seen = got.clone();
    let receiver = axum::Router::new().route("/hook", axum::routing::post(move |body: axum::body::Bytes| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
            StatusCode::OK
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });
    let outbound = || strata_server::outbound::Outbound::new("127.0.0.1", true, 1 << 20).unwrap();

    // The first process: the webhook is set and an alert is raised, but it dies before sending.
    {
        let store = strata_server::store::Store::connect(&target).await.unwrap();
        let state = strata_server::service::AppState::new(store, 1 << 20, Default::default(), dir.path().join("tmp")).with_outbound(outbound());
        state.set_webhook(Some(serde_json::from_value(json!({"url": hook})).unwrap())).await.unwrap();
        let alert = Alert { id: "a1".into(), run_id: None, project: None, kind: "gate".into(), summary: "s".into(), created_at: "2026-11-30T00:00:00Z".into(), deliveries: vec![] };
        state.store.insert_alert(&alert, &json!({"alert": {"id": "a1"}}), true).await.unwrap();
        // (No worker was started: the process is gone.)
    }
    assert!(got.lock().unwrap().is_empty());

    // The next process, same database and key file: its worker sends it once.
    let store = strata_server::store::Store::connect(&target).await.unwrap();
    let secrets = strata_server::secrets::SecretBox::ephemeral();
    let state = strata_server::service::AppState::new(store, 1 << 20, Default::default(), dir.path().join("tmp")).with_outbound(outbound()).with_secrets(secrets);
    let worker = state.start_outbox();
    // Wait for the delivery to be both received and recorded: the receiver sees the body before
    // the worker reads its answer and clears the outbox row, so stopping the worker as soon as the
    // body arrives would race the bookkeeping this test checks.
    for _ in 0..400 {
        if !got.lock().unwrap().is_empty() && state.store.next_delivery_at().await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    worker.abort();
    assert_eq!(got.lock().unwrap().len(), 1, "delivered once after the restart");
    assert_eq!(got.lock().unwrap()[0]["alert"]["id"], "a1");
    assert!(state.store.next_delivery_at().await.unwrap().is_none(), "the outbox is empty");
    let alerts = state.store.list_alerts(10).await.unwrap();
    assert_eq!(alerts[0].deliveries.iter().map(|d| d.status).collect::<Vec<_>>(), vec![Some(200)]);
}

/// Model assertions: a project's rules are versioned like its gates; as a what-if on a run they
/// touch exactly the rows their conditions name (counted here from the data, independently of the
/// rule engine), the metrics with the rules equal the accuracy recomputed by hand with the
/// overrides, and a validation can judge the model with them.
async fn rules_override_decisions_as_a_what_if_and_in_validation(app: TestApp) {
    let mut df = demo_frame();
    let id = upload(&app, "ruled", &mut df, "ruled", "v1").await;
    assert_eq!(send_json(&app, "PUT", "/api/v1/projects/ruled/gates", &gates()).await.0, StatusCode::OK);
    // A syntax error names its line and column; nothing is saved.
    let (s, e) = send_json(&app, "PUT", "/api/v1/projects/ruled/rules", &json!({"source": "age < 25 => decision = 0\ncapital_gain > => decision = 1"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(e.to_string().contains("line 2, column"), "{e}");
    assert_eq!(app.get_json("/api/v1/projects/ruled/rules").await.0, StatusCode::NOT_FOUND);
    let source = "# young applicants are declined\nage < 25 => decision = 0\ncapital_gain > 5000 => decision = 1\nscore > 0.9 and hours_per_week < 30 => flag \"check\"\n";
    let (s, v1) = send_json(&app, "PUT", "/api/v1/projects/ruled/rules", &json!({"source": "age < 20 => decision = 0"})).await;
    assert_eq!((s, v1["version"].as_i64()), (StatusCode::OK, Some(1)), "{v1}");
    let (_, v2) = send_json(&app, "PUT", "/api/v1/projects/ruled/rules", &json!({"source": source})).await;
    assert_eq!(v2["version"], 2);
    let (_, old) = app.get_json("/api/v1/projects/ruled/rules?version=1").await;
    assert_eq!(old["source"], "age < 20 => decision = 0");

    let (s, r) = send_json(&app, "POST", &format!("/api/v1/runs/{id}/rules-impact"), &json!({"model": "score_gbt", "slices": ["sex"]})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["version"], 2);
    // The same counts straight from the data.
    let col = |n: &str| df.column(n).unwrap().cast(&DataType::Float64).unwrap().f64().unwrap().iter().map(|v| v.unwrap()).collect::<Vec<f64>>();
    let (age, gain, hours, score, label) = (col("age"), col("capital_gain"), col("hours_per_week"), col("score_gbt"), col("label"));
    let n = age.len();
    let young: Vec<bool> = age.iter().map(|a| *a < 25.0).collect();
    let rich: Vec<bool> = gain.iter().map(|g| *g > 5000.0).collect();
    let count = |f: &dyn Fn(usize) -> bool| (0..n).filter(|&i| f(i)).count() as u64;
    let rules = r["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 3);
    assert_eq!(rules[0]["touched"].as_u64().unwrap(), count(&|i| young[i]));
    assert_eq!(rules[0]["changed"].as_u64().unwrap(), count(&|i| young[i] && score[i] >= 0.5));
    assert_eq!(rules[1]["touched"].as_u64().unwrap(), count(&|i| rich[i]));
    assert_eq!(rules[1]["shadowed"].as_u64().unwrap(), count(&|i| rich[i] && young[i]));
    assert_eq!(rules[1]["changed"].as_u64().unwrap(), count(&|i| rich[i] && !young[i] && score[i] < 0.5));
    assert_eq!(rules[2]["touched"].as_u64().unwrap(), count(&|i| score[i] > 0.9 && hours[i] < 30.0));
    assert_eq!(r["flags"], json!([["check", count(&|i| score[i] > 0.9 && hours[i] < 30.0)]]));
    assert_eq!(r["decisions_changed"].as_u64().unwrap(), rules[0]["changed"].as_u64().unwrap() + rules[1]["changed"].as_u64().unwrap());
    // Accuracy at 0.5 with and without, recomputed with the overrides.
    let decide = |i: usize| if young[i] { false } else if rich[i] { true } else { score[i] >= 0.5 };
    let accuracy = |d: &dyn Fn(usize) -> bool| count(&|i| d(i) == (label[i] == 1.0)) as f64 / n as f64;
    let at = |side: &str| r[side]["slices"][0]["at"][0]["accuracy"]["value"].as_f64().unwrap();
    assert!((at("without") - accuracy(&|i| score[i] >= 0.5)).abs() < 1e-12, "{}", at("without"));
    assert!((at("with") - accuracy(&decide)).abs() < 1e-12, "{} vs {}", at("with"), accuracy(&decide));
    assert!(!r["with"]["criteria"].as_array().unwrap().is_empty(), "fairness criteria across sex, with the rules");
    assert_eq!(r["gates_with"].as_array().unwrap().len(), 4, "the project's gates judged with the rules too");
    // Unsaved text is tried as it is; bad names are named with a suggestion.
    let (s, e) = send_json(&app, "POST", &format!("/api/v1/runs/{id}/rules-impact"), &json!({"source": "agee < 3 => decision = 0"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(e.to_string().contains("agee") && e.to_string().contains("age"), "{e}");
    let (s, e) = send_json(&app, "POST", &format!("/api/v1/runs/{id}/rules-impact"), &json!({"source": "sex < 3 => decision = 0"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");

    // Validation with the rules: the verdict names the version and what the rules changed.
    let (s, v) = send_json(&app, "POST", &format!("/api/v1/projects/ruled/runs/{id}/validate?rules=true"), &json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["rules_version"], 2);
    assert!(v["notes"].to_string().contains("rules v2 applied"), "{v}");
    let (_, plain) = send_json(&app, "POST", &format!("/api/v1/projects/ruled/runs/{id}/validate?rules_version=1"), &json!({})).await;
    assert_eq!(plain["rules_version"], 1);
    let (_, none) = send_json(&app, "POST", &format!("/api/v1/projects/ruled/runs/{id}/validate"), &json!({})).await;
    assert!(none.get("rules_version").is_none(), "{none}");
}
on_both_databases!(rules_override_decisions_as_a_what_if_and_in_validation);
