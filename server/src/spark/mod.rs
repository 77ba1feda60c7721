//! Spark through Spark Connect: a remote's address parsed strictly, a client that runs SQL on it
//! and reads the Arrow answer into a plain table, and the pure builder of the push-down queries
//! (the cells of an external run, its schema, row count and quantile edges).
//!
//! No JVM or Python inside Strata: the client speaks Spark Connect's gRPC protocol (the Apache
//! project's generated stubs) and every address goes through the outbound rules
//! ([`crate::outbound::Outbound`]) like a model endpoint's.

pub mod client;
pub mod pushdown;
pub mod remote;
pub mod table;

use std::time::Duration;

pub use client::{SparkClient, SparkOptions};
pub use pushdown::{CellQuery, Param, ScoreGrid, SliceColumn, Source};
pub use remote::Remote;
pub use table::{SparkColumn, SparkTable, Values};

/// Why a Spark call failed; the text is safe to show to the user (never the token).
#[derive(Debug, thiserror::Error)]
pub enum SparkError {
    /// The `sc://` address is malformed or asks for something Strata does not allow.
    #[error("Spark Connect address: {0}")]
    BadRemote(String),
    /// The outbound rules refused the host (allow-list, private addresses).
    #[error("{0}")]
    Refused(#[source] crate::outbound::OutboundError),
    /// Nothing answered at the address, or the connection broke.
    #[error("Spark Connect at {remote} is unreachable ({detail})")]
    Unreachable { remote: String, detail: String },
    /// The server refused the credentials (a missing or wrong token).
    #[error("Spark Connect at {remote} refused the credentials ({detail})")]
    Unauthenticated { remote: String, detail: String },
    /// The table, view or path the run points at does not exist (any more).
    #[error("Spark cannot find the table or path {name}")]
    TableMissing { name: String, message: String },
    /// A column the run reads is not in the table (any more).
    #[error("Spark cannot find the column {name}")]
    ColumnMissing { name: String, message: String },
    /// A column the run reads has another type than when the run was registered.
    #[error("column '{column}' changed type: it was {was} when the run was registered, Spark now reads {now}")]
    ColumnTypeChanged { column: String, was: String, now: String },
    /// The query ran past its time limit; Strata asked Spark to cancel it.
    #[error("the Spark query did not finish within {} s and was cancelled{}", .after.as_secs_f64(), if *.cancelled { "" } else { " (Spark did not confirm the cancellation)" })]
    Timeout { after: Duration, cancelled: bool },
    /// Spark refused or failed the query; `class` is Spark's error class when it gave one.
    #[error("Spark failed the query{}: {message}", .class.as_ref().map(|c| format!(" [{c}]")).unwrap_or_default())]
    Query { class: Option<String>, message: String },
    /// The answer was larger than the limit Strata reads.
    #[error("Spark's answer is larger than the limit of {} MiB", .limit_bytes >> 20)]
    TooLarge { limit_bytes: u64 },
    /// A result column of a type Strata does not read.
    #[error("Spark's result column '{column}' has type {data_type}, which Strata does not read")]
    UnsupportedType { column: String, data_type: String },
    /// An answer that does not follow the protocol (bad Arrow data, a missing part).
    #[error("Spark Connect answered something Strata cannot read: {0}")]
    Protocol(String),
}

impl SparkError {
    /// Spark's error class of a failed query (`TABLE_OR_VIEW_NOT_FOUND`, …), when there is one.
    pub fn class(&self) -> Option<&str> {
        match self {
            SparkError::Query { class, .. } => class.as_deref(),
            SparkError::TableMissing { .. } => Some("TABLE_OR_VIEW_NOT_FOUND"),
            SparkError::ColumnMissing { .. } => Some("UNRESOLVED_COLUMN"),
            _ => None,
        }
    }
}
