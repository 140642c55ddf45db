#!/usr/bin/env bash
# The GPU check: built here, run on a GPU machine that has no Rust and no internet.
#
#   bash scripts/gpu_check.sh build        # builds one archive (last line: its path), <= 48 MiB
#   bash scripts/gpu_check.sh run [ARCHIVE] # there, from a plain copy of the repository
#
# `build` makes one `gps-ssl` binary with `--features "vulkan cuda fusion autotune"` (what a
# user builds for a real GPU; GPS_CHECK_FEATURES overrides), stripped and xz-compressed into
# target/gpu-check/gps-ssl-gpu-check.tar.xz with a BUILD-INFO file. Every check lives in that
# binary (`gps-ssl selftest`, `gps-ssl step-time`, `gps-ssl demo`): LLVM is linked into every
# CUDA binary, so one binary is what fits. The CUDA build needs LLVM 23, which
# scripts/install_llvm.sh installs from PyPI.
#
# `run` unpacks the archive (python3's tarfile, no xz binary needed) and prints, on the
# devices of GPS_CHECK_DEVICES (default "cuda vulkan"):
#   1. the adapters (`gps-ssl devices`, nvidia-smi);
#   2. `gps-ssl selftest` on each device: every loss and gradient, one step of each method, a
#      resume across devices, a GPS-SimCLR run that learns, all against the CPU backend;
#   3. the step time of every method at batch GPS_CHECK_BATCH (256) for `small` 28 px and
#      ResNet-18 32x32x3 on the first device, beside PyTorch on the same GPU in the same
#      invocation (the machine's python3 + torch, `benches/peers/ssl_step_peer.py`: eager fp32,
#      and torch.autocast(bfloat16)), with each process's peak GPU memory (nvidia-smi, sampled
#      every 100 ms, minus the idle reading);
#   4. a one-epoch `gps-ssl demo --device <first device> --prior pixels` and its wall time.
# Each stage runs under a time limit, so the whole run stays within about 8 minutes; a failed
# stage prints FAILED and the run goes on. The summary is also written to
# ${GPS_CHECK_OUT:-$TMPDIR/gps-ssl-gpu-check}/summary.txt. GPS_CHECK_BATCH, GPS_CHECK_STEPS (10) and
# GPS_CHECK_PYTHON (python3, the one with torch) adjust the step times; a dry run without a GPU:
#   GPS_CHECK_FEATURES=wgpu bash scripts/gpu_check.sh build
#   GPS_CHECK_DEVICES=wgpu GPS_CHECK_BATCH=16 GPS_CHECK_STEPS=2 bash scripts/gpu_check.sh run
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
OUT_DIR=target/gpu-check
ARCHIVE_NAME=gps-ssl-gpu-check.tar.xz
say() { printf '\n== %s\n' "$*"; }

case "${1:-}" in
build)
  FEATURES=${GPS_CHECK_FEATURES:-"vulkan cuda fusion autotune"}
  case " $FEATURES " in *" cuda "*) bash scripts/install_llvm.sh ;; esac
  # The dev profile (dependencies at opt-level 3, shared with the test build) with this crate
  # as a release build compiles it (scripts/demo.sh does the same).
  cargo build --locked --features "$FEATURES" --bin gps-ssl \
    --config 'profile.dev.package."gps-ssl".opt-level=3' \
    --config 'profile.dev.package."gps-ssl".debug-assertions=false' \
    --config 'profile.dev.package."gps-ssl".overflow-checks=false'
  rm -rf "$OUT_DIR/stage"
  mkdir -p "$OUT_DIR/stage"
  BUILT="${CARGO_TARGET_DIR:-target}/debug/gps-ssl"
  cp "$BUILT" "$OUT_DIR/stage/gps-ssl"
  # What the bytes are: the largest crates by code size (before stripping).
  if command -v nm >/dev/null; then
    nm --size-sort -S -C "$BUILT" 2>/dev/null | python3 -c '
import collections, re, sys
size = collections.Counter()
for line in sys.stdin:
    parts = line.split(None, 3)
    if len(parts) < 4 or parts[2] not in "tTwW":
        continue
    name = parts[3].lstrip("<&*( ")
    m = re.match(r"(?:_<)?([A-Za-z_][A-Za-z0-9_]*)::", name)
    size[m.group(1) if m else ("llvm (C++)" if name.startswith("llvm::") or "llvm" in name.lower() else "other")] += int(parts[1], 16)
total = sum(size.values())
print(f"code by crate (of {total / 2**20:.0f} MiB of functions):")
for k, v in size.most_common(12):
    print(f"  {k:<28} {v / 2**20:7.1f} MiB")' || true
  fi
  strip --strip-all "$OUT_DIR/stage/gps-ssl"
  {
    echo "features: $FEATURES"
    echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)')"
    echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m), $(rustc --version)"
    echo "binary: $(stat -c %s "$OUT_DIR/stage/gps-ssl") bytes stripped, sha256 $(sha256sum "$OUT_DIR/stage/gps-ssl" | cut -d' ' -f1)"
  } > "$OUT_DIR/stage/BUILD-INFO"
  cat "$OUT_DIR/stage/BUILD-INFO"
  XZ_OPT="-9 -T2" tar -C "$OUT_DIR/stage" -cJf "$OUT_DIR/$ARCHIVE_NAME.partial" gps-ssl BUILD-INFO
  mv "$OUT_DIR/$ARCHIVE_NAME.partial" "$OUT_DIR/$ARCHIVE_NAME"
  size=$(stat -c %s "$OUT_DIR/$ARCHIVE_NAME")
  echo "archive: $size bytes ($(( size / 1048576 )) MiB; limit 48 MiB)"
  [ "$size" -le $(( 48 * 1048576 )) ] || { echo "the archive is over 48 MiB" >&2; exit 1; }
  echo "$ROOT/$OUT_DIR/$ARCHIVE_NAME"
  ;;
run)
  ARCHIVE=${2:-$OUT_DIR/$ARCHIVE_NAME}
  [ -f "$ARCHIVE" ] || { echo "no $ARCHIVE: run 'bash scripts/gpu_check.sh build' on the build machine and carry the archive" >&2; exit 2; }
  WORK=${GPS_CHECK_OUT:-${TMPDIR:-/tmp}/gps-ssl-gpu-check}
  rm -rf "$WORK" && mkdir -p "$WORK/bin"
  python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$ARCHIVE" "$WORK/bin"
  BIN="$WORK/bin/gps-ssl"
  chmod +x "$BIN"
  DEVICES=${GPS_CHECK_DEVICES:-"cuda vulkan"}
  FIRST=${DEVICES%% *}
  BATCH=${GPS_CHECK_BATCH:-256}
  STEPS=${GPS_CHECK_STEPS:-10}
  # Every stage has its own time limit, and all of them together this budget (8 minutes less
  # the unpacking and the machine's start), so a hung kernel cannot eat the machine's time.
  BUDGET=${GPS_CHECK_BUDGET:-440}
  DEADLINE=$(( $(date +%s) + BUDGET ))
  SUMMARY="$WORK/summary.txt"
  : > "$SUMMARY"
  note() { echo "$*" | tee -a "$SUMMARY"; }
  export RUST_LOG=${RUST_LOG:-warn}
  PY=${GPS_CHECK_PYTHON:-python3}  # the Python with torch
  HAVE_SMI=0; command -v nvidia-smi >/dev/null && HAVE_SMI=1
  gpu_mib() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1; }
  # peak NAME LIMIT KEEP CMD...: runs CMD under `timeout LIMIT` (its output also appended to the
  # summary when KEEP=1), sampling the GPU's memory; notes the peak above the idle reading
  # (nvidia-smi sees every process's memory, the CUDA context included).
  peak() {
    local name=$1 limit=$2 keep=$3 rc=0 idle=0 sampler="" left
    shift 3
    left=$(( DEADLINE - $(date +%s) ))
    if [ "$left" -lt 15 ]; then
      note "SKIPPED: $name (the run's ${BUDGET} s budget is spent)"
      return 0
    fi
    [ "$limit" -le "$left" ] || limit=$left
    if [ "$HAVE_SMI" = 1 ]; then
      idle=$(gpu_mib)
      nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$WORK/$name.mem" &
      sampler=$!
    fi
    if [ "$keep" = 1 ]; then
      timeout "$limit" "$@" | tee -a "$SUMMARY" || rc=${PIPESTATUS[0]}
    else
      timeout "$limit" "$@" || rc=$?
    fi
    if [ -n "$sampler" ]; then
      kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
      note "  peak GPU memory of $name: $(( $(sort -n "$WORK/$name.mem" | tail -1) - idle )) MiB (nvidia-smi, above idle $idle MiB)"
    fi
    if [ "$rc" != 0 ]; then
      note "FAILED: $name (exit $rc$([ "$rc" = 124 ] && echo ", over its ${limit} s limit"))"
    fi
    return 0
  }

  say "build and machine"
  cat "$WORK/bin/BUILD-INFO"
  [ "$HAVE_SMI" = 1 ] && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.is_available() and torch.cuda.get_device_name(0))' 2>/dev/null || echo "torch: not importable by python3"

  say "adapters"
  "$BIN" devices || note "FAILED: gps-ssl devices"

  for dev in $DEVICES; do
    say "selftest on $dev (against the CPU backend)"
    peak "selftest-$dev" 120 1 "$BIN" selftest --device "$dev"
  done

  say "step time at batch $BATCH, $STEPS steps after a warm-up, on $FIRST; PyTorch on the same GPU"
  torch_dev=cpu; [ "$HAVE_SMI" = 1 ] && torch_dev=cuda
  threads=$(nproc)
  for case in "small 28 1" "resnet18 32 3"; do
    read -r arch size ch <<<"$case"
    peak "burn-$FIRST-$arch" 120 1 "$BIN" step-time --device "$FIRST" --batch "$BATCH" \
      --steps "$STEPS" --cases "$arch"
    for precision in fp32 bf16; do
      printf 'pytorch %s %s %s/%spx/%sch/b%s ' "$torch_dev" "$precision" "$arch" "$size" "$ch" "$BATCH" | tee -a "$SUMMARY"
      peak "pytorch-$precision-$arch" 60 1 "$PY" benches/peers/ssl_step_peer.py "$BATCH" "$size" \
        "$STEPS" "$threads" "$arch" "$ch" "$torch_dev" "$precision"
    done
  done

  say "one-epoch demo on $FIRST (raw-pixel prior: ONNX Runtime is not needed)"
  t0=$(date +%s.%N)
  peak "demo-$FIRST" 120 0 "$BIN" demo --device "$FIRST" --prior pixels --epochs 1 --out "$WORK/demo"
  note "demo --device $FIRST --epochs 1: $(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$t0" "$(date +%s.%N)") s wall"

  say "summary ($SUMMARY)"
  cat "$SUMMARY"
  ;;
*) echo "usage: $0 build | run [ARCHIVE]" >&2; exit 2 ;;
esac
