//! Engine benchmark: all slices of a 2-feature cross (sex × race) × 101 thresholds × all binary
//! metrics, on the Adult demo rows resampled to `STRATA_BENCH_ROWS` (default 1,000,000), with the
//! DataFrame in memory, without and with 200 bootstrap replicates.
//!
//! Two kinds of request: *first* (the run's DataFrame is cached, the engine's prepared cells are
//! not: slicing + sorting + compressing happen) and *repeat* (same model and slices, new
//! thresholds or CI level: the prepared cells are reused, as the server's cache does). Two kinds of
//! data: the demo rows repeated (scores repeat, so rows compress into cells) and the same rows with
//! every score jittered to be distinct (nothing compresses: the worst case).
//!
//! Baselines in the same run: a naive Polars group-by per threshold (four confusion counts only),
//! and fairlearn's MetricFrame on the same rows if `python3 -c 'import fairlearn'` works. fairlearn
//! needs one MetricFrame per threshold (~15 s each on 1M rows here), so it runs on the 11-threshold
//! grid 0:1:0.1 (`STRATA_BENCH_FAIRLEARN_STEP` changes it): its ratio to Strata's 101 thresholds
//! understates Strata's advantage about ninefold. `STRATA_BENCH_FAIRLEARN=0` skips it.
//!
//! `cargo bench -p strata-server --bench engine --profile dev`

use std::time::Instant;

use polars::prelude::*;
use strata_app::model::Task;
use strata_server::eval::sliced::{MetricsRequest, compute_prepared, parse_thresholds, prepare};

fn secs(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

fn main() {
    let rows: usize = std::env::var("STRATA_BENCH_ROWS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let f = std::fs::File::open(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/adult/eval.parquet")).unwrap();
    let base = ParquetReader::new(f).finish().unwrap().select(["sex", "race", "label", "score_gbt"]).unwrap();
    let reps = rows.div_ceil(base.height());
    let mut df = base.clone();
    for _ in 1..reps {
        df.vstack_mut(&base).unwrap();
    }
    let mut df = df.slice(0, rows);
    df.rechunk_mut();
    // The same rows with distinct scores: a tiny deterministic jitter per row.
    let mut jittered = df.clone();
    let scores: Vec<f64> = df.column("score_gbt").unwrap().f64().unwrap().iter().enumerate().map(|(i, v)| {
        let v = v.unwrap_or(0.5);
        (v + (i as f64 / rows as f64 - 0.5) * 1e-6).clamp(0.0, 1.0)
    }).collect();
    jittered.with_column(Column::new("score_gbt".into(), scores)).unwrap();

    let grid = parse_thresholds("0:1:0.01").unwrap();
    let shifted: Vec<f64> = grid.iter().map(|t| (t + 0.005f64).min(1.0)).collect();
    let req = |bootstrap, thresholds: &Vec<f64>| MetricsRequest {
        label: "label".into(),
        model: "score_gbt".into(),
        class_scores: vec![],
        weight: None,
        specs: vec!["sex,race".into()],
        thresholds: thresholds.clone(),
        ci: 0.95,
        bootstrap,
        seed: 1,
        baseline: "overall".into(),
        min_size: 1,
        max_slices: 500,
        alpha: 0.05,
    };

    // Baseline: one Polars group-by per threshold, confusion counts only.
    let naive = secs(|| {
        for th in &grid {
            let pred = col("score_gbt").gt_eq(lit(*th));
            let y = col("label").eq(lit(1i64));
            let out = df
                .clone()
                .lazy()
                .group_by([col("sex"), col("race")])
                .agg([
                    (pred.clone().and(y.clone())).cast(DataType::Int64).sum().alias("tp"),
                    (pred.clone().and(y.clone().not())).cast(DataType::Int64).sum().alias("fp"),
                    (pred.clone().not().and(y.clone().not())).cast(DataType::Int64).sum().alias("tn"),
                    (pred.not().and(y)).cast(DataType::Int64).sum().alias("fn"),
                ])
                .collect()
                .unwrap();
            assert!(out.height() > 0);
        }
    });

    let mut table: Vec<(String, f64)> = Vec::new();
    let mut notes = Vec::new();
    for (name, data) in [("repeated rows", &df), ("distinct scores", &jittered)] {
        let mut prep = None;
        let t_prep = secs(|| prep = Some(prepare(data, &req(0, &grid), Task::Binary).unwrap()));
        let prep = prep.unwrap();
        notes.push(format!("{name}: {} rows -> {} cells, prepared {:.1} MiB", prep.rows(), prep.cells(), prep.bytes() as f64 / 1048576.0));
        let mut n_slices = 0;
        let t0 = secs(|| n_slices = compute_prepared(&prep, &req(0, &grid)).unwrap().slices.len());
        // A repeat request: new thresholds on the same prepared cells.
        let t0r = secs(|| assert_eq!(compute_prepared(&prep, &req(0, &shifted)).unwrap().slices.len(), n_slices));
        let t200 = secs(|| assert_eq!(compute_prepared(&prep, &req(200, &grid)).unwrap().slices.len(), n_slices));
        table.push((format!("{name}: prepare (slice, sort, compress into cells)"), t_prep));
        table.push((format!("{name}: first request, no bootstrap (prepare + compute)"), t_prep + t0));
        table.push((format!("{name}: repeat request, no bootstrap"), t0r));
        table.push((format!("{name}: first request, 200 bootstrap replicates"), t_prep + t200));
        table.push((format!("{name}: repeat request, 200 bootstrap replicates"), t200));
    }

    // fairlearn on the same rows (repeated), if it is installed.
    let fairlearn_step = std::env::var("STRATA_BENCH_FAIRLEARN_STEP").unwrap_or_else(|_| "0.1".into());
    let fairlearn = (|| {
        if std::env::var("STRATA_BENCH_FAIRLEARN").as_deref() == Ok("0") {
            return None;
        }
        let dir = tempfile::tempdir().ok()?;
        let path = dir.path().join("bench.parquet");
        let mut out = df.clone();
        ParquetWriter::new(std::fs::File::create(&path).ok()?).finish(&mut out).ok()?;
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/fairlearn_bench.py");
        let o = std::process::Command::new("python3").arg(script).arg(&path).arg(&fairlearn_step).output().ok()?;
        if !o.status.success() {
            eprintln!("fairlearn baseline skipped: {}", String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or(""));
            return None;
        }
        String::from_utf8_lossy(&o.stdout).lines().last()?.trim().parse::<f64>().ok()
    })();

    println!("\nStrata engine benchmark: {rows} rows, slices of sex x race (+ overall), 101 thresholds, all binary metrics");
    println!("{:<72} {:>9} {:>10} {:>12}", "step", "seconds", "vs naive", "vs fairlearn");
    let ratio = |t: f64, b: Option<f64>| b.map(|b| format!("{:.4}x", t / b)).unwrap_or_else(|| "-".into());
    println!("{:<72} {:>9.3} {:>10} {:>12}", "baseline: naive Polars group-by per threshold (4 counts only)", naive, "1.00x", ratio(naive, fairlearn));
    if let Some(fl) = fairlearn {
        let label = format!("baseline: fairlearn MetricFrame, grid 0:1:{fairlearn_step} (7 rates) + AUC");
        println!("{:<72} {:>9.3} {:>10} {:>12}", label, fl, ratio(fl, Some(naive)), "1.00x");
    }
    for (name, t) in &table {
        println!("{:<72} {:>9.3} {:>10} {:>12}", name, t, ratio(*t, Some(naive)), ratio(*t, fairlearn));
    }
    for n in notes {
        println!("{n}");
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or("VmHWM: ? kB");
    println!("DataFrame {:.1} MiB (x2: repeated + jittered); peak resident memory {hwm}", df.estimated_size() as f64 / 1048576.0);
}
