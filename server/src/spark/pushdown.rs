//! The Spark SQL that an external run pushes down, built as plain data: the cells (group by the
//! slice columns, the score bucket and the label; counts, weight sums and log-loss sums), the
//! schema, the row count and quantile edges. Pure: no I/O, unit-tested on the text.
//!
//! Safety: every identifier is backtick-quoted with backticks doubled, a path is a quoted
//! identifier too (`parquet.`…``), numbers (edges, the grid, ε) are rendered by Rust as double
//! literals from finite `f64`s, and the one user value that is not a number, the positive label,
//! travels as a named parameter (`:positive`), never pasted into the text.

use super::SparkError;

/// ε of the log-loss clip: `f64::EPSILON`, as scikit-learn's `log_loss` and the in-process
/// engine (`eval::sliced::binary::clipped_neg_ln`) clip.
pub const LOG_LOSS_EPS: f64 = f64::EPSILON;

/// What Spark reads: a catalog table (or view), or files at a path.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// `catalog.schema.table` parts (one to three), each quoted on its own.
    Table(Vec<String>),
    /// Files read by a data source (`parquet`, `delta`, `orc`, `json`, `csv`): a file, a
    /// directory (hive partitions) or a glob.
    Files { format: FileFormat, path: String },
}

/// The file formats Spark reads for an external run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    Parquet,
    Delta,
    Orc,
}

impl FileFormat {
    fn name(self) -> &'static str {
        match self {
            FileFormat::Parquet => "parquet",
            FileFormat::Delta => "delta",
            FileFormat::Orc => "orc",
        }
    }
}

impl Source {
    /// A table name as a user writes it: `db.preds` or `` `my db`.preds `` (backticks quote a
    /// part that holds a dot). At most three parts; none empty.
    pub fn table(name: &str) -> Result<Source, SparkError> {
        let parts = split_table_name(name).ok_or_else(|| SparkError::BadRemote(format!("'{name}' is not a table name (one to three dot-separated parts)")))?;
        Ok(Source::Table(parts))
    }

    /// Parquet files at `path` (file, directory or glob).
    pub fn parquet(path: &str) -> Source {
        Source::Files { format: FileFormat::Parquet, path: path.to_string() }
    }

    /// The source as it stands after `FROM`.
    pub fn sql(&self) -> String {
        match self {
            Source::Table(parts) => parts.iter().map(|p| quote_ident(p)).collect::<Vec<_>>().join("."),
            Source::Files { format, path } => format!("{}.{}", format.name(), quote_ident(path)),
        }
    }

    /// For messages: the table name or the path.
    pub fn describe(&self) -> String {
        match self {
            Source::Table(parts) => parts.join("."),
            Source::Files { format, path } => format!("{} files at {path}", format.name()),
        }
    }
}

/// `` `name` `` with backticks doubled: any string is a safe Spark SQL identifier this way.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A finite number as a Spark double literal (`0.25D`, `(-3.0D)`, `1e-7D`): Rust prints the
/// shortest text that reads back as the same `f64`, and Java parses it to that `f64`.
pub fn double_literal(x: f64) -> Result<String, SparkError> {
    if !x.is_finite() {
        return Err(SparkError::BadRemote(format!("{x} is not a finite number")));
    }
    let text = format!("{:?}", x.abs());
    Ok(if x.is_sign_negative() && x != 0.0 { format!("(-{text}D)") } else { format!("{text}D") })
}

/// A value passed beside the SQL text as a named parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    Text(String),
    Number(f64),
    Bool(bool),
}

/// One slice column of the cells.
#[derive(Clone, Debug, PartialEq)]
pub enum SliceColumn {
    /// Grouped by its values as they are.
    Categorical(String),
    /// Grouped by bucket between `edges` (ascending, finite): bucket `i` is the number of
    /// edges ≤ the value, so (-inf, e0) is 0 and [en, inf) is n+1 — the in-process engine's
    /// buckets (`eval::slicing`). A missing or NaN value has no bucket (NULL).
    Numeric { column: String, edges: Vec<f64> },
}

impl SliceColumn {
    fn column(&self) -> &str {
        match self {
            SliceColumn::Categorical(c) | SliceColumn::Numeric { column: c, .. } => c,
        }
    }

    fn expr(&self) -> Result<String, SparkError> {
        match self {
            SliceColumn::Categorical(c) => Ok(quote_ident(c)),
            SliceColumn::Numeric { column, edges } => {
                if edges.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(SparkError::BadRemote(format!("the bucket edges of '{column}' must increase")));
                }
                let x = format!("CAST({} AS DOUBLE)", quote_ident(column));
                let mut s = format!("CASE WHEN {x} IS NULL OR isnan({x}) THEN NULL");
                for (i, e) in edges.iter().enumerate() {
                    s.push_str(&format!(" WHEN {x} < {} THEN {i}", double_literal(*e)?));
                }
                s.push_str(&format!(" ELSE {} END", edges.len()));
                Ok(s)
            }
        }
    }
}

/// How scores are grouped.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScoreGrid {
    /// Every distinct score is its own cell (exact metrics; for few distinct scores).
    Exact,
    /// `n` buckets of width 1/n on [0, 1]: bucket k holds the scores s with
    /// k/n ≤ s < (k+1)/n (k/n the `f64` quotient), scores below 0 in bucket 0 and from 1 up in
    /// bucket n−1. Counts at a threshold k/n are then exact.
    Buckets(u32),
}

/// The cells of an external binary-classification or regression run, pushed down.
#[derive(Clone, Debug, PartialEq)]
pub struct CellQuery {
    pub source: Source,
    pub label: String,
    pub score: String,
    pub weight: Option<String>,
    /// The label value that is the positive class (`1`, `true`, `">50K"`); `None` for a
    /// regression run (grouped by its exact label and prediction, no log-loss sums: 0).
    pub positive: Option<Param>,
    pub slices: Vec<SliceColumn>,
    pub grid: ScoreGrid,
    /// Group by the weight too (a `weight` column after `label`): the in-process engine's cells
    /// are (slices, label, score, weight) with a count (`eval::sliced::stream::CellFold`). Without
    /// it the weights are only summed.
    pub by_weight: bool,
}

/// A query ready to send: the text and its named parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Sql {
    pub text: String,
    pub args: Vec<(String, Param)>,
}

impl Sql {
    fn plain(text: String) -> Sql {
        Sql { text, args: vec![] }
    }
}

/// The statistics columns of the cell query, after its keys.
pub const CELL_SUMS: [&str; 5] = ["n", "sum_w", "sum_w2", "sum_loss", "sum_w_loss"];

impl CellQuery {
    /// The names of the result's columns in order: the keys `slice_0…`, `score`, `label` (and
    /// `weight` when grouped by it), then [`CELL_SUMS`]. `score` is the exact score (a double) or
    /// the bucket index (an integer), as the grid says.
    pub fn result_columns(&self) -> Vec<String> {
        self.keys().into_iter().chain(CELL_SUMS.iter().map(|c| c.to_string())).collect()
    }

    fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = (0..self.slices.len()).map(|i| format!("slice_{i}")).collect();
        keys.extend(["score".to_string(), "label".to_string()]);
        if self.by_weight && self.weight.is_some() {
            keys.push("weight".into());
        }
        keys
    }

    /// The Spark SQL: one row per (slices…, score or bucket, label) with the row count `n`, the
    /// weight sums Σw and Σw², and the log-loss sums Σℓ and Σwℓ, where ℓ = −ln(clip(p_true, ε,
    /// 1−ε)) and p_true is the score for a positive row and 1 − score otherwise. Rows whose label
    /// or score is missing are not counted (as an upload refuses them); w = 1 without a weight.
    pub fn sql(&self) -> Result<Sql, SparkError> {
        let p = format!("CAST({} AS DOUBLE)", quote_ident(&self.score));
        let label = quote_ident(&self.label);
        let score = match self.grid {
            ScoreGrid::Exact => p.clone(),
            ScoreGrid::Buckets(n) => {
                if n < 1 {
                    return Err(SparkError::BadRemote("a score grid has at least one bucket".into()));
                }
                // floor(p·n) is off by one where p·n rounds across an integer; comparing p with
                // the f64 quotients k/n and (k+1)/n puts p where a threshold test `p >= k/n` does.
                let n_d = double_literal(n as f64)?;
                let k = format!("FLOOR({p} * {n_d})");
                let fixed = format!(
                    "CASE WHEN {p} < CAST({k} AS DOUBLE) / {n_d} THEN {k} - 1 \
                     WHEN {p} >= CAST({k} + 1 AS DOUBLE) / {n_d} THEN {k} + 1 ELSE {k} END"
                );
                format!("CAST(LEAST(GREATEST({fixed}, 0), {}) AS INT)", n - 1)
            }
        };
        let w = match &self.weight {
            Some(c) => format!("CAST({} AS DOUBLE)", quote_ident(c)),
            None => "1.0D".into(),
        };
        let eps = double_literal(LOG_LOSS_EPS)?;
        let loss = match self.positive {
            Some(_) => format!("-LN(LEAST(GREATEST(CASE WHEN {label} = :positive THEN {p} ELSE 1.0D - {p} END, {eps}), 1.0D - {eps}))"),
            None => "0.0D".to_string(),
        };
        let mut inner: Vec<String> = Vec::new();
        for (i, s) in self.slices.iter().enumerate() {
            inner.push(format!("{} AS `slice_{i}`", s.expr()?));
        }
        inner.push(format!("{score} AS `score`"));
        inner.push(format!("{label} AS `label`"));
        inner.push(format!("{w} AS `w`"));
        inner.push(format!("{loss} AS `loss`"));
        let keys: Vec<String> = self.keys().iter().map(|k| if k == "weight" { "`w` AS `weight`".to_string() } else { quote_ident(k) }).collect();
        let group: Vec<String> = self.keys().iter().map(|k| if k == "weight" { "`w`".to_string() } else { quote_ident(k) }).collect();
        let (keys, group) = (keys.join(", "), group.join(", "));
        let text = format!(
            "SELECT {keys}, COUNT(*) AS `n`, SUM(`w`) AS `sum_w`, SUM(`w` * `w`) AS `sum_w2`, SUM(`loss`) AS `sum_loss`, \
             SUM(`w` * `loss`) AS `sum_w_loss` FROM (SELECT {} FROM {} WHERE {label} IS NOT NULL AND {} IS NOT NULL) AS `rows` \
             GROUP BY {group}",
            inner.join(", "),
            self.source.sql(),
            quote_ident(&self.score),
        );
        Ok(Sql { text, args: self.positive.iter().map(|p| ("positive".to_string(), p.clone())).collect() })
    }

    /// The columns the cell query reads, each once (to check against the registered schema).
    pub fn columns_read(&self) -> Vec<&str> {
        let mut out: Vec<&str> = vec![&self.label, &self.score];
        out.extend(self.weight.as_deref());
        for s in &self.slices {
            if !out.contains(&s.column()) {
                out.push(s.column());
            }
        }
        out
    }
}

/// The schema of a source: rows of (`col_name`, `data_type`, `comment`), the columns only.
pub fn schema_sql(source: &Source) -> Sql {
    Sql::plain(format!("DESCRIBE QUERY SELECT * FROM {}", source.sql()))
}

/// The row count of a source: one row, column `n`.
pub fn count_sql(source: &Source) -> Sql {
    Sql::plain(format!("SELECT COUNT(*) AS `n` FROM {}", source.sql()))
}

/// Approximate quantiles of a numeric column, one result column `q{i}` per probability (in
/// (0, 1)), computed by Spark's `approx_percentile` with `accuracy` (10,000 is Spark's default;
/// the rank error is about 1/accuracy of the rows). Missing and NaN values are left out.
pub fn quantiles_sql(source: &Source, column: &str, probabilities: &[f64], accuracy: u32) -> Result<Sql, SparkError> {
    if probabilities.is_empty() || probabilities.iter().any(|p| !(*p > 0.0 && *p < 1.0)) {
        return Err(SparkError::BadRemote("quantile probabilities lie strictly between 0 and 1".into()));
    }
    let x = format!("CAST({} AS DOUBLE)", quote_ident(column));
    let cols: Result<Vec<String>, SparkError> = probabilities
        .iter()
        .enumerate()
        .map(|(i, p)| Ok(format!("approx_percentile({x}, {}, {}) AS `q{i}`", double_literal(*p)?, accuracy.max(1))))
        .collect();
    Ok(Sql::plain(format!("SELECT {} FROM {} WHERE {x} IS NOT NULL AND NOT isnan({x})", cols?.join(", "), source.sql())))
}

/// The first `limit` rows, the columns Strata reads (timestamps and dates as text; nested and
/// binary columns left out): what registration infers roles and summaries from.
pub fn sample_sql(source: &Source, columns: &[(String, String)], limit: u32) -> Sql {
    Sql::plain(format!("SELECT {} FROM {} LIMIT {limit}", readable_columns(columns), source.sql()))
}

/// A uniform random sample of the rows, the columns of [`sample_sql`]: each row kept with
/// probability `percent`/100 (`TABLESAMPLE … PERCENT`, Bernoulli) drawn from `seed` (`REPEATABLE`:
/// the same rows on every request while the files stay the same), at most `limit` of them.
/// 100 percent or more reads every row (up to `limit`).
pub fn row_sample_sql(source: &Source, columns: &[(String, String)], percent: f64, seed: u32, limit: u32) -> Result<Sql, SparkError> {
    let cols = readable_columns(columns);
    if percent >= 100.0 {
        return Ok(Sql::plain(format!("SELECT {cols} FROM {} LIMIT {limit}", source.sql())));
    }
    Ok(Sql::plain(format!("SELECT {cols} FROM {} TABLESAMPLE ({} PERCENT) REPEATABLE ({seed}) LIMIT {limit}", source.sql(), percent_literal(percent)?)))
}

/// A share in (0, 100) as TABLESAMPLE reads it: a plain decimal (no exponent, no suffix).
pub fn percent_literal(percent: f64) -> Result<String, SparkError> {
    if !(percent.is_finite() && percent > 0.0 && percent < 100.0) {
        return Err(SparkError::BadRemote(format!("{percent} is not a share of the rows between 0 and 100 percent")));
    }
    let text = format!("{percent:.10}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "0" {
        return Err(SparkError::BadRemote(format!("{percent} percent is too small a share of the rows to sample")));
    }
    Ok(text.to_string())
}

/// The select list of the samples: every column Strata reads, quoted; timestamps and dates cast
/// to text (ingest parses them as an upload's), nested and binary columns left out.
fn readable_columns(columns: &[(String, String)]) -> String {
    let cols: Vec<String> = columns
        .iter()
        .filter_map(|(name, ty)| {
            let t = ty.to_ascii_lowercase();
            let q = quote_ident(name);
            if t.starts_with("timestamp") || t == "date" {
                Some(format!("CAST({q} AS STRING) AS {q}"))
            } else if t.starts_with("array") || t.starts_with("map") || t.starts_with("struct") || t == "binary" || t.starts_with("variant") || t.starts_with("interval") {
                None
            } else {
                Some(q)
            }
        })
        .collect();
    if cols.is_empty() { "*".to_string() } else { cols.join(", ") }
}

/// A numeric column's present values (not missing, not NaN): how many (`n`), the least (`lo`)
/// and the greatest (`hi`).
pub fn summary_sql(source: &Source, column: &str) -> Sql {
    let x = format!("CAST({} AS DOUBLE)", quote_ident(column));
    Sql::plain(format!("SELECT COUNT({x}) AS `n`, MIN({x}) AS `lo`, MAX({x}) AS `hi` FROM {} WHERE {x} IS NOT NULL AND NOT isnan({x})", source.sql()))
}

/// Exact order statistics of a numeric column's `n` present values: column `v{i}` is the value
/// at 0-based rank `ranks[i]` in ascending order. Spark's `percentile_disc(q)` is the smallest
/// value whose cumulative share reaches q; q = (rank + ½)/n lies half a row inside the rank's
/// step, so rounding in q·n cannot move it to a neighbour. Spark keeps a count per distinct
/// value to answer it: for columns of moderate size (approximate quantiles beyond).
pub fn order_stats_sql(source: &Source, column: &str, ranks: &[u64], n: u64) -> Result<Sql, SparkError> {
    if ranks.is_empty() || ranks.iter().any(|r| *r >= n) {
        return Err(SparkError::BadRemote(format!("ranks must lie below the {n} values")));
    }
    let x = format!("CAST({} AS DOUBLE)", quote_ident(column));
    let cols: Result<Vec<String>, SparkError> = ranks
        .iter()
        .enumerate()
        .map(|(i, r)| Ok(format!("percentile_disc({}) WITHIN GROUP (ORDER BY {x}) AS `v{i}`", double_literal((*r as f64 + 0.5) / n as f64)?)))
        .collect();
    Ok(Sql::plain(format!("SELECT {} FROM {} WHERE {x} IS NOT NULL AND NOT isnan({x})", cols?.join(", "), source.sql())))
}

/// About how many distinct values a column has (`approx_count_distinct`, relative error ~5%):
/// column `d`.
pub fn distinct_sql(source: &Source, column: &str) -> Sql {
    Sql::plain(format!("SELECT approx_count_distinct(CAST({} AS DOUBLE)) AS `d` FROM {}", quote_ident(column), source.sql()))
}

/// About how many distinct (label, prediction) pairs a regression run has (the number of its
/// cells overall): column `d`. The pair is hashed to 64 bits (`xxhash64`) for the sketch.
pub fn pair_distinct_sql(source: &Source, label: &str, score: &str) -> Sql {
    Sql::plain(format!(
        "SELECT approx_count_distinct(xxhash64(CAST({} AS DOUBLE), CAST({} AS DOUBLE))) AS `d` FROM {}",
        quote_ident(label),
        quote_ident(score),
        source.sql()
    ))
}

/// Rows a run counts: its label and every score present (as the cell query and an upload).
fn present_rows(required: &[String]) -> String {
    if required.is_empty() {
        return String::new();
    }
    let each: Vec<String> = required.iter().map(|c| format!("{} IS NOT NULL", quote_ident(c))).collect();
    format!(" WHERE {}", each.join(" AND "))
}

/// A column whose values drift counts: as a double when `numeric`, else as text.
#[derive(Clone, Debug, PartialEq)]
pub struct CountColumn {
    pub name: String,
    pub numeric: bool,
}

impl CountColumn {
    fn expr(&self) -> String {
        format!("CAST({} AS {})", quote_ident(&self.name), if self.numeric { "DOUBLE" } else { "STRING" })
    }
}

/// About how many distinct values each column has over the rows where `required` are present
/// (`approx_count_distinct`, relative error ~5%): one row, column `d{i}` for `columns[i]`.
pub fn distinct_counts_sql(source: &Source, columns: &[CountColumn], required: &[String]) -> Sql {
    let cols: Vec<String> = columns.iter().enumerate().map(|(i, c)| format!("approx_count_distinct({}) AS `d{i}`", c.expr())).collect();
    Sql::plain(format!("SELECT {} FROM {}{}", cols.join(", "), source.sql(), present_rows(required)))
}

/// Every column's values counted in **one scan** (`GROUPING SETS`, one set per column), over the
/// rows where `required` are present; with `label`, the label too, as the cell query reads it
/// (1.0 for the positive class — the parameter `:positive` —, else 0.0), as one more column.
/// Result columns: `v{i}` (column i's value: a double or text; NULL for missing), `g`
/// (`grouping_id()`: the row counts column i's value when bit `k−1−i` is 0, k the number of
/// columns counted) and `n`, the rows.
pub fn value_counts_sql(source: &Source, columns: &[CountColumn], label: Option<(&str, Param)>, required: &[String]) -> Result<Sql, SparkError> {
    let mut exprs: Vec<String> = columns.iter().map(CountColumn::expr).collect();
    let mut args = vec![];
    if let Some((l, positive)) = label {
        exprs.push(format!("CASE WHEN {} = :positive THEN 1.0D ELSE 0.0D END", quote_ident(l)));
        args.push(("positive".to_string(), positive));
    }
    if exprs.is_empty() || exprs.len() > 62 {
        return Err(SparkError::BadRemote(format!("counts one to 62 columns at a time, not {}", exprs.len())));
    }
    let inner: Vec<String> = exprs.iter().enumerate().map(|(i, e)| format!("{e} AS `v{i}`")).collect();
    let names: Vec<String> = (0..exprs.len()).map(|i| format!("`v{i}`")).collect();
    let sets: Vec<String> = names.iter().map(|n| format!("({n})")).collect();
    let text = format!(
        "SELECT {}, grouping_id() AS `g`, COUNT(*) AS `n` FROM (SELECT {} FROM {}{}) AS `rows` GROUP BY GROUPING SETS ({})",
        names.join(", "),
        inner.join(", "),
        source.sql(),
        present_rows(required),
        sets.join(", ")
    );
    Ok(Sql { text, args })
}

/// Edges for [`SliceColumn::Numeric`] from quantile values: finite, sorted, repeats dropped.
pub fn edges_from_quantiles(values: &[Option<f64>]) -> Vec<f64> {
    let mut e: Vec<f64> = values.iter().flatten().copied().filter(|x| x.is_finite()).collect();
    e.sort_by(f64::total_cmp);
    e.dedup();
    e
}

/// Splits `a.b.c` into parts; a part in backticks may hold dots (a doubled backtick is one).
fn split_table_name(name: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = name.trim().chars().peekable();
    let mut quoted_part = false;
    while let Some(c) = chars.next() {
        match c {
            '`' if cur.is_empty() && !quoted_part => {
                // A quoted part: up to the closing backtick.
                loop {
                    match chars.next()? {
                        '`' if chars.peek() == Some(&'`') => {
                            chars.next();
                            cur.push('`');
                        }
                        '`' => break,
                        c => cur.push(c),
                    }
                }
                quoted_part = true;
                if !matches!(chars.peek(), None | Some('.')) {
                    return None;
                }
            }
            '.' => {
                if cur.is_empty() {
                    return None;
                }
                parts.push(std::mem::take(&mut cur));
                quoted_part = false;
            }
            '`' => return None,
            c if c.is_control() => return None,
            c => {
                if quoted_part {
                    return None;
                }
                cur.push(c)
            }
        }
    }
    if cur.is_empty() {
        return None;
    }
    parts.push(cur);
    (parts.len() <= 3).then_some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adult(grid: ScoreGrid) -> CellQuery {
        CellQuery {
            source: Source::table("db.preds").unwrap(),
            label: "label".into(),
            score: "score_logreg".into(),
            weight: None,
            positive: Some(Param::Number(1.0)),
            slices: vec![SliceColumn::Categorical("race".into()), SliceColumn::Numeric { column: "age".into(), edges: vec![25.0, 45.5] }],
            grid,
            by_weight: false,
        }
    }

    #[test]
    fn identifiers_are_quoted_and_escaped() {
        assert_eq!(quote_ident("a"), "`a`");
        assert_eq!(quote_ident("we`ird` name; DROP"), "`we``ird`` name; DROP`");
        assert_eq!(Source::table("db.preds").unwrap().sql(), "`db`.`preds`");
        assert_eq!(Source::table("cat.`my.db`.`t``x`").unwrap(), Source::Table(vec!["cat".into(), "my.db".into(), "t`x".into()]));
        assert_eq!(Source::parquet("/data/p`q/*.parquet").sql(), "parquet.`/data/p``q/*.parquet`");
        for bad in ["", "a..b", ".a", "a.", "a.b.c.d", "`a", "a`b", "`a`b", "a\nb"] {
            assert!(Source::table(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_row_sample_is_seeded_bounded_and_quoted() {
        let cols = vec![("we`ird".to_string(), "string".to_string()), ("at".to_string(), "timestamp".to_string()), ("v".to_string(), "array<int>".to_string())];
        let source = Source::table("db.preds").unwrap();
        assert_eq!(
            row_sample_sql(&source, &cols, 2.0, 1, 200_000).unwrap().text,
            "SELECT `we``ird`, CAST(`at` AS STRING) AS `at` FROM `db`.`preds` TABLESAMPLE (2 PERCENT) REPEATABLE (1) LIMIT 200000"
        );
        assert_eq!(row_sample_sql(&source, &cols, 100.0, 1, 10).unwrap().text, "SELECT `we``ird`, CAST(`at` AS STRING) AS `at` FROM `db`.`preds` LIMIT 10");
        assert_eq!(percent_literal(0.0001).unwrap(), "0.0001");
        assert_eq!(percent_literal(1.0 / 3.0).unwrap(), "0.3333333333");
        for bad in [0.0, -1.0, 1e-12, f64::NAN, 100.0] {
            assert!(percent_literal(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn numbers_are_double_literals() {
        assert_eq!(double_literal(0.25).unwrap(), "0.25D");
        assert_eq!(double_literal(-3.0).unwrap(), "(-3.0D)");
        assert_eq!(double_literal(f64::EPSILON).unwrap(), "2.220446049250313e-16D");
        assert_eq!(double_literal(1e20).unwrap(), "1e20D");
        assert_eq!(double_literal(-0.0).unwrap(), "0.0D");
        assert!(double_literal(f64::NAN).is_err() && double_literal(f64::INFINITY).is_err());
    }

    #[test]
    fn the_cell_query_groups_by_slices_score_and_label() {
        let q = adult(ScoreGrid::Exact).sql().unwrap();
        assert_eq!(q.args, vec![("positive".to_string(), Param::Number(1.0))]);
        let t = &q.text;
        assert!(t.starts_with("SELECT `slice_0`, `slice_1`, `score`, `label`, COUNT(*) AS `n`"), "{t}");
        assert!(t.ends_with("GROUP BY `slice_0`, `slice_1`, `score`, `label`"), "{t}");
        assert!(t.contains("FROM `db`.`preds` WHERE `label` IS NOT NULL AND `score_logreg` IS NOT NULL"), "{t}");
        assert!(t.contains("`race` AS `slice_0`"));
        assert!(t.contains(
            "CASE WHEN CAST(`age` AS DOUBLE) IS NULL OR isnan(CAST(`age` AS DOUBLE)) THEN NULL WHEN CAST(`age` AS DOUBLE) < 25.0D THEN 0 \
             WHEN CAST(`age` AS DOUBLE) < 45.5D THEN 1 ELSE 2 END AS `slice_1`"
        ));
        assert!(t.contains("CAST(`score_logreg` AS DOUBLE) AS `score`"));
        assert!(t.contains("1.0D AS `w`"));
        assert!(t.contains(
            "-LN(LEAST(GREATEST(CASE WHEN `label` = :positive THEN CAST(`score_logreg` AS DOUBLE) ELSE 1.0D - CAST(`score_logreg` AS DOUBLE) END, \
             2.220446049250313e-16D), 1.0D - 2.220446049250313e-16D)) AS `loss`"
        ));
        assert_eq!(adult(ScoreGrid::Exact).result_columns(), ["slice_0", "slice_1", "score", "label", "n", "sum_w", "sum_w2", "sum_loss", "sum_w_loss"]);
        let mut w = adult(ScoreGrid::Buckets(100));
        w.weight = Some("w`t".into());
        let t = w.sql().unwrap().text;
        assert!(t.contains("CAST(`w``t` AS DOUBLE) AS `w`"), "{t}");
        assert!(t.contains("CAST(LEAST(GREATEST(CASE WHEN CAST(`score_logreg` AS DOUBLE) < CAST(FLOOR(CAST(`score_logreg` AS DOUBLE) * 100.0D) AS DOUBLE) / 100.0D"), "{t}");
        assert!(t.contains(", 0), 99) AS INT) AS `score`"), "{t}");
        assert_eq!(w.columns_read(), ["label", "score_logreg", "w`t", "race", "age"]);
        // Grouped by the weight too: the engine's (slices, label, score, weight) cells.
        w.by_weight = true;
        let t = w.sql().unwrap().text;
        assert!(t.starts_with("SELECT `slice_0`, `slice_1`, `score`, `label`, `w` AS `weight`, COUNT(*)"), "{t}");
        assert!(t.ends_with("GROUP BY `slice_0`, `slice_1`, `score`, `label`, `w`"), "{t}");
        assert_eq!(w.result_columns()[4], "weight");
    }

    #[test]
    fn a_regression_run_is_grouped_by_its_exact_label_and_prediction() {
        let q = CellQuery { label: "wage".into(), score: "pred`x".into(), positive: None, ..adult(ScoreGrid::Exact) };
        let s = q.sql().unwrap();
        assert!(s.args.is_empty(), "no positive class: {:?}", s.args);
        assert!(!s.text.contains("LN(") && !s.text.contains(":positive"), "{}", s.text);
        assert!(s.text.contains("0.0D AS `loss`") && s.text.contains("`wage` AS `label`") && s.text.contains("CAST(`pred``x` AS DOUBLE) AS `score`"), "{}", s.text);
        assert!(s.text.ends_with("GROUP BY `slice_0`, `slice_1`, `score`, `label`"), "{}", s.text);
        assert_eq!(q.result_columns(), adult(ScoreGrid::Exact).result_columns());
        let d = pair_distinct_sql(&Source::table("db.preds").unwrap(), "wage", "pred`x");
        assert_eq!(d.text, "SELECT approx_count_distinct(xxhash64(CAST(`wage` AS DOUBLE), CAST(`pred``x` AS DOUBLE))) AS `d` FROM `db`.`preds`");
    }

    #[test]
    fn hostile_names_and_values_never_reach_the_text_unquoted() {
        let evil = "x` FROM t; DROP TABLE y; --";
        let q = CellQuery {
            source: Source::parquet("/tmp/`; DROP"),
            label: evil.into(),
            score: evil.into(),
            weight: Some(evil.into()),
            positive: Some(Param::Text("'); DROP TABLE z; --".into())),
            slices: vec![SliceColumn::Categorical(evil.into())],
            grid: ScoreGrid::Buckets(10),
            by_weight: true,
        };
        let s = q.sql().unwrap();
        assert!(!s.text.contains("DROP TABLE z"), "the positive label is a parameter");
        // Every backtick of a name is doubled: removing the quoted names leaves no name text.
        let stripped = s.text.replace(&quote_ident(evil), "").replace(&quote_ident("/tmp/`; DROP"), "");
        assert!(!stripped.contains("DROP"), "{stripped}");
        let bad_edges = SliceColumn::Numeric { column: "a".into(), edges: vec![2.0, 1.0] };
        assert!(CellQuery { slices: vec![bad_edges], ..q.clone() }.sql().is_err());
        let nan_edge = SliceColumn::Numeric { column: "a".into(), edges: vec![f64::NAN] };
        assert!(CellQuery { slices: vec![nan_edge], ..q.clone() }.sql().is_err());
        assert!(CellQuery { grid: ScoreGrid::Buckets(0), ..q }.sql().is_err());
    }

    #[test]
    fn schema_count_and_quantile_queries() {
        let s = Source::parquet("/d/p");
        assert_eq!(schema_sql(&s).text, "DESCRIBE QUERY SELECT * FROM parquet.`/d/p`");
        assert_eq!(count_sql(&s).text, "SELECT COUNT(*) AS `n` FROM parquet.`/d/p`");
        let q = quantiles_sql(&s, "age", &[0.25, 0.5], 10000).unwrap().text;
        assert_eq!(
            q,
            "SELECT approx_percentile(CAST(`age` AS DOUBLE), 0.25D, 10000) AS `q0`, approx_percentile(CAST(`age` AS DOUBLE), 0.5D, 10000) AS `q1` \
             FROM parquet.`/d/p` WHERE CAST(`age` AS DOUBLE) IS NOT NULL AND NOT isnan(CAST(`age` AS DOUBLE))"
        );
        assert!(quantiles_sql(&s, "age", &[0.0], 100).is_err() && quantiles_sql(&s, "age", &[], 100).is_err());
        assert_eq!(edges_from_quantiles(&[Some(3.0), None, Some(1.0), Some(3.0), Some(f64::NAN)]), vec![1.0, 3.0]);
    }

    #[test]
    fn drift_counts_quote_names_and_pass_the_label_as_a_parameter() {
        let s = Source::table("db.preds").unwrap();
        let req = vec!["la`bel".to_string(), "score".to_string()];
        let cols = vec![CountColumn { name: "age".into(), numeric: true }, CountColumn { name: "ra`ce".into(), numeric: false }];
        assert_eq!(
            distinct_counts_sql(&s, &cols, &req).text,
            "SELECT approx_count_distinct(CAST(`age` AS DOUBLE)) AS `d0`, approx_count_distinct(CAST(`ra``ce` AS STRING)) AS `d1` \
             FROM `db`.`preds` WHERE `la``bel` IS NOT NULL AND `score` IS NOT NULL"
        );
        let q = value_counts_sql(&s, &cols, Some(("la`bel", Param::Text("1".into()))), &req).unwrap();
        assert_eq!(
            q.text,
            "SELECT `v0`, `v1`, `v2`, grouping_id() AS `g`, COUNT(*) AS `n` FROM (SELECT CAST(`age` AS DOUBLE) AS `v0`, \
             CAST(`ra``ce` AS STRING) AS `v1`, CASE WHEN `la``bel` = :positive THEN 1.0D ELSE 0.0D END AS `v2` FROM `db`.`preds` \
             WHERE `la``bel` IS NOT NULL AND `score` IS NOT NULL) AS `rows` GROUP BY GROUPING SETS ((`v0`), (`v1`), (`v2`))"
        );
        assert_eq!(q.args, vec![("positive".to_string(), Param::Text("1".into()))]);
        assert!(value_counts_sql(&s, &cols, None, &[]).unwrap().args.is_empty());
        assert!(value_counts_sql(&s, &[], None, &[]).is_err());
    }

    #[test]
    fn the_bucket_rule_matches_threshold_tests() {
        // What the SQL computes, in Rust: the bucket of p is the number of grid points k/n ≤ p
        // (clamped), for scores where p·n rounds across an integer too.
        fn bucket(p: f64, n: u32) -> i64 {
            let nd = n as f64;
            let k = (p * nd).floor() as i64;
            let fixed = if p < k as f64 / nd { k - 1 } else if p >= (k + 1) as f64 / nd { k + 1 } else { k };
            fixed.clamp(0, n as i64 - 1)
        }
        for n in [3u32, 7, 10, 49, 100, 1000] {
            for k in 0..=n {
                let t = k as f64 / n as f64;
                for p in [t, f64::from_bits(t.to_bits().saturating_sub(1)), f64::from_bits(t.to_bits() + 1)] {
                    let want = (1..n).filter(|j| *j as f64 / n as f64 <= p).count() as i64;
                    assert_eq!(bucket(p, n), want, "p={p:e} n={n}");
                }
            }
        }
    }
}
