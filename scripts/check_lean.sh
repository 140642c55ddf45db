#!/usr/bin/env bash
# The lean build cannot rot: checks the dependency trees of gps-ssl without default features
# and of the downstream Burn project (examples/downstream), then builds and runs that project.
#
# - gps-ssl `--no-default-features`: no ONNX Runtime crate, no CLI / progress / plot crate, no
#   libjpeg-turbo or cmake, and no burn backend at all.
# - examples/downstream (burn with Flex + autodiff, gps-ssl without default features): the same
#   crates absent, and no burn backend but the ones it asked for (burn-flex, burn-autodiff).
# - `cargo run --release` there: 4 GPS steps; it exits non-zero unless every partner is in its
#   anchor's list. Before it, clippy over all its programs.
#
# Prints the crate counts (`cargo tree -e normal,build`, distinct name + version, the root
# included). Usage: bash scripts/check_lean.sh [--no-run]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Crates the lean build must not compile, whoever would pull them in.
FORBIDDEN='^(ort|ort-sys|clap|clap_builder|clap_derive|indicatif|tracing-subscriber|plotters|plotters-backend|plotters-bitmap|ab_glyph|turbojpeg|turbojpeg-sys|cmake|nasm-rs|pyo3|pyo3-build-config) v'
# This crate's CPU kernels (the `train` feature's GEMM convolution): absent from the lean library
# (a downstream project's own burn-flex brings gemm, so only the library's tree is checked).
KERNELS='^(gemm|gemm-common|gemm-f32) v'
# Every burn backend crate and the cubecl runtimes under them (cubecl-common, -zspace and
# -environment are utilities burn-std itself uses).
BACKENDS='^(burn-(flex|ndarray|cubecl|cuda|rocm|wgpu|tch|candle|cpu|fusion|router|remote|autodiff|vision)|cubecl|cubecl-(runtime|core|ir|opt|cuda|hip|wgpu|cpu|spirv|llvm|mlir)|wgpu|cudarc) v'

tree() {
  cargo tree --locked "$@" -e normal,build --prefix none | sed 's/ (\*)//; s/ (proc-macro)//' | sort -u
}
refuse() { # $1: what, $2: the list, $3: pattern
  local found
  found=$(grep -E "$3" <<<"$2" || true)
  if [ -n "$found" ]; then
    echo "FAILED: $1 holds crates it must not:" >&2
    sed 's/^/  /' <<<"$found" >&2
    exit 1
  fi
}

lib=$(tree --no-default-features)
refuse "gps-ssl --no-default-features" "$lib" "$FORBIDDEN"
refuse "gps-ssl --no-default-features" "$lib" "$BACKENDS"
refuse "gps-ssl --no-default-features" "$lib" "$KERNELS"
echo "gps-ssl --no-default-features: $(wc -l <<<"$lib") crates; no ONNX Runtime, CLI, plot, libjpeg-turbo/cmake or burn backend crate"

cd examples/downstream
down=$(tree)
refuse "examples/downstream" "$down" "$FORBIDDEN"
refuse "examples/downstream (burn backends other than the flex + autodiff it asked for)" \
  "$(grep -vE '^burn-(flex|autodiff) v' <<<"$down")" "$BACKENDS"
for want in '^gps-ssl v' '^burn-flex v' '^burn-autodiff v'; do
  grep -qE "$want" <<<"$down" || { echo "FAILED: examples/downstream lacks ${want#^}" >&2; exit 1; }
done
full=$(tree --features full)
echo "examples/downstream: $(wc -l <<<"$down") crates with gps-ssl's data path; $(wc -l <<<"$full") with gps-ssl's default features (--features full)"

[ "${1:-}" = "--no-run" ] && exit 0
cargo fmt --check
# Every program of the project compiles and is lint-clean (`burn_integration`, `decode` too), then
# the main one runs.
cargo clippy --release --locked --all-targets -- -D warnings
cargo run --release --locked
