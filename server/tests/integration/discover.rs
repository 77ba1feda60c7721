//! Slice discovery through the API: every found slice's numbers equal the slices API's for the
//! same slice (its spec, and its filter as a one-slice spec), on binary and regression runs and
//! every kind of metric; named slices and discovery gates in a project.

use axum::http::StatusCode;
use polars::prelude::*;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::on_both_databases;
use crate::projects::{demo_frame, send_json, upload};

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The slice of `result` (a `/metrics` answer) whose key is `key`.
fn slice_with<'a>(result: &'a Value, key: &serde_json::Map<String, Value>) -> Option<&'a Value> {
    result["slices"].as_array()?.iter().find(|s| s["key"].as_object().is_some_and(|k| k == key))
}

/// The value and interval of `metric` in a `/metrics` slice (at the first threshold when it is a
/// metric at a threshold).
fn estimate<'a>(s: &'a Value, metric: &str) -> &'a Value {
    let direct = &s["metrics"][metric];
    if direct.is_object() { direct } else { &s["at"][0][metric] }
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

/// For each metric: discovery on the run, then each found slice through `/metrics`, by its spec
/// (a cross) and by its filter (one slice): the same rows, the same value, the same interval
/// where the slices view's interval is Wilson's.
async fn check_against_slices_api(app: &TestApp, id: &str, model: &str, metrics: &[&str]) -> usize {
    let mut compared = 0;
    for metric in metrics {
        let (s, d) = app.get_json(&format!("/api/v1/runs/{id}/discover?model={model}&metric={metric}&level=2&top_k=5")).await;
        assert_eq!(s, StatusCode::OK, "{metric}: {d}");
        assert!(d["examined"].as_u64().unwrap() > d["slices"].as_array().unwrap().len() as u64, "{metric}: {d}");
        for found in d["slices"].as_array().unwrap().iter().take(3) {
            assert!(found["q_value"].as_f64().unwrap() <= 0.05, "{metric}: reported slices are significant: {found}");
            assert!(found["gap"]["value"].as_f64().unwrap() > 0.0, "{metric}: and worse: {found}");
            let key = found["key"].as_object().unwrap();
            // The registry has accuracy, not the error rate: compare 1 − accuracy.
            let (api_metric, flip) = if *metric == "error_rate" { ("accuracy", true) } else { (*metric, false) };
            for spec in [found["spec"].as_str().unwrap(), found["filter"].as_str().unwrap()] {
                let (s, m) = app.get_json(&format!("/api/v1/runs/{id}/metrics?model={model}&bootstrap=0&thresholds=0.5&slice={}", enc(spec))).await;
                assert_eq!(s, StatusCode::OK, "{spec}: {m}");
                let same = slice_with(&m, key).unwrap_or_else(|| panic!("{metric}: no slice {key:?} under '{spec}': {m}"));
                assert_eq!(same["count"], found["count"], "{metric} {spec}");
                let e = estimate(same, api_metric);
                let v = e["value"].as_f64().unwrap();
                let want = if flip { 1.0 - v } else { v };
                let got = found["metric"]["value"].as_f64().unwrap();
                assert!(close(got, want, 1e-12), "{metric} on {spec}: discovery {got}, slices API {want}");
                if e["method"] == "wilson" {
                    let (lo, hi) = (e["lo"].as_f64().unwrap(), e["hi"].as_f64().unwrap());
                    let (lo, hi) = if flip { (1.0 - hi, 1.0 - lo) } else { (lo, hi) };
                    assert!(close(found["metric"]["lo"].as_f64().unwrap(), lo, 1e-9) && close(found["metric"]["hi"].as_f64().unwrap(), hi, 1e-9), "{metric}: Wilson interval {found} vs {e}");
                }
                compared += 1;
            }
        }
    }
    compared
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn found_slices_equal_the_slices_api_on_every_metric() {
    let app = TestApp::sqlite().await;
    let adult = upload(&app, "adult", &mut demo_frame(), "", "").await;
    let n = check_against_slices_api(&app, &adult, "score_logreg", &["error_rate", "fpr", "fnr", "precision", "log_loss", "brier_score", "auc_roc", "expected_calibration_error"]).await;
    eprintln!("binary: compared {n} slices");
    assert!(n >= 30, "compared {n} slices");
    // Regression: the GSS wages demo.
    let f = std::fs::File::open(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/wages/eval.parquet")).unwrap();
    let mut wages = ParquetReader::new(f).finish().unwrap();
    let mut out = Vec::new();
    ParquetWriter::new(&mut out).finish(&mut wages).unwrap();
    let spec = json!({"name": "wages", "label": "label", "scores": ["prediction_linear", "prediction_gbt"], "id": "example_id", "timestamp": "timestamp"});
    let (s, b) = app.upload("wages.parquet", &out, &spec, &[]).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let wages = b["id"].as_str().unwrap().to_string();
    let n = check_against_slices_api(&app, &wages, "prediction_linear", &["mae", "rmse", "mean_residual"]).await;
    assert!(n >= 6, "compared {n} slices");

    // Holdout mode and SliceLine scoring answer; mistakes are 400s that name the fix.
    let (s, h) = app.get_json(&format!("/api/v1/runs/{adult}/discover?holdout=true&level=2")).await;
    assert_eq!(s, StatusCode::OK, "{h}");
    assert!(h["holdout_rows"].as_u64().unwrap() > 7000, "{h}");
    let (s, sl) = app.get_json(&format!("/api/v1/runs/{adult}/discover?scoring=sliceline&level=2&min_support=32")).await;
    assert_eq!((s, sl["scoring"].as_str()), (StatusCode::OK, Some("sliceline")), "{sl}");
    for (q, says) in [
        ("features=sexx", "'sexx' is not a feature column"),
        ("metric=r2", "does not support metric 'r2'"),
        ("level=4", "level 1..=3"),
        ("scoring=auc_roc&metric=auc_roc", "gap or sliceline"),
        ("scoring=sliceline&metric=auc_roc", "SliceLine"),
        ("nonsense=1", "nonsense"),
    ] {
        let (s, e) = app.get_json(&format!("/api/v1/runs/{adult}/discover?{q}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {e}");
        assert!(e["error"].as_str().unwrap().contains(says), "{q}: {e}");
    }
}

/// A found slice saved by name in a project, tracked on the project page, and a discovery gate
/// that fails on the slices it finds and passes with a looser bound.
async fn named_slices_and_discovery_gates(app: TestApp) {
    let id = upload(&app, "v1", &mut demo_frame(), "disc", "v1").await;
    let (s, d) = app.get_json(&format!("/api/v1/runs/{id}/discover?model=score_logreg&metric=fnr&level=2&min_support=500")).await;
    assert_eq!(s, StatusCode::OK, "{d}");
    let best = &d["slices"][0];
    let filter = best["filter"].as_str().unwrap();
    let (s, saved) = send_json(&app, "PUT", "/api/v1/projects/disc/slices/weakest", &json!({"filter": filter, "metric": "fnr"})).await;
    assert_eq!(s, StatusCode::OK, "{saved}");
    let (_, list) = app.get_json("/api/v1/projects/disc/slices").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["filter"], filter);
    // Tracked over the runs: the project view of the filter has the slice's value.
    let (s, pv) = app.get_json(&format!("/api/v1/projects/disc?model=score_logreg&metric=fnr&slice={}", enc(filter))).await;
    assert_eq!(s, StatusCode::OK, "{pv}");
    assert!(pv.to_string().contains(&best["key"].as_object().unwrap().values().next().unwrap().as_str().unwrap().replace('"', "")), "{pv}");
    for (body, says) in [(json!({"filter": "sex"}), "is not a filter"), (json!({"filter": "age in [9, 3)"}), "lo < hi")] {
        let (s, e) = send_json(&app, "PUT", "/api/v1/projects/disc/slices/bad", &body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        assert!(e["error"].as_str().unwrap().contains(says), "{e}");
    }
    let (s, _) = send_json(&app, "PUT", "/api/v1/projects/nope/slices/x", &json!({"filter": "sex=Male"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A discovery gate: strict, it fails on the found slices; loose, it passes.
    let gap = best["gap"]["value"].as_f64().unwrap();
    let gate = |max_gap: f64| json!({"model": "score_logreg", "gates": [{"metric": "fnr", "discover": {"min_support": 500, "max_gap": max_gap, "level": 2}}]});
    let (s, g) = send_json(&app, "PUT", "/api/v1/projects/disc/gates", &gate(gap / 2.0)).await;
    assert_eq!(s, StatusCode::OK, "{g}");
    let (s, v) = send_json(&app, "POST", &format!("/api/v1/projects/disc/runs/{id}/validate"), &Value::Null).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["passed"], false, "{v}");
    assert!(v["failures"].as_array().unwrap().iter().any(|f| f.as_str().unwrap().contains(filter)), "the failure names the slice: {v}");
    let (_, _) = send_json(&app, "PUT", "/api/v1/projects/disc/gates", &gate(gap + 0.5)).await;
    let (_, v) = send_json(&app, "POST", &format!("/api/v1/projects/disc/runs/{id}/validate"), &Value::Null).await;
    assert_eq!(v["passed"], true, "{v}");
    // A discovery gate has no fixed slice.
    let (s, e) = send_json(&app, "PUT", "/api/v1/projects/disc/gates", &json!({"gates": [{"metric": "fnr", "slice": "sex", "discover": {"min_support": 5, "max_gap": 0.1}}]})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (s, _) = send_json(&app, "DELETE", "/api/v1/projects/disc/slices/weakest", &Value::Null).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

on_both_databases!(named_slices_and_discovery_gates);
