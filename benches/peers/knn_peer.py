"""Python peer for benches/knn.rs: faiss-cpu on the same seeded vectors.

exact: IndexFlatIP over unit vectors (= cosine), k+1 results per point (the point itself is
       dropped), all points as queries. Writes the int64 ids [n, k] to OUT_IDS.
hnsw:  IndexHNSWFlat (inner product, M, efConstruction), then efSearch swept over EFS; recall@k
       of each sweep on a seeded sample of SAMPLE queries against brute force (numpy, in
       blocks: no second copy of the data). Writes the sample ids and their exact neighbours
       (int64 [SAMPLE], [SAMPLE, k]) to OUT_TRUTH, so the Rust side scores itself against the
       same truth. `peak_rss` is the process's peak resident set while faiss built and
       searched (reset through /proc/self/clear_refs after the data was loaded).
Prints one JSON object on its last line.

Usage: python knn_peer.py exact DATA N DIM K THREADS OUT_IDS
       python knn_peer.py hnsw  DATA N DIM K THREADS M EF_CONSTRUCTION EFS(comma) SAMPLE OUT_TRUTH
"""
import json
import sys
import time

import faiss
import numpy as np


def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def drop_self(ids, selves, k):
    """Row j of `ids` belongs to point selves[j]; drop it from its own list, keep k."""
    out = np.empty((ids.shape[0], k), dtype=np.int64)
    for j, i in enumerate(selves):
        row = ids[j][ids[j] != i]
        out[j] = row[:k]
    return out


mode, data, n, dim, k, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
faiss.omp_set_num_threads(threads)
x = np.fromfile(data, dtype=np.float32).reshape(n, dim)

if mode == "exact":
    t = time.perf_counter()
    index = faiss.IndexFlatIP(dim)
    index.add(x)
    _, ids = index.search(x, k + 1)
    secs = time.perf_counter() - t
    drop_self(ids, range(n), k).astype(np.int64).tofile(sys.argv[7])
    print(json.dumps({"seconds": secs}))
else:
    m, efc, efs, sample = int(sys.argv[7]), int(sys.argv[8]), [int(e) for e in sys.argv[9].split(",")], int(sys.argv[10])
    rng = np.random.default_rng(0)
    q = np.sort(rng.choice(n, size=min(sample, n), replace=False))
    best_s = np.full((len(q), 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(q), 0), dtype=np.int64)
    for b in range(0, n, 65536):
        s = x[q] @ x[b:b + 65536].T
        own = (q >= b) & (q < b + s.shape[1])
        s[np.nonzero(own)[0], q[own] - b] = -np.inf
        top = np.argpartition(-s, min(k, s.shape[1] - 1), axis=1)[:, :k]
        best_s = np.concatenate([best_s, np.take_along_axis(s, top, 1)], axis=1)
        best_i = np.concatenate([best_i, top + b], axis=1)
        keep = np.argsort(-best_s, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(best_s, keep, 1), np.take_along_axis(best_i, keep, 1)
    truth_ids = best_i.astype(np.int64)
    with open(sys.argv[11], "wb") as f:
        q.astype(np.int64).tofile(f)
        truth_ids.tofile(f)
    truth = [set(r) for r in truth_ids]
    reset_peak()
    t = time.perf_counter()
    index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = efc
    index.add(x)
    build = time.perf_counter() - t
    rows = []
    for ef in efs:
        index.hnsw.efSearch = max(ef, k + 1)
        t = time.perf_counter()
        _, ids = index.search(x, k + 1)
        search = time.perf_counter() - t
        got = drop_self(ids[q], q, k)
        recall = float(np.mean([len(truth[j] & set(got[j])) / k for j in range(len(q))]))
        rows.append({"ef": ef, "build": build, "search": search, "recall": recall})
    print(json.dumps({"rows": rows, "peak_rss": peak_rss()}))
