//! Drift between runs equals scipy (golden/make_drift_golden.py); a synthetic drifted run is
//! flagged on exactly the drifted features.

use axum::http::StatusCode;
use polars::prelude::*;
use serde_json::json;

use crate::helpers::TestApp;
use crate::on_both_databases;

fn parquet(df: &mut DataFrame) -> Vec<u8> {
    let mut out = Vec::new();
    ParquetWriter::new(&mut out).finish(df).unwrap();
    out
}

async fn upload(app: &TestApp, name: &str, df: &mut DataFrame) -> String {
    let spec = json!({"name": name, "label": "label", "scores": ["score_logreg", "score_gbt"], "id": "example_id", "timestamp": "timestamp"});
    let (s, b) = app.upload(&format!("{name}.parquet"), &parquet(df), &spec, &[]).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b["id"].as_str().unwrap().to_string()
}

async fn drift_matches_scipy_and_flags_the_drifted_features(app: TestApp) {
    let golden: serde_json::Value = serde_json::from_str(include_str!("../golden/drift.json")).unwrap();
    let f = std::fs::File::open(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/adult/eval.parquet")).unwrap();
    let all = ParquetReader::new(f).finish().unwrap();
    let mut reference = all.slice(0, 8000);
    let mut current = all.slice(8000, all.height() - 8000);
    // The drifted copy: age + 10, occupation moved to the next category (sorted, cyclic).
    let occ = current.column("occupation").unwrap().str().unwrap().clone();
    let mut cats: Vec<String> = all.column("occupation").unwrap().str().unwrap().iter().flatten().map(str::to_string).collect();
    cats.sort();
    cats.dedup();
    let moved: Vec<Option<String>> = occ.iter().map(|v| v.map(|v| cats[(cats.iter().position(|c| c == v).unwrap() + 1) % cats.len()].clone())).collect();
    let mut drifted = current.clone();
    let age = current.column("age").unwrap().as_materialized_series() + 10;
    drifted.with_column(age.into_column()).unwrap();
    drifted.with_column(Column::new("occupation".into(), moved)).unwrap();
    let rid = upload(&app, "reference", &mut reference).await;
    let cid = upload(&app, "current", &mut current).await;
    let did = upload(&app, "drifted", &mut drifted).await;

    for (run, key) in [(&cid, "natural"), (&did, "drifted")] {
        let (s, r) = app.get_json(&format!("/api/v1/runs/{run}/drift?reference={rid}")).await;
        assert_eq!(s, StatusCode::OK, "{r}");
        let mut compared = 0;
        for (name, want) in golden[key].as_object().unwrap() {
            let got = r["features"].as_array().unwrap().iter().find(|f| f["feature"] == name.as_str()).unwrap_or_else(|| panic!("{name}"));
            if got["test"] != want["test"] {
                continue; // the run typed it differently from pandas
            }
            compared += 1;
            let close = |field: &str, w: &str, tol: f64| {
                let (g, w) = (got[field].as_f64().unwrap(), want[w].as_f64().unwrap());
                assert!((g - w).abs() <= tol * w.abs().max(1.0), "{key} {name} {field}: strata {g}, scipy/numpy {w}");
            };
            close("statistic", "statistic", 1e-9);
            close("psi", "psi", 1e-9);
            close("js_distance", "js", 1e-9);
            close("hellinger", "hellinger", 1e-9);
            let (g, w) = (got["p_value"].as_f64().unwrap(), want["p"].as_f64().unwrap());
            assert!((g - w).abs() <= 1e-6 * w.max(1e-300) || (g - w).abs() < 1e-12, "{key} {name} p: strata {g}, scipy {w}");
        }
        assert!(compared >= 10, "{compared} features compared");
        let flagged: Vec<&str> = r["features"].as_array().unwrap().iter().filter(|f| f["drifted"] == true && f["kind"] != "score").map(|f| f["feature"].as_str().unwrap()).collect();
        match key {
            // The demo's mild built-in drift (age PSI 0.06) stays below the alarm.
            "natural" => assert!(flagged.is_empty(), "{flagged:?}"),
            _ => {
                let mut f = flagged.clone();
                f.sort();
                assert_eq!(f, vec!["age", "occupation"]);
            }
        }
        assert!(r["base_rate_p_value"].is_number());
    }
    let (s, e) = app.get_json(&format!("/api/v1/runs/{cid}/drift")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");

    // A window of earlier runs as the reference: the reference's two halves, stacked, give the
    // same statistics as the whole.
    let h1 = upload(&app, "first half", &mut all.slice(0, 4000)).await;
    let h2 = upload(&app, "second half", &mut all.slice(4000, 4000)).await;
    let (_, whole) = app.get_json(&format!("/api/v1/runs/{did}/drift?reference={rid}")).await;
    let (s, window) = app.get_json(&format!("/api/v1/runs/{did}/drift?reference={h1},{h2}")).await;
    assert_eq!(s, StatusCode::OK, "{window}");
    let pick = |r: &serde_json::Value| -> Vec<(String, f64, f64, f64)> {
        r["features"].as_array().unwrap().iter().map(|f| (f["feature"].as_str().unwrap().to_string(), f["psi"].as_f64().unwrap(), f["statistic"].as_f64().unwrap(), f["p_value"].as_f64().unwrap())).collect()
    };
    let (w, h) = (pick(&window), pick(&whole));
    assert_eq!(w.len(), h.len());
    for (a, b) in w.iter().zip(&h) {
        assert_eq!(a.0, b.0);
        for (x, y) in [(a.1, b.1), (a.2, b.2), (a.3, b.3)] {
            assert!((x - y).abs() <= 1e-9 * y.abs().max(1.0), "{a:?} vs {b:?}");
        }
    }
    assert_eq!(window["base_rate_reference"], whole["base_rate_reference"]);
    let (s, e) = app.get_json(&format!("/api/v1/runs/{did}/drift?reference={h1},{did}")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (s, html) = app.get_text(&format!("/runs/{did}/drift?reference={rid}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("2 features drifted"), "{}", &html[..html.len().min(1500)]);
}
on_both_databases!(drift_matches_scipy_and_flags_the_drifted_features);

async fn stream_drift_finds_where_the_errors_jump(app: TestApp) {
    let f = std::fs::File::open(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/adult/eval.parquet")).unwrap();
    let mut df = ParquetReader::new(f).finish().unwrap();
    // From row 10000 on (rows are in time order), the labels of a third of the rows are flipped:
    // the model's error rate jumps from ~13% to ~40%.
    let flipped: Vec<i64> = df.column("label").unwrap().cast(&DataType::Int64).unwrap().i64().unwrap().iter().enumerate()
        .map(|(i, v)| { let v = v.unwrap(); if i >= 10_000 && i % 3 == 0 { 1 - v } else { v } }).collect();
    df.with_column(Column::new("label".into(), flipped)).unwrap();
    let id = upload(&app, "label noise from row 10000", &mut df).await;
    let (s, r) = app.get_json(&format!("/api/v1/runs/{id}/stream-drift?model=score_gbt")).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["order_by"], "timestamp");
    let drifts: Vec<u64> = r["ddm_drifts"].as_array().unwrap().iter().map(|d| d["index"].as_u64().unwrap()).collect();
    let first_after = drifts.iter().find(|d| **d >= 10_000).copied();
    assert!(first_after.is_some_and(|d| d < 10_600), "DDM finds the jump within 600 rows: {drifts:?}");
    assert!(drifts.iter().all(|d| *d >= 10_000), "no alarm before the change: {drifts:?}");
    // ADWIN and Linear Four Rates see it too (LFR tests four rates at every row, so it may raise
    // an odd false alarm before the change: the first one after it is what counts).
    for key in ["adwin_drifts", "lfr_drifts"] {
        let at: Vec<u64> = r[key].as_array().unwrap().iter().map(|d| d["index"].as_u64().unwrap()).collect();
        assert!(at.iter().find(|d| **d >= 10_000).is_some_and(|d| *d < 10_600), "{key} finds the jump within 600 rows: {at:?}");
    }
    assert!(r["adwin_drifts"].as_array().unwrap().iter().all(|d| d["index"].as_u64().unwrap() >= 10_000), "ADWIN: no alarm before the change");
    let chart: serde_json::Value = serde_json::from_str(r["chart"].as_str().unwrap()).unwrap();
    assert_eq!(chart["data"].as_array().unwrap().len(), 7, "the error line and six marker rows");
    let (s, e) = app.get_json(&format!("/api/v1/runs/{id}/stream-drift?threshold=2")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
}
on_both_databases!(stream_drift_finds_where_the_errors_jump);
