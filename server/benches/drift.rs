//! Drift statistics for two 1M-row runs (`STRATA_BENCH_ROWS`): the Adult demo rows repeated, the
//! second run with age + 5 years. Times `eval::drift::drift` over every feature and both scores.
//!
//! `cargo bench -p strata-server --bench drift --profile dev`

use std::time::Instant;

use polars::prelude::*;
use strata_app::model::ColumnKind;
use strata_server::eval::drift::drift;

fn main() {
    let rows: usize = std::env::var("STRATA_BENCH_ROWS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let f = std::fs::File::open(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/adult/eval.parquet")).unwrap();
    let base = ParquetReader::new(f).finish().unwrap();
    let mut a = base.clone();
    for _ in 1..rows.div_ceil(base.height()) {
        a.vstack_mut(&base).unwrap();
    }
    let mut a = a.slice(0, rows);
    a.rechunk_mut();
    let mut b = a.clone();
    let age = b.column("age").unwrap().as_materialized_series() + 5;
    b.with_column(age.into_column()).unwrap();
    let features: Vec<(String, ColumnKind)> = ["age", "workclass", "education", "education_num", "marital_status", "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country"]
        .iter()
        .map(|c| (c.to_string(), if a.column(c).unwrap().dtype().is_primitive_numeric() { ColumnKind::Numeric } else { ColumnKind::Categorical }))
        .collect();
    let scores = vec!["score_logreg".to_string(), "score_gbt".to_string()];
    let t = Instant::now();
    let out = drift(&a, &b, &features, &scores).unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!("\nDrift between two {rows}-row runs: {} columns (13 features + 2 scores) in {secs:.3} s", out.len());
    for f in out.iter().take(3) {
        println!("  {:<16} PSI {:.4}  {} {:.4}  drifted {}", f.feature, f.psi, f.test, f.statistic, f.drifted);
    }
}
