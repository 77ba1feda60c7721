"""A scikit-learn model exported the way users export them (skl2onnx, ai.onnx.ml operators), and the
reference probabilities onnxruntime gives for demo rows, for `models::onnx` tests (issue 13).

RandomForestClassifier on the Adult demo's numeric columns, one input per column, `zipmap=False`:
the graph has two outputs, `label` (int64 class) and `probabilities` (float [N, 2]). A tool that takes
the first output reads the label as a score; Strata must take P(class 1) from `probabilities`.

    pip install scikit-learn skl2onnx onnx onnxruntime   # versions in the printout
    python3 server/tests/golden/make_onnxml_models.py
"""
import csv
import pathlib

import numpy as np
import onnxruntime as ort
import pandas as pd
import skl2onnx
import sklearn
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline

ROOT = pathlib.Path(__file__).resolve().parents[3]
COLS = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"]

rows = list(csv.DictReader(open(ROOT / "demo/adult/eval.csv")))
X = np.array([[float(r[c]) for c in COLS] for r in rows], dtype=np.float32)
y = np.array([int(r["label"]) for r in rows])
# One input per column, as Strata sends them (skl2onnx maps DataFrame columns to inputs by name).
df = pd.DataFrame(X, columns=COLS)
model = Pipeline([
    ("columns", ColumnTransformer([("num", "passthrough", COLS)])),
    ("rf", RandomForestClassifier(n_estimators=25, max_depth=6, random_state=7)),
]).fit(df, y)
onx = convert_sklearn(
    model,
    initial_types=[(c, FloatTensorType([None, 1])) for c in COLS],
    options={id(model.steps[-1][1]): {"zipmap": False}},
    target_opset={"": 17, "ai.onnx.ml": 3},
)
out = ROOT / "testdata/models/adult_rf_skl2onnx.onnx"
out.write_bytes(onx.SerializeToString())

sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
print("outputs:", [(o.name, o.type, o.shape) for o in sess.get_outputs()])
take = rows[:200]
feeds = {c: np.array([[float(r[c])] for r in take], dtype=np.float32) for c in COLS}
label, proba = sess.run(None, feeds)
sk = model.predict_proba(pd.DataFrame(np.array([[float(r[c]) for c in COLS] for r in take], dtype=np.float32), columns=COLS))[:, 1]
print("max |onnxruntime - sklearn| =", float(np.abs(proba[:, 1] - sk).max()))
with open(ROOT / "server/tests/golden/adult_rf_cases.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(COLS + ["label_output", "score_rf"])
    for r, l, p in zip(take, label, proba[:, 1]):
        w.writerow([r[c] for c in COLS] + [int(l), repr(float(p))])
print("versions: sklearn", sklearn.__version__, "skl2onnx", skl2onnx.__version__, "onnxruntime", ort.__version__)
