//! `/`: the runs list, filtered by the `q` and `tag` query parameters.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{
    NavigateOptions,
    components::{A, Form},
    hooks::{use_navigate, use_query_map},
};

use crate::components::ErrorBox;
use crate::model::RunSummary;
use crate::server_fns::list_runs;

/// Does a run match the search text (name, model, tag or id, case-insensitive) and the tag?
pub fn run_matches(run: &RunSummary, q: &str, tag: &str) -> bool {
    let q = q.trim().to_lowercase();
    let text_ok = q.is_empty()
        || run.name.to_lowercase().contains(&q)
        || run.id.starts_with(&q)
        || run.models.iter().any(|m| m.to_lowercase().contains(&q))
        || run.tags.iter().any(|t| t.to_lowercase().contains(&q));
    let tag_ok = tag.is_empty() || run.tags.iter().any(|t| t == tag);
    text_ok && tag_ok
}

#[component]
pub fn RunsPage() -> impl IntoView {
    let query = use_query_map();
    let q = Memo::new(move |_| query.read().get("q").unwrap_or_default());
    let tag = Memo::new(move |_| query.read().get("tag").unwrap_or_default());
    let runs = Resource::new(|| (), |_| list_runs());
    let navigate = use_navigate();

    // Typing filters at once and keeps the filter in the URL (replace, not push).
    let on_input = move |ev: leptos::ev::Event| {
        let value = event_target_value(&ev);
        let mut url = format!("/?q={}", urlencode(&value));
        let t = tag.get_untracked();
        if !t.is_empty() {
            url.push_str(&format!("&tag={}", urlencode(&t)));
        }
        navigate(&url, NavigateOptions { replace: true, scroll: false, ..Default::default() });
    };

    view! {
        <Title text="Runs" />
        <div class="page-head">
            <h1>"Evaluation runs"</h1>
            <A href="/upload" attr:class="button">"Upload a run"</A>
        </div>
        <Form method="GET" action="">
            <label class="search">
                <span>"Search"</span>
                <input type="search" name="q" placeholder="name, model or tag"
                    prop:value=move || q.get() on:input=on_input />
            </label>
            {move || (!tag.get().is_empty()).then(|| view! {
                <input type="hidden" name="tag" value=tag.get() />
                <span class="chip">"tag: " {tag.get()} " " <a href="/">"×"</a></span>
            })}
        </Form>
        <Suspense fallback=|| view! { <p>"Loading runs…"</p> }>
            {move || Suspend::new(async move {
                match runs.await {
                    Err(e) => view! { <ErrorBox message=e.to_string() /> }.into_any(),
                    Ok(all) => {
                        let shown: Vec<RunSummary> = all
                            .iter()
                            .filter(|r| run_matches(r, &q.get(), &tag.get()))
                            .cloned()
                            .collect();
                        let total = all.len();
                        view! { <RunsTable runs=shown total /> }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
fn RunsTable(runs: Vec<RunSummary>, total: usize) -> impl IntoView {
    let count = runs.len();
    view! {
        <p class="muted">{format!("{count} of {total} runs")}</p>
        <table class="data runs">
            <thead>
                <tr><th>"Name"</th><th>"Task"</th><th>"Models"</th><th class="num">"Rows"</th>
                    <th>"Created (UTC)"</th><th>"Project"</th><th>"Tags"</th></tr>
            </thead>
            <tbody>
                {runs.into_iter().map(|r| {
                    let href = format!("/runs/{}", r.id);
                    view! {
                        <tr>
                            <td><A href=href>{r.name.clone()}</A></td>
                            <td>{r.task.as_str()}</td>
                            <td>{r.models.join(", ")}</td>
                            <td class="num">{r.rows.to_string()}</td>
                            <td>{r.created_at.replace('T', " ").trim_end_matches('Z').to_string()}</td>
                            <td>{r.project.clone().map(|p| view! { <a href=format!("/projects/{p}")>{p.clone()}</a> })}</td>
                            <td>{r.tags.into_iter().map(|t| {
                                let href = format!("/?tag={}", urlencode(&t));
                                view! { <a class="chip" href=href>{t}</a> }
                            }).collect_view()}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Task;

    fn run(name: &str, tags: &[&str]) -> RunSummary {
        RunSummary {
            id: "abc".into(),
            name: name.into(),
            task: Task::Binary,
            models: vec!["score_gbt".into()],
            rows: 1,
            created_at: String::new(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            source_file: String::new(),
            project: None,
            version: None,
            run_time: String::new(),
        }
    }

    #[test]
    fn search_matches_name_model_and_tag() {
        let r = run("Adult income", &["demo"]);
        assert!(run_matches(&r, "adult", ""));
        assert!(run_matches(&r, "GBT", ""));
        assert!(run_matches(&r, "", "demo"));
        assert!(!run_matches(&r, "wages", ""));
        assert!(!run_matches(&r, "", "prod"));
    }

    #[test]
    fn urlencode_escapes_reserved() {
        assert_eq!(urlencode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}
