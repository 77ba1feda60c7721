//! What-if helpers that need no model: the nearest counterfactual among the run's own rows.

use polars::prelude::*;
use strata_app::model::{ColumnKind, Counterfactual};

use super::f64_values;

/// The most similar row whose decision (`score >= threshold`) differs from row `row`'s, as the
/// What-If Tool defines similarity: L1 distance over numeric features scaled by each feature's
/// range (max − min), plus 1 per categorical feature that differs; a missing value differs from
/// any present one by 1. Ties go to the earlier row. `None` if every row has the same decision.
pub fn nearest_counterfactual(df: &DataFrame, features: &[(String, ColumnKind)], ids: &[String], row: usize, scores: &[f64], threshold: f64) -> Result<Option<Counterfactual>, PolarsError> {
    let n = df.height();
    if row >= n {
        return Ok(None);
    }
    let decision = |i: usize| scores[i] >= threshold;
    let mine = decision(row);
    let mut dist = vec![0.0f64; n];
    let mut texts: Vec<(String, Vec<Option<String>>)> = Vec::new();
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
            texts.push((name.clone(), v.iter().map(|x| x.is_finite().then(|| format!("{x}"))).collect()));
        } else {
            let s = df.column(name)?.cast(&DataType::String)?;
            let v: Vec<Option<String>> = s.str()?.iter().map(|x| x.map(str::to_string)).collect();
            let x0 = v[row].clone();
            for (d, x) in dist.iter_mut().zip(&v) {
                if *x != x0 {
                    *d += 1.0;
                }
            }
            texts.push((name.clone(), v));
        }
    }
    let best = (0..n).filter(|i| *i != row && decision(*i) != mine && scores[*i].is_finite()).min_by(|a, b| dist[*a].total_cmp(&dist[*b]).then(a.cmp(b)));
    Ok(best.map(|b| Counterfactual {
        example: ids[b].clone(),
        row: b as u64,
        distance: dist[b],
        score: scores[b],
        differences: texts
            .iter()
            .filter(|(_, v)| v[b] != v[row])
            .map(|(name, v)| (name.clone(), v[row].clone().unwrap_or_default(), v[b].clone().unwrap_or_default()))
            .collect(),
    }))
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
        let c = nearest_counterfactual(&df, &features, &ids, 0, &[0.9, 0.8, 0.1, 0.2], 0.5).unwrap().unwrap();
        // Row 2: |60-30|/30 = 1.0; row 3: 2/30 + 1 = 1.067: row 2 wins.
        assert_eq!(c.example, "r2");
        assert_eq!(c.differences, vec![("age".to_string(), "30".to_string(), "60".to_string())]);
        assert!(nearest_counterfactual(&df, &features, &ids, 0, &[0.9; 4], 0.5).unwrap().is_none());
    }
}
