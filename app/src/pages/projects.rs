//! `/projects/{p}`: a project's runs over time. URL state: `metric`, `model`, `slice` (`overall`
//! or a slicing spec), `threshold`, `by` (`run`, `week`, `day`). Also the validation verdict panel
//! the run page shows, and `/alerts`.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{
    components::Form,
    hooks::{use_location, use_params_map},
};

use crate::components::{CopyLink, ErrorBox, PlotlyChart, fmt_metric};
use crate::model::{AlertsView, ProjectView, Validation, Verdict};
use crate::pages::runs::urlencode;
use crate::server_fns::{SetWebhook, ValidateRun, get_alerts_view, get_project_view};

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::Skipped => "skipped",
    }
}

#[component]
pub fn ProjectPage() -> impl IntoView {
    let params = use_params_map();
    let location = use_location();
    let project = Memo::new(move |_| params.read().get("p").unwrap_or_default());
    let search = Memo::new(move |_| location.search.get().trim_start_matches('?').to_string());
    let data = Resource::new(move || (project.get(), search.get()), |(p, q)| get_project_view(p, q));
    view! {
        <Title text=move || format!("Project {}", project.get()) />
        <div class="page-head">
            <h1>{move || format!("Project {}", project.get())}</h1>
            <a href="/alerts">"alerts"</a>
            <CopyLink />
        </div>
        <crate::pages::team::ShareView project=project.get_untracked() />
        <Suspense fallback=|| view! { <p>"Computing…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorBox message=e.to_string() /> }.into_any(),
                    Ok(v) => view! { <ProjectPanel v /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ProjectPanel(v: ProjectView) -> impl IntoView {
    let chart = v.chart.clone();
    let n_points = v.points.iter().filter(|p| p.value.is_some()).count();
    let (metric, model, by) = (v.metric.clone(), v.model.clone(), v.by.clone());
    let (gates, metric_names, models) = (v.gates.clone(), v.metric_names.clone(), v.models.clone());
    view! {
        <Form method="GET" action="" on_form_data=crate::pickers::drop_unnamed_entries()>
            <div class="controls">
                <label>"Metric "
                    <select name="metric" aria-label="Metric">
                        {v.metric_names.iter().map(|m| view! { <option value=m.clone() selected=*m == metric>{crate::metrics::display(m)}</option> }).collect_view()}
                    </select>
                </label>
                <label>"Model "
                    <select name="model" aria-label="Model">
                        {v.models.iter().map(|m| view! { <option value=m.clone() selected=*m == model>{m.clone()}</option> }).collect_view()}
                    </select>
                </label>
                <crate::pickers::SlicePicker columns=v.columns.clone() spec=RwSignal::new(v.slice.clone()) name="slice" label="Slices" none_label="overall" />
                <label>"Threshold "
                    <input name="threshold" aria-label="Threshold" type="number" step="0.01" min="0" max="1" value=v.threshold.to_string() />
                </label>
                <label>"Over "
                    <select name="by" aria-label="Over">
                        {[("run", "runs (one point each)"), ("week", "weeks of the examples' timestamps"), ("day", "days of the examples' timestamps")].into_iter()
                            .map(|(k, t)| view! { <option value=k selected=k == by>{t}</option> }).collect_view()}
                    </select>
                </label>
                <button type="submit">"Show"</button>
            </div>
        </Form>
        <p class="muted" data-testid="project-summary">{format!("{} · {n_points} points · shaded: 95% bootstrap interval", if v.runs.len() == 1 { "1 run".to_string() } else { format!("{} runs", v.runs.len()) })}</p>
        <PlotlyChart figure=Signal::derive(move || chart.clone()) label="Metric over time" />
        <details>
        <summary>{format!("The numbers ({} points)", v.points.len())}</summary>
        <div class="table-scroll" tabindex="0" role="region" aria-label="Points of the chart">
            <table class="data" data-testid="project-points">
            <thead><tr><th>"Time"</th><th>"Run"</th><th>"Slice"</th><th class="num">"n"</th><th class="num">{v.metric.clone()}</th><th class="num">"interval"</th></tr></thead>
            <tbody>{v.points.iter().map(|p| view! {
                <tr>
                    <td>{p.time.get(..10).unwrap_or(&p.time).to_string()}</td>
                    <td><a href=format!("/runs/{}", p.run_id)>{p.version.clone().unwrap_or_else(|| p.run_id.clone())}</a></td>
                    <td>{p.slice.clone()}</td>
                    <td class="num">{p.count.to_string()}</td>
                    <td class="num">{fmt_metric(p.value)}</td>
                    <td class="num">{match (p.lo, p.hi) { (Some(l), Some(h)) => format!("[{l:.4}, {h:.4}]"), _ => String::new() }}</td>
                </tr>
            }).collect_view()}</tbody>
            </table>
        </div>
        </details>
        <h2>"Runs"</h2>
        <div class="table-scroll" tabindex="0" role="region" aria-label="Runs of the project">
            <table class="data" data-testid="project-runs">
            <thead><tr><th>"Version"</th><th>"Time (UTC)"</th><th>"Name"</th><th class="num">"Rows"</th><th>"Validation"</th></tr></thead>
            <tbody>{v.runs.iter().map(|r| {
                let val = v.validations.get(&r.id).cloned();
                view! {
                    <tr>
                        <td>{r.version.clone().unwrap_or_default()}</td>
                        <td>{r.run_time.replace('T', " ").trim_end_matches('Z').to_string()}</td>
                        <td><a href=format!("/runs/{}", r.id)>{r.name.clone()}</a></td>
                        <td class="num">{r.rows.to_string()}</td>
                        <td>{match val {
                            Some(b) if b.passed => view! { <span class="badge pass">{format!("passed gates v{}", b.gates_version)}</span> }.into_any(),
                            Some(b) => view! { <span class="badge fail">{format!("failed gates v{}: {} slice(s)", b.gates_version, b.failures)}</span> }.into_any(),
                            None => view! { <span class="muted">"not validated"</span> }.into_any(),
                        }}</td>
                    </tr>
                }
            }).collect_view()}</tbody>
            </table>
        </div>
        <crate::pages::gates::GatesSection project=v.project.clone() gates metric_names models />
        <NamedSlices project=v.project.clone() metric=v.metric.clone() />
        <crate::pages::rules::RulesSection project=v.project.clone() rules=v.rules.clone() />
    }
}

/// A validation's verdict: each gate and the slices that failed or were judged.
#[component]
pub fn ValidationPanel(v: Validation) -> impl IntoView {
    view! {
        <div class="validation" data-testid="validation">
            <p>
                {if v.passed {
                    view! { <span class="badge pass">"PASSED"</span> }.into_any()
                } else {
                    view! { <span class="badge fail">"FAILED"</span> }.into_any()
                }}
                {format!(" gates v{} of project ", v.gates_version)}
                <a href=format!("/projects/{}", v.project)>{v.project.clone()}</a>
                {format!(" · model {} · baseline {} · {}", v.model, v.baseline_run.clone().unwrap_or_else(|| "none".into()), v.created_at.get(..19).unwrap_or(&v.created_at))}
            </p>
            {(!v.failures.is_empty()).then(|| view! {
                <ul class="failures">{v.failures.iter().map(|f| view! { <li>{f.clone()}</li> }).collect_view()}</ul>
            })}
            <div class="table-scroll" tabindex="0" role="region" aria-label="Gate verdicts by slice">
                <table class="data">
                <thead><tr><th>"Gate"</th><th>"Slice"</th><th class="num">"Value"</th><th class="num">"Baseline"</th><th>"Verdict"</th><th>"Why"</th></tr></thead>
                <tbody>{v.outcomes.iter().flat_map(|o| {
                    let rule = o.rule.clone();
                    o.slices.iter().enumerate().map(move |(i, s)| view! {
                        <tr class=format!("verdict-{}", verdict_word(s.verdict))>
                            <td>{(i == 0).then(|| rule.clone())}</td>
                            <td>{s.slice.clone()}</td>
                            <td class="num">{fmt_metric(s.value)}</td>
                            <td class="num">{fmt_metric(s.baseline)}</td>
                            <td>{verdict_word(s.verdict)}</td>
                            <td>{s.reason.clone()}</td>
                        </tr>
                    }).collect::<Vec<_>>()
                }).collect_view()}</tbody>
                </table>
            </div>
            {(!v.drifted_features.is_empty()).then(|| view! { <p class="warn">{format!("Drifted from the baseline: {}", v.drifted_features.join(", "))}</p> })}
            {v.notes.iter().map(|n| view! { <p class="muted">{n.clone()}</p> }).collect_view()}
        </div>
    }
}

/// The run page's validation section (for a run in a project): the newest verdict, replaced by
/// a fresh one when "Validate" is pressed.
#[component]
pub fn ValidationSection(project: String, id: String, latest: Option<Validation>) -> impl IntoView {
    let act = ServerAction::<ValidateRun>::new();
    let done = act.value();
    view! {
        {move || match (done.get(), latest.clone()) {
            (Some(Ok(v)), _) | (None, Some(v)) => view! { <ValidationPanel v /> }.into_any(),
            (Some(Err(e)), _) => view! { <ErrorBox message=e.to_string() /> }.into_any(),
            (None, None) => view! { <p class="muted">"Not validated yet."</p> }.into_any(),
        }}
        <crate::pages::team::EditOnly>
            {let (project, id) = (project.clone(), id.clone()); view! {
                <ActionForm action=act>
                    <input type="hidden" name="project" value=project />
                    <input type="hidden" name="id" value=id />
                    <button type="submit">"Validate against the project's gates"</button>
                </ActionForm>
            }}
        </crate::pages::team::EditOnly>
    }
}

#[component]
pub fn AlertsPage() -> impl IntoView {
    let save = ServerAction::<SetWebhook>::new();
    let saved = save.value();
    let data = Resource::new(move || saved.get().map(|r| r.is_ok()), |_| get_alerts_view());
    view! {
        <Title text="Alerts" />
        <div class="page-head"><h1>"Alerts"</h1></div>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorBox message=e.to_string() /> }.into_any(),
                    Ok(v) => view! { <AlertsPanel v save /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn AlertsPanel(v: AlertsView, save: ServerAction<SetWebhook>) -> impl IntoView {
    let result = save.value();
    view! {
        <ActionForm action=save>
            <div class="controls">
                // The stored URL is shown masked (a chat webhook's path is its credential), so the
                // field starts empty: typing a URL replaces it, saving it blank removes it.
                <label>"Webhook (JSON POST per alert, 4 attempts with backoff; blank removes it) "
                    <input name="url" aria-label="Webhook URL" type="url" size="50"
                        placeholder=v.webhook.clone().map(|u| format!("now: {u}")).unwrap_or_else(|| "https://hooks.example.com/strata".into()) />
                </label>
                <button type="submit">"Save"</button>
            </div>
            {move || result.get().map(|r| match r {
                Ok(m) => view! { <p class="ok" role="status">{m}</p> }.into_any(),
                Err(e) => view! { <ErrorBox message=e.to_string() /> }.into_any(),
            })}
        </ActionForm>
        <p class="muted">{format!("{} alerts (newest first): gate failures and drift found when a run is validated", v.alerts.len())}</p>
        <div class="table-scroll" tabindex="0" role="region" aria-label="Alerts">
            <table class="data" data-testid="alerts">
            <thead><tr><th>"When (UTC)"</th><th>"Kind"</th><th>"Project"</th><th>"Run"</th><th>"Summary"</th><th>"Webhook"</th></tr></thead>
            <tbody>{v.alerts.iter().map(|a| {
                let delivered = match a.deliveries.last() {
                    None => "–".to_string(),
                    Some(d) => format!("{} attempt(s), last: {}", a.deliveries.len(), d.status.map(|s| s.to_string()).or(d.error.clone()).unwrap_or_default()),
                };
                view! {
                    <tr class=format!("alert-{}", a.kind)>
                        <td>{a.created_at.get(..19).unwrap_or(&a.created_at).replace('T', " ")}</td>
                        <td>{a.kind.clone()}</td>
                        <td>{a.project.clone().map(|p| view! { <a href=format!("/projects/{p}")>{p.clone()}</a> })}</td>
                        <td>{a.run_id.clone().map(|r| view! { <a href=format!("/runs/{r}")>{r.clone()}</a> })}</td>
                        <td>{a.summary.clone()}</td>
                        <td>{delivered}</td>
                    </tr>
                }
            }).collect_view()}</tbody>
            </table>
        </div>
    }
}

/// The project's named slices (saved from slice discovery), each a link that tracks it over the
/// project's runs, and the filter to use as a gate's `slice`.
#[component]
fn NamedSlices(project: String, metric: String) -> impl IntoView {
    let p = project.clone();
    let data = Resource::new(move || p.clone(), crate::server_fns::get_named_slices);
    view! {
        <Suspense fallback=|| ()>
            {move || {
                let (project, metric) = (project.clone(), metric.clone());
                Suspend::new(async move {
                    match data.await {
                        Ok(list) if !list.is_empty() => view! {
                            <section data-testid="named-slices">
                                <h2>"Named slices"</h2>
                                <p class="muted">"Saved from slice discovery. Follow one to see it over the runs; its filter works as a gate's slice."</p>
                                <div class="table-scroll" tabindex="0" role="region" aria-label="Named slices">
                                    <table class="data">
                                    <thead><tr><th>"Name"</th><th>"Rows (filter)"</th><th>"Found with"</th><th>"Track"</th></tr></thead>
                                    <tbody>
                                        {list.into_iter().map(|s| {
                                            let m = s.metric.clone().filter(|m| crate::metrics::lookup(m).is_some()).unwrap_or_else(|| metric.clone());
                                            let href = format!("/projects/{}?slice={}&metric={}", urlencode(&project), urlencode(&s.filter), urlencode(&m));
                                            view! {
                                                <tr>
                                                    <td>{s.name.clone()}</td>
                                                    <td><code>{s.filter.clone()}</code></td>
                                                    <td>{s.metric.clone().unwrap_or_default()}</td>
                                                    <td><a href=href>"over time →"</a></td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                    </table>
                                </div>
                            </section>
                        }.into_any(),
                        _ => ().into_any(),
                    }
                })
            }}
        </Suspense>
    }
}
