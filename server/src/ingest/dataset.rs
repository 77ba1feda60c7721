//! External Parquet datasets: a file, a directory (read recursively) or a glob, with hive
//! partitions (`dir/year=2024/part-0.parquet`) as columns; read one row group at a time, only the
//! columns asked for, and never kept. Polars' Parquet reader decodes each row group.
//!
//! Where a path may point: anywhere the server can read in the open single-user mode; under the
//! admin's `--external-root` directories in team mode (canonicalised: no `..`, no symlink leading
//! outside).

use std::path::{Component, Path, PathBuf};

use polars::prelude::*;

use super::{IngestError, standard_types};

/// Most files one dataset may have.
pub const MAX_FILES: usize = 100_000;

/// Where a dataset's files may be.
#[derive(Clone, Debug)]
pub enum Access {
    /// Any path the server can read (the open single-user mode on loopback).
    Open,
    /// Only under these directories (canonical paths; team mode).
    Roots(Vec<PathBuf>),
}

/// Why a dataset cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The path is outside the allowed directories.
    #[error("{0}")]
    Forbidden(String),
    /// Nothing (any more) at the path.
    #[error("{0}")]
    NotFound(String),
    /// The path or the files are not a usable dataset.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

/// One Parquet file of a dataset.
struct DataFile {
    path: PathBuf,
    /// Its hive partition values, in the dataset's partition-key order (`None`: Hive's default
    /// partition, a missing value).
    hive: Vec<Option<String>>,
    metadata: polars::io::parquet::metadata::FileMetadataRef,
}

/// A Parquet dataset on disk (see the module docs).
pub struct Dataset {
    /// The path as registered.
    pub path: String,
    files: Vec<DataFile>,
    /// The files' own columns (each file has the same) and their types.
    file_columns: Vec<(String, ArrowDataType)>,
    /// Hive partition keys and each one's type (Int64 when every value is an integer, Float64
    /// when a number, else String).
    hive_keys: Vec<(String, DataType)>,
    pub rows: u64,
}

impl Dataset {
    /// Finds the dataset's files, reads their footers and checks they agree.
    pub fn open(path: &str, access: &Access) -> Result<Dataset, DatasetError> {
        let (base, files) = list_files(path, access)?;
        let mut out: Vec<DataFile> = Vec::with_capacity(files.len());
        let mut file_columns: Option<Vec<(String, ArrowDataType)>> = None;
        let mut keys: Option<Vec<String>> = None;
        let mut rows = 0u64;
        for f in files {
            let name = f.display().to_string();
            let unreadable = |why: String| DatasetError::Invalid(format!("{name}: not a readable Parquet file: {why}"));
            let file = std::fs::File::open(&f).map_err(|e| DatasetError::NotFound(format!("{name}: {e}")))?;
            let mut reader = ParquetReader::new(file);
            let metadata = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.get_metadata().cloned()))
                .map_err(|_| unreadable("its footer is corrupt".into()))?
                .map_err(|e| unreadable(e.to_string()))?;
            let schema = reader.schema().map_err(|e| unreadable(e.to_string()))?;
            let cols: Vec<(String, ArrowDataType)> = schema.iter().map(|(n, f)| (n.to_string(), f.dtype().clone())).collect();
            match &file_columns {
                None => file_columns = Some(cols),
                Some(first) if *first != cols => {
                    let names = |c: &[(String, ArrowDataType)]| c.iter().map(|(n, t)| format!("{n}: {t:?}")).collect::<Vec<_>>().join(", ");
                    return Err(DatasetError::Invalid(format!(
                        "{name} has other columns than the dataset's first file ({}) — every file of a dataset must have the same columns and types; this one has ({})",
                        names(first),
                        names(&cols)
                    )));
                }
                Some(_) => {}
            }
            let parts = hive_parts(&base, &f);
            let these: Vec<String> = parts.iter().map(|(k, _)| k.clone()).collect();
            match &keys {
                None => keys = Some(these),
                Some(k) if *k != these => {
                    return Err(DatasetError::Invalid(format!("{name}: its partition directories ({}) differ from the dataset's first file's ({})", these.join("/"), k.join("/"))));
                }
                Some(_) => {}
            }
            rows += metadata.num_rows as u64;
            out.push(DataFile { path: f, hive: parts.into_iter().map(|(_, v)| v).collect(), metadata });
        }
        let file_columns = file_columns.unwrap_or_default();
        let keys = keys.unwrap_or_default();
        for k in &keys {
            if file_columns.iter().any(|(n, _)| n == k) {
                return Err(DatasetError::Invalid(format!("the partition key '{k}' is also a column of the files")));
            }
        }
        let hive_keys = keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| {
                let values = || out.iter().filter_map(|f| f.hive[i].as_deref());
                let t = if values().all(|v| v.parse::<i64>().is_ok()) {
                    DataType::Int64
                } else if values().all(|v| v.parse::<f64>().is_ok()) {
                    DataType::Float64
                } else {
                    DataType::String
                };
                (k, t)
            })
            .collect();
        Ok(Dataset { path: path.to_string(), files: out, file_columns, hive_keys, rows })
    }

    /// Every column: the files' own, then the partition keys.
    pub fn column_names(&self) -> Vec<String> {
        self.file_columns.iter().map(|(n, _)| n.clone()).chain(self.hive_keys.iter().map(|(k, _)| k.clone())).collect()
    }

    pub fn files(&self) -> usize {
        self.files.len()
    }

    /// The first rows (whole row groups, from the first files, until at least `max_rows`), every
    /// column: what registration infers roles and summaries from.
    pub fn sample(&self, max_rows: usize) -> Result<DataFrame, DatasetError> {
        let columns = self.column_names();
        let mut parts: Vec<DataFrame> = Vec::new();
        let mut rows = 0;
        self.for_each_batch(&columns, |b| {
            rows += b.height();
            parts.push(b);
            Ok::<bool, DatasetError>(rows < max_rows)
        })?;
        let mut it = parts.into_iter();
        let Some(mut first) = it.next() else { return Err(DatasetError::Invalid(format!("{}: the dataset has no rows", self.path))) };
        for p in it {
            first.vstack_mut(&p).map_err(|e| DatasetError::Invalid(format!("{}: {e}", self.path)))?;
        }
        Ok(first)
    }

    /// Calls `f` with each row group of each file in turn (files in path order): the `columns`
    /// asked for, typed as an upload's (see `standard_types`); `f` returns whether to go on.
    /// Memory: one row group's columns at a time.
    pub fn for_each_batch<E: From<DatasetError>>(&self, columns: &[String], mut f: impl FnMut(DataFrame) -> Result<bool, E>) -> Result<(), E> {
        let known = self.column_names();
        if let Some(c) = columns.iter().find(|c| !known.contains(c)) {
            return Err(DatasetError::Invalid(format!("column '{c}' is not in the dataset at {} (its columns: {})", self.path, known.join(", "))).into());
        }
        let from_file: Vec<String> = columns.iter().filter(|c| self.file_columns.iter().any(|(n, _)| n == *c)).cloned().collect();
        for file in &self.files {
            let name = file.path.display().to_string();
            let mut offset = 0usize;
            for rg in &file.metadata.row_groups {
                let n = rg.num_rows();
                let batch = self.read_row_group(file, &name, &from_file, columns, offset, n)?;
                offset += n;
                if !f(batch)? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn read_row_group(&self, file: &DataFile, name: &str, from_file: &[String], columns: &[String], offset: usize, n: usize) -> Result<DataFrame, DatasetError> {
        let gone = |e: std::io::Error| DatasetError::NotFound(format!("{name}, a file of the dataset at {}, cannot be read any more ({e}); register the dataset again if it moved", self.path));
        let raw = if from_file.is_empty() {
            DataFrame::empty()
        } else {
            let handle = std::fs::File::open(&file.path).map_err(gone)?;
            let mut reader = ParquetReader::new(handle).with_columns(Some(from_file.to_vec())).with_slice(Some((offset, n)));
            reader.set_metadata(file.metadata.clone());
            let df = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.finish()))
                .map_err(|_| DatasetError::Invalid(format!("{name}: not a readable Parquet file (its pages are corrupt)")))?
                .map_err(|e| DatasetError::Invalid(format!("{name}: not a readable Parquet file: {e}")))?;
            if df.height() != n {
                return Err(DatasetError::Invalid(format!("{name}: a row group declares {n} rows but holds {}; has the file changed since it was registered?", df.height())));
            }
            standard_types(&df, name)?
        };
        let mut out: Vec<Column> = Vec::with_capacity(columns.len());
        for c in columns {
            if let Some(col) = raw.column(c).ok() {
                out.push(col.clone());
            } else if let Some(i) = self.hive_keys.iter().position(|(k, _)| k == c) {
                out.push(hive_column(c, &self.hive_keys[i].1, file.hive[i].as_deref(), n).map_err(|e| DatasetError::Invalid(format!("{name}: partition {c}: {e}")))?);
            }
        }
        DataFrame::new(n, out).map_err(|e| DatasetError::Ingest(e.into()))
    }
}

/// A partition key's value as a column of `n` rows.
fn hive_column(name: &str, dtype: &DataType, value: Option<&str>, n: usize) -> PolarsResult<Column> {
    let s = Series::new(name.into(), vec![value; n]);
    Ok(if *dtype == DataType::String { s.into_column() } else { s.cast(dtype)?.into_column() })
}

/// The `key=value` directories between the dataset's base and a file, values percent-decoded
/// (`__HIVE_DEFAULT_PARTITION__` is a missing value).
fn hive_parts(base: &Path, file: &Path) -> Vec<(String, Option<String>)> {
    let Ok(rel) = file.strip_prefix(base) else { return vec![] };
    let mut dirs: Vec<&std::ffi::OsStr> = rel.iter().collect();
    dirs.pop(); // the file itself
    dirs.iter()
        .filter_map(|d| d.to_str()?.split_once('='))
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (percent_decode(k), (v != "__HIVE_DEFAULT_PARTITION__").then(|| percent_decode(v))))
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a path component holds a glob wildcard (`*`, `?`; `**` for any number of directories).
fn is_glob(s: &str) -> bool {
    s.contains('*') || s.contains('?')
}

/// `*` and `?` within one path component. Iterative, with one backtrack point (the last `*`):
/// time O(pattern × name) whatever the pattern (a recursive matcher is exponential in the number
/// of `*`, and the pattern is the user's).
fn wild(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            // The last `*` takes one more byte.
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Whether the components `parts` match `pattern` (`**` = any number of components). Component by
/// component over the reachable prefixes: time O(pattern × parts × name), however many `**`.
fn glob_match(pattern: &[String], parts: &[String]) -> bool {
    let mut reach = vec![false; parts.len() + 1];
    reach[0] = true;
    for p in pattern {
        let mut next = vec![false; parts.len() + 1];
        if p == "**" {
            let mut any = false;
            for (n, r) in next.iter_mut().zip(&reach) {
                any |= *r;
                *n = any;
            }
        } else {
            for (j, part) in parts.iter().enumerate() {
                if reach[j] && wild(p.as_bytes(), part.as_bytes()) {
                    next[j + 1] = true;
                }
            }
        }
        reach = next;
    }
    reach[parts.len()]
}

/// A file name a dataset directory's reader takes: `.parquet` / `.pq`, not hidden or a marker
/// (`_SUCCESS`, `.crc` files).
fn is_data_file(name: &str) -> bool {
    !name.starts_with('.') && !name.starts_with('_') && (name.ends_with(".parquet") || name.ends_with(".pq"))
}

/// The dataset's base directory (where hive directories start) and its files, sorted, each
/// checked against `access`.
fn list_files(path: &str, access: &Access) -> Result<(PathBuf, Vec<PathBuf>), DatasetError> {
    let given = Path::new(path.trim());
    if path.trim().is_empty() {
        return Err(DatasetError::Invalid("the Parquet source needs a path".into()));
    }
    if let Access::Roots(roots) = access {
        if !given.is_absolute() {
            return Err(DatasetError::Invalid(format!("{path}: give an absolute path")));
        }
        if given.components().any(|c| c == Component::ParentDir) {
            return Err(DatasetError::Forbidden(format!("{path}: '..' is not allowed in an external path")));
        }
        if roots.is_empty() {
            return Err(DatasetError::Forbidden(format!("{path}: reading external datasets needs a directory allowed by an admin (strata serve --external-root DIR); none is allowed")));
        }
    }
    // The part before the first wildcard is the base; the rest is the pattern.
    let comps: Vec<String> = given.iter().map(|c| c.to_string_lossy().to_string()).collect();
    let first_glob = comps.iter().position(|c| is_glob(c));
    let (base, pattern): (PathBuf, Option<Vec<String>>) = match first_glob {
        Some(i) => (comps[..i].iter().collect(), Some(comps[i..].to_vec())),
        None => (given.to_path_buf(), None),
    };
    // Outside the roots is refused before anything is said about what exists there: the
    // nearest existing ancestor must already be inside.
    if let Access::Roots(roots) = access {
        let existing = base.ancestors().find(|a| a.exists()).map(Path::to_path_buf).unwrap_or_default();
        let under = std::fs::canonicalize(&existing).is_ok_and(|c| roots.iter().any(|r| c.starts_with(r)));
        if !under {
            return Err(DatasetError::Forbidden(format!(
                "{} is outside the directories an admin allowed for external datasets ({})",
                base.display(),
                roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let meta = std::fs::metadata(&base).map_err(|_| DatasetError::NotFound(format!("no file or directory at {}", base.display())))?;
    let check = |p: &Path| -> Result<PathBuf, DatasetError> {
        let canon = std::fs::canonicalize(p).map_err(|e| DatasetError::NotFound(format!("{}: {e}", p.display())))?;
        if let Access::Roots(roots) = access {
            if !roots.iter().any(|r| canon.starts_with(r)) {
                return Err(DatasetError::Forbidden(format!(
                    "{} is outside the directories an admin allowed for external datasets ({}){}",
                    p.display(),
                    roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", "),
                    if canon != p { format!("; it leads to {}", canon.display()) } else { String::new() }
                )));
            }
        }
        Ok(canon)
    };
    check(&base)?;
    if meta.is_file() && pattern.is_none() {
        let parent = base.parent().map(Path::to_path_buf).unwrap_or_default();
        return Ok((parent, vec![base]));
    }
    if !meta.is_dir() {
        return Err(DatasetError::Invalid(format!("{}: not a file or a directory", base.display())));
    }
    let mut files = Vec::new();
    let mut stack = vec![base.clone()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| DatasetError::NotFound(format!("{}: {e}", dir.display())))?;
        for e in entries {
            let e = e.map_err(|e| DatasetError::NotFound(format!("{}: {e}", dir.display())))?;
            let p = e.path();
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue;
            }
            // A symlink is followed only to where it may lead (`check`).
            let is_link = e.file_type().is_ok_and(|t| t.is_symlink());
            if is_link {
                check(&p)?;
            }
            let Ok(m) = std::fs::metadata(&p) else { continue };
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() {
                let take = match &pattern {
                    Some(pat) => {
                        let rel: Vec<String> = p.strip_prefix(&base).map(|r| r.iter().map(|c| c.to_string_lossy().to_string()).collect()).unwrap_or_default();
                        glob_match(pat, &rel)
                    }
                    None => is_data_file(&name),
                };
                if take {
                    files.push(p);
                    if files.len() > MAX_FILES {
                        return Err(DatasetError::Invalid(format!("{path}: more than {MAX_FILES} files")));
                    }
                }
            }
        }
    }
    if files.is_empty() {
        return Err(DatasetError::NotFound(format!("no Parquet files at {path}")));
    }
    files.sort();
    Ok((base, files))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_within_and_across_directories() {
        let v = |s: &str| s.split('/').map(str::to_string).collect::<Vec<_>>();
        assert!(glob_match(&v("*.parquet"), &v("a.parquet")));
        assert!(!glob_match(&v("*.parquet"), &v("x/a.parquet")));
        assert!(glob_match(&v("**/*.parquet"), &v("x/y/a.parquet")));
        assert!(glob_match(&v("**/*.parquet"), &v("a.parquet")));
        assert!(glob_match(&v("year=*/part-?.parquet"), &v("year=2024/part-0.parquet")));
        assert!(!glob_match(&v("year=*/part-?.parquet"), &v("year=2024/part-10.parquet")));
        assert!(glob_match(&v("a/**/**/b/*.pq"), &v("a/b/c.pq")));
        assert!(glob_match(&v("a/**/b/*.pq"), &v("a/x/y/b/c.pq")));
        assert!(!glob_match(&v("a/**/b/*.pq"), &v("a/x/y/c.pq")));
        assert!(wild(b"*a*b*", b"xxaxxbxx") && !wild(b"*a*b*", b"xxbxxaxx") && wild(b"**", b"") && wild(b"a*", b"a"));
        assert!(!wild(b"?", b"") && wild(b"*?", b"z") && !wild(b"a*c", b"abcd"));
    }

    #[test]
    fn hostile_globs_take_polynomial_time() {
        // Exponential for a recursive matcher: many stars that almost match, many `**`.
        let name = "a".repeat(250);
        assert!(!wild(format!("{}b", "*a".repeat(40)).as_bytes(), name.as_bytes()));
        let deep: Vec<String> = (0..60).map(|i| format!("d{i}")).collect();
        let pattern: Vec<String> = std::iter::repeat_n("**".to_string(), 30).chain(["nothing.parquet".to_string()]).collect();
        assert!(!glob_match(&pattern, &deep));
    }

    #[test]
    fn hive_directories_become_values() {
        let parts = hive_parts(Path::new("/d"), Path::new("/d/year=2024/city=New%20York/part-0.parquet"));
        assert_eq!(parts, vec![("year".into(), Some("2024".into())), ("city".into(), Some("New York".into()))]);
        assert_eq!(hive_parts(Path::new("/d"), Path::new("/d/k=__HIVE_DEFAULT_PARTITION__/p.parquet")), vec![("k".into(), None)]);
    }
}
