//! CSV / Parquet / JSON Lines -> a validated run table. One code path for the page, API and CLI.
//!
//! Steps: detect the format; read column names; infer each column's type (text formats: a first
//! pass over the file); resolve roles from the spec and from names; build typed columns (second
//! pass), checking every cell that has a role; check the label against the task and the scores
//! against the label; assemble the stored table. Every problem names the file, the line (or
//! Parquet row) and the column; up to [`error::MAX_PROBLEMS`] are reported at once.

pub mod error;
mod checks;
pub mod dataset;
mod read;
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
// The steps' files see each other's items through these (and `use super::*`).
#[allow(unused_imports)]
use self::{checks::*, read::*};
pub use checks::sorted_classes;

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

/// How much a file may hold: checked while reading (a Parquet file's footer before any decoding;
/// a text file's header and JSON Lines keys as they are met; rows during the first pass), so an
/// oversized file costs little before it is refused.
#[derive(Clone, Copy, Debug)]
pub struct IngestLimits {
    pub max_rows: u64,
    pub max_columns: usize,
    /// Rows × columns.
    pub max_cells: u64,
    /// A Parquet file's uncompressed size, as its footer declares it.
    pub max_uncompressed_bytes: u64,
    /// Stop quietly after this many rows (the preview reads only what it shows, and a little more
    /// to infer types).
    pub stop_after_rows: Option<u64>,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits { max_rows: 50_000_000, max_columns: 2000, max_cells: 500_000_000, max_uncompressed_bytes: 8 << 30, stop_after_rows: None }
    }
}

impl IngestLimits {
    fn too_many_columns(&self, file: &str, n: usize) -> Result<(), IngestError> {
        if n > self.max_columns {
            return Err(IngestError::one(file, Place::File, None, format!("more than {} columns, the limit (STRATA_MAX_COLUMNS)", self.max_columns)));
        }
        Ok(())
    }

    /// Whether `rows` rows of `columns` columns are over a limit, and which (for the message).
    fn over(&self, rows: u64, columns: usize) -> Option<String> {
        if rows > self.max_rows {
            Some(format!("more than {} rows, the limit (STRATA_MAX_ROWS)", self.max_rows))
        } else if rows.saturating_mul(columns as u64) > self.max_cells {
            Some(format!("more than {} cells (rows × columns), the limit (STRATA_MAX_CELLS)", self.max_cells))
        } else {
            None
        }
    }
}

/// Reads, checks and assembles a run table from a file on disk (default limits).
pub fn ingest_file(path: &Path, file: &str, spec: &IngestSpec) -> Result<Ingested, IngestError> {
    ingest_file_within(path, file, spec, &IngestLimits::default())
}

/// Reads, checks and assembles a run table from a file on disk, within `limits`.
pub fn ingest_file_within(path: &Path, file: &str, spec: &IngestSpec, limits: &IngestLimits) -> Result<Ingested, IngestError> {
    ingest_file_tracked(path, file, spec, limits, &crate::progress::Progress::new())
}

/// [`ingest_file_within`] reporting the bytes and rows read into `progress`, and stopping (an
/// error) when it is cancelled.
pub fn ingest_file_tracked(path: &Path, file: &str, spec: &IngestSpec, limits: &IngestLimits, progress: &crate::progress::Progress) -> Result<Ingested, IngestError> {
    let format = detect_format(path, file, spec.delimiter)?;
    let (raw, lines) = match format {
        Format::Parquet => {
            progress.stage("reading");
            let frame = read_parquet(path, file, limits)?;
            progress.rows(frame.height() as u64);
            (frame, None)
        }
        Format::Text(t) => {
            let (frame, lines) = read_text(path, file, t, spec, limits, RoleCheck::Strict, progress, Some(SAMPLE_ROWS))?;
            (frame, Some(lines))
        }
    };
    let (frame, task, roles) = finish(raw, lines.as_deref(), file, spec)?;
    Ok(Ingested { frame, task, roles })
}

/// Checks roles and values of a raw table (typed as [`dataset`] reads it) and assembles the
/// run table, as an upload's: an external dataset's sample at registration and each of its
/// batches later (with the task fixed, so every batch gets the same).
pub fn assemble(raw: DataFrame, file: &str, spec: &IngestSpec) -> Result<Ingested, IngestError> {
    let (frame, task, roles) = finish(raw, None, file, spec)?;
    Ok(Ingested { frame, task, roles })
}

/// What Strata would make of a file's first rows: for the upload page's preview. Types are
/// inferred from the first 1,000 rows; nothing past them is read.
pub fn preview_file(path: &Path, file: &str, spec: &IngestSpec, max_rows: usize) -> Result<Preview, IngestError> {
    let format = detect_format(path, file, spec.delimiter)?;
    let limits = IngestLimits { stop_after_rows: Some(1000.max(max_rows as u64)), ..IngestLimits::default() };
    let raw = match format {
        Format::Parquet => read_parquet(path, file, &limits)?,
        Format::Text(t) => read_text(path, file, t, spec, &limits, RoleCheck::Guess, &crate::progress::Progress::new(), None)?.0,
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
    match utc_seconds(s) {
        Some(secs) => Ok(secs * 1_000_000),
        None => parse_timestamp_chrono(s),
    }
}

/// The common form `YYYY-MM-DDTHH:MM:SSZ` read without chrono (a timestamp column is parsed once
/// per row): seconds since the epoch, or `None` for anything else (chrono then decides, with its
/// message), including leap seconds and impossible dates. `fast_timestamps_agree_with_chrono`
/// checks it against chrono.
fn utc_seconds(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        b[from..to].iter().try_fold(0i64, |acc, d| d.is_ascii_digit().then(|| acc * 10 + (d - b'0') as i64))
    };
    let (y, m, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hh, mm, ss) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&m) || d < 1 || d > month_days[(m - 1) as usize] || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    // Days from the civil date (H. Hinnant's algorithm; years 0..=9999 here, so no negative era).
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// [`parse_timestamp`] by chrono, every accepted form.
fn parse_timestamp_chrono(s: &str) -> Result<i64, String> {
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
    let roles = roles::resolve(&names, &kinds, spec, file)?;
    let mut problems = Problems::default();

    // The id check (a hash of every id) is the longest single check: it runs on a thread of its
    // own while the others go on, and its problems are merged in column order as before.
    let id_name = roles.id.clone().filter(|id| !roles.ignore.contains(id));
    std::thread::scope(|scope| -> Result<_, IngestError> {
        let id_check = match &id_name {
            Some(id) => {
                let c = raw.column(id)?;
                Some(scope.spawn(move || {
                    let mut problems = Problems::default();
                    check_id(c, lines, &mut problems).map(|col| (col, problems))
                }))
            }
            None => None,
        };
        finish_checked(&raw, lines, file, spec, roles, &mut problems, id_check)
    })
}

/// [`finish`] once the roles are known, the id column being checked by `id_check`.
fn finish_checked(
    raw: &DataFrame,
    lines: Option<&[u64]>,
    file: &str,
    spec: &IngestSpec,
    mut roles: Roles,
    problems: &mut Problems,
    mut id_check: Option<std::thread::ScopedJoinHandle<'_, Result<(Column, Problems), IngestError>>>,
) -> Result<(DataFrame, Task, Roles), IngestError> {
    let names: Vec<String> = raw.get_column_names().iter().map(|s| s.to_string()).collect();
    let label_col = raw.column(&roles.label)?;
    let label_cells = label_cells(label_col)?;
    let task = match spec.task {
        Some(t) => t,
        None => infer_task(&label_cells, &roles, raw)?,
    };
    let label = normalise_label(label_col.name().clone(), &label_cells, task, lines, problems)?;
    drop(label_cells);
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
            Some(Role::Score) if roles.class_model_of(name).is_some() => check_class_score(c, lines, problems)?,
            Some(Role::Score) => check_score(c, task, lines, problems, &roles)?,
            Some(Role::Weight) => check_weight(c, lines, problems)?,
            Some(Role::Id) => {
                let check = id_check.take().expect("the id column is checked once");
                let (col, mine) = check.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?;
                for p in mine.0 {
                    problems.push(p);
                }
                col
            }
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
    std::mem::take(problems).into_result(file)?;
    for m in &roles.class_models {
        out.push(argmax_class(&out, m)?);
    }
    let frame = DataFrame::new(raw.height(), out)?;
    Ok((frame, task, roles))
}

/// A xorshift generator for tests' random inputs (reproducible from its seed).
#[cfg(test)]
pub(super) fn test_rng(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ids' faults split among the cores are the one-table scan's: the first `MAX_PROBLEMS`
    /// missing or repeated ids in row order, each repeat naming its id's first row.
    #[test]
    fn id_faults_split_among_cores_are_the_one_table_scans() {
        let mut next = test_rng(0x9E37_79B9_7F4A_7C15);
        for (rows, distinct, missing_every) in [(10usize, 20u64, 0u64), (1000, 990, 0), (200_000, 199_990, 0), (200_000, 1_000_000_000, 50_000), (150_000, 150, 7)] {
            let ids: Vec<Option<String>> = (0..rows)
                .map(|_| {
                    let r = next();
                    if missing_every > 0 && r % missing_every == 0 { None } else { Some(format!("id-{}", r % distinct)) }
                })
                .collect();
            let ids: Vec<Option<&str>> = ids.iter().map(|s| s.as_deref()).collect();
            let mut first = HashMap::new();
            let mut expected = Vec::new();
            for (i, id) in ids.iter().enumerate() {
                match id {
                    None => expected.push((i, None)),
                    Some(id) => {
                        if let Some(&f) = first.get(id) {
                            expected.push((i, Some(f)));
                        } else {
                            first.insert(*id, i);
                        }
                    }
                }
            }
            expected.truncate(error::MAX_PROBLEMS);
            assert_eq!(id_faults(&ids), expected, "{rows} rows of {distinct} ids");
        }
    }

    /// The fast path gives chrono's microseconds for every string of its form it accepts, and
    /// leaves everything else (impossible dates, leap seconds, other forms) to chrono.
    #[test]
    fn fast_timestamps_agree_with_chrono() {
        let mut r = crate::eval::rng::SplitMix(19);
        let mut pick = |lo: u64, hi: u64| lo + r.next() % (hi - lo + 1);
        let mut fast = 0;
        for i in 0..200_000 {
            let (y, m, d) = if i % 2 == 0 { (pick(1900, 2100), pick(1, 12), pick(1, 28)) } else { (pick(0, 9999), pick(0, 13), pick(0, 32)) };
            let (hh, mm, ss) = if i % 3 == 0 { (pick(0, 25), pick(0, 61), pick(0, 61)) } else { (pick(0, 23), pick(0, 59), pick(0, 59)) };
            let s = format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z");
            let got = utc_seconds(&s);
            fast += usize::from(got.is_some());
            match got {
                Some(secs) => assert_eq!(Ok(secs * 1_000_000), parse_timestamp_chrono(&s), "{s}"),
                None => assert_eq!(parse_timestamp(&s), parse_timestamp_chrono(&s), "{s}"),
            }
        }
        assert!(fast > 100_000, "the fast path took {fast}");
        for s in ["2024-02-29T12:00:00Z", "2023-02-29T12:00:00Z", "2016-12-31T23:59:60Z", "2024-01-01 12:00:00", "2024-01-01T12:00:00+02:00", "2024-01-01", "2024-1-01T12:00:00Z", "+024-01-01T12:00:00Z", "2024-01-01T12:00:00z"] {
            assert_eq!(parse_timestamp(s), parse_timestamp_chrono(s), "{s}");
        }
    }
}
