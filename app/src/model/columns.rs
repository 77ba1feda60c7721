//! What the pickers know about a run's columns: name, type, cardinality and (for few) the values.

use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use utoipa::ToSchema;

use super::ColumnKind;

/// Most values a column brief lists; a categorical column with more offers no value picker.
pub const MAX_BRIEF_VALUES: usize = 50;

/// A feature column as the slicing pickers show it (label, score, id, weight and timestamp
/// columns are left out: nobody slices by them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct ColumnBrief {
    pub name: String,
    pub kind: ColumnKind,
    /// Distinct non-missing values.
    pub cardinality: u64,
    /// Numeric columns: the range, for the bucket builder's first edges.
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    /// Non-numeric columns with at most [`MAX_BRIEF_VALUES`] values: every value as the slices
    /// label it (sorted; missing values as `(missing)`); empty otherwise.
    #[serde(default)]
    pub values: Vec<String>,
    /// Non-numeric columns with more values than that: the [`MAX_BRIEF_VALUES`] most frequent
    /// (most frequent first), so a filter can still be picked; empty otherwise.
    #[serde(default)]
    pub top_values: Vec<String>,
}

impl ColumnBrief {
    /// The values a value picker offers: every value, else the most frequent ones.
    pub fn pickable_values(&self) -> &[String] {
        if self.values.is_empty() { &self.top_values } else { &self.values }
    }
}
