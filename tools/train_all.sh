#!/bin/bash
# Trains the four shipped models one after the other, resumably, on one CPU
# thread each: the three grayscale ones, then the colour clipart model
# (RGB_MINUTES, default 75; its data from `make data-rgb`). Rerun it to resume; finished models (quality.json newer than
# their checkpoint) are skipped. Run from anywhere:
#
#   nohup tools/train_all.sh > /tmp/train-all.log 2>&1 &
#
# Per-model logs: /tmp/train-<name>.log (appended). Checkpoints:
# $CKPT_ROOT/<name>/ckpt.pt (default /work/ckpt), outside models/ so they are
# not committed. MINUTES (default 22) sets each grayscale model's training
# budget; SIGMA_DIST (default edm, the shipped models' recipe; or cover) their
# training sigma distribution (train.py --sigma-dist). A checkpoint made with another
# SIGMA_DIST is refused: use another CKPT_ROOT.
set -u
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
MINUTES=${MINUTES:-22}
SIGMA_DIST=${SIGMA_DIST:-edm}
CKPT_ROOT=${CKPT_ROOT:-/work/ckpt}
FASHION=/usr/share/datasets/fashion-mnist
GOMODCACHE=${GOMODCACHE:-$(go env GOMODCACHE 2>/dev/null || echo "$HOME/go/pkg/mod")}
MNIST="$GOMODCACHE/github.com/petar/!go!m!n!i!s!t@v0.0.0-20150320212226-2fbe10d0fa63/data"

stop=0
trap 'stop=1; [ -n "${child:-}" ] && kill -TERM "$child" 2>/dev/null' INT TERM

train() { # name minutes train.py-data-arguments...
  local name=$1 minutes=$2 out=models/$1 ck=$CKPT_ROOT/$1
  shift 2
  if [ -f "$out/quality.json" ] && [ -f "$ck/ckpt.pt" ] && [ "$out/quality.json" -nt "$ck/ckpt.pt" ]; then
    echo "$(date +%T) $name: done already ($out/quality.json), skipping"
    return 0
  fi
  echo "$(date +%T) $name: training (log /tmp/train-$name.log)"
  $PY tools/train.py "$@" --out "$out" --ckpt-dir "$ck" \
      --minutes "$minutes" --batch 64 --lr 1e-3 --seed 1 >> "/tmp/train-$name.log" 2>&1 &
  child=$!
  wait "$child"; local rc=$?
  # wait returns early when a trapped signal arrives: wait for the checkpoint.
  while kill -0 "$child" 2>/dev/null; do wait "$child"; rc=$?; done
  child=
  echo "$(date +%T) $name: exit $rc"
  return $rc
}

for spec in "fashion-mnist|$FASHION|fashion-mnist|all" \
            "mnist|$MNIST|mnist|all" \
            "fashion-mnist-0-4|$FASHION|fashion-mnist|0-4"; do
  IFS='|' read -r name dir ds classes <<< "$spec"
  [ $stop = 1 ] && break
  train "$name" "$MINUTES" --images "$dir/train-images-idx3-ubyte.gz" --labels "$dir/train-labels-idx1-ubyte.gz" \
      --classes "$classes" --dataset-name "$ds" --sigma-dist "$SIGMA_DIST" \
    || { echo "stopping: $name failed or was interrupted"; exit 1; }
done
# The colour model (3×32×32 clip art; run `make data-rgb` first): wider, σ drawn to cover 0.002–20.
[ $stop = 1 ] || train clipart "${RGB_MINUTES:-75}" --images "${EIGENSCORE_DATA:-data-cache}/rgb/clipart/train.npy" \
    --dataset-name clipart --channels 32-64-128 --sigma-dist cover \
  || { echo "stopping: clipart failed or was interrupted"; exit 1; }
echo "$(date +%T) all done"
