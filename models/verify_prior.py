#!/usr/bin/env python3
"""Check the converted EfficientNet-Lite prior on foolbox's 20 labelled ImageNet samples.

Prints top-1 at the manifest's input_size, checks the graph also runs at 112x112 (symbolic
H, W) and with batch sizes 1 and 20, and exits 1 if top-1 < --min-top1 (default 0.85; this Lite0
conversion scores 17/20 = 0.85 with Pillow-bilinear resizing; misses at rank 2, 2, 5) or if the mean NLL of
the true class > --max-nll (default 0.80; measured Lite0/1/2: 0.620/0.757/0.641; k//2 padding on Lite0
0.731, ImageNet mean/std 0.88, BN eps 1e-5 0.75 — the pinned sha256 is the exact regression guard).

Usage:
  python models/verify_prior.py --manifest models/efficientnet_lite0.toml \
      --images .cache/assets/foolbox/data [--bench]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_embeddings import load_manifest, preprocess, session  # noqa: E402


def throughput(sess, name, size, batch=20, threads=2, seconds=3.0):
    x = np.random.default_rng(0).standard_normal((batch, 3, size, size), dtype=np.float32)
    sess.run(None, {name: x})
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        sess.run(["features"], {name: x})
        n += batch
    return n / (time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--manifest", type=Path, default=Path(__file__).parent / "efficientnet_lite0.toml")
    ap.add_argument("--images", type=Path, default=Path(__file__).parent.parent / ".cache/assets/foolbox/data")
    ap.add_argument("--min-top1", type=float, default=0.85)
    ap.add_argument("--max-nll", type=float, default=0.80,
                    help="mean NLL of the true class (Lite0/1/2 measured 0.620/0.757/0.641)")
    ap.add_argument("--bench", action="store_true", help="also print images/s at input_size and 112, 2 threads")
    args = ap.parse_args(argv)

    m = load_manifest(args.manifest)
    files = sorted(args.images.glob("imagenet_*_*.jpg"))
    if len(files) != 20:
        print(f"error: expected 20 imagenet_<i>_<label>.jpg files in {args.images}, found {len(files)}", file=sys.stderr)
        return 1
    labels = np.array([int(f.stem.split("_")[2]) for f in files])
    sess = session(m)
    name = m["input_name"]

    x = np.stack([preprocess(f, m) for f in files])
    feats, logits = sess.run(["features", "logits"], {name: x})
    top1 = float((logits.argmax(1) == labels).mean())
    z = logits - logits.max(1, keepdims=True)
    nll = float(-(z - np.log(np.exp(z).sum(1, keepdims=True)))[np.arange(20), labels].mean())
    print(f"top-1 @{m['input_size']}: {top1:.2f} ({int(round(top1 * 20))}/20), mean NLL {nll:.3f}")
    if feats.shape != (20, m["dim"]) or not np.isfinite(feats).all():
        print(f"error: features shape {feats.shape}, expected (20, {m['dim']}), or non-finite", file=sys.stderr)
        return 1

    # Batch independence: one image alone gives the same row as in the batch.
    f1 = sess.run(["features"], {name: x[:1]})[0]
    diff = float(np.abs(f1 - feats[:1]).max())
    print(f"batch-1 vs batch-20 max |diff|: {diff:.2e}")

    x112 = np.stack([preprocess(f, m, 112) for f in files])
    f112, l112 = sess.run(["features", "logits"], {name: x112})
    top1_112 = float((l112.argmax(1) == labels).mean())
    print(f"runs @112: features {f112.shape}, top-1 @112: {top1_112:.2f}")
    if f112.shape != (20, m["dim"]) or not np.isfinite(f112).all():
        print("error: bad output at 112x112", file=sys.stderr)
        return 1

    if args.bench:
        s2 = session(m, threads=2)
        for size in (m["input_size"], 112):
            print(f"python onnxruntime, 2 threads, batch 20 @{size}: {throughput(s2, name, size):.1f} img/s")

    if top1 < args.min_top1 or nll > args.max_nll or diff > 1e-4:
        print(f"FAIL: need top-1 >= {args.min_top1} (got {top1:.2f}), NLL <= {args.max_nll} (got {nll:.3f}), "
              f"batch diff <= 1e-4 (got {diff:.1e})", file=sys.stderr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
