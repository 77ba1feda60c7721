//! ONNX models run in-process with tract (pure Rust: no system library, works offline).
//!
//! Supported tabular shapes: one input per column (`[N, 1]` or `[N]`; float, double or int64 for
//! numbers, string for categories, which the model's own encoder ops such as
//! `ai.onnx.ml.CategoryMapper` turn into numbers), or one float input `[N, k]` holding k numeric
//! columns, named in the order given by the caller (from the run's `models.json`, else the run's
//! numeric features in order). The output is the one named `probability`, else the first; a
//! `[N, 2]` output is read as (P(0), P(1)) and gives P(1).

use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

use super::{Batch, Model, ModelError, Values};

/// How the model's inputs are fed.
#[derive(Clone, Debug)]
enum Layout {
    /// One tensor per column: (input name, element type).
    PerColumn(Vec<(String, DatumType, usize)>),
    /// One float tensor of these columns, in order.
    Matrix { dt: DatumType, columns: Vec<String> },
}

/// A loaded, optimised ONNX model.
pub struct OnnxModel {
    name: String,
    plan: Arc<TypedRunnableModel>,
    layout: Layout,
    output: usize,
    /// The column of a `[N, C]` probability output that is the positive class (label 1).
    positive: usize,
    trees: Option<super::Trees>,
}

fn load_err(name: &str, e: impl std::fmt::Display) -> ModelError {
    ModelError::Load { model: name.to_string(), why: e.to_string() }
}

impl OnnxModel {
    /// Loads `bytes` as the model producing score column `name`. `matrix_columns` names the
    /// columns of a single `[N, k]` input, when the model has one.
    pub fn load(name: &str, bytes: &[u8], matrix_columns: Option<Vec<String>>) -> Result<OnnxModel, ModelError> {
        let onnx = tract_onnx::onnx();
        let mut proto = onnx.proto_model_for_read(&mut &bytes[..]).map_err(|e| load_err(name, format!("{e:#}")))?;
        let trees = tree_ensemble(&proto, matrix_columns.as_deref());
        super::onnx_ml::rewrite(&mut proto).map_err(|e| load_err(name, e))?;
        let positive = positive_column(&proto);
        let mut model = onnx.model_for_proto_model(&proto).map_err(|e| load_err(name, format!("{e:#}")))?;
        let batch = model.symbols.sym("N");
        let inputs = model.input_outlets().map_err(|e| load_err(name, e))?.to_vec();
        let mut per_column = Vec::new();
        for (i, outlet) in inputs.iter().enumerate() {
            let node_name = model.node(outlet.node).name.clone();
            let fact = model.outlet_fact(*outlet).map_err(|e| load_err(name, e))?.clone();
            let dt = fact.datum_type.concretize().ok_or_else(|| load_err(name, format!("input '{node_name}' has no element type")))?;
            let rank = fact.shape.rank().concretize().unwrap_or(2) as usize;
            let width = fact.shape.dims().nth(1).and_then(|d| d.concretize()).and_then(|d| d.to_i64().ok()).unwrap_or(1) as usize;
            // Fix the batch dimension to a symbol so one optimised plan serves every batch size.
            let shape: TVec<TDim> = if rank <= 1 { tvec![batch.clone().into()] } else { tvec![batch.clone().into(), (width as i64).into()] };
            model.set_input_fact(i, InferenceFact::dt_shape(dt, shape)).map_err(|e| load_err(name, e))?;
            per_column.push((node_name, dt, rank));
        }
        let layout = match (per_column.as_slice(), &matrix_columns) {
            ([(input, dt, 2)], _) if is_matrix(&model, &inputs) => {
                let columns = matrix_columns.ok_or_else(|| load_err(name, format!("its one input '{input}' holds several columns; name them in models.json")))?;
                Layout::Matrix { dt: *dt, columns }
            }
            _ => Layout::PerColumn(per_column),
        };
        let output_names: Vec<String> = model.output_outlets().map_err(|e| load_err(name, e))?.iter().map(|o| model.node(o.node).name.clone()).collect();
        let typed = model.into_optimized().map_err(|e| load_err(name, format!("{e:#} (the model uses an operator or input type tract cannot run)")))?;
        let types: Vec<Option<DatumType>> = typed.output_outlets().map_err(|e| load_err(name, e))?.iter().map(|o| typed.outlet_fact(*o).ok().map(|f| f.datum_type)).collect();
        let output = choose_output(&output_names, &types).map_err(|why| load_err(name, why))?;
        let plan = typed.into_runnable().map_err(|e| load_err(name, format!("{e:#} (the model uses an operator or input type tract cannot run)")))?;
        Ok(OnnxModel { name: name.to_string(), plan, layout, output, positive, trees })
    }
}

/// The model card of an ONNX file (see [`strata_app::model::ModelCard`]): read from the protobuf,
/// then loaded to learn whether and how it runs. `file`, `model`, `called` and `bytes` are the
/// caller's to fill.
pub fn card(bytes: &[u8], matrix_columns: Option<Vec<String>>) -> Result<strata_app::model::ModelCard, String> {
    use strata_app::model::{ModelCard, TensorInfo};
    use tract_onnx::pb::type_proto::Value as Type;
    let proto = tract_onnx::onnx().proto_model_for_read(&mut &bytes[..]).map_err(|e| format!("not an ONNX model: {e:#}"))?;
    let graph = proto.graph.as_ref().ok_or("the file has no graph")?;
    const TYPES: [&str; 17] = ["undefined", "float", "uint8", "int8", "uint16", "int16", "int32", "int64", "string", "bool", "float16", "double", "uint32", "uint64", "complex64", "complex128", "bfloat16"];
    let describe = |v: &tract_onnx::pb::ValueInfoProto| {
        let (dtype, shape) = match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(Type::TensorType(t)) => (
                TYPES.get(t.elem_type as usize).copied().unwrap_or("other").to_string(),
                t.shape.as_ref().map(|s| s.dim.iter().map(|d| match &d.value {
                    Some(tract_onnx::pb::tensor_shape_proto::dimension::Value::DimValue(n)) => n.to_string(),
                    Some(tract_onnx::pb::tensor_shape_proto::dimension::Value::DimParam(p)) if !p.is_empty() => p.clone(),
                    _ => "N".to_string(),
                }).collect()).unwrap_or_default(),
            ),
            // tract's protobuf keeps tensor types only: a ZipMap's sequence of maps reads as none.
            _ => ("sequence or map".to_string(), vec![]),
        };
        TensorInfo { name: v.name.clone(), dtype, shape }
    };
    let initialized: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let mut operators: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for n in &graph.node {
        *operators.entry(if n.domain.is_empty() { n.op_type.clone() } else { format!("{}.{}", n.domain, n.op_type) }).or_default() += 1;
    }
    let mut rewritten_proto = proto.clone();
    let rewritten = super::onnx_ml::rewrite(&mut rewritten_proto).unwrap_or_default();
    let loaded = OnnxModel::load("card", bytes, matrix_columns);
    let outputs: Vec<TensorInfo> = graph.output.iter().map(describe).collect();
    Ok(ModelCard {
        file: String::new(),
        model: None,
        called: String::new(),
        bytes: bytes.len() as u64,
        producer: format!("{} {}", proto.producer_name, proto.producer_version).trim().to_string(),
        opsets: proto.opset_import.iter().map(|o| (if o.domain.is_empty() { "ai.onnx".to_string() } else { o.domain.clone() }, o.version)).collect(),
        inputs: graph.input.iter().filter(|i| !initialized.contains(&i.name.as_str())).map(describe).collect(),
        score_output: loaded.as_ref().ok().and_then(|m| outputs.get(m.output).map(|o| o.name.clone())),
        outputs,
        operators: operators.into_iter().collect(),
        rewritten,
        loads: loaded.is_ok(),
        error: loaded.as_ref().err().map(|e| e.to_string()),
        tree_shap: loaded.as_ref().is_ok_and(|m| m.trees.is_some()),
    })
}

/// The column of the positive class (label 1) in the model's probabilities: where the classifier
/// node (or its ZipMap) lists class 1 among its `classlabels_int64s` (or `"1"` / `"true"` among
/// its string labels); column 1 when it says nothing (scikit-learn orders classes, so [0, 1]).
fn positive_column(proto: &tract_onnx::pb::ModelProto) -> usize {
    let nodes = proto.graph.iter().flat_map(|g| g.node.iter());
    for node in nodes.filter(|n| n.domain == "ai.onnx.ml") {
        for a in &node.attribute {
            if a.name == "classlabels_int64s" && !a.ints.is_empty() {
                return a.ints.iter().position(|c| *c == 1).unwrap_or(1);
            }
            if a.name == "classlabels_strings" && !a.strings.is_empty() {
                return a.strings.iter().position(|c| matches!(c.as_slice(), b"1" | b"true" | b"True")).unwrap_or(1);
            }
        }
    }
    1
}

/// Which output is the score: a floating-point output named like a probability (`probability`,
/// `probabilities`, `output_probability`: what skl2onnx and onnxmltools write), else the first
/// floating-point output. An exporter's label output (integers, or strings) is never read as a
/// score: a model with only those is refused, with what to export instead.
fn choose_output(names: &[String], types: &[Option<DatumType>]) -> Result<usize, String> {
    let float = |i: usize| types.get(i).copied().flatten().is_some_and(|t| t.is_float());
    let probability = |n: &str| n.to_ascii_lowercase().contains("probabilit");
    if let Some(i) = (0..names.len()).find(|&i| probability(&names[i]) && float(i)) {
        return Ok(i);
    }
    if let Some(i) = (0..names.len()).find(|&i| float(i)) {
        return Ok(i);
    }
    let described = names.iter().zip(types).map(|(n, t)| format!("'{n}' ({})", t.map(|t| format!("{t:?}")).unwrap_or_else(|| "unknown type".into()))).collect::<Vec<_>>().join(", ");
    Err(format!(
        "none of its outputs is a score: {described}. A classifier's label output cannot be used as a probability; export it with its probabilities (skl2onnx: options={{id(clf): {{'zipmap': False}}}})"
    ))
}

/// The trees of a model that is one `TreeEnsembleClassifier` / `TreeEnsembleRegressor` reading the
/// graph's one `[N, k]` input (what skl2onnx and onnxmltools write for a bare ensemble), with only
/// `Identity`, `Cast` and `ZipMap` besides; `None` for anything else (a pipeline's trees read
/// encoded features, not the run's columns, so TreeSHAP of them would explain other players).
fn tree_ensemble(proto: &tract_onnx::pb::ModelProto, columns: Option<&[String]>) -> Option<super::Trees> {
    let graph = proto.graph.as_ref()?;
    let initialized: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<&tract_onnx::pb::ValueInfoProto> = graph.input.iter().filter(|i| !initialized.contains(&i.name.as_str())).collect();
    let [input] = inputs.as_slice() else { return None };
    let is_tree = |n: &&tract_onnx::pb::NodeProto| n.domain == "ai.onnx.ml" && (n.op_type == "TreeEnsembleClassifier" || n.op_type == "TreeEnsembleRegressor");
    let trees: Vec<&tract_onnx::pb::NodeProto> = graph.node.iter().filter(is_tree).collect();
    let [node] = trees.as_slice() else { return None };
    if node.input.first() != Some(&input.name) || graph.node.iter().any(|n| !is_tree(&n) && !matches!(n.op_type.as_str(), "Identity" | "Cast" | "ZipMap")) {
        return None;
    }
    let find = |name: &str| node.attribute.iter().find(|a| a.name == name);
    let ints = |name: &str| find(name).map(|a| a.ints.clone()).unwrap_or_default();
    let floats = |name: &str| find(name).map(|a| a.floats.iter().map(|f| f64::from(*f)).collect()).unwrap_or_default();
    let text = |name: &str| find(name).map(|a| String::from_utf8_lossy(&a.s).into_owned()).unwrap_or_else(|| "NONE".into());
    if find("aggregate_function").is_some_and(|a| a.s != b"SUM") || find("nodes_values").is_none() {
        return None;
    }
    let (prefix, n_targets) = if node.op_type == "TreeEnsembleClassifier" {
        ("class", find("classlabels_int64s").map(|a| a.ints.len()).or_else(|| find("classlabels_strings").map(|a| a.strings.len())).unwrap_or(2))
    } else {
        ("target", find("n_targets").map(|a| a.i as usize).unwrap_or(1))
    };
    let attributes = super::shap::TreeAttributes {
        nodes_treeids: ints("nodes_treeids"),
        nodes_nodeids: ints("nodes_nodeids"),
        nodes_featureids: ints("nodes_featureids"),
        nodes_values: floats("nodes_values"),
        nodes_modes: find("nodes_modes").map(|a| a.strings.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect()).unwrap_or_default(),
        nodes_truenodeids: ints("nodes_truenodeids"),
        nodes_falsenodeids: ints("nodes_falsenodeids"),
        nodes_missing_value_tracks_true: ints("nodes_missing_value_tracks_true"),
        leaf_treeids: ints(&format!("{prefix}_treeids")),
        leaf_nodeids: ints(&format!("{prefix}_nodeids")),
        leaf_targetids: ints(&format!("{prefix}_ids")),
        leaf_weights: floats(&format!("{prefix}_weights")),
        base_values: floats("base_values"),
        post_transform: text("post_transform"),
        n_targets,
    };
    let ensemble = super::shap::from_onnx_attributes(&attributes).ok()?;
    let columns = columns?.to_vec();
    if columns.len() < ensemble.n_features() {
        return None;
    }
    let float32 = input.r#type.as_ref().and_then(|t| t.value.as_ref()).is_some_and(|v| matches!(v, tract_onnx::pb::type_proto::Value::TensorType(t) if t.elem_type == 1));
    let target = ensemble.positive_target();
    Some(super::Trees { ensemble, columns, target, post_transform: attributes.post_transform, float32 })
}

fn is_matrix(model: &InferenceModel, inputs: &[OutletId]) -> bool {
    inputs.len() == 1
        && model
            .outlet_fact(inputs[0])
            .ok()
            .and_then(|f| f.shape.dims().nth(1).and_then(|d| d.concretize()).and_then(|d| d.to_i64().ok()))
            .is_some_and(|w| w > 1)
}

fn numeric_tensor(values: &[f64], dt: DatumType, shape: (usize, usize)) -> TractResult<Tensor> {
    let t: Tensor = tract_ndarray::Array2::from_shape_vec(shape, values.to_vec())?.into();
    Ok(t.cast_to_dt(dt)?.into_owned())
}

impl Model for OnnxModel {
    fn name(&self) -> &str {
        &self.name
    }

    fn trees(&self) -> Option<&super::Trees> {
        self.trees.as_ref()
    }

    fn input_names(&self) -> Vec<String> {
        match &self.layout {
            Layout::PerColumn(c) => c.iter().map(|(n, _, _)| n.clone()).collect(),
            Layout::Matrix { columns, .. } => columns.clone(),
        }
    }

    fn predict(&self, batch: &Batch) -> Result<Vec<f64>, ModelError> {
        let n = batch.rows;
        if n == 0 {
            return Ok(vec![]);
        }
        let missing = |input: &str| ModelError::MissingInput {
            model: self.name.clone(),
            input: input.to_string(),
            columns: batch.columns.keys().cloned().collect::<Vec<_>>().join(", "),
        };
        let run_err = |e: TractError| ModelError::Run { model: self.name.clone(), why: format!("{e:#}") };
        let mut inputs: TVec<TValue> = tvec![];
        match &self.layout {
            Layout::PerColumn(cols) => {
                for (input, dt, rank) in cols {
                    let values = batch.columns.get(input).ok_or_else(|| missing(input))?;
                    let shape = if *rank <= 1 { vec![n] } else { vec![n, 1] };
                    let tensor = match (values, dt.is_number()) {
                        (Values::Numeric(v), true) => numeric_tensor(v, *dt, (n, 1)).map_err(run_err)?.into_shape(&shape).map_err(run_err)?,
                        (Values::Text(v), false) => {
                            let t: Tensor = tract_ndarray::Array2::from_shape_vec((n, 1), v.clone()).map_err(|e| run_err(e.into()))?.into();
                            t.into_shape(&shape).map_err(run_err)?
                        }
                        (Values::Text(v), true) => {
                            // Numbers sent as text (e.g. from a form): parse them.
                            let parsed: Result<Vec<f64>, _> = v.iter().map(|s| if s.is_empty() { Ok(f64::NAN) } else { s.trim().parse::<f64>() }).collect();
                            let parsed = parsed.map_err(|_| ModelError::WrongType { model: self.name.clone(), input: input.clone(), expected: format!("{dt:?} numbers"), found: "text".into() })?;
                            numeric_tensor(&parsed, *dt, (n, 1)).map_err(run_err)?.into_shape(&shape).map_err(run_err)?
                        }
                        (Values::Numeric(_), false) => {
                            return Err(ModelError::WrongType { model: self.name.clone(), input: input.clone(), expected: "text (a categorical column)".into(), found: "numbers".into() });
                        }
                    };
                    inputs.push(tensor.into());
                }
            }
            Layout::Matrix { dt, columns } => {
                let mut flat = vec![0.0; n * columns.len()];
                for (j, c) in columns.iter().enumerate() {
                    match batch.columns.get(c).ok_or_else(|| missing(c))? {
                        Values::Numeric(v) => v.iter().enumerate().for_each(|(i, x)| flat[i * columns.len() + j] = *x),
                        Values::Text(_) => return Err(ModelError::WrongType { model: self.name.clone(), input: c.clone(), expected: "numbers".into(), found: "text".into() }),
                    }
                }
                inputs.push(numeric_tensor(&flat, *dt, (n, columns.len())).map_err(run_err)?.into());
            }
        }
        let outputs = self.plan.run(inputs).map_err(run_err)?;
        let out = outputs.get(self.output).ok_or_else(|| ModelError::Run { model: self.name.clone(), why: "no output".into() })?;
        let out = out.cast_to::<f64>().map_err(run_err)?;
        let view = out.to_plain_array_view::<f64>().map_err(run_err)?;
        let shape = view.shape().to_vec();
        let values: Vec<f64> = view.iter().copied().collect();
        match shape.as_slice() {
            [m] | [m, 1] if *m == n => Ok(values),
            [m, 2] if *m == n => Ok(values.chunks(2).map(|c| c[self.positive.min(1)]).collect()),
            other => Err(ModelError::Run { model: self.name.clone(), why: format!("output shape {other:?} is not [N], [N, 1] or [N, 2] for N = {n}") }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SHAP through the loaded ONNX file (tract's predictions, the trees read from the protobuf)
    /// equals the `shap` package's values (`server/tests/golden/make_shap_cases.py`): TreeSHAP of
    /// the margin vs `TreeExplainer(interventional, raw)`, exact KernelSHAP of the probability vs
    /// `KernelExplainer` on onnxruntime.
    #[test]
    fn shap_through_the_onnx_model_equals_the_shap_package() {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let g: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("tests/golden/shap/adult_gb.json")).unwrap()).unwrap();
        let cols: Vec<String> = serde_json::from_value(g["columns"].clone()).unwrap();
        let matrix = |v: &serde_json::Value| -> Vec<Vec<f64>> { serde_json::from_value(v.clone()).unwrap() };
        let (rows, background) = (matrix(&g["rows"]), matrix(&g["background"]));
        let batch = |rows: &[Vec<f64>]| Batch { rows: rows.len(), columns: cols.iter().enumerate().map(|(j, c)| (c.clone(), Values::Numeric(rows.iter().map(|r| r[j]).collect()))).collect() };
        let bytes = std::fs::read(dir.join("../").join(g["onnx"].as_str().unwrap())).unwrap();
        let model = OnnxModel::load("gb", &bytes, Some(cols.clone())).unwrap();
        let trees = model.trees().expect("a bare TreeEnsembleClassifier is read");
        assert_eq!((trees.columns.clone(), trees.post_transform.as_str(), trees.float32), (cols.clone(), "LOGISTIC", true));
        let (tree_want, kernel_want) = (matrix(&g["tree_shap"]["values"]), matrix(&g["kernel_exact"]["values"]));
        for (i, x) in rows.iter().enumerate() {
            let x32: Vec<f64> = x.iter().map(|v| *v as f32 as f64).collect();
            let r32: Vec<Vec<f64>> = background.iter().map(|r| r.iter().map(|v| *v as f32 as f64).collect()).collect();
            let phi = trees.ensemble.tree_shap(&x32, &r32, trees.target);
            for (a, b) in phi.iter().zip(&tree_want[i]) {
                assert!((a - b).abs() < 1e-6, "row {i}: TreeSHAP {phi:?} vs shap {:?}", tree_want[i]);
            }
            // The margin through the trees is the model's score before its logistic.
            let p = model.predict(&batch(&rows[i..=i])).unwrap()[0];
            assert!((1.0 / (1.0 + (-trees.ensemble.margin(&x32, trees.target)).exp()) - p).abs() < 1e-6);
            let k = crate::models::shap::kernel_shap(&model, &batch(&rows[i..=i]), &batch(&background), &cols, 1000, 0).unwrap();
            assert!(k.exact);
            for ((_, a), b) in k.values.iter().zip(&kernel_want[i]) {
                assert!((a - b).abs() < 1e-5, "row {i}: KernelSHAP {:?} vs shap {:?}", k.values, kernel_want[i]);
            }
        }
        // A pipeline's trees read encoded features, not the run's columns: no TreeSHAP.
        let pipe = std::fs::read(dir.join("../testdata/models/adult_pipe_skl2onnx.onnx")).unwrap();
        assert!(OnnxModel::load("pipe", &pipe, None).unwrap().trees().is_none());
    }

    /// A CSV file as JSON objects (numbers where every value of the column parses as one), its
    /// header, and which columns are numeric.
    fn read_cases(path: &std::path::Path) -> (Vec<serde_json::Map<String, serde_json::Value>>, Vec<String>, Vec<String>) {
        let mut r = csv::Reader::from_path(path).unwrap();
        let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        let numeric: Vec<String> = header.iter().enumerate().filter(|(i, _)| rows.iter().all(|row| row[*i].parse::<f64>().is_ok())).map(|(_, h)| h.clone()).collect();
        let objects = rows
            .iter()
            .map(|row| header.iter().zip(row.iter()).map(|(h, v)| (h.clone(), if numeric.contains(h) { serde_json::json!(v.parse::<f64>().unwrap()) } else { serde_json::json!(v) })).collect())
            .collect();
        (objects, header, numeric)
    }

    /// A model exported by skl2onnx (a random forest, `label` then `probabilities` outputs): its
    /// score is P(class 1) from `probabilities`, equal to onnxruntime's, never the label.
    #[test]
    fn a_skl2onnx_classifier_scores_with_its_probabilities_not_its_label() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(dir.join("../testdata/models/adult_rf_skl2onnx.onnx")).unwrap();
        let m = OnnxModel::load("score_rf", &bytes, None).unwrap();
        let (cases, header, numeric) = read_cases(&dir.join("tests/golden/adult_rf_cases.csv"));
        let batch = Batch::from_json(&cases, &|c| numeric.iter().any(|n| n == c), &header).unwrap();
        let got = m.predict(&batch).unwrap();
        let mut not_a_label = false;
        for (i, (g, c)) in got.iter().zip(&cases).enumerate() {
            let want = c["score_rf"].as_f64().unwrap();
            assert!((g - want).abs() <= 1e-6, "case {i}: tract {g}, onnxruntime {want}");
            not_a_label |= g.fract() != 0.0;
        }
        assert!(not_a_label, "the scores are probabilities, not 0/1 labels");
    }

    /// skl2onnx exports with `ai.onnx.ml` operators tract lacks (OneHotEncoder, Scaler, ZipMap),
    /// rewritten at load: a Pipeline of string and numeric columns with and without ZipMap, and a
    /// GradientBoosting classifier on one [N, 5] input, equal onnxruntime's probabilities, unknown
    /// and empty categories included.
    #[test]
    fn skl2onnx_pipelines_and_boosted_trees_equal_onnxruntime() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let (cases, header, numeric) = read_cases(&dir.join("tests/golden/adult_pipe_cases.csv"));
        let batch = Batch::from_json(&cases, &|c| numeric.iter().any(|n| n == c), &header).unwrap();
        let five = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"].map(String::from).to_vec();
        for (file, score, matrix) in [("adult_pipe_skl2onnx.onnx", "score_pipe", None), ("adult_pipe_skl2onnx_zipmap.onnx", "score_pipe_zipmap", None), ("adult_gb_skl2onnx.onnx", "score_gb", Some(five))] {
            let bytes = std::fs::read(dir.join("../testdata/models").join(file)).unwrap();
            let m = OnnxModel::load(score, &bytes, matrix).unwrap_or_else(|e| panic!("{file}: {e}"));
            let got = m.predict(&batch).unwrap();
            for (i, (g, c)) in got.iter().zip(&cases).enumerate() {
                let want = c[score].as_f64().unwrap();
                assert!((g - want).abs() <= 1e-6, "{file} case {i}: tract {g}, onnxruntime {want}");
            }
        }
    }

    /// The compatibility suite: every export of `make_compat_models.py` loads and scores as
    /// onnxruntime does, to 1e-5 (relative for regressions); the few that cannot run say which
    /// operator is missing. The README's table lists the same.
    #[test]
    fn compatibility_suite() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let (cases, header, numeric) = read_cases(&dir.join("tests/golden/compat_cases.csv"));
        let batch = Batch::from_json(&cases, &|c| numeric.iter().any(|n| n == c), &header).unwrap();
        let columns: Vec<String> = header[..5].to_vec();
        let unsupported = [("skl_svc_clf", "SVMClassifier")];
        let mut checked = 0;
        for name in &header[5..] {
            let bytes = std::fs::read(dir.join("../testdata/models/compat").join(format!("{name}.onnx"))).unwrap();
            let inputs = if name.ends_with("_reg") { columns[..4].to_vec() } else { columns.clone() };
            let loaded = OnnxModel::load(name, &bytes, Some(inputs));
            if let Some((_, op)) = unsupported.iter().find(|(n, _)| n == name) {
                let e = loaded.err().map(|e| e.to_string()).unwrap_or_default();
                assert!(e.contains(op), "{name} should name the operator {op}: {e}");
                continue;
            }
            let m = loaded.unwrap_or_else(|e| panic!("{name}: {e}"));
            let got = m.predict(&batch).unwrap_or_else(|e| panic!("{name}: {e}"));
            for (i, (g, c)) in got.iter().zip(&cases).enumerate() {
                let want = c[name.as_str()].as_f64().unwrap();
                assert!((g - want).abs() <= 1e-5 * want.abs().max(1.0), "{name} case {i}: tract {g}, onnxruntime {want}");
            }
            checked += 1;
        }
        assert!(checked >= 9, "only {checked} models checked");
    }

    #[test]
    fn the_positive_class_is_found_by_its_label() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(dir.join("../testdata/models/adult_rf_skl2onnx.onnx")).unwrap();
        let mut proto = tract_onnx::onnx().proto_model_for_read(&mut &bytes[..]).unwrap();
        assert_eq!(positive_column(&proto), 1);
        let labels = proto.graph.as_mut().unwrap().node.iter_mut().flat_map(|n| n.attribute.iter_mut()).find(|a| a.name == "classlabels_int64s").unwrap();
        labels.ints = vec![1, 0];
        assert_eq!(positive_column(&proto), 0, "class 1 listed first is column 0");
    }

    #[test]
    fn label_outputs_are_never_scores() {
        let n = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(choose_output(&n(&["label", "probabilities"]), &[Some(DatumType::I64), Some(DatumType::F32)]), Ok(1));
        assert_eq!(choose_output(&n(&["output_label", "output_probability"]), &[Some(DatumType::I64), Some(DatumType::F32)]), Ok(1));
        assert_eq!(choose_output(&n(&["variable"]), &[Some(DatumType::F32)]), Ok(0));
        assert_eq!(choose_output(&n(&["label", "score"]), &[Some(DatumType::I64), Some(DatumType::F64)]), Ok(1));
        let e = choose_output(&n(&["label"]), &[Some(DatumType::I64)]).unwrap_err();
        assert!(e.contains("'label' (I64)") && e.contains("zipmap"), "{e}");
    }

    /// The shared what-if cases: edited demo rows with the scores onnxruntime gave them.
    #[test]
    fn demo_models_reproduce_the_reference_scores() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo");
        for (dir, models) in [
            ("adult", vec![("score_logreg", "model_logreg.onnx"), ("score_gbt", "model_gbt.onnx")]),
            ("wages", vec![("prediction_linear", "model_linear.onnx"), ("prediction_gbt", "model_gbt.onnx")]),
        ] {
            let (cases, header, numeric) = read_cases(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{dir}_whatif_cases.csv")));
            let batch = Batch::from_json(&cases, &|c| numeric.iter().any(|n| n == c), &header).unwrap();
            for (score, file) in models {
                let m = OnnxModel::load(score, &std::fs::read(root.join(dir).join(file)).unwrap(), None).unwrap();
                let got = m.predict(&batch).unwrap();
                let want: Vec<f64> = cases.iter().map(|c| c[score].as_f64().unwrap()).collect();
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    // 1e-5 absolute for probabilities, relative for regression outputs (dollars).
                    assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "{score} case {i}: tract {g}, onnxruntime {w}");
                }
            }
        }
    }
}
