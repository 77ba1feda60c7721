//! The benchmark model: a simple, trusted, interpretable baseline Strata fits on a run's own data
//! and stores with it, so the user's model can be compared to it on every slice.
//!
//! Binary runs get an L2-regularised logistic regression (scikit-learn's objective with `C`:
//! Σ log-loss + ‖w‖² / (2C), intercept not penalised), fitted by Newton–Raphson (IRLS); regression
//! runs get ridge regression (closed form, same penalty). Numeric features are median-imputed and
//! standardised; categorical features are one-hot encoded over their 30 most frequent values
//! (other values and missing encode as all zeros, like `handle_unknown="ignore"`). It is fitted
//! on a seeded sample of at most `max_rows` rows and scored on every row.

use serde::{Deserialize, Serialize};

use super::{Batch, Model, ModelError, Values};

/// A fitted benchmark model (stored as JSON with the run).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinearBenchmark {
    pub name: String,
    /// `logistic` or `ridge`.
    pub kind: String,
    /// (column, median for missing values, mean, standard deviation).
    pub numeric: Vec<(String, f64, f64, f64)>,
    /// (column, encoded values).
    pub categorical: Vec<(String, Vec<String>)>,
    pub weights: Vec<f64>,
    pub intercept: f64,
    pub c: f64,
    pub trained_on: usize,
    pub iterations: usize,
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    crate::eval::stats::quantile_sorted(v, 0.5)
}

/// Solves the symmetric positive-definite system `a x = b` by Cholesky decomposition.
fn cholesky_solve(mut a: Vec<Vec<f64>>, b: &[f64]) -> Option<Vec<f64>> {
    let n = b.len();
    for j in 0..n {
        let mut d = a[j][j];
        for k in 0..j {
            d -= a[j][k] * a[j][k];
        }
        if d <= 0.0 {
            return None;
        }
        let d = d.sqrt();
        a[j][j] = d;
        for i in j + 1..n {
            let mut s = a[i][j];
            for k in 0..j {
                s -= a[i][k] * a[j][k];
            }
            a[i][j] = s / d;
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i][k] * y[k];
        }
        y[i] = s / a[i][i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let mut s = y[i];
        for k in i + 1..n {
            s -= a[k][i] * x[k];
        }
        x[i] = s / a[i][i];
    }
    Some(x)
}

impl LinearBenchmark {
    /// The design row of example `i` (without the intercept).
    fn row(&self, batch: &Batch, i: usize, out: &mut Vec<f64>) {
        out.clear();
        for (name, med, mean, sd) in &self.numeric {
            let x = match batch.columns.get(name) {
                Some(Values::Numeric(v)) => v[i],
                Some(Values::Text(v)) => v[i].trim().parse().unwrap_or(f64::NAN),
                None => f64::NAN,
            };
            let x = if x.is_finite() { x } else { *med };
            out.push((x - mean) / sd);
        }
        for (name, values) in &self.categorical {
            let x = match batch.columns.get(name) {
                Some(Values::Text(v)) => v[i].as_str(),
                _ => "",
            };
            out.extend(values.iter().map(|v| f64::from(u8::from(v == x))));
        }
    }

    /// Fits on `batch` (the rows to learn from) and `labels`.
    pub fn fit(name: &str, kind: &str, batch: &Batch, labels: &[f64], numeric: &[String], categorical: &[String], c: f64) -> Result<LinearBenchmark, String> {
        let rows: Vec<usize> = (0..batch.rows).filter(|i| labels[*i].is_finite()).collect();
        if rows.len() < 10 {
            return Err(format!("{} rows have a label: too few to fit a benchmark", rows.len()));
        }
        let mut num = Vec::new();
        for n in numeric {
            let Some(Values::Numeric(v)) = batch.columns.get(n) else { continue };
            let mut finite: Vec<f64> = rows.iter().map(|i| v[*i]).filter(|x| x.is_finite()).collect();
            let med = median(&mut finite);
            let filled: Vec<f64> = rows.iter().map(|i| if v[*i].is_finite() { v[*i] } else { med }).collect();
            let mean = filled.iter().sum::<f64>() / filled.len() as f64;
            let sd = (filled.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / filled.len() as f64).sqrt();
            num.push((n.clone(), med, mean, if sd > 0.0 { sd } else { 1.0 }));
        }
        let mut cat = Vec::new();
        for n in categorical {
            let Some(Values::Text(v)) = batch.columns.get(n) else { continue };
            let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
            for i in &rows {
                if !v[*i].is_empty() {
                    *counts.entry(v[*i].as_str()).or_default() += 1;
                }
            }
            let mut c: Vec<(&str, usize)> = counts.into_iter().collect();
            c.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            c.truncate(30);
            let mut values: Vec<String> = c.into_iter().map(|(s, _)| s.to_string()).collect();
            values.sort();
            cat.push((n.clone(), values));
        }
        let mut m = LinearBenchmark { name: name.into(), kind: kind.into(), numeric: num, categorical: cat, weights: vec![], intercept: 0.0, c, trained_on: rows.len(), iterations: 0 };
        let mut x: Vec<Vec<f64>> = Vec::with_capacity(rows.len());
        let mut buf = Vec::new();
        for i in &rows {
            m.row(batch, *i, &mut buf);
            let mut r = Vec::with_capacity(buf.len() + 1);
            r.push(1.0);
            r.extend_from_slice(&buf);
            x.push(r);
        }
        let y: Vec<f64> = rows.iter().map(|i| labels[*i]).collect();
        let d = x[0].len();
        let lambda = 1.0 / c;
        let mut w = vec![0.0; d];
        // Newton–Raphson (one step solves ridge exactly).
        for it in 0..50 {
            let mut h = vec![vec![0.0; d]; d];
            let mut g = vec![0.0; d];
            for (xi, yi) in x.iter().zip(&y) {
                let z: f64 = xi.iter().zip(&w).map(|(a, b)| a * b).sum();
                let (resid, weight) = if kind == "logistic" {
                    let p = 1.0 / (1.0 + (-z).exp());
                    (p - yi, (p * (1.0 - p)).max(1e-12))
                } else {
                    (z - yi, 1.0)
                };
                for a in 0..d {
                    g[a] += resid * xi[a];
                    if xi[a] != 0.0 {
                        let wa = weight * xi[a];
                        for b in 0..=a {
                            h[a][b] += wa * xi[b];
                        }
                    }
                }
            }
            for a in 0..d {
                for b in 0..a {
                    h[b][a] = h[a][b];
                }
                if a > 0 {
                    h[a][a] += lambda;
                    g[a] += lambda * w[a];
                }
            }
            h[0][0] += 1e-9;
            let step = cholesky_solve(h, &g).ok_or("the benchmark's normal equations are singular")?;
            let size = step.iter().map(|s| s.abs()).fold(0.0, f64::max);
            for (wi, s) in w.iter_mut().zip(&step) {
                *wi -= s;
            }
            m.iterations = it + 1;
            if kind != "logistic" || size < 1e-10 {
                break;
            }
        }
        m.intercept = w[0];
        m.weights = w[1..].to_vec();
        Ok(m)
    }
}

impl Model for LinearBenchmark {
    fn name(&self) -> &str {
        &self.name
    }

    fn input_names(&self) -> Vec<String> {
        self.numeric.iter().map(|n| n.0.clone()).chain(self.categorical.iter().map(|c| c.0.clone())).collect()
    }

    fn predict(&self, batch: &Batch) -> Result<Vec<f64>, ModelError> {
        let mut buf = Vec::new();
        Ok((0..batch.rows)
            .map(|i| {
                self.row(batch, i, &mut buf);
                let z = self.intercept + buf.iter().zip(&self.weights).map(|(a, b)| a * b).sum::<f64>();
                if self.kind == "logistic" { 1.0 / (1.0 + (-z).exp()) } else { z }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ridge_recovers_a_linear_function_and_logistic_separates() {
        let n = 500;
        let x: Vec<f64> = (0..n).map(|i| i as f64 / 50.0).collect();
        let g: Vec<String> = (0..n).map(|i| if i % 3 == 0 { "a".into() } else { "b".into() }).collect();
        let mut b = Batch { rows: n, ..Default::default() };
        b.columns.insert("x".into(), Values::Numeric(x.clone()));
        b.columns.insert("g".into(), Values::Text(g.clone()));
        let y: Vec<f64> = (0..n).map(|i| 2.0 * x[i] + if g[i] == "a" { 5.0 } else { 0.0 } + 1.0).collect();
        let m = LinearBenchmark::fit("bench", "ridge", &b, &y, &["x".into()], &["g".into()], 1e9).unwrap();
        let p = m.predict(&b).unwrap();
        assert!(p.iter().zip(&y).all(|(a, b)| (a - b).abs() < 1e-6), "ridge with a tiny penalty is least squares");
        let yb: Vec<f64> = x.iter().map(|v| f64::from(u8::from(*v > 5.0))).collect();
        let m = LinearBenchmark::fit("bench", "logistic", &b, &yb, &["x".into()], &[], 1.0).unwrap();
        let p = m.predict(&b).unwrap();
        let acc = p.iter().zip(&yb).filter(|(p, y)| (**p >= 0.5) == (**y == 1.0)).count() as f64 / n as f64;
        assert!(acc > 0.97 && m.iterations < 50, "{acc} after {} iterations", m.iterations);
        let again = serde_json::from_str::<LinearBenchmark>(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(again.predict(&b).unwrap(), p, "stored and reloaded, it predicts the same");
    }
}
