#!/usr/bin/env bash
# Sets everything up (idempotent) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# `--features wgpu` (or vulkan) also runs tests/gpu.rs, on lavapipe where there is no GPU.
case " $* " in
  *wgpu*|*vulkan*) export GPS_SSL_VULKAN=1 ;;
esac
# `--features cuda`: LLVM for burn-cuda's build, installed from PyPI by the setup.
case " $* " in
  *cuda*) export GPS_SSL_CUDA=1 ;;
esac
bash scripts/setup.sh
# tests/export.rs checks the exported safetensors against torchvision (Debian's CPU builds; the
# system python3, not the venv).
if ! /usr/bin/python3 -c "import torch, torchvision" 2>/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-torch python3-torchvision >/dev/null
fi
# Python side: the prior converter's unit tests and the converted prior's ImageNet top-1 check.
.venv/bin/python -m unittest discover -s models -p 'test_*.py'
.venv/bin/python models/verify_prior.py
cargo test --locked "$@"
