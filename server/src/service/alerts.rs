//! Alerts: a failed validation or a drifted run is recorded, listed on `/alerts`, and posted as
//! JSON to the configured webhook, with retries and every attempt logged. Deliveries go through an
//! outbox table: an alert and its pending delivery are stored together, and a worker (started by
//! `serve`; driven to the end by the CLI) sends what is due, so nothing is lost by a restart.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use strata_app::model::{Alert, AlertsView, Delivery, RunSummary, Validation};

use super::{AppState, ServiceError};

/// The `app_settings` key of the webhook.
const WEBHOOK: &str = "webhook";

/// Where alerts are posted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[derive(utoipa::ToSchema)]
pub struct Webhook {
    /// An `http://` or `https://` URL; it receives `POST` with a JSON body.
    pub url: String,
    /// Attempts per alert (1–10) before giving up.
    #[serde(default = "attempts")]
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled before each later one.
    #[serde(default = "backoff")]
    pub backoff_ms: u64,
    /// When set, every delivery carries `X-Strata-Signature: sha256=<hex>`, the HMAC-SHA256 of
    /// the exact body bytes under this secret, so the receiver can check who sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// `sha256=<hex>` of the body's HMAC-SHA256 under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    format!("sha256={}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

pub(crate) fn attempts() -> u32 {
    4
}
pub(crate) fn backoff() -> u64 {
    1000
}

fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl AppState {
    /// The webhook with its secret opened (for deliveries; the API masks it).
    pub async fn webhook(&self) -> Result<Option<Webhook>, ServiceError> {
        let Some(text) = self.store.get_app_setting(WEBHOOK).await? else { return Ok(None) };
        let Ok(mut hook) = serde_json::from_str::<Webhook>(&text) else { return Ok(None) };
        hook.secret = hook.secret.as_deref().map(|s| self.secrets.open(s)).transpose().map_err(|e| ServiceError::Model(format!("webhook secret: {e}")))?;
        Ok(Some(hook))
    }

    /// Sets (or with `None`, removes) the webhook; its URL must pass the outbound rules, its
    /// secret is sealed before it is stored.
    pub async fn set_webhook(&self, hook: Option<Webhook>) -> Result<Option<Webhook>, ServiceError> {
        let mut stored = hook.clone();
        if let Some(h) = &mut stored {
            self.outbound.check_url(&h.url).map_err(|e| ServiceError::BadRequest(format!("webhook: {e}")))?;
            if !(1..=10).contains(&h.max_attempts) || h.backoff_ms > 600_000 {
                return Err(ServiceError::BadRequest("max_attempts must be 1–10 and backoff_ms at most 600000".into()));
            }
            h.url = h.url.trim().to_string();
            h.secret = h.secret.as_deref().filter(|s| !s.is_empty()).map(|s| self.secrets.seal(s)).transpose().map_err(|e| ServiceError::Model(e.to_string()))?;
        }
        let text = stored.as_ref().map(serde_json::to_string).transpose().map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        self.store.put_app_setting(WEBHOOK, text.as_deref()).await?;
        Ok(hook)
    }

    pub async fn alerts_view(&self) -> Result<AlertsView, ServiceError> {
        Ok(AlertsView { alerts: self.store.list_alerts(200).await?, webhook: self.webhook().await?.map(|h| crate::outbound::mask(&h.url)) })
    }

    /// Records the alerts a validation raises (a gate failure; drifted features) and sends them.
    pub(crate) async fn alert_on(&self, v: &Validation, run: &RunSummary) -> Result<(), ServiceError> {
        let who = format!("run '{}' ({})", run.name, run.id);
        if !v.passed {
            let more = if v.failures.len() > 1 { format!(" (and {} more)", v.failures.len() - 1) } else { String::new() };
            let summary = format!("{who} failed gates v{} of project '{}': {}{more}", v.gates_version, v.project, v.failures[0]);
            self.raise(run, "gate", summary, serde_json::json!({"validation": v})).await?;
        }
        if !v.drifted_features.is_empty() {
            let summary = format!(
                "{who} drifted from baseline run {} on {}: {}",
                v.baseline_run.as_deref().unwrap_or("?"),
                if v.drifted_features.len() == 1 { "1 feature" } else { "several features" },
                v.drifted_features.join(", ")
            );
            let detail = serde_json::json!({"project": v.project, "baseline_run": v.baseline_run, "drifted_features": v.drifted_features});
            self.raise(run, "drift", summary, detail).await?;
        }
        Ok(())
    }

    async fn raise(&self, run: &RunSummary, kind: &str, summary: String, detail: serde_json::Value) -> Result<(), ServiceError> {
        let alert = Alert {
            id: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            run_id: Some(run.id.clone()),
            project: run.project.clone(),
            kind: kind.to_string(),
            summary,
            created_at: now_text(),
            deliveries: vec![],
        };
        let body = serde_json::json!({
            "alert": {"id": alert.id, "kind": alert.kind, "summary": alert.summary, "run_id": alert.run_id, "project": alert.project, "created_at": alert.created_at},
            "detail": detail,
        });
        let queue = self.webhook().await?.is_some();
        self.store.insert_alert(&alert, &body, queue).await?;
        tracing::warn!(alert = %alert.id, kind, summary = %alert.summary, "alert");
        if queue {
            self.outbox_kick.notify_one();
        }
        Ok(())
    }

    /// Sends every delivery that is due, one attempt each; returns how long until the next one is
    /// due (`None`: nothing pending). A delivery is leased before it is sent, so several workers
    /// (or Strata processes on one database) never send the same attempt twice.
    pub async fn deliver_due(&self) -> Result<Option<Duration>, ServiceError> {
        use crate::store::projects::stamp;
        let hook = self.webhook().await?;
        let now = chrono::Utc::now();
        for p in self.store.due_deliveries(&stamp(now), 50).await? {
            let Some(hook) = &hook else {
                tracing::warn!(alert = %p.alert_id, "the webhook was removed: its pending delivery is dropped");
                self.store.drop_delivery(&p.alert_id).await?;
                continue;
            };
            if !self.store.claim_delivery(&p, &stamp(now + chrono::Duration::seconds(60))).await? {
                continue;
            }
            let attempt = p.attempts + 1;
            let mut headers = vec![("user-agent", "strata-alerts".to_string())];
            if let Some(secret) = hook.secret.as_deref() {
                headers.push(("x-strata-signature", signature(secret, p.body.as_bytes())));
            }
            let shown = crate::outbound::mask(&hook.url);
            let (status, error) = match self.outbound.post(&hook.url, p.body.into_bytes(), &headers, Duration::from_secs(10)).await {
                Ok((status, _)) => (Some(i64::from(status)), None),
                Err(e) => (e.status().map(i64::from), Some(e.to_string())),
            };
            let ok = error.is_none();
            let d = Delivery { attempt, url: shown.clone(), status, error, at: now_text() };
            if let Err(e) = self.store.insert_delivery(&p.alert_id, &d).await {
                tracing::error!(error = %e, alert = %p.alert_id, "logging a webhook delivery");
            }
            if ok {
                self.store.drop_delivery(&p.alert_id).await?;
            } else if attempt >= i64::from(hook.max_attempts) {
                tracing::error!(alert = %p.alert_id, url = %shown, attempts = attempt, "webhook delivery failed after every attempt");
                self.store.drop_delivery(&p.alert_id).await?;
            } else {
                // Doubling waits: backoff, 2 × backoff, 4 × backoff, …
                let wait = hook.backoff_ms.saturating_mul(1u64 << (attempt - 1).clamp(0, 20));
                let next = chrono::Utc::now() + chrono::Duration::milliseconds(wait.min(86_400_000) as i64);
                self.store.reschedule_delivery(&p.alert_id, attempt, &stamp(next)).await?;
            }
        }
        Ok(self.store.next_delivery_at().await?.map(|at| {
            chrono::DateTime::parse_from_rfc3339(&at).map_or(Duration::ZERO, |t| (t.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO))
        }))
    }

    /// Starts the outbox worker: sends deliveries as they fall due (and those a restart left
    /// pending), woken early when an alert is raised.
    pub fn start_outbox(&self) -> tokio::task::JoinHandle<()> {
        let state = self.clone();
        tokio::spawn(async move {
            loop {
                let wait = match state.deliver_due().await {
                    Ok(Some(d)) => d.clamp(Duration::from_millis(5), Duration::from_secs(30)),
                    Ok(None) => Duration::from_secs(30),
                    Err(e) => {
                        tracing::warn!(error = %super::error_chain(&e), "webhook outbox: will retry");
                        Duration::from_secs(5)
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = state.outbox_kick.notified() => {}
                }
            }
        })
    }

    /// Sends pending deliveries until none is left (delivered or given up): what the CLI does
    /// before it exits.
    pub async fn wait_for_deliveries(&self) {
        loop {
            match self.deliver_due().await {
                Ok(Some(d)) => tokio::time::sleep(d.max(Duration::from_millis(5))).await,
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(error = %super::error_chain(&e), "webhook outbox");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_signature_is_rfc_4231_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(super::signature("Jefe", b"what do ya want for nothing?"), "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }
}
