#!/usr/bin/env python3
"""Check a prior manifest: required keys present and typed, the .onnx exists, its sha256 matches.

Usage: python models/check_manifest.py models/efficientnet_lite0.toml
Exits 0 and prints "ok" on success; exits 1 with a message naming the file and key otherwise.
"""

from __future__ import annotations

import hashlib
import sys
import tomllib
from pathlib import Path

# Key -> accepted TOML types. `channels` is "RGB" (3 also accepted); `pixel_scale` is the number the
# 0..255 pixels are multiplied by before (x - mean) / std (a descriptive string is also accepted).
REQUIRED = {
    "name": str, "onnx": str, "sha256": str, "input_name": str, "output_name": str, "dim": int,
    "input_size": int, "channels": (str, int), "layout": str, "pixel_scale": (float, int, str),
    "mean": list, "std": list, "resize": str, "source": str, "license": str,
}


def check(path: Path) -> str | None:
    """None if `path` is a valid manifest whose model file matches, else the reason."""
    try:
        with open(path, "rb") as f:
            m = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        return f"cannot read manifest: {e}"
    for key, ty in REQUIRED.items():
        if key not in m:
            return f"missing key `{key}`"
        if not isinstance(m[key], ty) or isinstance(m[key], bool):
            names = " or ".join(t.__name__ for t in (ty if isinstance(ty, tuple) else (ty,)))
            return f"key `{key}` should be a {names}, found {m[key]!r}"
    if m["channels"] not in ("RGB", 3):
        return f"key `channels` is {m['channels']!r}; only \"RGB\" is supported"
    for key in ("mean", "std"):
        v = m[key]
        if len(v) != 3 or not all(isinstance(x, (int, float)) for x in v):
            return f"key `{key}` should list 3 numbers, found {v!r}"
    if any(s == 0 for s in m["std"]):
        return "key `std` contains 0"
    if m["resize"] != "bilinear":
        return f"key `resize` is {m['resize']!r}; only \"bilinear\" is supported"
    if m["layout"] != "NCHW":
        return f"key `layout` is {m['layout']!r}; only \"NCHW\" is supported"
    if not m["sha256"]:
        return "key `sha256` is empty: run the export script that writes this manifest"
    if len(m["sha256"]) != 64 or any(c not in "0123456789abcdefABCDEF" for c in m["sha256"]):
        return f"key `sha256` should be 64 hex digits, found {m['sha256']!r}"
    model = path.parent / m["onnx"]
    if not model.is_file():
        return f"model file {model} (key `onnx`) does not exist; run scripts/setup.sh or the export script"
    h = hashlib.sha256()
    with open(model, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if h.hexdigest() != m["sha256"].lower():
        return f"sha256 of {model} is {h.hexdigest()}, manifest says {m['sha256']} (stale or different model)"
    return None


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: check_manifest.py <manifest.toml>", file=sys.stderr)
        return 2
    path = Path(argv[0])
    err = check(path)
    if err:
        print(f"error: {path}: {err}", file=sys.stderr)
        return 1
    print(f"ok: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
