//! The project page's gates editor: the newest gate set as a form (one group per gate, rows added
//! and removed) or as JSON, saved as a new version through `save_gates` (the API's checks; its
//! message is shown beside the form, and the edits stay).

use leptos::prelude::*;

use crate::model::{DiscoverRule, Gate, GateSet, GateSetVersion};
use crate::server_fns::SaveGates;

/// A gate's fields as typed: text, so a half-typed number is kept and reported, not lost.
#[derive(Clone, Debug, Default, PartialEq)]
struct GateRow {
    /// Stable across edits, for the rows' keys.
    id: u64,
    metric: String,
    slice: String,
    threshold: String,
    min: String,
    max: String,
    max_drop: String,
    significant_drop: bool,
    max_gap_increase: String,
    /// A discovery gate: `min_support`, `max_gap`, `level`, `fdr` instead of a slice and bounds.
    discover: bool,
    min_support: String,
    max_gap: String,
    level: String,
    fdr: String,
}

/// The text fields of a gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Slice,
    Threshold,
    Min,
    Max,
    MaxDrop,
    MaxGapIncrease,
    MinSupport,
    MaxGap,
    Level,
    Fdr,
}

impl GateRow {
    fn get(&self, f: Field) -> &String {
        match f {
            Field::Slice => &self.slice,
            Field::Threshold => &self.threshold,
            Field::Min => &self.min,
            Field::Max => &self.max,
            Field::MaxDrop => &self.max_drop,
            Field::MaxGapIncrease => &self.max_gap_increase,
            Field::MinSupport => &self.min_support,
            Field::MaxGap => &self.max_gap,
            Field::Level => &self.level,
            Field::Fdr => &self.fdr,
        }
    }

    fn get_mut(&mut self, f: Field) -> &mut String {
        match f {
            Field::Slice => &mut self.slice,
            Field::Threshold => &mut self.threshold,
            Field::Min => &mut self.min,
            Field::Max => &mut self.max,
            Field::MaxDrop => &mut self.max_drop,
            Field::MaxGapIncrease => &mut self.max_gap_increase,
            Field::MinSupport => &mut self.min_support,
            Field::MaxGap => &mut self.max_gap,
            Field::Level => &mut self.level,
            Field::Fdr => &mut self.fdr,
        }
    }
}

/// The whole gate set as typed.
#[derive(Clone, Debug, Default, PartialEq)]
struct GateForm {
    model: String,
    baseline: String,
    threshold: String,
    ci: String,
    min_size: String,
    drift: bool,
    gates: Vec<GateRow>,
    next_id: u64,
}

fn text(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// An optional number: empty is `None`; anything else must parse.
fn number(what: &str, s: &str) -> Result<Option<f64>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<f64>().map(Some).map_err(|_| format!("{what}: '{s}' is not a number"))
}

fn whole(what: &str, s: &str) -> Result<Option<u64>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<u64>().map(Some).map_err(|_| format!("{what}: '{s}' is not a whole number"))
}

impl GateForm {
    fn from_set(set: &GateSet) -> GateForm {
        let mut f = GateForm {
            model: set.model.clone().unwrap_or_default(),
            baseline: set.baseline.clone().unwrap_or_default(),
            threshold: set.threshold.to_string(),
            ci: set.ci.to_string(),
            min_size: set.min_size.to_string(),
            drift: set.drift,
            ..Default::default()
        };
        for g in &set.gates {
            let id = f.take_id();
            let d = g.discover.as_ref();
            f.gates.push(GateRow {
                id,
                metric: g.metric.clone(),
                slice: g.slice.clone(),
                threshold: text(g.threshold),
                min: text(g.min),
                max: text(g.max),
                max_drop: text(g.max_drop),
                significant_drop: g.significant_drop,
                max_gap_increase: text(g.max_gap_increase),
                discover: d.is_some(),
                min_support: d.map(|d| d.min_support.to_string()).unwrap_or_default(),
                max_gap: text(d.map(|d| d.max_gap)),
                level: d.and_then(|d| d.level).map(|l| l.to_string()).unwrap_or_default(),
                fdr: text(d.and_then(|d| d.fdr)),
            });
        }
        f
    }

    /// A new form: the API's defaults and one gate on `metric` to fill in.
    fn new_with(metric: &str) -> GateForm {
        let mut f = GateForm::from_set(&GateSet { model: None, baseline: None, threshold: 0.5, ci: 0.95, min_size: 30, gates: vec![], drift: true });
        f.add(metric);
        f
    }

    fn take_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn add(&mut self, metric: &str) {
        let id = self.take_id();
        self.gates.push(GateRow { id, metric: metric.to_string(), slice: "overall".into(), ..Default::default() });
    }

    fn row(&mut self, id: u64) -> Option<&mut GateRow> {
        self.gates.iter_mut().find(|g| g.id == id)
    }

    /// The gate set the form describes; what is not a number is named. The rest (a gate with no
    /// bound, an unknown metric) is the server's to judge, so its message is the API's.
    fn to_set(&self) -> Result<GateSet, String> {
        let mut gates = Vec::with_capacity(self.gates.len());
        for (i, g) in self.gates.iter().enumerate() {
            let which = |f: &str| format!("gate {} {f}", i + 1);
            let discover = if g.discover {
                Some(DiscoverRule {
                    min_support: whole(&which("min support"), &g.min_support)?.ok_or_else(|| format!("gate {}: a discovery gate needs a min support", i + 1))?,
                    max_gap: number(&which("max gap"), &g.max_gap)?.ok_or_else(|| format!("gate {}: a discovery gate needs a max gap", i + 1))?,
                    level: whole(&which("level"), &g.level)?.map(|l| l as usize),
                    fdr: number(&which("fdr"), &g.fdr)?,
                })
            } else {
                None
            };
            // A discovery gate carries only its search (and a threshold); the other fields are
            // kept in the form while it is a discovery gate, but not sent.
            let plain = |v: Result<Option<f64>, String>| -> Result<Option<f64>, String> { if g.discover { Ok(None) } else { v } };
            gates.push(Gate {
                metric: g.metric.trim().to_string(),
                slice: if g.discover || g.slice.trim().is_empty() { "overall".into() } else { g.slice.trim().to_string() },
                threshold: number(&which("threshold"), &g.threshold)?,
                min: plain(number(&which("min"), &g.min))?,
                max: plain(number(&which("max"), &g.max))?,
                max_drop: plain(number(&which("max drop"), &g.max_drop))?,
                significant_drop: g.significant_drop && !g.discover,
                max_gap_increase: plain(number(&which("max gap increase"), &g.max_gap_increase))?,
                discover,
            });
        }
        Ok(GateSet {
            model: Some(self.model.trim().to_string()).filter(|m| !m.is_empty()),
            baseline: Some(self.baseline.trim().to_string()).filter(|b| !b.is_empty()),
            threshold: number("threshold", &self.threshold)?.unwrap_or(0.5),
            ci: number("confidence level", &self.ci)?.unwrap_or(0.95),
            min_size: whole("min slice size", &self.min_size)?.unwrap_or(30),
            gates,
            drift: self.drift,
        })
    }
}

/// Which editor is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Form,
    Json,
}

#[component]
pub fn GatesSection(project: String, gates: Option<GateSetVersion>, metric_names: Vec<String>, models: Vec<String>) -> impl IntoView {
    let first_metric = metric_names.first().cloned().unwrap_or_else(|| "auc_roc".into());
    let current = RwSignal::new(gates.clone());
    let form = RwSignal::new(match &gates {
        Some(g) => GateForm::from_set(&g.gates),
        None => GateForm::new_with(&first_metric),
    });
    let json = RwSignal::new(String::new());
    let mode = RwSignal::new(Mode::Form);
    // A problem found in the page (a number that is not one, JSON that does not parse).
    let local_error = RwSignal::new(None::<String>);
    let save = ServerAction::<SaveGates>::new();

    // After a save: the new version, and the form from the server's canonical copy.
    Effect::new(move |_| {
        if let Some(Ok(v)) = save.value().get() {
            form.set(GateForm::from_set(&v.gates));
            json.set(serde_json::to_string_pretty(&v.gates).unwrap_or_default());
            current.set(Some(v));
        }
    });

    let show_form = move |_| {
        if mode.get_untracked() == Mode::Form {
            return;
        }
        match serde_json::from_str::<GateSet>(&json.get_untracked()) {
            Ok(set) => {
                form.set(GateForm::from_set(&set));
                local_error.set(None);
                mode.set(Mode::Form);
            }
            Err(e) => local_error.set(Some(format!("The JSON is not a gate set ({e}); fix it to go back to the form."))),
        }
    };
    let show_json = move |_| {
        if mode.get_untracked() == Mode::Json {
            return;
        }
        match form.with_untracked(GateForm::to_set) {
            Ok(set) => {
                json.set(serde_json::to_string_pretty(&set).unwrap_or_default());
                local_error.set(None);
                mode.set(Mode::Json);
            }
            Err(e) => local_error.set(Some(e)),
        }
    };
    let p = project.clone();
    let on_save = move |_| {
        let body = match mode.get_untracked() {
            Mode::Json => Ok(json.get_untracked()),
            Mode::Form => form.with_untracked(GateForm::to_set).map(|s| serde_json::to_string(&s).unwrap_or_default()),
        };
        match body {
            Ok(gates) => {
                local_error.set(None);
                save.dispatch(SaveGates { project: p.clone(), gates });
            }
            Err(e) => local_error.set(Some(e)),
        }
    };
    let error = move || {
        local_error.get().or_else(|| match save.value().get() {
            Some(Err(e)) => Some(e.to_string()),
            _ => None,
        })
    };
    let add_metric = first_metric.clone();

    view! {
        <section class="gates" aria-labelledby="gates-heading" data-testid="gates">
            <h2 id="gates-heading">"Gates"</h2>
            <p class="muted" data-testid="gates-version">{move || match current.get() {
                Some(g) => format!("Version {} · saved {} · what a run must satisfy to pass validation; saving makes a new version (earlier ones stay, and each validation names its own).", g.version, g.created_at.get(..19).unwrap_or(&g.created_at).replace('T', " ")),
                None => "No gates yet: what a run of this project must satisfy to pass validation. Fill in a gate and save.".to_string(),
            }}</p>
            <div class="gates-tabs" role="group" aria-label="Edit the gates as">
                <button type="button" class="tab" aria-pressed=move || (mode.get() == Mode::Form).to_string() on:click=show_form>"Form"</button>
                <button type="button" class="tab" aria-pressed=move || (mode.get() == Mode::Json).to_string() on:click=show_json>"JSON"</button>
            </div>
            <Show when=move || mode.get() == Mode::Form fallback=move || view! {
                <textarea class="gates-json" aria-label="Gates as JSON" spellcheck="false" aria-describedby="gates-error"
                    prop:value=move || json.get() on:input=move |ev| json.set(event_target_value(&ev))></textarea>
            }>
                <GateSetFields form models=models.clone() />
                {let names = metric_names.clone(); view! {
                    <For each=move || form.with(|f| f.gates.iter().map(|g| g.id).collect::<Vec<_>>()) key=|id| *id let:id>
                        <GateFields form id metric_names=names.clone() />
                    </For>
                }}
                {let m = add_metric.clone(); view! {
                    <button type="button" class="secondary" on:click=move |_| form.update(|f| f.add(&m))>"Add a gate"</button>
                }}
            </Show>
            <div id="gates-error" aria-live="polite">
                {move || error().map(|e| view! { <p class="error" role="alert" data-testid="gates-error">{e}</p> })}
            </div>
            <div class="controls">
                <crate::pages::team::EditOnly>
                    {let on_save = on_save.clone(); view! {
                        <button type="button" on:click=on_save.clone() disabled=move || save.pending().get()>"Save the gates as a new version"</button>
                    }}
                </crate::pages::team::EditOnly>
                {move || save.pending().get().then(|| view! { <span class="muted" role="status">"Saving…"</span> })}
                {move || match (save.value().get(), local_error.get()) {
                    (Some(Ok(v)), None) => Some(view! { <span class="ok" role="status" data-testid="gates-saved">{format!("Saved as version {}.", v.version)}</span> }),
                    _ => None,
                }}
            </div>
            <p class="muted">{format!("The same gates: GET or PUT /api/v1/projects/{project}/gates.")}</p>
        </section>
    }
}

/// The settings of the whole set: model, baseline, threshold, interval level, slice size, drift.
#[component]
fn GateSetFields(form: RwSignal<GateForm>, models: Vec<String>) -> impl IntoView {
    let text_field = move |label: &'static str, hint: &'static str, get: fn(&GateForm) -> String, set: fn(&mut GateForm, String)| {
        view! {
            <label class="field">
                <span>{label}</span>
                <input type="text" inputmode="decimal" placeholder=hint
                    prop:value=move || form.with(get) on:input=move |ev| { let v = event_target_value(&ev); form.update(|f| set(f, v)); } />
            </label>
        }
    };
    view! {
        <fieldset class="gate-set">
            <legend>"All gates"</legend>
            <label class="field">
                <span>"Model"</span>
                <select aria-label="Model the gates judge" prop:value=move || form.with(|f| f.model.clone()) on:change=move |ev| { let v = event_target_value(&ev); form.update(|f| f.model = v); }>
                    <option value="" selected=move || form.with(|f| f.model.is_empty())>"the run's first"</option>
                    {move || {
                        let mut all = models.clone();
                        let m = form.with(|f| f.model.clone());
                        if !m.is_empty() && !all.contains(&m) {
                            all.push(m);
                        }
                        all.into_iter().map(|m| {
                            let (is, text) = (m.clone(), m.clone());
                            view! { <option value=m selected=move || form.with(|f| f.model == is)>{text}</option> }
                        }).collect_view()
                    }}
                </select>
            </label>
            <label class="field">
                <span>"Baseline"</span>
                <input type="text" placeholder="previous, or a run id"
                    prop:value=move || form.with(|f| f.baseline.clone()) on:input=move |ev| { let v = event_target_value(&ev); form.update(|f| f.baseline = v); } />
            </label>
            {text_field("Threshold", "0.5", |f| f.threshold.clone(), |f, v| f.threshold = v)}
            {text_field("Interval level", "0.95", |f| f.ci.clone(), |f, v| f.ci = v)}
            {text_field("Min slice size", "30", |f| f.min_size.clone(), |f, v| f.min_size = v)}
            <label class="field check">
                <input type="checkbox" prop:checked=move || form.with(|f| f.drift) on:change=move |ev| { let v = event_target_checked(&ev); form.update(|f| f.drift = v); } />
                <span>"Check feature drift"</span>
            </label>
        </fieldset>
    }
}

/// One gate's fields, in a group named "Gate n".
#[component]
fn GateFields(form: RwSignal<GateForm>, id: u64, metric_names: Vec<String>) -> impl IntoView {
    let index = Memo::new(move |_| form.with(|f| f.gates.iter().position(|g| g.id == id).map(|i| i + 1).unwrap_or(0)));
    let read = move |field: Field| form.with(|f| f.gates.iter().find(|g| g.id == id).map(|g| g.get(field).clone()).unwrap_or_default());
    let flag = move |get: fn(&GateRow) -> bool| form.with(|f| f.gates.iter().find(|g| g.id == id).map(get).unwrap_or(false));
    let discover = Memo::new(move |_| flag(|g| g.discover));
    let field = move |field: Field, label: &'static str, hint: &'static str| {
        view! {
            <label class="field">
                <span>{label}</span>
                <input type="text" inputmode=if field == Field::Slice { "text" } else { "decimal" } placeholder=hint
                    prop:value=move || read(field)
                    on:input=move |ev| { let v = event_target_value(&ev); form.update(|f| if let Some(r) = f.row(id) { *r.get_mut(field) = v; }); } />
            </label>
        }
    };
    let check = move |label: &'static str, get: fn(&GateRow) -> bool, set: fn(&mut GateRow, bool)| {
        view! {
            <label class="field check">
                <input type="checkbox" prop:checked=move || flag(get)
                    on:change=move |ev| { let v = event_target_checked(&ev); form.update(|f| if let Some(r) = f.row(id) { set(r, v); }); } />
                <span>{label}</span>
            </label>
        }
    };
    let metric = move || form.with(|f| f.gates.iter().find(|g| g.id == id).map(|g| g.metric.clone()).unwrap_or_default());
    view! {
        <fieldset class="gate">
            <legend>{move || format!("Gate {}", index.get())}</legend>
            <label class="field">
                <span>"Metric"</span>
                <select aria-label=move || format!("Gate {} metric", index.get()) prop:value=metric on:change=move |ev| { let v = event_target_value(&ev); form.update(|f| if let Some(r) = f.row(id) { r.metric = v; }); }>
                    {move || {
                        let mut all = metric_names.clone();
                        let m = metric();
                        if !m.is_empty() && !all.contains(&m) {
                            all.push(m);
                        }
                        all.into_iter().map(|m| {
                            let (is, text) = (m.clone(), crate::metrics::display(&m));
                            view! { <option value=m selected=move || metric() == is>{text}</option> }
                        }).collect_view()
                    }}
                </select>
            </label>
            {check("Discovery (search for bad slices)", |g| g.discover, |g, v| g.discover = v)}
            <Show when=move || !discover.get() fallback=move || view! {
                {field(Field::MinSupport, "Min support (rows)", "500")}
                {field(Field::MaxGap, "Max gap", "0.1")}
                {field(Field::Level, "Level (1–3)", "3")}
                {field(Field::Fdr, "FDR", "0.05")}
            }>
                {field(Field::Slice, "Slice", "overall, sex, age:[18,30,45]")}
                {field(Field::Min, "Min", "")}
                {field(Field::Max, "Max", "")}
                {field(Field::MaxDrop, "Max drop", "vs the baseline")}
                {check("Significant drop fails", |g| g.significant_drop, |g, v| g.significant_drop = v)}
                {field(Field::MaxGapIncrease, "Max gap increase", "across the slices")}
            </Show>
            {field(Field::Threshold, "Threshold", "the set's")}
            <button type="button" class="secondary remove" aria-label=move || format!("Remove gate {}", index.get())
                on:click=move |_| form.update(|f| f.gates.retain(|g| g.id != id))>"Remove"</button>
        </fieldset>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo_set() -> GateSet {
        serde_json::from_str(
            r#"{"gates": [
                {"metric": "auc_roc", "min": 0.85},
                {"metric": "auc_roc", "slice": "race", "min": 0.8, "significant_drop": true},
                {"metric": "fnr", "discover": {"min_support": 500, "max_gap": 0.1, "level": 2}}
            ], "baseline": "previous", "min_size": 50}"#,
        )
        .unwrap()
    }

    #[test]
    fn the_form_round_trips_a_gate_set() {
        let set = demo_set();
        let form = GateForm::from_set(&set);
        assert_eq!(form.gates.len(), 3);
        assert_eq!(form.gates[1].slice, "race");
        assert_eq!(form.gates[1].min, "0.8");
        assert!(form.gates[2].discover);
        assert_eq!(form.to_set().unwrap(), set);
    }

    #[test]
    fn edits_add_and_remove_gates() {
        let mut form = GateForm::from_set(&demo_set());
        let first = form.gates[0].id;
        form.row(first).unwrap().min = "0.9".into();
        form.add("accuracy");
        form.gates.last_mut().unwrap().max_drop = " 0.02 ".into();
        let second = form.gates[1].id;
        form.gates.retain(|g| g.id != second);
        let set = form.to_set().unwrap();
        assert_eq!(set.gates.len(), 3);
        assert_eq!(set.gates[0].min, Some(0.9));
        assert_eq!((set.gates[2].metric.as_str(), set.gates[2].slice.as_str(), set.gates[2].max_drop), ("accuracy", "overall", Some(0.02)));
        assert!(form.gates.iter().map(|g| g.id).collect::<std::collections::HashSet<_>>().len() == 3, "ids stay unique");
    }

    #[test]
    fn what_is_not_a_number_is_named() {
        let mut form = GateForm::from_set(&demo_set());
        form.gates[1].max_drop = "0,02".into();
        assert_eq!(form.to_set().unwrap_err(), "gate 2 max drop: '0,02' is not a number");
        form.gates[1].max_drop.clear();
        form.gates[2].min_support = "".into();
        assert_eq!(form.to_set().unwrap_err(), "gate 3: a discovery gate needs a min support");
        form.gates[2].min_support = "500".into();
        form.min_size = "many".into();
        assert_eq!(form.to_set().unwrap_err(), "min slice size: 'many' is not a whole number");
    }

    #[test]
    fn a_discovery_gate_sends_only_its_search() {
        let mut form = GateForm::new_with("fnr");
        form.gates[0].min = "0.5".into();
        form.gates[0].discover = true;
        form.gates[0].min_support = "100".into();
        form.gates[0].max_gap = "0.2".into();
        let g = &form.to_set().unwrap().gates[0];
        assert_eq!((g.min, g.slice.as_str()), (None, "overall"));
        assert_eq!(g.discover, Some(DiscoverRule { min_support: 100, max_gap: 0.2, level: None, fdr: None }));
    }
}
