//! `/`: the runs list. URL state: `q` (search), `task`, `project` and `tag` (filters), `sort`
//! and `dir` (the sorted column); an empty parameter is left out of the URL. The demo runs are
//! pinned under "Start here" until there is a run of one's own.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{
    NavigateOptions,
    components::A,
    hooks::{use_navigate, use_query_map},
};

use crate::components::ErrorBox;
use crate::model::RunSummary;
use crate::server_fns::list_runs;

/// The tag the demo runs are loaded with (`strata_server::demo`): what marks a run as a demo.
pub const DEMO_TAG: &str = "demo";

/// Is this one of the demo runs loaded into an empty database?
pub fn is_demo(run: &RunSummary) -> bool {
    run.tags.iter().any(|t| t == DEMO_TAG)
}

/// A column the list sorts by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    Name,
    Task,
    Rows,
    Created,
    Project,
}

impl SortKey {
    pub const ALL: [SortKey; 5] = [SortKey::Name, SortKey::Task, SortKey::Rows, SortKey::Created, SortKey::Project];

    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::Task => "task",
            SortKey::Rows => "rows",
            SortKey::Created => "created",
            SortKey::Project => "project",
        }
    }

    pub fn parse(s: &str) -> Option<SortKey> {
        SortKey::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The first click's direction: the largest and newest first, words A to Z.
    fn first_dir(self) -> Dir {
        match self {
            SortKey::Rows | SortKey::Created => Dir::Desc,
            _ => Dir::Asc,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Asc,
    Desc,
}

impl Dir {
    fn as_str(self) -> &'static str {
        match self {
            Dir::Asc => "asc",
            Dir::Desc => "desc",
        }
    }
}

/// The list's state, as the URL's query holds it. Empty strings mean "not set".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunsQuery {
    pub q: String,
    pub task: String,
    pub project: String,
    pub tag: String,
    /// Absent: newest first, the server's order.
    pub sort: Option<(SortKey, Dir)>,
}

impl RunsQuery {
    /// From the URL's parameters; an unknown `sort` is ignored.
    pub fn from_params(get: impl Fn(&str) -> Option<String>) -> RunsQuery {
        let text = |k: &str| get(k).map(|v| v.trim().to_string()).unwrap_or_default();
        let sort = SortKey::parse(&text("sort")).map(|k| {
            let dir = match text("dir").as_str() {
                "asc" => Dir::Asc,
                "desc" => Dir::Desc,
                _ => k.first_dir(),
            };
            (k, dir)
        });
        RunsQuery { q: get("q").unwrap_or_default(), task: text("task"), project: text("project"), tag: text("tag"), sort }
    }

    /// `/?…` with only the parameters that are set.
    pub fn url(&self) -> String {
        let mut parts: Vec<String> = [("q", &self.q), ("task", &self.task), ("project", &self.project), ("tag", &self.tag)]
            .into_iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect();
        if let Some((k, d)) = self.sort {
            parts.push(format!("sort={}&dir={}", k.as_str(), d.as_str()));
        }
        if parts.is_empty() { "/".to_string() } else { format!("/?{}", parts.join("&")) }
    }

    /// The sort after clicking `key`'s header: the other direction if it is sorted already.
    pub fn toggled(&self, key: SortKey) -> RunsQuery {
        let dir = match self.effective_sort() {
            (k, Dir::Asc) if k == key => Dir::Desc,
            (k, Dir::Desc) if k == key => Dir::Asc,
            _ => key.first_dir(),
        };
        RunsQuery { sort: Some((key, dir)), ..self.clone() }
    }

    /// The order the rows are in: the URL's, else newest first.
    pub fn effective_sort(&self) -> (SortKey, Dir) {
        self.sort.unwrap_or((SortKey::Created, Dir::Desc))
    }

    /// Does a run match the search text (name, model, tag or id, case-insensitive) and the filters?
    pub fn matches(&self, run: &RunSummary) -> bool {
        let q = self.q.trim().to_lowercase();
        let text_ok = q.is_empty()
            || run.name.to_lowercase().contains(&q)
            || run.id.starts_with(&q)
            || run.models.iter().any(|m| m.to_lowercase().contains(&q))
            || run.tags.iter().any(|t| t.to_lowercase().contains(&q));
        let task_ok = self.task.is_empty() || run.task.as_str() == self.task;
        let project_ok = self.project.is_empty() || run.project.as_deref() == Some(self.project.as_str());
        let tag_ok = self.tag.is_empty() || run.tags.iter().any(|t| *t == self.tag);
        text_ok && task_ok && project_ok && tag_ok
    }

    /// The runs that match, in the chosen order (ties by name, then id, so the order is stable).
    pub fn apply(&self, runs: &[RunSummary]) -> Vec<RunSummary> {
        let mut shown: Vec<RunSummary> = runs.iter().filter(|r| self.matches(r)).cloned().collect();
        let (key, dir) = self.effective_sort();
        shown.sort_by(|a, b| {
            let primary = match key {
                SortKey::Name => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
                SortKey::Task => a.task.as_str().cmp(b.task.as_str()),
                SortKey::Rows => a.rows.cmp(&b.rows),
                SortKey::Created => a.created_at.cmp(&b.created_at),
                // (Runs without a project come first, A to Z.)
                SortKey::Project => a.project.cmp(&b.project),
            };
            let primary = if dir == Dir::Desc { primary.reverse() } else { primary };
            primary.then_with(|| a.name.cmp(&b.name)).then_with(|| a.id.cmp(&b.id))
        });
        shown
    }
}

/// The distinct values of a run field, sorted, with `keep` (the URL's choice) among them.
fn choices<'a>(values: impl Iterator<Item = &'a str>, keep: &str) -> Vec<String> {
    let mut out: Vec<String> = values.map(str::to_string).collect();
    if !keep.is_empty() {
        out.push(keep.to_string());
    }
    out.sort();
    out.dedup();
    out
}

#[component]
pub fn RunsPage() -> impl IntoView {
    let query = use_query_map();
    let state = Memo::new(move |_| query.with(|m| RunsQuery::from_params(|k| m.get(k))));
    let runs = Resource::new(|| (), |_| list_runs());
    let navigate = use_navigate();
    // Typing filters at once and keeps the search in the URL (replace, not push).
    let on_input = move |ev: leptos::ev::Event| {
        let next = RunsQuery { q: event_target_value(&ev), ..state.get_untracked() };
        navigate(&next.url(), NavigateOptions { replace: true, scroll: false, ..Default::default() });
    };
    // With JavaScript the form's submit (Enter) goes through the router, without empty parameters;
    // without it, the browser sends the form.
    let on_submit = move |ev: leptos::ev::SubmitEvent| ev.prevent_default();

    view! {
        <Title text="Runs" />
        <div class="page-head">
            <h1>"Evaluation runs"</h1>
            <A href="/upload" attr:class="button">"Upload a run"</A>
        </div>
        <form method="get" action="/" class="runs-filters" on:submit=on_submit>
            <label class="search">
                <span>"Search"</span>
                <input type="search" name="q" placeholder="name, model or tag"
                    prop:value=move || state.with(|s| s.q.clone()) on:input=on_input />
            </label>
            {move || state.with(|s| s.sort).map(|(k, d)| view! {
                <input type="hidden" name="sort" value=k.as_str() />
                <input type="hidden" name="dir" value=d.as_str() />
            })}
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let all = runs.await.unwrap_or_default();
                    view! { <RunFilters all state /> }
                })}
            </Suspense>
        </form>
        <Suspense fallback=|| view! { <p>"Loading runs…"</p> }>
            {move || Suspend::new(async move {
                match runs.await {
                    Err(e) => view! { <ErrorBox message=e.to_string() /> }.into_any(),
                    Ok(all) => view! { <RunsLists all state=state.get() /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The task, project and tag filters: `<select>`s of the values the runs have.
#[component]
fn RunFilters(all: Vec<RunSummary>, state: Memo<RunsQuery>) -> impl IntoView {
    let navigate = use_navigate();
    let now = state.get_untracked();
    let tasks = choices(all.iter().map(|r| r.task.as_str()), &now.task);
    let projects = choices(all.iter().filter_map(|r| r.project.as_deref()), &now.project);
    let tags = choices(all.iter().flat_map(|r| r.tags.iter().map(String::as_str)), &now.tag);
    let filter = move |name: &'static str, label: &'static str, any: &'static str, values: Vec<String>| {
        let navigate = navigate.clone();
        let current = move || state.with(|s| match name {
            "task" => s.task.clone(),
            "project" => s.project.clone(),
            _ => s.tag.clone(),
        });
        let on_change = move |ev: leptos::ev::Event| {
            let v = event_target_value(&ev);
            let mut next = state.get_untracked();
            match name {
                "task" => next.task = v,
                "project" => next.project = v,
                _ => next.tag = v,
            }
            navigate(&next.url(), NavigateOptions { scroll: false, ..Default::default() });
        };
        view! {
            <label class="filter">
                <span>{label}</span>
                <select name=name on:change=on_change prop:value=current>
                    <option value="" selected=move || current().is_empty()>{any}</option>
                    {values.into_iter().map(|v| {
                        let (is, text) = (v.clone(), v.clone());
                        view! { <option value=v selected=move || current() == is>{text}</option> }
                    }).collect_view()}
                </select>
            </label>
        }
    };
    view! {
        {filter("task", "Task", "any task", tasks)}
        {filter("project", "Project", "any project", projects)}
        {filter("tag", "Tag", "any tag", tags)}
    }
}

/// The demo runs pinned under "Start here" while they are all there is; then one sorted table.
#[component]
fn RunsLists(all: Vec<RunSummary>, state: RunsQuery) -> impl IntoView {
    let shown = state.apply(&all);
    let total = all.len();
    let own = all.iter().any(|r| !is_demo(r));
    let filtered = shown.len() < total;
    if own {
        return view! {
            <p class="muted" data-testid="runs-count">{format!("{} of {total} runs", shown.len())}</p>
            <RunsTable runs=shown state caption="All runs" />
        }
        .into_any();
    }
    view! {
        <section class="start-here" aria-labelledby="start-here">
            <h2 id="start-here">"Start here"</h2>
            <p class="muted">"Demo runs to explore: open one to see its metrics, slices, fairness and what-if. They move into the list once you upload a run of your own."</p>
            {if shown.is_empty() && filtered {
                view! { <p class="muted">"No demo run matches the filters."</p> }.into_any()
            } else {
                view! { <RunsTable runs=shown state caption="Demo runs" /> }.into_any()
            }}
        </section>
        <h2>"Your runs"</h2>
        <p class="muted" data-testid="runs-count">"No runs of your own yet: "<A href="/upload">"upload one"</A>" (CSV, Parquet or JSON Lines)."</p>
    }
    .into_any()
}

#[component]
fn RunsTable(runs: Vec<RunSummary>, state: RunsQuery, caption: &'static str) -> impl IntoView {
    let navigate = use_navigate();
    let (sorted, dir) = state.effective_sort();
    let header = move |key: SortKey, label: &'static str, class: &'static str| {
        let aria = (key == sorted).then(|| if dir == Dir::Asc { "ascending" } else { "descending" });
        let arrow = match aria {
            Some("ascending") => "▲",
            Some(_) => "▼",
            None => "↕",
        };
        let next = state.toggled(key).url();
        let navigate = navigate.clone();
        view! {
            <th class=class aria-sort=aria>
                <button type="button" class="sort" on:click=move |_| navigate(&next, NavigateOptions { scroll: false, ..Default::default() })>
                    {label}<span class="sort-arrow" aria-hidden="true">{arrow}</span>
                </button>
            </th>
        }
    };
    view! {
        <div class="table-scroll" tabindex="0" role="region" aria-label="Runs">
            <table class="data runs">
                <caption class="sr-only">{format!("{caption}, sorted by {} ({}); the column buttons sort", sorted.as_str(), if dir == Dir::Asc { "ascending" } else { "descending" })}</caption>
                <thead>
                    <tr>
                        {header(SortKey::Name, "Name", "")}
                        {header(SortKey::Task, "Task", "")}
                        <th>"Models"</th>
                        {header(SortKey::Rows, "Rows", "num")}
                        {header(SortKey::Created, "Created (UTC)", "")}
                        {header(SortKey::Project, "Project", "")}
                        <th>"Tags"</th>
                    </tr>
                </thead>
                <tbody>
                    {runs.into_iter().map(|r| {
                        let href = format!("/runs/{}", r.id);
                        view! {
                            <tr>
                                <td><A href=href>{r.name.clone()}</A>{r.source.as_ref().map(|src| view! { " " <span class="chip mono" title="An external run: its rows stay in this dataset">{src.mark()}</span> })}</td>
                                <td>{r.task.as_str()}</td>
                                <td>{r.models.join(", ")}</td>
                                <td class="num">{r.rows.to_string()}</td>
                                <td class="nowrap">{r.created_at.replace('T', " ").trim_end_matches('Z').to_string()}</td>
                                <td>{r.project.clone().map(|p| view! { <a href=format!("/projects/{}", urlencode(&p))>{p.clone()}</a> })}</td>
                                <td>{r.tags.into_iter().map(|t| {
                                    let href = RunsQuery { tag: t.clone(), ..Default::default() }.url();
                                    view! { <a class="chip" href=href>{t}</a> }
                                }).collect_view()}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
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
            source: None,
        }
    }

    fn query(pairs: &[(&str, &str)]) -> RunsQuery {
        RunsQuery::from_params(|k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn search_matches_name_model_and_tag() {
        let r = run("Adult income", &["demo"]);
        assert!(query(&[("q", "adult")]).matches(&r));
        assert!(query(&[("q", "GBT")]).matches(&r));
        assert!(query(&[("tag", "demo")]).matches(&r));
        assert!(!query(&[("q", "wages")]).matches(&r));
        assert!(!query(&[("tag", "prod")]).matches(&r));
    }

    #[test]
    fn filters_by_task_and_project() {
        let mut r = run("Adult income", &[]);
        r.project = Some("adult-income".into());
        assert!(query(&[("task", "binary"), ("project", "adult-income")]).matches(&r));
        assert!(!query(&[("task", "regression")]).matches(&r));
        assert!(!query(&[("project", "wages")]).matches(&r));
        r.project = None;
        assert!(!query(&[("project", "adult-income")]).matches(&r));
    }

    #[test]
    fn sorts_by_the_chosen_column_both_ways() {
        let mk = |name: &str, rows: u64, created: &str| RunSummary { rows, created_at: created.into(), ..run(name, &[]) };
        let runs = vec![mk("b", 10, "2024-01-02"), mk("a", 30, "2024-01-01"), mk("C", 20, "2024-01-03")];
        let names = |q: RunsQuery| q.apply(&runs).into_iter().map(|r| r.name).collect::<Vec<_>>();
        assert_eq!(names(query(&[])), ["C", "b", "a"], "newest first by default");
        assert_eq!(names(query(&[("sort", "name")])), ["a", "b", "C"], "names A to Z, case aside");
        assert_eq!(names(query(&[("sort", "name"), ("dir", "desc")])), ["C", "b", "a"]);
        assert_eq!(names(query(&[("sort", "rows")])), ["a", "C", "b"], "rows: largest first on the first click");
        assert_eq!(names(query(&[("sort", "rows"), ("dir", "asc")])), ["b", "C", "a"]);
        assert_eq!(names(query(&[("sort", "nonsense")])), ["C", "b", "a"]);
    }

    #[test]
    fn urls_leave_out_empty_parameters_and_toggle_the_sort() {
        assert_eq!(query(&[("q", ""), ("task", ""), ("tag", " ")]).url(), "/");
        assert_eq!(query(&[("q", "a b"), ("project", "p1")]).url(), "/?q=a%20b&project=p1");
        let q = query(&[("task", "binary")]);
        assert_eq!(q.toggled(SortKey::Name).url(), "/?task=binary&sort=name&dir=asc");
        assert_eq!(q.toggled(SortKey::Name).toggled(SortKey::Name).url(), "/?task=binary&sort=name&dir=desc");
        assert_eq!(q.toggled(SortKey::Created).url(), "/?task=binary&sort=created&dir=asc", "already newest first by default");
        assert_eq!(q.toggled(SortKey::Rows).url(), "/?task=binary&sort=rows&dir=desc");
    }

    #[test]
    fn demo_runs_are_marked_by_their_tag() {
        assert!(is_demo(&run("Adult income (demo)", &["demo"])));
        assert!(!is_demo(&run("Adult income (demo)", &[])), "the name is not the marker");
    }

    #[test]
    fn urlencode_escapes_reserved() {
        assert_eq!(urlencode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}
