"""The weights of an exported tools/edm.py denoiser, read back from its ONNX
graph with the `onnx` package (no onnxruntime, no side effects on torch's
thread pools, so tools/train.py can import it).

The convolution, linear and skip weights keep their PyTorch names in the
export; the GroupNorm affine parameters and the Fourier frequencies were
folded into anonymous constants (`onnx::Mul_499`, ...), so they are found
through the node that consumes them (`/net/enc0/norm0/Mul` ->
`net.enc0.norm0.weight`).
"""
import os
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import edm  # noqa: E402


def state_dict_from_onnx(model):
    """Maps the graph's initializers to edm.EDMDenoiser state_dict keys."""
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    sd = {k: v for k, v in inits.items() if k.startswith("net.")}
    for node in model.graph.node:
        for name in node.input:
            if name not in inits or name.startswith("net."):
                continue
            # /net/enc0/norm0/Mul -> net.enc0.norm0.{weight (Mul), bias (Add)}
            # /net/fourier/Mul    -> net.fourier.freqs ([1, F] -> [F])
            parts = node.name.strip("/").split("/")
            module = ".".join(parts[:-1])
            if module == "net.fourier" and node.op_type == "Mul":
                sd["net.fourier.freqs"] = inits[name].reshape(-1)
            elif node.op_type in ("Mul", "Add") and parts[-2].startswith("norm"):
                key = module + (".weight" if node.op_type == "Mul" else ".bias")
                sd[key] = inits[name].reshape(-1)
    return sd


def widths(sd):
    """(channels, emb_dim) of the UNet whose weights sd holds."""
    c0 = sd["net.conv_in.weight"].shape[0]
    c1 = sd["net.down0.weight"].shape[0]
    c2 = sd["net.down1.weight"].shape[0]
    return (c0, c1, c2), sd["net.emb.0.weight"].shape[0]


def has_attn(sd):
    """Whether the weights include the middle self-attention (edm.SelfAttention)."""
    return "net.mid_attn.qkv.weight" in sd


def load(path):
    """The ONNX model at path as an eval-mode edm.EDMDenoiser (float32)."""
    model = onnx.load(path)
    sd = state_dict_from_onnx(model)
    channels, emb = widths(sd)
    net = edm.build(channels, emb, in_ch=sd["net.conv_in.weight"].shape[1], attn=has_attn(sd))
    want = set(net.state_dict())
    missing, extra = want - set(sd), set(sd) - want
    if missing or extra:
        raise ValueError("%s: weights missing %s, unexpected %s" % (path, sorted(missing), sorted(extra)))
    net.load_state_dict({k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in sd.items()})
    return net.eval()
