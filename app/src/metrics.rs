//! The metric registry: every metric Strata computes, described once.
//!
//! Modelled on TFMA's metric specs and fairlearn's metric table: per metric its name, the family
//! that computes it, which way is better, how its interval is made, its display name, whether the
//! fairness view offers it, and — for the metrics of a confusion matrix — how it is finished from
//! the counts. The engine (`server/src/eval/sliced`), the gates, the fairness view, the pages'
//! sorting and pickers and the OpenAPI document all read this table; adding a metric is one entry
//! here plus, for a new kind of statistic, its accumulator in the engine.
//!
//! It lives in `strata-app` because the pages (compiled to WASM too) need directions and display
//! names; it is plain data and arithmetic, with no Polars.

use serde::{Deserialize, Serialize};

/// Which part of the engine computes a metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Binary classification, from the confusion counts at a decision threshold.
    AtThreshold,
    /// Binary classification, threshold-free (ranking, calibration, sums over rows).
    Binary,
    /// Multiclass classification (per-class `precision[c]`, `recall[c]`, `f1[c]` and, for a model
    /// with per-class scores, `top_k_accuracy` come in addition, see [`multiclass_names`]).
    Multiclass,
    Regression,
}

/// Which way a metric gets better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Higher is better: worse means lower.
    Higher,
    /// Lower is better: worse means higher.
    Lower,
    /// No better side (a rate such as the positive rate): any change counts.
    Neither,
    /// Closer to zero is better (a bias).
    Zero,
}

/// How a metric's confidence interval is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    /// Wilson score interval of a proportion (its trials: [`Finish::Confusion::trials`], or the
    /// slice's weight for a threshold-free rate).
    Wilson,
    /// Percentile interval of the seeded Poisson bootstrap (TFMA's method).
    Bootstrap,
}

/// Weighted confusion counts at one threshold (scores `>=` the threshold are positive).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Confusion {
    pub tp: f64,
    pub fp: f64,
    pub tn: f64,
    pub fn_: f64,
}

impl Confusion {
    pub fn total(&self) -> f64 {
        self.tp + self.fp + self.tn + self.fn_
    }
}

/// How a metric is finished from its family's sufficient statistics.
#[derive(Clone, Copy, Debug)]
pub enum Finish {
    /// From the confusion counts, as scikit-learn defines it (`None` when undefined); a rate
    /// also names its trials (the denominator), for its Wilson interval.
    Confusion { value: fn(&Confusion) -> Option<f64>, trials: Option<fn(&Confusion) -> f64> },
    /// By the family's accumulator in the engine (AUC walks, weighted sums, medians).
    Engine,
}

/// One metric.
#[derive(Clone, Copy, Debug)]
pub struct MetricDef {
    /// The name in URLs, the API and gate files.
    pub name: &'static str,
    /// What a page shows.
    pub display: &'static str,
    pub family: Family,
    pub direction: Direction,
    pub interval: Interval,
    /// Offered by the fairness view (a rate compared across groups).
    pub fairness: bool,
    pub finish: Finish,
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

const fn rate(
    name: &'static str,
    display: &'static str,
    direction: Direction,
    fairness: bool,
    value: fn(&Confusion) -> Option<f64>,
    trials: fn(&Confusion) -> f64,
) -> MetricDef {
    MetricDef { name, display, family: Family::AtThreshold, direction, interval: Interval::Wilson, fairness, finish: Finish::Confusion { value, trials: Some(trials) } }
}

const fn engine(name: &'static str, display: &'static str, family: Family, direction: Direction, interval: Interval, fairness: bool) -> MetricDef {
    MetricDef { name, display, family, direction, interval, fairness, finish: Finish::Engine }
}

use Direction::{Higher, Lower, Neither, Zero};
use Family::{AtThreshold, Binary, Multiclass, Regression};
use Interval::{Bootstrap, Wilson};

/// Every metric, in the order the pickers list them.
pub static METRICS: &[MetricDef] = &[
    // Rates at a threshold (Wilson intervals).
    rate("accuracy", "Accuracy", Higher, true, |c| ratio(c.tp + c.tn, c.total()), Confusion::total),
    rate("precision", "Precision", Higher, true, |c| ratio(c.tp, c.tp + c.fp), |c| c.tp + c.fp),
    rate("recall", "Recall", Higher, false, |c| ratio(c.tp, c.tp + c.fn_), |c| c.tp + c.fn_),
    rate("tpr", "True positive rate", Higher, true, |c| ratio(c.tp, c.tp + c.fn_), |c| c.tp + c.fn_),
    rate("fpr", "False positive rate", Lower, true, |c| ratio(c.fp, c.tn + c.fp), |c| c.tn + c.fp),
    rate("tnr", "True negative rate", Higher, true, |c| ratio(c.tn, c.tn + c.fp), |c| c.tn + c.fp),
    rate("fnr", "False negative rate", Lower, true, |c| ratio(c.fn_, c.tp + c.fn_), |c| c.tp + c.fn_),
    rate("positive_rate", "Positive rate", Neither, true, |c| ratio(c.tp + c.fp, c.total()), Confusion::total),
    rate("negative_rate", "Negative rate", Neither, true, |c| ratio(c.tn + c.fn_, c.total()), Confusion::total),
    rate("fdr", "False discovery rate", Lower, true, |c| ratio(c.fp, c.tp + c.fp), |c| c.tp + c.fp),
    rate("for", "False omission rate", Lower, true, |c| ratio(c.fn_, c.fn_ + c.tn), |c| c.fn_ + c.tn),
    // Other metrics at a threshold (bootstrap intervals).
    MetricDef {
        name: "f1",
        display: "F1 score",
        family: AtThreshold,
        direction: Higher,
        interval: Bootstrap,
        fairness: false,
        finish: Finish::Confusion { value: |c| ratio(2.0 * c.tp, 2.0 * c.tp + c.fp + c.fn_), trials: None },
    },
    MetricDef {
        name: "balanced_accuracy",
        display: "Balanced accuracy",
        family: AtThreshold,
        direction: Higher,
        interval: Bootstrap,
        fairness: false,
        finish: Finish::Confusion {
            value: |c| match (ratio(c.tp, c.tp + c.fn_), ratio(c.tn, c.tn + c.fp)) {
                (Some(a), Some(b)) => Some((a + b) / 2.0),
                _ => None,
            },
            trials: None,
        },
    },
    MetricDef {
        name: "mcc",
        display: "Matthews correlation",
        family: AtThreshold,
        direction: Higher,
        interval: Bootstrap,
        fairness: false,
        finish: Finish::Confusion {
            value: |c| {
                let den = ((c.tp + c.fp) * (c.tp + c.fn_) * (c.tn + c.fp) * (c.tn + c.fn_)).sqrt();
                // scikit-learn returns 0 when a marginal is empty.
                (c.total() > 0.0).then(|| if den > 0.0 { (c.tp * c.tn - c.fp * c.fn_) / den } else { 0.0 })
            },
            trials: None,
        },
    },
    // Threshold-free binary metrics.
    engine("auc_roc", "AUC-ROC", Binary, Higher, Bootstrap, true),
    engine("auc_pr", "Average precision", Binary, Higher, Bootstrap, true),
    engine("log_loss", "Log loss", Binary, Lower, Bootstrap, false),
    engine("brier_score", "Brier score", Binary, Lower, Bootstrap, false),
    engine("expected_calibration_error", "Expected calibration error", Binary, Lower, Bootstrap, true),
    engine("mean_score", "Mean score", Binary, Neither, Bootstrap, false),
    engine("base_rate", "Base rate", Binary, Neither, Wilson, false),
    // Multiclass.
    engine("accuracy", "Accuracy", Multiclass, Higher, Wilson, false),
    engine("micro_f1", "Micro F1", Multiclass, Higher, Bootstrap, false),
    engine("macro_precision", "Macro precision", Multiclass, Higher, Bootstrap, false),
    engine("macro_recall", "Macro recall", Multiclass, Higher, Bootstrap, false),
    engine("macro_f1", "Macro F1", Multiclass, Higher, Bootstrap, false),
    engine("weighted_precision", "Weighted precision", Multiclass, Higher, Bootstrap, false),
    engine("weighted_recall", "Weighted recall", Multiclass, Higher, Bootstrap, false),
    engine("weighted_f1", "Weighted F1", Multiclass, Higher, Bootstrap, false),
    // Regression.
    engine("mae", "Mean absolute error", Regression, Lower, Bootstrap, false),
    engine("mse", "Mean squared error", Regression, Lower, Bootstrap, false),
    engine("rmse", "Root mean squared error", Regression, Lower, Bootstrap, false),
    engine("r2", "R²", Regression, Higher, Bootstrap, false),
    engine("mean_residual", "Mean residual (bias)", Regression, Zero, Bootstrap, false),
    engine("median_absolute_error", "Median absolute error", Regression, Lower, Bootstrap, false),
    engine("mape", "Mean absolute percentage error", Regression, Lower, Bootstrap, false),
];

/// A multiclass model with per-class scores also has log loss (as binary's: lower is better).
static MULTICLASS_LOG_LOSS: MetricDef = engine("log_loss", "Log loss", Multiclass, Lower, Bootstrap, false);
/// `top_k_accuracy` (k >= 2) and per-class `precision[c]`, `recall[c]`, `f1[c]`.
static MULTICLASS_DERIVED: MetricDef = engine("", "", Multiclass, Higher, Bootstrap, false);

/// The metrics of one family, in registry order.
pub fn of_family(family: Family) -> impl Iterator<Item = &'static MetricDef> {
    METRICS.iter().filter(move |m| m.family == family)
}

/// Names of one family's metrics, in registry order.
pub fn names(family: Family) -> impl Iterator<Item = &'static str> {
    of_family(family).map(|m| m.name)
}

/// `top_3_accuracy` and the like (k >= 2): the k.
pub fn top_k(name: &str) -> Option<usize> {
    name.strip_prefix("top_").and_then(|r| r.strip_suffix("_accuracy")).and_then(|k| k.parse::<usize>().ok()).filter(|k| *k >= 2)
}

/// A per-class name such as `recall[>50K]`.
fn per_class(name: &str) -> bool {
    name.split_once('[').is_some_and(|(base, _)| matches!(base, "precision" | "recall" | "f1"))
}

/// The metric named `name` in `family` (per-class and top-k multiclass names included).
pub fn find(family: Family, name: &str) -> Option<&'static MetricDef> {
    if let Some(m) = of_family(family).find(|m| m.name == name) {
        return Some(m);
    }
    match family {
        Family::Multiclass if name == "log_loss" => Some(&MULTICLASS_LOG_LOSS),
        Family::Multiclass if top_k(name).is_some() || per_class(name) => Some(&MULTICLASS_DERIVED),
        _ => None,
    }
}

/// The metric named `name` in any family (the first match: a name means the same everywhere).
pub fn lookup(name: &str) -> Option<&'static MetricDef> {
    METRICS.iter().find(|m| m.name == name).or_else(|| find(Family::Multiclass, name))
}

/// Which way `name` gets better (higher for names the registry does not know).
pub fn direction(name: &str) -> Direction {
    lookup(name).map_or(Direction::Higher, |m| m.direction)
}

/// How much worse `value` is than `baseline` (positive = worse).
pub fn worsening(name: &str, value: f64, baseline: f64) -> f64 {
    match direction(name) {
        Direction::Higher => baseline - value,
        Direction::Lower => value - baseline,
        Direction::Neither => (value - baseline).abs(),
        Direction::Zero => value.abs() - baseline.abs(),
    }
}

/// What a page shows for `name` (`recall[>50K]` → "Recall [>50K]", `top_3_accuracy` → "Top-3 accuracy").
pub fn display(name: &str) -> String {
    if let Some(k) = top_k(name) {
        return format!("Top-{k} accuracy");
    }
    if let Some((base, class)) = name.split_once('[') {
        let d = lookup(base).map_or(base, |m| m.display);
        return format!("{d} [{class}");
    }
    lookup(name).map_or_else(|| name.to_string(), |m| m.display.to_string())
}

/// The k of top-k accuracy a model with `classes` per-class scores reports: 2, 3 and 5, each
/// below the number of classes (top-`classes` accuracy is always 1).
pub fn top_ks(classes: usize) -> Vec<usize> {
    [2, 3, 5].into_iter().filter(|k| *k < classes).collect()
}

/// `top_3_accuracy` for k = 3.
pub fn top_k_name(k: usize) -> String {
    format!("top_{k}_accuracy")
}

/// The multiclass metric names a model offers: the family's, plus log loss and top-k accuracy
/// when it has `scored_classes` (> 0) per-class score columns.
pub fn multiclass_names(scored_classes: usize) -> Vec<String> {
    let mut out: Vec<String> = names(Family::Multiclass).map(str::to_string).collect();
    if scored_classes > 0 {
        out.extend(top_ks(scored_classes).into_iter().map(top_k_name));
        out.push("log_loss".into());
    }
    out
}

/// The metric names of a task's picker: for binary, the threshold metrics then the
/// threshold-free ones.
pub fn task_names(task: crate::model::Task, scored_classes: usize) -> Vec<String> {
    use crate::model::Task;
    match task {
        Task::Binary => names(Family::AtThreshold).chain(names(Family::Binary)).map(str::to_string).collect(),
        Task::Multiclass => multiclass_names(scored_classes),
        Task::Regression => names(Family::Regression).map(str::to_string).collect(),
    }
}

/// The family of `name` for a run of `task`, if the run's task has it at all.
pub fn family_of(task: crate::model::Task, name: &str) -> Option<Family> {
    use crate::model::Task;
    let families: &[Family] = match task {
        Task::Binary => &[Family::AtThreshold, Family::Binary],
        Task::Multiclass => &[Family::Multiclass],
        Task::Regression => &[Family::Regression],
    };
    families.iter().copied().find(|f| find(*f, name).is_some())
}

/// Does a run of `task` report `name` for a model with `scored_classes` per-class score columns
/// (0 for a model that only predicts a class)?
pub fn of_task(task: crate::model::Task, name: &str, scored_classes: usize) -> bool {
    use crate::model::Task;
    match task {
        Task::Multiclass => per_class(name) || multiclass_names(scored_classes).iter().any(|n| n == name),
        _ => family_of(task, name).is_some(),
    }
}

/// Is `name` shown at a decision threshold for a run of `task`?
pub fn at_threshold(task: crate::model::Task, name: &str) -> bool {
    family_of(task, name) == Some(Family::AtThreshold)
}

/// The run page's headline metrics for a task (binary: at the 0.5 threshold where a metric
/// needs one); multiclass adds top-2 accuracy and log loss when some model has per-class scores.
pub fn headline_names(task: crate::model::Task, scored: bool) -> Vec<&'static str> {
    use crate::model::Task;
    match task {
        Task::Binary => vec!["accuracy", "auc_roc", "log_loss", "brier_score", "base_rate", "mean_score"],
        Task::Regression => vec!["mae", "rmse", "r2", "mean_residual"],
        Task::Multiclass if scored => vec!["accuracy", "top_2_accuracy", "log_loss"],
        Task::Multiclass => vec!["accuracy"],
    }
}

/// A registry entry as data (`GET /api/v1/metric-registry`): what a client needs to label, sort
/// and judge a metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MetricInfo {
    pub name: String,
    pub display: String,
    pub family: Family,
    pub direction: Direction,
    pub interval: Interval,
    pub fairness: bool,
}

/// Every registry entry as data, in registry order.
pub fn infos() -> Vec<MetricInfo> {
    METRICS
        .iter()
        .map(|m| MetricInfo { name: m.name.into(), display: m.display.into(), family: m.family, direction: m.direction, interval: m.interval, fairness: m.fairness })
        .collect()
}

/// The metrics the fairness view offers, in registry order.
pub fn fairness_names() -> impl Iterator<Item = &'static str> {
    METRICS.iter().filter(|m| m.fairness).map(|m| m.name)
}

/// The confusion-matrix metrics, in registry order (the engine's per-threshold layout).
pub fn confusion_metrics() -> impl Iterator<Item = &'static MetricDef> {
    of_family(Family::AtThreshold)
}

/// Every confusion-matrix metric's value, in registry order.
pub fn confusion_values(c: &Confusion) -> impl Iterator<Item = Option<f64>> + '_ {
    confusion_metrics().map(move |m| match m.finish {
        Finish::Confusion { value, .. } => value(c),
        Finish::Engine => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Task;

    #[test]
    fn names_are_unique_within_a_family_and_mean_the_same_across_families() {
        for (i, a) in METRICS.iter().enumerate() {
            for b in &METRICS[i + 1..] {
                assert!(!(a.name == b.name && a.family == b.family), "{} twice in {:?}", a.name, a.family);
                if a.name == b.name {
                    assert_eq!(a.direction, b.direction, "{}: one name, one direction", a.name);
                }
            }
            if a.family == Family::AtThreshold {
                assert!(matches!(a.finish, Finish::Confusion { .. }), "{} needs a confusion finish", a.name);
                let wilson = matches!(a.finish, Finish::Confusion { trials: Some(_), .. });
                assert_eq!(wilson, a.interval == Interval::Wilson, "{}: a Wilson interval needs trials", a.name);
            }
        }
    }

    #[test]
    fn confusion_metrics_follow_sklearn() {
        let c = Confusion { tp: 30.0, fp: 10.0, tn: 50.0, fn_: 10.0 };
        let v: Vec<(&str, Option<f64>)> = confusion_metrics().map(|m| m.name).zip(confusion_values(&c)).collect();
        let get = |n: &str| v.iter().find(|(m, _)| *m == n).unwrap().1.unwrap();
        assert_eq!(get("accuracy"), 0.8);
        assert_eq!(get("precision"), 0.75);
        assert_eq!(get("fdr"), 0.25);
        assert_eq!(get("for"), 10.0 / 60.0);
        assert_eq!(get("fpr"), 10.0 / 60.0);
        assert_eq!(get("f1"), 60.0 / 80.0);
        assert!((get("mcc") - (30.0 * 50.0 - 100.0) / (40.0f64 * 40.0 * 60.0 * 60.0).sqrt()).abs() < 1e-15);
        let empty = Confusion::default();
        assert!(confusion_values(&empty).all(|x| x.is_none()));
    }

    #[test]
    fn directions_come_from_the_table() {
        for m in ["fdr", "for", "fpr", "fnr", "log_loss", "mae", "mape"] {
            assert_eq!(direction(m), Direction::Lower, "{m}");
        }
        assert_eq!(direction("positive_rate"), Direction::Neither);
        assert_eq!(direction("mean_residual"), Direction::Zero);
        assert_eq!(direction("top_3_accuracy"), Direction::Higher);
        assert_eq!(direction("recall[>50K]"), Direction::Higher);
        assert_eq!(worsening("fdr", 0.3, 0.2), 0.3 - 0.2);
        assert_eq!(worsening("auc_roc", 0.7, 0.8), 0.8 - 0.7);
    }

    #[test]
    fn task_names_and_families() {
        let binary = task_names(Task::Binary, 0);
        assert_eq!(binary.len(), 14 + 7);
        assert!(at_threshold(Task::Binary, "fpr") && !at_threshold(Task::Binary, "auc_roc"));
        assert!(!at_threshold(Task::Multiclass, "accuracy"));
        assert_eq!(multiclass_names(4).iter().filter(|n| top_k(n).is_some()).count(), 2);
        assert!(family_of(Task::Regression, "auc_roc").is_none());
        assert_eq!(family_of(Task::Multiclass, "f1[cat]"), Some(Family::Multiclass));
        assert_eq!(display("top_3_accuracy"), "Top-3 accuracy");
        assert_eq!(display("recall[>50K]"), "Recall [>50K]");
        assert_eq!(fairness_names().count(), 13);
    }
}
