#!/usr/bin/python3
"""Reading image arrays from NumPy .npy files, with the rules of the Go
reader (data.LoadNPYRange in data/npy.go), so that what tools/train.py
trains on is what eigenscore reads from the same file.

Accepted (as in Go):
  * format versions 1.0, 2.0 and 3.0, C order (Fortran order is refused);
  * dtype uint8, little-endian float32 (<f4) or float64 (<f8); big-endian
    floats and any other dtype are refused;
  * shape [N,H,W] (one channel), [N,C,H,W] or [N,H,W,C] with C 1 or 3; when
    both the second and the last dimension are 1 or 3 the array is taken as
    [N,C,H,W] (the layout Go's SaveNPY writes).

Values become float32 [N,C,H,W] on [-1, 1]:
  * uint8: x = b/127.5 - 1 (data.ByteToUnit), in float32;
  * floats, rule "auto" (Go's NPYAuto, the default): values in [0, 1] (none
    negative) map by 2v - 1, values in [-1, 1] with a negative one are kept;
    anything else is an error. "signed" (NPYSigned) keeps [-1, 1] data even
    when all of it is >= 0, "unit" (NPYUnit) maps [0, 1] data. Values may
    stray 1e-4 past a range's ends (clamped); NaN and Inf are errors.
"""
import numpy as np

RANGE_SLACK = 1e-4
RANGES = ("auto", "signed", "unit")
_CHUNK = 4096  # images converted at a time (bounds the float64 temporaries)


def read_header(path):
    """(shape, fortran_order, dtype) of the .npy file at path."""
    with open(path, "rb") as f:
        try:
            major, minor = np.lib.format.read_magic(f)
        except ValueError as e:
            raise ValueError("%s: not an NPY file (%s)" % (path, e))
        if (major, minor) == (1, 0):
            return np.lib.format.read_array_header_1_0(f)
        if major in (2, 3):
            return np.lib.format.read_array_header_2_0(f)
        raise ValueError("%s: NPY format version %d.%d, expected 1.0, 2.0 or 3.0" % (path, major, minor))


def layout(shape):
    """(nchw, (N, C, H, W)) for an accepted shape; ValueError otherwise."""
    one3 = lambda v: v in (1, 3)  # noqa: E731
    shape = tuple(int(v) for v in shape)
    if len(shape) == 3:
        n, c, h, w, nchw = shape[0], 1, shape[1], shape[2], True
    elif len(shape) == 4 and one3(shape[1]):
        (n, c, h, w), nchw = shape, True
    elif len(shape) == 4 and one3(shape[3]):
        (n, h, w, c), nchw = shape, False
    else:
        raise ValueError("bad shape %s, expected [N,H,W], [N,H,W,C] or [N,C,H,W] with C 1 or 3" % (list(shape),))
    if h == 0 or w == 0:
        raise ValueError("bad shape %s: images are empty" % (list(shape),))
    return nchw, (n, c, h, w)


def _float_map(lo, hi, rule):
    """The map of float values spanning [lo, hi] to [-1, 1] (Go floatScale)."""
    signed = lambda v: np.clip(v, -1.0, 1.0)  # noqa: E731
    unit = lambda v: np.clip(2.0 * v - 1.0, -1.0, 1.0)  # noqa: E731
    if lo > hi:  # no values
        return signed
    in_signed = lo >= -1 - RANGE_SLACK and hi <= 1 + RANGE_SLACK
    in_unit = lo >= -RANGE_SLACK and hi <= 1 + RANGE_SLACK
    if rule == "auto":
        if in_unit:
            return unit
        if in_signed:
            return signed
        raise ValueError("float values span [%g, %g], expected [-1, 1] or [0, 1] (byte data should be uint8)"
                         % (lo, hi))
    if rule == "signed":
        if in_signed:
            return signed
        raise ValueError("float values span [%g, %g], expected [-1, 1]" % (lo, hi))
    if rule == "unit":
        if in_unit:
            return unit
        raise ValueError("float values span [%g, %g], expected [0, 1]" % (lo, hi))
    raise ValueError("unknown NPY range rule %r, want one of %s" % (rule, ", ".join(RANGES)))


def load_images(path, rule="auto"):
    """The images of the .npy file at path as float32 [N,C,H,W] on [-1, 1]."""
    try:
        shape, fortran, dtype = read_header(path)
        if fortran:
            raise ValueError("array is in Fortran order, expected C order (save with np.ascontiguousarray)")
        if dtype.kind == "u" and dtype.itemsize == 1:
            kind = "u1"
        elif dtype == np.dtype("<f4") or dtype == np.dtype("<f8"):
            kind = "f"
        elif dtype.kind == "f" and dtype.itemsize in (4, 8) and dtype.byteorder == ">":
            raise ValueError("big-endian dtype %s, expected little-endian (<f4, <f8)" % dtype.str)
        else:
            raise ValueError("unsupported dtype %s, expected uint8 (|u1), float32 (<f4) or float64 (<f8)"
                             % dtype.str)
        nchw, (n, c, h, w) = layout(shape)
        raw = np.load(path, mmap_mode="r", allow_pickle=False)
        fmap = None
        if kind == "f":
            lo, hi = np.inf, -np.inf
            for i in range(0, n, _CHUNK):
                part = np.asarray(raw[i:i + _CHUNK], dtype=np.float64)
                if not np.isfinite(part).all():
                    raise ValueError("values include NaN or Inf")
                if part.size:
                    lo, hi = min(lo, float(part.min())), max(hi, float(part.max()))
            fmap = _float_map(lo, hi, rule)
        out = np.empty((n, c, h, w), dtype=np.float32)
        for i in range(0, n, _CHUNK):
            part = np.asarray(raw[i:i + _CHUNK])
            if len(shape) == 3:
                part = part[:, None, :, :]
            elif not nchw:
                part = part.transpose(0, 3, 1, 2)
            if kind == "u1":
                out[i:i + len(part)] = part.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
            else:
                out[i:i + len(part)] = fmap(part.astype(np.float64)).astype(np.float32)
        del raw
        return out
    except (ValueError, OSError) as e:
        if str(e).startswith(str(path)):
            raise
        raise ValueError("%s: %s" % (path, e)) from None


def is_npy(path):
    return path is not None and path.lower().endswith(".npy")
