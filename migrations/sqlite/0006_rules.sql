-- Model assertions: each project's business rules (text in Strata's rule language, parsed on
-- save), versioned like its gates: a save adds a version; validations name the version they applied.
CREATE TABLE project_rules (
    project    TEXT NOT NULL,
    version    INTEGER NOT NULL,
    source     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (project, version)
);
