//! Projects, their versioned gates, validations, alerts and webhook deliveries.

use sqlx::Row;
use strata_app::model::{Alert, Delivery, GateSet, GateSetVersion, ProjectSummary, RuleSetVersion, RunSummary, Validation, ValidationBrief};

use super::{Store, StoreError, from_json, summary_columns, summary_from_row, to_json};

fn now() -> String {
    stamp(chrono::Utc::now())
}

/// A time as the outbox stores it: RFC 3339, UTC, microseconds (so text order is time order).
pub fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A webhook delivery waiting in the outbox.
#[derive(Clone, Debug)]
pub struct PendingDelivery {
    pub alert_id: String,
    /// The exact JSON text to POST (and sign).
    pub body: String,
    /// Attempts made so far.
    pub attempts: i64,
    pub next_at: String,
}

impl Store {
    /// Puts a run into a project (or takes it out with `None`) and sets its version label;
    /// false if there is no such run.
    pub async fn set_project(&self, run_id: &str, project: Option<&str>, version: Option<&str>) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE runs SET project = $1, version = $2 WHERE id = $3")
            .bind(project.map(str::to_string))
            .bind(version.map(str::to_string))
            .bind(run_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// A project's runs, oldest first (by the time they stand for).
    pub async fn project_runs(&self, project: &str) -> Result<Vec<RunSummary>, StoreError> {
        let rows = sqlx::query(concat!("SELECT ", summary_columns!(), " FROM runs WHERE project = $1 ORDER BY run_time, created_at"))
            .bind(project)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(summary_from_row).collect()
    }

    /// Every project with its number of runs, most recently active first.
    pub async fn list_projects(&self) -> Result<Vec<ProjectSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT project, COUNT(*) AS n, MAX(run_time) AS latest FROM runs WHERE project IS NOT NULL \
             GROUP BY project ORDER BY MAX(run_time) DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ProjectSummary {
                    project: r.try_get("project")?,
                    runs: r.try_get::<i64, _>("n")? as u64,
                    latest_run_time: r.try_get::<Option<String>, _>("latest")?.unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Saves a new version of a project's gates; returns it.
    pub async fn put_gates(&self, project: &str, gates: &GateSet) -> Result<GateSetVersion, StoreError> {
        let insert = "INSERT INTO project_gates (project, version, spec, created_at) \
                      SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3 FROM project_gates WHERE project = $1 RETURNING version";
        let (version, created_at) = self.insert_version(insert, project, &to_json(gates)?).await?;
        Ok(GateSetVersion { project: project.to_string(), version, created_at, gates: gates.clone() })
    }

    /// Saves a new version of a project's rules (their text, parsed by the caller); returns it.
    pub async fn put_rules(&self, project: &str, source: &str) -> Result<RuleSetVersion, StoreError> {
        let insert = "INSERT INTO project_rules (project, version, source, created_at) \
                      SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3 FROM project_rules WHERE project = $1 RETURNING version";
        let (version, created_at) = self.insert_version(insert, project, source).await?;
        Ok(RuleSetVersion { project: project.to_string(), version, created_at, source: source.to_string() })
    }

    /// Runs a versioned INSERT (`$1` project, `$2` payload, `$3` time; it takes the next version
    /// number itself). Two saves at the same moment can pick the same number: the loser (a key
    /// violation) tries again.
    async fn insert_version(&self, insert: &'static str, project: &str, payload: &str) -> Result<(i64, String), StoreError> {
        let mut attempt = 0;
        loop {
            let created_at = now();
            let inserted: Result<i64, sqlx::Error> = sqlx::query_scalar(insert).bind(project).bind(payload).bind(&created_at).fetch_one(&self.pool).await;
            match inserted {
                Ok(version) => return Ok((version, created_at)),
                // Only a unique-key conflict (another save took this version) is worth a retry.
                Err(e) if attempt < 5 && e.as_database_error().is_some_and(|d| d.is_unique_violation()) => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "saving a new version: retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(20 * attempt)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A project's gates: the given version, or the newest.
    pub async fn get_gates(&self, project: &str, version: Option<i64>) -> Result<Option<GateSetVersion>, StoreError> {
        let row = self
            .get_version(
                "SELECT version, spec AS payload, created_at FROM project_gates WHERE project = $1 AND version = $2",
                "SELECT version, spec AS payload, created_at FROM project_gates WHERE project = $1 ORDER BY version DESC LIMIT 1",
                project,
                version,
            )
            .await?;
        row.map(|(version, payload, created_at)| Ok(GateSetVersion { project: project.to_string(), version, created_at, gates: from_json(&payload)? })).transpose()
    }

    /// A project's rules: the given version, or the newest.
    pub async fn get_rules(&self, project: &str, version: Option<i64>) -> Result<Option<RuleSetVersion>, StoreError> {
        let row = self
            .get_version(
                "SELECT version, source AS payload, created_at FROM project_rules WHERE project = $1 AND version = $2",
                "SELECT version, source AS payload, created_at FROM project_rules WHERE project = $1 ORDER BY version DESC LIMIT 1",
                project,
                version,
            )
            .await?;
        Ok(row.map(|(version, source, created_at)| RuleSetVersion { project: project.to_string(), version, created_at, source }))
    }

    /// (version, payload, created_at) of one version, or of the newest.
    async fn get_version(&self, by_version: &'static str, newest: &'static str, project: &str, version: Option<i64>) -> Result<Option<(i64, String, String)>, StoreError> {
        let row = match version {
            Some(v) => sqlx::query(by_version).bind(project).bind(v).fetch_optional(&self.pool).await?,
            None => sqlx::query(newest).bind(project).fetch_optional(&self.pool).await?,
        };
        row.map(|r| Ok((r.try_get("version")?, r.try_get("payload")?, r.try_get("created_at")?))).transpose()
    }

    pub async fn insert_validation(&self, v: &Validation) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO validations (id, run_id, project, gates_version, passed, result, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&v.id)
        .bind(&v.run_id)
        .bind(&v.project)
        .bind(v.gates_version)
        .bind(i64::from(v.passed))
        .bind(to_json(v)?)
        .bind(&v.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest validation of a run, if it was ever validated.
    pub async fn latest_validation(&self, run_id: &str) -> Result<Option<Validation>, StoreError> {
        let row = sqlx::query("SELECT result FROM validations WHERE run_id = $1 ORDER BY created_at DESC LIMIT 1")
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| from_json(&r.try_get::<String, _>("result")?)).transpose()
    }

    /// The newest validation of each of a project's runs.
    pub async fn project_validations(&self, project: &str) -> Result<std::collections::BTreeMap<String, ValidationBrief>, StoreError> {
        let rows = sqlx::query("SELECT run_id, result FROM validations WHERE project = $1 ORDER BY created_at")
            .bind(project)
            .fetch_all(&self.pool)
            .await?;
        let mut out = std::collections::BTreeMap::new();
        for r in rows {
            let v: Validation = from_json(&r.try_get::<String, _>("result")?)?;
            let brief = ValidationBrief { passed: v.passed, gates_version: v.gates_version, failures: v.failures.len(), created_at: v.created_at };
            out.insert(r.try_get::<String, _>("run_id")?, brief);
        }
        Ok(out)
    }

    /// Records an alert; `detail` is the JSON the webhook receives.
    /// Stores an alert; with `queue`, also its webhook delivery in the outbox, in the same
    /// transaction (an alert is never stored without its pending delivery, or the reverse).
    pub async fn insert_alert(&self, alert: &Alert, detail: &serde_json::Value, queue: bool) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO alerts (id, run_id, project, kind, summary, detail, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&alert.id)
        .bind(alert.run_id.clone())
        .bind(alert.project.clone())
        .bind(&alert.kind)
        .bind(&alert.summary)
        .bind(to_json(detail)?)
        .bind(&alert.created_at)
        .execute(&mut *tx)
        .await?;
        if queue {
            sqlx::query("INSERT INTO webhook_outbox (alert_id, attempts, next_at) VALUES ($1, 0, $2)").bind(&alert.id).bind(now()).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deliveries due at `now` (oldest first), with the exact body to send.
    pub async fn due_deliveries(&self, now: &str, limit: i64) -> Result<Vec<PendingDelivery>, StoreError> {
        let rows = sqlx::query(
            "SELECT o.alert_id, a.detail, o.attempts, o.next_at FROM webhook_outbox o JOIN alerts a ON a.id = o.alert_id \
             WHERE o.next_at <= $1 ORDER BY o.next_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok(PendingDelivery { alert_id: r.try_get("alert_id")?, body: r.try_get("detail")?, attempts: r.try_get("attempts")?, next_at: r.try_get("next_at")? }))
            .collect()
    }

    /// Leases a due delivery until `until`; false when another worker took it first.
    pub async fn claim_delivery(&self, p: &PendingDelivery, until: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE webhook_outbox SET next_at = $1 WHERE alert_id = $2 AND next_at = $3 AND attempts = $4")
            .bind(until)
            .bind(&p.alert_id)
            .bind(&p.next_at)
            .bind(p.attempts)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records an attempt that will be retried at `next_at`.
    pub async fn reschedule_delivery(&self, alert_id: &str, attempts: i64, next_at: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE webhook_outbox SET attempts = $1, next_at = $2 WHERE alert_id = $3").bind(attempts).bind(next_at).bind(alert_id).execute(&self.pool).await?;
        Ok(())
    }

    /// Removes a delivery from the outbox (delivered, or given up).
    pub async fn drop_delivery(&self, alert_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM webhook_outbox WHERE alert_id = $1").bind(alert_id).execute(&self.pool).await?;
        Ok(())
    }

    /// When the next pending delivery is due, if any is pending.
    pub async fn next_delivery_at(&self) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT MIN(next_at) FROM webhook_outbox").fetch_one(&self.pool).await?)
    }

    /// The newest alerts with their deliveries.
    pub async fn list_alerts(&self, limit: i64) -> Result<Vec<Alert>, StoreError> {
        let rows = sqlx::query("SELECT id, run_id, project, kind, summary, created_at FROM alerts ORDER BY created_at DESC LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        let mut alerts = Vec::with_capacity(rows.len());
        for r in rows {
            let id: String = r.try_get("id")?;
            let deliveries = self.deliveries(&id).await?;
            alerts.push(Alert {
                id,
                run_id: r.try_get("run_id")?,
                project: r.try_get("project")?,
                kind: r.try_get("kind")?,
                summary: r.try_get("summary")?,
                created_at: r.try_get("created_at")?,
                deliveries,
            });
        }
        Ok(alerts)
    }

    pub async fn deliveries(&self, alert_id: &str) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query("SELECT attempt, url, status, error, at FROM alert_deliveries WHERE alert_id = $1 ORDER BY attempt")
            .bind(alert_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Delivery {
                    attempt: r.try_get("attempt")?,
                    url: r.try_get("url")?,
                    status: r.try_get("status")?,
                    error: r.try_get("error")?,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }

    pub async fn insert_delivery(&self, alert_id: &str, d: &Delivery) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO alert_deliveries (alert_id, attempt, url, status, error, at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(alert_id)
            .bind(d.attempt)
            .bind(&d.url)
            .bind(d.status)
            .bind(d.error.clone())
            .bind(&d.at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A server-wide setting (JSON text).
    pub async fn get_app_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT value FROM app_settings WHERE key = $1").bind(key).fetch_optional(&self.pool).await?)
    }

    /// Saves (replaces) a server-wide setting; `None` deletes it. One statement each way (an
    /// upsert), so concurrent saves cannot collide.
    pub async fn put_app_setting(&self, key: &str, value: Option<&str>) -> Result<(), StoreError> {
        match value {
            Some(v) => {
                sqlx::query(
                    "INSERT INTO app_settings (key, value, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                )
                .bind(key)
                .bind(v)
                .bind(now())
                .execute(&self.pool)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM app_settings WHERE key = $1").bind(key).execute(&self.pool).await?;
            }
        }
        Ok(())
    }
}
