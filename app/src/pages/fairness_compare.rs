//! The fairness page's comparisons: a criterion × (model, threshold) matrix of verdicts, and an
//! A-vs-B view of two models or runs (per-group values, B − A with an interval, and a chart), in
//! the manner of Fairness Indicators' compare mode. Everything here is computed in the browser
//! from the view the server already sent, so switching A and B never recomputes.

use leptos::prelude::*;
use leptos_router::{
    NavigateOptions,
    hooks::{use_navigate, use_query_map},
};
use serde_json::json;

use crate::components::{PlotlyChart, fmt_metric};
use crate::metrics::at_threshold;
use crate::model::{CriterionCheck, Estimate, FairnessCard, FairnessEntry, Task};
use crate::pages::fairness::difference;
use crate::pages::slices::with_param;

/// Bar colours of the A-vs-B chart, one per threshold (the server charts' palette).
const PALETTE: [&str; 6] = ["#1f5fa8", "#d9822b", "#2e8540", "#8e44ad", "#c0392b", "#16a085"];

/// The criteria matrix: criteria as rows, the cards' (entry, threshold) as columns.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    /// Criterion names: the limits' order, then any other name a card checks.
    pub criteria: Vec<String>,
    /// (entry, threshold) of each column, in the cards' order (entry-major).
    pub columns: Vec<(usize, f64)>,
    /// `cells[criterion][column]`; `None` where the criterion is undefined (e.g. fewer than two
    /// groups with the metric defined).
    pub cells: Vec<Vec<Option<CriterionCheck>>>,
}

/// Lays the cards' checks out as a criterion × (entry, threshold) matrix. The verdicts are the
/// cards' own (the server's `check`): nothing is recomputed here.
pub fn matrix(cards: &[FairnessCard], limits: &[(String, f64)]) -> Matrix {
    let mut criteria: Vec<String> = limits.iter().map(|(n, _)| n.clone()).collect();
    for c in cards.iter().flat_map(|card| &card.checks) {
        if !criteria.contains(&c.name) {
            criteria.push(c.name.clone());
        }
    }
    let columns = cards.iter().map(|c| (c.entry, c.threshold)).collect();
    let cells = criteria.iter().map(|name| cards.iter().map(|card| card.checks.iter().find(|c| &c.name == name).cloned()).collect()).collect();
    Matrix { criteria, columns, cells }
}

/// Consecutive runs of columns with the same entry: (entry, how many columns), for the
/// grouped header row.
pub fn column_groups(columns: &[(usize, f64)]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (e, _) in columns {
        match out.last_mut() {
            Some((last, n)) if last == e => *n += 1,
            _ => out.push((*e, 1)),
        }
    }
    out
}

/// The symbol shown with a verdict, so it never rests on colour alone.
pub fn verdict_symbol(verdict: &str) -> &'static str {
    match verdict {
        "pass" => "✓",
        "fail" => "✗",
        "uncertain" => "?",
        _ => "—",
    }
}

/// How a criterion's value must stand to its limit: ratios at least, differences at most.
pub fn comparator(criterion: &str) -> &'static str {
    if criterion == "disparate_impact" { "≥" } else { "≤" }
}

/// Do all entries come from one run (several models of it)?
fn one_run(entries: &[FairnessEntry]) -> bool {
    entries.iter().all(|e| e.run_id == entries[0].run_id)
}

/// An entry's name on the page: the model for one run, `run · model` across runs (as the
/// per-metric tables write it).
pub fn entry_label(entries: &[FairnessEntry], i: usize) -> String {
    let e = &entries[i];
    if one_run(entries) { e.model.clone() } else { format!("{} · {}", e.run_name, e.model) }
}

/// The entry's value of `a=` / `b=` in the URL: the model for one run, else the run's id.
pub fn entry_key(entries: &[FairnessEntry], i: usize) -> String {
    if one_run(entries) { entries[i].model.clone() } else { entries[i].run_id.clone() }
}

/// The (A, B) entries from the URL's `a` and `b`: unknown or missing keys fall back to the first
/// entry for A and the first other entry for B. `None` with fewer than two entries.
pub fn pick_pair(entries: &[FairnessEntry], a: Option<&str>, b: Option<&str>) -> Option<(usize, usize)> {
    if entries.len() < 2 {
        return None;
    }
    let find = |k: Option<&str>| k.and_then(|k| (0..entries.len()).find(|i| entry_key(entries, *i) == k));
    let a = find(a).unwrap_or(0);
    let b = find(b).unwrap_or(if a == 0 { 1 } else { 0 });
    Some((a, b))
}

/// One row of an A-vs-B table: a group at a threshold (`None` for threshold-free metrics).
#[derive(Clone, Debug, PartialEq)]
pub struct AbRow {
    pub group: String,
    /// Under the minimum size in A or B.
    pub small: bool,
    pub threshold: Option<f64>,
    pub a: Option<Estimate>,
    pub b: Option<Estimate>,
    /// B − A with the approximate interval of [`difference`].
    pub diff: Option<(f64, Option<f64>, Option<f64>)>,
}

/// The groups of `feature` (A's, then any only B has) × the thresholds, with A's and B's
/// estimates of `metric` and B − A.
pub fn ab_rows(a: &FairnessEntry, b: &FairnessEntry, feature: &str, metric: &str, thresholds: &[f64]) -> Vec<AbRow> {
    let groups_a = a.result.slices.iter().filter(|s| s.spec == feature);
    let groups_b = b.result.slices.iter().filter(|s| s.spec == feature);
    let mut keys = Vec::new();
    for s in groups_a.chain(groups_b) {
        if !keys.contains(&&s.key) {
            keys.push(&s.key);
        }
    }
    let at: Vec<Option<f64>> = if at_threshold(Task::Binary, metric) { thresholds.iter().copied().map(Some).collect() } else { vec![None] };
    let mut rows = Vec::new();
    for key in keys {
        let sa = a.result.slices.iter().find(|s| s.spec == feature && &s.key == key);
        let sb = b.result.slices.iter().find(|s| s.spec == feature && &s.key == key);
        let Some(label) = sa.or(sb).map(|s| s.label()) else { continue };
        let small = sa.is_some_and(|s| s.too_small) || sb.is_some_and(|s| s.too_small);
        for t in &at {
            let ea = sa.and_then(|s| s.estimate(metric, *t)).cloned();
            let eb = sb.and_then(|s| s.estimate(metric, *t)).cloned();
            let diff = match (&ea, &eb) {
                (Some(x), Some(y)) => difference(y, x),
                _ => None,
            };
            rows.push(AbRow { group: label.clone(), small, threshold: *t, a: ea, b: eb, diff });
        }
    }
    rows
}

/// Does the interval of B − A leave out 0?
pub fn excludes_zero(diff: &Option<(f64, Option<f64>, Option<f64>)>) -> bool {
    matches!(diff, Some((_, Some(lo), Some(hi))) if *lo > 0.0 || *hi < 0.0)
}

/// Plotly JSON: B − A per group as bars (one trace per threshold) with error bars from the
/// difference's interval, and a line at zero.
pub fn ab_figure(rows: &[AbRow], metric: &str) -> String {
    let mut keys: Vec<Option<f64>> = Vec::new();
    for r in rows {
        if !keys.contains(&r.threshold) {
            keys.push(r.threshold);
        }
    }
    let data: Vec<serde_json::Value> = keys
        .iter()
        .enumerate()
        .map(|(k, t)| {
            let (mut x, mut y, mut plus, mut minus) = (vec![], vec![], vec![], vec![]);
            for r in rows.iter().filter(|r| r.threshold == *t) {
                let Some((d, lo, hi)) = r.diff else { continue };
                x.push(format!("{}{}", r.group, if r.small { " (small)" } else { "" }));
                y.push(d);
                plus.push(hi.map(|h| (h - d).max(0.0)).unwrap_or(0.0));
                minus.push(lo.map(|l| (d - l).max(0.0)).unwrap_or(0.0));
            }
            let name = t.map(|t| format!("threshold {t}")).unwrap_or_else(|| metric.to_string());
            json!({
                "type": "bar", "name": name, "x": x, "y": y,
                "marker": {"color": PALETTE[k % PALETTE.len()]},
                "error_y": {"type": "data", "array": plus, "arrayminus": minus, "visible": true, "color": "#333"},
                "hovertemplate": "%{x}<br>B − A %{y:.4f}<extra>%{fullData.name}</extra>",
            })
        })
        .collect();
    json!({
        "data": data,
        "layout": {"barmode": "group", "height": 340, "margin": {"t": 20, "b": 110, "l": 60, "r": 20},
            "shapes": [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": 0, "y1": 0, "line": {"color": "#333", "width": 1}}],
            "yaxis": {"title": {"text": format!("{metric}: B − A")}, "zeroline": false}, "legend": {"orientation": "h", "y": -0.35}}
    })
    .to_string()
}

/// The criteria matrix: one row per criterion, one column per (model, threshold), each cell the
/// verdict (symbol, word and colour), the value against its limit and the interval.
#[component]
pub fn CriteriaMatrix(cards: Vec<FairnessCard>, limits: Vec<(String, f64)>, entries: Vec<FairnessEntry>) -> impl IntoView {
    let m = matrix(&cards, &limits);
    let many = entries.len() > 1;
    let groups = column_groups(&m.columns);
    let label = |e: usize| entry_label(&entries, e);
    let head = if many {
        view! {
            <tr>
                <th scope="col" rowspan="2">"Criterion"</th>
                {groups.iter().map(|(e, n)| view! { <th scope="colgroup" colspan=n.to_string() class="fx-model">{label(*e)}</th> }).collect_view()}
            </tr>
            <tr>{m.columns.iter().map(|(_, t)| view! { <th scope="col" class="num">{format!("@ {t}")}</th> }).collect_view()}</tr>
        }
        .into_any()
    } else {
        view! {
            <tr>
                <th scope="col">"Criterion"</th>
                {m.columns.iter().map(|(e, t)| view! { <th scope="col" class="num">{format!("{} @ {t}", label(*e))}</th> }).collect_view()}
            </tr>
        }
        .into_any()
    };
    let body = m
        .criteria
        .iter()
        .zip(&m.cells)
        .map(|(name, row)| {
            let cells = row
                .iter()
                .zip(&m.columns)
                .map(|(cell, (e, t))| {
                    let column = format!("{} @ {t}", label(*e));
                    match cell {
                        Some(c) => {
                            let title = format!("{column}: {} [{}, {}] {} {} · lowest: {} · highest: {}", fmt_metric(c.value), fmt_metric(c.lo), fmt_metric(c.hi), comparator(&c.name), c.limit, c.lowest, c.highest);
                            view! {
                                <td class=format!("fx-cell {}", c.verdict) data-testid="matrix-cell" data-verdict=c.verdict.clone() title=title>
                                    <span class="fx-verdict">{format!("{} {}", verdict_symbol(&c.verdict), c.verdict)}</span>
                                    <span class="fx-value">{format!("{} {} {}", fmt_metric(c.value), comparator(&c.name), c.limit)}</span>
                                    <span class="fx-interval">{format!("[{}, {}]", fmt_metric(c.lo), fmt_metric(c.hi))}</span>
                                </td>
                            }
                            .into_any()
                        }
                        None => view! {
                            <td class="fx-cell undefined" data-testid="matrix-cell" data-verdict="undefined" title=format!("{column}: not defined (fewer than two groups with the metric)")>
                                <span class="fx-verdict">"— n/a"</span>
                            </td>
                        }
                        .into_any(),
                    }
                })
                .collect_view();
            view! { <tr><th scope="row">{name.replace('_', " ")}</th>{cells}</tr> }
        })
        .collect_view();
    view! {
        <p class="muted">"✓ pass: within the limit, interval too · ✗ fail · ? uncertain: the interval straddles the limit"</p>
        <div class="table-scroll" tabindex="0" role="region" aria-label="Criteria matrix">
            <table class="data fx-matrix" data-testid="criteria-matrix" aria-label="Verdict of each fairness criterion by model and threshold">
                <thead>{head}</thead>
                <tbody>{body}</tbody>
            </table>
        </div>
    }
}

/// A versus B: two pickers (in the URL as `a` and `b`), then per chosen metric a table of A's and
/// B's values per group and threshold with B − A and its interval, and a chart of B − A.
#[component]
pub fn AbCompare(entries: Vec<FairnessEntry>, feature: String, thresholds: Vec<f64>, metrics: Vec<String>, base_path: String, search: Memo<String>) -> impl IntoView {
    let query = use_query_map();
    let navigate = use_navigate();
    let labels: Vec<String> = (0..entries.len()).map(|i| entry_label(&entries, i)).collect();
    let keys: Vec<String> = (0..entries.len()).map(|i| entry_key(&entries, i)).collect();
    let paired = one_run(&entries);
    let entries = StoredValue::new(entries);
    let pair = Memo::new(move |_| {
        let q = query.read();
        entries.with_value(|e| pick_pair(e, q.get("a").as_deref(), q.get("b").as_deref()))
    });
    // Both keys go to the URL, so a copied link reopens exactly this pair.
    let choose = {
        let keys = keys.clone();
        move |which: &'static str, index: usize| {
            let Some((a, b)) = pair.get_untracked() else { return };
            // Choosing for one side what the other side shows swaps them.
            let (a, b) = match which {
                "a" if index == b => (b, a),
                "a" => (index, b),
                _ if index == a => (b, a),
                _ => (a, index),
            };
            let q = with_param(&with_param(&search.get_untracked(), "a", &keys[a]), "b", &keys[b]);
            navigate(&format!("{base_path}?{q}"), NavigateOptions { scroll: false, ..Default::default() });
        }
    };
    let picker = |which: &'static str, name: &'static str| {
        let choose = choose.clone();
        let labels = labels.clone();
        view! {
            <label>{format!("{name} ")}
                <select aria-label=format!("Model {name}") data-testid=format!("pick-{which}")
                    on:change=move |ev| { if let Ok(i) = event_target_value(&ev).parse::<usize>() { choose(which, i) } }>
                    {labels.iter().enumerate().map(|(i, l)| {
                        let chosen = move || pair.get().map(|p| if which == "a" { p.0 } else { p.1 }) == Some(i);
                        // The attribute for the server's HTML, the property once the user has touched the list.
                        view! { <option value=i.to_string() selected=chosen prop:selected=chosen>{l.clone()}</option> }
                    }).collect_view()}
                </select>
            </label>
        }
    };
    let name_of = {
        let labels = labels.clone();
        move |which: usize| pair.get().map(|p| labels[if which == 0 { p.0 } else { p.1 }].clone()).unwrap_or_default()
    };
    let note = if paired {
        "The interval of B − A combines A's and B's interval half-widths in quadrature, as if the two estimates were independent. \
         A and B score the same rows here, so their errors are positively correlated and a paired interval would usually be narrower: \
         read this one as conservative. (The engine does not compute paired intervals.)"
    } else {
        "The interval of B − A combines A's and B's interval half-widths in quadrature: the two runs have different rows, so their \
         estimates are treated as independent; the interval is approximate (it assumes each interval is symmetric)."
    };
    let tables = metrics
        .into_iter()
        .map(|metric| {
            let (feature, thresholds) = (feature.clone(), thresholds.clone());
            let m = metric.clone();
            let rows = Memo::new(move |_| pair.get().map(|(a, b)| entries.with_value(|e| ab_rows(&e[a], &e[b], &feature, &m, &thresholds))).unwrap_or_default());
            let m = metric.clone();
            let figure = Signal::derive(move || ab_figure(&rows.get(), &m));
            let (name_a, name_b) = (name_of.clone(), name_of.clone());
            view! {
                <h3>{format!("{metric}: B − A by group")}</h3>
                <PlotlyChart figure label=format!("{metric}: B minus A by group") />
                <div class="table-scroll" tabindex="0" role="region" aria-label=format!("{metric}: A versus B")>
                    <table class="data fairness" data-testid=format!("ab-{metric}")>
                        <thead><tr>
                            <th scope="col">"Group"</th><th scope="col" class="num">"Threshold"</th>
                            <th scope="col" class="num">{move || format!("A: {}", name_a(0))}</th><th scope="col" class="num">"A interval"</th>
                            <th scope="col" class="num">{move || format!("B: {}", name_b(1))}</th><th scope="col" class="num">"B interval"</th>
                            <th scope="col" class="num">"B − A"</th><th scope="col" class="num">"B − A interval (approx.)"</th><th scope="col">"Note"</th>
                        </tr></thead>
                        <tbody>
                            {move || rows.get().into_iter().map(|r| {
                                let interval = |e: &Option<Estimate>| e.as_ref().map(|e| format!("[{}, {}]", fmt_metric(e.lo), fmt_metric(e.hi))).unwrap_or_default();
                                let differs = excludes_zero(&r.diff);
                                view! {
                                    <tr class="ab-row" class:flag=differs>
                                        <td>{r.group.clone()}{r.small.then_some(" (small)")}</td>
                                        <td class="num">{r.threshold.map(|t| t.to_string()).unwrap_or_else(|| "—".into())}</td>
                                        <td class="num">{fmt_metric(r.a.as_ref().and_then(|e| e.value))}</td>
                                        <td class="num">{interval(&r.a)}</td>
                                        <td class="num">{fmt_metric(r.b.as_ref().and_then(|e| e.value))}</td>
                                        <td class="num">{interval(&r.b)}</td>
                                        <td class="num">{fmt_metric(r.diff.map(|d| d.0))}</td>
                                        <td class="num">{r.diff.map(|(_, lo, hi)| format!("[{}, {}]", fmt_metric(lo), fmt_metric(hi))).unwrap_or_default()}</td>
                                        <td>{differs.then_some("interval excludes 0")}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            }
        })
        .collect_view();
    view! {
        <section class="fx-ab" data-testid="ab-compare">
            <h2>"A versus B"</h2>
            <div class="controls">{picker("a", "A")}{picker("b", "B")}</div>
            <p class="muted" data-testid="ab-note">{note}</p>
            {tables}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{AtThreshold, MetricsResult, SliceResult};

    fn est(v: f64, h: f64) -> Estimate {
        Estimate { value: Some(v), lo: Some(v - h), hi: Some(v + h), method: "wilson".into() }
    }

    fn check(name: &str, verdict: &str) -> CriterionCheck {
        CriterionCheck { name: name.into(), limit: 0.1, value: Some(0.05), lo: Some(0.01), hi: Some(0.09), verdict: verdict.into(), lowest: "g=a".into(), highest: "g=b".into() }
    }

    fn slice(group: &str, fpr: &[(f64, f64)], auc: f64) -> SliceResult {
        SliceResult {
            spec: "g".into(),
            key: BTreeMap::from([("g".to_string(), group.to_string())]),
            count: 100,
            weight: 100.0,
            too_small: false,
            metrics: BTreeMap::from([("auc_roc".to_string(), est(auc, 0.02))]),
            at: fpr.iter().map(|(t, v)| AtThreshold { threshold: *t, tp: 0.0, fp: 0.0, tn: 0.0, fn_: 0.0, metrics: BTreeMap::from([("fpr".to_string(), est(*v, 0.03))]) }).collect(),
            vs_baseline: BTreeMap::new(),
            confusion: None,
            bounds: Default::default(),
        }
    }

    fn entry(run: &str, model: &str, slices: Vec<SliceResult>) -> FairnessEntry {
        FairnessEntry {
            run_id: run.into(),
            run_name: format!("Run {run}"),
            created_at: String::new(),
            model: model.into(),
            result: MetricsResult { model: model.into(), task: "binary".into(), thresholds: vec![0.3, 0.5], ci: 0.95, bootstrap: 0, seed: 0, baseline: "overall".into(), slices, criteria: vec![], notes: vec![] },
        }
    }

    #[test]
    fn matrix_has_a_row_per_limit_and_a_column_per_card() {
        let limits = vec![("demographic_parity".to_string(), 0.1), ("equal_opportunity".to_string(), 0.1)];
        let cards = vec![
            FairnessCard { entry: 0, threshold: 0.3, groups: 2, checks: vec![check("demographic_parity", "pass"), check("equal_opportunity", "fail")] },
            FairnessCard { entry: 0, threshold: 0.5, groups: 2, checks: vec![check("demographic_parity", "uncertain")] },
            FairnessCard { entry: 1, threshold: 0.3, groups: 2, checks: vec![check("equal_opportunity", "pass")] },
        ];
        let m = matrix(&cards, &limits);
        assert_eq!(m.criteria, ["demographic_parity", "equal_opportunity"]);
        assert_eq!(m.columns, [(0, 0.3), (0, 0.5), (1, 0.3)]);
        let verdicts: Vec<Vec<&str>> = m.cells.iter().map(|r| r.iter().map(|c| c.as_ref().map_or("-", |c| c.verdict.as_str())).collect()).collect();
        assert_eq!(verdicts, [vec!["pass", "uncertain", "-"], vec!["fail", "-", "pass"]]);
        assert_eq!(column_groups(&m.columns), [(0, 2), (1, 1)]);
    }

    #[test]
    fn verdicts_have_symbols_and_ratios_compare_the_other_way() {
        assert_eq!([verdict_symbol("pass"), verdict_symbol("fail"), verdict_symbol("uncertain")], ["✓", "✗", "?"]);
        assert_eq!((comparator("disparate_impact"), comparator("equalized_odds")), ("≥", "≤"));
    }

    #[test]
    fn pairs_default_to_the_first_two_and_follow_the_url() {
        let e = vec![entry("r1", "m1", vec![]), entry("r1", "m2", vec![]), entry("r1", "m3", vec![])];
        assert_eq!(pick_pair(&e, None, None), Some((0, 1)));
        assert_eq!(pick_pair(&e, Some("m3"), Some("m1")), Some((2, 0)));
        assert_eq!(pick_pair(&e, Some("m2"), None), Some((1, 0)));
        assert_eq!(pick_pair(&e, Some("nope"), Some("m3")), Some((0, 2)));
        assert_eq!(pick_pair(&e[..1], None, None), None);
        // Across runs the key is the run id and the label names both.
        let runs = vec![entry("r1", "m", vec![]), entry("r2", "m", vec![])];
        assert_eq!((entry_key(&runs, 1), entry_label(&runs, 1)), ("r2".to_string(), "Run r2 · m".to_string()));
        assert_eq!(pick_pair(&runs, Some("r2"), Some("r1")), Some((1, 0)));
    }

    #[test]
    fn ab_rows_are_b_minus_a_per_group_and_threshold() {
        let a = entry("r", "m1", vec![slice("x", &[(0.3, 0.2), (0.5, 0.1)], 0.8), slice("y", &[(0.3, 0.4), (0.5, 0.3)], 0.7)]);
        let b = entry("r", "m2", vec![slice("y", &[(0.3, 0.1), (0.5, 0.33)], 0.75), slice("z", &[(0.3, 0.5), (0.5, 0.5)], 0.6)]);
        let rows = ab_rows(&a, &b, "g", "fpr", &[0.3, 0.5]);
        let shape: Vec<(&str, Option<f64>)> = rows.iter().map(|r| (r.group.as_str(), r.threshold)).collect();
        assert_eq!(shape, [("g=x", Some(0.3)), ("g=x", Some(0.5)), ("g=y", Some(0.3)), ("g=y", Some(0.5)), ("g=z", Some(0.3)), ("g=z", Some(0.5))]);
        assert!(rows[0].b.is_none() && rows[0].diff.is_none(), "x is only in A");
        let (d, lo, hi) = rows[2].diff.unwrap();
        assert!((d - (0.1 - 0.4)).abs() < 1e-12);
        let h = (2.0f64 * 0.03 * 0.03).sqrt();
        assert!((hi.unwrap() - d - h).abs() < 1e-12 && (d - lo.unwrap() - h).abs() < 1e-12);
        assert!(excludes_zero(&rows[2].diff) && !excludes_zero(&rows[3].diff), "−0.3 ± 0.042 leaves 0 out; +0.03 ± 0.042 does not");
        // A threshold-free metric has one row per group.
        let free = ab_rows(&a, &b, "g", "auc_roc", &[0.3, 0.5]);
        assert_eq!(free.iter().map(|r| r.threshold).collect::<Vec<_>>(), [None, None, None]);
        assert!((free[1].diff.unwrap().0 - (0.75 - 0.7)).abs() < 1e-12);
    }

    #[test]
    fn the_figure_has_a_trace_per_threshold_with_the_differences() {
        let a = entry("r", "m1", vec![slice("x", &[(0.3, 0.2), (0.5, 0.1)], 0.8)]);
        let b = entry("r", "m2", vec![slice("x", &[(0.3, 0.25), (0.5, 0.05)], 0.8)]);
        let fig: serde_json::Value = serde_json::from_str(&ab_figure(&ab_rows(&a, &b, "g", "fpr", &[0.3, 0.5]), "fpr")).unwrap();
        let data = fig["data"].as_array().unwrap();
        assert_eq!(data.len(), 2);
        assert_eq!(data[0]["name"], "threshold 0.3");
        assert!((data[1]["y"][0].as_f64().unwrap() + 0.05).abs() < 1e-12);
        assert!(data[0]["error_y"]["array"][0].as_f64().unwrap() > 0.0);
    }
}
