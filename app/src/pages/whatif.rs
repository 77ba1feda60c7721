//! `/runs/{id}/whatif`: browse examples (a table and a scatter) beside a docked panel that edits
//! the selected one and shows each model's new score, partial dependence, and attacks. URL state:
//! `model`, `threshold`, `filter`, `offset`, `x`, `slice`, `score_min`, `score_max`, `color`,
//! `example`, `set.<feature>` (the edits), `explain`, `pdp`, the attack forms' keys, and `tab`.
//!
//! The page is three fetches, each keyed on its own part of the URL (see [`page_query`],
//! [`example_query`], [`pdp_query`]): choosing an example or editing it refetches the example
//! alone, in place, while the browser and the scatter stay as they are.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{
    NavigateOptions,
    components::Form,
    hooks::{use_location, use_navigate, use_params_map},
};

use crate::components::{CopyLink, ErrorBox, PlotlyChart, SampleNote, fmt_metric};
use crate::model::{WhatIfExample, WhatIfPdp, WhatIfView};
use crate::pickers::{FieldError, FilterPicker, SlicePicker, check_filter, clean_error, last_choice, load_keeping_form};
use crate::pages::slices::with_param;
use crate::server_fns::{AppError, DeleteWhatIf, SaveWhatIf, get_whatif_example, get_whatif_pdp, get_whatif_view};
use crate::progress::{JobProgress, SlowJob};

/// Keys only the selected example uses (besides the `set.*` edits).
const EXAMPLE_KEYS: &[&str] = &["example", "explain"];
/// Keys only partial dependence uses (`feature` is the API's name of `pdp`).
const PDP_KEYS: &[&str] = &["pdp", "feature", "sample", "grid"];
/// Keys every part uses.
const SHARED_KEYS: &[&str] = &["model", "threshold", "seed"];
/// The docked panel's tab: view state only, never sent to the server.
const TAB_KEY: &str = "tab";
/// The page's picked specs: a rejected one is dropped to keep the page (and said at its field).
const FORM_KEYS: &[&str] = &["slice", "attack_slice"];
/// Where the user's last "Only slice" filter is remembered in the browser.
const LAST_FILTER: &str = "strata.whatif.slice";

fn is_edit(key: &str) -> bool {
    key.starts_with("set.")
}

/// The query's `key=value` parts whose (decoded) key passes `keep`, still encoded.
fn keep_keys(query: &str, keep: impl Fn(&str) -> bool) -> String {
    query.trim_start_matches('?').split('&').filter(|p| !p.is_empty() && keep(&decode(p.split('=').next().unwrap_or("")))).collect::<Vec<_>>().join("&")
}

/// The value of `key` in a query, when given and not blank.
fn param(query: &str, key: &str) -> Option<String> {
    serde_urlencoded_pairs(query).into_iter().find(|(k, _)| k == key).map(|(_, v)| v).filter(|v| !v.trim().is_empty())
}

/// The query without the edits (`set.*`), e.g. to select another example.
pub fn without_edits(query: &str) -> String {
    keep_keys(query, |k| !is_edit(k))
}

/// What the browser, the scatter, the saved examples and the attacks depend on: everything but
/// the selected example, its edits, partial dependence and the tab.
pub fn page_query(query: &str) -> String {
    keep_keys(query, |k| !is_edit(k) && !EXAMPLE_KEYS.contains(&k) && !PDP_KEYS.contains(&k) && k != TAB_KEY)
}

/// What the selected example's scores depend on; `None` when no example is selected.
pub fn example_query(query: &str) -> Option<String> {
    param(query, "example")?;
    Some(keep_keys(query, |k| is_edit(k) || EXAMPLE_KEYS.contains(&k) || SHARED_KEYS.contains(&k)))
}

/// What partial dependence depends on (the selected, edited example gives its own line); `None`
/// when no feature is chosen.
pub fn pdp_query(query: &str) -> Option<String> {
    param(query, "pdp").or_else(|| param(query, "feature"))?;
    Some(keep_keys(query, |k| is_edit(k) || k == "example" || PDP_KEYS.contains(&k) || SHARED_KEYS.contains(&k)))
}

/// The docked panel's tabs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    Edit,
    Pdp,
    Attacks,
}

impl Tab {
    const ALL: [Tab; 3] = [Tab::Edit, Tab::Pdp, Tab::Attacks];

    fn key(self) -> &'static str {
        match self {
            Tab::Edit => "edit",
            Tab::Pdp => "pdp",
            Tab::Attacks => "attacks",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Tab::Edit => "Edit",
            Tab::Pdp => "Partial dependence",
            Tab::Attacks => "Attacks",
        }
    }

    /// The tab a URL opens on: `tab=`, else the one that shows what the URL asks for (an
    /// attack's result, a PDP with no example selected), else the editor.
    pub fn of(query: &str) -> Tab {
        match param(query, TAB_KEY).as_deref() {
            Some("edit") => Tab::Edit,
            Some("pdp") => Tab::Pdp,
            Some("attacks") => Tab::Attacks,
            _ if ["attack_noise", "adv", "importance"].iter().any(|k| param(query, k).is_some()) => Tab::Attacks,
            _ if pdp_query(query).is_some() && param(query, "example").is_none() => Tab::Pdp,
            _ => Tab::Edit,
        }
    }

    /// The tab after (`step` 1) or before (-1) this one, wrapping around.
    fn step(self, step: isize) -> Tab {
        let i = Tab::ALL.iter().position(|t| *t == self).unwrap_or(0) as isize;
        Tab::ALL[(i + step).rem_euclid(Tab::ALL.len() as isize) as usize]
    }
}

/// The page's address and its current query, for links and navigation.
#[derive(Clone, Copy)]
struct Nav {
    base: Memo<String>,
    search: Memo<String>,
}

impl Nav {
    /// The page with `query`.
    fn at(&self, query: &str) -> String {
        format!("{}?{query}", self.base.get())
    }

    /// The current page with `key` set to `value` (tracked: use it in a reactive attribute).
    fn with(&self, key: &str, value: &str) -> String {
        self.at(&with_param(&self.search.get(), key, value))
    }

    /// The current page with another example selected (its edits dropped).
    fn select(&self, example: &str) -> String {
        self.at(&with_param(&without_edits(&self.search.get()), "example", example))
    }
}

/// Navigation that keeps the scroll position (the page stays where the reader is).
fn in_place(replace: bool) -> NavigateOptions {
    NavigateOptions { scroll: false, replace, ..Default::default() }
}

/// Hidden inputs for every parameter of `query` that `drop` does not name (a GET form's own
/// fields replace those).
fn hidden_inputs(query: &str, drop: &dyn Fn(&str) -> bool) -> impl IntoView + use<> {
    serde_urlencoded_pairs(query).into_iter().filter(|(k, _)| !drop(k)).map(|(k, v)| view! { <input type="hidden" name=k value=v /> }).collect_view()
}

fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "—".into(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.as_f64().map(|x| if x.fract() == 0.0 { format!("{x:.0}") } else { format!("{x:.4}") }).unwrap_or_default(),
        other => other.to_string(),
    }
}

/// A score's change, signed (`+0.1320`, `-0.0410`); `0.0000` when it does not move.
pub fn signed_change(d: f64) -> String {
    if d.abs() < 5e-5 { "0.0000".into() } else { format!("{d:+.4}") }
}

fn decision(b: Option<bool>) -> &'static str {
    match b {
        Some(true) => "positive",
        Some(false) => "negative",
        None => "—",
    }
}

#[component]
pub fn WhatIfPage() -> impl IntoView {
    let params = use_params_map();
    let location = use_location();
    let id = Memo::new(move |_| params.read().get("id").unwrap_or_default());
    let search = Memo::new(move |_| location.search.get().trim_start_matches('?').to_string());
    let nav = Nav { base: Memo::new(move |_| format!("/runs/{}/whatif", id.get())), search };
    let page_q = Memo::new(move |_| page_query(&search.get()));
    let example_q = Memo::new(move |_| example_query(&search.get()));
    let tab = Memo::new(move |_| Tab::of(&search.get()));
    // Partial dependence is computed only while its tab is open (not on every edit elsewhere).
    let pdp_q = Memo::new(move |_| if tab.get() == Tab::Pdp { pdp_query(&search.get()) } else { None });
    let selected = Memo::new(move |_| param(&search.get(), "example"));
    // Saving or deleting an example refetches the page's part (its list of saved examples).
    let save = ServerAction::<SaveWhatIf>::new();
    let delete = ServerAction::<DeleteWhatIf>::new();
    // The page's part holds the attacks: an adversarial search or permutation importance through
    // the model shows its progress after a moment, with a Cancel.
    let job = SlowJob::default();
    let data = Resource::new(
        move || (id.get(), page_q.get(), save.version().get(), delete.version().get()),
        move |(id, q, _, _)| {
            load_keeping_form(q, FORM_KEYS, move |q| {
                let id = id.clone();
                async move {
                    let j = job.start();
                    let r = get_whatif_view(id, q, j.clone()).await;
                    job.end(&j);
                    r
                }
            })
        },
    );
    // No filter in the URL: the user's last one, when this run has its columns and values.
    let navigate = use_navigate();
    Effect::new(move |_| {
        let Some(Ok((v, None))) = data.get() else { return };
        let fits = |f: &str| check_filter(f, &v.columns).is_none();
        if let Some(url) = last_choice(LAST_FILTER, &nav.base.get_untracked(), &search.get_untracked(), "slice", false, fits) {
            navigate(&url, in_place(true));
        }
    });
    let example = Resource::new(
        move || (id.get(), example_q.get()),
        |(id, q)| async move {
            match q {
                Some(q) => get_whatif_example(id, q).await.map(Some),
                None => Ok(None),
            }
        },
    );
    // The partial dependence in flight (in the browser): its job, followed by a progress bar.
    let pdp_job = RwSignal::new(None::<String>);
    let pdp = Resource::new(
        move || (id.get(), pdp_q.get()),
        move |(id, q)| async move {
            match q {
                Some(q) => {
                    let j = crate::progress::new_job_id();
                    pdp_job.set(j.clone());
                    let r = get_whatif_pdp(id, q, j).await.map(Some);
                    pdp_job.set(None);
                    r
                }
                None => Ok(None),
            }
        },
    );
    // On a narrow screen the panel sits below the browser: bring it into view when another
    // example is chosen (from the table, the scatter or a saved example).
    Effect::new(move |before: Option<Option<String>>| {
        let now = selected.get();
        if let Some(before) = before
            && before != now
            && now.is_some()
            && window().inner_width().ok().and_then(|w| w.as_f64()).is_some_and(|w| w <= 800.0)
            && let Some(dock) = document().get_element_by_id("whatif-dock")
        {
            dock.scroll_into_view();
        }
        now
    });
    view! {
        <Title text="What-if" />
        <div class="page-head">
            <h1>"What-if"</h1>
            <a href=move || format!("/runs/{}", id.get())>"← run overview"</a>
            <CopyLink />
        </div>
        <crate::pages::team::ShareView run_id=id.get_untracked() />
        <JobProgress job=job.shown() label="Computing" />
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorBox message=clean_error(&e.to_string()) /> }.into_any(),
                    Ok((v, error)) => view! { <Controls v nav error /> }.into_any(),
                }
            })}
        </Transition>
        <div class="whatif-layout">
            <div class="whatif-browse">
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move { data.await.ok().map(|(v, _)| view! { <Browser v nav selected delete run=id.get_untracked() /> }) })}
                </Transition>
            </div>
            <aside class="whatif-dock" id="whatif-dock" aria-label="Selected example">
                <Tabs tab nav />
                <div role="tabpanel" id="whatif-panel-edit" aria-labelledby="whatif-tab-edit" hidden=move || tab.get() != Tab::Edit>
                    <EditPanel example nav save run=id />
                </div>
                {move || (tab.get() == Tab::Pdp).then(|| view! {
                    <div role="tabpanel" id="whatif-panel-pdp" aria-labelledby="whatif-tab-pdp">
                        <JobProgress job=pdp_job label="Partial dependence" />
                        <Transition fallback=|| view! { <p>"Loading…"</p> }>
                            {move || Suspend::new(async move { data.await.ok().map(|(v, _)| view! { <PdpPanel v pdp nav has_example=Signal::derive(move || selected.get().is_some()) /> }) })}
                        </Transition>
                    </div>
                })}
                {move || (tab.get() == Tab::Attacks).then(|| view! {
                    <div role="tabpanel" id="whatif-panel-attacks" aria-labelledby="whatif-tab-attacks">
                        <Transition fallback=|| view! { <p>"Loading…"</p> }>
                            {move || Suspend::new(async move { data.await.ok().map(|(v, error)| view! { <AttacksPanel v nav run=id.get_untracked() error /> }) })}
                        </Transition>
                    </div>
                })}
            </aside>
        </div>
    }
}

/// The tab list of the docked panel: buttons, arrow keys move between them (the ARIA tabs
/// pattern); the chosen tab is kept in the URL.
#[component]
fn Tabs(tab: Memo<Tab>, nav: Nav) -> impl IntoView {
    let navigate = use_navigate();
    let choose = move |t: Tab| navigate(&nav.with(TAB_KEY, t.key()), in_place(true));
    let on_key = {
        let choose = choose.clone();
        move |ev: leptos::ev::KeyboardEvent| {
            let next = match ev.key().as_str() {
                "ArrowRight" => tab.get_untracked().step(1),
                "ArrowLeft" => tab.get_untracked().step(-1),
                "Home" => Tab::Edit,
                "End" => Tab::Attacks,
                _ => return,
            };
            ev.prevent_default();
            choose(next);
            if let Some(el) = document().get_element_by_id(&format!("whatif-tab-{}", next.key())) {
                use wasm_bindgen::JsCast;
                if let Ok(el) = el.dyn_into::<leptos::web_sys::HtmlElement>() {
                    let _ = el.focus();
                }
            }
        }
    };
    view! {
        <div class="whatif-tabs" role="tablist" aria-label="What-if tools" on:keydown=on_key>
            {Tab::ALL.into_iter().map(|t| {
                let choose = choose.clone();
                view! {
                    <button type="button" role="tab" id=format!("whatif-tab-{}", t.key()) aria-controls=format!("whatif-panel-{}", t.key())
                        aria-selected=move || (tab.get() == t).to_string() tabindex=move || if tab.get() == t { "0" } else { "-1" }
                        on:click=move |_| choose(t)>
                        {t.title()}
                    </button>
                }
            }).collect_view()}
        </div>
    }
}

/// Above the browser and the panel: the run, the model, the threshold and the browser's filters
/// (the slice filter picked as a column and its values, or a range; its text under Advanced).
#[component]
fn Controls(v: WhatIfView, nav: Nav, error: Option<FieldError>) -> impl IntoView {
    let navigate = use_navigate();
    let go = move |key: &str, value: String| navigate(&nav.with(key, &value), in_place(false));
    let (go1, go2, go3) = (go.clone(), go.clone(), go.clone());
    let binary = v.task == "binary";
    let q = nav.search.get_untracked();
    let (slice_value, score_min, score_max, color_value) = (param(&q, "slice").unwrap_or_default(), param(&q, "score_min").unwrap_or_default(), param(&q, "score_max").unwrap_or_default(), param(&q, "color").unwrap_or_default());
    let filter = RwSignal::new(slice_value);
    // The server's word on the filter: rejected (an unknown column), or a value no row has.
    let filter_error = FieldError::about(&error, "slice").or_else(|| v.slice_hint.clone());
    let other_error = error.as_ref().filter(|e| !FORM_KEYS.contains(&e.field.as_str())).map(|e| e.message.clone());
    let callable = v.models.clone();
    view! {
        <SampleNote sample=v.browser.sample.clone() />
        <p class="muted">{format!("{} · models that can be called: {}", v.run_name, if v.models.is_empty() { "none (attach an ONNX file to the run)".to_string() } else { v.models.join(", ") })}</p>
        <div class="controls">
            <label>"Model "
                <select aria-label="Model" on:change=move |ev| go1("model", event_target_value(&ev))>
                    {v.score_columns.iter().map(|m| {
                        let label = if callable.contains(m) { m.clone() } else { format!("{m} (stored scores only)") };
                        view! { <option value=m.clone() selected=*m == v.model>{label}</option> }
                    }).collect_view()}
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
        <Form method="GET" action="" noscroll=true>
            {move || hidden_inputs(&nav.search.get(), &|k| ["slice", "score_min", "score_max", "color", "offset"].contains(&k))}
            <div class="controls picker-form">
                <FilterPicker columns=v.columns.clone() spec=filter name="slice" label="Only slice" error=filter_error />
            </div>
            <div class="controls">
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
            <crate::pickers::FieldMessage id="whatif-form-error".to_string() message=other_error />
        </Form>
    }
}

/// The left column: the scatter, the examples table and the saved examples. Choosing an example
/// (a link, or a point: `charts.js` follows `data-click-href` as a client-side link) changes
/// only the URL's `example`, so nothing here is fetched again.
#[component]
fn Browser(v: WhatIfView, nav: Nav, selected: Memo<Option<String>>, delete: ServerAction<DeleteWhatIf>, run: String) -> impl IntoView {
    let navigate = use_navigate();
    let go_x = move |value: String| navigate(&nav.with("x", &value), in_place(false));
    let (prev, next) = (v.browser.offset.saturating_sub(12), v.browser.offset + 12);
    let has_prev = v.browser.offset > 0;
    let has_next = next < v.browser.total;
    let page_href = move |offset: u64| move || nav.with("offset", &offset.to_string());
    let scatter = v.scatter_chart.clone();
    let scatter_x = v.scatter_x.clone();
    let saved = v.saved.clone();
    let saved_view = (!saved.is_empty()).then(move || {
        view! {
            <section>
                <h2>"Saved what-if examples"</h2>
                <div class="table-scroll" tabindex="0" role="region" aria-label="Saved what-if examples">
                    <table class="data" data-testid="saved">
                        <thead><tr><th>"Name"</th><th>"Example"</th><th>"Edits"</th><th>"Saved (UTC)"</th><th><span class="sr-only">"Delete"</span></th></tr></thead>
                        <tbody>{saved.into_iter().map(|sv| {
                            let rid = run.clone();
                            let mut q = format!("example={}", crate::pages::runs::urlencode(&sv.example));
                            for (k, val) in &sv.edits {
                                q.push_str(&format!("&set.{}={}", crate::pages::runs::urlencode(k), crate::pages::runs::urlencode(val)));
                            }
                            let href = format!("/runs/{rid}/whatif?{q}");
                            view! {
                                <tr>
                                    <td><a href=href data-noscroll="">{sv.name.clone()}</a></td>
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
                </div>
            </section>
        }
    });
    view! {
        <section>
            <h2>"Click a point to select it"</h2>
            <figure class="chart" aria-label="Examples by feature and score">
                <div class="plot" data-plot=scatter.clone() data-click-href=move || nav.select("{id}")></div>
                <crate::components::ChartData figure=scatter label="Examples by feature and score" />
            </figure>
            <label>"x axis "
                <select aria-label="Scatter x" on:change=move |ev| go_x(event_target_value(&ev))>
                    {v.feature_names.iter().map(|f| view! { <option value=f.clone() selected=*f == scatter_x>{f.clone()}</option> }).collect_view()}
                </select>
            </label>
        </section>
        <section>
            <h2>"Examples"</h2>
            <p class="muted" data-testid="browser-count">{if v.browser.rows.is_empty() && v.slice_hint.is_some() {
                "No example matches: the filter names a value no row has (see the filter above).".to_string()
            } else if v.browser.rows.is_empty() {
                format!("{} matching", v.browser.total)
            } else {
                format!("{} matching · showing {}–{}", v.browser.total, v.browser.offset + 1, (v.browser.offset + v.browser.rows.len() as u64))
            }}</p>
            <div class="table-scroll" tabindex="0" role="region" aria-label="Examples">
                <table class="data browser" data-testid="browser">
                    <thead><tr><th>"Example"</th>{v.browser.columns.iter().map(|c| view! { <th>{c.clone()}</th> }).collect_view()}</tr></thead>
                    <tbody>
                        {v.browser.rows.iter().zip(&v.browser_ids).map(|(r, ex)| {
                            let is_selected = {
                                let ex = ex.clone();
                                Memo::new(move |_| selected.get().as_deref() == Some(ex.as_str()))
                            };
                            let target = ex.clone();
                            view! {
                                <tr class:selected=move || is_selected.get()>
                                    <td>
                                        <a class="select" href=move || nav.select(&target) data-noscroll="" aria-label=format!("select {ex}")
                                            aria-current=move || is_selected.get().then_some("true")>
                                            {move || if is_selected.get() { "selected" } else { "select" }}
                                        </a>
                                    </td>
                                    {r.iter().map(|c| view! { <td>{cell(c)}</td> }).collect_view()}
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
            <p class="pager">
                {has_prev.then(|| view! { <a href=page_href(prev) data-noscroll="">"← previous"</a> })}
                {has_next.then(|| view! { <a href=page_href(next) data-noscroll="">"next →"</a> })}
            </p>
        </section>
        {saved_view}
    }
}

/// The "Edit" tab: the selected example's scores (original, edited, the change, the decision),
/// the editor, saving, attributions and the nearest counterfactual.
#[component]
fn EditPanel(example: Resource<Result<Option<WhatIfExample>, AppError>>, nav: Nav, save: ServerAction<SaveWhatIf>, run: Memo<String>) -> impl IntoView {
    let (pending, set_pending) = signal(false);
    view! {
        <div class="whatif-edit" aria-busy=move || pending.get().to_string()>
            {move || pending.get().then(|| view! { <p class="muted loading" role="status">"Scoring…"</p> })}
            <Transition fallback=|| view! { <p>"Loading…"</p> } set_pending>
                {move || Suspend::new(async move {
                    match example.await {
                        Err(e) => view! { <ErrorBox message=e.to_string() /> }.into_any(),
                        Ok(None) => view! {
                            <p class="muted" data-testid="no-example">"Choose an example — “select” in the table, or a point in the scatter — to edit its features and see each model's new score."</p>
                        }.into_any(),
                        Ok(Some(x)) => view! { <ExampleEditor x nav save run=run.get_untracked() /> }.into_any(),
                    }
                })}
            </Transition>
        </div>
    }
}

#[component]
fn ExampleEditor(x: WhatIfExample, nav: Nav, save: ServerAction<SaveWhatIf>, run: String) -> impl IntoView {
    let ex = x.example.clone();
    let binary = x.predictions.iter().any(|p| p.decision_original.is_some());
    let threshold = param(&nav.search.get_untracked(), "threshold").unwrap_or_else(|| "0.5".into());
    let flips = x.predictions.iter().filter(|p| p.decision_original != p.decision_edited).count();
    let edited = x.features.iter().filter(|f| f.edited).count();
    let attributions = x.attributions.clone();
    let cf = x.counterfactual.clone();
    view! {
        <h2>{format!("Example {ex}")}</h2>
        <p class="muted" data-testid="edit-summary">{match (edited, binary) {
            (0, _) => "No feature edited yet: change a value and press Predict.".to_string(),
            (n, true) => format!("{n} feature{} edited; {flips} of {} models change their decision at threshold {threshold}.", if n == 1 { "" } else { "s" }, x.predictions.len()),
            (n, false) => format!("{n} feature{} edited.", if n == 1 { "" } else { "s" }),
        }}</p>
        <div class="table-scroll" tabindex="0" role="region" aria-label="Scores of each model">
            <table class="data predictions" data-testid="predictions">
                <thead><tr><th>"Model"</th><th class="num">"Stored score"</th><th class="num">"Original"</th><th class="num">"Edited"</th><th class="num">"Change"</th>
                    {binary.then(|| view! { <th>{format!("Decision at {threshold}")}</th> })}</tr></thead>
                <tbody>
                    {x.predictions.iter().map(|p| {
                        let flip = p.decision_original != p.decision_edited;
                        view! {
                            <tr class:flipped=flip data-model=p.model.clone()>
                                <td>{p.model.clone()}</td>
                                <td class="num">{fmt_metric(p.stored)}</td>
                                <td class="num">{format!("{:.6}", p.original)}</td>
                                <td class="num edited-score">{format!("{:.6}", p.edited)}</td>
                                <td class="num delta">{signed_change(p.edited - p.original)}</td>
                                {binary.then(|| view! {
                                    <td class="decision">{format!("{} → {}", decision(p.decision_original), decision(p.decision_edited))}
                                        {flip.then(|| view! { " " <span class="flip-badge">"flipped"</span> })}</td>
                                })}
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        <Form method="GET" action="" noscroll=true>
            {move || hidden_inputs(&nav.search.get(), &is_edit)}
            <div class="table-scroll" tabindex="0" role="region" aria-label="Edit the example">
                <table class="data editor" data-testid="editor">
                    <thead><tr><th>"Feature"</th><th>"Original"</th><th>"Value"</th></tr></thead>
                    <tbody>
                        {x.features.iter().map(|f| {
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
            </div>
            <p class="actions">
                <button type="submit">"Predict"</button>
                <a href=move || nav.at(&without_edits(&nav.search.get())) data-noscroll="">"Reset edits"</a>
            </p>
        </Form>
        <div class="save-whatif">
            <ActionForm action=save>
                <input type="hidden" name="id" value=run />
                <input type="hidden" name="example" value=ex.clone() />
                <input type="hidden" name="edits" value=move || keep_keys(&nav.search.get(), is_edit) />
                <label>"Save this edit as " <input type="text" name="name" aria-label="Saved example name" required=true /></label>
                " " <button type="submit">"Save"</button>
            </ActionForm>
        </div>
        {move || view! { <crate::pages::explain::AttributionSection base=nav.base.get() query=nav.search.get() result=attributions.clone() /> }}
        {cf.map(|c| {
            let target = c.example.clone();
            view! {
                <section class="card" data-testid="counterfactual">
                    <h3>"Nearest counterfactual"</h3>
                    <p>{format!("Example {} (score {:.4}, distance {:.3}) gets the other decision. It differs in:", c.example, c.score, c.distance)}</p>
                    <ul>{c.differences.iter().map(|(f, a, b)| view! { <li><strong>{f.clone()}</strong>{format!(": {a} → {b}")}</li> }).collect_view()}</ul>
                    <a href=move || nav.select(&target) data-noscroll="">"select it"</a>
                </section>
            }
        })}
    }
}

/// The "Partial dependence" tab: a feature picker that loads at once, with or without a
/// selected example (its own line is drawn when there is one).
#[component]
fn PdpPanel(v: WhatIfView, pdp: Resource<Result<Option<WhatIfPdp>, AppError>>, nav: Nav, has_example: Signal<bool>) -> impl IntoView {
    let navigate = use_navigate();
    let go = move |value: String| navigate(&nav.with("pdp", &value), in_place(false));
    let q = nav.search.get_untracked();
    let chosen = param(&q, "pdp").or_else(|| param(&q, "feature")).unwrap_or_default();
    let callable = v.models.contains(&v.model);
    let model = v.model.clone();
    view! {
        <h2>"Partial dependence"</h2>
        <p class="muted">{format!("How {model}'s score moves when one feature is set to each value of a grid, for every row of a sample: the mean (partial dependence) and each row's own line (ICE).")}
            {move || has_example.get().then_some(" The dashed line is the selected example, with its edits.")}</p>
        {(!callable).then(|| view! { <p class="warn" role="status">{format!("No model file is attached for {model}: choose a model that can be called.")}</p> })}
        <Form method="GET" action="" noscroll=true>
            {move || hidden_inputs(&nav.search.get(), &|k| k == "pdp" || k == "feature")}
            <div class="controls">
                <label>"Feature "
                    <select name="pdp" aria-label="PDP feature" on:change=move |ev| go(event_target_value(&ev))>
                        <option value="" selected=chosen.is_empty()>"choose…"</option>
                        {v.feature_names.iter().map(|f| view! { <option value=f.clone() selected=*f == chosen>{f.clone()}</option> }).collect_view()}
                    </select>
                </label>
                <button type="submit">"Show"</button>
            </div>
        </Form>
        <Transition fallback=|| view! { <p>"Computing…"</p> }>
            {move || Suspend::new(async move {
                match pdp.await {
                    Err(e) => view! { <ErrorBox message=e.to_string() /> }.into_any(),
                    Ok(None) => view! { <p class="muted">"Choose a feature to draw its partial dependence."</p> }.into_any(),
                    Ok(Some(p)) => {
                        let chart = p.chart.clone();
                        let d = &p.pdp;
                        view! {
                            <p class="muted" data-testid="pdp-summary">{format!(
                                "{} on {}: mean of {} sampled rows over {} grid values; {} ICE lines{}",
                                d.model, d.feature, d.sample, d.grid.len(), d.ice.len(),
                                if d.example.is_some() { "; dashed: the selected example" } else { "" }
                            )}</p>
                            <PlotlyChart figure=Signal::derive(move || chart.clone()) label="Partial dependence" />
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

/// The "Attacks" tab: a random attack, the adversarial search and permutation importance, each a
/// GET form whose result is in the URL.
#[component]
fn AttacksPanel(v: WhatIfView, nav: Nav, run: String, error: Option<FieldError>) -> impl IntoView {
    let binary = v.task == "binary";
    let q = nav.search.get_untracked();
    let attack_noise = v.attack.as_ref().map(|a| a.noise.to_string()).unwrap_or_else(|| "0.1".into());
    let attack_swap = v.attack.as_ref().map(|a| a.swap.to_string()).unwrap_or_else(|| "0.05".into());
    let attack_slice = RwSignal::new(param(&q, "attack_slice").unwrap_or_default());
    let columns = v.columns.clone();
    let attack = v.attack.clone();
    let (features, adversarial, importance) = (v.feature_names.clone(), v.adversarial.clone(), v.importance.clone());
    view! {
        <h2>"Random attack"</h2>
        <Form method="GET" action="" noscroll=true>
            {move || hidden_inputs(&nav.search.get(), &|k| k.starts_with("attack_") || k == TAB_KEY)}
            <input type="hidden" name=TAB_KEY value=Tab::Attacks.key() />
            <div class="controls">
                <label>"Noise (sd) " <input type="number" step="any" min="0" name="attack_noise" aria-label="Attack noise" value=attack_noise /></label>
                <label>"Swap probability " <input type="number" step="any" min="0" max="1" name="attack_swap" aria-label="Attack swap" value=attack_swap /></label>
                <button type="submit">"Attack"</button>
            </div>
            <div class="controls picker-form">
                <SlicePicker columns spec=attack_slice name="attack_slice" label="Attack by slice" none_label="overall only" error=FieldError::about(&error, "attack_slice") />
            </div>
        </Form>
        {attack.map(|a| view! {
            <p class="muted">{format!("{}: {} sampled examples; numeric features + N(0, ({}·sd)²), categorical values swapped with probability {}; threshold {}", a.model, a.sample, a.noise, a.swap, a.threshold)}</p>
            <div class="table-scroll" tabindex="0" role="region" aria-label="Attack by slice">
                <table class="data" data-testid="attack">
                    <thead><tr><th>"Slice"</th><th class="num">"n"</th><th class="num">"Flip rate"</th><th class="num">{if binary { "Accuracy before" } else { "MAE before" }}</th><th class="num">{if binary { "Accuracy after" } else { "MAE after" }}</th><th class="num">"Mean |Δ score|"</th></tr></thead>
                    <tbody>{a.slices.iter().map(|s| view! {
                        <tr><td>{s.slice.clone()}</td><td class="num">{s.n.to_string()}</td><td class="num">{format!("{:.4}", s.flip_rate)}</td>
                            <td class="num">{format!("{:.4}", s.before)}</td><td class="num">{format!("{:.4}", s.after)}</td><td class="num">{format!("{:.4}", s.mean_abs_change)}</td></tr>
                    }).collect_view()}</tbody>
                </table>
            </div>
        })}
        // The sections' forms keep every other parameter (the example and its edits included).
        {move || {
            let pairs = serde_urlencoded_pairs(&with_param(&nav.search.get(), TAB_KEY, Tab::Attacks.key()));
            view! {
                <crate::pages::explain::AdversarialSection run=run.clone() pairs=pairs.clone() features=features.clone() result=adversarial.clone() />
                <crate::pages::explain::ImportanceSection pairs binary result=importance.clone() />
            }
        }}
    }
}

/// Pairs of a query string (the page keeps every parameter but the edits in hidden fields).
fn serde_urlencoded_pairs(q: &str) -> Vec<(String, String)> {
    q.trim_start_matches('?')
        .split('&')
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
        assert_eq!(without_edits("example=a&set%2Eage=41"), "example=a", "an encoded dot is an edit too");
        assert_eq!(decode("race%3DWhite+x"), "race=White x");
        assert_eq!(decode("100%"), "100%");
    }

    #[test]
    fn the_url_splits_into_the_pages_three_fetches() {
        let q = "model=score_gbt&filter=incorrect&example=adult-2&set.age=41&pdp=age&grid=10&explain=kernel&tab=pdp&attack_noise=0.5&seed=3";
        assert_eq!(page_query(q), "model=score_gbt&filter=incorrect&attack_noise=0.5&seed=3", "choosing or editing an example leaves it alone");
        assert_eq!(example_query(q).as_deref(), Some("model=score_gbt&example=adult-2&set.age=41&explain=kernel&seed=3"));
        assert_eq!(pdp_query(q).as_deref(), Some("model=score_gbt&example=adult-2&set.age=41&pdp=age&grid=10&seed=3"));
        assert_eq!(example_query("model=m&example="), None, "a blank example selects none");
        assert_eq!(pdp_query("example=a"), None);
        assert_eq!(pdp_query("feature=age").as_deref(), Some("feature=age"), "the API's name of pdp");
        // Another example: the page's part is unchanged, the example's is not.
        let other = with_param(&without_edits(q), "example", "adult-9");
        assert_eq!(page_query(&other), page_query(q));
        assert_ne!(example_query(&other), example_query(q));
    }

    #[test]
    fn the_tab_follows_the_url() {
        assert_eq!(Tab::of(""), Tab::Edit);
        assert_eq!(Tab::of("example=a&pdp=age"), Tab::Edit, "with an example, its editor first");
        assert_eq!(Tab::of("pdp=age"), Tab::Pdp);
        assert_eq!(Tab::of("adv=1&adv_slice=sex"), Tab::Attacks);
        assert_eq!(Tab::of("attack_noise=0.5&tab=edit"), Tab::Edit, "tab= wins");
        assert_eq!(Tab::Edit.step(-1), Tab::Attacks);
        assert_eq!(Tab::Attacks.step(1), Tab::Edit);
    }

    #[test]
    fn a_change_is_signed() {
        assert_eq!(signed_change(0.13201), "+0.1320");
        assert_eq!(signed_change(-0.041), "-0.0410");
        assert_eq!(signed_change(-0.00001), "0.0000");
    }
}
