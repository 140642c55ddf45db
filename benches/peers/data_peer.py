#!/usr/bin/env python3
"""Python peer of `cargo bench --bench datasets`: the same reads with numpy / Pillow / pyarrow.

Usage: data_peer.py <idx_images.gz> <cifar.bin> <png_folder> <table.parquet>
Prints one JSON object of seconds per task (single thread).
"""
import gzip
import json
import os
import sys
import time

import numpy as np
from PIL import Image
import pyarrow.parquet as pq


def timed(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def idx_load(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    n, r, c = np.frombuffer(raw[4:16], ">u4")
    return np.frombuffer(raw, np.uint8, offset=16).reshape(n, r, c)


def cifar_load(path):
    recs = np.fromfile(path, np.uint8).reshape(-1, 3073)
    return recs[:, 0].copy(), np.ascontiguousarray(recs[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def folder_decode(root):
    out = 0
    for cls in sorted(os.listdir(root)):
        d = os.path.join(root, cls)
        for name in sorted(os.listdir(d)):
            out += np.asarray(Image.open(os.path.join(d, name)).convert("RGB")).shape[0]
    return out


def parquet_decode(path):
    import io
    t = pq.read_table(path, columns=["image", "label"])
    imgs = t.column("image").combine_chunks().field("bytes").to_pylist()
    return sum(np.asarray(Image.open(io.BytesIO(b)).convert("RGB")).shape[0] for b in imgs)


def main():
    idx, cifar, folder, table = sys.argv[1:5]
    res = {
        "idx_load": timed(lambda: idx_load(idx)),
        "cifar_load": timed(lambda: cifar_load(cifar)),
        "folder_decode": timed(lambda: folder_decode(folder), 2),
        "parquet_decode": timed(lambda: parquet_decode(table), 2),
    }
    print(json.dumps(res))


if __name__ == "__main__":
    main()
