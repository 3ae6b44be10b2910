#!/usr/bin/python3
"""Tests for the training side: the sigma sampler (edm.SigmaDist), the UNet
at 28x28 and 32x32, NPY reading (tools/npy.py, the Go reader's rules), the
Gaussian-mixture baseline (tools/baseline.py) and tools/train.py end to end on
tiny data (a few steps; checkpoint/resume checks).

Run: /usr/bin/python3 -m unittest discover -s tools
"""
import contextlib
import gzip
import io
import json
import math
import os
import signal
import struct
import sys
import tempfile
import unittest
from unittest import mock

import numpy as np
import onnx
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import baseline  # noqa: E402
import edm  # noqa: E402
import export  # noqa: E402
import npy  # noqa: E402
import onnx_ref  # noqa: E402
import onnx_weights  # noqa: E402
import train  # noqa: E402

torch.set_num_threads(1)


class TestSigmaDist(unittest.TestCase):
    N = 200_000
    ALPHA = 1e-6
    # Dvoretzky-Kiefer-Wolfowitz (Massart's constant): for n i.i.d. draws,
    # P(sup_s |F_n(s) - F(s)| > eps) <= 2 exp(-2 n eps^2). With n = 2e5 and
    # a false-alarm probability of 1e-6 that is eps = 0.0060, uniformly over
    # all quantiles. The empirical q-quantile s_q has F_n(s_q) in [q, q + 1/n],
    # so |F(s_q) - q| <= eps + 1/n.
    EPS = math.sqrt(math.log(2 / ALPHA) / (2 * N)) + 1.0 / N
    QS = [0.001, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999]

    def quantile_errors(self, sample, dist):
        s = np.sort(sample.double().numpy())
        out = []
        for q in self.QS:
            sq = s[int(math.ceil(q * len(s))) - 1]
            out.append(abs(dist.cdf(sq) - q))
        return np.array(out)

    def check(self, dist, seed):
        g = torch.Generator().manual_seed(seed)
        x = dist.sample(self.N, generator=g)
        self.assertEqual(tuple(x.shape), (self.N,))
        self.assertTrue(bool((x > 0).all()))
        err = self.quantile_errors(x, dist)
        self.assertLess(err.max(), self.EPS, err)
        return x

    def test_cover_quantiles(self):
        d = edm.SigmaDist("cover")
        self.assertEqual((d.frac, d.lo, d.hi), (0.3, 0.002, 20.0))
        x = self.check(d, 1)
        # The test has power: the EDM log-normal alone, or a mixture with a
        # different fraction, is far outside the tolerance on the same sample.
        for wrong in (edm.SigmaDist("edm"), edm.SigmaDist("cover", frac=0.2), edm.SigmaDist("cover", hi=40.0)):
            self.assertGreater(self.quantile_errors(x, wrong).max(), 2 * self.EPS, wrong.args())
        # The mixture covers the large sigmas the methods evaluate (up to 20):
        big = float((x >= 12).double().mean())
        want = 1 - d.cdf(12.0)
        self.assertAlmostEqual(big, want, delta=self.EPS)
        self.assertGreater(want, 0.015)  # 0.3 * ln(20/12) / ln(20/0.002) + 0.7 * 0.0011
        self.assertLess(1 - edm.SigmaDist("edm").cdf(12.0), 0.0011)

    def test_other_cover_and_edm_quantiles(self):
        self.check(edm.SigmaDist("cover", frac=0.5, lo=0.01, hi=80.0), 2)
        self.check(edm.SigmaDist("cover", frac=1.0), 3)
        self.check(edm.SigmaDist("edm"), 4)

    def test_edm_stream_unchanged(self):
        # The default must draw exactly what edm_loss always drew, so the
        # shipped models' recipe reproduces: sigma = exp(randn(n)*P_std+P_mean),
        # then the noise.
        g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
        s = edm.SigmaDist("edm").sample(64, generator=g1)
        want = torch.exp(torch.randn(64, generator=g2) * edm.P_STD + edm.P_MEAN)
        torch.testing.assert_close(s, want, rtol=0, atol=0)
        torch.testing.assert_close(torch.randn(5, generator=g1), torch.randn(5, generator=g2), rtol=0, atol=0)

    def test_range_and_describe(self):
        lo, hi = edm.SigmaDist("edm").sigma_range()
        self.assertAlmostEqual(lo, math.exp(-1.2 - 3.29 * 1.2))
        self.assertAlmostEqual(hi, math.exp(-1.2 + 3.29 * 1.2))
        self.assertEqual((train.SIGMA_MIN, train.SIGMA_MAX), (lo, hi))
        self.assertEqual(edm.SigmaDist("cover").sigma_range(), (0.002, 20.0))
        self.assertEqual(edm.SigmaDist("cover", lo=0.01, hi=10.0).sigma_range(), (lo, hi))
        self.assertEqual(edm.SigmaDist("edm").describe(), "lnσ~N(-1.2,1.2²)")  # shipped recipes
        self.assertIn("p=0.3", edm.SigmaDist("cover").describe())
        for bad in (dict(kind="x"), dict(kind="cover", frac=1.5), dict(kind="cover", lo=1.0, hi=0.5)):
            with self.assertRaises(ValueError):
                edm.SigmaDist(**bad)
        d = edm.SigmaDist("cover", frac=0.4)
        self.assertEqual(edm.SigmaDist.from_args(d.args()), d)
        self.assertEqual(edm.SigmaDist.from_args(None), edm.SigmaDist("edm"))


class TestUNetShapes(unittest.TestCase):
    def run_shape(self, shape, channels=(16, 32, 64), emb=64):
        torch.manual_seed(0)
        m = edm.build(channels, emb, in_ch=shape[0]).eval()
        seen = {}
        for name in ("enc0", "enc1", "mid1", "dec1", "dec0"):
            getattr(m.net, name).register_forward_hook(
                lambda mod, inp, out, name=name: seen.__setitem__(name, tuple(out.shape[2:])))
        x = torch.randn((2,) + shape)
        with torch.no_grad():
            y = m(x, torch.tensor([0.1, 20.0]))
        self.assertEqual(tuple(y.shape), (2,) + shape)
        self.assertTrue(bool(torch.isfinite(y).all()))
        return seen

    def test_rgb_32(self):
        seen = self.run_shape((3, 32, 32))
        self.assertEqual(seen, {"enc0": (32, 32), "enc1": (16, 16), "mid1": (8, 8), "dec1": (16, 16),
                                "dec0": (32, 32)})
        m = edm.build((32, 64, 128), 128, in_ch=3)
        self.assertEqual(m.net.conv_in.weight.shape[1], 3)
        self.assertEqual(m.net.conv_out.weight.shape[0], 3)
        self.assertIn("in_ch=3", edm.arch_string(m))

    def test_gray_28(self):
        seen = self.run_shape((1, 28, 28))
        self.assertEqual(seen["mid1"], (7, 7))
        self.assertEqual(seen["dec0"], (28, 28))
        self.assertNotIn("in_ch", edm.arch_string(edm.build()))  # shipped recipe wording
        self.run_shape((3, 28, 28))

    def test_spatial_check(self):
        edm.check_spatial(28, 28)
        edm.check_spatial(32, 64)
        for h, w in ((30, 30), (28, 26), (0, 8)):
            with self.assertRaises(ValueError):
                edm.check_spatial(h, w)


class TestNPY(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def save(self, arr, name="a.npy", **kw):
        p = os.path.join(self.dir.name, name)
        np.save(p, arr, **kw)
        return p

    def test_uint8_layouts(self):
        rng = np.random.default_rng(0)
        b = rng.integers(0, 256, size=(4, 3, 6, 5), dtype=np.uint8)  # N,C,H,W
        want = b.astype(np.float32) / np.float32(127.5) - np.float32(1)
        for arr in (b, b.transpose(0, 2, 3, 1)):  # NCHW, NHWC
            x = npy.load_images(self.save(np.ascontiguousarray(arr)))
            self.assertEqual(x.dtype, np.float32)
            np.testing.assert_array_equal(x, want)
        self.assertEqual(npy.load_images(self.save(np.array([[[0, 255]]], np.uint8)))[0, 0, 0].tolist(),
                         [-1.0, 1.0])
        # [N,H,W]: one channel
        x = npy.load_images(self.save(b[:, 0]))
        np.testing.assert_array_equal(x, want[:, :1])
        # both axes 1 or 3: taken as [N,C,H,W], like the Go reader
        amb = rng.integers(0, 256, size=(2, 3, 4, 3), dtype=np.uint8)
        x = npy.load_images(self.save(amb))
        self.assertEqual(x.shape, (2, 3, 4, 3))
        np.testing.assert_array_equal(x, amb.astype(np.float32) / np.float32(127.5) - 1)

    def test_floats(self):
        rng = np.random.default_rng(1)
        v = rng.uniform(-1, 1, size=(3, 4, 4, 1)).astype(np.float32)  # NHWC, 1 channel
        np.testing.assert_array_equal(npy.load_images(self.save(v)), v.transpose(0, 3, 1, 2))
        u = rng.uniform(0, 1, size=(3, 1, 4, 4))  # float64 on [0, 1] -> 2u - 1 (auto)
        np.testing.assert_allclose(npy.load_images(self.save(u)), 2 * u - 1, rtol=0, atol=1e-7)
        np.testing.assert_allclose(npy.load_images(self.save(u), "signed"), u, rtol=0, atol=1e-7)
        # slack: values a hair past the end are clamped
        w = v.copy()
        w[0, 0, 0, 0] = -1.00005
        self.assertEqual(npy.load_images(self.save(w)).min(), -1.0)

    def test_refused(self):
        ok = np.zeros((2, 4, 4, 3), np.uint8)
        cases = {
            "fortran": (np.asfortranarray(np.zeros((2, 3, 4, 5), np.uint8)), "Fortran"),
            "big-endian": (np.zeros((2, 4, 4), ">f4"), "big-endian"),
            "int16": (np.zeros((2, 4, 4), np.int16), "unsupported dtype"),
            "shape5": (np.zeros((2, 4, 4, 5), np.uint8), "bad shape"),
            "shape2": (np.zeros((2, 4), np.uint8), "bad shape"),
            "empty": (np.zeros((2, 3, 0, 4), np.uint8), "empty"),
            "range": (np.full((2, 4, 4), 2.0, np.float32), "expected [-1, 1] or [0, 1]"),
            "nan": (np.full((2, 4, 4), np.nan, np.float32), "NaN"),
        }
        for name, (arr, msg) in cases.items():
            p = self.save(arr, name + ".npy")
            with self.assertRaises(ValueError, msg=name) as cm:
                npy.load_images(p)
            self.assertIn(msg, str(cm.exception), name)
            self.assertIn(p, str(cm.exception), name)
        with self.assertRaises(ValueError):
            npy.load_images(self.save(np.full((2, 4, 4), 0.5, np.float32)), "bogus")
        npy.load_images(self.save(ok))

    def test_versions(self):
        a = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
        p = os.path.join(self.dir.name, "v2.npy")
        with open(p, "wb") as f:
            np.lib.format.write_array(f, a, version=(2, 0))
        np.testing.assert_array_equal(npy.load_images(p), npy.load_images(self.save(a)))


def go_rule_cov(xk, r, floor=baseline.ISO_FLOOR):
    """Dense covariance of one component by denoise/gmm Fit's rule, written
    out directly from the D x D sample covariance."""
    d = xk.shape[1]
    lam, u = np.linalg.eigh(np.cov(xk, rowvar=False))  # ascending
    iso = max(np.maximum(lam[:d - r], 0).sum() / (d - r), floor)
    var = np.maximum(np.maximum(lam[::-1][:r], floor), iso)
    ur = u[:, ::-1][:, :r]
    return ur @ np.diag(var) @ ur.T + iso * (np.eye(d) - ur @ ur.T), var, iso


def dense_posterior(pis, mus, covs, y, sigma):
    d = y.shape[1]
    logw, means = [], []
    for pi, mu, cov in zip(pis, mus, covs):
        c = cov + sigma ** 2 * np.eye(d)
        ci = np.linalg.inv(c)
        yc = y - mu
        logw.append(np.log(pi) - 0.5 * np.linalg.slogdet(c)[1] - 0.5 * np.einsum("ni,ij,nj->n", yc, ci, yc))
        means.append(mu + yc @ (cov @ ci).T)
    logw = np.stack(logw, 1)
    w = np.exp(logw - logw.max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    return np.einsum("nk,knd->nd", w, np.stack(means))


class TestBaseline(unittest.TestCase):
    def check_against_dense(self, x, lab, r, y):
        comps = baseline.fit(x, lab, rank=r)
        groups = np.unique(lab)
        covs = [go_rule_cov(x[lab == k], r)[0] for k in groups]
        pis = [np.mean(lab == k) for k in groups]
        mus = [x[lab == k].mean(0) for k in groups]
        for (_, _, u, var, iso), k in zip(comps, groups):
            _, want_var, want_iso = go_rule_cov(x[lab == k], r)
            self.assertAlmostEqual(iso, want_iso, places=10)
            np.testing.assert_allclose(var, want_var[:len(var)], rtol=1e-8)
            np.testing.assert_allclose(want_var[len(var):], iso)  # left-out directions are isotropic
            np.testing.assert_allclose(u.T @ u, np.eye(u.shape[1]), atol=1e-8)
        for sigma in (0.05, 0.7, 20.0):
            got = baseline.posterior_mean(comps, y, sigma)
            want = dense_posterior(pis, mus, covs, y, sigma)
            np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)
        return comps

    def test_ppca_rule_and_posterior(self):
        # Go's rule (denoise/gmm Fit): top-r eigenpairs, iso = mean of the
        # other eigenvalues, floors; the low-rank posterior mean equals the
        # dense Gaussian-mixture formula with that covariance.
        rng = np.random.default_rng(0)
        d, r = 12, 3
        a = rng.normal(size=(d, d)) * np.linspace(2, 0.01, d)
        x = np.concatenate([rng.normal(size=(300, d)) @ a.T, rng.normal(size=(200, d)) @ a.T * 0.5 + 1])
        lab = np.repeat([0, 1], [300, 200])
        y = x[:7] + 0.3 * rng.normal(size=(7, d))
        comps = self.check_against_dense(x, lab, r, y)
        full = baseline.fit(x, lab)
        for (_, _, _, var, iso), (_, _, _, lam, _) in zip(comps, full):
            np.testing.assert_allclose(var, np.maximum(lam[::-1][:r], baseline.ISO_FLOOR))
            self.assertAlmostEqual(iso, max(lam[:d - r].mean(), baseline.ISO_FLOOR))
        with self.assertRaises(ValueError):
            baseline.fit(x, lab, rank=d)

    def test_fewer_images_than_dims(self):
        # n <= D takes the Gram-matrix route; same covariance as the D x D one,
        # also when the rank exceeds what n images can span (n - 1).
        rng = np.random.default_rng(2)
        d = 40
        a = rng.normal(size=(d, d)) * np.linspace(1, 0.05, d)
        x = np.concatenate([rng.normal(size=(25, d)) @ a.T, rng.normal(size=(12, d)) @ a.T + 0.5])
        lab = np.repeat([3, 7], [25, 12])
        y = x[::5] + 0.2 * rng.normal(size=(8, d))
        for r in (4, 20, 30):
            comps = self.check_against_dense(x, lab, r, y)
            if r == 30:
                self.assertLessEqual(comps[1][2].shape[1], 11)  # 12 images span 11 directions

    def test_kmeans(self):
        rng = np.random.default_rng(3)
        centres = np.array([[0, 0, 0], [5, 5, 5], [-5, 5, 0]], float)
        truth = rng.integers(0, 3, size=600)
        x = (centres[truth] + 0.3 * rng.normal(size=(600, 3))).astype(np.float32)
        lab = baseline.kmeans(x, 3, seed=1)
        # the same partition, up to relabelling
        pairs = set(zip(truth.tolist(), lab.tolist()))
        self.assertEqual(len(pairs), 3)
        np.testing.assert_array_equal(lab, baseline.kmeans(x, 3, seed=1))  # seeded


def write_idx(path, arr):
    dims = arr.shape
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">HBB", 0, 8, len(dims)) + struct.pack(">" + "I" * len(dims), *dims) + arr.tobytes())


class TestTrainSmoke(unittest.TestCase):
    """tools/train.py for a few steps on tiny data."""

    COMMON = ["--steps", "3", "--batch", "8", "--channels", "8-16-16", "--emb", "32",
              "--warmup", "2", "--log-every", "1000", "--ckpt-every", "1000"]

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.d = self.dir.name

    def run_train(self, args):
        # train.main pins torch's interop pool, which aborts the process when
        # done after parallel work started (as it has in a test run).
        err = io.StringIO()
        saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            with contextlib.redirect_stderr(err), \
                    mock.patch.object(torch, "set_num_interop_threads", lambda n: None):
                train.main(args)
        finally:
            for s, h in saved.items():  # train.main installs its own handlers
                signal.signal(s, h)
        return err.getvalue()

    def test_npy_rgb_cover(self):
        rng = np.random.default_rng(0)
        tr = os.path.join(self.d, "train.npy")
        te = os.path.join(self.d, "test.npy")
        # uint8 [N,H,W,C], what the Go side hands around
        base = rng.integers(0, 256, size=(2, 8, 8, 3))
        imgs = np.clip(base[rng.integers(0, 2, size=48)] + rng.integers(-20, 20, size=(48, 8, 8, 3)), 0, 255)
        np.save(tr, imgs.astype(np.uint8))
        np.save(te, imgs[:12].astype(np.uint8))
        out, ck = os.path.join(self.d, "out"), os.path.join(self.d, "ck")
        args = ["--images", tr, "--test-images", te, "--dataset-name", "tiny-rgb", "--out", out,
                "--ckpt-dir", ck, "--sigma-dist", "cover", "--baseline-k", "2"] + self.COMMON
        log = self.run_train(args)
        self.assertIn("step 3", log)
        model = onnx.load(os.path.join(out, "model.onnx"))
        md = export.metadata(model)
        self.assertEqual(md["shape"], "3x8x8")
        self.assertEqual((float(md["sigma_min"]), float(md["sigma_max"])), (0.002, 20.0))
        self.assertIn("σ~cover: p=0.3", md["recipe"])
        self.assertIn("in_ch=3", md["recipe"])
        dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
        self.assertEqual(dims, ["N", 3, 8, 8])
        with open(os.path.join(out, "quality.json")) as f:
            q = json.load(f)
        self.assertEqual(list(q["mse"]), [repr(s) for s in train.EVAL_SIGMAS])
        self.assertIn("20.0", q["mse"])
        self.assertEqual(q["n_images"], 12)
        self.assertLess(q["onnx_max_abs_diff"], 1e-4)
        base = q["gaussian_baseline_mse"]
        self.assertEqual(set(base["mse"]), set(q["mse"]))
        self.assertIn("k-means", base["what"])
        self.assertIn("top 64 principal variances", base["what"])
        with open(os.path.join(out, "MODEL_CARD.md")) as f:
            card = f.read()
        self.assertIn("[N,3,8,8]", card)
        self.assertIn("--sigma-dist cover", card)
        self.assertIn("0.002 / 20", card)
        ckpt = torch.load(os.path.join(ck, "ckpt.pt"))
        self.assertEqual(ckpt["args"]["shape"], [3, 8, 8])
        self.assertEqual(ckpt["args"]["sigma_dist"], {"kind": "cover", "frac": 0.3, "lo": 0.002, "hi": 20.0})
        # resuming with another sigma distribution or other data is refused
        for change in (["--sigma-dist", "edm"], ["--sigma-dist", "cover", "--cover-frac", "0.5"]):
            a = [v for v in args if v not in ("--sigma-dist", "cover")] + change
            with self.assertRaises(SystemExit) as cm:
                self.run_train(a)
            self.assertIn("sigma_dist", str(cm.exception))
        gray = os.path.join(self.d, "gray.npy")
        np.save(gray, imgs[..., 0].astype(np.uint8))
        a = list(args)
        a[a.index(tr)] = gray
        a[a.index(te)] = gray
        with self.assertRaises(SystemExit) as cm:
            self.run_train(a)
        self.assertIn("shape", str(cm.exception))
        # the test split defaults to train -> test in the file name
        a = train.parse_args([v for v in args if v not in ("--test-images", te)])
        self.assertEqual(a.test_images, te)
        # .npy with labels or classes is an argument error
        with self.assertRaises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
            train.parse_args(args + ["--classes", "0-4"])

    def tiny_rgb(self, rng):
        """Writes 24 random 8x8 RGB training images (the first 6 also the
        test split) and returns the data arguments of train.py for them."""
        tr, te = os.path.join(self.d, "train.npy"), os.path.join(self.d, "test.npy")
        imgs = rng.integers(0, 256, size=(24, 8, 8, 3), dtype=np.uint8)
        np.save(tr, imgs)
        np.save(te, imgs[:6])
        return ["--images", tr, "--test-images", te, "--dataset-name", "tiny-rgb", "--baseline-k", "2"]

    def test_init_onnx(self):
        # A run started from an exported model's weights (a tiny learning
        # rate keeps them) exports the same function; another architecture
        # is refused by name.
        rng = np.random.default_rng(2)
        base = self.tiny_rgb(rng)
        a_out = os.path.join(self.d, "a")
        self.run_train(base + ["--out", a_out] + self.COMMON)
        a_model = os.path.join(a_out, "model.onnx")
        b_out = os.path.join(self.d, "b")
        log = self.run_train(base + ["--out", b_out, "--init-onnx", a_model, "--lr", "1e-30"] + self.COMMON)
        self.assertIn("starting from the weights of", log)
        x = rng.normal(size=(4, 3, 8, 8)).astype(np.float32)
        sig = np.array([0.05, 0.5, 2.0, 15.0], np.float32)
        got = [onnx_ref.run(os.path.join(d, "model.onnx"), {"x": x, "sigma": sig})["denoised"] for d in (a_out, b_out)]
        self.assertLess(float(np.abs(got[0] - got[1]).max()), 1e-5)
        # and the fresh initialisation it replaced is not that function
        c_out = os.path.join(self.d, "c")
        self.run_train(base + ["--out", c_out, "--lr", "1e-30"] + self.COMMON)
        c = onnx_ref.run(os.path.join(c_out, "model.onnx"), {"x": x, "sigma": sig})["denoised"]
        self.assertGreater(float(np.abs(got[0] - c).max()), 1e-3)
        self.assertIn("continued from tiny-rgb model a (3 steps)", export.metadata(os.path.join(b_out, "model.onnx"))["recipe"])
        with open(os.path.join(b_out, "MODEL_CARD.md")) as f:
            self.assertIn("continuing tiny-rgb model a (3 steps)", f.read())
        wide = [v if v != "8-16-16" else "8-16-32" for v in self.COMMON]
        with self.assertRaises(SystemExit) as cm:
            self.run_train(base + ["--out", os.path.join(self.d, "d"), "--init-onnx", a_model] + wide)
        self.assertIn("--init-onnx", str(cm.exception))
        self.assertIn("channels 8-16-16", str(cm.exception))

    def test_attn(self):
        # The middle self-attention trains, exports (the ONNX graph matches
        # PyTorch), is named in the recipe and reads back through
        # onnx_weights; a run without it cannot continue from it.
        rng = np.random.default_rng(3)
        base = self.tiny_rgb(rng)
        out = os.path.join(self.d, "attn")
        self.run_train(base + ["--out", out, "--attn", "--lr", "1e-2"] + self.COMMON)
        path = os.path.join(out, "model.onnx")
        self.assertIn("attn=mid", export.metadata(path)["recipe"])
        with open(os.path.join(out, "quality.json")) as f:
            self.assertLess(json.load(f)["onnx_max_abs_diff"], 1e-4)
        net = onnx_weights.load(path)
        self.assertIsNotNone(net.net.mid_attn)
        # lr 1e-2 for 3 steps moves the zero-initialised projection
        self.assertGreater(float(net.net.mid_attn.proj.weight.abs().max()), 0)
        x = torch.from_numpy(rng.normal(size=(2, 3, 8, 8)).astype(np.float32))
        sig = torch.tensor([0.3, 3.0])
        with torch.inference_mode():
            got = net(x, sig).numpy()
        want = onnx_ref.run(path, {"x": x.numpy(), "sigma": sig.numpy()})["denoised"]
        self.assertLess(float(np.abs(got - want).max()), 1e-4)
        with self.assertRaises(SystemExit) as cm:
            self.run_train(base + ["--out", os.path.join(self.d, "b"), "--init-onnx", path] + self.COMMON)
        self.assertIn("attn True", str(cm.exception))
        # The other way round, the attention starts as the identity: with a
        # tiny learning rate the continued model is the plain one.
        plain = os.path.join(self.d, "plain")
        self.run_train(base + ["--out", plain] + self.COMMON)
        grown = os.path.join(self.d, "grown")
        log = self.run_train(base + ["--out", grown, "--attn", "--lr", "1e-30",
                                     "--init-onnx", os.path.join(plain, "model.onnx")] + self.COMMON)
        self.assertIn("starts as the identity", log)
        a, b = (onnx_ref.run(os.path.join(d, "model.onnx"), {"x": x.numpy(), "sigma": sig.numpy()})["denoised"]
                for d in (plain, grown))
        self.assertLess(float(np.abs(a - b).max()), 1e-5)
        self.assertIn("attn=mid", export.metadata(os.path.join(grown, "model.onnx"))["recipe"])

    def test_idx_legacy_checkpoint(self):
        # A checkpoint written before shape/sigma_dist were recorded resumes as
        # 1x28x28 / edm; asking for cover then is refused.
        rng = np.random.default_rng(1)
        imgs = rng.integers(0, 256, size=(40, 28, 28), dtype=np.uint8)
        labels = np.repeat(np.arange(4, dtype=np.uint8), 10)
        paths = {}
        for split, n in (("train", 40), ("t10k", 12)):
            paths[split] = os.path.join(self.d, "%s-images-idx3-ubyte.gz" % split)
            write_idx(paths[split], imgs[:n])
            write_idx(os.path.join(self.d, "%s-labels-idx1-ubyte.gz" % split), labels[:n])
        out, ck = os.path.join(self.d, "out"), os.path.join(self.d, "ck")
        args = ["--images", paths["train"], "--labels", paths["train"].replace("images-idx3", "labels-idx1"),
                "--dataset-name", "tiny", "--out", out, "--ckpt-dir", ck] + self.COMMON
        args[args.index("--steps") + 1] = "1"
        self.run_train(args)
        p = os.path.join(ck, "ckpt.pt")
        st = torch.load(p)
        self.assertEqual(st["args"]["sigma_dist"], {"kind": "edm"})
        self.assertIn("lnσ~N(-1.2,1.2²)", st["meta"]["recipe"])
        self.assertNotIn("cover", st["meta"]["recipe"])
        for k in ("shape", "sigma_dist", "n_train"):
            del st["args"][k]
        torch.save(st, p)
        args[args.index("--steps") + 1] = "2"
        log = self.run_train(args)
        self.assertIn("resumed", log)
        self.assertIn("baseline: cached", log)
        self.assertEqual(torch.load(p)["step"], 2)
        with open(os.path.join(out, "quality.json")) as f:
            q = json.load(f)
        self.assertIn("per-class", q["gaussian_baseline_mse"]["what"])
        self.assertIn("full covariances", q["gaussian_baseline_mse"]["what"])
        self.assertEqual(export.metadata(os.path.join(out, "model.onnx"))["shape"], "1x28x28")
        with self.assertRaises(SystemExit) as cm:
            self.run_train(args + ["--sigma-dist", "cover"])
        self.assertIn("sigma_dist", str(cm.exception))


if __name__ == "__main__":
    unittest.main()
