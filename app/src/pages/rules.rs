//! The project page's rules section (model assertions): the newest rules, an editor, a what-if of
//! the text on the project's newest run (metrics, fairness and gates without and with the rules,
//! the rows each rule touches), and saving it as a new version.

use leptos::prelude::*;

use crate::components::{ErrorBox, fmt_metric};
use crate::model::{GateOutcome, MetricsResult, RuleSetVersion, RulesImpact, Verdict};
use crate::server_fns::{PreviewRules, SaveRules};

const EXAMPLE: &str = "# one rule per line: condition => action\nage < 18 => decision = 0\nscore > 0.95 and capital_gain == 0 => flag \"check\"\n";

#[component]
pub fn RulesSection(project: String, rules: Option<RuleSetVersion>) -> impl IntoView {
    let text = RwSignal::new(rules.as_ref().map(|r| r.source.clone()).unwrap_or_else(|| EXAMPLE.to_string()));
    let preview = ServerAction::<PreviewRules>::new();
    let save = ServerAction::<SaveRules>::new();
    let (p1, p2) = (project.clone(), project.clone());
    view! {
        <h2>"Rules"</h2>
        <p class="muted">{match &rules {
            Some(r) => format!("version {} · saved {} · business rules that override the model's decisions or flag rows; \"strata validate --rules\" judges the model with them", r.version, r.created_at),
            None => "No rules yet: business rules that override the model's decisions (age < 18 => decision = 0) or flag rows (=> flag \"check\"). Try them on the newest run, then save.".to_string(),
        }}</p>
        <textarea class="rules" aria-label="Rules" spellcheck="false" prop:value=move || text.get() on:input=move |ev| text.set(event_target_value(&ev))></textarea>
        <div class="controls">
            <button type="button" on:click=move |_| { preview.dispatch(PreviewRules { project: p1.clone(), source: text.get_untracked() }); }>"Try on the newest run"</button>
            <crate::pages::team::EditOnly>
                {let p2 = p2.clone(); view! {
                    <button type="button" on:click=move |_| { save.dispatch(SaveRules { project: p2.clone(), source: text.get_untracked() }); }>"Save the rules as a new version"</button>
                }}
            </crate::pages::team::EditOnly>
        </div>
        {move || save.value().get().map(|r| match r {
            Ok(v) => view! { <p class="muted" data-testid="rules-saved">{format!("Saved as version {}.", v.version)}</p> }.into_any(),
            Err(e) => view! { <pre class="rule-error" role="alert">{e.to_string()}</pre> }.into_any(),
        })}
        {move || preview.pending().get().then(|| view! { <p class="muted">"Applying the rules…"</p> })}
        {move || preview.value().get().map(|r| match r {
            Ok(impact) => view! { <RulesImpactView impact /> }.into_any(),
            Err(e) if e.to_string().contains("line ") => view! { <pre class="rule-error" role="alert">{e.to_string()}</pre> }.into_any(),
            Err(e) => view! { <ErrorBox message=e.to_string() /> }.into_any(),
        })}
    }
}

fn metric_at(r: &MetricsResult, slice: usize, name: &str) -> Option<f64> {
    r.slices.get(slice).and_then(|s| s.at.first()).and_then(|a| a.metrics.get(name)).and_then(|e| e.value)
}

fn verdicts(outcomes: &Option<Vec<GateOutcome>>) -> String {
    match outcomes {
        None => "—".into(),
        Some(o) => {
            let failed = o.iter().flat_map(|g| g.slices.iter()).filter(|s| s.verdict == Verdict::Fail).count();
            if failed == 0 { "pass".into() } else { format!("fail ({failed} slice(s))") }
        }
    }
}

#[component]
fn RulesImpactView(impact: RulesImpact) -> impl IntoView {
    let metrics = ["accuracy", "tpr", "fpr", "positive_rate"];
    let (without, with) = (impact.without.clone(), impact.with.clone());
    let criteria: Vec<(String, String, Option<f64>, Option<f64>)> = without
        .criteria
        .iter()
        .zip(&with.criteria)
        .flat_map(|(a, b)| a.criteria.iter().zip(&b.criteria).map(move |(x, y)| (a.spec.clone(), x.name.clone(), x.difference.value, y.difference.value)))
        .collect();
    view! {
        <p data-testid="rules-summary">{format!(
            "Run {} · model {} · threshold {}: {} of {} decisions changed, {} rows flagged{}",
            impact.run, impact.model, impact.threshold, impact.decisions_changed, impact.rows, impact.flagged,
            if impact.flags.is_empty() { String::new() } else { format!(" ({})", impact.flags.iter().map(|(f, n)| format!("{f}: {n}")).collect::<Vec<_>>().join(", ")) }
        )}</p>
        <h3>"What each rule does"</h3>
        <div class="table-scroll" tabindex="0" role="region" aria-label="Rules impact">
            <table class="data" data-testid="rules-impact">
            <thead><tr><th>"Line"</th><th>"Rule"</th><th class="num">"Touched"</th><th class="num">"Changed"</th><th class="num">"Shadowed"</th><th class="num">"Conflicts"</th><th>"First rows"</th></tr></thead>
            <tbody>{impact.rules.iter().map(|r| view! {
                <tr><td class="num">{r.line.to_string()}</td><td><code>{r.rule.clone()}</code></td><td class="num">{r.touched.to_string()}</td><td class="num">{r.changed.to_string()}</td>
                    <td class="num">{r.shadowed.to_string()}</td><td class="num">{r.conflicts.to_string()}</td><td>{r.examples.join(", ")}</td></tr>
            }).collect_view()}</tbody>
            </table>
        </div>
        <h3>"Metrics at the threshold, without and with the rules"</h3>
        <div class="table-scroll" tabindex="0" role="region" aria-label="Metrics with rules">
            <table class="data" data-testid="rules-metrics">
            <thead><tr><th>"Slice"</th><th class="num">"n"</th>{metrics.iter().map(|m| view! { <th class="num">{format!("{m} without")}</th><th class="num">"with"</th> }).collect_view()}</tr></thead>
            <tbody>{without.slices.iter().enumerate().map(|(i, s)| view! {
                <tr><td>{s.label()}</td><td class="num">{s.count.to_string()}</td>
                    {metrics.iter().map(|m| view! { <td class="num">{fmt_metric(metric_at(&without, i, m))}</td><td class="num">{fmt_metric(metric_at(&with, i, m))}</td> }).collect_view()}</tr>
            }).collect_view()}</tbody>
            </table>
        </div>
        {(!criteria.is_empty()).then(|| view! {
            <div class="table-scroll" tabindex="0" role="region" aria-label="Fairness with rules">
                <table class="data" data-testid="rules-fairness">
                <thead><tr><th>"Across"</th><th>"Criterion (difference)"</th><th class="num">"Without"</th><th class="num">"With"</th></tr></thead>
                <tbody>{criteria.into_iter().map(|(spec, name, a, b)| view! {
                    <tr><td>{spec}</td><td>{name}</td><td class="num">{fmt_metric(a)}</td><td class="num">{fmt_metric(b)}</td></tr>
                }).collect_view()}</tbody>
                </table>
            </div>
        })}
        <p class="muted">{match (&impact.gates_without, &impact.gates_with) {
            (Some(_), Some(_)) => format!("The project's gates (values only, no baseline): without the rules {}; with them {}.", verdicts(&impact.gates_without), verdicts(&impact.gates_with)),
            _ => "The project has no gates to judge the rules by.".to_string(),
        }}</p>
    }
}
