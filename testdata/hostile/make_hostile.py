"""Writes the hostile-input corpus used by server/tests/integration/hostile.rs.

Each file is small on disk and costly if read naively:
- unique_keys.jsonl: 3,000 lines, each with a key no other line has (the column set is the
  union of keys: a reader that widens every row to it does rows x keys work).
- wide_header.csv: 5,000 columns in the header.
- parquet_bomb.parquet: 64 rows of 8 MiB strings, zstd-compressed to a few kB; its footer
  declares 512 MiB uncompressed.
- deep.jsonl: one line of 100,000 nested arrays (a recursive parser's stack).
- not_onnx.onnx: random bytes named like a model.

Run: python3 testdata/hostile/make_hostile.py (pyarrow needed for the Parquet file).
"""
import json
import os
import random

here = os.path.dirname(os.path.abspath(__file__))

with open(os.path.join(here, "unique_keys.jsonl"), "w") as f:
    for i in range(3000):
        f.write(json.dumps({"label": i % 2, "score": 0.5, f"k{i}": i}) + "\n")

with open(os.path.join(here, "wide_header.csv"), "w") as f:
    f.write(",".join(["label", "score"] + [f"c{i}" for i in range(4998)]) + "\n")
    f.write(",".join(["1", "0.5"] + ["0"] * 4998) + "\n")

import pyarrow as pa
import pyarrow.parquet as pq

rows = [("a" * ((8 << 20) - 8)) + f"{i:08d}" for i in range(64)]
table = pa.table({"label": pa.array([i % 2 for i in range(64)], pa.int64()), "score": pa.array([0.5] * 64), "blob": pa.array(rows)})
pq.write_table(table, os.path.join(here, "parquet_bomb.parquet"), compression="zstd", compression_level=19, use_dictionary=False, row_group_size=64)

with open(os.path.join(here, "deep.jsonl"), "w") as f:
    f.write('{"label": 1, "score": 0.5, "x": ' + "[" * 100000 + "]" * 100000 + "}\n")

random.seed(7)
with open(os.path.join(here, "not_onnx.onnx"), "wb") as f:
    f.write(bytes(random.getrandbits(8) for _ in range(4096)))
