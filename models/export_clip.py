#!/usr/bin/env python3
"""Export OpenAI CLIP image towers (via open_clip) to ONNX priors, each with its manifest.

NOT runnable offline: needs torch, open_clip_torch and internet access for the weights, e.g.
  pip install torch open_clip_torch onnx onnxruntime
  python models/export_clip.py --model rn50 --out-dir models
  python models/export_clip.py --model vit_b16 --out-dir models
then copy the .onnx next to the committed manifest and run models/check_manifest.py on it.

Graph: input `input` float32 [N, 3, 224, 224] (N symbolic; H and W are fixed because the
attention-pool / ViT position embeddings are), output `features` float32 [N, dim] =
`model.encode_image(x)` (the CLIP image embedding, not L2-normalised; the embed stage normalises).
Preprocessing (in the caller, see the manifest): RGB, resize to 224x224, x/255, CLIP mean/std.
CLIP itself resizes the shorter side (bicubic) and centre-crops; gps-ssl resizes the whole image
bilinearly to a square, which changes embeddings slightly but consistently.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from manifest_io import sha256_file, write_manifest  # noqa: E402

# name -> (open_clip architecture, pretrained tag, embedding dim)
MODELS = {
    "rn50": ("RN50", "openai", 1024),
    "vit_b16": ("ViT-B-16", "openai", 512),
}
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
SIZE = 224


class ImageTower(torch.nn.Module):
    """The CLIP image encoder alone: [N, 3, 224, 224] -> [N, dim]."""

    def __init__(self, clip):
        super().__init__()
        self.clip = clip

    def forward(self, x):
        return self.clip.encode_image(x)


def export(key: str, out_dir: Path, opset: int) -> Path:
    import open_clip

    arch, tag, dim = MODELS[key]
    clip, _, _ = open_clip.create_model_and_transforms(arch, pretrained=tag)
    tower = ImageTower(clip).eval()
    name = f"clip_{key}"
    onnx_path = out_dir / f"{name}.onnx"
    x = torch.randn(2, 3, SIZE, SIZE)
    kwargs = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    with torch.no_grad():
        ref = tower(x).numpy()
        torch.onnx.export(
            tower, (x,), str(onnx_path), input_names=["input"], output_names=["features"],
            dynamic_axes={"input": {0: "N"}, "features": {0: "N"}}, opset_version=opset, **kwargs,
        )
    if ref.shape != (2, dim):
        raise SystemExit(f"{arch}: expected features [2, {dim}], got {list(ref.shape)}")
    check_onnx(onnx_path, x.numpy(), ref)

    write_manifest(
        out_dir / f"{name}.toml",
        {
            "name": name, "onnx": onnx_path.name, "sha256": sha256_file(onnx_path),
            "input_name": "input", "output_name": "features", "dim": dim, "input_size": SIZE,
            "channels": "RGB", "layout": "NCHW", "pixel_scale": 1.0 / 255.0,
            "mean": CLIP_MEAN, "std": CLIP_STD, "resize": "bilinear",
            "source": f"open_clip {arch} pretrained={tag} (OpenAI CLIP weights), image tower, encode_image",
            "license": "MIT",
            "preprocess": f"RGB, bilinear resize to {SIZE}x{SIZE} (no crop), x/255, CLIP mean/std, NCHW",
        },
        f"Prior manifest (format: models/README.md). Written by models/export_clip.py --model {key}.",
    )
    return onnx_path


def check_onnx(path: Path, x, ref) -> None:
    """Compare onnxruntime with torch on the export input (skipped with a note if ort is absent)."""
    try:
        import onnxruntime as ort
    except ImportError:
        print("note: onnxruntime not installed; skipped the torch-vs-onnx comparison", file=sys.stderr)
        return
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["features"], {"input": x})[0]
    err = float(abs(got - ref).max())
    print(f"{path.name}: max |onnxruntime - torch| = {err:.2e}")
    if err > 1e-3:
        raise SystemExit(f"{path}: onnxruntime differs from torch by {err:.2e}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="export CLIP image towers to ONNX priors")
    ap.add_argument("--model", choices=sorted(MODELS) + ["all"], default="all")
    ap.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--opset", type=int, default=17)
    args = ap.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for key in sorted(MODELS) if args.model == "all" else [args.model]:
        print(f"wrote {export(key, args.out_dir, args.opset)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
