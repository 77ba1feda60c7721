"""A scikit-learn model exported the way users export them (skl2onnx, ai.onnx.ml operators), and the
reference probabilities onnxruntime gives for demo rows, for `models::onnx` tests (issue 13).

1. RandomForestClassifier on the Adult demo's numeric columns, one input per column, `zipmap=False`:
the graph has two outputs, `label` (int64 class) and `probabilities` (float [N, 2]). A tool that takes
the first output reads the label as a score; Strata must take P(class 1) from `probabilities`.

2. Pipeline(ColumnTransformer(OneHotEncoder(handle_unknown="ignore"), StandardScaler), LogisticRegression)
on the numeric and string columns, exported with ZipMap (skl2onnx's default: `output_probability` is a
sequence of maps) and without: OneHotEncoder, Scaler, LinearClassifier, ZipMap.
3. GradientBoostingClassifier on the numeric columns as one [N, 5] input: TreeEnsembleClassifier with
one base value and a LOGISTIC post-transform.
Cases: 200 demo rows, rows with an unknown category and an empty one, and the first row with age 30
(the what-if edit of end2end/tests/onnxml.test.mjs).

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


# 2. The Pipeline, with and without ZipMap; 3. a GradientBoosting classifier.
from skl2onnx.common.data_types import StringTensorType
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder, StandardScaler

CATS = ["workclass", "education", "marital_status", "occupation", "relationship", "race", "sex", "native_country"]
frame = pd.DataFrame({**{c: [float(r[c]) for r in rows] for c in COLS}, **{c: [r[c] for r in rows] for c in CATS}})
frame[COLS] = frame[COLS].astype(np.float32)
train = frame.iloc[4000:12000]
ytrain = y[4000:12000]
pipe = Pipeline([
    ("prep", ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), CATS), ("num", StandardScaler(), COLS)])),
    ("lr", LogisticRegression(max_iter=1000)),
]).fit(train, ytrain)
types = [(c, FloatTensorType([None, 1])) for c in COLS] + [(c, StringTensorType([None, 1])) for c in CATS]
cases = frame.iloc[:200].copy()
odd = frame.iloc[[0, 1, 2, 0]].copy().reset_index(drop=True)
odd.loc[odd.index[0], "occupation"] = "Astronaut"
odd.loc[odd.index[1], "native_country"] = ""
odd.loc[odd.index[2], "sex"] = "unknown"
odd.iloc[3, odd.columns.get_loc("age")] = 30.0  # the end-to-end what-if edit: adult-00000, age 51 -> 30
cases = pd.concat([cases, odd], ignore_index=True)
feeds = {c: cases[[c]].to_numpy(dtype=np.float32) for c in COLS} | {c: cases[[c]].to_numpy(dtype=object) for c in CATS}
scores = {}
for zipmap in (True, False):
    onx = convert_sklearn(pipe, initial_types=types, options={id(pipe.steps[-1][1]): {"zipmap": zipmap}}, target_opset={"": 17, "ai.onnx.ml": 3})
    out = ROOT / f"testdata/models/adult_pipe_skl2onnx{'_zipmap' if zipmap else ''}.onnx"
    out.write_bytes(onx.SerializeToString())
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    label, proba = sess.run(None, feeds)
    p1 = np.array([m[1] for m in proba]) if zipmap else proba[:, 1]
    scores["score_pipe" + ("_zipmap" if zipmap else "")] = p1
    print(out.name, "ops:", sorted({n.op_type for n in onx.graph.node}), "max |ort - sklearn| =", float(np.abs(p1 - pipe.predict_proba(cases)[:, 1]).max()))
gb = GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=0).fit(train[COLS].to_numpy(), ytrain)
onx = convert_sklearn(gb, initial_types=[("X", FloatTensorType([None, len(COLS)]))], options={id(gb): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3})
out = ROOT / "testdata/models/adult_gb_skl2onnx.onnx"
out.write_bytes(onx.SerializeToString())
sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
scores["score_gb"] = sess.run(None, {"X": cases[COLS].to_numpy(dtype=np.float32)})[1][:, 1]
with open(ROOT / "server/tests/golden/adult_pipe_cases.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(COLS + CATS + list(scores))
    for i in range(len(cases)):
        w.writerow([cases[c].iloc[i] for c in COLS] + [cases[c].iloc[i] for c in CATS] + [repr(float(scores[k][i])) for k in scores])
print("versions: sklearn", sklearn.__version__, "skl2onnx", skl2onnx.__version__, "onnxruntime", ort.__version__)
