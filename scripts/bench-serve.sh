#!/usr/bin/env bash
# The serving benchmark of docs/benchmarks.md: `eigenscore serve` under load from eigenscore-load
# (loopback only, bounded runs) next to `eigenscore score` on the same images, plus overload, large
# bodies and SIGTERM under load. Needs `make build`, a detector (DET, default: fitted here) and the data.
# Writes one JSON per run and a summary to OUT (default bench-serve/).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench-serve}
PORT=${PORT:-18080}
ADDR=127.0.0.1:$PORT
DET=${DET:-$OUT/fm-detector.json}
mkdir -p "$OUT"
[ -s "$DET" ] || bin/eigenscore fit -q --method combined --id fashion-mnist --n 200 --preset fast --out "$DET"

pid=""
start() { # start the server with extra flags; waits until it is ready
	bin/eigenscore serve --detector "$DET" --addr "$ADDR" "$@" 2>>"$OUT/server.log" &
	pid=$!
	for _ in $(seq 100); do curl -fs "http://$ADDR/healthz" >/dev/null 2>&1 && return; sleep 0.1; done
	echo "server did not start" >&2; exit 1
}
stop() { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
trap stop EXIT
load() { # name, then eigenscore-load flags
	local name=$1; shift
	bin/eigenscore-load -q --addr "$ADDR" --server-pid "$pid" --json "$OUT/$name.json" "$@" | tee -a "$OUT/summary.txt"
}

# The CLI on 512 images: images/s over the whole command (model load included).
t0=$(date +%s.%N)
bin/eigenscore score -q --detector "$DET" --data fashion-mnist --n 512 --no-cache >/dev/null
t1=$(date +%s.%N)
echo "score: 512 images in $(echo "$t1 - $t0" | bc) s, images/s=$(echo "512 / ($t1 - $t0)" | bc -l | cut -c1-6)" | tee "$OUT/summary.txt"

for images in 1 16; do
	for clients in 1 4 16 64; do
		start
		requests=$(( images == 1 ? (clients == 1 ? 48 : 256) : (clients == 1 ? 8 : 4 * clients) ))
		load "c$clients-i$images" --clients "$clients" --images "$images" --requests "$requests" --duration 90s
		stop
	done
done

# Overload: 64 clients × 16 images with a 5 s client timeout; the server's deadline set just below it.
start --request-timeout 4500ms
load overload --clients 64 --images 16 --requests 320 --duration 40s --timeout 5s --honor-retry-after=false
stop

# Memory: 8 concurrent bodies of 32 MiB (white space around one image; valid JSON).
start --max-body $((33 << 20))
load bodies --clients 8 --images 1 --requests 16 --pad-bytes $((32 << 20)) --duration 90s
stop

# SIGTERM under load: requests in flight when the signal comes must all complete with 200.
start
load sigterm --clients 16 --images 1 --requests 400 --duration 60s &
lp=$!
sleep 4
kill -TERM "$pid"
wait "$pid" || true
wait "$lp" || true
echo "server exit after SIGTERM; server log tail:" | tee -a "$OUT/summary.txt"
tail -3 "$OUT/server.log" | tee -a "$OUT/summary.txt"
