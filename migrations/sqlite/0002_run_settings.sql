-- Per-run settings a user saves from the pages (e.g. the fairness limits a run is judged
-- against), as JSON text under a key. Deleted with the run.
CREATE TABLE run_settings (
    run_id     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
