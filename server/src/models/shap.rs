//! SHAP attributions of one prediction: model-agnostic KernelSHAP (interventional, against a
//! background set, every masked row sent to the model in a few batched calls) and exact
//! interventional TreeSHAP for ONNX-ML tree ensembles (`TreeEnsembleClassifier`/`Regressor`).
//!
//! Both explain the game v(S) = mean over background rows r of f(x_S, r_notS): features in S take
//! the explained example's values, the others a background row's. KernelSHAP follows Lundberg &
//! Lee (2017): Shapley-kernel weighted least squares over coalitions with the efficiency constraint
//! imposed exactly; TreeSHAP is the "independent" algorithm of Lundberg et al. (2020) walking each
//! tree with x and r together.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::{Batch, Model, ModelError, Values};
use crate::eval::rng::SplitMix;

/// Most players KernelSHAP accepts (coalitions are bit masks).
pub const MAX_FEATURES: usize = 64;
/// Most `samples × background rows` KernelSHAP accepts: the rows it may send to the model.
pub const MAX_ROWS: usize = 2_000_000;
/// Rows per `predict` call.
const CHUNK: usize = 100_000;

/// The attribution of one prediction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Attribution {
    /// v(∅): the mean prediction over the background rows (with the example's values in the columns
    /// that are not `features`).
    pub base: f64,
    /// The model's prediction for the example, v(all).
    pub prediction: f64,
    /// One value per feature, in the order asked; they sum to `prediction − base`.
    pub values: Vec<(String, f64)>,
    /// Every coalition was evaluated: the values are the exact Shapley values.
    pub exact: bool,
    /// Distinct coalitions evaluated (besides the empty and the full one).
    pub coalitions: usize,
    /// Rows the model predicted (each distinct masked row once).
    pub predictions: usize,
}

fn run_error(model: &dyn Model, why: String) -> ModelError {
    ModelError::Run { model: model.name().to_string(), why }
}

/// Equal values (NaN equals NaN: both are "missing").
fn same(a: &Values, i: usize, b: &Values, j: usize) -> bool {
    match (a, b) {
        (Values::Numeric(a), Values::Numeric(b)) => a[i] == b[j] || (a[i].is_nan() && b[j].is_nan()),
        (Values::Text(a), Values::Text(b)) => a[i] == b[j],
        _ => false,
    }
}

/// KernelSHAP of `model` at the one-row `example` against the `background` rows, for the players
/// `features` (other columns keep the example's values).
///
/// Features whose example value equals every background row's cannot change the prediction; they
/// get 0 and are not players (as in shap's KernelExplainer). With M players, when 2^M − 2 ≤
/// `samples` every coalition is evaluated and the values are exact Shapley values; otherwise
/// `samples` coalitions are chosen as KernelSHAP does (sizes whose whole Shapley-kernel share fits
/// the budget enumerated, smallest and largest first, the rest sampled by size with the
/// complement of each draw), deterministically for `seed`. All `(coalitions + 1) × B + 1` rows go
/// to the model in calls of at most 100 000 rows.
///
/// Errors: `ModelError::MissingInput`/`WrongType` when a feature is not a column of both batches or
/// their types differ; `ModelError::Run` when the example is not one row, the background is
/// empty, `features.len() > MAX_FEATURES`, `samples × B > MAX_ROWS`, or the model returns the wrong
/// number of predictions (and any error of `model.predict`).
pub fn kernel_shap(model: &dyn Model, example: &Batch, background: &Batch, features: &[String], samples: usize, seed: u64) -> Result<Attribution, ModelError> {
    if example.rows != 1 {
        return Err(run_error(model, format!("SHAP explains one example, got {} rows", example.rows)));
    }
    if background.rows == 0 {
        return Err(run_error(model, "SHAP needs at least one background row".into()));
    }
    if features.len() > MAX_FEATURES {
        return Err(run_error(model, format!("SHAP over {} features: at most {MAX_FEATURES}", features.len())));
    }
    if samples.checked_mul(background.rows).is_none_or(|n| n > MAX_ROWS) {
        return Err(run_error(model, format!("SHAP with {samples} coalitions × {} background rows: at most {MAX_ROWS} rows", background.rows)));
    }
    // Players: the features some background row differs on; `cols` holds their background columns.
    let mut players: Vec<usize> = Vec::new();
    let mut cols: Vec<&Values> = Vec::new();
    let len = |v: &Values| match v {
        Values::Numeric(v) => v.len(),
        Values::Text(v) => v.len(),
    };
    for (i, f) in features.iter().enumerate() {
        let missing = |b: &Batch| ModelError::MissingInput { model: model.name().to_string(), input: f.clone(), columns: b.columns.keys().cloned().collect::<Vec<_>>().join(", ") };
        let x = example.columns.get(f).ok_or_else(|| missing(example))?;
        let r = background.columns.get(f).ok_or_else(|| missing(background))?;
        if std::mem::discriminant(x) != std::mem::discriminant(r) {
            let kind = |v: &Values| if matches!(v, Values::Numeric(_)) { "numbers" } else { "text" }.to_string();
            return Err(ModelError::WrongType { model: model.name().to_string(), input: f.clone(), expected: kind(x), found: kind(r) });
        }
        if features[..i].contains(f) {
            return Err(run_error(model, format!("SHAP feature '{f}' is listed twice")));
        }
        if len(x) != 1 || len(r) != background.rows {
            return Err(run_error(model, format!("SHAP: column '{f}' does not have one value per row")));
        }
        if (0..background.rows).any(|r_i| !same(x, 0, r, r_i)) {
            players.push(i);
            cols.push(r);
        }
    }
    let m = players.len();
    let exact = m < 63 && (1u64 << m).saturating_sub(2) <= samples as u64;
    let coalitions = if exact { all_coalitions(m) } else { sample_coalitions(m, samples, seed) };

    // The plan: per coalition (the empty one first) one row per background row r, which takes r's
    // values for the players outside the coalition. Only the players where r differs from the
    // example change anything, so a row is known by (r, the differing players it takes from r):
    // rows alike are predicted once, and a row taking nothing from r is the example itself (the
    // Adult demo's categorical features often agree, so this saves a third of the calls or more).
    let b = background.rows;
    let differs: Vec<u64> = (0..b).map(|r_i| (0..m).filter(|&p| !same(example.columns.get(&features[players[p]]).unwrap_or(cols[p]), 0, cols[p], r_i)).fold(0u64, |d, p| d | 1 << p)).collect();
    let full = if m == 64 { u64::MAX } else { (1u64 << m) - 1 };
    let mut unique: Vec<(usize, u64)> = vec![(0, 0)];
    let mut index: HashMap<(usize, u64), usize> = HashMap::new();
    let mut plan: Vec<usize> = Vec::with_capacity((coalitions.len() + 1) * b);
    for mask in std::iter::once(0u64).chain(coalitions.iter().map(|c| c.0)) {
        for (r_i, d) in differs.iter().enumerate() {
            let taken = !mask & full & d;
            let k = if taken == 0 { 0 } else { *index.entry((r_i, taken)).or_insert_with(|| { unique.push((r_i, taken)); unique.len() - 1 }) };
            plan.push(k);
        }
    }
    let total = unique.len();
    let player_of: HashMap<&str, usize> = players.iter().enumerate().map(|(p, &i)| (features[i].as_str(), p)).collect();
    let mut preds = Vec::with_capacity(total);
    for start in (0..total).step_by(CHUNK) {
        let rows = &unique[start..(start + CHUNK).min(total)];
        let columns = example
            .columns
            .iter()
            .map(|(name, x)| {
                let Some(&p) = player_of.get(name.as_str()) else { return (name.clone(), repeat(x, rows.len())) };
                let from_r = |taken: u64| taken >> p & 1 == 1;
                let v = match (x, cols[p]) {
                    (Values::Numeric(x), Values::Numeric(r)) => Values::Numeric(rows.iter().map(|&(r_i, t)| if from_r(t) { r[r_i] } else { x[0] }).collect()),
                    (Values::Text(x), Values::Text(r)) => Values::Text(rows.iter().map(|&(r_i, t)| if from_r(t) { r[r_i].clone() } else { x[0].clone() }).collect()),
                    _ => repeat(x, rows.len()),
                };
                (name.clone(), v)
            })
            .collect();
        let out = model.predict(&Batch { rows: rows.len(), columns })?;
        if out.len() != rows.len() {
            return Err(run_error(model, format!("{} predictions for {} rows", out.len(), rows.len())));
        }
        preds.extend(out);
    }
    let prediction = preds[0];
    let v: Vec<f64> = plan.chunks(b).map(|c| c.iter().map(|&k| preds[k]).sum::<f64>() / b as f64).collect();
    let base = v[0];
    let phi = solve(&coalitions, &v[1..], base, prediction - base, m);
    let mut values: Vec<(String, f64)> = features.iter().map(|f| (f.clone(), 0.0)).collect();
    for (p, &i) in players.iter().enumerate() {
        values[i].1 = phi[p];
    }
    Ok(Attribution { base, prediction, values, exact, coalitions: coalitions.len(), predictions: total })
}

/// `x`'s single value repeated `n` times.
fn repeat(x: &Values, n: usize) -> Values {
    match x {
        Values::Numeric(v) => Values::Numeric(vec![v.first().copied().unwrap_or(f64::NAN); n]),
        Values::Text(v) => Values::Text(vec![v.first().cloned().unwrap_or_default(); n]),
    }
}

fn binomial(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |c, i| c * (n - i) as f64 / (i + 1) as f64)
}

/// Calls `f` with the mask of every `k`-subset of `0..m`.
fn each_subset(m: usize, k: usize, mut f: impl FnMut(u64)) {
    let mut idx: Vec<usize> = (0..k).collect();
    loop {
        f(idx.iter().fold(0u64, |s, &i| s | 1 << i));
        // Next combination in lexicographic order.
        let Some(i) = (0..k).rev().find(|&i| idx[i] < m - k + i) else { return };
        idx[i] += 1;
        for j in i + 1..k {
            idx[j] = idx[j - 1] + 1;
        }
    }
}

/// Every proper non-empty coalition of `m` players with its Shapley-kernel weight
/// (M − 1) / (C(M, s) · s · (M − s)).
fn all_coalitions(m: usize) -> Vec<(u64, f64)> {
    let mut out = Vec::new();
    for s in 1..m {
        let w = (m - 1) as f64 / (binomial(m, s) * (s * (m - s)) as f64);
        each_subset(m, s, |mask| out.push((mask, w)));
    }
    out
}

/// About `samples` coalitions with weights, as KernelSHAP chooses them: the Shapley kernel gives
/// coalition size s (and its complement size M − s) a share ∝ (M − 1) / (s (M − s)); sizes are
/// taken from the outside in and enumerated whole while the budget left covers their share, the
/// remaining share is spread over coalitions drawn by size (each with its complement), duplicates
/// adding weight.
fn sample_coalitions(m: usize, samples: usize, seed: u64) -> Vec<(u64, f64)> {
    if m < 2 {
        return Vec::new();
    }
    let full = if m == 64 { u64::MAX } else { (1u64 << m) - 1 };
    let sizes = m / 2; // sizes 1..=m/2; size s stands for s and m − s
    let paired = |s: usize| 2 * s != m;
    let mut share: Vec<f64> = (1..=sizes).map(|s| (m - 1) as f64 / (s * (m - s)) as f64 * if paired(s) { 2.0 } else { 1.0 }).collect();
    let sum: f64 = share.iter().sum();
    share.iter_mut().for_each(|w| *w /= sum);

    let mut out: Vec<(u64, f64)> = Vec::new();
    let mut left = samples as f64;
    let mut share_left = 1.0;
    let mut done = 0;
    for s in 1..=sizes {
        let count = binomial(m, s) * if paired(s) { 2.0 } else { 1.0 };
        // The budget left, split by the remaining shares, must cover every coalition of this size.
        if left * share[s - 1] / share_left / count < 1.0 - 1e-8 {
            break;
        }
        let w = share[s - 1] / count;
        each_subset(m, s, |mask| {
            out.push((mask, w));
            if paired(s) {
                out.push((!mask & full, w));
            }
        });
        left -= count;
        share_left -= share[s - 1];
        done = s;
    }
    if done == sizes || left < 1.0 {
        return out;
    }
    // Draw the other sizes in proportion to their shares.
    let fixed = out.len();
    let mut rng = SplitMix(seed ^ 0x54A9_C0A1);
    let mut seen: HashMap<u64, usize> = HashMap::new();
    let mut order: Vec<usize> = (0..m).collect();
    let (mut added, mut draws) = (0, 0);
    while (added as f64) < left && draws < 4 * samples {
        draws += 1;
        let mut u = rng.uniform() * share_left;
        let mut s = sizes;
        for t in done + 1..=sizes {
            if u < share[t - 1] {
                s = t;
                break;
            }
            u -= share[t - 1];
        }
        // A uniform s-subset: a partial Fisher–Yates shuffle.
        for i in 0..s {
            let j = i + ((rng.uniform() * (m - i) as f64) as usize).min(m - i - 1);
            order.swap(i, j);
        }
        let mask = order[..s].iter().fold(0u64, |acc, &i| acc | 1 << i);
        for mask in if paired(s) { vec![mask, !mask & full] } else { vec![mask] } {
            match seen.get(&mask) {
                Some(&k) => out[k].1 += 1.0,
                None => {
                    seen.insert(mask, out.len());
                    out.push((mask, 1.0));
                    added += 1;
                }
            }
        }
    }
    // The drawn coalitions share what the enumerated sizes left of the kernel.
    let drawn: f64 = out[fixed..].iter().map(|c| c.1).sum();
    if drawn > 0.0 {
        out[fixed..].iter_mut().for_each(|c| c.1 *= share_left / drawn);
    }
    out
}

/// The weighted least-squares fit of v(S) − base = Σ_{j∈S} φ_j subject to Σ φ = `delta`: the
/// last player is eliminated (φ_last = delta − Σ others) so the constraint holds exactly.
fn solve(coalitions: &[(u64, f64)], v: &[f64], base: f64, delta: f64, m: usize) -> Vec<f64> {
    if m == 0 {
        return Vec::new();
    }
    let k = m - 1;
    let mut g = vec![0.0; k * k];
    let mut h = vec![0.0; k];
    let mut a = vec![0.0; k];
    for (&(mask, w), &y) in coalitions.iter().zip(v) {
        let last = (mask >> k & 1) as f64;
        for (j, aj) in a.iter_mut().enumerate() {
            *aj = (mask >> j & 1) as f64 - last;
        }
        let target = y - base - last * delta;
        for i in 0..k {
            if a[i] == 0.0 {
                continue;
            }
            h[i] += w * a[i] * target;
            for j in 0..k {
                g[i * k + j] += w * a[i] * a[j];
            }
        }
    }
    let mut phi = gauss(g, h, k);
    phi.push(delta - phi.iter().sum::<f64>());
    phi
}

/// Solves the symmetric system `g x = h` (n × n, row-major) by Gaussian elimination with partial
/// pivoting; a direction the coalitions never constrain (a negligible pivot) gets 0.
fn gauss(mut g: Vec<f64>, mut h: Vec<f64>, n: usize) -> Vec<f64> {
    let scale = (0..n).map(|i| g[i * n + i].abs()).fold(0.0, f64::max);
    let mut pivots: Vec<Option<usize>> = vec![None; n];
    let mut row = 0;
    for col in 0..n {
        let Some(p) = (row..n).max_by(|&i, &j| g[i * n + col].abs().total_cmp(&g[j * n + col].abs())) else { break };
        if g[p * n + col].abs() <= 1e-12 * scale {
            continue;
        }
        for j in 0..n {
            g.swap(row * n + j, p * n + j);
        }
        h.swap(row, p);
        for i in row + 1..n {
            let f = g[i * n + col] / g[row * n + col];
            if f != 0.0 {
                for j in col..n {
                    g[i * n + j] -= f * g[row * n + j];
                }
                h[i] -= f * h[row];
            }
        }
        pivots[col] = Some(row);
        row += 1;
    }
    let mut x = vec![0.0; n];
    for col in (0..n).rev() {
        let Some(r) = pivots[col] else { continue };
        let rest: f64 = (col + 1..n).map(|j| g[r * n + j] * x[j]).sum();
        x[col] = (h[r] - rest) / g[r * n + col];
    }
    x
}

/// The attributes of an ONNX-ML `TreeEnsembleClassifier` (`class_*` as `leaf_*`) or
/// `TreeEnsembleRegressor` (`target_*` as `leaf_*`) node.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TreeAttributes {
    pub nodes_treeids: Vec<i64>,
    pub nodes_nodeids: Vec<i64>,
    pub nodes_featureids: Vec<i64>,
    pub nodes_values: Vec<f64>,
    /// BRANCH_LEQ, BRANCH_LT, BRANCH_GTE, BRANCH_GT, BRANCH_EQ, BRANCH_NEQ or LEAF.
    pub nodes_modes: Vec<String>,
    pub nodes_truenodeids: Vec<i64>,
    pub nodes_falsenodeids: Vec<i64>,
    /// Empty = all 0.
    #[serde(default)]
    pub nodes_missing_value_tracks_true: Vec<i64>,
    pub leaf_treeids: Vec<i64>,
    pub leaf_nodeids: Vec<i64>,
    /// `class_ids` or `target_ids`.
    pub leaf_targetids: Vec<i64>,
    pub leaf_weights: Vec<f64>,
    #[serde(default)]
    pub base_values: Vec<f64>,
    #[serde(default)]
    pub post_transform: String,
    /// The classifier's number of class labels or the regressor's `n_targets`.
    #[serde(default)]
    pub n_targets: usize,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
    Leaf,
}

#[derive(Clone, Debug)]
struct Node {
    mode: Mode,
    feature: usize,
    value: f64,
    yes: usize,
    no: usize,
    nan_yes: bool,
    /// (target, weight) of a leaf.
    weights: Vec<(usize, f64)>,
}

impl Node {
    /// Whether `x` takes the true branch, as onnxruntime decides: the comparison (false for NaN,
    /// except `!=`) or NaN with `missing_value_tracks_true`.
    fn yes(&self, x: f64) -> bool {
        let c = match self.mode {
            Mode::Leq => x <= self.value,
            Mode::Lt => x < self.value,
            Mode::Gte => x >= self.value,
            Mode::Gt => x > self.value,
            Mode::Eq => x == self.value,
            Mode::Neq => x != self.value,
            Mode::Leaf => false,
        };
        c || (self.nan_yes && x.is_nan())
    }

    fn leaf(&self, target: usize) -> f64 {
        self.weights.iter().filter(|w| w.0 == target).map(|w| w.1).sum()
    }
}

#[derive(Clone, Debug)]
struct Tree {
    nodes: Vec<Node>,
    root: usize,
}

/// Deepest tree accepted (TreeSHAP recurses along a path).
const MAX_DEPTH: usize = 2000;

/// A tree ensemble evaluated as onnxruntime does (leaf weights summed per target over the trees,
/// plus `base_values`), with exact interventional TreeSHAP of its margin. Only the aggregate
/// function SUM (the default, and what skl2onnx/onnxmltools write) is modelled: `TreeAttributes`
/// carries no `aggregate_function`. onnxruntime compares float32 inputs with float32 thresholds
/// and sums in float32; pass `v as f32 as f64` to reproduce its routing of values that float32
/// cannot hold (its scores then agree to float32 rounding).
#[derive(Clone, Debug)]
pub struct TreeEnsemble {
    trees: Vec<Tree>,
    base: Vec<f64>,
    targets: usize,
    features: usize,
    post_transform: String,
    positive: usize,
}

fn feature_of(x: &[f64], j: usize) -> f64 {
    x.get(j).copied().unwrap_or(f64::NAN)
}

/// The TreeEnsemble from an ONNX node's attributes; the error says what is inconsistent.
/// Trees deeper than 2000 levels are refused.
pub fn from_onnx_attributes(a: &TreeAttributes) -> Result<TreeEnsemble, String> {
    let n = a.nodes_nodeids.len();
    let lens = [a.nodes_treeids.len(), a.nodes_featureids.len(), a.nodes_values.len(), a.nodes_modes.len(), a.nodes_truenodeids.len(), a.nodes_falsenodeids.len()];
    if lens.iter().any(|&l| l != n) || !(a.nodes_missing_value_tracks_true.is_empty() || a.nodes_missing_value_tracks_true.len() == n) {
        return Err(format!("tree ensemble: node attributes of different lengths ({n} node ids, others {lens:?}, {} missing-value flags)", a.nodes_missing_value_tracks_true.len()));
    }
    let l = a.leaf_nodeids.len();
    if a.leaf_treeids.len() != l || a.leaf_targetids.len() != l || a.leaf_weights.len() != l {
        return Err("tree ensemble: leaf attributes of different lengths".into());
    }
    // (tree id, node id) → (tree index, node index); trees in order of first appearance.
    let mut tree_index: BTreeMap<i64, usize> = BTreeMap::new();
    let mut tree_ids: Vec<i64> = Vec::new();
    let mut index: HashMap<(i64, i64), (usize, usize)> = HashMap::new();
    let mut trees: Vec<Vec<Node>> = Vec::new();
    let mut ids: Vec<Vec<(i64, i64)>> = Vec::new(); // per tree: (true id, false id) of each node
    let mut features = 0;
    for i in 0..n {
        let t = *tree_index.entry(a.nodes_treeids[i]).or_insert_with(|| {
            trees.push(Vec::new());
            ids.push(Vec::new());
            tree_ids.push(a.nodes_treeids[i]);
            trees.len() - 1
        });
        let mode = match a.nodes_modes[i].as_str() {
            "BRANCH_LEQ" => Mode::Leq,
            "BRANCH_LT" => Mode::Lt,
            "BRANCH_GTE" => Mode::Gte,
            "BRANCH_GT" => Mode::Gt,
            "BRANCH_EQ" => Mode::Eq,
            "BRANCH_NEQ" => Mode::Neq,
            "LEAF" => Mode::Leaf,
            other => return Err(format!("tree ensemble: node mode '{other}' is not supported")),
        };
        let feature = if mode == Mode::Leaf { 0 } else { usize::try_from(a.nodes_featureids[i]).map_err(|_| format!("tree ensemble: negative feature id {}", a.nodes_featureids[i]))? };
        if mode != Mode::Leaf {
            features = features.max(feature + 1);
        }
        if index.insert((a.nodes_treeids[i], a.nodes_nodeids[i]), (t, trees[t].len())).is_some() {
            return Err(format!("tree ensemble: tree {} has node {} twice", a.nodes_treeids[i], a.nodes_nodeids[i]));
        }
        let nan_yes = a.nodes_missing_value_tracks_true.get(i).is_some_and(|&f| f != 0);
        trees[t].push(Node { mode, feature, value: a.nodes_values[i], yes: 0, no: 0, nan_yes, weights: Vec::new() });
        ids[t].push((a.nodes_truenodeids[i], a.nodes_falsenodeids[i]));
    }
    let mut targets = a.n_targets;
    for i in 0..l {
        let key = (a.leaf_treeids[i], a.leaf_nodeids[i]);
        let &(t, k) = index.get(&key).ok_or_else(|| format!("tree ensemble: a leaf weight names tree {} node {}, which does not exist", key.0, key.1))?;
        let target = usize::try_from(a.leaf_targetids[i]).map_err(|_| format!("tree ensemble: negative target id {}", a.leaf_targetids[i]))?;
        if trees[t][k].mode != Mode::Leaf {
            return Err(format!("tree ensemble: tree {} node {} is a branch with a leaf weight", key.0, key.1));
        }
        trees[t][k].weights.push((target, a.leaf_weights[i]));
        targets = targets.max(target + 1);
    }
    // Binary classifiers exported with one score per leaf (skl2onnx, onnxmltools) use one class id
    // only; onnxruntime reads that score as the positive class's.
    let mut used: Vec<i64> = a.leaf_targetids.clone();
    used.sort_unstable();
    used.dedup();
    let positive = match used.as_slice() {
        [t] => *t as usize,
        _ => usize::from(targets >= 2),
    };
    let mut base = vec![0.0; targets.max(1)];
    match a.base_values.len() {
        0 => {}
        // One base value with one scored class belongs to that class.
        1 => base[positive.min(targets.max(1) - 1)] = a.base_values[0],
        k if k == base.len() => base.copy_from_slice(&a.base_values),
        k => return Err(format!("tree ensemble: {k} base values for {targets} targets")),
    }
    let mut out = Vec::with_capacity(trees.len());
    for ((tree_id, mut nodes), links) in tree_ids.into_iter().zip(trees).zip(ids) {
        let mut parents = vec![0usize; nodes.len()];
        for (k, &(y, no)) in links.iter().enumerate() {
            if nodes[k].mode == Mode::Leaf {
                continue;
            }
            let find = |id: i64| index.get(&(tree_id, id)).map(|p| p.1).ok_or_else(|| format!("tree ensemble: tree {tree_id} node links to missing node {id}"));
            let (y, no) = (find(y)?, find(no)?);
            nodes[k].yes = y;
            nodes[k].no = no;
            parents[y] += 1;
            parents[no] += 1;
        }
        // A tree: one root, every other node with one parent, all reachable (so no cycles).
        let roots: Vec<usize> = (0..nodes.len()).filter(|&k| parents[k] == 0).collect();
        if roots.len() != 1 || parents.iter().any(|&p| p > 1) {
            return Err(format!("tree ensemble: tree {tree_id} is not a tree ({} roots)", roots.len()));
        }
        let (mut seen, mut stack, mut depth) = (0, vec![(roots[0], 0usize)], 0);
        while let Some((k, d)) = stack.pop() {
            seen += 1;
            depth = depth.max(d);
            if seen > nodes.len() || d > MAX_DEPTH {
                return Err(format!("tree ensemble: tree {tree_id} has a cycle or is deeper than {MAX_DEPTH}"));
            }
            if nodes[k].mode != Mode::Leaf {
                stack.push((nodes[k].yes, d + 1));
                stack.push((nodes[k].no, d + 1));
            }
        }
        if seen != nodes.len() {
            return Err(format!("tree ensemble: tree {tree_id} has unreachable nodes"));
        }
        out.push(Tree { nodes, root: roots[0] });
    }
    Ok(TreeEnsemble { trees: out, base, targets: targets.max(1), features, post_transform: a.post_transform.clone(), positive })
}

impl TreeEnsemble {
    /// Number of input features: the largest feature id + 1.
    pub fn n_features(&self) -> usize {
        self.features
    }

    /// Number of targets (classes of a classifier).
    pub fn n_targets(&self) -> usize {
        self.targets
    }

    /// The node's `post_transform` (NONE, LOGISTIC, SOFTMAX, …), not applied by `margin`.
    pub fn post_transform(&self) -> &str {
        &self.post_transform
    }

    /// The target whose margin is the positive class's score of a binary classifier: the only
    /// target id the leaves use when there is one (skl2onnx writes one weight per leaf with class
    /// id 0 for GradientBoosting and RandomForest classifiers; onnxruntime reports it as class 1's
    /// score, P(1) = logistic(margin) under LOGISTIC, = margin under NONE), else target 1.
    pub fn positive_target(&self) -> usize {
        self.positive
    }

    /// The raw score of `target` for `x` (feature j = `x[j]`, NaN past its end): leaf weights
    /// summed over the trees plus the base value, before the post-transform.
    pub fn margin(&self, x: &[f64], target: usize) -> f64 {
        let leaves: f64 = self
            .trees
            .iter()
            .map(|t| {
                let mut k = t.root;
                while t.nodes[k].mode != Mode::Leaf {
                    let node = &t.nodes[k];
                    k = if node.yes(feature_of(x, node.feature)) { node.yes } else { node.no };
                }
                t.nodes[k].leaf(target)
            })
            .sum();
        leaves + self.base.get(target).copied().unwrap_or(0.0)
    }

    /// Exact interventional SHAP values of `margin(·, target)` at `x`: the mean over `background`
    /// rows r of the Shapley values of v(S) = margin(x_S, r_notS). One value per feature
    /// (length max(x.len(), n_features())); they sum to margin(x) − mean margin(r). Each tree
    /// is walked once per background row, following x and r together.
    pub fn tree_shap(&self, x: &[f64], background: &[Vec<f64>], target: usize) -> Vec<f64> {
        let width = x.len().max(self.features);
        let mut phi = vec![0.0; width];
        if background.is_empty() {
            return phi;
        }
        let mut walk = Walk { x, r: &[], target, from: vec![Source::Open; width], phi: &mut phi, weights: Weights::new(width) };
        for r in background {
            walk.r = r;
            for tree in &self.trees {
                walk.node(tree, tree.root, 0, 0);
            }
        }
        let n = background.len() as f64;
        phi.iter_mut().for_each(|p| *p /= n);
        phi
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Source {
    Open,
    X,
    R,
}

/// One (x, r) walk of TreeSHAP.
struct Walk<'a> {
    x: &'a [f64],
    r: &'a [f64],
    target: usize,
    /// Where a feature split on higher up, where x and r parted, takes its value from.
    from: Vec<Source>,
    phi: &'a mut Vec<f64>,
    weights: Weights,
}

impl Walk<'_> {
    /// Visits the subtree at `k` with `a` features from x and `b` from r decided above; returns
    /// (Σ leaf · w₊(a', b'), Σ leaf · w₋(a', b')) over its leaves, the shares every x-feature and
    /// every r-feature decided above gets.
    fn node(&mut self, tree: &Tree, k: usize, a: usize, b: usize) -> (f64, f64) {
        let node = &tree.nodes[k];
        if node.mode == Mode::Leaf {
            if a + b == 0 {
                return (0.0, 0.0); // x and r reach the same leaf: no player
            }
            let v = node.leaf(self.target);
            return (v * self.weights.plus(a, b), v * self.weights.minus(a, b));
        }
        let j = node.feature;
        let (xs, rs) = (node.yes(feature_of(self.x, j)), node.yes(feature_of(self.r, j)));
        let next = |yes: bool| if yes { node.yes } else { node.no };
        match self.from[j] {
            Source::X => self.node(tree, next(xs), a, b),
            Source::R => self.node(tree, next(rs), a, b),
            Source::Open if xs == rs => self.node(tree, next(xs), a, b),
            Source::Open => {
                // x and r part here: j becomes a player, from x on one side and from r on the other.
                self.from[j] = Source::X;
                let (px, nx) = self.node(tree, next(xs), a + 1, b);
                self.from[j] = Source::R;
                let (pr, nr) = self.node(tree, next(rs), a, b + 1);
                self.from[j] = Source::Open;
                self.phi[j] += px - nr;
                (px + pr, nx + nr)
            }
        }
    }
}

/// The Shapley weights of a path game with a players that must come from x and b from r:
/// w₊(a, b) = (a − 1)! b! / (a + b)! and w₋(a, b) = a! (b − 1)! / (a + b)!.
struct Weights {
    ln_fact: Vec<f64>,
}

impl Weights {
    fn new(n: usize) -> Weights {
        let mut ln_fact = vec![0.0; n + 2];
        for i in 1..ln_fact.len() {
            ln_fact[i] = ln_fact[i - 1] + (i as f64).ln();
        }
        Weights { ln_fact }
    }

    /// (a − 1)! b! / (a + b)!, exact products for short paths.
    fn ratio(&self, a: usize, b: usize) -> f64 {
        if a == 0 {
            return 0.0;
        }
        if a + b <= 40 {
            // 1/a · Π_{i=1..b} i / (a + i)
            return (1..=b).fold(1.0 / a as f64, |w, i| w * i as f64 / (a + i) as f64);
        }
        (self.ln_fact[a - 1] + self.ln_fact[b] - self.ln_fact[a + b]).exp()
    }

    fn plus(&self, a: usize, b: usize) -> f64 {
        self.ratio(a, b)
    }

    fn minus(&self, a: usize, b: usize) -> f64 {
        self.ratio(b, a)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::Value;

    use super::*;

    /// A TreeEnsemble as a `Model` over named numeric columns: the positive target's margin, or
    /// its probability (logistic of the margin under LOGISTIC, as onnxruntime reports P(1)).
    struct Ensemble {
        trees: TreeEnsemble,
        cols: Vec<String>,
        probability: bool,
        calls: AtomicUsize,
    }

    impl Model for Ensemble {
        fn name(&self) -> &str {
            "ensemble"
        }
        fn input_names(&self) -> Vec<String> {
            self.cols.clone()
        }
        fn predict(&self, batch: &Batch) -> Result<Vec<f64>, ModelError> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            let cols: Vec<&Vec<f64>> = self
                .cols
                .iter()
                .map(|c| match &batch.columns[c] {
                    Values::Numeric(v) => v,
                    Values::Text(_) => panic!("text"),
                })
                .collect();
            Ok((0..batch.rows)
                .map(|i| {
                    let x: Vec<f64> = cols.iter().map(|c| c[i]).collect();
                    let m = self.trees.margin(&x, self.trees.positive_target());
                    if self.probability && self.trees.post_transform() == "LOGISTIC" { 1.0 / (1.0 + (-m).exp()) } else { m }
                })
                .collect())
        }
    }

    fn model(trees: TreeEnsemble, cols: &[String], probability: bool) -> Ensemble {
        Ensemble { trees, cols: cols.to_vec(), probability, calls: AtomicUsize::new(0) }
    }

    fn batch(cols: &[String], rows: &[Vec<f64>]) -> Batch {
        Batch { rows: rows.len(), columns: cols.iter().enumerate().map(|(j, c)| (c.clone(), Values::Numeric(rows.iter().map(|r| r[j]).collect()))).collect() }
    }

    fn names(m: usize) -> Vec<String> {
        (0..m).map(|j| format!("f{j}")).collect()
    }

    /// Exact Shapley values by the definition: Σ_S |S|! (M − |S| − 1)! / M! (v(S ∪ j) − v(S)).
    fn brute(m: usize, v: impl Fn(u64) -> f64) -> Vec<f64> {
        let fact = |n: usize| (1..=n).map(|i| i as f64).product::<f64>();
        let vals: Vec<f64> = (0..1u64 << m).map(&v).collect();
        (0..m)
            .map(|j| {
                (0..1u64 << m)
                    .filter(|s| s >> j & 1 == 0)
                    .map(|s| fact(s.count_ones() as usize) * fact(m - s.count_ones() as usize - 1) / fact(m) * (vals[(s | 1 << j) as usize] - vals[s as usize]))
                    .sum()
            })
            .collect()
    }

    /// Interventional Shapley values of the margin by brute force, averaged over the background.
    fn brute_tree(t: &TreeEnsemble, x: &[f64], background: &[Vec<f64>], target: usize) -> Vec<f64> {
        let m = x.len();
        let mut out = vec![0.0; m];
        for r in background {
            let phi = brute(m, |s| t.margin(&(0..m).map(|j| if s >> j & 1 == 1 { x[j] } else { r[j] }).collect::<Vec<_>>(), target));
            out.iter_mut().zip(phi).for_each(|(o, p)| *o += p / background.len() as f64);
        }
        out
    }

    fn max_diff(a: &[f64], b: &[f64]) -> f64 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max)
    }

    /// A node: (id, mode, feature, value, true id, false id, nan→true, leaf weight).
    type Spec<'a> = (i64, &'a str, i64, f64, i64, i64, i64, f64);

    /// The attributes of trees given node by node.
    fn attributes(trees: &[Vec<Spec>]) -> TreeAttributes {
        let mut a = TreeAttributes { post_transform: "NONE".into(), n_targets: 1, ..Default::default() };
        for (t, nodes) in trees.iter().enumerate() {
            for &(id, mode, feature, value, yes, no, nan, w) in nodes {
                a.nodes_treeids.push(t as i64);
                a.nodes_nodeids.push(id);
                a.nodes_modes.push(mode.into());
                a.nodes_featureids.push(feature);
                a.nodes_values.push(value);
                a.nodes_truenodeids.push(yes);
                a.nodes_falsenodeids.push(no);
                a.nodes_missing_value_tracks_true.push(nan);
                if mode == "LEAF" {
                    a.leaf_treeids.push(t as i64);
                    a.leaf_nodeids.push(id);
                    a.leaf_targetids.push(0);
                    a.leaf_weights.push(w);
                }
            }
        }
        a
    }

    /// Random trees over `m` features on the grid {0, 1, 2, 3} (and NaN), every mode, random
    /// missing-value routing; some features split on twice along a path.
    fn random_ensemble(m: usize, trees: usize, depth: usize, seed: u64) -> TreeEnsemble {
        const MODES: [&str; 6] = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"];
        let mut rng = SplitMix(seed);
        let mut all = Vec::new();
        for _ in 0..trees {
            let mut nodes: Vec<Spec> = Vec::new();
            // Breadth-first ids: node i's children are 2i + 1 and 2i + 2, leaves at `depth` or earlier.
            let mut branch = vec![false; (1usize << (depth + 1)) - 1];
            for id in 0..(1i64 << (depth + 1)) - 1 {
                if id > 0 && !branch[(id as usize - 1) / 2] {
                    continue; // under a leaf
                }
                let leaf = id >= (1i64 << depth) - 1 || (id > 0 && rng.uniform() < 0.15);
                branch[id as usize] = !leaf;
                let mode = if leaf { "LEAF" } else { MODES[(rng.next() % 6) as usize] };
                nodes.push((
                    id,
                    mode,
                    (rng.next() % m as u64) as i64,
                    (rng.next() % 4) as f64 + 0.5 * (rng.next() % 2) as f64,
                    2 * id + 1,
                    2 * id + 2,
                    (rng.next() % 2) as i64,
                    rng.uniform() * 2.0 - 1.0,
                ));
            }
            all.push(nodes);
        }
        from_onnx_attributes(&attributes(&all)).expect("random ensemble")
    }

    fn random_rows(m: usize, n: usize, seed: u64) -> Vec<Vec<f64>> {
        let mut rng = SplitMix(seed);
        (0..n).map(|_| (0..m).map(|_| if rng.uniform() < 0.1 { f64::NAN } else { (rng.next() % 4) as f64 }).collect()).collect()
    }

    #[test]
    fn and_tree_by_hand() {
        // f = 1 when x0 > 0.5 and x1 > 0.5; x = (1, 1), r = (0, 0): v(∅) = v{0} = v{1} = 0, v{0,1} = 1.
        let a = attributes(&[vec![
            (0, "BRANCH_LEQ", 0, 0.5, 1, 2, 0, 0.0),
            (1, "LEAF", 0, 0.0, 0, 0, 0, 0.0),
            (2, "BRANCH_LEQ", 1, 0.5, 3, 4, 0, 0.0),
            (3, "LEAF", 0, 0.0, 0, 0, 0, 0.0),
            (4, "LEAF", 0, 0.0, 0, 0, 0, 1.0),
        ]]);
        let t = from_onnx_attributes(&a).unwrap();
        assert_eq!(t.tree_shap(&[1.0, 1.0], &[vec![0.0, 0.0]], 0), vec![0.5, 0.5]);
        // r = (1, 0): only x1 differs and it takes the whole difference; a third feature is not a player.
        assert_eq!(t.tree_shap(&[1.0, 1.0, 7.0], &[vec![1.0, 0.0, 3.0]], 0), vec![0.0, 1.0, 0.0]);
        // Two background rows: the mean of (0.5, 0.5) and (0, 1).
        assert_eq!(t.tree_shap(&[1.0, 1.0], &[vec![0.0, 0.0], vec![1.0, 0.0]], 0), vec![0.25, 0.75]);
        // A feature split on twice: x0 ≤ 0.5 → 0; else x0 ≤ 2.5 → 1 else 3. x0 = 3 vs r0 = 0: φ0 = 3.
        let a = attributes(&[vec![
            (0, "BRANCH_LEQ", 0, 0.5, 1, 2, 0, 0.0),
            (1, "LEAF", 0, 0.0, 0, 0, 0, 0.0),
            (2, "BRANCH_LEQ", 0, 2.5, 3, 4, 0, 0.0),
            (3, "LEAF", 0, 0.0, 0, 0, 0, 1.0),
            (4, "LEAF", 0, 0.0, 0, 0, 0, 3.0),
        ]]);
        let t = from_onnx_attributes(&a).unwrap();
        assert_eq!(t.tree_shap(&[3.0], &[vec![0.0]], 0), vec![3.0]);
        assert_eq!(t.margin(&[2.0], 0), 1.0);
    }

    #[test]
    fn routing_ties_and_missing() {
        let tree = |mode: &str, nan: i64| from_onnx_attributes(&attributes(&[vec![(0, mode, 0, 1.0, 1, 2, nan, 0.0), (1, "LEAF", 0, 0.0, 0, 0, 0, 1.0), (2, "LEAF", 0, 0.0, 0, 0, 0, 2.0)]])).unwrap();
        // (mode, x, nan→true) → true branch?
        let cases = [
            ("BRANCH_LEQ", 1.0, 0, true),
            ("BRANCH_LT", 1.0, 0, false),
            ("BRANCH_GTE", 1.0, 0, true),
            ("BRANCH_GT", 1.0, 0, false),
            ("BRANCH_EQ", 1.0, 0, true),
            ("BRANCH_NEQ", 1.0, 0, false),
            ("BRANCH_LEQ", f64::NAN, 0, false),
            ("BRANCH_LEQ", f64::NAN, 1, true),
            ("BRANCH_GT", f64::NAN, 0, false),
            ("BRANCH_GT", f64::NAN, 1, true),
            ("BRANCH_EQ", f64::NAN, 0, false),
            // NaN != v is true, as in onnxruntime's comparison.
            ("BRANCH_NEQ", f64::NAN, 0, true),
        ];
        for (mode, x, nan, yes) in cases {
            assert_eq!(tree(mode, nan).margin(&[x], 0), if yes { 1.0 } else { 2.0 }, "{mode} {x} {nan}");
        }
        // A missing feature (x shorter than the model's width) is NaN.
        assert_eq!(tree("BRANCH_LEQ", 1).margin(&[], 0), 1.0);
        // NaN in both x and r: they agree, no attribution; NaN against a number: it is a player.
        let t = tree("BRANCH_LEQ", 1);
        assert_eq!(t.tree_shap(&[f64::NAN], &[vec![f64::NAN]], 0), vec![0.0]);
        assert_eq!(t.tree_shap(&[f64::NAN], &[vec![5.0]], 0), vec![-1.0]);
    }

    #[test]
    fn bad_attributes_are_refused() {
        let good = attributes(&[vec![(0, "BRANCH_LEQ", 0, 0.5, 1, 2, 0, 0.0), (1, "LEAF", 0, 0.0, 0, 0, 0, 1.0), (2, "LEAF", 0, 0.0, 0, 0, 0, 2.0)]]);
        assert!(from_onnx_attributes(&good).is_ok());
        let mut a = good.clone();
        a.nodes_modes[0] = "BRANCH_MEMBER".into();
        assert!(from_onnx_attributes(&a).unwrap_err().contains("BRANCH_MEMBER"));
        let mut a = good.clone();
        a.nodes_falsenodeids[0] = 9;
        assert!(from_onnx_attributes(&a).unwrap_err().contains("missing node 9"));
        let mut a = good.clone();
        a.nodes_truenodeids[0] = 0; // a cycle
        assert!(from_onnx_attributes(&a).is_err());
        let mut a = good;
        a.nodes_values.pop();
        assert!(from_onnx_attributes(&a).is_err());
    }

    #[test]
    fn tree_shap_equals_brute_force() {
        for seed in 0..20 {
            let m = 6;
            let t = random_ensemble(m, 4, 5, seed);
            let rows = random_rows(m, 9, seed + 100);
            let (x, background) = (&rows[0], &rows[1..]);
            let phi = t.tree_shap(x, background, 0);
            assert!(max_diff(&phi, &brute_tree(&t, x, background, 0)) < 1e-12, "seed {seed}");
            let gap = t.margin(x, 0) - background.iter().map(|r| t.margin(r, 0)).sum::<f64>() / background.len() as f64;
            assert!((phi.iter().sum::<f64>() - gap).abs() < 1e-12);
        }
    }

    #[test]
    fn kernel_exact_equals_tree_shap_and_is_deterministic() {
        let m = 13;
        let t = random_ensemble(m, 6, 6, 7);
        let rows = random_rows(m, 11, 8);
        let cols = names(m);
        let f = model(t.clone(), &cols, false);
        let (x, background) = (batch(&cols, &rows[..1]), batch(&cols, &rows[1..]));
        let exact = kernel_shap(&f, &x, &background, &cols, 8190, 1).unwrap();
        let want = t.tree_shap(&rows[0], &rows[1..], 0);
        let got: Vec<f64> = exact.values.iter().map(|v| v.1).collect();
        assert!(exact.exact);
        assert!(max_diff(&got, &want) < 1e-9, "{}", max_diff(&got, &want));
        assert!((got.iter().sum::<f64>() - (exact.prediction - exact.base)).abs() < 1e-9);

        // Sampled: efficiency exact, deterministic per seed, near the exact values.
        let a = kernel_shap(&f, &x, &background, &cols, 500, 42).unwrap();
        let b = kernel_shap(&f, &x, &background, &cols, 500, 42).unwrap();
        let c = kernel_shap(&f, &x, &background, &cols, 500, 43).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.values, c.values);
        assert!(!a.exact && a.coalitions <= 501);
        let sampled: Vec<f64> = a.values.iter().map(|v| v.1).collect();
        assert!((sampled.iter().sum::<f64>() - (a.prediction - a.base)).abs() < 1e-9);
        let scale = want.iter().map(|v| v.abs()).fold(0.0, f64::max);
        let err = max_diff(&sampled, &want);
        println!("13 features, 500 samples: max |sampled − exact| = {err:.4} (largest |φ| {scale:.4})");
        assert!(err < 0.25 * scale, "{err} vs {scale}");
        // A larger budget is closer on average.
        let big = kernel_shap(&f, &x, &background, &cols, 4000, 42).unwrap();
        assert!(max_diff(&big.values.iter().map(|v| v.1).collect::<Vec<_>>(), &want) < err.max(1e-3));
    }

    /// Σ (j + 1) · f_j over the columns f0, f1, … of the batch.
    struct Trivial(AtomicUsize);

    impl Model for Trivial {
        fn name(&self) -> &str {
            "trivial"
        }
        fn input_names(&self) -> Vec<String> {
            names(13)
        }
        fn predict(&self, batch: &Batch) -> Result<Vec<f64>, ModelError> {
            self.0.fetch_add(1, Ordering::Relaxed);
            let cols: Vec<&Vec<f64>> = names(batch.columns.len())
                .iter()
                .map(|c| match &batch.columns[c] {
                    Values::Numeric(v) => v,
                    Values::Text(_) => panic!("text"),
                })
                .collect();
            Ok((0..batch.rows).map(|i| cols.iter().enumerate().map(|(j, c)| (j as f64 + 1.0) * c[i]).sum::<f64>()).collect())
        }
    }

    #[test]
    fn kernel_batches_rows_in_one_call() {
        let cols = names(13);
        let rows = random_rows(13, 51, 3).into_iter().map(|r| r.into_iter().map(|v| if v.is_nan() { 1.5 } else { v }).collect()).collect::<Vec<Vec<f64>>>();
        let f = Trivial(AtomicUsize::new(0));
        // The speed is measured by `benches/models.rs`; here only the batching.
        let a = kernel_shap(&f, &batch(&cols, &rows[..1]), &batch(&cols, &rows[1..]), &cols, 500, 0).unwrap();
        assert!(a.predictions <= 25_100 && f.0.load(Ordering::Relaxed) == 1);
        // An additive model is fitted exactly by any coalition sample: φ_j = w_j (x_j − mean r_j).
        for j in 0..13 {
            let mean = rows[1..].iter().map(|r| r[j]).sum::<f64>() / 50.0;
            assert!((a.values[j].1 - (j as f64 + 1.0) * (rows[0][j] - mean)).abs() < 1e-9);
        }
    }

    /// Text and numeric columns, a non-player column, a feature equal in every row.
    struct Mixed;

    impl Model for Mixed {
        fn name(&self) -> &str {
            "mixed"
        }
        fn input_names(&self) -> Vec<String> {
            vec!["city".into(), "n".into(), "other".into(), "flat".into()]
        }
        fn predict(&self, batch: &Batch) -> Result<Vec<f64>, ModelError> {
            let (Values::Text(city), Values::Numeric(n), Values::Numeric(other), Values::Numeric(flat)) =
                (&batch.columns["city"], &batch.columns["n"], &batch.columns["other"], &batch.columns["flat"])
            else {
                panic!()
            };
            Ok((0..batch.rows).map(|i| if city[i] == "paris" { 10.0 } else { 0.0 } * n[i] + other[i] + flat[i]).collect())
        }
    }

    #[test]
    fn kernel_masks_text_and_keeps_other_columns() {
        let example = Batch {
            rows: 1,
            columns: [
                ("city".to_string(), Values::Text(vec!["paris".into()])),
                ("n".to_string(), Values::Numeric(vec![2.0])),
                ("other".to_string(), Values::Numeric(vec![100.0])),
                ("flat".to_string(), Values::Numeric(vec![1.0])),
            ]
            .into(),
        };
        let background = Batch {
            rows: 2,
            columns: [
                ("city".to_string(), Values::Text(vec!["rome".into(), "paris".into()])),
                ("n".to_string(), Values::Numeric(vec![1.0, 1.0])),
                ("other".to_string(), Values::Numeric(vec![0.0, 0.0])),
                ("flat".to_string(), Values::Numeric(vec![1.0, 1.0])),
            ]
            .into(),
        };
        let features: Vec<String> = ["city", "n", "flat"].iter().map(|s| s.to_string()).collect();
        let a = kernel_shap(&Mixed, &example, &background, &features, 100, 0).unwrap();
        // v(S) over (city, n): v(∅) = (0 + 10)/2 + 101 = 106, v{city} = 10 + 101 = 111, v{n} = (0 + 20)/2 + 101 = 111, v{city, n} = 121.
        assert_eq!((a.base, a.prediction), (106.0, 121.0));
        assert_eq!(a.values, vec![("city".to_string(), 7.5), ("n".to_string(), 7.5), ("flat".to_string(), 0.0)]);
        // 1 + 3 × 2 planned rows, 5 distinct: r1 agrees on city, so ({city}, r1) = (∅, r1) and ({n}, r1) is the example.
        assert!(a.exact && a.coalitions == 2 && a.predictions == 5, "{a:?}");
    }

    #[test]
    fn kernel_without_players() {
        // The example equals every background row: nothing to attribute, and every row is the example.
        let cols = names(3);
        let rows = vec![vec![1.0, 2.0, 3.0]; 3];
        let f = Trivial(AtomicUsize::new(0));
        let a = kernel_shap(&f, &batch(&cols, &rows[..1]), &batch(&cols, &rows[1..]), &cols, 0, 0).unwrap();
        assert_eq!((a.base, a.values.iter().map(|v| v.1).collect::<Vec<_>>(), a.predictions, a.coalitions), (a.prediction, vec![0.0; 3], 1, 0));
        // One player: it takes the whole difference.
        let b = batch(&cols, &[vec![1.0, 2.0, 3.0], vec![1.0, 5.0, 3.0]]);
        let a = kernel_shap(&f, &batch(&cols, &rows[..1]), &b, &cols, 0, 0).unwrap();
        assert!(a.exact && a.values[1].1 == a.prediction - a.base && a.values[1].1 == 2.0 * (2.0 - 3.5));
    }

    #[test]
    fn kernel_errors() {
        let cols = names(65);
        let rows = vec![vec![0.0; 65]; 3];
        let f = Trivial(AtomicUsize::new(0));
        let run = |features: &[String], samples: usize, x: &Batch, b: &Batch| kernel_shap(&f, x, b, features, samples, 0);
        let (x, b) = (batch(&cols, &rows[..1]), batch(&cols, &rows[1..]));
        assert!(matches!(run(&cols, 10, &x, &b), Err(ModelError::Run { .. })));
        assert!(matches!(run(&cols[..3], 1_000_001, &x, &b), Err(ModelError::Run { .. })));
        assert!(matches!(run(&cols[..3], 100, &batch(&cols, &rows[..2]), &b), Err(ModelError::Run { .. })));
        assert!(matches!(run(&["nope".to_string()], 100, &x, &b), Err(ModelError::MissingInput { .. })));
        assert!(matches!(run(&[cols[0].clone(), cols[0].clone()], 100, &x, &b), Err(ModelError::Run { .. })));
    }

    fn golden(name: &str) -> Value {
        let path = format!("{}{name}.json", concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/shap/"));
        serde_json::from_str(&std::fs::read_to_string(&path).expect("golden file")).expect("json")
    }

    fn matrix(v: &Value) -> Vec<Vec<f64>> {
        serde_json::from_value(v.clone()).expect("matrix")
    }

    /// The goldens of make_shap_cases.py: TreeSHAP against shap's TreeExplainer (interventional,
    /// raw), KernelSHAP of the margin against the same, KernelSHAP of the score against shap's
    /// KernelExplainer on onnxruntime (full enumeration), sampled KernelSHAP loosely.
    #[test]
    fn matches_shap() {
        // Tolerances relative to the score's size: onnxruntime sums float32 weights (rf_reg
        // predicts hours per week, ~40), scikit-learn's trees hold float64 leaves.
        for (name, tol) in [("adult_gb", 1e-6), ("rf_reg", 4e-5)] {
            let g = golden(name);
            let t = from_onnx_attributes(&serde_json::from_value(g["attributes"].clone()).expect("attributes")).expect("ensemble");
            let cols: Vec<String> = serde_json::from_value(g["columns"].clone()).unwrap();
            let (rows, background) = (matrix(&g["rows"]), matrix(&g["background"]));
            let score = model(t.clone(), &cols, true);
            let margin = model(t.clone(), &cols, false);
            // Our evaluation of the ONNX attributes is onnxruntime's (which sums in float32).
            let ort: Vec<f64> = serde_json::from_value(g["ort_rows"].clone()).unwrap();
            let ours = score.predict(&batch(&cols, &rows)).unwrap();
            assert!(max_diff(&ours, &ort) < 1e-5 * ort.iter().map(|v| v.abs()).fold(1.0, f64::max), "{name}: {}", max_diff(&ours, &ort));

            let target = t.positive_target();
            let mean_margin = background.iter().map(|r| t.margin(r, target)).sum::<f64>() / background.len() as f64;
            let shap_tree = matrix(&g["tree_shap"]["values"]);
            let (mut d_tree, mut d_kernel_margin, mut d_kernel, mut d_sampled, mut d_shap_sampled) = (0f64, 0f64, 0f64, 0f64, 0f64);
            assert!((g["tree_shap"]["expected_value"].as_f64().unwrap() - mean_margin).abs() < tol);
            for (i, x) in rows.iter().enumerate() {
                let phi = t.tree_shap(x, &background, target);
                assert!((phi.iter().sum::<f64>() - (t.margin(x, target) - mean_margin)).abs() < 1e-9);
                d_tree = d_tree.max(max_diff(&phi, &shap_tree[i]));

                let (xb, bb) = (batch(&cols, &rows[i..=i]), batch(&cols, &background));
                let k = kernel_shap(&margin, &xb, &bb, &cols, 1000, 0).unwrap();
                assert!(k.exact && (k.base - mean_margin).abs() < 1e-9);
                d_kernel_margin = d_kernel_margin.max(max_diff(&k.values.iter().map(|v| v.1).collect::<Vec<_>>(), &phi));

                for label in ["kernel_exact", "kernel_500"] {
                    let want = &matrix(&g[label]["values"])[i];
                    let k = kernel_shap(&score, &xb, &bb, &cols, g[label]["nsamples"].as_u64().unwrap() as usize, 0).unwrap();
                    assert!(k.exact && (k.base - g[label]["expected_value"].as_f64().unwrap()).abs() < tol, "{name}: {} vs {}", k.base, g[label]["expected_value"]);
                    d_kernel = d_kernel.max(max_diff(&k.values.iter().map(|v| v.1).collect::<Vec<_>>(), want));
                }
                let exact = &matrix(&g["kernel_exact"]["values"])[i];
                let k = kernel_shap(&score, &xb, &bb, &cols, g["kernel_sampled"]["nsamples"].as_u64().unwrap() as usize, 5).unwrap();
                let sampled: Vec<f64> = k.values.iter().map(|v| v.1).collect();
                assert!(!k.exact && (sampled.iter().sum::<f64>() - (k.prediction - k.base)).abs() < 1e-9);
                d_sampled = d_sampled.max(max_diff(&sampled, exact) / exact.iter().map(|v| v.abs()).fold(1e-12, f64::max));
                d_shap_sampled = d_shap_sampled.max(max_diff(&matrix(&g["kernel_sampled"]["values"])[i], exact) / exact.iter().map(|v| v.abs()).fold(1e-12, f64::max));
            }
            println!(
                "{name}: tree_shap vs shap TreeExplainer {d_tree:.2e}; kernel(margin, exact) vs tree_shap {d_kernel_margin:.2e}; kernel(score, exact) vs shap KernelExplainer {d_kernel:.2e}; sampled relative error ours {d_sampled:.3}, shap's {d_shap_sampled:.3}"
            );
            assert!(d_tree < tol, "{name}: {d_tree}");
            assert!(d_kernel_margin < 1e-9, "{name}: {d_kernel_margin}");
            assert!(d_kernel < tol, "{name}: {d_kernel}");
            assert!(d_sampled < 0.5, "{name}: {d_sampled}");
        }
    }
}
