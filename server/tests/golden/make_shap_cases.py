"""Reference SHAP values for `models::shap` tests: shap's TreeExplainer (interventional, raw margin)
on the scikit-learn models behind two tree-ensemble ONNX files, and shap's KernelExplainer on
onnxruntime's scores of the same files.

    pip install scikit-learn skl2onnx onnx onnxruntime shap   # versions in the printout and the JSON
    python3 server/tests/golden/make_shap_cases.py

Writes server/tests/golden/shap/<name>.json for
  adult_gb  testdata/models/adult_gb_skl2onnx.onnx (GradientBoostingClassifier, LOGISTIC, one class
            weight per leaf; retrained as in make_onnxml_models.py), f = onnxruntime's P(label = 1);
  rf_reg    testdata/models/compat/skl_rf_reg.onnx (RandomForestRegressor of hours_per_week on the
            other four columns; retrained as in make_compat_models.py), f = onnxruntime's prediction.
Each file holds the TreeEnsemble node's attributes in the shape of `shap::TreeAttributes`, a
background set (30 demo rows), explained rows, onnxruntime's scores, and:
  tree_shap     TreeExplainer(model, data=background, feature_perturbation="interventional",
                model_output="raw") on the retrained scikit-learn model (its predictions are first
                checked against onnxruntime on the stored file to 1e-5);
  kernel_exact  KernelExplainer(f, background).shap_values(rows, nsamples=2**M + 2, l1_reg=False):
                every coalition enumerated, so these are the exact Shapley values of f;
  kernel_500    the same call with nsamples=500 (M = 5 or 4: still a full enumeration);
  kernel_sampled  nsamples=2**M // 2 (16 or 8, fewer than the 2**M - 2 coalitions): shap's sampled
                estimate, for information only (random; np.random.seed(0)).
No .onnx file is written.
"""
import json
import pathlib

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import shap
import sklearn
import skl2onnx
from onnx import helper
from sklearn.ensemble import GradientBoostingClassifier, RandomForestRegressor

ROOT = pathlib.Path(__file__).resolve().parents[3]
OUT = ROOT / "server/tests/golden/shap"
OUT.mkdir(parents=True, exist_ok=True)
COLS = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
versions = {"shap": shap.__version__, "sklearn": sklearn.__version__, "skl2onnx": skl2onnx.__version__, "onnxruntime": ort.__version__, "onnx": onnx.__version__, "numpy": np.__version__}

df = pd.read_csv(ROOT / "demo/adult/eval.csv", keep_default_na=False)
X = df[COLS].to_numpy(dtype=np.float32)
y = df["label"].to_numpy(dtype=np.int64)


def attributes(path):
    """The TreeEnsemble node's attributes, renamed to `TreeAttributes` fields."""
    nodes = [n for n in onnx.load(str(path)).graph.node if n.op_type.startswith("TreeEnsemble")]
    assert len(nodes) == 1, path
    a = {x.name: helper.get_attribute_value(x) for x in nodes[0].attribute}
    leaf = "class" if nodes[0].op_type == "TreeEnsembleClassifier" else "target"
    text = lambda v: v.decode() if isinstance(v, bytes) else v
    return {
        "nodes_treeids": list(a["nodes_treeids"]), "nodes_nodeids": list(a["nodes_nodeids"]), "nodes_featureids": list(a["nodes_featureids"]),
        "nodes_values": [float(v) for v in a["nodes_values"]], "nodes_modes": [text(m) for m in a["nodes_modes"]],
        "nodes_truenodeids": list(a["nodes_truenodeids"]), "nodes_falsenodeids": list(a["nodes_falsenodeids"]),
        "nodes_missing_value_tracks_true": list(a.get("nodes_missing_value_tracks_true", [])),
        "leaf_treeids": list(a[f"{leaf}_treeids"]), "leaf_nodeids": list(a[f"{leaf}_nodeids"]), "leaf_targetids": list(a[f"{leaf}_ids"]),
        "leaf_weights": [float(v) for v in a[f"{leaf}_weights"]], "base_values": [float(v) for v in a.get("base_values", [])],
        "post_transform": text(a.get("post_transform", b"NONE")),
        "n_targets": int(len(a["classlabels_int64s"]) if leaf == "class" else a["n_targets"]),
    }


def case(name, path, model, cols, score, background, rows):
    raw = model.decision_function if hasattr(model, "decision_function") else model.predict
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    f = lambda z: score(sess.run(None, {"X": np.asarray(z, dtype=np.float32)})).astype(np.float64)
    sk = model.predict_proba(background)[:, 1] if hasattr(model, "predict_proba") else model.predict(background)
    diff = float(np.abs(sk - f(background)).max())
    assert diff < 1e-5, f"{name}: retrained model differs from the stored ONNX file by {diff}"
    tree = shap.TreeExplainer(model, data=background.astype(np.float64), feature_perturbation="interventional", model_output="raw")
    tv = tree.shap_values(rows.astype(np.float64), check_additivity=True)
    m = rows.shape[1]
    kernel = {}
    for label, n in [("kernel_exact", 2**m + 2), ("kernel_500", 500), ("kernel_sampled", 2**m // 2)]:
        np.random.seed(0)
        k = shap.KernelExplainer(f, background.astype(np.float64))
        kernel[label] = {"nsamples": n, "expected_value": float(np.ravel(k.expected_value)[0]), "values": np.asarray(k.shap_values(rows.astype(np.float64), nsamples=n, l1_reg=False, silent=True)).tolist()}
    ke = np.asarray(kernel["kernel_exact"]["values"])
    print(f"{name}: |sklearn - onnxruntime| = {diff:.2e}, efficiency kernel {np.abs(ke.sum(1) - (f(rows) - kernel['kernel_exact']['expected_value'])).max():.2e}, "
          f"tree {np.abs(tv.sum(1) - (raw(rows) - np.ravel(tree.expected_value)[0])).max():.2e}")
    doc = {
        "name": name, "onnx": str(path.relative_to(ROOT)), "columns": cols, "versions": versions, "attributes": attributes(path),
        "background": background.astype(np.float64).tolist(), "rows": rows.astype(np.float64).tolist(),
        "ort_background": f(background).tolist(), "ort_rows": f(rows).tolist(),
        "tree_shap": {"expected_value": float(np.ravel(tree.expected_value)[0]), "values": np.asarray(tv).tolist()}, **kernel,
    }
    (OUT / f"{name}.json").write_text(json.dumps(doc, separators=(",", ":")))


# Explained rows: the first rows, plus rows with a capital gain and a capital loss (so every feature moves).
pick = [0, 1, 2, int(np.flatnonzero(X[:, 2] > 0)[0]), int(np.flatnonzero(X[:, 3] > 0)[0])]
background = X[100:130]

# adult_gb: as make_onnxml_models.py (rows 4000:12000, float32 columns).
gb = GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=0).fit(X[4000:12000], y[4000:12000])
case("adult_gb", ROOT / "testdata/models/adult_gb_skl2onnx.onnx", gb, COLS, lambda out: out[1][:, 1], background, X[pick])

# rf_reg: as make_compat_models.py (rows 4000:10000, hours_per_week on the other four).
rf = RandomForestRegressor(n_estimators=20, max_depth=6, random_state=1).fit(X[4000:10000, :4], X[4000:10000, 4])
case("rf_reg", ROOT / "testdata/models/compat/skl_rf_reg.onnx", rf, COLS[:4], lambda out: out[0].ravel(), background[:, :4], X[pick][:, :4])
print("versions:", versions)
