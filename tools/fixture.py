#!/usr/bin/python3
"""Writes the ONNX test fixtures used by the Go ONNX Runtime backend:

  denoise/onnx/testdata/tiny.onnx, tiny_fixture.json
      tiny seeded EDM UNet (tools/edm.py, channels 8-16-16) in the contract.
  denoise/onnx/testdata/tiny_ddpm.onnx, tiny_ddpm_fixture.json
      tiny seeded DDPM eps-model stand-in wrapped by export.DDPMWrapper.

Each JSON is {"shape":[1,28,28], "sigma":[N], "x":[N*784], "denoised":[N*784]}
with "denoised" computed by PyTorch (float32), values rounded to 7
significant digits. x = Fashion-MNIST test image i (i = 0..3, [-1,1] scale)
+ sigma_i * noise (seed 7); if the data set is missing, a smooth synthetic
image is used instead.

Usage: /usr/bin/python3 tools/fixture.py [--outdir denoise/onnx/testdata]
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import export  # noqa: E402
import idx  # noqa: E402
import standins  # noqa: E402

SIGMAS = [0.05, 0.34226, 1.24016, 12.0248]


def clean_images(n):
    path = os.path.join(idx.FASHION_DIR, "t10k-images-idx3-ubyte.gz")
    if os.path.exists(path):
        x, _ = idx.load_images(path)
        return x[:n].copy()
    yy, xx = np.mgrid[0:28, 0:28] / 27.0
    return np.stack([np.sin(3 * (i + 1) * xx) * np.cos(2 * yy)[None] for i in range(n)]
                    ).astype(np.float32).reshape(n, 1, 28, 28)


def inputs(seed=7):
    x0 = clean_images(len(SIGMAS))
    rng = np.random.default_rng(seed)
    s = np.array(SIGMAS, dtype=np.float32)
    x = (x0 + s[:, None, None, None] * rng.standard_normal(x0.shape)).astype(np.float32)
    return x, s


def r7(a):
    return [float("%.7g" % v) for v in np.asarray(a, dtype=np.float64).reshape(-1)]


def write_fixture(module, onnx_path, json_path, x, s, **meta):
    export.export_onnx(module, onnx_path, shape=(1, 28, 28), **meta)
    with torch.no_grad():
        d = module(torch.from_numpy(x), torch.from_numpy(s)).numpy()
    doc = {"shape": [1, 28, 28], "sigma": r7(s), "x": r7(x), "denoised": r7(d)}
    with open(json_path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print("wrote %s (%d bytes), %s (%d bytes)" % (
        onnx_path, os.path.getsize(onnx_path), json_path, os.path.getsize(json_path)))
    return d


def main():
    ap = argparse.ArgumentParser(description="Write ONNX test fixtures for the Go side.")
    ap.add_argument("--outdir", default=os.path.join(HERE, "..", "denoise", "onnx", "testdata"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(a.outdir, exist_ok=True)
    x, s = inputs()
    # Round the inputs first so the JSON inputs reproduce the JSON outputs exactly.
    x = np.array(r7(x), dtype=np.float32).reshape(x.shape)
    s = np.array(r7(s), dtype=np.float32)

    m = standins.tiny_edm()
    write_fixture(m, os.path.join(a.outdir, "tiny.onnx"), os.path.join(a.outdir, "tiny_fixture.json"),
                  x, s, dataset="fixture (random weights)", sigma_min=0.002, sigma_max=80.0,
                  recipe="tiny seeded random EDM UNet ch=8-16-16 emb=32 params=%d seed=1234 "
                         "(tools/fixture.py, untrained)" % sum(p.numel() for p in m.parameters()))

    w = export.DDPMWrapper(standins.tiny_eps()).eval()
    _, _, st = export.ddpm_schedule()
    write_fixture(w, os.path.join(a.outdir, "tiny_ddpm.onnx"),
                  os.path.join(a.outdir, "tiny_ddpm_fixture.json"),
                  x, s, dataset="fixture (random weights)", sigma_min=float(st[0]),
                  sigma_max=float(st[-1]),
                  recipe="tiny seeded random DDPM eps stand-in (tools/standins.py TinyEps seed=4321) "
                         "wrapped by export.DDPMWrapper: linear beta 1e-4..0.02 T=1000, "
                         "t=argmin|ln sigma_t - ln sigma|, D=x - sigma_t*eps(sqrt(abar_t)*x, t)")


if __name__ == "__main__":
    main()
