#!/usr/bin/python3
"""Export denoisers to the eigenscore ONNX model contract.

Contract (the Go side relies on it exactly):
  inputs   x      float32 [N,C,H,W]  noisy image on the data scale [-1, 1]
           sigma  float32 [N]        noise level, x = x_clean + sigma * noise
  output   denoised float32 [N,C,H,W] = D(x, sigma) ~ E[x_clean | x]
  opset <= 17, dynamic N.
  metadata_props: dataset, shape ("CxHxW"), sigma_min, sigma_max, recipe,
                  producer ("eigenscore tools").

Two wrappers:

  EDMWrapper(net)   for an EDM-style module net(x, sigma) -> D(x, sigma)
                    (our tools/edm.py EDMDenoiser, or EDM's EDMPrecond).
  DDPMWrapper(eps)  for a DDPM epsilon-prediction UNet eps(x_t, t) with an
                    integer timestep t in [0, 1000). Linear beta schedule
                    1e-4 .. 0.02 over 1000 steps, abar_t = prod_{s<=t}(1-beta_s),
                    sigma_t = sqrt(1/abar_t - 1). In the graph:
                      t       = argmin_t |ln sigma_t - ln sigma|   (constant table)
                      x_t     = sqrt(abar_t) * x
                      D(x)    = x - sigma_t * eps(x_t, t)
                    The table's sigma_t (not the requested sigma) is used in
                    both places, so D is exactly the DDPM x0-prediction at the
                    nearest trained timestep. Requested sigmas between table
                    entries are thus rounded to the nearest entry in log space;
                    sigma outside [sigma_0, sigma_999] ~ [0.01, 157] is clamped.

CLI (see tools/README.md for full recipes):
  export.py ckpt      --ckpt CKPT.pt --out model.onnx           (our training checkpoint)
  export.py edm-pkl   --pkl edm-cifar10-32x32-uncond-vp.pkl --edm-repo PATH --out model.onnx
  export.py diffusers --model google/ddpm-cifar10-32 --out model.onnx
  export.py factory   --factory module:function --kind edm|ddpm --shape 3x32x32 --out model.onnx
"""
import argparse
import importlib
import math
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn

PRODUCER = "eigenscore tools"
DEFAULT_OPSET = 17


# ---------------------------------------------------------------- DDPM schedule

def ddpm_schedule(beta_start=1e-4, beta_end=0.02, steps=1000):
    """Returns (betas, alpha_bar, sigma) as float64 numpy arrays of length steps."""
    betas = np.linspace(beta_start, beta_end, steps, dtype=np.float64)
    abar = np.cumprod(1.0 - betas)
    sigma = np.sqrt(1.0 / abar - 1.0)
    return betas, abar, sigma


# ---------------------------------------------------------------- wrappers

class EDMWrapper(nn.Module):
    """Wraps an EDM-style denoiser net(x, sigma[, class_labels]) -> D into the
    contract signature forward(x, sigma) -> denoised.

    class_label: for class-conditional EDM nets, bake in a fixed one-hot label
    (int) with label_dim classes; None passes no labels (unconditional nets).
    """

    def __init__(self, net, class_label=None, label_dim=0):
        super().__init__()
        self.net = net
        self.class_label = class_label
        self.label_dim = label_dim
        if class_label is not None:
            if not 0 <= class_label < label_dim:
                raise ValueError("class_label %d not in [0, %d)" % (class_label, label_dim))
            onehot = torch.zeros(label_dim)
            onehot[class_label] = 1.0
            self.register_buffer("onehot", onehot)

    def forward(self, x, sigma):
        sigma = sigma.reshape(-1).to(torch.float32)
        if self.class_label is None:
            out = self.net(x, sigma)
        else:
            # [N, label_dim] one-hot rows, built with plain broadcasting ops
            lab = sigma[:, None] * 0.0 + self.onehot[None, :]
            out = self.net(x, sigma, lab)
        if hasattr(out, "sample"):
            out = out.sample
        return out.to(torch.float32)


class DDPMWrapper(nn.Module):
    """Wraps a DDPM epsilon-prediction model eps(x_t, t) (t int64 [N]) into
    forward(x, sigma) -> denoised, using the nearest (in log space) timestep of
    the DDPM schedule and that timestep's sigma_t consistently.

    call: optional function (model, x_t, t) -> eps, e.g. for diffusers
    UNet2DModel: lambda m, x, t: m(x, t).sample (the default handles objects
    with a .sample attribute).
    """

    def __init__(self, eps_model, beta_start=1e-4, beta_end=0.02, steps=1000, call=None):
        super().__init__()
        self.eps_model = eps_model
        self.call = call
        _, abar, sigma = ddpm_schedule(beta_start, beta_end, steps)
        self.register_buffer("log_sigma_table", torch.tensor(np.log(sigma), dtype=torch.float32))
        self.register_buffer("sigma_table", torch.tensor(sigma, dtype=torch.float32))
        self.register_buffer("sqrt_abar_table", torch.tensor(np.sqrt(abar), dtype=torch.float32))

    def timestep(self, sigma):
        """Index of the table sigma_t nearest to sigma in log space, int64 [N]."""
        ls = torch.log(sigma.reshape(-1, 1).to(torch.float32))
        return torch.argmin(torch.abs(self.log_sigma_table[None, :] - ls), dim=1)

    def forward(self, x, sigma):
        t = self.timestep(sigma)
        s_t = self.sigma_table[t].reshape(-1, 1, 1, 1)
        a_t = self.sqrt_abar_table[t].reshape(-1, 1, 1, 1)
        x_t = a_t * x
        if self.call is not None:
            eps = self.call(self.eps_model, x_t, t)
        else:
            eps = self.eps_model(x_t, t)
            if hasattr(eps, "sample"):
                eps = eps.sample
        return x - s_t * eps.to(torch.float32)


# ---------------------------------------------------------------- EDM (NVlabs/edm) tracing fix

def _edm_conv2d_forward(self, x):
    """Same computation as training.networks.Conv2d.forward in NVlabs/edm, but
    with the paddings as Python ints: under ONNX tracing, weight.shape[-1] is a
    tensor and F.conv2d(padding=tensor) fails."""
    fn = torch.nn.functional
    w, b, f = self.weight, self.bias, self.resample_filter
    w_pad = int(w.shape[-1]) // 2 if w is not None else 0
    f_pad = (int(f.shape[-1]) - 1) // 2 if f is not None else 0
    if self.fused_resample and self.up and w is not None:
        x = fn.conv_transpose2d(x, f.mul(4).repeat(self.in_channels, 1, 1, 1), groups=self.in_channels,
                                stride=2, padding=max(f_pad - w_pad, 0))
        x = fn.conv2d(x, w, padding=max(w_pad - f_pad, 0))
    elif self.fused_resample and self.down and w is not None:
        x = fn.conv2d(x, w, padding=w_pad + f_pad)
        x = fn.conv2d(x, f.repeat(self.out_channels, 1, 1, 1), groups=self.out_channels, stride=2)
    else:
        if self.up:
            x = fn.conv_transpose2d(x, f.mul(4).repeat(self.in_channels, 1, 1, 1), groups=self.in_channels,
                                    stride=2, padding=f_pad)
        if self.down:
            x = fn.conv2d(x, f.repeat(self.in_channels, 1, 1, 1), groups=self.in_channels, stride=2, padding=f_pad)
        if w is not None:
            x = fn.conv2d(x, w, padding=w_pad)
    if b is not None:
        x = x + b.reshape(1, -1, 1, 1)
    return x


def patch_edm_for_export(net):
    """Makes an NVlabs/edm network traceable for ONNX export (see
    _edm_conv2d_forward); returns the number of patched layers."""
    import types
    n = 0
    for m in net.modules():
        if type(m).__name__ == "Conv2d" and all(hasattr(m, k) for k in (
                "resample_filter", "fused_resample", "up", "down")):
            m.forward = types.MethodType(_edm_conv2d_forward, m)
            n += 1
    return n


# ---------------------------------------------------------------- export

def shape_string(shape):
    return "x".join(str(int(d)) for d in shape)


def export_onnx(module, path, *, shape, dataset, sigma_min, sigma_max, recipe,
                opset=DEFAULT_OPSET, extra_meta=None, example_batch=2):
    """Exports module (forward(x, sigma) -> denoised) to path per the contract.

    shape: (C, H, W). Metadata values are stored as strings. Returns the
    checked onnx.ModelProto.
    """
    if opset > 17:
        raise ValueError("opset must be <= 17")
    module = module.eval()
    c, h, w = (int(d) for d in shape)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(example_batch, c, h, w, generator=g)
    sigma = torch.linspace(0.1, 2.0, example_batch)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = path + ".tmp"
    with torch.no_grad():
        torch.onnx.export(
            module, (x, sigma), tmp,
            input_names=["x", "sigma"], output_names=["denoised"],
            dynamic_axes={"x": {0: "N"}, "sigma": {0: "N"}, "denoised": {0: "N"}},
            opset_version=opset, do_constant_folding=True)
    model = onnx.load(tmp)
    os.remove(tmp)
    meta = {
        "dataset": dataset,
        "shape": shape_string((c, h, w)),
        "sigma_min": repr(float(sigma_min)),
        "sigma_max": repr(float(sigma_max)),
        "recipe": " ".join(str(recipe).split()),
        "producer": PRODUCER,
    }
    if extra_meta:
        meta.update({k: str(v) for k, v in extra_meta.items()})
    del model.metadata_props[:]
    for k, v in meta.items():
        p = model.metadata_props.add()
        p.key, p.value = k, v
    model.producer_name = PRODUCER
    _fix_io_shapes(model, (c, h, w))
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return model


def _fix_io_shapes(model, chw):
    """Makes the graph's declared IO shapes exactly [N,C,H,W] / [N]."""
    def set_dims(vi, dims):
        tt = vi.type.tensor_type
        del tt.shape.dim[:]
        for dv in dims:
            dim = tt.shape.dim.add()
            if isinstance(dv, str):
                dim.dim_param = dv
            else:
                dim.dim_value = dv
    for vi in model.graph.input:
        if vi.name == "x":
            set_dims(vi, ["N"] + list(chw))
        elif vi.name == "sigma":
            set_dims(vi, ["N"])
    for vi in model.graph.output:
        if vi.name == "denoised":
            set_dims(vi, ["N"] + list(chw))


def metadata(path_or_model):
    m = onnx.load(path_or_model) if isinstance(path_or_model, str) else path_or_model
    return {p.key: p.value for p in m.metadata_props}


# ---------------------------------------------------------------- CLI helpers

def _parse_shape(s):
    parts = [int(v) for v in s.lower().split("x")]
    if len(parts) != 3:
        raise argparse.ArgumentTypeError("shape must be CxHxW, e.g. 3x32x32")
    return tuple(parts)


def _load_factory(spec):
    mod, _, fn = spec.partition(":")
    if not fn:
        raise SystemExit("--factory must be module:function")
    return getattr(importlib.import_module(mod), fn)()


def export_ckpt(ckpt_path, out, use_ema=True, opset=DEFAULT_OPSET):
    """Re-exports one of our training checkpoints (tools/train.py ckpt.pt)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import edm
    ck = torch.load(ckpt_path, map_location="cpu")
    a = ck["args"]
    shape = tuple(a.get("shape", (1, 28, 28)))  # recorded since NPY/colour data
    model = edm.build(tuple(a["channels"]), a["emb"], in_ch=shape[0], attn=a.get("attn", False))
    model.load_state_dict(ck["ema"] if use_ema else ck["model"])
    meta = ck["meta"]
    return export_onnx(model, out, shape=shape, dataset=meta["dataset"],
                       sigma_min=meta["sigma_min"], sigma_max=meta["sigma_max"],
                       recipe=meta["recipe"], opset=opset)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Export a denoiser to the eigenscore ONNX contract.")
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p, need_meta=True):
        p.add_argument("--out", required=True, help="output .onnx path")
        p.add_argument("--opset", type=int, default=DEFAULT_OPSET)
        if need_meta:
            p.add_argument("--dataset", required=True)
            p.add_argument("--sigma-min", type=float, default=0.002)
            p.add_argument("--sigma-max", type=float, default=80.0)
            p.add_argument("--recipe", default="")

    p = sub.add_parser("ckpt", help="our tools/train.py checkpoint (EMA weights)")
    p.add_argument("--ckpt", required=True)
    p.add_argument("--raw", action="store_true", help="export raw (non-EMA) weights")
    common(p, need_meta=False)

    p = sub.add_parser("edm-pkl", help="an EDM (NVlabs/edm) network pickle")
    p.add_argument("--pkl", required=True, help="e.g. edm-cifar10-32x32-uncond-vp.pkl")
    p.add_argument("--edm-repo", required=True, help="checkout of github.com/NVlabs/edm (for dnnlib, torch_utils)")
    p.add_argument("--class-label", type=int, default=None,
                   help="for conditional pickles: bake in this class (one-hot)")
    common(p)

    p = sub.add_parser("diffusers", help="a diffusers UNet2DModel DDPM (eps-prediction)")
    p.add_argument("--model", required=True, help="local dir or hub id, e.g. google/ddpm-cifar10-32")
    p.add_argument("--subfolder", default=None)
    common(p)

    p = sub.add_parser("factory", help="any torch module from module:function")
    p.add_argument("--factory", required=True, help="module:function returning the torch module")
    p.add_argument("--kind", choices=["edm", "ddpm"], required=True)
    p.add_argument("--shape", type=_parse_shape, required=True)
    common(p)

    a = ap.parse_args(argv)
    if a.cmd == "ckpt":
        export_ckpt(a.ckpt, a.out, use_ema=not a.raw, opset=a.opset)
    elif a.cmd == "edm-pkl":
        import pickle
        sys.path.insert(0, os.path.abspath(a.edm_repo))
        with open(a.pkl, "rb") as f:
            net = pickle.load(f)["ema"]
        net = net.to(torch.float32).eval()
        if hasattr(net, "use_fp16"):
            net.use_fp16 = False
        patch_edm_for_export(net)
        label_dim = int(getattr(net, "label_dim", 0) or 0)
        if label_dim and a.class_label is None:
            raise SystemExit("conditional EDM net (label_dim=%d): pass --class-label, or use an "
                             "uncond pickle" % label_dim)
        shape = (net.img_channels, net.img_resolution, net.img_resolution)
        wrapped = EDMWrapper(net, a.class_label, label_dim)
        export_onnx(wrapped, a.out, shape=shape, dataset=a.dataset, sigma_min=a.sigma_min,
                    sigma_max=a.sigma_max, recipe=a.recipe or "EDM pickle %s" % os.path.basename(a.pkl),
                    opset=a.opset)
    elif a.cmd == "diffusers":
        from diffusers import UNet2DModel  # not installed here; see README
        kw = {"subfolder": a.subfolder} if a.subfolder else {}
        unet = UNet2DModel.from_pretrained(a.model, **kw).to(torch.float32).eval()
        cfg = unet.config
        shape = (cfg.in_channels, cfg.sample_size, cfg.sample_size)
        wrapped = DDPMWrapper(unet, call=lambda m, x, t: m(x, t).sample)
        export_onnx(wrapped, a.out, shape=shape, dataset=a.dataset, sigma_min=a.sigma_min,
                    sigma_max=a.sigma_max, recipe=a.recipe or "diffusers DDPM %s" % a.model,
                    opset=a.opset)
    elif a.cmd == "factory":
        m = _load_factory(a.factory).to(torch.float32).eval()
        wrapped = EDMWrapper(m) if a.kind == "edm" else DDPMWrapper(m)
        export_onnx(wrapped, a.out, shape=a.shape, dataset=a.dataset, sigma_min=a.sigma_min,
                    sigma_max=a.sigma_max, recipe=a.recipe or a.factory, opset=a.opset)
    print("wrote %s" % a.out, file=sys.stderr)


if __name__ == "__main__":
    main()
