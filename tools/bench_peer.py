#!/usr/bin/python3
"""eigenscore's ONNX Runtime backend against PyTorch on the same network,
same inputs, same cores: `make bench-peer`.

For each round and each call size (batch), the Go side runs once
(BenchmarkShipped in denoise/onnx, the backend with its default options,
from a test binary built by `go test -c`), then every PyTorch configuration
of tools/torch_peer.py (eager and TorchScript-frozen with 1 and 2 threads,
two frozen halves forked on one thread each), each in a worker process per
thread count, so the two sides alternate and see the same machine. Each side
keeps its best NFE/s (images per second) over the rounds; PyTorch's is its
best configuration. One line per batch size on stdout:

    batch=N eigenscore=X torch=Y ratio=Z

and the per-round numbers and PyTorch's best configuration on stderr.
Before timing, the PyTorch network is checked against the ONNX graph
(tools/onnx_ref.py); a difference above 1e-4 stops the benchmark.

Usage: /usr/bin/python3 tools/bench_peer.py --go-test bin/onnx-bench.test
           [--model models/fashion-mnist/model.onnx] [--batch 1,6,32,192]
           [--rounds 3] [--seconds 1]
"""
import argparse
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import torch_peer  # noqa: E402

ROOT = os.path.dirname(HERE)


def go_nfe(test_binary, model, batch, seconds):
    """NFE/s of BenchmarkShipped at this call size."""
    env = dict(os.environ, EIGENSCORE_BENCH_MODEL=model, EIGENSCORE_BENCH_BATCH=str(batch))
    cmd = [test_binary, "-test.run", "^$", "-test.bench", "^BenchmarkShipped$/^batch=%d$" % batch,
           "-test.benchtime", "%gs" % seconds]
    res = subprocess.run(cmd, cwd=os.path.join(ROOT, "denoise", "onnx"), env=env,
                         capture_output=True, text=True)
    m = re.search(r"([0-9.]+) NFE/s", res.stdout)
    if res.returncode != 0 or not m:
        raise RuntimeError("%s failed (status %d):\n%s%s" % (" ".join(cmd), res.returncode, res.stdout, res.stderr))
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--go-test", required=True, help="test binary of ./denoise/onnx (go test -c)")
    ap.add_argument("--model", default=torch_peer.DEFAULT_MODEL)
    ap.add_argument("--batch", default="1,6,32,192")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=1.0)
    a = ap.parse_args()
    test_binary = os.path.abspath(a.go_test)
    model = os.path.abspath(a.model)
    batches = [int(v) for v in a.batch.split(",")]

    err = torch_peer.check(torch_peer.load(model), model)
    print("PyTorch network vs the ONNX graph: max |difference| = %.2e" % err, file=sys.stderr)
    if not err <= 1e-4:
        sys.exit("bench_peer: the PyTorch network does not reproduce %s" % model)

    workers = [torch_peer.Worker(model, t) for t in (1, 2)]
    best_go = {b: 0.0 for b in batches}
    best_torch = {b: (0.0, "") for b in batches}
    try:
        for r in range(a.rounds):
            for b in batches:
                g = go_nfe(test_binary, model, b, a.seconds)
                best_go[b] = max(best_go[b], g)
                res = {}
                for w in workers:
                    res.update(w.time(b, a.seconds))
                name = max(res, key=res.get)
                if res[name] > best_torch[b][0]:
                    best_torch[b] = (res[name], name)
                print("round %d batch=%d eigenscore=%.0f %s" % (
                    r + 1, b, g, " ".join("%s=%.0f" % kv for kv in sorted(res.items()))), file=sys.stderr)
    finally:
        for w in workers:
            w.close()
    for b in batches:
        t, name = best_torch[b]
        print("batch=%d eigenscore=%.0f torch=%.0f ratio=%.2f" % (b, best_go[b], t, best_go[b] / t))
        print("  (PyTorch's best: %s)" % name, file=sys.stderr)


if __name__ == "__main__":
    main()
