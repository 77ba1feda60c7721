//! Preparation batch by batch: the cells of a run whose rows are never in memory at once (an
//! external Parquet dataset), folded from one batch of rows at a time.
//!
//! Each batch is sliced by the same code as [`prepare`] (`assign_with`, numeric cuts bucketed by
//! the whole run's buckets from a first pass, see [`EdgePass`]); its rows become (slices, label,
//! score, weight) keys counted in one hash map. At the end the slices are numbered in the order
//! the whole run's assignment gives them, the cells put in canonical order, and [`finish_cells`]
//! does the rest, as for `prepare`: the same cells, multiplicities and order, so every number
//! computed from them is identical by construction. Memory: one batch plus the distinct cells.

use super::*;
use crate::eval::slicing::{Buckets, Cut, ResolvedBuckets, assign_with, key_order, numeric_values};

/// The columns a request reads: label, score, weight, then every sliced column (each once).
pub fn columns_needed(req: &MetricsRequest) -> Result<Vec<String>, RequestError> {
    let mut out = vec![req.label.clone(), req.model.clone()];
    out.extend(req.weight.clone());
    for spec in plan(req)?.specs {
        let cols: Vec<String> = match spec {
            SliceSpec::Overall => vec![],
            SliceSpec::Features(f) => f.into_iter().map(|(c, _)| c).collect(),
            SliceSpec::Filter { column, .. } => vec![column],
            SliceSpec::Where(conds) => conds.iter().map(|c| c.column().to_string()).collect(),
        };
        for c in cols {
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    Ok(out)
}

/// The numeric cuts of a request whose buckets depend on the whole run's values (quantiles, equal
/// widths): what the first pass reads.
pub fn cuts_needing_values(req: &MetricsRequest) -> Result<Vec<(String, Cut)>, RequestError> {
    let mut out: Vec<(String, Cut)> = Vec::new();
    for spec in plan(req)?.specs {
        if let SliceSpec::Features(f) = spec {
            for (c, cut) in f {
                if matches!(cut, Cut::Quantiles(_) | Cut::Width(_)) && !out.iter().any(|(oc, ok)| *oc == c && *ok == cut) {
                    out.push((c, cut));
                }
            }
        }
    }
    Ok(out)
}

/// The first pass: every present value of the columns cut by quantiles or widths, then their
/// buckets, exactly as `prepare` makes them from the whole column. It keeps 8 bytes per row of
/// each such column (an approximate quantile sketch would bound it; a later step).
pub struct EdgePass {
    cuts: Vec<(String, Cut)>,
    values: Vec<Vec<f64>>,
}

impl EdgePass {
    pub fn new(cuts: Vec<(String, Cut)>) -> Self {
        let values = vec![Vec::new(); cuts.len()];
        EdgePass { cuts, values }
    }

    /// The columns the pass reads.
    pub fn columns(&self) -> Vec<String> {
        let mut c: Vec<String> = self.cuts.iter().map(|(c, _)| c.clone()).collect();
        c.dedup();
        c
    }

    pub fn add(&mut self, batch: &DataFrame) -> Result<(), RequestError> {
        for ((column, _), values) in self.cuts.iter().zip(&mut self.values) {
            let col = batch.column(column).map_err(|_| RequestError::Invalid(format!("column '{column}' is not in the dataset")))?;
            values.extend(numeric_values(col, column)?.into_iter().flatten());
        }
        Ok(())
    }

    pub fn finish(self) -> Vec<(String, Cut, Buckets)> {
        self.cuts
            .into_iter()
            .zip(self.values)
            .map(|((c, cut), mut present)| {
                present.sort_by(f64::total_cmp);
                let b = Buckets::of(&cut, &present);
                (c, cut, b)
            })
            .collect()
    }
}

/// A cell's key while folding: every spec's slice (mixed radix, 0 = none, s + 1 = slice s) and the
/// bits of label, score and weight.
type FoldKey = (u128, u64, u64, u64);

/// Cells folded batch by batch (see the module docs).
pub struct CellFold {
    req: MetricsRequest,
    task: Task,
    plan: Plan,
    resolved: Vec<(String, Cut, Buckets)>,
    /// Per spec: the slices met so far, numbered in the order met.
    keys: Vec<Vec<SliceKey>>,
    index: Vec<std::collections::HashMap<SliceKey, u32>>,
    /// Whether each sliced column is numeric (orders its values).
    numeric: std::collections::HashMap<String, bool>,
    cells: std::collections::HashMap<FoldKey, u64, crate::eval::FastHashBuilder>,
    rows: usize,
}

impl CellFold {
    /// An empty fold for `req`; `resolved`: the buckets of [`cuts_needing_values`] from an
    /// [`EdgePass`] over the same rows. Binary and regression runs only (a multiclass run's class
    /// list and per-class terms need the whole label column first).
    pub fn new(req: &MetricsRequest, task: Task, resolved: Vec<(String, Cut, Buckets)>) -> Result<Self, RequestError> {
        if task == Task::Multiclass {
            return Err(RequestError::Invalid("multiclass metrics are not available for an external run yet".into()));
        }
        let plan = plan(req)?;
        // The fold numbers slices in a u128 of one digit per spec.
        let radix = req.max_slices as u128 + 2;
        if plan.specs.iter().try_fold(1u128, |a, _| a.checked_mul(radix)).is_none() {
            return Err(RequestError::Invalid("too many slicings in one request".into()));
        }
        let n = plan.specs.len();
        Ok(CellFold {
            req: req.clone(),
            task,
            plan,
            resolved,
            keys: vec![Vec::new(); n],
            index: vec![Default::default(); n],
            numeric: Default::default(),
            cells: Default::default(),
            rows: 0,
        })
    }

    /// Rows folded so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Folds one batch of rows (the label, score and weight columns as ingest makes them).
    pub fn add(&mut self, batch: &DataFrame) -> Result<(), RequestError> {
        self.add_rows(batch, None)
    }

    /// Folds a batch whose row `i` stands for `counts[i]` identical rows: cells an engine
    /// elsewhere grouped (Spark), each as one row of its values (see [`push_down_columns`]).
    pub fn add_counted(&mut self, batch: &DataFrame, counts: &[u64]) -> Result<(), RequestError> {
        if counts.len() != batch.height() {
            return Err(RequestError::Invalid(format!("{} counts for {} cells", counts.len(), batch.height())));
        }
        self.add_rows(batch, Some(counts))
    }

    fn add_rows(&mut self, batch: &DataFrame, counts: Option<&[u64]>) -> Result<(), RequestError> {
        let n = batch.height();
        let radix = self.req.max_slices as u128 + 2;
        let resolved: &ResolvedBuckets = &self.resolved;
        let mut tuple = vec![0u128; n];
        for (a, (text, spec)) in self.plan.texts.iter().zip(&self.plan.specs).enumerate() {
            if *spec == SliceSpec::Overall {
                for t in tuple.iter_mut() {
                    *t = *t * radix + 1;
                }
                continue;
            }
            if let SliceSpec::Features(f) = spec {
                for (c, _) in f {
                    if let Ok(col) = batch.column(c) {
                        self.numeric.entry(c.clone()).or_insert_with(|| col.dtype().is_primitive_numeric());
                    }
                }
            }
            let asg = assign_with(batch, text, spec, self.req.max_slices, resolved)?;
            let global: Vec<u32> = asg
                .keys
                .into_iter()
                .map(|k| {
                    let next = self.keys[a].len() as u32;
                    *self.index[a].entry(k.clone()).or_insert_with(|| {
                        self.keys[a].push(k);
                        next
                    })
                })
                .collect();
            if self.keys[a].len() > self.req.max_slices {
                return Err(crate::eval::slicing::SpecError::TooMany { spec: text.clone(), count: self.keys[a].len(), limit: self.req.max_slices }.into());
            }
            for (t, s) in tuple.iter_mut().zip(asg.slice_of_row.iter()) {
                *t = *t * radix + s.map_or(0, |s| global[s as usize] as u128 + 1);
            }
        }
        let y = f64_values(batch, &self.req.label)?;
        let p = f64_values(batch, &self.req.model)?;
        let w = weights(batch, self.req.weight.as_deref())?;
        for i in 0..n {
            let m = counts.map_or(1, |c| c[i]);
            if m > 0 {
                *self.cells.entry((tuple[i], y[i].to_bits(), p[i].to_bits(), w[i].to_bits())).or_default() += m;
            }
        }
        self.rows += counts.map_or(n, |c| c.iter().sum::<u64>() as usize);
        Ok(())
    }

    /// The prepared cells of every row folded.
    pub fn finish(self) -> Result<Prepared, RequestError> {
        let CellFold { req, task, plan, resolved, keys, numeric, cells, rows, .. } = self;
        let radix = req.max_slices as u128 + 2;
        let specs = plan.specs.len();
        // Slices in the order the whole run's assignment gives them.
        let mut assignments = Vec::with_capacity(specs);
        let mut remaps = Vec::with_capacity(specs);
        for (spec, keys) in plan.specs.iter().zip(keys) {
            if *spec == SliceSpec::Overall {
                assignments.push(Assignment { keys: vec![vec![]], slice_of_row: SliceIds::default() });
                remaps.push(vec![0u32]);
                continue;
            }
            let order = key_order(spec, &keys, |c| numeric.get(c).copied().unwrap_or(false), &resolved);
            let mut remap = vec![0u32; keys.len()];
            for (new, old) in order.iter().enumerate() {
                remap[*old] = new as u32;
            }
            let mut keys = keys;
            let sorted: Vec<SliceKey> = order.iter().map(|o| std::mem::take(&mut keys[*o])).collect();
            assignments.push(Assignment { keys: sorted, slice_of_row: SliceIds::with_capacity(cells.len()) });
            remaps.push(remap);
        }
        check_slice_count(&assignments, &req)?;
        // The distinct cells, each spec's slice decoded (last spec in the lowest digit).
        let mut flat: Vec<(FoldKey, u32)> = Vec::with_capacity(cells.len());
        for (k, m) in cells {
            let m = u32::try_from(m).map_err(|_| RequestError::Invalid("more than 2^32 identical rows in one cell".into()))?;
            flat.push((k, m));
        }
        for (k, _) in &flat {
            let mut t = k.0;
            let mut digits = vec![0u128; specs];
            for d in digits.iter_mut().rev() {
                *d = t % radix;
                t /= radix;
            }
            for (a, d) in digits.iter().enumerate() {
                if plan.specs[a] != SliceSpec::Overall {
                    let s = (*d != 0).then(|| remaps[a][*d as usize - 1]);
                    assignments[a].slice_of_row.push(s);
                }
            }
        }
        let n = flat.len();
        let (tuple, digits) = slice_tuples(&mut assignments, n);
        // Canonical order (as `chunk_cells` leaves cells): score descending, then slices, label
        // and weight ascending.
        let mut unsorted = Cells::with_capacity(n, false);
        for (i, ((_, y, p, w), m)) in flat.iter().enumerate() {
            unsorted.y.push(f64::from_bits(*y));
            unsorted.p.push(f64::from_bits(*p));
            unsorted.w.push(f64::from_bits(*w));
            unsorted.mult.push(*m);
            unsorted.tuple.push(tuple[i]);
        }
        drop(flat);
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_unstable_by_key(|i| unsorted.key(*i as usize));
        let mut out = Cells::with_capacity(n, false);
        for i in order {
            let i = i as usize;
            out.y.push(unsorted.y[i]);
            out.p.push(unsorted.p[i]);
            out.w.push(unsorted.w[i]);
            out.mult.push(unsorted.mult[i]);
            out.tuple.push(unsorted.tuple[i]);
        }
        drop(unsorted);
        let keys = assignments.into_iter().map(|a| a.keys).collect();
        Ok(finish_cells(plan, keys, out, &digits, vec![], task, rows))
    }
}

/// The prepared cells of rows given as batches, with a first pass for the buckets: what a
/// streaming reader does, over frames in memory (for tests and small callers).
pub fn prepare_batches(batches: &[DataFrame], req: &MetricsRequest, task: Task) -> Result<Prepared, RequestError> {
    let mut pass = EdgePass::new(cuts_needing_values(req)?);
    for b in batches {
        pass.add(b)?;
    }
    let mut fold = CellFold::new(req, task, pass.finish())?;
    for b in batches {
        fold.add(b)?;
    }
    fold.finish()
}

/// How an engine that groups rows elsewhere (Spark) must group one sliced column so that a row
/// per group, through [`CellFold::add_counted`], slices exactly like the rows themselves.
#[derive(Clone, Debug, PartialEq)]
pub struct PushColumn {
    pub column: String,
    /// `None`: by its values (a column sliced by value, in a filter or a condition). `Some`:
    /// only numeric cuts read it, so by bucket between these edges (every cut's edges merged):
    /// bucket `i` = the number of edges ≤ the value, NULL for a missing or NaN value. A bucket
    /// comes back as [`bucket_value`], which every one of those cuts puts in the same bucket as
    /// any value of that merged bucket.
    pub edges: Option<Vec<f64>>,
}

/// The sliced columns of a request (label, score and weight excluded) and how to group each;
/// `resolved`: the buckets of [`cuts_needing_values`].
pub fn push_down_columns(req: &MetricsRequest, resolved: &ResolvedBuckets) -> Result<Vec<PushColumn>, RequestError> {
    let mut order: Vec<String> = Vec::new();
    let mut raw: std::collections::HashSet<String> = Default::default();
    let mut edges: std::collections::HashMap<String, Vec<f64>> = Default::default();
    let note = |c: &str, order: &mut Vec<String>| {
        if !order.iter().any(|o| o == c) {
            order.push(c.to_string());
        }
    };
    for spec in plan(req)?.specs {
        match spec {
            SliceSpec::Overall => {}
            SliceSpec::Features(f) => {
                for (c, cut) in f {
                    note(&c, &mut order);
                    let e: Vec<f64> = match &cut {
                        Cut::Values => {
                            raw.insert(c.clone());
                            continue;
                        }
                        Cut::Edges(e) => e.clone(),
                        Cut::Quantiles(_) | Cut::Width(_) => match resolved.iter().find(|(rc, rk, _)| *rc == c && *rk == cut) {
                            Some((_, _, b)) => b.edges.clone(),
                            None => return Err(RequestError::Invalid(format!("the buckets of '{c}' were not resolved"))),
                        },
                    };
                    edges.entry(c).or_default().extend(e);
                }
            }
            SliceSpec::Filter { column, .. } => {
                note(&column, &mut order);
                raw.insert(column);
            }
            SliceSpec::Where(conds) => {
                for cond in conds {
                    note(cond.column(), &mut order);
                    raw.insert(cond.column().to_string());
                }
            }
        }
    }
    let label_like = |c: &str| c == req.label || c == req.model || req.weight.as_deref() == Some(c);
    Ok(order
        .into_iter()
        .filter(|c| !label_like(c))
        .map(|c| {
            let e = (!raw.contains(&c)).then(|| {
                let mut e = edges.remove(&c).unwrap_or_default();
                e.retain(|x| x.is_finite());
                e.sort_by(f64::total_cmp);
                e.dedup();
                e
            });
            PushColumn { column: c, edges: e }
        })
        .collect())
}

/// A value in bucket `i` between `edges` (see [`PushColumn`]): the bucket's lower edge, or for
/// the first bucket a value below the first edge.
pub fn bucket_value(edges: &[f64], i: usize) -> f64 {
    match (i, edges.first()) {
        (0, Some(e0)) => e0 - e0.abs().max(1.0),
        (0, None) => 0.0,
        (i, _) => edges[(i - 1).min(edges.len() - 1)],
    }
}
