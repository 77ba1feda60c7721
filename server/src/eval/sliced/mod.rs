//! Metrics per slice, at many thresholds, with confidence intervals and baseline comparisons.
//!
//! Binary metrics come from mergeable sufficient statistics (TFMA's combiners): per slice, the
//! weight of positives and negatives in each "threshold bucket" (how many of the sorted thresholds a
//! score reaches), so one pass over the rows serves every threshold and every slice, and partial
//! results of row chunks merge by addition. AUC-ROC and average precision are exact (tied scores
//! handled as scikit-learn does) from one sort shared by all slices. Intervals: Wilson for rates,
//! a seeded Poisson bootstrap (TFMA's method) for everything; baseline gaps get a bootstrap z-test
//! and Benjamini–Hochberg control across the request's slices.
//!
//! Which metrics exist, their order, directions, intervals and confusion-matrix finishes: the
//! registry `strata_app::metrics`. Here: the request ([`request`]), the per-family statistics
//! ([`binary`], [`regression`], [`multiclass`]), the preparation into cached cells ([`prepare`]),
//! the same cells folded batch by batch for rows never in memory at once ([`stream`]), the
//! bootstrap driver ([`compute`]), the binary bootstrap's kept threshold-free part ([`boot`]) and
//! the fairness criteria ([`criteria`]).

use std::collections::BTreeMap;

use polars::prelude::*;
use strata_app::metrics::{self as registry, Confusion, Family, Finish, Interval, top_k_name};
use strata_app::model::{AtThreshold, Comparison, Estimate, MetricsResult, SliceResult, Task};

use super::rng::SplitMix;
use super::slicing::{Assignment, SliceIds, SliceKey, SliceSpec, SpecError, assign};
use super::stats::{normal_quantile, two_sided_p, wilson};
use super::{EvalError, f64_values, weights};

mod binary;
mod boot;
mod compute;
mod criteria;
mod multiclass;
mod prepare;
mod regression;
mod request;
mod stream;
#[cfg(test)]
mod tests;

// Every file of the engine sees the others' items through these (and `use super::*`).
#[allow(unused_imports)]
use self::{binary::*, boot::*, compute::*, criteria::*, multiclass::*, prepare::*, regression::*, request::*};

pub use binary::{BinaryStats, confusion_metrics};
pub(crate) use binary::clipped_neg_ln;
pub use compute::{BootstrapSize, bootstrap_size, compute, compute_prepared, compute_prepared_tracked};
pub use prepare::{Prepared, descending_key, prepare, radix_sort};
pub use request::{MetricsRequest, RequestError, parse_thresholds};
pub use stream::{CellFold, EdgePass, PushColumn, bucket_value, columns_needed, cuts_needing_values, prepare_batches, push_down_columns};
