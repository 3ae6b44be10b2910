#!/usr/bin/env bash
# The Beam benchmark of docs/benchmarks.md: eigenscore-beam on Prism against `eigenscore score` on
# the same images in the same run (time, images/s, peak RSS, and how far the scores agree), then,
# with BIG=1 (SMALL=0 skips the comparison), 20,000 images (the Fashion-MNIST and MNIST test sets as 4 .npy shards of 5,000) end to end.
# Needs `make build` and the data (`make data`); fits a detector if DET is not given.
# Writes everything to OUT (default bench-beam/).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench-beam}
N=${N:-2000}
DET=${DET:-$OUT/fm-detector.json}
DATA=${EIGENSCORE_DATA:-data-cache}
mkdir -p "$OUT/in"
[ -s bin/eigenscore-beam ] || (cd beam && go build -o ../bin/eigenscore-beam ./cmd/eigenscore-beam)
[ -s "$DET" ] || bin/eigenscore fit -q --method combined --id fashion-mnist --n 300 --out "$DET"

# N test images, half Fashion-MNIST (ID) and half MNIST (OOD), as one uint8 .npy file.
/usr/bin/python3 - "$DATA" "$N" "$OUT/in/mixed.npy" <<'PY'
import gzip, sys, numpy as np
data, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def idx(p):
    b = gzip.open(p).read()
    return np.frombuffer(b, np.uint8, offset=16).reshape(-1, 28, 28)
fm = idx(f"{data}/fashion-mnist/t10k-images-idx3-ubyte.gz")[: n // 2]
mn = idx(f"{data}/mnist/t10k-images-idx3-ubyte.gz")[: n - n // 2]
np.save(out, np.concatenate([fm, mn]))
PY

measure() { # name, command...: wall seconds and peak RSS (KiB) into $OUT/<name>.time
	local name=$1; shift
	/usr/bin/time -f "%e %M" -o "$OUT/$name.time" "$@" > "$OUT/$name.log" 2>&1
	read -r secs rss < "$OUT/$name.time"
	echo "$name: $secs s, $(/usr/bin/python3 -c "print(f'{$N/$secs:.2f}')") images/s, peak RSS $((rss / 1024)) MiB"
}

if [ "${SMALL:-1}" = 1 ]; then
rm -rf "$OUT/beam"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
measure score bin/eigenscore score -q --no-cache --detector "$DET" --data "$OUT/in/mixed.npy" --csv "$OUT/score.csv"
measure beam bin/eigenscore-beam score --detector "$DET" --input "$OUT/in/mixed.npy" --output "$OUT/beam"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

# Agreement: same image, same seed. The CLI writes 8 significant digits.
/usr/bin/python3 - "$OUT/score.csv" "$OUT/beam" <<'PY'
import csv, glob, json, os, sys
cli = {int(r["index"]): r for r in csv.DictReader(open(sys.argv[1]))}
summ = json.load(open(os.path.join(sys.argv[2], "summary.json")))
beam = {}
for part in summ["parts"]:
    for r in csv.DictReader(open(os.path.join(sys.argv[2], part))):
        assert int(r["index"]) not in beam, "image twice in the output"
        beam[int(r["index"])] = r
assert sorted(cli) == sorted(beam), "different images"
cols = [c for c in next(iter(cli.values())) if c not in ("index", "label", "p_value", "flagged")]
worst, flags, pdiff = 0.0, 0, 0
for i, a in cli.items():
    b = beam[i]
    for c in cols:
        x, y = float(a[c]), float(b[c])
        worst = max(worst, abs(x - y) / max(abs(x), abs(y), 1e-300))
    flags += a["flagged"] != b["flagged"]
    pdiff = max(pdiff, abs(float(a["p_value"]) - float(b["p_value"])))
print(f"agreement on {len(cli)} images: max relative difference of score and features {worst:.2e}, "
      f"max p-value difference {pdiff:.4f}, flags that differ {flags}")
PY
fi

if [ "${BIG:-0}" = 1 ]; then
	# 20,000 images: the two 10,000-image test sets, each as two .npy shards of 5,000.
	/usr/bin/python3 - "$DATA" "$OUT/in" <<'PY'
import gzip, sys, numpy as np
data, out = sys.argv[1], sys.argv[2]
for name in ("fashion-mnist", "mnist"):
    b = gzip.open(f"{data}/{name}/t10k-images-idx3-ubyte.gz").read()
    x = np.frombuffer(b, np.uint8, offset=16).reshape(-1, 28, 28)
    for k in range(2):
        np.save(f"{out}/{name}-{k}.npy", x[k * 5000:(k + 1) * 5000])
PY
	rm -rf "$OUT/beam20k"
	N=20000 measure beam20k bin/eigenscore-beam score --detector "$DET" --input "$OUT/in/fashion-mnist-*.npy" --input "$OUT/in/mnist-*.npy" --output "$OUT/beam20k"
	/usr/bin/python3 -c "import json; s=json.load(open('$OUT/beam20k/summary.json')); print('20k summary:', {k: s[k] for k in ('images','items','flagged','nfe','failures')})"
fi
