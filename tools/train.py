#!/usr/bin/python3
"""Train the small EDM UNet (tools/edm.py) on an IDX or NPY data set and export it.

Example (Fashion-MNIST, all classes, 22 minutes of training):

  /usr/bin/python3 tools/train.py \\
      --images /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz \\
      --labels /usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz \\
      --dataset-name fashion-mnist --out models/fashion-mnist \\
      --ckpt-dir /work/ckpt/fashion-mnist --minutes 22 --seed 1

Colour images come as .npy arrays (uint8 [N,H,W,C] / [N,C,H,W], or floats on
[-1,1] / [0,1]; the rules of eigenscore's Go reader, see tools/npy.py) with
--images X.npy --test-images Y.npy (no labels). The network's channels and the
exported contract shape follow the data. --sigma-dist cover trains the noise
levels up to sigma = 20 too (see edm.SigmaDist).

Resumable: the state (weights, EMA, Adam, step, elapsed training time) is saved
to CKPT_DIR/ckpt.pt every --ckpt-every seconds and on SIGINT/SIGTERM; rerunning
the same command continues from it, counting the minutes already spent. When
the budget (--minutes and/or --steps, whichever comes first) is used up it
writes OUT/model.onnx (EMA weights, eigenscore contract), OUT/quality.json
(test denoising MSE per sigma) and OUT/MODEL_CARD.md. Rerunning a finished
run only re-exports. --export-only exports the current checkpoint as is.
"""
import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # the machine's cores are shared: stay on one

import argparse  # noqa: E402
import datetime
import json  # noqa: E402
import math  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import edm  # noqa: E402
import export  # noqa: E402
import idx  # noqa: E402
import npy  # noqa: E402

EVAL_SIGMAS = [0.1, 0.2, 0.34226, 0.52197, 0.72359, 0.95803, 1.24016, 2.0, 5.0, 12.0248, 20.0]
EVAL_N = 1000
EVAL_SEED = 12345
# Contract metadata sigma range of the default (edm) training distribution: the
# central 99.9% of ln sigma ~ N(P_mean, P_std^2), exp(P_mean -/+ 3.29 P_std) ~
# [0.0058, 15.6]. A run's own range is Trainer.dist.sigma_range() (for
# --sigma-dist cover: [sigma_lo, sigma_hi] joined with this one).
SIGMA_MIN, SIGMA_MAX = edm.SigmaDist("edm").sigma_range()
# Values a checkpoint made before an argument was recorded was made with.
LEGACY_ARGS = {"shape": [1, 28, 28], "sigma_dist": {"kind": "edm"}, "attn": False}
# Arguments a checkpoint must agree with to be resumed.
RESUME_KEYS = ("channels", "emb", "batch", "seed", "classes", "dataset_name", "shape", "n_train", "sigma_dist",
               "init_onnx", "attn")


def log(msg):
    print("[%s] %s" % (datetime.datetime.now().strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def default_test_path(p):
    """IDX: train-… -> t10k-…; .npy: the first "train" in the file name ->
    "test" (data-cache/rgb/<set>/train.npy -> test.npy); else None."""
    if p is None:
        return None
    d, b = os.path.split(p)
    if npy.is_npy(p):
        return os.path.join(d, b.replace("train", "test", 1)) if "train" in b else None
    return os.path.join(d, b.replace("train-", "t10k-", 1)) if b.startswith("train-") else None


def load_split(images, labels=None, classes=None, npy_range="auto"):
    """(x float32 [N,C,H,W] on [-1,1], labels or None) from an IDX or .npy file."""
    if npy.is_npy(images):
        return npy.load_images(images, npy_range), None
    return idx.load_images(images, labels, classes)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="Train an EDM UNet denoiser and export it to ONNX.")
    ap.add_argument("--images", required=True,
                    help="training images: IDX (.gz ok) or .npy (uint8 [N,H,W,C]/[N,C,H,W], C 1 or 3, or floats)")
    ap.add_argument("--labels", help="training labels (IDX); needed with --classes; not with .npy images")
    ap.add_argument("--test-images", help="test images (default: train path with train- -> t10k- for IDX, "
                    "train -> test in the file name for .npy)")
    ap.add_argument("--test-labels", help="test labels (default: likewise)")
    ap.add_argument("--npy-range", choices=npy.RANGES, default="auto",
                    help="how float .npy values map to [-1,1] (Go's NPYAuto/NPYSigned/NPYUnit; default auto)")
    ap.add_argument("--classes", default="all", help='e.g. "0-4" or "0,1,2" (default all; IDX only)')
    ap.add_argument("--dataset-name", required=True, help='e.g. fashion-mnist; classes are appended')
    ap.add_argument("--out", required=True, help="output dir for model.onnx, quality.json, MODEL_CARD.md")
    ap.add_argument("--ckpt-dir", help="checkpoint dir (default: OUT); keep it outside models/")
    ap.add_argument("--minutes", type=float, default=None, help="training wall-clock budget")
    ap.add_argument("--steps", type=int, default=None, help="training step budget")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3, help="peak Adam learning rate")
    ap.add_argument("--warmup", type=int, default=200, help="linear warm-up steps")
    ap.add_argument("--lr-final", type=float, default=0.1,
                    help="cosine decay to this fraction of --lr at the end of the budget")
    ap.add_argument("--ema", type=float, default=0.999, help="EMA decay (with warm-up)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--channels", default="-".join(map(str, edm.DEFAULT_CHANNELS)))
    ap.add_argument("--emb", type=int, default=edm.DEFAULT_EMB)
    ap.add_argument("--attn", action="store_true",
                    help="self-attention between the two middle blocks (edm.SelfAttention)")
    ap.add_argument("--ckpt-every", type=float, default=120.0, help="seconds between checkpoints")
    ap.add_argument("--log-every", type=float, default=30.0, help="seconds between progress lines")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sigma-dist", choices=edm.SIGMA_DISTS, default="edm",
                    help="training sigma distribution: edm = ln σ ~ N(-1.2, 1.2²) (default); cover = with "
                    "probability --cover-frac ln σ ~ U[ln --sigma-lo, ln --sigma-hi], else the edm log-normal")
    ap.add_argument("--cover-frac", type=float, default=None,
                    help="cover: probability of the log-uniform part (default %g)" % edm.COVER_FRAC)
    ap.add_argument("--sigma-lo", type=float, default=None,
                    help="cover: low end of the log-uniform part (default %g)" % edm.COVER_SIGMA_LO)
    ap.add_argument("--sigma-hi", type=float, default=None,
                    help="cover: high end of the log-uniform part (default %g)" % edm.COVER_SIGMA_HI)
    ap.add_argument("--baseline-k", type=int, default=10,
                    help="Gaussian-mixture baseline on unlabelled data: k-means clusters (default 10)")
    ap.add_argument("--baseline-rank", default=None,
                    help='Gaussian-mixture baseline covariances: "full", or the rank r of the Go mixture\'s '
                    "shrinkage rule (default: full for IDX data, %d for .npy data)" % 64)
    ap.add_argument("--init-onnx", metavar="MODEL",
                    help="start from the weights of an exported model of the same architecture "
                         "(e.g. a shipped model.onnx, to train it longer); recorded in the recipe")
    ap.add_argument("--export-only", action="store_true", help="export the checkpoint now, no training")
    a = ap.parse_args(argv)
    if a.minutes is None and a.steps is None and not a.export_only:
        ap.error("give --minutes and/or --steps")
    cover = {"cover_frac": a.cover_frac, "sigma_lo": a.sigma_lo, "sigma_hi": a.sigma_hi}
    if a.sigma_dist != "cover" and any(v is not None for v in cover.values()):
        ap.error("--cover-frac/--sigma-lo/--sigma-hi need --sigma-dist cover")
    try:
        a.dist = edm.SigmaDist(a.sigma_dist,
                               edm.COVER_FRAC if a.cover_frac is None else a.cover_frac,
                               edm.COVER_SIGMA_LO if a.sigma_lo is None else a.sigma_lo,
                               edm.COVER_SIGMA_HI if a.sigma_hi is None else a.sigma_hi)
    except ValueError as e:
        ap.error(str(e))
    if npy.is_npy(a.images):
        if a.labels:
            ap.error(".npy images have no labels: drop --labels")
        if idx.parse_classes(a.classes) is not None:
            ap.error("--classes needs labelled (IDX) data")
    a.test_images = a.test_images or default_test_path(a.images)
    a.test_labels = a.test_labels or default_test_path(a.labels)
    if a.test_images is None:
        ap.error("give --test-images (the quality report needs a test split)")
    if idx.parse_classes(a.classes) is not None and not npy.is_npy(a.test_images) and not a.test_labels:
        ap.error("--classes needs --test-labels too")
    for flag in ("images", "labels", "test_images", "test_labels"):
        p = getattr(a, flag)
        if p and (flag != "test_labels" or not npy.is_npy(a.test_images)) and not os.path.exists(p):
            ap.error("--%s %s: no such file" % (flag.replace("_", "-"), p))
    if a.baseline_rank is None:
        a.baseline_rank = 64 if npy.is_npy(a.images) else "full"
    if a.baseline_rank != "full":
        try:
            a.baseline_rank = int(a.baseline_rank)
        except ValueError:
            ap.error('--baseline-rank: "full" or an integer')
    a.ckpt_dir = a.ckpt_dir or a.out
    return a


def load_init(path, channels, emb, shape, attn):
    """The weights of the exported model at path (tools/onnx_weights.py reads
    them back from the graph) as a state_dict, with its dataset and the steps
    its recipe records. Exits unless its architecture is the one asked for."""
    import re
    import onnx
    import onnx_weights
    m = onnx.load(path)
    sd = onnx_weights.state_dict_from_onnx(m)
    got = onnx_weights.widths(sd) + (sd["net.conv_in.weight"].shape[1], onnx_weights.has_attn(sd))
    # A model without the middle attention can start one with it: the new
    # block starts as the identity (its projection is zero), so the network
    # starts as the exported function.
    if got[:3] != (tuple(channels), emb, shape[0]) or (got[3] and not attn):
        raise SystemExit("--init-onnx %s: channels %s, emb %d, %d input channels, attn %s; "
                         "this run wants %s, %d, %d, %s" % (
                             path, "-".join(map(str, got[0])), got[1], got[2], got[3],
                             "-".join(map(str, channels)), emb, shape[0], attn))
    meta = {p.key: p.value for p in m.metadata_props}
    steps = re.search(r"steps=(\d+)", meta.get("recipe", ""))
    return {"state": {k: torch.from_numpy(np.array(v, dtype=np.float32))
                      for k, v in sd.items()},
            "name": "%s model %s" % (meta.get("dataset", "?"), os.path.basename(os.path.dirname(os.path.abspath(path)))),
            "steps": "%s steps" % steps.group(1) if steps else "steps unknown",
            "recipe": meta.get("recipe", "")}


class Stop(Exception):
    pass


class Trainer:
    def __init__(self, a):
        self.a = a
        self.classes = idx.parse_classes(a.classes)
        self.channels = tuple(int(c) for c in a.channels.split("-"))
        self.dataset = a.dataset_name
        if self.classes is not None:
            self.dataset += "[classes %s]" % a.classes.replace(" ", "")
        self.dist = a.dist
        x, self.labels = load_split(a.images, a.labels, self.classes, a.npy_range)
        if len(x) == 0:
            raise SystemExit("%s: no training images" % a.images)
        self.x = torch.from_numpy(x)
        self.shape = tuple(int(v) for v in self.x.shape[1:])  # (C, H, W)
        try:
            edm.check_spatial(self.shape[1], self.shape[2])
        except ValueError as e:
            raise SystemExit("%s: %s" % (a.images, e))
        self._eval = None
        self.init = load_init(a.init_onnx, self.channels, a.emb, self.shape, a.attn) if a.init_onnx else None
        log("train set %s: %d images %s" % (self.dataset, len(self.x), self.shape))
        torch.manual_seed(a.seed)
        self.model = edm.build(self.channels, a.emb, in_ch=self.shape[0], attn=a.attn)
        self.ema = edm.build(self.channels, a.emb, in_ch=self.shape[0], attn=a.attn)
        self.ema.load_state_dict(self.model.state_dict())
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=a.lr)
        self.step = 0
        self.elapsed = 0.0
        self.loss_hist = []
        self.ckpt_path = os.path.join(a.ckpt_dir, "ckpt.pt")
        self.stop_signal = None

    # -- budget / schedule
    def progress(self):
        fr = 0.0
        if self.a.minutes is not None:
            fr = max(fr, self.elapsed / (60.0 * self.a.minutes))
        if self.a.steps is not None:
            fr = max(fr, self.step / float(self.a.steps))
        return fr

    def done(self):
        return self.progress() >= 1.0

    def lr_at(self):
        a = self.a
        warm = min(1.0, (self.step + 1) / float(max(1, a.warmup)))
        fr = min(1.0, self.progress())
        cos = a.lr_final + (1 - a.lr_final) * 0.5 * (1 + math.cos(math.pi * fr))
        return a.lr * warm * cos

    # -- data: epoch-wise permutations seeded by (seed, epoch): resumable exactly
    def batch_indices(self):
        n, b = len(self.x), self.a.batch
        pos = self.step * b
        out = []
        while len(out) < b:
            e, off = divmod(pos, n)
            if getattr(self, "_perm_epoch", None) != e:
                g = torch.Generator().manual_seed(self.a.seed * 1000003 + e)
                self._perm = torch.randperm(n, generator=g)
                self._perm_epoch = e
            take = min(b - len(out), n - off)
            out.extend(self._perm[off:off + take].tolist())
            pos += take
        return torch.tensor(out)

    # -- checkpoint
    def meta(self):
        lo, hi = self.dist.sigma_range()
        return {"dataset": self.dataset, "sigma_min": lo, "sigma_max": hi, "recipe": self.recipe()}

    def recipe(self):
        a = self.a
        return ("%s; EDM precond sigma_data=%.1f, loss %s; Adam lr=%g warmup=%d cosine->%gx, "
                "EMA %g; steps=%d epochs=%.2f batch=%d seed=%d; train images=%d; torch %s 1 CPU thread" % (
                    edm.arch_string(self.model), edm.SIGMA_DATA, self.dist.describe(), a.lr, a.warmup,
                    a.lr_final, a.ema, self.step, self.step * a.batch / len(self.x), a.batch, a.seed,
                    len(self.x), torch.__version__)) + (
                        "; continued from %s (%s)" % (self.init["name"], self.init["steps"]) if self.init else "")

    def state_args(self):
        a = self.a
        return {"channels": list(self.channels), "emb": a.emb, "batch": a.batch, "lr": a.lr,
                "seed": a.seed, "classes": a.classes, "dataset_name": a.dataset_name,
                "images": a.images, "warmup": a.warmup, "lr_final": a.lr_final, "ema": a.ema,
                "shape": list(self.shape), "n_train": len(self.x), "sigma_dist": self.dist.args(),
                "init_onnx": self.init["recipe"] if self.init else None, "attn": a.attn}

    def save(self):
        os.makedirs(self.a.ckpt_dir, exist_ok=True)
        tmp = self.ckpt_path + ".tmp"
        torch.save({"model": self.model.state_dict(), "ema": self.ema.state_dict(),
                    "opt": self.opt.state_dict(), "step": self.step, "elapsed": self.elapsed,
                    "loss_hist": self.loss_hist, "args": self.state_args(), "meta": self.meta(),
                    "budget": {"minutes": self.a.minutes, "steps": self.a.steps}}, tmp)
        os.replace(tmp, self.ckpt_path)
        log("checkpoint %s (step %d, %.1f min)" % (self.ckpt_path, self.step, self.elapsed / 60))

    def load(self):
        if not os.path.exists(self.ckpt_path):
            if self.init:
                for m in (self.model, self.ema):
                    missing, unexpected = m.load_state_dict(self.init["state"], strict=False)
                    if unexpected or any(not k.startswith("net.mid_attn.") for k in missing):
                        raise SystemExit("--init-onnx %s: weights missing %s, unexpected %s" % (
                            self.a.init_onnx, sorted(missing), sorted(unexpected)))
                log("starting from the weights of %s%s" % (
                    self.a.init_onnx, " (the new middle attention starts as the identity)" if missing else ""))
            return False
        ck = torch.load(self.ckpt_path, map_location="cpu")
        old, new = ck["args"], self.state_args()
        for k in RESUME_KEYS:
            was = old.get(k, LEGACY_ARGS.get(k))
            if k == "n_train" and was is None:
                continue  # not recorded by older checkpoints
            if was != new[k]:
                raise SystemExit("checkpoint %s was made with %s=%r, now %r: use another --ckpt-dir" % (
                    self.ckpt_path, k, was, new[k]))
        self.model.load_state_dict(ck["model"])
        self.ema.load_state_dict(ck["ema"])
        self.opt.load_state_dict(ck["opt"])
        self.step, self.elapsed = ck["step"], ck["elapsed"]
        self.loss_hist = ck.get("loss_hist", [])
        log("resumed %s at step %d, %.1f min of training done" % (self.ckpt_path, self.step, self.elapsed / 60))
        return True

    # -- training
    def on_signal(self, signum, frame):
        self.stop_signal = signum
        log("got signal %d: checkpointing and stopping" % signum)

    def train(self):
        a = self.a
        signal.signal(signal.SIGINT, self.on_signal)
        signal.signal(signal.SIGTERM, self.on_signal)
        t_last = time.time()
        t_ckpt = t_log = t_last
        run_loss, run_n, steps0, el0 = 0.0, 0, self.step, self.elapsed
        while not self.done():
            if self.stop_signal is not None:
                self.save()
                raise Stop()
            lr = self.lr_at()
            for gparam in self.opt.param_groups:
                gparam["lr"] = lr
            xb = self.x[self.batch_indices()]
            g = torch.Generator().manual_seed(a.seed * 10_000_019 + self.step + 1)
            loss = edm.edm_loss(self.model, xb, generator=g, sigma_dist=self.dist)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            d = min(a.ema, (1.0 + self.step) / (10.0 + self.step))
            with torch.no_grad():
                for pe, pm in zip(self.ema.parameters(), self.model.parameters()):
                    pe.mul_(d).add_(pm.detach(), alpha=1 - d)
                for be, bm in zip(self.ema.buffers(), self.model.buffers()):
                    be.copy_(bm)
            self.step += 1
            now = time.time()
            self.elapsed += now - t_last
            t_last = now
            run_loss += loss.item()
            run_n += 1
            if now - t_log >= a.log_every or self.step == steps0 + 5 or self.done():
                rate = (self.step - steps0) * a.batch / max(1e-9, self.elapsed - el0)
                sp = (self.elapsed - el0) / max(1, self.step - steps0)
                eta = []
                if a.minutes is not None:
                    eta.append(60 * a.minutes - self.elapsed)
                if a.steps is not None:
                    eta.append((a.steps - self.step) * sp)
                self.loss_hist.append([self.step, run_loss / run_n])
                log("step %d loss %.4f lr %.2e %.0f img/s %.3f s/step elapsed %.1f min ETA %.1f min" % (
                    self.step, run_loss / run_n, lr, rate, sp, self.elapsed / 60, max(0, min(eta)) / 60))
                run_loss, run_n, t_log = 0.0, 0, now
            if now - t_ckpt >= a.ckpt_every:
                self.save()
                t_ckpt = now = time.time()
                t_last = now  # don't count checkpoint time as training time
        self.save()

    # -- evaluation / export
    def eval_set(self):
        """EVAL_N test images chosen with EVAL_SEED (cached)."""
        if self._eval is None:
            x, _ = load_split(self.a.test_images, self.a.test_labels, self.classes, self.a.npy_range)
            if tuple(x.shape[1:]) != self.shape or len(x) == 0:
                raise SystemExit("test images %s are %d of %s, training images are %s" % (
                    self.a.test_images, len(x), tuple(x.shape[1:]), self.shape))
            rng = np.random.default_rng(EVAL_SEED)
            sel = np.sort(rng.choice(len(x), size=min(EVAL_N, len(x)), replace=False))
            self._eval = torch.from_numpy(np.ascontiguousarray(x[sel]))
        return self._eval

    def quality(self, model):
        xt = self.eval_set()
        model.eval()
        res = {}
        with torch.no_grad():
            for i, s in enumerate(EVAL_SIGMAS):
                g = torch.Generator().manual_seed(EVAL_SEED + i)
                n = torch.randn(xt.shape, generator=g)
                err = 0.0
                for j in range(0, len(xt), 250):
                    xb = xt[j:j + 250]
                    sig = torch.full((len(xb),), s)
                    d = model(xb + s * n[j:j + 250], sig)
                    err += ((d - xb) ** 2).sum().item()
                res[repr(s)] = err / xt.numel()
        return res, len(xt)

    def onnx_check(self, path, model):
        """Runs the exported graph with tools/onnx_ref.py on 4 test images and
        returns the max |onnx - torch| of the denoised output."""
        import onnx_ref
        xt = self.eval_set()[:4]
        s = torch.tensor([0.05, 0.34226, 1.24016, 12.0248])[:len(xt)]
        g = torch.Generator().manual_seed(7)
        y = xt + s[:, None, None, None] * torch.randn(xt.shape, generator=g)
        with torch.no_grad():
            ref = model(y, s).numpy()
        got = onnx_ref.run(path, {"x": y.numpy(), "sigma": s.numpy()})["denoised"]
        return float(np.abs(got - ref).max())

    def finish(self):
        a = self.a
        os.makedirs(a.out, exist_ok=True)
        self.ema.eval()
        path = os.path.join(a.out, "model.onnx")
        meta = self.meta()
        export.export_onnx(self.ema, path, shape=self.shape, dataset=meta["dataset"],
                           sigma_min=meta["sigma_min"], sigma_max=meta["sigma_max"], recipe=meta["recipe"])
        size = os.path.getsize(path)
        diff = self.onnx_check(path, self.ema)
        log("wrote %s (%.2f MB), onnx-vs-torch max abs diff %.2e" % (path, size / 1e6, diff))
        mse, n = self.quality(self.ema)
        q = {"dataset": self.dataset, "split": "test", "n_images": n, "eval_seed": EVAL_SEED,
             "metric": "mean over pixels of (D(x+sigma*n, sigma) - x)^2, [-1,1] scale, EMA weights",
             "mse": mse, "steps": self.step, "images_seen": self.step * a.batch,
             "epochs": self.step * a.batch / len(self.x), "train_minutes": self.elapsed / 60,
             "params": edm.count_params(self.ema), "onnx_bytes": size, "onnx_max_abs_diff": diff,
             "recipe": meta["recipe"]}
        try:
            q["gaussian_baseline_mse"] = self.baseline()
        except Exception as e:  # the baseline is informative only
            log("baseline skipped: %s" % e)
        with open(os.path.join(a.out, "quality.json"), "w") as f:
            json.dump(q, f, indent=1)
            f.write("\n")
        self.write_card(q)
        for s, v in mse.items():
            log("test MSE sigma=%-8s %.5f" % (s, v))

    def baseline(self):
        """The Gaussian-mixture baseline's test MSE (baseline.gaussian_mse). It
        does not depend on the network, and can cost minutes at 3072 dimensions
        (one 3072x3072 eigendecomposition per component with more images
        than dimensions), so it is cached in
        CKPT_DIR/baseline.json under the inputs it depends on."""
        import baseline
        a = self.a
        labelled = self.labels is not None
        key = {"images": os.path.abspath(a.images), "test_images": os.path.abspath(a.test_images),
               "classes": a.classes, "npy_range": a.npy_range, "n_train": len(self.x), "shape": list(self.shape),
               "labelled": labelled, "rank": a.baseline_rank, "k": None if labelled else a.baseline_k,
               "sigmas": EVAL_SIGMAS, "eval_n": EVAL_N, "eval_seed": EVAL_SEED}
        cache = os.path.join(a.ckpt_dir, "baseline.json")
        try:
            with open(cache) as f:
                doc = json.load(f)
            if doc.get("key") == key:
                log("Gaussian-mixture baseline: cached in %s" % cache)
                return doc["result"]
        except (OSError, ValueError):
            pass
        t0 = time.time()
        res = baseline.gaussian_mse(self.x.numpy(), self.labels, self.eval_set().numpy(), EVAL_SIGMAS, EVAL_SEED,
                                    rank=None if a.baseline_rank == "full" else a.baseline_rank, k=a.baseline_k)
        log("Gaussian-mixture baseline: %.0f s" % (time.time() - t0))
        os.makedirs(a.ckpt_dir, exist_ok=True)
        with open(cache + ".tmp", "w") as f:
            json.dump({"key": key, "result": res}, f, indent=1)
        os.replace(cache + ".tmp", cache)
        return res

    def loss_card(self):
        ln = "ln σ ~ N(%.1f, %.1f²)" % (edm.P_MEAN, edm.P_STD)
        if self.dist.kind == "edm":
            return "EDM: %s, weight (σ²+σ_d²)/(σ·σ_d)²" % ln
        d = self.dist
        return ("EDM weight (σ²+σ_d²)/(σ·σ_d)²; σ from `--sigma-dist cover`: with probability %g "
                "ln σ ~ U[ln %g, ln %g], otherwise %s (EDM's) — %.1f%% of draws have σ ≥ 3.4, "
                "%.1f%% σ ≥ 12" % (d.frac, d.lo, d.hi, ln, 100 * (1 - d.cdf(3.4)), 100 * (1 - d.cdf(12.0))))

    def range_card(self):
        if self.dist.kind == "edm":
            return "central 99.9% of the training σ"
        return ("[%g, %g] of the log-uniform part joined with the central 99.9%% of the log-normal part"
                % (self.dist.lo, self.dist.hi))

    def write_card(self, q):
        a = self.a
        lines = [
            "# %s EDM denoiser" % self.dataset, "",
            "Small EDM-preconditioned UNet denoiser D(x, σ) ≈ E[x_clean | x] for the eigenscore "
            "ONNX contract (inputs `x` [N,%d,%d,%d] on [-1,1] and `sigma` [N]; output `denoised`)." % self.shape, "",
            "| | |", "|---|---|",
            "| data | %s train split, %d images of %s (%s) |" % (
                self.dataset, len(self.x), "x".join(map(str, self.shape)), os.path.basename(a.images)),
            "| architecture | %s |" % edm.arch_string(self.ema),
            "| preconditioning | EDM (Karras et al. 2022), σ_data = %.1f, c_noise = ln(σ)/4 |" % edm.SIGMA_DATA,
            "| loss | %s |" % self.loss_card(),
            "| optimiser | Adam, lr %g, %d warm-up steps, cosine decay to %g× over the budget |" % (
                a.lr, a.warmup, a.lr_final),
            "| EMA | decay %g (exported weights) |" % a.ema,
            "| batch / seed | %d / %d |" % (a.batch, a.seed),
            "| training | %d steps, %d images seen (%.2f epochs), %.1f min on 1 CPU thread%s |" % (
                q["steps"], q["images_seen"], q["epochs"], q["train_minutes"],
                ", continuing %s (%s)" % (self.init["name"], self.init["steps"]) if self.init else ""),
            "| sigma_min / sigma_max (metadata) | %.4g / %.4g (%s) |" % (
                tuple(self.dist.sigma_range()) + (self.range_card(),)),
            "| model.onnx | %.2f MB, opset %d, ONNX-vs-PyTorch max abs diff %.1e |" % (
                q["onnx_bytes"] / 1e6, export.DEFAULT_OPSET, q["onnx_max_abs_diff"]),
            "", "Recipe (metadata `recipe`): `%s`" % q["recipe"], "",
            "## Test denoising MSE", "",
            "Mean over pixels of (D(x + σn, σ) − x)² on %d %s test images (seed %d), [-1,1] pixel scale." % (
                q["n_images"], self.dataset, EVAL_SEED), "",
        ]
        base = q.get("gaussian_baseline_mse")
        if base:
            lines += ["| σ | MSE | Gaussian-mixture baseline MSE |", "|---:|---:|---:|"]
            for s, v in q["mse"].items():
                lines.append("| %s | %.5f | %.5f |" % (s, v, base["mse"][s]))
            lines += ["", "Baseline: %s." % base["what"]]
        else:
            lines += ["| σ | MSE |", "|---:|---:|"]
            for s, v in q["mse"].items():
                lines.append("| %s | %.5f |" % (s, v))
        lines += ["", "Reproduce: see tools/README.md (`tools/train_all.sh`).", ""]
        with open(os.path.join(a.out, "MODEL_CARD.md"), "w") as f:
            f.write("\n".join(lines))


def main(argv=None):
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    t = Trainer(a)
    resumed = t.load()
    if a.export_only:
        if not resumed:
            raise SystemExit("no checkpoint at %s" % t.ckpt_path)
    else:
        log("model %s; sigma %s; budget: %s min, %s steps; batch %d" % (
            edm.arch_string(t.model), t.dist.describe(), a.minutes, a.steps, a.batch))
        try:
            t.train()
        except Stop:
            log("stopped at step %d; rerun the same command to resume" % t.step)
            sys.exit(128 + t.stop_signal)
    t.finish()


if __name__ == "__main__":
    main()
