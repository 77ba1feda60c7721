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
        positive,
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
        positive: Param::Number(1.0),
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
