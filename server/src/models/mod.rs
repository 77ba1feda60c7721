//! Models Strata can call: the `Model` trait and its adapters (ONNX in-process with tract).
//!
//! A model reads named inputs and returns one number per example: P(label = 1) for binary
//! classification, the prediction for regression. Inputs are matched to the run's columns by
//! name; a model input with no column of that name is an error that names it.

pub mod adversarial;
pub mod attack;
pub mod benchmark;
pub mod flip;
pub mod http;
pub mod importance;
pub mod onnx;
pub mod onnx_ml;
pub mod pdp;
pub mod shap;

use std::collections::BTreeMap;

use polars::prelude::*;

/// One input column of a batch.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// Numbers (missing = NaN).
    Numeric(Vec<f64>),
    /// Text (missing = empty string, as the demo models' encoders expect).
    Text(Vec<String>),
}

/// Examples to predict, column by column.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    pub rows: usize,
    pub columns: BTreeMap<String, Values>,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model '{model}': input '{input}' has no column of that name in the examples (columns: {columns})")]
    MissingInput { model: String, input: String, columns: String },
    #[error("model '{model}': input '{input}' expects {expected}, the column holds {found}")]
    WrongType { model: String, input: String, expected: String, found: String },
    #[error("model '{model}' cannot be loaded: {why}")]
    Load { model: String, why: String },
    #[error("model '{model}' failed to predict: {why}")]
    Run { model: String, why: String },
}

/// A model that scores examples.
pub trait Model: Send + Sync {
    /// The score column this model produces in the run.
    fn name(&self) -> &str;
    /// The input names it reads.
    fn input_names(&self) -> Vec<String>;
    /// One score per example of the batch.
    fn predict(&self, batch: &Batch) -> Result<Vec<f64>, ModelError>;
    /// The model's trees, when it is a tree ensemble Strata can read (for exact TreeSHAP).
    fn trees(&self) -> Option<&Trees> {
        None
    }
}

/// A model that is one ONNX-ML tree ensemble over one `[N, k]` input: its trees, the columns its
/// feature ids index, and the target whose margin is the score before the post-transform.
#[derive(Clone, Debug)]
pub struct Trees {
    pub ensemble: shap::TreeEnsemble,
    pub columns: Vec<String>,
    pub target: usize,
    /// The ONNX `post_transform` that turns the margin into the score (`LOGISTIC`, `NONE`, …).
    pub post_transform: String,
    /// The input is float32: values are rounded to it before routing, as onnxruntime does.
    pub float32: bool,
}

impl Batch {
    /// The rows of a DataFrame (every column: numeric as numbers, the rest as text).
    pub fn from_frame(df: &DataFrame) -> Result<Batch, PolarsError> {
        let mut columns = BTreeMap::new();
        for c in df.columns() {
            let s = c.as_materialized_series();
            let values = if s.dtype().is_primitive_numeric() || s.dtype() == &DataType::Boolean {
                let f = s.cast(&DataType::Float64)?;
                Values::Numeric(f.f64()?.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
            } else {
                let t = s.cast(&DataType::String)?;
                Values::Text(t.str()?.iter().map(|v| v.unwrap_or("").to_string()).collect())
            };
            columns.insert(c.name().to_string(), values);
        }
        Ok(Batch { rows: df.height(), columns })
    }

    /// Examples given as JSON objects (`{"age": 39, "sex": "Male"}`); `numeric` says which
    /// columns hold numbers. Absent or null values, and empty text for a number, are missing.
    pub fn from_json(examples: &[serde_json::Map<String, serde_json::Value>], numeric: &dyn Fn(&str) -> bool, names: &[String]) -> Result<Batch, String> {
        let mut columns = BTreeMap::new();
        for name in names {
            let values = if numeric(name) {
                let mut v = Vec::with_capacity(examples.len());
                for (i, e) in examples.iter().enumerate() {
                    v.push(match e.get(name) {
                        None | Some(serde_json::Value::Null) => f64::NAN,
                        Some(serde_json::Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
                        Some(serde_json::Value::String(s)) if s.trim().is_empty() => f64::NAN,
                        Some(serde_json::Value::String(s)) => s.trim().parse().map_err(|_| format!("example {i}: '{name}' is numeric, got \"{s}\""))?,
                        Some(serde_json::Value::Bool(b)) => f64::from(u8::from(*b)),
                        Some(other) => return Err(format!("example {i}: '{name}' is numeric, got {other}")),
                    });
                }
                Values::Numeric(v)
            } else {
                Values::Text(
                    examples
                        .iter()
                        .map(|e| match e.get(name) {
                            None | Some(serde_json::Value::Null) => String::new(),
                            Some(serde_json::Value::String(s)) => s.clone(),
                            Some(other) => other.to_string(),
                        })
                        .collect(),
                )
            };
            columns.insert(name.clone(), values);
        }
        Ok(Batch { rows: examples.len(), columns })
    }

    /// Keeps only the given rows, in order.
    pub fn take(&self, rows: &[usize]) -> Batch {
        let columns = self
            .columns
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Values::Numeric(x) => Values::Numeric(rows.iter().map(|i| x[*i]).collect()),
                    Values::Text(x) => Values::Text(rows.iter().map(|i| x[*i].clone()).collect()),
                };
                (k.clone(), v)
            })
            .collect();
        Batch { rows: rows.len(), columns }
    }
}
