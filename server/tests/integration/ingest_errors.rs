//! Every malformed file in `testdata/bad` gets a clear error naming the line and column.

use strata_app::model::{IngestSpec, Task};
use strata_server::ingest::{IngestError, ingest_file};

use crate::helpers::{demo, testdata};

fn err(file: &str) -> (String, serde_json::Value) {
    let path = testdata().join("bad").join(file);
    let spec = IngestSpec { name: "t".into(), ..Default::default() };
    let e = ingest_file(&path, file, &spec).expect_err(file);
    (e.to_string(), e.detail())
}

fn problems(detail: &serde_json::Value) -> Vec<(Option<u64>, Option<String>, String)> {
    detail["problems"]
        .as_array()
        .map(|ps| ps.iter().map(|p| (p["line"].as_u64(), p["column"].as_str().map(String::from), p["message"].as_str().unwrap().to_string())).collect())
        .unwrap_or_default()
}

#[test]
fn ragged_rows_name_each_line() {
    let (msg, d) = err("ragged_rows.csv");
    let p = problems(&d);
    assert_eq!(p.len(), 2, "{msg}");
    assert_eq!(p[0].0, Some(3));
    assert!(p[0].2.contains("8 fields, the header has 9"), "{msg}");
    assert_eq!(p[1].0, Some(5));
    assert!(p[1].2.contains("11 fields"), "{msg}");
    assert!(msg.starts_with("ragged_rows.csv: line 3:"), "{msg}");
}

#[test]
fn scores_outside_unit_interval_nan_and_inf() {
    let (msg, d) = err("score_out_of_range.csv");
    let p = problems(&d);
    let lines: Vec<u64> = p.iter().map(|x| x.0.unwrap()).collect();
    assert_eq!(lines, vec![3, 4, 5, 6], "{msg}");
    assert!(p.iter().all(|x| x.1.as_deref() == Some("score_logreg")));
    assert!(p[0].2.contains("NaN") && p[1].2.contains("1.7") && p[2].2.contains("-0.2") && p[3].2.contains("inf"), "{p:?}");
}

#[test]
fn labels_that_fit_no_task() {
    let (msg, d) = err("label_invalid.csv");
    let p = problems(&d);
    let got: Vec<(u64, &str)> = p.iter().map(|x| (x.0.unwrap(), x.1.as_deref().unwrap())).collect();
    assert_eq!(got, vec![(3, "label"), (5, "label"), (6, "label")], "{msg}");
    assert!(p[0].2.contains("'maybe'") && p[1].2.contains("'2'") && p[2].2.contains("missing"), "{p:?}");
}

#[test]
fn duplicate_column_names() {
    let (msg, _) = err("duplicate_columns.csv");
    assert!(msg.contains("line 1") && msg.contains("'age'") && msg.contains("columns 3 and 10"), "{msg}");
}

#[test]
fn empty_and_header_only() {
    assert!(err("empty.csv").0.contains("the file is empty"));
    assert!(err("header_only.csv").0.contains("no data rows"));
}

#[test]
fn not_utf8_names_line_and_column() {
    let (msg, _) = err("not_utf8.csv");
    assert!(msg.contains("line 4") && msg.contains("'native_country'") && msg.contains("0xFA") && msg.contains("UTF-8"), "{msg}");
}

#[test]
fn broken_json_line() {
    let (msg, d) = err("broken_line.jsonl");
    let p = problems(&d);
    assert_eq!(p.len(), 1, "{msg}");
    assert_eq!(p[0].0, Some(4));
    assert!(p[0].2.contains("not valid JSON"), "{msg}");
}

#[test]
fn missing_label_column_lists_the_columns() {
    let (msg, _) = err("missing_label_column.csv");
    assert!(msg.contains("no label column") && msg.contains("score_logreg"), "{msg}");
}

#[test]
fn duplicate_ids() {
    let (msg, _) = err("duplicate_example_id.csv");
    assert!(msg.contains("line 6") && msg.contains("'example_id'") && msg.contains("adult-00001") && msg.contains("first on line 3"), "{msg}");
}

#[test]
fn bad_timestamps() {
    let (msg, d) = err("bad_timestamp.csv");
    let p = problems(&d);
    assert_eq!(p.len(), 2, "{msg}");
    assert_eq!((p[0].0, p[0].1.as_deref()), (Some(3), Some("timestamp")));
    assert!(p[0].2.contains("'yesterday' is not a timestamp"), "{msg}");
    assert_eq!(p[1].0, Some(4));
    assert!(p[1].2.contains("not a valid date"), "{msg}");
}

#[test]
fn text_in_a_numeric_column() {
    let (msg, _) = err("numeric_column_text.csv");
    assert!(msg.contains("line 4") && msg.contains("'age'") && msg.contains("'thirty-nine' is not a number"), "{msg}");
}

#[test]
fn truncated_parquet() {
    let (msg, _) = err("truncated.parquet");
    assert!(msg.starts_with("truncated.parquet:") && msg.contains("not a readable Parquet file"), "{msg}");
}

#[test]
fn parquet_with_a_csv_name_is_read_as_parquet() {
    // The magic bytes decide, not the extension: the file is valid, so it is accepted.
    let path = testdata().join("bad/parquet_named.csv");
    let spec = IngestSpec { name: "t".into(), ..Default::default() };
    let ing = ingest_file(&path, "parquet_named.csv", &spec).unwrap();
    assert_eq!(ing.task, Task::Binary);
    assert!(ing.frame.height() > 0);
}

#[test]
fn spec_naming_a_missing_column() {
    let path = demo().join("adult/eval.csv");
    let spec = IngestSpec { name: "t".into(), label: Some("income".into()), ..Default::default() };
    let e = ingest_file(&path, "eval.csv", &spec).unwrap_err();
    assert!(matches!(e, IngestError::Spec(_)));
    assert!(e.to_string().contains("the label column 'income' is not in the file"), "{e}");
}

#[test]
fn semicolon_csv_is_sniffed() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("semi.csv");
    std::fs::write(&p, "label;score;city\n1;0.8;\"Paris; FR\"\n0;0.3;Lyon\n").unwrap();
    let ing = ingest_file(&p, "semi.csv", &IngestSpec { name: "s".into(), ..Default::default() }).unwrap();
    assert_eq!(ing.frame.width(), 3);
    assert_eq!(ing.frame.column("city").unwrap().str().unwrap().get(0), Some("Paris; FR"));
}

#[test]
fn binary_data_is_not_a_csv() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("image.csv");
    std::fs::write(&p, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0").unwrap();
    let e = ingest_file(&p, "image.csv", &IngestSpec { name: "x".into(), ..Default::default() }).unwrap_err();
    assert!(e.to_string().contains("image.csv: not a CSV, Parquet or JSON Lines file"), "{e}");
}

fn ingest_text(name: &str, text: &str) -> Result<strata_server::ingest::Ingested, IngestError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    ingest_file(&path, name, &IngestSpec { name: "t".into(), ..Default::default() })
}

/// Per-class probability columns make a multiclass model even when the classes are integer
/// codes; ingest adds the model's predicted class (argmax); bad probabilities name line and column.
#[test]
fn per_class_score_columns() {
    let ok = "label,age,prob_0,prob_1,prob_2\n0,30,0.7,0.2,0.1\n2,41,0.1,0.3,0.6\n1,25,0.2,0.5,0.3\n1,33,0.5,0.4,0.1\n";
    let ing = ingest_text("codes.csv", ok).unwrap();
    assert_eq!(ing.task, Task::Multiclass);
    assert_eq!(ing.roles.scores, vec!["prob"]);
    let predicted: Vec<&str> = ing.frame.column("prob").unwrap().str().unwrap().iter().flatten().collect();
    assert_eq!(predicted, vec!["0", "2", "1", "0"]);
    assert_eq!(ing.roles.role_of("prob_1"), Some(strata_app::model::Role::Score));

    let bad = "label,prob_a,prob_b\na,0.7,0.3\nb,1.4,0.2\na,,0.5\n";
    let e = ingest_text("bad.csv", bad).unwrap_err();
    let p = problems(&e.detail());
    assert_eq!(p.iter().map(|x| (x.0.unwrap(), x.1.clone().unwrap())).collect::<Vec<_>>(), vec![(3, "prob_a".to_string()), (4, "prob_a".to_string())], "{e}");
    assert!(p[0].2.contains("1.4 is outside [0, 1]") && p[1].2.contains("missing"), "{p:?}");

    // A probability column that covers only some classes is no predicted class either.
    let partial = "label,prob_a,pred\na,0.7,a\nb,0.2,b\nc,0.5,a\n";
    let e = ingest_text("partial.csv", partial).unwrap_err().to_string();
    assert!(e.contains("prob_a") && e.contains("<model>_<class>"), "{e}");

    // The derived column may not overwrite one of the file's own.
    let clash = "label,prob,prob_a,prob_b\na,x,0.7,0.3\nb,y,0.2,0.8\n";
    let e = ingest_text("clash.csv", clash).unwrap_err().to_string();
    assert!(e.contains("already has a column") && e.contains("'prob'"), "{e}");
}
