//! Progress of a long request: the page gives its request a job id ([`new_job_id`]), and
//! [`JobProgress`] follows that job (`GET /api/v1/jobs/{job}`) with a progress bar, an estimate of
//! the time left and a Cancel button (`DELETE /api/v1/jobs/{job}`: the server stops the work).
//!
//! Any page with a long analysis can use it: keep the pending request's job id in a signal, pass
//! it to the server function (its `job` argument) and to `<JobProgress job=… />`.

use leptos::prelude::*;

use crate::model::{JobState, JobStatus};

/// A fresh random job id in the browser; `None` while rendering on the server (nothing to watch).
pub fn new_job_id() -> Option<String> {
    #[cfg(feature = "hydrate")]
    {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let id: String = (0..20).map(|_| ALPHABET[(js_sys::Math::random() * ALPHABET.len() as f64) as usize % ALPHABET.len()] as char).collect();
        Some(format!("job-{id}"))
    }
    #[cfg(not(feature = "hydrate"))]
    {
        None
    }
}

/// A request whose progress is shown only once it has been pending a while: most moves of a
/// slider are answered in a fraction of a second and must not flash a bar; a first analysis of
/// a large run, or thousands of bootstrap replicates, gets the bar and its Cancel button.
/// `start` before the request (its job id goes to the server function), `end` after it.
#[derive(Clone, Copy)]
pub struct SlowJob {
    pending: RwSignal<Option<String>>,
    shown: RwSignal<Option<String>>,
}

impl Default for SlowJob {
    fn default() -> Self {
        SlowJob { pending: RwSignal::new(None), shown: RwSignal::new(None) }
    }
}

impl SlowJob {
    /// How long a request runs before its bar appears.
    pub const AFTER_MS: i32 = 400;

    /// A new job for the next request (`None` on the server: nothing to follow there).
    pub fn start(&self) -> Option<String> {
        let j = new_job_id();
        self.pending.set(j.clone());
        self.shown.set(None);
        #[cfg(feature = "hydrate")]
        if let Some(id) = j.clone() {
            let this = *self;
            leptos::task::spawn_local(async move {
                sleep(Self::AFTER_MS).await;
                if this.pending.try_get_untracked().flatten().as_deref() == Some(id.as_str()) {
                    this.shown.try_set(Some(id));
                }
            });
        }
        j
    }

    /// The request of job `j` ended (a newer request keeps its own).
    pub fn end(&self, j: &Option<String>) {
        if self.pending.try_get_untracked().as_ref() == Some(j) {
            self.pending.try_set(None);
            self.shown.try_set(None);
        }
    }

    /// The job to follow with [`JobProgress`]: set once its request has run [`Self::AFTER_MS`].
    pub fn shown(&self) -> Signal<Option<String>> {
        self.shown.into()
    }
}

/// A duration in seconds as people say it: "about 12 s", "about 3 min".
pub fn eta_text(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return String::new();
    }
    if seconds < 1.5 {
        "about 1 s left".into()
    } else if seconds < 90.0 {
        format!("about {} s left", seconds.round())
    } else {
        format!("about {} min left", (seconds / 60.0).round())
    }
}

/// The sentence beside the bar.
pub fn status_text(s: &JobStatus) -> String {
    let mut parts = Vec::new();
    match s.state {
        JobState::Cancelling => parts.push("cancelling…".to_string()),
        JobState::Cancelled => parts.push("cancelled".to_string()),
        JobState::Failed => parts.push("failed".to_string()),
        JobState::Done => parts.push("done".to_string()),
        JobState::Running => {
            if s.total > 0 {
                parts.push(format!("{}%", percent(s)));
            }
            if !s.stage.is_empty() {
                parts.push(s.stage.clone());
            }
        }
    }
    if s.rows > 0 {
        parts.push(format!("{} rows read", crate::model::grouped(s.rows)));
    }
    if let Some(eta) = s.eta_seconds {
        parts.push(eta_text(eta));
    }
    parts.join(" · ")
}

/// Percent done, 0–100.
pub fn percent(s: &JobStatus) -> u64 {
    if s.total == 0 { 0 } else { (s.done.min(s.total) * 100) / s.total }
}

/// A bar: `role="progressbar"` with its value, the sentence, and (when `on_cancel` is given) a
/// Cancel button. Used by [`JobProgress`] and by the upload page for the bytes sent.
#[component]
pub fn ProgressBar(
    /// What is in progress ("Search", "Upload"): the bar's accessible name.
    #[prop(into)]
    label: String,
    /// Percent done, or `None` while unknown.
    #[prop(into)]
    percent: Signal<Option<u64>>,
    #[prop(into)] text: Signal<String>,
) -> impl IntoView {
    view! {
        <div
            class="progress-bar"
            role="progressbar"
            aria-label=label
            aria-valuemin="0"
            aria-valuemax="100"
            aria-valuenow=move || percent.get().map(|p| p.to_string())
            aria-valuetext=move || text.get()
        >
            <span class="progress-fill" class:indeterminate=move || percent.get().is_none() style:width=move || format!("{}%", percent.get().unwrap_or(100))></span>
        </div>
        <span class="progress-text">{move || text.get()}</span>
    }
}

/// Follows job `job` while it is `Some`: a progress bar, the time left, and a Cancel button that
/// asks the server to stop the work. Renders nothing while `job` is `None`.
#[component]
pub fn JobProgress(
    /// The pending request's job id.
    #[prop(into)]
    job: Signal<Option<String>>,
    /// What the job does ("Search", "Upload"): names the bar and the button.
    #[prop(into)]
    label: String,
) -> impl IntoView {
    let status = RwSignal::new(None::<JobStatus>);
    let cancel_error = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        let Some(j) = job.get() else {
            status.set(None);
            return;
        };
        status.set(None);
        cancel_error.set(None);
        watch(j, job, status);
    });
    let cancel = move |_| {
        if let Some(j) = job.get_untracked() {
            leptos::task::spawn_local(async move {
                match request("DELETE", &j).await {
                    Ok(Some(s)) => status.set(Some(s)),
                    Ok(None) => {}
                    Err(e) => cancel_error.set(Some(e)),
                }
            });
        }
    };
    let percent = Signal::derive(move || status.get().filter(|s| s.total > 0).map(|s| percent(&s)));
    let text = Signal::derive(move || status.get().map(|s| status_text(&s)).unwrap_or_else(|| "starting…".into()));
    let cancelling = move || status.get().is_some_and(|s| s.state != JobState::Running);
    let button_label = format!("Cancel {}", label.to_lowercase());
    view! {
        <Show when=move || job.get().is_some()>
            <div class="job-progress" data-job=move || job.get().unwrap_or_default()>
                <ProgressBar label=label.clone() percent text />
                <button type="button" class="secondary" on:click=cancel disabled=cancelling aria-label=button_label.clone()>"Cancel"</button>
                {move || cancel_error.get().map(|e| view! { <span class="error" role="alert">{e}</span> })}
            </div>
        </Show>
    }
}

/// Polls job `j` until it ends or the page stops waiting for it (`job` changes).
#[cfg(feature = "hydrate")]
fn watch(j: String, job: Signal<Option<String>>, status: RwSignal<Option<JobStatus>>) {
    leptos::task::spawn_local(async move {
        loop {
            sleep(300).await;
            // The page may have gone (a finished upload navigates away): its signals are then
            // disposed, and reading one would panic; stop quietly instead.
            if job.try_get_untracked().flatten().as_deref() != Some(j.as_str()) {
                break;
            }
            // Not there yet (the request has not reached the server) or gone: keep the last view.
            if let Ok(Some(s)) = request("GET", &j).await {
                let ended = s.state.ended();
                if status.try_set(Some(s)).is_some() || ended {
                    break;
                }
            }
        }
    });
}

#[cfg(not(feature = "hydrate"))]
fn watch(_: String, _: Signal<Option<String>>, _: RwSignal<Option<JobStatus>>) {}

#[cfg(feature = "hydrate")]
async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// `GET` or `DELETE /api/v1/jobs/{j}`: the job's status, `None` when the server has none of ours.
#[cfg(feature = "hydrate")]
async fn request(method: &str, j: &str) -> Result<Option<JobStatus>, String> {
    use wasm_bindgen::JsCast;
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    let window = web_sys::window().ok_or("no window")?;
    let url = format!("/api/v1/jobs/{}", crate::pages::runs::urlencode(j));
    let resp = wasm_bindgen_futures::JsFuture::from(window.fetch_with_str_and_init(&url, &init)).await.map_err(|_| "network error".to_string())?;
    let resp: web_sys::Response = resp.dyn_into().map_err(|_| "network error".to_string())?;
    let text = wasm_bindgen_futures::JsFuture::from(resp.text().map_err(|_| "network error".to_string())?)
        .await
        .map_err(|_| "network error".to_string())?
        .as_string()
        .unwrap_or_default();
    match resp.status() {
        200 => serde_json::from_str(&text).map(Some).map_err(|e| e.to_string()),
        404 => Ok(None),
        s => Err(serde_json::from_str::<crate::model::ApiError>(&text).map(|e| e.error).unwrap_or_else(|_| format!("HTTP {s}"))),
    }
}

#[cfg(not(feature = "hydrate"))]
async fn request(_: &str, _: &str) -> Result<Option<JobStatus>, String> {
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: JobState, done: u64, total: u64, rows: u64, eta: Option<f64>) -> JobStatus {
        JobStatus { job: "job-x".into(), state, stage: "bootstrap".into(), done, total, rows, elapsed_ms: 1000, eta_seconds: eta }
    }

    #[test]
    fn the_sentence_says_how_far_and_how_long() {
        assert_eq!(status_text(&status(JobState::Running, 25, 100, 0, Some(3.2))), "25% · bootstrap · about 3 s left");
        assert_eq!(status_text(&status(JobState::Running, 10, 20, 1_234_567, Some(400.0))), "50% · bootstrap · 1,234,567 rows read · about 7 min left");
        assert_eq!(status_text(&status(JobState::Cancelled, 3, 10, 0, None)), "cancelled");
        assert_eq!(percent(&status(JobState::Running, 0, 0, 0, None)), 0);
        assert_eq!(percent(&status(JobState::Done, 20, 20, 0, None)), 100);
    }
}
