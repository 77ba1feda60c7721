//! CSV and JSON Lines readers: stream a file's records as text cells aligned to its columns.
//!
//! Both formats are read twice from disk (infer types, then build typed columns), so neither the
//! file nor a table of strings is ever held whole in memory.

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
            let header = rdr.byte_headers().map_err(|e| csv_error(file, e))?.clone();
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

fn csv_error(file: &str, e: csv::Error) -> IngestError {
    let line = e.position().map(|p| p.line());
    let msg = match e.kind() {
        csv::ErrorKind::Io(err) => format!("cannot read the file: {err}"),
        _ => format!("not a readable CSV file: {e}"),
    };
    IngestError::one(file, line.map(Place::Line).unwrap_or(Place::File), None, msg)
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
            rdr.byte_headers().map_err(|e| csv_error(file, e))?;
            let n = columns.len();
            let mut rec = csv::ByteRecord::new();
            loop {
                match rdr.read_byte_record(&mut rec) {
                    Ok(false) => break,
                    Ok(true) => {}
                    Err(e) => return Err(csv_error(file, e)),
                }
                let line = rec.position().map(|p| p.line()).unwrap_or(0);
                if rec.len() == 1 && rec.get(0).is_some_and(|c| c.is_empty()) && n > 1 {
                    continue; // a blank line
                }
                if rec.len() != n {
                    problems.push(Problem::new(
                        Place::Line(line),
                        None,
                        format!("this line has {} fields, the header has {n}", rec.len()),
                    ));
                    if problems.full() {
                        break;
                    }
                    continue;
                }
                let mut cells: Vec<Option<Cow<'_, str>>> = Vec::with_capacity(n);
                let mut ok = true;
                for (i, raw) in rec.iter().enumerate() {
                    match std::str::from_utf8(raw) {
                        Ok(s) => cells.push(Some(Cow::Borrowed(s))),
                        Err(e) => {
                            let byte = raw.get(e.valid_up_to()).copied().unwrap_or(0);
                            problems.push(Problem::new(
                                Place::Line(line),
                                Some(&columns[i]),
                                format!(
                                    "not UTF-8 text (byte 0x{byte:02X}); save the file as UTF-8"
                                ),
                            ));
                            ok = false;
                        }
                    }
                }
                if ok && !f(line, &cells) {
                    break;
                }
                if problems.full() {
                    break;
                }
            }
            Ok(())
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

    #[test]
    fn sniffs_common_delimiters() {
        assert_eq!(sniff_delimiter(b"a,b,c"), b',');
        assert_eq!(sniff_delimiter(b"a;b;c"), b';');
        assert_eq!(sniff_delimiter(b"a\tb\tc"), b'\t');
        assert_eq!(sniff_delimiter(b"\"x;y\",b,c"), b',');
        assert_eq!(sniff_delimiter(b"single"), b',');
    }
}
