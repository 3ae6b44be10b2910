#!/usr/bin/python3
"""Writes tiny_fixed3.onnx: tiny.onnx with its batch dimension N fixed at 3
on x, sigma and denoised (the weights and graph are unchanged), for the
tests of the padded path that a model with a fixed batch needs. Run with
Debian's /usr/bin/python3 (onnx 1.12) after tools/fixture.py:

    /usr/bin/python3 denoise/onnx/testdata/gen_fixed.py
"""
import os

import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
N = 3

m = onnx.load(os.path.join(HERE, "tiny.onnx"))
for vi in list(m.graph.input) + list(m.graph.output):
    vi.type.tensor_type.shape.dim[0].dim_value = N
onnx.checker.check_model(m)
onnx.save(m, os.path.join(HERE, "tiny_fixed%d.onnx" % N))
