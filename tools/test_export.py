#!/usr/bin/python3
"""Tests for tools/export.py, tools/fixture.py and the ONNX contract.

Run: /usr/bin/python3 -m unittest discover -s tools

Exported graphs are executed with tools/onnx_ref.py (a small numpy evaluator;
onnxruntime is not available to Python here) and compared with PyTorch.
"""
import json
import math
import os
import sys
import tempfile
import unittest

import numpy as np
import onnx
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import edm  # noqa: E402
import export  # noqa: E402
import idx  # noqa: E402
import onnx_ref  # noqa: E402
import standins  # noqa: E402

TESTDATA = os.path.join(HERE, "..", "denoise", "onnx", "testdata")
META_KEYS = {"dataset", "shape", "sigma_min", "sigma_max", "recipe", "producer"}

torch.set_num_threads(1)


def dims(vi):
    return [d.dim_param if d.dim_param else d.dim_value for d in vi.type.tensor_type.shape.dim]


class ContractMixin:
    def check_contract(self, model, shape, dataset="test"):
        onnx.checker.check_model(model)
        for op in model.opset_import:
            if op.domain in ("", "ai.onnx"):
                self.assertLessEqual(op.version, 17)
        self.assertEqual([i.name for i in model.graph.input], ["x", "sigma"])
        self.assertEqual([o.name for o in model.graph.output], ["denoised"])
        x, s = model.graph.input
        self.assertEqual(dims(x), ["N"] + list(shape))
        self.assertEqual(dims(s), ["N"])
        self.assertEqual(dims(model.graph.output[0]), ["N"] + list(shape))
        for vi in list(model.graph.input) + list(model.graph.output):
            self.assertEqual(vi.type.tensor_type.elem_type, onnx.TensorProto.FLOAT)
        md = export.metadata(model)
        self.assertTrue(META_KEYS <= set(md), md)
        self.assertEqual(md["shape"], "x".join(map(str, shape)))
        self.assertEqual(md["producer"], "eigenscore tools")
        self.assertEqual(md["dataset"], dataset)
        lo, hi = float(md["sigma_min"]), float(md["sigma_max"])
        self.assertTrue(0 < lo < hi and math.isfinite(hi))
        self.assertNotIn("\n", md["recipe"])

    def check_numerics(self, path, module, shape, sigmas, seed=0, tol=2e-5):
        g = torch.Generator().manual_seed(seed)
        s = torch.tensor(sigmas, dtype=torch.float32)
        x = torch.randn((len(sigmas),) + tuple(shape), generator=g) * 0.5
        x = x + s.reshape(-1, 1, 1, 1) * torch.randn(x.shape, generator=g)
        with torch.no_grad():
            want = module(x, s).numpy()
        got = onnx_ref.run(path, {"x": x.numpy(), "sigma": s.numpy()})["denoised"]
        self.assertEqual(got.shape, want.shape)
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(got, want, atol=tol * scale, rtol=0)
        return x, s, want


class TestEDMExport(ContractMixin, unittest.TestCase):
    def test_tiny_edm(self):
        m = standins.tiny_edm()
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "m.onnx")
            model = export.export_onnx(m, p, shape=(1, 28, 28), dataset="test", sigma_min=0.002,
                                       sigma_max=80, recipe="tiny\nrecipe  test")
            self.check_contract(onnx.load(p), (1, 28, 28))
            self.assertEqual(export.metadata(model)["recipe"], "tiny recipe test")
            # dynamic batch: 1 and 5 images
            self.check_numerics(p, m, (1, 28, 28), [0.7])
            self.check_numerics(p, m, (1, 28, 28), [0.01, 0.2, 1.0, 5.0, 80.0], seed=1)

    def test_edm_rgb_32(self):
        # The training UNet for 3x32x32 colour data (32 -> 16 -> 8): contract
        # shape [N,3,32,32] and numerics at batch 1 and 4.
        torch.manual_seed(5)
        m = standins.randomize_(edm.build(channels=(8, 16, 16), emb_dim=32, in_ch=3), 5).eval()
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "m.onnx")
            export.export_onnx(m, p, shape=(3, 32, 32), dataset="cifar10", sigma_min=0.002,
                               sigma_max=20, recipe=edm.arch_string(m))
            model = onnx.load(p)
            self.check_contract(model, (3, 32, 32), dataset="cifar10")
            self.assertIn("in_ch=3", export.metadata(model)["recipe"])
            self.check_numerics(p, m, (3, 32, 32), [0.5])
            self.check_numerics(p, m, (3, 32, 32), [0.002, 0.3, 2.0, 20.0], seed=2)

    def test_preconditioning(self):
        # With F == 0, D = c_skip x; with F == 1, D = c_skip x + c_out.
        class Const(nn.Module):
            def __init__(self, v):
                super().__init__()
                self.v = v

            def forward(self, x, c_noise):
                return torch.full_like(x, self.v)
        x = torch.randn(3, 1, 28, 28)
        s = torch.tensor([0.1, 0.5, 3.0])
        sd = edm.SIGMA_DATA
        cs = sd ** 2 / (s ** 2 + sd ** 2)
        co = s * sd / torch.sqrt(s ** 2 + sd ** 2)
        d0 = edm.EDMDenoiser(Const(0.0))(x, s)
        d1 = edm.EDMDenoiser(Const(1.0))(x, s)
        torch.testing.assert_close(d0, cs.reshape(-1, 1, 1, 1) * x)
        torch.testing.assert_close(d1 - d0, co.reshape(-1, 1, 1, 1).expand_as(x))

    def test_edm_wrapper_generic(self):
        # An EDM-style net with an optional class-label argument and a
        # 3x8x8 shape, and one returning an object with .sample.
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 3, 3, padding=1)
                self.lab = nn.Linear(4, 3)

            def forward(self, x, sigma, class_labels=None):
                y = self.conv(x) / (1 + sigma.reshape(-1, 1, 1, 1) ** 2)
                if class_labels is not None:
                    y = y + self.lab(class_labels)[:, :, None, None]
                return y

        class Out:
            def __init__(self, sample):
                self.sample = sample

        class NetS(Net):
            def forward(self, x, sigma, class_labels=None):
                return Out(super().forward(x, sigma, class_labels))

        torch.manual_seed(0)
        for net, label in ((Net(), None), (Net(), 2), (NetS(), None)):
            w = export.EDMWrapper(net.eval(), class_label=label, label_dim=4).eval()
            with tempfile.TemporaryDirectory() as d:
                p = os.path.join(d, "m.onnx")
                export.export_onnx(w, p, shape=(3, 8, 8), dataset="cifar-ish", sigma_min=0.002,
                                   sigma_max=80, recipe="r")
                self.check_contract(onnx.load(p), (3, 8, 8), dataset="cifar-ish")
                self.check_numerics(p, w, (3, 8, 8), [0.3, 2.0, 9.0])
        # the baked label matters
        x, s = torch.randn(1, 3, 8, 8), torch.tensor([1.0])
        n = Net().eval()
        a = export.EDMWrapper(n, 0, 4)(x, s)
        b = export.EDMWrapper(n, 3, 4)(x, s)
        self.assertGreater(float((a - b).abs().max()), 0)


class TestDDPMExport(ContractMixin, unittest.TestCase):
    def test_schedule(self):
        betas, abar, sigma = export.ddpm_schedule()
        self.assertEqual(len(sigma), 1000)
        self.assertAlmostEqual(betas[0], 1e-4)
        self.assertAlmostEqual(betas[-1], 0.02)
        # The schedule the Go side uses (0-based t): sigma_t = sqrt(1/abar_t - 1).
        want = {100: 0.34226, 150: 0.52197, 200: 0.72359, 250: 0.95803, 300: 1.24016, 700: 12.0248}
        for t, v in want.items():
            self.assertAlmostEqual(sigma[t], v, places=4)
        self.assertTrue(np.all(np.diff(sigma) > 0))

    def test_timestep_selection(self):
        w = export.DDPMWrapper(standins.tiny_eps())
        _, _, sigma = export.ddpm_schedule()
        ts = [0, 1, 100, 300, 700, 998, 999]
        got = w.timestep(torch.tensor(sigma[ts], dtype=torch.float32)).tolist()
        self.assertEqual(got, ts)
        # nearest in log space; out of range clamps
        mid = math.sqrt(sigma[100] * sigma[101])
        t = w.timestep(torch.tensor([mid * 0.999, mid * 1.001, 1e-6, 1e6])).tolist()
        self.assertEqual(t, [100, 101, 0, 999])

    def test_denoise_formula(self):
        eps = standins.tiny_eps()
        w = export.DDPMWrapper(eps).eval()
        _, abar, sigma = export.ddpm_schedule()
        x = torch.randn(3, 1, 28, 28)
        t = torch.tensor([100, 300, 700])
        s_t = torch.tensor(sigma[t.numpy()], dtype=torch.float32)
        with torch.no_grad():
            got = w(x, s_t * 1.0001)  # slightly off the table: same t, table sigma_t used
            e = eps(torch.tensor(np.sqrt(abar[t.numpy()]), dtype=torch.float32).reshape(-1, 1, 1, 1) * x, t)
            want = x - s_t.reshape(-1, 1, 1, 1) * e
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)

    def test_tiny_ddpm(self):
        w = export.DDPMWrapper(standins.tiny_eps()).eval()
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "m.onnx")
            export.export_onnx(w, p, shape=(1, 28, 28), dataset="test", sigma_min=0.01,
                               sigma_max=157.4, recipe="ddpm")
            self.check_contract(onnx.load(p), (1, 28, 28))
            self.check_numerics(p, w, (1, 28, 28), [0.34226])
            self.check_numerics(p, w, (1, 28, 28), [0.005, 0.05, 0.5, 1.24016, 12.0248, 500.0], seed=3)

    def test_diffusers_like(self):
        # diffusers UNet2DModel returns an object with .sample; both the
        # auto-detection and an explicit call= adapter must give the same graph.
        class Out:
            def __init__(self, sample):
                self.sample = sample

        class Unet(nn.Module):
            def __init__(self, eps):
                super().__init__()
                self.eps = eps

            def forward(self, sample, timestep, return_dict=True):
                return Out(self.eps(sample, timestep))

        eps = standins.tiny_eps(ch=3)
        plain = export.DDPMWrapper(eps).eval()
        for w in (export.DDPMWrapper(Unet(eps)).eval(),
                  export.DDPMWrapper(Unet(eps), call=lambda m, x, t: m(x, t).sample).eval()):
            with tempfile.TemporaryDirectory() as d:
                p = os.path.join(d, "m.onnx")
                export.export_onnx(w, p, shape=(3, 32, 32), dataset="cifar10", sigma_min=0.01,
                                   sigma_max=157.4, recipe="ddpm")
                self.check_contract(onnx.load(p), (3, 32, 32), dataset="cifar10")
                x, s, want = self.check_numerics(p, w, (3, 32, 32), [0.1, 1.24016, 30.0])
                with torch.no_grad():
                    torch.testing.assert_close(plain(x, s), torch.from_numpy(want))

    def test_factory_cli(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "m.onnx")
            export.main(["factory", "--factory", "standins:tiny_eps", "--kind", "ddpm",
                         "--shape", "1x28x28", "--dataset", "x", "--out", p,
                         "--sigma-min", "0.01", "--sigma-max", "157"])
            self.check_contract(onnx.load(p), (1, 28, 28), dataset="x")


@unittest.skipUnless(os.environ.get("EDM_REPO"), "set EDM_REPO to a checkout of github.com/NVlabs/edm")
class TestEDMRepo(ContractMixin, unittest.TestCase):
    """The `export.py edm-pkl` path on a tiny randomly initialised EDMPrecond
    (SongUNet, the CIFAR-10 architecture at small width) pickled the way the
    EDM repo pickles its networks."""

    def test_edm_pkl(self):
        import pickle
        repo = os.path.abspath(os.environ["EDM_REPO"])
        sys.path.insert(0, repo)
        from training.networks import EDMPrecond
        torch.manual_seed(0)
        kw = dict(img_resolution=32, img_channels=3, model_type="SongUNet", model_channels=16,
                  channel_mult=[1, 2], num_blocks=1, attn_resolutions=[16], embedding_type="positional",
                  encoder_type="standard", decoder_type="standard", channel_mult_noise=1,
                  resample_filter=[1, 1])
        with tempfile.TemporaryDirectory() as d:
            for label_dim, label in ((0, None), (10, 3)):
                net = standins.randomize_(EDMPrecond(label_dim=label_dim, **kw), 5, std=0.05).eval()
                pkl, out = os.path.join(d, "n.pkl"), os.path.join(d, "n.onnx")
                with open(pkl, "wb") as f:
                    pickle.dump({"ema": net}, f)
                args = ["edm-pkl", "--pkl", pkl, "--edm-repo", repo, "--dataset", "cifar10", "--out", out]
                if label is not None:
                    args += ["--class-label", str(label)]
                export.main(args)
                self.check_contract(onnx.load(out), (3, 32, 32), dataset="cifar10")
                self.check_numerics(out, export.EDMWrapper(net, label, label_dim), (3, 32, 32),
                                    [0.05, 0.7, 20.0])


class TestFixtures(unittest.TestCase):
    """The committed fixtures for the Go side: ONNX graph output must match
    the PyTorch output stored in the JSON."""

    def check(self, name):
        jp = os.path.join(TESTDATA, name + "_fixture.json")
        op = os.path.join(TESTDATA, name + ".onnx")
        if not (os.path.exists(jp) and os.path.exists(op)):
            self.skipTest("fixture %s missing (run tools/fixture.py)" % name)
        self.assertLess(os.path.getsize(jp), 200_000)
        with open(jp) as f:
            doc = json.load(f)
        self.assertEqual(doc["shape"], [1, 28, 28])
        n = len(doc["sigma"])
        self.assertEqual(n, 4)
        self.assertEqual(len(doc["x"]), n * 784)
        self.assertEqual(len(doc["denoised"]), n * 784)
        x = np.array(doc["x"], dtype=np.float32).reshape(n, 1, 28, 28)
        s = np.array(doc["sigma"], dtype=np.float32)
        want = np.array(doc["denoised"], dtype=np.float64).reshape(n, 1, 28, 28)
        got = onnx_ref.run(op, {"x": x, "sigma": s})["denoised"]
        np.testing.assert_allclose(got, want, atol=1e-5 * max(1.0, np.abs(want).max()), rtol=1e-5)
        md = export.metadata(op)
        self.assertTrue(META_KEYS <= set(md))

    def test_tiny(self):
        self.check("tiny")

    def test_tiny_ddpm(self):
        self.check("tiny_ddpm")


class TestIDX(unittest.TestCase):
    def test_parse_classes(self):
        self.assertIsNone(idx.parse_classes("all"))
        self.assertEqual(idx.parse_classes("0-4"), [0, 1, 2, 3, 4])
        self.assertEqual(idx.parse_classes("3,1, 2"), [1, 2, 3])
        self.assertEqual(idx.parse_classes("0-1,7"), [0, 1, 7])

    def test_roundtrip(self):
        import gzip
        import struct
        with tempfile.TemporaryDirectory() as d:
            ip, lp = os.path.join(d, "i.gz"), os.path.join(d, "l")
            imgs = np.arange(3 * 2 * 2, dtype=np.uint8).reshape(3, 2, 2) * 20
            with gzip.open(ip, "wb") as f:
                f.write(struct.pack(">HBBIII", 0, 8, 3, 3, 2, 2) + imgs.tobytes())
            with open(lp, "wb") as f:
                f.write(struct.pack(">HBBI", 0, 8, 1, 3) + bytes([5, 1, 5]))
            x, lab = idx.load_images(ip, lp, [5])
            self.assertEqual(x.shape, (2, 1, 2, 2))
            self.assertEqual(lab.tolist(), [5, 5])
            np.testing.assert_allclose(x[1, 0], imgs[2] / 127.5 - 1, rtol=1e-6)


if __name__ == "__main__":
    unittest.main()
