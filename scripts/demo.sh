#!/usr/bin/env bash
# Sets everything up (idempotent) and runs the GPS demo on the bundled Fashion-MNIST subset with the
# EfficientNet-Lite0 prior: embed -> neighbours -> SimCLR vs GPS-SimCLR (RHFlipAug) -> eval -> report.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
cargo build --release --locked
exec target/release/gps-ssl demo --out runs/demo "$@"
