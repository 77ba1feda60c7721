//! The upload page's second form: register an external run (a Parquet dataset on the server's
//! machine, or a table or files in Spark) whose rows stay where they are.
//!
//! It sends the JSON body of the API (`RegisterRun`) to `POST /api/v1/runs`, the endpoint and the
//! permission rule the CLI's `strata register` and any API client use; nothing here is new on the
//! server.

use leptos::prelude::*;
use leptos_router::{NavigateOptions, hooks::use_navigate};

use super::{created_id, post_json};
use crate::components::ErrorBox;
use crate::model::{RegisterRun, RunSource, SparkSource};
use crate::pages::runs::urlencode;

/// Where the rows are: the two kinds of `RunSource`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SourceKind {
    Parquet,
    Spark,
}

/// The form's fields as typed, before they are checked.
#[derive(Clone, Debug, Default, PartialEq)]
struct RegisterForm {
    spark: bool,
    parquet_path: String,
    remote: String,
    table: String,
    spark_path: String,
    format: String,
    label: String,
    scores: String,
    name: String,
    project: String,
    version: String,
}

/// Spark's file formats for a path, the first the default (as `SparkSource::format`).
const SPARK_FORMATS: [&str; 3] = ["parquet", "delta", "orc"];

#[component]
pub fn RegisterExternal() -> impl IntoView {
    let kind = RwSignal::new(SourceKind::Parquet);
    let parquet_path = RwSignal::new(String::new());
    let remote = RwSignal::new(String::new());
    let table = RwSignal::new(String::new());
    let spark_path = RwSignal::new(String::new());
    let format = RwSignal::new(SPARK_FORMATS[0].to_string());
    let label = RwSignal::new(String::new());
    let scores = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let project = RwSignal::new(String::new());
    let version = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let navigate = use_navigate();

    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let form = RegisterForm {
            spark: kind.get_untracked() == SourceKind::Spark,
            parquet_path: parquet_path.get_untracked(),
            remote: remote.get_untracked(),
            table: table.get_untracked(),
            spark_path: spark_path.get_untracked(),
            format: format.get_untracked(),
            label: label.get_untracked(),
            scores: scores.get_untracked(),
            name: name.get_untracked(),
            project: project.get_untracked(),
            version: version.get_untracked(),
        };
        let reg = match registration(&form) {
            Ok(reg) => reg,
            Err(why) => {
                error.set(Some(why));
                return;
            }
        };
        error.set(None);
        busy.set(true);
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match register(&reg).await {
                Ok(id) => navigate(&format!("/runs/{}", urlencode(&id)), NavigateOptions::default()),
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };

    view! {
        <section class="register" aria-labelledby="register-heading">
            <h2 id="register-heading">"Register an external run (its rows stay where they are)"</h2>
            <p class="muted">
                "Strata stores the dataset's schema, row count, roles and column summaries, never its rows: "
                "a view reads them where they are when it needs them. Views that need single rows "
                "(examples, what-if, drift…) are not available for an external run yet."
            </p>
            <form class="register" on:submit=on_submit>
                <fieldset class="source-kind">
                    <legend>"Where the rows are"</legend>
                    <label>
                        <input type="radio" name="source" value="parquet"
                            prop:checked=move || kind.get() == SourceKind::Parquet
                            on:change=move |_| kind.set(SourceKind::Parquet) />
                        " Parquet dataset"
                    </label>
                    <label>
                        <input type="radio" name="source" value="spark"
                            prop:checked=move || kind.get() == SourceKind::Spark
                            on:change=move |_| kind.set(SourceKind::Spark) />
                        " Spark (Spark Connect)"
                    </label>
                </fieldset>
                {move || match kind.get() {
                    SourceKind::Parquet => view! {
                        <div class="fields">
                            <Field label="Dataset path" name="path" value=parquet_path required=true
                                placeholder="/data/preds/ or /data/preds/*.parquet"
                                hint="A file, a directory (read recursively; hive partitions become columns) or a glob. \
                                      The server reads it on its own machine, not from your browser: in team mode only \
                                      under a directory an admin allowed (strata serve --external-root)." />
                        </div>
                    }.into_any(),
                    SourceKind::Spark => view! {
                        <div class="fields">
                            <Field label="Spark address" name="remote" value=remote required=true
                                placeholder="sc://spark.internal:15002"
                                hint="Spark Connect's address. A token goes in the address: sc://host:15002/;token=…;use_ssl=true \
                                      — the server seals it and stores it apart from the run; no page shows it again. \
                                      The host must be one the server may call (STRATA_OUTBOUND_ALLOW)." />
                            <Field label="Table" name="table" value=table placeholder="db.preds"
                                hint="A catalog table or view; or leave it empty and give a path." />
                            <Field label="Path Spark reads" name="spark_path" value=spark_path placeholder="s3://bucket/preds/"
                                hint="Files in Spark's path syntax; in team mode a local path must lie under an --external-root." />
                            <div class="field">
                                <label>
                                    <span>"Format of the files"</span>
                                    <select name="format" aria-describedby="register-format-hint" on:change=move |ev| format.set(event_target_value(&ev))>
                                        {SPARK_FORMATS.into_iter().map(|f| view! {
                                            <option value=f selected=move || format.get() == f>{f}</option>
                                        }).collect_view()}
                                    </select>
                                </label>
                                <small id="register-format-hint" class="muted">"With a path: parquet (default), delta or orc."</small>
                            </div>
                        </div>
                    }.into_any(),
                }}
                <div class="fields">
                    <Field label="Label column" name="label" value=label placeholder="label" />
                    <Field label="Score columns" name="scores" value=scores placeholder="score_logreg, score_gbt"
                        hint="Comma-separated, one per model. Left empty, the label and scores are inferred from the column names." />
                </div>
                <div class="fields">
                    <Field label="Name" name="name" value=name placeholder="default: the path's last part" />
                    <Field label="Project" name="project" value=project placeholder="optional, e.g. adult-income" />
                    <Field label="Model version" name="version" value=version placeholder="optional, e.g. v7" />
                </div>
                <div class="row">
                    <button type="submit" disabled=move || busy.get()>"Register run"</button>
                    {move || busy.get().then(|| view! { <span class="muted" role="status">"Reading the dataset's schema and first rows…"</span> })}
                </div>
                {move || error.get().map(|e| view! { <ErrorBox message=e /> })}
            </form>
        </section>
    }
}

/// A labelled text input bound to `value`; `hint`, when given, is read with the label.
#[component]
fn Field(
    label: &'static str,
    name: &'static str,
    value: RwSignal<String>,
    #[prop(optional)] placeholder: &'static str,
    #[prop(optional)] hint: &'static str,
    #[prop(optional)] required: bool,
) -> impl IntoView {
    let hint_id = format!("register-{name}-hint");
    let described = (!hint.is_empty()).then(|| hint_id.clone());
    // The hint stays outside the label: it describes the field, it is not its name.
    view! {
        <div class="field">
            <label>
                <span>{label}</span>
                <input type="text" name=name placeholder=placeholder required=required aria-describedby=described
                    spellcheck="false" autocomplete="off"
                    prop:value=move || value.get()
                    on:input=move |ev| value.set(event_target_value(&ev)) />
            </label>
            {(!hint.is_empty()).then(|| view! { <small id=hint_id class="muted">{hint}</small> })}
        </div>
    }
}

/// The API's body for the form, or why it cannot be sent yet (the checks the server would make
/// first; everything else, such as whether the path exists, is the server's to say).
fn registration(f: &RegisterForm) -> Result<RegisterRun, String> {
    let text = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let source = if f.spark {
        let remote = text(&f.remote).ok_or("Give the Spark Connect address (sc://host:port).")?;
        if !remote.starts_with("sc://") {
            return Err(format!("A Spark Connect address starts with sc:// (not '{remote}')."));
        }
        let (table, path) = (text(&f.table), text(&f.spark_path));
        if table.is_some() == path.is_some() {
            return Err("Give either a table or a path for Spark to read, not both.".into());
        }
        // The format goes only with a path, and parquet is the server's default.
        let format = path.as_ref().and(text(&f.format)).filter(|fmt| fmt != SPARK_FORMATS[0]);
        RunSource::Spark(SparkSource { remote, table, path, format, schema: vec![] })
    } else {
        RunSource::Parquet(text(&f.parquet_path).ok_or("Give the dataset's path on the server.")?)
    };
    let scores: Vec<String> = f.scores.split(',').filter_map(text).collect();
    Ok(RegisterRun {
        name: text(&f.name),
        label: text(&f.label),
        scores: (!scores.is_empty()).then_some(scores),
        project: text(&f.project),
        version: text(&f.version),
        source: Some(source),
        ..Default::default()
    })
}

/// Registers the run (`POST /api/v1/runs`, JSON); its id, or the server's error as text.
async fn register(reg: &RegisterRun) -> Result<String, String> {
    let body = serde_json::to_string(reg).map_err(|e| e.to_string())?;
    let (status, text) = post_json("/api/v1/runs", &body).await?;
    created_id(status, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parquet(path: &str) -> RegisterForm {
        RegisterForm { parquet_path: path.into(), format: "parquet".into(), ..Default::default() }
    }

    fn spark(remote: &str, table: &str, path: &str, format: &str) -> RegisterForm {
        RegisterForm { spark: true, remote: remote.into(), table: table.into(), spark_path: path.into(), format: format.into(), ..Default::default() }
    }

    #[test]
    fn a_parquet_registration_is_the_apis_body() {
        let mut f = parquet(" /data/adult/eval.parquet ");
        f.label = " label ".into();
        f.scores = "score_logreg, score_gbt,".into();
        f.project = "adult-income".into();
        f.version = " ".into();
        let reg = registration(&f).unwrap();
        let json = serde_json::to_value(&reg).unwrap();
        assert_eq!(json["source"], serde_json::json!({"parquet": "/data/adult/eval.parquet"}));
        assert_eq!(json["label"], "label");
        assert_eq!(json["scores"], serde_json::json!(["score_logreg", "score_gbt"]));
        assert_eq!(json["project"], "adult-income");
        assert!(json["version"].is_null() && json["name"].is_null(), "empty fields are left to the server");
        // What the server reads back is what was meant.
        assert_eq!(serde_json::from_value::<RegisterRun>(json).unwrap(), reg);
    }

    #[test]
    fn empty_roles_are_left_to_inference() {
        let reg = registration(&parquet("/d")).unwrap();
        assert_eq!((reg.label, reg.scores), (None, None));
    }

    #[test]
    fn a_parquet_registration_needs_a_path() {
        assert_eq!(registration(&parquet("  ")).unwrap_err(), "Give the dataset's path on the server.");
    }

    #[test]
    fn spark_needs_an_address_and_a_table_or_a_path() {
        let table = registration(&spark("sc://h:15002/;token=t", " db.preds ", "", "delta")).unwrap();
        let Some(RunSource::Spark(s)) = table.source else { panic!("a Spark source") };
        assert_eq!((s.remote.as_str(), s.table.as_deref(), s.path, s.format), ("sc://h:15002/;token=t", Some("db.preds"), None, None), "no format with a table");
        let files = registration(&spark("sc://h:15002", "", "s3://b/p/", "delta")).unwrap();
        let Some(RunSource::Spark(s)) = files.source else { panic!("a Spark source") };
        assert_eq!((s.path.as_deref(), s.format.as_deref()), (Some("s3://b/p/"), Some("delta")));
        let parquet_files = registration(&spark("sc://h:15002", "", "/p", "parquet")).unwrap();
        let Some(RunSource::Spark(s)) = parquet_files.source else { panic!("a Spark source") };
        assert_eq!(s.format, None, "parquet is the default");

        assert_eq!(registration(&spark(" ", "t", "", "parquet")).unwrap_err(), "Give the Spark Connect address (sc://host:port).");
        assert_eq!(registration(&spark("h:15002", "t", "", "parquet")).unwrap_err(), "A Spark Connect address starts with sc:// (not 'h:15002').");
        let either = "Give either a table or a path for Spark to read, not both.";
        assert_eq!(registration(&spark("sc://h", "", "", "parquet")).unwrap_err(), either);
        assert_eq!(registration(&spark("sc://h", "t", "/p", "parquet")).unwrap_err(), either);
    }
}
