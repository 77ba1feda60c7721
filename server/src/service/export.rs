//! Exports of a fairness view: CSV and JSON of the numbers, and a self-contained HTML report
//! (charts with plotly.js inlined, tables, the runs' metadata and the exact request).

use std::fmt::Write;

use strata_app::fairness_compare::{ab_rows, comparator, entry_label, excludes_zero, matrix, pick_pair, verdict_symbol};
use strata_app::model::FairnessView;

use crate::charts::THRESHOLD_FREE;

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A CSV field, quoted when needed; a leading `=`, `+`, `-` or `@` is prefixed with `'` so a
/// spreadsheet does not run a group name as a formula.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) && s.parse::<f64>().is_err() { format!("'{s}") } else { s.to_string() };
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

fn num(v: Option<f64>) -> String {
    v.map(|x| format!("{x}")).unwrap_or_default()
}

/// One line per (model, group, threshold, metric) with value, interval, counts and the gap.
pub fn fairness_csv(v: &FairnessView) -> String {
    let mut out = String::from("run,model,group,count,threshold,metric,value,lo,hi,method,tp,fp,tn,fn,diff,ratio,p_value,q_value,significant\n");
    for e in &v.entries {
        for s in e.result.slices.iter().filter(|s| s.spec == v.feature || s.key.is_empty()) {
            for m in &v.metrics {
                let thresholds: Vec<Option<f64>> = if THRESHOLD_FREE.contains(&m.as_str()) { vec![None] } else { v.thresholds.iter().map(|t| Some(*t)).collect() };
                for t in thresholds {
                    let Some(est) = s.estimate(m, t) else { continue };
                    let at = t.and_then(|t| s.at.iter().find(|a| a.threshold == t));
                    let key = match t { Some(t) => format!("{m}@{t}"), None => m.clone() };
                    let c = s.vs_baseline.get(&key);
                    let cells = [
                        csv_field(&e.run_name),
                        csv_field(&e.model),
                        csv_field(&s.label()),
                        s.count.to_string(),
                        num(t),
                        m.clone(),
                        num(est.value),
                        num(est.lo),
                        num(est.hi),
                        est.method.clone(),
                        num(at.map(|a| a.tp)),
                        num(at.map(|a| a.fp)),
                        num(at.map(|a| a.tn)),
                        num(at.map(|a| a.fn_)),
                        num(c.and_then(|c| c.diff)),
                        num(c.and_then(|c| c.ratio)),
                        num(c.and_then(|c| c.p_value)),
                        num(c.and_then(|c| c.q_value)),
                        c.map(|c| c.significant.to_string()).unwrap_or_default(),
                    ];
                    out.push_str(&cells.join(","));
                    out.push('\n');
                }
            }
        }
    }
    out
}

/// The A-vs-B pair of a report: the page's `a=` / `b=` (a model of the run, or a run's id).
#[derive(Clone, Debug, Default)]
pub struct AbPair {
    pub a: Option<String>,
    pub b: Option<String>,
}

impl AbPair {
    fn is_set(&self) -> bool {
        self.a.is_some() || self.b.is_some()
    }
}

/// A standalone HTML report of the view: the criteria matrix, each card in detail, the A-vs-B
/// tables when the page had a pair (`ab`), and each metric by group. `plotly_js` is inlined
/// when given (the report then needs no network and no Strata server); without it the tables
/// are still complete.
pub fn fairness_html(v: &FairnessView, request: &str, plotly_js: Option<&str>, ab: &AbPair) -> String {
    let e = html_escape;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Strata fairness report: {}</title><style>\
         body{{font-family:system-ui,sans-serif;margin:2rem;color:#1d2733}}table{{border-collapse:collapse;margin:0.5rem 0 1.5rem;font-size:0.9rem}}\
         th,td{{border-bottom:1px solid #d5dbe3;padding:0.25rem 0.5rem;text-align:left}}td.num{{text-align:right;font-variant-numeric:tabular-nums}}\
         .fail{{color:#b3261e;font-weight:600}}.pass{{color:#1e7d32}}.uncertain{{color:#9a6700}}tr.flag td{{background:#fff4e5}}code{{background:#eef2f6;padding:0 0.2rem}}\
         td.cell span{{display:block}}\
         </style></head><body>",
        e(&v.entries.iter().map(|x| x.run_name.as_str()).collect::<Vec<_>>().join(", "))
    );
    let _ = write!(h, "<h1>Fairness report</h1><p>Groups: <code>{}</code> · thresholds {} · baseline <code>{}</code> · groups under {} rows are marked small.</p>",
        e(&v.feature), v.thresholds.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", "), e(&v.baseline), v.min_size);
    let _ = write!(h, "<p>Request: <code>{}</code></p><table><tr><th>Run</th><th>Id</th><th>Uploaded</th><th>Model</th><th>Intervals</th></tr>", e(request));
    for x in &v.entries {
        let _ = write!(h, "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}% ({} bootstrap replicates, seed {})</td></tr>",
            e(&x.run_name), e(&x.run_id), e(&x.created_at), e(&x.model), (x.result.ci * 100.0).round(), x.result.bootstrap, x.result.seed);
    }
    h.push_str("</table>");
    criteria_matrix_html(&mut h, v);
    if ab.is_set() {
        ab_html(&mut h, v, ab);
    }
    h.push_str("<h2>Criteria in detail</h2>");
    for card in &v.cards {
        let entry = &v.entries[card.entry];
        let _ = write!(h, "<h3>{} · {} @ {}</h3><table><tr><th>Criterion</th><th>Value</th><th>Interval</th><th>Limit</th><th>Verdict</th><th>Lowest / highest group</th></tr>", e(&entry.run_name), e(&entry.model), card.threshold);
        for c in &card.checks {
            let _ = write!(h, "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">[{}, {}]</td><td class=\"num\">{}{}</td><td class=\"{}\">{}</td><td>{} / {}</td></tr>",
                e(&c.name), fmt(c.value), fmt(c.lo), fmt(c.hi), if c.name == "disparate_impact" { "≥ " } else { "≤ " }, c.limit, e(&c.verdict), e(&c.verdict), e(&c.lowest), e(&c.highest));
        }
        h.push_str("</table>");
    }
    for (i, (metric, fig)) in v.charts.iter().enumerate() {
        let _ = write!(h, "<h2>{}</h2>", e(metric));
        if plotly_js.is_some() {
            // JSON inside a <script> element: no `<` at all (only inside strings in JSON, where
            // \u003c means the same), so neither `</script` nor `<!--` can appear.
            let _ = write!(h, "<div id=\"chart{i}\"></div><script>(function(){{var f={};Plotly.newPlot('chart{i}',f.data,f.layout,{{displaylogo:false}});}})();</script>", fig.replace('<', "\\u003c"));
        }
        h.push_str("<table><tr><th>Model</th><th>Group</th><th>Threshold</th><th>Value</th><th>Interval</th><th>Count</th><th>Diff vs baseline</th><th>Ratio</th><th>q-value</th></tr>");
        for x in &v.entries {
            for s in x.result.slices.iter().filter(|s| s.spec == v.feature) {
                let thresholds: Vec<Option<f64>> = if THRESHOLD_FREE.contains(&metric.as_str()) { vec![None] } else { v.thresholds.iter().map(|t| Some(*t)).collect() };
                for t in thresholds {
                    let Some(est) = s.estimate(metric, t) else { continue };
                    let key = match t { Some(t) => format!("{metric}@{t}"), None => metric.clone() };
                    let c = s.vs_baseline.get(&key);
                    let flag = c.is_some_and(|c| c.significant);
                    let _ = write!(h, "<tr{}><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">[{}, {}]</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                        if flag { " class=\"flag\"" } else { "" }, e(&x.model), e(&s.label()), t.map(|t| t.to_string()).unwrap_or_default(), fmt(est.value), fmt(est.lo), fmt(est.hi), s.count,
                        fmt(c.and_then(|c| c.diff)), fmt(c.and_then(|c| c.ratio)), c.and_then(|c| c.q_value).map(|q| format!("{q:.2e}")).unwrap_or_default());
                }
            }
        }
        h.push_str("</table>");
    }
    if let Some(js) = plotly_js {
        // plotly.js must load before the charts' scripts run: put it in front of them.
        let at = h.find("<h1>").unwrap_or(0);
        h.insert_str(at, &format!("<script>{}</script>", js.replace("</script", "<\\/script")));
    }
    h.push_str("<p>Made by Strata. Intervals: Wilson for rates, percentile bootstrap otherwise; q-values are Benjamini–Hochberg adjusted.</p></body></html>");
    h
}

/// The criterion × (model, threshold) matrix, as on the page (the same layout function).
fn criteria_matrix_html(h: &mut String, v: &FairnessView) {
    let e = html_escape;
    let m = matrix(&v.cards, &v.limits);
    let label = |i: usize| if i < v.entries.len() { entry_label(&v.entries, i) } else { String::new() };
    h.push_str("<h2>Criteria matrix</h2><p>✓ pass: within the limit, interval too · ✗ fail · ? uncertain: the interval straddles the limit</p><table class=\"matrix\"><tr><th>Criterion</th>");
    for (entry, t) in &m.columns {
        let _ = write!(h, "<th>{} @ {t}</th>", e(&label(*entry)));
    }
    h.push_str("</tr>");
    for (name, row) in m.criteria.iter().zip(&m.cells) {
        let _ = write!(h, "<tr><th>{}</th>", e(&name.replace('_', " ")));
        for cell in row {
            match cell {
                Some(c) => {
                    let _ = write!(h, "<td class=\"cell {}\"><span>{} {}</span><span>{} {} {}</span><span>[{}, {}]</span></td>",
                        e(&c.verdict), verdict_symbol(&c.verdict), e(&c.verdict), fmt(c.value), comparator(&c.name), c.limit, fmt(c.lo), fmt(c.hi));
                }
                None => h.push_str("<td class=\"cell\">— n/a</td>"),
            }
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");
}

/// The A-vs-B tables: per metric, A's and B's value per group and threshold, and B − A with
/// its approximate interval (the page's rows).
fn ab_html(h: &mut String, v: &FairnessView, ab: &AbPair) {
    let e = html_escape;
    let Some((a, b)) = pick_pair(&v.entries, ab.a.as_deref(), ab.b.as_deref()) else {
        h.push_str("<h2>A vs B</h2><p>A vs B needs two models or runs in the view.</p>");
        return;
    };
    let (la, lb) = (entry_label(&v.entries, a), entry_label(&v.entries, b));
    let _ = write!(h, "<h2>A vs B</h2><p>A: {} · B: {} · groups of <code>{}</code>. The interval of B − A combines A's and B's half-widths in quadrature (approximate).</p>", e(&la), e(&lb), e(&v.feature));
    for metric in &v.metrics {
        let _ = write!(h, "<h3>{}</h3><table class=\"ab\"><tr><th>Group</th><th>Threshold</th><th>A</th><th>A interval</th><th>B</th><th>B interval</th><th>B − A</th><th>Interval of B − A</th></tr>", e(metric));
        for r in ab_rows(&v.entries[a], &v.entries[b], &v.feature, metric, &v.thresholds) {
            let est = |x: &Option<strata_app::model::Estimate>| (fmt(x.as_ref().and_then(|x| x.value)), format!("[{}, {}]", fmt(x.as_ref().and_then(|x| x.lo)), fmt(x.as_ref().and_then(|x| x.hi))));
            let ((va, ia), (vb, ib)) = (est(&r.a), est(&r.b));
            let (d, di) = match r.diff {
                Some((d, lo, hi)) => (fmt(Some(d)), format!("[{}, {}]", fmt(lo), fmt(hi))),
                None => (fmt(None), String::new()),
            };
            let _ = write!(h, "<tr{}><td>{}{}</td><td class=\"num\">{}</td><td class=\"num\">{va}</td><td class=\"num\">{ia}</td><td class=\"num\">{vb}</td><td class=\"num\">{ib}</td><td class=\"num\">{d}</td><td class=\"num\">{di}</td></tr>",
                if excludes_zero(&r.diff) { " class=\"flag\"" } else { "" }, e(&r.group), if r.small { " (small)" } else { "" }, r.threshold.map(|t| t.to_string()).unwrap_or_else(|| "—".into()));
        }
        h.push_str("</table>");
    }
}

fn fmt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "—".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_name_cannot_break_out_of_the_report() {
        let name = "</script><script>alert(1)</script><!--";
        let v = FairnessView {
            entries: vec![],
            feature: name.into(),
            thresholds: vec![0.5],
            metrics: vec!["fpr".into()],
            baseline: "overall".into(),
            min_size: 1,
            cards: vec![],
            charts: vec![("fpr".into(), serde_json::json!({"data": [{"x": [name]}], "layout": {}}).to_string())],
            tradeoff_chart: None,
            suggestion: None,
            over_time_chart: None,
            flip: None,
            flip_note: None,
            models: vec![],
            features: vec![],
            metric_names: vec![],
            limits: vec![],
            limits_stored: false,
            columns: vec![],
        };
        let html = fairness_html(&v, name, Some("/* plotly */"), &AbPair::default());
        assert!(!html.contains("<script>alert(1)") && !html.contains("<!--"), "{html}");
        assert_eq!(html.matches("<script>").count(), 2, "plotly.js and the one chart");
        assert!(html.contains("<h2>Criteria matrix</h2>") && !html.contains("<h2>A vs B</h2>"));
    }

    #[test]
    fn escapes_markup_and_spreadsheet_formulas() {
        assert_eq!(html_escape("<b>\"x\"&'"), "&lt;b&gt;&quot;x&quot;&amp;&#39;");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_field("-0.5"), "-0.5");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }
}
