#!/usr/bin/env bash
# Installs the LLVM 23 that burn-cuda's build needs, from PyPI, where its build would download it.
#
# burn-cuda 0.22.1 -> cubecl-cuda 0.11.3 -> cubecl-llvm 0.11.3 -> tracel-llvm-bundler 23.1.0-4,
# whose build script downloads an LLVM bundle from GitHub unless the marker file
# `.tracel-llvm-installed` exists in its folder, `dirs::data_local_dir()/tracel/tracel-llvm-23.1.0-4`
# (`$XDG_DATA_HOME`, else `~/.local/share`; tracel-llvm-bundler `build.rs` `bundle_cache`,
# `src/config.rs` `llvm_path`). It then only runs `<folder>/bin/llvm-config --link-static` and
# links the static libraries it lists (llvm-sys is built with `no-llvm-linking`).
#
# PyPI ships LLVM 23.1.1 as relocatable static libraries with a Python `llvm-config`:
# `mlc-llvm-static` (X86) and `mlc-llvm-static-extra-targets` (NVPTX, AMDGPU) at the versions and
# sha256 pinned below. Both wheels are unpacked into that folder (≈ 400 MB) and checked:
# `llvm-config --version` is 23.1.x and `--targets-built` has NVPTX. Nothing else is downloaded.
# Idempotent: a second run only checks. Needs python3 >= 3.10 at build time (the llvm-config).
#
# Usage: bash scripts/install_llvm.sh   (scripts/setup.sh runs it when GPS_SSL_CUDA=1)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
say() { printf '[install_llvm] %s\n' "$*" >&2; }

BUNDLE="tracel-llvm-23.1.0-4"
DEST="${XDG_DATA_HOME:-$HOME/.local/share}/tracel/$BUNDLE"
MARKER="$DEST/.tracel-llvm-installed"
WHEELS=(
  "mlc-llvm-static==23.1.1.post0 mlc_llvm_static-23.1.1.post0-py3-none-manylinux_2_28_x86_64.whl dcfec888abfaa418be77d41af585805f31463584cf9c90582992c00f392c1ac5"
  "mlc-llvm-static-extra-targets==23.1.1.post0 mlc_llvm_static_extra_targets-23.1.1.post0-py3-none-manylinux_2_28_x86_64.whl c36e834d9a4e9cf9759f27fece65711ece7a2fc2b5a96dbb15d66f5e9e787929"
)

check() { # the folder holds a usable LLVM 23 with the NVPTX backend
  local cfg="$DEST/bin/llvm-config" version targets
  [ -x "$cfg" ] || return 1
  version=$("$cfg" --version 2>/dev/null) || return 1
  targets=$("$cfg" --targets-built 2>/dev/null) || return 1
  case "$version" in 23.1.*) ;; *) say "$cfg says version $version, expected 23.1.x"; return 1 ;; esac
  case " $targets " in *" NVPTX "*) ;; *) say "$cfg lacks NVPTX (targets: $targets)"; return 1 ;; esac
  echo "LLVM $version ($targets) in $DEST"
}

if [ -f "$MARKER" ] && check >/dev/null; then
  check
  exit 0
fi
[ "$(uname -m)" = x86_64 ] || { say "the pinned LLVM wheels are x86_64 only (this is $(uname -m))"; exit 2; }

CACHE="$ROOT/.cache/wheels"
mkdir -p "$CACHE"
PIP="$ROOT/.venv/bin/pip"
[ -x "$PIP" ] || PIP="python3 -m pip"
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/gps-ssl-llvm.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
for entry in "${WHEELS[@]}"; do
  read -r spec file sha <<<"$entry"
  if [ ! -f "$CACHE/$file" ] || [ "$(sha256sum "$CACHE/$file" | cut -d' ' -f1)" != "$sha" ]; then
    say "fetching $spec from PyPI"
    $PIP download -q --disable-pip-version-check --no-deps --only-binary=:all: \
      --platform manylinux_2_28_x86_64 -d "$CACHE" "$spec"
  fi
  got=$(sha256sum "$CACHE/$file" | cut -d' ' -f1)
  [ "$got" = "$sha" ] || { say "$file: sha256 $got, expected $sha"; exit 1; }
  python3 -m zipfile -e "$CACHE/$file" "$STAGE/"
done

# Into a sibling folder first, then renamed: a half-copied LLVM is never taken for a whole one.
mkdir -p "$(dirname "$DEST")"
rm -rf "$DEST.partial"
cp -a "$STAGE/mlc_llvm_static/static" "$DEST.partial"
chmod +x "$DEST.partial/bin/llvm-config"
rm -rf "$DEST"
mv "$DEST.partial" "$DEST"
check || { say "the unpacked LLVM failed its check"; exit 1; }
touch "$MARKER"
say "installed $(check)"
