#!/usr/bin/env python3
"""Write a balanced, seeded Fashion-MNIST subset as gzip IDX files (numpy only).

Reads the full set installed by the Debian package `dataset-fashion-mnist`
(/usr/share/datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz) and writes
1,000 images per class from train (10,000) and 200 per class from t10k (2,000) to
data/fashion-mnist/, in the original IDX format, gzip with mtime=0 so the bytes are reproducible.
The selected original row indices go to data/fashion-mnist/indices.json.

Run:  .venv/bin/python data/make_fashion_subset.py [--src DIR] [--out DIR] [--seed N]
"""
import argparse
import gzip
import io
import json
import os
import struct
import subprocess

import numpy as np

PER_CLASS = {"train": 1000, "t10k": 200}
DEFAULT_SEED = 20231125


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    assert arr.size == int(np.prod(dims)), (path, arr.size, dims)
    return magic, arr.reshape(dims)


def write_idx_gz(path, magic, arr):
    raw = struct.pack(">I", magic) + struct.pack(">" + "I" * arr.ndim, *arr.shape) + arr.tobytes()
    buf = io.BytesIO()
    # mtime=0 and no file name in the header: identical bytes on every run.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as g:
        g.write(raw)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(buf.getvalue())
    os.replace(tmp, path)


def package_version():
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "dataset-fashion-mnist"],
            capture_output=True, text=True, check=True,
        )
        return out.stdout.strip()
    except Exception:  # noqa: BLE001 - provenance only
        return "unknown"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--src", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--out", default=os.path.join(here, "fashion-mnist"))
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    indices = {}
    for split, per_class in PER_CLASS.items():
        im_magic, images = read_idx(os.path.join(args.src, f"{split}-images-idx3-ubyte.gz"))
        lb_magic, labels = read_idx(os.path.join(args.src, f"{split}-labels-idx1-ubyte.gz"))
        assert im_magic == 0x803 and lb_magic == 0x801
        chosen = []
        for c in range(10):
            rows = np.flatnonzero(labels == c)
            chosen.append(rng.choice(rows, size=per_class, replace=False))
        # Interleave classes in a seeded random order (not sorted by class).
        sel = np.concatenate(chosen)
        sel = sel[rng.permutation(sel.size)]
        write_idx_gz(os.path.join(args.out, f"{split}-images-idx3-ubyte.gz"), 0x803, images[sel])
        write_idx_gz(os.path.join(args.out, f"{split}-labels-idx1-ubyte.gz"), 0x801, labels[sel])
        counts = np.bincount(labels[sel], minlength=10)
        assert (counts == per_class).all(), counts
        indices[split] = [int(i) for i in sel]
        print(f"{split}: {sel.size} images, {per_class}/class")
    with open(os.path.join(args.out, "indices.json"), "w") as f:
        json.dump({"seed": args.seed, "source": args.src, **indices}, f)
        f.write("\n")
    version = package_version()
    with open(os.path.join(args.out, "SOURCE.md"), "w") as f:
        f.write(f"""# Fashion-MNIST balanced subset

- **Origin**: Fashion-MNIST by Zalando Research (https://github.com/zalandoresearch/fashion-mnist),
  as installed by the Debian package `dataset-fashion-mnist` version `{version}`
  (`/usr/share/datasets/fashion-mnist/`).
- **Licence**: MIT, Copyright (c) 2017 Zalando SE.
- **Made by**: `data/make_fashion_subset.py` (numpy only), seed `{args.seed}`:
  `python data/make_fashion_subset.py` regenerates these files byte for byte.
- **Contents**: balanced, seeded random subset in the original IDX format (gzip, mtime 0):
  - `train-images-idx3-ubyte.gz` / `train-labels-idx1-ubyte.gz`: 10,000 images of the 60,000-image
    train split, 1,000 per class;
  - `t10k-images-idx3-ubyte.gz` / `t10k-labels-idx1-ubyte.gz`: 2,000 images of the 10,000-image
    test split, 200 per class.
  Rows are in a seeded random order (classes interleaved).
- **Row provenance**: `indices.json` maps each row to its row in the original file
  (`indices["train"][i]` is the original train row of subset row `i`).
- Classes: 0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal, 6 Shirt, 7 Sneaker,
  8 Bag, 9 Ankle boot. Images 28×28, 1 channel, u8.
""")


if __name__ == "__main__":
    main()
