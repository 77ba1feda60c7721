//! The `strata` binary's `ingest` command: same database as the server, clear errors, exit codes.

use std::process::Command;

use crate::helpers::{demo, testdata};

fn strata(data_dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_strata"));
    c.env_remove("DATABASE_URL").env("STRATA_DATA_DIR", data_dir).env("RUST_LOG", "warn");
    c
}

#[tokio::test]
async fn ingest_prints_the_id_and_the_run_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let out = strata(dir.path())
        .args(["ingest"])
        .arg(demo().join("wages/eval.csv"))
        .args(["--name", "wages-cli", "--label", "label", "--score", "prediction_linear", "--score", "prediction_gbt"])
        .args(["--id", "example_id", "--timestamp", "timestamp", "--tag", "cli"])
        .arg("--model")
        .arg(demo().join("wages/model_linear.onnx"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(id.len(), 12, "prints just the id: {id:?}");

    // The server's store (same data directory) sees it.
    let store = strata_server::store::Store::connect(&strata_server::settings::DatabaseTarget::Sqlite(dir.path().join("strata.db"))).await.unwrap();
    let run = store.get_run(&id).await.unwrap().expect("stored");
    assert_eq!(run.summary.name, "wages-cli");
    assert_eq!(run.summary.rows, 10_000);
    assert_eq!(run.summary.tags, vec!["cli"]);
    assert_eq!(run.attachments[0].name, "model_linear.onnx");
}

#[test]
fn a_bad_file_fails_with_a_clear_message_and_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let out = strata(dir.path())
        .args(["ingest"])
        .arg(testdata().join("bad/numeric_column_text.csv"))
        .args(["--name", "bad"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("numeric_column_text.csv: line 4, column 'age': 'thirty-nine' is not a number"), "{err}");
}

#[test]
fn help_lists_the_commands() {
    let out = Command::new(env!("CARGO_BIN_EXE_strata")).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("serve") && text.contains("ingest"), "{text}");
}

/// `strata validate` on the local database and against a running server: exit code 1 when a gate
/// fails (naming the slice), 0 when all pass, 2 when the run cannot be validated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_exits_non_zero_when_a_slice_fails_its_gate() {
    use crate::projects::{demo_frame, gates, parquet, worse_for};
    let dir = tempfile::tempdir().unwrap();
    let base = demo_frame();
    let mut ids = vec![];
    for (name, mut df, version) in [("v1", base.clone(), "v1"), ("v2", worse_for(&base, "Black"), "v2")] {
        let file = dir.path().join(format!("{name}.parquet"));
        std::fs::write(&file, parquet(&mut df)).unwrap();
        let out = strata(dir.path())
            .arg("ingest")
            .arg(&file)
            .args(["--name", name, "--label", "label", "--score", "score_logreg", "--score", "score_gbt", "--timestamp", "timestamp"])
            .args(["--project", "adult", "--model-version", version])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        ids.push(String::from_utf8(out.stdout).unwrap().trim().to_string());
    }
    // Gates as code: saved from a file, printed back with their version.
    let gates_file = dir.path().join("gates.json");
    std::fs::write(&gates_file, gates().to_string()).unwrap();
    let out = strata(dir.path()).args(["gates", "--project", "adult", "--file"]).arg(&gates_file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let saved: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(saved["version"], 1);
    std::fs::write(&gates_file, r#"{"gates": [{"metric": "auc", "min": 1}]}"#).unwrap();
    let out = strata(dir.path()).args(["gates", "--project", "adult", "--file"]).arg(&gates_file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown metric 'auc'"), "{}", String::from_utf8_lossy(&out.stderr));
    let target = strata_server::settings::DatabaseTarget::Sqlite(dir.path().join("strata.db"));
    let store = strata_server::store::Store::connect(&target).await.unwrap();

    let validate = |run: &str, extra: &[&str]| strata(dir.path()).args(["validate", "--project", "adult", "--run", run]).args(extra).output().unwrap();
    let out = validate(&ids[1], &[]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let failing: Vec<&str> = text.lines().filter(|l| l.trim_start().starts_with("FAIL  race=") || l.trim_start().starts_with("FAIL  sex=")).collect();
    assert_eq!(failing.len(), 1, "{text}");
    assert!(failing[0].contains("race=Black"), "{text}");
    assert!(text.trim_end().ends_with("FAILED: 1 failing slice(s)"), "{text}");
    let out = validate(&ids[0], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let out = validate("nosuchrun", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no run with id 'nosuchrun'"));

    // The same through a running server (what a CI pipeline would call), as JSON.
    let state = strata_server::service::AppState::new(store, 64 << 20, strata_server::settings::Limits::default(), dir.path().join("tmp"));
    std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
    let router = strata_server::router(state, strata_server::leptos_options(dir.path(), "127.0.0.1:0".parse().unwrap()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let out = tokio::task::spawn_blocking({
        let (server, run) = (server.clone(), ids[1].clone());
        let dir = dir.path().to_path_buf();
        move || strata(&dir).args(["validate", "--project", "adult", "--run", &run, "--server", &server, "--json"]).output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["passed"], false);
    assert_eq!(v["baseline_run"], ids[0].as_str());
    assert!(v["failures"][0].as_str().unwrap().starts_with("auc_roc on race=Black"), "{v}");
    let printed = tokio::task::spawn_blocking({
        let (dir, server) = (dir.path().to_path_buf(), server.clone());
        move || strata(&dir).args(["gates", "--project", "adult", "--server", &server]).output().unwrap()
    })
    .await
    .unwrap();
    assert!(printed.status.success(), "{}", String::from_utf8_lossy(&printed.stderr));
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&printed.stdout).unwrap()["gates"]["gates"][1]["slice"], "race");
    let out = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || strata(&dir).args(["validate", "--project", "nope", "--run", "x", "--server", &server]).output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("404"), "{}", String::from_utf8_lossy(&out.stderr));
}
