#!/usr/bin/python3
"""A minimal numpy evaluator for the ONNX ops our exported denoisers use.

onnx 1.12 has no reference evaluator and onnxruntime is not installed for
Python here, so the tests run exported graphs with this instead. It covers
only the ops (and attribute values) torch 1.13 emits for tools/edm.py and
export.DDPMWrapper graphs; anything else raises NotImplementedError.
Computation is in float64 (float inputs are promoted), so results compare to
PyTorch float32 within float32 rounding.

Usage: run(model_or_path, {"x": x, "sigma": s}) -> {"denoised": ...}
"""
import numpy as np
import onnx
from onnx import helper, numpy_helper

_ONNX_TO_NP = {1: np.float32, 6: np.int32, 7: np.int64, 9: np.bool_, 10: np.float16, 11: np.float64}


def _attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _s(v):
    return v.decode() if isinstance(v, bytes) else v


def _float(a):
    return a.astype(np.float64) if a.dtype.kind == "f" else a


def _conv(x, w, b, at):
    grp = at.get("group", 1)
    if grp != 1:
        cin, cout = x.shape[1] // grp, w.shape[0] // grp
        out = np.concatenate([_conv(x[:, i * cin:(i + 1) * cin], w[i * cout:(i + 1) * cout], None,
                                    dict(at, group=1)) for i in range(grp)], axis=1)
        return out if b is None else out + b[None, :, None, None]
    if any(d != 1 for d in at.get("dilations", [1, 1])):
        raise NotImplementedError("dilated Conv")
    if _s(at.get("auto_pad", "NOTSET")) != "NOTSET":
        raise NotImplementedError("Conv auto_pad")
    kh, kw = w.shape[2:]
    sh, sw = at.get("strides", [1, 1])
    pt, pl, pb, pr = at.get("pads", [0, 0, 0, 0])
    x = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    n, c, h, wd = x.shape
    oh = (h - kh) // sh + 1
    ow = (wd - kw) // sw + 1
    s = x.strides
    cols = np.lib.stride_tricks.as_strided(
        x, (n, c, kh, kw, oh, ow), (s[0], s[1], s[2], s[3], s[2] * sh, s[3] * sw))
    out = np.einsum("nckloq,fckl->nfoq", cols, w, optimize=True)
    if b is not None:
        out = out + b[None, :, None, None]
    return out


def _conv_transpose(x, w, b, at):
    if any(d != 1 for d in at.get("dilations", [1, 1])) or at.get("output_shape") or \
            _s(at.get("auto_pad", "NOTSET")) != "NOTSET":
        raise NotImplementedError("ConvTranspose attributes %r" % at)
    grp = at.get("group", 1)
    sh, sw = at.get("strides", [1, 1])
    pt, pl, pb, pr = at.get("pads", [0, 0, 0, 0])
    oph, opw = at.get("output_padding", [0, 0])
    n, c, h, wd = x.shape
    cin, cpg, kh, kw = w.shape  # [C_in, C_out/group, kH, kW]
    full = np.zeros((n, cpg * grp, (h - 1) * sh + kh + oph, (wd - 1) * sw + kw + opw))
    gi = c // grp
    for g in range(grp):
        xg = x[:, g * gi:(g + 1) * gi]
        wg = w[g * gi:(g + 1) * gi]
        for i in range(kh):
            for j in range(kw):
                full[:, g * cpg:(g + 1) * cpg, i:i + (h - 1) * sh + 1:sh, j:j + (wd - 1) * sw + 1:sw] += \
                    np.einsum("nchw,cf->nfhw", xg, wg[:, :, i, j])
    out = full[:, :, pt:full.shape[2] - pb, pl:full.shape[3] - pr]
    return out if b is None else out + b[None, :, None, None]


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _resize(x, roi, scales, sizes, at):
    if _s(at.get("mode", "nearest")) != "nearest" or \
            _s(at.get("coordinate_transformation_mode")) != "asymmetric" or \
            _s(at.get("nearest_mode", "round_prefer_floor")) != "floor":
        raise NotImplementedError("Resize mode %r" % at)
    if sizes is not None and sizes.size:
        out_shape = [int(v) for v in sizes]
        scales = np.array(out_shape, dtype=np.float64) / np.array(x.shape)
    else:
        out_shape = [int(np.floor(d * s)) for d, s in zip(x.shape, scales)]
    for ax, (od, sc) in enumerate(zip(out_shape, scales)):
        if od == x.shape[ax]:
            continue
        src = np.minimum(np.floor(np.arange(od) / sc).astype(np.int64), x.shape[ax] - 1)
        x = np.take(x, src, axis=ax)
    return x


def _instnorm(x, scale, bias, at):
    eps = at.get("epsilon", 1e-5)
    axes = tuple(range(2, x.ndim))
    m = x.mean(axis=axes, keepdims=True)
    v = ((x - m) ** 2).mean(axis=axes, keepdims=True)
    shp = (1, -1) + (1,) * (x.ndim - 2)
    return (x - m) / np.sqrt(v + eps) * scale.reshape(shp) + bias.reshape(shp)


def _slice(data, starts, ends, axes=None, steps=None):
    if axes is None:
        axes = range(len(starts))
    if steps is None:
        steps = [1] * len(starts)
    sl = [slice(None)] * data.ndim
    for st, en, ax, sp in zip(starts, ends, axes, steps):
        sl[int(ax)] = slice(int(st), int(en), int(sp))
    return data[tuple(sl)]


def _reshape(x, shape, allowzero=0):
    shape = [int(v) for v in shape]
    if not allowzero:
        shape = [x.shape[i] if v == 0 else v for i, v in enumerate(shape)]
    return x.reshape(shape)


def _unsqueeze(x, axes):
    axes = sorted(int(a) % (x.ndim + len(axes)) for a in axes)
    for a in axes:
        x = np.expand_dims(x, a)
    return x


def _argminmax(fn, x, at):
    if at.get("select_last_index", 0):
        raise NotImplementedError("select_last_index")
    r = fn(x, axis=at.get("axis", 0))
    if at.get("keepdims", 1):
        r = np.expand_dims(r, at.get("axis", 0))
    return r.astype(np.int64)


def _gemm(a, b, c, at):
    if at.get("transA", 0):
        a = a.T
    if at.get("transB", 0):
        b = b.T
    y = at.get("alpha", 1.0) * (a @ b)
    if c is not None:
        y = y + at.get("beta", 1.0) * c
    return y


def _run_node(op, ins, at):
    g = lambda i: ins[i] if i < len(ins) else None  # noqa: E731
    if op == "Constant":
        return numpy_helper.to_array(at["value"]) if "value" in at else None
    if op == "Identity":
        return ins[0]
    if op in ("Add", "Sub", "Mul", "Div", "Pow"):
        a, b = ins
        if op == "Div" and a.dtype.kind in "iu" and b.dtype.kind in "iu":
            return (a // b).astype(a.dtype)
        r = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply,
             "Div": np.divide, "Pow": np.power}[op](a, b)
        return r.astype(a.dtype) if a.dtype.kind in "iu" else r
    unary = {"Sqrt": np.sqrt, "Log": np.log, "Exp": np.exp, "Cos": np.cos, "Sin": np.sin,
             "Abs": np.abs, "Neg": np.negative, "Reciprocal": lambda v: 1.0 / v,
             "Sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)), "Floor": np.floor}
    if op in unary:
        return unary[op](ins[0])
    if op == "Cast":
        t = _ONNX_TO_NP[at["to"]]
        return _float(ins[0].astype(t)) if np.dtype(t).kind == "f" else ins[0].astype(t)
    if op == "Reshape":
        return _reshape(ins[0], ins[1], at.get("allowzero", 0))
    if op == "Unsqueeze":
        return _unsqueeze(ins[0], ins[1])
    if op == "Squeeze":
        return np.squeeze(ins[0], axis=tuple(int(a) for a in ins[1])) if g(1) is not None \
            else np.squeeze(ins[0])
    if op == "Shape":
        return np.array(ins[0].shape, dtype=np.int64)
    if op == "Gather":
        return np.take(ins[0], ins[1], axis=at.get("axis", 0))
    if op == "Slice":
        return _slice(ins[0], ins[1], ins[2], g(3), g(4))
    if op == "Concat":
        return np.concatenate(ins, axis=at["axis"])
    if op == "Expand":
        return ins[0] * np.ones([int(v) for v in ins[1]], dtype=ins[0].dtype)
    if op == "Transpose":
        return np.transpose(ins[0], at.get("perm"))
    if op == "Gemm":
        return _gemm(ins[0], ins[1], g(2), at)
    if op == "MatMul":
        return ins[0] @ ins[1]
    if op == "ConvTranspose":
        return _conv_transpose(ins[0], ins[1], g(2), at)
    if op == "Einsum":
        return np.einsum(_s(at["equation"]), *ins)
    if op == "Softmax":
        return _softmax(ins[0], at.get("axis", -1))
    if op == "ConstantOfShape":
        v = numpy_helper.to_array(at["value"]) if "value" in at else np.zeros(1, np.float32)
        return np.full([int(d) for d in ins[0]], v.reshape(-1)[0], dtype=v.dtype)
    if op == "Tile":
        return np.tile(ins[0], [int(r) for r in ins[1]])
    if op == "Split":
        axis = at.get("axis", 0)
        sizes = g(1) if g(1) is not None else at.get("split")
        if sizes is None:
            return np.split(ins[0], at["_nout"], axis=axis)
        return np.split(ins[0], np.cumsum([int(v) for v in sizes])[:-1], axis=axis)
    if op == "Where":
        return np.where(ins[0], ins[1], ins[2])
    if op == "Equal":
        return np.equal(ins[0], ins[1])
    if op == "Conv":
        return _conv(ins[0], ins[1], g(2), at)
    if op == "InstanceNormalization":
        return _instnorm(ins[0], ins[1], ins[2], at)
    if op == "Resize":
        return _resize(ins[0], g(1), g(2), g(3), at)
    if op == "ArgMin":
        return _argminmax(np.argmin, ins[0], at)
    if op == "ArgMax":
        return _argminmax(np.argmax, ins[0], at)
    raise NotImplementedError("op %s" % op)


def run(model, feeds):
    """Evaluates an ONNX model (ModelProto or path) on numpy feeds; returns a
    dict of the graph outputs as float32/int arrays."""
    if isinstance(model, str):
        model = onnx.load(model)
    env = {}
    for t in model.graph.initializer:
        env[t.name] = _float(numpy_helper.to_array(t))
    for k, v in feeds.items():
        env[k] = _float(np.asarray(v))
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            raise NotImplementedError("domain %s" % node.domain)
        ins = [env[i] if i else None for i in node.input]
        at = _attrs(node)
        at["_nout"] = len(node.output)
        out = _run_node(node.op_type, ins, at)
        if len(node.output) == 1:
            out = [out]
        elif node.op_type != "Split":
            raise NotImplementedError("multi-output op %s" % node.op_type)
        for name, v in zip(node.output, out):
            if name:
                env[name] = _float(np.asarray(v))
    res = {}
    for o in model.graph.output:
        v = env[o.name]
        res[o.name] = v.astype(np.float32) if v.dtype.kind == "f" else v
    return res
