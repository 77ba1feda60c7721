-- Runs, their rows and their attachments. The SQLite migration of the same number has the same
-- intent; types differ only where the engines do (BLOB vs BLOB).
-- Times are RFC 3339 UTC text (fixed width, so they sort), JSON is text: both read the same
-- through sqlx's backend-neutral `Any` driver.
CREATE TABLE runs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    task        TEXT NOT NULL,
    label       TEXT NOT NULL,
    models      TEXT NOT NULL,   -- JSON array of score column names
    row_count   INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    source_file TEXT NOT NULL,
    tags        TEXT NOT NULL,   -- JSON array
    columns     TEXT NOT NULL,   -- JSON array of ColumnInfo
    data_bytes  INTEGER NOT NULL
);
CREATE INDEX runs_created_at ON runs (created_at);

-- The per-example table as one Parquet file, split into chunks so no single value nears the
-- engines' 1 GB limit. Concatenating the chunks in `seq` order gives the file back.
CREATE TABLE run_data (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    chunk  BLOB NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- Model files (ONNX) and other attachments stored with a run.
CREATE TABLE run_attachments (
    run_id     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    media_type TEXT NOT NULL,
    model      TEXT,
    content    BLOB NOT NULL,
    PRIMARY KEY (run_id, name)
);
