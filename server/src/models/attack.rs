//! Random attacks (robustness): perturb examples with noise of a user-set size — Gaussian on
//! numeric features scaled to each feature's spread, random swaps of categorical values — and
//! measure how many predictions flip and how much accuracy drops, per slice.

use strata_app::model::AttackSlice;

use super::{Batch, Model, ModelError, Values};
use crate::eval::rng::SplitMix;

/// Perturbs `features` of every row: numbers get N(0, (noise·sd)²) added, texts are swapped
/// with probability `swap` for a value drawn from the column's observed values.
pub fn perturb(batch: &Batch, features: &[String], noise: f64, swap: f64, seed: u64) -> Batch {
    let mut out = batch.clone();
    let mut rng = SplitMix(seed ^ 0xA77AC4);
    let mut uniform = move || (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
    for f in features {
        let Some(col) = out.columns.get_mut(f) else { continue };
        match col {
            Values::Numeric(v) => {
                let finite: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
                if finite.len() < 2 {
                    continue;
                }
                let mean = finite.iter().sum::<f64>() / finite.len() as f64;
                let sd = (finite.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (finite.len() - 1) as f64).sqrt();
                for x in v.iter_mut().filter(|x| x.is_finite()) {
                    // Box–Muller.
                    let (u1, u2) = (uniform().max(f64::MIN_POSITIVE), uniform());
                    *x += noise * sd * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                }
            }
            Values::Text(v) => {
                let mut pool: Vec<String> = v.clone();
                pool.sort();
                pool.dedup();
                if pool.len() < 2 {
                    continue;
                }
                for x in v.iter_mut() {
                    if uniform() < swap {
                        let others: Vec<&String> = pool.iter().filter(|p| *p != x).collect();
                        *x = others[((uniform() * others.len() as f64) as usize).min(others.len() - 1)].clone();
                    }
                }
            }
        }
    }
    out
}

/// Scores the original and the perturbed batch and summarises per group (`groups[i]` is row i's
/// slice label, `None` = overall only). `labels` are the truth; `binary` picks the summary.
#[allow(clippy::too_many_arguments)]
pub fn attack(model: &dyn Model, batch: &Batch, perturbed: &Batch, labels: &[f64], groups: &[String], binary: bool, threshold: f64, label_sd: f64) -> Result<Vec<AttackSlice>, ModelError> {
    let before = model.predict(batch)?;
    let after = model.predict(perturbed)?;
    let mut names: Vec<String> = groups.to_vec();
    names.sort();
    names.dedup();
    let summarise = |name: String, rows: Vec<usize>| {
        let n = rows.len() as f64;
        let (mut flips, mut ok0, mut ok1, mut change) = (0.0, 0.0, 0.0, 0.0);
        for &i in &rows {
            change += (after[i] - before[i]).abs();
            if binary {
                let (d0, d1, y) = (before[i] >= threshold, after[i] >= threshold, labels[i] == 1.0);
                flips += f64::from(u8::from(d0 != d1));
                ok0 += f64::from(u8::from(d0 == y));
                ok1 += f64::from(u8::from(d1 == y));
            } else {
                flips += f64::from(u8::from((after[i] - before[i]).abs() > 0.1 * label_sd));
                ok0 += (labels[i] - before[i]).abs();
                ok1 += (labels[i] - after[i]).abs();
            }
        }
        AttackSlice { slice: name, n: rows.len() as u64, flip_rate: flips / n, before: ok0 / n, after: ok1 / n, mean_abs_change: change / n }
    };
    let mut out = vec![summarise("overall".into(), (0..batch.rows).collect())];
    if !groups.is_empty() {
        for name in names {
            let rows: Vec<usize> = (0..batch.rows).filter(|i| groups[*i] == name).collect();
            out.push(summarise(name, rows));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Threshold;
    impl Model for Threshold {
        fn name(&self) -> &str {
            "t"
        }
        fn input_names(&self) -> Vec<String> {
            vec!["x".into()]
        }
        fn predict(&self, b: &Batch) -> Result<Vec<f64>, ModelError> {
            let Some(Values::Numeric(x)) = b.columns.get("x") else { unreachable!() };
            Ok(x.iter().map(|x| if *x > 0.0 { 0.9 } else { 0.1 }).collect())
        }
    }

    #[test]
    fn no_noise_no_flips_and_noise_flips_rows_near_the_boundary() {
        let mut b = Batch { rows: 400, ..Default::default() };
        let x: Vec<f64> = (0..400).map(|i| (i as f64 - 200.0) / 100.0).collect();
        b.columns.insert("x".into(), Values::Numeric(x.clone()));
        b.columns.insert("g".into(), Values::Text((0..400).map(|i| if i % 2 == 0 { "a".into() } else { "b".into() }).collect()));
        let labels: Vec<f64> = x.iter().map(|x| f64::from(u8::from(*x > 0.0))).collect();
        let groups: Vec<String> = (0..400).map(|i| if i % 2 == 0 { "g=a".into() } else { "g=b".into() }).collect();
        let same = perturb(&b, &["x".into()], 0.0, 0.0, 1);
        let r = attack(&Threshold, &b, &same, &labels, &groups, true, 0.5, 1.0).unwrap();
        assert_eq!(r[0].flip_rate, 0.0);
        assert_eq!((r[0].before, r[0].after), (1.0, 1.0));
        let noisy = perturb(&b, &["x".into(), "g".into()], 0.5, 0.5, 1);
        let r = attack(&Threshold, &b, &noisy, &labels, &groups, true, 0.5, 1.0).unwrap();
        assert!(r[0].flip_rate > 0.05 && r[0].flip_rate < 0.6, "{r:?}");
        assert!((r[0].after - (1.0 - r[0].flip_rate)).abs() < 1e-12, "every flip is an error here");
        assert_eq!(r.len(), 3);
        assert_eq!(r[1].n + r[2].n, 400);
        // Deterministic for a seed.
        assert_eq!(perturb(&b, &["x".into()], 0.5, 0.0, 9), perturb(&b, &["x".into()], 0.5, 0.0, 9));
    }
}
