//! Slice specs (`sex`, `sex,race`, `age:q5`, `age:[18,30,45,65]`, `age:w4`, `country=US`, and
//! conjunctions `sex=Female & age in [25, 45)`, value sets `race in {Black, White}`) and the assignment of every row to its slice of a spec. A slice key is a list of (feature, value)
//! pairs, as in TFMA; the overall slice has the empty key. Missing values form their own slice.

use std::collections::HashMap;

use polars::prelude::*;

/// The key of one slice: (column, value) pairs in spec order.
pub type SliceKey = Vec<(String, String)>;

/// The label of missing values in slice keys.
pub const MISSING: &str = "(missing)";

/// How one feature of a spec is cut into slices.
#[derive(Clone, Debug, PartialEq)]
pub enum Cut {
    /// Every distinct value is a slice.
    Values,
    /// `k` quantile buckets of a numeric feature.
    Quantiles(usize),
    /// Buckets between fixed edges: (-inf, e0), [e0, e1), …, [en, inf).
    Edges(Vec<f64>),
    /// `k` equal-width buckets between the feature's min and max.
    Width(usize),
}

/// One slicing spec of a request.
#[derive(Clone, Debug, PartialEq)]
pub enum SliceSpec {
    Overall,
    /// One feature, or a cross of two or three.
    Features(Vec<(String, Cut)>),
    /// The rows where `column` equals `value` (compared as text).
    Filter { column: String, value: String },
    /// The rows meeting every condition (`sex=Female & age in [25, 45)`): one slice, keyed by
    /// the conditions (a range by its interval label). What slice discovery finds.
    Where(Vec<Cond>),
}

/// One condition of a [`SliceSpec::Where`].
#[derive(Clone, Debug, PartialEq)]
pub enum Cond {
    /// The column equals the value, compared as text (`(missing)` matches missing values).
    Eq { column: String, value: String },
    /// `lo <= x < hi` for a numeric column (either end may be infinite); missing values are out.
    Range { column: String, lo: f64, hi: f64 },
    /// The column equals one of the values, compared as text (`race in {Black, White}`; values
    /// are separated by commas, so a value with a comma is written alone with `=`).
    OneOf { column: String, values: Vec<String> },
}

impl Cond {
    pub fn column(&self) -> &str {
        match self {
            Cond::Eq { column, .. } | Cond::Range { column, .. } | Cond::OneOf { column, .. } => column,
        }
    }

    /// The value part of the slice key: the value, or the interval as the slices view labels a
    /// bucket between the same edges (`[25, 45)`, `(-inf, 25)`, `[65, inf)`).
    pub fn label(&self) -> String {
        match self {
            Cond::Eq { value, .. } => value.clone(),
            Cond::Range { lo, hi, .. } => range_label(*lo, *hi),
            Cond::OneOf { values, .. } => format!("{{{}}}", values.join(", ")),
        }
    }
}

/// The label of the interval [lo, hi) as the slices view writes a bucket.
pub fn range_label(lo: f64, hi: f64) -> String {
    let (open, lo) = if lo == f64::NEG_INFINITY { ("(", "-inf".to_string()) } else { ("[", fmt_edge(lo)) };
    let hi = if hi == f64::INFINITY { "inf".to_string() } else { fmt_edge(hi) };
    format!("{open}{lo}, {hi})")
}

/// Parses one condition: `column=value`, `column in [lo, hi)` (`(-inf, hi)`, `[lo, inf)`) or
/// `column in {a, b}`.
fn parse_cond(text: &str, part: &str) -> Result<Cond, SpecError> {
    let bad = |why: &str| SpecError::Invalid(text.to_string(), why.to_string());
    if let Some((c, r)) = part.split_once(" in ") {
        let (c, r) = (c.trim(), r.trim());
        if c.is_empty() {
            return Err(bad("a range or a set of values needs a column before 'in'"));
        }
        if let Some(inner) = r.strip_prefix('{') {
            let inner = inner.strip_suffix('}').ok_or_else(|| bad("a set of values is written {a, b}"))?;
            let mut values: Vec<String> = Vec::new();
            for v in inner.split(',').map(str::trim) {
                if v.is_empty() {
                    return Err(bad("a set of values is written {a, b}, without empty values"));
                }
                if !values.iter().any(|x| x == v) {
                    values.push(v.to_string());
                }
            }
            if values.len() > 1000 {
                return Err(bad("a set has at most 1000 values"));
            }
            return Ok(Cond::OneOf { column: c.to_string(), values });
        }
        let inner = r.strip_prefix('[').or_else(|| r.strip_prefix('(')).and_then(|r| r.strip_suffix(')')).ok_or_else(|| bad("a range is written [lo, hi), (-inf, hi) or [lo, inf)"))?;
        let (lo, hi) = inner.split_once(',').ok_or_else(|| bad("a range has two ends: [lo, hi)"))?;
        let num = |t: &str| -> Result<f64, SpecError> {
            match t.trim() {
                "-inf" => Ok(f64::NEG_INFINITY),
                "inf" => Ok(f64::INFINITY),
                t => t.parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(|| bad("range ends are numbers, -inf or inf")),
            }
        };
        let (lo, hi) = (num(lo)?, num(hi)?);
        if lo >= hi || lo == f64::INFINITY || hi == f64::NEG_INFINITY {
            return Err(bad("a range needs lo < hi"));
        }
        return Ok(Cond::Range { column: c.to_string(), lo, hi });
    }
    match part.split_once('=') {
        Some((c, v)) if !c.trim().is_empty() => Ok(Cond::Eq { column: c.trim().to_string(), value: v.trim().to_string() }),
        _ => Err(bad("each condition is column=value or column in [lo, hi)")),
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpecError {
    #[error("slice spec '{0}': {1}")]
    Invalid(String, String),
    #[error("slice spec '{spec}': column '{column}' is not in the run{hint}")]
    UnknownColumn { spec: String, column: String, hint: String },
    #[error("slice spec '{spec}': column '{column}' is not numeric, so it cannot be bucketed (use '{column}' to slice by value)")]
    NotNumeric { spec: String, column: String },
    #[error("slice spec '{spec}' makes {count} slices, more than the limit of {limit}; bucket a numeric feature (e.g. 'age:q5') or cross fewer features")]
    TooMany { spec: String, count: usize, limit: usize },
}

impl SliceSpec {
    /// Parses one spec; see the module docs for the syntax.
    pub fn parse(text: &str) -> Result<SliceSpec, SpecError> {
        let t = text.trim();
        let bad = |why: &str| SpecError::Invalid(text.to_string(), why.to_string());
        if t.is_empty() || t == "overall" {
            return Ok(SliceSpec::Overall);
        }
        if t.contains(" & ") || t.contains(" in [") || t.contains(" in (") || t.contains(" in {") {
            let conds = t.split(" & ").map(|p| parse_cond(text, p.trim())).collect::<Result<Vec<_>, _>>()?;
            if conds.len() > 10 {
                return Err(bad("at most 10 conditions"));
            }
            let mut columns: Vec<&str> = conds.iter().map(Cond::column).collect();
            columns.sort_unstable();
            if columns.windows(2).any(|w| w[0] == w[1]) {
                return Err(bad("each column appears in one condition"));
            }
            return Ok(SliceSpec::Where(conds));
        }
        if let Some((c, v)) = t.split_once('=') {
            if c.trim().is_empty() {
                return Err(bad("a filter needs a column before '='"));
            }
            return Ok(SliceSpec::Filter { column: c.trim().to_string(), value: v.trim().to_string() });
        }
        let parts = strata_app::pickers::split_outside_brackets(t);
        if parts.len() > 3 {
            return Err(bad("a cross has at most three features"));
        }
        let mut features = Vec::new();
        for p in parts {
            let p = p.trim();
            let (col, cut) = match p.split_once(':') {
                None => (p, Cut::Values),
                Some((c, b)) => {
                    let b = b.trim();
                    let cut = if let Some(k) = b.strip_prefix('q') {
                        Cut::Quantiles(k.parse().map_err(|_| bad("quantile buckets are written q<k>, e.g. age:q5"))?)
                    } else if let Some(k) = b.strip_prefix('w') {
                        Cut::Width(k.parse().map_err(|_| bad("equal-width buckets are written w<k>, e.g. age:w4"))?)
                    } else if b.starts_with('[') && b.ends_with(']') {
                        let edges = b[1..b.len() - 1]
                            .split(',')
                            .map(|e| e.trim().parse::<f64>())
                            .collect::<Result<Vec<f64>, _>>()
                            .map_err(|_| bad("edges are numbers, e.g. age:[18,30,45,65]"))?;
                        if edges.is_empty() || edges.windows(2).any(|w| w[0] >= w[1]) || edges.iter().any(|e| !e.is_finite()) {
                            return Err(bad("edges must be finite and increasing"));
                        }
                        Cut::Edges(edges)
                    } else {
                        return Err(bad("after ':' comes q<k>, w<k> or [edges]"));
                    };
                    if matches!(cut, Cut::Quantiles(k) | Cut::Width(k) if !(2..=100).contains(&k)) {
                        return Err(bad("the number of buckets is between 2 and 100"));
                    }
                    (c.trim(), cut)
                }
            };
            if col.is_empty() {
                return Err(bad("empty feature name"));
            }
            features.push((col.to_string(), cut));
        }
        Ok(SliceSpec::Features(features))
    }
}

/// Rows assigned to the slices of one spec.
#[derive(Clone, Debug)]
pub struct Assignment {
    pub keys: Vec<SliceKey>,
    /// For each row, the index of its slice in `keys`, or none (a filter's other rows).
    pub slice_of_row: SliceIds,
}

/// Slice ids, one per row (or cell): the index of the slice in its spec's keys, `u32::MAX` for a
/// row in none of the spec's slices (a filter's other rows): 4 bytes a row where `Option<u32>`
/// takes 8.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SliceIds(pub Vec<u32>);

impl SliceIds {
    pub const NONE: u32 = u32::MAX;

    pub fn with_capacity(n: usize) -> Self {
        SliceIds(Vec::with_capacity(n))
    }

    #[inline]
    pub fn get(&self, i: usize) -> Option<u32> {
        let s = self.0[i];
        if s == Self::NONE { None } else { Some(s) }
    }

    pub fn push(&mut self, s: Option<u32>) {
        self.0.push(s.unwrap_or(Self::NONE));
    }

    /// Every row is in one of the spec's slices.
    pub fn covers_all(&self) -> bool {
        !self.0.contains(&Self::NONE)
    }

    pub fn iter(&self) -> impl Iterator<Item = Option<u32>> + '_ {
        self.0.iter().map(|s| (*s != Self::NONE).then_some(*s))
    }
}

impl FromIterator<Option<u32>> for SliceIds {
    fn from_iter<I: IntoIterator<Item = Option<u32>>>(iter: I) -> Self {
        SliceIds(iter.into_iter().map(|s| s.unwrap_or(Self::NONE)).collect())
    }
}

/// The error for a column the frame lacks, with the closest names ("; did you mean 'sex'?") or,
/// for a small frame, every name.
fn unknown_column(df: &DataFrame, spec: &str, column: &str) -> SpecError {
    let names: Vec<&str> = df.get_column_names().into_iter().map(|n| n.as_str()).collect();
    let close = super::names::closest(column, names.iter().copied());
    let hint = if !close.is_empty() {
        format!("; did you mean {}?", close.iter().map(|c| format!("'{c}'")).collect::<Vec<_>>().join(" or "))
    } else if names.len() <= 20 {
        format!("; the columns are {}", names.join(", "))
    } else {
        String::new()
    };
    SpecError::UnknownColumn { spec: spec.into(), column: column.into(), hint }
}

/// Why a filter (`sex=Femal`, or a conjunction) selects no row, when one of its values occurs in
/// no row: the closest values, or the column's values when it has few (the pickers' wording). `None` when every value
/// occurs (the conditions are merely disjoint) or the spec is not a filter.
pub fn filter_hint(df: &DataFrame, spec: &SliceSpec) -> Option<String> {
    let conds: Vec<(&str, &str)> = match spec {
        SliceSpec::Filter { column, value } => vec![(column.as_str(), value.as_str())],
        SliceSpec::Where(conds) => conds
            .iter()
            .flat_map(|c| match c {
                Cond::Eq { column, value } => vec![(column.as_str(), value.as_str())],
                Cond::OneOf { column, values } => values.iter().map(|v| (column.as_str(), v.as_str())).collect(),
                Cond::Range { .. } => vec![],
            })
            .collect(),
        _ => vec![],
    };
    for (column, value) in conds {
        let Ok((_, labels)) = feature_codes(df, column, column, &Cut::Values) else { continue };
        if labels.iter().any(|l| l == value) {
            continue;
        }
        return Some(strata_app::pickers::value_hint(column, value, &labels));
    }
    None
}

/// Bucket label of `x` between `edges` (ascending): `[a, b)`, with open ends at ±inf.
fn bucket(edges: &[f64], x: f64) -> (usize, String) {
    let i = edges.partition_point(|e| *e <= x);
    let lo = if i == 0 { "-inf".to_string() } else { fmt_edge(edges[i - 1]) };
    let hi = if i == edges.len() { "inf".to_string() } else { fmt_edge(edges[i]) };
    let open = if i == 0 { "(" } else { "[" };
    (i, format!("{open}{lo}, {hi})"))
}

fn fmt_edge(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 { format!("{}", x as i64) } else { format!("{x:.4}").trim_end_matches('0').to_string() }
}

/// Per-row codes of a text column, numbered in order of first appearance, and the value of each
/// code. A string of at most 12 bytes sits inside its 16-byte Arrow view (length, then the bytes),
/// so such rows are told apart by the view as one `u128`, without reading or hashing the string
/// (the view acts as a dictionary code); longer strings are keyed by their text. Equal codes mean
/// equal text; equal text may get two codes only if two views of it differ in their padding,
/// which the caller merges by value.
///
/// Runs on every core, a range of rows each: ranges number their values on their own, and the
/// numbers of later ranges follow those of earlier ones (so a value may have one code per range;
/// the caller merges by value).
pub(crate) fn text_codes(ca: &StringChunked) -> (Vec<u32>, Vec<Option<&str>>) {
    let n = ca.len();
    let threads = std::thread::available_parallelism().map(|t| t.get()).unwrap_or(1).clamp(1, 8);
    if threads == 1 || n < 1 << 16 {
        let mut codes = vec![0u32; n];
        let firsts = text_codes_of(ca, 0, &mut codes);
        return (codes, firsts);
    }
    let step = n.div_ceil(threads);
    let mut codes = vec![0u32; n];
    let parts: Vec<Vec<Option<&str>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = codes.chunks_mut(step).enumerate().map(|(k, out)| scope.spawn(move || text_codes_of(ca, k * step, out))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    });
    let mut firsts = Vec::with_capacity(parts.iter().map(Vec::len).sum());
    for (k, part) in parts.into_iter().enumerate() {
        let base = firsts.len() as u32;
        if base > 0 {
            for c in &mut codes[k * step..((k + 1) * step).min(n)] {
                *c += base;
            }
        }
        firsts.extend(part);
    }
    (codes, firsts)
}

/// [`text_codes`] of the rows `start..start + out.len()`, written to `out`.
fn text_codes_of<'a>(ca: &'a StringChunked, start: usize, out: &mut [u32]) -> Vec<Option<&'a str>> {
    use polars_arrow::array::Array;
    const FEW: usize = 8;
    let mut few: Vec<(u128, u32)> = Vec::with_capacity(FEW);
    let mut short: HashMap<u128, u32, super::FastHashBuilder> = HashMap::default();
    let mut long: HashMap<&str, u32, super::FastHashBuilder> = HashMap::default();
    let mut null_code: Option<u32> = None;
    let mut firsts: Vec<Option<&str>> = Vec::new();
    let end = start + out.len();
    let mut codes = out.iter_mut();
    let mut offset = 0;
    for arr in ca.downcast_iter() {
        let len = arr.len();
        let (from, to) = (start.max(offset).min(offset + len) - offset, end.min(offset + len).max(offset) - offset);
        offset += len;
        if from >= to {
            continue;
        }
        let validity = arr.validity().filter(|v| v.unset_bits() > 0);
        for (i, view) in arr.views().iter().enumerate().take(to).skip(from) {
            let code = if validity.is_some_and(|v| !v.get_bit(i)) {
                *null_code.get_or_insert_with(|| {
                    firsts.push(None);
                    firsts.len() as u32 - 1
                })
            } else if view.length <= 12 {
                // A sliced column has few values, mostly: the first few are looked up in a short
                // list before the hash map (a value is in one of the two).
                let v = view.as_u128();
                match few.iter().find(|(k, _)| *k == v) {
                    Some((_, code)) => *code,
                    None if few.len() < FEW => {
                        firsts.push(Some(arr.value(i)));
                        few.push((v, firsts.len() as u32 - 1));
                        firsts.len() as u32 - 1
                    }
                    None => *short.entry(v).or_insert_with(|| {
                        firsts.push(Some(arr.value(i)));
                        firsts.len() as u32 - 1
                    }),
                }
            } else {
                let s = arr.value(i);
                *long.entry(s).or_insert_with(|| {
                    firsts.push(Some(s));
                    firsts.len() as u32 - 1
                })
            };
            if let Some(slot) = codes.next() {
                *slot = code;
            }
        }
    }
    firsts
}

/// How the values of a column compare when it is sliced by value: missing last, numbers
/// numerically when the column is numeric, else as text. The order of a spec's slices.
pub(crate) fn value_order(numeric: bool, a: Option<&str>, b: Option<&str>) -> std::cmp::Ordering {
    match (a, b) {
        (None, None) => std::cmp::Ordering::Equal,
        (None, _) => std::cmp::Ordering::Greater,
        (_, None) => std::cmp::Ordering::Less,
        (Some(x), Some(y)) => match (x.parse::<f64>(), y.parse::<f64>()) {
            (Ok(p), Ok(q)) if numeric => p.total_cmp(&q),
            _ => x.cmp(y),
        },
    }
}

/// The buckets of a numeric cut: its edges and each bucket's label, then [`MISSING`]'s. Made
/// from the whole run's values: a streaming preparation makes them in a first pass over the
/// column, then slices every batch with them.
#[derive(Clone, Debug, PartialEq)]
pub struct Buckets {
    pub edges: Vec<f64>,
    pub labels: Vec<String>,
}

impl Buckets {
    /// The buckets of `cut` (not [`Cut::Values`]) over the run's present values, sorted ascending.
    pub fn of(cut: &Cut, present: &[f64]) -> Buckets {
        Self::from_summary(cut, present.first().copied(), present.last().copied(), |q| super::stats::quantile_sorted(present, q))
    }

    /// [`Buckets::of`] from what it reads of the values: their minimum and maximum (`None` when
    /// there is none) and their quantile at `q` (as [`super::stats::quantile_sorted`] computes
    /// it, asked only for `Cut::Quantiles`). What an engine elsewhere (Spark) can answer without
    /// sending the values.
    pub fn from_summary(cut: &Cut, min: Option<f64>, max: Option<f64>, mut quantile: impl FnMut(f64) -> f64) -> Buckets {
        let (first, top) = (min.as_ref(), max.as_ref());
        let edges: Vec<f64> = match cut {
            Cut::Edges(e) => e.clone(),
            Cut::Quantiles(k) => {
                let mut e: Vec<f64> = if first.is_some() { (1..*k).map(|i| quantile(i as f64 / *k as f64)).collect() } else { vec![] };
                e.dedup();
                e.retain(|x| x.is_finite());
                // Inner edges only: make the first bucket start at the minimum.
                if let Some(&min) = first {
                    e.retain(|x| *x > min);
                    e.insert(0, min);
                }
                e
            }
            Cut::Width(k) => match (first, top) {
                (Some(&lo), Some(&hi)) if hi > lo => (0..*k).map(|i| lo + (hi - lo) * i as f64 / *k as f64).collect(),
                (Some(&lo), _) => vec![lo],
                _ => vec![],
            },
            Cut::Values => vec![],
        };
        let mut labels: Vec<String> = (0..=edges.len())
            .map(|i| {
                let probe = if i == 0 { f64::NEG_INFINITY } else { edges[i - 1] };
                bucket(&edges, probe).1
            })
            .collect();
        // The top bucket of quantile / width cuts is closed at the maximum: [a, max].
        if matches!(cut, Cut::Quantiles(_) | Cut::Width(_)) {
            if let (Some(last), Some(&max)) = (labels.last_mut(), top) {
                if let Some(lo) = edges.last() {
                    *last = format!("[{}, {}]", fmt_edge(*lo), fmt_edge(max));
                }
            }
        }
        labels.push(MISSING.to_string());
        Buckets { edges, labels }
    }
}

/// Buckets made ahead of slicing, per (column, cut): the run's, when the rows being sliced are
/// only a batch of it.
pub type ResolvedBuckets = [(String, Cut, Buckets)];

/// A numeric column's values as bucketing reads them (NaN is missing); a text column is an error.
pub(crate) fn numeric_values(col: &Column, spec: &str) -> Result<Vec<Option<f64>>, SpecError> {
    if !col.dtype().is_primitive_numeric() {
        return Err(SpecError::NotNumeric { spec: spec.into(), column: col.name().to_string() });
    }
    let f = col.cast(&DataType::Float64).map_err(|e| SpecError::Invalid(spec.into(), e.to_string()))?;
    Ok(f.f64().map_err(|e| SpecError::Invalid(spec.into(), e.to_string()))?.iter().map(|v| v.filter(|x| !x.is_nan())).collect())
}

/// Per-row codes of one feature under one cut, plus the label of each code; codes sort in
/// bucket order (numeric cuts) or by value (text).
pub(crate) fn feature_codes(df: &DataFrame, spec: &str, column: &str, cut: &Cut) -> Result<(Vec<u32>, Vec<String>), SpecError> {
    feature_codes_with(df, spec, column, cut, &[])
}

/// [`feature_codes`], a numeric cut's buckets taken from `resolved` when it has them.
fn feature_codes_with(df: &DataFrame, spec: &str, column: &str, cut: &Cut, resolved: &ResolvedBuckets) -> Result<(Vec<u32>, Vec<String>), SpecError> {
    let col = df.column(column).map_err(|_| unknown_column(df, spec, column))?;
    let numeric = col.dtype().is_primitive_numeric();
    if !numeric && *cut != Cut::Values {
        return Err(SpecError::NotNumeric { spec: spec.into(), column: column.into() });
    }
    if *cut == Cut::Values {
        let text = col.cast(&DataType::String).map_err(|e| SpecError::Invalid(spec.into(), e.to_string()))?;
        let ca = text.str().map_err(|e| SpecError::Invalid(spec.into(), e.to_string()))?;
        let (codes, firsts) = text_codes(ca);
        // Distinct values: codes of equal text merged (two views of one short string may differ in
        // their unused bytes; see `text_codes`).
        let mut index: HashMap<Option<&str>, u32, super::FastHashBuilder> = HashMap::default();
        let merged: Vec<u32> = firsts
            .iter()
            .map(|v| {
                let n = index.len() as u32;
                *index.entry(*v).or_insert(n)
            })
            .collect();
        // Relabel so codes follow the sorted values (numbers numerically), missing last.
        let mut vals: Vec<(Option<&str>, u32)> = index.into_iter().collect();
        vals.sort_by(|a, b| value_order(numeric, a.0, b.0));
        let mut remap = vec![0u32; vals.len()];
        let labels = vals
            .iter()
            .enumerate()
            .map(|(new, (v, old))| {
                remap[*old as usize] = new as u32;
                v.map(str::to_string).unwrap_or_else(|| MISSING.to_string())
            })
            .collect();
        let final_code: Vec<u32> = merged.iter().map(|m| remap[*m as usize]).collect();
        let mut codes = codes;
        super::par_parts(&mut codes, |_, part| {
            for c in part {
                *c = final_code[*c as usize];
            }
        });
        return Ok((codes, labels));
    }
    let values = numeric_values(col, spec)?;
    let buckets = match resolved.iter().find(|(c, k, _)| c == column && k == cut) {
        Some((_, _, b)) => b.clone(),
        None => {
            let mut present: Vec<f64> = values.iter().flatten().copied().collect();
            present.sort_by(f64::total_cmp);
            Buckets::of(cut, &present)
        }
    };
    let missing_code = buckets.labels.len() as u32 - 1;
    let codes = values
        .iter()
        .map(|v| match v {
            None => missing_code,
            Some(x) => bucket(&buckets.edges, *x).0 as u32,
        })
        .collect();
    Ok((codes, buckets.labels))
}

/// Most combinations of a cross's codes numbered through a table (4 bytes each) rather than a
/// hash map.
const DENSE_COMBOS: u64 = 1 << 16;

/// Assigns every row to its slice of `spec`; at most `limit` slices.
pub fn assign(df: &DataFrame, text: &str, spec: &SliceSpec, limit: usize) -> Result<Assignment, SpecError> {
    assign_with(df, text, spec, limit, &[])
}

/// [`assign`], numeric cuts bucketed by `resolved` when it has their buckets (a batch of a run
/// sliced with the run's buckets).
pub fn assign_with(df: &DataFrame, text: &str, spec: &SliceSpec, limit: usize, resolved: &ResolvedBuckets) -> Result<Assignment, SpecError> {
    let n = df.height();
    match spec {
        SliceSpec::Overall => Ok(Assignment { keys: vec![vec![]], slice_of_row: SliceIds(vec![0; n]) }),
        SliceSpec::Filter { column, value } => {
            let col = df.column(column).map_err(|_| unknown_column(df, text, column))?;
            let s = col.cast(&DataType::String).map_err(|e| SpecError::Invalid(text.into(), e.to_string()))?;
            let ca = s.str().map_err(|e| SpecError::Invalid(text.into(), e.to_string()))?;
            let want_missing = value == MISSING;
            let slice_of_row = ca.iter().map(|v| {
                let hit = match v { None => want_missing, Some(x) => x == value };
                hit.then_some(0)
            }).collect::<SliceIds>();
            Ok(Assignment { keys: vec![vec![(column.clone(), value.clone())]], slice_of_row })
        }
        SliceSpec::Where(conds) => {
            let mut hit = vec![true; n];
            for cond in conds {
                let col = df.column(cond.column()).map_err(|_| unknown_column(df, text, cond.column()))?;
                match cond {
                    Cond::Eq { value, .. } => {
                        let s = col.cast(&DataType::String).map_err(|e| SpecError::Invalid(text.into(), e.to_string()))?;
                        let ca = s.str().map_err(|e| SpecError::Invalid(text.into(), e.to_string()))?;
                        let want_missing = value == MISSING;
                        for (h, v) in hit.iter_mut().zip(ca.iter()) {
                            *h &= match v { None => want_missing, Some(x) => x == value };
                        }
                    }
                    Cond::OneOf { values, .. } => {
                        let s = col.cast(&DataType::String).map_err(|e| SpecError::Invalid(text.into(), e.to_string()))?;
                        let ca = s.str().map_err(|e| SpecError::Invalid(text.into(), e.to_string()))?;
                        let want_missing = values.iter().any(|v| v == MISSING);
                        for (h, v) in hit.iter_mut().zip(ca.iter()) {
                            *h &= match v { None => want_missing, Some(x) => values.iter().any(|w| w == x) };
                        }
                    }
                    Cond::Range { column, lo, hi } => {
                        if !col.dtype().is_primitive_numeric() {
                            return Err(SpecError::NotNumeric { spec: text.into(), column: column.clone() });
                        }
                        let f = col.cast(&DataType::Float64).map_err(|e| SpecError::Invalid(text.into(), e.to_string()))?;
                        let ca = f.f64().map_err(|e| SpecError::Invalid(text.into(), e.to_string()))?;
                        for (h, v) in hit.iter_mut().zip(ca.iter()) {
                            *h &= v.is_some_and(|x| *lo <= x && x < *hi);
                        }
                    }
                }
            }
            let key = conds.iter().map(|c| (c.column().to_string(), c.label())).collect();
            Ok(Assignment { keys: vec![key], slice_of_row: hit.into_iter().map(|h| h.then_some(0)).collect() })
        }
        SliceSpec::Features(features) => {
            let mut per_feature = Vec::with_capacity(features.len());
            for (c, cut) in features {
                per_feature.push(feature_codes_with(df, text, c, cut, resolved)?);
            }
            if let ([(name, Cut::Values)], [(_, labels)]) = (features.as_slice(), per_feature.as_slice()) {
                // One feature by value: every value is a row's, and codes follow the values'
                // order, so the codes are the slices (the general path below would number them
                // again, row by row, to the same result).
                if labels.len() > limit {
                    return Err(SpecError::TooMany { spec: text.into(), count: limit + 1, limit });
                }
                let keys = labels.iter().map(|l| vec![(name.clone(), l.clone())]).collect();
                let codes = per_feature.pop().map(|(codes, _)| codes).unwrap_or_default();
                return Ok(Assignment { keys, slice_of_row: SliceIds(codes) });
            }
            // Combine codes into one mixed-radix number per row (no allocation per row); number
            // the combinations in sorted key order.
            let radix: Vec<u64> = per_feature.iter().map(|(_, labels)| labels.len() as u64 + 1).collect();
            let combo_of = |i: usize| per_feature.iter().zip(&radix).fold(0u64, |k, ((codes, _), r)| k * r + codes[i] as u64);
            let too_many = |count: usize| SpecError::TooMany { spec: text.into(), count, limit };
            let space = radix.iter().try_fold(1u64, |a, r| a.checked_mul(*r)).filter(|s| *s <= DENSE_COMBOS);
            // The combinations that occur, ascending, and each row's slice (its combination's rank).
            let (ordered, slice_of_row): (Vec<u64>, SliceIds) = if let Some(space) = space {
                // Few possible combinations: those that occur marked in a table per core, numbered in
                // order, and each row's looked up: no hashing, nothing sequential but the lookup.
                let seen = super::par_ranges(n, |rows| {
                    let mut seen = vec![false; space as usize];
                    for i in rows {
                        seen[combo_of(i) as usize] = true;
                    }
                    seen
                });
                let mut table = vec![u32::MAX; space as usize];
                let mut ordered = Vec::new();
                for (combo, slot) in table.iter_mut().enumerate() {
                    if seen.iter().any(|s| s[combo]) {
                        if ordered.len() >= limit {
                            return Err(too_many(limit + 1));
                        }
                        *slot = ordered.len() as u32;
                        ordered.push(combo as u64);
                    }
                }
                // Each row's slice, on every core (every row has one: no sentinel).
                let mut slice_of_row = vec![0u32; n];
                super::par_parts(&mut slice_of_row, |from, part| {
                    for (i, s) in part.iter_mut().enumerate() {
                        *s = table[combo_of(from + i) as usize];
                    }
                });
                (ordered, SliceIds(slice_of_row))
            } else {
                let mut row_combo = Vec::with_capacity(n);
                let mut combos: HashMap<u64, u32, super::FastHashBuilder> = HashMap::default();
                for i in 0..n {
                    let next = combos.len() as u32;
                    row_combo.push(*combos.entry(combo_of(i)).or_insert(next));
                    if combos.len() > limit {
                        return Err(too_many(combos.len()));
                    }
                }
                let mut ordered: Vec<(u64, u32)> = combos.into_iter().collect();
                ordered.sort_unstable();
                let mut remap = vec![0u32; ordered.len()];
                for (new, (_, old)) in ordered.iter().enumerate() {
                    remap[*old as usize] = new as u32;
                }
                (ordered.into_iter().map(|(combo, _)| combo).collect(), SliceIds(row_combo.into_iter().map(|c| remap[c as usize]).collect()))
            };
            // Mixed-radix numbers sort like their code tuples (first feature most significant).
            let keys = ordered
                .iter()
                .map(|combo| {
                    let mut rest = *combo;
                    let mut codes = vec![0u32; radix.len()];
                    for (slot, r) in codes.iter_mut().zip(&radix).rev() {
                        *slot = (rest % r) as u32;
                        rest /= r;
                    }
                    codes.iter().zip(features).zip(&per_feature).map(|((c, (name, _)), (_, labels))| (name.clone(), labels[*c as usize].clone())).collect()
                })
                .collect();
            Ok(Assignment { keys, slice_of_row })
        }
    }
}

/// The order in which [`assign`] numbers a spec's slices, for keys found batch by batch: the
/// positions of `keys` sorted as the whole run's assignment sorts them (features in spec order;
/// values by [`value_order`], `numeric` telling whether a column is numeric; buckets in bucket
/// order; missing last). Specs other than features have one slice.
pub(crate) fn key_order(spec: &SliceSpec, keys: &[SliceKey], numeric: impl Fn(&str) -> bool, resolved: &ResolvedBuckets) -> Vec<usize> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    let SliceSpec::Features(features) = spec else { return order };
    // Per feature: None = by value, Some(labels) = by bucket position.
    let labels: Vec<Option<Vec<String>>> = features
        .iter()
        .map(|(c, cut)| match cut {
            Cut::Values => None,
            cut => Some(resolved.iter().find(|(rc, rk, _)| rc == c && rk == cut).map(|(_, _, b)| b.labels.clone()).unwrap_or_else(|| Buckets::of(cut, &[]).labels)),
        })
        .collect();
    let flags: Vec<bool> = features.iter().map(|(c, _)| numeric(c)).collect();
    fn value(v: &str) -> Option<&str> {
        if v == MISSING { None } else { Some(v) }
    }
    order.sort_by(|&a, &b| {
        for (j, l) in labels.iter().enumerate() {
            let (x, y) = (keys[a].get(j).map_or("", |p| p.1.as_str()), keys[b].get(j).map_or("", |p| p.1.as_str()));
            let o = match l {
                None => value_order(flags[j], value(x), value(y)),
                Some(l) => {
                    let pos = |v: &str| l.iter().position(|t| t == v).unwrap_or(usize::MAX);
                    pos(x).cmp(&pos(y))
                }
            };
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spec_kind() {
        assert_eq!(SliceSpec::parse("overall").unwrap(), SliceSpec::Overall);
        assert_eq!(SliceSpec::parse("sex").unwrap(), SliceSpec::Features(vec![("sex".into(), Cut::Values)]));
        assert_eq!(SliceSpec::parse("sex,race").unwrap(), SliceSpec::Features(vec![("sex".into(), Cut::Values), ("race".into(), Cut::Values)]));
        assert_eq!(SliceSpec::parse("age:q5").unwrap(), SliceSpec::Features(vec![("age".into(), Cut::Quantiles(5))]));
        assert_eq!(SliceSpec::parse("age:w4").unwrap(), SliceSpec::Features(vec![("age".into(), Cut::Width(4))]));
        assert_eq!(
            SliceSpec::parse("age:[18,30, 45],sex").unwrap(),
            SliceSpec::Features(vec![("age".into(), Cut::Edges(vec![18.0, 30.0, 45.0])), ("sex".into(), Cut::Values)])
        );
        assert_eq!(SliceSpec::parse("country=US").unwrap(), SliceSpec::Filter { column: "country".into(), value: "US".into() });
        assert!(SliceSpec::parse("age:[30,18]").is_err());
        assert!(SliceSpec::parse("age:z3").is_err());
        assert!(SliceSpec::parse("a,b,c,d").is_err());
        assert_eq!(
            SliceSpec::parse("sex=F & age in [25, 45)").unwrap(),
            SliceSpec::Where(vec![Cond::Eq { column: "sex".into(), value: "F".into() }, Cond::Range { column: "age".into(), lo: 25.0, hi: 45.0 }])
        );
        assert_eq!(SliceSpec::parse("age in (-inf, 30)").unwrap(), SliceSpec::Where(vec![Cond::Range { column: "age".into(), lo: f64::NEG_INFINITY, hi: 30.0 }]));
        assert!(SliceSpec::parse("age in [45, 25)").is_err());
        assert!(SliceSpec::parse("sex=F & sex=M").is_err());
        assert!(SliceSpec::parse("age in [x, 3)").is_err());
        assert_eq!(
            SliceSpec::parse("race in {Black, White,Black}").unwrap(),
            SliceSpec::Where(vec![Cond::OneOf { column: "race".into(), values: vec!["Black".into(), "White".into()] }])
        );
        assert!(SliceSpec::parse("race in {Black, }").is_err());
        assert!(SliceSpec::parse("race in {Black").is_err());
    }

    #[test]
    fn a_set_of_values_selects_their_rows_as_one_slice() {
        let a = assign(&df(), "w", &SliceSpec::parse("sex in {M, (missing)}").unwrap(), 100).unwrap();
        assert_eq!(a.keys, vec![vec![("sex".to_string(), "{M, (missing)}".to_string())]]);
        assert_eq!(a.slice_of_row.iter().collect::<Vec<_>>(), vec![None, Some(0), None, Some(0), Some(0), None]);
        let b = assign(&df(), "w", &SliceSpec::parse("sex in {F} & age in [30, inf)").unwrap(), 100).unwrap();
        assert_eq!(b.slice_of_row.iter().collect::<Vec<_>>(), vec![None, None, None, None, None, Some(0)]);
        let hint = filter_hint(&df(), &SliceSpec::parse("sex in {F, Mm}").unwrap());
        // The closest value first ('M': one edit), then the others the name helper offers.
        assert!(hint.as_deref().is_some_and(|h| h.starts_with("no value 'Mm' in sex; did you mean 'M'")), "{hint:?}");
    }

    #[test]
    fn conjunctions_select_one_slice_keyed_like_the_buckets() {
        let a = assign(&df(), "w", &SliceSpec::parse("sex=F & age in [30, inf)").unwrap(), 100).unwrap();
        assert_eq!(a.keys, vec![vec![("sex".to_string(), "F".to_string()), ("age".to_string(), "[30, inf)".to_string())]]);
        assert_eq!(a.slice_of_row.iter().collect::<Vec<_>>(), vec![None, None, None, None, None, Some(0)]);
        // The label equals the slices view's bucket between the same edges.
        let b = assign(&df(), "age", &SliceSpec::parse("age:[30]").unwrap(), 100).unwrap();
        assert_eq!(b.keys[1][0].1, "[30, inf)");
    }

    fn df() -> DataFrame {
        DataFrame::new(6, vec![
            Column::new("age".into(), vec![Some(20.0), Some(35.0), None, Some(50.0), Some(35.0), Some(70.0)]),
            Column::new("sex".into(), vec![Some("F"), Some("M"), Some("F"), None, Some("M"), Some("F")]),
        ]).unwrap()
    }

    /// Codes from string views (short strings) and from text (long ones), on several threads and
    /// over several chunks, give every row the label of its own value; labels are distinct and
    /// sorted, missing last.
    #[test]
    fn view_codes_give_every_row_its_value() {
        let mut r = crate::eval::rng::SplitMix(23);
        for case in 0..12 {
            let n = [10, 1000, 70_000, 150_000][case % 4];
            let pool: Vec<Option<String>> = (0..1 + r.next() % 40)
                .map(|k| match k % 6 {
                    0 => None,
                    1 => Some(format!("a long value, number {k}")),
                    2 => Some("x".repeat(12 + (k as usize % 2))), // 12 bytes sit in the view, 13 do not
                    3 => Some(String::new()),
                    _ => Some(format!("v{k}")),
                })
                .collect();
            let values: Vec<Option<&str>> = (0..n).map(|_| pool[(r.next() % pool.len() as u64) as usize].as_deref()).collect();
            let cut = n / 3;
            let mut ca = StringChunked::new("c".into(), &values[..cut]);
            ca.append(&StringChunked::new("c".into(), &values[cut..])).unwrap();
            let df = DataFrame::new(n, vec![ca.into_column()]).unwrap();
            let (codes, labels) = feature_codes(&df, "c", "c", &Cut::Values).unwrap();
            for (i, v) in values.iter().enumerate() {
                assert_eq!(labels[codes[i] as usize], v.unwrap_or(MISSING), "case {case}, row {i}");
            }
            let present: Vec<&String> = labels.iter().filter(|l| l.as_str() != MISSING).collect();
            assert!(present.windows(2).all(|w| w[0] < w[1]), "case {case}: {labels:?}");
            assert!(labels.iter().position(|l| l == MISSING).is_none_or(|p| p == labels.len() - 1));
        }
    }

    #[test]
    fn crosses_and_single_features_number_slices_in_key_order_on_every_core() {
        // Enough rows for several cores; values first seen out of order, some missing.
        let n = 300_000;
        let (mut a, mut b): (Vec<Option<String>>, Vec<Option<String>>) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            a.push(["z", "m", "a"].get((x % 4) as usize).map(|v| v.to_string()));
            b.push(["q", "c", "k", "b", "y"].get(((x >> 8) % 6) as usize).map(|v| v.to_string()));
        }
        let frame = DataFrame::new(n, vec![Column::new("a".into(), a.clone()), Column::new("b".into(), b.clone())]).unwrap();
        let key = |v: &Option<String>| v.clone().unwrap_or_else(|| MISSING.to_string());
        let order = |p: &(Option<String>, Option<String>), q: &(Option<String>, Option<String>)| value_order(false, p.0.as_deref(), q.0.as_deref()).then(value_order(false, p.1.as_deref(), q.1.as_deref()));
        let mut combos: Vec<(Option<String>, Option<String>)> = a.iter().cloned().zip(b.iter().cloned()).collect();
        combos.sort_by(order);
        combos.dedup();
        let cross = assign(&frame, "a,b", &SliceSpec::parse("a,b").unwrap(), 100).unwrap();
        let want: Vec<SliceKey> = combos.iter().map(|(p, q)| vec![("a".to_string(), key(p)), ("b".to_string(), key(q))]).collect();
        assert_eq!(cross.keys, want);
        for (i, s) in cross.slice_of_row.iter().enumerate() {
            assert_eq!(s, Some(combos.binary_search_by(|c| order(c, &(a[i].clone(), b[i].clone()))).unwrap() as u32), "row {i}");
        }
        let one = assign(&frame, "b", &SliceSpec::parse("b").unwrap(), 100).unwrap();
        let labels: Vec<&str> = one.keys.iter().map(|k| k[0].1.as_str()).collect();
        assert_eq!(labels, vec!["b", "c", "k", "q", "y", MISSING]);
        assert!(one.slice_of_row.iter().zip(&b).all(|(s, v)| labels[s.unwrap() as usize] == key(v)));
        // More slices than allowed: refused, naming the first count over the limit.
        for spec in ["a,b", "b"] {
            let e = assign(&frame, spec, &SliceSpec::parse(spec).unwrap(), 5).unwrap_err();
            assert!(matches!(e, SpecError::TooMany { count: 6, limit: 5, .. }), "{spec}: {e}");
        }
    }

    #[test]
    fn missing_values_form_their_own_slice() {
        let a = assign(&df(), "sex", &SliceSpec::parse("sex").unwrap(), 100).unwrap();
        let labels: Vec<&str> = a.keys.iter().map(|k| k[0].1.as_str()).collect();
        assert_eq!(labels, vec!["F", "M", MISSING]);
        assert_eq!(a.slice_of_row.iter().collect::<Vec<_>>(), vec![Some(0), Some(1), Some(0), Some(2), Some(1), Some(0)]);
    }

    #[test]
    fn edges_bucket_with_open_ends() {
        let a = assign(&df(), "age", &SliceSpec::parse("age:[30,60]").unwrap(), 100).unwrap();
        let labels: Vec<&str> = a.keys.iter().map(|k| k[0].1.as_str()).collect();
        assert_eq!(labels, vec!["(-inf, 30)", "[30, 60)", "[60, inf)", MISSING]);
        assert_eq!(a.slice_of_row.iter().collect::<Vec<_>>(), vec![Some(0), Some(1), Some(3), Some(1), Some(1), Some(2)]);
    }

    #[test]
    fn bucketing_text_and_too_many_slices_are_errors() {
        assert!(matches!(assign(&df(), "sex:q2", &SliceSpec::parse("sex:q2").unwrap(), 100), Err(SpecError::NotNumeric { .. })));
        assert!(matches!(assign(&df(), "x", &SliceSpec::parse("x").unwrap(), 100), Err(SpecError::UnknownColumn { .. })));
        let e = assign(&df(), "sexx", &SliceSpec::parse("sexx").unwrap(), 100).unwrap_err().to_string();
        assert!(e.ends_with("column 'sexx' is not in the run; did you mean 'sex'?"), "{e}");
        let e = assign(&df(), "zzzzzz", &SliceSpec::parse("zzzzzz").unwrap(), 100).unwrap_err().to_string();
        assert!(e.ends_with("the columns are age, sex"), "{e}");
    }

    #[test]
    fn a_filter_value_that_no_row_has_gets_a_hint() {
        let hint = |s: &str| filter_hint(&df(), &SliceSpec::parse(s).unwrap());
        assert_eq!(hint("sex=FF").as_deref(), Some("no value 'FF' in sex; did you mean 'F' or 'M'?"));
        assert_eq!(hint("sex=zzzzz & age in [1, 2)").as_deref(), Some("no value 'zzzzz' in sex; its values are F, M, (missing)"));
        assert_eq!(hint("sex=F"), None);
        assert!(matches!(assign(&df(), "age", &SliceSpec::parse("age").unwrap(), 2), Err(SpecError::TooMany { .. })));
    }
}
