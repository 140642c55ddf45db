"""Python peer for benches/embed.rs: a plain onnxruntime + Pillow embedding loop.

Same work as the Rust side: decode each file (PNG or JPEG) with Pillow, convert to RGB, resize to SIZE with
BILINEAR, (x - mean) / std, NCHW float32, batches of BATCH, run the prior's output, L2-normalise.
Prints `images_per_s=<float>` on its last line.

Usage: python embed_peer.py MODEL.onnx SIZE THREADS BATCH FILE_LIST
"""
import sys
import time

import numpy as np
import onnxruntime as ort
from PIL import Image

model, size, threads, batch, listing = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
files = [l.strip() for l in open(listing) if l.strip()]
opts = ort.SessionOptions()
opts.intra_op_num_threads = threads
opts.inter_op_num_threads = 1
sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
mean = np.float32(127.0)
std = np.float32(128.0)


def prep(f):
    img = Image.open(f).convert("RGB").resize((size, size), Image.BILINEAR)
    return ((np.asarray(img, dtype=np.float32) - mean) / std).transpose(2, 0, 1)


def run(fs):
    x = np.ascontiguousarray(np.stack([prep(f) for f in fs]))
    y = sess.run(["features"], {"input": x})[0]
    return y / np.linalg.norm(y, axis=1, keepdims=True)


run(files[:batch])  # warm-up
t0 = time.perf_counter()
out = [run(files[i:i + batch]) for i in range(0, len(files), batch)]
dt = time.perf_counter() - t0
assert sum(len(o) for o in out) == len(files)
print(f"images_per_s={len(files) / dt:.2f}")
