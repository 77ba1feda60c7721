//! What-if helpers that need no model: the nearest counterfactual among the run's own rows.

use polars::prelude::*;
use strata_app::model::{ColumnKind, Counterfactual};

use super::f64_values;

/// The most similar row whose decision (`score >= threshold`) differs from row `row`'s, as the
/// What-If Tool defines similarity: L1 distance over numeric features scaled by each feature's
/// range (max − min), plus 1 per categorical feature that differs; a missing value differs from
/// any present one by 1. Ties go to the earlier row. `None` if every row has the same decision.
pub fn nearest_counterfactual(
    df: &DataFrame,
    features: &[(String, ColumnKind)],
    id_of: &dyn Fn(usize) -> String,
    row: usize,
    scores: &[f64],
    threshold: f64,
) -> Result<Option<Counterfactual>, PolarsError> {
    let n = df.height();
    if row >= n {
        return Ok(None);
    }
    let decision = |i: usize| scores[i] >= threshold;
    let mine = decision(row);
    // One distance per row and nothing else per row: the two rows' values are read at the end.
    let mut dist = vec![0.0f64; n];
    for (name, kind) in features {
        if *kind == ColumnKind::Numeric {
            let v = f64_values(df, name).map_err(|e| PolarsError::ComputeError(e.to_string().into()))?;
            let (lo, hi) = v.iter().filter(|x| x.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(*x), b.max(*x)));
            let range = if hi > lo { hi - lo } else { 1.0 };
            let x0 = v[row];
            for (d, x) in dist.iter_mut().zip(&v) {
                *d += match (x0.is_finite(), x.is_finite()) {
                    (true, true) => (x - x0).abs() / range,
                    (false, false) => 0.0,
                    _ => 1.0,
                };
            }
        } else {
            let s = df.column(name)?.cast(&DataType::String)?;
            let v = s.str()?;
            let x0 = v.get(row);
            for (d, x) in dist.iter_mut().zip(v.iter()) {
                if x != x0 {
                    *d += 1.0;
                }
            }
        }
    }
    let best = (0..n).filter(|i| *i != row && decision(*i) != mine && scores[*i].is_finite()).min_by(|a, b| dist[*a].total_cmp(&dist[*b]).then(a.cmp(b)));
    let Some(b) = best else { return Ok(None) };
    let mut differences = Vec::new();
    for (name, kind) in features {
        let (mine, theirs) = if *kind == ColumnKind::Numeric {
            let c = df.column(name)?.cast(&DataType::Float64)?;
            let text = |i: usize| c.f64().ok().and_then(|v| v.get(i)).filter(|x| x.is_finite()).map(|x| format!("{x}"));
            (text(row), text(b))
        } else {
            let c = df.column(name)?.cast(&DataType::String)?;
            let text = |i: usize| c.str().ok().and_then(|v| v.get(i)).map(str::to_string);
            (text(row), text(b))
        };
        if mine != theirs {
            differences.push((name.clone(), mine.unwrap_or_default(), theirs.unwrap_or_default()));
        }
    }
    Ok(Some(Counterfactual { example: id_of(b), row: b as u64, distance: dist[b], score: scores[b], differences }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_closest_row_with_the_other_decision() {
        let df = df!("age" => [30.0, 31.0, 60.0, 32.0], "sex" => ["M", "M", "M", "F"]).unwrap();
        let features = vec![("age".to_string(), ColumnKind::Numeric), ("sex".to_string(), ColumnKind::Categorical)];
        let ids: Vec<String> = (0..4).map(|i| format!("r{i}")).collect();
        // Rows 0 and 1 are positive; 2 (far in age) and 3 (other sex, near in age) negative.
        let c = nearest_counterfactual(&df, &features, &|i| ids[i].clone(), 0, &[0.9, 0.8, 0.1, 0.2], 0.5).unwrap().unwrap();
        // Row 2: |60-30|/30 = 1.0; row 3: 2/30 + 1 = 1.067: row 2 wins.
        assert_eq!(c.example, "r2");
        assert_eq!(c.differences, vec![("age".to_string(), "30".to_string(), "60".to_string())]);
        assert!(nearest_counterfactual(&df, &features, &|i| ids[i].clone(), 0, &[0.9; 4], 0.5).unwrap().is_none());
    }
}
