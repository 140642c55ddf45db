#!/usr/bin/env bash
# Installs the full Fashion-MNIST set (60k train + 10k test, IDX gz) from the Debian package
# `dataset-fashion-mnist` and prints the directory that holds it. Used by benchmarks:
#   FMNIST_DIR=$(bash scripts/install_full_fashion_mnist.sh)
#   gps-ssl inspect "$FMNIST_DIR/train"
set -euo pipefail
DIR=/usr/share/datasets/fashion-mnist
if [ ! -s "$DIR/train-images-idx3-ubyte.gz" ]; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    echo "installing dataset-fashion-mnist with apt-get..." >&2
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dataset-fashion-mnist >&2
fi
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
    if [ ! -s "$DIR/$f" ]; then
        echo "error: $DIR/$f missing after installing dataset-fashion-mnist" >&2
        exit 1
    fi
done
echo "$DIR"
