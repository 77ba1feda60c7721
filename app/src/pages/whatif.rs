//! `/runs/{id}/whatif`: browse examples, edit one and see each attached model's new score, the
//! nearest counterfactual, and partial dependence. URL state: `model`, `threshold`, `filter`,
//! `offset`, `x`, `example`, `set.<feature>` (the edits), `pdp`.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{
    NavigateOptions,
    components::Form,
    hooks::{use_location, use_navigate, use_params_map},
};

use crate::components::{CopyLink, ErrorBox, PlotlyChart, fmt_metric};
use crate::model::WhatIfView;
use crate::pages::slices::with_param;
use crate::server_fns::{DeleteWhatIf, SaveWhatIf, get_whatif_view};

/// The query without the edits (`set.*`), e.g. to select another example.
pub fn without_edits(query: &str) -> String {
    query.trim_start_matches('?').split('&').filter(|p| !p.is_empty() && !p.starts_with("set.") && !p.starts_with("set%2E")).collect::<Vec<_>>().join("&")
}

fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "—".into(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.as_f64().map(|x| if x.fract() == 0.0 { format!("{x:.0}") } else { format!("{x:.4}") }).unwrap_or_default(),
        other => other.to_string(),
    }
}

#[component]
pub fn WhatIfPage() -> impl IntoView {
    let params = use_params_map();
    let location = use_location();
    let id = Memo::new(move |_| params.read().get("id").unwrap_or_default());
    let search = Memo::new(move |_| location.search.get().trim_start_matches('?').to_string());
    // Saving or deleting an example refetches the view (its list of saved examples).
    let save = ServerAction::<SaveWhatIf>::new();
    let delete = ServerAction::<DeleteWhatIf>::new();
    let data = Resource::new(move || (id.get(), search.get(), save.version().get(), delete.version().get()), |(id, q, _, _)| get_whatif_view(id, q));
    view! {
        <Title text="What-if" />
        <div class="page-head">
            <h1>"What-if"</h1>
            <a href=move || format!("/runs/{}", id.get())>"← run overview"</a>
            <CopyLink />
        </div>
        <crate::pages::team::ShareView run_id=id.get_untracked() />
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorBox message=e.to_string() /> }.into_any(),
                    Ok(v) => view! { <WhatIfPanel v id=id.get_untracked() search save delete /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn WhatIfPanel(v: WhatIfView, id: String, search: Memo<String>, save: ServerAction<SaveWhatIf>, delete: ServerAction<DeleteWhatIf>) -> impl IntoView {
    let navigate = use_navigate();
    let base = format!("/runs/{id}/whatif");
    let go = {
        let base = base.clone();
        move |key: &str, value: String| {
            navigate(&format!("{base}?{}", with_param(&search.get_untracked(), key, &value)), NavigateOptions { scroll: false, ..Default::default() });
        }
    };
    let (go1, go2, go3, go4) = (go.clone(), go.clone(), go.clone(), go.clone());
    let q = search.get_untracked();
    let select_href = {
        let (base, q) = (base.clone(), q.clone());
        move |ex: &str| format!("{base}?{}", with_param(&without_edits(&q), "example", ex))
    };
    let click_template = format!("{base}?{}", with_param(&without_edits(&q), "example", "{id}"));
    let binary = v.task == "binary";
    let page_href = |offset: u64| format!("{base}?{}", with_param(&q, "offset", &offset.to_string()));
    let (prev, next) = (v.browser.offset.saturating_sub(12), v.browser.offset + 12);
    let has_prev = v.browser.offset > 0;
    let has_next = next < v.browser.total;
    let scatter = v.scatter_chart.clone();
    let reset_href = format!("{base}?{}", without_edits(&q));
    let current_model = v.predictions.first().map(|p| p.model.clone()).or_else(|| v.models.first().cloned()).unwrap_or_default();
    let hidden: Vec<(String, String)> = serde_urlencoded_pairs(&q).into_iter().filter(|(k, _)| !k.starts_with("set.")).collect();
    let saved = v.saved.clone();
    let id_for_rows = id.clone();
    let saved_view = (!saved.is_empty()).then(move || {
            view! {
                <h2>"Saved what-if examples"</h2>
                <table class="data" data-testid="saved">
                    <thead><tr><th>"Name"</th><th>"Example"</th><th>"Edits"</th><th>"Saved (UTC)"</th><th></th></tr></thead>
                    <tbody>{saved.into_iter().map(|sv| {
                        let rid = id_for_rows.clone();
                        let mut q = format!("example={}", crate::pages::runs::urlencode(&sv.example));
                        for (k, val) in &sv.edits {
                            q.push_str(&format!("&set.{}={}", crate::pages::runs::urlencode(k), crate::pages::runs::urlencode(val)));
                        }
                        let href = format!("/runs/{rid}/whatif?{q}");
                        view! {
                            <tr>
                                <td><a href=href>{sv.name.clone()}</a></td>
                                <td>{sv.example.clone()}</td>
                                <td>{sv.edits.iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>().join(", ")}</td>
                                <td>{sv.saved_at.clone()}</td>
                                <td>
                                    <ActionForm action=delete>
                                        <input type="hidden" name="id" value=rid.clone() />
                                        <input type="hidden" name="name" value=sv.name.clone() />
                                        <button type="submit" aria-label=format!("delete {}", sv.name)>"delete"</button>
                                    </ActionForm>
                                </td>
                            </tr>
                        }
                    }).collect_view()}</tbody>
                </table>
            }
        });
    // The attack form keeps everything else in the URL, the edits included.
    let attack_hidden: Vec<(String, String)> = serde_urlencoded_pairs(&q).into_iter().filter(|(k, _)| !k.starts_with("attack_")).collect();
    let attack_noise = v.attack.as_ref().map(|a| a.noise.to_string()).unwrap_or_else(|| "0.1".into());
    let attack_swap = v.attack.as_ref().map(|a| a.swap.to_string()).unwrap_or_else(|| "0.05".into());
    let attack = v.attack.clone();
    let pairs = serde_urlencoded_pairs(&q);
    let get = |k: &str| pairs.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let (slice_value, score_min, score_max, color_value) = (get("slice"), get("score_min"), get("score_max"), get("color"));
    let filter_hidden: Vec<(String, String)> = pairs.iter().filter(|(k, _)| !["slice", "score_min", "score_max", "color", "offset"].contains(&k.as_str())).cloned().collect();
    view! {
        <p class="muted">{format!("{} · models that can be called: {}", v.run_name, if v.models.is_empty() { "none (attach an ONNX file to the run)".to_string() } else { v.models.join(", ") })}</p>
        <div class="controls">
            <label>"Model "
                <select aria-label="Model" on:change=move |ev| go1("model", event_target_value(&ev))>
                    {v.models.iter().map(|m| view! { <option value=m.clone() selected=*m == current_model>{m.clone()}</option> }).collect_view()}
                </select>
            </label>
            {binary.then(|| view! {
                <label>"Threshold " <input type="number" min="0" max="1" step="0.01" aria-label="Threshold" value=v.threshold.to_string()
                    on:change=move |ev| go2("threshold", event_target_value(&ev)) /></label>
            })}
            <label>"Show "
                <select aria-label="Filter" on:change=move |ev| go3("filter", event_target_value(&ev))>
                    {[("all", "all examples"), ("incorrect", "wrong decisions"), ("correct", "right decisions"), ("positive", "label 1"), ("negative", "label 0")]
                        .into_iter().map(|(k, t)| view! { <option value=k selected=k == v.filter>{t}</option> }).collect_view()}
                </select>
            </label>
        </div>
        <Form method="GET" action="">
            {filter_hidden.into_iter().map(|(k, val)| view! { <input type="hidden" name=k value=val /> }).collect_view()}
            <div class="controls">
                <label>"Only slice " <input type="text" name="slice" aria-label="Only slice" placeholder="sex=Female" value=slice_value /></label>
                <label>"Score from " <input type="number" step="any" name="score_min" aria-label="Score from" value=score_min /></label>
                <label>"to " <input type="number" step="any" name="score_max" aria-label="Score to" value=score_max /></label>
                <label>"Colour by "
                    <select name="color" aria-label="Colour by">
                        <option value="label" selected=color_value != "correct">"label"</option>
                        <option value="correct" selected=color_value == "correct">"right / wrong decision"</option>
                    </select>
                </label>
                <button type="submit">"Filter"</button>
            </div>
        </Form>
        <div class="chart-grid">
            <section>
                <h2>"Examples"</h2>
                <p class="muted" data-testid="browser-count">{if v.browser.rows.is_empty() {
                    format!("{} matching", v.browser.total)
                } else {
                    format!("{} matching · showing {}–{}", v.browser.total, v.browser.offset + 1, (v.browser.offset + v.browser.rows.len() as u64))
                }}</p>
                {v.slice_hint.clone().map(|h| view! { <p class="warn" role="status" data-testid="slice-hint">{h}</p> })}
                <div class="table-scroll">
                    <table class="data browser" data-testid="browser">
                        <thead><tr><th></th>{v.browser.columns.iter().map(|c| view! { <th>{c.clone()}</th> }).collect_view()}</tr></thead>
                        <tbody>
                            {v.browser.rows.iter().zip(&v.browser_ids).map(|(r, ex)| {
                                let selected = v.example.as_deref() == Some(ex.as_str());
                                view! {
                                    <tr class:selected=selected>
                                        <td><a href=select_href(ex) aria-label=format!("select {ex}")>"select"</a></td>
                                        {r.iter().map(|c| view! { <td>{cell(c)}</td> }).collect_view()}
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
                <p class="pager">
                    {has_prev.then(|| view! { <a href=page_href(prev)>"← previous"</a> })}
                    {has_next.then(|| view! { <a href=page_href(next)>"next →"</a> })}
                </p>
            </section>
            <section>
                <h2>"Click a point to select it"</h2>
                <figure class="chart">
                    <div class="plot" role="img" aria-label="Examples by feature and score" data-plot=scatter data-click-href=click_template></div>
                </figure>
                <label>"x axis "
                    <select aria-label="Scatter x" on:change=move |ev| go4("x", event_target_value(&ev))>
                        {v.feature_names.iter().map(|f| view! { <option value=f.clone()>{f.clone()}</option> }).collect_view()}
                    </select>
                </label>
            </section>
        </div>
        {saved_view}
        <h2>"Random attack"</h2>
        <Form method="GET" action="">
            {attack_hidden.into_iter().map(|(k, val)| view! { <input type="hidden" name=k value=val /> }).collect_view()}
            <div class="controls">
                <label>"Noise (sd) " <input type="number" step="any" min="0" name="attack_noise" aria-label="Attack noise" value=attack_noise /></label>
                <label>"Swap probability " <input type="number" step="any" min="0" max="1" name="attack_swap" aria-label="Attack swap" value=attack_swap /></label>
                <label>"By slice " <input type="text" name="attack_slice" aria-label="Attack slice" placeholder="sex" /></label>
                <button type="submit">"Attack"</button>
            </div>
        </Form>
        {attack.map(|a| view! {
            <p class="muted">{format!("{}: {} sampled examples; numeric features + N(0, ({}·sd)²), categorical values swapped with probability {}; threshold {}", a.model, a.sample, a.noise, a.swap, a.threshold)}</p>
            <table class="data" data-testid="attack">
                <thead><tr><th>"Slice"</th><th class="num">"n"</th><th class="num">"Flip rate"</th><th class="num">{if binary { "Accuracy before" } else { "MAE before" }}</th><th class="num">{if binary { "Accuracy after" } else { "MAE after" }}</th><th class="num">"Mean |Δ score|"</th></tr></thead>
                <tbody>{a.slices.iter().map(|s| view! {
                    <tr><td>{s.slice.clone()}</td><td class="num">{s.n.to_string()}</td><td class="num">{format!("{:.4}", s.flip_rate)}</td>
                        <td class="num">{format!("{:.4}", s.before)}</td><td class="num">{format!("{:.4}", s.after)}</td><td class="num">{format!("{:.4}", s.mean_abs_change)}</td></tr>
                }).collect_view()}</tbody>
            </table>
        })}
        <crate::pages::explain::AdversarialSection run=id.clone() pairs=pairs.clone() features=v.feature_names.clone() result=v.adversarial.clone() />
        <crate::pages::explain::ImportanceSection pairs=pairs.clone() binary result=v.importance.clone() />
        {v.example.clone().map(|ex| {
            let attributions = v.attributions.clone();
            let (explain_base, explain_query) = (base.clone(), q.clone());
            let predictions = v.predictions.clone();
            let features = v.features.clone();
            let hidden = hidden.clone();
            let pdp_go = go.clone();
            let cf = v.counterfactual.clone();
            let pdp_chart = v.pdp_chart.clone();
            let pdp_feature = v.pdp.as_ref().map(|p| p.feature.clone()).unwrap_or_default();
            let names = v.feature_names.clone();
            let select_cf = cf.as_ref().map(|c| select_href(&c.example));
            let edits_query = q.split('&').filter(|p| p.starts_with("set.")).collect::<Vec<_>>().join("&");
            let id = id.clone();
            view! {
                <h2>{format!("Example {ex}")}</h2>
                <div class="chart-grid">
                    <section>
                        <Form method="GET" action="">
                            {hidden.iter().map(|(k, val)| view! { <input type="hidden" name=k.clone() value=val.clone() /> }).collect_view()}
                            <table class="data editor" data-testid="editor">
                                <thead><tr><th>"Feature"</th><th>"Original"</th><th>"Value"</th></tr></thead>
                                <tbody>
                                    {features.iter().map(|f| {
                                        let name = format!("set.{}", f.name);
                                        let input = if f.kind == "numeric" {
                                            view! { <input type="number" step="any" name=name aria-label=format!("edit {}", f.name) value=f.value.clone() /> }.into_any()
                                        } else {
                                            view! {
                                                <select name=name aria-label=format!("edit {}", f.name)>
                                                    {f.options.iter().map(|o| view! { <option value=o.clone() selected=*o == f.value>{o.clone()}</option> }).collect_view()}
                                                </select>
                                            }.into_any()
                                        };
                                        view! { <tr class:edited=f.edited><td>{f.name.clone()}</td><td>{f.original.clone()}</td><td>{input}</td></tr> }
                                    }).collect_view()}
                                </tbody>
                            </table>
                            <button type="submit">"Predict"</button>
                            " " <a href=reset_href.clone()>"Reset edits"</a>
                        </Form>
                        <ActionForm action=save>
                            <input type="hidden" name="id" value=id.clone() />
                            <input type="hidden" name="example" value=ex.clone() />
                            <input type="hidden" name="edits" value=edits_query.clone() />
                            <label>"Save this edit as " <input type="text" name="name" aria-label="Saved example name" required=true /></label>
                            <button type="submit">"Save"</button>
                        </ActionForm>
                    </section>
                    <section>
                        <table class="data predictions" data-testid="predictions">
                            <thead><tr><th>"Model"</th><th class="num">"Stored score"</th><th class="num">"Original"</th><th class="num">"Edited"</th>{binary.then(|| view! { <th>"Decision"</th> })}</tr></thead>
                            <tbody>
                                {predictions.iter().map(|p| {
                                    let flip = p.decision_original != p.decision_edited;
                                    let d = |b: Option<bool>| match b { Some(true) => "positive", Some(false) => "negative", None => "—" };
                                    view! {
                                        <tr class:flag=flip data-model=p.model.clone()>
                                            <td>{p.model.clone()}</td>
                                            <td class="num">{fmt_metric(p.stored)}</td>
                                            <td class="num">{format!("{:.6}", p.original)}</td>
                                            <td class="num edited-score">{format!("{:.6}", p.edited)}</td>
                                            {binary.then(|| view! { <td>{format!("{} → {}", d(p.decision_original), d(p.decision_edited))}{flip.then_some(" (flips)")}</td> })}
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                        <crate::pages::explain::AttributionSection base=explain_base query=explain_query result=attributions />
                        {cf.map(|c| view! {
                            <section class="card" data-testid="counterfactual">
                                <h3>"Nearest counterfactual"</h3>
                                <p>{format!("Example {} (score {:.4}, distance {:.3}) gets the other decision. It differs in:", c.example, c.score, c.distance)}</p>
                                <ul>{c.differences.iter().map(|(f, a, b)| view! { <li><strong>{f.clone()}</strong>{format!(": {a} → {b}")}</li> }).collect_view()}</ul>
                                {select_cf.clone().map(|h| view! { <a href=h>"select it"</a> })}
                            </section>
                        })}
                    </section>
                </div>
                <h2>"Partial dependence"</h2>
                <label>"Feature "
                    <select aria-label="PDP feature" on:change=move |ev| pdp_go("pdp", event_target_value(&ev))>
                        <option value="" selected=pdp_feature.is_empty()>"choose…"</option>
                        {names.iter().map(|f| view! { <option value=f.clone() selected=*f == pdp_feature>{f.clone()}</option> }).collect_view()}
                    </select>
                </label>
                {pdp_chart.map(|c| view! { <PlotlyChart figure=Signal::derive(move || c.clone()) label="Partial dependence" /> })}
            }
        })}
    }
}

/// Pairs of a query string (the page keeps every parameter but the edits in hidden fields).
fn serde_urlencoded_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Percent-decoding of a query component (`+` is a space).
pub fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(a), Some(b)) => {
                        out.push((a * 16 + b) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_are_dropped_and_components_decoded() {
        assert_eq!(without_edits("example=a&set.age=41&model=m&set.sex=Female"), "example=a&model=m");
        assert_eq!(decode("race%3DWhite+x"), "race=White x");
        assert_eq!(decode("100%"), "100%");
    }
}
