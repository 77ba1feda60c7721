//! One `Settings` struct from the command line and the environment (`DATABASE_URL`, `STRATA_*`).

use std::net::SocketAddr;
use std::path::PathBuf;

/// Where the database lives: PostgreSQL when `DATABASE_URL` says so, else a SQLite file.
#[derive(Clone)]
pub enum DatabaseTarget {
    Postgres(String),
    Sqlite(PathBuf),
}

impl std::fmt::Debug for DatabaseTarget {
    // A URL may carry a password: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatabaseTarget::Postgres(_) => f.write_str("Postgres(<url hidden>)"),
            DatabaseTarget::Sqlite(p) => write!(f, "Sqlite({})", p.display()),
        }
    }
}

impl DatabaseTarget {
    /// `DATABASE_URL` if set (postgres:// or sqlite://), else `<data_dir>/strata.db`.
    pub fn resolve(database_url: Option<&str>, data_dir: &std::path::Path) -> anyhow::Result<Self> {
        match database_url.map(str::trim).filter(|u| !u.is_empty()) {
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                Ok(DatabaseTarget::Postgres(u.to_string()))
            }
            Some(u) if u.starts_with("sqlite:") => {
                let path = u.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
                Ok(DatabaseTarget::Sqlite(PathBuf::from(path)))
            }
            Some(_) => anyhow::bail!("DATABASE_URL must start with postgres://, postgresql:// or sqlite:"),
            None => Ok(DatabaseTarget::Sqlite(data_dir.join("strata.db"))),
        }
    }
}

/// Limits that protect the server from oversized input.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest accepted upload, in bytes.
    pub max_upload_bytes: u64,
    /// Largest accepted number of columns.
    pub max_columns: usize,
    /// Largest accepted number of rows.
    pub max_rows: u64,
    /// Largest accepted rows × columns.
    pub max_cells: u64,
    /// Largest uncompressed size a Parquet file may declare, in bytes.
    pub max_uncompressed_bytes: u64,
    /// Largest model file stored with a run, in bytes.
    pub max_model_bytes: u64,
    /// Longest an uploaded ONNX model may take to load and optimise.
    pub model_check_timeout: std::time::Duration,
    /// Largest amount of bootstrap values one analysis request may keep, in bytes: a request over it
    /// is refused before any work, with its cost and how to shrink it.
    pub max_analysis_bytes: u64,
    /// Model predictions one request may make (PDP, attacks, flip rates, predictions), checked
    /// before the first.
    pub max_predictions: u64,
    /// CPU-heavy jobs run at once (default: the number of cores).
    pub workers: usize,
    /// Jobs that may wait for a worker; one more is answered 503 with `Retry-After`.
    pub max_queue: usize,
    /// Longest a request may take before it is answered 503 (uploads included).
    pub request_timeout: std::time::Duration,
    /// Longest one Spark query of an external run may take; then Spark is asked to cancel it.
    pub spark_query_timeout: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_upload_bytes: 2 * 1024 * 1024 * 1024,
            max_columns: 2000,
            max_rows: 50_000_000,
            max_cells: 500_000_000,
            max_uncompressed_bytes: 8 << 30,
            max_model_bytes: 256 << 20,
            model_check_timeout: std::time::Duration::from_secs(60),
            max_analysis_bytes: 1024 * 1024 * 1024,
            max_predictions: 1_000_000,
            workers: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            max_queue: 64,
            request_timeout: std::time::Duration::from_secs(300),
            spark_query_timeout: std::time::Duration::from_secs(240),
        }
    }
}

impl Limits {
    /// The limits a file is read within.
    pub fn ingest(&self) -> crate::ingest::IngestLimits {
        crate::ingest::IngestLimits {
            max_rows: self.max_rows,
            max_columns: self.max_columns,
            max_cells: self.max_cells,
            max_uncompressed_bytes: self.max_uncompressed_bytes,
            stop_after_rows: None,
        }
    }
}

/// Everything the server needs to start. (`Debug` hides the secret key.)
#[derive(Clone)]
pub struct Settings {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub database: DatabaseTarget,
    /// Byte budget of the in-memory DataFrame cache.
    pub cache_bytes: usize,
    pub limits: Limits,
    /// Which hosts model endpoints and webhooks may call.
    pub outbound: crate::outbound::Outbound,
    /// `STRATA_SECRET_KEY`: seals stored tokens (else a key file in the data directory).
    pub secret_key: Option<String>,
    /// Load the demo runs into an empty database.
    pub demo: bool,
    /// Where cargo-leptos wrote the WASM, JS, CSS and public files.
    pub site_root: PathBuf,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("addr", &self.addr)
            .field("data_dir", &self.data_dir)
            .field("database", &self.database)
            .field("cache_bytes", &self.cache_bytes)
            .field("limits", &self.limits)
            .field("outbound", &self.outbound.describe())
            .field("secret_key", &self.secret_key.as_ref().map(|_| "<hidden>"))
            .field("demo", &self.demo)
            .finish()
    }
}
