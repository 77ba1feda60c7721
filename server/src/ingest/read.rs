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
    Int(Nums<i64>),
    Float(Nums<f64>),
    Bool(Vec<Option<bool>>),
    Str(StringChunkedBuilder, Vec<StringChunked>),
    Ts(Nums<i64>),
}

/// A numeric column being built as Arrow holds it: the values (0 where one is missing) and,
/// only once a value is missing, a validity bitmap. Half the bytes of `Vec<Option<f64>>`, and
/// the column is made of it without another pass.
pub(super) struct Nums<T> {
    values: Vec<T>,
    valid: Option<polars_arrow::bitmap::MutableBitmap>,
}

impl<T: Copy + Default> Nums<T> {
    fn with_capacity(cap: usize) -> Self {
        Nums { values: Vec::with_capacity(cap), valid: None }
    }

    #[inline]
    fn push(&mut self, v: Option<T>) {
        match v {
            Some(x) => {
                self.values.push(x);
                if let Some(valid) = &mut self.valid {
                    valid.push(true);
                }
            }
            None => {
                let valid = self.valid.get_or_insert_with(|| {
                    let mut b = polars_arrow::bitmap::MutableBitmap::with_capacity(self.values.capacity());
                    b.extend_constant(self.values.len(), true);
                    b
                });
                valid.push(false);
                self.values.push(T::default());
            }
        }
    }

    /// This column's values followed by `next`'s.
    fn append(&mut self, next: Nums<T>) {
        match (&mut self.valid, next.valid) {
            (None, None) => {}
            (Some(mine), None) => mine.extend_constant(next.values.len(), true),
            (mine, Some(theirs)) => {
                let mine = mine.get_or_insert_with(|| {
                    let mut b = polars_arrow::bitmap::MutableBitmap::with_capacity(self.values.len() + next.values.len());
                    b.extend_constant(self.values.len(), true);
                    b
                });
                mine.extend_from_bitmap(&theirs.into());
            }
        }
        self.values.extend_from_slice(&next.values);
    }

    /// The values and their validity (none when every value is there).
    fn finish(self) -> (Vec<T>, Option<polars_arrow::bitmap::Bitmap>) {
        (self.values, self.valid.map(Into::into))
    }
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
                TextType::Int => Builder::Int(Nums::with_capacity(cap)),
                TextType::Float => Builder::Float(Nums::with_capacity(cap)),
                TextType::Bool => Builder::Bool(Vec::with_capacity(cap)),
                TextType::Str => Builder::Str(StringChunkedBuilder::new(name.as_str().into(), cap), Vec::new()),
                TextType::Timestamp => Builder::Ts(Nums::with_capacity(cap)),
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
                (Builder::Int(a), Builder::Int(b)) | (Builder::Ts(a), Builder::Ts(b)) => a.append(b),
                (Builder::Float(a), Builder::Float(b)) => a.append(b),
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

/// Records a CSV's types are guessed from before the one pass that reads it all (about 8 MB of a
/// file of 18 columns).
pub(super) const SAMPLE_ROWS: u64 = 50_000;

/// Reads a CSV / JSON Lines file into typed columns: pass 1 infers, pass 2 builds.
/// Returns the frame and, per row, the line it came from.
/// Reports into `progress` (steps: bytes, twice the file's size over both passes; rows read) and
/// stops when it is cancelled.
///
/// A CSV larger than a sample reads once when it can: the types are guessed from its first
/// [`SAMPLE_ROWS`] records (or its first block), and one pass over the whole file (on every core) takes the census
/// *and* builds the columns of the guessed types. When the whole file's census gives other types
/// than the sample's (a column with words after its first numbers, say), pass 2 runs again with
/// them, so the result is always the two passes' (`one_pass_reads_what_two_passes_read`).
/// `sample_rows`: how many records the guess reads ([`SAMPLE_ROWS`]; `None` always reads twice).
#[allow(clippy::too_many_arguments)]
pub(super) fn read_text(
    path: &Path,
    file: &str,
    format: TextFormat,
    spec: &IngestSpec,
    limits: &IngestLimits,
    check: RoleCheck,
    progress: &crate::progress::Progress,
    sample_rows: Option<u64>,
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
    let csv = match format {
        TextFormat::Csv { delimiter } if limits.stop_after_rows.is_none() => Some(delimiter),
        _ => None,
    };
    let sample_rows = csv.and(sample_rows);

    // The one pass, when the sample is clean and its types resolve; else (or when the whole
    // file's census disagrees with the sample's) the census it took spares pass 1.
    let mut known: Option<(Census, Problems, Option<String>)> = None;
    if let (Some(delimiter), Some(sample_rows)) = (csv, sample_rows) {
        // The sample: records up to `sample_rows`, or the first block's (one piece a core).
        let mut sample = Census::new(columns.len());
        let (mut clean, mut more, mut pieces) = (true, true, 0usize);
        let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
        let new = || Census::new(columns.len());
        text::scan_csv_parallel(path, file, delimiter, &columns, text::CSV_BLOCK_BYTES, &new, &mut |part, structural| {
            clean &= structural.0.is_empty();
            sample.merge(part);
            pieces += 1;
            more = clean && sample.rows < sample_rows && pieces < threads;
            more
        })?;
        // A file read whole by the sample (small) or with problems in its sample is left to the
        // ordinary passes, which report the problems.
        if clean && !more && sample.rows > 0 {
            if let Ok(guess) = TypePlan::new(&columns, &sample.stats, spec, file, check) {
                let guessed = guess.plan(&columns);
                match one_pass(path, file, delimiter, &columns, &guessed, limits, size, piece_bytes, progress)? {
                    OnePass::Cancelled => return Err(cancelled()),
                    OnePass::Read { census, built, problems, over } => {
                        if over.is_none() && problems.0.is_empty() && census.rows > 0 {
                            let plan = TypePlan::new(&columns, &census.stats, spec, file, check)?;
                            if plan.types == guess.types && plan.is_feature == guess.is_feature {
                                progress.reach(2 * size);
                                progress.stage("checking");
                                let mut built = built;
                                std::mem::take(&mut built.problems).into_result(file)?;
                                return assemble_columns(&columns, built);
                            }
                        }
                        drop(built);
                        // Pass 2 again, after this pass's census.
                        progress.add_total(size);
                        known = Some((census, problems, over));
                    }
                }
            }
        }
    }
    let base = if known.is_some() { 2 * size } else { size };

    // Pass 1: what does each column hold? (A CSV on every core, in pieces; see `Census`.)
    let (census, problems, over) = match known {
        Some(k) => k,
        None => {
            let mut problems = Problems::default();
            let mut census = Census::new(columns.len());
            let mut over = None;
            match csv {
                Some(delimiter) => {
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
                None => {
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
            (census, problems, over)
        }
    };
    if progress.is_cancelled() {
        return Err(cancelled());
    }
    progress.reach(base);
    progress.rows(census.rows);
    let rows = census.rows;
    if let Some(why) = over {
        return Err(IngestError::one(file, Place::File, None, why));
    }
    problems.into_result(file)?;
    if rows == 0 {
        return Err(IngestError::one(file, Place::File, None, "the file has a header but no data rows"));
    }
    let plan = TypePlan::new(&columns, &census.stats, spec, file, check)?;

    // Pass 2: build typed columns (a CSV in pieces on every core, as in pass 1).
    let cap = rows as usize;
    let plan = plan.plan(&columns);
    let mut built = Built::new(&plan, cap);
    let mut problems = Problems::default();
    match csv {
        Some(delimiter) => {
            // Pieces are about a block over the threads: room for their rows up front.
            let body = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            let per_piece = (text::CSV_BLOCK_BYTES as u64 * rows / body.max(1)) as usize / std::thread::available_parallelism().map(|t| t.get()).unwrap_or(1);
            let new = || Built::new(&plan, (per_piece + per_piece / 8).min(cap));
            text::scan_csv_parallel(path, file, delimiter, &columns, text::CSV_BLOCK_BYTES, &new, &mut |mut part, _structural| {
                for p in std::mem::take(&mut part.problems).0 {
                    problems.push(p);
                }
                built.append(part);
                progress.reach(base + size * built.lines.len() as u64 / rows.max(1));
                !progress.is_cancelled()
            })?;
            if progress.is_cancelled() {
                return Err(cancelled());
            }
            if built.lines.len() != cap {
                return Err(IngestError::one(file, Place::File, None, "the file changed while it was read"));
            }
        }
        None => text::scan_records(path, file, format, &columns, &mut Problems::default(), &mut |line, cells| {
            // The first pass counted the rows (and may have stopped early, for a preview).
            if built.lines.len() as u64 % REPORT_EVERY == 0 {
                progress.reach(base + size * built.lines.len() as u64 / rows.max(1));
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
    progress.reach(base + size);
    progress.stage("checking");
    for p in std::mem::take(&mut built.problems).0 {
        problems.push(p);
    }
    problems.into_result(file)?;
    assemble_columns(&columns, built)
}

/// The column types (and which columns are features) a census calls for, with the roles known
/// so the timestamp column is parsed as such and label/score columns keep their raw values for
/// the checks in `finish`.
struct TypePlan {
    types: Vec<TextType>,
    is_feature: Vec<bool>,
}

impl TypePlan {
    fn new(columns: &[String], stats: &[TextStats], spec: &IngestSpec, file: &str, check: RoleCheck) -> Result<Self, IngestError> {
        let kinds: Vec<ColumnKind> = stats
            .iter()
            .map(|s| if s.other == 0 && (s.ints + s.floats) > 0 { ColumnKind::Numeric } else { ColumnKind::Categorical })
            .collect();
        let roles = match roles::resolve(columns, &kinds, spec, file) {
            Ok(r) => r,
            Err(_) if check == RoleCheck::Guess => roles::guess(columns, &kinds),
            Err(e) => return Err(e),
        };
        let types: Vec<TextType> = columns
            .iter()
            .zip(stats)
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
        let is_feature = columns.iter().map(|c| roles.role_of(c).is_none_or(|r| r == Role::Feature)).collect();
        Ok(TypePlan { types, is_feature })
    }

    fn plan<'a>(&'a self, columns: &'a [String]) -> Plan<'a> {
        Plan { columns, types: &self.types, is_feature: &self.is_feature }
    }
}

/// What [`one_pass`] read.
enum OnePass<'a> {
    Cancelled,
    Read { census: Census, built: Built<'a>, problems: Problems, over: Option<String> },
}

/// Pass 1 and pass 2 at once over a CSV, pass 2 with the guessed `plan`: the census of every
/// record, its structural problems and the row limit as pass 1 finds them, and the columns.
#[allow(clippy::too_many_arguments)]
fn one_pass<'a>(
    path: &Path,
    file: &str,
    delimiter: u8,
    columns: &'a [String],
    plan: &'a Plan<'a>,
    limits: &IngestLimits,
    size: u64,
    piece_bytes: u64,
    progress: &crate::progress::Progress,
) -> Result<OnePass<'a>, IngestError> {
    /// A piece's census and columns.
    struct Both<'a> {
        census: Census,
        built: Built<'a>,
    }
    impl text::RecordFold for Both<'_> {
        fn record(&mut self, line: u64, cells: &text::Cells<'_>) -> bool {
            self.census.take(cells);
            self.built.take(line, cells)
        }
    }
    let per_piece = (piece_bytes / 64).max(1024) as usize;
    let mut all = Both { census: Census::new(columns.len()), built: Built::new(plan, 0) };
    let (mut problems, mut cell_problems, mut over, mut pieces) = (Problems::default(), Problems::default(), None, 0u64);
    let new = || Both { census: Census::new(columns.len()), built: Built::new(plan, per_piece) };
    text::scan_csv_parallel(path, file, delimiter, columns, text::CSV_BLOCK_BYTES, &new, &mut |mut part, structural| {
        for p in structural.0 {
            problems.push(p);
        }
        for p in std::mem::take(&mut part.built.problems).0 {
            cell_problems.push(p);
        }
        if all.census.rows == 0 {
            // The first piece tells the bytes a row: room for the file's rows up front.
            let rows = (size as f64 / piece_bytes.max(1) as f64 * part.census.rows as f64 * 1.05) as usize;
            all.built = Built::new(plan, rows.min(limits.max_rows as usize));
        }
        all.census.merge(part.census);
        all.built.append(part.built);
        pieces += 1;
        progress.reach((pieces * piece_bytes * 2).min(2 * size));
        progress.rows(all.census.rows);
        if problems.full() || progress.is_cancelled() {
            return false;
        }
        over = limits.over(all.census.rows, columns.len());
        over.is_none()
    })?;
    if progress.is_cancelled() {
        return Ok(OnePass::Cancelled);
    }
    let Both { census, mut built } = all;
    built.problems = cell_problems;
    Ok(OnePass::Read { census, built, problems, over })
}

/// The frame of pass 2's columns, and each row's line.
fn assemble_columns(columns: &[String], built: Built<'_>) -> Result<(DataFrame, Vec<u64>), IngestError> {
    let Built { builders, lines, .. } = built;
    let height = lines.len();
    let cols: Vec<Column> = columns
        .iter()
        .zip(builders)
        .map(|(name, b)| -> PolarsResult<Column> {
            let name: PlSmallStr = name.as_str().into();
            match b {
                Builder::Int(v) => {
                    let (values, valid) = v.finish();
                    Ok(Int64Chunked::from_vec_validity(name, values, valid).into_column())
                }
                Builder::Float(v) => {
                    let (values, valid) = v.finish();
                    Ok(Float64Chunked::from_vec_validity(name, values, valid).into_column())
                }
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
                Builder::Ts(v) => {
                    let (values, valid) = v.finish();
                    Ok(Int64Chunked::from_vec_validity(name, values, valid)
                        .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
                        .into_column())
                }
            }
        })
        .collect::<PolarsResult<_>>()?;
    Ok((DataFrame::new(height, cols)?, lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A numeric column built in parts, with or without missing values in each, holds exactly
    /// the values and gaps pushed, in order.
    #[test]
    fn numeric_parts_keep_their_values_and_gaps() {
        let mut next = super::super::test_rng(0x2545_F491_4F6C_DD1D);
        for _ in 0..200 {
            let parts = 1 + next() % 5;
            let mut all: Nums<i64> = Nums::with_capacity(0);
            let mut expected: Vec<Option<i64>> = Vec::new();
            for _ in 0..parts {
                let len = next() % 70;
                // Some parts have no gap at all, some many.
                let gaps = next() % 3;
                let mut part = Nums::with_capacity(4);
                for _ in 0..len {
                    let v = if gaps > 0 && next() % (3 * gaps) == 0 { None } else { Some((next() % 1000) as i64) };
                    part.push(v);
                    expected.push(v);
                }
                all.append(part);
            }
            let (values, valid) = all.finish();
            let got = Int64Chunked::from_vec_validity("x".into(), values, valid);
            assert_eq!(got.iter().collect::<Vec<_>>(), expected);
        }
    }

    /// The one pass (types guessed from a sample) gives exactly the two passes' frame, lines and
    /// problems: when the whole file agrees with its sample, and when it does not (words after
    /// the numbers of a feature, of a score, a label that turns out not binary, bad lines, missing
    /// values, too many rows).
    #[test]
    fn one_pass_reads_what_two_passes_read() {
        let head = "id,label,score,age,city,when\n";
        let row = |i: usize, age: &str, score: &str, label: &str, city: &str| format!("r{i},{label},{score},{age},{city},2026-01-0{}T00:00:00Z\n", 1 + i % 9);
        let mut files: Vec<(String, String)> = Vec::new();
        let plain: String = (0..400).map(|i| row(i, &format!("{}", 20 + i % 50), &format!("0.{}", i % 10), &(i % 2).to_string(), ["a", "b", "c"][i % 3])).collect();
        files.push(("agrees".into(), plain.clone()));
        let late = |at: usize, f: &dyn Fn(usize) -> String| -> String {
            (0..400).map(|i| if i == at { f(i) } else { row(i, &format!("{}", 20 + i % 50), &format!("0.{}", i % 10), &(i % 2).to_string(), ["a", "b", "c"][i % 3]) }).collect()
        };
        files.push(("words in a feature".into(), late(390, &|i| row(i, "unknown", "0.5", "1", "a"))));
        files.push(("many words in a feature".into(), (0..400).map(|i| row(i, &if i > 300 { format!("w{i}") } else { format!("{i}") }, "0.5", "1", "a")).collect()));
        files.push(("a float among ints".into(), late(399, &|i| row(i, "33.5", "0.5", "1", "a"))));
        files.push(("a word as score".into(), late(350, &|i| row(i, "33", "high", "1", "a"))));
        files.push(("a score out of range".into(), late(350, &|i| row(i, "33", "7", "1", "a"))));
        files.push(("a label not binary".into(), late(380, &|i| row(i, "33", "0.5", "maybe", "a"))));
        files.push(("missing values".into(), late(300, &|i| row(i, "", "0.5", "1", ""))));
        files.push(("a short line".into(), late(360, &|_| "r360,1,0.5\n".into())));
        files.push(("a numeric city after words".into(), late(390, &|i| row(i, "33", "0.5", "1", "12"))));
        files.push(("a repeated id".into(), late(395, &|_| row(3, "33", "0.5", "1", "a"))));
        let spec = IngestSpec { name: "t".into(), label: Some("label".into()), scores: Some(vec!["score".into()]), timestamp: Some("when".into()), ..Default::default() };
        let dir = tempfile::tempdir().unwrap();
        // Every value and type of the frame (not a shortened print), the lines, or the error.
        let show = |r: Result<(DataFrame, Vec<u64>), IngestError>| match r {
            Ok((df, lines)) => {
                let cols: Vec<String> = df
                    .columns()
                    .iter()
                    .map(|c| format!("{} {} {:?}", c.name(), c.dtype(), c.as_materialized_series().iter().map(|v| v.to_string()).collect::<Vec<_>>()))
                    .collect();
                format!("{cols:?}\n{lines:?}")
            }
            Err(e) => format!("error {e}: {}", e.detail()),
        };
        for (what, body) in &files {
            let path = dir.path().join("t.csv");
            std::fs::write(&path, format!("{head}{body}")).unwrap();
            let read = |sample: Option<u64>, limits: &IngestLimits| {
                show(read_text(&path, "t.csv", TextFormat::Csv { delimiter: b',' }, &spec, limits, RoleCheck::Strict, &crate::progress::Progress::new(), sample))
            };
            let limits = IngestLimits::default();
            let two = read(None, &limits);
            for sample in [1, 3, 50, 1000] {
                assert_eq!(read(Some(sample), &limits), two, "{what}, sample of {sample}");
            }
            let few = IngestLimits { max_rows: 100, ..IngestLimits::default() };
            assert_eq!(read(Some(3), &few), read(None, &few), "{what}, over the row limit");
        }
    }
}
