//! The benchmark model use case: fit it on a run, store it with the run, and expose its scores as
//! one more model column (`strata_benchmark`) that every view can slice and compare.

use std::sync::Arc;

use polars::prelude::*;
use strata_app::model::{ColumnKind, Role, Task};

use super::{AppState, ServiceError};
use crate::models::Model;
use crate::models::benchmark::LinearBenchmark;
use crate::models::{Batch, Values};

/// The setting the fitted model is stored under.
pub const KEY: &str = "benchmark_model";
/// The score column it adds to the run.
pub const COLUMN: &str = "strata_benchmark";

/// What a fit reports.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct BenchmarkInfo {
    pub model: String,
    /// `logistic` (binary runs) or `ridge` (regression runs).
    pub kind: String,
    pub trained_on: usize,
    pub iterations: usize,
    pub features: usize,
    pub c: f64,
}

impl AppState {
    /// The stored benchmark model of a run, if any.
    pub async fn benchmark(&self, id: &str) -> Result<Option<LinearBenchmark>, ServiceError> {
        match self.store.get_setting(id, KEY).await? {
            Some(text) => Ok(Some(serde_json::from_str(&text).map_err(|e| ServiceError::Model(format!("the stored benchmark model is unreadable: {e}")))?)),
            None => Ok(None),
        }
    }

    /// Appends the benchmark's scores to a freshly loaded frame.
    pub(super) async fn with_benchmark(&self, id: &str, frame: DataFrame) -> Result<DataFrame, ServiceError> {
        let Some(model) = self.benchmark(id).await? else { return Ok(frame) };
        self.work.run(move || -> Result<DataFrame, ServiceError> {
            let scores = model.predict(&Batch::from_frame(&frame)?)?;
            let mut frame = frame;
            frame.with_column(Column::new(COLUMN.into(), scores))?;
            Ok(frame)
        })
        .await?
    }

    /// Fits the benchmark (L2 penalty `1/c`) on a seeded sample of at most `max_rows` rows and
    /// stores it with the run; the run's views then offer `strata_benchmark` as a model.
    pub async fn train_benchmark(&self, id: &str, c: f64, max_rows: usize) -> Result<BenchmarkInfo, ServiceError> {
        if !(c > 0.0 && c.is_finite()) || !(100..=200_000).contains(&max_rows) {
            return Err(ServiceError::BadRequest("c is a positive number, max_rows 100..=200000".into()));
        }
        let detail = self.store.get_run(id).await?.ok_or_else(|| ServiceError::NotFound(id.to_string()))?;
        let kind = match detail.summary.task {
            Task::Binary => "logistic",
            Task::Regression => "ridge",
            Task::Multiclass => return Err(ServiceError::BadRequest("the benchmark model is for binary and regression runs".into())),
        };
        if detail.columns.iter().any(|c| c.name == COLUMN) {
            return Err(ServiceError::BadRequest(format!("the run already has a column named '{COLUMN}'")));
        }
        let frame = self.frame(id).await?;
        let numeric: Vec<String> = detail.columns.iter().filter(|c| c.role == Role::Feature && matches!(c.kind, ColumnKind::Numeric | ColumnKind::Boolean)).map(|c| c.name.clone()).collect();
        let categorical: Vec<String> = detail.columns.iter().filter(|c| c.role == Role::Feature && matches!(c.kind, ColumnKind::Categorical)).map(|c| c.name.clone()).collect();
        // Newton's method keeps a d × d Hessian (d ≤ numeric + 30 per categorical feature): its
        // size is the cost, checked against the analysis budget before any work.
        let d = (numeric.len() + 30 * categorical.len() + 1) as u64;
        let hessian = d * d * 8;
        if hessian > self.limits.max_analysis_bytes {
            return Err(ServiceError::BadRequest(format!(
                "fitting the benchmark on {} numeric and {} categorical features would keep a {d} × {d} matrix ({} MiB); the limit is {} MiB (STRATA_MAX_ANALYSIS_MB): ignore some features when you upload the run",
                numeric.len(),
                categorical.len(),
                hessian >> 20,
                self.limits.max_analysis_bytes >> 20
            )));
        }
        let rows = crate::eval::sample_rows(frame.height(), max_rows, 0);
        let sub = crate::eval::take_rows(&frame, &rows)?;
        let labels = crate::eval::f64_values(&sub, &detail.label)?;
        let batch = Batch::from_frame(&sub)?;
        let model = self.work.run(move || {
            // Features the engine stored as text but that hold numbers stay categorical: as ingested.
            let numeric: Vec<String> = numeric.into_iter().filter(|n| matches!(batch.columns.get(n), Some(Values::Numeric(_)))).collect();
            LinearBenchmark::fit(COLUMN, kind, &batch, &labels, &numeric, &categorical, c)
        })
        .await?
        .map_err(ServiceError::BadRequest)?;
        let info = BenchmarkInfo { model: COLUMN.into(), kind: kind.into(), trained_on: model.trained_on, iterations: model.iterations, features: model.weights.len(), c };
        let text = serde_json::to_string(&model).map_err(|e| ServiceError::Model(e.to_string()))?;
        if !self.store.put_setting(id, KEY, &text).await? {
            return Err(ServiceError::NotFound(id.to_string()));
        }
        self.forget(id);
        Ok(info)
    }

    /// The benchmark as a callable model (for what-if and predictions).
    pub(super) async fn benchmark_model(&self, id: &str) -> Result<Option<Arc<dyn Model>>, ServiceError> {
        Ok(self.benchmark(id).await?.map(|m| Arc::new(m) as Arc<dyn Model>))
    }
}
