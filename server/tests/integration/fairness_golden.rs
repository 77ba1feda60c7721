//! The fairness API on the Adult demo equals fairlearn (golden/make_fairness_golden.py); limits
//! are stored with the run; the exports are complete.

use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;
use crate::on_both_databases;

fn close(got: f64, want: f64, tol: f64, what: &str) {
    assert!((got - want).abs() <= tol, "{what}: strata {got}, fairlearn {want}");
}

async fn fairness_matches_fairlearn_and_limits_are_stored(app: TestApp) {
    let golden: serde_json::Value = serde_json::from_str(include_str!("../golden/fairness.json")).unwrap();
    strata_server::demo::load_if_empty(&app.state).await.unwrap();
    let (_, runs) = app.get_json("/api/v1/runs").await;
    let id = runs.as_array().unwrap().iter().find(|r| r["name"] == "Adult income (demo)").unwrap()["id"].as_str().unwrap().to_string();
    for feature in ["race", "sex"] {
        let metrics = "metric=positive_rate&metric=tpr&metric=fpr&metric=tnr&metric=fnr&metric=precision&metric=fdr&metric=for&metric=accuracy&metric=auc_roc";
        let (s, v) = app.get_json(&format!("/api/v1/runs/{id}/fairness?model=score_gbt&feature={feature}&thresholds=0.3,0.5,0.7&{metrics}&bootstrap=50&min_size=1")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let g = &golden["features"][feature];
        let result = &v["entries"][0]["result"];
        let group = |name: &str| result["slices"].as_array().unwrap().iter().find(|s| s["spec"] == feature && s["key"][feature] == name).unwrap_or_else(|| panic!("{name}"));
        for t in ["0.3", "0.5", "0.7"] {
            let gt = &g["thresholds"][t];
            let j = ["0.3", "0.5", "0.7"].iter().position(|x| *x == t).unwrap();
            for (name, want) in gt["by_group"].as_object().unwrap() {
                let at = &group(name)["at"][j];
                for (m, w) in want.as_object().unwrap() {
                    if let Some(w) = w.as_f64() {
                        close(at[m.as_str()]["value"].as_f64().unwrap_or(f64::NAN), w, 1e-9, &format!("{feature}={name} {m}@{t}"));
                    }
                }
            }
            let card = v["cards"].as_array().unwrap().iter().find(|c| c["threshold"].as_f64().unwrap().to_string() == t).unwrap();
            let crit = result["criteria"].as_array().unwrap().iter().find(|c| c["threshold"].as_f64().unwrap().to_string() == t).unwrap();
            let get = |name: &str, part: &str| crit["criteria"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap()[part]["value"].as_f64().unwrap();
            close(get("demographic_parity", "difference"), gt["demographic_parity_difference"].as_f64().unwrap(), 1e-9, "dp difference");
            close(get("demographic_parity", "ratio"), gt["demographic_parity_ratio"].as_f64().unwrap(), 1e-9, "dp ratio");
            close(get("equal_opportunity", "difference"), gt["equal_opportunity_difference"].as_f64().unwrap(), 1e-9, "eo difference");
            close(get("equal_opportunity", "ratio"), gt["equal_opportunity_ratio"].as_f64().unwrap(), 1e-9, "eo ratio");
            close(get("equalized_odds", "difference"), gt["equalized_odds_difference"].as_f64().unwrap(), 1e-9, "eodds difference");
            close(get("equalized_odds", "ratio"), gt["equalized_odds_ratio"].as_f64().unwrap(), 1e-9, "eodds ratio");
            let di = card["checks"].as_array().unwrap().iter().find(|c| c["name"] == "disparate_impact").unwrap();
            close(di["value"].as_f64().unwrap(), gt["demographic_parity_ratio"].as_f64().unwrap(), 1e-9, "four-fifths ratio");
            assert!(["pass", "fail", "uncertain"].contains(&di["verdict"].as_str().unwrap()));
        }
        for (name, want) in g["auc_roc"].as_object().unwrap() {
            close(group(name)["metrics"]["auc_roc"]["value"].as_f64().unwrap(), want.as_f64().unwrap(), 1e-6, &format!("{name} auc"));
        }
        assert!(v["tradeoff_chart"].is_string() && v["suggestion"]["groups"].as_array().unwrap().len() >= 2);
    }

    // Limits: validated, stored with the run, then the defaults of its view.
    let put = |body: serde_json::Value, uri: String| {
        axum::http::Request::put(uri).header("content-type", "application/json").body(axum::body::Body::from(body.to_string())).unwrap()
    };
    let (s, b) = app.request(put(json!({"limits": "demographic_parity:0.05,disparate_impact:0.9"}), format!("/api/v1/runs/{id}/fairness/limits"))).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let (s, _) = app.request(put(json!({"limits": "nope:0.1"}), format!("/api/v1/runs/{id}/fairness/limits"))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = app.request(put(json!({"limits": "demographic_parity:0.1"}), "/api/v1/runs/nope/fairness/limits".into())).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, v) = app.get_json(&format!("/api/v1/runs/{id}/fairness?feature=sex&bootstrap=0")).await;
    assert_eq!(v["limits_stored"], true);
    assert!(v["limits"].as_array().unwrap().contains(&json!(["disparate_impact", 0.9])));

    // Bad requests name the problem.
    for (q, needle) in [("feature=nope", "column 'nope'"), ("metric=f9", "unknown metric 'f9'"), ("limits=x:1", "unknown criterion 'x'"), ("thresholds=2", "outside [0, 1]"), ("model=x", "model 'x'")] {
        let (s, e) = app.get_json(&format!("/api/v1/runs/{id}/fairness?{q}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {e}");
        assert!(e["error"].as_str().unwrap().contains(needle), "{q}: {e}");
    }

    // Exports: CSV rows for every group × threshold × metric, a standalone HTML report.
    let (s, csv) = app.get_text(&format!("/runs/{id}/fairness/export?feature=race&thresholds=0.3,0.5,0.7&metric=fpr&bootstrap=20&format=csv")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(csv.lines().filter(|l| l.contains(",fpr,")).count(), 6 * 3, "5 groups + overall, 3 thresholds:\n{csv}");
    let (s, html) = app.get_text(&format!("/runs/{id}/fairness/export?feature=race&metric=fpr&bootstrap=20&format=html")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("race=Amer-Indian-Eskimo") && html.contains("Request: <code>feature=race"));
    // The criteria matrix (one model: no A-vs-B), then two models with the page's pair.
    assert!(html.contains("<h2>Criteria matrix</h2>") && !html.contains("<h2>A vs B</h2>"), "{html}");
    let (s, html) = app.get_text(&format!("/runs/{id}/fairness/export?feature=sex&metric=fpr&model=score_gbt&model=score_logreg&thresholds=0.5&bootstrap=0&a=score_logreg&b=score_gbt&format=html")).await;
    assert_eq!(s, StatusCode::OK);
    let matrix = &html[html.find("<h2>Criteria matrix</h2>").expect("the matrix")..];
    assert!(matrix.contains("<th>score_gbt @ 0.5</th>") && matrix.contains("<th>score_logreg @ 0.5</th>") && matrix.contains("<th>demographic parity</th>"), "{matrix}");
    let ab = &html[html.find("<h2>A vs B</h2>").expect("the A-vs-B tables")..];
    assert!(ab.starts_with("<h2>A vs B</h2><p>A: score_logreg · B: score_gbt") && ab.contains("<h3>fpr</h3>") && ab.contains("<td>sex=Female</td>"), "{ab}");
    // Two models side by side, and two runs compared.
    let (s, v) = app.get_json(&format!("/api/v1/runs/{id}/fairness?model=score_gbt&model=score_logreg&feature=sex&bootstrap=0")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["entries"].as_array().unwrap().len(), 2);
    let (s, v) = app.get_json(&format!("/api/v1/compare?runs={id},{id}&feature=sex&bootstrap=0")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["over_time_chart"].is_string());
    // Counterfactual flip rates through the attached model: sex swapped for 300 sampled rows.
    let (s, v) = app.get_json(&format!("/api/v1/runs/{id}/fairness?model=score_gbt&feature=sex&bootstrap=0&flip=1&flip_sample=300")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let groups = v["flip"]["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups.iter().map(|g| g["n"].as_u64().unwrap()).sum::<u64>(), 300);
    for g in groups {
        let (any, neg, pos) = (g["any_flip"].as_f64().unwrap(), g["to_negative"].as_f64().unwrap(), g["to_positive"].as_f64().unwrap());
        assert!((any - neg - pos).abs() < 1e-12 && (0.0..=1.0).contains(&any), "{g}");
    }
    let (_, v) = app.get_json(&format!("/api/v1/runs/{id}/fairness?feature=sex,race&bootstrap=0&flip=1")).await;
    assert!(v["flip_note"].as_str().unwrap().contains("single feature"));
    let (s, html) = app.get_text(&format!("/runs/{id}/fairness?feature=race&metric=fpr&bootstrap=20")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("criteria-card") && html.contains("race=Black"));
}
on_both_databases!(fairness_matches_fairlearn_and_limits_are_stored);
