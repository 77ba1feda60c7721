//! Partial dependence and ICE curves through a real model, in a few batched calls (so progress
//! shows and a cancel is seen between them).

use strata_app::model::PartialDependence;

use super::{Batch, Model, ModelError, Values};

/// The grid of a feature: for numbers, `points` quantiles of the sampled values (deduplicated);
/// for categories, every observed value (the 30 most frequent).
pub fn grid_of(values: &Values, points: usize) -> Values {
    match values {
        Values::Numeric(v) => {
            let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
            s.sort_by(f64::total_cmp);
            let mut g: Vec<f64> = (0..points.max(2))
                .filter_map(|i| {
                    let q = i as f64 / (points.max(2) - 1) as f64;
                    (!s.is_empty()).then(|| crate::eval::stats::quantile_sorted(&s, q))
                })
                .collect();
            g.dedup();
            Values::Numeric(g)
        }
        Values::Text(v) => {
            let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
            for x in v {
                *counts.entry(x.as_str()).or_default() += 1;
            }
            let mut c: Vec<(&str, usize)> = counts.into_iter().collect();
            c.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            c.truncate(30);
            let mut g: Vec<String> = c.into_iter().map(|(s, _)| s.to_string()).collect();
            g.sort();
            Values::Text(g)
        }
    }
}

fn grid_len(g: &Values) -> usize {
    match g {
        Values::Numeric(v) => v.len(),
        Values::Text(v) => v.len(),
    }
}

/// Every row of `batch` repeated once per grid value with `feature` set to it (row-major: row i,
/// grid point j at i·g + j).
fn expand(batch: &Batch, feature: &str, grid: &Values) -> Batch {
    let g = grid_len(grid);
    let rows: Vec<usize> = (0..batch.rows).flat_map(|i| std::iter::repeat_n(i, g)).collect();
    let mut out = batch.take(&rows);
    let column = match grid {
        Values::Numeric(v) => Values::Numeric((0..batch.rows).flat_map(|_| v.iter().copied()).collect()),
        Values::Text(v) => Values::Text((0..batch.rows).flat_map(|_| v.iter().cloned()).collect()),
    };
    out.columns.insert(feature.to_string(), column);
    out
}

/// PDP (the mean of the ICE curves) of `feature` over the rows of `sample`, plus the curve of
/// `example` when given. One model call for all curves. The grid comes from `grid_source` (the
/// whole column, so every category appears) or else from the sample.
pub fn partial_dependence(model: &dyn Model, sample: &Batch, feature: &str, points: usize, example: Option<&Batch>, grid_source: Option<&Values>) -> Result<PartialDependence, ModelError> {
    partial_dependence_tracked(model, sample, feature, points, example, grid_source, &crate::progress::Progress::new())
}

/// Model calls per partial dependence at most (the sample is predicted in this many parts, so
/// its progress shows and a cancel is seen between parts).
const PARTS: usize = 20;

/// [`partial_dependence`] reporting predictions made into `progress`; stops between model calls
/// when it is cancelled (what it returns then is thrown away by the caller).
pub fn partial_dependence_tracked(
    model: &dyn Model,
    sample: &Batch,
    feature: &str,
    points: usize,
    example: Option<&Batch>,
    grid_source: Option<&Values>,
    progress: &crate::progress::Progress,
) -> Result<PartialDependence, ModelError> {
    let values = grid_source.or_else(|| sample.columns.get(feature)).ok_or_else(|| ModelError::MissingInput {
        model: model.name().to_string(),
        input: feature.to_string(),
        columns: sample.columns.keys().cloned().collect::<Vec<_>>().join(", "),
    })?;
    let grid = grid_of(values, points);
    let g = grid_len(&grid);
    progress.stage("predictions");
    progress.add_total(((sample.rows + example.map_or(0, |e| e.rows)) * g) as u64);
    let per_part = sample.rows.div_ceil(PARTS).max(1);
    let mut scores = Vec::with_capacity(sample.rows * g);
    for start in (0..sample.rows).step_by(per_part) {
        if progress.is_cancelled() {
            break;
        }
        let rows: Vec<usize> = (start..(start + per_part).min(sample.rows)).collect();
        scores.extend(model.predict(&expand(&sample.take(&rows), feature, &grid))?);
        progress.advance((rows.len() * g) as u64);
    }
    let ice: Vec<Vec<f64>> = scores.chunks(g.max(1)).map(|c| c.to_vec()).collect();
    let mean: Vec<f64> = (0..g).map(|j| ice.iter().map(|c| c[j]).sum::<f64>() / ice.len().max(1) as f64).collect();
    let example = match example {
        Some(e) if !progress.is_cancelled() => {
            let s = model.predict(&expand(e, feature, &grid))?;
            progress.advance((e.rows * g) as u64);
            Some(s)
        }
        Some(_) => None,
        None => None,
    };
    let (kind, grid_text) = match &grid {
        Values::Numeric(v) => ("numeric", v.iter().map(|x| format!("{x}")).collect()),
        Values::Text(v) => ("categorical", v.clone()),
    };
    Ok(PartialDependence {
        model: model.name().to_string(),
        feature: feature.to_string(),
        kind: kind.to_string(),
        grid: grid_text,
        mean,
        sample: ice.len() as u64,
        ice: ice.into_iter().take(60).collect(),
        example,
        row_sample: None,
    })
}
