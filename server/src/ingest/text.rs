//! CSV and JSON Lines readers: stream a file's records as text cells aligned to its columns.
//!
//! Files are streamed, never held whole in memory, nor as a table of strings: JSON Lines is read
//! twice (infer types, then build typed columns); a large CSV usually once, its types guessed from
//! a sample and checked against the census of the same pass (`read::read_text`).

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::error::{IngestError, Place, Problem, Problems};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextFormat {
    Csv { delimiter: u8 },
    Jsonl,
}

impl TextFormat {
    pub fn name(self) -> &'static str {
        match self {
            TextFormat::Csv { .. } => "csv",
            TextFormat::Jsonl => "jsonl",
        }
    }
}

/// Picks the delimiter that splits the header line into the most fields (outside quotes).
pub fn sniff_delimiter(first_line: &[u8]) -> u8 {
    let candidates = [b',', b'\t', b';', b'|'];
    let mut counts = [0usize; 4];
    let mut quoted = false;
    for &b in first_line {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted {
            if let Some(i) = candidates.iter().position(|&c| c == b) {
                counts[i] += 1;
            }
        }
    }
    let (best, n) = counts.iter().enumerate().max_by_key(|(i, n)| (**n, usize::MAX - i)).unwrap_or((0, &0));
    if *n == 0 { b',' } else { candidates[best] }
}

/// The cells of one record, in column order; `None` = the column is absent from this record.
pub type Cells<'a> = [Option<Cow<'a, str>>];

/// Reads the header (CSV) or discovers the keys (JSON Lines) without reading the rows twice. JSON
/// Lines keys are counted as they are met: past `max_columns` the scan stops (a file of unique
/// keys would otherwise make every row as wide as the whole file).
pub fn read_columns(path: &Path, file: &str, format: TextFormat, max_columns: usize) -> Result<Vec<String>, IngestError> {
    match format {
        TextFormat::Csv { delimiter } => {
            let mut rdr = csv_reader(path, file, delimiter)?;
            let header = rdr.byte_headers().map_err(|e| csv_error(file, e, 0))?.clone();
            let mut names = Vec::with_capacity(header.len());
            let mut problems = Problems::default();
            for (i, raw) in header.iter().enumerate() {
                match std::str::from_utf8(raw) {
                    Ok(s) => names.push(s.trim().trim_start_matches('\u{feff}').to_string()),
                    Err(_) => {
                        problems.push(Problem::new(
                            Place::Header,
                            None,
                            format!("column {} has a name that is not UTF-8 text", i + 1),
                        ));
                        names.push(String::new());
                    }
                }
            }
            problems.into_result(file)?;
            Ok(names)
        }
        TextFormat::Jsonl => {
            let mut names: Vec<String> = Vec::new();
            let mut index = std::collections::HashMap::new();
            scan_jsonl(path, file, &mut |_, obj| {
                for k in obj.keys() {
                    if !index.contains_key(k) {
                        index.insert(k.clone(), names.len());
                        names.push(k.clone());
                    }
                }
                names.len() <= max_columns
            })?;
            Ok(names)
        }
    }
}

fn csv_reader(path: &Path, file: &str, delimiter: u8) -> Result<csv::Reader<File>, IngestError> {
    let f = File::open(path).map_err(|source| IngestError::Io { file: file.into(), source })?;
    Ok(csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(true)
        .from_reader(f))
}

/// The error of a CSV reader whose lines start after `line_offset` lines of the file.
fn csv_error(file: &str, e: csv::Error, line_offset: u64) -> IngestError {
    let line = e.position().map(|p| p.line() + line_offset);
    let msg = match e.kind() {
        csv::ErrorKind::Io(err) => format!("cannot read the file: {err}"),
        _ => format!("not a readable CSV file: {e}"),
    };
    IngestError::one(file, line.map(Place::Line).unwrap_or(Place::File), None, msg)
}

/// Calls `f(line, cells)` for every record `rdr` reads, its line counted after `line_offset`
/// lines of the file (the one-reader scan and the pieces of [`scan_csv_parallel`] alike).
/// Structural faults go to `problems` and the record is skipped. Returns false when `f` asked to
/// stop or `problems` filled up.
fn csv_records<R: std::io::Read>(
    rdr: &mut csv::Reader<R>,
    line_offset: u64,
    file: &str,
    columns: &[String],
    problems: &mut Problems,
    f: &mut dyn FnMut(u64, &Cells<'_>) -> bool,
) -> Result<bool, IngestError> {
    let n = columns.len();
    let mut rec = csv::ByteRecord::new();
    // One vector of cells for every record (it holds borrows of `rec`, so it is rebuilt empty).
    let mut reuse: Vec<Option<Cow<'static, str>>> = Vec::with_capacity(n);
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => return Ok(true),
            Ok(true) => {}
            Err(e) => return Err(csv_error(file, e, line_offset)),
        }
        let line = rec.position().map(|p| p.line()).unwrap_or(0) + line_offset;
        if rec.len() == 1 && rec.get(0).is_some_and(|c| c.is_empty()) && n > 1 {
            continue; // a blank line
        }
        if rec.len() != n {
            problems.push(Problem::new(Place::Line(line), None, format!("this line has {} fields, the header has {n}", rec.len())));
            if problems.full() {
                return Ok(false);
            }
            continue;
        }
        let mut cells: Vec<Option<Cow<'_, str>>> = recycle(std::mem::take(&mut reuse));
        // The whole record checked as UTF-8 at once (fields then borrowed from it); field by field
        // only when that fails, to name the field.
        if let Ok(all) = std::str::from_utf8(rec.as_slice()) {
            for i in 0..rec.len() {
                match rec.range(i).filter(|r| all.is_char_boundary(r.start) && all.is_char_boundary(r.end)) {
                    Some(r) => cells.push(Some(Cow::Borrowed(&all[r]))),
                    None => break,
                }
            }
        }
        let mut ok = true;
        if cells.len() == rec.len() {
            if !f(line, &cells) {
                return Ok(false);
            }
            reuse = recycle(cells);
            continue;
        }
        cells.clear();
        for (i, raw) in rec.iter().enumerate() {
            match std::str::from_utf8(raw) {
                Ok(s) => cells.push(Some(Cow::Borrowed(s))),
                Err(e) => {
                    let byte = raw.get(e.valid_up_to()).copied().unwrap_or(0);
                    problems.push(Problem::new(Place::Line(line), Some(&columns[i]), format!("not UTF-8 text (byte 0x{byte:02X}); save the file as UTF-8")));
                    ok = false;
                }
            }
        }
        if ok && !f(line, &cells) {
            return Ok(false);
        }
        reuse = recycle(cells);
        if problems.full() {
            return Ok(false);
        }
    }
}

/// An emptied vector of cells, its allocation kept for cells of another lifetime.
fn recycle<'a, 'b>(mut v: Vec<Option<Cow<'a, str>>>) -> Vec<Option<Cow<'b, str>>> {
    v.clear();
    // An empty vector holds no borrow: only its allocation moves to the new lifetime.
    v.into_iter().map(|_| None).collect()
}

/// A fold over consecutive records: [`scan_csv_parallel`] gives each piece of a file its own.
pub trait RecordFold: Send {
    /// Takes one record; false stops this piece.
    fn record(&mut self, line: u64, cells: &Cells<'_>) -> bool;
}

/// Bytes of a CSV read at a time by [`scan_csv_parallel`] (then cut into one piece per thread).
pub const CSV_BLOCK_BYTES: usize = 8 << 20;

/// [`scan_records`] for a CSV on every core. The body is read in blocks of about `block` bytes;
/// each block is cut at record boundaries into one piece per thread, and each piece folded by its
/// own `new()` on its own thread; `merge(fold, problems)` takes the folds and their structural
/// problems in file order and says whether to go on. A piece starts exactly where one reader of
/// the whole file would start a record (after a `\n`; inside a block holding a quote, where the
/// csv parser ends a record), so records, their lines and problems are those of
/// [`scan_records`]; `csv_pieces_match_one_reader` checks it. Memory: a block and its pieces'
/// folds, never the file.
pub fn scan_csv_parallel<F: RecordFold>(
    path: &Path,
    file: &str,
    delimiter: u8,
    columns: &[String],
    block: usize,
    new: &(dyn Fn() -> F + Sync),
    merge: &mut dyn FnMut(F, Problems) -> bool,
) -> Result<(), IngestError> {
    use std::io::Read;
    let io = |source| IngestError::Io { file: file.into(), source };
    let start = {
        let mut rdr = csv_reader(path, file, delimiter)?;
        rdr.byte_headers().map_err(|e| csv_error(file, e, 0))?;
        rdr.position().byte()
    };
    let mut fh = File::open(path).map_err(io)?;
    let mut buf = Vec::new();
    (&mut fh).take(start).read_to_end(&mut buf).map_err(io)?;
    let mut line_offset = memchr::memchr_iter(b'\n', &buf).count() as u64;
    buf.clear();
    let threads = std::thread::available_parallelism().map(|t| t.get()).unwrap_or(1).clamp(1, 8);
    let block = block.max(1);
    loop {
        // A block's worth more, or as much again as the carried bytes hold: a record longer than
        // a block is then parsed a bounded number of times (the lengths double), not once a block.
        let want = block.max(buf.len());
        let read = (&mut fh).take(want as u64).read_to_end(&mut buf).map_err(io)?;
        let eof = read < want;
        let cuts = piece_cuts(&buf, eof, delimiter, threads);
        let Some(&end) = cuts.last() else {
            if eof {
                return Ok(());
            }
            continue; // no whole record yet: read on
        };
        let mut starts = vec![0];
        starts.extend_from_slice(&cuts[..cuts.len() - 1]);
        let mut offsets = Vec::with_capacity(starts.len());
        for (i, &s) in starts.iter().enumerate() {
            let before = if i == 0 { 0 } else { starts[i - 1] };
            let prev = offsets.last().copied().unwrap_or(line_offset);
            offsets.push(prev + memchr::memchr_iter(b'\n', &buf[before..s]).count() as u64);
        }
        let run = |i: usize| -> Result<(F, Problems, bool), IngestError> {
            let mut fold = new();
            let mut problems = Problems::default();
            let mut rdr = csv::ReaderBuilder::new().delimiter(delimiter).has_headers(false).flexible(true).from_reader(&buf[starts[i]..cuts[i]]);
            let went_on = csv_records(&mut rdr, offsets[i], file, columns, &mut problems, &mut |line, cells| fold.record(line, cells))?;
            Ok((fold, problems, went_on))
        };
        let results: Vec<Result<(F, Problems, bool), IngestError>> = std::thread::scope(|scope| {
            let others: Vec<_> = (1..cuts.len()).map(|i| scope.spawn(move || run(i))).collect();
            let mut out = vec![run(0)];
            for h in others {
                out.push(h.join().unwrap_or_else(|_| Err(IngestError::one(file, Place::File, None, "the reader of a part of the file failed"))));
            }
            out
        });
        for r in results {
            let (fold, problems, went_on) = r?;
            if !merge(fold, problems) || !went_on {
                return Ok(());
            }
        }
        line_offset = offsets[offsets.len() - 1] + memchr::memchr_iter(b'\n', &buf[starts[starts.len() - 1]..end]).count() as u64;
        buf.drain(..end);
        if eof && buf.is_empty() {
            return Ok(());
        }
    }
}

/// Where to cut `buf` (the file from a record's start) into pieces of whole records, about
/// `pieces` of them: the end of each piece, ascending, the last one the end of the last whole
/// record (all of `buf` at the end of the file); empty when no record ends in `buf`.
fn piece_cuts(buf: &[u8], eof: bool, delimiter: u8, pieces: usize) -> Vec<usize> {
    // Without a quote in the block no quoted field is open, so a `\n` ends a line. The boundary one
    // reader sees there: right after the first byte of the run of line-end bytes holding it (a
    // `\r\n` and blank lines after a record are read with the next record's call, whose line is
    // counted from there); none when the run starts the block.
    let boundary = |i: usize| -> Option<usize> {
        let mut j = i;
        while j > 0 && matches!(buf[j - 1], b'\n' | b'\r') {
            j -= 1;
        }
        (j > 0).then_some(j + 1)
    };
    let step = buf.len() / pieces.max(1) + 1;
    let mut cuts = Vec::with_capacity(pieces);
    let last_lf = memchr::memrchr(b'\n', buf);
    // (Without a `\n`, records may end at a lone `\r`: the parser below finds them.)
    if memchr::memchr(b'"', buf).is_none() && (eof || last_lf.is_some()) {
        let end = match (eof, last_lf.map(boundary)) {
            (false, Some(Some(e))) => e,
            (false, _) => return cuts,
            (true, _) => buf.len(),
        };
        let mut from = 0;
        for k in 1..pieces {
            let target = (k * step).max(from);
            if target >= end {
                break;
            }
            match memchr::memchr(b'\n', &buf[target..end]).and_then(|j| boundary(target + j)) {
                Some(c) if c < end && c > from => {
                    from = c;
                    cuts.push(from);
                }
                _ => break,
            }
        }
        if end > 0 {
            cuts.push(end);
        }
        return cuts;
    }
    // A quote: record boundaries as the csv parser finds them. The last record is left for the
    // next block (it may run past this one), unless the file ends here.
    let mut rdr = csv::ReaderBuilder::new().delimiter(delimiter).has_headers(false).flexible(true).from_reader(buf);
    let mut rec = csv::ByteRecord::new();
    let (mut last_start, mut next_target) = (0usize, step);
    while let Ok(true) = rdr.read_byte_record(&mut rec) {
        let at = rec.position().map_or(0, |p| p.byte() as usize);
        if at >= next_target && at > last_start && at > cuts.last().copied().unwrap_or(0) {
            cuts.push(at);
            next_target = at + step;
        }
        last_start = at;
    }
    let end = if eof { buf.len() } else { last_start };
    cuts.retain(|c| *c < end);
    if end > 0 {
        cuts.push(end);
    }
    cuts
}

/// Calls `f(line, cells)` for every data record. Structural faults (ragged rows, bad UTF-8,
/// broken JSON) go to `problems`, and the record is skipped.
pub fn scan_records(
    path: &Path,
    file: &str,
    format: TextFormat,
    columns: &[String],
    problems: &mut Problems,
    f: &mut dyn FnMut(u64, &Cells<'_>) -> bool,
) -> Result<(), IngestError> {
    match format {
        TextFormat::Csv { delimiter } => {
            let mut rdr = csv_reader(path, file, delimiter)?;
            rdr.byte_headers().map_err(|e| csv_error(file, e, 0))?;
            csv_records(&mut rdr, 0, file, columns, problems, f).map(|_| ())
        }
        TextFormat::Jsonl => {
            let index: std::collections::HashMap<&str, usize> =
                columns.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
            let mut cells: Vec<Option<Cow<'_, str>>> = vec![None; columns.len()];
            scan_jsonl(path, file, &mut |line, obj| {
                for c in cells.iter_mut() {
                    *c = None;
                }
                for (k, v) in obj {
                    let Some(&i) = index.get(k.as_str()) else { continue };
                    cells[i] = match v {
                        serde_json::Value::Null => Some(Cow::Borrowed("")),
                        serde_json::Value::String(s) => Some(Cow::Owned(s.clone())),
                        serde_json::Value::Number(n) => Some(Cow::Owned(n.to_string())),
                        serde_json::Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
                        _ => {
                            problems.push(Problem::new(
                                Place::Line(line),
                                Some(k),
                                "nested arrays and objects are not supported; flatten the value",
                            ));
                            Some(Cow::Borrowed(""))
                        }
                    };
                }
                f(line, &cells)
            })
            .or_else(|e| match e {
                // A JSON syntax error is a problem of one line: report it with the others.
                IngestError::Invalid { problems: mut ps, .. } => {
                    for p in ps.drain(..) {
                        problems.push(p);
                    }
                    Ok(())
                }
                other => Err(other),
            })
        }
    }
}

/// Calls `f(line, object)` for each non-blank line until it returns false; a line that is not a
/// JSON object is an error.
fn scan_jsonl(
    path: &Path,
    file: &str,
    f: &mut dyn FnMut(u64, &serde_json::Map<String, serde_json::Value>) -> bool,
) -> Result<(), IngestError> {
    let fh = File::open(path).map_err(|source| IngestError::Io { file: file.into(), source })?;
    let reader = BufReader::with_capacity(1 << 20, fh);
    let mut problems = Problems::default();
    for (i, line) in reader.split(b'\n').enumerate() {
        let line_no = i as u64 + 1;
        let bytes = line.map_err(|source| IngestError::Io { file: file.into(), source })?;
        let Ok(text) = std::str::from_utf8(&bytes) else {
            problems.push(Problem::new(Place::Line(line_no), None, "not UTF-8 text; save the file as UTF-8"));
            continue;
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(obj)) => {
                if !f(line_no, &obj) {
                    break;
                }
            }
            Ok(_) => problems.push(Problem::new(
                Place::Line(line_no),
                None,
                "each line must be a JSON object ({\"column\": value, ...})",
            )),
            Err(e) => problems.push(Problem::new(
                Place::Line(line_no),
                None,
                format!("not valid JSON: {e}"),
            )),
        }
        if problems.full() {
            break;
        }
    }
    problems.into_result(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The records a scan passes on: line and cells.
    type Seen = Vec<(u64, Vec<Option<String>>)>;

    struct Collect(Seen);

    impl RecordFold for Collect {
        fn record(&mut self, line: u64, cells: &Cells<'_>) -> bool {
            self.0.push((line, cells.iter().map(|c| c.as_deref().map(str::to_string)).collect()));
            true
        }
    }

    /// A messy CSV: quoted delimiters and line breaks, doubled quotes, stray quotes, CRLF, lone
    /// CR, blank lines, ragged rows, bytes that are not UTF-8, maybe no final line break.
    fn messy_csv(seed: u64) -> Vec<u8> {
        let mut r = crate::eval::rng::SplitMix(seed);
        let mut pick = |n: u64| (r.next() % n) as usize;
        let mut out = if pick(3) == 0 { b"a,b,c\r\n".to_vec() } else { b"a,b,c\n".to_vec() };
        let fields: [&[u8]; 10] = [b"x", b"", b"12.5", b"\"q,\"\"r\"", b"\"multi\nline\"", b"\xc3\xa9", b"\xff", b"a\"b", b" y ", b"\"cr\r\nlf\""];
        let terms: [&[u8]; 5] = [b"\n", b"\n", b"\r\n", b"\r", b"\n\n"];
        let lines = pick(40);
        for _ in 0..lines {
            let width = [3, 3, 3, 3, 2, 4][pick(6)];
            for k in 0..width {
                if k > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(fields[pick(fields.len() as u64)]);
            }
            out.extend_from_slice(terms[pick(terms.len() as u64)]);
        }
        if pick(4) == 0 {
            out.extend_from_slice(b"x,y,z"); // no final line break
        }
        out
    }

    /// Pieces of any size read exactly what one reader of the whole file reads: the same records
    /// on the same lines, the same problems in the same order.
    #[test]
    fn csv_pieces_match_one_reader() {
        let dir = tempfile::tempdir().unwrap();
        let columns: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        for seed in 0..400 {
            let path = dir.path().join(format!("m{seed}.csv"));
            std::fs::write(&path, messy_csv(seed)).unwrap();
            let format = TextFormat::Csv { delimiter: b',' };
            let (mut one, mut one_problems) = (Collect(Vec::new()), Problems::default());
            scan_records(&path, "m.csv", format, &columns, &mut one_problems, &mut |l, c| one.record(l, c)).unwrap();
            let one_problems: Vec<String> = one_problems.0.iter().map(|p| p.to_string()).collect();
            for block in [1, 2, 5, 16, 64, 1 << 20] {
                let (mut seen, mut problems) = (Vec::new(), Problems::default());
                scan_csv_parallel(&path, "m.csv", b',', &columns, block, &|| Collect(Vec::new()), &mut |part, ps| {
                    seen.extend(part.0);
                    for p in ps.0 {
                        problems.push(p);
                    }
                    !problems.full()
                })
                .unwrap();
                let problems: Vec<String> = problems.0.iter().map(|p| p.to_string()).collect();
                assert_eq!(problems, one_problems, "seed {seed}, block {block}");
                if one_problems.len() < super::super::error::MAX_PROBLEMS {
                    assert_eq!(seen, one.0, "seed {seed}, block {block}");
                }
            }
        }
    }

    #[test]
    fn sniffs_common_delimiters() {
        assert_eq!(sniff_delimiter(b"a,b,c"), b',');
        assert_eq!(sniff_delimiter(b"a;b;c"), b';');
        assert_eq!(sniff_delimiter(b"a\tb\tc"), b'\t');
        assert_eq!(sniff_delimiter(b"\"x;y\",b,c"), b',');
        assert_eq!(sniff_delimiter(b"single"), b',');
    }
}
