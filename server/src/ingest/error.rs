//! Ingest errors: every problem names the file and, where one applies, the line (or row) and column.

use std::fmt;

/// Where in the file a problem is.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    /// The whole file.
    File,
    /// The header line (line 1 of a CSV file).
    Header,
    /// A line of a text file; the header is line 1.
    Line(u64),
    /// A data row of a Parquet file, counted from 1.
    Row(u64),
}

/// One thing wrong with an uploaded file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    #[serde(flatten)]
    pub place: PlaceJson,
    pub column: Option<String>,
    pub message: String,
}

/// `Place` as it appears in the API's `detail` (`{"line": 4}`, `{"row": 7}` or nothing).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PlaceJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
}

impl Problem {
    pub fn new(place: Place, column: Option<&str>, message: impl Into<String>) -> Self {
        let place = match place {
            Place::File => PlaceJson { line: None, row: None },
            Place::Header => PlaceJson { line: Some(1), row: None },
            Place::Line(l) => PlaceJson { line: Some(l), row: None },
            Place::Row(r) => PlaceJson { line: None, row: Some(r) },
        };
        Problem { place, column: column.map(str::to_string), message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(l) = self.place.line {
            parts.push(format!("line {l}"));
        }
        if let Some(r) = self.place.row {
            parts.push(format!("row {r}"));
        }
        if let Some(c) = &self.column {
            parts.push(format!("column '{c}'"));
        }
        if parts.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", parts.join(", "), self.message)
        }
    }
}

/// Why a file was refused. Nothing is stored when ingest fails.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The file's content is wrong; `problems` holds the first ones found (at most [`MAX_PROBLEMS`]).
    #[error("{file}: {}", summary(.problems))]
    Invalid { file: String, problems: Vec<Problem> },
    /// The spec (roles, name) is wrong.
    #[error("{0}")]
    Spec(String),
    #[error("{file}: the file is larger than the limit of {limit} bytes")]
    TooLarge { file: String, limit: u64 },
    #[error("reading {file}: {source}")]
    Io { file: String, source: std::io::Error },
    #[error("building the run table")]
    Polars(#[from] polars::error::PolarsError),
}

/// How many problems one error reports before it stops looking.
pub const MAX_PROBLEMS: usize = 20;

fn summary(problems: &[Problem]) -> String {
    match problems {
        [] => "invalid file".to_string(),
        [one] => one.to_string(),
        [first, rest @ ..] => format!("{first} (and {} more problems)", rest.len()),
    }
}

impl IngestError {
    pub fn one(file: &str, place: Place, column: Option<&str>, message: impl Into<String>) -> Self {
        IngestError::Invalid {
            file: file.to_string(),
            problems: vec![Problem::new(place, column, message)],
        }
    }

    /// Problems as JSON for the API's `detail`.
    pub fn detail(&self) -> serde_json::Value {
        match self {
            IngestError::Invalid { file, problems } => {
                serde_json::json!({ "file": file, "problems": problems })
            }
            IngestError::TooLarge { file, limit } => {
                serde_json::json!({ "file": file, "limit_bytes": limit })
            }
            _ => serde_json::Value::Null,
        }
    }

    /// Client error (the input) rather than a server fault?
    pub fn is_client_error(&self) -> bool {
        !matches!(self, IngestError::Io { .. } | IngestError::Polars(_))
    }
}

/// Collects problems up to [`MAX_PROBLEMS`].
#[derive(Default)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn push(&mut self, p: Problem) {
        if self.0.len() < MAX_PROBLEMS {
            self.0.push(p);
        }
    }
    pub fn full(&self) -> bool {
        self.0.len() >= MAX_PROBLEMS
    }
    pub fn into_result(self, file: &str) -> Result<(), IngestError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(IngestError::Invalid { file: file.to_string(), problems: self.0 })
        }
    }
}
