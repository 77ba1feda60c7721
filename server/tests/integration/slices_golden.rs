//! Per-slice metrics equal scikit-learn's (golden/make_slices_golden.py); engine invariants.

use polars::prelude::*;
use strata_app::model::Task;
use strata_server::eval::sliced::{MetricsRequest, compute, parse_thresholds};

fn golden() -> serde_json::Value {
    serde_json::from_str(include_str!("../golden/slices.json")).unwrap()
}

fn load(path: &str) -> DataFrame {
    let f = std::fs::File::open(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)).unwrap();
    ParquetReader::new(f).finish().unwrap()
}

fn request(model: &str, specs: &[&str], bootstrap: usize) -> MetricsRequest {
    MetricsRequest {
        label: "label".into(),
        model: model.into(),
        class_scores: vec![],
        weight: None,
        specs: specs.iter().map(|s| s.to_string()).collect(),
        thresholds: vec![0.3, 0.5, 0.7],
        ci: 0.95,
        bootstrap,
        seed: 7,
        baseline: "overall".into(),
        min_size: 1,
        max_slices: 500,
        alpha: 0.05,
    }
}

fn close(got: Option<f64>, want: f64, tol: f64, what: &str) {
    let got = got.unwrap_or_else(|| panic!("{what}: undefined"));
    assert!((got - want).abs() <= tol, "{what}: strata {got}, scikit-learn {want}");
}

#[test]
fn binary_slices_match_sklearn() {
    let df = load("demo/adult/eval.parquet");
    let res = compute(&df, &request("score_gbt", &["sex", "race", "age:[30,45,60]"], 0), Task::Binary).unwrap();
    let g = golden();
    let mut checked = 0;
    for s in &res.slices {
        let value = s.key.values().next().cloned().unwrap_or_default();
        let want = &g["binary"][format!("{}|{}", s.spec, value)];
        assert!(want.is_object(), "golden for {} {value}", s.spec);
        assert_eq!(s.count, want["count"].as_u64().unwrap());
        for m in ["auc_roc", "auc_pr", "log_loss", "brier_score"] {
            close(s.metrics[m].value, want[m].as_f64().unwrap(), 1e-6, &format!("{} {value} {m}", s.spec));
        }
        for m in ["base_rate", "mean_score"] {
            close(s.metrics[m].value, want[m].as_f64().unwrap(), 1e-9, &format!("{} {value} {m}", s.spec));
        }
        for at in &s.at {
            let w = &want["at"][at.threshold.to_string()];
            for (name, got) in [("tp", at.tp), ("fp", at.fp), ("tn", at.tn), ("fn", at.fn_)] {
                assert_eq!(got, w[name].as_f64().unwrap(), "{} {value} {name}@{}", s.spec, at.threshold);
            }
            for m in ["accuracy", "precision", "recall", "f1", "mcc", "balanced_accuracy", "fpr", "tnr", "fnr", "positive_rate"] {
                close(at.metrics[m].value, w[m].as_f64().unwrap(), 1e-9, &format!("{} {value} {m}@{}", s.spec, at.threshold));
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 12 * 3, "every slice at every threshold");
}

#[test]
fn regression_slices_match_sklearn() {
    let df = load("demo/wages/eval.parquet");
    let res = compute(&df, &request("prediction_gbt", &["gender"], 0), Task::Regression).unwrap();
    let g = golden();
    for s in res.slices.iter().filter(|s| s.spec == "gender") {
        let value = &s.key["gender"];
        let want = &g["regression"][format!("gender|{value}")];
        for m in ["mae", "mse", "rmse", "r2", "mean_residual", "median_absolute_error", "mape"] {
            let w = want[m].as_f64().unwrap();
            close(s.metrics[m].value, w, 1e-9 * w.abs().max(1.0), &format!("gender {value} {m}"));
        }
    }
}

#[test]
fn intervals_pvalues_and_invariants() {
    let df = load("demo/adult/eval.parquet");
    let req = request("score_gbt", &["sex", "race"], 100);
    let a = compute(&df, &req, Task::Binary).unwrap();
    let b = compute(&df, &req, Task::Binary).unwrap();
    assert_eq!(a, b, "seeded: the same request gives the same numbers");
    let overall = &a.slices[0];
    assert_eq!(overall.spec, "overall");
    // Slices of one spec add up to the total.
    let sex_total: u64 = a.slices.iter().filter(|s| s.spec == "sex").map(|s| s.count).sum();
    assert_eq!(sex_total, overall.count);
    for s in &a.slices {
        for at in &s.at {
            let tpr = at.metrics["tpr"].value.unwrap();
            let fnr = at.metrics["fnr"].value.unwrap();
            assert!((tpr + fnr - 1.0).abs() < 1e-12);
            for (name, e) in &at.metrics {
                if let (Some(v), Some(lo), Some(hi)) = (e.value, e.lo, e.hi) {
                    assert!(lo <= v + 1e-12 && v <= hi + 1e-12, "{} {name}: {lo} <= {v} <= {hi}", s.spec);
                }
            }
        }
        let auc = &s.metrics["auc_roc"];
        assert_eq!(auc.method, "bootstrap");
        assert!(auc.lo.unwrap() < auc.value.unwrap() && auc.value.unwrap() < auc.hi.unwrap());
    }
    // Women get far fewer positive decisions than the overall rate: a real, significant gap.
    let women = a.slices.iter().find(|s| s.spec == "sex" && s.key["sex"] == "Female").unwrap();
    let gap = &women.vs_baseline["positive_rate@0.5"];
    assert!(gap.diff.unwrap() < -0.05 && gap.significant && gap.q_value.unwrap() < 1e-3, "{gap:?}");
    assert_eq!(women.at[1].metrics["tpr"].method, "wilson");
}

#[test]
fn thresholds_parse_lists_and_grids() {
    assert_eq!(parse_thresholds("0.7,0.3,0.5").unwrap(), vec![0.3, 0.5, 0.7]);
    let grid = parse_thresholds("0:1:0.01").unwrap();
    assert_eq!(grid.len(), 101);
    assert_eq!(grid[37], 0.37);
    assert!(parse_thresholds("1.5").unwrap_err().contains("outside [0, 1]"));
    assert!(parse_thresholds("x").is_err());
}

#[test]
fn multiclass_slices_match_sklearn() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/multiclass.csv");
    let spec = strata_app::model::IngestSpec { name: "m".into(), ..Default::default() };
    let ing = strata_server::ingest::ingest_file(&path, "multiclass.csv", &spec).unwrap();
    assert_eq!(ing.task, Task::Multiclass);
    let mut req = request("prediction_model", &["group"], 50);
    req.thresholds = vec![];
    let res = compute(&ing.frame, &req, Task::Multiclass).unwrap();
    let g: serde_json::Value = serde_json::from_str(include_str!("../golden/multiclass.json")).unwrap();
    for s in &res.slices {
        let name = s.key.get("group").cloned().unwrap_or_else(|| "overall".into());
        let want = &g[&name];
        assert_eq!(s.count, want["count"].as_u64().unwrap(), "{name}");
        for (metric, w) in want.as_object().unwrap() {
            if metric == "count" || metric == "confusion" || metric == "mlp" || metric.starts_with("micro_") && metric != "micro_f1" {
                continue;
            }
            close(s.metrics[metric].value, w.as_f64().unwrap(), 1e-9, &format!("{name} {metric}"));
        }
        let cm = s.confusion.as_ref().unwrap();
        assert_eq!(cm.classes, vec!["cat", "dog", "fox", "owl"]);
        let counts: Vec<Vec<u64>> = cm.counts.iter().map(|r| r.iter().map(|x| *x as u64).collect()).collect();
        let want_cm: Vec<Vec<u64>> = serde_json::from_value(want["confusion"].clone()).unwrap();
        assert_eq!(counts, want_cm, "{name}");
        assert_eq!(s.metrics["macro_f1"].method, "bootstrap");
    }
    let north = res.slices.iter().find(|s| s.key.get("group").is_some_and(|g| g == "north")).unwrap();
    assert!(north.vs_baseline["accuracy"].significant, "the north's better accuracy is a real gap");
}

/// A model given as per-class probability columns (`prob_mlp_<class>`): ingest derives its
/// predicted class (the argmax), and the engine adds top-k accuracy and log loss, all equal to
/// scikit-learn's per group.
#[test]
fn per_class_scores_give_top_k_accuracy_and_log_loss() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/multiclass.csv");
    let spec = strata_app::model::IngestSpec { name: "m".into(), ..Default::default() };
    let ing = strata_server::ingest::ingest_file(&path, "multiclass.csv", &spec).unwrap();
    assert_eq!(ing.roles.scores, vec!["prediction_model", "prob_mlp"]);
    assert_eq!(ing.roles.class_models.len(), 1);
    let mut req = request("prob_mlp", &["group"], 50);
    req.thresholds = vec![];
    req.class_scores = ing.roles.class_models[0].columns.clone();
    assert_eq!(req.class_scores[0], ("cat".to_string(), "prob_mlp_cat".to_string()));
    let res = compute(&ing.frame, &req, Task::Multiclass).unwrap();
    let g: serde_json::Value = serde_json::from_str(include_str!("../golden/multiclass.json")).unwrap();
    for s in &res.slices {
        let name = s.key.get("group").cloned().unwrap_or_else(|| "overall".into());
        let want = &g[&name]["mlp"];
        for m in ["accuracy", "macro_f1", "top_2_accuracy", "top_3_accuracy"] {
            close(s.metrics[m].value, want[m].as_f64().unwrap(), 1e-9, &format!("{name} {m}"));
        }
        close(s.metrics["log_loss"].value, want["log_loss"].as_f64().unwrap(), 1e-9, &format!("{name} log_loss"));
        assert!(!s.metrics.contains_key("top_5_accuracy"), "four classes: top-5 would always be 1");
        let t2 = &s.metrics["top_2_accuracy"];
        assert!(t2.lo.unwrap() < t2.value.unwrap() && t2.value.unwrap() < t2.hi.unwrap(), "{name}: a bootstrap interval");
    }
    // The predicted-class model alone has no scores: no top-k, no log loss.
    let mut plain = request("prediction_model", &[], 0);
    plain.thresholds = vec![];
    let res = compute(&ing.frame, &plain, Task::Multiclass).unwrap();
    assert!(!res.slices[0].metrics.contains_key("top_2_accuracy") && !res.slices[0].metrics.contains_key("log_loss"));
}

/// Log loss with scores of exactly 0 and 1 (and within machine epsilon of them) equals
/// scikit-learn's, which clips at the float64 machine epsilon (golden/make_log_loss_golden.py).
#[test]
fn log_loss_clips_at_machine_epsilon_like_sklearn() {
    let g: serde_json::Value = serde_json::from_str(include_str!("../golden/log_loss_edges.json")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let to_csv = |rows: &serde_json::Value, columns: &[&str]| {
        let mut text = columns.join(",") + "\n";
        for r in rows.as_array().unwrap() {
            let cells: Vec<String> = columns.iter().map(|c| match &r[*c] { serde_json::Value::String(s) => s.clone(), v => format!("{}", v.as_f64().unwrap()) }).collect();
            text += &(cells.join(",") + "\n");
        }
        text
    };
    let ingest = |name: &str, text: String, spec: strata_app::model::IngestSpec| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        strata_server::ingest::ingest_file(&path, name, &spec).unwrap()
    };

    let b = &g["binary"];
    let spec = strata_app::model::IngestSpec { name: "edges".into(), label: Some("label".into()), scores: Some(vec!["score".into()]), ..Default::default() };
    let ing = ingest("binary.csv", to_csv(&b["rows"], &["label", "score", "group", "weight"]), spec);
    let mut req = request("score", &["group"], 0);
    let res = compute(&ing.frame, &req, Task::Binary).unwrap();
    close(res.slices[0].metrics["log_loss"].value, b["overall"].as_f64().unwrap(), 1e-12, "overall log_loss");
    for s in &res.slices[1..] {
        let group = s.key.get("group").unwrap();
        close(s.metrics["log_loss"].value, b["by_group"][group].as_f64().unwrap(), 1e-12, &format!("{group} log_loss"));
    }
    req.weight = Some("weight".into());
    let res = compute(&ing.frame, &req, Task::Binary).unwrap();
    close(res.slices[0].metrics["log_loss"].value, b["weighted"].as_f64().unwrap(), 1e-12, "weighted log_loss");

    let m = &g["multiclass"];
    let spec = strata_app::model::IngestSpec { name: "edges-mc".into(), label: Some("label".into()), ..Default::default() };
    let ing = ingest("multiclass.csv", to_csv(&m["rows"], &["label", "prob_a", "prob_b", "prob_c"]), spec);
    let mut req = request("prob", &[], 0);
    req.thresholds = vec![];
    req.class_scores = ing.roles.class_models[0].columns.clone();
    let res = compute(&ing.frame, &req, Task::Multiclass).unwrap();
    close(res.slices[0].metrics["log_loss"].value, m["overall"].as_f64().unwrap(), 1e-12, "multiclass log_loss");
}
