//! `/runs/{id}/fairness` (one run, one or more of its models) and `/compare?runs=A,B` (runs side
//! by side): groups × thresholds for the chosen metrics, with intervals, gaps to the baseline,
//! the fairness criteria checked against limits, the threshold trade-off and a what-if of
//! per-group thresholds. URL state: `model` (repeatable), `runs`, `feature`, `thresholds`,
//! `metric` (repeatable), `baseline`, `min_size`, `limits`, `criterion`, `sort`, and `a` / `b`
//! (the A-vs-B pair, `fairness_compare`).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{
    NavigateOptions,
    components::Form,
    hooks::{use_location, use_navigate, use_params_map, use_query_map},
};

use crate::components::{CopyLink, ErrorBox, PlotlyChart, fmt_metric};
use crate::pickers::{
    BaselinePicker, FieldError, FieldMessage, LimitsEditor, SlicePicker, ThresholdChips, clean_error, last_choice, limits_text, load_keeping_form, parse_threshold_list,
    spec_fits,
};
use crate::model::{Estimate, FairnessView, SliceResult};
use crate::pages::slices::{with_param, without_param};
use crate::progress::{JobProgress, SlowJob};
use crate::server_fns::{SaveFairnessLimits, get_fairness_view};

/// Threshold-free metrics (the others are read at each threshold).
const THRESHOLD_FREE: [&str; 3] = ["auc_roc", "auc_pr", "expected_calibration_error"];

/// The difference between two independent estimates with an approximate interval
/// (half-widths combined in quadrature); `None` where either is undefined.
pub fn difference(a: &Estimate, b: &Estimate) -> Option<(f64, Option<f64>, Option<f64>)> {
    let (va, vb) = (a.value?, b.value?);
    let d = va - vb;
    let half = |e: &Estimate| Some((e.hi? - e.lo?) / 2.0);
    match (half(a), half(b)) {
        (Some(ha), Some(hb)) => {
            let h = (ha * ha + hb * hb).sqrt();
            Some((d, Some(d - h), Some(d + h)))
        }
        _ => Some((d, None, None)),
    }
}

/// One row of a metric's table.
#[derive(Clone)]
struct Row {
    entry: usize,
    group: SliceResult,
    threshold: Option<f64>,
}

/// The fairness form's parameters: a rejected one is dropped to keep a result on the page.
const FORM_KEYS: &[&str] = &["feature", "thresholds", "baseline", "limits", "min_size", "model", "metric"];
/// Where the user's last groups are remembered in the browser.
const LAST_FEATURE: &str = "strata.fairness.feature";

#[component]
pub fn FairnessPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let location = use_location();
    let id = Memo::new(move |_| params.read().get("id"));
    let search = Memo::new(move |_| location.search.get().trim_start_matches('?').to_string());
    // Sorting and the A-vs-B pair happen in the browser: they do not recompute.
    let computed = Memo::new(move |_| ["sort", "a", "b"].into_iter().fold(search.get(), |q, k| without_param(&q, k)));
    let sort = Memo::new(move |_| query.read().get("sort").unwrap_or_else(|| "group".into()));
    // A slow request (a first analysis of a large run, many replicates) shows its progress.
    let job = SlowJob::default();
    let data = Resource::new(
        move || (id.get(), computed.get()),
        move |(id, q)| {
            load_keeping_form(q, FORM_KEYS, move |q| {
                let ids: Vec<String> = id.clone().into_iter().collect();
                async move {
                    let j = job.start();
                    let r = get_fairness_view(ids, q, j.clone()).await;
                    job.end(&j);
                    r
                }
            })
        },
    );
    // The last view that worked stays on the page while a rejected request is fixed.
    let last_good = StoredValue::new(None::<FairnessView>);
    // No groups in the URL: the user's last ones, when this run has their columns.
    let navigate = use_navigate();
    Effect::new(move |_| {
        let Some(Ok((v, None))) = data.get() else { return };
        let path = location.pathname.get_untracked();
        if let Some(url) = last_choice(LAST_FEATURE, &path, &search.get_untracked(), "feature", false, |f| spec_fits(f, &v.columns)) {
            navigate(&url, NavigateOptions { replace: true, scroll: false, ..Default::default() });
        }
    });
    let pending = RwSignal::new(false);
    view! {
        <Title text="Fairness" />
        <div class="page-head">
            <h1>{move || if id.get().is_some() { "Fairness across groups" } else { "Compare runs" }}</h1>
            {move || id.get().map(|id| view! { <a href=format!("/runs/{id}")>"← run overview"</a> })}
            <CopyLink />
        </div>
        {move || id.get().map(|id| view! { <crate::pages::team::ShareView run_id=id /> })}
        <JobProgress job=job.shown() label="Computing" />
        // A Transition: the shown view stays (busy) while a changed one is computed, then is rebuilt
        // in place (same tables and chart elements; charts.js redraws with `Plotly.react`).
        <Transition fallback=|| view! { <p>"Computing…"</p> } set_pending=pending.write_only()>
            <div class="view-updating" aria-busy=move || pending.try_get().unwrap_or(false).then_some("true")>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorBox message=clean_error(&e.to_string()) /> }.into_any(),
                    Ok((v, error)) => {
                        let (shown, note) = crate::pickers::shown_result(last_good, &v, error.is_some());
                        // One set of limits: the editor's, which "Save limits" stores.
                        let limits = RwSignal::new(v.limits.clone());
                        view! {
                            <FairnessForm v is_compare=id.get_untracked().is_none() error limits />
                            {note.map(|n| view! { <p class="muted kept-result" data-testid="kept-result">{n}</p> })}
                            <FairnessPanel v=shown id=id.get_untracked() search sort limits />
                        }.into_any()
                    }
                }
            })}
            </div>
        </Transition>
    }
}

/// The fairness form: the group picker (and its spec text), thresholds, baseline group, minimum
/// group size, models, metrics and a limit per criterion. Values come from the URL (so a rejected
/// one stays visible to be fixed), else from the view.
#[component]
fn FairnessForm(v: FairnessView, is_compare: bool, error: Option<FieldError>, limits: RwSignal<Vec<(String, f64)>>) -> impl IntoView {
    let query = use_query_map();
    let url = |k: &str| query.read_untracked().get_all(k).unwrap_or_default().join("; ");
    let feature = RwSignal::new(match url("feature") {
        f if f.trim().is_empty() => v.feature.clone(),
        f => f,
    });
    let thresholds = RwSignal::new(parse_threshold_list(&url("thresholds")).unwrap_or_else(|| v.thresholds.clone()));
    let baseline = RwSignal::new(match url("baseline") {
        b if b.trim().is_empty() => v.baseline.clone(),
        b => b,
    });
    let keep_limits = !url("limits").trim().is_empty();
    let groups: Vec<(String, String)> = v.entries.first().map(|e| e.result.slices.iter().flat_map(|s| s.key.clone()).collect()).unwrap_or_default();
    let chosen_models: Vec<String> = v.entries.iter().map(|e| e.model.clone()).collect();
    let runs_param = v.entries.iter().map(|e| e.run_id.clone()).collect::<Vec<_>>().join(",");
    let min_size = match url("min_size") {
        m if m.trim().is_empty() => v.min_size.to_string(),
        m => m,
    };
    let other_error = error.as_ref().filter(|e| !["feature", "thresholds", "baseline", "limits"].contains(&e.field.as_str())).map(|e| e.message.clone());
    let (models, metric_names, metrics) = (v.models.clone(), v.metric_names.clone(), v.metrics.clone());
    view! {
        <Form method="GET" action="" on_form_data=crate::pickers::drop_unnamed_entries()>
            {is_compare.then(|| view! { <input type="hidden" name="runs" value=runs_param.clone() /> })}
            // The A-vs-B pair is chosen below the form; Apply keeps it.
            {["a", "b"].into_iter().map(|k| view! { <input type="hidden" name=move || query.read().get(k).filter(|x| !x.is_empty()).map(|_| k) value=move || query.read().get(k).unwrap_or_default() /> }).collect_view()}
            <div class="controls picker-form">
                <SlicePicker columns=v.columns.clone() spec=feature name="feature" label="Groups" none_label="— default —" error=FieldError::about(&error, "feature") />
            </div>
            <div class="controls">
                <ThresholdChips values=thresholds max=10 error=FieldError::about(&error, "thresholds") />
                <BaselinePicker columns=v.columns.clone() spec=Signal::derive(move || feature.get()) value=baseline seen=groups error=FieldError::about(&error, "baseline") />
                <label>"Min group size " <input type="number" name="min_size" aria-label="Min group size" min="1" value=min_size /></label>
            </div>
            {(!is_compare).then(|| view! {
                <fieldset class="controls"><legend>"Models"</legend>
                    {models.iter().map(|m| view! {
                        <label><input type="checkbox" name="model" value=m.clone() checked=chosen_models.contains(m) />{m.clone()}</label>
                    }).collect_view()}
                </fieldset>
            })}
            <fieldset class="controls"><legend>"Metrics"</legend>
                {metric_names.iter().map(|m| view! {
                    <label><input type="checkbox" name="metric" value=m.clone() checked=metrics.contains(m) aria-label=format!("metric {m}") />{m.clone()}</label>
                }).collect_view()}
            </fieldset>
            <LimitsEditor limits always=keep_limits error=FieldError::about(&error, "limits") />
            <FieldMessage id="form-error".to_string() message=other_error />
            <button type="submit">"Apply"</button>
        </Form>
    }
}

#[component]
fn FairnessPanel(v: FairnessView, id: Option<String>, search: Memo<String>, sort: Memo<String>, limits: RwSignal<Vec<(String, f64)>>) -> impl IntoView {
    let navigate = use_navigate();
    let base_path = match &id {
        Some(id) => format!("/runs/{id}/fairness"),
        None => "/compare".to_string(),
    };
    let export_path = format!("{base_path}/export");
    let set_sort = {
        let base_path = base_path.clone();
        move |value: String| {
            navigate(&format!("{base_path}?{}", with_param(&search.get_untracked(), "sort", &value)), NavigateOptions { scroll: false, ..Default::default() });
        }
    };
    let export = |format: &str| format!("{export_path}?{}", with_param(&without_param(&search.get_untracked(), "sort"), "format", format));
    let (export_html, export_csv, export_json) = (export("html"), export("csv"), export("json"));
    let flip_href = format!("{base_path}?{}", with_param(&search.get_untracked(), "flip", "1"));
    let groups: Vec<String> = v.entries[0].result.slices.iter().filter(|s| s.spec == v.feature).map(|s| s.label()).collect();
    let save = ServerAction::<SaveFairnessLimits>::new();
    let saved = save.value();
    let entries = v.entries.clone();
    let many = entries.len() > 1;
    let summary = format!("{} groups of '{}' · baseline {} · {}% intervals ({} bootstrap replicates) · groups under {} rows are marked small · gaps flagged at BH-adjusted q ≤ 0.05",
        groups.len(), v.feature, v.baseline, (entries[0].result.ci * 100.0).round(), entries[0].result.bootstrap, v.min_size);
    view! {
        <p class="actions">
            <a class="button" href=export_html download="strata-fairness.html">"Export HTML report"</a>
            <a class="button" href=export_csv download="strata-fairness.csv">"CSV"</a>
            <a class="button" href=export_json download="strata-fairness.json">"JSON"</a>
        </p>
        <p class="muted">{summary}</p>

        <h2>"Fairness criteria"</h2>
        <crate::pages::fairness_compare::CriteriaMatrix cards=v.cards.clone() limits=v.limits.clone() entries=entries.clone() />
        <details class="fx-detail">
            <summary>"Each model and threshold in detail (values, intervals, groups at the extremes)"</summary>
            <div class="cards">
            {v.cards.iter().map(|card| {
                let e = &entries[card.entry];
                view! {
                    <section class="card" data-testid="criteria-card">
                        <h3>{if many { format!("{} · {} @ {}", e.run_name, e.model, card.threshold) } else { format!("{} @ threshold {}", e.model, card.threshold) }}</h3>
                        <div class="table-scroll" tabindex="0" role="region" aria-label="Criteria">
                        <table class="data">
                            <thead><tr><th>"Criterion"</th><th class="num">"Value"</th><th class="num">"Interval"</th><th class="num">"Limit"</th><th>"Verdict"</th></tr></thead>
                            <tbody>
                                {card.checks.iter().map(|c| view! {
                                    <tr title=format!("lowest: {} · highest: {}", c.lowest, c.highest)>
                                        <td>{c.name.replace('_', " ")}</td>
                                        <td class="num">{fmt_metric(c.value)}</td>
                                        <td class="num">{format!("[{}, {}]", fmt_metric(c.lo), fmt_metric(c.hi))}</td>
                                        <td class="num">{format!("{}{}", if c.name == "disparate_impact" { "≥ " } else { "≤ " }, c.limit)}</td>
                                        <td class=format!("verdict {}", c.verdict)>{c.verdict.clone()}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                        </div>
                    </section>
                }
            }).collect_view()}
            </div>
        </details>
        {many.then(|| view! {
            <crate::pages::fairness_compare::AbCompare entries=entries.clone() feature=v.feature.clone() thresholds=v.thresholds.clone()
                metrics=v.metrics.clone() base_path=base_path.clone() search />
        })}
        {id.clone().map(|id| { let stored = v.limits_stored; view! {
            <crate::pages::team::EditOnly>
            {let id = id.clone(); view! {
            // Saves the limits editor's values (changed or not by Apply).
            <ActionForm action=save>
                <input type="hidden" name="id" value=id />
                <input type="hidden" name="limits" value=move || limits_text(&limits.get()) />
                <span class="muted" data-testid="limits-to-save">{move || format!("Limits: {} ", limits_text(&limits.get()))}</span>
                <button type="submit">"Save limits with the run"</button>
                <span class="muted">{if stored { " (these are stored with the run)" } else { " (defaults: not stored yet)" }}</span>
                {move || saved.get().map(|r| match r {
                    Ok(l) => view! { <span class="ok" role="status">{format!(" Saved: {l}")}</span> }.into_any(),
                    Err(e) => view! { <ErrorBox message=e.to_string() /> }.into_any(),
                })}
            </ActionForm>
            }}
            </crate::pages::team::EditOnly>
        }})}

        <div class="controls">
            <label>"Sort tables "
                <select aria-label="Sort" prop:value=move || sort.get() on:change=move |ev| set_sort(event_target_value(&ev))>
                    {[("group", "by group"), ("gap", "largest gap first")].into_iter().map(|(k, t)| view! {
                        <option value=k selected=move || k == sort.get()>{t}</option>
                    }).collect_view()}
                </select>
            </label>
        </div>
        {v.charts.iter().map(|(metric, fig)| {
            let metric = metric.clone();
            let free = THRESHOLD_FREE.contains(&metric.as_str());
            let fig = fig.clone();
            let entries = entries.clone();
            let feature = v.feature.clone();
            let thresholds = v.thresholds.clone();
            let metric_for_rows = metric.clone();
            let rows = move || {
                let metric = metric_for_rows.clone();
                let mut rows: Vec<Row> = Vec::new();
                for (e, entry) in entries.iter().enumerate() {
                    for s in entry.result.slices.iter().filter(|s| s.spec == feature) {
                        if free {
                            rows.push(Row { entry: e, group: s.clone(), threshold: None });
                        } else {
                            rows.extend(thresholds.iter().map(|t| Row { entry: e, group: s.clone(), threshold: Some(*t) }));
                        }
                    }
                }
                let key = |r: &Row| match r.threshold { Some(t) => format!("{metric}@{t}"), None => metric.clone() };
                if sort.get() == "gap" {
                    let gap = |r: &Row| r.group.vs_baseline.get(&key(r)).and_then(|c| c.diff).map(f64::abs).unwrap_or(-1.0);
                    rows.sort_by(|a, b| gap(b).total_cmp(&gap(a)));
                }
                rows.into_iter().map(|r| {
                    let est = r.group.estimate(&metric, r.threshold).cloned();
                    let c = r.group.vs_baseline.get(&key(&r)).cloned();
                    let at = r.threshold.and_then(|t| r.group.at.iter().find(|a| a.threshold == t)).cloned();
                    let counts = at.map(|a| format!("TP {} · FP {} · TN {} · FN {}", a.tp, a.fp, a.tn, a.fn_)).unwrap_or_default();
                    let vs_first = (r.entry > 0).then(|| {
                        let first = entries[0].result.slices.iter().find(|s| s.spec == r.group.spec && s.key == r.group.key).and_then(|s| s.estimate(&metric, r.threshold));
                        match (est.as_ref(), first) {
                            (Some(a), Some(b)) => difference(a, b).map(|(d, lo, hi)| format!("{} [{}, {}]", fmt_metric(Some(d)), fmt_metric(lo), fmt_metric(hi))).unwrap_or_default(),
                            _ => String::new(),
                        }
                    });
                    let significant = c.as_ref().is_some_and(|c| c.significant);
                    let small = r.group.too_small;
                    view! {
                        <tr class="group-row" class:flag=significant title=counts>
                            <td>{r.group.label()}{small.then_some(" (small)")}</td>
                            {many.then(|| view! { <td>{format!("{} · {}", entries[r.entry].run_name, entries[r.entry].model)}</td> })}
                            <td class="num">{r.threshold.map(|t| t.to_string()).unwrap_or_else(|| "—".into())}</td>
                            <td class="num">{fmt_metric(est.as_ref().and_then(|e| e.value))}</td>
                            <td class="num">{est.as_ref().map(|e| format!("[{}, {}]", fmt_metric(e.lo), fmt_metric(e.hi))).unwrap_or_default()}</td>
                            <td class="num">{r.group.count.to_string()}</td>
                            <td class="num">{fmt_metric(c.as_ref().and_then(|c| c.diff))}</td>
                            <td class="num">{fmt_metric(c.as_ref().and_then(|c| c.ratio))}</td>
                            {many.then(|| view! { <td class="num">{vs_first.clone().unwrap_or_default()}</td> })}
                            <td>{significant.then_some("significant gap")}</td>
                        </tr>
                    }
                }).collect_view()
            };
            view! {
                <section class="metric" data-metric=metric.clone()>
                    <h2>{metric.clone()}</h2>
                    <PlotlyChart figure=Signal::derive(move || fig.clone()) label=format!("{metric} by group") />
                    <div class="table-scroll" tabindex="0" role="region" aria-label=format!("{metric} by group")>
                    <table class="data fairness" data-testid=format!("table-{metric}")>
                        <thead><tr><th>"Group"</th>{many.then(|| view! { <th>"Model"</th> })}<th class="num">"Threshold"</th><th class="num">{metric.clone()}</th>
                            <th class="num">"Interval"</th><th class="num">"Count"</th><th class="num">"Diff vs baseline"</th><th class="num">"Ratio"</th>
                            {many.then(|| view! { <th class="num">"Δ vs first model (approx. interval)"</th> })}<th>""</th></tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                    </div>
                </section>
            }
        }).collect_view()}

        {v.tradeoff_chart.clone().map(|c| view! {
            <h2>"Threshold trade-off"</h2>
            <p class="muted">{format!("{} · {} per group across every threshold (click the legend to show selection rate)", entries[0].model, v.feature)}</p>
            <PlotlyChart figure=Signal::derive(move || c.clone()) label="Threshold trade-off by group" />
        })}
        {v.suggestion.clone().map(|s| view! {
            <section class="card" data-testid="suggestion">
                <h3>{format!("What if each group had its own threshold? ({})", s.criterion.replace('_', " "))}</h3>
                <p>{format!("With these thresholds the {} gap would be {:.4} (now {:.4} at {}) and accuracy {:.4} (now {:.4}). Fitted on this run's own rows, so optimistic; nothing is applied.",
                    s.metric, s.gap, s.base_gap, s.base_threshold, s.accuracy, s.base_accuracy)}</p>
                <table class="data"><thead><tr><th>"Group"</th><th class="num">"Threshold"</th><th class="num">{s.metric.clone()}</th></tr></thead>
                    <tbody>{s.groups.iter().map(|(g, t, m)| view! { <tr><td>{g.clone()}</td><td class="num">{t.to_string()}</td><td class="num">{format!("{m:.4}")}</td></tr> }).collect_view()}</tbody>
                </table>
            </section>
        })}
        <h2>"Counterfactual flip rates"</h2>
        {match (v.flip.clone(), v.flip_note.clone()) {
            (Some(f), _) => view! {
                <p class="muted">{format!("{} at threshold {}: each of {} sampled examples re-predicted with {} set to every other group's value; a flip is a changed decision.", f.model, f.threshold, f.sample, f.feature)}</p>
                <table class="data" data-testid="flip-rates">
                    <thead><tr><th>"Group"</th><th class="num">"n"</th><th class="num">"Any flip"</th><th class="num">"→ negative"</th><th class="num">"→ positive"</th><th>"By value"</th></tr></thead>
                    <tbody>{f.groups.iter().map(|g| view! {
                        <tr><td>{g.group.clone()}</td><td class="num">{g.n.to_string()}</td><td class="num">{format!("{:.4}", g.any_flip)}</td>
                            <td class="num">{format!("{:.4}", g.to_negative)}</td><td class="num">{format!("{:.4}", g.to_positive)}</td>
                            <td>{g.by_value.iter().map(|(v, r)| format!("{v}: {r:.3}")).collect::<Vec<_>>().join(" · ")}</td></tr>
                    }).collect_view()}</tbody>
                </table>
            }.into_any(),
            (None, Some(note)) => view! { <p class="muted">{note}</p> }.into_any(),
            (None, None) => view! { <p><a class="button" href=flip_href.clone()>"Compute flip rates (re-predicts a sample with the model)"</a></p> }.into_any(),
        }}
        {v.over_time_chart.clone().map(|c| view! {
            <h2>{format!("{} across runs", v.metrics[0])}</h2>
            <PlotlyChart figure=Signal::derive(move || c.clone()) label="Metric across runs" />
        })}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_combine_half_widths_in_quadrature() {
        let e = |v, lo, hi| Estimate { value: Some(v), lo: Some(lo), hi: Some(hi), method: "wilson".into() };
        let (d, lo, hi) = difference(&e(0.5, 0.47, 0.53), &e(0.4, 0.36, 0.44)).unwrap();
        assert!((d - 0.1).abs() < 1e-12);
        assert!((hi.unwrap() - d - 0.05).abs() < 1e-12 && (d - lo.unwrap() - 0.05).abs() < 1e-12);
    }
}
