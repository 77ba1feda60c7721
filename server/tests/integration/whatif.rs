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
    // Browser filters: a slice, a score range, wrong decisions only.
    let (s, html) = app.get_text(&format!("/runs/{id}/whatif?model=score_gbt&slice=sex%3DFemale&score_min=0.9&color=correct")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("148 matching"), "women scored at least 0.9 (pandas: 148)");
    let (_, html) = app.get_text(&format!("/runs/{id}/whatif?model=score_gbt&slice=sex%3DFemale&score_min=0.9&filter=incorrect")).await;
    assert!(html.contains("3 matching"), "of which 3 are wrong decisions");
    // The page renders an edit server-side.
    let (s, html) = app.get_text(&format!("/runs/{id}/whatif?example=adult-00013&set.sex=Female&pdp=age")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("data-testid=\"predictions\"") && html.contains("Nearest counterfactual"), "{}", &html[..html.len().min(2000)]);
}
on_both_databases!(predict_pdp_and_counterfactual);

/// The what-if page's three fetches: the page (browser, scatter) without the example, the
/// selected example alone (what choosing one in place refetches), and partial dependence with no
/// example selected. Each opens on the run's first score column, the overview's default too.
async fn whatif_page_parts(app: TestApp) {
    let id = demo_id(&app, "Adult income (demo)").await;
    let call = |endpoint: &str, query: &str| {
        let body = serde_urlencoded::to_string([("id", id.as_str()), ("query", query)]).unwrap();
        axum::http::Request::post(format!("/api/{endpoint}")).header("content-type", "application/x-www-form-urlencoded").body(axum::body::Body::from(body)).unwrap()
    };
    let json = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(b)));
    let (_, run) = app.get_json(&format!("/api/v1/runs/{id}")).await;
    let first = run["models"][0].clone();
    assert_eq!(first, json!("score_logreg"), "{run}");

    let (s, b) = app.request(call("get_whatif_view", "filter=incorrect")).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let view = json(&b);
    assert_eq!(view["model"], first, "what-if opens on the overview's model");
    assert_eq!(view["score_columns"], run["models"]);
    assert!(view.get("predictions").is_none(), "the page's part holds no example");

    let (s, b) = app.request(call("get_whatif_example", "example=adult-00013&set.sex=Female&threshold=0.5")).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let x = json(&b);
    assert_eq!(x["example"], json!("adult-00013"));
    let sex = x["features"].as_array().unwrap().iter().find(|f| f["name"] == "sex").unwrap();
    assert_eq!((sex["value"].as_str(), sex["edited"].as_bool()), (Some("Female"), Some(true)), "{sex}");
    let predictions = x["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), 2, "both attached models: {x}");
    for p in predictions {
        let (o, e) = (p["original"].as_f64().unwrap(), p["edited"].as_f64().unwrap());
        assert_eq!(p["decision_original"].as_bool(), Some(o >= 0.5), "{p}");
        assert_eq!(p["decision_edited"].as_bool(), Some(e >= 0.5), "{p}");
        // The model's own score of the unedited example is the one stored with the run.
        assert!((o - p["stored"].as_f64().unwrap()).abs() < 1e-4, "{p}");
    }
    assert!(x["counterfactual"].is_object(), "{x}");
    let (s, b) = app.request(call("get_whatif_example", "model=score_gbt")).await;
    assert_ne!(s, StatusCode::OK);
    assert!(String::from_utf8_lossy(&b).contains("name the example"), "{}", String::from_utf8_lossy(&b));

    // Partial dependence with no example: the model's mean and ICE lines, no example line.
    let (s, b) = app.request(call("get_whatif_pdp", "pdp=age&sample=50&grid=5")).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let p = json(&b);
    assert_eq!(p["pdp"]["model"], first);
    assert_eq!(p["pdp"]["feature"], json!("age"));
    assert!(p["pdp"]["example"].is_null());
    assert_eq!(p["pdp"]["mean"].as_array().unwrap().len(), 5);
    assert!(p["chart"].as_str().unwrap().contains("partial dependence (mean)"));
    let (_, b) = app.request(call("get_whatif_pdp", "pdp=age&sample=50&grid=5&example=adult-00013&set.age=60")).await;
    assert_eq!(json(&b)["pdp"]["example"].as_array().map(Vec::len), Some(5), "the selected example's own line");
    // And the page renders server-side on the first score column.
    let (_, html) = app.get_text(&format!("/runs/{id}/whatif?tab=pdp&pdp=age")).await;
    assert!(html.contains("role=\"tablist\"") && html.contains("data-testid=\"pdp-summary\""), "{}", &html[..html.len().min(3000)]);
}
on_both_databases!(whatif_page_parts);

/// A tiny model server speaking the three protocols; its "model" scores age / 100.
async fn serve_tiny_models() -> String {
    use axum::{Json, Router, routing::post};
    use serde_json::Value;
    fn ages_kserve(b: &Value) -> Vec<f64> {
        let age = b["inputs"].as_array().unwrap().iter().find(|i| i["name"] == "age").unwrap();
        age["data"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap_or(0.0) / 100.0).collect()
    }
    let app = Router::new()
        .route("/v2/models/m/infer", post(|Json(b): Json<Value>| async move {
            let s = ages_kserve(&b);
            Json(json!({"model_name": "m", "outputs": [{"name": "probability", "shape": [s.len(), 1], "datatype": "FP64", "data": s}]}))
        }))
        .route("/v2/models/broken/infer", post(|| async { Json(json!({"outputs": []})) }))
        .route("/v1/models/m:predict", post(|Json(b): Json<Value>| async move {
            let p: Vec<Value> = b["instances"].as_array().unwrap().iter().map(|i| { let a = i["age"].as_f64().unwrap_or(0.0) / 100.0; json!([1.0 - a, a]) }).collect();
            Json(json!({"predictions": p}))
        }))
        .route("/invocations", post(|Json(b): Json<Value>| async move {
            let cols = b["dataframe_split"]["columns"].as_array().unwrap();
            let j = cols.iter().position(|c| c == "age").unwrap();
            let p: Vec<f64> = b["dataframe_split"]["data"].as_array().unwrap().iter().map(|r| r[j].as_f64().unwrap_or(0.0) / 100.0).collect();
            Json(json!({"predictions": p}))
        }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_endpoints_in_three_protocols() {
    let app = TestApp::sqlite().await;
    let id = demo_id(&app, "Adult income (demo)").await;
    let url = serve_tiny_models().await;
    // A port nobody listens on: bind one, then drop it.
    let dead = { let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap(); format!("http://{}", l.local_addr().unwrap()) };
    let put = |body: serde_json::Value| axum::http::Request::put(format!("/api/v1/runs/{id}/endpoints")).header("content-type", "application/json").body(axum::body::Body::from(body.to_string())).unwrap();
    let endpoints = json!([
        {"name": "remote_kserve", "url": url, "protocol": "kserve-v2", "model": "m"},
        {"name": "remote_tf", "url": url, "protocol": "tf-serving", "model": "m"},
        {"name": "remote_mlflow", "url": url, "protocol": "mlflow"},
        {"name": "remote_broken", "url": url, "protocol": "kserve-v2", "model": "broken"},
        {"name": "remote_down", "url": dead, "protocol": "mlflow", "timeout_ms": 2000},
    ]);
    let (s, b) = app.request(put(endpoints)).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let (s, b) = app.request(put(json!([{"name": "x", "url": "ftp://x", "protocol": "mlflow"}]))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&b).contains("http://"));
    let (_, listed) = app.get_json(&format!("/api/v1/runs/{id}/endpoints")).await;
    assert_eq!(listed.as_array().unwrap().len(), 5);

    // 1,500 examples: two batches per endpoint.
    let examples: Vec<serde_json::Value> = (0..1500).map(|i| json!({"age": 20 + i % 50, "sex": "Male", "race": "White"})).collect();
    let (s, b) = app.request(post(format!("/api/v1/runs/{id}/predict"), json!({"examples": examples, "models": ["remote_kserve", "remote_tf", "remote_mlflow"]}))).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let answer: serde_json::Value = serde_json::from_slice(&b).unwrap();
    for (i, p) in answer["predictions"].as_array().unwrap().iter().enumerate() {
        let want = (20 + i % 50) as f64 / 100.0;
        for m in ["remote_kserve", "remote_tf", "remote_mlflow"] {
            assert!((p[m].as_f64().unwrap() - want).abs() < 1e-12, "{m} example {i}: {p}");
        }
    }
    for (model, needle) in [("remote_broken", "unexpected shape: 'outputs' is empty"), ("remote_down", "is unreachable")] {
        let (s, b) = app.request(post(format!("/api/v1/runs/{id}/predict"), json!({"examples": [{"age": 30}], "models": [model]}))).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{model}");
        assert!(String::from_utf8_lossy(&b).contains(needle), "{model}: {}", String::from_utf8_lossy(&b));
    }
}

async fn random_attacks_per_slice(app: TestApp) {
    let id = demo_id(&app, "Adult income (demo)").await;
    let (s, b) = app.request(post(format!("/api/v1/runs/{id}/attacks"), json!({"model": "score_gbt", "noise": 0.0, "swap": 0.0, "sample": 300, "slice": "sex"}))).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let r: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(r["slices"][0]["flip_rate"], 0.0, "no noise, no flips: {r}");
    assert_eq!(r["slices"].as_array().unwrap().len(), 3, "overall + two sexes");
    let (s, b) = app.request(post(format!("/api/v1/runs/{id}/attacks"), json!({"model": "score_gbt", "noise": 1.0, "swap": 0.5, "sample": 500, "slice": "sex", "seed": 3}))).await;
    assert_eq!(s, StatusCode::OK);
    let r: serde_json::Value = serde_json::from_slice(&b).unwrap();
    let overall = &r["slices"][0];
    assert!(overall["flip_rate"].as_f64().unwrap() > 0.0 && overall["after"].as_f64().unwrap() < overall["before"].as_f64().unwrap(), "{r}");
    let (s, _) = app.request(post(format!("/api/v1/runs/{id}/attacks"), json!({"noise": -1}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}
on_both_databases!(random_attacks_per_slice);

async fn benchmark_model_is_trained_stored_and_sliced(app: TestApp) {
    let id = demo_id(&app, "Adult income (demo)").await;
    let (s, b) = app.request(post(format!("/api/v1/runs/{id}/benchmark"), json!({"c": 1.0, "max_rows": 8000}))).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let info: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!((info["kind"].as_str(), info["trained_on"].as_u64()), (Some("logistic"), Some(8000)));
    let (_, d) = app.get_json(&format!("/api/v1/runs/{id}")).await;
    assert!(d["models"].as_array().unwrap().contains(&json!("strata_benchmark")));
    // Compared with the user's models on every slice, like any model.
    let (s, m) = app.get_json(&format!("/api/v1/runs/{id}/metrics?model=strata_benchmark&slice=sex&bootstrap=0")).await;
    assert_eq!(s, StatusCode::OK, "{m}");
    let auc = m["slices"][0]["metrics"]["auc_roc"]["value"].as_f64().unwrap();
    assert!(auc > 0.85 && auc < 0.95, "a logistic regression on Adult: AUC {auc}");
    assert_eq!(m["slices"].as_array().unwrap().len(), 3);
    // Callable in what-if, and the same score as the column for the same row.
    let (s, b) = app.request(post(format!("/api/v1/runs/{id}/predict"), json!({"examples": [{"age": 26, "workclass": "Private", "education": "Bachelors", "education_num": 13, "marital_status": "Never-married", "occupation": "Sales", "relationship": "Own-child", "race": "White", "sex": "Male", "capital_gain": 0, "capital_loss": 0, "hours_per_week": 50, "native_country": "United-States"}], "models": ["strata_benchmark"]}))).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let p: serde_json::Value = serde_json::from_slice(&b).unwrap();
    let (_, rows) = app.get_json(&format!("/api/v1/runs/{id}/examples?offset=2&limit=1")).await;
    let cols = rows["columns"].as_array().unwrap();
    let j = cols.iter().position(|c| c == "strata_benchmark").unwrap();
    assert!((rows["rows"][0][j].as_f64().unwrap() - p["predictions"][0]["strata_benchmark"].as_f64().unwrap()).abs() < 1e-9);
    // Regression runs get ridge regression.
    let wid = {
        let (_, runs) = app.get_json("/api/v1/runs").await;
        runs.as_array().unwrap().iter().find(|r| r["name"] == "GSS wages (demo)").unwrap()["id"].as_str().unwrap().to_string()
    };
    let (s, b) = app.request(post(format!("/api/v1/runs/{wid}/benchmark"), json!({}))).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let (_, m) = app.get_json(&format!("/api/v1/runs/{wid}/metrics?model=strata_benchmark&bootstrap=0")).await;
    assert!(m["slices"][0]["metrics"]["r2"]["value"].as_f64().unwrap() > 0.1, "{}", m["slices"][0]["metrics"]);
}
on_both_databases!(benchmark_model_is_trained_stored_and_sliced);

async fn saved_whatif_examples(app: TestApp) {
    let id = demo_id(&app, "Adult income (demo)").await;
    let (s, b) = app.request(post(format!("/api/v1/runs/{id}/whatif-examples"), json!({"name": "older", "example": "adult-00002", "edits": {"age": "41"}}))).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    for (body, needle) in [
        (json!({"name": "x", "example": "nope", "edits": {}}), "no example with id 'nope'"),
        (json!({"name": "x", "example": "adult-00002", "edits": {"label": "1"}}), "'label' is not a feature"),
        (json!({"name": " ", "example": "adult-00002"}), "needs a name"),
    ] {
        let (s, b) = app.request(post(format!("/api/v1/runs/{id}/whatif-examples"), body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(String::from_utf8_lossy(&b).contains(needle), "{}", String::from_utf8_lossy(&b));
    }
    let (_, list) = app.get_json(&format!("/api/v1/runs/{id}/whatif-examples")).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["edits"]["age"], "41");
    let (_, html) = app.get_text(&format!("/runs/{id}/whatif")).await;
    assert!(html.contains("set.age=41") && html.contains(">older</a>"), "listed on the page with its link");
    let del = axum::http::Request::delete(format!("/api/v1/runs/{id}/whatif-examples/older")).body(axum::body::Body::empty()).unwrap();
    let (s, _) = app.request(del).await;
    assert_eq!(s, StatusCode::OK);
    let del = axum::http::Request::delete(format!("/api/v1/runs/{id}/whatif-examples/older")).body(axum::body::Body::empty()).unwrap();
    let (s, _) = app.request(del).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
on_both_databases!(saved_whatif_examples);

/// The first 200 demo rows with onnxruntime's score of the skl2onnx pipeline as `score_pipe`; the
/// cases file and the column of that score in it.
fn pipe_run_csv() -> (String, String, usize) {
    let golden = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/adult_pipe_cases.csv");
    let cases = std::fs::read_to_string(golden).unwrap();
    let mut lines = cases.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "score_pipe").unwrap();
    let demo = std::fs::read_to_string(crate::helpers::demo().join("adult/eval.csv")).unwrap();
    let mut demo_lines = demo.lines();
    let mut csv = format!("{},score_pipe\n", demo_lines.next().unwrap());
    for (d, c) in demo_lines.zip(lines).take(200) {
        csv.push_str(&format!("{d},{}\n", c.split(',').nth(col).unwrap()));
    }
    (csv, cases, col)
}

/// Model files bound to score columns: by the upload spec (`models`), or attached to an existing
/// run later (`POST /api/v1/runs/{id}/models`, checked against the stored scores at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_are_bound_by_the_spec_and_attached_later() {
    let app = TestApp::sqlite().await;
    let (csv, cases, col) = pipe_run_csv();
    let pipe = std::fs::read(crate::helpers::testdata().join("models/adult_pipe_skl2onnx.onnx")).unwrap();
    let rf = std::fs::read(crate::helpers::testdata().join("models/adult_rf_skl2onnx.onnx")).unwrap();
    let spec = |models: serde_json::Value| json!({"name": "bound", "label": "label", "id": "example_id", "timestamp": "timestamp", "scores": ["score_logreg", "score_gbt", "score_pipe"], "models": models});

    // Bound by the spec: a file of any name scores score_pipe.
    let (s, b) = app.upload("bound.csv", csv.as_bytes(), &spec(json!({"score_pipe": "exported.onnx"})), &[("exported.onnx", &pipe[..])]).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let id = b["id"].as_str().unwrap().to_string();
    let (_, d) = app.get_json(&format!("/api/v1/runs/{id}")).await;
    assert_eq!(d["attachments"][0]["model"], json!("score_pipe"), "{d}");
    let example = json!({"age": 30, "education_num": 9, "capital_gain": 0, "capital_loss": 0, "hours_per_week": 40, "workclass": "Private", "education": "HS-grad",
        "marital_status": "Married-spouse-absent", "occupation": "Other-service", "relationship": "Unmarried", "race": "White", "sex": "Female", "native_country": "United-States"});
    let (s, p) = app.request(post(format!("/api/v1/runs/{id}/predict"), json!({"examples": [example], "models": ["score_pipe"]}))).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&p));
    let p: serde_json::Value = serde_json::from_slice(&p).unwrap();
    let want: f64 = cases.lines().last().unwrap().split(',').nth(col).unwrap().parse().unwrap();
    assert!((p["predictions"][0]["score_pipe"].as_f64().unwrap() - want).abs() < 1e-6, "{p} vs onnxruntime {want}");
    let (_, cards) = app.get_json(&format!("/api/v1/runs/{id}/models")).await;
    let card = cards.as_array().unwrap().iter().find(|c| c["file"] == "exported.onnx").unwrap();
    assert_eq!((card["model"].as_str(), card["loads"].as_bool(), card["tree_shap"].as_bool()), (Some("score_pipe"), Some(true), Some(false)), "{card}");
    assert!(card["rewritten"].to_string().contains("OneHotEncoder") && card["inputs"].as_array().unwrap().len() == 13, "{card}");
    for (models, needle) in [(json!({"score_nope": "exported.onnx"}), "'score_nope' is not a score column"), (json!({"score_pipe": "missing.onnx"}), "no model file 'missing.onnx'")] {
        let (s, b) = app.upload("bound.csv", csv.as_bytes(), &spec(models), &[("exported.onnx", &pipe[..])]).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(b.to_string().contains(needle), "{b}");
    }

    // Attached later, and checked against the stored scores at once.
    let (s, b) = app.upload("plain.csv", csv.as_bytes(), &spec(json!({})), &[]).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let plain = b["id"].as_str().unwrap().to_string();
    let attach = |bytes: &[u8], file: &str, score: Option<&str>| {
        let boundary = "strata-attach";
        let mut body = Vec::new();
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"model\"; filename=\"{file}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
        if let Some(sc) = score {
            body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"score\"\r\n\r\n{sc}\r\n").as_bytes());
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        axum::http::Request::post(format!("/api/v1/runs/{plain}/models")).header("content-type", format!("multipart/form-data; boundary={boundary}")).body(axum::body::Body::from(body)).unwrap()
    };
    let (s, b) = app.request(attach(&pipe, "pipe.onnx", Some("score_pipe"))).await;
    assert_eq!(s, StatusCode::CREATED, "{}", String::from_utf8_lossy(&b));
    let a: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!((a["called"].clone(), a["check"]["compared_with"].clone(), a["check"]["agrees"].clone()), (json!("score_pipe"), json!("score_pipe"), json!(true)), "{a}");
    // Another model bound to the same column: stored, and the check says it disagrees.
    let (s, b) = app.request(attach(&rf, "pipe.onnx", Some("score_pipe"))).await;
    assert_eq!(s, StatusCode::CREATED);
    let a: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(a["check"]["agrees"], json!(false), "{a}");
    assert!(a["check"]["max_abs_diff"].as_f64().unwrap() > 0.01);
    // Unbound: called by its stem.
    let (s, b) = app.request(attach(&pipe, "candidate.onnx", None)).await;
    assert_eq!(s, StatusCode::CREATED);
    let a: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(a["called"], json!("candidate"));
    let (s, _) = app.request(post(format!("/api/v1/runs/{plain}/predict"), json!({"examples": [example.clone()], "models": ["candidate"]}))).await;
    assert_eq!(s, StatusCode::OK);
    // Refusals: a file that is not a model, an unknown score column, a run that does not exist.
    let (s, b) = app.request(attach(b"not onnx", "junk.onnx", None)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&b));
    let (s, b) = app.request(attach(&pipe, "x.onnx", Some("score_nope"))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&b).contains("not a score column"));
    let (_, listed) = app.get_json(&format!("/api/v1/runs/{plain}")).await;
    assert_eq!(listed["attachments"].as_array().unwrap().len(), 2, "pipe.onnx (replaced) and candidate.onnx: {listed}");
}

/// Permutation importance through the model: deterministic for a seed, its baseline the metric the
/// engine reports for the same rows, an interval around each mean, per slice; bad settings refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permutation_importance_through_the_model() {
    let app = TestApp::sqlite().await;
    let (csv, _, _) = pipe_run_csv();
    let pipe = std::fs::read(crate::helpers::testdata().join("models/adult_pipe_skl2onnx.onnx")).unwrap();
    let spec = json!({"name": "importance", "label": "label", "id": "example_id", "timestamp": "timestamp", "scores": ["score_logreg", "score_gbt", "score_pipe"], "models": {"score_pipe": "pipe.onnx"}});
    let (s, b) = app.upload("imp.csv", csv.as_bytes(), &spec, &[("pipe.onnx", &pipe[..])]).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let id = b["id"].as_str().unwrap().to_string();
    let url = |q: &str| format!("/api/v1/runs/{id}/importance?model=score_pipe&sample=200&repeats=4{q}");
    let (s, a) = app.get_json(&url("&seed=3")).await;
    assert_eq!(s, StatusCode::OK, "{a}");
    let (_, again) = app.get_json(&url("&seed=3")).await;
    assert_eq!(a, again, "the same seed, the same answer");
    let (_, other) = app.get_json(&url("&seed=4")).await;
    assert_ne!(a["features"], other["features"]);
    // The baseline is the AUC of the model on every row: the engine's AUC of the stored scores
    // (onnxruntime's, within float rounding of tract's).
    let (_, m) = app.get_json(&format!("/api/v1/runs/{id}/metrics?model=score_pipe")).await;
    let engine = m["slices"][0]["metrics"]["auc_roc"]["value"].as_f64().unwrap();
    assert!((a["baseline"].as_f64().unwrap() - engine).abs() < 1e-3, "{} vs {engine}", a["baseline"]);
    let features = a["features"].as_array().unwrap();
    assert_eq!(features.len(), 13, "every feature the pipeline reads");
    for f in features {
        let (mean, lo, hi) = (f["mean"].as_f64().unwrap(), f["lo"].as_f64().unwrap(), f["hi"].as_f64().unwrap());
        assert!(lo <= mean && mean <= hi && f["drops"].as_array().unwrap().len() == 4, "{f}");
    }
    assert!(features[0]["mean"].as_f64().unwrap() > 0.01 && features[0]["mean"].as_f64() >= features[12]["mean"].as_f64(), "sorted, and the model relies on something: {a}");
    let (s, sl) = app.get_json(&url("&slice=sex&metric=log_loss")).await;
    assert_eq!(s, StatusCode::OK, "{sl}");
    let slices = sl["slices"].as_array().unwrap();
    assert_eq!(slices.iter().map(|x| x["n"].as_u64().unwrap()).sum::<u64>(), 200, "{sl}");
    assert!(sl["baseline"].as_f64().unwrap() < 0.0, "a loss is negated: {sl}");
    for (q, needle) in [("model=score_pipe&metric=mae", "binary run offers"), ("model=score_pipe&repeats=1", "repeats is 2..=50"), ("model=nope", "no model file")] {
        let (s, e) = app.get_json(&format!("/api/v1/runs/{id}/importance?{q}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {e}");
        assert!(e.to_string().contains(needle), "{q}: {e}");
    }
}

/// Adversarial search on the demo GBT: every reported flip is checked independently through the
/// predict API (the edited example really crosses the threshold), the constraints hold (immutable
/// features unchanged, categorical values from the allowed set, whole-number steps, ranges), the
/// radius is the distance the result defines, and the search beats a random search of its budget.
async fn adversarial_search_flips_within_the_constraints(app: TestApp) {
    let id = demo_id(&app, "Adult income (demo)").await;
    let body = json!({"model": "score_gbt", "sample": 120, "seed": 5, "slice": "sex", "immutable": ["sex", "race", "age"],
        "ranges": {"hours_per_week": {"min": 1, "max": 80}}, "values": {"workclass": ["Private", "Self-emp-inc", "Local-gov"]}});
    let (s, b) = app.request(post(format!("/api/v1/runs/{id}/adversarial"), body.clone())).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let r: serde_json::Value = serde_json::from_slice(&b).unwrap();
    let (_, again) = app.request(post(format!("/api/v1/runs/{id}/adversarial"), body)).await;
    let again: serde_json::Value = serde_json::from_slice(&again).unwrap();
    assert_eq!(r["examples"], again["examples"], "seeded: the same flips");
    let overall = &r["slices"][0];
    assert_eq!(overall["n"], 120);
    assert_eq!(r["slices"].as_array().unwrap().len(), 3, "overall + two sexes: {r}");
    let (flipped, random) = (overall["flipped"].as_f64().unwrap(), overall["random_flipped"].as_f64().unwrap());
    assert!(flipped > 0.2 && flipped >= random, "the search flips more than random changes of its budget: {flipped} vs {random}");
    assert!(overall["radius_median"].as_f64().unwrap() <= 3.0);
    for f in ["sex", "race", "age"] {
        assert!(r["immutable"].as_array().unwrap().iter().any(|x| x == f), "{r}");
    }
    let examples = r["examples"].as_array().unwrap();
    assert!(!examples.is_empty() && examples.len() <= 20);
    let mut last = 0.0;
    for e in examples {
        let radius = e["radius"].as_f64().unwrap();
        assert!(radius >= last && radius <= 3.0 + 1e-9, "smallest first, within the radius: {e}");
        last = radius;
        let row: usize = e["id"].as_str().unwrap().trim_start_matches("adult-").parse().unwrap();
        let (_, page) = app.get_json(&format!("/api/v1/runs/{id}/examples?offset={row}&limit=1")).await;
        let columns: Vec<String> = page["columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
        let col = |name: &str| columns.iter().position(|c| c == name).unwrap();
        let original = &page["rows"][0];
        let mut edited = serde_json::Map::new();
        for name in ["age", "workclass", "education", "education_num", "marital_status", "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country"] {
            edited.insert(name.to_string(), original[col(name)].clone());
        }
        for c in e["changes"].as_array().unwrap() {
            let f = c["feature"].as_str().unwrap();
            assert!(!["sex", "race", "age"].contains(&f), "an immutable feature changed: {e}");
            let to = c["to"].as_str().unwrap();
            if f == "workclass" {
                assert!(["Private", "Self-emp-inc", "Local-gov"].contains(&to), "{e}");
            }
            let value = match to.parse::<f64>() {
                Ok(x) if ["education_num", "capital_gain", "capital_loss", "hours_per_week"].contains(&f) => {
                    assert_eq!(x.fract(), 0.0, "whole-number columns move in whole steps: {e}");
                    if f == "hours_per_week" {
                        assert!((1.0..=80.0).contains(&x), "{e}");
                    }
                    json!(x)
                }
                _ => json!(to),
            };
            assert_eq!(c["from"].as_str().unwrap(), match &edited[f] { serde_json::Value::String(s) => s.clone(), v => format!("{}", v.as_f64().unwrap()) }, "{e}");
            edited.insert(f.to_string(), value);
        }
        let (s, b) = app.request(post(format!("/api/v1/runs/{id}/predict"), json!({"examples": [original_of(&columns, original), edited], "models": ["score_gbt"]}))).await;
        assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
        let p: serde_json::Value = serde_json::from_slice(&b).unwrap();
        let (before, after) = (p["predictions"][0]["score_gbt"].as_f64().unwrap(), p["predictions"][1]["score_gbt"].as_f64().unwrap());
        assert!((before - e["before"].as_f64().unwrap()).abs() < 1e-6 && (after - e["after"].as_f64().unwrap()).abs() < 1e-6, "{e}: {before} {after}");
        assert_ne!(before >= 0.5, after >= 0.5, "the reported change flips the decision: {e}");
    }
    for (body, needle) in [
        (json!({"immutable": ["sexx"]}), "'sexx' is not a feature"),
        (json!({"immutabel": ["sex"]}), "unknown field"),
        (json!({"ranges": {"sex": {"min": 0}}}), "is categorical"),
        (json!({"sample": 5000}), "sample is 10..=1000"),
    ] {
        let (s, b) = app.request(post(format!("/api/v1/runs/{id}/adversarial"), body.clone())).await;
        assert!(s == StatusCode::BAD_REQUEST || s == StatusCode::UNPROCESSABLE_ENTITY, "{body}: {s}");
        assert!(String::from_utf8_lossy(&b).contains(needle), "{body}: {}", String::from_utf8_lossy(&b));
    }
}
on_both_databases!(adversarial_search_flips_within_the_constraints);

fn original_of(columns: &[String], row: &serde_json::Value) -> serde_json::Value {
    serde_json::Value::Object(columns.iter().enumerate().map(|(i, c)| (c.clone(), row[i].clone())).collect())
}

/// Attributions through the API: KernelSHAP of the demo GBT at an edited example (the prediction
/// is the predict API's, the values sum to prediction − base), exact TreeSHAP of a bare skl2onnx
/// tree ensemble attached as a candidate (TreeSHAP and exact KernelSHAP of its margin agree), clear
/// errors. The values themselves are checked against the shap package in `models::onnx::tests`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attributions_of_one_prediction() {
    let app = TestApp::sqlite().await;
    let id = demo_id(&app, "Adult income (demo)").await;
    let (s, a) = app.get_json(&format!("/api/v1/runs/{id}/attributions?example=adult-00007&model=score_gbt&set.age=61&set.occupation=Sales&seed=2")).await;
    assert_eq!(s, StatusCode::OK, "{a}");
    let sum: f64 = a["values"].as_array().unwrap().iter().map(|v| v["attribution"].as_f64().unwrap()).sum();
    let (base, prediction) = (a["base"].as_f64().unwrap(), a["prediction"].as_f64().unwrap());
    assert!((sum - (prediction - base)).abs() < 1e-9, "efficiency: {a}");
    assert_eq!((a["method"].as_str(), a["exact"].as_bool(), a["values"].as_array().unwrap().len()), (Some("kernel"), Some(false), 13), "{a}");
    assert!(a["values"].as_array().unwrap().iter().any(|v| v["feature"] == "age" && v["value"] == "61"), "the edit is explained: {a}");
    let (_, page) = app.get_json(&format!("/api/v1/runs/{id}/examples?offset=7&limit=1")).await;
    let columns: Vec<String> = page["columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    let mut example = original_of(&columns, &page["rows"][0]);
    example["age"] = json!(61);
    example["occupation"] = json!("Sales");
    let (_, p) = app.request(post(format!("/api/v1/runs/{id}/predict"), json!({"examples": [example], "models": ["score_gbt"]}))).await;
    let p: serde_json::Value = serde_json::from_slice(&p).unwrap();
    assert!((p["predictions"][0]["score_gbt"].as_f64().unwrap() - prediction).abs() < 1e-9);
    let (s, e) = app.get_json(&format!("/api/v1/runs/{id}/attributions?example=adult-00007&model=score_gbt&method=tree")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(e.to_string().contains("use method=kernel"), "{e}");

    // A bare tree ensemble over five numeric columns, named by models.json.
    let (csv, _, _) = pipe_run_csv();
    let gb = std::fs::read(crate::helpers::testdata().join("models/adult_gb_skl2onnx.onnx")).unwrap();
    let inputs: Vec<serde_json::Value> = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"].iter().map(|n| json!({"name": n})).collect();
    let card = json!({ "inputs": inputs }).to_string();
    let spec = json!({"name": "trees", "label": "label", "id": "example_id", "timestamp": "timestamp", "scores": ["score_logreg", "score_gbt", "score_pipe"]});
    let (s, b) = app.upload("trees.csv", csv.as_bytes(), &spec, &[("gb.onnx", &gb[..]), ("models.json", card.as_bytes())]).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let tid = b["id"].as_str().unwrap().to_string();
    let (s, t) = app.get_json(&format!("/api/v1/runs/{tid}/attributions?example=adult-00003&model=gb&method=tree&background=40")).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!((t["output"].as_str(), t["exact"].as_bool(), t["values"].as_array().unwrap().len()), (Some("margin"), Some(true), 5), "{t}");
    let tree_sum: f64 = t["values"].as_array().unwrap().iter().map(|v| v["attribution"].as_f64().unwrap()).sum();
    assert!((tree_sum - (t["prediction"].as_f64().unwrap() - t["base"].as_f64().unwrap())).abs() < 1e-9, "{t}");
    let (s, k) = app.get_json(&format!("/api/v1/runs/{tid}/attributions?example=adult-00003&model=gb&method=kernel&background=40&samples=100")).await;
    assert_eq!(s, StatusCode::OK, "{k}");
    assert_eq!(k["exact"], true, "five players: every coalition fits in 100 samples");
    // The kernel explains P(1) = logistic(margin): a different scale, the same order of importance.
    let order = |v: &serde_json::Value| v["values"].as_array().unwrap().iter().map(|x| x["feature"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(order(&t)[0], order(&k)[0], "{t} {k}");
    // Remembered for the same request; forgotten when the model behind the name changes.
    let (_, again) = app.get_json(&format!("/api/v1/runs/{tid}/attributions?example=adult-00003&model=gb&method=tree&background=40")).await;
    assert_eq!(again, t);
    let rf = std::fs::read(crate::helpers::testdata().join("models/compat/skl_rf_clf.onnx")).unwrap();
    let replace_gb = |bytes: &[u8]| {
        let boundary = "strata-attach";
        let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"model\"; filename=\"gb.onnx\"\r\nContent-Type: application/octet-stream\r\n\r\n").into_bytes();
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        axum::http::Request::post(format!("/api/v1/runs/{tid}/models")).header("content-type", format!("multipart/form-data; boundary={boundary}")).body(axum::body::Body::from(body)).unwrap()
    };
    let (s, b) = app.request(replace_gb(&rf)).await;
    assert_eq!(s, StatusCode::CREATED, "{}", String::from_utf8_lossy(&b));
    let (_, replaced) = app.get_json(&format!("/api/v1/runs/{tid}/attributions?example=adult-00003&model=gb&method=tree&background=40")).await;
    assert_ne!(replaced["prediction"], t["prediction"], "the new model's trees: {replaced}");
    assert_eq!(replaced["output"], "score", "a random forest's probability is its margin (no post-transform)");
    // The boosted trees back, for the card below.
    assert_eq!(app.request(replace_gb(&gb)).await.0, StatusCode::CREATED);
    // The model card says what the file is and that TreeSHAP applies.
    let (s, cards) = app.get_json(&format!("/api/v1/runs/{tid}/models")).await;
    assert_eq!(s, StatusCode::OK, "{cards}");
    let card = &cards[0];
    assert_eq!((card["file"].as_str(), card["called"].as_str(), card["loads"].as_bool(), card["tree_shap"].as_bool()), (Some("gb.onnx"), Some("gb"), Some(true), Some(true)), "{card}");
    assert!(card["producer"].as_str().unwrap().starts_with("skl2onnx"), "{card}");
    assert_eq!(card["score_output"], "probabilities", "{card}");
    assert!(card["operators"].to_string().contains("ai.onnx.ml.TreeEnsembleClassifier"), "{card}");
    assert_eq!(card["inputs"][0]["shape"], json!(["N", "5"]), "{card}");
    for q in ["example=nope", "example=adult-00003&samples=5", "example=adult-00003&method=magic", "example=adult-00003&set.agee=3"] {
        let (s, e) = app.get_json(&format!("/api/v1/runs/{tid}/attributions?model=gb&{q}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {e}");
    }
}
