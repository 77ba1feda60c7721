"""river's ADWIN on three synthetic streams, for `Adwin` (adwin_matches_river_on_the_same_streams).

python3 make_adwin_golden.py   # writes adwin_river.txt beside it (pip install river==0.26.1 numpy)

After a comment line, three blocks, each of six lines:
  1. the stream name (`bernoulli`, `gaussian` or `steps`);
  2. the stream, comma-separated, floats in repr form so they parse back bit-exactly;
  3. the indices where river's `drift_detected` is true after `update`;
  4. river's `width` after every element (shows where each cut and each reset happened);
  5. final `width`, `estimation` and `variance` (river's `variance` is the window's sum of
     squared deviations, not divided by the width), repr form;
  6. an empty line.
Bernoulli: 3000 0/1 values, p = 0.2, then 0.6 from element 1000, then 0.3 from element 2000.
Gaussian: 4000 values, sd 1, mean 0, then 0.8 from element 1500, then 0.3 from element 3000.
Steps: 4000 values, a new level drawn uniformly in [0, 1) every 400 elements, plus uniform noise
in [-0.5, 0.5), rounded to 3 decimals.
All detectors use river's defaults (delta 0.002, clock 32, max_buckets 5, min_window_length 5,
grace_period 10). A line starting with `#` is a comment.
"""
import os

import numpy as np
import river
from river.drift import ADWIN

rng = np.random.default_rng(20260517)
i = np.arange(3000)
p = np.where(i < 1000, 0.2, np.where(i < 2000, 0.6, 0.3))
bernoulli = (rng.random(3000) < p).astype(float)
i = np.arange(4000)
mean = np.where(i < 1500, 0.0, np.where(i < 3000, 0.8, 0.3))
gaussian = mean + rng.standard_normal(4000)
# Steps: a new mean every 400 elements, uniform noise, values rounded to 3 decimals (short repr).
levels = rng.uniform(0.0, 1.0, 10)
steps = np.round(np.repeat(levels, 400) + rng.uniform(-0.5, 0.5, 4000), 3)

out = [f"# river {river.__version__}, written by make_adwin_golden.py"]
for name, stream in [("bernoulli", bernoulli), ("gaussian", gaussian), ("steps", steps)]:
    d = ADWIN()
    drifts, widths = [], []
    for k, x in enumerate(stream):
        d.update(float(x))
        if d.drift_detected:
            drifts.append(k)
        widths.append(int(d.width))
    out += [
        name,
        ",".join(repr(float(x)) for x in stream),
        ",".join(map(str, drifts)),
        ",".join(map(str, widths)),
        f"{int(d.width)},{d.estimation!r},{d.variance!r}",
        "",
    ]
    print(name, "drifts at", drifts, "final width", d.width, "estimation", d.estimation)
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "adwin_river.txt"), "w") as f:
    f.write("\n".join(out))
