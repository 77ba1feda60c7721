//! The demo runs loaded into an empty database on first start: UCI Adult (binary) and GSS wages
//! (regression), each with its two models' scores and ONNX files. Shipped inside the binary.
//! Each is the first run (`v1`) of a project with a few validation gates, validated once.

use strata_app::model::IngestSpec;

use crate::service::{AppState, Attachment, ServiceError};

struct DemoRun {
    name: &'static str,
    file: &'static str,
    data: &'static [u8],
    scores: [&'static str; 2],
    models: [(&'static str, &'static [u8], &'static str); 2],
    model_card: &'static [u8],
    project: &'static str,
    /// The project's first gates (JSON `GateSet`).
    gates: &'static str,
}

const DEMOS: [DemoRun; 2] = [
    DemoRun {
        name: "Adult income (demo)",
        file: "adult-eval.parquet",
        data: include_bytes!("../../demo/adult/eval.parquet"),
        scores: ["score_logreg", "score_gbt"],
        models: [
            ("model_logreg.onnx", include_bytes!("../../demo/adult/model_logreg.onnx"), "score_logreg"),
            ("model_gbt.onnx", include_bytes!("../../demo/adult/model_gbt.onnx"), "score_gbt"),
        ],
        model_card: include_bytes!("../../demo/adult/models.json"),
        project: "adult-income",
        gates: r#"{"gates": [
            {"metric": "auc_roc", "min": 0.85},
            {"metric": "auc_roc", "slice": "race", "min": 0.8, "significant_drop": true},
            {"metric": "accuracy", "slice": "sex", "max_drop": 0.02},
            {"metric": "fpr", "slice": "sex", "max_gap_increase": 0.02}
        ]}"#,
    },
    DemoRun {
        name: "GSS wages (demo)",
        file: "wages-eval.parquet",
        data: include_bytes!("../../demo/wages/eval.parquet"),
        scores: ["prediction_linear", "prediction_gbt"],
        models: [
            ("model_linear.onnx", include_bytes!("../../demo/wages/model_linear.onnx"), "prediction_linear"),
            ("model_gbt.onnx", include_bytes!("../../demo/wages/model_gbt.onnx"), "prediction_gbt"),
        ],
        model_card: include_bytes!("../../demo/wages/models.json"),
        project: "gss-wages",
        gates: r#"{"gates": [
            {"metric": "r2", "min": 0.2},
            {"metric": "mae", "slice": "gender", "significant_drop": true}
        ]}"#,
    },
];

/// Loads the demo runs if the database holds no run at all; returns how many were loaded.
pub async fn load_if_empty(state: &AppState) -> Result<usize, ServiceError> {
    if state.store.count_runs().await? > 0 {
        return Ok(0);
    }
    for demo in &DEMOS {
        let mut tmp = tempfile::NamedTempFile::new_in(&state.tmp_dir)
            .map_err(|e| ServiceError::BadRequest(format!("temp file: {e}")))?;
        std::io::Write::write_all(&mut tmp, demo.data).map_err(|e| ServiceError::BadRequest(format!("temp file: {e}")))?;
        let spec = IngestSpec {
            name: demo.name.to_string(),
            label: Some("label".into()),
            scores: Some(demo.scores.iter().map(|s| s.to_string()).collect()),
            id: Some("example_id".into()),
            timestamp: Some("timestamp".into()),
            tags: vec!["demo".into()],
            project: Some(demo.project.into()),
            version: Some("v1".into()),
            ..Default::default()
        };
        let mut attachments: Vec<Attachment> = demo
            .models
            .iter()
            .map(|(name, bytes, score)| Attachment {
                name: name.to_string(),
                media_type: "application/onnx".into(),
                model: Some(score.to_string()),
                content: bytes.to_vec(),
            })
            .collect();
        attachments.push(Attachment { name: "models.json".into(), media_type: "application/json".into(), model: None, content: demo.model_card.to_vec() });
        let id = state.ingest(tmp.path(), demo.file, spec, attachments).await?;
        let gates = serde_json::from_str(demo.gates).map_err(|e| ServiceError::BadRequest(format!("demo gates: {e}")))?;
        state.put_gates(demo.project, gates).await?;
        let v = state.validate(demo.project, &id, None).await?;
        tracing::info!(run = %id, name = demo.name, project = demo.project, passed = v.passed, "loaded demo run");
    }
    Ok(DEMOS.len())
}
