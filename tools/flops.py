#!/usr/bin/python3
"""FLOPs per forward pass of an ONNX denoiser, counted from its graph, and
this machine's FP32 peak.

The graph is evaluated once on one image with tools/onnx_ref.py, which gives
every intermediate shape; then per node:

  Conv          2 · N·Cout·Hout·Wout · (Cin/group)·kh·kw   (multiply-adds × 2)
  Gemm/MatMul   2 · M·N·K
  anything else  one FLOP per output element ("elementwise": norms,
                activations, adds; reshapes and shape arithmetic count 0)

FLOPs per forward = Conv + Gemm/MatMul per image, the usual convention;
the elementwise count is printed beside it.

Peak (`peak()`): cores × clock × FP32 FLOPs per cycle per core, from
/proc/cpuinfo: lanes = 16 with avx512f, 8 with avx/avx2, 4 otherwise; × 2 for
fused multiply-add (fma flag); × 2 FMA pipes per core (true of the x86 server
cores with AVX-512 of the last years, AMD Zen 5 — family 26 — and Intel
Xeon Gold/Platinum; not visible in the flags, so an assumption); clock = the
"cpu MHz" line, which under a hypervisor is the nominal (TSC) clock, not the
boost clock, so the peak can be exceeded slightly when the core boosts.

`--measure-peak` also times a loop of independent FP32 fused multiply-adds
(C, compiled with cc; AVX-512 or AVX2) on every core: the clock the cores
really run at, boost included, times the FMA width, as a peak that needs no
assumption about the clock.

Usage: /usr/bin/python3 tools/flops.py [models/*/model.onnx ...] [--nfe-per-s X] [--measure-peak]
"""
import argparse
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import onnx_ref  # noqa: E402

ROOT = os.path.dirname(HERE)

# Ops that move or describe data without arithmetic.
_FREE = {"Constant", "Shape", "Reshape", "Unsqueeze", "Squeeze", "Slice", "Gather", "Concat",
         "Cast", "Identity", "Flatten", "Transpose", "Resize", "Expand", "ConstantOfShape"}


def shapes(model, c, h, w):
    """Runs model on one zero-ish image and returns {tensor name: shape}."""
    env = {t.name: onnx_ref._float(numpy_helper.to_array(t)) for t in model.graph.initializer}
    env["x"] = np.full((1, c, h, w), 0.1)
    env["sigma"] = np.array([0.5])
    for node in model.graph.node:
        ins = [env[i] if i else None for i in node.input]
        at = onnx_ref._attrs(node)
        at["_nout"] = len(node.output)
        out = onnx_ref._run_node(node.op_type, ins, at)
        outs = out if len(node.output) > 1 else [out]
        for name, v in zip(node.output, outs):
            if name:
                env[name] = onnx_ref._float(np.asarray(v))
    return {k: np.shape(v) for k, v in env.items()}


def count(path):
    """(conv FLOPs, gemm FLOPs, elementwise FLOPs, parameters) per image."""
    model = onnx.load(path)
    md = {p.key: p.value for p in model.metadata_props}
    c, h, w = (int(v) for v in md["shape"].split("x"))
    sh = shapes(model, c, h, w)
    attrs = {n.name: onnx_ref._attrs(n) for n in model.graph.node}
    conv = gemm = elem = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            wshape = sh[node.input[1]]
            out = sh[node.output[0]]
            per_out = int(np.prod(wshape[1:]))  # (Cin/group)·kh·kw
            conv += 2 * int(np.prod(out)) * per_out
        elif node.op_type == "Gemm":
            a, b = sh[node.input[0]], sh[node.input[1]]
            at = attrs[node.name]
            k = a[0] if at.get("transA", 0) else a[1]
            gemm += 2 * int(np.prod(sh[node.output[0]])) * k
        elif node.op_type == "MatMul":
            a = sh[node.input[0]]
            gemm += 2 * int(np.prod(sh[node.output[0]])) * a[-1]
        elif node.op_type not in _FREE:
            elem += int(np.prod(sh[node.output[0]]))
    params = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
    return conv, gemm, elem, params


def peak(cpuinfo="/proc/cpuinfo"):
    """(GFLOP/s, how) for FP32 on all cores, estimated from cpuinfo."""
    flags, mhz, cores = set(), 0.0, 0
    with open(cpuinfo) as f:
        for line in f:
            k, _, v = line.partition(":")
            k = k.strip()
            if k == "processor":
                cores += 1
            elif k == "flags" and not flags:
                flags = set(v.split())
            elif k == "cpu MHz" and not mhz:
                mhz = float(v)
    lanes = 16 if "avx512f" in flags else 8 if "avx" in flags else 4
    fma = 2 if "fma" in flags else 1
    pipes = 2
    per_cycle = lanes * fma * pipes
    gflops = cores * mhz / 1000 * per_cycle
    how = "%d cores × %.2f GHz × %d FLOPs/cycle (%d fp32 lanes%s × %d%s pipes)" % (
        cores, mhz / 1000, per_cycle, lanes, " × 2 FMA" if fma == 2 else "", pipes,
        " FMA" if fma == 2 else "")
    return gflops, how


_FMA_LOOP = r"""
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifdef __AVX512F__
typedef __m512 V;
#define SET _mm512_set1_ps
#define FMA _mm512_fmadd_ps
#define LANES 16
#else
typedef __m256 V;
#define SET _mm256_set1_ps
#define FMA _mm256_fmadd_ps
#define LANES 8
#endif
static long iters;
static V sink[256][12];
/* 12 independent chains, more than FMA latency x pipes, so the loop is
   bound by FMA throughput; different starting values keep the compiler
   from merging them. */
static void *run(void *arg) {
  float b = (float)(long)arg;
  V a0 = SET(b), a1 = SET(b + 1), a2 = SET(b + 2), a3 = SET(b + 3), a4 = SET(b + 4), a5 = SET(b + 5),
    a6 = SET(b + 6), a7 = SET(b + 7), a8 = SET(b + 8), a9 = SET(b + 9), a10 = SET(b + 10), a11 = SET(b + 11);
  V m = SET(0.999999f), c = SET(1e-7f);
  for (long i = 0; i < iters; i++) {
    a0 = FMA(a0, m, c); a1 = FMA(a1, m, c); a2 = FMA(a2, m, c); a3 = FMA(a3, m, c);
    a4 = FMA(a4, m, c); a5 = FMA(a5, m, c); a6 = FMA(a6, m, c); a7 = FMA(a7, m, c);
    a8 = FMA(a8, m, c); a9 = FMA(a9, m, c); a10 = FMA(a10, m, c); a11 = FMA(a11, m, c);
  }
  V *o = sink[(long)arg & 255]; /* every lane of every chain is kept */
  o[0] = a0; o[1] = a1; o[2] = a2; o[3] = a3; o[4] = a4; o[5] = a5;
  o[6] = a6; o[7] = a7; o[8] = a8; o[9] = a9; o[10] = a10; o[11] = a11;
  return 0;
}
int main(int argc, char **argv) {
  int n = atoi(argv[1]);
  iters = atol(argv[2]);
  pthread_t th[256];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < n; i++) pthread_create(&th[i], 0, run, (void *)i);
  for (int i = 0; i < n; i++) pthread_join(th[i], 0);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double el = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
  printf("%f\n", n * (double)iters * 12 * LANES * 2 / el / 1e9);
  return 0;
}
"""


def measured_peak(cores, iters=200000000):
    """GFLOP/s of the FMA loop on cores threads (best of 3), or None when
    it cannot be compiled."""
    with tempfile.TemporaryDirectory() as d:
        src, exe = os.path.join(d, "fma.c"), os.path.join(d, "fma")
        with open(src, "w") as f:
            f.write(_FMA_LOOP)
        for flags in (["-mavx512f", "-mfma"], ["-mavx2", "-mfma"]):
            if subprocess.run(["cc", "-O2", *flags, "-pthread", src, "-o", exe], capture_output=True).returncode == 0:
                break
        else:
            return None
        return max(float(subprocess.run([exe, str(cores), str(iters)], capture_output=True, text=True,
                                        check=True).stdout) for _ in range(3))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*")
    ap.add_argument("--nfe-per-s", type=float, action="append", default=[],
                    help="also print the GFLOP/s achieved at this rate (repeatable)")
    ap.add_argument("--measure-peak", action="store_true", help="time an FMA loop on every core too")
    a = ap.parse_args()
    paths = a.models or sorted(glob.glob(os.path.join(ROOT, "models", "*", "model.onnx")))
    pk, how = peak()
    print("FP32 peak ≈ %.1f GFLOP/s: %s" % (pk, how))
    peaks = [("nominal peak", pk)]
    if a.measure_peak:
        mp = measured_peak(os.cpu_count() or 1)
        if mp:
            print("FP32 FMA loop on %d cores: %.1f GFLOP/s (%.2f GHz effective at that width)" % (
                os.cpu_count(), mp, mp / pk * float(how.split(" GHz")[0].split()[-1])))
            peaks.append(("FMA loop", mp))
    for p in paths:
        conv, gemm, elem, params = count(p)
        fwd = conv + gemm
        print("%s: %d parameters, %.2f MFLOPs per forward (Conv %.2f, Gemm %.3f; elementwise %.2f more)" % (
            os.path.relpath(p, ROOT), params, fwd / 1e6, conv / 1e6, gemm / 1e6, elem / 1e6))
        for r in a.nfe_per_s:
            print("  at %.0f NFE/s: %.1f GFLOP/s = %s" % (r, fwd * r / 1e9, ", ".join(
                "%.0f%% of the %s" % (100 * fwd * r / 1e9 / v, name) for name, v in peaks)))


if __name__ == "__main__":
    main()
