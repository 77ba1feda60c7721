//! Headline metrics on the demo data equal scikit-learn's (golden/make_golden.py).

use std::sync::Arc;

use polars::prelude::*;
use strata_app::model::Task;
use strata_server::eval;

fn golden() -> serde_json::Value {
    serde_json::from_str(include_str!("../golden/headline.json")).unwrap()
}

fn load(path: &str) -> Arc<DataFrame> {
    let f = std::fs::File::open(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)).unwrap();
    Arc::new(ParquetReader::new(f).finish().unwrap())
}

fn check(df: &DataFrame, task: Task, models: &[&str], prefix: &str, weight: Option<&str>, suffix: &str) {
    let g = golden();
    let models: Vec<String> = models.iter().map(|m| m.to_string()).collect();
    let h = eval::headline(df, "label", task, &models, weight, |_| vec![]).unwrap();
    for mh in &h {
        let expected = &g[format!("{prefix}/{}{suffix}", mh.model)];
        assert!(expected.is_object(), "golden values for {}", mh.model);
        for (name, want) in expected.as_object().unwrap() {
            let got = mh.metrics.iter().find(|m| &m.name == name).and_then(|m| m.value).unwrap_or_else(|| panic!("{name} computed"));
            let want = want.as_f64().unwrap();
            let tol = 1e-9 * want.abs().max(1.0);
            assert!((got - want).abs() <= tol, "{}: {name} = {got}, scikit-learn says {want}", mh.model);
        }
    }
}

#[test]
fn binary_headline_matches_sklearn() {
    let df = load("demo/adult/eval.parquet");
    check(&df, Task::Binary, &["score_logreg", "score_gbt"], "adult", None, "");
}

#[test]
fn weighted_binary_headline_matches_sklearn() {
    let mut df = (*load("demo/adult/eval.parquet")).clone();
    let w: Vec<f64> = (0..df.height()).map(|i| (i % 3 + 1) as f64).collect();
    df.with_column(Column::new("w".into(), w)).unwrap();
    check(&df, Task::Binary, &["score_logreg"], "adult", Some("w"), "/weighted");
}

#[test]
fn regression_headline_matches_sklearn() {
    let df = load("demo/wages/eval.parquet");
    check(&df, Task::Regression, &["prediction_linear", "prediction_gbt"], "wages", None, "");
}
