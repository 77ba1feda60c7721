//! `/runs/{id}`: a run's overview. URL state: `model` (the chart's model) and `offset` (rows page).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{
    NavigateOptions,
    hooks::{use_navigate, use_params_map, use_query_map},
};

use crate::components::{ErrorBox, PlotlyChart, SampleNote, fmt_epoch_micros, fmt_metric, fmt_stat, title_text};
use crate::model::{ColumnInfo, ColumnKind, ExamplesPage, RunOverview};
use crate::pages::runs::urlencode;
use crate::server_fns::{AppError, get_examples, get_run_overview};

const PAGE_ROWS: u64 = 20;

#[component]
pub fn RunPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = Memo::new(move |_| params.read().get("id").unwrap_or_default());
    let model = Memo::new(move |_| query.read().get("model"));
    let offset = Memo::new(move |_| {
        query.read().get("offset").and_then(|o| o.parse::<u64>().ok()).unwrap_or(0)
    });
    let overview = Resource::new(
        move || (id.get(), model.get()),
        |(id, model)| get_run_overview(id, model),
    );
    let examples = Resource::new(
        move || (id.get(), offset.get()),
        |(id, offset)| get_examples(id, offset, PAGE_ROWS),
    );

    view! {
        <Suspense fallback=|| view! { <p>"Loading run…"</p> }>
            {move || Suspend::new(async move {
                match overview.await {
                    Err(e) => {
                        // A missing run, or a server that is busy or lost its database for a moment.
                        let title = match &e {
                            AppError::NotFound(_) => "Run not found",
                            AppError::Unavailable(_) => "Busy: try again in a moment",
                            _ => "Run not available",
                        };
                        view! {
                            <Title text=title />
                            <h1>{title}</h1>
                            <ErrorBox message=e.to_string() />
                        }.into_any()
                    }
                    Ok(ov) => view! { <Overview ov id=id.get_untracked() /> }.into_any(),
                }
            })}
        </Suspense>
        <section>
            <h2>"Examples"</h2>
            <Suspense fallback=|| view! { <p>"Loading rows…"</p> }>
                {move || Suspend::new(async move {
                    match examples.await {
                        Err(e) => view! { <ErrorBox message=e.to_string() /> }.into_any(),
                        Ok(page) => view! { <ExamplesTable page id=id.get_untracked() /> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn Overview(ov: RunOverview, id: String) -> impl IntoView {
    let d = ov.detail.clone();
    let s = d.summary.clone();
    let navigate = use_navigate();
    let chart = Signal::derive({
        let c = ov.chart.clone();
        move || c.clone()
    });
    let on_model = {
        let id = id.clone();
        move |ev: leptos::ev::Event| {
            let m = event_target_value(&ev);
            navigate(
                &format!("/runs/{id}?model={}", urlencode(&m)),
                NavigateOptions { replace: false, scroll: false, ..Default::default() },
            );
        }
    };
    let metric_names: Vec<String> = ov
        .headline
        .first()
        .map(|h| h.metrics.iter().map(|m| m.name.clone()).collect())
        .unwrap_or_default();
    let filter = RwSignal::new(String::new());
    let columns = d.columns.clone();
    let label = d.label.clone();
    let chart_model = ov.chart_model.clone();
    // Start the slices view on the first categorical feature (e.g. sex), if there is one.
    let first_categorical = d.columns.iter().find(|c| c.role == crate::model::Role::Feature && c.kind == ColumnKind::Categorical);
    let slices_href = match first_categorical {
        Some(c) => format!("/runs/{}/slices?slice={}", s.id, urlencode(&c.name)),
        None => format!("/runs/{}/slices", s.id),
    };

    view! {
        <Title text=title_text(&s.name) />
        <div class="page-head">
            <h1>{s.name.clone()}</h1>
            <span class="muted mono">{s.id.clone()}</span>
        </div>
        <crate::pages::team::ShareView run_id=id.clone() />
        <p class="actions">
            <a class="button" href=slices_href>"Metrics by slice →"</a>
            <a class="button" href=format!("/runs/{}/discover", s.id)>"Find weak slices →"</a>
            {(s.task == crate::model::Task::Binary).then(|| view! {
                <a class="button" href=format!("/runs/{}/fairness", s.id)>"Fairness →"</a>
            })}
            <a class="button" href=format!("/runs/{}/whatif", s.id)>"What-if →"</a>
            <a class="button" href=format!("/runs/{}/drift", s.id)>"Drift →"</a>
            {(s.task != crate::model::Task::Multiclass).then(|| view! {
                <a class="button" href=format!("/runs/{}/residuals", s.id)>"Residuals →"</a>
            })}
        </p>
        {(s.task != crate::model::Task::Multiclass && !s.models.iter().any(|m| m == "strata_benchmark")).then(|| {
            let train = ServerAction::<crate::server_fns::TrainBenchmark>::new();
            let done = train.value();
            let run_id = s.id.clone();
            view! {
                <crate::pages::team::EditOnly>
                {let run_id = run_id.clone(); view! {
                <ActionForm action=train>
                    <input type="hidden" name="id" value=run_id />
                    <button type="submit">"Train a benchmark model"</button>
                    <span class="muted">" a logistic regression (binary) or ridge regression fitted by Strata, to compare your models against on every slice"</span>
                    {move || done.get().map(|r| match r {
                        Ok(m) => view! { <p class="ok" role="status">{m}</p> }.into_any(),
                        Err(e) => view! { <ErrorBox message=e.to_string() /> }.into_any(),
                    })}
                </ActionForm>
                }}
                </crate::pages::team::EditOnly>
            }
        })}
        <dl class="facts">
            <div><dt>"Task"</dt><dd>{s.task.as_str()}</dd></div>
            <div><dt>"Rows"</dt><dd>{s.rows.to_string()}</dd></div>
            <div><dt>"Label"</dt><dd class="mono">{label}</dd></div>
            <div><dt>"Models"</dt><dd class="mono">{s.models.join(", ")}</dd></div>
            <div><dt>"Created (UTC)"</dt><dd>{s.created_at.clone()}</dd></div>
            {match s.source.clone() {
                Some(src) => view! { <div><dt>"Source"</dt><dd class="mono">{src.mark()}" (external: the rows are read there when a view needs them)"</dd></div> }.into_any(),
                None => view! { <div><dt>"Source file"</dt><dd class="mono">{s.source_file.clone()}</dd></div> }.into_any(),
            }}
            <div><dt>"Tags"</dt><dd>{s.tags.join(", ")}</dd></div>
            {s.project.clone().map(|p| view! {
                <div><dt>"Project"</dt><dd><a href=format!("/projects/{p}")>{p.clone()}</a>{s.version.clone().map(|v| format!(" · {v}"))}</dd></div>
            })}
        </dl>
        {s.project.clone().map(|p| { let run_id = id.clone(); view! {
            <section>
                <h2>"Validation"</h2>
                <crate::pages::projects::ValidationSection project=p id=run_id latest=ov.validation.clone() />
            </section>
        }})}
        <crate::pages::team::ReviewPanel run_id=id.clone() />
        <section>
            {if s.task == crate::model::Task::Regression {
                // A histogram of the label: rows per equal-width bin, drawn as bars.
                let most = ov.label_balance.iter().map(|v| v.count).max().unwrap_or(1).max(1);
                view! {
                    <h2>"Label distribution"</h2>
                    <div class="table-scroll" tabindex="0" role="region" aria-label="Label histogram">
                        <table class="data histogram" data-testid="label-histogram">
                        <thead><tr><th>"Label"</th><th class="num">"Rows"</th><th><span class="sr-only">"Share of the largest bin"</span></th></tr></thead>
                        <tbody>
                            {ov.label_balance.iter().map(|v| view! {
                                <tr><td class="mono">{v.value.clone()}</td><td class="num">{v.count.to_string()}</td>
                                    <td class="bar-cell"><span class="bar" style=format!("width: {:.1}%", 100.0 * v.count as f64 / most as f64)></span></td></tr>
                            }).collect_view()}
                        </tbody>
                        </table>
                    </div>
                }.into_any()
            } else {
                view! {
                    <h2>"Label balance"</h2>
                    <ul class="balance">
                        {ov.label_balance.iter().map(|v| view! {
                            <li><span class="mono">{v.value.clone()}</span> ": " {v.count.to_string()}</li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </section>
        <section>
            <h2>"Headline metrics"</h2>
            <div class="table-scroll" tabindex="0" role="region" aria-label="Headline metrics">
                <table class="data headline">
                <thead><tr><th>"Model"</th>
                    {metric_names.iter().map(|n| view! { <th class="num">{n.clone()}</th> }).collect_view()}
                </tr></thead>
                <tbody>
                    {ov.headline.iter().map(|h| view! {
                        <tr><td class="mono">{h.model.clone()}</td>
                            {h.metrics.iter().map(|m| view! {
                                <td class="num">{fmt_metric(m.value)}</td>
                            }).collect_view()}
                        </tr>
                    }).collect_view()}
                </tbody>
                </table>
            </div>
        </section>
        <section>
            <div class="section-head">
                <h2>"Score distribution by label"</h2>
                <label>"Model "
                    <select name="model" on:change=on_model aria-label="Chart model">
                        {s.models.iter().map(|m| {
                            let selected = *m == chart_model;
                            view! { <option value=m.clone() selected=selected>{m.clone()}</option> }
                        }).collect_view()}
                    </select>
                </label>
            </div>
            <PlotlyChart figure=chart label=format!("Distribution of {} by label", ov.chart_model) />
        </section>
        <section>
            <div class="section-head">
                <h2>"Columns"</h2>
                <label>"Filter "
                    <input type="search" aria-label="Filter columns" placeholder="column name"
                        prop:value=move || filter.get()
                        on:input=move |ev| filter.set(event_target_value(&ev)) />
                </label>
            </div>
            <ColumnsTable columns filter />
        </section>
        {(!d.attachments.is_empty()).then(|| view! {
            <section>
                <h2>"Attached models"</h2>
                <ul>
                    {d.attachments.iter().map(|a| view! {
                        <li><span class="mono">{a.name.clone()}</span> " (" {a.media_type.clone()} ", "
                            {format!("{:.1} KB", a.bytes as f64 / 1024.0)}
                            {a.model.clone().map(|m| format!(", scores {m}"))} ")"</li>
                    }).collect_view()}
                </ul>
            </section>
        })}
        <crate::pages::models::ModelsPanel run_id=id.clone() scores=d.summary.models.clone() />
        <EndpointsPanel run_id=id.clone() />
    }
}

/// The run's HTTP model endpoints, each with "Test": the run's first rows predicted through it and
/// compared with the stored scores, so a wrong layout or output shows before anyone trusts a
/// what-if answer. Endpoints are set through the API (`PUT /api/v1/runs/{id}/endpoints`).
#[component]
fn EndpointsPanel(#[prop(into)] run_id: String) -> impl IntoView {
    let id = run_id.clone();
    let list = Resource::new(|| (), move |_| crate::server_fns::get_run_endpoints(id.clone()));
    let test = ServerAction::<crate::server_fns::TestRunEndpoint>::new();
    view! {
        <Suspense fallback=|| ()>
            {move || {
                let run_id = run_id.clone();
                Suspend::new(async move {
                    let endpoints = list.await.unwrap_or_default();
                    (!endpoints.is_empty()).then(|| view! {
                        <section data-testid="endpoints">
                            <h2>"Model endpoints"</h2>
                            <div class="table-wrap" tabindex="0" role="region" aria-label="Model endpoints"><table>
                                <thead><tr><th>"Name"</th><th>"Protocol"</th><th>"Server"</th><th>"Model"</th><th>"Layout"</th><th>"Output"</th><th><span class="sr-only">"Test"</span></th></tr></thead>
                                <tbody>
                                    {endpoints.into_iter().map(|e| {
                                        let run_id = run_id.clone();
                                        view! {
                                            <tr>
                                                <td class="mono">{e.name.clone()}</td><td>{e.protocol.clone()}</td><td class="mono">{e.url.clone()}</td>
                                                <td class="mono">{e.model.clone()}</td><td>{e.layout.clone()}</td><td class="mono">{e.output.clone().unwrap_or_else(|| "(chosen by name)".into())}</td>
                                                <td>
                                                    <ActionForm action=test>
                                                        <input type="hidden" name="id" value=run_id />
                                                        <input type="hidden" name="name" value=e.name.clone() />
                                                        <button type="submit" data-testid=format!("test-endpoint-{}", e.name)>"Test"</button>
                                                    </ActionForm>
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table></div>
                            <p class="muted" hidden=move || !test.pending().get()>"Predicting the first rows…"</p>
                            {move || test.value().get().map(|r| match r {
                                Err(e) => view! { <ErrorBox message=e.to_string() /> }.into_any(),
                                Ok(t) => endpoint_test(t).into_any(),
                            })}
                        </section>
                    })
                })
            }}
        </Suspense>
    }
}

pub(crate) fn endpoint_test(t: crate::model::EndpointTest) -> impl IntoView {
    let head = format!("{}: {} rows in {} ms", t.endpoint, t.rows, t.millis);
    let verdict = match (&t.error, t.agrees, &t.compared_with) {
        (Some(e), _, _) => format!("failed: {e}"),
        (None, Some(true), Some(c)) => format!("agrees with {c}: largest difference {:.3e}", t.max_abs_diff.unwrap_or(0.0)),
        (None, Some(false), Some(c)) => format!(
            "DISAGREES with {c}: largest difference {:.4} (row {}), mean {:.4} — check the endpoint's layout, output and positive_column",
            t.max_abs_diff.unwrap_or(f64::NAN),
            t.worst.as_ref().map(|w| w.row).unwrap_or(0),
            t.mean_abs_diff.unwrap_or(f64::NAN)
        ),
        _ => "predicted; the run has no score column of this name to compare with".to_string(),
    };
    let class = if t.error.is_some() || t.agrees == Some(false) { "endpoint-test bad" } else { "endpoint-test" };
    view! {
        <div class=class data-testid="endpoint-test" role="status">
            <p><strong>{head}</strong> " — " {verdict}</p>
            {(!t.first.is_empty()).then(|| view! {
                <div class="table-wrap" tabindex="0" role="region" aria-label="First rows, stored vs endpoint"><table>
                    <thead><tr><th>"Row"</th><th>"Stored"</th><th>"Endpoint"</th></tr></thead>
                    <tbody>{t.first.iter().map(|r| view! {
                        <tr><td>{r.row}</td><td>{r.stored.map(|v| format!("{v:.6}")).unwrap_or_else(|| "—".into())}</td><td>{format!("{:.6}", r.predicted)}</td></tr>
                    }).collect_view()}</tbody>
                </table></div>
            })}
        </div>
    }
}

#[component]
fn ColumnsTable(columns: Vec<ColumnInfo>, filter: RwSignal<String>) -> impl IntoView {
    let total = columns.len();
    let shown = Memo::new(move |_| {
        let f = filter.get().to_lowercase();
        columns
            .iter()
            .filter(|c| f.is_empty() || c.name.to_lowercase().contains(&f))
            .cloned()
            .collect::<Vec<_>>()
    });
    view! {
        <p class="muted" data-testid="column-count">
            {move || format!("{} of {total} columns", shown.read().len())}
        </p>
        <div class="table-scroll" tabindex="0" role="region" aria-label="Columns">
            <table class="data columns">
            <thead><tr><th>"Column"</th><th>"Role"</th><th>"Type"</th><th class="num">"Missing"</th>
                <th class="num">"Distinct"</th><th class="num">"Min"</th><th class="num">"Mean"</th>
                <th class="num">"Max"</th><th>"Top values"</th></tr></thead>
            <tbody>
                {move || shown.get().into_iter().map(|c| {
                    let stat = move |v: Option<f64>| match (c.kind, v) {
                        (ColumnKind::Timestamp, Some(us)) => fmt_epoch_micros(us),
                        _ => fmt_stat(v),
                    };
                    view! {
                    <tr>
                        <td class="mono">{c.name.clone()}</td>
                        <td>
                            {match &c.class_score {
                                Some(cs) => format!("score of {}: class {}", cs.model, cs.class),
                                None => c.role.as_str().to_string(),
                            }}
                        </td>
                        <td>{format!("{:?}", c.kind).to_lowercase()}</td>
                        <td class="num">{c.missing.to_string()}</td>
                        <td class="num">{c.distinct.to_string()}</td>
                        <td class="num">{stat(c.min)}</td>
                        <td class="num">{stat(c.mean)}</td>
                        <td class="num">{stat(c.max)}</td>
                        <td class="top">{c.top_values.iter().take(4)
                            .map(|v| format!("{} ({})", v.value, v.count))
                            .collect::<Vec<_>>().join(", ")}</td>
                    </tr>
                }}).collect_view()}
            </tbody>
            </table>
        </div>
    }
}

#[component]
fn ExamplesTable(page: ExamplesPage, id: String) -> impl IntoView {
    let ExamplesPage { columns, rows, offset, limit, total, note, sample } = page;
    if let Some(note) = note {
        return view! { <p class="muted">{format!("The rows stay in the run's dataset ({note}).")}</p> }.into_any();
    }
    let end = (offset + rows.len() as u64).min(total);
    let prev = (offset > 0).then(|| format!("/runs/{id}?offset={}", offset.saturating_sub(limit)));
    let next = (end < total).then(|| format!("/runs/{id}?offset={end}"));
    view! {
        <SampleNote sample=sample />
        <div class="section-head">
            <p class="muted">{format!("rows {}–{end} of {total}", if total == 0 { 0 } else { offset + 1 })}</p>
            <nav class="pager">
                {prev.map(|h| view! { <a href=h>"← previous"</a> })}
                {next.map(|h| view! { <a href=h>"next →"</a> })}
            </nav>
        </div>
        <div class="scroll" tabindex="0" role="region" aria-label="Examples">
            <table class="data examples">
                <thead><tr>{columns.iter().map(|c| view! { <th class="mono">{c.clone()}</th> }).collect_view()}</tr></thead>
                <tbody>
                    {rows.into_iter().map(|r| view! {
                        <tr>{r.into_iter().map(|v| view! { <td>{cell_text(&v)}</td> }).collect_view()}</tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

fn cell_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(x) if n.is_f64() => fmt_stat(Some(x)),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}
