-- Teams: accounts, their sessions and API tokens, per-project grants, reviewer share links,
-- reviews of runs and the audit log. Secrets (session ids, tokens, link secrets) are stored only
-- as SHA-256 hashes; passwords as argon2id PHC strings. Times are RFC 3339 UTC text with
-- microseconds (text order is time order). Booleans are 0 / 1 (the Any driver reads them alike).
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL,            -- viewer | editor | admin
    kind          TEXT NOT NULL,            -- local | oidc | service
    password_hash TEXT,
    oidc_subject  TEXT UNIQUE,              -- issuer + ' ' + subject
    disabled      BIGINT NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    last_sign_in  TEXT
);

CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    last_seen  TEXT NOT NULL,
    expires_at TEXT NOT NULL               -- absolute expiry; idle expiry is last_seen + idle
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    scopes     TEXT NOT NULL,              -- comma-separated
    created_at TEXT NOT NULL,
    expires_at TEXT,
    last_used  TEXT
);

CREATE TABLE project_grants (
    project TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    grant_level TEXT NOT NULL,             -- read | edit | manage
    PRIMARY KEY (project, user_id)
);

CREATE TABLE share_links (
    id              TEXT PRIMARY KEY,
    hash            TEXT NOT NULL UNIQUE,
    run_id          TEXT REFERENCES runs (id) ON DELETE CASCADE,
    project         TEXT,
    view            TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    password_hash   TEXT,
    require_sign_in BIGINT NOT NULL DEFAULT 0,
    revoked_at      TEXT,
    last_opened     TEXT,
    opens           BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX share_links_run ON share_links (run_id);

CREATE TABLE reviews (
    id         TEXT PRIMARY KEY,
    run_id     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    author     TEXT NOT NULL,
    verdict    TEXT NOT NULL,              -- approve | request_changes | comment
    comment    TEXT NOT NULL,
    view       TEXT NOT NULL,
    preview    TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX reviews_run ON reviews (run_id, created_at);

CREATE TABLE audit_log (
    id      TEXT PRIMARY KEY,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT,
    detail  TEXT,
    address TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
