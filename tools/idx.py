#!/usr/bin/python3
"""Reading IDX (MNIST / Fashion-MNIST) files, optionally gzip-compressed."""
import gzip
import struct

import numpy as np

FASHION_DIR = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    """Returns the IDX array (uint8 data) at path; .gz files are decompressed."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError("%s: not an unsigned-byte IDX file" % path)
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError("%s: expected %d values, found %d" % (path, int(np.prod(dims)), arr.size))
    return arr.reshape(dims)


def parse_classes(spec):
    """'0-4' -> [0,1,2,3,4]; '0,2,5' -> [0,2,5]; '' or 'all' -> None (all)."""
    if spec is None or spec.strip() in ("", "all"):
        return None
    out = []
    for part in spec.split(","):
        part = part.strip()
        if "-" in part:
            a, b = part.split("-", 1)
            out.extend(range(int(a), int(b) + 1))
        else:
            out.append(int(part))
    return sorted(set(out))


def load_images(images_path, labels_path=None, classes=None):
    """Loads images as float32 [N,1,H,W] on the [-1,1] scale (x = b/127.5 - 1),
    keeping only the given classes (needs labels_path). Returns (x, labels)."""
    imgs = read_idx(images_path)
    labels = read_idx(labels_path).astype(np.int64) if labels_path else None
    if classes is not None:
        if labels is None:
            raise ValueError("selecting classes needs a labels file")
        keep = np.isin(labels, classes)
        imgs, labels = imgs[keep], labels[keep]
    x = imgs.astype(np.float32) / 127.5 - 1.0
    return x[:, None, :, :], labels
