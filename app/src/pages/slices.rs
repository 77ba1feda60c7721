//! `/runs/{id}/slices`: metrics per slice with intervals and baseline gaps.
//! URL state: `model`, `slice` (repeatable), `thresholds`, `metric`, `baseline`, `sort`.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{
    NavigateOptions,
    components::Form,
    hooks::{use_location, use_navigate, use_params_map, use_query_map},
};

use crate::components::{ErrorBox, PlotlyChart, fmt_metric};
use crate::pickers::{
    BaselinePicker, FieldError, FieldMessage, SlicePicker, ThresholdChips, clean_error, last_choice, load_keeping_form, parse_threshold_list, spec_fits,
};
use crate::metrics::{self, Direction};
use crate::model::{SliceResult, SliceView};
use crate::pages::runs::urlencode;
use crate::progress::{JobProgress, SlowJob};
use crate::server_fns::get_slice_view;


/// The query string with `key` set to `value` (other parameters, repeated ones too, kept).
pub fn with_param(query: &str, key: &str, value: &str) -> String {
    let mut parts: Vec<String> = query
        .trim_start_matches('?')
        .split('&')
        .filter(|p| !p.is_empty() && p.split('=').next() != Some(key))
        .map(str::to_string)
        .collect();
    parts.push(format!("{key}={}", urlencode(value)));
    parts.join("&")
}

/// The query string without `key`.
pub fn without_param(query: &str, key: &str) -> String {
    query
        .trim_start_matches('?')
        .split('&')
        .filter(|p| !p.is_empty() && p.split('=').next() != Some(key))
        .collect::<Vec<_>>()
        .join("&")
}

/// Orders slices for the table: worst first, by the metric's direction in the registry (metrics
/// with no better side, and biases, by the size of the gap to the baseline).
pub fn sort_slices(slices: &mut [SliceResult], metric: &str, threshold: Option<f64>, sort: &str) {
    let value = |s: &SliceResult| s.estimate(metric, threshold).and_then(|e| e.value);
    let key = metric_key(metric, threshold);
    let gap = |s: &SliceResult| s.vs_baseline.get(&key).and_then(|c| c.diff).map(f64::abs);
    match sort {
        "count" => slices.sort_by(|a, b| b.count.cmp(&a.count)),
        "slice" => slices.sort_by_key(|a| a.label()),
        _ => slices.sort_by(|a, b| {
            let (x, y) = match metrics::direction(metric) {
                Direction::Neither | Direction::Zero => (gap(b), gap(a)),
                Direction::Lower => (value(b), value(a)),
                Direction::Higher => (value(a), value(b)),
            };
            // Undefined values last.
            match (x, y) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            }
        }),
    }
}

fn metric_key(metric: &str, threshold: Option<f64>) -> String {
    match threshold {
        Some(t) => format!("{metric}@{t}"),
        None => metric.to_string(),
    }
}

/// The slices form's parameters: a rejected one is dropped to keep a result on the page.
const FORM_KEYS: &[&str] = &["slice", "thresholds", "baseline", "model", "metric"];

/// Where the user's last slicing is remembered in the browser.
const LAST_SLICE: &str = "strata.slices.slice";

#[component]
pub fn SlicesPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let location = use_location();
    let navigate = use_navigate();
    let id = Memo::new(move |_| params.read().get("id").unwrap_or_default());
    let search = Memo::new(move |_| location.search.get().trim_start_matches('?').to_string());
    // The sort order is applied in the browser: changing it does not recompute the metrics.
    let computed_query = Memo::new(move |_| without_param(&search.get(), "sort"));
    let sort = Memo::new(move |_| query.read().get("sort").unwrap_or_else(|| "worst".into()));
    // A slow request (a first analysis of a large run, many replicates) shows its progress.
    let job = SlowJob::default();
    let view_data = Resource::new(
        move || (id.get(), computed_query.get()),
        move |(id, q)| {
            load_keeping_form(q, FORM_KEYS, move |q| {
                let id = id.clone();
                async move {
                    let j = job.start();
                    let r = get_slice_view(id, q, j.clone()).await;
                    job.end(&j);
                    r
                }
            })
        },
    );
    // The last view that worked stays on the page while a rejected request is fixed.
    let last_good = StoredValue::new(None::<SliceView>);
    let pending = RwSignal::new(false);
    // No slicing in the URL and none from the project's gates: the user's last one (if this run
    // has its columns); a slicing that worked becomes the last one.
    Effect::new(move |_| {
        let Some(Ok((v, None))) = view_data.get() else { return };
        let path = format!("/runs/{}/slices", id.get_untracked());
        if let Some(url) = last_choice(LAST_SLICE, &path, &search.get_untracked(), "slice", !v.gate_slices.is_empty(), |l| spec_fits(l, &v.columns)) {
            navigate(&url, NavigateOptions { replace: true, scroll: false, ..Default::default() });
        }
    });

    view! {
        <Title text="Slices" />
        <div class="page-head">
            <h1>"Metrics by slice"</h1>
            <a href=move || format!("/runs/{}", id.get())>"← run overview"</a>
        </div>
        <crate::pages::team::ShareView run_id=id.get_untracked() />
        <JobProgress job=job.shown() label="Computing" />
        // A Transition, not a Suspense: while a changed view is computed the shown one stays (busy),
        // then is rebuilt in place (same table and chart elements; charts.js redraws the chart with
        // `Plotly.react`). The first load is server-rendered as before.
        <Transition fallback=|| view! { <p>"Computing…"</p> } set_pending=pending.write_only()>
            <div class="view-updating" aria-busy=move || pending.try_get().unwrap_or(false).then_some("true")>
            {move || Suspend::new(async move {
                match view_data.await {
                    Err(e) => view! { <ErrorBox message=clean_error(&e.to_string()) /> }.into_any(),
                    Ok((v, error)) => {
                        let (shown, note) = crate::pickers::shown_result(last_good, &v, error.is_some());
                        view! {
                            <SliceForm v error />
                            {note.map(|n| view! { <p class="muted kept-result" data-testid="kept-result">{n}</p> })}
                            <SliceViewPanel v=shown id=id.get_untracked() search sort />
                        }.into_any()
                    }
                }
            })}
            </div>
        </Transition>
    }
}

/// The slicing form: column pickers (and the spec text), thresholds and baseline; Apply writes
/// the URL (`slice`, `thresholds`, `baseline`; empty ones left out; the model, metric, sort and
/// the interval and testing settings in the URL kept).
#[component]
fn SliceForm(v: SliceView, error: Option<FieldError>) -> impl IntoView {
    let query = use_query_map();
    let url = |k: &str| query.read_untracked().get_all(k).unwrap_or_default().join("; ");
    let in_url = url("slice");
    let spec = RwSignal::new(if in_url.trim().is_empty() { v.gate_slices.join("; ") } else { in_url });
    let thresholds = RwSignal::new(parse_threshold_list(&url("thresholds")).unwrap_or_else(|| v.result.thresholds.clone()));
    let baseline = RwSignal::new(match url("baseline") {
        b if b.trim().is_empty() => "overall".to_string(),
        b => b,
    });
    let mut seen: Vec<(String, String)> = Vec::new();
    for s in &v.result.slices {
        for (c, x) in &s.key {
            if !seen.iter().any(|(a, b)| a == c && b == x) {
                seen.push((c.clone(), x.clone()));
            }
        }
    }
    let binary = v.result.task == "binary";
    let other_error = error.as_ref().filter(|e| !["slice", "thresholds", "baseline"].contains(&e.field.as_str())).map(|e| e.message.clone());
    let hidden = move |k: &'static str| {
        view! { <input type="hidden" name=move || query.read().get(k).filter(|x| !x.is_empty()).map(|_| k) value=move || query.read().get(k).unwrap_or_default() /> }
    };
    view! {
        <Form method="GET" action="" on_form_data=crate::pickers::drop_unnamed_entries()>
            <div class="controls picker-form">
                <SlicePicker columns=v.columns.clone() spec name="slice" label="Slice by" error=FieldError::about(&error, "slice") />
            </div>
            <div class="controls">
                {binary.then(|| view! { <ThresholdChips values=thresholds error=FieldError::about(&error, "thresholds") /> })}
                <BaselinePicker columns=v.columns.clone() spec=Signal::derive(move || spec.get()) value=baseline seen error=FieldError::about(&error, "baseline") />
                {hidden("model")}
                {hidden("metric")}
                // Interval and testing settings given in the URL stay when the slicing changes.
                {hidden("bootstrap")}
                {hidden("seed")}
                {hidden("ci")}
                {hidden("min_size")}
                {hidden("alpha")}
                {hidden("sort")}
                <button type="submit">"Apply"</button>
            </div>
            <FieldMessage id="form-error".to_string() message=other_error />
        </Form>
    }
}

#[component]
fn SliceViewPanel(v: SliceView, id: String, search: Memo<String>, sort: Memo<String>) -> impl IntoView {
    let navigate = use_navigate();
    let go = {
        let id = id.clone();
        move |key: &str, value: String| {
            let url = format!("/runs/{id}/slices?{}", with_param(&search.get_untracked(), key, &value));
            navigate(&url, NavigateOptions { scroll: false, ..Default::default() });
        }
    };
    let metric = v.metric.clone();
    let threshold = v.threshold;
    let all_slices = v.result.slices.clone();
    let key = metric_key(&metric, threshold);
    let chart = Signal::derive({
        let c = v.chart.clone();
        move || c.clone()
    });
    let (go1, go2, go3, go4) = (go.clone(), go.clone(), go.clone(), go.clone());
    let first_threshold = v.result.thresholds.first().copied().unwrap_or(0.5);
    let thresholds_text = v.result.thresholds.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ");
    let flagged = all_slices.iter().filter(|s| s.vs_baseline.get(&key).is_some_and(|c| c.significant)).count();
    let (table_metric, table_key) = (metric.clone(), key.clone());
    // One click from these slices to the same metric across the project's runs.
    let over_time = v.project.clone().map(|p| {
        let spec = v.result.slices.iter().find(|s| s.spec != "overall").map(|s| s.spec.clone()).unwrap_or_else(|| "overall".into());
        let mut href = format!("/projects/{}?metric={}&model={}&slice={}", urlencode(&p), urlencode(&metric), urlencode(&v.result.model), urlencode(&spec));
        if let Some(t) = threshold {
            href.push_str(&format!("&threshold={t}"));
        }
        view! { <p><a href=href data-testid="over-time">{format!("{metric} by {spec} across the runs of project {p} →")}</a></p> }
    });
    let rows = move || {
        let mut slices = all_slices.clone();
        sort_slices(&mut slices, &table_metric, threshold, &sort.get());
        let (metric, key) = (table_metric.clone(), table_key.clone());
        slices.into_iter().map(move |s| {
            let e = s.estimate(&metric, threshold).cloned();
            let c = s.vs_baseline.get(&key).cloned();
            let significant = c.as_ref().is_some_and(|c| c.significant);
            let matrix = confusion_of(&s, threshold);
            view! {
                <tr class="slice-row" class:flag=significant>
                    <td>{s.label()}{s.too_small.then_some(" (too small)")}{matrix.map(|m| view! { <ConfusionDetails m /> })}</td>
                    <td class="num">{s.count.to_string()}</td>
                    <td class="num">{fmt_metric(e.as_ref().and_then(|e| e.value))}
                        {s.bounds.get(&key).map(|b| view! { <span class="muted bounds" title="The least and greatest value any order of the scores inside a score bucket gives">{format!(" (bucket bounds {}–{})", fmt_metric(Some(b.lower)), fmt_metric(Some(b.upper)))}</span> })}</td>
                    <td class="num">{e.as_ref().map(|e| format!("[{}, {}] {}", fmt_metric(e.lo), fmt_metric(e.hi), e.method)).unwrap_or_default()}</td>
                    <td class="num">{fmt_metric(c.as_ref().and_then(|c| c.diff))}</td>
                    <td class="num">{fmt_metric(c.as_ref().and_then(|c| c.ratio))}</td>
                    <td class="num">{c.as_ref().and_then(|c| c.q_value).map(|q| format!("{q:.2e}")).unwrap_or_default()}</td>
                    <td>{significant.then_some("significant gap")}</td>
                </tr>
            }
        }).collect_view()
    };
    view! {
        <div class="controls">
            <label>"Model "
                <select aria-label="Model" prop:value=v.result.model.clone() on:change=move |ev| go1("model", event_target_value(&ev))>
                    {v.models.iter().map(|m| view! { <option value=m.clone() selected=*m == v.result.model>{m.clone()}</option> }).collect_view()}
                </select>
            </label>
            <label>"Metric "
                <select aria-label="Metric" prop:value=metric.clone() on:change=move |ev| go2("metric", event_target_value(&ev))>
                    {v.metric_names.iter().map(|m| view! { <option value=m.clone() selected=*m == metric>{crate::metrics::display(m)}</option> }).collect_view()}
                </select>
            </label>
            <label>"Sort "
                <select aria-label="Sort" prop:value=move || sort.get() on:change=move |ev| go3("sort", event_target_value(&ev))>
                    {[("worst", "worst first"), ("count", "largest first"), ("slice", "by slice")].into_iter().map(|(k, t)| view! {
                        <option value=k selected=move || k == sort.get()>{t}</option>
                    }).collect_view()}
                </select>
            </label>
            {(v.result.task == "binary").then(|| view! {
                <label>"Threshold "
                    <input type="range" min="0" max="1" step="0.01" aria-label="Threshold"
                        prop:value=first_threshold.to_string()
                        on:change=move |ev| go4("thresholds", event_target_value(&ev)) />
                    <output data-testid="threshold-value">{format!("{first_threshold}")}</output>
                </label>
            })}
        </div>
        <p class="muted">
            {format!("{}{} · {}% intervals ({} bootstrap replicates, seed {}) · baseline {} · ",
                v.result.model,
                // Thresholds only mean something for a binary model's scores.
                if thresholds_text.is_empty() { String::new() } else { format!(" · thresholds {thresholds_text}") },
                (v.result.ci * 100.0).round(), v.result.bootstrap, v.result.seed, v.result.baseline)}
            <strong data-testid="flagged">{format!("{flagged} slices differ significantly (BH-adjusted q ≤ 0.05)")}</strong>
        </p>
        {(!v.result.notes.is_empty()).then(|| view! {
            <ul class="muted result-notes" data-testid="result-notes">{v.result.notes.iter().map(|n| view! { <li>{n.clone()}</li> }).collect_view()}</ul>
        })}
        {over_time}
        <PlotlyChart figure=chart label=format!("{key} by slice") />
        <div class="table-scroll" tabindex="0" role="region" aria-label="Metrics by slice">
        <table class="data slices">
            <thead><tr><th>"Slice"</th><th class="num">"Count"</th><th class="num">{key.clone()}</th><th class="num">"95% interval"</th>
                <th class="num">"Diff vs baseline"</th><th class="num">"Ratio"</th><th class="num">"q-value"</th><th>""</th></tr></thead>
            <tbody>
                {rows}
            </tbody>
        </table>
        </div>
    }
}

/// A slice's confusion matrix: multiclass as computed, binary at the threshold shown (rows: true
/// class, columns: predicted class).
pub fn confusion_of(s: &SliceResult, threshold: Option<f64>) -> Option<crate::model::ConfusionMatrix> {
    if let Some(m) = &s.confusion {
        return Some(m.clone());
    }
    let at = match threshold {
        Some(t) => s.at.iter().find(|a| a.threshold == t),
        None => s.at.first(),
    }?;
    Some(crate::model::ConfusionMatrix { classes: vec!["0".into(), "1".into()], counts: vec![vec![at.tn, at.fp], vec![at.fn_, at.tp]] })
}

/// A collapsible confusion matrix (native `<details>`: works before hydration and without JS).
#[component]
fn ConfusionDetails(m: crate::model::ConfusionMatrix) -> impl IntoView {
    let header = m.classes.clone();
    view! {
        <details class="confusion">
            <summary>"confusion"</summary>
            <table class="data confusion-matrix">
                <thead><tr><th>"true ↓ / predicted →"</th>{header.into_iter().map(|c| view! { <th class="num">{c}</th> }).collect_view()}</tr></thead>
                <tbody>
                    {m.classes.iter().zip(&m.counts).map(|(c, row)| view! {
                        <tr><th>{c.clone()}</th>{row.iter().map(|v| view! { <td class="num">{if v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v:.2}") }}</td> }).collect_view()}</tr>
                    }).collect_view()}
                </tbody>
            </table>
        </details>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_param_replaces_one_key_and_keeps_repeats() {
        assert_eq!(with_param("slice=sex&slice=race&metric=fpr", "metric", "tpr"), "slice=sex&slice=race&metric=tpr");
        assert_eq!(with_param("", "thresholds", "0.3"), "thresholds=0.3");
        assert_eq!(without_param("?slice=sex&sort=count&metric=fpr", "sort"), "slice=sex&metric=fpr");
    }

    fn slice(value: &str, metric: &str, v: f64) -> SliceResult {
        let estimate = crate::model::Estimate { value: Some(v), lo: None, hi: None, method: "wilson".into() };
        let at = crate::model::AtThreshold { threshold: 0.5, tp: 0.0, fp: 0.0, tn: 0.0, fn_: 0.0, metrics: [(metric.to_string(), estimate)].into_iter().collect() };
        SliceResult {
            spec: "g".into(),
            key: [("g".to_string(), value.to_string())].into_iter().collect(),
            count: 100,
            weight: 100.0,
            too_small: false,
            metrics: Default::default(),
            at: vec![at],
            vs_baseline: Default::default(),
            confusion: None,
            bounds: Default::default(),
        }
    }

    /// "Worst first" puts the highest false discovery / omission rate first, as for FPR (the
    /// page's own list of "higher is worse" metrics once left these two out).
    #[test]
    fn worst_first_follows_each_metric_direction() {
        for (metric, worst) in [("fdr", "high"), ("for", "high"), ("fpr", "high"), ("fnr", "high"), ("tpr", "low"), ("precision", "low")] {
            let mut s = vec![slice("low", metric, 0.1), slice("high", metric, 0.4), slice("mid", metric, 0.2)];
            sort_slices(&mut s, metric, Some(0.5), "worst");
            assert_eq!(s[0].key["g"], worst, "{metric}: worst first");
            assert_eq!(s[1].key["g"], "mid", "{metric}");
        }
    }
}
