//! `/runs/{id}/discover`: "where is my model worst?" — the slices found significantly worse than
//! the rest of the rows, best first, each linked into the slices, fairness and what-if views.
//! URL state: the API's parameters (`model`, `metric`, `thresholds`, `level`, `min_support`,
//! `features`, `scoring`, `holdout`, …), so a copied link reproduces the search.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{
    components::Form,
    hooks::{use_location, use_params_map, use_query_map},
};

use crate::components::{CopyLink, ErrorBox, SampleNote, fmt_metric};
use crate::progress::{JobProgress, new_job_id};
use crate::model::{DiscoveredSlice, DiscoveryResult, DiscoveryView};
use crate::pages::runs::urlencode;
use crate::server_fns::get_discovery_view;

#[component]
pub fn DiscoverPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let location = use_location();
    let id = Memo::new(move |_| params.read().get("id").unwrap_or_default());
    let search = Memo::new(move |_| location.search.get().trim_start_matches('?').to_string());
    // The search in flight (in the browser): its job, followed by the progress bar.
    let job = RwSignal::new(None::<String>);
    let data = Resource::new(
        move || (id.get(), search.get()),
        move |(id, q)| async move {
            let j = new_job_id();
            job.set(j.clone());
            let r = get_discovery_view(id, q, j).await;
            job.set(None);
            r
        },
    );
    view! {
        <Title text="Weak slices" />
        <div class="page-head">
            <h1>"Where is the model worst?"</h1>
            <a href=move || format!("/runs/{}", id.get())>"← run overview"</a>
            <CopyLink />
        </div>
        <p class="muted">"Every cross of up to three features is searched (numeric features in quantile buckets and ranges of them); \
            a slice is listed when it is significantly worse than the rest of the rows, with the false-discovery rate controlled \
            across every slice examined (Benjamini–Yekutieli)."</p>
        <JobProgress job label="Search" />
        <Suspense fallback=|| view! { <p>"Searching…"</p> }>
            {move || Suspend::new(async move {
                let q = move |k: &str| query.read_untracked().get(k).unwrap_or_default();
                let q_all = move |k: &str| query.read_untracked().get_all(k).unwrap_or_default();
                match data.await {
                    Err(e) => view! { <SearchForm v=None q q_all /> <ErrorBox message=e.to_string() /> }.into_any(),
                    Ok(v) => {
                        let r = v.result.clone();
                        let project = v.project.clone();
                        view! { <SearchForm v=Some(v) q q_all /> <Results r id=id.get_untracked() project /> }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// The search's settings as a GET form (every field is a URL parameter).
#[component]
fn SearchForm(v: Option<DiscoveryView>, q: impl Fn(&str) -> String + Copy + Send + Sync + 'static, q_all: impl Fn(&str) -> Vec<String> + Copy + Send + Sync + 'static) -> impl IntoView {
    let r = v.as_ref().map(|v| v.result.clone());
    let model = r.as_ref().map(|r| r.model.clone()).unwrap_or_else(|| q("model"));
    let metric = r.as_ref().map(|r| r.metric.clone()).unwrap_or_else(|| q("metric"));
    let models = v.as_ref().map(|v| v.models.clone()).unwrap_or_default();
    let metric_names = v.as_ref().map(|v| v.metric_names.clone()).unwrap_or_default();
    let level = r.as_ref().map(|r| r.max_level.to_string()).unwrap_or_else(|| q("level"));
    let chosen_features: Vec<String> = q_all("features").iter().flat_map(|v| v.split(',')).map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    let all_features = v.as_ref().map(|v| v.feature_names.clone()).unwrap_or_default();
    let threshold = r.as_ref().and_then(|r| r.threshold).map(|t| t.to_string()).unwrap_or_else(|| q("thresholds"));
    let min_support = r.as_ref().map(|r| r.min_support.to_string()).unwrap_or_else(|| q("min_support"));
    let scoring = r.as_ref().map(|r| r.scoring.clone()).unwrap_or_else(|| q("scoring"));
    let holdout = q("holdout") == "true" || q("holdout") == "1";
    view! {
        <Form method="GET" action="">
            <div class="controls">
                <label>"Model "
                    <select name="model" aria-label="Model">
                        {models.iter().map(|m| view! { <option value=m.clone() selected=*m == model>{m.clone()}</option> }).collect_view()}
                    </select>
                </label>
                <label>"Metric "
                    <select name="metric" aria-label="Metric">
                        {metric_names.iter().map(|m| {
                            let shown = if m == "error_rate" { "Error rate".to_string() } else { crate::metrics::display(m) };
                            view! { <option value=m.clone() selected=*m == metric>{shown}</option> }
                        }).collect_view()}
                    </select>
                </label>
                <label>"Threshold " <input type="number" name="thresholds" aria-label="Threshold" min="0" max="1" step="0.01" prop:value=threshold.clone() /></label>
                <label>"Features per slice "
                    <select name="level" aria-label="Features per slice">
                        {["1", "2", "3"].into_iter().map(|l| view! { <option value=l selected=level == l>{l}</option> }).collect_view()}
                    </select>
                </label>
                <label>"Min. rows " <input type="number" name="min_support" aria-label="Minimum rows" min="1" prop:value=min_support.clone() /></label>
                <label>"Ranking "
                    <select name="scoring" aria-label="Ranking">
                        <option value="gap" selected=scoring != "sliceline">"gap to the rest (lower bound)"</option>
                        <option value="sliceline" selected=scoring == "sliceline">"SliceLine score"</option>
                    </select>
                </label>
                <label><input type="checkbox" name="holdout" value="true" checked=holdout />" confirm on a held-out half"</label>
                <button type="submit">"Search"</button>
            </div>
            <details class="feature-picker" open=!chosen_features.is_empty()>
                <summary>{if chosen_features.is_empty() { "Features: all".to_string() } else { format!("Features: {} of {}", chosen_features.len(), all_features.len()) }}</summary>
                <label>"Features the search may combine (none selected: all; Ctrl/⌘-click picks several) "
                    <select name="features" multiple size="8" aria-label="Features">
                        {all_features.iter().map(|f| view! { <option value=f.clone() selected=chosen_features.contains(f)>{f.clone()}</option> }).collect_view()}
                    </select>
                </label>
            </details>
        </Form>
    }
}

fn metric_name(m: &str) -> String {
    if m == "error_rate" { "Error rate".into() } else { crate::metrics::display(m) }
}

#[component]
fn Results(r: DiscoveryResult, id: String, project: Option<String>) -> impl IntoView {
    let levels = r.per_level.iter().enumerate().map(|(i, n)| format!("{} with {} feature{}", n, i + 1, if i == 0 { "" } else { "s" })).collect::<Vec<_>>().join(", ");
    let summary = format!(
        "{} rows · overall {} {} · examined {} slices ({levels}){} · at least {} rows each · FDR {} % · {:.2} s",
        r.rows,
        metric_name(&r.metric).to_lowercase(),
        fmt_metric(Some(r.overall.value)),
        r.examined,
        if r.pruned > 0 { format!(", {} more skipped by their score's upper bound", r.pruned) } else { String::new() },
        r.min_support,
        r.fdr * 100.0,
        r.seconds,
    );
    let holdout = r.holdout_rows.map(|n| format!("Found on one half of the rows, confirmed on the other {n}: the metrics and q-values below are the confirming half's."));
    let empty = r.slices.is_empty();
    let slices = r.slices.clone();
    view! {
        <SampleNote sample=r.row_sample.clone() />
        <p class="muted" data-testid="discover-summary">{summary}</p>
        {r.truncated.then(|| view! { <p class="warn">"The search hit its candidate limit: raise the minimum rows or pick fewer features to search every slice."</p> })}
        {holdout.map(|h| view! { <p class="muted">{h}</p> })}
        {empty.then(|| view! {
            <p data-testid="discover-empty">{format!("No slice is significantly worse than the rest at a false-discovery rate of {} %.", r.fdr * 100.0)}</p>
        })}
        {(!empty).then(|| view! {
            <div class="table-scroll" tabindex="0" role="region" aria-label="Weak slices found">
            <table class="data" data-testid="discovered">
                <caption class="sr-only">"Slices where the model is significantly worse, best first"</caption>
                <thead><tr>
                    <th>"#"</th><th>"Slice"</th><th class="num">"Rows"</th>
                    <th class="num">{metric_name(&r.metric)}</th><th class="num">"Rest"</th>
                    <th class="num">"Gap (worse +)"</th><th class="num">"q (BY)"</th><th>"Overlap"</th><th>"Open in"</th>
                </tr></thead>
                <tbody>
                    {slices.iter().enumerate().map(|(i, s)| view! { <Row i s=s.clone() r=r.clone() id=id.clone() project=project.clone() /> }).collect_view()}
                </tbody>
            </table>
            </div>
        })}
    }
}

#[component]
fn Row(i: usize, s: DiscoveredSlice, r: DiscoveryResult, id: String, project: Option<String>) -> impl IntoView {
    let ci = |c: &crate::model::Ci| format!("{} [{}, {}]", fmt_metric(Some(c.value)), fmt_metric(Some(c.lo)), fmt_metric(Some(c.hi)));
    let key = s.features.iter().map(|f| format!("{f} = {}", s.key.get(f).cloned().unwrap_or_default())).collect::<Vec<_>>().join(" & ");
    let t = r.threshold.map(|t| format!("&thresholds={t}")).unwrap_or_default();
    // The slices view shows registry metrics: the error rate's complement is its accuracy.
    let slices_metric = if r.metric == "error_rate" { "accuracy".to_string() } else { r.metric.clone() };
    let slices_href = format!("/runs/{id}/slices?model={}&slice={}&metric={}{t}", urlencode(&r.model), urlencode(&s.spec), urlencode(&slices_metric));
    let fairness_metric = if crate::metrics::lookup(&r.metric).is_some_and(|m| m.fairness) { format!("&metric={}", urlencode(&r.metric)) } else { String::new() };
    let fairness_href = format!("/runs/{id}/fairness?model={}&feature={}{t}{fairness_metric}", urlencode(&r.model), urlencode(&s.spec));
    let whatif_href = format!("/runs/{id}/whatif?model={}&slice={}{}", urlencode(&r.model), urlencode(&s.filter), r.threshold.map(|t| format!("&threshold={t}")).unwrap_or_default());
    let overlap = if s.group == i { String::new() } else { format!("mostly #{} ({:.0} % of its rows)", s.group + 1, s.overlap * 100.0) };
    view! {
        <tr class:grouped=s.group != i data-testid="discovered-row">
            <td>{(i + 1).to_string()}</td>
            <td class="slice-key" title=s.filter.clone()>{key}</td>
            <td class="num">{s.count.to_string()}</td>
            <td class="num">{ci(&s.metric)}</td>
            <td class="num">{ci(&s.complement)}</td>
            <td class="num">{ci(&s.gap)}</td>
            <td class="num">{if s.q_value < 1e-16 { "< 1e-16".to_string() } else { format!("{:.1e}", s.q_value) }}</td>
            <td>{overlap}</td>
            <td class="links">
                <a href=slices_href data-testid="open-slices">"slices"</a>" · "
                {(r.task == crate::model::Task::Binary).then(|| view! { <a href=fairness_href data-testid="open-fairness">"fairness"</a>" · " })}
                <a href=whatif_href data-testid="open-whatif">"what-if"</a>
                {project.map(|p| view! { <SaveSlice project=p filter=s.filter.clone() metric=r.metric.clone() /> })}
            </td>
        </tr>
    }
}

/// Saves a found slice under a name in the run's project (tracked on the project page).
#[component]
fn SaveSlice(project: String, filter: String, metric: String) -> impl IntoView {
    let save = ServerAction::<crate::server_fns::SaveNamedSlice>::new();
    let name = RwSignal::new(String::new());
    view! {
        <crate::pages::team::EditOnly>
            {let (project, filter, metric) = (project.clone(), filter.clone(), metric.clone()); view! {
                <span class="save-slice">
                    <input type="text" aria-label="Slice name" placeholder="name" size="10" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
                    <button type="button" on:click=move |_| {
                        save.dispatch(crate::server_fns::SaveNamedSlice { project: project.clone(), name: name.get_untracked(), filter: filter.clone(), metric: Some(metric.clone()) });
                    }>"Save"</button>
                    {move || save.value().get().map(|r| match r {
                        Ok(s) => view! { <span class="muted" data-testid="slice-saved">{format!(" saved as '{}'", s.name)}</span> }.into_any(),
                        Err(e) => view! { <span class="error" role="alert">{e.to_string()}</span> }.into_any(),
                    })}
                </span>
            }}
        </crate::pages::team::EditOnly>
    }
}
