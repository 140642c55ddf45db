"""Reference features for tests/export.rs: load gps-ssl's exported encoder.safetensors into
torchvision's ResNet with one strict `load_state_dict` call and run it on the given inputs.

    /usr/bin/python3 torch_features.py WEIGHTS ARCH STEM CHANNELS INPUT N H W OUT

ARCH is resnet18 | resnet50; STEM is imagenet (torchvision's own stem) or small (the CIFAR
adaptation: conv1 = 3x3 stride 1, maxpool = Identity). INPUT holds N*CHANNELS*H*W float32
little-endian values (NCHW, normalised); OUT receives the N x D features (float32 LE).
The safetensors file is parsed here (8-byte header length, JSON header, raw data) so the test
needs only Debian's python3-torch and python3-torchvision.
"""
import json
import struct
import sys

import numpy as np
import torch
import torchvision

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    body = data[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        array = np.frombuffer(body[start:end], dtype=DTYPES[info["dtype"]])
        out[name] = torch.from_numpy(array.reshape(info["shape"]).copy())
    return out


def main():
    weights, arch, stem, channels, inp, n, h, w, out = sys.argv[1:]
    channels, n, h, w = int(channels), int(n), int(h), int(w)
    model = getattr(torchvision.models, arch)(weights=None)
    if stem == "small":
        model.conv1 = torch.nn.Conv2d(channels, 64, 3, 1, 1, bias=False)
        model.maxpool = torch.nn.Identity()
    elif channels != 3:
        model.conv1 = torch.nn.Conv2d(channels, 64, 7, 2, 3, bias=False)
    model.fc = torch.nn.Identity()
    model.load_state_dict(read_safetensors(weights), strict=True)
    model.eval()
    x = np.fromfile(inp, dtype="<f4").reshape(n, channels, h, w)
    with torch.no_grad():
        y = model(torch.from_numpy(x)).numpy().astype("<f4")
    y.tofile(out)


if __name__ == "__main__":
    main()
