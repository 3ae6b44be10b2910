#!/usr/bin/python3
"""Tests for tools/torch_peer.py (the ONNX model rebuilt in PyTorch for the
peer benchmark) and tools/flops.py (FLOPs from the graph, the FP32 peak).

Run: /usr/bin/python3 -m unittest discover -s tools
"""
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
import export  # noqa: E402
import flops  # noqa: E402
import standins  # noqa: E402
import torch_peer  # noqa: E402

torch.set_num_threads(1)


def export_tiny(d):
    m = standins.tiny_edm()
    p = os.path.join(d, "m.onnx")
    export.export_onnx(m, p, shape=(1, 28, 28), dataset="test", sigma_min=0.002, sigma_max=80, recipe="tiny")
    return m, p


class TestPeer(unittest.TestCase):
    def test_weights_from_onnx(self):
        # Every parameter and buffer comes back from the graph, including
        # the GroupNorm affines and Fourier frequencies that the export
        # folds into anonymous constants.
        with tempfile.TemporaryDirectory() as d:
            m, p = export_tiny(d)
            net = torch_peer.load(p)
            want = m.state_dict()
            got = net.state_dict()
            self.assertEqual(set(got), set(want))
            for k in want:
                np.testing.assert_array_equal(got[k].numpy(), want[k].numpy(), err_msg=k)
            self.assertEqual(net.net.channels, m.net.channels)
            self.assertLess(torch_peer.check(net, p), 1e-5)

    def test_configs_agree(self):
        # Every way of running the network that the benchmark times computes
        # the same thing (fork2 splits an odd batch unevenly).
        with tempfile.TemporaryDirectory() as d:
            _, p = export_tiny(d)
            net = torch_peer.load(p)
            for batch in (1, 5):
                x, s = torch_peer.inputs(batch)
                with torch.inference_mode():
                    ref = net(x, s)
                    for name, (_, fn) in torch_peer.configs(net, batch).items():
                        out = fn(x, s)
                        self.assertLess(float((out - ref).abs().max()), 1e-4, "%s at batch %d" % (name, batch))


class TestFlops(unittest.TestCase):
    def test_conv_and_gemm_count(self):
        # The graph count equals the count from the PyTorch modules' own
        # output shapes.
        with tempfile.TemporaryDirectory() as d:
            m, p = export_tiny(d)
            conv, gemm, elem, params = flops.count(p)
            want_conv = want_gemm = 0
            hooks = []

            def hook(mod, inp, out):
                nonlocal want_conv, want_gemm
                if isinstance(mod, nn.Conv2d):
                    want_conv += 2 * out.numel() * mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
                else:
                    want_gemm += 2 * out.numel() * mod.in_features
            for mod in m.modules():
                if isinstance(mod, (nn.Conv2d, nn.Linear)):
                    hooks.append(mod.register_forward_hook(hook))
            with torch.no_grad():
                m(torch.zeros(1, 1, 28, 28), torch.ones(1))
            for h in hooks:
                h.remove()
            self.assertEqual(conv, want_conv)
            self.assertEqual(gemm, want_gemm)
            self.assertGreater(elem, 0)
            self.assertEqual(params, sum(int(np.prod(t.dims)) for t in onnx.load(p).graph.initializer))

    def test_peak(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "cpuinfo")
            cpu = "processor\t: %d\ncpu MHz\t\t: 2500.000\nflags\t\t: fpu sse avx avx2 fma avx512f\n\n"
            with open(p, "w") as f:
                f.write(cpu % 0 + cpu % 1)
            gflops, how = flops.peak(p)
            self.assertAlmostEqual(gflops, 2 * 2.5 * 64)  # 16 lanes × 2 (FMA) × 2 pipes
            self.assertIn("2 cores", how)
            with open(p, "w") as f:
                f.write("processor\t: 0\ncpu MHz\t\t: 3000.000\nflags\t\t: fpu sse avx avx2\n")
            self.assertAlmostEqual(flops.peak(p)[0], 3.0 * 8 * 1 * 2)


if __name__ == "__main__":
    unittest.main()
