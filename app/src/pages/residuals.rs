//! `/runs/{id}/residuals`: where the errors are systematic. URL state: `model`, `kind`, `feature`,
//! `slice` (and the API's other parameters), so a copied link opens the same view.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{
    NavigateOptions,
    components::Form,
    hooks::{use_location, use_navigate, use_params_map, use_query_map},
};

use crate::components::{CopyLink, ErrorBox, PlotlyChart, SampleNote, fmt_metric};
use crate::pickers::{FieldError, FieldMessage, SlicePicker, clean_error, last_choice, load_keeping_form, spec_fits};
use crate::model::ResidualsView;
use crate::pages::slices::with_param;
use crate::server_fns::get_residuals_view;

/// The residuals form's parameters: a rejected one is dropped to keep a result on the page.
const FORM_KEYS: &[&str] = &["slice", "model", "kind", "feature"];
/// Where the user's last "Bias by slice" is remembered in the browser.
const LAST_SLICE: &str = "strata.residuals.slice";

#[component]
pub fn ResidualsPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let location = use_location();
    let id = Memo::new(move |_| params.read().get("id").unwrap_or_default());
    let search = Memo::new(move |_| location.search.get().trim_start_matches('?').to_string());
    let data = Resource::new(move || (id.get(), search.get()), |(id, q)| load_keeping_form(q, FORM_KEYS, move |q| get_residuals_view(id.clone(), q)));
    let last_good = StoredValue::new(None::<ResidualsView>);
    // No slicing in the URL: the user's last one, when this run has its columns.
    let navigate = use_navigate();
    Effect::new(move |_| {
        let Some(Ok((v, None))) = data.get() else { return };
        let path = format!("/runs/{}/residuals", id.get_untracked());
        if let Some(url) = last_choice(LAST_SLICE, &path, &search.get_untracked(), "slice", false, |s| spec_fits(s, &v.columns)) {
            navigate(&url, NavigateOptions { replace: true, scroll: false, ..Default::default() });
        }
    });
    let hidden = move |k: &'static str| {
        view! { <input type="hidden" name=move || query.read().get(k).filter(|x| !x.is_empty()).map(|_| k) value=move || query.read().get(k).unwrap_or_default() /> }
    };

    view! {
        <Title text="Residuals" />
        <div class="page-head">
            <h1>"Residual analysis"</h1>
            <a href=move || format!("/runs/{}", id.get())>"← run overview"</a>
            <CopyLink />
        </div>
        <crate::pages::team::ShareView run_id=id.get_untracked() />
        <Suspense fallback=|| view! { <p>"Computing…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorBox message=clean_error(&e.to_string()) /> }.into_any(),
                    Ok((v, error)) => {
                        let shown = match &error {
                            None => {
                                last_good.set_value(Some(v.clone()));
                                v.clone()
                            }
                            Some(_) => last_good.get_value().unwrap_or_else(|| v.clone()),
                        };
                        let spec = RwSignal::new(query.read_untracked().get("slice").unwrap_or_default());
                        let other_error = error.as_ref().filter(|e| e.field != "slice").map(|e| e.message.clone());
                        view! {
                            <Form method="GET" action="" on_form_data=crate::pickers::drop_unnamed_entries()>
                                <div class="controls picker-form">
                                    <SlicePicker columns=v.columns.clone() spec name="slice" label="Bias by slice" none_label="— none —" error=FieldError::about(&error, "slice") />
                                    {hidden("model")}
                                    {hidden("kind")}
                                    {hidden("feature")}
                                    <button type="submit">"Apply"</button>
                                </div>
                                <FieldMessage id="form-error".to_string() message=other_error />
                            </Form>
                            <ResidualsPanel v=shown id=id.get_untracked() search />
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
fn ResidualsPanel(v: ResidualsView, id: String, search: Memo<String>) -> impl IntoView {
    let navigate = use_navigate();
    let go = {
        let id = id.clone();
        move |key: &str, value: String| {
            let url = format!("/runs/{id}/residuals?{}", with_param(&search.get_untracked(), key, &value));
            navigate(&url, NavigateOptions { scroll: false, ..Default::default() });
        }
    };
    let (go1, go2, go3) = (go.clone(), go.clone(), go.clone());
    let r = v.result.clone();
    let chosen = r.feature.as_ref().map(|f| f.feature.clone()).unwrap_or_default();
    let fixed = |s: String| Signal::derive(move || s.clone());
    let link = {
        let (id, search) = (id.clone(), search);
        move |f: String| format!("/runs/{id}/residuals?{}", with_param(&search.get_untracked(), "feature", &f))
    };
    let ac = r.autocorrelation.clone();
    let binary = r.task == "binary";
    view! {
        <div class="controls">
            <label>"Model "
                <select aria-label="Model" on:change=move |ev| go1("model", event_target_value(&ev))>
                    {v.models.iter().map(|m| view! { <option value=m.clone() selected=*m == r.model>{m.clone()}</option> }).collect_view()}
                </select>
            </label>
            {binary.then(|| view! {
                <label>"Residual "
                    <select aria-label="Residual kind" on:change=move |ev| go2("kind", event_target_value(&ev))>
                        <option value="raw" selected=r.kind == "raw">"label − score"</option>
                        <option value="deviance" selected=r.kind == "deviance">"deviance"</option>
                    </select>
                </label>
            })}
            <label>"Feature "
                <select aria-label="Feature" on:change=move |ev| go3("feature", event_target_value(&ev))>
                    {v.feature_names.iter().map(|f| view! { <option value=f.clone() selected=*f == chosen>{f.clone()}</option> }).collect_view()}
                </select>
            </label>
        </div>
        <SampleNote sample=r.row_sample.clone() />
        <p class="muted" data-testid="residual-summary">
            {format!("{} rows · mean residual {} · sd {} · charts show a uniform sample of {} points; every statistic uses all {}",
                r.n, fmt_metric(Some(r.mean)), fmt_metric(Some(r.sd)), r.sampled, if r.row_sample.is_some() { "rows of the sample" } else { "rows" })}
            {ac.as_ref().map(|a| format!(" · Durbin–Watson {:.3} ({}) in {} order", a.durbin_watson, a.reading, a.order_by))}
        </p>
        <h2>"Which features the residuals depend on"</h2>
        <div class="table-scroll" tabindex="0" role="region" aria-label="Feature ranking">
            <table class="data features" data-testid="feature-ranking">
            <thead><tr><th>"Feature"</th><th>"Measure"</th><th class="num">"Strength"</th><th class="num">"p-value"</th>
                <th class="num">"Pearson r"</th><th class="num">"q (BH)"</th><th>"Verdict"</th></tr></thead>
            <tbody>
                {r.features.iter().map(|f| {
                    let href = link(f.feature.clone());
                    view! {
                        <tr class:flag=f.significant>
                            <td><a href=href>{f.feature.clone()}</a></td>
                            <td>{if f.method == "eta" { "correlation ratio η" } else { "Spearman ρ" }}</td>
                            <td class="num">{format!("{:.4}", f.strength)}</td>
                            <td class="num">{format!("{:.2e}", f.p_value)}</td>
                            <td class="num">{f.pearson.map(|p| format!("{p:.4}")).unwrap_or_default()}</td>
                            <td class="num">{format!("{:.2e}", f.q_value)}</td>
                            <td>{f.significant.then_some("residuals depend on it")}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
            </table>
        </div>
        <div class="chart-grid">
            <section><h2>"Residual vs prediction"</h2>
                <PlotlyChart figure=fixed(v.chart_vs_prediction.clone()) label="Residual vs prediction" /></section>
            {v.chart_feature.clone().map(|c| view! {
                <section><h2>{format!("Residual vs {chosen}")}</h2><PlotlyChart figure=fixed(c) label=format!("Residual vs {chosen}") /></section>
            })}
            <section><h2>"Histogram"</h2><PlotlyChart figure=fixed(v.chart_hist.clone()) label="Residual histogram" /></section>
            <section><h2>"Normal Q–Q"</h2><PlotlyChart figure=fixed(v.chart_qq.clone()) label="Normal Q-Q plot" /></section>
            {v.chart_acf.clone().map(|c| view! {
                <section><h2>"Autocorrelation"</h2><PlotlyChart figure=fixed(c) label="Autocorrelation of residuals" /></section>
            })}
        </div>
        {v.chart_slices.clone().map(|c| view! {
            <h2>{format!("Bias by slice: {}", r.slice_spec.clone().unwrap_or_default())}</h2>
            {r.slices_of_rows.map(|n| view! {
                <p class="muted" data-testid="bias-rows">{format!("Over all {} rows of the run (counted where they are), not the sample.", crate::model::grouped(n))}</p>
            })}
            <PlotlyChart figure=fixed(c) label="Mean residual by slice" />
            <div class="table-scroll" tabindex="0" role="region" aria-label="Bias by slice">
                <table class="data" data-testid="slice-bias">
                <thead><tr><th>"Slice"</th><th class="num">"n"</th><th class="num">"Mean residual"</th><th class="num">"Interval"</th><th class="num">"q (BH)"</th><th>"Verdict"</th></tr></thead>
                <tbody>
                    {r.slices.iter().map(|s| view! {
                        <tr class:flag=s.significant>
                            <td>{s.key.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")}</td>
                            <td class="num">{s.n.to_string()}</td>
                            <td class="num">{fmt_metric(Some(s.mean))}</td>
                            <td class="num">{format!("[{}, {}]", fmt_metric(s.lo), fmt_metric(s.hi))}</td>
                            <td class="num">{s.q_value.map(|q| format!("{q:.2e}")).unwrap_or_default()}</td>
                            <td>{s.significant.then_some("significant bias")}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
                </table>
            </div>
        })}
    }
}
