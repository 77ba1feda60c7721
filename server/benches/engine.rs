//! Engine benchmark: all slices of a 2-feature cross (sex × race) × 101 thresholds × all binary
//! metrics, on the Adult demo rows repeated to `STRATA_BENCH_ROWS` (default 1,000,000), warm
//! (DataFrame in memory), without and with 200 bootstrap replicates. Baseline in the same run: a
//! naive Polars group-by per threshold that computes only the four confusion counts.
//!
//! `cargo bench -p strata-server --bench engine --profile dev`

use std::time::Instant;

use polars::prelude::*;
use strata_app::model::Task;
use strata_server::eval::sliced::{MetricsRequest, compute, parse_thresholds};

fn main() {
    let rows: usize = std::env::var("STRATA_BENCH_ROWS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let f = std::fs::File::open(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/adult/eval.parquet")).unwrap();
    let base = ParquetReader::new(f).finish().unwrap().select(["sex", "race", "label", "score_gbt"]).unwrap();
    let reps = rows.div_ceil(base.height());
    let mut df = base.clone();
    for _ in 1..reps {
        df.vstack_mut(&base).unwrap();
    }
    let df = df.slice(0, rows);
    df.clone().rechunk_mut();
    let thresholds = parse_thresholds("0:1:0.01").unwrap();
    let req = |bootstrap| MetricsRequest {
        label: "label".into(),
        model: "score_gbt".into(),
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
    let t = Instant::now();
    for th in &thresholds {
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
    let naive = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let r0 = compute(&df, &req(0), Task::Binary).unwrap();
    let no_ci = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let r200 = compute(&df, &req(200), Task::Binary).unwrap();
    let with_ci = t.elapsed().as_secs_f64();
    assert_eq!(r0.slices.len(), r200.slices.len());

    println!("\nStrata engine benchmark: {rows} rows, slices of sex x race ({} incl. overall), 101 thresholds", r0.slices.len());
    println!("{:<70} {:>9} {:>12}", "step", "seconds", "ratio");
    println!("{:<70} {:>9.3} {:>12}", "baseline: naive Polars group-by per threshold (4 counts only)", naive, "1.00x");
    println!("{:<70} {:>9.3} {:>11.2}x", "strata: all metrics, Wilson CIs, no bootstrap", no_ci, no_ci / naive);
    println!("{:<70} {:>9.3} {:>11.2}x", "strata: all metrics + 200 Poisson-bootstrap replicates, p-values, BH", with_ci, with_ci / naive);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or("VmHWM: ? kB");
    println!("DataFrame {:.1} MiB; peak resident memory {hwm}", df.estimated_size() as f64 / 1048576.0);
}
