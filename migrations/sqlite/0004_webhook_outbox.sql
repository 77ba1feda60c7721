-- Webhook deliveries still to be made: one row per alert until it is delivered or given up, so a
-- pending delivery (and its retries) survives a restart. The body is the alert's `detail`.
-- `next_at` is an RFC 3339 UTC time with microseconds (text order is time order); a worker leases
-- a row by moving it into the future before it sends, so two workers never send the same attempt.
CREATE TABLE webhook_outbox (
    alert_id TEXT PRIMARY KEY REFERENCES alerts (id) ON DELETE CASCADE,
    attempts BIGINT NOT NULL,
    next_at  TEXT NOT NULL
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_at);
