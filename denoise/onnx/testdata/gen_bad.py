#!/usr/bin/python3
"""Generates the malformed models used by onnx_test.go to exercise the
loader's contract checks. Run once with Debian's /usr/bin/python3 (onnx 1.12):

    /usr/bin/python3 denoise/onnx/testdata/gen_bad.py

bad_names.onnx: inputs named "image"/"noise_level" instead of "x"/"sigma".
bad_shape.onnx: x/denoised are [N,1,32,32] while metadata says shape=1x28x28.

Both compute denoised = x (an Identity), carry the full metadata set, and
have opset 13 / IR version 7 so that any ONNX Runtime >= 1.8 can load them.
"""
import os

import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))


def model(xname, sname, hw, path):
    x = helper.make_tensor_value_info(xname, TensorProto.FLOAT, ["N", 1, hw, hw])
    s = helper.make_tensor_value_info(sname, TensorProto.FLOAT, ["N"])
    y = helper.make_tensor_value_info("denoised", TensorProto.FLOAT, ["N", 1, hw, hw])
    nodes = [
        helper.make_node("Identity", [xname], ["denoised"]),
    ]
    g = helper.make_graph(nodes, "bad", [x, s], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)],
                          producer_name="gen_bad.py")
    m.ir_version = 7
    for k, v in {"dataset": "test", "shape": "1x28x28", "sigma_min": "0.002",
                 "sigma_max": "80", "recipe": "identity", "producer": "gen_bad.py"}.items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    onnx.checker.check_model(m)
    onnx.save(m, path)


model("image", "noise_level", 28, os.path.join(HERE, "bad_names.onnx"))
model("x", "sigma", 32, os.path.join(HERE, "bad_shape.onnx"))
