#!/usr/bin/env python3
"""Export DINOv2 ViT-S/14 (torch.hub facebookresearch/dinov2) to an ONNX prior with its manifest.

NOT runnable offline: needs torch and internet access (torch.hub fetches code and weights), e.g.
  pip install torch onnx onnxruntime
  python models/export_dinov2.py --out-dir models

Graph: input `input` float32 [N, 3, 224, 224] (N symbolic; 224 = 16 x 14-pixel patches, fixed
because the position-embedding interpolation is traced at this size), output `features` float32
[N, 384] = the model's forward (final-norm CLS token). Preprocessing (in the caller, see the
manifest): RGB, resize to 224x224, x/255, ImageNet mean/std.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_clip import check_onnx  # noqa: E402
from manifest_io import sha256_file, write_manifest  # noqa: E402

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
SIZE = 224
VARIANTS = {"vits14": 384, "vitb14": 768}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="export DINOv2 to an ONNX prior")
    ap.add_argument("--variant", choices=sorted(VARIANTS), default="vits14")
    ap.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--opset", type=int, default=17)
    args = ap.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)

    dim = VARIANTS[args.variant]
    model = torch.hub.load("facebookresearch/dinov2", f"dinov2_{args.variant}").eval()
    name = f"dinov2_{args.variant}"
    onnx_path = args.out_dir / f"{name}.onnx"
    x = torch.randn(2, 3, SIZE, SIZE)
    kwargs = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    with torch.no_grad():
        ref = model(x).numpy()
        torch.onnx.export(
            model, (x,), str(onnx_path), input_names=["input"], output_names=["features"],
            dynamic_axes={"input": {0: "N"}, "features": {0: "N"}}, opset_version=args.opset, **kwargs,
        )
    if ref.shape != (2, dim):
        raise SystemExit(f"{name}: expected features [2, {dim}], got {list(ref.shape)}")
    check_onnx(onnx_path, x.numpy(), ref)

    write_manifest(
        args.out_dir / f"{name}.toml",
        {
            "name": name, "onnx": onnx_path.name, "sha256": sha256_file(onnx_path),
            "input_name": "input", "output_name": "features", "dim": dim, "input_size": SIZE,
            "channels": "RGB", "layout": "NCHW", "pixel_scale": 1.0 / 255.0,
            "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "resize": "bilinear",
            "source": f"torch.hub facebookresearch/dinov2 dinov2_{args.variant} (CLS token after final norm)",
            "license": "Apache-2.0",
            "preprocess": f"RGB, bilinear resize to {SIZE}x{SIZE} (no crop), x/255, ImageNet mean/std, NCHW",
        },
        f"Prior manifest (format: models/README.md). Written by models/export_dinov2.py --variant {args.variant}.",
    )
    print(f"wrote {onnx_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
