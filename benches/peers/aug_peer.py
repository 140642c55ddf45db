#!/usr/bin/env python3
"""Python peers of the gps-ssl augmentation benchmark (benches/loader.rs runs this).

Measures pairs/s on ONE core for the same images and recipe as the Rust side:
  torchvision: transforms through torch.utils.data.DataLoader(num_workers=0), torch threads = 1
               (run with Debian's /usr/bin/python3: apt-get install python3-torchvision)
  albumentations: a plain loop over numpy images (pip: albumentations==2.0.8)

Usage: aug_peer.py LIB RECIPE SIZE SOURCE PATH PAIRS [gps]
  LIB      torchvision | albumentations
  RECIPE   rhflip | simclr
  SIZE     output side in pixels
  SOURCE   idx (PATH = gzip IDX images file) | jpeg (PATH = a folder of imagenet_*.jpg, decoded
           up front) | jpegfile (PATH = a folder of *.jpg, each pair reads and decodes its file:
           cv2.imread for albumentations, PIL for torchvision, as their users load images)
  gps      (albumentations, jpegfile only) GPS pairs: view B from one of the 5 next files (seeded
           draw), each file read and decoded for its own view, as the Rust side's GPS rows do
Prints one JSON line: {"lib":..., "pairs_per_s":..., "pairs":...}.
"""
import gzip
import json
import os
import struct
import sys
import time

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def load_images(source, path, limit=2000):
    import numpy as np
    if source == "idx":
        with gzip.open(path, "rb") as f:
            raw = f.read()
        _, n, h, w = struct.unpack(">IIII", raw[:16])
        n = min(n, limit)
        return [np.frombuffer(raw, np.uint8, h * w, 16 + i * h * w).reshape(h, w) for i in range(n)]
    from PIL import Image
    if source == "jpegfile":
        return [os.path.join(path, f) for f in sorted(os.listdir(path)) if f.endswith(".jpg")]
    files = sorted(f for f in os.listdir(path) if f.startswith("imagenet_") and f.endswith(".jpg"))
    return [np.asarray(Image.open(os.path.join(path, f)).convert("RGB")) for f in files]


def kernel_size(size):
    k = max(3, int(round(0.1 * size)))
    return k | 1


def torchvision_rate(recipe, size, images, pairs):
    import torch
    from PIL import Image
    from torchvision import transforms as T
    torch.set_num_threads(1)
    files = isinstance(images[0], str)
    grey = not files and images[0].ndim == 2
    mean, std = ([sum(MEAN) / 3], [sum(STD) / 3]) if grey else (MEAN, STD)
    if recipe == "rhflip":
        ops = [T.Resize((size, size))] if files or images[0].shape[0] != size else []
        ops += [T.RandomHorizontalFlip()]
    else:
        ops = [
            T.RandomResizedCrop(size, scale=(0.08, 1.0)),
            T.RandomHorizontalFlip(),
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            T.RandomGrayscale(p=0.2),
            T.RandomApply([T.GaussianBlur(kernel_size(size), sigma=(0.1, 2.0))], p=0.5),
        ]
    tf = T.Compose(ops + [T.ToTensor(), T.Normalize(mean, std)])
    pil = images if files else [Image.fromarray(im) for im in images]

    class Pairs(torch.utils.data.Dataset):
        def __len__(self):
            return pairs

        def __getitem__(self, i):
            im = pil[i % len(pil)]
            if files:
                im = Image.open(im).convert("RGB")
            return tf(im), tf(im)

    loader = torch.utils.data.DataLoader(Pairs(), batch_size=64, num_workers=0)
    start = time.perf_counter()
    for _ in loader:
        pass
    return pairs / (time.perf_counter() - start)


def albumentations_rate(recipe, size, images, pairs, gps=False):
    import albumentations as A
    import numpy as np
    files = isinstance(images[0], str)
    if files:
        import cv2
    grey = not files and images[0].ndim == 2
    mean, std = ((sum(MEAN) / 3,), (sum(STD) / 3,)) if grey else (MEAN, STD)
    if recipe == "rhflip":
        ops = [A.Resize(size, size)] if files or images[0].shape[0] != size else []
        ops += [A.HorizontalFlip(p=0.5)]
    else:
        k = kernel_size(size)
        ops = [
            A.RandomResizedCrop(size=(size, size), scale=(0.08, 1.0)),
            A.HorizontalFlip(p=0.5),
            A.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, p=0.8),
        ]
        if not grey:
            ops.append(A.ToGray(p=0.2))
        ops.append(A.GaussianBlur(blur_limit=(k, k), sigma_limit=(0.1, 2.0), p=0.5))
    tf = A.Compose(ops + [A.Normalize(mean=mean, std=std)])

    def view(im):
        x = tf(image=im)["image"]
        return np.ascontiguousarray(x.transpose(2, 0, 1)) if x.ndim == 3 else x[None]

    import random
    draw = random.Random(7)

    def read(path):
        return cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)

    start = time.perf_counter()
    batch = []
    for i in range(pairs):
        im = images[i % len(images)]
        if gps:
            other = images[(i + 1 + draw.randrange(5)) % len(images)]
            batch.append((view(read(im)), view(read(other))))
        else:
            if files:
                im = read(im)
            batch.append((view(im), view(im)))
        if len(batch) == 64:
            np.stack([a for a, _ in batch]); np.stack([b for _, b in batch])
            batch = []
    return pairs / (time.perf_counter() - start)


def main():
    lib, recipe, size, source, path, pairs = sys.argv[1:7]
    gps = sys.argv[7:8] == ["gps"]
    if gps and (lib != "albumentations" or source != "jpegfile"):
        sys.exit("gps pairs: albumentations with jpegfile only")
    size, pairs = int(size), int(pairs)
    try:
        import cv2
        cv2.setNumThreads(1)
    except ImportError:
        pass
    images = load_images(source, path)
    fn = torchvision_rate if lib == "torchvision" else albumentations_rate
    rate = albumentations_rate(recipe, size, images, pairs, gps) if gps else fn(recipe, size, images, pairs)
    print(json.dumps({"lib": lib, "pairs_per_s": rate, "pairs": pairs}))


if __name__ == "__main__":
    main()
