//! The API's one error type: client faults with clear text, internal ones logged in full and
//! answered with a generic message.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use strata_app::model::ApiError as Body;

use crate::ingest::IngestError;
use crate::service::ServiceError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String, serde_json::Value),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    TooLarge(String, serde_json::Value),
    /// The request was understood but the model cannot serve it (e.g. an unsupported operator).
    #[error("{0}")]
    Unprocessable(String),
    /// Busy or the database is unreachable: 503 with `Retry-After` (seconds).
    #[error("{0}")]
    Unavailable(String, u64),
    /// No credentials, or ones that are not valid (401).
    #[error("{0}")]
    Unauthorized(String),
    /// Credentials fine, permission missing (403).
    #[error("{0}")]
    Forbidden(String),
    /// The name is taken (409).
    #[error("{0}")]
    Conflict(String),
    /// Gone for good, e.g. a revoked share link (410).
    #[error("{0}")]
    Gone(String),
    /// Too many attempts: 429 with `Retry-After` (seconds).
    #[error("{0}")]
    TooMany(String, u64),
    /// Logged with its whole chain of sources; the client gets a generic message.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn bad(msg: impl Into<String>) -> Self {
        ApiError::BadRequest(msg.into(), serde_json::Value::Null)
    }

    /// An internal failure described in words (the sources, if any, are in the text).
    pub fn internal(msg: impl Into<String>) -> Self {
        ApiError::Internal(msg.into().into())
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound(_) | ServiceError::Missing(_) => ApiError::NotFound(e.to_string()),
            ServiceError::BadRequest(m) => ApiError::bad(m),
            ServiceError::NeedsRows => ApiError::bad(e.to_string()),
            ServiceError::Ingest(i) => i.into(),
            ServiceError::Model(m) => ApiError::Unprocessable(m),
            ServiceError::Busy => ApiError::Unavailable(e.to_string(), 2),
            ServiceError::Forbidden(m) => ApiError::Forbidden(m),
            ServiceError::Conflict(m) => ApiError::Conflict(m),
            ServiceError::Cancelled => ApiError::Conflict(e.to_string()),
            ServiceError::Store(s) if s.is_unavailable() => {
                tracing::warn!(error = %crate::service::error_chain(&s), "database unavailable");
                ApiError::Unavailable("the database is unavailable; try again shortly".into(), 5)
            }
            other => ApiError::Internal(Box::new(other)),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match &e {
            IngestError::TooLarge { .. } => ApiError::TooLarge(e.to_string(), e.detail()),
            _ if e.is_client_error() => ApiError::BadRequest(e.to_string(), e.detail()),
            _ => ApiError::Internal(Box::new(e)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error, detail) = match self {
            ApiError::BadRequest(m, d) => (StatusCode::BAD_REQUEST, m, d),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m, serde_json::Value::Null),
            ApiError::TooLarge(m, d) => (StatusCode::PAYLOAD_TOO_LARGE, m, d),
            ApiError::Unprocessable(m) => (StatusCode::UNPROCESSABLE_ENTITY, m, serde_json::Value::Null),
            ApiError::Unauthorized(m) => {
                return (StatusCode::UNAUTHORIZED, [(axum::http::header::WWW_AUTHENTICATE, "Bearer realm=\"strata\"")], Json(Body { error: m, detail: serde_json::Value::Null })).into_response();
            }
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m, serde_json::Value::Null),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m, serde_json::Value::Null),
            ApiError::Gone(m) => (StatusCode::GONE, m, serde_json::Value::Null),
            ApiError::TooMany(m, retry) => {
                return (StatusCode::TOO_MANY_REQUESTS, [(axum::http::header::RETRY_AFTER, retry.to_string())], Json(Body { error: m, detail: serde_json::Value::Null })).into_response();
            }
            ApiError::Unavailable(m, retry) => {
                return (StatusCode::SERVICE_UNAVAILABLE, [(axum::http::header::RETRY_AFTER, retry.to_string())], Json(Body { error: m, detail: serde_json::Value::Null })).into_response();
            }
            ApiError::Internal(e) => {
                tracing::error!(error = %crate::service::error_chain(e.as_ref()), "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error; see the server log".to_string(), serde_json::Value::Null)
            }
        };
        (status, Json(Body { error, detail })).into_response()
    }
}
