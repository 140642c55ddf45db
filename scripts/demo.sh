#!/usr/bin/env bash
# Sets everything up (idempotent) and runs the GPS demo on the bundled Fashion-MNIST subset with the
# EfficientNet-Lite0 prior: embed -> neighbours -> SimCLR vs GPS-SimCLR (RHFlipAug) -> eval -> report.
# Extra arguments go to `gps-ssl demo` (e.g. --seeds 0,1,2, --epochs 3, --data/--test-data/--prior).
# The build uses the dev profile (dependencies are optimised there already, and shared with the
# test build) with this crate compiled as a release build would be: opt-level 3, no debug
# assertions, no overflow checks (with debug assertions std's pointer checks double the time of
# the SIMD kernels).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec cargo run --locked --config 'profile.dev.package."gps-ssl".opt-level=3' \
  --config 'profile.dev.package."gps-ssl".debug-assertions=false' \
  --config 'profile.dev.package."gps-ssl".overflow-checks=false' -- demo --out runs/demo "$@"
