//! Integration tests in one binary (one link of Polars): the API on SQLite and on a real
//! PostgreSQL (a fresh database per test), ingest errors on the malformed files, golden metrics.

mod api;
mod cli;
mod helpers;
mod hostile;
mod ingest_errors;
mod discover;
mod drift;
mod etag;
mod external;
mod faults;
mod fuzz;
mod fairness_golden;
mod metrics_golden;
mod outbound;
mod projects;
mod residuals_golden;
mod site;
mod slices_golden;
mod teams;
mod served;
mod spark;
mod whatif;
mod progress;
