//! `/upload`: drop a file, check the preview and the column roles, name the run, upload.
//!
//! The browser sends the head of the file to `POST /api/v1/preview` (so the preview never needs
//! the whole file), then the whole file with the chosen spec to `POST /api/v1/runs`: the same
//! endpoint and code path as the API and the CLI. While it uploads, the page shows the bytes sent
//! and then the rows the server has read, with an estimate of the time left and a Cancel button
//! (the upload is a tracked job: `X-Strata-Job`).
//!
//! Below it, `register`: an external run registered by its place (Parquet or Spark), no upload.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{NavigateOptions, hooks::use_navigate};
use wasm_bindgen::{JsCast, JsValue};

use crate::components::ErrorBox;
use crate::model::{ApiError, ColumnKind, Created, IngestSpec, Preview, Role};
use crate::pages::runs::urlencode;
use crate::progress::{JobProgress, ProgressBar, new_job_id};

mod register;

/// How much of a text file the preview reads.
const PREVIEW_BYTES: f64 = 256.0 * 1024.0;
/// Parquet keeps its schema at the end, so the preview needs the whole file; above this size the
/// roles are left to inference.
const PREVIEW_PARQUET_MAX: f64 = 64.0 * 1024.0 * 1024.0;

/// The role picker's choice for one column: a role, or leave the column out.
#[derive(Clone, Debug, PartialEq)]
struct ColumnChoice {
    name: String,
    kind: ColumnKind,
    role: String,
    categorical: bool,
}

/// The picked file. A `web_sys::File` is a handle into the browser's single JavaScript thread; a
/// `new_local` signal holding one wraps it in a SendWrapper, and on the server that wrapper panics
/// when the page's owner is dropped on another worker thread than the one that rendered it (a
/// blank `/upload` now and then: found by the end-to-end tests). So it is held in a plain signal.
#[derive(Clone)]
struct Picked(web_sys::File);
// SAFETY: in the browser (wasm32) there is one thread; on the server no `Picked` is ever made
// (there is no file to pick while rendering), so nothing is ever sent or shared across threads.
unsafe impl Send for Picked {}
unsafe impl Sync for Picked {}

#[component]
pub fn UploadPage() -> impl IntoView {
    let file = RwSignal::new(None::<Picked>);
    let preview = RwSignal::new(None::<Preview>);
    let choices = RwSignal::new(Vec::<ColumnChoice>::new());
    let name = RwSignal::new(String::new());
    let tags = RwSignal::new(String::new());
    let project = RwSignal::new(String::new());
    let version = RwSignal::new(String::new());
    // A failed preview (shown by the file) and a refused upload (shown by the button), apart so
    // a refusal is seen where it was asked for, and only one of them at a time.
    let error = RwSignal::new(None::<String>);
    let upload_error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    // The upload in flight: its job on the server, and the bytes sent of the file's (loaded, total).
    let job = RwSignal::new(None::<String>);
    let sent = RwSignal::new(None::<(f64, f64)>);
    let dragging = RwSignal::new(false);
    let navigate = use_navigate();

    // Why Upload cannot be pressed yet, checked as the roles and the name change.
    let blockers = Memo::new(move |_| upload_blockers(file.with(Option::is_some), &name.get(), &choices.get()));
    let columns = Memo::new(move |_| choices.with(|cs| cs.iter().map(|c| c.name.clone()).collect::<Vec<_>>()));

    let pick = move |f: web_sys::File| {
        error.set(None);
        upload_error.set(None);
        preview.set(None);
        choices.set(Vec::new());
        let fname = f.name();
        if name.get_untracked().is_empty() {
            let stem = fname.rsplit_once('.').map(|(s, _)| s.to_string()).unwrap_or(fname.clone());
            name.set(stem);
        }
        file.set(Some(Picked(f.clone())));
        busy.set(true);
        leptos::task::spawn_local(async move {
            match fetch_preview(&f).await {
                Ok(p) => {
                    choices.set(
                        p.columns
                            .iter()
                            .map(|c| ColumnChoice {
                                name: c.name.clone(),
                                kind: c.kind,
                                role: c.role.as_str().to_string(),
                                categorical: false,
                            })
                            .collect(),
                    );
                    preview.set(Some(p));
                }
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };

    let on_change = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        if let Some(f) = input.files().and_then(|fs| fs.get(0)) {
            pick(f);
        }
    };
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        dragging.set(false);
        if let Some(f) = ev.data_transfer().and_then(|dt| dt.files()).and_then(|fs| fs.get(0)) {
            pick(f);
        }
    };

    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(Picked(f)) = file.get_untracked() else {
            return;
        };
        if let Some(why) = blockers.get_untracked().into_iter().next() {
            upload_error.set(Some(why));
            return;
        }
        let mut spec = build_spec(&name.get_untracked(), &tags.get_untracked(), &choices.get_untracked());
        spec.project = Some(project.get_untracked().trim().to_string()).filter(|p| !p.is_empty());
        spec.version = Some(version.get_untracked().trim().to_string()).filter(|v| !v.is_empty());
        error.set(None);
        upload_error.set(None);
        busy.set(true);
        let navigate = navigate.clone();
        let j = new_job_id().unwrap_or_default();
        job.set(Some(j.clone()));
        sent.set(Some((0.0, f.size())));
        leptos::task::spawn_local(async move {
            let done = upload(&f, &spec, &j, move |loaded, total| sent.set(Some((loaded, total)))).await;
            job.set(None);
            sent.set(None);
            match done {
                Ok(id) => navigate(&format!("/runs/{}", urlencode(&id)), NavigateOptions::default()),
                Err(e) => upload_error.set(Some(e)),
            }
            busy.set(false);
        });
    };

    view! {
        <Title text="Upload a run" />
        <h1>"Upload an evaluation run"</h1>
        <p class="muted">
            "One row per example: features, a label, one score or prediction column per model; "
            "optionally an id, a timestamp and a weight. CSV, Parquet or JSON Lines."
        </p>
        <form class="upload" on:submit=on_submit>
            <label
                class="dropzone"
                class:dragging=move || dragging.get()
                on:dragover=move |ev: leptos::ev::DragEvent| { ev.prevent_default(); dragging.set(true); }
                on:dragleave=move |_| dragging.set(false)
                on:drop=on_drop
            >
                <span>"Drop a file here, or choose one"</span>
                <input type="file" name="file" accept=".csv,.tsv,.txt,.parquet,.jsonl,.ndjson,.json"
                    aria-label="Evaluation file" on:change=on_change />
                <span class="muted">{move || file.get().map(|f| f.0.name()).unwrap_or_default()}</span>
            </label>
            {move || error.get().map(|e| view! { <ErrorBox message=e /> })}
            {move || (busy.get() && job.with(Option::is_none)).then(|| view! { <p class="muted" role="status">"Working…"</p> })}
            {move || preview.get().map(|p| view! { <PreviewTable preview=p /> })}
            // Rebuilt when the columns change, not the roles: choosing a role keeps the focus.
            {move || (!columns.with(Vec::is_empty)).then(|| view! { <RolePicker choices /> })}
            <div class="row">
                <label>"Run name "
                    <input type="text" name="name" required
                        prop:value=move || name.get()
                        on:input=move |ev| name.set(event_target_value(&ev)) />
                </label>
                <label>"Tags "
                    <input type="text" name="tags" placeholder="comma-separated"
                        prop:value=move || tags.get()
                        on:input=move |ev| tags.set(event_target_value(&ev)) />
                </label>
                <label>"Project "
                    <input type="text" name="project" placeholder="optional, e.g. adult-income" pattern="[A-Za-z0-9._\\-]{1,64}"
                        prop:value=move || project.get()
                        on:input=move |ev| project.set(event_target_value(&ev)) />
                </label>
                <label>"Version "
                    <input type="text" name="version" placeholder="e.g. v7" pattern="[A-Za-z0-9._\\-]{1,64}"
                        prop:value=move || version.get()
                        on:input=move |ev| version.set(event_target_value(&ev)) />
                </label>
                <button type="submit" aria-describedby="upload-blocked"
                    disabled=move || busy.get() || !blockers.with(Vec::is_empty)>"Upload"</button>
            </div>
            {move || sent.get().map(|(loaded, total)| {
                let pct = if total > 0.0 { Some(((loaded / total) * 100.0).round().min(100.0) as u64) } else { None };
                view! {
                    <div class="upload-sent" data-testid="upload-sent">
                        <ProgressBar label="Bytes sent" percent=Signal::derive(move || pct) text=Signal::derive(move || sent_text(loaded, total)) />
                    </div>
                }
            })}
            <JobProgress job label="Upload" />
            <p id="upload-blocked" class="upload-blocked" aria-live="polite">
                {move || blockers.with(|b| b.first().cloned())}
            </p>
            {move || upload_error.get().map(|e| view! { <ErrorBox message=e /> })}
        </form>
        <register::RegisterExternal />
    }
}

#[component]
fn PreviewTable(preview: Preview) -> impl IntoView {
    view! {
        <h2>"Preview (" {preview.format.clone()} ", first " {preview.rows.len()} " rows)"</h2>
        <div class="scroll" tabindex="0" role="region" aria-label="Preview of the first rows">
            <table class="data preview">
                <thead><tr>{preview.columns.iter().map(|c| view! { <th class="mono">{c.name.clone()}</th> }).collect_view()}</tr></thead>
                <tbody>
                    {preview.rows.iter().map(|r| view! {
                        <tr>{r.iter().map(|v| view! { <td>{v.clone()}</td> }).collect_view()}</tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn RolePicker(choices: RwSignal<Vec<ColumnChoice>>) -> impl IntoView {
    let n = choices.get_untracked().len();
    view! {
        <h2>"Column roles"</h2>
        <p class="muted">"Inferred from names and values; change any of them. A run needs one label column and at least one score column (one per model)."</p>
        <div class="table-scroll" tabindex="0" role="region" aria-label="Column roles">
        <table class="data roles">
            <thead><tr><th>"Column"</th><th>"Type"</th><th>"Role"</th><th>"Categorical"</th></tr></thead>
            <tbody>
                {(0..n).map(|i| {
                    let c = choices.get_untracked()[i].clone();
                    let set_role = move |ev: leptos::ev::Event| {
                        let v = event_target_value(&ev);
                        choices.update(|cs| cs[i].role = v);
                    };
                    let set_cat = move |ev: leptos::ev::Event| {
                        let v = event_target_checked(&ev);
                        choices.update(|cs| cs[i].categorical = v);
                    };
                    let numeric = c.kind == ColumnKind::Numeric;
                    view! {
                        <tr>
                            <td class="mono">{c.name.clone()}</td>
                            <td>{format!("{:?}", c.kind).to_lowercase()}</td>
                            <td>
                                <select aria-label=format!("Role of {}", c.name) on:change=set_role>
                                    {Role::ALL.iter().map(|r| {
                                        let selected = r.as_str() == c.role;
                                        view! { <option value=r.as_str() selected=selected>{r.as_str()}</option> }
                                    }).collect_view()}
                                    <option value="ignore">"ignore"</option>
                                </select>
                            </td>
                            <td>{numeric.then(|| view! {
                                <input type="checkbox" aria-label=format!("Treat {} as categorical", c.name) on:change=set_cat />
                            })}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        </div>
        <ul class="role-problems" data-testid="role-problems" aria-live="polite">
            {move || role_problems(&choices.get()).into_iter().map(|p| view! { <li>{p}</li> }).collect_view()}
        </ul>
    }
}

/// What is wrong with the chosen roles, in the words of a fix ("Choose a label column."); empty
/// when the server would accept them. The same rules as the server's (`ingest::roles::resolve`):
/// exactly one label, at least one score, at most one of each single-column role.
fn role_problems(choices: &[ColumnChoice]) -> Vec<String> {
    let named = |role: &str| -> Vec<&str> { choices.iter().filter(|c| c.role == role).map(|c| c.name.as_str()).collect() };
    let both = |cols: &[&str]| -> String {
        let quoted: Vec<String> = cols.iter().map(|c| format!("'{c}'")).collect();
        match quoted.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => quoted.join(""),
        }
    };
    let mut out = Vec::new();
    match named("label").as_slice() {
        [] => out.push("Choose a label column.".to_string()),
        [_] => {}
        many => out.push(format!("Choose one label column, not {}.", both(many))),
    }
    if named("score").is_empty() {
        out.push("Choose at least one score column.".to_string());
    }
    for role in ["prediction", "id", "timestamp", "weight"] {
        let cols = named(role);
        if cols.len() > 1 {
            out.push(format!("Choose at most one {role} column, not {}.", both(&cols)));
        }
    }
    out
}

/// Why Upload cannot be pressed yet, first reason first; empty when it can. Without a preview's
/// columns (a Parquet file too large to preview) the roles are left to the server.
fn upload_blockers(has_file: bool, name: &str, choices: &[ColumnChoice]) -> Vec<String> {
    if !has_file {
        return vec!["Choose a file first.".to_string()];
    }
    let mut out = if choices.is_empty() { Vec::new() } else { role_problems(choices) };
    if name.trim().is_empty() {
        out.push("Give the run a name.".to_string());
    }
    out
}

fn build_spec(name: &str, tags: &str, choices: &[ColumnChoice]) -> IngestSpec {
    let with_role = |role: &str| -> Vec<String> {
        choices.iter().filter(|c| c.role == role).map(|c| c.name.clone()).collect()
    };
    let first = |role: &str| with_role(role).into_iter().next();
    IngestSpec {
        name: name.trim().to_string(),
        label: first("label"),
        scores: Some(with_role("score")).filter(|s| !s.is_empty()),
        prediction: first("prediction"),
        id: first("id"),
        timestamp: first("timestamp"),
        weight: first("weight"),
        categorical: choices.iter().filter(|c| c.categorical).map(|c| c.name.clone()).collect(),
        ignore: with_role("ignore"),
        tags: tags.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect(),
        ..Default::default()
    }
}

fn js_err(v: JsValue) -> String {
    v.as_string()
        .or_else(|| js_sys::JSON::stringify(&v).ok().and_then(|s| s.as_string()))
        .unwrap_or_else(|| "browser error".to_string())
}

/// POSTs `body` and returns the response's status and text.
async fn post(url: &str, body: &JsValue) -> Result<(u16, String), String> {
    send(url, body, None).await
}

/// POSTs `json` as `application/json` and returns the response's status and text.
async fn post_json(url: &str, json: &str) -> Result<(u16, String), String> {
    send(url, &JsValue::from_str(json), Some("application/json")).await
}

/// POSTs `body` (same-origin: the session's cookie goes with it) with `content_type` when given
/// (else the browser's, from the body), and returns the response's status and text.
async fn send(url: &str, body: &JsValue, content_type: Option<&str>) -> Result<(u16, String), String> {
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(body);
    if let Some(t) = content_type {
        let headers = web_sys::Headers::new().map_err(js_err)?;
        headers.set("content-type", t).map_err(js_err)?;
        init.set_headers(&headers);
    }
    let window = web_sys::window().ok_or("no window")?;
    let resp = wasm_bindgen_futures::JsFuture::from(window.fetch_with_str_and_init(url, &init))
        .await
        .map_err(|e| format!("network error: {}", js_err(e)))?;
    let resp: web_sys::Response = resp.dyn_into().map_err(js_err)?;
    let text = wasm_bindgen_futures::JsFuture::from(resp.text().map_err(js_err)?)
        .await
        .map_err(js_err)?
        .as_string()
        .unwrap_or_default();
    Ok((resp.status(), text))
}

/// POSTs `form` with XMLHttpRequest (fetch reports no upload progress) as job `job`; returns the
/// response's status and text.
async fn post_with_progress(url: &str, form: &web_sys::FormData, job: &str, on_sent: impl Fn(f64, f64) + 'static) -> Result<(u16, String), String> {
    use wasm_bindgen::closure::Closure;
    let xhr = web_sys::XmlHttpRequest::new().map_err(js_err)?;
    xhr.open_with_async("POST", url, true).map_err(js_err)?;
    if !job.is_empty() {
        xhr.set_request_header("x-strata-job", job).map_err(js_err)?;
    }
    let on_progress = Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(move |e: web_sys::ProgressEvent| {
        if e.length_computable() {
            on_sent(e.loaded(), e.total());
        }
    });
    xhr.upload().map_err(js_err)?.set_onprogress(Some(on_progress.as_ref().unchecked_ref()));
    let finished = js_sys::Promise::new(&mut |resolve, reject| {
        xhr.set_onload(Some(&resolve));
        xhr.set_onerror(Some(&reject));
        xhr.set_onabort(Some(&reject));
    });
    xhr.send_with_opt_form_data(Some(form)).map_err(js_err)?;
    let outcome = wasm_bindgen_futures::JsFuture::from(finished).await;
    drop(on_progress);
    outcome.map_err(|_| "network error: the upload did not complete".to_string())?;
    Ok((xhr.status().map_err(js_err)?, xhr.response_text().map_err(js_err)?.unwrap_or_default()))
}

/// The API's error as text: the message, then one line per problem found in the file.
fn api_error(status: u16, text: &str) -> String {
    let Ok(e) = serde_json::from_str::<ApiError>(text) else {
        return format!("HTTP {status}: {text}");
    };
    let problems = e.detail.get("problems").and_then(|p| p.as_array()).cloned().unwrap_or_default();
    if problems.len() <= 1 {
        return e.error;
    }
    let file = e.detail.get("file").and_then(|f| f.as_str()).unwrap_or("the file");
    let mut out = format!("{file} was not stored: {} problems", problems.len());
    for p in problems {
        let mut place = Vec::new();
        if let Some(l) = p.get("line").and_then(|v| v.as_u64()) {
            place.push(format!("line {l}"));
        }
        if let Some(r) = p.get("row").and_then(|v| v.as_u64()) {
            place.push(format!("row {r}"));
        }
        if let Some(c) = p.get("column").and_then(|v| v.as_str()) {
            place.push(format!("column '{c}'"));
        }
        let msg = p.get("message").and_then(|v| v.as_str()).unwrap_or_default();
        out.push_str(&format!("\n• {}: {msg}", place.join(", ")));
    }
    out
}

async fn fetch_preview(f: &web_sys::File) -> Result<Preview, String> {
    let size = f.size();
    let is_parquet = f.name().to_lowercase().ends_with(".parquet");
    let blob: web_sys::Blob = if is_parquet {
        if size > PREVIEW_PARQUET_MAX {
            return Err("This Parquet file is too large to preview; roles will be inferred on upload.".into());
        }
        f.clone().into()
    } else {
        f.slice_with_f64_and_f64(0.0, size.min(PREVIEW_BYTES)).map_err(js_err)?
    };
    let url = format!(
        "/api/v1/preview?file_name={}&truncated={}",
        urlencode(&f.name()),
        !is_parquet && size > PREVIEW_BYTES
    );
    let (status, text) = post(&url, &blob.into()).await?;
    if status == 200 {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    } else {
        Err(api_error(status, &text))
    }
}

/// Attaches a model file to a run (`POST /api/v1/runs/{id}/models`), bound to `score` when not empty.
pub(crate) async fn attach_model(run: &str, f: &web_sys::File, score: &str) -> Result<crate::model::AttachedModel, String> {
    let form = web_sys::FormData::new().map_err(js_err)?;
    form.append_with_blob_and_filename("model", f, &f.name()).map_err(js_err)?;
    if !score.is_empty() {
        form.append_with_str("score", score).map_err(js_err)?;
    }
    let (status, text) = post(&format!("/api/v1/runs/{}/models", urlencode(run)), &form.into()).await?;
    if status == 201 {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    } else {
        Err(api_error(status, &text))
    }
}

/// "Sent 1.2 of 3.4 MB (35%)".
fn sent_text(loaded: f64, total: f64) -> String {
    let mb = |b: f64| b / 1_048_576.0;
    let pct = if total > 0.0 { (loaded / total * 100.0).round().min(100.0) } else { 0.0 };
    format!("sent {:.1} of {:.1} MB ({pct}%)", mb(loaded), mb(total))
}

/// Uploads the file as job `job`, calling `on_sent(loaded, total)` as its bytes go out.
async fn upload(f: &web_sys::File, spec: &IngestSpec, job: &str, on_sent: impl Fn(f64, f64) + 'static) -> Result<String, String> {
    let form = web_sys::FormData::new().map_err(js_err)?;
    let spec_json = serde_json::to_string(spec).map_err(|e| e.to_string())?;
    form.append_with_str("spec", &spec_json).map_err(js_err)?;
    form.append_with_blob_and_filename("file", f, &f.name()).map_err(js_err)?;
    let (status, text) = post_with_progress("/api/v1/runs", &form, job, on_sent).await?;
    created_id(status, &text)
}

/// The new run's id from the answer to `POST /api/v1/runs`, or the server's error as text.
fn created_id(status: u16, text: &str) -> Result<String, String> {
    if status == 201 {
        serde_json::from_str::<Created>(text).map(|c| c.id).map_err(|e| e.to_string())
    } else {
        Err(api_error(status, text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(roles: &[(&str, &str)]) -> Vec<ColumnChoice> {
        roles.iter().map(|(n, r)| ColumnChoice { name: n.to_string(), kind: ColumnKind::Numeric, role: r.to_string(), categorical: false }).collect()
    }

    #[test]
    fn roles_need_one_label_and_a_score() {
        // `y,p,g`: the names suggest only the label.
        let mut c = cols(&[("y", "label"), ("p", "feature"), ("g", "feature")]);
        assert_eq!(role_problems(&c), vec!["Choose at least one score column."]);
        c[0].role = "feature".into();
        assert_eq!(role_problems(&c), vec!["Choose a label column.", "Choose at least one score column."]);
        c[0].role = "label".into();
        c[1].role = "score".into();
        assert!(role_problems(&c).is_empty());
        c[2].role = "label".into();
        assert_eq!(role_problems(&c), vec!["Choose one label column, not 'y' and 'g'."]);
        let ids = cols(&[("y", "label"), ("p", "score"), ("a", "id"), ("b", "id"), ("c", "id")]);
        assert_eq!(role_problems(&ids), vec!["Choose at most one id column, not 'a', 'b' and 'c'."]);
    }

    #[test]
    fn upload_is_blocked_with_a_reason() {
        let ok = cols(&[("y", "label"), ("p", "score")]);
        assert_eq!(upload_blockers(false, "run", &ok), vec!["Choose a file first."]);
        assert!(upload_blockers(true, "run", &ok).is_empty());
        assert_eq!(upload_blockers(true, "  ", &ok), vec!["Give the run a name."]);
        assert_eq!(upload_blockers(true, "run", &cols(&[("y", "label")])), vec!["Choose at least one score column."]);
        // No preview (a Parquet file too large for one): the server infers the roles.
        assert!(upload_blockers(true, "run", &[]).is_empty());
    }

    #[test]
    fn the_spec_carries_the_chosen_roles() {
        let spec = build_spec(" ypg ", "a, b,", &cols(&[("y", "label"), ("p", "score"), ("g", "ignore")]));
        assert_eq!(spec.name, "ypg");
        assert_eq!(spec.label.as_deref(), Some("y"));
        assert_eq!(spec.scores, Some(vec!["p".to_string()]));
        assert_eq!(spec.ignore, vec!["g".to_string()]);
        assert_eq!(spec.tags, vec!["a".to_string(), "b".to_string()]);
    }
}
