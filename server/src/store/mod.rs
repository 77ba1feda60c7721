//! Storage of runs in PostgreSQL or SQLite through one backend-neutral interface.
//!
//! A run is a row of metadata plus its per-example table stored as a Parquet file (chunked
//! blobs), which loads into a Polars DataFrame far faster than row-wise storage would.

pub mod cache;
pub mod projects;
pub mod teams;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};
use strata_app::model::{AttachmentInfo, ColumnInfo, RunDetail, RunSummary, Task};

use crate::settings::DatabaseTarget;

/// The columns [`summary_from_row`] reads.
macro_rules! summary_columns {
    () => {
        "id, name, task, models, row_count, created_at, source_file, tags, project, version, run_time, source"
    };
}
pub(crate) use summary_columns;

/// Largest single blob written to the database.
const CHUNK_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("migration error")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored metadata is corrupt: {0}")]
    Corrupt(String),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
}

impl StoreError {
    /// The database could not be reached (down, restarting, pool exhausted): a 503, not a 500.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(e) => matches!(e, sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_))
                || e.as_database_error().and_then(|d| d.code()).is_some_and(|c| c.starts_with("57P") || c.starts_with("08")),
            _ => false,
        }
    }
}

/// Which database a store talks to (chooses the pool size and the migrations).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DbKind {
    Postgres,
    Sqlite,
}

/// A new run, ready to be written in one transaction.
pub struct NewRun {
    pub detail: RunDetail,
    /// The rows as a Parquet file.
    pub parquet: Vec<u8>,
    pub attachments: Vec<NewAttachment>,
    /// An external source's sealed secret (a Spark Connect token), stored apart from the source.
    pub source_secret: Option<String>,
}

pub struct NewAttachment {
    pub info: AttachmentInfo,
    pub content: Vec<u8>,
}

/// The database behind Strata: a pool (PostgreSQL or SQLite, through sqlx's `Any` driver).
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
}

impl Store {
    /// Connects (creating the SQLite file and its folder if needed) and applies the migrations.
    pub async fn connect(target: &DatabaseTarget) -> Result<Store, StoreError> {
        install_default_drivers();
        let (url, kind) = match target {
            DatabaseTarget::Postgres(url) => (url.clone(), DbKind::Postgres),
            DatabaseTarget::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
                        path: dir.display().to_string(),
                        source,
                    })?;
                }
                (format!("sqlite://{}?mode=rwc", path.display()), DbKind::Sqlite)
            }
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if kind == DbKind::Sqlite { 4 } else { 10 })
            // A database that is down answers within seconds (a 503), not after sqlx's 30 s.
            .acquire_timeout(std::time::Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if kind == DbKind::Sqlite {
                        // WAL lets readers run while an upload is being written; foreign keys make
                        // ON DELETE CASCADE work; the busy timeout waits out a concurrent writer.
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA foreign_keys = ON",
                            "PRAGMA busy_timeout = 30000",
                            "PRAGMA synchronous = NORMAL",
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        match kind {
            DbKind::Postgres => sqlx::migrate!("../migrations/postgres").run(&pool).await?,
            DbKind::Sqlite => sqlx::migrate!("../migrations/sqlite").run(&pool).await?,
        }
        Ok(Store { pool })
    }

    /// Is the database reachable?
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Writes a run, its rows and its attachments in one transaction: all or nothing.
    pub async fn insert_run(&self, run: &NewRun) -> Result<(), StoreError> {
        let d = &run.detail;
        let s = &d.summary;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO runs (id, name, task, label, models, row_count, created_at, source_file, \
             tags, columns, data_bytes, project, version, run_time, source, source_secret) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(&s.id)
        .bind(&s.name)
        .bind(s.task.as_str())
        .bind(&d.label)
        .bind(to_json(&s.models)?)
        .bind(s.rows as i64)
        .bind(&s.created_at)
        .bind(&s.source_file)
        .bind(to_json(&s.tags)?)
        .bind(to_json(&d.columns)?)
        .bind(run.parquet.len() as i64)
        .bind(s.project.clone())
        .bind(s.version.clone())
        .bind(&s.run_time)
        .bind(s.source.as_ref().map(to_json).transpose()?)
        .bind(run.source_secret.clone())
        .execute(&mut *tx)
        .await?;
        for (seq, chunk) in run.parquet.chunks(CHUNK_BYTES).enumerate() {
            sqlx::query("INSERT INTO run_data (run_id, seq, chunk) VALUES ($1, $2, $3)")
                .bind(&s.id)
                .bind(seq as i32)
                .bind(chunk.to_vec())
                .execute(&mut *tx)
                .await?;
        }
        for a in &run.attachments {
            insert_attachment(&mut tx, &s.id, a).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// All runs, newest first.
    pub async fn list_runs(&self) -> Result<Vec<RunSummary>, StoreError> {
        let rows = sqlx::query(
            concat!("SELECT ", summary_columns!(), " FROM runs ORDER BY created_at DESC, name"),
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(summary_from_row).collect()
    }

    /// A run's metadata, or `None` if there is no such run.
    /// An external run's sealed source secret (see [`NewRun::source_secret`]).
    pub async fn source_secret(&self, id: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(Option<String>,)> = sqlx::query_as("SELECT source_secret FROM runs WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
        Ok(row.and_then(|r| r.0))
    }

    pub async fn get_run(&self, id: &str) -> Result<Option<RunDetail>, StoreError> {
        let Some(row) = sqlx::query(
            concat!("SELECT ", summary_columns!(), ", label, columns FROM runs WHERE id = $1"),
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let summary = summary_from_row(&row)?;
        let label: String = row.try_get("label")?;
        let columns: Vec<ColumnInfo> = from_json(&row.try_get::<String, _>("columns")?)?;
        let attachments = sqlx::query(
            "SELECT name, media_type, model, CAST(LENGTH(content) AS BIGINT) AS bytes \
             FROM run_attachments WHERE run_id = $1 ORDER BY name",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(AttachmentInfo {
                name: r.try_get("name")?,
                media_type: r.try_get("media_type")?,
                model: r.try_get("model")?,
                bytes: r.try_get::<i64, _>("bytes")? as u64,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(Some(RunDetail { summary, label, columns, attachments }))
    }

    /// The run's rows as the Parquet file they were stored as.
    pub async fn load_run_data(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let total: Option<i64> = sqlx::query_scalar("SELECT data_bytes FROM runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(total) = total else { return Ok(None) };
        let mut out = Vec::with_capacity(total as usize);
        let chunks = sqlx::query("SELECT chunk FROM run_data WHERE run_id = $1 ORDER BY seq")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        for row in chunks {
            let chunk: Vec<u8> = row.try_get("chunk")?;
            out.extend_from_slice(&chunk);
        }
        if out.len() as i64 != total {
            return Err(StoreError::Corrupt(format!(
                "run {id}: {} data bytes stored, {total} expected",
                out.len()
            )));
        }
        Ok(Some(out))
    }

    /// Stores an attachment with an existing run, replacing one of the same name; `false` if
    /// there is no such run.
    pub async fn put_attachment(&self, id: &str, a: &NewAttachment) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM runs WHERE id = $1").bind(id).fetch_optional(&mut *tx).await?;
        if exists.is_none() {
            return Ok(false);
        }
        sqlx::query("DELETE FROM run_attachments WHERE run_id = $1 AND name = $2").bind(id).bind(&a.info.name).execute(&mut *tx).await?;
        insert_attachment(&mut tx, id, a).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// An attachment's media type and content.
    pub async fn get_attachment(
        &self,
        id: &str,
        name: &str,
    ) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let row = sqlx::query(
            "SELECT media_type, content FROM run_attachments WHERE run_id = $1 AND name = $2",
        )
        .bind(id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((r.try_get("media_type")?, r.try_get("content")?))).transpose()
    }

    /// A setting saved with a run (JSON text), if any.
    pub async fn get_setting(&self, run_id: &str, key: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM run_settings WHERE run_id = $1 AND key = $2")
            .bind(run_id)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<String, _>("value")).transpose()?)
    }

    /// Saves (replaces) a setting of an existing run; false if the run does not exist. One
    /// statement (an upsert guarded by the run's existence), so concurrent saves of the same key
    /// neither collide on the key nor deadlock SQLite's lock upgrade.
    pub async fn put_setting(&self, run_id: &str, key: &str, value: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO run_settings (run_id, key, value, updated_at) \
             SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM runs WHERE id = $1) \
             ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(run_id)
        .bind(key)
        .bind(value)
        .bind(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Every setting of a run whose key starts with `prefix`, as (key, value), by key.
    pub async fn settings_with_prefix(&self, run_id: &str, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        // Keys are compared as text in Rust: a LIKE pattern would need the prefix escaped.
        let rows = sqlx::query("SELECT key, value FROM run_settings WHERE run_id = $1 ORDER BY key").bind(run_id).fetch_all(&self.pool).await?;
        let mut out = Vec::new();
        for r in rows {
            let key: String = r.try_get("key")?;
            if key.starts_with(prefix) {
                out.push((key, r.try_get("value")?));
            }
        }
        Ok(out)
    }

    /// Deletes one setting of a run; whether there was one.
    pub async fn delete_setting(&self, run_id: &str, key: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM run_settings WHERE run_id = $1 AND key = $2").bind(run_id).bind(key).execute(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes a run with its rows, attachments and settings; `false` if there was no such run.
    pub async fn delete_run(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        for sql in [
            "DELETE FROM run_settings WHERE run_id = $1",
            "DELETE FROM alert_deliveries WHERE alert_id IN (SELECT id FROM alerts WHERE run_id = $1)",
            "DELETE FROM webhook_outbox WHERE alert_id IN (SELECT id FROM alerts WHERE run_id = $1)",
            "DELETE FROM alerts WHERE run_id = $1",
            "DELETE FROM validations WHERE run_id = $1",
            "DELETE FROM run_attachments WHERE run_id = $1",
            "DELETE FROM run_data WHERE run_id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        let done = sqlx::query("DELETE FROM runs WHERE id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn count_runs(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM runs").fetch_one(&self.pool).await?)
    }

    /// Rows in the data and attachment tables of a run (for tests of all-or-nothing writes).
    pub async fn count_stored_parts(&self, id: &str) -> Result<(i64, i64), StoreError> {
        let data: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM run_data WHERE run_id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        let att: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM run_attachments WHERE run_id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        Ok((data, att))
    }
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn summary_from_row(row: &sqlx::any::AnyRow) -> Result<RunSummary, StoreError> {
    let task: String = row.try_get("task")?;
    let task = match task.as_str() {
        "binary" => Task::Binary,
        "multiclass" => Task::Multiclass,
        "regression" => Task::Regression,
        other => return Err(StoreError::Corrupt(format!("unknown task {other:?}"))),
    };
    Ok(RunSummary {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        task,
        models: from_json(&row.try_get::<String, _>("models")?)?,
        rows: row.try_get::<i64, _>("row_count")? as u64,
        created_at: row.try_get("created_at")?,
        source_file: row.try_get("source_file")?,
        tags: from_json(&row.try_get::<String, _>("tags")?)?,
        project: row.try_get("project")?,
        version: row.try_get("version")?,
        run_time: row.try_get::<Option<String>, _>("run_time")?.unwrap_or_default(),
        source: row.try_get::<Option<String>, _>("source")?.as_deref().map(from_json).transpose()?,
    })
}

/// Reads a stored Parquet file back into a DataFrame.
pub fn decode_frame(bytes: Vec<u8>) -> Result<polars::prelude::DataFrame, polars::prelude::PolarsError> {
    use polars::prelude::*;
    ParquetReader::new(std::io::Cursor::new(bytes)).finish()
}

/// One attachment row, within a run's transaction.
async fn insert_attachment(tx: &mut sqlx::Transaction<'_, sqlx::Any>, run_id: &str, a: &NewAttachment) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO run_attachments (run_id, name, media_type, model, content) VALUES ($1, $2, $3, $4, $5)")
        .bind(run_id)
        .bind(&a.info.name)
        .bind(&a.info.media_type)
        .bind(a.info.model.clone())
        .bind(a.content.clone())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
