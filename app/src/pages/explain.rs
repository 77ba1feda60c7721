//! The what-if page's robustness and explanation sections: adversarial search, permutation
//! importance, and the SHAP attributions of the selected example. Each is a GET form: its result is
//! in the URL like the rest of the page, so a link reproduces it.

use leptos::prelude::*;
use leptos_router::components::Form;

use crate::model::{AdversarialResult, Attributions, FeatureImportance};
use crate::pages::runs::urlencode;

/// Hidden inputs for every parameter of `pairs` but those starting with `prefix` (the form's own).
fn keep_others(pairs: &[(String, String)], prefix: &str) -> impl IntoView + use<> {
    pairs.iter().filter(|(k, _)| !k.starts_with(prefix)).map(|(k, v)| view! { <input type="hidden" name=k.clone() value=v.clone() /> }).collect_view()
}

/// A signed bar for a value, scaled by the largest magnitude shown.
fn bar(value: f64, largest: f64) -> impl IntoView + use<> {
    let width = if largest > 0.0 { (value.abs() / largest * 100.0).min(100.0) } else { 0.0 };
    view! { <span class="bar" class:negative=value < 0.0 style=format!("width: {width:.1}%")></span> }
}

fn share(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn opt(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.2}")).unwrap_or_else(|| "—".into())
}

/// The adversarial-search form and result.
#[component]
pub fn AdversarialSection(run: String, pairs: Vec<(String, String)>, features: Vec<String>, result: Option<AdversarialResult>) -> impl IntoView {
    let get = |k: &str| pairs.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone());
    let immutable = get("adv_immutable").unwrap_or_default();
    let radius = get("adv_radius").unwrap_or_else(|| "3".into());
    let slice = get("adv_slice").unwrap_or_default();
    let hidden = keep_others(&pairs, "adv");
    // An example opened in the editor keeps the model and threshold, with the flip as edits.
    let keep: String = pairs.iter().filter(|(k, _)| k == "model" || k == "threshold").map(|(k, v)| format!("&{k}={}", urlencode(v))).collect();
    view! {
        <h2>"Adversarial search"</h2>
        <p class="muted">"For a sample of 200 examples, the smallest change of the features the model may use that flips its decision (numeric features in steps of their spread, categorical values from the observed ones), compared with random changes of the same budget."</p>
        <Form method="GET" action="" noscroll=true>
            {hidden}
            <input type="hidden" name="adv" value="1" />
            <div class="controls">
                <label>"Immutable features " <input type="text" name="adv_immutable" aria-label="Immutable features" placeholder="sex, race, age" value=immutable /></label>
                <label>"Largest change " <input type="number" step="any" min="0" name="adv_radius" aria-label="Largest change" value=radius /></label>
                <label>"By slice " <input type="text" name="adv_slice" aria-label="Adversarial slice" placeholder="sex" value=slice /></label>
                <button type="submit">"Search"</button>
            </div>
            <p class="muted">{format!("Features: {}", features.join(", "))}</p>
        </Form>
        {result.map(|a| {
            let largest_use = a.features.first().map(|f| f.share).unwrap_or(0.0);
            view! {
                <p class="muted" data-testid="adversarial-summary">{format!(
                    "{}: {} examples, threshold {}; distance = Σ |Δx|/sd + 1 per changed category, at most {}; {:.0} model calls per example (search {} ms, random {} ms); immutable: {}",
                    a.model, a.sample, a.threshold, a.max_radius, a.queries_per_example, a.search_ms, a.random_ms,
                    if a.immutable.is_empty() { "none".to_string() } else { a.immutable.join(", ") }
                )}</p>
                <div class="table-scroll" tabindex="0" role="region" aria-label="Adversarial search">
                    <table class="data" data-testid="adversarial">
                    <thead><tr><th>"Slice"</th><th class="num">"n"</th><th class="num">"Flipped"</th><th class="num">"Random flipped"</th>
                        <th class="num">"Radius p10"</th><th class="num">"Median"</th><th class="num">"p90"</th><th class="num">"Random median"</th></tr></thead>
                    <tbody>{a.slices.iter().map(|s| view! {
                        <tr><td>{s.slice.clone()}</td><td class="num">{s.n.to_string()}</td><td class="num">{share(s.flipped)}</td><td class="num">{share(s.random_flipped)}</td>
                            <td class="num">{opt(s.radius_p10)}</td><td class="num">{opt(s.radius_median)}</td><td class="num">{opt(s.radius_p90)}</td><td class="num">{opt(s.random_radius_median)}</td></tr>
                    }).collect_view()}</tbody>
                    </table>
                </div>
                <div class="chart-grid">
                    <section>
                        <h3>"Features the flips change"</h3>
                        <div class="table-scroll" tabindex="0" role="region" aria-label="Table">
                            <table class="data">
                            <thead><tr><th>"Feature"</th><th class="num">"Share of flips"</th><th><span class="sr-only">"Bar"</span></th></tr></thead>
                            <tbody>{a.features.iter().map(|f| view! {
                                <tr><td>{f.feature.clone()}</td><td class="num">{share(f.share)}</td><td class="bar-cell">{bar(f.share, largest_use)}</td></tr>
                            }).collect_view()}</tbody>
                            </table>
                        </div>
                    </section>
                    <section>
                        <h3>"Nearest flips"</h3>
                        <div class="table-scroll" tabindex="0" role="region" aria-label="Adversarial examples">
                            <table class="data" data-testid="adversarial-examples">
                            <thead><tr><th>"Example"</th><th class="num">"Score"</th><th class="num">"Distance"</th><th>"Change"</th></tr></thead>
                            <tbody>{a.examples.iter().map(|e| {
                                let edits: String = e.changes.iter().map(|c| format!("&set.{}={}", urlencode(&c.feature), urlencode(&c.to))).collect();
                                let href = format!("/runs/{run}/whatif?example={}{keep}{edits}", urlencode(&e.id));
                                view! {
                                    <tr>
                                        <td><a href=href data-noscroll="" aria-label=format!("open flip of {}", e.id)>{e.id.clone()}</a></td>
                                        <td class="num">{format!("{:.3} → {:.3}", e.before, e.after)}</td>
                                        <td class="num">{format!("{:.2}", e.radius)}</td>
                                        <td>{e.changes.iter().map(|c| format!("{}: {} → {}", c.feature, c.from, c.to)).collect::<Vec<_>>().join("; ")}</td>
                                    </tr>
                                }
                            }).collect_view()}</tbody>
                            </table>
                        </div>
                    </section>
                </div>
            }
        })}
    }
}

/// The permutation-importance form and result.
#[component]
pub fn ImportanceSection(pairs: Vec<(String, String)>, binary: bool, result: Option<FeatureImportance>) -> impl IntoView {
    let get = |k: &str| pairs.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone());
    let chosen = get("importance").unwrap_or_default();
    let slice = get("importance_slice").unwrap_or_default();
    let metrics: &[&str] = if binary { &["auc_roc", "accuracy", "log_loss"] } else { &["mae"] };
    let hidden = keep_others(&pairs, "importance");
    view! {
        <h2>"Permutation importance"</h2>
        <Form method="GET" action="" noscroll=true>
            {hidden}
            <div class="controls">
                <label>"Metric "
                    <select name="importance" aria-label="Importance metric">
                        {metrics.iter().map(|m| view! { <option value=*m selected=*m == chosen>{*m}</option> }).collect_view()}
                    </select>
                </label>
                <label>"By slice " <input type="text" name="importance_slice" aria-label="Importance slice" placeholder="sex" value=slice /></label>
                <button type="submit">"Compute"</button>
            </div>
        </Form>
        {result.map(|r| {
            let largest = r.features.iter().map(|f| f.mean.abs()).fold(0.0, f64::max);
            view! {
                <p class="muted">{format!("{}: the drop of {} (baseline {:.4}) when one feature is shuffled; {} rows, {} repeats, 95% intervals", r.model, r.metric, r.baseline, r.sample, r.repeats)}</p>
                <div class="table-scroll" tabindex="0" role="region" aria-label="Permutation importance">
                    <table class="data" data-testid="importance">
                    <thead><tr><th>"Feature"</th><th class="num">"Mean drop"</th><th class="num">"95% interval"</th><th><span class="sr-only">"Bar"</span></th></tr></thead>
                    <tbody>{r.features.iter().map(|f| view! {
                        <tr><td>{f.feature.clone()}</td><td class="num">{format!("{:.4}", f.mean)}</td><td class="num">{format!("[{:.4}, {:.4}]", f.lo, f.hi)}</td><td class="bar-cell">{bar(f.mean, largest)}</td></tr>
                    }).collect_view()}</tbody>
                    </table>
                </div>
                {(!r.slices.is_empty()).then(|| view! {
                    <div class="table-scroll" tabindex="0" role="region" aria-label="Importance by slice">
                        <table class="data" data-testid="importance-slices">
                        <thead><tr><th>"Slice"</th><th class="num">"n"</th><th>"Top features (mean drop)"</th></tr></thead>
                        <tbody>{r.slices.iter().map(|s| view! {
                            <tr><td>{s.slice.clone()}</td><td class="num">{s.n.to_string()}</td>
                                <td>{s.features.iter().take(4).map(|f| format!("{} {:.4}", f.feature, f.mean)).collect::<Vec<_>>().join(", ")}</td></tr>
                        }).collect_view()}</tbody>
                        </table>
                    </div>
                })}
            }
        })}
    }
}

/// SHAP attributions of the selected example: links to compute them, and the values.
#[component]
pub fn AttributionSection(base: String, query: String, result: Option<Attributions>) -> impl IntoView {
    let without: String = query.split('&').filter(|p| !p.is_empty() && !p.starts_with("explain=")).collect::<Vec<_>>().join("&");
    let href = |method: &str| format!("{base}?{without}&explain={method}");
    view! {
        <h3>"Why this score"</h3>
        <p>
            <a href=href("kernel") data-noscroll="">"Explain (KernelSHAP)"</a>
            " · "
            <a href=href("tree") data-noscroll="" title="Exact, for a model that is one ONNX tree ensemble over numeric columns">"Explain (TreeSHAP)"</a>
        </p>
        {result.map(|a| {
            let largest = a.values.iter().map(|v| v.attribution.abs()).fold(0.0, f64::max);
            view! {
                <p class="muted" data-testid="attribution-summary">{format!(
                    "{} {} of {}: base {:.4} (mean over {} background rows) → {:.4}; {}{} ({} ms)",
                    a.method, a.output, a.model, a.base, a.background, a.prediction,
                    if a.exact { "exact Shapley values".to_string() } else { format!("{} sampled coalitions", a.coalitions) },
                    if a.predictions > 0 { format!(", {} predictions", a.predictions) } else { String::new() },
                    a.elapsed_ms
                )}</p>
                <div class="table-scroll" tabindex="0" role="region" aria-label="Attributions">
                    <table class="data" data-testid="attributions">
                    <thead><tr><th>"Feature"</th><th>"Value"</th><th class="num">"SHAP"</th><th><span class="sr-only">"Bar"</span></th></tr></thead>
                    <tbody>{a.values.iter().map(|v| view! {
                        <tr><td>{v.feature.clone()}</td><td>{v.value.clone()}</td><td class="num">{format!("{:+.4}", v.attribution)}</td><td class="bar-cell">{bar(v.attribution, largest)}</td></tr>
                    }).collect_view()}</tbody>
                    </table>
                </div>
            }
        })}
    }
}
