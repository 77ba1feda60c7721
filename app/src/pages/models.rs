//! The run page's models section: the model card of each attached ONNX file (inputs, outputs,
//! operators, opsets, exporter, the output read as the score, what Strata rewrote) and a form that
//! attaches a model to the run, bound to a score column, checked at once against the stored scores.

use leptos::prelude::*;

use crate::components::ErrorBox;
use crate::model::{AttachedModel, ModelCard, TensorInfo};

fn tensors(t: &[TensorInfo]) -> String {
    t.iter().map(|t| format!("{} {} [{}]", t.name, t.dtype, t.shape.join(", "))).collect::<Vec<_>>().join("; ")
}

#[component]
pub fn ModelsPanel(#[prop(into)] run_id: String, scores: Vec<String>) -> impl IntoView {
    let attached = RwSignal::new(None::<Result<AttachedModel, String>>);
    let id = run_id.clone();
    // Loaded once; after an attachment the cards are fetched again into `fresh` (refetching the
    // resource would re-render the whole run overview around it).
    let cards = Resource::new(|| (), move |_| crate::server_fns::get_model_cards(id.clone()));
    let fresh = RwSignal::new(None::<Vec<ModelCard>>);
    let file_input = NodeRef::<leptos::html::Input>::new();
    let score = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let submit = {
        let run_id = run_id.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            // The file handle stays inside this browser task: it is never put in a signal.
            let Some(file) = file_input.get().and_then(|i| i.files()).and_then(|f| f.get(0)) else {
                attached.set(Some(Err("choose an ONNX file".into())));
                return;
            };
            let (run_id, score) = (run_id.clone(), score.get_untracked());
            busy.set(true);
            leptos::task::spawn_local(async move {
                let result = crate::pages::upload::attach_model(&run_id, &file, &score).await;
                if result.is_ok()
                    && let Ok(cards) = crate::server_fns::get_model_cards(run_id.clone()).await
                {
                    fresh.set(Some(cards));
                }
                busy.set(false);
                attached.set(Some(result));
            });
        }
    };
    view! {
        <section data-testid="models">
            <h2>"Models"</h2>
            <Suspense fallback=|| view! { <p class="muted">"Reading the model files…"</p> }>
                {move || Suspend::new(async move {
                    let loaded = cards.await;
                    move || match fresh.get().map(Ok).unwrap_or_else(|| loaded.clone()) {
                        Err(e) => view! { <ErrorBox message=e.to_string() /> }.into_any(),
                        Ok(cards) if cards.is_empty() => view! { <p class="muted">"No model file is attached: what-if, PDP, attacks and attributions need one (or an endpoint)."</p> }.into_any(),
                        Ok(cards) => view! {
                            <div class="table-wrap" tabindex="0" role="region" aria-label="Model cards"><table class="data" data-testid="model-cards">
                                <thead><tr><th>"File"</th><th>"Called"</th><th>"Exporter"</th><th>"Opsets"</th><th>"Inputs"</th><th>"Outputs (score)"</th><th>"Operators"</th><th>"Status"</th></tr></thead>
                                <tbody>{cards.into_iter().map(|c: ModelCard| view! {
                                    <tr>
                                        <td class="mono">{c.file.clone()}</td>
                                        <td class="mono">{c.called.clone()}</td>
                                        <td>{c.producer.clone()}</td>
                                        <td>{c.opsets.iter().map(|(d, v)| format!("{d} {v}")).collect::<Vec<_>>().join(", ")}</td>
                                        <td class="small">{tensors(&c.inputs)}</td>
                                        <td class="small">{tensors(&c.outputs)}{c.score_output.clone().map(|o| format!(" → score: {o}"))}</td>
                                        <td class="small">{c.operators.iter().map(|(o, n)| if *n > 1 { format!("{o} ×{n}") } else { o.clone() }).collect::<Vec<_>>().join(", ")}
                                            {(!c.rewritten.is_empty()).then(|| format!(" (rewritten: {})", c.rewritten.join(", ")))}</td>
                                        <td>{match (&c.error, c.tree_shap) {
                                            (Some(e), _) => format!("does not load: {e}"),
                                            (None, true) => "loads · TreeSHAP".to_string(),
                                            (None, false) => "loads".to_string(),
                                        }}</td>
                                    </tr>
                                }).collect_view()}</tbody>
                            </table></div>
                        }.into_any(),
                    }
                })}
            </Suspense>
            <crate::pages::team::EditOnly>
                {let (submit, scores) = (submit.clone(), scores.clone()); view! {
                    <form class="controls" on:submit=submit>
                        <label>"Attach a model " <input type="file" accept=".onnx" aria-label="Model file" node_ref=file_input /></label>
                        <label>"that produces "
                            <select aria-label="Score column" on:change=move |ev| score.set(event_target_value(&ev))>
                                <option value="">"no score column yet (a candidate)"</option>
                                {scores.iter().map(|s| view! { <option value=s.clone()>{s.clone()}</option> }).collect_view()}
                            </select>
                        </label>
                        <button type="submit" disabled=move || busy.get()>"Attach and check"</button>
                    </form>
                }}
            </crate::pages::team::EditOnly>
            {move || attached.get().map(|r| match r {
                Err(e) => view! { <pre class="rule-error" role="alert">{e}</pre> }.into_any(),
                Ok(a) => view! {
                    <p data-testid="attached">{format!("Attached {} as '{}'.", a.name, a.called)}</p>
                    {crate::pages::run::endpoint_test(a.check)}
                }.into_any(),
            })}
        </section>
    }
}
