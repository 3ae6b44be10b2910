#!/usr/bin/python3
"""The shipped ONNX denoiser rebuilt in PyTorch, for a side-by-side benchmark.

`load(path)` (tools/onnx_weights.py) builds the network of tools/edm.py with
the widths read off the ONNX graph and fills it with the graph's
initializers. `check(model, path)`
compares PyTorch's output with the ONNX graph evaluated by tools/onnx_ref.py.

`configs(model, batch)` returns the PyTorch ways of running it that the peer
benchmark tries, and `nfe_per_s` times one. The best of them is "PyTorch" in
`make bench-peer` (tools/bench_peer.py):

  eager-tN      torch.inference_mode, N intra-op threads
  script-tN     traced, torch.jit.freeze'd and optimize_for_inference'd
                (oneDNN/MKLDNN convolutions where torch picks them), N threads
  frozen-tN     traced and frozen only (optimize_for_inference was slower
                than eager at 32 images and more on this machine)
  fork2-t1      the optimised TorchScript module on two halves of the batch
  fork2f-t1     at once (torch.jit.fork, one intra-op thread each), or the
                frozen-only one: the data parallelism eigenscore's backend
                uses (batch >= 2)

Usage: /usr/bin/python3 tools/torch_peer.py [--model models/fashion-mnist/model.onnx]
           [--batch 1,6,32,192] [--threads 1,2] [--seconds 1]
prints NFE/s per configuration.
"""
import argparse
import os
import sys
import time

import numpy as np
import onnx
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import onnx_ref  # noqa: E402
from onnx_weights import load, state_dict_from_onnx, widths  # noqa: E402,F401

ROOT = os.path.dirname(HERE)
DEFAULT_MODEL = os.path.join(ROOT, "models", "fashion-mnist", "model.onnx")
FIXTURE = os.path.join(ROOT, "denoise", "onnx", "testdata", "tiny_fixture.json")

# torch.jit.fork needs the inter-op pool, whose size can only be set before
# it is first used.
try:
    torch.set_num_interop_threads(2)
except RuntimeError:
    pass


def inputs(batch, fixture=FIXTURE):
    """batch noisy images and their σ, cycled from the Go backend's fixture
    (Fashion-MNIST test images plus noise at σ = 0.05 ... 12), so that both
    sides of the benchmark see the same data."""
    import json
    with open(fixture) as f:
        fx = json.load(f)
    c, h, w = fx["shape"]
    x = np.array(fx["x"], dtype=np.float32).reshape(-1, c, h, w)
    s = np.array(fx["sigma"], dtype=np.float32)
    idx = np.arange(batch) % len(s)
    return torch.from_numpy(x[idx].copy()), torch.from_numpy(s[idx].copy())


def check(net, path=DEFAULT_MODEL, batch=5):
    """Largest |PyTorch − ONNX graph| over batch fixture images (onnx_ref
    evaluates the graph in float64)."""
    x, s = inputs(batch)
    with torch.inference_mode():
        got = net(x, s).numpy()
    want = onnx_ref.run(onnx.load(path), {"x": x.numpy(), "sigma": s.numpy()})["denoised"]
    return float(np.max(np.abs(got - want)))


def _traced(net, x, s):
    with torch.no_grad():
        return torch.jit.trace(net, (x, s), check_trace=False)


def _freeze(module):
    """torch.jit.freeze, then optimize_for_inference (which converts the
    convolutions to oneDNN/MKLDNN where torch deems it worthwhile)."""
    frozen = torch.jit.freeze(module.eval())
    try:
        return torch.jit.optimize_for_inference(frozen)
    except Exception:  # a torch without MKLDNN: freezing alone
        return frozen


class _Fork2(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x, s):
        h = x.shape[0] // 2 + x.shape[0] % 2
        fut = torch.jit.fork(self.inner, x[:h], s[:h])
        b = self.inner(x[h:], s[h:])
        return torch.cat([torch.jit.wait(fut), b], dim=0)


def configs(net, batch):
    """name -> (threads, fn(x, s)) for the ways of running net at this batch."""
    x, s = inputs(batch)
    out = {}
    for t in (1, 2):
        out["eager-t%d" % t] = (t, net)
    optimized = _freeze(_traced(net, x, s))
    frozen = torch.jit.freeze(_traced(net, x, s).eval())
    for t in (1, 2):
        out["script-t%d" % t] = (t, optimized)
        out["frozen-t%d" % t] = (t, frozen)
    if batch >= 2:
        h = batch // 2 + batch % 2
        out["fork2-t1"] = (1, _freeze(torch.jit.script(_Fork2(_traced(net, x[:h], s[:h])))))
        out["fork2f-t1"] = (1, torch.jit.freeze(torch.jit.script(_Fork2(_traced(net, x[:h], s[:h]))).eval()))
    return out


def nfe_per_s(fn, batch, seconds=1.0):
    """Images per second of fn on batch fixture images: warm-up, then as many
    calls as fit in seconds. The thread count is the process's: set it once,
    before anything runs (see serve)."""
    x, s = inputs(batch)
    with torch.inference_mode():
        for _ in range(3):
            fn(x, s)
        n, t0 = 0, time.perf_counter()
        while True:
            fn(x, s)
            n += 1
            el = time.perf_counter() - t0
            if el >= seconds:
                return n * batch / el


def serve(model_path, threads, inp=sys.stdin, out=sys.stdout):
    """Worker loop for one thread count: reads lines "BATCH SECONDS", answers
    each with a JSON line {config: NFE/s} for the configurations of that
    thread count. Switching torch's thread count inside a process once
    OpenMP has run made 2 threads ~20x slower here, so every thread count
    gets a process of its own, its count set before the first operation."""
    import json
    import warnings
    warnings.filterwarnings("ignore")  # the tracer's warnings about σ's reshape
    torch.set_num_threads(threads)
    net = load(model_path)
    built = {}
    for line in inp:
        if not line.strip():
            continue
        batch, seconds = line.split()
        batch, seconds = int(batch), float(seconds)
        if batch not in built:
            built[batch] = {k: fn for k, (t, fn) in configs(net, batch).items() if t == threads}
        res = {k: nfe_per_s(fn, batch, seconds) for k, fn in built[batch].items()}
        out.write(json.dumps(res) + "\n")
        out.flush()


class Worker:
    """A serve() subprocess for one thread count."""

    def __init__(self, model_path, threads):
        import subprocess
        self.p = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--serve", "--threads", str(threads), "--model", model_path],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def time(self, batch, seconds):
        import json
        self.p.stdin.write("%d %g\n" % (batch, seconds))
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError("torch worker exited (status %s)" % self.p.wait())
        return json.loads(line)

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--batch", default="1,6,32,192")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve:
        serve(a.model, int(a.threads))
        return
    print("max |PyTorch - ONNX| = %.2e" % check(load(a.model), a.model))
    workers = [Worker(a.model, int(t)) for t in a.threads.split(",")]
    for b in (int(v) for v in a.batch.split(",")):
        for w in workers:
            for name, v in w.time(b, a.seconds).items():
                print("batch=%d %-10s %8.1f NFE/s" % (b, name, v))
    for w in workers:
        w.close()


if __name__ == "__main__":
    main()
