"""The ONNX compatibility suite (issue 13): models trained on the Adult demo and exported the way users
export them — skl2onnx with default options, onnxmltools for LightGBM and XGBoost — with onnxruntime's
scores for the same rows. `models::onnx::tests::compatibility_suite` loads every file in Strata and
matches the scores to 1e-5 (relative for regressions); the README's table is this list.

    pip install scikit-learn skl2onnx onnx onnxruntime lightgbm xgboost onnxmltools
    python3 server/tests/golden/make_compat_models.py

Writes testdata/models/compat/<name>.onnx and server/tests/golden/compat_cases.csv (the five numeric
Adult columns, then one column per model: P(label = 1) for classifiers, the prediction for
regressors of hours_per_week on the other four). Classifiers take one float input X [N, 5] unless
the name says "columns" (one [N, 1] input per column, as Strata sends them).
"""
import csv
import pathlib

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import sklearn
import skl2onnx
from skl2onnx import convert_sklearn, update_registered_converter
from skl2onnx.common.data_types import FloatTensorType
from sklearn.ensemble import (GradientBoostingClassifier, GradientBoostingRegressor, HistGradientBoostingClassifier,
                              HistGradientBoostingRegressor, RandomForestClassifier, RandomForestRegressor)
from sklearn.linear_model import LinearRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

ROOT = pathlib.Path(__file__).resolve().parents[3]
OUT = ROOT / "testdata/models/compat"
OUT.mkdir(parents=True, exist_ok=True)
COLS = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
REG_COLS = COLS[:4]

df = pd.read_csv(ROOT / "demo/adult/eval.csv", keep_default_na=False)
X = df[COLS].to_numpy(dtype=np.float32)
y = df["label"].to_numpy(dtype=np.int64)
train = slice(4000, 10000)
cases = X[:150]
scores = {}
versions = {"sklearn": sklearn.__version__, "skl2onnx": skl2onnx.__version__, "onnxruntime": ort.__version__}


def run(name, onx, feeds, pick):
    path = OUT / f"{name}.onnx"
    path.write_bytes(onx.SerializeToString())
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = sess.run(None, feeds)
    scores[name] = pick(out)
    ops = sorted({f"{n.domain + '.' if n.domain else ''}{n.op_type}" for n in onx.graph.node})
    print(f"{name}: outputs {[o.name for o in sess.get_outputs()]}, ops {ops}")


def proba(out):
    p = out[1]
    return np.array([m[1] for m in p]) if isinstance(p, list) else p[:, 1]


def exported(f):
    """An exporter that fails on a model is reported (for the README's table), not fatal."""
    def wrapped(name, *args, **kwargs):
        try:
            f(name, *args, **kwargs)
        except Exception as e:  # noqa: BLE001 - any exporter error
            print(f"{name}: EXPORT FAILED: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
            (OUT / f"{name}.onnx").unlink(missing_ok=True)
    return wrapped


@exported
def classifier(name, model, zipmap=False):
    model.fit(X[train], y[train])
    options = {id(model): {"zipmap": zipmap}} if hasattr(model, "predict_proba") else None
    onx = convert_sklearn(model, initial_types=[("X", FloatTensorType([None, len(COLS)]))], options=options, target_opset={"": 17, "ai.onnx.ml": 3})
    run(name, onx, {"X": cases}, proba)


@exported
def regressor(name, model):
    model.fit(X[train][:, :4], X[train][:, 4])
    onx = convert_sklearn(model, initial_types=[("X", FloatTensorType([None, 4]))], target_opset={"": 17, "ai.onnx.ml": 3})
    run(name, onx, {"X": cases[:, :4]}, lambda out: out[0].ravel())


classifier("skl_rf_clf", RandomForestClassifier(n_estimators=20, max_depth=6, random_state=1))
classifier("skl_rf_clf_zipmap", RandomForestClassifier(n_estimators=20, max_depth=6, random_state=1), zipmap=True)
classifier("skl_gb_clf", GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=1))
classifier("skl_hgb_clf", HistGradientBoostingClassifier(max_iter=20, random_state=1))
classifier("skl_mlp_clf", make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=1)))
classifier("skl_svc_clf", make_pipeline(StandardScaler(), SVC(probability=True, random_state=1)))
regressor("skl_linear_reg", LinearRegression())
regressor("skl_rf_reg", RandomForestRegressor(n_estimators=20, max_depth=6, random_state=1))
regressor("skl_gb_reg", GradientBoostingRegressor(n_estimators=20, max_depth=3, random_state=1))
regressor("skl_hgb_reg", HistGradientBoostingRegressor(max_iter=20, random_state=1))

try:
    import lightgbm
    import onnxmltools
    import xgboost
    from onnxmltools.convert import convert_lightgbm, convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType as MLFloat

    versions |= {"lightgbm": lightgbm.__version__, "xgboost": xgboost.__version__, "onnxmltools": onnxmltools.__version__}
    lgb = lightgbm.LGBMClassifier(n_estimators=20, num_leaves=15, random_state=1, verbose=-1).fit(X[train], y[train])
    xgb = xgboost.XGBClassifier(n_estimators=20, max_depth=3, random_state=1).fit(X[train], y[train])
    for name, convert, model in [("lgbm_clf", convert_lightgbm, lgb), ("xgb_clf", convert_xgboost, xgb)]:
        try:
            onx = convert(model, initial_types=[("X", MLFloat([None, 5]))], zipmap=False, target_opset=15) if name == "lgbm_clf" else convert(model, initial_types=[("X", MLFloat([None, 5]))], target_opset=15)
            run(name, onx, {"X": cases}, proba)
        except Exception as e:  # noqa: BLE001 - any exporter error
            print(f"{name}: EXPORT FAILED: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
except ImportError as e:
    print("onnxmltools exports skipped:", e)

with open(ROOT / "server/tests/golden/compat_cases.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(COLS + list(scores))
    for i in range(len(cases)):
        w.writerow([repr(float(v)) for v in cases[i]] + [repr(float(scores[k][i])) for k in scores])
print("versions:", versions)
