//! Spark through Spark Connect (issue 18), against a real local cluster: a standalone master, two
//! workers and a Spark Connect server that `scripts/spark-cluster.sh` starts (the test command
//! does, and sets `STRATA_SPARK_REMOTE`). Without it the cluster tests say so and pass only when
//! `STRATA_REQUIRE_SPARK` is unset (a developer's quick `cargo test`); the failure paths that need
//! no cluster (nothing listening, an address the outbound rules refuse) always run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use polars::prelude::{DataType, ParquetReader, ParquetWriter, SerReader};
use strata_app::model::IngestSpec;
use strata_server::ingest::ingest_file;
use strata_server::outbound::Outbound;
use strata_server::spark::pushdown::{self, CellQuery, Param, ScoreGrid, SliceColumn, Source};
use strata_server::spark::{Remote, SparkClient, SparkError, SparkOptions, SparkTable};

use crate::helpers::demo;

fn remote() -> Option<Remote> {
    match std::env::var("STRATA_SPARK_REMOTE") {
        Ok(r) => Some(Remote::parse(&r).expect("STRATA_SPARK_REMOTE is an sc:// address")),
        Err(_) => {
            assert!(std::env::var_os("STRATA_REQUIRE_SPARK").is_none(), "STRATA_SPARK_REMOTE is not set: run scripts/spark-cluster.sh start (the test command does)");
            eprintln!("Spark tests skipped: set STRATA_SPARK_REMOTE=$(scripts/spark-cluster.sh start) to run them");
            None
        }
    }
}

/// Loopback allowed, as an admin of a single machine would.
fn loopback() -> Outbound {
    Outbound::new("127.0.0.1, localhost", true, 16 << 20).unwrap()
}

async fn connect(remote: &Remote, options: SparkOptions) -> SparkClient {
    SparkClient::connect(remote, &loopback(), options).await.expect("connects to the local Spark cluster")
}

/// The Adult demo as an upload reads it, written as Parquet: the columns the tests read.
fn adult_parquet(dir: &Path) -> std::path::PathBuf {
    let spec = IngestSpec { name: "adult".into(), label: Some("label".into()), scores: Some(vec!["score_logreg".into()]), ..Default::default() };
    let ingested = ingest_file(&demo().join("adult/eval.csv"), "eval.csv", &spec).unwrap();
    let mut df = ingested.frame.select(["race", "sex", "age", "label", "score_logreg"]).unwrap();
    let path = dir.join("adult.parquet");
    ParquetWriter::new(std::fs::File::create(&path).unwrap()).finish(&mut df).unwrap();
    path
}

/// The rows of the Parquet file as Polars reads them: (race, sex, age, label, score).
fn polars_rows(path: &Path) -> Vec<(String, String, f64, f64, f64)> {
    let df = ParquetReader::new(std::fs::File::open(path).unwrap()).finish().unwrap();
    let text = |c: &str| df.column(c).unwrap().str().unwrap().iter().map(|v| v.unwrap().to_string()).collect::<Vec<_>>();
    let num = |c: &str| df.column(c).unwrap().cast(&DataType::Float64).unwrap().f64().unwrap().iter().map(|v| v.unwrap()).collect::<Vec<_>>();
    let (race, sex, age, label, score) = (text("race"), text("sex"), num("age"), num("label"), num("score_logreg"));
    (0..df.height()).map(|i| (race[i].clone(), sex[i].clone(), age[i], label[i], score[i])).collect()
}

/// Σ of a numeric cell column per (slice_0, slice_1, label), keys as text.
fn sums_by_slices_and_label(t: &SparkTable, column: &str) -> BTreeMap<(String, String, String), f64> {
    let (s0, s1, l, v) = (&t.require("slice_0").unwrap().values, &t.require("slice_1").unwrap().values, &t.require("label").unwrap().values, &t.require(column).unwrap().values);
    let mut out = BTreeMap::new();
    for i in 0..t.height() {
        let key = (s0.text_at(i).unwrap(), s1.text_at(i).unwrap(), format!("{}", l.f64_at(i).unwrap()));
        *out.entry(key).or_insert(0.0) += v.f64_at(i).unwrap();
    }
    out
}

fn row_loss(label: f64, p: f64) -> f64 {
    let q = if label == 1.0 { p } else { 1.0 - p };
    -q.clamp(f64::EPSILON, 1.0 - f64::EPSILON).ln()
}

#[tokio::test]
async fn spark_cells_by_race_and_sex_equal_what_polars_counts_from_the_same_file() {
    let Some(remote) = remote() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = adult_parquet(dir.path());
    let rows = polars_rows(&path);
    let spark = connect(&remote, SparkOptions::default()).await;
    assert!(spark.version().starts_with('4'), "Spark {}", spark.version());

    // Registering: the schema and the row count, from the files as Spark reads them.
    let source = Source::parquet(path.to_str().unwrap());
    let schema = spark.schema(&source).await.unwrap();
    let names: Vec<&str> = schema.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["race", "sex", "age", "label", "score_logreg"], "{schema:?}");
    assert_eq!(spark.row_count(&source).await.unwrap(), rows.len() as u64);
    let label_type = &schema[3].1;
    let positive = if label_type == "boolean" { Param::Bool(true) } else { Param::Number(1.0) };

    // The cells, race × sex × exact score × label.
    let query = CellQuery {
        source: source.clone(),
        label: "label".into(),
        score: "score_logreg".into(),
        weight: None,
        positive: Some(positive),
        slices: vec![SliceColumn::Categorical("race".into()), SliceColumn::Categorical("sex".into())],
        grid: ScoreGrid::Exact,
        by_weight: false,
    };
    let t0 = Instant::now();
    let cells = spark.cells(&query).await.unwrap();
    eprintln!("Spark: {} cells of {} rows in {:?}", cells.height(), rows.len(), t0.elapsed());

    let mut want_n: BTreeMap<(String, String, String), f64> = BTreeMap::new();
    let mut want_loss: BTreeMap<(String, String, String), f64> = BTreeMap::new();
    let mut want_cells = BTreeSet::new();
    for (race, sex, _, label, score) in &rows {
        let key = (race.clone(), sex.clone(), format!("{label}"));
        *want_n.entry(key.clone()).or_insert(0.0) += 1.0;
        *want_loss.entry(key).or_insert(0.0) += row_loss(*label, *score);
        want_cells.insert((race.clone(), sex.clone(), score.to_bits(), label.to_bits()));
    }
    assert_eq!(sums_by_slices_and_label(&cells, "n"), want_n, "counts per (race, sex, label)");
    assert_eq!(cells.height(), want_cells.len(), "one cell per distinct (race, sex, score, label)");
    // No weight: Σw = Σw² = n.
    assert_eq!(sums_by_slices_and_label(&cells, "sum_w"), want_n);
    assert_eq!(sums_by_slices_and_label(&cells, "sum_w2"), want_n);
    // Log-loss sums as the engine clips them (summed in another order: a relative 1e-12).
    let got_loss = sums_by_slices_and_label(&cells, "sum_loss");
    for (k, want) in &want_loss {
        let got = got_loss[k];
        assert!((got - want).abs() <= 1e-12 * want.abs().max(1.0), "{k:?}: Spark {got}, Rust {want}");
    }
    // The exact scores come back bit for bit.
    let scores = &cells.require("score").unwrap().values;
    let spark_cells: BTreeSet<(String, String, u64, u64)> = (0..cells.height())
        .map(|i| {
            let s0 = cells.require("slice_0").unwrap().values.text_at(i).unwrap();
            let s1 = cells.require("slice_1").unwrap().values.text_at(i).unwrap();
            let label = cells.require("label").unwrap().values.f64_at(i).unwrap();
            (s0, s1, scores.f64_at(i).unwrap().to_bits(), label.to_bits())
        })
        .collect();
    assert_eq!(spark_cells, want_cells);
    // And the cells read as a Polars frame for the engine.
    assert_eq!(cells.to_polars().unwrap().shape(), (want_cells.len(), 9));

    // A bucketed grid and a numeric slice with fixed edges: the same rule as in Rust.
    let edges = vec![30.0, 45.5];
    let bucketed = CellQuery {
        slices: vec![SliceColumn::Categorical("sex".into()), SliceColumn::Numeric { column: "age".into(), edges: edges.clone() }],
        grid: ScoreGrid::Buckets(100),
        ..query.clone()
    };
    let cells = spark.cells(&bucketed).await.unwrap();
    let mut want: BTreeMap<(String, String, String), f64> = BTreeMap::new();
    let mut want_buckets: BTreeMap<i64, f64> = BTreeMap::new();
    for (_, sex, age, label, score) in &rows {
        let age_bucket = edges.partition_point(|e| *e <= *age);
        *want.entry((sex.clone(), age_bucket.to_string(), format!("{label}"))).or_insert(0.0) += 1.0;
        let bucket = (1..100).filter(|k| (*k as f64 / 100.0) <= *score).count() as i64;
        *want_buckets.entry(bucket).or_insert(0.0) += 1.0;
    }
    assert_eq!(sums_by_slices_and_label(&cells, "n"), want);
    let mut got_buckets: BTreeMap<i64, f64> = BTreeMap::new();
    let (b, n) = (&cells.require("score").unwrap().values, &cells.require("n").unwrap().values);
    for i in 0..cells.height() {
        *got_buckets.entry(b.f64_at(i).unwrap() as i64).or_insert(0.0) += n.f64_at(i).unwrap();
    }
    assert_eq!(got_buckets, want_buckets, "rows per score bucket");

    // Weighted (age as the weight) and grouped by it: Σw and Σw² per slice equal Polars'; in each
    // cell the weight is one value, so Σw = n·w.
    let weighted = CellQuery {
        weight: Some("age".into()),
        by_weight: true,
        slices: vec![SliceColumn::Categorical("race".into()), SliceColumn::Categorical("sex".into())],
        grid: ScoreGrid::Buckets(10),
        ..query.clone()
    };
    let cells = spark.cells(&weighted).await.unwrap();
    let (mut want_w, mut want_w2) = (BTreeMap::new(), BTreeMap::new());
    for (race, sex, age, label, _) in &rows {
        let key = (race.clone(), sex.clone(), format!("{label}"));
        *want_w.entry(key.clone()).or_insert(0.0) += age;
        *want_w2.entry(key).or_insert(0.0) += age * age;
    }
    assert_eq!(sums_by_slices_and_label(&cells, "sum_w"), want_w);
    assert_eq!(sums_by_slices_and_label(&cells, "sum_w2"), want_w2);
    let (w, n, sw) = (&cells.require("weight").unwrap().values, &cells.require("n").unwrap().values, &cells.require("sum_w").unwrap().values);
    assert!((0..cells.height()).all(|i| n.f64_at(i).unwrap() * w.f64_at(i).unwrap() == sw.f64_at(i).unwrap()));

    // Quantile edges from approx_percentile: the median age is close to Polars' median.
    let mut ages: Vec<f64> = rows.iter().map(|r| r.2).collect();
    ages.sort_by(f64::total_cmp);
    let q = spark.quantile_edges(&source, "age", &[0.5]).await.unwrap();
    assert_eq!(q.len(), 1);
    assert!((q[0] - ages[ages.len() / 2]).abs() <= 1.0, "approx median {} vs {}", q[0], ages[ages.len() / 2]);
    spark.close().await;
}

#[tokio::test]
async fn spark_tables_that_disappear_or_change_type_are_clear_errors() {
    let Some(remote) = remote() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = adult_parquet(dir.path());
    let spark = connect(&remote, SparkOptions::default()).await;
    // A table of this session (a temporary view over the files), registered by name.
    let files = Source::parquet(path.to_str().unwrap()).sql();
    let view = |body: &str| pushdown::Sql { text: format!("CREATE OR REPLACE TEMPORARY VIEW `strata_adult` AS SELECT {body} FROM {files}"), args: vec![] };
    spark.sql(&view("*")).await.unwrap();
    let table = Source::table("strata_adult").unwrap();
    let registered = spark.schema(&table).await.unwrap();
    assert_eq!(spark.row_count(&table).await.unwrap(), 16000);
    spark.check_schema(&table, &registered).await.unwrap();

    // The label column changes type: named, with both types.
    spark.sql(&view("race, sex, age, CAST(label AS STRING) AS label, score_logreg")).await.unwrap();
    let err = spark.check_schema(&table, &registered).await.unwrap_err();
    assert!(matches!(&err, SparkError::ColumnTypeChanged { column, now, .. } if column == "label" && now == "string"), "{err}");

    // A column is gone: Spark's own error, named.
    spark.sql(&view("race, sex, label, score_logreg")).await.unwrap();
    let q = CellQuery {
        source: table.clone(),
        label: "label".into(),
        score: "score_logreg".into(),
        weight: None,
        positive: Some(Param::Number(1.0)),
        slices: vec![SliceColumn::Numeric { column: "age".into(), edges: vec![40.0] }],
        grid: ScoreGrid::Exact,
        by_weight: false,
    };
    let err = spark.cells(&q).await.unwrap_err();
    assert!(matches!(&err, SparkError::ColumnMissing { name, .. } if name.contains("age")), "{err:?}");

    // The table disappears.
    spark.sql(&pushdown::Sql { text: "DROP VIEW `strata_adult`".into(), args: vec![] }).await.unwrap();
    let err = spark.cells(&q).await.unwrap_err();
    assert!(matches!(&err, SparkError::TableMissing { name, .. } if name.contains("strata_adult")), "{err:?}");
    assert!(err.to_string().contains("strata_adult"), "{err}");
    // So do files.
    let gone = Source::parquet(dir.path().join("gone.parquet").to_str().unwrap());
    let err = spark.row_count(&gone).await.unwrap_err();
    assert!(matches!(err, SparkError::TableMissing { .. }), "{err:?}");
    spark.close().await;
}

#[tokio::test]
async fn a_spark_query_past_its_time_limit_is_cancelled() {
    let Some(remote) = remote() else { return };
    let options = SparkOptions { query_timeout: Duration::from_secs(2), ..SparkOptions::default() };
    let spark = connect(&remote, options).await;
    // Tens of billions of rows: minutes on two workers.
    let slow = pushdown::Sql { text: "SELECT SUM(id % 7) AS s FROM range(0, 50000000000, 1, 4)".into(), args: vec![] };
    let t0 = Instant::now();
    let err = spark.sql(&slow).await.unwrap_err();
    assert!(matches!(err, SparkError::Timeout { cancelled: true, .. }), "{err:?}");
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert!(err.to_string().contains("within 2 s and was cancelled"), "{err}");
    // The session goes on (its own limit: the executors may still be stopping the killed tasks).
    let t = spark.sql_within(&pushdown::Sql { text: "SELECT 1 AS one".into(), args: vec![] }, Duration::from_secs(120)).await.unwrap();
    assert_eq!(t.require("one").unwrap().values.f64_at(0), Some(1.0));
    spark.close().await;
}

#[tokio::test]
async fn spark_connect_unreachable_or_refused_is_a_clear_error_within_the_timeout() {
    // Nothing listens on a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let remote = Remote::parse(&format!("sc://127.0.0.1:{port}")).unwrap();
    let options = SparkOptions { connect_timeout: Duration::from_secs(2), ..SparkOptions::default() };
    let t0 = Instant::now();
    let err = SparkClient::connect(&remote, &loopback(), options.clone()).await.err().expect("nothing answers");
    assert!(matches!(err, SparkError::Unreachable { .. }), "{err:?}");
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    assert!(err.to_string().contains(&format!("127.0.0.1:{port} is unreachable")), "{err}");

    // A listener that accepts and never answers: the connect timeout bounds the wait.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let remote = Remote::parse(&format!("sc://127.0.0.1:{}", silent.local_addr().unwrap().port())).unwrap();
    let t0 = Instant::now();
    let err = SparkClient::connect(&remote, &loopback(), options.clone()).await.err().expect("nothing answers");
    assert!(matches!(err, SparkError::Unreachable { .. }), "{err:?}");
    assert!(t0.elapsed() < Duration::from_secs(6), "{:?}", t0.elapsed());

    // The outbound rules: a server with no allow-list calls nothing; private addresses need the
    // admin's consent; the token never shows in an error.
    let remote = Remote::parse("sc://127.0.0.1:15002/;token=s3cret").unwrap();
    let err = SparkClient::connect(&remote, &Outbound::default(), options.clone()).await.err().unwrap();
    assert!(matches!(err, SparkError::Refused(_)) && err.to_string().contains("STRATA_OUTBOUND_ALLOW"), "{err}");
    let no_private = Outbound::new("127.0.0.1", false, 1 << 20).unwrap();
    let err = SparkClient::connect(&remote, &no_private, options).await.err().unwrap();
    assert!(matches!(err, SparkError::Refused(_)) && err.to_string().contains("STRATA_OUTBOUND_PRIVATE"), "{err}");
    assert!(!format!("{err} {err:?}").contains("s3cret"));
}

// ---- External runs in Spark (a table or files read by the cluster), through the API ----

mod runs {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use polars::prelude::*;
    use serde_json::{Value, json};
    use strata_server::spark::pushdown;
    use strata_server::spark::{SparkClient, SparkOptions};

    use super::{loopback, remote};
    use crate::helpers::{TestApp, demo};

    fn adult() -> DataFrame {
        ParquetReader::new(std::fs::File::open(demo().join("adult/eval.parquet")).unwrap()).finish().unwrap()
    }

    /// `dir/sex=<value>/part-0.parquet`, as Spark writes partitions.
    fn write_partitioned(df: &DataFrame, dir: &std::path::Path) {
        write_partitioned_by(df, "sex", dir);
    }

    /// `dir/<column>=<value>/part-0.parquet` for a text column of values Female and Male.
    fn write_partitioned_by(df: &DataFrame, column: &str, dir: &std::path::Path) {
        let col = df.column(column).unwrap().str().unwrap().clone();
        for v in ["Female", "Male"] {
            let mut part = df.filter(&col.equal(v)).unwrap().drop(column).unwrap();
            let sub = dir.join(format!("{column}={v}"));
            std::fs::create_dir_all(&sub).unwrap();
            ParquetWriter::new(std::fs::File::create(sub.join("part-0.parquet")).unwrap()).with_row_group_size(Some(3000)).finish(&mut part).unwrap();
        }
    }

    fn body(source: Value) -> Value {
        json!({"name": "adult (spark)", "label": "label", "scores": ["score_logreg", "score_gbt"], "id": "example_id", "timestamp": "timestamp", "source": {"spark": source}})
    }

    async fn post(router: &axum::Router, body: &Value) -> (StatusCode, Value) {
        let req = Request::post("/api/v1/runs").header("content-type", "application/json").body(Body::from(body.to_string())).unwrap();
        let res = tower::ServiceExt::oneshot(router.clone(), req).await.unwrap();
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

    async fn sql(text: String) {
        let r = remote().unwrap();
        let spark = SparkClient::connect(&r, &loopback(), SparkOptions::default()).await.unwrap();
        spark.sql(&pushdown::Sql { text, args: vec![] }).await.unwrap();
        spark.close().await;
    }

    /// The Adult demo, hive-partitioned and read by the Spark cluster, against the same rows
    /// uploaded: slices by value, quantile and width buckets, a cross with a filter baseline,
    /// fairness with bootstrap intervals at several thresholds and the headline metrics are the
    /// same numbers (every score is grouped exactly here). The token never comes back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spark_runs_equal_uploaded_ones() {
        let Some(r) = remote() else { return };
        let app = TestApp::sqlite().await;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("adult");
        write_partitioned(&adult(), &data);
        let uploaded = upload_adult(&app).await;
        let with_token = format!("{r}/;token=s3cret-spark-token");
        let (s, v) = post(&app.router, &body(json!({"remote": with_token, "path": data.to_string_lossy()}))).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let external = v["id"].as_str().unwrap().to_string();

        // Listed with its source (the address without the token); the token sealed apart.
        let (_, runs) = app.get_json("/api/v1/runs").await;
        let run = runs.as_array().unwrap().iter().find(|x| x["id"] == external.as_str()).unwrap().clone();
        assert_eq!(run["source"]["spark"]["remote"], json!(r.to_string()), "{run}");
        assert_eq!(run["source"]["spark"]["path"], json!(data.to_string_lossy()));
        assert_eq!(run["rows"], 16000);
        assert!(!runs.to_string().contains("s3cret"));
        let sealed = app.state.store.source_secret(&external).await.unwrap().expect("the token is kept");
        assert!(sealed.starts_with("sealed:") && !sealed.contains("s3cret"), "{sealed}");
        let (_, d) = app.get_json(&format!("/api/v1/runs/{external}")).await;
        assert!(!d.to_string().contains("s3cret"));
        assert!(d["columns"].as_array().unwrap().iter().any(|c| c["name"] == "sex"), "the partition key is a column: {d}");

        for q in [
            "model=score_gbt&slice=race&thresholds=0.3,0.5,0.7&bootstrap=40&seed=3",
            "model=score_logreg&slice=age:q5&thresholds=0.2,0.5&bootstrap=30&seed=9",
            "model=score_gbt&slice=sex,race&slice=hours_per_week:w4&thresholds=0.5&bootstrap=30&seed=1&baseline=sex%3DFemale",
            "model=score_gbt&slice=education&slice=age:q10&slice=age:[30,50]&thresholds=0.4&bootstrap=0",
        ] {
            crate::external::same_metrics(&app, &uploaded, &external, q).await;
        }
        for q in ["model=score_gbt&feature=race&thresholds=0.3,0.5,0.7&bootstrap=40&seed=3", "model=score_logreg&feature=sex&thresholds=0.25,0.5&bootstrap=20&seed=5"] {
            let (s1, a) = app.get_json(&format!("/api/v1/runs/{uploaded}/fairness?{q}")).await;
            let (s2, b) = app.get_json(&format!("/api/v1/runs/{external}/fairness?{q}")).await;
            assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK), "{q}: {a} / {b}");
            assert_eq!(a["entries"][0]["result"], b["entries"][0]["result"], "{q}");
            assert_eq!(a["cards"], b["cards"], "{q}");
        }
        let (a, b) = (app.state.overview(&uploaded, None).await.unwrap(), app.state.overview(&external, None).await.unwrap());
        assert_eq!(a.headline, b.headline);
        // The score distribution and label balance, counted from the cells: the same chart.
        assert_eq!((&a.chart, &a.label_balance), (&b.chart, &b.label_balance));
        assert!(a.label_balance.len() == 2 && a.chart.contains("label = 1"), "{:?}", a.label_balance);
        for page in ["", "/slices?slice=race", "/fairness?feature=race"] {
            let (s, html) = app.get_text(&format!("/runs/{external}{page}")).await;
            assert_eq!(s, StatusCode::OK, "/runs/ID{page}");
            assert!(page != "" || html.contains("Spark: parquet"), "the run page shows the source");
            assert!(!html.contains("s3cret"));
        }
        // Row views read the run's rows through Spark (all of them at this size).
        let (s, e) = app.get_json(&format!("/api/v1/runs/{external}/examples?limit=3")).await;
        assert_eq!(s, StatusCode::OK, "{e}");
        assert_eq!((e["total"].as_u64(), e["sample"]["rows"].as_u64(), e["sample"]["method"].as_str()), (Some(16000), Some(16000), Some("read by Spark")), "{e}");
    }

    /// The wages demo (regression) partitioned by gender and read by the Spark cluster: its
    /// cells are grouped by the exact (label, prediction) pair, so slices (median absolute error
    /// included), the headline metrics and the residual analysis equal the uploaded copy's.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_regression_run_in_spark_equals_the_uploaded_copy() {
        let Some(r) = remote() else { return };
        let app = TestApp::sqlite().await;
        let dir = tempfile::tempdir().unwrap();
        let file = demo().join("wages/eval.parquet");
        let wages = ParquetReader::new(std::fs::File::open(&file).unwrap()).finish().unwrap();
        let data = dir.path().join("wages");
        write_partitioned_by(&wages, "gender", &data);
        let (s, v) = app.upload("wages.parquet", &std::fs::read(&file).unwrap(), &json!({"name": "wages", "label": "label", "id": "example_id", "timestamp": "timestamp"}), &[]).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let uploaded = v["id"].as_str().unwrap().to_string();
        let reg = json!({"name": "wages (spark)", "label": "label", "id": "example_id", "timestamp": "timestamp", "source": {"spark": {"remote": r.to_string(), "path": data.to_string_lossy()}}});
        let (s, v) = post(&app.router, &reg).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let external = v["id"].as_str().unwrap().to_string();
        let (_, d) = app.get_json(&format!("/api/v1/runs/{external}")).await;
        assert_eq!((d["task"].as_str(), d["rows"].as_u64()), (Some("regression"), Some(10000)), "{d}");
        for q in [
            "model=prediction_gbt&slice=gender&bootstrap=30&seed=4",
            "model=prediction_linear&slice=age:q5&slice=educcat,gender&bootstrap=0",
            "model=prediction_gbt&slice=wrkstat&slice=prestg10:w4&baseline=wrkstat%3DFull-Time&bootstrap=20&seed=2",
        ] {
            let a = crate::external::same_metrics(&app, &uploaded, &external, q).await;
            assert!(a["slices"][0]["metrics"]["median_absolute_error"]["value"].is_number(), "{a}");
        }
        let (a, b) = (app.state.overview(&uploaded, None).await.unwrap(), app.state.overview(&external, None).await.unwrap());
        assert_eq!(a.headline, b.headline);
        // Predictions and labels on common bins and the label's histogram, from the cells.
        assert_eq!((&a.chart, &a.label_balance), (&b.chart, &b.label_balance));
        assert!(a.chart.contains("prediction_linear (prediction)") && a.label_balance.len() == 12, "{:?}", a.label_balance);
        // The residual analysis reads the rows Spark samples: all 10,000 of them here, in the
        // order Spark reads the partitions, so the statistics that do not depend on the rows'
        // order are the upload's (sorted ones exactly, sums up to rounding); the bias by slice
        // is counted from the cells.
        let q = "model=prediction_gbt&feature=age&slice=gender";
        let (s1, mut ru) = app.get_json(&format!("/api/v1/runs/{uploaded}/residuals?{q}")).await;
        let (s2, mut re) = app.get_json(&format!("/api/v1/runs/{external}/residuals?{q}")).await;
        assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK), "{ru} / {re}");
        assert_eq!(re["row_sample"]["rows"], 10000, "{re}");
        crate::external::same_bias(&mut ru, &mut re, 10000);
        for f in ["n", "hist_edges", "hist_counts", "qq_ordered", "qq_theoretical"] {
            assert_eq!(ru[f], re[f], "{f}");
        }
        for f in ["mean", "sd", "qq_slope", "qq_intercept", "qq_r"] {
            let (u, v) = (ru[f].as_f64().unwrap(), re[f].as_f64().unwrap());
            assert!((u - v).abs() <= 1e-9 * u.abs().max(1.0), "{f}: {u} vs {v}");
        }
        for page in ["", "/slices?slice=gender", "/residuals"] {
            let (s, _) = app.get_text(&format!("/runs/{external}{page}")).await;
            assert_eq!(s, StatusCode::OK, "/runs/ID{page}");
        }
    }

    /// Drift between two runs in Spark (and between a Spark run and an uploaded one) is the drift
    /// of the uploaded copies, exactly: every column counted by Spark, the same code after.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn drift_of_spark_runs_equals_the_uploaded_copies() {
        let Some(r) = remote() else { return };
        let app = TestApp::sqlite().await;
        let dir = tempfile::tempdir().unwrap();
        let (reference, current) = crate::external::drift_pair();
        let (ru, cu) = (crate::external::upload_frame(&app, "reference", &reference).await, crate::external::upload_frame(&app, "current", &current).await);
        let mut registered = vec![];
        for (name, df) in [("reference", &reference), ("current", &current)] {
            let path = dir.path().join(name);
            write_partitioned(df, &path);
            let (s, v) = post(&app.router, &body(json!({"remote": r.to_string(), "path": path.to_string_lossy()}))).await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
            registered.push(v["id"].as_str().unwrap().to_string());
        }
        let (re, ce) = (registered[0].clone(), registered[1].clone());
        let drift = |run: &str, reference: &str| format!("/api/v1/runs/{run}/drift?reference={reference}");
        let (s, want) = app.get_json(&drift(&cu, &ru)).await;
        assert_eq!(s, StatusCode::OK, "{want}");
        for (run, against) in [(&ce, &re), (&ce, &ru)] {
            let (s, got) = app.get_json(&drift(run, against)).await;
            assert_eq!(s, StatusCode::OK, "{got}");
            assert_eq!(crate::external::drift_numbers(&got), crate::external::drift_numbers(&want), "{run} against {against}");
        }
    }

    /// A table that disappears, a column whose type changed, an unreachable server and a query
    /// past its time limit: each a clear 4xx naming the cause, nothing cached (the numbers come
    /// back once the table does).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spark_run_failures_are_clear_and_cache_nothing() {
        let Some(r) = remote() else { return };
        let app = TestApp::sqlite().await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("adult.parquet");
        std::fs::copy(demo().join("adult/eval.parquet"), &file).unwrap();
        let uploaded = upload_adult(&app).await;

        // A table (a global view over the files: it outlives a session, as a catalog table).
        let view = format!("strata_adult_{}", std::process::id());
        let create = format!("CREATE OR REPLACE GLOBAL TEMPORARY VIEW `{view}` AS SELECT * FROM parquet.`{}`", file.display());
        sql(create.clone()).await;
        let (s, v) = post(&app.router, &body(json!({"remote": r.to_string(), "table": format!("global_temp.{view}")}))).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let id = v["id"].as_str().unwrap().to_string();
        let q = "model=score_gbt&slice=race&thresholds=0.5&bootstrap=20&seed=2";
        let (_, expected) = app.get_json(&format!("/api/v1/runs/{uploaded}/metrics?{q}")).await;
        sql(format!("DROP VIEW global_temp.`{view}`")).await;
        let (s, e) = app.get_json(&format!("/api/v1/runs/{id}/metrics?{q}")).await;
        assert_eq!(s, StatusCode::CONFLICT, "{e}");
        assert!(e["error"].as_str().unwrap_or_default().contains(&view), "{e}");
        sql(create).await;
        let (s, got) = app.get_json(&format!("/api/v1/runs/{id}/metrics?{q}")).await;
        assert_eq!(s, StatusCode::OK, "{got}");
        assert_eq!(got, expected);

        // Files whose label column changed type after registering (a copy: the view above reads
        // the first file).
        let file = dir.path().join("adult-copy.parquet");
        std::fs::copy(demo().join("adult/eval.parquet"), &file).unwrap();
        let (s, v) = post(&app.router, &body(json!({"remote": r.to_string(), "path": file.to_string_lossy()}))).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let by_path = v["id"].as_str().unwrap().to_string();
        let mut df = adult();
        let text = df.column("label").unwrap().cast(&DataType::String).unwrap();
        df.with_column(text).unwrap();
        ParquetWriter::new(std::fs::File::create(&file).unwrap()).finish(&mut df).unwrap();
        let (s, e) = app.get_json(&format!("/api/v1/runs/{by_path}/metrics?model=score_logreg&slice=sex&bootstrap=0")).await;
        assert_eq!(s, StatusCode::CONFLICT, "{e}");
        let msg = e["error"].as_str().unwrap_or_default();
        assert!(msg.contains("'label' changed type") && msg.contains("string"), "{e}");

        // Nothing listens: a clear error at registration.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let (s, e) = post(&app.router, &body(json!({"remote": format!("sc://127.0.0.1:{port}"), "table": "t"}))).await;
        assert!(s.is_client_error(), "{s} {e}");
        assert!(e["error"].as_str().unwrap_or_default().contains("unreachable"), "{e}");
        // Neither a table and a path, nor none.
        let (s, _) = post(&app.router, &body(json!({"remote": r.to_string(), "table": "t", "path": "/x"}))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        // An address the outbound rules refuse (no allow-list).
        let closed = strata_server::service::AppState::new(app.state.store.clone(), 16 << 20, Default::default(), dir.path().to_path_buf());
        let router = strata_server::router(closed, strata_server::leptos_options(dir.path(), "127.0.0.1:0".parse().unwrap()));
        let (s, e) = post(&router, &body(json!({"remote": r.to_string(), "table": "t"}))).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{e}");

        // A query past its time limit: cancelled, said, not cached.
        let slow = app.state.clone().with_spark_options(SparkOptions { query_timeout: std::time::Duration::from_millis(1), ..SparkOptions::default() });
        let router = strata_server::router(slow, strata_server::leptos_options(dir.path(), "127.0.0.1:0".parse().unwrap()));
        let req = Request::get(format!("/api/v1/runs/{id}/metrics?model=score_gbt&slice=education&bootstrap=0")).body(Body::empty()).unwrap();
        let res = tower::ServiceExt::oneshot(router, req).await.unwrap();
        let status = res.status();
        let bytes = http_body_util::BodyExt::collect(res.into_body()).await.unwrap().to_bytes();
        assert!(status.is_client_error(), "{status}");
        assert!(String::from_utf8_lossy(&bytes).contains("did not finish within"), "{}", String::from_utf8_lossy(&bytes));
        let (s, e) = app.get_json(&format!("/api/v1/runs/{id}/metrics?model=score_gbt&slice=education&bootstrap=0")).await;
        assert_eq!(s, StatusCode::OK, "{e}");
        sql(format!("DROP VIEW IF EXISTS global_temp.`{view}`")).await;
    }

    /// A release whose predictions are in Spark, validated from the CLI: `strata register
    /// --spark … --path …` into a project, gates saved, `strata validate` exits 0 / 1.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_release_in_spark_is_validated_from_the_cli() {
        let Some(r) = remote() else { return };
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("adult");
        write_partitioned(&adult(), &data);
        let mut ids = Vec::new();
        for version in ["v1", "v2"] {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
                .args(["register", "--spark", &r.to_string(), "--path"])
                .arg(&data)
                .args(["--label", "label", "--scores", "score_logreg,score_gbt", "--project", "adult-spark", "--model-version", version, "--data-dir"])
                .arg(dir.path())
                .env_remove("DATABASE_URL")
                .env("STRATA_OUTBOUND_ALLOW", "127.0.0.1")
                .env("STRATA_OUTBOUND_PRIVATE", "true")
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            ids.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
        }
        let gates = dir.path().join("gates.json");
        let run = |args: &[&str]| {
            std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
                .args(args)
                .arg("--data-dir")
                .arg(dir.path())
                .env_remove("DATABASE_URL")
                .env("STRATA_OUTBOUND_ALLOW", "127.0.0.1")
                .env("STRATA_OUTBOUND_PRIVATE", "true")
                .output()
                .unwrap()
        };
        std::fs::write(&gates, r#"{"model": "score_gbt", "threshold": 0.5, "gates": [{"metric": "auc_roc", "min": 0.85}, {"metric": "accuracy", "slice": "sex", "max_drop": 0.02}, {"metric": "fpr", "slice": "race", "max": 0.5}]}"#).unwrap();
        let out = run(&["gates", "--project", "adult-spark", "--file", gates.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let out = run(&["validate", "--project", "adult-spark", "--run", &ids[1]]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(out.status.code(), Some(0), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("race="), "{text}");
        std::fs::write(&gates, r#"{"model": "score_gbt", "threshold": 0.5, "gates": [{"metric": "auc_roc", "slice": "race", "min": 0.99}]}"#).unwrap();
        let out = run(&["gates", "--project", "adult-spark", "--file", gates.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let out = run(&["validate", "--project", "adult-spark", "--run", &ids[1]]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(out.status.code(), Some(1), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("FAIL"), "{text}");
    }

    /// 5M generated rows (distinct scores: Spark groups them into buckets), written as
    /// partitioned Parquet and registered twice — read by Spark and read locally — against the
    /// same rows uploaded: counts and rates at grid thresholds exactly equal, AUC / AP of the Spark
    /// run within its bucket bounds (which hold the uploaded run's exact values), intervals within
    /// Monte-Carlo error; the local Parquet run equals the upload exactly.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn five_million_rows_in_spark_and_parquet_match_the_upload() {
        let Some(r) = remote() else { return };
        let n = 5_000_000usize;
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        };
        let regions = ["north", "south", "east", "west", "centre"];
        let (mut region, mut group, mut age, mut score, mut label) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        for i in 0..n {
            let reg = (next() * 5.0) as usize % 5;
            let g = ["a", "b", "c"][(next() * 3.0) as usize % 3];
            let risk = next();
            let s = (0.6 * risk + 0.4 * next()).clamp(0.0, 1.0);
            region.push(regions[reg]);
            group.push(g);
            age.push(18 + ((next() * 70.0) as i64) + (i % 2) as i64);
            score.push(s);
            label.push(i64::from(next() < 0.1 + 0.7 * risk - 0.05 * reg as f64));
        }
        let mut df = df!("region" => region, "group" => group, "age" => age, "score" => score, "label" => label).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("scale");
        let col = df.column("region").unwrap().str().unwrap().clone();
        for v in regions {
            let mut part = df.filter(&col.equal(v)).unwrap().drop("region").unwrap();
            let sub = data.join(format!("region={v}"));
            std::fs::create_dir_all(&sub).unwrap();
            ParquetWriter::new(std::fs::File::create(sub.join("part-0.parquet")).unwrap()).with_row_group_size(Some(250_000)).finish(&mut part).unwrap();
        }
        let whole = dir.path().join("whole.parquet");
        ParquetWriter::new(std::fs::File::create(&whole).unwrap()).finish(&mut df).unwrap();
        drop(df);

        let app = TestApp::sqlite().await;
        let spec = json!({"name": "scale (uploaded)", "label": "label", "scores": ["score"]});
        let (s, v) = app.upload("scale.parquet", &std::fs::read(&whole).unwrap(), &spec, &[]).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let uploaded = v["id"].as_str().unwrap().to_string();
        let reg = |source: Value| json!({"name": "scale", "label": "label", "scores": ["score"], "source": source});
        let (s, v) = post(&app.router, &reg(json!({"spark": {"remote": r.to_string(), "path": data.to_string_lossy()}}))).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let in_spark = v["id"].as_str().unwrap().to_string();
        let (s, v) = post(&app.router, &reg(json!({"parquet": data.to_string_lossy()}))).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let in_parquet = v["id"].as_str().unwrap().to_string();

        let q = "model=score&slice=region,group&slice=age:q4&thresholds=0.3,0.5,0.72&bootstrap=40&seed=4";
        let (s1, a) = app.get_json(&format!("/api/v1/runs/{uploaded}/metrics?{q}")).await;
        let (s2, b) = app.get_json(&format!("/api/v1/runs/{in_spark}/metrics?{q}")).await;
        let (s3, c) = app.get_json(&format!("/api/v1/runs/{in_parquet}/metrics?{q}")).await;
        assert_eq!((s1, s2, s3), (StatusCode::OK, StatusCode::OK, StatusCode::OK), "{b}");
        assert_eq!(a, c, "the local Parquet run equals the upload");
        assert!(b["notes"].as_array().is_some_and(|n| n.iter().any(|t| t.as_str().unwrap().contains("buckets"))), "{}", b["notes"]);
        let (sa, sb) = (a["slices"].as_array().unwrap(), b["slices"].as_array().unwrap());
        assert_eq!(sa.len(), sb.len());
        assert_eq!(sa.len(), 1 + 15 + 4);
        for (x, y) in sa.iter().zip(sb) {
            assert_eq!((&x["spec"], &x["key"], &x["count"]), (&y["spec"], &y["key"], &y["count"]));
            // Counts and rates at thresholds on the grid: exactly.
            for (ax, ay) in x["at"].as_array().unwrap().iter().zip(y["at"].as_array().unwrap()) {
                for k in ["threshold", "tp", "fp", "tn", "fn"] {
                    assert_eq!(ax[k], ay[k], "{k} of {}", x["key"]);
                }
                for m in ["tpr", "fpr", "precision", "positive_rate", "accuracy"] {
                    assert_eq!(ax["metrics"][m]["value"], ay["metrics"][m]["value"], "{m} of {}", x["key"]);
                    // Intervals within Monte-Carlo error of each other (40 replicates).
                    for end in ["lo", "hi"] {
                        let (p, q) = (ax["metrics"][m][end].as_f64(), ay["metrics"][m][end].as_f64());
                        if let (Some(p), Some(q)) = (p, q) {
                            assert!((p - q).abs() < 0.02, "{m} {end} of {}: {p} vs {q}", x["key"]);
                        }
                    }
                }
            }
            // Ranking metrics: the exact values lie within the bucket bounds.
            for m in ["auc_roc", "auc_pr"] {
                let exact = x["metrics"][m]["value"].as_f64().unwrap();
                let (lo, hi) = (y["bounds"][m]["lower"].as_f64().unwrap(), y["bounds"][m]["upper"].as_f64().unwrap());
                assert!(lo <= exact + 1e-12 && exact <= hi + 1e-12, "{m} of {}: {exact} outside [{lo}, {hi}]", x["key"]);
                assert!(hi - lo < 0.01, "{m} of {}: bounds [{lo}, {hi}] too wide for 10,000 buckets", x["key"]);
            }
        }

        // The row views' sample: Spark's TABLESAMPLE keeps about ROW_SAMPLE rows (Bernoulli: within
        // 6 standard deviations), the local Parquet run exactly ROW_SAMPLE; both uniform (the mean
        // score of the sample is the whole run's, within 5 standard errors); Spark draws the same
        // rows again after the cache is emptied (REPEATABLE).
        use strata_server::service::external::ROW_SAMPLE;
        let mean_score = |df: &DataFrame| df.column("score").unwrap().as_materialized_series().mean().unwrap();
        let whole_mean = mean_score(&app.state.frame(&uploaded).await.unwrap());
        // The run page of a run this large does not start that scan itself; once a row view drew
        // the sample, it shows it.
        let (s, html) = app.get_text(&format!("/runs/{in_parquet}")).await;
        assert_eq!(s, StatusCode::OK);
        assert!(html.contains("read a uniform sample of 100,000 of them, drawn when the first of those views opens"), "the run page waits for a row view");
        let spark_rows = app.state.rows(&in_spark).await.unwrap();
        let parquet_rows = app.state.rows(&in_parquet).await.unwrap();
        let (_, html) = app.get_text(&format!("/runs/{in_parquet}")).await;
        assert!(html.contains("Computed on a uniform sample of 100,000 of the run"), "the run page shows the drawn sample");
        let sd = (ROW_SAMPLE as f64 * 0.02 * 0.98).sqrt();
        assert!((spark_rows.frame.height() as f64 - ROW_SAMPLE as f64).abs() < 6.0 * sd, "{}", spark_rows.frame.height());
        assert_eq!(parquet_rows.frame.height(), ROW_SAMPLE);
        let method = spark_rows.sample.as_ref().unwrap().method.clone();
        assert!(method.contains("TABLESAMPLE (2 PERCENT) REPEATABLE (1)"), "{method}");
        for (what, rows) in [("spark", &spark_rows), ("parquet", &parquet_rows)] {
            let m = mean_score(&rows.frame);
            assert!((m - whole_mean).abs() < 5.0 * 0.25 / (ROW_SAMPLE as f64).sqrt(), "{what}: sample mean {m} vs {whole_mean}");
            assert_eq!(rows.sample.as_ref().unwrap().of, n as u64);
        }
        app.state.forget(&in_spark);
        let again = app.state.rows(&in_spark).await.unwrap();
        let sorted_scores = |df: &DataFrame| {
            let mut v: Vec<f64> = df.column("score").unwrap().f64().unwrap().into_no_null_iter().collect();
            v.sort_by(f64::total_cmp);
            v
        };
        assert_eq!(sorted_scores(&again.frame), sorted_scores(&spark_rows.frame), "REPEATABLE: the same rows");
        let (s, html) = app.get_text(&format!("/runs/{in_spark}/whatif")).await;
        assert_eq!(s, StatusCode::OK);
        assert!(html.contains("TABLESAMPLE (2 PERCENT) REPEATABLE (1)"), "the what-if page states the sample");
    }
}
