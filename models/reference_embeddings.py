#!/usr/bin/env python3
"""Reference prior embeddings with Python onnxruntime, using a manifest's preprocessing.

Preprocessing (the contract the Rust `embed` stage must match):
  1. decode with Pillow, convert to RGB (grey images replicated to 3 channels),
  2. resize to input_size x input_size with Pillow's BILINEAR filter (aspect ratio not kept),
  3. float32 (p * pixel_scale - mean[c]) / std[c] on 0..255 pixels p, layout NCHW.

Usage:
  python models/reference_embeddings.py --manifest models/efficientnet_lite0.toml \
      --out emb.npy [--json emb.json] [--size 112] [--output features] IMAGE...
Writes a float32 [n, dim] .npy (rows in argument order) and optionally JSON
{"manifest", "input_size", "output", "files", "embeddings"}.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image


def load_manifest(path: Path) -> dict:
    with open(path, "rb") as f:
        m = tomllib.load(f)
    m["onnx_path"] = (path.parent / m["onnx"]).resolve()
    return m


def preprocess(path: Path, manifest: dict, size: int | None = None) -> np.ndarray:
    """One image -> float32 [3, size, size] following the manifest."""
    size = size or manifest["input_size"]
    img = Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR)
    x = np.asarray(img, dtype=np.float32)  # [H, W, 3], 0..255
    scale = manifest["pixel_scale"]
    if isinstance(scale, (int, float)):  # a string pixel_scale is only a description
        x = x * np.float32(scale)
    x = (x - np.asarray(manifest["mean"], np.float32)) / np.asarray(manifest["std"], np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def session(manifest: dict, threads: int = 0) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(manifest["onnx_path"]), opts, providers=["CPUExecutionProvider"])


def embed(files, manifest: dict, size: int | None = None, output: str | None = None, batch: int = 16):
    """Run the prior on `files`; returns float32 [n, dim] of output `output` (default: manifest's)."""
    sess = session(manifest)
    output = output or manifest["output_name"]
    rows = []
    for i in range(0, len(files), batch):
        x = np.stack([preprocess(Path(f), manifest, size) for f in files[i : i + batch]])
        rows.append(sess.run([output], {manifest["input_name"]: x})[0])
    return np.concatenate(rows).astype(np.float32)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="reference prior embeddings (python onnxruntime)")
    ap.add_argument("--manifest", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path, help="output .npy, float32 [n, dim]")
    ap.add_argument("--json", type=Path, help="also write the embeddings as JSON")
    ap.add_argument("--size", type=int, help="input resolution (default: manifest input_size)")
    ap.add_argument("--output", help="graph output to read (default: manifest output_name)")
    ap.add_argument("images", nargs="+")
    args = ap.parse_args(argv)

    m = load_manifest(args.manifest)
    emb = embed(args.images, m, args.size, args.output)
    np.save(args.out, emb)
    if args.json:
        args.json.write_text(json.dumps({
            "manifest": m["name"], "input_size": args.size or m["input_size"],
            "output": args.output or m["output_name"], "files": args.images,
            "embeddings": emb.tolist(),
        }))
    print(f"wrote {args.out} {emb.shape}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
