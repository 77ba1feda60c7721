//! Adversarial search (decision-based, black-box, mixed feature types): for each example, a small
//! change of its mutable features that flips the model's decision, within the user's constraints.
//!
//! The search is a greedy coordinate search, the tabular counterpart of boundary attacks: every step
//! proposes, for every example still unflipped, one move per feature (a numeric feature up or down
//! by a quarter or a whole standard deviation, rounded to its step and kept in its range; a
//! categorical feature set to each allowed value) and sends all of them to the model in one batch.
//! An example takes the cheapest move that flips it, else the move with the best progress toward
//! the threshold per unit of added distance. Flipped examples are then shrunk back toward the
//! original (numeric changes scaled down, categorical changes undone) while the flip holds.
//!
//! Distance ("robustness radius"): Σ |Δx_j| / sd_j over numeric features + 1 per changed categorical
//! feature — an upper bound on the smallest flip, since the search is greedy. A random search with
//! the same number of model calls per example is the baseline the greedy one must beat.

use super::{Batch, Model, ModelError, Values};
use crate::eval::rng::SplitMix;

/// What the search may change in one feature.
#[derive(Clone, Debug, PartialEq)]
pub enum Space {
    /// Any value in `[min, max]`, a multiple of `step` away from the original when a step is given
    /// (integer-valued features such as age); `sd` is the unit of distance.
    Numeric { sd: f64, min: f64, max: f64, step: Option<f64> },
    /// One of these values (the observed ones, most frequent first).
    Categorical { values: Vec<String> },
}

/// A feature the search may change (immutable features are simply not listed).
#[derive(Clone, Debug, PartialEq)]
pub struct Feature {
    pub name: String,
    pub space: Space,
}

/// The space a column's observed values span: numbers from their lowest to highest value, their
/// sample standard deviation as the unit, whole steps when every value is a whole number; text
/// among its `max_values` most frequent values (ties by value). `None` for a constant column.
pub fn observed_space(values: &Values, max_values: usize) -> Option<Space> {
    match values {
        Values::Numeric(v) => {
            let x: Vec<f64> = v.iter().copied().filter(|v| v.is_finite()).collect();
            if x.len() < 2 {
                return None;
            }
            let mean = x.iter().sum::<f64>() / x.len() as f64;
            let sd = (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (x.len() - 1) as f64).sqrt();
            let (min, max) = x.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
            let step = x.iter().all(|v| v.fract() == 0.0).then_some(1.0);
            (sd > 0.0 && sd.is_finite()).then_some(Space::Numeric { sd, min, max, step })
        }
        Values::Text(v) => {
            let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
            v.iter().filter(|s| !s.is_empty()).for_each(|s| *counts.entry(s.as_str()).or_default() += 1);
            let mut ranked: Vec<(&str, usize)> = counts.into_iter().collect();
            ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let values: Vec<String> = ranked.into_iter().take(max_values).map(|(s, _)| s.to_string()).collect();
            (values.len() > 1).then_some(Space::Categorical { values })
        }
    }
}

/// The search's budget.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// The decision is `score >= threshold`.
    pub threshold: f64,
    /// Changes farther than this from the original are not tried.
    pub max_radius: f64,
    /// Greedy steps per example.
    pub max_steps: usize,
    pub seed: u64,
}

/// One example's outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    pub before: f64,
    /// The score of the adversarial example (the last state reached when not flipped).
    pub after: f64,
    pub flipped: bool,
    /// The distance of the flip (meaningful when `flipped`).
    pub radius: f64,
    /// (feature, original value, adversarial value), for changed features.
    pub changes: Vec<(String, String, String)>,
    /// Rows this example sent to the model.
    pub queries: usize,
}

/// The mutable part of an example: one value per listed feature.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Num(f64),
    Cat(String),
}

fn distance(features: &[Feature], original: &[Value], now: &[Value]) -> f64 {
    features
        .iter()
        .zip(original.iter().zip(now))
        .map(|(f, (a, b))| match (&f.space, a, b) {
            (Space::Numeric { sd, .. }, Value::Num(a), Value::Num(b)) if a.is_finite() && b.is_finite() => (b - a).abs() / sd,
            (_, Value::Cat(a), Value::Cat(b)) if a != b => 1.0,
            _ => 0.0,
        })
        .sum()
}

fn describe(v: &Value) -> String {
    match v {
        Value::Num(x) => format!("{x}"),
        Value::Cat(s) => s.clone(),
    }
}

/// Reads the listed features of every row of `batch`.
fn read(batch: &Batch, features: &[Feature]) -> Result<Vec<Vec<Value>>, ModelError> {
    let mut rows = vec![Vec::with_capacity(features.len()); batch.rows];
    for f in features {
        match (batch.columns.get(&f.name), &f.space) {
            (Some(Values::Numeric(v)), Space::Numeric { .. }) => rows.iter_mut().zip(v).for_each(|(r, x)| r.push(Value::Num(*x))),
            (Some(Values::Text(v)), Space::Categorical { .. }) => rows.iter_mut().zip(v).for_each(|(r, x)| r.push(Value::Cat(x.clone()))),
            _ => return Err(ModelError::Run { model: "adversarial search".into(), why: format!("feature '{}' is missing from the examples or has another type", f.name) }),
        }
    }
    Ok(rows)
}

/// Scores `states` (example index, mutable values) in one call, the other features from `batch`.
fn score(model: &dyn Model, batch: &Batch, features: &[Feature], states: &[(usize, &[Value])]) -> Result<Vec<f64>, ModelError> {
    if states.is_empty() {
        return Ok(vec![]);
    }
    let mut b = batch.take(&states.iter().map(|(i, _)| *i).collect::<Vec<_>>());
    for (j, f) in features.iter().enumerate() {
        match b.columns.get_mut(&f.name) {
            Some(Values::Numeric(v)) => v.iter_mut().zip(states).for_each(|(x, (_, s))| if let Value::Num(n) = s[j] { *x = n }),
            Some(Values::Text(v)) => v.iter_mut().zip(states).for_each(|(x, (_, s))| if let Value::Cat(c) = &s[j] { x.clone_from(c) }),
            None => {}
        }
    }
    model.predict(&b)
}

/// The moves proposed from `now`: one changed feature each.
fn moves(features: &[Feature], original: &[Value], now: &[Value], max_categories: usize) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    for (j, f) in features.iter().enumerate() {
        match (&f.space, &now[j], &original[j]) {
            (Space::Numeric { sd, min, max, step }, Value::Num(x), Value::Num(x0)) if x.is_finite() => {
                for size in [0.25, 1.0, -0.25, -1.0] {
                    let mut y = (x + size * sd).clamp(*min, *max);
                    if let Some(step) = step.filter(|s| *s > 0.0) {
                        // A multiple of the step away from the original, at least one step from now.
                        let k = ((y - x0) / step).round();
                        y = x0 + k * step;
                        if (y - x).abs() < step * 0.5 {
                            y = x + step * size.signum();
                        }
                        if y < *min || y > *max {
                            continue;
                        }
                    }
                    if y != *x && !out.iter().any(|m: &Vec<Value>| m[j] == Value::Num(y)) {
                        let mut m = now.to_vec();
                        m[j] = Value::Num(y);
                        out.push(m);
                    }
                }
            }
            (Space::Categorical { values }, Value::Cat(c), _) => {
                for v in values.iter().take(max_categories).filter(|v| *v != c) {
                    let mut m = now.to_vec();
                    m[j] = Value::Cat(v.clone());
                    out.push(m);
                }
            }
            _ => {}
        }
    }
    out
}

/// Moves that undo part of a flipped example's change (for the shrinking phase).
fn shrinks(features: &[Feature], original: &[Value], now: &[Value]) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    for (j, f) in features.iter().enumerate() {
        match (&f.space, &now[j], &original[j]) {
            (Space::Numeric { step, .. }, Value::Num(x), Value::Num(x0)) if x != x0 && x.is_finite() => {
                for a in [0.0, 0.25, 0.5, 0.75, 0.9] {
                    let mut y = x0 + a * (x - x0);
                    if let Some(step) = step.filter(|s| *s > 0.0) {
                        y = x0 + ((y - x0) / step).round() * step;
                    }
                    if y != *x && !out.iter().any(|m: &Vec<Value>| m[j] == Value::Num(y)) {
                        let mut m = now.to_vec();
                        m[j] = Value::Num(y);
                        out.push(m);
                    }
                }
            }
            (Space::Categorical { .. }, Value::Cat(c), Value::Cat(c0)) if c != c0 => {
                let mut m = now.to_vec();
                m[j] = Value::Cat(c0.clone());
                out.push(m);
            }
            _ => {}
        }
    }
    out
}

/// Categorical values tried per feature and step (the most frequent first).
const MAX_CATEGORIES: usize = 12;

/// Searches every example of `batch` for a flip of its decision. All examples advance together:
/// one model call per step and phase, however many examples there are.
pub fn search(model: &dyn Model, batch: &Batch, features: &[Feature], s: &Settings) -> Result<Vec<Found>, ModelError> {
    search_tracked(model, batch, features, s, &crate::progress::Progress::new())
}

/// [`search`] reporting its greedy steps into `progress`; stops between steps when it is
/// cancelled (the caller then throws the answer away).
pub fn search_tracked(model: &dyn Model, batch: &Batch, features: &[Feature], s: &Settings, progress: &crate::progress::Progress) -> Result<Vec<Found>, ModelError> {
    progress.stage("search");
    progress.add_total(s.max_steps as u64);
    let original = read(batch, features)?;
    let before = model.predict(batch)?;
    let decide = |p: f64| p >= s.threshold;
    let n = batch.rows;
    let mut now = original.clone();
    let mut score_now = before.clone();
    let mut cost = vec![0.0; n];
    let mut flipped = vec![false; n];
    let mut stuck = vec![false; n];
    let mut queries = vec![1usize; n];
    // Greedy phase.
    for _ in 0..s.max_steps {
        let active: Vec<usize> = (0..n).filter(|&i| !flipped[i] && !stuck[i]).collect();
        if active.is_empty() || progress.is_cancelled() {
            break;
        }
        progress.advance(1);
        let mut proposals: Vec<(usize, Vec<Value>, f64)> = Vec::new();
        for &i in &active {
            let mine: Vec<(usize, Vec<Value>, f64)> = moves(features, &original[i], &now[i], MAX_CATEGORIES)
                .into_iter()
                .map(|m| {
                    let d = distance(features, &original[i], &m);
                    (i, m, d)
                })
                .filter(|(_, _, d)| *d <= s.max_radius + 1e-12)
                .collect();
            if mine.is_empty() {
                stuck[i] = true;
            }
            proposals.extend(mine);
        }
        let states: Vec<(usize, &[Value])> = proposals.iter().map(|(i, m, _)| (*i, m.as_slice())).collect();
        let scores = score(model, batch, features, &states)?;
        // The best move per example: the cheapest flip, else the best progress per added distance.
        let mut best: Vec<Option<(usize, bool, f64)>> = vec![None; n];
        for (k, (i, _, d)) in proposals.iter().enumerate() {
            let i = *i;
            queries[i] += 1;
            let flips = decide(scores[k]) != decide(before[i]);
            // How far the score still is from the threshold, on the side of the original decision.
            let gap = |p: f64| if decide(before[i]) { p - s.threshold } else { s.threshold - p };
            let progress = gap(score_now[i]) - gap(scores[k]);
            let value = if flips { -d } else { progress / (d - cost[i]).max(0.05) };
            if !flips && progress <= 0.0 {
                continue;
            }
            let better = match best[i] {
                None => true,
                Some((_, bf, bv)) => (flips && !bf) || (flips == bf && value > bv),
            };
            if better {
                best[i] = Some((k, flips, value));
            }
        }
        for &i in &active {
            match best[i] {
                Some((k, flips, _)) => {
                    now[i].clone_from(&proposals[k].1);
                    score_now[i] = scores[k];
                    cost[i] = proposals[k].2;
                    flipped[i] = flips;
                }
                None => stuck[i] = true,
            }
        }
    }
    // Shrinking phase: undo what the flip does not need.
    for _ in 0..8 {
        let mut proposals: Vec<(usize, Vec<Value>, f64)> = Vec::new();
        for i in (0..n).filter(|&i| flipped[i]) {
            for m in shrinks(features, &original[i], &now[i]) {
                let d = distance(features, &original[i], &m);
                if d < cost[i] - 1e-12 {
                    proposals.push((i, m, d));
                }
            }
        }
        if proposals.is_empty() {
            break;
        }
        let states: Vec<(usize, &[Value])> = proposals.iter().map(|(i, m, _)| (*i, m.as_slice())).collect();
        let scores = score(model, batch, features, &states)?;
        let mut best: Vec<Option<usize>> = vec![None; n];
        for (k, (i, _, d)) in proposals.iter().enumerate() {
            queries[*i] += 1;
            if decide(scores[k]) != decide(before[*i]) && best[*i].is_none_or(|b| *d < proposals[b].2) {
                best[*i] = Some(k);
            }
        }
        let mut improved = false;
        for (i, b) in best.iter().enumerate() {
            if let Some(k) = *b {
                now[i].clone_from(&proposals[k].1);
                score_now[i] = scores[k];
                cost[i] = proposals[k].2;
                improved = true;
            }
        }
        if !improved {
            break;
        }
    }
    Ok((0..n)
        .map(|i| Found {
            before: before[i],
            after: score_now[i],
            flipped: flipped[i],
            radius: cost[i],
            changes: features
                .iter()
                .enumerate()
                .filter(|(j, _)| original[i][*j] != now[i][*j])
                .map(|(j, f)| (f.name.clone(), describe(&original[i][j]), describe(&now[i][j])))
                .collect(),
            queries: queries[i],
        })
        .collect())
}

/// The baseline: `tries` random changes per example within `max_radius` (a random subset of the
/// features, the radius spread over them at random), all in one model call. Returns, per example,
/// the smallest distance of a random change that flipped it (`None`: none did).
pub fn random_search(model: &dyn Model, batch: &Batch, features: &[Feature], s: &Settings, tries: usize) -> Result<Vec<Option<f64>>, ModelError> {
    let original = read(batch, features)?;
    let before = model.predict(batch)?;
    let mut rng = SplitMix(s.seed ^ 0x5EA2C4);
    let mut proposals: Vec<(usize, Vec<Value>, f64)> = Vec::with_capacity(batch.rows * tries);
    for (i, x0) in original.iter().enumerate() {
        for _ in 0..tries {
            let mut m = x0.clone();
            let mut budget = rng.uniform() * s.max_radius;
            let mut order: Vec<usize> = (0..features.len()).collect();
            for k in (1..order.len()).rev() {
                order.swap(k, (rng.next() % (k as u64 + 1)) as usize);
            }
            for &j in order.iter().take(1 + (rng.next() % features.len().max(1) as u64) as usize) {
                match (&features[j].space, &x0[j]) {
                    (Space::Numeric { sd, min, max, step }, Value::Num(x)) if x.is_finite() => {
                        let size = rng.uniform() * budget;
                        let sign = if rng.uniform() < 0.5 { -1.0 } else { 1.0 };
                        let mut y = (x + sign * size * sd).clamp(*min, *max);
                        if let Some(step) = step.filter(|s| *s > 0.0) {
                            y = x + ((y - x) / step).trunc() * step;
                        }
                        budget -= (y - x).abs() / sd;
                        m[j] = Value::Num(y);
                    }
                    (Space::Categorical { values }, Value::Cat(c)) if budget >= 1.0 && values.len() > 1 => {
                        let v = &values[(rng.next() % values.len() as u64) as usize];
                        if v != c {
                            budget -= 1.0;
                            m[j] = Value::Cat(v.clone());
                        }
                    }
                    _ => {}
                }
            }
            let d = distance(features, x0, &m);
            proposals.push((i, m, d));
        }
    }
    let states: Vec<(usize, &[Value])> = proposals.iter().map(|(i, m, _)| (*i, m.as_slice())).collect();
    let scores = score(model, batch, features, &states)?;
    let mut out: Vec<Option<f64>> = vec![None; batch.rows];
    for (k, (i, _, d)) in proposals.iter().enumerate() {
        if (scores[k] >= s.threshold) != (before[*i] >= s.threshold) && *d <= s.max_radius + 1e-12 && out[*i].is_none_or(|b| *d < b) {
            out[*i] = Some(*d);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// score = logistic(x + 2·[c = "b"] − 3): the boundary is x = 3 (c = a) or x = 1 (c = b).
    struct Linear;
    impl Model for Linear {
        fn name(&self) -> &str {
            "linear"
        }
        fn input_names(&self) -> Vec<String> {
            vec!["x".into(), "c".into(), "z".into()]
        }
        fn predict(&self, b: &Batch) -> Result<Vec<f64>, ModelError> {
            let (Some(Values::Numeric(x)), Some(Values::Text(c))) = (b.columns.get("x"), b.columns.get("c")) else { unreachable!() };
            Ok(x.iter().zip(c).map(|(x, c)| 1.0 / (1.0 + (-(x + if c == "b" { 2.0 } else { 0.0 } - 3.0)).exp())).collect())
        }
    }

    fn batch(xs: &[f64], cs: &[&str]) -> Batch {
        let mut b = Batch { rows: xs.len(), ..Default::default() };
        b.columns.insert("x".into(), Values::Numeric(xs.to_vec()));
        b.columns.insert("c".into(), Values::Text(cs.iter().map(|s| s.to_string()).collect()));
        b.columns.insert("z".into(), Values::Numeric(vec![7.0; xs.len()]));
        b
    }

    fn space(step: Option<f64>) -> Vec<Feature> {
        vec![
            Feature { name: "x".into(), space: Space::Numeric { sd: 1.0, min: -10.0, max: 10.0, step } },
            Feature { name: "c".into(), space: Space::Categorical { values: vec!["a".into(), "b".into()] } },
        ]
    }

    const SETTINGS: Settings = Settings { threshold: 0.5, max_radius: 3.0, max_steps: 40, seed: 1 };

    #[test]
    fn the_smallest_flip_is_found_and_shrunk_to_the_boundary() {
        // x = 2, c = a: negative; the nearest flip is x → 3 (distance 1) or c → b (distance 1, score 0.73).
        let b = batch(&[2.0, 0.0, 5.0], &["a", "a", "b"]);
        let found = search(&Linear, &b, &space(Some(1.0)), &SETTINGS).unwrap();
        assert!(found[0].flipped && (found[0].radius - 1.0).abs() < 1e-12, "{:?}", found[0]);
        // x = 0, c = a: flipping needs x → 3 (distance 3) or c → b and x → 1 (distance 2).
        assert!(found[1].flipped && (found[1].radius - 2.0).abs() < 1e-12, "{:?}", found[1]);
        assert_eq!(found[1].changes.len(), 2);
        // x = 5, c = b: positive; a flip needs c → a and x → 2 (distance 4) or x → 0 (distance 5): beyond 3.
        assert!(!found[2].flipped, "{:?}", found[2]);
        for f in found.iter().filter(|f| f.flipped) {
            assert!(f.radius <= SETTINGS.max_radius + 1e-12);
            assert_ne!(f.before >= 0.5, f.after >= 0.5, "{f:?}");
        }
    }

    #[test]
    fn immutable_features_and_ranges_are_respected() {
        let b = batch(&[0.0], &["a"]);
        // c cannot change and x cannot exceed 2.5: no flip within the constraints.
        let only_x = vec![Feature { name: "x".into(), space: Space::Numeric { sd: 1.0, min: -10.0, max: 2.5, step: None } }];
        let found = search(&Linear, &b, &only_x, &SETTINGS).unwrap();
        assert!(!found[0].flipped);
        assert!(found[0].changes.iter().all(|(f, _, _)| f == "x"));
        // Beyond the radius: x would need to move by 3.0001.
        let far = batch(&[-0.0001], &["a"]);
        let free_x = vec![Feature { name: "x".into(), space: Space::Numeric { sd: 1.0, min: -10.0, max: 10.0, step: None } }];
        assert!(!search(&Linear, &far, &free_x, &SETTINGS).unwrap()[0].flipped);
        assert!(search(&Linear, &far, &free_x, &Settings { max_radius: 3.5, ..SETTINGS }).unwrap()[0].flipped);
    }

    #[test]
    fn the_greedy_search_beats_random_changes_of_the_same_budget_and_is_deterministic() {
        let xs: Vec<f64> = (0..200).map(|i| -1.0 + (i as f64) * 0.035).collect();
        let cs: Vec<&str> = (0..200).map(|i| if i % 3 == 0 { "b" } else { "a" }).collect();
        let b = batch(&xs, &cs);
        let f = space(None);
        let found = search(&Linear, &b, &f, &SETTINGS).unwrap();
        let tries = found.iter().map(|f| f.queries).sum::<usize>() / found.len();
        let random = random_search(&Linear, &b, &f, &SETTINGS, tries).unwrap();
        let greedy_flips = found.iter().filter(|f| f.flipped).count();
        let random_flips = random.iter().filter(|r| r.is_some()).count();
        assert!(greedy_flips >= random_flips, "{greedy_flips} vs {random_flips}");
        let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
        let both: Vec<usize> = (0..200).filter(|&i| found[i].flipped && random[i].is_some()).collect();
        assert!(mean(both.iter().map(|&i| found[i].radius).collect()) < mean(both.iter().map(|&i| random[i].unwrap_or(0.0)).collect()));
        assert_eq!(search(&Linear, &b, &f, &SETTINGS).unwrap(), found);
        assert_eq!(random_search(&Linear, &b, &f, &SETTINGS, tries).unwrap(), random);
        // The unlisted feature z is never changed.
        assert!(found.iter().all(|f| f.changes.iter().all(|(n, _, _)| n != "z")));
    }
}
