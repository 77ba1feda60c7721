//! The JSON API and the pages, end to end through the router, on both databases.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, demo, testdata};
use crate::on_both_databases;

async fn upload_adult_csv(app: &TestApp) -> String {
    let csv = std::fs::read(demo().join("adult/eval.csv")).unwrap();
    let spec = json!({"name": "adult-v2", "label": "label", "scores": ["score_logreg", "score_gbt"],
                      "id": "example_id", "timestamp": "timestamp", "categorical": ["education_num"], "tags": ["nightly"]});
    let logreg = std::fs::read(demo().join("adult/model_logreg.onnx")).unwrap();
    let (status, body) = app.upload("eval.csv", &csv, &spec, &[("model_logreg.onnx", &logreg)]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().expect("an id").to_string()
}

async fn upload_list_get_page_delete(app: TestApp) {
    let id = upload_adult_csv(&app).await;

    let (s, runs) = app.get_json("/api/v1/runs").await;
    assert_eq!(s, StatusCode::OK);
    let run = runs.as_array().unwrap().iter().find(|r| r["id"] == id.as_str()).expect("listed");
    assert_eq!(run["name"], "adult-v2");
    assert_eq!(run["task"], "binary");
    assert_eq!(run["rows"], 16000);
    assert_eq!(run["models"], json!(["score_logreg", "score_gbt"]));
    assert_eq!(run["tags"], json!(["nightly"]));

    let (s, detail) = app.get_json(&format!("/api/v1/runs/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    let col = |n: &str| detail["columns"].as_array().unwrap().iter().find(|c| c["name"] == n).cloned().unwrap();
    assert_eq!(col("age")["kind"], "numeric");
    assert_eq!(col("age")["min"], 17.0);
    assert_eq!(col("age")["max"], 90.0);
    assert_eq!(col("education_num")["kind"], "categorical", "spec.categorical is honoured");
    assert_eq!(col("workclass")["missing"], 924);
    assert_eq!(col("timestamp")["role"], "timestamp");
    assert_eq!(col("timestamp")["kind"], "timestamp");
    assert_eq!(col("example_id")["role"], "id");
    assert_eq!(detail["attachments"][0]["name"], "model_logreg.onnx");
    assert_eq!(detail["attachments"][0]["bytes"], 6304);

    let (s, page) = app.get_json(&format!("/api/v1/runs/{id}/examples?offset=15990&limit=50")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(page["total"], 16000);
    assert_eq!(page["rows"].as_array().unwrap().len(), 10);
    assert_eq!(page["rows"][9][0], "adult-15999");

    let (s, model) = app.request(Request::get(format!("/api/v1/runs/{id}/attachments/model_logreg.onnx")).body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(model, std::fs::read(demo().join("adult/model_logreg.onnx")).unwrap());

    // The overview page is server-rendered with the headline metrics and the chart's figure.
    let (s, html) = app.get_text(&format!("/runs/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("adult-v2") && html.contains("auc_roc") && html.contains("data-plot"), "{}", &html[..html.len().min(2000)]);
    assert!(html.contains("0.9055"), "logreg AUC is on the page");

    let (s, _) = app.request(Request::delete(format!("/api/v1/runs/{id}")).body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, err) = app.get_json(&format!("/api/v1/runs/{id}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(err["error"].as_str().unwrap().contains(&id));
    assert_eq!(app.state.store.count_stored_parts(&id).await.unwrap(), (0, 0), "rows and attachments deleted too");
    let (s, _) = app.request(Request::delete(format!("/api/v1/runs/{id}")).body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
on_both_databases!(upload_list_get_page_delete);

async fn parquet_and_jsonl_give_the_same_run_as_csv(app: TestApp) {
    let spec = json!({"name": "p"});
    let pq = std::fs::read(demo().join("wages/eval.parquet")).unwrap();
    let (s, b) = app.upload("eval.parquet", &pq, &spec, &[]).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let pid = b["id"].as_str().unwrap().to_string();
    let csv = std::fs::read(demo().join("wages/eval.csv")).unwrap();
    let (s, b) = app.upload("eval.csv", &csv, &spec, &[]).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let cid = b["id"].as_str().unwrap().to_string();
    let (_, p) = app.get_json(&format!("/api/v1/runs/{pid}")).await;
    let (_, c) = app.get_json(&format!("/api/v1/runs/{cid}")).await;
    assert_eq!(p["task"], "regression");
    assert_eq!(p["models"], json!(["prediction_linear", "prediction_gbt"]), "prediction* columns are inferred as model outputs");
    assert_eq!(p["columns"], c["columns"], "CSV and Parquet hold the same values");

    // JSON Lines, made from the first rows of the CSV.
    let mut rdr = csv::Reader::from_path(demo().join("adult/eval.csv")).unwrap();
    let headers = rdr.headers().unwrap().clone();
    let mut jsonl = String::new();
    for rec in rdr.records().take(200) {
        let rec = rec.unwrap();
        let mut obj = serde_json::Map::new();
        for (h, v) in headers.iter().zip(rec.iter()) {
            let val = if v.is_empty() { serde_json::Value::Null } else if let Ok(n) = v.parse::<f64>() { json!(n) } else { json!(v) };
            obj.insert(h.to_string(), val);
        }
        jsonl.push_str(&serde_json::Value::Object(obj).to_string());
        jsonl.push('\n');
    }
    let (s, b) = app.upload("head.jsonl", jsonl.as_bytes(), &json!({"name": "j"}), &[]).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (_, j) = app.get_json(&format!("/api/v1/runs/{}", b["id"].as_str().unwrap())).await;
    assert_eq!(j["rows"], 200);
    assert_eq!(j["task"], "binary");
}
on_both_databases!(parquet_and_jsonl_give_the_same_run_as_csv);

async fn bad_uploads_store_nothing(app: TestApp) {
    let bad = testdata().join("bad");
    for f in ["ragged_rows.csv", "score_out_of_range.csv", "label_invalid.csv", "duplicate_columns.csv", "empty.csv",
              "header_only.csv", "not_utf8.csv", "broken_line.jsonl", "missing_label_column.csv", "duplicate_example_id.csv",
              "bad_timestamp.csv", "numeric_column_text.csv", "truncated.parquet"] {
        let bytes = std::fs::read(bad.join(f)).unwrap();
        let (s, body) = app.upload(f, &bytes, &json!({"name": f}), &[]).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{f}: {body}");
        let msg = body["error"].as_str().unwrap();
        assert!(msg.starts_with(f), "{f}: the message names the file: {msg}");
    }
    assert_eq!(app.state.store.count_runs().await.unwrap(), 0, "nothing stored");
    let (s, body) = app.upload("x.csv", b"a,label,score\n1,0,0.5\n", &json!({"name": ""}), &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("name"));
}
on_both_databases!(bad_uploads_store_nothing);

/// A file whose roles cannot be inferred (no column named score*) still previews: its columns,
/// with the roles the names suggest, so the upload page can show the role table; the upload
/// without roles is refused, and with the roles picked it is stored.
async fn preview_without_inferable_roles(app: TestApp) {
    let csv = b"y,p,g\n1,0.9,a\n0,0.2,b\n1,0.7,a\n0,0.4,b\n";
    let req = Request::post("/api/v1/preview?file_name=ypg.csv").header("content-type", "application/octet-stream").body(Body::from(&csv[..])).unwrap();
    let (s, b) = app.request(req).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let p: serde_json::Value = serde_json::from_slice(&b).unwrap();
    let cols: Vec<(&str, &str)> = p["columns"].as_array().unwrap().iter().map(|c| (c["name"].as_str().unwrap(), c["role"].as_str().unwrap())).collect();
    assert_eq!(cols, vec![("y", "label"), ("p", "feature"), ("g", "feature")]);
    assert_eq!(p["rows"].as_array().unwrap().len(), 4);
    let (s, body) = app.upload("ypg.csv", csv, &json!({"name": "ypg"}), &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("no score column"), "{body}");
    let (s, body) = app.upload("ypg.csv", csv, &json!({"name": "ypg", "label": "y", "scores": ["p"]}), &[]).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
}
on_both_databases!(preview_without_inferable_roles);

async fn a_failed_write_leaves_nothing_half_stored(app: TestApp) {
    // Two attachments with the same name violate the primary key after the run row and its data
    // were inserted: the transaction must roll all of it back.
    // (Model cards, not ONNX files: those are loaded at upload and refused before any write.)
    let csv = b"label,score,x\n1,0.9,a\n0,0.2,b\n";
    let m: &[u8] = b"{}";
    let (s, _) = app.upload("t.csv", csv, &json!({"name": "dup"}), &[("m.json", m), ("m.json", m)]).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(app.state.store.count_runs().await.unwrap(), 0);
    let (s, runs) = app.get_json("/api/v1/runs").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(runs, json!([]));
}
on_both_databases!(a_failed_write_leaves_nothing_half_stored);

#[tokio::test]
async fn uploads_over_the_limit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let target = strata_server::settings::DatabaseTarget::Sqlite(dir.path().join("s.db"));
    let limits = strata_server::settings::Limits { max_upload_bytes: 1000, max_model_bytes: 1000, ..Default::default() };
    let app = TestApp::with(target, dir, limits).await;
    let csv = std::fs::read(demo().join("adult/eval.csv")).unwrap();
    let (s, body) = app.upload("eval.csv", &csv, &json!({"name": "big"}), &[]).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body["error"].as_str().unwrap().contains("limit of 1000 bytes"));
    let big_model = vec![7u8; 5000];
    let (s, body) = app.upload("t.csv", b"label,score\n1,0.9\n", &json!({"name": "m"}), &[("huge.onnx", &big_model)]).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body["error"].as_str().unwrap().contains("huge.onnx: the file is larger than the limit"), "{body}");
    // Within the size limit but not a model: refused at upload, with the parser's reason.
    let (s, body) = app.upload("t.csv", b"label,score\n1,0.9\n", &json!({"name": "m"}), &[("junk.onnx", &big_model[..500])]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("model 'junk.onnx' cannot be loaded"), "{body}");
    assert_eq!(app.state.store.count_runs().await.unwrap(), 0);
}

async fn health_openapi_demo_and_pages(app: TestApp) {
    let (s, h) = app.get_json("/healthz").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["database"], "reachable");
    let (s, doc) = app.get_json("/api/v1/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["paths"]["/api/v1/runs"]["post"].is_object());
    assert!(doc["components"]["schemas"]["RunDetail"].is_object());

    assert_eq!(strata_server::demo::load_if_empty(&app.state).await.unwrap(), 2);
    assert_eq!(strata_server::demo::load_if_empty(&app.state).await.unwrap(), 0, "only into an empty database");
    let (_, runs) = app.get_json("/api/v1/runs").await;
    let names: Vec<&str> = runs.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"Adult income (demo)") && names.contains(&"GSS wages (demo)"), "{names:?}");
    let adult = runs.as_array().unwrap().iter().find(|r| r["name"] == "Adult income (demo)").unwrap();
    let (_, d) = app.get_json(&format!("/api/v1/runs/{}", adult["id"].as_str().unwrap())).await;
    let att: Vec<&str> = d["attachments"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(att, vec!["model_gbt.onnx", "model_logreg.onnx", "models.json"]);

    let (s, html) = app.get_text("/").await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("Adult income (demo)") && html.contains("GSS wages (demo)"));
    let (s, html) = app.get_text("/?q=wages").await;
    assert_eq!(s, StatusCode::OK);
    // (The hydration data embeds every run's JSON, so look at the rendered links.)
    assert!(html.contains(">GSS wages (demo)</a>") && !html.contains(">Adult income (demo)</a>"), "the URL's filter applies on the server too");
    let (s, _) = app.get_text("/runs/does-not-exist").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.get_text("/no/such/page").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Untrusted text is escaped: a run name with markup is shown as text.
    let (s, b) = app.upload("x.csv", b"label,score\n1,0.9\n0,0.1\n", &json!({"name": "</title><script>alert(1)</script>"}), &[]).await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, html) = app.get_text(&format!("/runs/{}", b["id"].as_str().unwrap())).await;
    assert!(!html.contains("<script>alert(1)") && html.contains("&lt;script&gt;alert(1)"), "escaped in the page and the title");
    // A name from the URL (a project page) cannot close the title either.
    let (_, html) = app.get_text("/projects/%3C%2Ftitle%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E").await;
    assert!(!html.contains("<script>alert(1)"), "the project name in the title is escaped: {}", &html[..html.len().min(600)]);
}
on_both_databases!(health_openapi_demo_and_pages);

async fn metrics_api_answers_and_refuses_bad_requests(app: TestApp) {
    strata_server::demo::load_if_empty(&app.state).await.unwrap();
    let (_, runs) = app.get_json("/api/v1/runs").await;
    let id = runs.as_array().unwrap().iter().find(|r| r["name"] == "Adult income (demo)").unwrap()["id"].as_str().unwrap().to_string();
    let (s, m) = app.get_json(&format!("/api/v1/runs/{id}/metrics?model=score_logreg&slice=sex,race&slice=age:q4&thresholds=0.3,0.5&bootstrap=20&baseline=sex%3DMale")).await;
    assert_eq!(s, StatusCode::OK, "{m}");
    assert_eq!(m["baseline"], "sex=Male");
    assert_eq!(m["thresholds"], json!([0.3, 0.5]));
    let slices = m["slices"].as_array().unwrap();
    assert_eq!(slices[0]["spec"], "overall");
    assert_eq!(slices[0]["key"], json!({}));
    let cross = slices.iter().find(|s| s["spec"] == "sex,race" && s["key"] == json!({"sex": "Male", "race": "White"})).unwrap();
    assert!(cross["metrics"]["auc_roc"]["value"].as_f64().unwrap() > 0.8);
    assert_eq!(cross["at"][1]["threshold"], 0.5);
    assert!(cross["at"][1]["tpr"]["lo"].is_number());
    assert!(cross["vs_baseline"]["fpr@0.5"]["p_value"].is_number());
    assert_eq!(slices.iter().filter(|s| s["spec"] == "age:q4").count(), 4);
    for (q, needle) in [
        ("slice=nope", "column 'nope' is not in the run"),
        ("slice=sex:q5", "not numeric"),
        ("thresholds=1.2", "outside [0, 1]"),
        ("model=score_x", "model 'score_x'"),
        ("slice=example_id", "more than the limit"),
        ("baseline=sex", "must be 'overall' or a filter"),
        ("colour=red", "unknown parameter 'colour'"),
    ] {
        let (s, e) = app.get_json(&format!("/api/v1/runs/{id}/metrics?{q}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {e}");
        assert!(e["error"].as_str().unwrap().contains(needle), "{q}: {e}");
    }
    let (s, _) = app.get_json("/api/v1/runs/nope/metrics").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The page renders the same numbers server-side.
    let (s, html) = app.get_text(&format!("/runs/{id}/slices?slice=sex&metric=fpr&thresholds=0.5")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("sex=Female") && html.contains("significant gap"), "{}", &html[..html.len().min(3000)]);
}
on_both_databases!(metrics_api_answers_and_refuses_bad_requests);

/// A multiclass run whose model is one probability column per class: stored with each column's
/// class, offered as one model, with top-k accuracy and log loss in the API and on the page.
async fn per_class_scores_through_the_api(app: TestApp) {
    let csv = std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/multiclass.csv")).unwrap();
    let (status, body) = app.upload("multiclass.csv", &csv, &json!({"name": "animals"}), &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap();
    let (_, run) = app.get_json(&format!("/api/v1/runs/{id}")).await;
    assert_eq!(run["models"], json!(["prediction_model", "prob_mlp"]));
    let owl = run["columns"].as_array().unwrap().iter().find(|c| c["name"] == "prob_mlp_owl").unwrap();
    assert_eq!(owl["class_score"], json!({"model": "prob_mlp", "class": "owl"}));
    let (s, m) = app.get_json(&format!("/api/v1/runs/{id}/metrics?model=prob_mlp&slice=group&bootstrap=20")).await;
    assert_eq!(s, StatusCode::OK, "{m}");
    let golden: serde_json::Value = serde_json::from_str(include_str!("../golden/multiclass.json")).unwrap();
    let overall = &m["slices"][0]["metrics"];
    for name in ["top_2_accuracy", "top_3_accuracy", "log_loss"] {
        let (got, want) = (overall[name]["value"].as_f64().unwrap(), golden["overall"]["mlp"][name].as_f64().unwrap());
        assert!((got - want).abs() < 1e-9, "{name}: {got} vs scikit-learn {want}");
    }
    // The run page's headline: the same overall numbers; the predicted-class model has none.
    let (s, html) = app.get_text(&format!("/runs/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("top_2_accuracy") && html.contains("0.8743") && html.contains("0.8193"), "{}", &html[..html.len().min(3000)]);
    let (s, html) = app.get_text(&format!("/runs/{id}/slices?model=prob_mlp&slice=group&metric=top_2_accuracy")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("top_2_accuracy") && html.contains("group=north"), "{}", &html[..html.len().min(3000)]);
}
on_both_databases!(per_class_scores_through_the_api);

/// The OpenAPI document comes from the routes themselves (utoipa-axum): the analysis routes list
/// their typed query parameters; the metric registry is served as data; a page's own keys are not
/// the API's; a page asked for something invalid answers 400, not 200 or 500.
async fn typed_parameters_registry_and_page_statuses(app: TestApp) {
    let (_, doc) = app.get_json("/api/v1/openapi.json").await;
    let params = |path: &str| -> Vec<String> {
        doc["paths"][path]["get"]["parameters"].as_array().unwrap_or_else(|| panic!("{path} has parameters")).iter().map(|p| p["name"].as_str().unwrap().to_string()).collect()
    };
    for (path, want) in [
        ("/api/v1/runs/{id}/metrics", vec!["id", "model", "slice", "thresholds", "ci", "baseline", "min_size", "bootstrap", "seed", "alpha"]),
        ("/api/v1/runs/{id}/fairness", vec!["id", "model", "feature", "thresholds", "metric", "criterion"]),
        ("/api/v1/runs/{id}/residuals", vec!["id", "model", "kind", "feature", "bins", "level"]),
        ("/api/v1/runs/{id}/drift", vec!["id", "reference"]),
        ("/api/v1/runs/{id}/stream-drift", vec!["id", "threshold", "margin"]),
        ("/api/v1/runs/{id}/pdp", vec!["id", "model", "pdp", "grid", "sample"]),
        ("/api/v1/projects/{p}", vec!["p", "metric", "slice", "by"]),
    ] {
        let got = params(path);
        for w in want {
            assert!(got.iter().any(|g| g == w), "{path} documents '{w}': {got:?}");
        }
    }
    assert!(doc["paths"]["/api/v1/runs/{id}/metrics"]["get"]["parameters"].as_array().unwrap().iter().any(|p| p["name"] == "slice" && p["in"] == "query"));
    let (s, reg) = app.get_json("/api/v1/metric-registry").await;
    assert_eq!(s, StatusCode::OK);
    let fdr = reg.as_array().unwrap().iter().find(|m| m["name"] == "fdr").unwrap();
    assert_eq!((fdr["family"].as_str(), fdr["direction"].as_str(), fdr["interval"].as_str()), (Some("at_threshold"), Some("lower"), Some("wilson")));

    strata_server::demo::load_if_empty(&app.state).await.unwrap();
    let (_, runs) = app.get_json("/api/v1/runs").await;
    let id = runs.as_array().unwrap().iter().find(|r| r["name"] == "Adult income (demo)").unwrap()["id"].as_str().unwrap().to_string();
    let (s, e) = app.get_json(&format!("/api/v1/runs/{id}/metrics?slice=sex&metric=fpr")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(e["error"].as_str().unwrap().contains("unknown parameter 'metric'"), "{e}");
    let (s, e) = app.get_json(&format!("/api/v1/runs/{id}/metrics?bootstrap=many")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"], "bootstrap='many' is not a whole number");
    let (s, html) = app.get_text(&format!("/runs/{id}/slices?slice=sex&colour=red")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(html.contains("unknown parameter &#x27;colour&#x27;") || html.contains("unknown parameter 'colour'"), "the page shows why");
    let (s, _) = app.get_text(&format!("/runs/{id}/slices?slice=sex&metric=fdr&sort=worst")).await;
    assert_eq!(s, StatusCode::OK);
}
on_both_databases!(typed_parameters_registry_and_page_statuses);

/// One GET used to be able to ask for tens of gigabytes of bootstrap values (1,001 thresholds ×
/// 2,000 replicates × ~170 slices): it is refused before any work, with its cost and how to shrink
/// it; the fairness view has the same budget. A request within it still runs.
async fn analysis_budget_refuses_huge_requests(app: TestApp) {
    strata_server::demo::load_if_empty(&app.state).await.unwrap();
    let (_, runs) = app.get_json("/api/v1/runs").await;
    let id = runs.as_array().unwrap().iter().find(|r| r["name"] == "Adult income (demo)").unwrap()["id"].as_str().unwrap().to_string();
    let (s, e) = app.get_json(&format!("/api/v1/runs/{id}/metrics?model=score_gbt&slice=sex,race&slice=age:q10,education&thresholds=0:1:0.001&bootstrap=2000")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let msg = e["error"].as_str().unwrap();
    assert!(msg.contains("2000 replicates") && msg.contains("fewer thresholds") && msg.contains("STRATA_MAX_ANALYSIS_MB"), "{msg}");
    let (s, e) = app.get_json(&format!("/api/v1/runs/{id}/fairness?model=score_gbt&feature=education,race&thresholds=0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9&bootstrap=100000")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(e["error"].as_str().unwrap().contains("replicates"), "{e}");
    let (s, m) = app.get_json(&format!("/api/v1/runs/{id}/metrics?model=score_gbt&slice=sex&thresholds=0:1:0.01&bootstrap=50")).await;
    assert_eq!(s, StatusCode::OK, "{m}");
}
on_both_databases!(analysis_budget_refuses_huge_requests);

/// Analyses that call a model (partial dependence, attacks, predictions) count their predictions
/// before the first and refuse a request over the budget, saying how to shrink it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prediction_budget_refuses_huge_model_analyses() {
    let dir = tempfile::tempdir().unwrap();
    let target = strata_server::settings::DatabaseTarget::Sqlite(dir.path().join("s.db"));
    let app = TestApp::with(target, dir, strata_server::settings::Limits { max_predictions: 10_000, ..Default::default() }).await;
    strata_server::demo::load_if_empty(&app.state).await.unwrap();
    let (_, runs) = app.get_json("/api/v1/runs").await;
    let id = runs.as_array().unwrap().iter().find(|r| r["name"] == "Adult income (demo)").unwrap()["id"].as_str().unwrap().to_string();
    let (s, e) = app.get_json(&format!("/api/v1/runs/{id}/pdp?model=score_gbt&feature=age&sample=5000&grid=100")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let msg = e["error"].as_str().unwrap();
    assert!(msg.contains("500000 model predictions") && msg.contains("STRATA_MAX_PREDICTIONS") && msg.contains("grid="), "{msg}");
    let attack = axum::http::Request::post(format!("/api/v1/runs/{id}/attacks"))
        .header("content-type", "application/json")
        .body(Body::from(json!({"model": "score_gbt", "noise": 0.5, "sample": 50000}).to_string()))
        .unwrap();
    let (s, b) = app.request(attack).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&b).contains("100000 model predictions"));
    let (s, p) = app.get_json(&format!("/api/v1/runs/{id}/pdp?model=score_gbt&feature=age&sample=100&grid=10")).await;
    assert_eq!(s, StatusCode::OK, "{p}");
}

/// The benchmark fit's matrix is its cost: a run with many categorical features is refused
/// before the fit, not after it has taken the memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn benchmark_fit_within_the_analysis_budget() {
    let dir = tempfile::tempdir().unwrap();
    let target = strata_server::settings::DatabaseTarget::Sqlite(dir.path().join("s.db"));
    let app = TestApp::with(target, dir, strata_server::settings::Limits { max_analysis_bytes: 1 << 20, ..Default::default() }).await;
    let names: Vec<String> = (0..120).map(|i| format!("c{i}")).collect();
    let mut csv = format!("label,score,{}\n", names.join(","));
    for r in 0..50 {
        let cells: Vec<&str> = (0..120).map(|i| if (r + i) % 2 == 0 { "a" } else { "b" }).collect();
        csv.push_str(&format!("{},{},{}\n", r % 2, (r % 10) as f64 / 10.0, cells.join(",")));
    }
    let (s, b) = app.upload("wide.csv", csv.as_bytes(), &json!({"name": "wide", "label": "label", "scores": ["score"]}), &[]).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let id = b["id"].as_str().unwrap();
    let fit = Request::post(format!("/api/v1/runs/{id}/benchmark")).header("content-type", "application/json").body(Body::from(json!({"c": 1.0, "max_rows": 1000}).to_string())).unwrap();
    let (s, b) = app.request(fit).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let msg = String::from_utf8_lossy(&b);
    assert!(msg.contains("3601 × 3601") && msg.contains("STRATA_MAX_ANALYSIS_MB"), "{msg}");
}
