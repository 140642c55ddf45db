#!/usr/bin/env bash
# Sets everything up (idempotent) and runs the GPS demo on the bundled Fashion-MNIST subset with the
# EfficientNet-Lite0 prior: embed -> neighbours -> SimCLR vs GPS-SimCLR (RHFlipAug) -> eval -> report.
# Extra arguments go to `gps-ssl demo` (e.g. --seeds 0,1,2, --epochs 3, --data/--test-data/--prior).
# The build uses the dev profile (dependencies are optimised there already, and shared with the
# test build) with this crate at opt-level 3.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec cargo run --locked --config 'profile.dev.package."gps-ssl".opt-level=3' -- demo --out runs/demo "$@"
