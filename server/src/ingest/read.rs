//! Reading a file into a raw table: Parquet as it is; CSV / JSON Lines in two passes (infer each
//! column's type, then build typed columns).

use super::*;

pub(super) fn read_parquet(path: &Path, file: &str, limits: &IngestLimits) -> Result<DataFrame, IngestError> {
    let f = std::fs::File::open(path).map_err(|source| IngestError::Io { file: file.into(), source })?;
    let unreadable = |e: PolarsError| IngestError::one(file, Place::File, None, format!("not a readable Parquet file: {e}"));
    let mut reader = ParquetReader::new(f);
    // The footer first: a small, highly compressed file can declare any size; refuse it before
    // decoding a single page.
    let corrupt = |_| IngestError::one(file, Place::File, None, "not a readable Parquet file (its footer is corrupt)");
    let (rows, columns, bytes) = {
        let md = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.get_metadata().cloned())).map_err(corrupt)?.map_err(unreadable)?;
        let bytes: u64 = md.row_groups.iter().map(|g| g.total_byte_size() as u64).sum();
        (md.num_rows as u64, md.schema_descr.columns().len(), bytes)
    };
    limits.too_many_columns(file, columns)?;
    let counted = limits.stop_after_rows.map_or(rows, |n| rows.min(n));
    if let Some(why) = limits.over(counted, columns) {
        return Err(IngestError::one(file, Place::File, None, format!("{rows} rows of {columns} columns: {why}")));
    }
    if limits.stop_after_rows.is_none() && bytes > limits.max_uncompressed_bytes {
        return Err(IngestError::one(
            file,
            Place::File,
            None,
            format!("{} MiB uncompressed, more than the limit of {} MiB (STRATA_MAX_UNCOMPRESSED_MB)", bytes >> 20, limits.max_uncompressed_bytes >> 20),
        ));
    }
    check_pages(path, file, limits)?;
    if let Some(n) = limits.stop_after_rows {
        reader = reader.with_slice(Some((0, n as usize)));
    }
    // A crafted file can make the decoder panic: that is a file that cannot be read, not a crash.
    let df = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.finish()))
        .map_err(|_| IngestError::one(file, Place::File, None, "not a readable Parquet file (its pages are corrupt)"))?
        .map_err(unreadable)?;
    if limits.stop_after_rows.is_none() && df.height() as u64 != rows {
        return Err(IngestError::one(file, Place::File, None, format!("the footer declares {rows} rows but the file holds {}", df.height())));
    }
    let mut names = HashSet::new();
    for n in df.get_column_names() {
        if !names.insert(n.to_string()) {
            return Err(IngestError::one(file, Place::Header, Some(n), "this column name appears twice"));
        }
    }
    standard_types(&df, file)
}

/// Brings every column of a Parquet table to the few types the rest of Strata knows (an upload's
/// and an external dataset's batches alike).
pub(super) fn standard_types(df: &DataFrame, file: &str) -> Result<DataFrame, IngestError> {
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

/// Walks every page header of every column chunk before polars decodes a single page, and refuses
/// a file whose headers cannot be true: a page holding a negative number of values, or more values
/// than its column chunk, pages summing to another count than the chunk, a flat column whose chunk
/// holds another count than its row group's rows, a page larger than the uncompressed limit.
/// Polars trusts these numbers when it sizes its buffers; a negative count becomes a 2^61-byte
/// allocation, and an allocation failure aborts the whole server (no panic to catch). Found by the
/// ingest fuzz test; `parquet_page_headers_are_checked_before_decoding` keeps the case.
fn check_pages(path: &Path, file: &str, limits: &IngestLimits) -> Result<(), IngestError> {
    use polars_parquet::parquet::page::{CompressedPage, DataPageHeader};
    use polars_parquet::parquet::read::{get_page_iterator, read_metadata};
    let corrupt = |why: String| IngestError::one(file, Place::File, None, format!("not a readable Parquet file ({why})"));
    let bytes = std::fs::read(path).map_err(|source| IngestError::Io { file: file.into(), source })?;
    let buffer = polars_buffer::Buffer::from_vec(bytes);
    let md = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_metadata(&mut std::io::Cursor::new(buffer.as_ref()))))
        .map_err(|_| corrupt("its footer is corrupt".into()))?
        .map_err(|e| corrupt(e.to_string()))?;
    let max_page = usize::try_from(limits.max_uncompressed_bytes).unwrap_or(usize::MAX);
    let mut rows = 0u64;
    for (g, group) in md.row_groups.iter().enumerate() {
        let group_rows = group.num_rows() as u64;
        rows += group_rows;
        for chunk in group.parquet_columns() {
            let name = chunk.descriptor().path_in_schema.join(".");
            let declared = chunk.num_values();
            let flat = chunk.descriptor().descriptor.max_rep_level == 0;
            if declared < 0 || (flat && declared as u64 != group_rows) || (!flat && declared as u64 > limits.max_cells) {
                return Err(corrupt(format!("column {name:?} in row group {g} declares {declared} values for {group_rows} rows")));
            }
            let pages = get_page_iterator(chunk, std::io::Cursor::new(buffer.clone()), Vec::new(), max_page).map_err(|e| corrupt(e.to_string()))?;
            let mut seen = 0u64;
            for page in pages {
                let page = page.map_err(|e| corrupt(format!("column {name:?}: {e}")))?;
                let CompressedPage::Data(page) = page else { continue };
                if page.uncompressed_size() > max_page {
                    return Err(corrupt(format!("column {name:?} has a page of {} bytes uncompressed", page.uncompressed_size())));
                }
                let size = page.compressed_size();
                let ok = match page.header() {
                    DataPageHeader::V1(h) => h.num_values >= 0,
                    DataPageHeader::V2(h) => {
                        let levels = |n: i32| n >= 0 && n as usize <= size;
                        h.num_values >= 0 && (0..=h.num_values).contains(&h.num_nulls) && (0..=h.num_values).contains(&h.num_rows)
                            && levels(h.definition_levels_byte_length) && levels(h.repetition_levels_byte_length)
                    }
                };
                if !ok {
                    return Err(corrupt(format!("column {name:?} has a page header with a negative or impossible count")));
                }
                let values = page.num_values() as u64;
                seen += values;
                if seen > declared as u64 {
                    return Err(corrupt(format!("column {name:?} in row group {g} holds more values than its {declared}")));
                }
            }
            if seen != declared as u64 {
                return Err(corrupt(format!("column {name:?} in row group {g} holds {seen} values, not the {declared} it declares")));
            }
        }
    }
    if rows != md.num_rows as u64 {
        return Err(corrupt(format!("its row groups hold {rows} rows, not the {} its footer declares", md.num_rows)));
    }
    Ok(())
}

/// What the first pass learned about a text column.
#[derive(Default, Clone)]
pub(super) struct TextStats {
    pub(super) nonempty: u64,
    pub(super) ints: u64,
    pub(super) floats: u64,
    pub(super) bools: u64,
    pub(super) other: u64,
    pub(super) other_values: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TextType {
    Int,
    Float,
    Bool,
    Str,
    Timestamp,
}

/// `s.trim()`, without looking at the characters when the first and last bytes are ASCII and not
/// white space (the common case: trimming is per cell).
pub(super) fn trim(s: &str) -> &str {
    let b = s.as_bytes();
    let plain = |c: u8| c.is_ascii() && !matches!(c, b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' ');
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) if plain(f) && plain(l) => s,
        _ => s.trim(),
    }
}

/// A missing-value marker of a feature column (the markers are at most 4 bytes long).
fn is_missing_marker(s: &str) -> bool {
    s.len() <= 4 && MISSING_MARKERS.contains(&s)
}

pub(super) fn classify(s: &str) -> (bool, bool, bool) {
    // (integer, float, bool)
    if s.parse::<i64>().is_ok() {
        return (true, true, false);
    }
    if s.parse::<f64>().is_ok() {
        return (false, true, false);
    }
    let b = s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false");
    (false, false, b)
}

/// Rows between two progress reports (and cancel checks) while one reader reads a text file.
const REPORT_EVERY: u64 = 4096;

/// How `read_text` treats roles it cannot resolve from the spec and the names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RoleCheck {
    /// Ingest: a missing label or score column is an error.
    Strict,
    /// Preview: fall back to the roles the names suggest, so the user can still pick them.
    Guess,
}

/// Pass 1 over some consecutive records of a text file: what each column holds. Parts of a file
/// merge in file order into the census of the whole (the first distinct odd values kept).
pub(super) struct Census {
    pub(super) stats: Vec<TextStats>,
    pub(super) rows: u64,
}

impl Census {
    pub(super) fn new(columns: usize) -> Self {
        Census { stats: vec![TextStats::default(); columns], rows: 0 }
    }

    pub(super) fn take(&mut self, cells: &text::Cells<'_>) {
        self.rows += 1;
        for (st, cell) in self.stats.iter_mut().zip(cells) {
            let Some(s) = cell.as_deref() else { continue };
            let s = trim(s);
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
    }

    /// The census of this part's records followed by `next`'s.
    pub(super) fn merge(&mut self, next: Census) {
        self.rows += next.rows;
        for (a, b) in self.stats.iter_mut().zip(next.stats) {
            a.nonempty += b.nonempty;
            a.ints += b.ints;
            a.floats += b.floats;
            a.bools += b.bools;
            a.other += b.other;
            for v in b.other_values {
                if a.other_values.len() < 4 && !a.other_values.contains(&v) {
                    a.other_values.push(v);
                }
            }
        }
    }
}

impl text::RecordFold for Census {
    fn record(&mut self, _line: u64, cells: &text::Cells<'_>) -> bool {
        self.take(cells);
        true
    }
}

/// What pass 2 makes of each column.
pub(super) struct Plan<'a> {
    pub(super) columns: &'a [String],
    pub(super) types: &'a [TextType],
    pub(super) is_feature: &'a [bool],
}

/// One typed column being built; text in parts (one per piece of the file) and a builder for
/// the records still coming.
pub(super) enum Builder {
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
    Str(StringChunkedBuilder, Vec<StringChunked>),
    Ts(Vec<Option<i64>>),
}

/// Pass 2 over some consecutive records: typed columns, each record's line and the cells that
/// are not what their column holds. Parts append in file order.
pub(super) struct Built<'a> {
    pub(super) plan: &'a Plan<'a>,
    pub(super) builders: Vec<Builder>,
    pub(super) lines: Vec<u64>,
    pub(super) problems: Problems,
}

impl<'a> Built<'a> {
    pub(super) fn new(plan: &'a Plan<'a>, cap: usize) -> Self {
        let builders = plan
            .columns
            .iter()
            .zip(plan.types)
            .map(|(name, t)| match t {
                TextType::Int => Builder::Int(Vec::with_capacity(cap)),
                TextType::Float => Builder::Float(Vec::with_capacity(cap)),
                TextType::Bool => Builder::Bool(Vec::with_capacity(cap)),
                TextType::Str => Builder::Str(StringChunkedBuilder::new(name.as_str().into(), cap), Vec::new()),
                TextType::Timestamp => Builder::Ts(Vec::with_capacity(cap)),
            })
            .collect();
        Built { plan, builders, lines: Vec::with_capacity(cap), problems: Problems::default() }
    }

    /// Adds one record; always goes on (a bad value is a problem of its line, not a stop).
    pub(super) fn take(&mut self, line: u64, cells: &text::Cells<'_>) -> bool {
        let Plan { columns, is_feature, .. } = *self.plan;
        let problems = &mut self.problems;
        self.lines.push(line);
        for (j, (b, cell)) in self.builders.iter_mut().zip(cells).enumerate() {
            let raw = cell.as_deref().map(trim).unwrap_or("");
            let missing = if is_feature[j] { is_missing_marker(raw) } else { raw.is_empty() };
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
                Builder::Str(sb, _) => {
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
        true
    }

    /// This part's columns followed by `next`'s (its problems are the caller's to merge).
    pub(super) fn append(&mut self, next: Built<'a>) {
        self.lines.extend(next.lines);
        for ((a, b), name) in self.builders.iter_mut().zip(next.builders).zip(self.plan.columns) {
            match (a, b) {
                (Builder::Int(a), Builder::Int(b)) | (Builder::Ts(a), Builder::Ts(b)) => a.extend(b),
                (Builder::Float(a), Builder::Float(b)) => a.extend(b),
                (Builder::Bool(a), Builder::Bool(b)) => a.extend(b),
                (Builder::Str(mine, parts), Builder::Str(sb, more)) => {
                    // This part's own records first.
                    parts.push(std::mem::replace(mine, StringChunkedBuilder::new(name.as_str().into(), 0)).finish());
                    parts.extend(more);
                    parts.push(sb.finish());
                }
                _ => unreachable!("both parts follow one plan"),
            }
        }
    }
}

impl text::RecordFold for Built<'_> {
    fn record(&mut self, line: u64, cells: &text::Cells<'_>) -> bool {
        self.take(line, cells)
    }
}

/// Reads a CSV / JSON Lines file into typed columns: pass 1 infers, pass 2 builds.
/// Returns the frame and, per row, the line it came from.
/// Reports into `progress` (steps: bytes, twice the file's size over both passes; rows read) and
/// stops when it is cancelled.
pub(super) fn read_text(
    path: &Path,
    file: &str,
    format: TextFormat,
    spec: &IngestSpec,
    limits: &IngestLimits,
    check: RoleCheck,
    progress: &crate::progress::Progress,
) -> Result<(DataFrame, Vec<u64>), IngestError> {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0).max(1);
    progress.stage("reading");
    progress.add_total(2 * size);
    let cancelled = || IngestError::one(file, Place::File, None, "the upload was cancelled");
    // A CSV piece is about a block shared among the threads: progress counts bytes by pieces.
    let piece_bytes = text::CSV_BLOCK_BYTES as u64 / std::thread::available_parallelism().map(|t| t.get() as u64).unwrap_or(1).max(1);
    let columns = text::read_columns(path, file, format, limits.max_columns)?;
    limits.too_many_columns(file, columns.len())?;
    if columns.is_empty() || (columns.len() == 1 && columns[0].is_empty()) {
        return Err(IngestError::one(file, Place::File, None, "the file has no columns"));
    }
    check_names(&columns, file)?;

    // Pass 1: what does each column hold? (A CSV on every core, in pieces; see `Census`.)
    let mut problems = Problems::default();
    let mut census = Census::new(columns.len());
    let mut over = None;
    match format {
        TextFormat::Csv { delimiter } if limits.stop_after_rows.is_none() => {
            let new = || Census::new(columns.len());
            let mut pieces = 0u64;
            text::scan_csv_parallel(path, file, delimiter, &columns, text::CSV_BLOCK_BYTES, &new, &mut |part, structural| {
                for p in structural.0 {
                    problems.push(p);
                }
                census.merge(part);
                pieces += 1;
                progress.reach((pieces * piece_bytes).min(size));
                progress.rows(census.rows);
                if problems.full() || progress.is_cancelled() {
                    return false;
                }
                over = limits.over(census.rows, columns.len());
                over.is_none()
            })?;
        }
        _ => {
            // One reader knows no byte offsets: the cells' lengths and one separator each come close.
            let mut bytes = 0u64;
            text::scan_records(path, file, format, &columns, &mut problems, &mut |_, cells| {
                if limits.stop_after_rows.is_some_and(|n| census.rows >= n) {
                    return false;
                }
                if let Some(why) = limits.over(census.rows + 1, columns.len()) {
                    over = Some(why);
                    return false;
                }
                census.take(cells);
                bytes += cells.iter().map(|c| c.as_deref().map_or(0, str::len) as u64 + 1).sum::<u64>();
                if census.rows % REPORT_EVERY == 0 {
                    progress.reach(bytes.min(size));
                    progress.rows(census.rows);
                    if progress.is_cancelled() {
                        return false;
                    }
                }
                true
            })?
        }
    }
    if progress.is_cancelled() {
        return Err(cancelled());
    }
    progress.reach(size);
    progress.rows(census.rows);
    let (stats, rows) = (census.stats, census.rows);
    if let Some(why) = over {
        return Err(IngestError::one(file, Place::File, None, why));
    }
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
    let roles = match roles::resolve(&columns, &kinds, spec, file) {
        Ok(r) => r,
        Err(_) if check == RoleCheck::Guess => roles::guess(&columns, &kinds),
        Err(e) => return Err(e),
    };
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

    // Pass 2: build typed columns (a CSV in pieces on every core, as in pass 1).
    let cap = rows as usize;
    let is_feature: Vec<bool> = columns.iter().map(|c| roles.role_of(c).is_none_or(|r| r == Role::Feature)).collect();
    let plan = Plan { columns: &columns, types: &types, is_feature: &is_feature };
    let mut built = Built::new(&plan, cap);
    let mut problems = Problems::default();
    match format {
        TextFormat::Csv { delimiter } if limits.stop_after_rows.is_none() => {
            // Pieces are about a block over the threads: room for their rows up front.
            let body = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            let per_piece = (text::CSV_BLOCK_BYTES as u64 * rows / body.max(1)) as usize / std::thread::available_parallelism().map(|t| t.get()).unwrap_or(1);
            let new = || Built::new(&plan, (per_piece + per_piece / 8).min(cap));
            text::scan_csv_parallel(path, file, delimiter, &columns, text::CSV_BLOCK_BYTES, &new, &mut |mut part, _structural| {
                for p in std::mem::take(&mut part.problems).0 {
                    problems.push(p);
                }
                built.append(part);
                progress.reach(size + size * built.lines.len() as u64 / rows.max(1));
                !progress.is_cancelled()
            })?;
            if progress.is_cancelled() {
                return Err(cancelled());
            }
            if built.lines.len() != cap {
                return Err(IngestError::one(file, Place::File, None, "the file changed while it was read"));
            }
        }
        _ => text::scan_records(path, file, format, &columns, &mut Problems::default(), &mut |line, cells| {
            // The first pass counted the rows (and may have stopped early, for a preview).
            if built.lines.len() as u64 % REPORT_EVERY == 0 {
                progress.reach(size + size * built.lines.len() as u64 / rows.max(1));
                if progress.is_cancelled() {
                    return false;
                }
            }
            built.lines.len() < cap && built.take(line, cells)
        })?,
    }
    if progress.is_cancelled() {
        return Err(cancelled());
    }
    progress.reach(2 * size);
    progress.stage("checking");
    for p in std::mem::take(&mut built.problems).0 {
        problems.push(p);
    }
    let Built { builders, lines, .. } = built;
    problems.into_result(file)?;
    let height = lines.len();
    let cols: Vec<Column> = columns
        .iter()
        .zip(builders)
        .map(|(name, b)| -> PolarsResult<Column> {
            let name: PlSmallStr = name.as_str().into();
            match b {
                Builder::Int(v) => Ok(Column::new(name, v)),
                Builder::Float(v) => Ok(Column::new(name, v)),
                Builder::Bool(v) => Ok(Column::new(name, v)),
                Builder::Str(sb, mut parts) => {
                    parts.push(sb.finish());
                    let mut parts = parts.into_iter();
                    let mut ca = parts.next().unwrap_or_else(|| StringChunked::full_null(name.clone(), 0));
                    for p in parts {
                        ca.append_owned(p)?;
                    }
                    Ok(ca.rechunk().into_owned().with_name(name).into_column())
                }
                Builder::Ts(v) => Ok(Int64Chunked::new(name, v)
                    .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
                    .into_column()),
            }
        })
        .collect::<PolarsResult<_>>()?;
    Ok((DataFrame::new(height, cols)?, lines))
}
