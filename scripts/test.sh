#!/usr/bin/env bash
# Sets everything up (idempotent) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
# Python side: the prior converter's unit tests and the converted prior's ImageNet top-1 check.
.venv/bin/python -m unittest discover -s models -p 'test_*.py'
.venv/bin/python models/verify_prior.py
cargo test --locked "$@"
