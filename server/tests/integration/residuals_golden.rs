//! The residuals API on the wages demo equals scipy/statsmodels (golden/make_wages_residuals.py).

use axum::http::StatusCode;

use crate::helpers::TestApp;
use crate::on_both_databases;

fn close(got: &serde_json::Value, want: &serde_json::Value, rel: f64, what: &str) {
    let (g, w) = (got.as_f64().unwrap_or_else(|| panic!("{what}: {got}")), want.as_f64().unwrap());
    assert!((g - w).abs() <= rel * w.abs().max(1e-300) || (g - w).abs() < 1e-12, "{what}: strata {g}, reference {w}");
}

async fn wages_residuals_match_scipy_and_statsmodels(app: TestApp) {
    let golden: serde_json::Value = serde_json::from_str(include_str!("../golden/wages_residuals.json")).unwrap();
    strata_server::demo::load_if_empty(&app.state).await.unwrap();
    let (_, runs) = app.get_json("/api/v1/runs").await;
    let id = runs.as_array().unwrap().iter().find(|r| r["name"] == "GSS wages (demo)").unwrap()["id"].as_str().unwrap().to_string();
    let (s, r) = app.get_json(&format!("/api/v1/runs/{id}/residuals?model=prediction_gbt&feature=gender&slice=educcat")).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["n"], golden["n"]);
    close(&r["mean"], &golden["mean"], 1e-9, "mean");
    close(&r["sd"], &golden["sd"], 1e-9, "sd");
    let features = r["features"].as_array().unwrap();
    for (name, want) in golden["features"].as_object().unwrap() {
        let got = features.iter().find(|f| f["feature"] == name.as_str()).unwrap_or_else(|| panic!("{name} not ranked"));
        if want.get("eta").is_some() {
            close(&got["strength"], &want["eta"], 1e-9, &format!("{name} eta"));
            close(&got["p_value"], &want["p"], 1e-6, &format!("{name} ANOVA p"));
        } else {
            close(&got["strength"], &want["spearman"], 1e-9, &format!("{name} spearman"));
            close(&got["p_value"], &want["spearman_p"], 1e-6, &format!("{name} spearman p"));
            close(&got["pearson"], &want["pearson"], 1e-9, &format!("{name} pearson"));
            close(&got["pearson_p_value"], &want["pearson_p"], 1e-6, &format!("{name} pearson p"));
            assert_eq!(got["n"], want["n"]);
        }
    }
    // Ranked by strength.
    let strengths: Vec<f64> = features.iter().map(|f| f["strength"].as_f64().unwrap().abs()).collect();
    assert!(strengths.windows(2).all(|w| w[0] >= w[1]), "{strengths:?}");
    let ac = &r["autocorrelation"];
    assert_eq!(ac["order_by"], "timestamp");
    close(&ac["durbin_watson"], &golden["durbin_watson"], 1e-9, "Durbin-Watson");
    for lag in 0..=40 {
        close(&ac["acf"][lag], &golden["acf"][lag], 1e-9, &format!("acf[{lag}]"));
        close(&ac["lo"][lag], &golden["acf_lo"][lag], 1e-9, &format!("acf lo[{lag}]"));
    }
    // Charts get a sample, not every row.
    assert_eq!(r["sampled"], 2000);
    assert_eq!(r["vs_prediction"]["sample_x"].as_array().unwrap().len(), 2000);
    assert_eq!(r["hist_counts"].as_array().unwrap().iter().map(|c| c.as_f64().unwrap()).sum::<f64>(), 10000.0);
    assert!(r["qq_theoretical"].as_array().unwrap().len() <= 401);
    assert_eq!(r["feature"]["kind"], "categorical");
    assert!(!r["slices"].as_array().unwrap().is_empty());
    for (q, needle) in [
        ("kind=deviance", "deviance residuals are for binary"),
        ("model=nope", "model 'nope'"),
        ("feature=label", "not a feature column"),
        ("bins=1", "bins is 2..=200"),
        ("slice=nope", "column 'nope' is not in the run"),
        ("colour=red", "unknown parameter 'colour'"),
    ] {
        let (s, e) = app.get_json(&format!("/api/v1/runs/{id}/residuals?{q}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {e}");
        assert!(e["error"].as_str().unwrap().contains(needle), "{q}: {e}");
    }
    // No feature asked for: the chart shows the one ranked first, not the first column.
    let (s, d) = app.get_json(&format!("/api/v1/runs/{id}/residuals?model=prediction_gbt")).await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(d["feature"]["feature"], d["features"][0]["feature"], "{}", d["features"]);
    assert_ne!(d["features"][0]["feature"], "year", "the wages demo's top feature is not its first column");
    let (s, doc) = app.get_json("/api/v1/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["paths"]["/api/v1/runs/{id}/residuals"]["get"].is_object());
    // The page renders server-side with the ranking.
    let (s, html) = app.get_text(&format!("/runs/{id}/residuals?model=prediction_gbt&slice=educcat")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("feature-ranking") && html.contains("Durbin–Watson"), "{}", &html[..html.len().min(2000)]);
}
on_both_databases!(wages_residuals_match_scipy_and_statsmodels);
