//! The checks of the cells that have a role: the label against the task, scores, per-class
//! probabilities, weights and ids; every problem names its line (or row) and column.

use super::*;

/// One label cell, independent of the column's type.
pub(super) enum LabelCell {
    Missing,
    Num(f64),
    Text(String),
}

pub(super) fn label_cells(c: &Column) -> Result<Vec<LabelCell>, IngestError> {
    let s = c.as_materialized_series();
    Ok(match s.dtype() {
        DataType::Boolean => s.bool()?.iter().map(|v| v.map_or(LabelCell::Missing, |b| LabelCell::Num(b as u8 as f64))).collect(),
        DataType::String => s
            .str()?
            .iter()
            .map(|v| match v.map(str::trim) {
                None | Some("") => LabelCell::Missing,
                Some(t) => match t.to_ascii_lowercase().as_str() {
                    "true" => LabelCell::Num(1.0),
                    "false" => LabelCell::Num(0.0),
                    _ => t.parse::<f64>().map(LabelCell::Num).unwrap_or_else(|_| LabelCell::Text(t.to_string())),
                },
            })
            .collect(),
        d if d.is_primitive_numeric() => s
            .cast(&DataType::Float64)?
            .f64()?
            .iter()
            .map(|v| v.map_or(LabelCell::Missing, |x| if x.is_nan() { LabelCell::Missing } else { LabelCell::Num(x) }))
            .collect(),
        _ => s.cast(&DataType::String)?.str()?.iter().map(|v| v.map_or(LabelCell::Missing, |t| LabelCell::Text(t.to_string()))).collect(),
    })
}

/// Binary when most labels are 0/1 (or true/false); regression when they are numbers that are not
/// a small set of class codes; multiclass otherwise.
pub(super) fn infer_task(cells: &[LabelCell], roles: &Roles, raw: &DataFrame) -> Result<Task, IngestError> {
    let (mut binary, mut nums, mut texts, mut present) = (0usize, 0usize, 0usize, 0usize);
    let mut distinct: HashSet<u64> = HashSet::new();
    let mut all_int = true;
    for c in cells {
        match c {
            LabelCell::Missing => {}
            LabelCell::Num(x) => {
                present += 1;
                nums += 1;
                if *x == 0.0 || *x == 1.0 {
                    binary += 1;
                }
                if x.fract() != 0.0 {
                    all_int = false;
                }
                if distinct.len() <= 50 {
                    distinct.insert(x.to_bits());
                }
            }
            LabelCell::Text(_) => {
                present += 1;
                texts += 1;
            }
        }
    }
    // One probability column per class (`prob_0`, `prob_1`, `prob_2`) settles it, even when most
    // labels are 0 or 1.
    if nums > 0 && all_int && distinct.len() <= 20 {
        // `distinct` holds every label value here (at most 20): the classes of the whole column.
        let classes = sorted_classes(distinct.iter().map(|bits| fmt_class(f64::from_bits(*bits))));
        if classes.len() > 2 && !roles::group_class_scores(&roles.scores, &classes).0.is_empty() {
            return Ok(Task::Multiclass);
        }
    }
    if present > 0 && binary * 2 > present {
        return Ok(Task::Binary);
    }
    if texts > 0 && texts * 2 > present {
        return Ok(Task::Multiclass);
    }
    // Numeric labels: integer class codes when the scores are integers from the same small set.
    if nums > 0 && all_int && distinct.len() <= 20 {
        let scores_are_codes = roles.scores.iter().all(|s| {
            raw.column(s)
                .ok()
                .and_then(|c| c.cast(&DataType::Float64).ok())
                .and_then(|c| c.f64().ok().map(|ca| ca.iter().flatten().all(|x| distinct.contains(&x.to_bits()))))
                .unwrap_or(false)
        });
        if scores_are_codes {
            return Ok(Task::Multiclass);
        }
    }
    Ok(Task::Regression)
}

/// The label column `name` of `task`, from its `cells` ([`label_cells`]).
pub(super) fn normalise_label(name: PlSmallStr, cells: &[LabelCell], task: Task, lines: Option<&[u64]>, problems: &mut Problems) -> Result<Column, IngestError> {
    let col_name = name.to_string();
    let mut bad = |i: usize, msg: String| problems.push(Problem::new(place(lines, i), Some(&col_name), msg));
    Ok(match task {
        Task::Binary => {
            let v: Vec<Option<i64>> = cells
                .iter()
                .enumerate()
                .map(|(i, cell)| match cell {
                    LabelCell::Num(x) if *x == 0.0 || *x == 1.0 => Some(*x as i64),
                    LabelCell::Num(x) => {
                        bad(i, format!("'{x}' is not a binary label (0/1 or true/false)"));
                        None
                    }
                    LabelCell::Text(t) => {
                        bad(i, format!("'{t}' is not a binary label (0/1 or true/false)"));
                        None
                    }
                    LabelCell::Missing => {
                        bad(i, "the label is missing".into());
                        None
                    }
                })
                .collect();
            Column::new(name, v)
        }
        Task::Regression => {
            let v: Vec<Option<f64>> = cells
                .iter()
                .enumerate()
                .map(|(i, cell)| match cell {
                    LabelCell::Num(x) if x.is_finite() => Some(*x),
                    LabelCell::Num(x) => {
                        bad(i, format!("'{x}' is not a finite number"));
                        None
                    }
                    LabelCell::Text(t) => {
                        bad(i, format!("'{t}' is not a number (regression label)"));
                        None
                    }
                    LabelCell::Missing => {
                        bad(i, "the label is missing".into());
                        None
                    }
                })
                .collect();
            Column::new(name, v)
        }
        Task::Multiclass => {
            let v: Vec<Option<String>> = cells
                .iter()
                .enumerate()
                .map(|(i, cell)| match cell {
                    LabelCell::Num(x) => Some(fmt_class(*x)),
                    LabelCell::Text(t) => Some(t.clone()),
                    LabelCell::Missing => {
                        bad(i, "the label is missing".into());
                        None
                    }
                })
                .collect();
            Column::new(name, v)
        }
    })
}

pub(super) fn fmt_class(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 { format!("{}", x as i64) } else { x.to_string() }
}

/// Class names sorted as the metrics engine orders them: integer codes numerically, else as text.
pub fn sorted_classes(values: impl Iterator<Item = String>) -> Vec<String> {
    let mut classes: Vec<String> = values.collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    if classes.iter().all(|c| c.parse::<i64>().is_ok()) {
        classes.sort_by_key(|c| c.parse::<i64>().unwrap_or(0));
    }
    classes
}

/// A per-class score: a probability, present in every row.
pub(super) fn check_class_score(c: &Column, lines: Option<&[u64]>, problems: &mut Problems) -> Result<Column, IngestError> {
    let name = c.name().to_string();
    if !c.dtype().is_primitive_numeric() {
        problems.push(Problem::new(Place::File, Some(&name), format!("a per-class score column must hold probabilities, not {}", c.dtype())));
        return Ok(c.clone());
    }
    let f = c.cast(&DataType::Float64)?;
    for (i, v) in f.f64()?.iter().enumerate() {
        let msg = match v {
            None => "the class's score is missing".to_string(),
            Some(x) if x.is_nan() => "the class's score is NaN".to_string(),
            Some(x) if !(0.0..=1.0).contains(&x) => format!("{x} is outside [0, 1]; a per-class score is a probability"),
            _ => continue,
        };
        problems.push(Problem::new(place(lines, i), Some(&name), msg));
    }
    Ok(f)
}

/// The predicted class of a per-class model: the class with the highest score (the first of
/// tied ones, as numpy's `argmax`).
pub(super) fn argmax_class(columns: &[Column], m: &roles::ClassModel) -> Result<Column, IngestError> {
    let mut scores = Vec::with_capacity(m.columns.len());
    for (_, col) in &m.columns {
        let c = columns.iter().find(|c| c.name().as_str() == col).ok_or_else(|| IngestError::Spec(format!("column '{col}' went missing")))?;
        scores.push(c.f64()?.iter().map(|v| v.unwrap_or(f64::NAN)).collect::<Vec<f64>>());
    }
    let n = scores.first().map_or(0, Vec::len);
    let predicted: Vec<&str> = (0..n)
        .map(|i| {
            let mut best = 0;
            for (j, s) in scores.iter().enumerate() {
                if s[i] > scores[best][i] {
                    best = j;
                }
            }
            m.columns[best].0.as_str()
        })
        .collect();
    Ok(Column::new(m.model.as_str().into(), predicted))
}

pub(super) fn check_score(c: &Column, task: Task, lines: Option<&[u64]>, problems: &mut Problems, roles: &Roles) -> Result<Column, IngestError> {
    let name = c.name().to_string();
    if task == Task::Multiclass {
        if c.dtype().is_float() && c.f64()?.iter().flatten().any(|x| x.fract() != 0.0) {
            problems.push(Problem::new(
                Place::File,
                Some(&name),
                format!(
                    "holds fractional numbers, so it is no predicted class; a multiclass model is either a column of predicted \
                     classes or one probability column per class of the label, named <model>_<class>{}",
                    if roles.class_models.is_empty() { "" } else { " (as this file's other models are)" }
                ),
            ));
            return Ok(c.clone());
        }
        // A predicted class: compared as text with the label.
        let s = c.cast(&DataType::String)?;
        for (i, v) in s.str()?.iter().enumerate() {
            if v.is_none_or(|t| t.trim().is_empty()) {
                problems.push(Problem::new(place(lines, i), Some(&name), "the predicted class is missing"));
            }
        }
        return Ok(match c.dtype() {
            DataType::Float64 => Column::new(c.name().clone(), c.f64()?.iter().map(|v| v.map(fmt_class)).collect::<Vec<_>>()),
            _ => s,
        });
    }
    if !c.dtype().is_primitive_numeric() {
        problems.push(Problem::new(Place::File, Some(&name), format!("a score column must hold numbers, not {}", c.dtype())));
        return Ok(c.clone());
    }
    let f = c.cast(&DataType::Float64)?;
    for (i, v) in f.f64()?.iter().enumerate() {
        let msg = match v {
            None => Some("the score is missing".to_string()),
            Some(x) if x.is_nan() => Some("the score is NaN".to_string()),
            Some(x) if x.is_infinite() => Some(format!("the score is {x}")),
            Some(x) if task == Task::Binary && !(0.0..=1.0).contains(&x) => {
                Some(format!("{x} is outside [0, 1]; a binary task's score is a probability"))
            }
            _ => None,
        };
        if let Some(m) = msg {
            problems.push(Problem::new(place(lines, i), Some(&name), m));
        }
    }
    Ok(f)
}

pub(super) fn check_weight(c: &Column, lines: Option<&[u64]>, problems: &mut Problems) -> Result<Column, IngestError> {
    let name = c.name().to_string();
    if !c.dtype().is_primitive_numeric() {
        problems.push(Problem::new(Place::File, Some(&name), "a weight column must hold numbers"));
        return Ok(c.clone());
    }
    let f = c.cast(&DataType::Float64)?;
    for (i, v) in f.f64()?.iter().enumerate() {
        match v {
            Some(x) if x.is_finite() && x >= 0.0 => {}
            Some(x) => problems.push(Problem::new(place(lines, i), Some(&name), format!("weight {x} is not a finite number >= 0"))),
            None => problems.push(Problem::new(place(lines, i), Some(&name), "the weight is missing")),
        }
    }
    Ok(f)
}

pub(super) fn check_id(c: &Column, lines: Option<&[u64]>, problems: &mut Problems) -> Result<Column, IngestError> {
    let name = c.name().to_string();
    let s = c.cast(&DataType::String)?;
    let ids: Vec<Option<&str>> = s.str()?.iter().collect();
    for (i, first) in id_faults(&ids) {
        match (ids[i], first) {
            (Some(id), Some(first)) => {
                let where_first = match place(lines, first) {
                    Place::Line(l) => format!("line {l}"),
                    Place::Row(r) => format!("row {r}"),
                    _ => String::new(),
                };
                problems.push(Problem::new(place(lines, i), Some(&name), format!("id '{id}' appears again (first on {where_first}); ids must be unique")));
            }
            _ => problems.push(Problem::new(place(lines, i), Some(&name), "the id is missing")),
        }
    }
    Ok(s)
}

/// The first [`MAX_PROBLEMS`] rows whose id is missing (`None`) or appeared on an earlier row
/// (`Some(its first row)`), in row order. The ids are split by a hash among the cores, each
/// core keeping a table of its own part only (every row is read by each, but hashed into one).
pub(super) fn id_faults(ids: &[Option<&str>]) -> Vec<(usize, Option<usize>)> {
    use super::error::MAX_PROBLEMS;
    use std::hash::BuildHasher;
    let parts = if ids.len() < 1 << 16 { 1 } else { std::thread::available_parallelism().map_or(1, |t| t.get()).clamp(1, 8) };
    // Which part each row's id is in: a hash of its own (seeded at random, as the tables').
    let split = crate::eval::FastHashBuilder::default();
    let mut part_of = vec![0u8; ids.len()];
    if parts > 1 {
        let chunk = ids.len().div_ceil(parts);
        std::thread::scope(|scope| {
            for (out, ids) in part_of.chunks_mut(chunk).zip(ids.chunks(chunk)) {
                let split = &split;
                scope.spawn(move || {
                    for (o, id) in out.iter_mut().zip(ids) {
                        *o = id.map_or(0, |id| (split.hash_one(id) % parts as u64) as u8);
                    }
                });
            }
        });
    }
    let part = |p: usize| {
        let mut first: std::collections::HashMap<&str, usize, crate::eval::FastHashBuilder> = Default::default();
        first.reserve(ids.len() / parts + ids.len() / (8 * parts));
        let mut faults = Vec::new();
        for (i, (id, &q)) in ids.iter().zip(&part_of).enumerate() {
            if q as usize != p {
                continue;
            }
            let fault = match id {
                None => None,
                Some(id) => match first.entry(id) {
                    std::collections::hash_map::Entry::Occupied(e) => Some(*e.get()),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(i);
                        continue;
                    }
                },
            };
            // Rows come in order, so a part's first faults include all of the file's first.
            if faults.len() < MAX_PROBLEMS {
                faults.push((i, fault));
            }
        }
        faults
    };
    let mut faults: Vec<(usize, Option<usize>)> = if parts == 1 {
        part(0)
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..parts).map(|p| scope.spawn(move || part(p))).collect();
            handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
        })
    };
    faults.sort_unstable_by_key(|f| f.0);
    faults.truncate(MAX_PROBLEMS);
    faults
}
