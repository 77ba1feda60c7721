"""Models for the served-model tests (issue 21): scikit-learn models trained on the Adult demo, saved
for real model servers, and the probabilities the models themselves give (the reference).

    python3 make_served_models.py OUT_DIR
    python3 make_served_models.py OUT_DIR --pdp FEATURE GRID_JSON   (after the above)

writes, under OUT_DIR:
  mlserver/settings.json                  MLServer's own settings (parallel_workers 0: its worker
                                          processes do not start on these machines)
  mlserver/adult-rf/                      a numeric RandomForest (5 numeric columns), predict_proba
  mlserver/adult-pipe/                    Pipeline(ColumnTransformer(OneHotEncoder, StandardScaler),
                                          LogisticRegression) on numeric and string columns
  mlflow/adult-pipe/                      the same Pipeline as an MLflow pyfunc (predict_proba)
  reference.csv                           row, model, P(label = 1) for the first 300 eval rows and
                                          for the edited examples in EDITS
With --pdp it prints the partial dependence of the saved Pipeline on the first 300 eval rows: for each
grid value, the mean predict_proba with FEATURE set to it (a JSON list), the reference for Strata's PDP
through a served endpoint. The test command runs it in its own virtual environment (scripts/served-models.sh), so the models and
the reference come from the same scikit-learn.
"""
import csv
import json
import pathlib
import sys

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

ROOT = pathlib.Path(__file__).resolve().parents[3]
OUT = pathlib.Path(sys.argv[1])
NUMERIC = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
CATEGORICAL = ["workclass", "education", "marital_status", "occupation", "relationship", "race", "sex", "native_country"]
# Edited examples the test sends through what-if: (row, column, value), one edit each.
EDITS = [(0, "age", 30), (1, "sex", "Female"), (2, "hours_per_week", 80), (3, "occupation", "Exec-managerial"), (4, "native_country", "Atlantis")]

df = pd.read_csv(ROOT / "demo/adult/eval.csv", keep_default_na=False)
for c in NUMERIC:
    df[c] = df[c].astype("float64")

if len(sys.argv) == 5 and sys.argv[2] == "--pdp":
    feature, grid = sys.argv[3], json.loads(sys.argv[4])
    saved = joblib.load(OUT / "mlserver/adult-pipe/model.joblib")
    rows = df.iloc[:300][NUMERIC + CATEGORICAL].copy()
    means = []
    for g in grid:
        rows[feature] = float(g) if feature in NUMERIC else g
        means.append(float(saved.predict_proba(rows)[:, list(saved.classes_).index(1)].mean()))
    print(json.dumps(means))
    sys.exit(0)
train = df.iloc[4000:12000]
y = train["label"].astype(int)

rf = RandomForestClassifier(n_estimators=30, max_depth=8, random_state=3).fit(train[NUMERIC], y)
pipe = Pipeline([
    ("prep", ColumnTransformer([
        ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ("num", StandardScaler(), NUMERIC),
    ])),
    ("lr", LogisticRegression(max_iter=1000)),
]).fit(train[NUMERIC + CATEGORICAL], y)

(OUT / "mlserver").mkdir(parents=True, exist_ok=True)
(OUT / "mlserver/settings.json").write_text(json.dumps({"parallel_workers": 0, "metrics_endpoint": None}))
for name, model in [("adult-rf", rf), ("adult-pipe", pipe)]:
    d = OUT / "mlserver" / name
    d.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, d / "model.joblib")
    (d / "model-settings.json").write_text(json.dumps({
        "name": name,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "v1", "extra": {"predict_fn": "predict_proba"}},
    }))

try:
    import mlflow.sklearn
    target = OUT / "mlflow/adult-pipe"
    if not target.exists():
        mlflow.sklearn.save_model(pipe, str(target), pyfunc_predict_fn="predict_proba")
except ImportError:
    print("mlflow is not installed: no MLflow model written", file=sys.stderr)

rows = df.iloc[:300].copy()
edited = []
for r, col, value in EDITS:
    e = df.iloc[[r]].copy()
    e[col] = value
    edited.append(e)
edited = pd.concat(edited)
with open(OUT / "reference.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["set", "row", "model", "p"])
    for which, frame in [("rows", rows), ("edits", edited)]:
        for name, model, cols in [("adult-rf", rf, NUMERIC), ("adult-pipe", pipe, NUMERIC + CATEGORICAL)]:
            p = model.predict_proba(frame[cols])[:, list(model.classes_).index(1)]
            for i, v in enumerate(p):
                w.writerow([which, i, name, repr(float(v))])
print("wrote", OUT)
