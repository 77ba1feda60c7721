-- Continuous evaluation: runs grouped into projects (a model's evaluation history), each project's
-- validation gates (versioned: a save adds a version), validations of runs against them, alerts
-- raised by failures and drift, and the webhook deliveries of those alerts.
ALTER TABLE runs ADD COLUMN project TEXT;
ALTER TABLE runs ADD COLUMN version TEXT;
-- The time a run stands for (its timestamp column's latest value, else the upload time).
ALTER TABLE runs ADD COLUMN run_time TEXT;
UPDATE runs SET run_time = created_at;
CREATE INDEX runs_project ON runs (project, run_time);

CREATE TABLE project_gates (
    project    TEXT NOT NULL,
    version    BIGINT NOT NULL,
    spec       TEXT NOT NULL,   -- JSON GateSet
    created_at TEXT NOT NULL,
    PRIMARY KEY (project, version)
);

CREATE TABLE validations (
    id            TEXT PRIMARY KEY,
    run_id        TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    project       TEXT NOT NULL,
    gates_version BIGINT NOT NULL,
    passed        BIGINT NOT NULL,  -- 0 / 1: booleans read differently through the Any driver
    result        TEXT NOT NULL,    -- JSON Validation
    created_at    TEXT NOT NULL
);
CREATE INDEX validations_run ON validations (run_id, created_at);

CREATE TABLE alerts (
    id         TEXT PRIMARY KEY,
    run_id     TEXT REFERENCES runs (id) ON DELETE CASCADE,
    project    TEXT,
    kind       TEXT NOT NULL,   -- gate | drift
    summary    TEXT NOT NULL,
    detail     TEXT NOT NULL,   -- JSON sent to the webhook
    created_at TEXT NOT NULL
);
CREATE INDEX alerts_created ON alerts (created_at);

CREATE TABLE alert_deliveries (
    alert_id TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    attempt  BIGINT NOT NULL,
    url      TEXT NOT NULL,
    status   BIGINT,            -- HTTP status; NULL when there was no answer
    error    TEXT,
    at       TEXT NOT NULL,
    PRIMARY KEY (alert_id, attempt)
);

-- Server-wide settings (the alert webhook), JSON text under a key.
CREATE TABLE app_settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
