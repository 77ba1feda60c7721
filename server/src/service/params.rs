//! Typed query parameters of the analysis routes, shared by the API handlers and the pages'
//! server functions: one struct per route (documented in the OpenAPI document through
//! `utoipa::IntoParams`), one decoder, the defaults and checks in one place per route.
//!
//! The decoder reads a raw query string, because a page passes its own URL's query to its server
//! function: repeated keys become lists (`slice=sex&slice=race`), an empty value means "the
//! default" (a form's blank field), an unknown key is a 400 that names it, and a value of the wrong
//! type is a 400 that names the key and the value. Keys only a page uses (the chart's metric, the
//! table's sort order) are split off by the page's view before the API's parameters are read, so
//! they never reach the API's structs.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::IntoParams;

use super::ServiceError;

/// The non-empty `(key, value)` pairs of a query string, in order.
pub fn pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.trim_start_matches('?').as_bytes())
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A query split in two: the pairs whose key is in `keys` (or starts with one ending in `.`), and
/// the others.
pub fn split(query: &str, keys: &[&str]) -> (Vec<(String, String)>, Vec<(String, String)>) {
    pairs(query).into_iter().partition(|(k, _)| keys.iter().any(|p| if p.ends_with('.') { k.starts_with(p) } else { k == p }))
}

/// Decodes a query string into `T`; see the module's documentation for the rules.
pub fn decode<T: DeserializeOwned>(query: &str) -> Result<T, ServiceError> {
    decode_pairs(&pairs(query))
}

/// Decodes already split pairs into `T`.
pub fn decode_pairs<T: DeserializeOwned>(pairs: &[(String, String)]) -> Result<T, ServiceError> {
    let mut encoded = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        encoded.append_pair(k, v);
    }
    let encoded = encoded.finish();
    let de = serde_html_form::Deserializer::new(form_urlencoded::parse(encoded.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner().to_string();
        ServiceError::BadRequest(describe(&key, &inner, pairs))
    })
}

/// The 400's text for a decoding error of `key`.
fn describe(key: &str, error: &str, pairs: &[(String, String)]) -> String {
    if let Some(rest) = error.strip_prefix("unknown field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        return format!("unknown parameter '{name}'");
    }
    let key = key.split(['[', '.']).next().unwrap_or(key);
    let value = pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or("");
    if error.contains("float") {
        format!("{key}='{value}' is not a number")
    } else if error.contains("digit") || error.contains("integer") || error.contains("number too large") {
        format!("{key}='{value}' is not a whole number")
    } else if error.contains("bool") {
        format!("{key}='{value}' is not true or false")
    } else {
        format!("{key}: {error}")
    }
}

/// Comma-separated lists in (possibly repeated) values, trimmed, empty items dropped.
pub fn comma_list(values: &[String]) -> Vec<String> {
    values.iter().flat_map(|v| v.split(',')).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// `GET /api/v1/runs/{id}/metrics` and the slices page.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MetricsParams {
    /// The score column (default: the run's first model).
    pub model: Option<String>,
    /// Slicing specs, repeatable (`;` also separates several in one value): a feature (`sex`), a
    /// cross of up to three (`sex,race`), buckets (`age:q5`, `age:w4`, `age:[18,30,45,65]`) or a
    /// filter (`country=US`). At most 10; the overall slice always comes first.
    #[serde(default)]
    pub slice: Vec<String>,
    /// Decision thresholds: `0.3,0.5,0.7` or a grid `start:stop:step` (default `0.5`).
    pub thresholds: Option<String>,
    /// Confidence level of the intervals (default 0.95).
    pub ci: Option<f64>,
    /// `overall` (default) or a filter such as `sex=Male` that every slice is compared with.
    pub baseline: Option<String>,
    /// Slices with fewer rows are reported but not tested (default 1).
    pub min_size: Option<u64>,
    /// Bootstrap replicates (default 200; 0 for Wilson intervals only).
    pub bootstrap: Option<usize>,
    /// Seed of the bootstrap (default 0).
    pub seed: Option<u64>,
    /// False-discovery rate for flagging gaps (default 0.05).
    pub alpha: Option<f64>,
}

/// Keys of the slices page that are not the API's.
pub const SLICES_PAGE_KEYS: &[&str] = &["metric", "sort"];

/// The slices page's own keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlicesPageParams {
    /// The metric the chart shows.
    pub metric: Option<String>,
    /// The table's order (applied in the browser).
    #[allow(dead_code)]
    pub sort: Option<String>,
}

/// `GET /api/v1/runs/{id}/fairness`, `/api/v1/compare` and the fairness page.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FairnessParams {
    /// Score columns to compare (repeatable or comma-separated; default: the first).
    #[serde(default)]
    pub model: Vec<String>,
    /// Runs to compare (`/compare` only): ids, repeatable or comma-separated.
    #[serde(default)]
    pub runs: Vec<String>,
    /// The sensitive feature: a slicing spec (`race`, `sex,race`); default: the first categorical feature.
    pub feature: Option<String>,
    /// Thresholds, 1 to 10 (default `0.3,0.5,0.7`).
    pub thresholds: Option<String>,
    /// Metrics to show (repeatable or comma-separated; default `fpr,tpr,positive_rate`).
    #[serde(default)]
    pub metric: Vec<String>,
    /// `overall` (default) or a group filter such as `race=White`.
    pub baseline: Option<String>,
    /// Groups with fewer rows are shown but not judged (default 30).
    pub min_size: Option<u64>,
    /// Confidence level (default 0.95).
    pub ci: Option<f64>,
    /// Bootstrap replicates (default 200).
    pub bootstrap: Option<usize>,
    pub seed: Option<u64>,
    pub alpha: Option<f64>,
    /// Limits of the criteria, `name:value,…` (default: the run's stored limits).
    pub limits: Option<String>,
    /// The per-group threshold criterion: `equal_opportunity` (default) or `demographic_parity`.
    pub criterion: Option<String>,
    /// Counterfactual flip rates through the attached model (`1`/`true`).
    pub flip: Option<String>,
    /// Rows sampled for the flip rates (10..=20000, default 2000).
    pub flip_sample: Option<usize>,
}

/// Keys of the fairness page and its export that are not the API's (`a` and `b`: the A-vs-B pair).
pub const FAIRNESS_PAGE_KEYS: &[&str] = &["sort", "format", "a", "b"];

/// `GET /api/v1/runs/{id}/residuals` and the residuals page.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ResidualsParams {
    /// The prediction column (default: the first model).
    pub model: Option<String>,
    /// `raw` (default) or `deviance` (binary runs).
    pub kind: Option<String>,
    /// The feature the binned and box charts show (default: the first numeric feature).
    pub feature: Option<String>,
    /// A slicing spec for the bias per slice.
    pub slice: Option<String>,
    /// Bins of the binned charts (default 20).
    pub bins: Option<usize>,
    /// Rows sampled for the scatter and Q–Q charts (default 2000).
    pub sample: Option<usize>,
    /// Lags of the autocorrelation (default 40).
    pub nlags: Option<usize>,
    /// Confidence level (default 0.95; `ci` is accepted too).
    #[serde(alias = "ci")]
    pub level: Option<f64>,
    pub alpha: Option<f64>,
    pub seed: Option<u64>,
}

/// `GET /api/v1/runs/{id}/discover` and the discovery page.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DiscoverParams {
    /// The score column (default: the run's first model).
    pub model: Option<String>,
    /// The metric (binary: `error_rate` (default), `accuracy`, `fpr`, `fnr`, `tpr`, `tnr`,
    /// `precision`, `fdr`, `for`, `log_loss`, `brier_score`, `expected_calibration_error`,
    /// `auc_roc`; regression: `mae` (default), `mse`, `rmse`, `mean_residual`; multiclass:
    /// `error_rate` (default), `accuracy`).
    pub metric: Option<String>,
    /// The decision threshold of metrics at a threshold (default 0.5; `threshold` is accepted too).
    #[serde(alias = "threshold")]
    pub thresholds: Option<f64>,
    /// Features the search may use (repeatable or comma-separated; default: every feature column
    /// with at most 1,000 distinct values, or numeric).
    #[serde(default)]
    pub features: Vec<String>,
    /// Quantile buckets of a numeric feature, 2..=10 (default 5); ranges of buckets are searched too.
    pub buckets: Option<usize>,
    /// Features a slice may combine, 1..=3 (default 3).
    pub level: Option<usize>,
    /// Rows a slice needs (default: 1 % of the rows, at least 30).
    pub min_support: Option<u64>,
    /// Slices reported, 1..=100 (default 20).
    pub top_k: Option<usize>,
    /// False-discovery rate (Benjamini–Yekutieli), default 0.05.
    pub fdr: Option<f64>,
    /// Confidence level of the intervals (default 0.95).
    pub ci: Option<f64>,
    /// `gap` (default: ranked by the lower confidence bound of the gap to the complement) or
    /// `sliceline` (SliceLine's score, additive per-row errors only).
    pub scoring: Option<String>,
    /// SliceLine's α (default 0.95).
    pub alpha: Option<f64>,
    /// Search on a seeded half of the rows and confirm on the other half (`true`/`1`).
    pub holdout: Option<String>,
    pub seed: Option<u64>,
}

/// `GET /api/v1/runs/{id}/drift` and the drift page.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DriftParams {
    /// The reference: a run id, or a window of runs `A,B,C` (stacked); 1 to 20.
    pub reference: Option<String>,
}

/// Keys of the drift page that are not the API's.
pub const DRIFT_PAGE_KEYS: &[&str] = &["feature"];

/// `GET /api/v1/runs/{id}/stream-drift`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamDriftParams {
    /// The score column (default: the first model).
    pub model: Option<String>,
    /// The decision threshold, in [0, 1] (default 0.5).
    pub threshold: Option<f64>,
    /// MD3's margin around the threshold, in [0, 0.5] (default 0.1).
    pub margin: Option<f64>,
}

/// `GET /api/v1/projects/{p}` and the project page.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProjectParams {
    /// The metric to plot (default: `auc_roc` binary, `accuracy` multiclass, `mae` regression).
    pub metric: Option<String>,
    /// The model (default: the first of the newest run).
    pub model: Option<String>,
    /// A slicing spec, or `overall` (default).
    pub slice: Option<String>,
    /// The threshold of a metric at a threshold, in [0, 1] (default 0.5).
    pub threshold: Option<f64>,
    /// One point per `run` (default), or per `week` / `day` of the examples' timestamps.
    pub by: Option<String>,
    /// Confidence level of the bands, in [0.5, 1) (default 0.95).
    pub ci: Option<f64>,
}

/// The what-if page, `GET /api/v1/runs/{id}/pdp` and `…/counterfactual` (`set.<feature>=value`
/// edits an example's feature; those keys are read apart, see [`WHATIF_EDIT_PREFIX`]).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WhatIfParams {
    pub model: Option<String>,
    /// The example's id.
    pub example: Option<String>,
    /// Decision threshold in [0, 1].
    pub threshold: Option<f64>,
    /// Examples browser filter: all (default), correct, incorrect, positive, negative.
    pub filter: Option<String>,
    pub offset: Option<u64>,
    /// The partial-dependence feature (`feature` is accepted too).
    #[serde(alias = "feature")]
    pub pdp: Option<String>,
    /// The scatter's x axis.
    pub x: Option<String>,
    /// Rows sampled for PDP/ICE, 10..=5000 (default 500).
    pub sample: Option<usize>,
    /// Grid points of the PDP, 2..=100 (default 20).
    pub grid: Option<usize>,
    pub seed: Option<u64>,
    pub attack_noise: Option<f64>,
    pub attack_swap: Option<f64>,
    pub attack_slice: Option<String>,
    /// Browser filter: a slice filter spec (`sex=Female`).
    pub slice: Option<String>,
    pub score_min: Option<f64>,
    pub score_max: Option<f64>,
    /// Scatter colour: `label` (default) or `correct`.
    pub color: Option<String>,
    /// Adversarial search (`adv=1`): immutable features (comma-separated), the largest change, a slice spec.
    pub adv: Option<u8>,
    pub adv_immutable: Option<String>,
    pub adv_radius: Option<f64>,
    pub adv_slice: Option<String>,
    /// Attributions of the selected example: `kernel` or `tree`.
    pub explain: Option<String>,
    /// Permutation importance by this metric, per slice of `importance_slice`.
    pub importance: Option<String>,
    pub importance_slice: Option<String>,
}

/// The prefix of the what-if edits' keys.
pub const WHATIF_EDIT_PREFIX: &str = "set.";

/// The what-if parameters and the edits (`set.<feature>=value`, kept even when blank: a blank edit
/// makes the feature missing).
pub fn decode_whatif(query: &str) -> Result<(WhatIfParams, BTreeMap<String, String>), ServiceError> {
    let mut edits = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(query.trim_start_matches('?').as_bytes()) {
        if let Some(feature) = k.strip_prefix(WHATIF_EDIT_PREFIX) {
            edits.insert(feature.to_string(), v.into_owned());
        }
    }
    let (_, rest) = split(query, &[WHATIF_EDIT_PREFIX]);
    Ok((decode_pairs(&rest)?, edits))
}

/// The fairness export's format: `html` (default), `csv` or `json`.
#[derive(Debug, Default, Deserialize)]
pub struct ExportParams {
    pub format: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_blank_values_and_errors() {
        let p: MetricsParams = decode("model=m&slice=sex&slice=race&thresholds=0.3,0.5&ci=&bootstrap=20").unwrap();
        assert_eq!(p.slice, vec!["sex", "race"]);
        assert_eq!(p.model.as_deref(), Some("m"));
        assert_eq!(p.ci, None, "a blank value is the default");
        assert_eq!(p.bootstrap, Some(20));
        let e = |q: &str| match decode::<MetricsParams>(q) {
            Err(ServiceError::BadRequest(m)) => m,
            other => panic!("{q}: {other:?}"),
        };
        assert_eq!(e("colour=red"), "unknown parameter 'colour'");
        assert_eq!(e("ci=high"), "ci='high' is not a number");
        assert_eq!(e("bootstrap=-3"), "bootstrap='-3' is not a whole number");
        assert_eq!(e("metric=fpr"), "unknown parameter 'metric'", "a page's key is not the API's");
    }

    #[test]
    fn page_keys_and_edits_are_split_off() {
        let (page, api) = split("slice=sex&metric=fpr&sort=count&thresholds=0.5", SLICES_PAGE_KEYS);
        let page: SlicesPageParams = decode_pairs(&page).unwrap();
        let api: MetricsParams = decode_pairs(&api).unwrap();
        assert_eq!(page.metric.as_deref(), Some("fpr"));
        assert_eq!(api.slice, vec!["sex"]);
        let (w, edits) = decode_whatif("example=a-1&set.age=41&set.sex=&feature=age").unwrap();
        assert_eq!(w.pdp.as_deref(), Some("age"), "`feature` is an alias of `pdp`");
        assert_eq!(edits.get("age").map(String::as_str), Some("41"));
        assert_eq!(edits.get("sex").map(String::as_str), Some(""), "a blank edit is kept");
        let r: ResidualsParams = decode("ci=0.9").unwrap();
        assert_eq!(r.level, Some(0.9));
    }

    #[test]
    fn comma_lists() {
        assert_eq!(comma_list(&["a, b".into(), "c".into(), ",".into()]), vec!["a", "b", "c"]);
    }
}
