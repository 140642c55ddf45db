#!/usr/bin/env bash
# The GPU checks, for a machine with a GPU and no Rust toolchain.
#
#   bash scripts/gpu_check.sh build   # here: builds target/gpu-check/ (gps-ssl, the GPU test
#                                     # suite and the ssl_step bench, with --features "vulkan fusion autotune")
#   bash scripts/gpu_check.sh run     # there, in a copy of the repository holding target/gpu-check/
#
# `run` prints the adapters wgpu finds, runs tests/gpu.rs (each loss and gradient, one step of
# every method and a resume, all against the CPU backend; a GPS-SimCLR run; the CLI demo) on
# `wgpu` and on `vulkan`, a one-epoch demo on the GPU, and the step time per method at batch 256
# (small preset, 28 px) and of ResNet-18 at 32 px on each device, next to PyTorch on that
# machine's GPU (when `python3 -c "import torch"` works there).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=target/gpu-check
# Both GPU backends, with burn's kernel fusion and autotuning (what a user on a real GPU builds).
FEATURES="vulkan fusion autotune"
say() { printf '\n== %s\n' "$*"; }

case "${1:-run}" in
build)
  mkdir -p "$OUT"
  opt=(--config 'profile.dev.package."gps-ssl".opt-level=3')
  cargo build --locked --features "$FEATURES" --bin gps-ssl "${opt[@]}"
  cp target/debug/gps-ssl "$OUT/gps-ssl"
  pick() { # the executable of a `cargo ... --no-run --message-format=json` build
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])' "$1" | tail -1
  }
  cp "$(cargo test --locked --features "$FEATURES" --test gpu --no-run --message-format=json "${opt[@]}" | pick gpu)" "$OUT/gpu-tests"
  cp "$(cargo bench --locked --features "$FEATURES" --bench ssl_step --no-run --profile dev --message-format=json "${opt[@]}" | pick ssl_step)" "$OUT/ssl_step"
  # The test binary finds the bundled data through the path it was built at.
  pwd > "$OUT/built-at"
  ls -la "$OUT"
  ;;
run)
  [ -x "$OUT/gps-ssl" ] || { echo "no $OUT/gps-ssl: run 'bash scripts/gpu_check.sh build' on the build machine first" >&2; exit 2; }
  built_at=$(cat "$OUT/built-at")
  if [ "$built_at" != "$PWD" ] && [ ! -e "$built_at" ]; then
    mkdir -p "$(dirname "$built_at")" && ln -s "$PWD" "$built_at"
  fi
  say "adapters"
  "$OUT/gps-ssl" devices
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  for dev in wgpu vulkan; do
    say "tests/gpu.rs on $dev (against the CPU backend)"
    GPS_SSL_TEST_DEVICE=$dev GPS_SSL_BIN="$PWD/$OUT/gps-ssl" "$OUT/gpu-tests" --test-threads 1 || echo "FAILED on $dev"
  done
  say "one-epoch demo on vulkan (raw-pixel prior: ONNX Runtime is not needed)"
  /usr/bin/time -f '%e s wall' "$OUT/gps-ssl" demo --device vulkan --prior pixels --epochs 1 \
    --out "${TMPDIR:-/tmp}/gps-ssl-gpu-demo" || echo "FAILED: demo"
  for dev in vulkan wgpu; do
    say "step times on $dev, batch 256 (small, 28 px) and ResNet-18 (32 px), PyTorch beside"
    SSL_STEP_DEVICE=$dev SSL_STEP_STEPS=10 "$OUT/ssl_step" || echo "FAILED: ssl_step on $dev"
  done
  ;;
*) echo "usage: $0 build|run" >&2; exit 2 ;;
esac
