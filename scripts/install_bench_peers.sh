#!/usr/bin/env bash
# Python peers of `cargo bench --bench loader` (benches/peers/aug_peer.py).
# torchvision comes from Debian (system /usr/bin/python3, not the venv); albumentations from PyPI
# into the project venv (scripts/requirements-bench.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! /usr/bin/python3 -c "import torch, torchvision" 2>/dev/null; then
  apt-get install -y python3-torch python3-torchvision
fi
VENV="${VENV:-.venv}"
"$VENV/bin/pip" install -r scripts/requirements-bench.txt
# `cargo bench --bench ssl_step` (benches/peers/ssl_step_peer.py) needs only python3-torch (above).
/usr/bin/python3 -c "import torch" 2>/dev/null || apt-get install -y python3-torch
