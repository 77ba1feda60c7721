//! Scale benchmark (issue 18, "Runs that outgrow one machine"): generated binary-classification
//! data written as partitioned Parquet directories (10M and 100M rows by default), measured
//!
//! 1. **locally**, through Strata's external-run path (`POST /api/v1/runs` with a Parquet source,
//!    then `GET /api/v1/runs/{id}/metrics` — the router, `AppState::register_external` and
//!    `compute_metrics` as the server runs them): the `sex,race` cross (10 slices + overall) × 101
//!    thresholds with 200 bootstrap replicates — first request, peak resident memory (VmHWM of a
//!    child process that does only this), repeat requests — against a bare Polars scan of the same
//!    columns (the physical floor) in the same run;
//! 2. **in Spark** (a real local standalone cluster started by `scripts/spark-cluster.sh`, with two
//!    workers and then one): the push-down cell query (`CellQuery`, score grid of 10,000 buckets)
//!    against the naive way (one `GROUP BY sex, race` aggregation of TP/FP/TN/FN per threshold),
//!    and a bare Spark scan of the same columns; the naive counts are checked against the cells.
//!
//! Run it with `scripts/bench-scale.sh` (see docs/benchmarks.md, "Scale: 10M and 100M rows"). Env:
//! - `STRATA_BENCH_DATA` (default `/tmp/strata-scale`): where the data is generated (kept for
//!   later runs: `rows-<N>/part-*.parquet` and a `rows-<N>.complete` marker beside it);
//! - `STRATA_BENCH_SIZES` (default `10000000,100000000`);
//! - `STRATA_BENCH_SCORE_DECIMALS` (default 4): scores are rounded to this many decimals
//!   (10,001 distinct values at 4), as prediction logs often store them;
//! - `STRATA_BENCH_PARTS` (default `local,spark`): which parts to run;
//! - `STRATA_BENCH_WORKERS` (default `2,1`): the Spark cluster's worker counts, in order;
//! - `STRATA_BENCH_NAIVE` (default `2:10000000=101,2:100000000=11,1:10000000=21,1:100000000=5`):
//!   how many thresholds the naive Spark way is timed on, per workers:rows (evenly spread over
//!   0, 0.01, …, 1; fewer than 101 are extrapolated per threshold, and the table says so).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use polars::prelude::*;
use serde_json::{Value, json};
use strata_server::outbound::Outbound;
use strata_server::service::AppState;
use strata_server::settings::{DatabaseTarget, Limits};
use strata_server::spark::pushdown::{CellQuery, Param, ScoreGrid, SliceColumn, Source, Sql, double_literal};
use strata_server::spark::{Remote, SparkClient, SparkOptions, SparkTable};
use strata_server::store::Store;

const ROWS_PER_FILE: usize = 5_000_000;
const ROWS_PER_GROUP: usize = 1_000_000;
const GRID: u32 = 10_000;
const COLUMNS: [&str; 4] = ["label", "score", "sex", "race"];
const SEX: [&str; 2] = ["Male", "Female"];
const RACE: [&str; 5] = ["White", "Black", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other"];

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_string())
}

fn status_kib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .unwrap_or(f64::NAN)
}

fn mib(kib: f64) -> f64 {
    kib / 1024.0
}

fn millions(rows: usize) -> String {
    format!("{}M", rows / 1_000_000)
}

/// xorshift64*: deterministic and fast; one stream per file.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.next().max(1e-300), self.next());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// One file of `n` rows: sex (2 values), race (5), age (17–90), label ~ Bernoulli(σ(z + noise)),
/// score = σ(z + model noise) rounded to `decimals`, where z depends on the three features.
fn generate_file(n: usize, seed: u64, decimals: i32) -> DataFrame {
    let mut rng = Rng::new(seed);
    let scale = 10f64.powi(decimals);
    let (mut sex, mut race, mut age, mut label, mut score) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let race_p = [0.85, 0.094, 0.031, 0.01, 0.015];
    let race_effect = [0.2, -0.6, 0.3, -0.4, -0.3];
    for _ in 0..n {
        let male = rng.next() < 0.67;
        let u = rng.next();
        let mut r = 0;
        let mut acc = race_p[0];
        while u >= acc && r < 4 {
            r += 1;
            acc += race_p[r];
        }
        let a = 17 + (rng.next() * rng.next().sqrt() * 74.0) as i32;
        let z = -1.6 + if male { 0.9 } else { 0.0 } + race_effect[r] + 0.035 * (a as f64 - 38.0) + 0.9 * rng.normal();
        let truth = z + 0.8 * rng.normal();
        let y = rng.next() < 1.0 / (1.0 + (-truth).exp());
        let p = 1.0 / (1.0 + (-(z + 0.4 * rng.normal())).exp());
        sex.push(SEX[usize::from(!male)]);
        race.push(RACE[r]);
        age.push(a);
        label.push(i32::from(y));
        score.push((p * scale).round() / scale);
    }
    DataFrame::new(
        n,
        vec![
            Column::new("label".into(), label),
            Column::new("score".into(), score),
            Column::new("sex".into(), sex),
            Column::new("race".into(), race),
            Column::new("age".into(), age),
        ],
    )
    .unwrap()
}

/// `root/rows-N/part-XXXXX.parquet` (zstd, 1M-row row groups, 5M-row files), made once.
fn ensure_data(root: &Path, rows: usize, decimals: i32) -> PathBuf {
    let dir = root.join(format!("rows-{rows}"));
    let marker = root.join(format!("rows-{rows}.complete"));
    let want = format!("{rows} rows, score decimals {decimals}\n");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == want) {
        return dir;
    }
    let _ = std::fs::remove_file(&marker);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let files = rows.div_ceil(ROWS_PER_FILE);
    let t = Instant::now();
    // Two threads, each generating and writing every other file.
    std::thread::scope(|s| {
        for lane in 0..2usize {
            let dir = &dir;
            s.spawn(move || {
                for f in (lane..files).step_by(2) {
                    let n = ROWS_PER_FILE.min(rows - f * ROWS_PER_FILE);
                    let mut df = generate_file(n, (rows as u64) << 20 | f as u64, decimals);
                    let out = std::fs::File::create(dir.join(format!("part-{f:05}.parquet"))).unwrap();
                    ParquetWriter::new(out).with_compression(ParquetCompression::Zstd(None)).with_row_group_size(Some(ROWS_PER_GROUP)).finish(&mut df).unwrap();
                }
            });
        }
    });
    eprintln!("[scale] generated {rows} rows in {files} files under {} in {:.1} s", dir.display(), t.elapsed().as_secs_f64());
    std::fs::write(&marker, want).unwrap();
    dir
}

fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "parquet")).collect();
    files.sort();
    files
}

/// Bytes on disk, and the compressed bytes of each column summed over the row groups.
fn column_sizes(dir: &Path) -> (u64, Vec<(String, u64)>) {
    let mut total = 0u64;
    let names = ["label", "score", "sex", "race", "age"];
    let mut sizes = vec![0u64; names.len()];
    for f in parquet_files(dir) {
        total += std::fs::metadata(&f).unwrap().len();
        let mut reader = ParquetReader::new(std::fs::File::open(&f).unwrap());
        let md = reader.get_metadata().unwrap().clone();
        for rg in &md.row_groups {
            for (i, name) in names.iter().enumerate() {
                if let Some(cols) = rg.columns_under_root_iter(name) {
                    sizes[i] += cols.map(|c| c.compressed_size() as u64).sum::<u64>();
                }
            }
        }
    }
    (total, names.iter().map(|n| n.to_string()).zip(sizes).collect())
}

// ---------------------------------------------------------------- local (child processes)

/// The physical floor: Polars reads the four columns the request needs, row group by row group
/// (as the external-run fold does), and nothing else. Prints `RESULT {json}`.
fn floor_child(dir: &Path) {
    let t = Instant::now();
    let (mut rows, mut bytes) = (0usize, 0usize);
    let cols: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
    for f in parquet_files(dir) {
        let mut reader = ParquetReader::new(std::fs::File::open(&f).unwrap());
        let md = reader.get_metadata().unwrap().clone();
        let mut offset = 0;
        for rg in &md.row_groups {
            let n = rg.num_rows();
            let mut r = ParquetReader::new(std::fs::File::open(&f).unwrap()).with_columns(Some(cols.clone())).with_slice(Some((offset, n)));
            r.set_metadata(md.clone());
            let df = r.finish().unwrap();
            rows += df.height();
            bytes += df.estimated_size();
            offset += n;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!("RESULT {}", json!({"floor_secs": secs, "rows": rows, "frame_bytes": bytes, "hwm_mib": mib(status_kib("VmHWM:"))}));
}

async fn call(router: &axum::Router, req: Request<Body>) -> (StatusCode, Value) {
    let res = tower::ServiceExt::oneshot(router.clone(), req).await.unwrap();
    let status = res.status();
    let bytes = http_body_util::BodyExt::collect(res.into_body()).await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// Strata's external-run path on `dir`, as the server runs it. Prints `RESULT {json}`.
fn local_child(dir: &Path) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let db = tempfile::tempdir().unwrap();
        let tmp = db.path().join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let store = Store::connect(&DatabaseTarget::Sqlite(db.path().join("strata.db"))).await.unwrap();
        let limits = Limits { request_timeout: Duration::from_secs(3600), ..Limits::default() };
        let state = AppState::new(store, 1 << 30, limits, tmp);
        let router = strata_server::router(state, strata_server::leptos_options(db.path(), "127.0.0.1:0".parse().unwrap()));
        let idle = mib(status_kib("VmRSS:"));

        let t = Instant::now();
        let body = json!({"name": "scale", "label": "label", "scores": ["score"], "source": {"parquet": dir.to_string_lossy()}});
        let req = Request::post("/api/v1/runs").header("content-type", "application/json").body(Body::from(body.to_string())).unwrap();
        let (s, v) = call(&router, req).await;
        assert_eq!(s, StatusCode::CREATED, "register: {v}");
        let register = t.elapsed().as_secs_f64();
        let id = v["id"].as_str().unwrap().to_string();
        let hwm_register = mib(status_kib("VmHWM:"));

        let metrics = |seed: u32| format!("/api/v1/runs/{id}/metrics?model=score&slice=sex,race&thresholds=0:1:0.01&bootstrap=200&seed={seed}");
        let timed = |uri: String| {
            let router = router.clone();
            async move {
                let t = Instant::now();
                let (s, v) = call(&router, Request::get(&uri).body(Body::empty()).unwrap()).await;
                assert_eq!(s, StatusCode::OK, "{uri}: {v}");
                (t.elapsed().as_secs_f64(), v)
            }
        };
        let (first, v) = timed(metrics(1)).await;
        let hwm_first = mib(status_kib("VmHWM:"));
        let slices = v["slices"].as_array().map(|a| a.len()).unwrap_or(0);
        let thresholds = v["thresholds"].as_array().map(|a| a.len()).unwrap_or(0);
        let (identical, _) = timed(metrics(1)).await;
        // Another seed: the cached cells, the whole engine again (101 thresholds x 200 replicates).
        let (reseeded, _) = timed(metrics(2)).await;
        // The threshold slider: one threshold, same cells.
        let (slider, _) = timed(format!("/api/v1/runs/{id}/metrics?model=score&slice=sex,race&thresholds=0.37&bootstrap=200&seed=1")).await;
        println!(
            "RESULT {}",
            json!({
                "register_secs": register, "first_secs": first, "identical_secs": identical, "reseeded_secs": reseeded,
                "slider_secs": slider, "slices": slices, "thresholds": thresholds, "idle_rss_mib": idle,
                "hwm_register_mib": hwm_register, "hwm_first_mib": hwm_first, "hwm_end_mib": mib(status_kib("VmHWM:")),
            })
        );
    });
}

fn child(phase: &str, dir: &Path) -> Value {
    let out = Command::new(std::env::current_exe().unwrap()).env("STRATA_SCALE_PHASE", phase).env("STRATA_SCALE_DIR", dir).stderr(std::process::Stdio::inherit()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{phase} on {}: {}", dir.display(), text);
    let line = text.lines().find_map(|l| l.strip_prefix("RESULT ")).unwrap_or_else(|| panic!("{phase}: no result in {text}"));
    serde_json::from_str(line).unwrap()
}

// ---------------------------------------------------------------- Spark

fn cluster(args: &str, workers: usize) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/spark-cluster.sh");
    let out = Command::new("bash").arg(&script).arg(args).env("STRATA_SPARK_WORKERS", workers.to_string()).stderr(std::process::Stdio::inherit()).output().unwrap();
    assert!(out.status.success(), "spark-cluster.sh {args} failed");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The local cluster's state directory, as `scripts/spark-cluster.sh` names it.
fn cluster_state() -> String {
    if let Ok(s) = std::env::var("STRATA_SPARK_STATE") {
        return s;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("bash").arg("-c").arg("echo /tmp/strata-spark-$(pwd | sha256sum | cut -c1-8)").current_dir(repo.canonicalize().unwrap()).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// CPU seconds (user + system) used so far by this cluster's executor JVMs (the processes whose
/// command line names `CoarseGrainedExecutorBackend` and the cluster's configuration directory):
/// the work a query costs, whatever else the shared machine's cores were doing meanwhile.
fn executor_cpu_secs(state: &str) -> (f64, usize) {
    let tick = 100.0; // USER_HZ on Linux
    let (mut secs, mut n) = (0.0, 0);
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else { continue };
        let cmd = String::from_utf8_lossy(&cmd);
        if !cmd.contains("CoarseGrainedExecutorBackend") || !cmd.contains(state) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        // Fields after the command's closing parenthesis: state is field 3, utime 14, stime 15.
        let rest: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
        if rest.len() > 12 {
            secs += (rest[11].parse::<f64>().unwrap_or(0.0) + rest[12].parse::<f64>().unwrap_or(0.0)) / tick;
            n += 1;
        }
    }
    (secs, n)
}

fn naive_sql(source: &Source, t: f64) -> Sql {
    let t = double_literal(t).unwrap();
    let s = "CAST(`score` AS DOUBLE)";
    let text = format!(
        "SELECT `sex`, `race`, \
         SUM(CASE WHEN `label` = 1 AND {s} >= {t} THEN 1 ELSE 0 END) AS `tp`, \
         SUM(CASE WHEN `label` <> 1 AND {s} >= {t} THEN 1 ELSE 0 END) AS `fp`, \
         SUM(CASE WHEN `label` <> 1 AND {s} < {t} THEN 1 ELSE 0 END) AS `tn`, \
         SUM(CASE WHEN `label` = 1 AND {s} < {t} THEN 1 ELSE 0 END) AS `fn` \
         FROM {} WHERE `label` IS NOT NULL AND `score` IS NOT NULL GROUP BY `sex`, `race`",
        source.sql()
    );
    Sql { text, args: vec![] }
}

/// TP and FP per (sex, race) at bucket threshold `k` (scores ≥ k/GRID) from the cells.
fn counts_from_cells(cells: &SparkTable, k: i64) -> std::collections::BTreeMap<(String, String), (i64, i64)> {
    let (s0, s1, sc, l, n) = (&cells.require("slice_0").unwrap().values, &cells.require("slice_1").unwrap().values, &cells.require("score").unwrap().values, &cells.require("label").unwrap().values, &cells.require("n").unwrap().values);
    let mut out = std::collections::BTreeMap::new();
    for i in 0..cells.height() {
        let e = out.entry((s0.text_at(i).unwrap(), s1.text_at(i).unwrap())).or_insert((0, 0));
        if sc.f64_at(i).unwrap() as i64 >= k {
            let c = n.f64_at(i).unwrap() as i64;
            if l.f64_at(i).unwrap() == 1.0 { e.0 += c } else { e.1 += c }
        }
    }
    out
}

fn naive_counts(t: &SparkTable) -> std::collections::BTreeMap<(String, String), (i64, i64)> {
    let (a, b, tp, fp) = (&t.require("sex").unwrap().values, &t.require("race").unwrap().values, &t.require("tp").unwrap().values, &t.require("fp").unwrap().values);
    (0..t.height()).map(|i| ((a.text_at(i).unwrap(), b.text_at(i).unwrap()), (tp.f64_at(i).unwrap() as i64, fp.f64_at(i).unwrap() as i64))).collect()
}

/// The push-down: cells of (sex, race, score bucket of 1/GRID, label) with counts and loss sums.
fn cell_query(source: &Source) -> CellQuery {
    CellQuery {
        source: source.clone(),
        label: "label".into(),
        score: "score".into(),
        weight: None,
        positive: Some(Param::Number(1.0)),
        slices: vec![SliceColumn::Categorical("sex".into()), SliceColumn::Categorical("race".into())],
        grid: ScoreGrid::Buckets(GRID),
        by_weight: false,
    }
}

struct SparkRow {
    workers: usize,
    rows: usize,
    count: f64,
    scan: f64,
    pushdown: f64,
    pushdown_again: f64,
    cells: usize,
    naive_each: Vec<f64>,
    /// Executor CPU seconds: the bare scan, the push-down (both runs), the naive queries (all).
    cpu_scan: f64,
    cpu_pushdown: [f64; 2],
    cpu_naive: f64,
}

async fn spark_measure(remote: &str, workers: usize, sizes: &[(usize, PathBuf)], naive_plan: &dyn Fn(usize, usize) -> usize) -> Vec<SparkRow> {
    let remote = Remote::parse(remote).unwrap();
    let outbound = Outbound::new("127.0.0.1, localhost", true, 16 << 20).unwrap();
    let options = SparkOptions { connect_timeout: Duration::from_secs(60), query_timeout: Duration::from_secs(3600), max_result_bytes: 256 << 20 };
    let spark = SparkClient::connect(&remote, &outbound, options).await.expect("connect to the local Spark cluster");
    let state = cluster_state();
    let cpu = || executor_cpu_secs(&state).0;
    eprintln!("[scale] Spark {} with {workers} worker(s); executors found: {}", spark.version(), executor_cpu_secs(&state).1);
    // Warm-up, not timed: the JVMs compile the scan, the cell query's and the naive query's code
    // on the smallest data first, so that neither side of the comparison pays for it.
    if let Some((_, dir)) = sizes.first() {
        let source = Source::parquet(&dir.to_string_lossy());
        spark.cells(&cell_query(&source)).await.expect("warm-up cell query");
        spark.sql(&naive_sql(&source, 0.5)).await.expect("warm-up naive query");
    }
    let mut out = Vec::new();
    for (rows, dir) in sizes {
        let source = Source::parquet(&dir.to_string_lossy());
        let timed = |sql: Sql| {
            let spark = &spark;
            async move {
                let t = Instant::now();
                let r = spark.sql(&sql).await.unwrap_or_else(|e| panic!("{}: {e}", sql.text));
                (t.elapsed().as_secs_f64(), r)
            }
        };
        // The first query on a source lists the files and warms the JVMs' code paths.
        let t = Instant::now();
        let n = spark.row_count(&source).await.unwrap();
        let count = t.elapsed().as_secs_f64();
        assert_eq!(n as usize, *rows);
        let c0 = cpu();
        let (scan, _) = timed(Sql { text: format!("SELECT COUNT(*), SUM(`label`), SUM(CAST(`score` AS DOUBLE)), MAX(`sex`), MAX(`race`) FROM {}", source.sql()), args: vec![] }).await;
        let c1 = cpu();
        let query = cell_query(&source);
        let t = Instant::now();
        let cells = spark.cells(&query).await.unwrap();
        let pushdown = t.elapsed().as_secs_f64();
        let c2 = cpu();
        let k = naive_plan(workers, *rows).clamp(1, 101);
        let js: Vec<usize> = if k == 1 { vec![50] } else { (0..k).map(|i| (i * 100 + (k - 1) / 2) / (k - 1)).collect() };
        let mut naive_each = Vec::new();
        for j in js {
            let (secs, table) = timed(naive_sql(&source, j as f64 / 100.0)).await;
            naive_each.push(secs);
            // The same counts as the cells give at that threshold (j/100 is the grid's k/10000).
            assert_eq!(naive_counts(&table), counts_from_cells(&cells, (j * 100) as i64), "threshold {j}/100");
        }
        let c3 = cpu();
        let t = Instant::now();
        let again = spark.cells(&query).await.unwrap();
        let pushdown_again = t.elapsed().as_secs_f64();
        let c4 = cpu();
        assert_eq!(again.height(), cells.height());
        eprintln!("[scale] Spark {workers}w {rows}: count {count:.1}s scan {scan:.1}s push-down {pushdown:.1}s/{pushdown_again:.1}s, naive {} thresholds {:.1}s", naive_each.len(), naive_each.iter().sum::<f64>());
        out.push(SparkRow { workers, rows: *rows, count, scan, pushdown, pushdown_again, cells: cells.height(), naive_each, cpu_scan: c1 - c0, cpu_pushdown: [c2 - c1, c4 - c3], cpu_naive: c3 - c2 });
    }
    spark.close().await;
    out
}

// ---------------------------------------------------------------- main

fn main() {
    if let Ok(phase) = std::env::var("STRATA_SCALE_PHASE") {
        let dir = PathBuf::from(std::env::var("STRATA_SCALE_DIR").unwrap());
        match phase.as_str() {
            "floor" => floor_child(&dir),
            "local" => local_child(&dir),
            other => panic!("unknown phase {other}"),
        }
        return;
    }
    let root = PathBuf::from(env_or("STRATA_BENCH_DATA", "/tmp/strata-scale"));
    let sizes: Vec<usize> = env_or("STRATA_BENCH_SIZES", "10000000,100000000").split(',').map(|s| s.trim().parse().unwrap()).collect();
    let decimals: i32 = env_or("STRATA_BENCH_SCORE_DECIMALS", "4").parse().unwrap();
    let parts = env_or("STRATA_BENCH_PARTS", "local,spark");
    let workers: Vec<usize> = env_or("STRATA_BENCH_WORKERS", "2,1").split(',').map(|s| s.trim().parse().unwrap()).collect();
    let naive_env = env_or("STRATA_BENCH_NAIVE", "2:10000000=101,2:100000000=11,1:10000000=21,1:100000000=5");
    let naive: Vec<((usize, usize), usize)> = naive_env
        .split(',')
        .map(|p| {
            let (key, k) = p.split_once('=').unwrap();
            let (w, r) = key.split_once(':').unwrap();
            ((w.trim().parse().unwrap(), r.trim().parse().unwrap()), k.trim().parse().unwrap())
        })
        .collect();
    let naive_plan = |w: usize, r: usize| naive.iter().find(|(key, _)| *key == (w, r)).map(|(_, k)| *k).unwrap_or(11);

    std::fs::create_dir_all(&root).unwrap();
    let data: Vec<(usize, PathBuf)> = sizes.iter().map(|&r| (r, ensure_data(&root, r, decimals))).collect();
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())).unwrap_or_default();
    println!("\nStrata scale benchmark (issue 18): {} cores ({cpu}), {:.1} GiB RAM, scores at {decimals} decimals", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), status_mem_gib());

    println!("\nData (zstd Parquet, {ROWS_PER_FILE}-row files, {ROWS_PER_GROUP}-row row groups):");
    println!("{:>6} {:>6} {:>10} {:>9}   compressed bytes per row by column", "rows", "files", "on disk", "B/row");
    for (rows, dir) in &data {
        let (total, cols) = column_sizes(dir);
        let per: Vec<String> = cols.iter().map(|(n, b)| format!("{n} {:.3}", *b as f64 / *rows as f64)).collect();
        println!("{:>6} {:>6} {:>6.1} MiB {:>9.2}   {}", millions(*rows), parquet_files(dir).len(), total as f64 / 1048576.0, total as f64 / *rows as f64, per.join(", "));
    }

    if parts.contains("local") {
        println!("\nLocal Parquet, streaming (sex,race cross: 10 slices + overall, 101 thresholds, 200 bootstrap replicates):");
        let mut rows_out: Vec<(usize, Value, Value)> = Vec::new();
        for (rows, dir) in &data {
            let floor = child("floor", dir);
            let local = child("local", dir);
            eprintln!("[scale] local {rows}: floor {floor} local {local}");
            rows_out.push((*rows, floor, local));
        }
        println!("{:>6} {:>9} {:>11} {:>9} {:>10} {:>11} {:>9} {:>9} {:>9} {:>10} {:>10} {:>10}", "rows", "scan s", "register s", "first s", "first/scan", "identical s", "reseed s", "slider s", "peak MiB", "idle MiB", "cols MiB", "peak/cols");
        for (rows, floor, local) in &rows_out {
            let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
            let cols_mib = f(floor, "frame_bytes") / 1048576.0;
            println!(
                "{:>6} {:>9.2} {:>11.2} {:>9.2} {:>9.2}x {:>11.4} {:>9.2} {:>9.2} {:>9.0} {:>10.0} {:>10.0} {:>9.3}x",
                millions(*rows),
                f(floor, "floor_secs"),
                f(local, "register_secs"),
                f(local, "first_secs"),
                f(local, "first_secs") / f(floor, "floor_secs"),
                f(local, "identical_secs"),
                f(local, "reseeded_secs"),
                f(local, "slider_secs"),
                f(local, "hwm_end_mib"),
                f(local, "idle_rss_mib"),
                cols_mib,
                f(local, "hwm_end_mib") / cols_mib
            );
            println!("        (slices {}, thresholds {}; peak after register {:.0} MiB, after the first request {:.0} MiB)", local["slices"], local["thresholds"], f(local, "hwm_register_mib"), f(local, "hwm_first_mib"));
        }
        if rows_out.len() >= 2 {
            let (a, b) = (&rows_out[0], &rows_out[rows_out.len() - 1]);
            let x = b.0 as f64 / a.0 as f64;
            let g = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
            println!(
                "scaling {} -> {} ({x:.0}x rows): first request {:.2}x, bare scan {:.2}x, reseeded repeat {:.2}x, peak memory {:.2}x",
                millions(a.0), millions(b.0), g(&b.2, "first_secs") / g(&a.2, "first_secs"), g(&b.1, "floor_secs") / g(&a.1, "floor_secs"), g(&b.2, "reseeded_secs") / g(&a.2, "reseeded_secs"), g(&b.2, "hwm_end_mib") / g(&a.2, "hwm_end_mib")
            );
        }
    }

    if parts.contains("spark") {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let mut all: Vec<SparkRow> = Vec::new();
        for &w in &workers {
            cluster("stop", w);
            let t = Instant::now();
            let remote = cluster("start", w);
            eprintln!("[scale] cluster with {w} worker(s) at {remote} in {:.1} s", t.elapsed().as_secs_f64());
            all.extend(rt.block_on(spark_measure(&remote, w, &data, &naive_plan)));
            cluster("stop", w);
        }
        println!("\nSpark (standalone on loopback; workers of 1 core / 1 GiB executor each), sex x race, score grid {GRID} buckets:");
        println!("{:>3} {:>6} {:>8} {:>8} {:>11} {:>9} {:>8} {:>9} {:>12} {:>13} {:>10} {:>13}", "w", "rows", "count s", "scan s", "push-down s", "again s", "cells", "naive k", "naive/thr s", "naive 101 s", "measured?", "naive/push");
        for r in &all {
            let per = r.naive_each.iter().sum::<f64>() / r.naive_each.len() as f64;
            let full = per * 101.0;
            let best_push = r.pushdown.min(r.pushdown_again);
            println!(
                "{:>3} {:>6} {:>8.2} {:>8.2} {:>11.2} {:>9.2} {:>8} {:>9} {:>12.2} {:>13.1} {:>10} {:>12.1}x",
                r.workers, millions(r.rows), r.count, r.scan, r.pushdown, r.pushdown_again, r.cells, r.naive_each.len(), per, full,
                if r.naive_each.len() == 101 { "measured" } else { "extrapol." }, full / best_push
            );
        }
        println!("\nExecutor CPU seconds (user + system of the executor JVMs, read from /proc; robust to the other work on the machine):");
        println!("{:>3} {:>6} {:>10} {:>18} {:>16} {:>15} {:>13} {:>16} {:>16}", "w", "rows", "scan cpu", "push-down cpu", "naive cpu/thr", "naive 101 cpu", "naive/push", "push Mrows/cpu-s", "scan Mrows/cpu-s");
        for r in &all {
            let per = r.cpu_naive / r.naive_each.len() as f64;
            let push = r.cpu_pushdown[0].min(r.cpu_pushdown[1]);
            println!(
                "{:>3} {:>6} {:>10.1} {:>8.1} / {:>7.1} {:>16.2} {:>15.1} {:>12.1}x {:>16.2} {:>16.2}",
                r.workers, millions(r.rows), r.cpu_scan, r.cpu_pushdown[0], r.cpu_pushdown[1], per, per * 101.0, per * 101.0 / push, r.rows as f64 / 1e6 / push, r.rows as f64 / 1e6 / r.cpu_scan
            );
        }
        for r in all.iter().filter(|r| r.workers == 1) {
            if let Some(two) = all.iter().find(|t| t.workers == 2 && t.rows == r.rows) {
                let per = |x: &SparkRow| x.naive_each.iter().sum::<f64>() / x.naive_each.len() as f64;
                println!(
                    "one worker / two workers at {}: push-down {:.2}x, scan {:.2}x, naive per threshold {:.2}x",
                    millions(r.rows), r.pushdown.min(r.pushdown_again) / two.pushdown.min(two.pushdown_again), r.scan / two.scan, per(r) / per(two)
                );
            }
        }
        for w in &workers {
            let rows: Vec<&SparkRow> = all.iter().filter(|r| r.workers == *w).collect();
            if rows.len() >= 2 {
                let (a, b) = (rows[0], rows[rows.len() - 1]);
                println!("{w} worker(s), {} -> {}: push-down {:.2}x, scan {:.2}x", millions(a.rows), millions(b.rows), b.pushdown.min(b.pushdown_again) / a.pushdown.min(a.pushdown_again), b.scan / a.scan);
            }
        }
    }
}

fn status_mem_gib() -> f64 {
    std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<f64>().ok())).map(|k| k / 1048576.0).unwrap_or(f64::NAN)
}
