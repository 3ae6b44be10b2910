#!/usr/bin/env bash
# The runs behind docs/results.md's "Detection you can trust" sections: realised ID acceptance of the
# conformal thresholds over 5 seeds at n_fit = 100, 200, 1,000; the grayscale suite at n = 500 (seed 2,
# the choice of the recommended detector) and on a fresh seed (seed 3, its confirmation); the paper
# protocol on every pair of the suite. Resumable through the feature cache. Writes to OUT (default
# trust-runs/). About 40 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-trust-runs}
mkdir -p "$OUT"
E="bin/eigenscore -q eval --preset fast --bootstrap 0"
for seed in 1 2 3 4 5; do
	for fitn in 100 200 1000; do
		f="$OUT/acceptance-s$seed-f$fitn.json"
		[ -s "$f" ] || $E --id fashion-mnist --ood mnist --n 500 --fit-n "$fitn" --seed "$seed" --json "$f" >/dev/null
	done
done
[ -s "$OUT/suite-n500-s2.json" ] || $E --suite grayscale --n 500 --seed 2 --bootstrap 1000 --json "$OUT/suite-n500-s2.json" --csv "$OUT/suite-n500-s2.csv" >/dev/null
[ -s "$OUT/suite-n500-s3.json" ] || $E --suite grayscale --n 500 --seed 3 --bootstrap 1000 --json "$OUT/suite-n500-s3.json" --csv "$OUT/suite-n500-s3.csv" >/dev/null
[ -s "$OUT/suite-paper-n200.json" ] || $E --suite grayscale --n 200 --protocol paper --json "$OUT/suite-paper-n200.json" >/dev/null
echo done
