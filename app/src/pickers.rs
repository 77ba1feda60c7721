//! Pickers for the analysis forms (columns with bucket builders, baselines, threshold chips,
//! fairness limits) and errors shown at the field they concern. The pickers write the same URL
//! parameters as the text specs they stand for, so links and the server are unchanged.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::model::{ColumnBrief, ColumnKind};
use crate::server_fns::AppError;

/// A cross has at most three columns (the engine's limit).
pub const MAX_CROSS: usize = 3;

// ---------------------------------------------------------------------------------------------
// Specs: the text the engine parses (`server/src/eval/slicing.rs`), built and read back.

/// How a picked column is cut into slices.
#[derive(Clone, Debug, PartialEq)]
pub enum Bucket {
    /// Every value is a slice (`sex`).
    Values,
    /// `k` quantile buckets (`age:q5`).
    Quantiles(usize),
    /// Buckets between fixed edges (`age:[18,30,45]`).
    Edges(Vec<f64>),
    /// `k` equal-width buckets (`age:w4`).
    Width(usize),
}

/// One column of a slicing and its cut.
#[derive(Clone, Debug, PartialEq)]
pub struct Pick {
    pub column: String,
    pub bucket: Bucket,
}

/// A number as the specs write it: shortest form, no float noise (`0.1`, `18`).
pub fn fmt_num(x: f64) -> String {
    let r = (x * 1e9).round() / 1e9;
    format!("{}", if r == 0.0 { 0.0 } else { r })
}

/// One column's part of a spec: `age`, `age:q5`, `age:w4`, `age:[18,30,45]`.
pub fn pick_text(p: &Pick) -> String {
    match &p.bucket {
        Bucket::Values => p.column.clone(),
        Bucket::Quantiles(k) => format!("{}:q{k}", p.column),
        Bucket::Width(k) => format!("{}:w{k}", p.column),
        Bucket::Edges(e) => format!("{}:[{}]", p.column, e.iter().map(|x| fmt_num(*x)).collect::<Vec<_>>().join(",")),
    }
}

/// The spec of a cross of picked columns (`sex,age:q5`); empty for no column (overall).
pub fn build_spec(picks: &[Pick]) -> String {
    picks.iter().map(pick_text).collect::<Vec<_>>().join(",")
}

/// Edges typed by a user (`18, 30 45`): finite, strictly increasing numbers, at least one.
pub fn parse_edges(text: &str) -> Result<Vec<f64>, String> {
    let parts: Vec<&str> = text.split(|c: char| c == ',' || c.is_whitespace()).filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Err("give at least one edge, e.g. 18, 30, 45".into());
    }
    let mut edges = Vec::with_capacity(parts.len());
    for p in parts {
        match p.parse::<f64>() {
            Ok(x) if x.is_finite() => edges.push(x),
            _ => return Err(format!("'{p}' is not a number; edges are numbers, e.g. 18, 30, 45")),
        }
    }
    if edges.windows(2).any(|w| w[0] >= w[1]) {
        return Err("edges must increase, e.g. 18, 30, 45".into());
    }
    Ok(edges)
}

/// Reads one spec back into picks: `Some(vec![])` for overall, `None` for what the pickers
/// cannot show (filters, conjunctions, malformed text), which stays in the advanced field.
pub fn parse_spec(text: &str) -> Option<Vec<Pick>> {
    let t = text.trim();
    if t.is_empty() || t == "overall" {
        return Some(vec![]);
    }
    if t.contains('=') || t.contains(" in ") || t.contains('&') {
        return None;
    }
    let parts = split_outside_brackets(t);
    if parts.len() > MAX_CROSS {
        return None;
    }
    let count = |k: &str| k.parse::<usize>().ok().filter(|k| (2..=100).contains(k));
    let mut picks: Vec<Pick> = Vec::new();
    for p in parts {
        let (column, bucket) = match p.trim().split_once(':') {
            None => (p.trim(), Bucket::Values),
            Some((c, b)) => {
                let b = b.trim();
                let bucket = if let Some(k) = b.strip_prefix('q') {
                    Bucket::Quantiles(count(k)?)
                } else if let Some(k) = b.strip_prefix('w') {
                    Bucket::Width(count(k)?)
                } else {
                    Bucket::Edges(parse_edges(b.strip_prefix('[')?.strip_suffix(']')?).ok()?)
                };
                (c.trim(), bucket)
            }
        };
        if column.is_empty() || picks.iter().any(|x| x.column == column) {
            return None;
        }
        picks.push(Pick { column: column.to_string(), bucket });
    }
    Some(picks)
}

/// The specs of a `slice` value: `;` separates several (as the server reads them).
pub fn split_specs(text: &str) -> Vec<String> {
    text.split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// A column as the pickers list it: `race · categorical · 5 values`, `age · numeric`.
pub fn column_label(c: &ColumnBrief) -> String {
    let plural = |n: u64| if n == 1 { "1 value".to_string() } else { format!("{n} values") };
    match c.kind {
        ColumnKind::Numeric => format!("{} · numeric", c.name),
        ColumnKind::Categorical => format!("{} · categorical · {}", c.name, plural(c.cardinality)),
        ColumnKind::Boolean => format!("{} · boolean · {}", c.name, plural(c.cardinality)),
        ColumnKind::Timestamp => format!("{} · time", c.name),
    }
}

/// A newly picked column's cut: numeric columns with many values in quartiles, others by value.
pub fn default_bucket(c: &ColumnBrief) -> Bucket {
    if c.kind == ColumnKind::Numeric && c.cardinality > 12 { Bucket::Quantiles(4) } else { Bucket::Values }
}

/// First edges for a numeric column: two round numbers splitting its range in thirds.
pub fn default_edges(min: Option<f64>, max: Option<f64>) -> Vec<f64> {
    let (Some(lo), Some(hi)) = (min, max) else { return vec![0.0] };
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo.max(0.0)];
    }
    let span = hi - lo;
    let unit = 10f64.powf((span / 3.0).log10().floor() - 1.0).max(1e-6);
    let mut edges: Vec<f64> = [1.0, 2.0].iter().map(|k| ((lo + span * k / 3.0) / unit).round() * unit).map(|x| (x * 1e9).round() / 1e9).collect();
    edges.dedup();
    edges
}

/// The columns a filter names (`sex=Female & age in [25, 45)` → sex, age).
pub fn filter_columns(filter: &str) -> Vec<String> {
    filter
        .split(" & ")
        .filter_map(|part| match part.split_once(" in ") {
            Some((c, _)) => Some(c.trim().to_string()),
            None => part.split_once('=').map(|(c, _)| c.trim().to_string()),
        })
        .filter(|c| !c.is_empty())
        .collect()
}

/// The baseline filter for one slice value: `sex=Male`, or a bucket `age in [18, 30)`.
pub fn baseline_filter(column: &str, value: &str) -> String {
    let bucket = (value.starts_with('[') || value.starts_with('(')) && value.ends_with(')') && value.contains(", ");
    if bucket { format!("{column} in {value}") } else { format!("{column}={value}") }
}

/// The baseline kept for a slicing: `overall`, or the given filter when every column it names
/// is one of the slicing's (a group of another feature is not applied silently).
pub fn baseline_for(spec: &str, baseline: &str) -> String {
    let b = baseline.trim();
    if b.is_empty() || b == "overall" {
        return "overall".into();
    }
    let picked: Vec<String> = split_specs(spec)
        .first()
        .and_then(|s| parse_spec(s))
        .map(|p| p.into_iter().map(|p| p.column).collect())
        .unwrap_or_else(|| split_specs(spec).iter().flat_map(|s| filter_columns(s).into_iter().chain(s.split(',').map(|c| c.split(':').next().unwrap_or("").trim().to_string()))).collect());
    let named = filter_columns(b);
    if !named.is_empty() && named.iter().all(|c| picked.contains(c)) { b.to_string() } else { "overall".into() }
}

// ---------------------------------------------------------------------------------------------
// Filters: the rows of one column's values (`sex=Female`, `race in {Black, White}`) or of a
// numeric range (`age in [25, 45)`), as the engine's `Where` conditions write them.

/// A filter the value picker can show: one column, some of its values or a range.
#[derive(Clone, Debug, PartialEq)]
pub enum FilterPick {
    /// The rows whose value is one of these (one value: `col=v`; several: `col in {a, b}`).
    Values { column: String, values: Vec<String> },
    /// `lo <= x < hi`; an end left open is infinite.
    Range { column: String, lo: Option<f64>, hi: Option<f64> },
}

impl FilterPick {
    pub fn column(&self) -> &str {
        match self {
            FilterPick::Values { column, .. } | FilterPick::Range { column, .. } => column,
        }
    }
}

/// Characters a value in a set cannot hold (the engine splits sets on commas).
fn breaks_a_set(v: &str) -> bool {
    v.contains([',', '{', '}']) || v.contains(" & ") || v.trim() != v || v.is_empty()
}

/// A filter's spec: empty for no value and an open range (no filter); an error for a set of
/// values that cannot be written (a value with a comma is chosen alone).
pub fn build_filter(p: &FilterPick) -> Result<String, String> {
    match p {
        FilterPick::Values { values, .. } if values.is_empty() => Ok(String::new()),
        FilterPick::Values { column, values } if values.len() == 1 => Ok(format!("{column}={}", values[0])),
        FilterPick::Values { column, values } => match values.iter().find(|v| breaks_a_set(v)) {
            Some(v) => Err(format!("the value '{v}' cannot be one of several: choose it alone, or write the filter under Advanced")),
            None => Ok(format!("{column} in {{{}}}", values.join(", "))),
        },
        FilterPick::Range { lo: None, hi: None, .. } => Ok(String::new()),
        FilterPick::Range { column, lo, hi } => {
            if let (Some(l), Some(h)) = (lo, hi)
                && l >= h
            {
                return Err(format!("the range of {column} needs from < to"));
            }
            let lo_text = lo.map(|x| format!("[{}", fmt_num(x))).unwrap_or_else(|| "(-inf".into());
            let hi_text = hi.map(fmt_num).unwrap_or_else(|| "inf".into());
            Ok(format!("{column} in {lo_text}, {hi_text})"))
        }
    }
}

/// Reads a filter back for the picker: `Some(None)` for no filter, `Some(Some(_))` for one
/// condition the picker shows, `None` for what only the advanced field shows (conjunctions,
/// slicings, malformed text).
pub fn parse_filter(text: &str) -> Option<Option<FilterPick>> {
    let t = text.trim();
    if t.is_empty() {
        return Some(None);
    }
    if t.contains(" & ") {
        return None;
    }
    if let Some((c, r)) = t.split_once(" in ") {
        let (column, r) = (c.trim().to_string(), r.trim());
        if column.is_empty() {
            return None;
        }
        if let Some(inner) = r.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
            let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
            return (!values.iter().any(String::is_empty)).then_some(Some(FilterPick::Values { column, values }));
        }
        let inner = r.strip_prefix('[').or_else(|| r.strip_prefix('(')).and_then(|r| r.strip_suffix(')'))?;
        let (lo, hi) = inner.split_once(',')?;
        let end = |t: &str, open: &str| -> Option<Option<f64>> {
            match t.trim() {
                x if x == open => Some(None),
                x => x.parse::<f64>().ok().filter(|x| x.is_finite()).map(Some),
            }
        };
        return Some(Some(FilterPick::Range { column, lo: end(lo, "-inf")?, hi: end(hi, "inf")? }));
    }
    let (c, v) = t.split_once('=')?;
    let column = c.trim().to_string();
    (!column.is_empty() && !column.contains(',')).then(|| Some(FilterPick::Values { column, values: vec![v.trim().to_string()] }))
}

/// "did you mean 'a' or 'b'?", else the choices when few (`what` names them), else `many`.
fn suggestion(word: &str, known: &[String], what: &str, many: &str) -> String {
    let close = crate::names::closest(word, known.iter().map(String::as_str));
    if !close.is_empty() {
        format!("did you mean {}?", close.iter().map(|c| format!("'{c}'")).collect::<Vec<_>>().join(" or "))
    } else if known.len() <= 12 {
        format!("{what} {}", known.join(", "))
    } else {
        many.to_string()
    }
}

/// What is wrong with a filter, checked against the run's columns before anything is computed:
/// a column the run lacks, a value the column does not have (when all its values are known), a
/// range on a column that is not numeric. `None` when nothing is known to be wrong.
pub fn check_filter(text: &str, columns: &[ColumnBrief]) -> Option<String> {
    let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
    for part in text.split(" & ").map(str::trim).filter(|p| !p.is_empty()) {
        let Some(Some(pick)) = parse_filter(part) else {
            return Some(format!("'{part}' is not a filter: write column=value, column in {{a, b}} or column in [lo, hi)"));
        };
        let Some(c) = columns.iter().find(|c| c.name == pick.column()) else {
            let tail = suggestion(pick.column(), &names, "the columns are", "choose one from the list");
            return Some(format!("no column '{}'; {tail}", pick.column()));
        };
        match pick {
            FilterPick::Range { .. } if c.kind != ColumnKind::Numeric => return Some(format!("{} is not numeric: choose some of its values instead of a range", c.name)),
            FilterPick::Values { values, .. } if !c.values.is_empty() => {
                if let Some(v) = values.iter().find(|v| !c.values.contains(v)) {
                    return Some(value_hint(&c.name, v, &c.values));
                }
            }
            _ => {}
        }
    }
    None
}

/// The message for a value a column does not have: `no value 'Femal' in sex; did you mean
/// 'Female'?` (the engine's hint for a filter that selects no row says the same).
pub fn value_hint(column: &str, value: &str, values: &[String]) -> String {
    format!("no value '{value}' in {column}; {}", suggestion(value, values, "its values are", &format!("it has {} values", values.len())))
}

// ---------------------------------------------------------------------------------------------
// Thresholds and limits.

/// Thresholds sorted, without repeats, rounded to what a person types.
pub fn normalize_thresholds(mut t: Vec<f64>) -> Vec<f64> {
    t.retain(|x| x.is_finite() && (0.0..=1.0).contains(x));
    for x in t.iter_mut() {
        *x = (*x * 1e6).round() / 1e6;
    }
    t.sort_by(f64::total_cmp);
    t.dedup();
    t
}

/// A comma list of thresholds (`0.3,0.5`); `None` for other text (a `start:stop:step` grid is
/// the server's to expand).
pub fn parse_threshold_list(text: &str) -> Option<Vec<f64>> {
    let t: Vec<f64> = text.split(',').map(str::trim).filter(|p| !p.is_empty()).map(|p| p.parse::<f64>().ok().filter(|x| (0.0..=1.0).contains(x))).collect::<Option<_>>()?;
    (!t.is_empty()).then(|| normalize_thresholds(t))
}

/// The `thresholds` parameter: `0.3,0.5,0.7`.
pub fn thresholds_text(t: &[f64]) -> String {
    t.iter().map(|x| fmt_num(*x)).collect::<Vec<_>>().join(",")
}

/// `start, start + step, …, stop` (inclusive, without float drift).
pub fn grid(start: f64, stop: f64, step: f64) -> Vec<f64> {
    if !(step > 0.0) || stop < start {
        return vec![];
    }
    let n = ((stop - start) / step + 1e-9).floor() as usize;
    normalize_thresholds((0..=n.min(1000)).map(|i| start + step * i as f64).collect())
}

/// The `limits` parameter: `demographic_parity:0.1,disparate_impact:0.8`.
pub fn limits_text(limits: &[(String, f64)]) -> String {
    limits.iter().map(|(n, l)| format!("{n}:{}", fmt_num(*l))).collect::<Vec<_>>().join(",")
}

// ---------------------------------------------------------------------------------------------
// Errors at the field they concern.

/// A rejected request: the message and the URL parameter it is about (empty: the form as a whole).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    /// The message when it is about `field`.
    pub fn about(this: &Option<FieldError>, field: &str) -> Option<String> {
        this.as_ref().filter(|e| e.field == field).map(|e| e.message.clone())
    }
}

/// A server message without the transport's prefixes ("error running server function: …").
pub fn clean_error(message: &str) -> String {
    let mut m = message.trim();
    for prefix in ["error running server function:", "ServerError|", "server error:", "error:"] {
        if let Some(rest) = m.strip_prefix(prefix) {
            m = rest.trim();
        }
    }
    m.to_string()
}

/// Which field a message is about, given the fields' current values (`param`, value): a spec
/// error names the spec it is about, the others name their parameter in words.
pub fn classify_error(message: &str, fields: &[(&str, String)]) -> FieldError {
    let message = clean_error(message);
    let field = |name: &str| name.to_string();
    let spec_field = || fields.iter().find(|(n, _)| *n == "slice" || *n == "feature").map(|(n, _)| field(n)).unwrap_or_else(|| field("slice"));
    let found = if let Some(rest) = message.strip_prefix("slice spec '") {
        let spec = rest.split("': ").next().unwrap_or("").split("' makes").next().unwrap_or("").trim();
        let owner = fields.iter().find(|(n, v)| *n == "baseline" && v.trim() == spec).or_else(|| fields.iter().find(|(n, v)| *n != "baseline" && split_specs(v).iter().any(|s| s == spec)));
        owner.map(|(n, _)| field(n)).unwrap_or_else(spec_field)
    } else if message.starts_with("baseline") {
        field("baseline")
    } else if message.starts_with("limit '") || message.starts_with("unknown criterion") {
        field("limits")
    } else if message.contains("threshold") || message.starts_with("grid '") || message.contains("neither a threshold") {
        field("thresholds")
    } else if message.contains("slice specs") {
        spec_field()
    } else if message.starts_with("model '") {
        field("model")
    } else if message.starts_with("unknown metric") {
        field("metric")
    } else if message.contains("min_size") {
        field("min_size")
    } else {
        String::new()
    };
    FieldError { field: found, message }
}

/// The comma-separated parts of a cross (`sex,age:[18,30,45]`): commas inside brackets stay. The
/// engine's spec parser splits the same way.
pub fn split_outside_brackets(t: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, ch) in t.char_indices() {
        match ch {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&t[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&t[start..]);
    parts
}

/// What a view shows after a request: a good answer is kept as the last good one and shown; when a
/// field was rejected, the last good answer stays (or, on a first load, the view without that field),
/// with a note saying which.
pub fn shown_result<T: Clone + Send + Sync + 'static>(last_good: StoredValue<Option<T>>, v: &T, rejected: bool) -> (T, Option<&'static str>) {
    match (rejected, last_good.get_value()) {
        (false, _) => {
            last_good.set_value(Some(v.clone()));
            (v.clone(), None)
        }
        (true, Some(kept)) => (kept, Some("Below: the last result that worked.")),
        (true, None) => (v.clone(), Some("Below: the view without the rejected field.")),
    }
}

/// A query parameter's values, decoded (`+` and `%XX`).
pub fn query_values(query: &str, key: &str) -> Vec<String> {
    query
        .trim_start_matches('?')
        .split('&')
        .filter_map(|p| p.split_once('=').or(Some((p, ""))))
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| crate::pages::whatif::decode(v))
        .collect()
}

/// The query without `keys`, and without empty parameters (`slice=`, `=`).
pub fn without_params(query: &str, keys: &[&str]) -> String {
    query
        .trim_start_matches('?')
        .split('&')
        .filter(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            !k.is_empty() && !v.is_empty() && !keys.contains(&k)
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Fetches a view; when the server rejects the request, fetches it again without the rejected
/// field (then without any of `form_keys`), so the page keeps its form and a result, and says
/// which field to fix. Other errors (no such run, …) are returned as they are.
pub async fn load_keeping_form<T, F, Fut>(query: String, form_keys: &'static [&'static str], fetch: F) -> Result<(T, Option<FieldError>), AppError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<T, AppError>>,
{
    let message = match fetch(query.clone()).await {
        Ok(v) => return Ok((v, None)),
        Err(AppError::BadRequest(m)) => m,
        Err(e) => return Err(e),
    };
    let fields: Vec<(&str, String)> = form_keys.iter().map(|k| (*k, query_values(&query, k).join("; "))).collect();
    let error = classify_error(&message, &fields);
    let mut tries: Vec<String> = Vec::new();
    if !error.field.is_empty() {
        let mut drop = vec![error.field.as_str()];
        if error.field == "slice" || error.field == "feature" {
            drop.push("baseline");
        }
        tries.push(without_params(&query, &drop));
    }
    tries.push(without_params(&query, form_keys));
    tries.dedup();
    for q in tries.into_iter().filter(|q| *q != query) {
        if let Ok(v) = fetch(q).await {
            return Ok((v, Some(error)));
        }
    }
    Err(AppError::BadRequest(error.message))
}

/// For a GET `<Form>`'s `on_form_data`: drops the entry Leptos adds for an unnamed submit button,
/// which put a bare `&=` into the URL.
pub fn drop_unnamed_entries() -> std::sync::Arc<dyn Fn(&web_sys::FormData)> {
    std::sync::Arc::new(|form: &web_sys::FormData| form.delete(""))
}

/// The user's last choice of a picker (browser storage; nothing on the server).
pub fn recall_choice(key: &str) -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    {
        use wasm_bindgen::JsCast;
        let window = web_sys::window()?;
        let storage = js_sys::Reflect::get(&window, &"localStorage".into()).ok().filter(|s| s.is_object())?;
        let get: js_sys::Function = js_sys::Reflect::get(&storage, &"getItem".into()).ok()?.dyn_into().ok()?;
        get.call1(&storage, &key.into()).ok()?.as_string().filter(|s| !s.trim().is_empty())
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = key;
        None
    }
}

/// Remembers a picker's choice in the browser (see [`recall_choice`]).
pub fn remember_choice(key: &str, value: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        use wasm_bindgen::JsCast;
        let Some(window) = web_sys::window() else { return };
        let Some(storage) = js_sys::Reflect::get(&window, &"localStorage".into()).ok().filter(|s| s.is_object()) else { return };
        let Some(set) = js_sys::Reflect::get(&storage, &"setItem".into()).ok().and_then(|f| f.dyn_into::<js_sys::Function>().ok()) else { return };
        let _ = set.call2(&storage, &key.into(), &value.into());
    }
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (key, value);
}

/// The one rule of every page that remembers a picker: a choice in the URL is remembered; a bare
/// URL (no parameter: a first visit, not a form the user cleared) with no default from the
/// project (its gates' slices) gets the remembered one when it fits this run. Returns the
/// choice to apply, if any.
pub fn choice_to_apply(in_url: &str, bare: bool, project_default: bool, remembered: Option<String>, fits: impl Fn(&str) -> bool) -> Option<String> {
    if !in_url.trim().is_empty() || !bare || project_default {
        return None;
    }
    remembered.filter(|r| !r.trim().is_empty() && fits(r))
}

/// Remembers the URL's choice of `param` under `key`, or returns the URL to open with the
/// remembered one (see [`choice_to_apply`]). Called once a view has loaded without error.
pub fn last_choice(key: &str, path: &str, query: &str, param: &str, project_default: bool, fits: impl Fn(&str) -> bool) -> Option<String> {
    let in_url = query_values(query, param).join("; ");
    if !in_url.trim().is_empty() {
        remember_choice(key, &in_url);
        return None;
    }
    let bare = without_params(query, &[]).is_empty();
    let last = choice_to_apply(&in_url, bare, project_default, recall_choice(key), fits)?;
    Some(format!("{path}?{}", crate::pages::slices::with_param(query, param, &last)))
}

/// Does a slice text name only columns of this run (so a remembered choice applies here)?
pub fn spec_fits(text: &str, columns: &[ColumnBrief]) -> bool {
    let specs = split_specs(text);
    !specs.is_empty()
        && specs.iter().all(|s| match parse_spec(s) {
            Some(picks) => picks.iter().all(|p| columns.iter().any(|c| c.name == p.column && (p.bucket == Bucket::Values || c.kind == ColumnKind::Numeric))),
            None => filter_columns(s).iter().all(|f| columns.iter().any(|c| &c.name == f)),
        })
}

// ---------------------------------------------------------------------------------------------
// Components.

/// A field's error message, referenced by the field's `aria-describedby`.
#[component]
pub fn FieldMessage(id: String, message: Option<String>) -> impl IntoView {
    message.map(|m| view! { <p class="field-error" id=id role="alert">{m}</p> })
}

/// The column picker: "Slice by" and, once a column is chosen, "and by" (up to three, a cross),
/// a bucket builder for each numeric column, and the spec text in an "Advanced" field that is the
/// form's parameter `name` (left out of the URL when empty).
#[component]
pub fn SlicePicker(
    columns: Vec<ColumnBrief>,
    /// The whole parameter text (`;` separates specs; the pickers show the first, and picking
    /// replaces the text).
    spec: RwSignal<String>,
    /// The form parameter (`slice`, `feature`).
    name: &'static str,
    /// The first select's label (`Slice by`, `Groups`).
    label: &'static str,
    /// What the first select offers when nothing is picked.
    #[prop(default = "overall (no slicing)")]
    none_label: &'static str,
    #[prop(default = None)] error: Option<String>,
) -> impl IntoView {
    let columns = StoredValue::new(columns);
    let picks = Memo::new(move |_| parse_spec(split_specs(&spec.get()).first().map(String::as_str).unwrap_or("")));
    // Picking replaces the whole text: several slicings at once are the advanced field's.
    let write = move |p: Vec<Pick>| spec.set(build_spec(&p));
    let more = move || split_specs(&spec.get()).len().saturating_sub(1);
    let error_id = format!("{name}-error");
    let invalid = error.is_some();
    let described = invalid.then(|| error_id.clone());
    let labels = [label, "and by", "and then by"];
    let slots = (0..MAX_CROSS)
        .map(|slot| {
            let described = described.clone();
            let slot_label = labels[slot];
            let current = move || picks.get().and_then(|p| p.get(slot).map(|p| p.column.clone())).unwrap_or_default();
            let set_column = move |column: String| {
                let mut p = picks.get_untracked().unwrap_or_default();
                p.truncate(slot);
                if !column.is_empty() {
                    let bucket = columns.with_value(|cs| cs.iter().find(|c| c.name == column).map(default_bucket)).unwrap_or(Bucket::Values);
                    p.push(Pick { column, bucket });
                }
                write(p);
            };
            let visible = move || slot == 0 || picks.get().is_some_and(|p| p.len() >= slot);
            let options = columns.with_value(|cs| {
                cs.iter()
                    .map(|c| {
                        let (value, text, n) = (c.name.clone(), column_label(c), c.name.clone());
                        let n2 = n.clone();
                        let taken = move || picks.get().is_some_and(|p| p.iter().take(slot).any(|x| x.column == n2));
                        view! { <option value=value selected=move || current() == n disabled=taken>{text}</option> }
                    })
                    .collect_view()
            });
            view! {
                <Show when=visible>
                    <label class="pick">{slot_label}" "
                        <select aria-label=slot_label aria-invalid=(slot == 0 && invalid).then_some("true")
                            aria-describedby=if slot == 0 { described.clone() } else { None }
                            on:change=move |ev| set_column(event_target_value(&ev))>
                            <option value="" selected=move || current().is_empty()>{if slot == 0 { none_label } else { "—" }}</option>
                            {options.clone()}
                        </select>
                    </label>
                    {bucket_builder(columns, picks, slot, write)}
                </Show>
            }
        })
        .collect_view();
    view! {
        <div class="picker slice-picker" role="group" aria-label=format!("{label}: columns")>
            {slots}
            {move || picks.get().is_none().then(|| view! { <span class="muted">"a custom spec: see Advanced"</span> })}
            {move || (more() > 0).then(|| view! { <span class="muted">{format!("and {} more slicing(s): see Advanced", more())}</span> })}
        </div>
        <FieldMessage id=error_id message=error />
        <details class="advanced" open=invalid>
            <summary>"Advanced"</summary>
            <label>{format!("{label} spec ")}
                <input type="text" aria-label=format!("{label} spec") name=move || (!spec.get().trim().is_empty()).then_some(name)
                    placeholder="sex, sex,race, age:q5, age:[18,30,45]; race"
                    aria-invalid=invalid.then_some("true") aria-describedby=described.clone()
                    value=move || spec.get() prop:value=move || spec.get() on:input=move |ev| spec.set(event_target_value(&ev)) />
            </label>
        </details>
    }
}

/// How a numeric picked column is cut: each value, quantiles (count), fixed edges, equal width.
fn bucket_builder(columns: StoredValue<Vec<ColumnBrief>>, picks: Memo<Option<Vec<Pick>>>, slot: usize, write: impl Fn(Vec<Pick>) + Copy + Send + Sync + 'static) -> impl IntoView {
    let edges_error = RwSignal::new(None::<String>);
    let pick = move || picks.get().and_then(|p| p.get(slot).cloned());
    let numeric = move || pick().and_then(|p| columns.with_value(|cs| cs.iter().find(|c| c.name == p.column).cloned())).filter(|c| c.kind == ColumnKind::Numeric);
    let set_bucket = move |bucket: Bucket| {
        if let Some(mut p) = picks.get_untracked() {
            if let Some(x) = p.get_mut(slot) {
                x.bucket = bucket;
                write(p);
            }
        }
    };
    move || {
        let c = numeric()?;
        let bucket = pick()?.bucket;
        let col = c.name.clone();
        let kind = match bucket {
            Bucket::Values => "values",
            Bucket::Quantiles(_) => "quantiles",
            Bucket::Edges(_) => "edges",
            Bucket::Width(_) => "width",
        };
        let (min, max) = (c.min, c.max);
        let on_kind = move |ev: leptos::ev::Event| {
            edges_error.set(None);
            set_bucket(match event_target_value(&ev).as_str() {
                "quantiles" => Bucket::Quantiles(4),
                "edges" => Bucket::Edges(default_edges(min, max)),
                "width" => Bucket::Width(4),
                _ => Bucket::Values,
            })
        };
        let detail = match bucket {
            Bucket::Quantiles(k) | Bucket::Width(k) => {
                let quantiles = matches!(bucket, Bucket::Quantiles(_));
                Some(view! {
                    <input type="number" min="2" max="100" step="1" class="count" aria-label=format!("Number of buckets of {col}") value=k.to_string()
                        on:change=move |ev| {
                            let k = event_target_value(&ev).parse::<usize>().unwrap_or(4).clamp(2, 100);
                            set_bucket(if quantiles { Bucket::Quantiles(k) } else { Bucket::Width(k) });
                        } />
                }.into_any())
            }
            Bucket::Edges(e) => {
                let id = format!("edges-{slot}-error");
                let on_edges = move |ev: leptos::ev::Event| match parse_edges(&event_target_value(&ev)) {
                    Ok(e) => {
                        edges_error.set(None);
                        set_bucket(Bucket::Edges(e));
                    }
                    Err(m) => edges_error.set(Some(m)),
                };
                let text = e.iter().map(|x| fmt_num(*x)).collect::<Vec<_>>().join(", ");
                Some(view! {
                    <input type="text" class="edges" aria-label=format!("Edges of {col}") placeholder="18, 30, 45"
                        value=text
                        aria-invalid=move || edges_error.get().map(|_| "true") aria-describedby=id.clone()
                        on:change=on_edges />
                    <span class="field-error" id=id role="alert">{move || edges_error.get()}</span>
                }.into_any())
            }
            Bucket::Values => None,
        };
        Some(view! {
            <span class="bucket-builder">
                <select aria-label=format!("Buckets of {}", c.name) on:change=on_kind>
                    {[("values", "each value"), ("quantiles", "quantiles"), ("edges", "fixed edges"), ("width", "equal width")].into_iter()
                        .map(|(v, t)| view! { <option value=v selected=v == kind>{t}</option> }).collect_view()}
                </select>
                {detail}
            </span>
        })
    }
}

/// The value picker of a filter: a column, then some of its values (checkboxes; the most
/// frequent ones for a column with many) or, for a numeric column, a range. The filter text is
/// the "Advanced" field, the form parameter `name`; what is wrong with it is said at the field
/// as it is chosen or typed (a value the column lacks, with the one meant).
#[component]
pub fn FilterPicker(
    columns: Vec<ColumnBrief>,
    /// The filter text (`sex=Female`, `race in {Black, White}`, `age in [25, 45)`).
    spec: RwSignal<String>,
    /// The form parameter (`slice`).
    name: &'static str,
    /// The column select's label (`Only slice`).
    label: &'static str,
    /// The server's word on the filter (a rejected filter, or a value no row has).
    #[prop(default = None)]
    error: Option<String>,
) -> impl IntoView {
    let columns = StoredValue::new(columns);
    let picked = Memo::new(move |_| parse_filter(&spec.get()));
    // The column chosen before any value is (the filter text is empty then).
    let chosen = RwSignal::new(picked.get_untracked().flatten().map(|p| p.column().to_string()).unwrap_or_default());
    let column = Memo::new(move |_| match picked.get() {
        Some(Some(p)) => p.column().to_string(),
        Some(None) => chosen.get(),
        None => String::new(),
    });
    let brief = Memo::new(move |_| columns.with_value(|cs| cs.iter().find(|c| c.name == column.get()).cloned()));
    let note = RwSignal::new(None::<String>);
    // Checked in the browser first; the server's message when the browser finds nothing.
    let server_error = StoredValue::new((error, spec.get_untracked()));
    let problem = Memo::new(move |_| {
        let text = spec.get();
        note.get()
            .or_else(|| columns.with_value(|cs| check_filter(&text, cs)))
            .or_else(|| server_error.with_value(|(e, at)| e.clone().filter(|_| *at == text)))
    });
    let id = format!("{name}-error");
    let write = move |p: FilterPick| match build_filter(&p) {
        Ok(t) => {
            note.set(None);
            spec.set(t);
        }
        Err(m) => note.set(Some(m)),
    };
    let set_column = move |c: String| {
        note.set(None);
        chosen.set(c);
        spec.set(String::new());
    };
    let values_view = move || {
        let c = brief.get()?;
        if c.kind == ColumnKind::Numeric {
            let (lo, hi) = match picked.get() {
                Some(Some(FilterPick::Range { lo, hi, .. })) => (lo, hi),
                _ => (None, None),
            };
            let col = c.name.clone();
            let set_end = move |which: &'static str, text: String| {
                let x = text.trim().parse::<f64>().ok().filter(|x| x.is_finite());
                let (mut lo, mut hi) = match picked.get_untracked() {
                    Some(Some(FilterPick::Range { lo, hi, .. })) => (lo, hi),
                    _ => (None, None),
                };
                if which == "lo" { lo = x } else { hi = x }
                write(FilterPick::Range { column: col.clone(), lo, hi });
            };
            let set_lo = set_end.clone();
            let place = |x: Option<f64>| x.map(fmt_num).unwrap_or_default();
            return Some(view! {
                <span class="filter-range" role="group" aria-label=format!("Range of {}", c.name)>
                    <label>"from " <input type="number" step="any" class="count" aria-label=format!("{} from", c.name) placeholder=place(c.min)
                        value=lo.map(fmt_num).unwrap_or_default() on:change=move |ev| set_lo("lo", event_target_value(&ev)) /></label>
                    <label>"to (excl.) " <input type="number" step="any" class="count" aria-label=format!("{} to", c.name) placeholder=place(c.max)
                        value=hi.map(fmt_num).unwrap_or_default() on:change=move |ev| set_end("hi", event_target_value(&ev)) /></label>
                </span>
            }.into_any());
        }
        let all = c.pickable_values().to_vec();
        let partial = c.values.is_empty();
        let col = c.name.clone();
        let boxes = all.iter().map(|v| {
            let (v1, v2, col) = (v.clone(), v.clone(), col.clone());
            let all = all.clone();
            let checked = Memo::new(move |_| matches!(picked.get(), Some(Some(FilterPick::Values { values, .. })) if values.contains(&v1)));
            let toggle = move |ev: leptos::ev::Event| {
                let on = event_target_checked(&ev);
                let mut now = match picked.get_untracked() {
                    Some(Some(FilterPick::Values { values, .. })) => values,
                    _ => vec![],
                };
                now.retain(|x| *x != v2);
                if on {
                    now.push(v2.clone());
                }
                // The column's order, whatever the order of clicks.
                // A value the column lacks (a typo in the URL) goes; one beyond the most frequent stays.
                let mut ordered: Vec<String> = all.iter().filter(|x| now.contains(x)).cloned().collect();
                if partial {
                    ordered.extend(now.into_iter().filter(|x| !all.contains(x)));
                }
                write(FilterPick::Values { column: col.clone(), values: ordered });
            };
            view! { <label class="value-option"><input type="checkbox" value=v.clone() checked=checked prop:checked=checked on:change=toggle />{v.clone()}</label> }
        }).collect_view();
        Some(view! {
            <fieldset class="value-select">
                <legend>{if partial { format!("Values of {} (the {} most frequent of {})", c.name, all.len(), c.cardinality) } else { format!("Values of {}", c.name) }}</legend>
                <div class="value-options">{boxes}</div>
            </fieldset>
        }.into_any())
    };
    view! {
        <div class="picker filter-picker" role="group" aria-label=format!("{label}: filter")>
            <label class="pick">{label}" "
                <select aria-label=label aria-invalid=move || problem.get().map(|_| "true") aria-describedby=id.clone()
                    on:change=move |ev| set_column(event_target_value(&ev))>
                    <option value="" selected=move || column.get().is_empty()>"— all examples —"</option>
                    {columns.with_value(|cs| cs.iter().map(|c| {
                        let n = c.name.clone();
                        view! { <option value=c.name.clone() selected=move || column.get() == n>{column_label(c)}</option> }
                    }).collect_view())}
                </select>
            </label>
            {values_view}
            {move || picked.get().is_none().then(|| view! { <span class="muted">"a custom filter: see Advanced"</span> })}
        </div>
        <p class="field-error" id=id.clone() role="alert" data-testid=format!("{name}-error")>{move || problem.get()}</p>
        <details class="advanced" open=picked.get_untracked().is_none()>
            <summary>"Advanced"</summary>
            <label>{format!("{label} filter ")}
                <input type="text" aria-label=format!("{label} filter") name=move || (!spec.get().trim().is_empty()).then_some(name)
                    placeholder="sex=Female, race in {Black, White}, age in [25, 45)"
                    aria-invalid=move || problem.get().map(|_| "true") aria-describedby=id.clone()
                    value=move || spec.get() prop:value=move || spec.get() on:input=move |ev| { note.set(None); spec.set(event_target_value(&ev)) } />
            </label>
        </details>
    }
}

/// The baseline: `overall` or a value of one of the slicing's columns (a cross offers single-column
/// values). A baseline of a column no longer picked falls back to `overall`.
#[component]
pub fn BaselinePicker(
    columns: Vec<ColumnBrief>,
    /// The slicing text the baseline belongs to.
    #[prop(into)]
    spec: Signal<String>,
    /// The chosen filter (`overall`, `sex=Male`).
    value: RwSignal<String>,
    /// Values of the slicing's columns seen in the last result (buckets, large categoricals).
    #[prop(optional)]
    seen: Vec<(String, String)>,
    #[prop(default = None)] error: Option<String>,
) -> impl IntoView {
    let columns = StoredValue::new(columns);
    let seen = StoredValue::new(seen);
    let effective = Memo::new(move |_| baseline_for(&spec.get(), &value.get()));
    let options = Memo::new(move |_| {
        let picks = split_specs(&spec.get()).first().and_then(|s| parse_spec(s)).unwrap_or_default();
        let mut out: Vec<String> = Vec::new();
        for p in &picks {
            let listed = if p.bucket == Bucket::Values { columns.with_value(|cs| cs.iter().find(|c| c.name == p.column).map(|c| c.values.clone())).unwrap_or_default() } else { vec![] };
            let from_result: Vec<String> = seen.with_value(|s| s.iter().filter(|(c, _)| *c == p.column).map(|(_, v)| v.clone()).collect());
            for v in if listed.is_empty() { from_result } else { listed } {
                let f = baseline_filter(&p.column, &v);
                if !out.contains(&f) {
                    out.push(f);
                }
            }
        }
        let current = effective.get();
        if current != "overall" && !out.contains(&current) {
            out.insert(0, current);
        }
        out
    });
    // Several values of one column as the baseline (`race in {Black, White}`): the values of the
    // slicing's first column cut by value.
    let set_values = Memo::new(move |_| {
        let picks = split_specs(&spec.get()).first().and_then(|s| parse_spec(s)).unwrap_or_default();
        let p = picks.into_iter().find(|p| p.bucket == Bucket::Values)?;
        let listed = columns.with_value(|cs| cs.iter().find(|c| c.name == p.column).map(|c| c.values.clone())).unwrap_or_default();
        let values = if listed.is_empty() { seen.with_value(|s| s.iter().filter(|(c, _)| *c == p.column).map(|(_, v)| v.clone()).collect()) } else { listed };
        (values.len() >= 2).then_some((p.column, values))
    });
    let set_note = RwSignal::new(None::<String>);
    let in_set = move |v: &str| match parse_filter(&effective.get()) {
        Some(Some(FilterPick::Values { column, values })) => set_values.get().is_some_and(|(c, _)| c == column) && values.iter().any(|x| x == v),
        _ => false,
    };
    let set_view = move || {
        let (column, values) = set_values.get()?;
        let boxes = values.iter().map(|v| {
            let (v1, v2, column, values) = (v.clone(), v.clone(), column.clone(), values.clone());
            let checked = Memo::new(move |_| in_set(&v1));
            let toggle = move |ev: leptos::ev::Event| {
                let on = event_target_checked(&ev);
                let now: Vec<String> = values.iter().filter(|x| if **x == v2 { on } else { in_set(x) }).cloned().collect();
                match build_filter(&FilterPick::Values { column: column.clone(), values: now }) {
                    Ok(f) => {
                        set_note.set(None);
                        value.set(if f.is_empty() { "overall".into() } else { f });
                    }
                    Err(m) => set_note.set(Some(m)),
                }
            };
            view! { <label class="value-option"><input type="checkbox" checked=checked prop:checked=checked on:change=toggle />{v.clone()}</label> }
        }).collect_view();
        let open = matches!(parse_filter(&effective.get_untracked()), Some(Some(FilterPick::Values { values, .. })) if values.len() > 1);
        Some(view! {
            <details class="baseline-set" open=open>
                <summary>{format!("Several values of {column} as the baseline")}</summary>
                <fieldset class="value-select">
                    <legend>{format!("Baseline values of {column}")}</legend>
                    <div class="value-options">{boxes}</div>
                </fieldset>
                <span class="field-error" role="alert">{move || set_note.get()}</span>
            </details>
        })
    };
    let invalid = error.is_some();
    view! {
        <label>"Baseline "
            <select aria-label="Baseline" name=move || (effective.get() != "overall").then_some("baseline")
                aria-invalid=invalid.then_some("true") aria-describedby=invalid.then_some("baseline-error")
                on:change=move |ev| value.set(event_target_value(&ev))>
                <option value="overall" selected=move || effective.get() == "overall" prop:selected=move || effective.get() == "overall">"overall"</option>
                {move || options.get().into_iter().map(|f| { let (f2, f3) = (f.clone(), f.clone()); view! {
                    <option value=f.clone() selected=move || effective.get() == f2 prop:selected=move || effective.get() == f3>{f.replace('=', " = ")}</option>
                }}).collect_view()}
            </select>
        </label>
        {set_view}
        <FieldMessage id="baseline-error".to_string() message=error />
    }
}

/// Threshold chips: each chosen threshold with × to remove it, a field to add one, and a grid
/// shortcut (0.1 … 0.9). Writes `name` as `0.3,0.5,0.7`.
#[component]
pub fn ThresholdChips(
    values: RwSignal<Vec<f64>>,
    #[prop(default = "thresholds")] name: &'static str,
    /// Most thresholds the view accepts.
    #[prop(default = 1001)]
    max: usize,
    #[prop(default = None)] error: Option<String>,
) -> impl IntoView {
    let draft = RwSignal::new(String::new());
    let note = RwSignal::new(None::<String>);
    let add = move || {
        let text = draft.get_untracked();
        match text.trim().parse::<f64>() {
            Ok(x) if (0.0..=1.0).contains(&x) => {
                let mut v = values.get_untracked();
                v.push(x);
                let v = normalize_thresholds(v);
                if v.len() > max {
                    note.set(Some(format!("at most {max} thresholds")));
                    return;
                }
                values.set(v);
                draft.set(String::new());
                note.set(None);
            }
            _ => note.set(Some(format!("'{}' is not a threshold between 0 and 1", text.trim()))),
        }
    };
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Enter" {
            ev.prevent_default();
            add();
        }
    };
    let grid_click = move |_| {
        values.set(grid(0.1, 0.9, 0.1).into_iter().take(max).collect());
        note.set(None);
    };
    let invalid = error.is_some();
    let id = format!("{name}-error");
    view! {
        <div class="picker threshold-chips" role="group" aria-label="Thresholds">
            <span class="pick-label">"Thresholds"</span>
            <ul class="chips">
                {move || values.get().into_iter().map(|t| view! {
                    <li class="chip">{fmt_num(t)}
                        <button type="button" class="chip-remove" aria-label=format!("Remove threshold {}", fmt_num(t))
                            on:click=move |_| values.update(|v| v.retain(|x| *x != t))>"×"</button>
                    </li>
                }).collect_view()}
            </ul>
            <input type="number" min="0" max="1" step="0.05" class="count" aria-label="Add threshold" placeholder="0.5"
                aria-invalid=move || (invalid || note.get().is_some()).then_some("true") aria-describedby=id.clone()
                prop:value=move || draft.get() on:input=move |ev| draft.set(event_target_value(&ev))
                on:keydown=on_key />
            <button type="button" on:click=move |_| add()>"Add"</button>
            <button type="button" title="0.1, 0.2, …, 0.9" on:click=grid_click>"Grid 0.1–0.9"</button>
            <input type="hidden" name=move || (!values.get().is_empty()).then_some(name) value=move || thresholds_text(&values.get()) />
            <span class="field-error" id=id role="alert">{move || note.get().or_else(|| error.clone())}</span>
        </div>
    }
}

/// One number per fairness criterion; writes the `limits` parameter (`name:limit,…`) when it
/// differs from the limits in force (or `always`).
#[component]
pub fn LimitsEditor(
    limits: RwSignal<Vec<(String, f64)>>,
    /// Write the parameter even unchanged (the URL named limits).
    #[prop(optional)]
    always: bool,
    #[prop(default = None)] error: Option<String>,
) -> impl IntoView {
    let initial = limits_text(&limits.get_untracked());
    let invalid = error.is_some();
    let rows = limits
        .get_untracked()
        .into_iter()
        .enumerate()
        .map(|(i, (criterion, limit))| {
            let words = criterion.replace('_', " ");
            let sign = if criterion == "disparate_impact" { "≥" } else { "≤" };
            let on_limit = move |ev: leptos::ev::Event| {
                if let Ok(x) = event_target_value(&ev).parse::<f64>() {
                    limits.update(|l| {
                        if let Some(row) = l.get_mut(i) {
                            row.1 = x.clamp(0.0, 1.0);
                        }
                    });
                }
            };
            view! {
                <label class="limit">{format!("{words} {sign} ")}
                    <input type="number" min="0" max="1" step="0.01" class="count" aria-label=format!("Limit for {words}")
                        aria-invalid=invalid.then_some("true") aria-describedby=invalid.then_some("limits-error")
                        value=fmt_num(limit)
                        on:change=on_limit />
                </label>
            }
        })
        .collect_view();
    view! {
        <fieldset class="controls limits-editor"><legend>"Limits"</legend>
            {rows}
            <input type="hidden" name=move || (always || limits_text(&limits.get()) != initial).then_some("limits") value=move || limits_text(&limits.get()) />
        </fieldset>
        <FieldMessage id="limits-error".to_string() message=error />
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, kind: ColumnKind, cardinality: u64, values: &[&str]) -> ColumnBrief {
        ColumnBrief { name: name.into(), kind, cardinality, min: Some(17.0), max: Some(90.0), values: values.iter().map(|v| v.to_string()).collect(), top_values: vec![] }
    }

    #[test]
    fn specs_are_built_in_the_engines_syntax() {
        let p = |c: &str, b| Pick { column: c.into(), bucket: b };
        assert_eq!(build_spec(&[]), "");
        assert_eq!(build_spec(&[p("race", Bucket::Values)]), "race");
        assert_eq!(build_spec(&[p("sex", Bucket::Values), p("age", Bucket::Quantiles(5))]), "sex,age:q5");
        assert_eq!(build_spec(&[p("age", Bucket::Edges(vec![18.0, 30.5, 45.0]))]), "age:[18,30.5,45]");
        assert_eq!(build_spec(&[p("hours", Bucket::Width(4)), p("sex", Bucket::Values), p("race", Bucket::Values)]), "hours:w4,sex,race");
    }

    #[test]
    fn specs_read_back_into_picks_or_stay_custom() {
        for text in ["race", "sex,age:q5", "age:[18,30.5,45]", "hours:w4,sex,race"] {
            assert_eq!(build_spec(&parse_spec(text).unwrap()), text);
        }
        assert_eq!(parse_spec(" overall "), Some(vec![]));
        assert_eq!(parse_spec("age:[18, 30, 45]").unwrap()[0].bucket, Bucket::Edges(vec![18.0, 30.0, 45.0]));
        for custom in ["sex=Male", "sex=Female & age in [25, 45)", "a,b,c,d", "age:q1", "age:[30,18]", "age:x", "sex,sex"] {
            assert_eq!(parse_spec(custom), None, "{custom}");
        }
    }

    #[test]
    fn edges_are_validated() {
        assert_eq!(parse_edges("18, 30 45"), Ok(vec![18.0, 30.0, 45.0]));
        assert!(parse_edges("").is_err());
        assert!(parse_edges("18, thirty").unwrap_err().contains("'thirty' is not a number"));
        assert!(parse_edges("30, 18").unwrap_err().contains("increase"));
        assert!(parse_edges("1, inf").is_err());
    }

    #[test]
    fn several_specs_split_on_semicolons() {
        assert_eq!(split_specs(" race ;; sex,age:q4 "), vec!["race", "sex,age:q4"]);
        assert!(split_specs(" ; ").is_empty());
    }

    #[test]
    fn columns_are_labelled_with_type_and_cardinality() {
        assert_eq!(column_label(&col("race", ColumnKind::Categorical, 5, &[])), "race · categorical · 5 values");
        assert_eq!(column_label(&col("age", ColumnKind::Numeric, 73, &[])), "age · numeric");
        assert_eq!(default_bucket(&col("age", ColumnKind::Numeric, 73, &[])), Bucket::Quantiles(4));
        assert_eq!(default_bucket(&col("children", ColumnKind::Numeric, 4, &[])), Bucket::Values);
        let e = default_edges(Some(17.0), Some(90.0));
        assert_eq!(e.len(), 2);
        assert!(e[0] > 17.0 && e[0] < e[1] && e[1] < 90.0, "{e:?}");
    }

    #[test]
    fn a_baseline_of_another_feature_is_dropped() {
        assert_eq!(baseline_for("race", "race=White"), "race=White");
        assert_eq!(baseline_for("sex", "race=White"), "overall");
        assert_eq!(baseline_for("sex,race", "race=White"), "race=White");
        assert_eq!(baseline_for("age:q4", "age in [18, 30)"), "age in [18, 30)");
        assert_eq!(baseline_for("race", ""), "overall");
        assert_eq!(baseline_filter("age", "[18, 30)"), "age in [18, 30)");
        assert_eq!(baseline_filter("age", "(-inf, 18)"), "age in (-inf, 18)");
        assert_eq!(baseline_filter("sex", "Male"), "sex=Male");
    }

    #[test]
    fn thresholds_and_limits_write_todays_syntax() {
        assert_eq!(grid(0.1, 0.9, 0.1), vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]);
        assert_eq!(thresholds_text(&grid(0.1, 0.9, 0.1)), "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9");
        assert_eq!(parse_threshold_list("0.7, 0.3,0.3"), Some(vec![0.3, 0.7]));
        assert_eq!(parse_threshold_list("0:1:0.1"), None);
        assert_eq!(parse_threshold_list("1.5"), None);
        assert_eq!(limits_text(&[("demographic_parity".into(), 0.1), ("disparate_impact".into(), 0.8)]), "demographic_parity:0.1,disparate_impact:0.8");
    }

    #[test]
    fn errors_are_placed_at_their_field_without_the_transport_prefix() {
        let fields = |slice: &str, baseline: &str| vec![("slice", slice.to_string()), ("baseline", baseline.to_string()), ("thresholds", "0.5".to_string())];
        let e = classify_error("error running server function: slice spec 'gender': column 'gender' is not in the run; did you mean 'sex'?", &fields("gender", ""));
        assert_eq!(e.field, "slice");
        assert_eq!(e.message, "slice spec 'gender': column 'gender' is not in the run; did you mean 'sex'?");
        assert_eq!(classify_error("slice spec 'sexx=Male': column 'sexx' is not in the run", &fields("sex", "sexx=Male")).field, "baseline");
        assert_eq!(classify_error("slice spec 'race,sex': x", &[("feature", "race,sex".into())]).field, "feature");
        assert_eq!(classify_error("threshold 'x' is not a number", &fields("", "")).field, "thresholds");
        assert_eq!(classify_error("limit 'dp:x': 'x' is not a number", &[]).field, "limits");
        assert_eq!(classify_error("unknown criterion 'dp' (one of: …)", &[]).field, "limits");
        assert_eq!(classify_error("baseline 'x' must be 'overall' or a filter", &[]).field, "baseline");
        assert_eq!(classify_error("the database is unavailable", &[]).field, "");
    }

    #[test]
    fn queries_lose_the_rejected_field_and_empty_parameters() {
        assert_eq!(without_params("slice=gendr&model=m&baseline=&=&metric=fpr", &["slice"]), "model=m&metric=fpr");
        assert_eq!(query_values("slice=sex%2Crace&slice=age%3Aq4&x=1", "slice"), vec!["sex,race", "age:q4"]);
        assert_eq!(query_values("baseline=race+%3D+White", "baseline"), vec!["race = White"]);
    }

    #[test]
    fn a_remembered_choice_applies_only_to_runs_with_its_columns() {
        let cols = vec![col("race", ColumnKind::Categorical, 5, &["White"]), col("age", ColumnKind::Numeric, 73, &[])];
        assert!(spec_fits("race; age:q4", &cols));
        assert!(!spec_fits("gender", &cols));
        assert!(!spec_fits("race:q4", &cols));
        assert!(!spec_fits("", &cols));
    }
    #[test]
    fn filters_are_built_and_read_back() {
        let v = |c: &str, vs: &[&str]| FilterPick::Values { column: c.into(), values: vs.iter().map(|x| x.to_string()).collect() };
        assert_eq!(build_filter(&v("sex", &[])).unwrap(), "");
        assert_eq!(build_filter(&v("sex", &["Female"])).unwrap(), "sex=Female");
        assert_eq!(build_filter(&v("race", &["Black", "White"])).unwrap(), "race in {Black, White}");
        assert!(build_filter(&v("city", &["Paris, TX", "Rome"])).unwrap_err().contains("'Paris, TX'"));
        assert_eq!(build_filter(&v("city", &["Paris, TX"])).unwrap(), "city=Paris, TX", "alone, any value");
        let r = |lo, hi| FilterPick::Range { column: "age".into(), lo, hi };
        assert_eq!(build_filter(&r(Some(25.0), Some(45.0))).unwrap(), "age in [25, 45)");
        assert_eq!(build_filter(&r(None, Some(30.5))).unwrap(), "age in (-inf, 30.5)");
        assert_eq!(build_filter(&r(Some(65.0), None)).unwrap(), "age in [65, inf)");
        assert_eq!(build_filter(&r(None, None)).unwrap(), "");
        assert!(build_filter(&r(Some(45.0), Some(25.0))).is_err());
        for text in ["sex=Female", "race in {Black, White}", "age in [25, 45)", "age in (-inf, 30.5)", "age in [65, inf)"] {
            let p = parse_filter(text).unwrap().unwrap();
            assert_eq!(build_filter(&p).unwrap(), text);
        }
        assert_eq!(parse_filter("  "), Some(None));
        assert_eq!(parse_filter("sex=F & age in [1, 2)"), None, "a conjunction is the advanced field's");
        assert_eq!(parse_filter("sex"), None);
        assert_eq!(parse_filter("age in [x, 2)"), None);
    }

    #[test]
    fn a_typo_in_a_filter_is_found_with_the_value_meant() {
        let cols = vec![
            col("sex", ColumnKind::Categorical, 2, &["Female", "Male"]),
            col("race", ColumnKind::Categorical, 3, &["Black", "Other", "White"]),
            col("age", ColumnKind::Numeric, 73, &[]),
            ColumnBrief { top_values: vec!["US".into()], ..col("country", ColumnKind::Categorical, 80, &[]) },
        ];
        assert_eq!(check_filter("sex=Femal", &cols).as_deref(), Some("no value 'Femal' in sex; did you mean 'Female'?"));
        assert_eq!(check_filter("race in {Black, Whit}", &cols).as_deref(), Some("no value 'Whit' in race; did you mean 'White'?"));
        assert_eq!(check_filter("sex=zzzzzz", &cols).as_deref(), Some("no value 'zzzzzz' in sex; its values are Female, Male"));
        assert_eq!(check_filter("gendr=Female", &cols).as_deref(), Some("no column 'gendr'; the columns are sex, race, age, country"));
        assert_eq!(check_filter("sexx=Female", &cols).as_deref(), Some("no column 'sexx'; did you mean 'sex'?"));
        assert!(check_filter("sex in [1, 2)", &cols).unwrap().contains("not numeric"));
        assert!(check_filter("sex", &cols).unwrap().contains("is not a filter"));
        for fine in ["", "sex=Female", "race in {Black, White} & age in [25, 45)", "country=Narnia"] {
            assert_eq!(check_filter(fine, &cols), None, "{fine}: a column with many values is the server's to check");
        }
    }

    #[test]
    fn the_last_choice_applies_only_without_one_in_the_url_or_the_project() {
        let fits = |s: &str| s != "gender";
        assert_eq!(choice_to_apply("", true, false, Some("race".into()), fits), Some("race".into()));
        assert_eq!(choice_to_apply("sex", true, false, Some("race".into()), fits), None, "the URL wins");
        assert_eq!(choice_to_apply("", false, false, Some("race".into()), fits), None, "a form submitted without it: cleared on purpose");
        assert_eq!(choice_to_apply("", true, true, Some("race".into()), fits), None, "the project's gates win");
        assert_eq!(choice_to_apply("", true, false, Some("gender".into()), fits), None, "not for a run without its columns");
        assert_eq!(choice_to_apply("", true, false, Some(" ".into()), fits), None);
        assert_eq!(choice_to_apply("", true, false, None, fits), None);
    }
}
