"""Plays the data engineer of issue 15: writes embeddings the way another tool would (pyarrow,
no gps.* metadata), and reads gps-ssl's files back to show what pyarrow sees.

  foreign.py write OUT.parquet N DIM SEED [ragged]  -> writes id:int64 + embedding:list<float32>;
                                                       prints the exact cosine top-3 (self
                                                       excluded) of every row as JSON
  foreign.py schema FILE.parquet                    -> prints the Arrow schema metadata as JSON
"""
import json
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

if sys.argv[1] == "write":
    out, n, dim, seed = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    rows = [row.tolist() for row in x]
    if len(sys.argv) > 6:
        rows[3] = rows[3][:-1]
    table = pa.table({
        "id": pa.array(np.arange(n, dtype=np.int64)),
        "embedding": pa.array(rows, type=pa.list_(pa.float32())),
    })
    pq.write_table(table, out)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = u @ u.T
    np.fill_diagonal(sim, -np.inf)
    top = np.argsort(-sim, axis=1, kind="stable")[:, :3]
    print(json.dumps(top.tolist()))
elif sys.argv[1] == "schema":
    meta = pq.read_table(sys.argv[2]).schema.metadata or {}
    print(json.dumps({k.decode(): v.decode() for k, v in meta.items() if k != b"ARROW:schema"}))
