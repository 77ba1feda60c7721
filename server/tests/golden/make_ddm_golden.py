"""river's DDM on a synthetic error stream, for `eval::detectors` (ddm_matches_river_on_the_same_stream).

python3 server/tests/golden/make_ddm_golden.py   # writes ddm_river.txt beside it (pip install river)
Line 1: the stream (0/1, error rate 0.1 then 0.35 from element 1500, then 0.1 again from 3500);
line 2: indices where river signals a warning; line 3: indices of drifts.
"""
import os

import numpy as np
from river.drift.binary import DDM

rng = np.random.default_rng(20261127)
p = np.where(np.arange(5000) < 1500, 0.1, np.where(np.arange(5000) < 3500, 0.35, 0.1))
stream = (rng.random(5000) < p).astype(int)
d = DDM()
warnings, drifts = [], []
for i, x in enumerate(stream):
    d.update(int(x))
    if d.drift_detected:
        drifts.append(i)
    elif d.warning_detected:
        warnings.append(i)
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "ddm_river.txt"), "w") as f:
    f.write(",".join(map(str, stream)) + "\n" + ",".join(map(str, warnings)) + "\n" + ",".join(map(str, drifts)) + "\n")
print(len(warnings), "warnings,", drifts, "drifts")
