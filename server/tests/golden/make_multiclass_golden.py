"""A small synthetic multiclass run and scikit-learn's per-group metrics for it.

Run from the repository root:  python3 server/tests/golden/make_multiclass_golden.py
(writes server/tests/golden/multiclass.csv and multiclass.json)
"""
import json
import pathlib

import numpy as np
import pandas as pd
from sklearn import metrics as skm

here = pathlib.Path(__file__).resolve().parent
rng = np.random.default_rng(20261127)
n = 3000
classes = np.array(["cat", "dog", "owl", "fox"])
group = rng.choice(["north", "south", "west"], size=n, p=[0.5, 0.3, 0.2])
label = rng.choice(classes, size=n, p=[0.4, 0.3, 0.2, 0.1])
# The model is right 80% of the time in the north, 60% elsewhere; wrong answers are random.
right = rng.random(n) < np.where(group == "north", 0.8, 0.6)
pred = np.where(right, label, rng.choice(classes, size=n))
df = pd.DataFrame({"example_id": [f"m{i:05d}" for i in range(n)], "group": group, "label": label, "prediction_model": pred})
# A second model gives per-class probabilities (columns prob_mlp_<class>, a softmax of noisy
# logits that favour the true class, more so in the north): Strata predicts their argmax and adds
# top-k accuracy and log loss.
strength = np.where(group == "north", 2.0, 1.0)
logits = rng.normal(size=(n, len(classes))) + strength[:, None] * (label[:, None] == classes[None, :])
proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
for j, c in enumerate(classes):
    df[f"prob_mlp_{c}"] = proba[:, j]
df.to_csv(here / "multiclass.csv", index=False)

out = {}
for g, part in [("overall", df)] + list(df.groupby("group")):
    y, p = part["label"], part["prediction_model"]
    labels = sorted(set(y) | set(p))
    res = {"count": int(len(part)), "accuracy": skm.accuracy_score(y, p)}
    for avg in ["macro", "weighted", "micro"]:
        pr, re, f1, _ = skm.precision_recall_fscore_support(y, p, average=avg, labels=labels, zero_division=0)
        res[f"{avg}_precision"], res[f"{avg}_recall"], res[f"{avg}_f1"] = pr, re, f1
    pr, re, f1, _ = skm.precision_recall_fscore_support(y, p, average=None, labels=labels, zero_division=0)
    for c, a, b, d in zip(labels, pr, re, f1):
        res[f"precision[{c}]"], res[f"recall[{c}]"], res[f"f1[{c}]"] = a, b, d
    res["confusion"] = skm.confusion_matrix(y, p, labels=labels).tolist()
    # The per-class model, with classes in sorted order as scikit-learn wants them.
    order = sorted(classes)
    proba_g = part[[f"prob_mlp_{c}" for c in order]].to_numpy()
    argmax = np.array(order)[proba_g.argmax(axis=1)]
    res["mlp"] = {
        "accuracy": skm.accuracy_score(y, argmax),
        "macro_f1": skm.f1_score(y, argmax, average="macro", labels=sorted(set(y) | set(argmax)), zero_division=0),
        "top_2_accuracy": skm.top_k_accuracy_score(y, proba_g, k=2, labels=order),
        "top_3_accuracy": skm.top_k_accuracy_score(y, proba_g, k=3, labels=order),
        "log_loss": skm.log_loss(y, proba_g, labels=order),
    }
    out[g] = res
(here / "multiclass.json").write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
print("wrote multiclass.csv, multiclass.json")
