//! CSV / Parquet / JSON Lines -> a validated run table. One code path for the page, API and CLI.
//!
//! Steps: detect the format; read column names; infer each column's type (text formats: a first
//! pass over the file); resolve roles from the spec and from names; build typed columns (second
//! pass), checking every cell that has a role; check the label against the task and the scores
//! against the label; assemble the stored table. Every problem names the file, the line (or
//! Parquet row) and the column; up to [`error::MAX_PROBLEMS`] are reported at once.

pub mod error;
mod roles;
mod text;

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use polars::prelude::*;
use strata_app::model::{ColumnKind, IngestSpec, Preview, PreviewColumn, Role, Task};

pub use error::{IngestError, Place, Problem};
use error::Problems;
pub use roles::Roles;
use text::TextFormat;

/// The detected file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text(TextFormat),
    Parquet,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Text(t) => t.name(),
            Format::Parquet => "parquet",
        }
    }
}

/// A validated run table ready to be stored.
#[derive(Debug)]
pub struct Ingested {
    /// Columns in file order (ignored ones dropped); label, scores, weight normalised.
    pub frame: DataFrame,
    pub task: Task,
    pub roles: Roles,
}

/// Strings that mean "missing" in a feature column of a text file.
const MISSING_MARKERS: [&str; 8] = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"];

/// Looks at the first bytes (magic numbers win over the extension) and the file name.
pub fn detect_format(path: &Path, file: &str, delimiter: Option<char>) -> Result<Format, IngestError> {
    let mut head = vec![0u8; 64 * 1024];
    let n = {
        let mut f = std::fs::File::open(path).map_err(|source| IngestError::Io { file: file.into(), source })?;
        let mut read = 0;
        loop {
            let k = f.read(&mut head[read..]).map_err(|source| IngestError::Io { file: file.into(), source })?;
            if k == 0 || read + k == head.len() {
                read += k;
                break;
            }
            read += k;
        }
        read
    };
    head.truncate(n);
    if n == 0 {
        return Err(IngestError::one(file, Place::File, None, "the file is empty"));
    }
    if head.starts_with(b"PAR1") {
        return Ok(Format::Parquet);
    }
    let lower = file.to_lowercase();
    if lower.ends_with(".parquet") || lower.ends_with(".pq") {
        return Err(IngestError::one(file, Place::File, None, "named .parquet but is not a Parquet file (no PAR1 magic bytes)"));
    }
    if head.contains(&0) {
        return Err(IngestError::one(file, Place::File, None, "not a CSV, Parquet or JSON Lines file: it holds binary data"));
    }
    let first_char = head.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") || (lower.ends_with(".json") && first_char == Some(b'{')) {
        return Ok(Format::Text(TextFormat::Jsonl));
    }
    let delimiter = match delimiter {
        Some(c) if c.is_ascii() => c as u8,
        Some(c) => return Err(IngestError::Spec(format!("delimiter {c:?} is not a single ASCII character"))),
        None if lower.ends_with(".tsv") => b'\t',
        None => {
            let first_line = head.split(|&b| b == b'\n').next().unwrap_or(&[]);
            text::sniff_delimiter(first_line)
        }
    };
    Ok(Format::Text(TextFormat::Csv { delimiter }))
}

/// Reads, checks and assembles a run table from a file on disk.
pub fn ingest_file(path: &Path, file: &str, spec: &IngestSpec) -> Result<Ingested, IngestError> {
    let format = detect_format(path, file, spec.delimiter)?;
    let (raw, lines) = match format {
        Format::Parquet => (read_parquet(path, file)?, None),
        Format::Text(t) => {
            let (frame, lines) = read_text(path, file, t, spec)?;
            (frame, Some(lines))
        }
    };
    let (frame, task, roles) = finish(raw, lines.as_deref(), file, spec)?;
    Ok(Ingested { frame, task, roles })
}

/// What Strata would make of a file's first rows: for the upload page's preview.
pub fn preview_file(path: &Path, file: &str, spec: &IngestSpec, max_rows: usize) -> Result<Preview, IngestError> {
    let format = detect_format(path, file, spec.delimiter)?;
    let raw = match format {
        Format::Parquet => read_parquet(path, file)?,
        Format::Text(t) => read_text(path, file, t, spec)?.0,
    };
    let names: Vec<String> = raw.get_column_names().iter().map(|s| s.to_string()).collect();
    let kinds: Vec<ColumnKind> = raw.columns().iter().map(|c| kind_of(c.dtype())).collect();
    let roles = roles::resolve(&names, &kinds, spec, file).unwrap_or_else(|_| roles::guess(&names, &kinds));
    let head = raw.head(Some(max_rows));
    let mut rows = vec![Vec::with_capacity(names.len()); head.height()];
    for col in head.columns() {
        let s = col.as_materialized_series();
        for (i, row) in rows.iter_mut().enumerate() {
            let v = s.get(i).map(|v| any_to_text(&v)).unwrap_or_default();
            row.push(v);
        }
    }
    Ok(Preview {
        format: format.name().to_string(),
        columns: names
            .iter()
            .zip(&kinds)
            .map(|(n, k)| PreviewColumn { name: n.clone(), kind: *k, role: roles.role_of(n).unwrap_or(Role::Feature) })
            .collect(),
        rows,
    })
}

fn any_to_text(v: &AnyValue<'_>) -> String {
    match v {
        AnyValue::Null => String::new(),
        AnyValue::String(s) => s.to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        other => other.to_string(),
    }
}

pub fn kind_of(dtype: &DataType) -> ColumnKind {
    match dtype {
        DataType::Boolean => ColumnKind::Boolean,
        DataType::Datetime(..) | DataType::Date => ColumnKind::Timestamp,
        d if d.is_primitive_numeric() => ColumnKind::Numeric,
        _ => ColumnKind::Categorical,
    }
}

fn read_parquet(path: &Path, file: &str) -> Result<DataFrame, IngestError> {
    let f = std::fs::File::open(path).map_err(|source| IngestError::Io { file: file.into(), source })?;
    let df = ParquetReader::new(f).finish().map_err(|e| {
        IngestError::one(file, Place::File, None, format!("not a readable Parquet file: {e}"))
    })?;
    let mut names = HashSet::new();
    for n in df.get_column_names() {
        if !names.insert(n.to_string()) {
            return Err(IngestError::one(file, Place::Header, Some(n), "this column name appears twice"));
        }
    }
    // Bring every column to the few types the rest of Strata knows.
    let mut cols = Vec::with_capacity(df.width());
    for c in df.columns() {
        let c = match c.dtype() {
            DataType::Boolean | DataType::String | DataType::Float64 | DataType::Int64 => c.clone(),
            DataType::Datetime(..) => c.cast(&DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)))?,
            DataType::Date => c.cast(&DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)))?,
            d if d.is_float() => c.cast(&DataType::Float64)?,
            d if d.is_integer() => c.cast(&DataType::Int64)?,
            d => c.cast(&DataType::String).map_err(|_| {
                IngestError::one(file, Place::File, Some(c.name()), format!("unsupported Parquet column type {d}"))
            })?,
        };
        cols.push(c);
    }
    Ok(DataFrame::new(df.height(), cols)?)
}

/// What the first pass learned about a text column.
#[derive(Default, Clone)]
struct TextStats {
    nonempty: u64,
    ints: u64,
    floats: u64,
    bools: u64,
    other: u64,
    other_values: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TextType {
    Int,
    Float,
    Bool,
    Str,
    Timestamp,
}

fn classify(s: &str) -> (bool, bool, bool) {
    // (integer, float, bool)
    if s.parse::<i64>().is_ok() {
        return (true, true, false);
    }
    if s.parse::<f64>().is_ok() {
        return (false, true, false);
    }
    let b = matches!(s.to_ascii_lowercase().as_str(), "true" | "false");
    (false, false, b)
}

/// Reads a CSV / JSON Lines file into typed columns: pass 1 infers, pass 2 builds.
/// Returns the frame and, per row, the line it came from.
fn read_text(path: &Path, file: &str, format: TextFormat, spec: &IngestSpec) -> Result<(DataFrame, Vec<u64>), IngestError> {
    let columns = text::read_columns(path, file, format)?;
    if columns.is_empty() || (columns.len() == 1 && columns[0].is_empty()) {
        return Err(IngestError::one(file, Place::File, None, "the file has no columns"));
    }
    check_names(&columns, file)?;

    // Pass 1: what does each column hold?
    let mut problems = Problems::default();
    let mut stats = vec![TextStats::default(); columns.len()];
    let mut rows = 0u64;
    text::scan_records(path, file, format, &columns, &mut problems, &mut |_, cells| {
        rows += 1;
        for (st, cell) in stats.iter_mut().zip(cells) {
            let Some(s) = cell.as_deref() else { continue };
            let s = s.trim();
            if s.is_empty() {
                continue;
            }
            st.nonempty += 1;
            let (i, f, b) = classify(s);
            if i {
                st.ints += 1;
            } else if f {
                st.floats += 1;
            } else if b {
                st.bools += 1;
            } else {
                st.other += 1;
                if st.other_values.len() < 4 && !st.other_values.iter().any(|v| v == s) {
                    st.other_values.push(s.to_string());
                }
            }
        }
    })?;
    problems.into_result(file)?;
    if rows == 0 {
        return Err(IngestError::one(file, Place::File, None, "the file has a header but no data rows"));
    }

    // Types, with roles known so the timestamp column is parsed as such and label/score columns
    // keep their raw values for the checks in `finish`.
    let kinds: Vec<ColumnKind> = stats
        .iter()
        .map(|s| if s.other == 0 && (s.ints + s.floats) > 0 { ColumnKind::Numeric } else { ColumnKind::Categorical })
        .collect();
    let roles = roles::resolve(&columns, &kinds, spec, file)?;
    let types: Vec<TextType> = columns
        .iter()
        .zip(&stats)
        .map(|(name, st)| {
            let role = roles.role_of(name);
            if role == Some(Role::Timestamp) {
                TextType::Timestamp
            } else if role == Some(Role::Id) || roles.categorical.contains(name) {
                TextType::Str
            } else if st.nonempty > 0 && st.bools == st.nonempty {
                TextType::Bool
            } else if st.other == 0 && st.bools == 0 && st.nonempty > 0 {
                if st.floats == 0 { TextType::Int } else { TextType::Float }
            } else if matches!(role, Some(Role::Score | Role::Weight)) && (st.ints + st.floats) > 0 {
                // Checked cell by cell below: every non-number is an error with its line.
                TextType::Float
            } else if role.is_none_or(|r| r == Role::Feature)
                && st.other_values.len() <= 3
                && (st.ints + st.floats) >= 3 * st.other
                && st.bools == 0
            {
                // Mostly numbers with a few stray words: almost surely typos, not categories.
                TextType::Float
            } else {
                TextType::Str
            }
        })
        .collect();

    // Pass 2: build typed columns.
    enum Builder {
        Int(Vec<Option<i64>>),
        Float(Vec<Option<f64>>),
        Bool(Vec<Option<bool>>),
        Str(StringChunkedBuilder),
        Ts(Vec<Option<i64>>),
    }
    let cap = rows as usize;
    let mut builders: Vec<Builder> = columns
        .iter()
        .zip(&types)
        .map(|(name, t)| match t {
            TextType::Int => Builder::Int(Vec::with_capacity(cap)),
            TextType::Float => Builder::Float(Vec::with_capacity(cap)),
            TextType::Bool => Builder::Bool(Vec::with_capacity(cap)),
            TextType::Str => Builder::Str(StringChunkedBuilder::new(name.as_str().into(), cap)),
            TextType::Timestamp => Builder::Ts(Vec::with_capacity(cap)),
        })
        .collect();
    let is_feature: Vec<bool> = columns.iter().map(|c| roles.role_of(c).is_none_or(|r| r == Role::Feature)).collect();
    let mut lines = Vec::with_capacity(cap);
    let mut problems = Problems::default();
    text::scan_records(path, file, format, &columns, &mut Problems::default(), &mut |line, cells| {
        lines.push(line);
        for (j, (b, cell)) in builders.iter_mut().zip(cells).enumerate() {
            let raw = cell.as_deref().map(str::trim).unwrap_or("");
            let missing = if is_feature[j] { MISSING_MARKERS.contains(&raw) } else { raw.is_empty() };
            match b {
                Builder::Int(v) => v.push(if missing { None } else { raw.parse().ok() }),
                Builder::Float(v) => {
                    if missing {
                        v.push(None);
                    } else {
                        match raw.parse::<f64>() {
                            Ok(x) if is_feature[j] && x.is_nan() => v.push(None),
                            Ok(x) => v.push(Some(x)),
                            Err(_) => {
                                problems.push(Problem::new(
                                    Place::Line(line),
                                    Some(&columns[j]),
                                    format!("'{raw}' is not a number (the column's other values are numbers; \
                                             declare it categorical if it is not numeric)"),
                                ));
                                v.push(None);
                            }
                        }
                    }
                }
                Builder::Bool(v) => v.push(if missing { None } else { Some(raw.eq_ignore_ascii_case("true")) }),
                Builder::Str(sb) => {
                    if missing { sb.append_null() } else { sb.append_value(raw) }
                }
                Builder::Ts(v) => {
                    if missing {
                        v.push(None);
                    } else {
                        match parse_timestamp(raw) {
                            Ok(us) => v.push(Some(us)),
                            Err(why) => {
                                problems.push(Problem::new(Place::Line(line), Some(&columns[j]), why));
                                v.push(None);
                            }
                        }
                    }
                }
            }
        }
    })?;
    problems.into_result(file)?;
    let height = lines.len();
    let cols: Vec<Column> = columns
        .iter()
        .zip(builders)
        .map(|(name, b)| {
            let name: PlSmallStr = name.as_str().into();
            match b {
                Builder::Int(v) => Column::new(name, v),
                Builder::Float(v) => Column::new(name, v),
                Builder::Bool(v) => Column::new(name, v),
                Builder::Str(sb) => sb.finish().into_column(),
                Builder::Ts(v) => Int64Chunked::new(name, v)
                    .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
                    .into_column(),
            }
        })
        .collect();
    Ok((DataFrame::new(height, cols)?, lines))
}

fn check_names(columns: &[String], file: &str) -> Result<(), IngestError> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut problems = Problems::default();
    for (i, c) in columns.iter().enumerate() {
        if c.is_empty() {
            problems.push(Problem::new(Place::Header, None, format!("column {} has no name", i + 1)));
        } else if let Some(first) = seen.insert(c.as_str(), i) {
            problems.push(Problem::new(
                Place::Header,
                Some(c),
                format!("this column name appears twice (columns {} and {})", first + 1, i + 1),
            ));
        }
    }
    problems.into_result(file)
}

/// Parses RFC 3339 (`2024-01-01T12:00:00Z`, with offset), `YYYY-MM-DD HH:MM:SS[.f]` (UTC) or a
/// date; returns microseconds since the epoch, UTC.
pub fn parse_timestamp(s: &str) -> Result<i64, String> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_micros());
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(t.and_utc().timestamp_micros());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_micros()).unwrap_or(0));
    }
    // Tell an impossible date (2024-02-30) apart from text that is no date at all.
    let looks_like_date = s.len() >= 10
        && s.as_bytes()[4] == b'-'
        && s.as_bytes()[7] == b'-'
        && s[..4].chars().all(|c| c.is_ascii_digit());
    if looks_like_date {
        Err(format!("'{s}' is not a valid date and time (no such day, or a malformed time)"))
    } else {
        Err(format!("'{s}' is not a timestamp (expected e.g. 2024-01-31T13:45:00Z)"))
    }
}

/// Where row `i` came from, for messages.
fn place(lines: Option<&[u64]>, i: usize) -> Place {
    match lines {
        Some(l) => Place::Line(l.get(i).copied().unwrap_or(0)),
        None => Place::Row(i as u64 + 1),
    }
}

/// Checks roles and values and assembles the stored table.
fn finish(raw: DataFrame, lines: Option<&[u64]>, file: &str, spec: &IngestSpec) -> Result<(DataFrame, Task, Roles), IngestError> {
    if raw.height() == 0 {
        return Err(IngestError::one(file, Place::File, None, "the file has no data rows"));
    }
    let names: Vec<String> = raw.get_column_names().iter().map(|s| s.to_string()).collect();
    let kinds: Vec<ColumnKind> = raw.columns().iter().map(|c| kind_of(c.dtype())).collect();
    let mut roles = roles::resolve(&names, &kinds, spec, file)?;
    let mut problems = Problems::default();

    let label_col = raw.column(&roles.label)?;
    let task = match spec.task {
        Some(t) => t,
        None => infer_task(label_col, &roles, &raw)?,
    };
    let label = normalise_label(label_col, task, lines, &mut problems)?;
    if task == Task::Multiclass {
        // Per-class probability columns (`<model>_<class>`) become one model each, whose
        // predicted class (the argmax) is a derived column named after the model.
        let classes = sorted_classes(label.str()?.iter().flatten().map(str::to_string));
        let (models, rest) = roles::group_class_scores(&roles.scores, &classes);
        for m in &models {
            if names.contains(&m.model) {
                return Err(IngestError::Spec(format!(
                    "{file}: the columns {} are per-class scores of a model '{}', but the file already has a column of that name",
                    m.columns.iter().map(|(_, c)| c.as_str()).collect::<Vec<_>>().join(", "),
                    m.model
                )));
            }
        }
        roles.scores = rest.into_iter().chain(models.iter().map(|m| m.model.clone())).collect();
        roles.class_models = models;
    }

    let mut out: Vec<Column> = Vec::with_capacity(raw.width());
    for c in raw.columns() {
        let name = c.name().as_str();
        if roles.ignore.contains(name) {
            continue;
        }
        let col = match roles.role_of(name) {
            Some(Role::Label) => label.clone(),
            Some(Role::Score) if roles.class_model_of(name).is_some() => check_class_score(c, lines, &mut problems)?,
            Some(Role::Score) => check_score(c, task, lines, &mut problems, &roles)?,
            Some(Role::Weight) => check_weight(c, lines, &mut problems)?,
            Some(Role::Id) => check_id(c, lines, &mut problems)?,
            Some(Role::Timestamp) => match c.dtype() {
                DataType::Datetime(..) => c.clone(),
                // Text timestamps (e.g. in Parquet or JSON) are parsed like a CSV's.
                DataType::String => {
                    let mut micros = Vec::with_capacity(c.len());
                    for (i, v) in c.str()?.iter().enumerate() {
                        micros.push(match v.map(str::trim).filter(|t| !t.is_empty()) {
                            None => None,
                            Some(t) => match parse_timestamp(t) {
                                Ok(us) => Some(us),
                                Err(why) => {
                                    problems.push(Problem::new(place(lines, i), Some(name), why));
                                    None
                                }
                            },
                        });
                    }
                    Int64Chunked::new(c.name().clone(), micros)
                        .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
                        .into_column()
                }
                d => {
                    problems.push(Problem::new(Place::File, Some(name), format!("a timestamp column must hold timestamps, not {d}")));
                    c.clone()
                }
            },
            Some(Role::Prediction) => c.clone(),
            Some(Role::Feature) | None => {
                if roles.categorical.contains(name) && c.dtype() != &DataType::String {
                    c.cast(&DataType::String)?
                } else {
                    c.clone()
                }
            }
        };
        out.push(col);
    }
    problems.into_result(file)?;
    for m in &roles.class_models {
        out.push(argmax_class(&out, m)?);
    }
    let frame = DataFrame::new(raw.height(), out)?;
    Ok((frame, task, roles))
}

/// One label cell, independent of the column's type.
enum LabelCell {
    Missing,
    Num(f64),
    Text(String),
}

fn label_cells(c: &Column) -> Result<Vec<LabelCell>, IngestError> {
    let s = c.as_materialized_series();
    Ok(match s.dtype() {
        DataType::Boolean => s.bool()?.iter().map(|v| v.map_or(LabelCell::Missing, |b| LabelCell::Num(b as u8 as f64))).collect(),
        DataType::String => s
            .str()?
            .iter()
            .map(|v| match v.map(str::trim) {
                None | Some("") => LabelCell::Missing,
                Some(t) => match t.to_ascii_lowercase().as_str() {
                    "true" => LabelCell::Num(1.0),
                    "false" => LabelCell::Num(0.0),
                    _ => t.parse::<f64>().map(LabelCell::Num).unwrap_or_else(|_| LabelCell::Text(t.to_string())),
                },
            })
            .collect(),
        d if d.is_primitive_numeric() => s
            .cast(&DataType::Float64)?
            .f64()?
            .iter()
            .map(|v| v.map_or(LabelCell::Missing, |x| if x.is_nan() { LabelCell::Missing } else { LabelCell::Num(x) }))
            .collect(),
        _ => s.cast(&DataType::String)?.str()?.iter().map(|v| v.map_or(LabelCell::Missing, |t| LabelCell::Text(t.to_string()))).collect(),
    })
}

/// Binary when most labels are 0/1 (or true/false); regression when they are numbers that are not
/// a small set of class codes; multiclass otherwise.
fn infer_task(label: &Column, roles: &Roles, raw: &DataFrame) -> Result<Task, IngestError> {
    let cells = label_cells(label)?;
    let (mut binary, mut nums, mut texts, mut present) = (0usize, 0usize, 0usize, 0usize);
    let mut distinct: HashSet<u64> = HashSet::new();
    let mut all_int = true;
    for c in &cells {
        match c {
            LabelCell::Missing => {}
            LabelCell::Num(x) => {
                present += 1;
                nums += 1;
                if *x == 0.0 || *x == 1.0 {
                    binary += 1;
                }
                if x.fract() != 0.0 {
                    all_int = false;
                }
                if distinct.len() <= 50 {
                    distinct.insert(x.to_bits());
                }
            }
            LabelCell::Text(_) => {
                present += 1;
                texts += 1;
            }
        }
    }
    // One probability column per class (`prob_0`, `prob_1`, `prob_2`) settles it, even when most
    // labels are 0 or 1.
    if nums > 0 && all_int && distinct.len() <= 20 {
        let classes = sorted_classes(cells.iter().filter_map(|c| if let LabelCell::Num(x) = c { Some(fmt_class(*x)) } else { None }));
        if classes.len() > 2 && !roles::group_class_scores(&roles.scores, &classes).0.is_empty() {
            return Ok(Task::Multiclass);
        }
    }
    if present > 0 && binary * 2 > present {
        return Ok(Task::Binary);
    }
    if texts > 0 && texts * 2 > present {
        return Ok(Task::Multiclass);
    }
    // Numeric labels: integer class codes when the scores are integers from the same small set.
    if nums > 0 && all_int && distinct.len() <= 20 {
        let scores_are_codes = roles.scores.iter().all(|s| {
            raw.column(s)
                .ok()
                .and_then(|c| c.cast(&DataType::Float64).ok())
                .and_then(|c| c.f64().ok().map(|ca| ca.iter().flatten().all(|x| distinct.contains(&x.to_bits()))))
                .unwrap_or(false)
        });
        if scores_are_codes {
            return Ok(Task::Multiclass);
        }
    }
    Ok(Task::Regression)
}

fn normalise_label(c: &Column, task: Task, lines: Option<&[u64]>, problems: &mut Problems) -> Result<Column, IngestError> {
    let name = c.name().clone();
    let cells = label_cells(c)?;
    let col_name = name.to_string();
    let mut bad = |i: usize, msg: String| problems.push(Problem::new(place(lines, i), Some(&col_name), msg));
    Ok(match task {
        Task::Binary => {
            let v: Vec<Option<i64>> = cells
                .iter()
                .enumerate()
                .map(|(i, cell)| match cell {
                    LabelCell::Num(x) if *x == 0.0 || *x == 1.0 => Some(*x as i64),
                    LabelCell::Num(x) => {
                        bad(i, format!("'{x}' is not a binary label (0/1 or true/false)"));
                        None
                    }
                    LabelCell::Text(t) => {
                        bad(i, format!("'{t}' is not a binary label (0/1 or true/false)"));
                        None
                    }
                    LabelCell::Missing => {
                        bad(i, "the label is missing".into());
                        None
                    }
                })
                .collect();
            Column::new(name, v)
        }
        Task::Regression => {
            let v: Vec<Option<f64>> = cells
                .iter()
                .enumerate()
                .map(|(i, cell)| match cell {
                    LabelCell::Num(x) if x.is_finite() => Some(*x),
                    LabelCell::Num(x) => {
                        bad(i, format!("'{x}' is not a finite number"));
                        None
                    }
                    LabelCell::Text(t) => {
                        bad(i, format!("'{t}' is not a number (regression label)"));
                        None
                    }
                    LabelCell::Missing => {
                        bad(i, "the label is missing".into());
                        None
                    }
                })
                .collect();
            Column::new(name, v)
        }
        Task::Multiclass => {
            let v: Vec<Option<String>> = cells
                .iter()
                .enumerate()
                .map(|(i, cell)| match cell {
                    LabelCell::Num(x) => Some(fmt_class(*x)),
                    LabelCell::Text(t) => Some(t.clone()),
                    LabelCell::Missing => {
                        bad(i, "the label is missing".into());
                        None
                    }
                })
                .collect();
            Column::new(name, v)
        }
    })
}

fn fmt_class(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 { format!("{}", x as i64) } else { x.to_string() }
}

/// Class names sorted as the metrics engine orders them: integer codes numerically, else as text.
pub fn sorted_classes(values: impl Iterator<Item = String>) -> Vec<String> {
    let mut classes: Vec<String> = values.collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    if classes.iter().all(|c| c.parse::<i64>().is_ok()) {
        classes.sort_by_key(|c| c.parse::<i64>().unwrap_or(0));
    }
    classes
}

/// A per-class score: a probability, present in every row.
fn check_class_score(c: &Column, lines: Option<&[u64]>, problems: &mut Problems) -> Result<Column, IngestError> {
    let name = c.name().to_string();
    if !c.dtype().is_primitive_numeric() {
        problems.push(Problem::new(Place::File, Some(&name), format!("a per-class score column must hold probabilities, not {}", c.dtype())));
        return Ok(c.clone());
    }
    let f = c.cast(&DataType::Float64)?;
    for (i, v) in f.f64()?.iter().enumerate() {
        let msg = match v {
            None => "the class's score is missing".to_string(),
            Some(x) if x.is_nan() => "the class's score is NaN".to_string(),
            Some(x) if !(0.0..=1.0).contains(&x) => format!("{x} is outside [0, 1]; a per-class score is a probability"),
            _ => continue,
        };
        problems.push(Problem::new(place(lines, i), Some(&name), msg));
    }
    Ok(f)
}

/// The predicted class of a per-class model: the class with the highest score (the first of
/// tied ones, as numpy's `argmax`).
fn argmax_class(columns: &[Column], m: &roles::ClassModel) -> Result<Column, IngestError> {
    let mut scores = Vec::with_capacity(m.columns.len());
    for (_, col) in &m.columns {
        let c = columns.iter().find(|c| c.name().as_str() == col).ok_or_else(|| IngestError::Spec(format!("column '{col}' went missing")))?;
        scores.push(c.f64()?.iter().map(|v| v.unwrap_or(f64::NAN)).collect::<Vec<f64>>());
    }
    let n = scores.first().map_or(0, Vec::len);
    let predicted: Vec<&str> = (0..n)
        .map(|i| {
            let mut best = 0;
            for (j, s) in scores.iter().enumerate() {
                if s[i] > scores[best][i] {
                    best = j;
                }
            }
            m.columns[best].0.as_str()
        })
        .collect();
    Ok(Column::new(m.model.as_str().into(), predicted))
}

fn check_score(c: &Column, task: Task, lines: Option<&[u64]>, problems: &mut Problems, roles: &Roles) -> Result<Column, IngestError> {
    let name = c.name().to_string();
    if task == Task::Multiclass {
        if c.dtype().is_float() && c.f64()?.iter().flatten().any(|x| x.fract() != 0.0) {
            problems.push(Problem::new(
                Place::File,
                Some(&name),
                format!(
                    "holds fractional numbers, so it is no predicted class; a multiclass model is either a column of predicted \
                     classes or one probability column per class of the label, named <model>_<class>{}",
                    if roles.class_models.is_empty() { "" } else { " (as this file's other models are)" }
                ),
            ));
            return Ok(c.clone());
        }
        // A predicted class: compared as text with the label.
        let s = c.cast(&DataType::String)?;
        for (i, v) in s.str()?.iter().enumerate() {
            if v.is_none_or(|t| t.trim().is_empty()) {
                problems.push(Problem::new(place(lines, i), Some(&name), "the predicted class is missing"));
            }
        }
        return Ok(match c.dtype() {
            DataType::Float64 => Column::new(c.name().clone(), c.f64()?.iter().map(|v| v.map(fmt_class)).collect::<Vec<_>>()),
            _ => s,
        });
    }
    if !c.dtype().is_primitive_numeric() {
        problems.push(Problem::new(Place::File, Some(&name), format!("a score column must hold numbers, not {}", c.dtype())));
        return Ok(c.clone());
    }
    let f = c.cast(&DataType::Float64)?;
    for (i, v) in f.f64()?.iter().enumerate() {
        let msg = match v {
            None => Some("the score is missing".to_string()),
            Some(x) if x.is_nan() => Some("the score is NaN".to_string()),
            Some(x) if x.is_infinite() => Some(format!("the score is {x}")),
            Some(x) if task == Task::Binary && !(0.0..=1.0).contains(&x) => {
                Some(format!("{x} is outside [0, 1]; a binary task's score is a probability"))
            }
            _ => None,
        };
        if let Some(m) = msg {
            problems.push(Problem::new(place(lines, i), Some(&name), m));
        }
    }
    Ok(f)
}

fn check_weight(c: &Column, lines: Option<&[u64]>, problems: &mut Problems) -> Result<Column, IngestError> {
    let name = c.name().to_string();
    if !c.dtype().is_primitive_numeric() {
        problems.push(Problem::new(Place::File, Some(&name), "a weight column must hold numbers"));
        return Ok(c.clone());
    }
    let f = c.cast(&DataType::Float64)?;
    for (i, v) in f.f64()?.iter().enumerate() {
        match v {
            Some(x) if x.is_finite() && x >= 0.0 => {}
            Some(x) => problems.push(Problem::new(place(lines, i), Some(&name), format!("weight {x} is not a finite number >= 0"))),
            None => problems.push(Problem::new(place(lines, i), Some(&name), "the weight is missing")),
        }
    }
    Ok(f)
}

fn check_id(c: &Column, lines: Option<&[u64]>, problems: &mut Problems) -> Result<Column, IngestError> {
    let name = c.name().to_string();
    let s = c.cast(&DataType::String)?;
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(s.len());
    for (i, v) in s.str()?.iter().enumerate() {
        match v {
            None => problems.push(Problem::new(place(lines, i), Some(&name), "the id is missing")),
            Some(id) => {
                if let Some(first) = seen.insert(id, i) {
                    let where_first = match place(lines, first) {
                        Place::Line(l) => format!("line {l}"),
                        Place::Row(r) => format!("row {r}"),
                        _ => String::new(),
                    };
                    problems.push(Problem::new(place(lines, i), Some(&name), format!("id '{id}' appears again (first on {where_first}); ids must be unique")));
                }
            }
        }
    }
    Ok(s)
}
