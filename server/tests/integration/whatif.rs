//! The what-if API: predictions through the attached ONNX models equal the reference scores of
//! the shared what-if cases; partial dependence; counterfactuals; clear errors.

use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;
use crate::on_both_databases;

async fn demo_id(app: &TestApp, name: &str) -> String {
    strata_server::demo::load_if_empty(&app.state).await.unwrap();
    let (_, runs) = app.get_json("/api/v1/runs").await;
    runs.as_array().unwrap().iter().find(|r| r["name"] == name).unwrap()["id"].as_str().unwrap().to_string()
}

fn post(uri: String, body: serde_json::Value) -> axum::http::Request<axum::body::Body> {
    axum::http::Request::post(uri).header("content-type", "application/json").body(axum::body::Body::from(body.to_string())).unwrap()
}

async fn predict_pdp_and_counterfactual(app: TestApp) {
    let id = demo_id(&app, "Adult income (demo)").await;
    // The shared cases: edited demo rows with onnxruntime's scores.
    let text = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/adult_whatif_cases.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut examples = Vec::new();
    let mut want = Vec::new();
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let mut e = serde_json::Map::new();
        for (h, c) in header.iter().zip(&cells).skip(5) {
            if h.starts_with("score_") {
                continue;
            }
            let v = c.parse::<f64>().map(|x| json!(x)).unwrap_or_else(|_| json!(c));
            e.insert(h.to_string(), v);
        }
        examples.push(serde_json::Value::Object(e));
        want.push((cells[header.iter().position(|h| *h == "score_logreg").unwrap()].parse::<f64>().unwrap(), cells[header.iter().position(|h| *h == "score_gbt").unwrap()].parse::<f64>().unwrap()));
    }
    let (s, b) = app.request(post(format!("/api/v1/runs/{id}/predict"), json!({"examples": examples}))).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let answer: serde_json::Value = serde_json::from_slice(&b).unwrap();
    let preds = answer["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), want.len());
    for (p, (lr, gbt)) in preds.iter().zip(&want) {
        assert!((p["score_logreg"].as_f64().unwrap() - lr).abs() < 1e-5, "{p} vs {lr}");
        assert!((p["score_gbt"].as_f64().unwrap() - gbt).abs() < 1e-5, "{p} vs {gbt}");
    }
    // One model only; a feature of the wrong type; an unknown model.
    let (s, b) = app.request(post(format!("/api/v1/runs/{id}/predict"), json!({"examples": [examples[0]], "models": ["score_gbt"]}))).await;
    assert_eq!(s, StatusCode::OK);
    let one: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(one["predictions"][0].as_object().unwrap().len(), 1);
    let mut bad = examples[0].clone();
    bad["age"] = json!("old");
    let (s, b) = app.request(post(format!("/api/v1/runs/{id}/predict"), json!({"examples": [bad]}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&b).contains("'age' is numeric"), "{}", String::from_utf8_lossy(&b));
    let (s, b) = app.request(post(format!("/api/v1/runs/{id}/predict"), json!({"examples": [examples[0]], "models": ["score_x"]}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&b).contains("no model file is attached for 'score_x'"));

    // Partial dependence: 20 quantile points over 200 sampled rows, plus one example's curve.
    let (s, p) = app.get_json(&format!("/api/v1/runs/{id}/pdp?model=score_gbt&feature=age&sample=200&grid=20&example=adult-00013&set.sex=Female")).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    let g = p["grid"].as_array().unwrap().len();
    assert!((10..=20).contains(&g), "{g}");
    assert_eq!(p["sample"], 200);
    assert_eq!(p["mean"].as_array().unwrap().len(), g);
    assert_eq!(p["ice"].as_array().unwrap().len(), 60);
    // The mean is the mean of the ICE curves (the 60 shipped are a prefix of the 200 used).
    assert!(p["mean"].as_array().unwrap().iter().all(|m| (0.0..=1.0).contains(&m.as_f64().unwrap())));
    assert_eq!(p["example"].as_array().unwrap().len(), g);
    let (s, p) = app.get_json(&format!("/api/v1/runs/{id}/pdp?model=score_logreg&feature=race&sample=50")).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["kind"], "categorical");
    assert_eq!(p["grid"].as_array().unwrap().len(), 5);
    let (s, e) = app.get_json(&format!("/api/v1/runs/{id}/pdp?model=score_gbt&feature=label")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");

    // Counterfactual: the nearest row with the other decision.
    let (s, c) = app.get_json(&format!("/api/v1/runs/{id}/counterfactual?example=adult-00013&model=score_gbt&threshold=0.5")).await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert!(c["example"].is_string() && c["distance"].as_f64().unwrap() > 0.0);
    assert!(!c["differences"].as_array().unwrap().is_empty());

    // The regression demo's models predict too.
    let wid = {
        let (_, runs) = app.get_json("/api/v1/runs").await;
        runs.as_array().unwrap().iter().find(|r| r["name"] == "GSS wages (demo)").unwrap()["id"].as_str().unwrap().to_string()
    };
    let (s, b) = app.request(post(format!("/api/v1/runs/{wid}/predict"), json!({"examples": [{"year": 1996, "age": 56, "occrecode": "Office and Administrative Support", "prestg10": 39, "childs": 0, "wrkstat": "Part-Time", "gender": "Male", "educcat": "Bachelor", "maritalcat": "Never Married"}]}))).await;
    assert_eq!(s, StatusCode::OK);
    let w: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert!((w["predictions"][0]["prediction_gbt"].as_f64().unwrap() - 23350.208317438235).abs() < 0.5, "{w}");

    let (_, doc) = app.get_json("/api/v1/openapi.json").await;
    for path in ["/api/v1/runs/{id}/predict", "/api/v1/runs/{id}/pdp", "/api/v1/runs/{id}/counterfactual"] {
        assert!(doc["paths"][path].is_object(), "{path} in the OpenAPI document");
    }
    // The page renders an edit server-side.
    let (s, html) = app.get_text(&format!("/runs/{id}/whatif?example=adult-00013&set.sex=Female&pdp=age")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("data-testid=\"predictions\"") && html.contains("Nearest counterfactual"), "{}", &html[..html.len().min(2000)]);
}
on_both_databases!(predict_pdp_and_counterfactual);
