//! `/runs/{id}/drift?reference=RUN&feature=F`: how this run's data moved away from a reference run.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{
    components::Form,
    hooks::{use_location, use_params_map},
};

use crate::components::{CopyLink, ErrorBox, PlotlyChart};
use crate::model::DriftView;
use crate::pages::slices::with_param;
use crate::progress::{JobProgress, SlowJob};
use crate::server_fns::get_drift_view;

#[component]
pub fn DriftPage() -> impl IntoView {
    let params = use_params_map();
    let location = use_location();
    let id = Memo::new(move |_| params.read().get("id").unwrap_or_default());
    let search = Memo::new(move |_| location.search.get().trim_start_matches('?').to_string());
    // Drift of two large runs takes seconds: after a moment it shows its progress and a Cancel.
    let job = SlowJob::default();
    let data = Resource::new(
        move || (id.get(), search.get()),
        move |(id, q)| async move {
            let j = job.start();
            let r = get_drift_view(id, q, j.clone()).await;
            job.end(&j);
            r
        },
    );
    view! {
        <Title text="Drift" />
        <div class="page-head">
            <h1>"Drift from a reference run"</h1>
            <a href=move || format!("/runs/{}", id.get())>"← run overview"</a>
            <CopyLink />
        </div>
        <crate::pages::team::ShareView run_id=id.get_untracked() />
        <JobProgress job=job.shown() label="Computing drift" />
        <Suspense fallback=|| view! { <p>"Computing…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorBox message=e.to_string() /> }.into_any(),
                    Ok(v) => view! { <DriftPanel v id=id.get_untracked() search=search.get_untracked() /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn DriftPanel(v: DriftView, id: String, search: String) -> impl IntoView {
    let current_ref = v.result.as_ref().map(|r| r.reference.clone()).unwrap_or_default();
    let link = move |f: &str| format!("/runs/{id}/drift?{}", with_param(&search, "feature", f));
    view! {
        <Form method="GET" action="">
            <div class="controls">
                <label>"Reference run "
                    <select name="reference" aria-label="Reference run">
                        <option value="">"choose…"</option>
                        {v.runs.iter().map(|(rid, name)| view! { <option value=rid.clone() selected=*rid == current_ref>{format!("{name} ({rid})")}</option> }).collect_view()}
                    </select>
                </label>
                <button type="submit">"Compare"</button>
            </div>
        </Form>
        {v.result.clone().map(|r| view! {
            <p class="muted" data-testid="drift-summary">{format!("{} drifted (PSI ≥ 0.1 and BH q ≤ 0.05) · computed in {:.3} s{}",
                match r.features.iter().filter(|f| f.drifted && f.kind != "score").count() { 1 => "1 feature".to_string(), n => format!("{n} features") }, r.seconds,
                match (r.base_rate_reference, r.base_rate_current, r.base_rate_p_value) {
                    (Some(a), Some(b), Some(p)) => format!(" · label base rate {a:.4} → {b:.4} (p = {p:.2e})"),
                    _ => String::new(),
                })}</p>
            {(!r.notes.is_empty()).then(|| view! {
                <ul class="muted result-notes" data-testid="drift-notes">{r.notes.iter().map(|n| view! { <li>{n.clone()}</li> }).collect_view()}</ul>
            })}
            <div class="table-scroll" tabindex="0" role="region" aria-label="Drift by feature">
                <table class="data" data-testid="drift-table">
                <thead><tr><th>"Column"</th><th>"Kind"</th><th class="num">"PSI"</th><th class="num">"JS distance"</th><th class="num">"Hellinger"</th>
                    <th>"Test"</th><th class="num">"Statistic"</th><th class="num">"p"</th><th class="num">"q (BH)"</th><th>"Verdict"</th></tr></thead>
                <tbody>{r.features.iter().map(|f| view! {
                    <tr class="drift-row" class:flag=f.drifted>
                        <td><a href=link(&f.feature)>{f.feature.clone()}</a></td><td>{f.kind.clone()}</td>
                        <td class="num">{format!("{:.4}", f.psi)}</td><td class="num">{format!("{:.4}", f.js_distance)}</td><td class="num">{format!("{:.4}", f.hellinger)}</td>
                        <td>{f.test.clone()}</td><td class="num">{format!("{:.4}", f.statistic)}</td><td class="num">{format!("{:.2e}", f.p_value)}</td><td class="num">{format!("{:.2e}", f.q_value)}</td>
                        <td>{f.drifted.then_some("drifted")}</td>
                    </tr>
                }).collect_view()}</tbody>
                </table>
            </div>
        })}
        {v.chart.clone().map(|c| view! {
            <h2>{format!("{}: reference vs current", v.chart_feature.clone().unwrap_or_default())}</h2>
            <PlotlyChart figure=Signal::derive(move || c.clone()) label="Feature distribution, reference vs current" />
        })}
        <h2>"Within this run's stream"</h2>
        {v.stream_note.clone().map(|n| view! { <p class="muted">{n}</p> })}
        {v.stream.clone().map(|s| {
            let chart = s.chart.clone();
            view! {
                <p class="muted" data-testid="stream-summary">{format!(
                    "{} examples of {} in {} order, decisions at {}: DDM {} drift(s), ADWIN {}, Linear Four Rates {}, MD3 (scores only) {}. Warnings (DDM {}, LFR {}) are on the chart; the table lists the drifts.",
                    s.n, s.model, s.order_by, s.threshold, s.ddm_drifts.len(), s.adwin_drifts.len(), s.lfr_drifts.len(), s.md3_drifts.len(), s.ddm_warnings.len(), s.lfr_warnings.len())}</p>
                <PlotlyChart figure=Signal::derive(move || chart.clone()) label="Error rate over the stream with detections" />
                <div class="table-scroll" tabindex="0" role="region" aria-label="Drift in the stream">
                    <table class="data" data-testid="stream-table">
                    <thead><tr><th>"Detector"</th><th>"Signal"</th><th class="num">"Row"</th><th>"At"</th></tr></thead>
                    <tbody>{[("DDM", &s.ddm_drifts), ("ADWIN", &s.adwin_drifts), ("Linear Four Rates", &s.lfr_drifts), ("MD3", &s.md3_drifts)]
                        .into_iter()
                        .flat_map(|(d, pts)| pts.iter().take(20).map(move |p| (d, p.index, p.at.clone())))
                        .map(|(d, i, at)| view! { <tr><td>{d}</td><td>"drift"</td><td class="num">{i}</td><td>{at}</td></tr> })
                        .collect_view()}</tbody>
                    </table>
                </div>
            }
        })}
    }
}
