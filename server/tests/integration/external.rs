//! External runs from a local Parquet dataset: the Adult demo written as a hive-partitioned
//! directory (partitioned by sex, several row groups per file) and registered, against the same
//! rows uploaded: slices, a quantile-bucketed feature, a cross and fairness at several thresholds
//! give the same numbers (same seed); the failure paths are clear 4xx answers and cache nothing;
//! in team mode a path outside `--external-root` is refused.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use polars::prelude::*;
use serde_json::{Value, json};
use strata_app::model::{NewToken, NewUser, RegisterRun, RunSource, Scope, UserRole};
use strata_server::ingest::dataset::Access;

use crate::helpers::{TestApp, demo};
use crate::on_both_databases;

fn adult() -> DataFrame {
    ParquetReader::new(std::fs::File::open(demo().join("adult/eval.parquet")).unwrap()).finish().unwrap()
}

/// Writes `df` as `dir/<key>=<value>/part-0.parquet` (the key's column left out of the files, as
/// Spark and Polars write partitions), `rows_per_group` rows per row group.
fn write_partitioned(df: &DataFrame, dir: &Path, key: &str, rows_per_group: usize) {
    let col = df.column(key).unwrap().str().unwrap().clone();
    let mut values: Vec<String> = col.iter().flatten().map(str::to_string).collect();
    values.sort();
    values.dedup();
    for v in values {
        let mask = col.equal(v.as_str());
        let mut part = df.filter(&mask).unwrap().drop(key).unwrap();
        let sub = dir.join(format!("{key}={v}"));
        std::fs::create_dir_all(&sub).unwrap();
        let f = std::fs::File::create(sub.join("part-0.parquet")).unwrap();
        ParquetWriter::new(f).with_row_group_size(Some(rows_per_group)).finish(&mut part).unwrap();
    }
}

fn register_body(path: &Path) -> Value {
    json!({"name": "adult (external)", "label": "label", "scores": ["score_logreg", "score_gbt"], "id": "example_id", "timestamp": "timestamp", "source": {"parquet": path.to_string_lossy()}})
}

async fn post_json(app: &TestApp, body: &Value, headers: &[(&str, String)]) -> (StatusCode, Value) {
    post_to(&app.router, body, headers).await
}

async fn post_to(router: &axum::Router, body: &Value, headers: &[(&str, String)]) -> (StatusCode, Value) {
    let mut b = Request::post("/api/v1/runs").header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(*k, v);
    }
    let res = tower::ServiceExt::oneshot(router.clone(), b.body(Body::from(body.to_string())).unwrap()).await.unwrap();
    let status = res.status();
    let bytes = http_body_util::BodyExt::collect(res.into_body()).await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn upload_adult(app: &TestApp) -> String {
    let bytes = std::fs::read(demo().join("adult/eval.parquet")).unwrap();
    let (s, v) = app.upload("adult.parquet", &bytes, &json!({"name": "adult (uploaded)", "label": "label", "scores": ["score_logreg", "score_gbt"], "id": "example_id", "timestamp": "timestamp"}), &[]).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

/// The Adult demo uploaded, and written under `dir` as hive partitions by sex (1,500 rows a row
/// group) and registered: (the dataset's path, the uploaded run, the external run).
async fn adult_both_ways(app: &TestApp, dir: &Path) -> (PathBuf, String, String) {
    let data = dir.join("adult");
    write_partitioned(&adult(), &data, "sex", 1500);
    let uploaded = upload_adult(app).await;
    let (s, v) = post_json(app, &register_body(&data), &[]).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    (data, uploaded, v["id"].as_str().unwrap().to_string())
}

async fn external_runs_equal_uploaded_ones(app: TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let (data, uploaded, external) = adult_both_ways(&app, dir.path()).await;

    // Listed like any run, marked with its source; the row count from the footers.
    let (_, runs) = app.get_json("/api/v1/runs").await;
    let find = |id: &str| runs.as_array().unwrap().iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!(find(&external)["source"], json!({"parquet": data.to_string_lossy()}));
    assert_eq!(find(&uploaded).get("source"), None);
    assert_eq!(find(&external)["rows"], 16000);
    let (s, d) = app.get_json(&format!("/api/v1/runs/{external}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(d["task"], "binary");
    assert!(d["columns"].as_array().unwrap().iter().any(|c| c["name"] == "sex"), "the partition key is a column: {d}");

    // Slices (by race, quantile buckets of a numeric feature, a cross, a filter baseline) and
    // fairness at several thresholds: the same numbers, intervals included.
    for q in [
        "model=score_gbt&slice=race&thresholds=0.3,0.5,0.7&bootstrap=40&seed=3",
        "model=score_logreg&slice=age:q5&thresholds=0.2,0.5&bootstrap=30&seed=9",
        "model=score_gbt&slice=sex,race&slice=hours_per_week:w4&thresholds=0.5&bootstrap=30&seed=1&baseline=sex%3DFemale",
        "model=score_gbt&slice=education&thresholds=0.4&bootstrap=0",
    ] {
        same_metrics(&app, &uploaded, &external, q).await;
    }
    for q in ["model=score_gbt&feature=race&thresholds=0.3,0.5,0.7&bootstrap=40&seed=3", "model=score_logreg&feature=sex&thresholds=0.25,0.5&bootstrap=20&seed=5"] {
        let (s1, a) = app.get_json(&format!("/api/v1/runs/{uploaded}/fairness?{q}")).await;
        let (s2, b) = app.get_json(&format!("/api/v1/runs/{external}/fairness?{q}")).await;
        assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK), "{q}: {a} / {b}");
        assert_eq!(a["entries"][0]["result"], b["entries"][0]["result"], "{q}");
        assert_eq!(a["cards"], b["cards"], "{q}");
        assert_eq!(a["suggestion"], b["suggestion"], "{q}");
    }
    // The run page's headline metrics.
    let (a, b) = (app.state.overview(&uploaded, None).await.unwrap(), app.state.overview(&external, None).await.unwrap());
    assert_eq!(a.headline, b.headline);
    // The score distribution and label balance, counted from the cells: the same chart.
    assert_eq!((&a.chart, &a.label_balance), (&b.chart, &b.label_balance));
    assert!(a.label_balance.len() == 2 && a.chart.contains("label = 1"), "{:?}", a.label_balance);

    // Views that need every row in order say so (the API and the pages); the row views read the
    // run's row sample (row_views_of_external_runs_read_a_sample checks them); the others' pages
    // render. (Partial dependence and importance need an attached model: refused without one.)
    for (path, says) in [("pdp?model=score_gbt&feature=age".to_string(), false), ("stream-drift".into(), true), ("importance".into(), false)] {
        let (s, e) = app.get_json(&format!("/api/v1/runs/{external}/{path}")).await;
        assert!(s.is_client_error(), "{path}: {s} {e}");
        assert!(!says || e["error"].as_str().unwrap_or_default().contains("needs rows"), "{path}: {e}");
    }
    // Drift is counted where the rows are: the same rows uploaded have not drifted at all
    // (drift_of_external_runs_equals_the_uploaded_copies checks the numbers on a drifted pair).
    let (s, d) = app.get_json(&format!("/api/v1/runs/{external}/drift?reference={uploaded}")).await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert!(d["features"].as_array().unwrap().iter().all(|f| f["drifted"] == false && f["statistic"] == 0.0), "{d}");
    // Discovery searches the row sample (here every row, read from the partitions): the slices
    // it finds and their counts are the upload's, the sample stated.
    let q = "discover?model=score_gbt&features=race,sex,age&level=2";
    let (s1, a) = app.get_json(&format!("/api/v1/runs/{uploaded}/{q}")).await;
    let (s2, b) = app.get_json(&format!("/api/v1/runs/{external}/{q}")).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK), "{a} / {b}");
    assert_eq!((b["row_sample"]["rows"].as_u64(), b["rows"].as_u64()), (Some(16000), Some(16000)), "{b}");
    let found = |v: &Value| v["slices"].as_array().unwrap().iter().map(|s| (s["spec"].clone(), s["count"].clone())).collect::<Vec<_>>();
    assert!(!found(&a).is_empty());
    assert_eq!(found(&a), found(&b));
    let (s, html) = app.get_text(&format!("/runs/{external}/discover")).await;
    assert_eq!(s, StatusCode::OK, "/runs/ID/discover");
    assert!(html.contains("Computed on all 16,000 rows of this external run"), "the discovery page states the rows it searched");
    for page in ["", "/slices?slice=race", "/fairness?feature=race"] {
        let (s, html) = app.get_text(&format!("/runs/{external}{page}")).await;
        assert_eq!(s, StatusCode::OK, "/runs/ID{page}");
        assert!(page != "" || html.contains("Parquet: "), "the run page shows the source");
    }
    let (s, html) = app.get_text("/").await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains(&format!("Parquet: {}", data.to_string_lossy())), "the runs list marks the external run");

    // A column the files lack: a 400 that names it, at registration and in a request.
    let mut bad = register_body(&data);
    bad["label"] = json!("income");
    let (s, e) = post_json(&app, &bad, &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(e.to_string().contains("income"), "{e}");
    let (s, e) = app.get_json(&format!("/api/v1/runs/{external}/metrics?slice=gender")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(e["error"].as_str().unwrap_or_default().contains("'gender'"), "{e}");

    // A missing path: 404 at registration.
    let (s, e) = post_json(&app, &register_body(&dir.path().join("nowhere")), &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    assert!(e["error"].as_str().unwrap_or_default().contains("nowhere"), "{e}");

    // Files that disappear after registering: a clear 4xx, nothing cached; back in place, the
    // same numbers as the uploaded copy.
    let moved = dir.path().join("moved");
    let copy = dir.path().join("copy");
    write_partitioned(&adult(), &copy, "sex", 4000);
    let (s, v) = post_json(&app, &register_body(&copy), &[]).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let copy_id = v["id"].as_str().unwrap().to_string();
    std::fs::rename(&copy, &moved).unwrap();
    let q = "model=score_gbt&slice=race&thresholds=0.5&bootstrap=20&seed=2";
    let (s, e) = app.get_json(&format!("/api/v1/runs/{copy_id}/metrics?{q}")).await;
    assert!(s.is_client_error(), "{s}: {e}");
    assert!(e["error"].as_str().unwrap_or_default().contains(&*copy.to_string_lossy()), "{e}");
    std::fs::rename(&moved, &copy).unwrap();
    let (s, b) = app.get_json(&format!("/api/v1/runs/{copy_id}/metrics?{q}")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, a) = app.get_json(&format!("/api/v1/runs/{uploaded}/metrics?{q}")).await;
    assert_eq!(a, b);
    // A dataset that changed (a file removed): refused, not mixed with the cached numbers.
    std::fs::remove_dir_all(copy.join("sex=Female")).unwrap();
    let (s, e) = app.get_json(&format!("/api/v1/runs/{copy_id}/metrics?model=score_gbt&slice=education&bootstrap=0")).await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
}

on_both_databases!(external_runs_equal_uploaded_ones);

/// A glob and a single file register too; `strata register` uses the same service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn globs_files_and_the_cli() {
    let app = TestApp::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("adult");
    write_partitioned(&adult(), &data, "race", 3000);
    let (s, v) = post_json(&app, &register_body(&data.join("race=*").join("*.parquet")), &[]).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, d) = app.get_json(&format!("/api/v1/runs/{}", v["id"].as_str().unwrap())).await;
    assert_eq!(d["rows"], 16000, "{d}");
    let file = demo().join("adult/eval.parquet");
    let (s, v) = post_json(&app, &register_body(&file), &[]).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    let data_dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["register", "--parquet"])
        .arg(&data)
        .args(["--label", "label", "--scores", "score_logreg,score_gbt", "--project", "adult-ext", "--data-dir"])
        .arg(data_dir.path())
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(id.len(), 12, "{id}");
}

/// Team mode: only under the admin's `--external-root` directories, with `..` and symlinks
/// leading outside refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_mode_reads_only_under_external_roots() {
    let app = TestApp::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("allowed");
    let outside = dir.path().join("private");
    write_partitioned(&adult(), &root.join("adult"), "sex", 8000);
    write_partitioned(&adult(), &outside.join("adult"), "sex", 8000);
    std::os::unix::fs::symlink(outside.join("adult"), root.join("link")).unwrap();
    app.state.create_user(NewUser { name: "ada".into(), role: UserRole::Admin, password: Some("correct horse battery staple".into()), service: false }).await.unwrap();
    let ada = app.state.store.account_by_name("ada").await.unwrap().unwrap();
    let token = app.state.create_token(&ada.id, "ada", NewToken { name: "ci".into(), scopes: vec![Scope::Write], expires_in_days: Some(1) }).await.unwrap().token;
    let state = app.state.clone().with_external_roots(&[root.clone()]).unwrap();
    let options = strata_server::leptos_options(dir.path(), "127.0.0.1:0".parse().unwrap());
    let team = strata_server::router(state.clone(), options);
    let auth = [("authorization", format!("Bearer {token}"))];

    let (s, v) = post_to(&team, &register_body(&root.join("adult")), &auth).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    for (path, why) in [
        (outside.join("adult"), "outside"),
        (root.join("..").join("private").join("adult"), "'..'"),
        (root.join("link"), "outside"),
        // Not even whether something exists outside is told.
        (outside.join("nothing-here"), "outside"),
        (PathBuf::from("adult"), "absolute"),
    ] {
        let (s, e) = post_to(&team, &register_body(&path), &auth).await;
        assert!(s == StatusCode::FORBIDDEN || (why == "absolute" && s == StatusCode::BAD_REQUEST), "{}: {s} {e}", path.display());
        assert!(e["error"].as_str().unwrap_or_default().contains(why), "{}: {e}", path.display());
    }
    // The service refuses it whoever calls; with no root at all, every path.
    let reg = RegisterRun { label: Some("label".into()), source: Some(RunSource::Parquet(outside.join("adult").to_string_lossy().to_string())), ..Default::default() };
    assert!(state.register_external(reg.clone(), Access::Roots(vec![])).await.unwrap_err().to_string().contains("--external-root"));
}

/// The views that need rows read an external run's row sample: every row when the run has at
/// most `ROW_SAMPLE` (so the same numbers as the upload: an attached model's predictions and
/// partial dependence, the residual analysis of a regression run), beyond that exactly
/// `ROW_SAMPLE` rows drawn uniformly, the same rows on every draw; the pages say which.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_views_of_external_runs_read_a_sample() {
    use strata_server::service::external::ROW_SAMPLE;
    let app = TestApp::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let ids_of = |df: &DataFrame, column: &str| -> Vec<String> { df.column(column).unwrap().cast(&DataType::String).unwrap().str().unwrap().iter().map(|v| v.unwrap_or_default().to_string()).collect() };

    // Adult, 16,000 rows in hive partitions: the sample is every row (in the files' order).
    let (_, uploaded, external) = adult_both_ways(&app, dir.path()).await;
    let (s, page) = app.get_json(&format!("/api/v1/runs/{external}/examples?limit=5")).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!((page["total"].as_u64(), page["rows"].as_array().map(Vec::len)), (Some(16000), Some(5)));
    assert_eq!((page["sample"]["rows"].as_u64(), page["sample"]["of"].as_u64()), (Some(16000), Some(16000)), "{page}");
    let (_, plain) = app.get_json(&format!("/api/v1/runs/{uploaded}/examples?limit=5")).await;
    assert_eq!(plain.get("sample"), None, "an uploaded run's rows are all its rows");
    let rows = app.state.rows(&external).await.unwrap();
    let (mut a, mut b) = (ids_of(&rows.frame, "example_id"), ids_of(&app.state.frame(&uploaded).await.unwrap(), "example_id"));
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a, b, "every row once");

    // An attached model predicts the external run's rows as the uploaded copy's: the check at
    // attachment agrees with the stored scores, and one example's partial dependence curve (on the
    // grid of every row's quantiles) is the same.
    let gbt = std::fs::read(demo().join("adult/model_gbt.onnx")).unwrap();
    for id in [&uploaded, &external] {
        let attached = app.state.attach_model(id, "model_gbt.onnx", gbt.clone(), Some("score_gbt".into())).await.unwrap();
        assert_eq!(attached.check.agrees, Some(true), "{id}: {:?}", attached.check);
    }
    let example = b[1234].clone();
    let q = format!("model=score_gbt&feature=age&sample=50&grid=6&example={example}&set.hours_per_week=60");
    let (s1, pu) = app.get_json(&format!("/api/v1/runs/{uploaded}/pdp?{q}")).await;
    let (s2, pe) = app.get_json(&format!("/api/v1/runs/{external}/pdp?{q}")).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK), "{pu} / {pe}");
    assert_eq!((&pu["grid"], &pu["example"]), (&pe["grid"], &pe["example"]));
    assert!(pe["example"].as_array().is_some_and(|c| c.len() == pe["grid"].as_array().unwrap().len()), "{pe}");
    assert_eq!((pe["row_sample"]["rows"].as_u64(), pu.get("row_sample")), (Some(16000), None));
    for page in ["/whatif", "/whatif?tab=pdp&pdp=age&model=score_gbt", ""] {
        let (s, html) = app.get_text(&format!("/runs/{external}{page}")).await;
        assert_eq!(s, StatusCode::OK, "/runs/ID{page}");
        assert!(html.contains("Computed on all 16,000 rows of this external run (read from its Parquet files)."), "/runs/ID{page}");
    }

    // Wages (regression) registered from the demo's own file: the residual analysis equals the
    // upload's, the sample stated.
    let wages = demo().join("wages/eval.parquet");
    let (s, v) = app.upload("wages.parquet", &std::fs::read(&wages).unwrap(), &json!({"name": "wages", "label": "label"}), &[]).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let wages_uploaded = v["id"].as_str().unwrap().to_string();
    let (s, v) = post_json(&app, &json!({"name": "wages (external)", "label": "label", "source": {"parquet": wages.to_string_lossy()}}), &[]).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let wages_external = v["id"].as_str().unwrap().to_string();
    // The overview's chart (predictions and labels on common bins) and label histogram, from the cells.
    for model in [None, Some("prediction_gbt")] {
        let (a, b) = (app.state.overview(&wages_uploaded, model).await.unwrap(), app.state.overview(&wages_external, model).await.unwrap());
        assert_eq!((&a.headline, &a.chart, &a.label_balance), (&b.headline, &b.chart, &b.label_balance), "{model:?}");
        assert!(a.chart.contains("(prediction)") && !a.label_balance.is_empty());
    }
    let q = "model=prediction_gbt&feature=age&slice=gender";
    let (s1, mut ru) = app.get_json(&format!("/api/v1/runs/{wages_uploaded}/residuals?{q}")).await;
    let (s2, mut re) = app.get_json(&format!("/api/v1/runs/{wages_external}/residuals?{q}")).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK), "{ru} / {re}");
    assert_eq!(re["row_sample"]["rows"], 10000);
    same_residuals(&mut ru, &mut re, 10000);
    let (s, html) = app.get_text(&format!("/runs/{wages_external}/residuals?slice=gender")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("Computed on all 10,000 rows of this external run") && html.contains("every statistic uses all rows of the sample"));
    assert!(html.contains("Over all 10,000 rows of the run (counted where they are), not the sample."), "the bias by slice says it is of every row");

    // 250,000 rows in two files: exactly ROW_SAMPLE rows, drawn uniformly over both files, the
    // same ones on a second draw (after the cache is emptied), the sample stated on the page.
    let n = 250_000i64;
    let big = dir.path().join("big");
    std::fs::create_dir_all(&big).unwrap();
    for (k, range) in [(0, 0..n / 2), (1, n / 2..n)] {
        let id: Vec<i64> = range.collect();
        let score: Vec<f64> = id.iter().map(|i| ((i * 7919) % 1000) as f64 / 1000.0).collect();
        let label: Vec<i64> = id.iter().map(|i| i64::from((i * 104_729) % 1000 < 400)).collect();
        let group: Vec<&str> = id.iter().map(|i| ["a", "b", "c"][(*i % 3) as usize]).collect();
        let mut df = df!("row" => id, "group" => group, "score" => score, "label" => label).unwrap();
        ParquetWriter::new(std::fs::File::create(big.join(format!("part-{k}.parquet"))).unwrap()).with_row_group_size(Some(10_000)).finish(&mut df).unwrap();
    }
    let (s, v) = post_json(&app, &json!({"name": "big", "label": "label", "scores": ["score"], "id": "row", "source": {"parquet": big.to_string_lossy()}}), &[]).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let big_id = v["id"].as_str().unwrap().to_string();
    let first = app.state.rows(&big_id).await.unwrap();
    let sample = first.sample.clone().unwrap();
    assert_eq!((sample.rows, sample.of, first.frame.height()), (ROW_SAMPLE as u64, n as u64, ROW_SAMPLE));
    let drawn: Vec<i64> = ids_of(&first.frame, "row").iter().map(|i| i.parse().unwrap()).collect();
    assert!(drawn.windows(2).all(|w| w[0] < w[1]), "in the files' order, no row twice");
    let low = drawn.iter().filter(|i| **i < n / 2).count() as f64 / drawn.len() as f64;
    assert!((low - 0.5).abs() < 0.01, "both files sampled alike: {low}");
    app.state.forget(&big_id);
    assert!(app.state.rows(&big_id).await.unwrap().frame.equals_missing(&first.frame), "the same rows on every draw");
    let (s, html) = app.get_text(&format!("/runs/{big_id}/whatif")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("Computed on a uniform sample of 100,000 of the run&#x27;s 250,000 rows (40%, seed 1; drawn from its Parquet files") || html.contains("Computed on a uniform sample of 100,000 of the run's 250,000 rows (40%, seed 1; drawn from its Parquet files"), "the what-if page states the sample");

    // The residual analysis reads the sample, but its bias by slice sums every row's residual:
    // the slices hold all 250,000 rows, and each mean is the brute-force mean over the files.
    let (s, r) = app.get_json(&format!("/api/v1/runs/{big_id}/residuals?slice=group")).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!((r["n"].as_u64(), r["slices_of_rows"].as_u64()), (Some(ROW_SAMPLE as u64), Some(n as u64)), "{r}");
    let slices = r["slices"].as_array().unwrap();
    assert_eq!(slices.iter().map(|x| x["n"].as_u64().unwrap()).sum::<u64>(), n as u64);
    for x in slices {
        let g = ["a", "b", "c"].iter().position(|g| x["key"]["group"] == *g).unwrap() as i64;
        let rows: Vec<i64> = (0..n).filter(|i| i % 3 == g).collect();
        let mean = rows.iter().map(|i| i64::from((i * 104_729) % 1000 < 400) as f64 - ((i * 7919) % 1000) as f64 / 1000.0).sum::<f64>() / rows.len() as f64;
        let got = x["mean"].as_f64().unwrap();
        assert!((got - mean).abs() < 1e-9, "group {g}: {got} vs {mean}");
    }
}

/// The Adult demo split for drift: the first 8,000 rows as the reference, the rest with `age`
/// shifted by 10 years as the current run (so some features drift and some do not).
pub(crate) fn drift_pair() -> (DataFrame, DataFrame) {
    let all = adult();
    let reference = all.slice(0, 8000);
    let mut current = all.slice(8000, all.height() - 8000);
    let age = current.column("age").unwrap().as_materialized_series() + 10;
    current.with_column(age.into_column()).unwrap();
    (reference, current)
}

pub(crate) async fn upload_frame(app: &TestApp, name: &str, df: &DataFrame) -> String {
    let mut bytes = Vec::new();
    ParquetWriter::new(&mut bytes).finish(&mut df.clone()).unwrap();
    let spec = json!({"name": name, "label": "label", "scores": ["score_logreg", "score_gbt"], "id": "example_id", "timestamp": "timestamp"});
    let (s, v) = app.upload(&format!("{name}.parquet"), &bytes, &spec, &[]).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

/// The drift answer without what differs between two requests (timing, run ids).
pub(crate) fn drift_numbers(v: &Value) -> Value {
    json!({"features": v["features"], "base": [v["base_rate_reference"], v["base_rate_current"], v["base_rate_p_value"]], "notes": v["notes"]})
}

/// Drift between runs whose rows stay in Parquet datasets is the drift of the uploaded copies,
/// exactly: two external runs, an external run against an uploaded one, and a window that mixes
/// both; the drift page of an external run shows the table (and why the stream detectors need
/// rows).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_of_external_runs_equals_the_uploaded_copies() {
    let app = TestApp::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let (reference, current) = drift_pair();
    let (ru, ru2, cu) = (upload_frame(&app, "reference", &reference).await, upload_frame(&app, "reference again", &reference).await, upload_frame(&app, "current", &current).await);
    let mut registered = vec![];
    for (name, df) in [("reference", &reference), ("current", &current)] {
        let path = dir.path().join(name);
        write_partitioned(df, &path, "sex", 1500);
        let (s, v) = post_json(&app, &register_body(&path), &[]).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        registered.push(v["id"].as_str().unwrap().to_string());
    }
    let (re, ce) = (registered[0].clone(), registered[1].clone());
    let drift = |run: &str, reference: &str| format!("/api/v1/runs/{run}/drift?reference={reference}");
    let (s, want) = app.get_json(&drift(&cu, &ru)).await;
    assert_eq!(s, StatusCode::OK, "{want}");
    assert!(want["features"].as_array().unwrap().iter().any(|f| f["feature"] == "age" && f["drifted"] == true), "{want}");
    assert!(want["features"].as_array().unwrap().iter().any(|f| f["feature"] == "race" && f["drifted"] == false), "{want}");
    for (run, r) in [(&ce, &re), (&ce, &ru), (&cu, &re)] {
        let (s, got) = app.get_json(&drift(run, r)).await;
        assert_eq!(s, StatusCode::OK, "{got}");
        assert_eq!(drift_numbers(&got), drift_numbers(&want), "{run} against {r}");
    }
    let (_, window_uploaded) = app.get_json(&drift(&cu, &format!("{ru},{ru2}"))).await;
    let (s, window_mixed) = app.get_json(&drift(&ce, &format!("{re},{ru}"))).await;
    assert_eq!(s, StatusCode::OK, "{window_mixed}");
    assert_eq!(drift_numbers(&window_mixed), drift_numbers(&window_uploaded));

    let (s, html) = app.get_text(&format!("/runs/{ce}/drift?reference={re}&feature=age")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("drift-table") && html.contains("need the rows"), "the page shows the table and why the stream detectors are absent");
}

/// An uploaded run's residual analysis (`a`) and its external copy's (`b`, read whole as its
/// sample, in the same order): the same, but for the bias by slice, which the external run sums
/// from its cells over all `rows` rows in another order (the same numbers up to rounding).
pub fn same_residuals(a: &mut Value, b: &mut Value, rows: u64) {
    same_bias(a, b, rows);
    for r in [&mut *a, &mut *b] {
        let o = r.as_object_mut().unwrap();
        o.remove("row_sample");
        o.remove("slices_of_rows");
    }
    assert_eq!(a, b);
}

/// The bias by slice of an uploaded run (`a`) and of its external copy (`b`, from its cells over
/// all `rows` rows): the same slices and counts, the same numbers up to rounding (summed in
/// another order). Takes the slices out of both.
pub fn same_bias(a: &mut Value, b: &mut Value, rows: u64) {
    assert_eq!(b["slices_of_rows"].as_u64(), Some(rows), "{b}");
    let (sa, sb) = (a["slices"].take(), b["slices"].take());
    let (sa, sb) = (sa.as_array().unwrap(), sb.as_array().unwrap());
    assert!(!sa.is_empty());
    assert_eq!(sa.len(), sb.len());
    for (x, y) in sa.iter().zip(sb) {
        assert_eq!((&x["spec"], &x["key"], &x["n"], &x["significant"]), (&y["spec"], &y["key"], &y["n"], &y["significant"]));
        for f in ["mean", "lo", "hi", "p_value", "q_value"] {
            let (u, v) = (x[f].as_f64().unwrap(), y[f].as_f64().unwrap());
            assert!((u - v).abs() <= 1e-9 * u.abs().max(1e-3), "{f}: {u} vs {v}");
        }
    }
}

/// The metrics API's answers to `q` for an uploaded run and its external copy: both 200, at least
/// one slice, the same JSON. Returns the answer.
pub async fn same_metrics(app: &TestApp, uploaded: &str, external: &str, q: &str) -> Value {
    let (s1, a) = app.get_json(&format!("/api/v1/runs/{uploaded}/metrics?{q}")).await;
    let (s2, b) = app.get_json(&format!("/api/v1/runs/{external}/metrics?{q}")).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK), "{q}: {a} / {b}");
    assert!(!a["slices"].as_array().unwrap().is_empty(), "{q}: {a}");
    assert_eq!(a, b, "{q}");
    a
}
