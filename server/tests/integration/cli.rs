//! The `strata` binary's `ingest` command: same database as the server, clear errors, exit codes.

use std::process::Command;

use crate::helpers::shared_data;

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
        .arg(shared_data().join("wages/eval.csv"))
        .args(["--name", "wages-cli", "--label", "label", "--score", "prediction_linear", "--score", "prediction_gbt"])
        .args(["--id", "example_id", "--timestamp", "timestamp", "--tag", "cli"])
        .arg("--model")
        .arg(shared_data().join("wages/model_linear.onnx"))
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
        .arg(shared_data().join("bad/numeric_column_text.csv"))
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
