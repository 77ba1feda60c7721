//! A Spark Connect client: one session on one remote, SQL in, a [`SparkTable`] out, every call
//! bounded in time and size, and Spark's failures turned into [`SparkError`]s a user can act on.
//!
//! It speaks the protocol through the Apache project's generated stubs (`apache-spark-connect-
//! proto`, the proto crate of `apache-spark-connect` 4.2) rather than that crate's `SparkSession`:
//! the latter blocks on a runtime of its own (calling it from a Tokio worker would stall or
//! panic) and dials the host itself, while here the address is resolved and checked by the
//! outbound rules ([`Outbound::resolve_host`]) and the connection pinned to it (TLS still checks
//! the host name). A query that outlives its time limit is interrupted on the server.

use std::collections::HashMap;
use std::io::Cursor;
use std::time::Duration;

use arrow_ipc::reader::StreamReader;
use spark_connect_proto as proto;
use spark_connect_proto::spark_connect_service_client::SparkConnectServiceClient;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::pushdown::{self, CellQuery, Param, Source, Sql};
use super::{Remote, SparkError, SparkTable};
use crate::outbound::{Outbound, OutboundError};

/// Limits of a client's calls.
#[derive(Clone, Debug)]
pub struct SparkOptions {
    /// Connecting and the first answer (Spark's version).
    pub connect_timeout: Duration,
    /// One query, from sending it to the last batch; then it is interrupted.
    pub query_timeout: Duration,
    /// The most Arrow bytes one answer may hold.
    pub max_result_bytes: u64,
}

impl Default for SparkOptions {
    fn default() -> Self {
        SparkOptions { connect_timeout: Duration::from_secs(10), query_timeout: Duration::from_secs(300), max_result_bytes: 256 << 20 }
    }
}

/// The user Strata's sessions run as when the address names none.
const DEFAULT_USER: &str = "strata";
const CLIENT_TYPE: &str = "strata";
/// Largest gRPC message read (Spark sends Arrow batches of up to 4 MiB by default).
const MAX_MESSAGE_BYTES: usize = 128 << 20;

/// A session on a Spark Connect server.
pub struct SparkClient {
    stub: SparkConnectServiceClient<Channel>,
    remote: Remote,
    session_id: String,
    options: SparkOptions,
    version: String,
}

impl SparkClient {
    /// Checks the address against the outbound rules, connects to the checked address and asks
    /// Spark its version (so an unreachable server or refused token fails here, within
    /// `connect_timeout`).
    pub async fn connect(remote: &Remote, outbound: &Outbound, options: SparkOptions) -> Result<SparkClient, SparkError> {
        let unreachable = |detail: String| SparkError::Unreachable { remote: remote.to_string(), detail };
        let addr = outbound.resolve_host(&remote.host, remote.port).await.map_err(|e| match e {
            OutboundError::Refused(_) => SparkError::Refused(e),
            other => unreachable(other.to_string()),
        })?;
        let scheme = if remote.use_ssl { "https" } else { "http" };
        let origin: tonic::codegen::http::Uri =
            format!("{scheme}://{}", remote.authority()).parse().map_err(|e| SparkError::BadRemote(format!("{remote}: {e}")))?;
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
            .map_err(|e| SparkError::BadRemote(format!("{remote}: {e}")))?
            .origin(origin)
            .user_agent("strata")
            .map_err(|e| SparkError::BadRemote(e.to_string()))?
            .connect_timeout(options.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(20));
        if remote.use_ssl {
            let tls = ClientTlsConfig::new().domain_name(remote.host.clone()).with_native_roots();
            endpoint = endpoint.tls_config(tls).map_err(|e| SparkError::BadRemote(format!("{remote}: TLS: {e}")))?;
        }
        let channel = tokio::time::timeout(options.connect_timeout, endpoint.connect())
            .await
            .map_err(|_| unreachable(format!("no connection within {} s", options.connect_timeout.as_secs_f64())))?
            .map_err(|e| unreachable(source_chain(&e)))?;
        let stub = SparkConnectServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES);
        let mut client =
            SparkClient { stub, remote: remote.clone(), session_id: uuid::Uuid::new_v4().to_string(), options, version: String::new() };
        client.version = client.spark_version().await?;
        Ok(client)
    }

    /// Spark's version on the server (`4.2.1`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The address, for messages (without the token).
    pub fn remote(&self) -> &Remote {
        &self.remote
    }

    /// Runs one SQL query with its named parameters and reads the whole answer, within the
    /// client's `query_timeout`.
    pub async fn sql(&self, sql: &Sql) -> Result<SparkTable, SparkError> {
        self.sql_within(sql, self.options.query_timeout).await
    }

    /// [`SparkClient::sql`] with its own time limit (a quick registration query, a long scan).
    pub async fn sql_within(&self, sql: &Sql, after: Duration) -> Result<SparkTable, SparkError> {
        let operation = uuid::Uuid::new_v4().to_string();
        let named_arguments: HashMap<String, proto::Expression> = sql.args.iter().map(|(k, v)| (k.clone(), literal(v))).collect();
        let relation = proto::Relation {
            common: None,
            rel_type: Some(proto::relation::RelType::Sql(proto::Sql { query: sql.text.clone(), named_arguments, ..Default::default() })),
        };
        let request = proto::ExecutePlanRequest {
            session_id: self.session_id.clone(),
            user_context: Some(self.user_context()),
            operation_id: Some(operation.clone()),
            plan: Some(proto::Plan { op_type: Some(proto::plan::OpType::Root(relation)) }),
            client_type: Some(CLIENT_TYPE.into()),
            ..Default::default()
        };
        match tokio::time::timeout(after, self.execute(request)).await {
            Ok(Ok(table)) => Ok(table),
            Ok(Err(e)) => {
                if matches!(e, SparkError::TooLarge { .. }) {
                    self.interrupt(&operation).await;
                }
                Err(e)
            }
            Err(_) => {
                let cancelled = self.interrupt(&operation).await;
                Err(SparkError::Timeout { after, cancelled })
            }
        }
    }

    /// A source's columns and their Spark types (`bigint`, `double`, `string`…), in order.
    pub async fn schema(&self, source: &Source) -> Result<Vec<(String, String)>, SparkError> {
        let t = self.sql(&pushdown::schema_sql(source)).await?;
        let (names, types) = (&t.require("col_name")?.values, &t.require("data_type")?.values);
        Ok((0..t.height()).filter_map(|i| Some((names.text_at(i)?, types.text_at(i)?))).collect())
    }

    /// A source's row count.
    pub async fn row_count(&self, source: &Source) -> Result<u64, SparkError> {
        let t = self.sql(&pushdown::count_sql(source)).await?;
        let n = t.require("n")?.values.f64_at(0).ok_or_else(|| SparkError::Protocol("COUNT(*) answered no number".into()))?;
        Ok(n as u64)
    }

    /// Checks that the columns a run reads still have the types they had when it was registered
    /// (`expected`: name and Spark type, as [`SparkClient::schema`] gave them).
    pub async fn check_schema(&self, source: &Source, expected: &[(String, String)]) -> Result<(), SparkError> {
        compare_schema(expected, &self.schema(source).await?)
    }

    /// The cells of a run (see [`CellQuery::sql`]); the answer's columns are checked.
    pub async fn cells(&self, query: &CellQuery) -> Result<SparkTable, SparkError> {
        let t = self.sql(&query.sql()?).await?;
        let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
        let want = query.result_columns();
        if names != want {
            return Err(SparkError::Protocol(format!("the cells came back with columns {names:?}, not {want:?}")));
        }
        Ok(t)
    }

    /// Bucket edges of a numeric column at the given probabilities (approximate quantiles),
    /// sorted, repeats dropped.
    pub async fn quantile_edges(&self, source: &Source, column: &str, probabilities: &[f64]) -> Result<Vec<f64>, SparkError> {
        let t = self.sql(&pushdown::quantiles_sql(source, column, probabilities, 10_000)?).await?;
        let values: Vec<Option<f64>> = t.columns.iter().map(|c| if c.values.is_empty() { None } else { c.values.f64_at(0) }).collect();
        Ok(pushdown::edges_from_quantiles(&values))
    }

    /// Ends the session on the server (best effort: a server that is gone forgets it anyway).
    pub async fn close(self) {
        let request = proto::ReleaseSessionRequest {
            session_id: self.session_id.clone(),
            user_context: Some(self.user_context()),
            client_type: Some(CLIENT_TYPE.into()),
            ..Default::default()
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), self.stub.clone().release_session(self.request(request))).await;
    }

    async fn spark_version(&self) -> Result<String, SparkError> {
        let request = proto::AnalyzePlanRequest {
            session_id: self.session_id.clone(),
            user_context: Some(self.user_context()),
            client_type: Some(CLIENT_TYPE.into()),
            analyze: Some(proto::analyze_plan_request::Analyze::SparkVersion(proto::analyze_plan_request::SparkVersion {})),
            ..Default::default()
        };
        let after = self.options.connect_timeout;
        let answer = tokio::time::timeout(after, self.stub.clone().analyze_plan(self.request(request)))
            .await
            .map_err(|_| SparkError::Unreachable { remote: self.remote.to_string(), detail: format!("no answer within {} s", after.as_secs_f64()) })?
            .map_err(|s| self.status_error(s))?
            .into_inner();
        match answer.result {
            Some(proto::analyze_plan_response::Result::SparkVersion(v)) => Ok(v.version),
            _ => Err(SparkError::Protocol("the server did not say its Spark version".into())),
        }
    }

    async fn execute(&self, request: proto::ExecutePlanRequest) -> Result<SparkTable, SparkError> {
        let mut stream = self.stub.clone().execute_plan(self.request(request)).await.map_err(|s| self.status_error(s))?.into_inner();
        let mut batches = Vec::new();
        let mut bytes: u64 = 0;
        while let Some(message) = stream.message().await.map_err(|s| self.status_error(s))? {
            let Some(proto::execute_plan_response::ResponseType::ArrowBatch(batch)) = message.response_type else { continue };
            bytes += batch.data.len() as u64;
            if bytes > self.options.max_result_bytes {
                return Err(SparkError::TooLarge { limit_bytes: self.options.max_result_bytes });
            }
            // Each Arrow batch message is a whole IPC stream: its schema, then its batches.
            let reader = StreamReader::try_new(Cursor::new(batch.data), None).map_err(|e| SparkError::Protocol(format!("Arrow data: {e}")))?;
            for b in reader {
                batches.push(b.map_err(|e| SparkError::Protocol(format!("Arrow data: {e}")))?);
            }
        }
        SparkTable::from_batches(&batches)
    }

    /// Asks Spark to stop an operation; true when Spark names it as interrupted.
    async fn interrupt(&self, operation: &str) -> bool {
        let request = proto::InterruptRequest {
            session_id: self.session_id.clone(),
            user_context: Some(self.user_context()),
            client_type: Some(CLIENT_TYPE.into()),
            interrupt_type: proto::interrupt_request::InterruptType::OperationId as i32,
            interrupt: Some(proto::interrupt_request::Interrupt::OperationId(operation.to_string())),
            ..Default::default()
        };
        match tokio::time::timeout(Duration::from_secs(5), self.stub.clone().interrupt(self.request(request))).await {
            Ok(Ok(answer)) => answer.into_inner().interrupted_ids.iter().any(|id| id == operation),
            Ok(Err(e)) => {
                tracing::warn!(remote = %self.remote, error = %e.message(), "Spark did not interrupt a query past its time limit");
                false
            }
            Err(_) => false,
        }
    }

    fn user_context(&self) -> proto::UserContext {
        proto::UserContext { user_id: self.remote.user_id.clone().unwrap_or_else(|| DEFAULT_USER.into()), ..Default::default() }
    }

    /// A request with the address's headers and the token.
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(message);
        let md = req.metadata_mut();
        for (k, v) in &self.remote.headers {
            // Names and values were checked when the address was parsed.
            if let (Ok(k), Ok(v)) = (tonic::metadata::MetadataKey::from_bytes(k.as_bytes()), v.parse()) {
                md.insert(k, v);
            }
        }
        if let Some(token) = self.remote.token()
            && let Ok(mut v) = tonic::metadata::MetadataValue::try_from(format!("Bearer {token}"))
        {
            v.set_sensitive(true);
            md.insert("authorization", v);
        }
        req
    }

    fn status_error(&self, s: tonic::Status) -> SparkError {
        status_error(&self.remote, &s)
    }
}

/// A literal expression for a named parameter.
fn literal(p: &Param) -> proto::Expression {
    use proto::expression::literal::LiteralType;
    let value = match p {
        Param::Text(s) => LiteralType::String(s.clone()),
        Param::Number(x) => LiteralType::Double(*x),
        Param::Bool(b) => LiteralType::Boolean(*b),
    };
    proto::Expression {
        expr_type: Some(proto::expression::ExprType::Literal(proto::expression::Literal { literal_type: Some(value), ..Default::default() })),
        ..Default::default()
    }
}

/// Spark's answer to a failed call as a [`SparkError`]: the error class Spark puts first in its
/// message (`[TABLE_OR_VIEW_NOT_FOUND] The table or view `x` cannot be found. …`) decides.
fn status_error(remote: &Remote, s: &tonic::Status) -> SparkError {
    use tonic::Code;
    let message = first_line(s.message());
    match s.code() {
        Code::Unavailable => SparkError::Unreachable { remote: remote.to_string(), detail: message },
        Code::Unauthenticated | Code::PermissionDenied => SparkError::Unauthenticated { remote: remote.to_string(), detail: message },
        // Strata sets no gRPC deadline (its own limit interrupts the query): this is the server's.
        Code::DeadlineExceeded => SparkError::Query { class: Some("DEADLINE_EXCEEDED".into()), message },
        _ => {
            let class = error_class(s.message());
            let name = || quoted_name(&message).unwrap_or_else(|| message.clone());
            match class.as_deref() {
                Some(c) if c.starts_with("TABLE_OR_VIEW_NOT_FOUND") || c.starts_with("PATH_NOT_FOUND") => {
                    SparkError::TableMissing { name: name(), message }
                }
                Some(c) if c.starts_with("UNRESOLVED_COLUMN") => SparkError::ColumnMissing { name: name(), message },
                _ => SparkError::Query { class, message },
            }
        }
    }
}

/// `TABLE_OR_VIEW_NOT_FOUND` from `[TABLE_OR_VIEW_NOT_FOUND] …`.
fn error_class(message: &str) -> Option<String> {
    let rest = message.trim_start().strip_prefix('[')?;
    let (class, _) = rest.split_once(']')?;
    (!class.is_empty() && class.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'.')).then(|| class.to_string())
}

/// The first `` `quoted` `` name in a message (Spark quotes the missing table or column), with
/// the parts of a qualified one (`` `db`.`table` ``).
fn quoted_name(message: &str) -> Option<String> {
    let start = message.find('`')?;
    let mut end = start + 1 + message[start + 1..].find('`')?;
    while message[end + 1..].starts_with(".`") {
        let Some(close) = message[end + 3..].find('`') else { break };
        end = end + 3 + close;
    }
    Some(message[start..=end].to_string())
}

/// A message's first line, at most 400 characters (Spark appends plans and stack traces).
fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or("").trim();
    let mut out: String = line.chars().take(400).collect();
    if line.chars().count() > 400 {
        out.push('…');
    }
    out
}

/// A transport error with its causes (tonic's own text is only "transport error").
fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// Compares the registered types of the columns a run reads with the source's types now.
pub fn compare_schema(expected: &[(String, String)], actual: &[(String, String)]) -> Result<(), SparkError> {
    for (name, was) in expected {
        match actual.iter().find(|(n, _)| n == name) {
            None => return Err(SparkError::ColumnMissing { name: format!("`{name}`"), message: format!("the source has no column `{name}` any more") }),
            Some((_, now)) if !now.eq_ignore_ascii_case(was) => {
                return Err(SparkError::ColumnTypeChanged { column: name.clone(), was: was.clone(), now: now.clone() });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spark_errors_become_clear_variants() {
        let r = Remote::parse("sc://127.0.0.1:1").unwrap();
        let e = status_error(&r, &tonic::Status::internal(
            "[TABLE_OR_VIEW_NOT_FOUND] The table or view `nope`.`t` cannot be found. Verify the spelling. SQLSTATE: 42P01\n== SQL ==\nSELECT …",
        ));
        assert!(matches!(&e, SparkError::TableMissing { name, .. } if name == "`nope`.`t`"), "{e:?}");
        let e = status_error(&r, &tonic::Status::internal("[TABLE_OR_VIEW_NOT_FOUND] The table or view `global_temp`.`v` cannot be found."));
        assert!(matches!(&e, SparkError::TableMissing { name, .. } if name == "`global_temp`.`v`"), "{e:?}");
        assert!(!e.to_string().contains("== SQL"));
        let e = status_error(&r, &tonic::Status::invalid_argument("[UNRESOLVED_COLUMN.WITH_SUGGESTION] A column `x` cannot be resolved."));
        assert!(matches!(&e, SparkError::ColumnMissing { name, .. } if name == "`x`"), "{e:?}");
        let e = status_error(&r, &tonic::Status::internal("[DIVIDE_BY_ZERO] Division by zero."));
        assert_eq!(e.class(), Some("DIVIDE_BY_ZERO"));
        assert!(matches!(status_error(&r, &tonic::Status::unavailable("x")), SparkError::Unreachable { .. }));
        assert!(matches!(status_error(&r, &tonic::Status::unauthenticated("x")), SparkError::Unauthenticated { .. }));
        let long = "y".repeat(1000);
        assert!(status_error(&r, &tonic::Status::internal(long)).to_string().len() < 500);
        assert_eq!(error_class("[a] lower-case is no class"), None);
    }

    #[test]
    fn a_changed_or_missing_column_is_named() {
        let was = vec![("label".to_string(), "int".to_string()), ("score".to_string(), "double".to_string())];
        assert!(compare_schema(&was, &[("score".into(), "DOUBLE".into()), ("label".into(), "int".into()), ("x".into(), "string".into())]).is_ok());
        let e = compare_schema(&was, &[("label".into(), "string".into()), ("score".into(), "double".into())]).unwrap_err();
        assert!(matches!(&e, SparkError::ColumnTypeChanged { column, was, now } if column == "label" && was == "int" && now == "string"));
        assert!(e.to_string().contains("changed type"));
        assert!(matches!(compare_schema(&was, &[("label".into(), "int".into())]), Err(SparkError::ColumnMissing { .. })));
    }
}
