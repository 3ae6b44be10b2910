#!/usr/bin/env bash
# Installs the system packages the tests and tools use, when missing:
# npm (to fetch ONNX Runtime), Debian's Fashion-MNIST, and PyTorch + onnx for
# the Python tools under tools/. Needs root (or sudo) on Debian/Ubuntu.
set -euo pipefail
need=""
command -v npm >/dev/null || need="$need npm"
[ -s /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need="$need dataset-fashion-mnist"
/usr/bin/python3 -c 'import torch, onnx' 2>/dev/null || need="$need python3-torch python3-onnx"
[ -z "$need" ] && exit 0
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
echo "installing:$need" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $need >/dev/null
