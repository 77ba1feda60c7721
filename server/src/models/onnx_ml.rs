//! `ai.onnx.ml` operators that exporters (skl2onnx, onnxmltools) write and tract does not run,
//! rewritten at load time into standard ONNX operators (and the `CategoryMapper` tract has), so a
//! user's exported Pipeline loads as it is. Each rewrite keeps the operator's semantics as the ONNX-ML
//! specification and onnxruntime define them; the unit tests compare with onnxruntime's outputs
//! (`server/tests/golden/make_onnxml_models.py` writes them).
//!
//! - `Scaler(offset, scale)`: `(float(X) - offset) * scale`.
//! - `OneHotEncoder(cats_strings | cats_int64s)`: `float(Unsqueeze(code(X), -1) == [0 .. C))`, the
//!   code of a string from `CategoryMapper` (unknown: -1, so a row of zeros, as `zeros=1` asks;
//!   onnxruntime refuses an unknown category when `zeros=0`, Strata gives zeros — a decision).
//! - `Imputer`: `Where(IsNaN(X) or X == replaced, imputed, X)`.
//! - `Binarizer(threshold)`: `float(X > threshold)`.
//! - `ArrayFeatureExtractor(X, indices)`: `Gather(X, indices, axis = -1)`.
//! - `LabelEncoder` from strings to integers: a `CategoryMapper`.
//! - `TreeEnsembleRegressor` (one target, SUM or AVERAGE): the same trees as a binary
//!   `TreeEnsembleClassifier` with no post-transform, whose positive column is the sum.
//! - `ZipMap`: dropped; its output becomes the `[N, C]` probability tensor it was given (Strata reads
//!   the positive class's column, the same numbers the map holds).
//!
//! `LinearClassifier`, `LinearRegressor`, `Normalizer`, `CategoryMapper` and
//! `TreeEnsembleClassifier` are tract's own; any other `ai.onnx.ml` operator stays an error naming it.

use tract_onnx::pb::{self, AttributeProto, ModelProto, NodeProto, TensorProto};

const ML: &str = "ai.onnx.ml";
const FLOAT: i32 = 1;
const INT64: i32 = 7;

fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn attr_f(node: &NodeProto, name: &str, default: f32) -> f32 {
    attr(node, name).map(|a| a.f).unwrap_or(default)
}

fn attr_floats(node: &NodeProto, name: &str) -> Vec<f32> {
    attr(node, name).map(|a| a.floats.clone()).unwrap_or_default()
}

fn int_attr(name: &str, i: i64) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: 2, i, ..Default::default() }
}

fn ints_attr(name: &str, ints: Vec<i64>) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: 7, ints, ..Default::default() }
}

fn strings_attr(name: &str, strings: Vec<Vec<u8>>) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: 8, strings, ..Default::default() }
}

/// The nodes and constants a rewrite emits, with names unique in the graph.
struct Emit {
    prefix: String,
    count: usize,
    nodes: Vec<NodeProto>,
    constants: Vec<TensorProto>,
    /// The default domain's opset (Unsqueeze takes its axes as an input from 13 on).
    opset: i64,
}

impl Emit {
    fn name(&mut self, what: &str) -> String {
        self.count += 1;
        format!("{}__strata_{what}_{}", self.prefix, self.count)
    }

    fn node(&mut self, op: &str, domain: &str, inputs: Vec<String>, output: Option<String>, attribute: Vec<AttributeProto>) -> String {
        let out = output.unwrap_or_else(|| self.name(op));
        let name = self.name(&format!("{op}_node"));
        self.nodes.push(NodeProto { input: inputs, output: vec![out.clone()], name, op_type: op.into(), domain: domain.into(), attribute, ..Default::default() });
        out
    }

    fn floats(&mut self, values: Vec<f32>) -> String {
        let name = self.name("const");
        self.constants.push(TensorProto { dims: vec![values.len() as i64], data_type: FLOAT, float_data: values, name: name.clone(), ..Default::default() });
        name
    }

    fn int64s(&mut self, values: Vec<i64>) -> String {
        let name = self.name("const");
        self.constants.push(TensorProto { dims: vec![values.len() as i64], data_type: INT64, int64_data: values, name: name.clone(), ..Default::default() });
        name
    }

    fn cast(&mut self, input: String, to: i32, output: Option<String>) -> String {
        self.node("Cast", "", vec![input], output, vec![int_attr("to", to as i64)])
    }

    fn unsqueeze_last(&mut self, input: String) -> String {
        if self.opset >= 13 {
            let axes = self.int64s(vec![-1]);
            self.node("Unsqueeze", "", vec![input, axes], None, vec![])
        } else {
            self.node("Unsqueeze", "", vec![input], None, vec![ints_attr("axes", vec![-1])])
        }
    }
}

/// A binary `TreeEnsembleClassifier` whose trees all score class 0 (one column, as skl2onnx writes
/// a GradientBoosting classifier) has one base value; tract wants one per class label, and adds
/// them before its binary layout takes column 0 as the positive score. So `[b]` becomes `[b, 0]`:
/// the same sum as onnxruntime's.
fn binary_base_value(node: &mut NodeProto) -> bool {
    let labels = attr(node, "classlabels_int64s").map(|a| a.ints.len()).or_else(|| attr(node, "classlabels_strings").map(|a| a.strings.len()));
    let one_column = attr(node, "class_ids").is_some_and(|a| a.ints.iter().all(|c| *c == 0));
    match node.attribute.iter_mut().find(|a| a.name == "base_values") {
        Some(base) if labels == Some(2) && one_column && base.floats.len() == 1 => {
            base.floats.push(0.0);
            true
        }
        _ => false,
    }
}

/// Rewrites the `ai.onnx.ml` operators tract lacks; returns the operators rewritten (for tests and
/// logs). A malformed operator (no categories, mismatched lengths) is an error naming it.
pub fn rewrite(model: &mut ModelProto) -> Result<Vec<String>, String> {
    let opset = model.opset_import.iter().find(|o| o.domain.is_empty() || o.domain == "ai.onnx").map(|o| o.version).unwrap_or(13);
    let Some(graph) = model.graph.as_mut() else { return Ok(vec![]) };
    let mut done = Vec::new();
    let mut out_nodes = Vec::with_capacity(graph.node.len());
    let mut constants = Vec::new();
    let mut zipmapped: Vec<String> = Vec::new();
    for (i, mut node) in std::mem::take(&mut graph.node).into_iter().enumerate() {
        if node.domain == ML && node.op_type == "TreeEnsembleClassifier" && binary_base_value(&mut node) {
            done.push("TreeEnsembleClassifier (binary base value)".into());
        }
        if node.domain != ML {
            out_nodes.push(node);
            continue;
        }
        let mut e = Emit { prefix: format!("n{i}"), count: 0, nodes: vec![], constants: vec![], opset };
        let what = node.op_type.clone();
        let input = node.input.first().cloned().unwrap_or_default();
        let output = node.output.first().cloned().unwrap_or_default();
        let bad = |why: &str| format!("{what} node '{}': {why}", node.name);
        match what.as_str() {
            "Scaler" => {
                let (offset, scale) = (attr_floats(&node, "offset"), attr_floats(&node, "scale"));
                let x = e.cast(input, FLOAT, None);
                let offset = e.floats(if offset.is_empty() { vec![0.0] } else { offset });
                let centred = e.node("Sub", "", vec![x, offset], None, vec![]);
                let scale = e.floats(if scale.is_empty() { vec![1.0] } else { scale });
                e.node("Mul", "", vec![centred, scale], Some(output), vec![]);
            }
            "OneHotEncoder" => {
                let strings = attr(&node, "cats_strings").map(|a| a.strings.clone()).unwrap_or_default();
                let ints = attr(&node, "cats_int64s").map(|a| a.ints.clone()).unwrap_or_default();
                // Each value's code, compared with every category's code.
                let (codes, cats) = if !strings.is_empty() {
                    let n = strings.len() as i64;
                    let mapper = vec![strings_attr("cats_strings", strings), ints_attr("cats_int64s", (0..n).collect()), int_attr("default_int64", -1)];
                    (e.node("CategoryMapper", ML, vec![input], None, mapper), (0..n).collect())
                } else if !ints.is_empty() {
                    (e.cast(input, INT64, None), ints)
                } else {
                    return Err(bad("no categories (cats_strings or cats_int64s)"));
                };
                let x = e.unsqueeze_last(codes);
                let cats = e.int64s(cats);
                let eq = e.node("Equal", "", vec![x, cats], None, vec![]);
                e.cast(eq, FLOAT, Some(output));
            }
            "Imputer" => {
                let imputed = attr_floats(&node, "imputed_value_floats");
                if imputed.is_empty() {
                    return Err(bad("only float imputation (imputed_value_floats) is supported"));
                }
                let replaced = attr_f(&node, "replaced_value_float", 0.0);
                let x = e.cast(input, FLOAT, None);
                let mask = if replaced.is_nan() {
                    e.node("IsNaN", "", vec![x.clone()], None, vec![])
                } else {
                    let r = e.floats(vec![replaced]);
                    e.node("Equal", "", vec![x.clone(), r], None, vec![])
                };
                let imputed = e.floats(imputed);
                e.node("Where", "", vec![mask, imputed, x], Some(output), vec![]);
            }
            "Binarizer" => {
                let t = attr_f(&node, "threshold", 0.0);
                let x = e.cast(input, FLOAT, None);
                let t = e.floats(vec![t]);
                let gt = e.node("Greater", "", vec![x, t], None, vec![]);
                e.cast(gt, FLOAT, Some(output));
            }
            "ArrayFeatureExtractor" => {
                let indices = node.input.get(1).cloned().ok_or_else(|| bad("no indices input"))?;
                e.node("Gather", "", vec![input, indices], Some(output), vec![int_attr("axis", -1)]);
            }
            "LabelEncoder" => {
                let keys = attr(&node, "keys_strings").map(|a| a.strings.clone()).unwrap_or_default();
                let values = attr(&node, "values_int64s").map(|a| a.ints.clone()).unwrap_or_default();
                if keys.is_empty() || keys.len() != values.len() {
                    return Err(bad("only strings to integers (keys_strings → values_int64s, of one length) is supported"));
                }
                let default = attr(&node, "default_int64").map(|a| a.i).unwrap_or(-1);
                e.node("CategoryMapper", ML, vec![input], Some(output), vec![strings_attr("cats_strings", keys), ints_attr("cats_int64s", values), int_attr("default_int64", default)]);
            }
            "TreeEnsembleRegressor" => {
                let targets = attr(&node, "n_targets").map(|a| a.i).unwrap_or(1);
                let aggregate = attr(&node, "aggregate_function").map(|a| String::from_utf8_lossy(&a.s).to_string()).unwrap_or_else(|| "SUM".into());
                let post = attr(&node, "post_transform").map(|a| String::from_utf8_lossy(&a.s).to_string()).unwrap_or_else(|| "NONE".into());
                if targets != 1 || !["SUM", "AVERAGE"].contains(&aggregate.as_str()) || post != "NONE" {
                    return Err(bad(&format!("only one target, SUM or AVERAGE, no post-transform is supported (n_targets {targets}, {aggregate}, {post})")));
                }
                let trees = attr(&node, "target_treeids").map(|a| a.ints.clone()).unwrap_or_default();
                let mut weights = attr_floats(&node, "target_weights");
                if aggregate == "AVERAGE" {
                    let n = trees.iter().collect::<std::collections::BTreeSet<_>>().len().max(1) as f32;
                    weights.iter_mut().for_each(|w| *w /= n);
                }
                // The same trees as a binary classifier scoring class 0 with no post-transform:
                // tract's binary layout gives [1 - s, s], and s is the regression's sum.
                let mut attribute: Vec<AttributeProto> = node
                    .attribute
                    .iter()
                    .filter(|a| a.name.starts_with("nodes_"))
                    .cloned()
                    .collect();
                let rename = |from: &str, to: &str| attr(&node, from).map(|a| AttributeProto { name: to.into(), ..a.clone() });
                attribute.extend(rename("target_ids", "class_ids"));
                attribute.extend(rename("target_nodeids", "class_nodeids"));
                attribute.extend(rename("target_treeids", "class_treeids"));
                attribute.push(AttributeProto { name: "class_weights".into(), r#type: 6, floats: weights, ..Default::default() });
                attribute.push(ints_attr("classlabels_int64s", vec![0, 1]));
                let base = attr_floats(&node, "base_values").first().copied().unwrap_or(0.0);
                attribute.push(AttributeProto { name: "base_values".into(), r#type: 6, floats: vec![base, 0.0], ..Default::default() });
                let (label, scores) = (e.name("label"), e.name("scores"));
                let tree_name = e.name("TreeEnsembleClassifier_node");
                e.nodes.push(NodeProto { input: vec![input], output: vec![label, scores.clone()], name: tree_name, op_type: "TreeEnsembleClassifier".into(), domain: ML.into(), attribute, ..Default::default() });
                let column = e.int64s(vec![1]);
                e.node("Gather", "", vec![scores, column], Some(output), vec![int_attr("axis", 1)]);
            }
            "ZipMap" => {
                e.node("Identity", "", vec![input], Some(output.clone()), vec![]);
                zipmapped.push(output);
            }
            _ => {
                out_nodes.push(node);
                continue;
            }
        }
        done.push(what);
        out_nodes.extend(e.nodes);
        constants.extend(e.constants);
    }
    graph.node = out_nodes;
    graph.initializer.extend(constants);
    // A ZipMap's output was a sequence of maps; it is now the float tensor it was made from.
    for o in graph.output.iter_mut().filter(|o| zipmapped.contains(&o.name)) {
        o.r#type = Some(pb::TypeProto { denotation: String::new(), value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor { elem_type: FLOAT, shape: None })) });
    }
    Ok(done)
}
