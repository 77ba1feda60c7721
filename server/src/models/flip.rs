//! Counterfactual flip rates: set the sensitive attribute of every example to each other value,
//! re-predict with the real model, and count decision flips per group.

use strata_app::model::{FlipGroup, FlipRates};

use super::{Batch, Model, ModelError, Values};

/// Flip rates of `model` for `feature` over the rows of `sample` at `threshold`. `values` are the
/// attribute's values to swap between (the groups). One model call for all swaps.
pub fn flip_rates(model: &dyn Model, sample: &Batch, feature: &str, values: &[String], threshold: f64) -> Result<FlipRates, ModelError> {
    let original: Vec<String> = match sample.columns.get(feature) {
        Some(Values::Text(v)) => v.clone(),
        Some(Values::Numeric(v)) => v.iter().map(|x| format!("{x}")).collect(),
        None => return Err(ModelError::MissingInput { model: model.name().into(), input: feature.into(), columns: sample.columns.keys().cloned().collect::<Vec<_>>().join(", ") }),
    };
    let n = sample.rows;
    let k = values.len();
    // Row i with value j at i·k + j (including its own value, which is the baseline score).
    let rows: Vec<usize> = (0..n).flat_map(|i| std::iter::repeat_n(i, k)).collect();
    let mut expanded = sample.take(&rows);
    let column = match sample.columns.get(feature) {
        Some(Values::Numeric(_)) => Values::Numeric((0..n).flat_map(|_| values.iter().map(|v| v.parse::<f64>().unwrap_or(f64::NAN))).collect()),
        _ => Values::Text((0..n).flat_map(|_| values.iter().cloned()).collect()),
    };
    expanded.columns.insert(feature.to_string(), column);
    let scores = model.predict(&expanded)?;
    let mut groups = Vec::new();
    for (g, value) in values.iter().enumerate() {
        let members: Vec<usize> = (0..n).filter(|i| original[*i] == *value).collect();
        let m = members.len() as f64;
        if members.is_empty() {
            continue;
        }
        let own = |i: usize| scores[i * k + g] >= threshold;
        let (mut any, mut to_neg, mut to_pos) = (0.0, 0.0, 0.0);
        let mut by_value = vec![0.0; k];
        for &i in &members {
            let d0 = own(i);
            let mut flipped = false;
            for (j, slot) in by_value.iter_mut().enumerate() {
                if j != g && (scores[i * k + j] >= threshold) != d0 {
                    *slot += 1.0;
                    flipped = true;
                }
            }
            if flipped {
                any += 1.0;
                if d0 { to_neg += 1.0 } else { to_pos += 1.0 }
            }
        }
        groups.push(FlipGroup {
            group: format!("{feature}={value}"),
            n: members.len() as u64,
            any_flip: any / m,
            to_negative: to_neg / m,
            to_positive: to_pos / m,
            by_value: values.iter().zip(&by_value).enumerate().filter(|(j, _)| *j != g).map(|(_, (v, c))| (v.clone(), c / m)).collect(),
        });
    }
    Ok(FlipRates { model: model.name().to_string(), feature: feature.to_string(), threshold, sample: n as u64, groups })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model that adds 0.3 to the score of group "b": every example near the threshold flips.
    struct Biased;
    impl Model for Biased {
        fn name(&self) -> &str {
            "biased"
        }
        fn input_names(&self) -> Vec<String> {
            vec!["x".into(), "g".into()]
        }
        fn predict(&self, b: &Batch) -> Result<Vec<f64>, ModelError> {
            let (Some(Values::Numeric(x)), Some(Values::Text(g))) = (b.columns.get("x"), b.columns.get("g")) else { unreachable!() };
            Ok(x.iter().zip(g).map(|(x, g)| x + if g == "b" { 0.3 } else { 0.0 }).collect())
        }
    }

    #[test]
    fn counts_flips_per_group_and_direction() {
        let mut b = Batch { rows: 4, ..Default::default() };
        b.columns.insert("x".into(), Values::Numeric(vec![0.1, 0.4, 0.1, 0.4]));
        b.columns.insert("g".into(), Values::Text(vec!["a".into(), "a".into(), "b".into(), "b".into()]));
        let r = flip_rates(&Biased, &b, "g", &["a".into(), "b".into()], 0.5).unwrap();
        // a: 0.1 → 0.4 (no flip), 0.4 → 0.7 (flips to positive); b: 0.4 → 0.1 (none), 0.7 → 0.4 (to negative).
        assert_eq!(r.groups[0].any_flip, 0.5);
        assert_eq!((r.groups[0].to_positive, r.groups[0].to_negative), (0.5, 0.0));
        assert_eq!((r.groups[1].to_positive, r.groups[1].to_negative), (0.0, 0.5));
        assert_eq!(r.groups[1].by_value, vec![("a".to_string(), 0.5)]);
    }
}
