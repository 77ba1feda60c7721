//! Multiclass: class codes, per-row top-k ranks and log loss, a pass per spec.

use super::*;

/// The keys `multiclass_pass` reports, sorted as its maps iterate.
pub(super) fn multiclass_keys(prep: &Prepared) -> Vec<String> {
    let mut keys: std::collections::BTreeSet<String> = registry::names(Family::Multiclass).map(str::to_string).collect();
    for c in &prep.classes {
        keys.extend([format!("precision[{c}]"), format!("recall[{c}]"), format!("f1[{c}]")]);
    }
    if !prep.class_terms.is_empty() {
        keys.insert("log_loss".into());
        keys.extend(registry::top_ks(prep.classes.len()).into_iter().map(top_k_name));
    }
    keys.into_iter().collect()
}

/// What a row's per-class scores tell about its true class.
#[derive(Clone, Copy, Debug)]
pub(super) struct ClassTerms {
    /// −ln of the true class's score (scores normalised to sum to 1, clipped to [ε, 1 − ε] as
    /// scikit-learn's `log_loss` does); NaN when the row has no usable scores.
    pub(super) log_loss: f64,
    /// How many classes rank above the true class: scores strictly higher, and equal scores of
    /// classes sorted after it (scikit-learn's `top_k_accuracy_score` breaks ties that way).
    /// The row is a top-k hit when `rank < k`.
    pub(super) rank: u16,
}

impl Default for ClassTerms {
    fn default() -> Self {
        ClassTerms { log_loss: f64::NAN, rank: u16::MAX }
    }
}

impl ClassTerms {
    pub(super) fn same(&self, o: &ClassTerms) -> bool {
        self.rank == o.rank && self.log_loss.to_bits() == o.log_loss.to_bits()
    }
}

/// Per row, the [`ClassTerms`] of its true class (`y`, a code into `classes`).
pub(super) fn class_terms(df: &DataFrame, class_scores: &[(String, String)], classes: &[String], y: &[f64]) -> Result<Vec<ClassTerms>, RequestError> {
    // Score columns in class order; a class without a column cannot be a top-k hit.
    let mut columns: Vec<Option<Vec<f64>>> = vec![None; classes.len()];
    for (class, col) in class_scores {
        let i = classes.iter().position(|c| c == class).ok_or_else(|| RequestError::Invalid(format!("class '{class}' of column '{col}' is not a class of the run")))?;
        columns[i] = Some(f64_values(df, col)?);
    }
    let scored: Vec<(usize, &Vec<f64>)> = columns.iter().enumerate().filter_map(|(i, c)| c.as_ref().map(|c| (i, c))).collect();
    Ok((0..y.len())
        .map(|r| {
            let t = y[r];
            let Some(Some(own)) = (t.is_finite()).then(|| columns[t as usize].as_ref()) else { return ClassTerms::default() };
            let (t, st) = (t as usize, own[r]);
            let mut rank = 0u16;
            for (j, c) in &scored {
                let sj = c[r];
                if sj > st || (sj == st && *j > t) {
                    rank += 1;
                }
            }
            // As scikit-learn >= 1.5: the true class's probability clipped, not renormalised.
            ClassTerms { log_loss: if st.is_finite() { clipped_neg_ln(st) } else { f64::NAN }, rank }
        })
        .collect())
}

/// Class codes of the label and of the predicted class, over the sorted union of their values.
pub(super) fn class_codes(df: &DataFrame, label: &str, model: &str, class_scores: &[(String, String)]) -> Result<(Vec<f64>, Vec<f64>, Vec<String>), RequestError> {
    let text = |name: &str| -> Result<Vec<Option<String>>, RequestError> {
        let c = df.column(name).map_err(|_| EvalError::NoColumn(name.to_string()))?;
        let s = c.cast(&DataType::String).map_err(EvalError::from)?;
        Ok(s.str().map_err(EvalError::from)?.iter().map(|v| v.map(str::to_string)).collect())
    };
    let (yl, pl) = (text(label)?, text(model)?);
    let scored = class_scores.iter().map(|(c, _)| c.clone());
    // Sorted as ingest sorts them (integer class codes numerically), so per-class columns line up.
    let classes = crate::ingest::sorted_classes(yl.iter().chain(&pl).flatten().cloned().chain(scored));
    let index: std::collections::HashMap<&str, f64> = classes.iter().enumerate().map(|(i, c)| (c.as_str(), i as f64)).collect();
    let code = |v: &Option<String>| v.as_deref().and_then(|c| index.get(c).copied()).unwrap_or(f64::NAN);
    let y = yl.iter().map(code).collect();
    let p = pl.iter().map(code).collect();
    Ok((y, p, classes))
}

/// Multiclass metrics per slice as scikit-learn defines them (averages over the classes present in
/// the slice's labels or predictions; an undefined precision or recall counts as 0), plus the
/// slice's confusion matrix (rows: true class, columns: predicted class).
pub(super) fn multiclass_pass(prep: &Prepared, spec: usize, w: &[f64]) -> Vec<(BTreeMap<String, Option<f64>>, Vec<Vec<f64>>)> {
    let (y, p, classes) = (&prep.y, &prep.p, &prep.classes);
    let k = classes.len();
    let slices = prep.keys[spec].len();
    let mut cm = vec![vec![vec![0.0; k]; k]; slices];
    // Per slice, from per-class scores: (Σw, Σw·log loss) and Σw of rows of each rank.
    let scored = !prep.class_terms.is_empty();
    let mut loss = vec![(0.0, 0.0); if scored { slices } else { 0 }];
    let mut by_rank = vec![vec![0.0; k]; if scored { slices } else { 0 }];
    for i in 0..y.len() {
        let Some(s) = prep.slice_of_cell[spec].get(i) else { continue };
        if w[i] <= 0.0 || !y[i].is_finite() || !p[i].is_finite() {
            continue;
        }
        cm[s as usize][y[i] as usize][p[i] as usize] += w[i];
        if scored {
            let t = prep.class_terms[i];
            if t.log_loss.is_finite() {
                let l = &mut loss[s as usize];
                l.0 += w[i];
                l.1 += w[i] * t.log_loss;
            }
            if let Some(b) = by_rank[s as usize].get_mut(t.rank as usize) {
                *b += w[i];
            }
        }
    }
    cm.into_iter()
        .enumerate()
        .map(|(si, m)| {
            let total: f64 = m.iter().flatten().sum();
            let correct: f64 = (0..k).map(|c| m[c][c]).sum();
            let support: Vec<f64> = (0..k).map(|c| m[c].iter().sum()).collect();
            let predicted: Vec<f64> = (0..k).map(|c| m.iter().map(|row| row[c]).sum()).collect();
            let present: Vec<usize> = (0..k).filter(|c| support[*c] > 0.0 || predicted[*c] > 0.0).collect();
            let prec = |c: usize| if predicted[c] > 0.0 { m[c][c] / predicted[c] } else { 0.0 };
            let rec = |c: usize| if support[c] > 0.0 { m[c][c] / support[c] } else { 0.0 };
            let f1 = |c: usize| { let (pr, re) = (prec(c), rec(c)); if pr + re > 0.0 { 2.0 * pr * re / (pr + re) } else { 0.0 } };
            let n = present.len() as f64;
            let macro_avg = |f: &dyn Fn(usize) -> f64| (n > 0.0).then(|| present.iter().map(|c| f(*c)).sum::<f64>() / n);
            let weighted_avg = |f: &dyn Fn(usize) -> f64| (total > 0.0).then(|| present.iter().map(|c| f(*c) * support[*c]).sum::<f64>() / total);
            let mut out = BTreeMap::from([
                ("accuracy".to_string(), (total > 0.0).then(|| correct / total)),
                ("micro_f1".to_string(), (total > 0.0).then(|| correct / total)),
                ("macro_precision".to_string(), macro_avg(&prec)),
                ("macro_recall".to_string(), macro_avg(&rec)),
                ("macro_f1".to_string(), macro_avg(&f1)),
                ("weighted_precision".to_string(), weighted_avg(&prec)),
                ("weighted_recall".to_string(), weighted_avg(&rec)),
                ("weighted_f1".to_string(), weighted_avg(&f1)),
            ]);
            for (c, name) in classes.iter().enumerate() {
                let here = support[c] > 0.0 || predicted[c] > 0.0;
                out.insert(format!("precision[{name}]"), (here && predicted[c] > 0.0).then(|| prec(c)));
                out.insert(format!("recall[{name}]"), (here && support[c] > 0.0).then(|| rec(c)));
                out.insert(format!("f1[{name}]"), here.then(|| f1(c)));
            }
            if scored {
                let (lw, lsum) = loss[si];
                out.insert("log_loss".into(), (lw > 0.0).then(|| lsum / lw));
                for kk in registry::top_ks(k) {
                    let hits: f64 = by_rank[si][..kk].iter().sum();
                    out.insert(top_k_name(kk), (total > 0.0).then(|| hits / total));
                }
            }
            (out, m)
        })
        .collect()
}
