//! Model-calling analyses on the Adult demo's GBT model (ONNX through tract), each timed and set
//! against the hardware floor measured in the same run: one `predict` call of as many rows as the
//! analysis sent to the model (so "× floor" is what the analysis adds to the model's own cost).
//!
//! - adversarial search for 200 examples (issue 13: ≤ 10 s), and the random search of its budget;
//! - KernelSHAP of one example with 500 coalitions and 50 background rows (issue 13: ≤ 1 s);
//! - exact TreeSHAP of one example against 50 background rows, on a bare skl2onnx tree ensemble;
//! - permutation importance of 13 features × 5 repeats on 2000 rows.
//!
//! `cargo bench -p strata-server --bench models --profile dev` (also `--release` for optimised numbers).

use std::time::Instant;

use polars::prelude::*;
use strata_server::models::adversarial::{Feature, Settings, observed_space, random_search, search};
use strata_server::models::importance::{Scoring, permutation_importance};
use strata_server::models::onnx::OnnxModel;
use strata_server::models::shap::kernel_shap;
use strata_server::models::{Batch, Model, Values};

const FEATURES: [&str; 13] = ["age", "workclass", "education", "education_num", "marital_status", "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country"];

fn rows(b: &Batch, range: std::ops::Range<usize>) -> Batch {
    b.take(&range.collect::<Vec<_>>())
}

/// Seconds of the fastest of `runs` calls, and its result.
fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..runs {
        let t = Instant::now();
        let r = f();
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(r);
    }
    (best, out.expect("at least one run"))
}

/// The floor: one predict call of `n` rows (the demo rows cycled).
fn floor(model: &dyn Model, all: &Batch, n: usize) -> f64 {
    let idx: Vec<usize> = (0..n).map(|i| i % all.rows).collect();
    let b = all.take(&idx);
    time(3, || model.predict(&b).expect("predict")).0
}

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let df = ParquetReader::new(std::fs::File::open(root.join("demo/adult/eval.parquet")).expect("demo data")).finish().expect("parquet");
    let all = Batch::from_frame(&df).expect("batch");
    let gbt = OnnxModel::load("score_gbt", &std::fs::read(root.join("demo/adult/model_gbt.onnx")).expect("model"), None).expect("load");
    println!("\nModel analyses on the Adult demo GBT ({} rows available)\n", all.rows);
    println!("{:<52} {:>10} {:>12} {:>10} {:>9}", "analysis", "seconds", "rows sent", "floor s", "× floor");
    let report = |name: &str, secs: f64, sent: usize| {
        let f = floor(&gbt, &all, sent.max(1));
        println!("{name:<52} {secs:>10.3} {sent:>12} {f:>10.3} {:>9.1}", secs / f);
    };

    // Adversarial search: 200 examples, sex and race immutable, the observed spaces.
    let sample = rows(&all, 0..200);
    let features: Vec<Feature> = FEATURES.iter().filter(|f| !["sex", "race"].contains(f)).filter_map(|f| observed_space(&all.columns[*f], 10).map(|space| Feature { name: f.to_string(), space })).collect();
    let settings = Settings { threshold: 0.5, max_radius: 3.0, max_steps: 20, seed: 0 };
    let (secs, found) = time(1, || search(&gbt, &sample, &features, &settings).expect("search"));
    let sent: usize = found.iter().map(|f| f.queries).sum();
    let flipped = found.iter().filter(|f| f.flipped).count();
    report(&format!("adversarial search, 200 examples ({flipped} flipped)"), secs, sent);
    let tries = sent / found.len();
    let (secs, random) = time(1, || random_search(&gbt, &sample, &features, &settings, tries).expect("random"));
    report(&format!("random search, same budget ({} flipped)", random.iter().filter(|r| r.is_some()).count()), secs, tries * 200);

    // KernelSHAP: one example, 500 coalitions, 50 background rows.
    let names: Vec<String> = FEATURES.iter().map(|s| s.to_string()).collect();
    let (example, background) = (rows(&all, 7..8), rows(&all, 1000..1050));
    let (secs, a) = time(3, || kernel_shap(&gbt, &example, &background, &names, 500, 0).expect("kernel"));
    report("KernelSHAP, 1 example, 500 coalitions × 50 rows", secs, a.predictions);

    // TreeSHAP on a bare tree ensemble over five numeric columns.
    let cols: Vec<String> = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"].iter().map(|s| s.to_string()).collect();
    let trees_model = OnnxModel::load("gb", &std::fs::read(root.join("testdata/models/adult_gb_skl2onnx.onnx")).expect("model"), Some(cols.clone())).expect("load");
    let trees = trees_model.trees().expect("a tree ensemble");
    let vector = |i: usize| -> Vec<f64> { cols.iter().map(|c| if let Values::Numeric(v) = &all.columns[c] { v[i] as f32 as f64 } else { f64::NAN }).collect() };
    let back: Vec<Vec<f64>> = (1000..1050).map(vector).collect();
    let x = vector(7);
    let (secs, _) = time(5, || trees.ensemble.tree_shap(&x, &back, trees.target));
    println!("{:<52} {secs:>10.6} {:>12} {:>10} {:>9}", "TreeSHAP, 1 example × 50 rows (skl2onnx GB trees)", 0, "—", "—");

    // Permutation importance: 13 features × 5 repeats on 2000 rows.
    let part = rows(&all, 0..2000);
    let labels: Vec<f64> = match &all.columns["label"] {
        Values::Numeric(v) => v[..2000].to_vec(),
        Values::Text(_) => panic!("numeric labels"),
    };
    let (secs, _) = time(1, || permutation_importance(&gbt, &part, &labels, &names, Scoring::Auc, 5, 0).expect("importance"));
    report("permutation importance, 13 × 5 repeats × 2000 rows", secs, 2000 * (1 + 13 * 5));
}
