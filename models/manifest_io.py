"""Tiny helpers shared by the prior export scripts: sha256 of a file and writing a manifest.

The manifest format is documented in models/README.md; keys are written in a fixed order so the
same inputs give the same file.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

KEY_ORDER = (
    "name", "onnx", "sha256", "input_name", "output_name", "dim", "input_size", "channels", "layout",
    "pixel_scale", "mean", "std", "resize", "source", "license", "preprocess",
)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def write_manifest(path: Path, fields: dict, header: str) -> None:
    """Write `fields` as a flat TOML manifest (known keys first, extras after), atomically."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    keys = [k for k in KEY_ORDER if k in fields] + [k for k in fields if k not in KEY_ORDER]
    lines += [f"{k} = {_toml_value(fields[k])}" for k in keys]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
