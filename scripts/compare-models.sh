#!/usr/bin/env bash
# Old against new denoisers on the grayscale suite, same estimator settings: builds eigenscore in a
# throwaway git worktree with candidate models embedded in place of shipped ones, then runs the
# suite runs of docs/results.md with it (n = 500, fast preset, 1,000 bootstrap resamples; seed 2 and,
# with SEEDS="2 3", the confirmation seed). Each candidate is NAME=PATH, NAME a folder of models/:
#
#   scripts/compare-models.sh OUT fashion-mnist=/work/retrain-long/fashion-mnist/model.onnx ...
#
# Writes OUT/suite-n500-s<seed>.{json,csv}; tables by `scripts/summarize-trust.py OUT FILE.json`.
# Resumable: finished runs are kept, and the feature cache keeps the features of finished sets.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,9p' "$0" >&2; exit 2; }
out=$(mkdir -p "$1" && cd "$1" && pwd)
shift
wt=$(mktemp -d)
trap 'git worktree remove --force "$wt" >/dev/null 2>&1 || true' EXIT
git worktree add --detach "$wt" HEAD >/dev/null
for spec in "$@"; do
	name=${spec%%=*} path=${spec#*=}
	[ -d "models/$name" ] || { echo "compare-models: no shipped model $name (models/$name)" >&2; exit 2; }
	[ -s "$path" ] || { echo "compare-models: $path: no such model file" >&2; exit 2; }
	cp "$path" "$wt/models/$name/model.onnx"
done
(cd "$wt" && go build -o "$out/eigenscore" ./cmd/eigenscore)
for seed in ${SEEDS:-2}; do
	f="$out/suite-n500-s$seed"
	[ -s "$f.json" ] || "$out/eigenscore" -q eval --preset fast --suite grayscale --n 500 --seed "$seed" \
		--bootstrap 1000 --json "$f.json" --csv "$f.csv" >/dev/null
done
echo "done: $out"
