//! Preparation: rows → slices → cells sorted by score (radix sort, score-range blocks compressed
//! in parallel), cached between requests; score-binned cells for the bootstrap of big requests.

use super::*;

/// A request's rows reduced to what the metrics need, built once per (run, model, slicing) and
/// cached between requests: moving the threshold slider or changing the confidence level reuses it.
///
/// Rows with the same score, label, weight and slice in every spec are exchangeable, so they
/// become one *cell* with a multiplicity `m`. A Poisson(1) bootstrap weight per row sums, over the
/// m rows of a cell, to one Poisson(m) draw, so resampling cells is exactly the per-row Poisson
/// bootstrap, at a fraction of the cost when rows repeat (tree-model scores, resampled data) and at
/// the same cost when they do not. Cells are sorted by score, descending, so every pass (threshold
/// counts, exact AUC and average precision with ties closed together) is one sequential walk.
pub struct Prepared {
    pub(super) task: Task,
    /// Spec texts: overall first, the request's, then the baseline filter (if not overall).
    pub(super) texts: Vec<String>,
    pub(super) keys: Vec<Vec<SliceKey>>,
    pub(super) base_index: usize,
    pub(super) baseline_is_overall: bool,
    pub(super) classes: Vec<String>,
    pub(super) y: Vec<f64>,
    pub(super) p: Vec<f64>,
    pub(super) w: Vec<f64>,
    pub(super) mult: Vec<u32>,
    /// Per spec, per cell: the cell's slice.
    pub(super) slice_of_cell: Vec<SliceIds>,
    /// Binary: each cell's log loss (unweighted) and calibration bin.
    pub(super) log_loss: Vec<f64>,
    pub(super) bins: Vec<u8>,
    /// Multiclass with per-class scores: per cell, the true class's log loss and rank.
    pub(super) class_terms: Vec<ClassTerms>,
    /// Per spec, per slice: (rows, Σw, Σw²).
    pub(super) counts: Vec<Vec<(u64, f64, f64)>>,
    pub(super) rows: usize,
    /// What the bootstrap keeps between requests: binned cells and the threshold-free replicates
    /// (see `boot`), so that new thresholds cost only their confusion counts.
    pub(super) boot: BootCache,
    /// What the reader of the results must know of how the cells were made (an external run's
    /// approximate buckets); copied into [`MetricsResult::notes`].
    pub notes: Vec<String>,
    /// `Some(n)` when the scores are buckets of width 1/n (each cell's score its bucket's lower
    /// edge) rather than the rows' scores: the results then carry AUC/AP bounds.
    pub score_grid: Option<u32>,
}

impl Prepared {
    /// Rows of the run.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Distinct (score, label, weight, slices) cells.
    pub fn cells(&self) -> usize {
        self.y.len()
    }

    /// A binary run's scores binned on [0, 1] (`bins` equal bins, as `eval::histogram` bins them)
    /// per label class as Σ weights, and each class's row count: the overview's chart and label
    /// balance from the cells, where an external run's rows are (on a score grid of 1/n the bins
    /// hold whole grid buckets when `bins` divides n). `None` for other tasks.
    pub fn binary_distribution(&self, bins: usize) -> Option<([Vec<f64>; 2], [u64; 2])> {
        if self.task != Task::Binary || bins == 0 {
            return None;
        }
        let (mut h, mut n) = ([vec![0.0; bins], vec![0.0; bins]], [0u64; 2]);
        let width = 1.0 / bins as f64;
        for i in 0..self.y.len() {
            let class = match self.y[i] {
                y if y == 0.0 => 0,
                y if y == 1.0 => 1,
                _ => continue,
            };
            n[class] += u64::from(self.mult[i]);
            if self.p[i].is_finite() {
                h[class][crate::eval::bin_index(self.p[i], 0.0, width, bins)] += self.w[i] * f64::from(self.mult[i]);
            }
        }
        Some((h, n))
    }

    /// A regression run's (prediction, label, weight, rows) per cell: what the overview's chart
    /// and label histogram need (`eval::regression_distribution`, `eval::label_histogram`), from
    /// the cells where an external run's rows are. `None` for other tasks.
    pub fn regression_points(&self) -> Option<Vec<(f64, f64, f64, u64)>> {
        (self.task == Task::Regression).then(|| (0..self.y.len()).map(|i| (self.p[i], self.y[i], self.w[i], u64::from(self.mult[i]))).collect())
    }

    /// The slices of the request's first slicing (the overall slice when it named none) and, per
    /// slice, its cells' (label, score, rows).
    pub fn slice_cells(&self) -> (&[SliceKey], Vec<Vec<(f64, f64, u64)>>) {
        let spec = if self.texts.len() > 1 && (self.baseline_is_overall || self.texts.len() > 2) { 1 } else { 0 };
        let keys = &self.keys[spec];
        let mut groups = vec![Vec::new(); keys.len()];
        for i in 0..self.y.len() {
            if let Some(k) = self.slice_of_cell[spec].get(i) {
                groups[k as usize].push((self.y[i], self.p[i], u64::from(self.mult[i])));
            }
        }
        (keys, groups)
    }

    /// Approximate heap size, for the cache's byte budget.
    pub fn bytes(&self) -> usize {
        let per_cell = 3 * 8 + 4 + if self.log_loss.is_empty() { 0 } else { 9 } + if self.class_terms.is_empty() { 0 } else { 16 } + self.slice_of_cell.len() * 4;
        let keys: usize = self.keys.iter().flatten().flatten().map(|(a, b)| a.len() + b.len() + 48).sum();
        // Plus what the bootstrap keeps (see `boot`), for the default 200 replicates: binned cells
        // (about the budget) and each cell's combination, or the exact cells' Poisson draws; and
        // the threshold-free replicates.
        let boot = match self.task {
            Task::Binary if self.cells() > BOOTSTRAP_CELL_BUDGET => 2 * BOOTSTRAP_CELL_BUDGET * per_cell + self.cells() * 4,
            Task::Binary => (self.cells() * 200).min(KEPT_DRAWS) * 4,
            _ => 0,
        };
        let slices: usize = self.keys.iter().map(|k| k.len()).sum();
        let scalars = if self.task == Task::Binary { (200 * slices * 16 * 8).min(KEPT_SCALAR_BYTES) } else { 0 };
        self.cells() * per_cell + keys + boot + scalars + 1024
    }
}

/// Most cells a binary request's bootstrap replicates walk over; beyond it they walk binned cells
/// (see [`Prepared::binned`]).
pub const BOOTSTRAP_CELL_BUDGET: usize = 1 << 15;

impl Prepared {
    /// Cells for the threshold-free part of a binary request's bootstrap when there are more than
    /// `budget` (see `boot`): the cells grouped by (slice in every spec, label, calibration bin,
    /// score bin), the score bins being equal-count quantiles of the run's scores, as many as keep
    /// the groups near `budget` (at least 256, at most 10,000; TFMA bins scores into 10,000
    /// buckets for AUC). A group of m rows of total weight W becomes one cell of multiplicity m,
    /// weight W/m, the mean score and the mean loss terms.
    ///
    /// The base rate stays exact, so its replicates have exactly the per-row Poisson bootstrap's
    /// distribution when the rows are unweighted (with weights, a group's rows are taken to weigh
    /// the same, W/m). Sums of per-row terms (log loss, Brier score, mean score, calibration) keep
    /// their point value but lose the spread within a group, which is small in a narrow score bin
    /// of one label. AUC and average precision order rows of one score bin by their groups' mean
    /// scores, so their replicates are shifted by (exact value − binned value). The confusion
    /// counts at thresholds are not drawn from these cells (see `boot`). `tuples` are the cells'
    /// [`Prepared::cell_tuples`]; used when the exact cells exceed the budget (see
    /// `Prepared::boot_cells`).
    pub(super) fn binned(&self, tuples: &[u128], budget: usize) -> Prepared {
        let n = self.cells();
        let specs = self.slice_of_cell.len();
        // Distinct (slices, label) combinations set the number of score bins (counted on an
        // evenly spaced sample: it only sizes the bins).
        let mut combos: Vec<u128> = tuples.iter().step_by((n / 65_536).max(1)).copied().collect();
        combos.sort_unstable();
        combos.dedup();
        let bins = (budget / combos.len().max(1)).clamp(256, 10_000) as u64;
        let total: u64 = self.mult.iter().map(|m| *m as u64).sum();
        #[derive(Default)]
        struct Group { m: u64, w: f64, wp: f64, wll: f64, y: f64, bin: u8, slices: Vec<Option<u32>> }
        let mut groups: Vec<Group> = Vec::new();
        let mut open: std::collections::HashMap<(u128, u8), usize, crate::eval::FastHashBuilder> = Default::default();
        let (mut seen, mut current_bin) = (0u64, u64::MAX);
        for i in 0..n {
            let score_bin = (seen * bins / total.max(1)).min(bins - 1);
            seen += self.mult[i] as u64;
            if score_bin != current_bin {
                open.clear();
                current_bin = score_bin;
            }
            let key = (tuples[i], self.bins[i]);
            let g = *open.entry(key).or_insert_with(|| {
                groups.push(Group { y: self.y[i], bin: self.bins[i], slices: (0..specs).map(|a| self.slice_of_cell[a].get(i)).collect(), ..Default::default() });
                groups.len() - 1
            });
            let (m, w) = (self.mult[i] as u64, self.w[i] * self.mult[i] as f64);
            let g = &mut groups[g];
            g.m += m;
            g.w += w;
            g.wp += w * self.p[i];
            g.wll += w * self.log_loss[i];
        }
        // Back into score order (descending), as every pass expects.
        let mean_p = |g: &Group| if g.w > 0.0 { g.wp / g.w } else { 0.0 };
        groups.sort_by(|a, b| mean_p(b).total_cmp(&mean_p(a)));
        let mut out = Prepared {
            task: self.task,
            texts: self.texts.clone(),
            keys: self.keys.clone(),
            base_index: self.base_index,
            baseline_is_overall: self.baseline_is_overall,
            classes: vec![],
            y: Vec::with_capacity(groups.len()),
            p: Vec::with_capacity(groups.len()),
            w: Vec::with_capacity(groups.len()),
            mult: Vec::with_capacity(groups.len()),
            slice_of_cell: vec![SliceIds::with_capacity(groups.len()); specs],
            log_loss: Vec::with_capacity(groups.len()),
            bins: Vec::with_capacity(groups.len()),
            class_terms: vec![],
            counts: self.counts.clone(),
            rows: self.rows,
            boot: Default::default(),
            notes: self.notes.clone(),
            score_grid: self.score_grid,
        };
        for g in &groups {
            let safe = |x: f64| if g.w > 0.0 { x / g.w } else { 0.0 };
            out.y.push(g.y);
            out.p.push(mean_p(g));
            out.w.push(g.w / g.m.max(1) as f64);
            out.mult.push(g.m.min(u32::MAX as u64) as u32);
            for (a, s) in g.slices.iter().enumerate() {
                out.slice_of_cell[a].push(*s);
            }
            out.log_loss.push(safe(g.wll));
            out.bins.push(g.bin);
        }
        out
    }
}

/// The slicings of a request in the order the prepared cells keep them: overall first, the
/// request's specs, then the baseline filter (when it is not overall).
pub(super) struct Plan {
    pub(super) texts: Vec<String>,
    pub(super) specs: Vec<SliceSpec>,
    pub(super) base_index: usize,
    pub(super) baseline_is_overall: bool,
}

/// Parses the request's slicings and checks its baseline.
pub(super) fn plan(req: &MetricsRequest) -> Result<Plan, RequestError> {
    let mut texts: Vec<String> = vec!["overall".into()];
    texts.extend(req.specs.iter().filter(|s| s.trim() != "overall").cloned());
    let baseline_is_overall = req.baseline.trim().is_empty() || req.baseline == "overall";
    let base_spec = SliceSpec::parse(&req.baseline)?;
    if !baseline_is_overall && !matches!(base_spec, SliceSpec::Filter { .. } | SliceSpec::Where(_)) {
        return Err(RequestError::Invalid(format!("baseline '{}' must be 'overall' or a filter such as sex=Female or sex=Female & age in [25, 45)", req.baseline)));
    }
    let mut specs = texts.iter().map(|t| SliceSpec::parse(t)).collect::<Result<Vec<_>, _>>()?;
    let base_index = if baseline_is_overall {
        0
    } else {
        texts.push(req.baseline.clone());
        specs.push(base_spec);
        texts.len() - 1
    };
    Ok(Plan { texts, specs, base_index, baseline_is_overall })
}

/// Refuses a request whose slicings make more slices than it allows.
pub(super) fn check_slice_count(assignments: &[Assignment], req: &MetricsRequest) -> Result<(), RequestError> {
    let total_slices: usize = assignments.iter().map(|a| a.keys.len()).sum();
    if total_slices > req.max_slices {
        return Err(RequestError::Invalid(format!("the request makes {total_slices} slices, more than the limit of {}", req.max_slices)));
    }
    Ok(())
}

/// Slices the run and compresses its rows into sorted cells (see [`Prepared`]).
pub fn prepare(df: &DataFrame, req: &MetricsRequest, task: Task) -> Result<Prepared, RequestError> {
    let plan = plan(req)?;
    let mut assignments = Vec::with_capacity(plan.texts.len());
    for (t, spec) in plan.texts.iter().zip(&plan.specs) {
        // The overall slice holds every row: no per-row list (see `TupleDigit`).
        assignments.push(if *spec == SliceSpec::Overall { Assignment { keys: vec![vec![]], slice_of_row: SliceIds::default() } } else { assign(df, t, spec, req.max_slices)? });
    }
    check_slice_count(&assignments, req)?;
    // Multiclass: labels and predicted classes become class codes (as f64) over the classes of
    // the whole run, so every slice reports the same keys.
    let (y, p, classes) = if task == Task::Multiclass {
        let (y, p, classes) = class_codes(df, &req.label, &req.model, &req.class_scores)?;
        (Floats::Copied(y), Floats::Copied(p), classes)
    } else {
        (Floats::of(df, &req.label)?, Floats::of(df, &req.model)?, vec![])
    };
    if classes.len() > 100 {
        return Err(RequestError::Invalid(format!("{} classes: multiclass metrics support at most 100", classes.len())));
    }
    // No weight column: no array of ones (`RowData::w` empty).
    let w = match req.weight.as_deref() {
        Some(column) => Floats::of(df, column)?,
        None => Floats::Copied(vec![]),
    };
    let n = y.values().len();
    let row_class_terms = if task == Task::Multiclass && !req.class_scores.is_empty() { class_terms(df, &req.class_scores, &classes, y.values())? } else { vec![] };
    // Cells: rows in chunks (in parallel), each chunk's cells sorted, then the chunks' cells merged.
    let (cells, digits) = if n <= ONE_BLOCK_ROWS {
        // One block: no need to copy the rows out.
        let (tuple, digits) = slice_tuples(&mut assignments, n);
        let rows = RowData { y: y.values(), p: p.values(), w: w.values(), tuple: &tuple, class_terms: &row_class_terms };
        (chunk_cells(&rows, 0..n), digits)
    } else {
        // The row blocks compute each row's tuple from the slice ids as they copy it, when the
        // tuple needs no renumbering (no array of tuples is written first).
        let (parts, digits, tuple) = match tuple_parts(&assignments) {
            Some((parts, digits)) => (Some(parts), digits, vec![]),
            None => {
                let (tuple, digits) = slice_tuples(&mut assignments, n);
                (None, digits, tuple)
            }
        };
        let rows = RowData { y: y.values(), p: p.values(), w: w.values(), tuple: &tuple, class_terms: &row_class_terms };
        let blocks = partition_rows(&rows, PREPARE_BLOCK_ROWS, parts.as_deref());
        // The per-row arrays are done with (the blocks hold copies): free them.
        drop((rows, parts));
        drop((y, p, w, tuple, row_class_terms));
        for a in &mut assignments {
            a.slice_of_row = SliceIds::default();
        }
        (cells_of_blocks(blocks), digits)
    };
    Ok(finish_cells(plan, assignments.into_iter().map(|a| a.keys).collect(), cells, &digits, classes, task, n))
}

/// A float column's values: the frame's own array when it is one chunk of `Float64` without
/// missing values (a 10M-row run's score and label are then not copied: 80 MB each; chunks are
/// joined by one copy), else a copy with missing values as NaN (as [`f64_values`]).
pub(super) enum Floats {
    Frame(Float64Chunked),
    Copied(Vec<f64>),
}

impl Floats {
    pub(super) fn of(df: &DataFrame, name: &str) -> Result<Floats, EvalError> {
        let column = df.column(name).map_err(|_| EvalError::NoColumn(name.to_string()))?;
        if column.dtype().is_integer() && column.null_count() == 0 {
            // An integer label (0/1 as read from a file): converted on every core.
            let mut ints = column.cast(&DataType::Int64)?.i64()?.clone();
            ints.rechunk_mut();
            if let Ok(ints) = ints.cont_slice() {
                let mut out = vec![0.0; ints.len()];
                crate::eval::par_parts(&mut out, |from, part| {
                    for (o, v) in part.iter_mut().zip(&ints[from..]) {
                        *o = *v as f64;
                    }
                });
                return Ok(Floats::Copied(out));
            }
        }
        let mut values = column.cast(&DataType::Float64)?.f64()?.clone();
        if values.null_count() == 0 {
            values.rechunk_mut();
            if values.cont_slice().is_ok() {
                return Ok(Floats::Frame(values));
            }
        }
        Ok(Floats::Copied(values.iter().map(|v| v.unwrap_or(f64::NAN)).collect()))
    }

    pub(super) fn values(&self) -> &[f64] {
        match self {
            Floats::Frame(values) => values.cont_slice().expect("one chunk without missing values (checked in `of`)"),
            Floats::Copied(values) => values,
        }
    }
}

/// One number per row (or cell) for its slices in every spec (mixed radix; densified if it would
/// overflow), and how each spec enters it. Cells keep only this number; their slices are decoded
/// from it at the end. Empties each assignment's per-row list.
pub(super) fn slice_tuples(assignments: &mut [Assignment], n: usize) -> (Vec<u64>, Vec<TupleDigit>) {
    let mut tuple = vec![0u64; n];
    let mut space: u64 = 1;
    let mut digits = Vec::with_capacity(assignments.len());
    for a in assignments.iter_mut() {
        if a.keys.len() == 1 && a.slice_of_row.covers_all() {
            digits.push(TupleDigit::One); // every row in the one slice: nothing to tell rows apart
            continue;
        }
        let r = a.keys.len() as u64 + 1;
        let mut dense_before = None;
        if space.checked_mul(r).is_none() {
            let mut dense: std::collections::HashMap<u64, u64, crate::eval::FastHashBuilder> = Default::default();
            let mut before = Vec::new();
            for t in tuple.iter_mut() {
                let (old, next) = (*t, dense.len() as u64);
                *t = *dense.entry(old).or_insert_with(|| {
                    before.push(old);
                    next
                });
            }
            space = dense.len() as u64;
            dense_before = Some(before);
        }
        // The first digit is written without reading the tuple: a page of the zeroed array read
        // first maps the kernel's shared zero page, and the write after it then copies the page
        // and flushes the other cores' TLBs (a seventh of `prepare`'s time at 10M rows).
        let first = space == 1;
        let slices = &a.slice_of_row.0;
        crate::eval::par_parts(&mut tuple, |from, part| {
            for (t, s) in part.iter_mut().zip(&slices[from..]) {
                // 0 for no slice (the sentinel wraps to 0), s + 1 for slice s.
                let digit = s.wrapping_add(1) as u64;
                *t = if first { digit } else { *t * r + digit };
            }
        });
        space *= r;
        digits.push(TupleDigit::Digit { radix: r, dense_before });
        a.slice_of_row = SliceIds::default(); // in the tuple now
    }
    (tuple, digits)
}

/// A spec's slice ids and the place value of its digit in the row's tuple: the tuple of row i is
/// Σ (slice + 1, 0 for none) × place over the specs (see [`slice_tuples`]).
pub(super) type TuplePart<'a> = (&'a [u32], u64);

/// The tuple of row `i` from its specs' parts.
#[inline]
pub(super) fn tuple_of(parts: &[TuplePart], i: usize) -> u64 {
    parts.iter().fold(0, |t, (slices, place)| t + slices[i].wrapping_add(1) as u64 * place)
}

/// [`slice_tuples`] without the array: each spec's slice ids with its digit's place value (the
/// same tuples, the same digits), or `None` when the tuples would need renumbering (the product
/// of the radices overflows 64 bits).
pub(super) fn tuple_parts(assignments: &[Assignment]) -> Option<(Vec<TuplePart<'_>>, Vec<TupleDigit>)> {
    let mut digits = Vec::with_capacity(assignments.len());
    let mut radices = Vec::new();
    for a in assignments {
        if a.keys.len() == 1 && a.slice_of_row.covers_all() {
            digits.push(TupleDigit::One);
        } else {
            let r = a.keys.len() as u64 + 1;
            digits.push(TupleDigit::Digit { radix: r, dense_before: None });
            radices.push((&a.slice_of_row.0[..], r));
        }
    }
    // The first spec's digit is the most significant: its place is the product of the later radices.
    let mut parts = Vec::with_capacity(radices.len());
    let mut place: u64 = 1;
    for (slices, r) in radices.into_iter().rev() {
        parts.push((slices, place));
        place = place.checked_mul(r)?;
    }
    parts.reverse();
    Some((parts, digits))
}

/// The prepared cells from cells in canonical order (see [`Cells`]): slices decoded, per-slice
/// counts, binary loss terms and calibration bins. Shared by [`prepare`] and the streaming fold.
pub(super) fn finish_cells(plan: Plan, keys: Vec<Vec<SliceKey>>, cells: Cells, digits: &[TupleDigit], classes: Vec<String>, task: Task, rows: usize) -> Prepared {
    let Cells { y: cy, p: cp, w: cw, mult, tuple: cell_tuple, class_terms: cell_class_terms } = cells;
    let slice_of_cell = decode_slices(&cell_tuple, digits);
    drop(cell_tuple);
    // Per spec, per slice: (rows, Σw, Σw²), the specs on every core.
    let count = |(sc, k): (&SliceIds, &Vec<SliceKey>)| {
        let mut c = vec![(0u64, 0.0, 0.0); k.len()];
        for (i, s) in sc.iter().enumerate() {
            if let Some(s) = s {
                let (m, wi) = (mult[i] as f64, cw[i]);
                let e = &mut c[s as usize];
                e.0 += mult[i] as u64;
                e.1 += wi * m;
                e.2 += wi * wi * m;
            }
        }
        c
    };
    let counts = if cy.len() < 1 << 16 {
        slice_of_cell.iter().zip(&keys).map(count).collect()
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = slice_of_cell.iter().zip(&keys).map(|spec| scope.spawn(move || count(spec))).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
        })
    };
    let log_loss = if task == Task::Binary { par_map(&cy, &cp, row_log_loss) } else { vec![] };
    let bins = if task == Task::Binary { par_map(&cy, &cp, |_, p| calibration_bin(p)) } else { vec![] };
    Prepared {
        task,
        texts: plan.texts,
        keys,
        base_index: plan.base_index,
        baseline_is_overall: plan.baseline_is_overall,
        classes,
        y: cy,
        p: cp,
        w: cw,
        mult,
        slice_of_cell,
        log_loss,
        bins,
        class_terms: cell_class_terms,
        counts,
        rows,
        boot: Default::default(),
        notes: vec![],
        score_grid: None,
    }
}

/// `f(a[i], b[i])` for every i, on every core (cells can number in the millions).
fn par_map<T: Copy + Default + Send>(a: &[f64], b: &[f64], f: impl Fn(f64, f64) -> T + Sync) -> Vec<T> {
    let n = a.len().min(b.len());
    let mut out = vec![T::default(); n];
    crate::eval::par_parts(&mut out, |from, part| {
        for (i, o) in part.iter_mut().enumerate() {
            *o = f(a[from + i], b[from + i]);
        }
    });
    out
}

/// Rows per block of `prepare` (see [`partition_rows`]): a block's arrays (score, label, tuple and
/// the sort's keys and positions, ~3 MiB) stay in a core's 2 MiB L2 cache and the shared L3 while
/// its rows are sorted and compressed; blocks run in parallel. Measured at 10M rows (`prepare`
/// bench, distinct scores, fastest of three): 2^15 rows 0.70 s, 2^16 0.71–0.73 s, 2^17 0.79 s, 2^18 0.74–0.82 s.
pub(super) const PREPARE_BLOCK_ROWS: usize = 1 << 16;

/// Runs of at most this many rows are compressed in place as one block (copying rows into blocks
/// costs more than it saves below it: the block histogram alone is 4 MiB).
pub(super) const ONE_BLOCK_ROWS: usize = 1 << 18;

/// The per-row inputs of the cells.
pub(super) struct RowData<'a> {
    pub(super) y: &'a [f64],
    pub(super) p: &'a [f64],
    /// Empty when every row weighs 1 (no weight column).
    pub(super) w: &'a [f64],
    /// The row's slice in every spec as one number.
    pub(super) tuple: &'a [u64],
    /// Multiclass with per-class scores, else empty.
    pub(super) class_terms: &'a [ClassTerms],
}

/// How a spec's slice enters the row's tuple (see `prepare`), to decode it from a cell's.
pub(super) enum TupleDigit {
    /// One slice holding every row: not in the tuple.
    One,
    /// A digit of base `radix` (0 = in no slice, s + 1 = slice s); `dense_before`: the tuple had
    /// been renumbered densely first (the old number of each new one), when it would overflow.
    Digit { radix: u64, dense_before: Option<Vec<u64>> },
}

/// Each cell's slice in every spec, from its tuple: the digits read back, last spec first (on
/// every core, a range of cells each).
pub(super) fn decode_slices(tuples: &[u64], digits: &[TupleDigit]) -> Vec<SliceIds> {
    let mut out: Vec<SliceIds> = (0..digits.len()).map(|_| SliceIds(vec![0; tuples.len()])).collect();
    let step = crate::eval::core_step(tuples.len());
    let mut columns: Vec<_> = out.iter_mut().map(|s| s.0.chunks_mut(step)).collect();
    std::thread::scope(|scope| {
        for part in tuples.chunks(step) {
            let mut outs: Vec<&mut [u32]> = columns.iter_mut().map(|c| c.next().unwrap_or_default()).collect();
            scope.spawn(move || {
                for (i, &t) in part.iter().enumerate() {
                    let mut t = t;
                    for (a, d) in digits.iter().enumerate().rev() {
                        if let TupleDigit::Digit { radix, dense_before } = d {
                            let s = t % radix;
                            t /= radix;
                            outs[a][i] = if s == 0 { SliceIds::NONE } else { s as u32 - 1 };
                            if let Some(before) = dense_before {
                                t = before.get(t as usize).copied().unwrap_or(0);
                            }
                        }
                    }
                }
            });
        }
    });
    out
}

/// Cells in canonical order: score descending, then (slices, label, weight, class terms)
/// ascending; equal rows are one cell with their count.
#[derive(Default)]
pub(super) struct Cells {
    pub(super) y: Vec<f64>,
    pub(super) p: Vec<f64>,
    pub(super) w: Vec<f64>,
    pub(super) mult: Vec<u32>,
    pub(super) tuple: Vec<u64>,
    pub(super) class_terms: Vec<ClassTerms>,
}

impl Cells {
    /// Room for `n` cells (growing by doubling would leave up to half of each array unused).
    pub(super) fn with_capacity(n: usize, class_terms: bool) -> Self {
        Cells {
            y: Vec::with_capacity(n),
            p: Vec::with_capacity(n),
            w: Vec::with_capacity(n),
            mult: Vec::with_capacity(n),
            tuple: Vec::with_capacity(n),
            class_terms: Vec::with_capacity(if class_terms { n } else { 0 }),
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.y.len()
    }

    /// Room for one cell per row of `rows` rows, zeroed: large arrays come from the kernel as
    /// untouched pages, so only the pages cells are written to cost anything.
    fn zeroed(rows: usize, class_terms: bool) -> Self {
        Cells {
            y: vec![0.0; rows],
            p: vec![0.0; rows],
            w: vec![0.0; rows],
            mult: vec![0; rows],
            tuple: vec![0; rows],
            class_terms: if class_terms { vec![ClassTerms::default(); rows] } else { vec![] },
        }
    }

    /// The arrays cut into consecutive parts of `sizes` cells, one [`CellSlots`] each.
    fn slots(&mut self, sizes: &[usize]) -> Vec<CellSlots<'_>> {
        fn cut<'a, T>(mut rest: &'a mut [T], sizes: &[usize]) -> Vec<&'a mut [T]> {
            sizes
                .iter()
                .map(|&s| {
                    let take = s.min(rest.len());
                    let (part, after) = std::mem::take(&mut rest).split_at_mut(take);
                    rest = after;
                    part
                })
                .collect()
        }
        let (y, p, w) = (cut(&mut self.y, sizes), cut(&mut self.p, sizes), cut(&mut self.w, sizes));
        let (mult, tuple, class_terms) = (cut(&mut self.mult, sizes), cut(&mut self.tuple, sizes), cut(&mut self.class_terms, sizes));
        y.into_iter()
            .zip(p)
            .zip(w)
            .zip(mult)
            .zip(tuple)
            .zip(class_terms)
            .map(|(((((y, p), w), mult), tuple), class_terms)| CellSlots { y, p, w, mult, tuple, class_terms })
            .collect()
    }

    /// Keeps the first `written[k]` cells of each part of `sizes` cells (see [`Cells::slots`]),
    /// moved together in order; frees the rest.
    fn compact(&mut self, sizes: &[usize], written: &[usize]) {
        fn keep<T: Copy>(v: &mut Vec<T>, sizes: &[usize], written: &[usize]) {
            if v.is_empty() {
                return;
            }
            let (mut from, mut to) = (0, 0);
            for (size, count) in sizes.iter().zip(written) {
                if from != to {
                    v.copy_within(from..from + count, to);
                }
                (from, to) = (from + size, to + count);
            }
            v.truncate(to);
            v.shrink_to_fit();
        }
        keep(&mut self.y, sizes, written);
        keep(&mut self.p, sizes, written);
        keep(&mut self.w, sizes, written);
        keep(&mut self.mult, sizes, written);
        keep(&mut self.tuple, sizes, written);
        keep(&mut self.class_terms, sizes, written);
    }
}

/// Where [`write_cells`] puts one range's cells: room for one cell per row of the range (a part
/// of the final arrays, see [`Cells::slots`]); `class_terms` empty unless the rows have them.
pub(super) struct CellSlots<'a> {
    y: &'a mut [f64],
    p: &'a mut [f64],
    w: &'a mut [f64],
    mult: &'a mut [u32],
    tuple: &'a mut [u64],
    class_terms: &'a mut [ClassTerms],
}

/// The cells of all rows (the result does not depend on `block` or on the threads).
#[cfg(test)]
pub(super) fn build_cells(rows: &RowData, block: usize) -> Cells {
    cells_of_blocks(partition_rows(rows, block, None))
}

/// Rows of one score range, copied out of the run's arrays so that sorting and compressing them
/// touches only memory of their own (at 10M rows the run's arrays are far larger than the caches,
/// and visiting their rows in score order would miss the cache on every row).
pub(super) struct RowBlock {
    pub(super) y: Vec<f64>,
    pub(super) p: Vec<f64>,
    pub(super) w: Vec<f64>,
    pub(super) tuple: Vec<u64>,
    pub(super) class_terms: Vec<ClassTerms>,
}

impl RowBlock {
    pub(super) fn rows(&self) -> RowData<'_> {
        RowData { y: &self.y, p: &self.p, w: &self.w, tuple: &self.tuple, class_terms: &self.class_terms }
    }
}

/// Splits the rows into blocks of consecutive score ranges, highest scores first, of about
/// `target` rows each (by the top 20 bits of the sort key: one pass to count, one to copy; equal
/// scores always share a block, and a block holds more than `target` rows only when one score
/// range does). With `parts`, each row's tuple is computed from them (see [`tuple_of`]) instead
/// of read from `rows.tuple`.
pub(super) fn partition_rows(rows: &RowData, target: usize, parts: Option<&[TuplePart]>) -> Vec<RowBlock> {
    const BITS: u32 = 20;
    let n = rows.y.len();
    let prefix = |x: f64| (descending_key(x) >> (64 - BITS)) as usize;
    // Both row passes (count the prefixes, then each row's block) on every core, a range each.
    let mut hist = vec![0u32; 1 << BITS];
    let histograms = crate::eval::par_ranges(n, |range| {
        let mut h = vec![0u32; 1 << BITS];
        for x in &rows.p[range] {
            h[prefix(*x)] += 1;
        }
        h
    });
    for part in histograms {
        for (total, c) in hist.iter_mut().zip(part) {
            *total += c;
        }
    }
    let mut block_of = vec![0u32; 1 << BITS];
    let mut sizes = vec![0usize];
    for (pfx, &c) in hist.iter().enumerate() {
        let last = sizes.len() - 1;
        if sizes[last] > 0 && sizes[last] + c as usize > target {
            sizes.push(0);
        }
        let last = sizes.len() - 1;
        block_of[pfx] = last as u32;
        sizes[last] += c as usize;
    }
    let mut block = vec![0u32; n];
    crate::eval::par_parts(&mut block, |from, part| {
        for (b, x) in part.iter_mut().zip(&rows.p[from..]) {
            *b = block_of[prefix(*x)];
        }
    });
    // One array at a time, so each pass writes to one stream per block (a pass writing every array
    // at once would keep more streams open than the write buffers hold).
    fn scatter<T: Copy>(block: &[u32], from: &[T], sizes: &[usize]) -> Vec<Vec<T>> {
        let mut out: Vec<Vec<T>> = sizes.iter().map(|&s| Vec::with_capacity(if from.is_empty() { 0 } else { s })).collect();
        for (b, v) in block.iter().zip(from) {
            out[*b as usize].push(*v);
        }
        out
    }
    let block = &block;
    let sizes = &sizes;
    // A thread per array (score, tuple; label with the weights and class terms, which are often
    // empty), the cores sharing them out.
    let (ys, ps, ws, tuples, terms) = std::thread::scope(|scope| {
        let ps = scope.spawn(move || scatter(block, rows.p, sizes));
        let tuples = scope.spawn(move || match parts {
            Some(parts) => {
                let mut out: Vec<Vec<u64>> = sizes.iter().map(|&s| Vec::with_capacity(s)).collect();
                for (i, b) in block.iter().enumerate() {
                    out[*b as usize].push(tuple_of(parts, i));
                }
                out
            }
            None => scatter(block, rows.tuple, sizes),
        });
        let (ys, ws, terms) = (scatter(block, rows.y, sizes), scatter(block, rows.w, sizes), scatter(block, rows.class_terms, sizes));
        let ps = ps.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        (ys, ps, ws, tuples.join().unwrap_or_else(|e| std::panic::resume_unwind(e)), terms)
    });
    let mut terms = terms.into_iter();
    ys.into_iter()
        .zip(ps)
        .zip(ws)
        .zip(tuples)
        .map(|(((y, p), w), tuple)| RowBlock { y, p, w, tuple, class_terms: terms.next().unwrap_or_default() })
        .collect()
}

/// The cells of all blocks: each block compressed on its own (in parallel) straight into its part
/// of the final arrays (a block makes at most one cell per row), the parts then moved together,
/// since blocks are disjoint score ranges in score order.
pub(super) fn cells_of_blocks(blocks: Vec<RowBlock>) -> Cells {
    let threads = std::thread::available_parallelism().map(|t| t.get()).unwrap_or(1).clamp(1, 8).min(blocks.len().max(1));
    let sizes: Vec<usize> = blocks.iter().map(|b| b.y.len()).collect();
    let mut out = Cells::zeroed(sizes.iter().sum(), blocks.iter().any(|b| !b.class_terms.is_empty()));
    // Threads take the next block as they finish one (blocks differ in size); each block is freed
    // as soon as its cells are written.
    let queue: Vec<std::sync::Mutex<Option<(RowBlock, CellSlots)>>> = blocks.into_iter().zip(out.slots(&sizes)).map(|b| std::sync::Mutex::new(Some(b))).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut written = vec![0; sizes.len()];
    let parts: Vec<(usize, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (queue, next) = (&queue, &next);
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(slot) = queue.get(i) else { break };
                        let Some((block, slots)) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() else { continue };
                        mine.push((i, write_cells(&block.rows(), 0..block.y.len(), slots)));
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    });
    drop(queue);
    for (i, count) in parts {
        written[i] = count;
    }
    out.compact(&sizes, &written);
    out
}

impl Cells {
    /// A cell's place in the canonical order as integers: (score descending, slices, label,
    /// weight, class-term rank, log loss), floats mapped so that integer order is `total_cmp`'s.
    pub(super) fn key(&self, i: usize) -> (u64, u64, u64, u64, u16, u64) {
        let ascending = |x: f64| !descending_key(x);
        let ct = self.class_terms.get(i).copied().unwrap_or_default();
        (descending_key(self.p[i]), self.tuple[i], ascending(self.y[i]), ascending(self.w[i]), ct.rank, ascending(ct.log_loss))
    }
}

/// The cells of rows `range` (see [`write_cells`]).
pub(super) fn chunk_cells(rows: &RowData, range: std::ops::Range<usize>) -> Cells {
    let len = range.len();
    let mut out = Cells::zeroed(len, !rows.class_terms.is_empty());
    let written = out.slots(&[len]).pop().map_or(0, |slots| write_cells(rows, range, slots));
    out.compact(&[len], &[written]);
    out
}

/// Writes the cells of rows `range` into `out`, returns how many: sorted by score (a radix sort:
/// linear in the rows); each run of equal scores becomes cells ordered by (slices, label, weight,
/// class terms): short runs by sorting their rows, long ones (repeated scores) by counting equal
/// rows in a hash map and sorting only the distinct ones, so the work stays linear in the rows.
pub(super) fn write_cells(rows: &RowData, range: std::ops::Range<usize>, out: CellSlots) -> usize {
    let RowData { y, p, w, tuple, class_terms } = rows;
    let w = |r: usize| if w.is_empty() { 1.0 } else { w[r] };
    let ct = |r: usize| class_terms.get(r).copied().unwrap_or_default();
    let base = range.start;
    let (keys, mut order) = radix_sort(p[range.clone()].iter().map(|x| descending_key(*x)).collect());
    for o in order.iter_mut() {
        *o += base as u32;
    }
    let cmp = |a: usize, b: usize| {
        tuple[a].cmp(&tuple[b]).then(y[a].total_cmp(&y[b])).then(w(a).total_cmp(&w(b))).then(ct(a).rank.cmp(&ct(b).rank)).then(ct(a).log_loss.total_cmp(&ct(b).log_loss))
    };
    let same = |a: usize, b: usize| tuple[a] == tuple[b] && y[a].to_bits() == y[b].to_bits() && w(a).to_bits() == w(b).to_bits() && ct(a).same(&ct(b));
    let row_key = |r: usize| (tuple[r], y[r].to_bits(), w(r).to_bits(), ct(r).rank, ct(r).log_loss.to_bits());
    let mut written = 0;
    let CellSlots { y: out_y, p: out_p, w: out_w, mult: out_mult, tuple: out_tuple, class_terms: out_terms } = out;
    // A cell's score is its run's: read back from the sorted key (no gather from the rows).
    let mut emit = |r: usize, m: u32, score: f64| {
        out_y[written] = y[r];
        out_p[written] = score;
        out_w[written] = w(r);
        out_mult[written] = m;
        out_tuple[written] = tuple[r];
        if !class_terms.is_empty() {
            out_terms[written] = class_terms[r];
        }
        written += 1;
    };
    let mut groups: std::collections::HashMap<(u64, u64, u64, u16, u64), (usize, u32), crate::eval::FastHashBuilder> = Default::default();
    let mut distinct: Vec<(usize, u32)> = Vec::new();
    let n = order.len();
    let mut start = 0;
    while start < n {
        let mut end = start + 1;
        while end < n && keys[end] == keys[start] {
            end += 1;
        }
        let run = &mut order[start..end];
        let score = score_of_key(keys[start]);
        if run.len() == 1 {
            // A score of one row (every row when scores are distinct): its own cell.
            emit(run[0] as usize, 1, score);
        } else if run.len() <= 32 {
            run.sort_unstable_by(|a, b| cmp(*a as usize, *b as usize));
            let mut i = 0;
            while i < run.len() {
                let r = run[i] as usize;
                let mut j = i + 1;
                while j < run.len() && same(r, run[j] as usize) {
                    j += 1;
                }
                emit(r, (j - i) as u32, score);
                i = j;
            }
        } else {
            groups.clear();
            for &r in run.iter() {
                groups.entry(row_key(r as usize)).or_insert((r as usize, 0)).1 += 1;
            }
            distinct.clear();
            distinct.extend(groups.values().copied());
            distinct.sort_unstable_by(|a, b| cmp(a.0, b.0));
            for &(r, m) in &distinct {
                emit(r, m, score);
            }
        }
        start = end;
    }
    written
}

/// For scores in descending order (as cells are), how many thresholds each reaches
/// (`thresholds.partition_point(|t| t <= score)`), in one merge walk instead of a search each.
pub(super) fn threshold_counts(scores: &[f64], thresholds: &[f64]) -> Vec<u16> {
    let mut k = thresholds.len();
    scores
        .iter()
        .map(|x| {
            if x.is_nan() {
                return 0; // reaches no threshold (and NaNs sit at the ends of the order)
            }
            while k > 0 && thresholds[k - 1] > *x {
                k -= 1;
            }
            k as u16
        })
        .collect()
}

/// A key whose ascending order is `f64::total_cmp`'s descending order.
pub fn descending_key(x: f64) -> u64 {
    let b = x.to_bits();
    let ascending = if b >> 63 == 1 { !b } else { b | (1 << 63) };
    !ascending
}

/// The score whose [`descending_key`] is `key` (bit for bit).
#[inline]
pub fn score_of_key(key: u64) -> f64 {
    let ascending = !key;
    f64::from_bits(if ascending >> 63 == 1 { ascending & !(1 << 63) } else { !ascending })
}

/// Sorts keys ascending by LSD radix (8 bits a pass, passes where every key has the same byte
/// skipped); returns the sorted keys and the original position of each. Every byte's counts come
/// from one read of the keys, so a pass only moves them.
pub fn radix_sort(mut keys: Vec<u64>) -> (Vec<u64>, Vec<u32>) {
    let n = keys.len();
    let mut counts = [[0u32; 256]; 8];
    {
        // Written out byte by byte: a loop over the bytes is not unrolled in the dev build.
        let [c0, c1, c2, c3, c4, c5, c6, c7] = &mut counts;
        for &k in &keys {
            let b = k.to_le_bytes();
            c0[b[0] as usize] += 1;
            c1[b[1] as usize] += 1;
            c2[b[2] as usize] += 1;
            c3[b[3] as usize] += 1;
            c4[b[4] as usize] += 1;
            c5[b[5] as usize] += 1;
            c6[b[6] as usize] += 1;
            c7[b[7] as usize] += 1;
        }
    }
    let mut idx: Vec<u32> = (0..n as u32).collect();
    let (mut keys_tmp, mut idx_tmp) = (vec![0u64; n], vec![0u32; n]);
    for (byte, c) in counts.iter().enumerate() {
        if c.iter().any(|c| *c as usize == n) {
            continue;
        }
        let shift = 8 * byte;
        let mut offsets = [0usize; 256];
        let mut sum = 0;
        for (o, c) in offsets.iter_mut().zip(c) {
            *o = sum;
            sum += *c as usize;
        }
        for (k, i) in keys.iter().zip(&idx) {
            let b = ((k >> shift) & 0xff) as usize;
            keys_tmp[offsets[b]] = *k;
            idx_tmp[offsets[b]] = *i;
            offsets[b] += 1;
        }
        std::mem::swap(&mut keys, &mut keys_tmp);
        std::mem::swap(&mut idx, &mut idx_tmp);
    }
    (keys, idx)
}
