#!/usr/bin/python3
"""Small EDM-preconditioned UNet denoiser for CxHxW images (C = in_ch, e.g.
1x28x28 or 3x32x32; H and W must be multiples of 4).

The network F is a two-level UNet (28 -> 14 -> 7, or 32 -> 16 -> 8) built from
GroupNorm+SiLU residual conv blocks. The noise level enters through c_noise = ln(sigma)/4,
embedded with fixed Fourier features followed by an MLP, and modulates each
block's second GroupNorm with a per-channel scale and shift.

EDM preconditioning (Karras et al. 2022, "Elucidating the Design Space of
Diffusion-Based Generative Models"), sigma_data = 0.5:

    c_skip  = sd^2 / (s^2 + sd^2)
    c_out   = s * sd / sqrt(s^2 + sd^2)
    c_in    = 1 / sqrt(s^2 + sd^2)
    c_noise = ln(s) / 4
    D(x, s) = c_skip * x + c_out * F(c_in * x, c_noise)

Training loss: s drawn from a SigmaDist, weight
lambda(s) = (s^2 + sd^2) / (s * sd)^2, loss = lambda * ||D(x + s n, s) - x||^2.
SigmaDist("edm") is EDM's ln s ~ N(P_mean=-1.2, P_std=1.2^2); SigmaDist("cover")
mixes in, with probability p, ln s ~ U[ln s_lo, ln s_hi] (default p=0.3 on
[0.002, 20]) so that the large noise levels evaluated downstream are trained.

Only torch is needed (Debian's /usr/bin/python3 ships torch 1.13 CPU).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

SIGMA_DATA = 0.5
P_MEAN = -1.2
P_STD = 1.2

# Default architecture: channels per resolution (full, 1/2, 1/4), embedding width.
DEFAULT_CHANNELS = (16, 32, 64)
DEFAULT_EMB = 128


def _groups(ch):
    for g in (8, 4, 2, 1):
        if ch % g == 0:
            return g
    return 1


class FourierEmbedding(nn.Module):
    """Fixed (deterministic) Fourier features of a scalar: [cos(2 pi f c), sin(2 pi f c)].

    Frequencies are geometric from 1/16 to 16 cycles per unit of c_noise, which
    covers c_noise = ln(sigma)/4 in about [-2, 1.5] (sigma in ~[1e-3, 400]).
    """

    def __init__(self, num_freqs=32, fmin=1.0 / 16, fmax=16.0):
        super().__init__()
        f = torch.exp(torch.linspace(math.log(fmin), math.log(fmax), num_freqs))
        self.register_buffer("freqs", 2 * math.pi * f)

    def forward(self, c):  # c: [N]
        a = c[:, None] * self.freqs[None, :]
        return torch.cat([torch.cos(a), torch.sin(a)], dim=1)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-Conv, then GroupNorm modulated by the noise embedding
    (scale/shift), SiLU, Conv; residual with a 1x1 conv when widths differ."""

    def __init__(self, cin, cout, emb_dim):
        super().__init__()
        self.norm0 = nn.GroupNorm(_groups(cin), cin)
        self.conv0 = nn.Conv2d(cin, cout, 3, padding=1)
        self.affine = nn.Linear(emb_dim, 2 * cout)
        self.norm1 = nn.GroupNorm(_groups(cout), cout)
        self.conv1 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None
        # Start close to identity: zero the last conv of the residual branch.
        nn.init.zeros_(self.conv1.weight)
        nn.init.zeros_(self.conv1.bias)

    def forward(self, x, emb):
        h = self.conv0(F.silu(self.norm0(x)))
        scale, shift = self.affine(emb)[:, :, None, None].chunk(2, dim=1)
        h = F.silu(self.norm1(h) * (1 + scale) + shift)
        h = self.conv1(h)
        s = x if self.skip is None else self.skip(x)
        return s + h


class SelfAttention(nn.Module):
    """Single-head self-attention over the positions of a feature map (as
    in the DDPM UNet's low-resolution blocks): x + proj(softmax(q^T k / sqrt(C)) v),
    q, k, v 1x1 convolutions of GroupNorm(x). It gives every output position
    a view of the whole image, which the 3x3 convolutions only build up over
    many layers: at large sigma the posterior mean depends on global
    projections of the input. proj starts at zero, so the block starts as the
    identity."""

    def __init__(self, ch):
        super().__init__()
        self.norm = nn.GroupNorm(_groups(ch), ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x):
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, c, h * w).unbind(1)
        a = torch.softmax(torch.bmm(q.transpose(1, 2), k) / math.sqrt(c), dim=-1)  # [n, hw, hw]
        out = torch.bmm(v, a.transpose(1, 2)).reshape(n, c, h, w)
        return x + self.proj(out)


def check_spatial(h, w):
    """Raises ValueError unless H and W survive the two stride-2 downsamplings
    and the two nearest x2 upsamplings exactly (multiples of 4: 28 -> 14 -> 7,
    32 -> 16 -> 8)."""
    if h <= 0 or w <= 0 or h % 4 or w % 4:
        raise ValueError("image size %dx%d: the UNet needs H and W to be positive multiples of 4" % (h, w))


class UNet(nn.Module):
    """F(x_in, c_noise): raw network, input/output [N,in_ch,H,W] (H, W multiples
    of 4), c_noise [N]."""

    def __init__(self, in_ch=1, channels=DEFAULT_CHANNELS, emb_dim=DEFAULT_EMB, attn=False):
        super().__init__()
        c0, c1, c2 = channels
        self.channels = tuple(channels)
        self.emb_dim = emb_dim
        self.in_ch = in_ch
        self.fourier = FourierEmbedding(num_freqs=32)
        self.emb = nn.Sequential(
            nn.Linear(64, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim), nn.SiLU())
        self.conv_in = nn.Conv2d(in_ch, c0, 3, padding=1)
        self.enc0 = ResBlock(c0, c0, emb_dim)                 # HxW (28x28, 32x32)
        self.down0 = nn.Conv2d(c0, c1, 3, stride=2, padding=1)  # -> H/2 (14, 16)
        self.enc1 = ResBlock(c1, c1, emb_dim)
        self.down1 = nn.Conv2d(c1, c2, 3, stride=2, padding=1)  # -> H/4 (7, 8)
        self.mid0 = ResBlock(c2, c2, emb_dim)
        # attn: self-attention between the two middle blocks (H/4 x W/4).
        self.mid_attn = SelfAttention(c2) if attn else None
        self.mid1 = ResBlock(c2, c2, emb_dim)
        self.up1 = nn.Conv2d(c2, c1, 3, padding=1)              # after nearest x2 -> H/2
        self.dec1 = ResBlock(2 * c1, c1, emb_dim)
        self.up0 = nn.Conv2d(c1, c0, 3, padding=1)              # after nearest x2 -> H
        self.dec0 = ResBlock(2 * c0, c0, emb_dim)
        self.norm_out = nn.GroupNorm(_groups(c0), c0)
        self.conv_out = nn.Conv2d(c0, in_ch, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x, c_noise):
        emb = self.emb(self.fourier(c_noise))
        h0 = self.enc0(self.conv_in(x), emb)
        h1 = self.enc1(self.down0(h0), emb)
        h = self.mid0(self.down1(h1), emb)
        if self.mid_attn is not None:
            h = self.mid_attn(h)
        h = self.mid1(h, emb)
        h = self.up1(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        h = self.dec1(torch.cat([h, h1], dim=1), emb)
        h = self.up0(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        h = self.dec0(torch.cat([h, h0], dim=1), emb)
        return self.conv_out(F.silu(self.norm_out(h)))


class EDMDenoiser(nn.Module):
    """D(x, sigma) with EDM preconditioning around a raw network F(x_in, c_noise).

    x: [N,C,H,W] noisy image on the data scale; sigma: [N] (or broadcastable).
    Returns the denoised estimate, same shape as x.
    """

    def __init__(self, net=None, sigma_data=SIGMA_DATA, **kw):
        super().__init__()
        self.net = net if net is not None else UNet(**kw)
        self.sigma_data = float(sigma_data)

    def forward(self, x, sigma):
        sigma = sigma.reshape(-1).to(x.dtype)
        s = sigma[:, None, None, None]
        sd = self.sigma_data
        s2 = s * s + sd * sd
        c_skip = (sd * sd) / s2
        c_out = s * sd / torch.sqrt(s2)
        c_in = 1.0 / torch.sqrt(s2)
        c_noise = torch.log(sigma) / 4.0
        f = self.net(c_in * x, c_noise)
        return c_skip * x + c_out * f


# Central 99.9% of a standard normal: |z| <= 3.29 (the constant the shipped
# models' metadata sigma range was computed with).
Z999 = 3.29

COVER_FRAC = 0.3
COVER_SIGMA_LO = 0.002
COVER_SIGMA_HI = 20.0
SIGMA_DISTS = ("edm", "cover")


def _phi(z):
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


class SigmaDist:
    """The training distribution of sigma.

    edm:   ln sigma ~ N(P_MEAN, P_STD^2)                         (EDM's default)
    cover: with probability frac  ln sigma ~ U[ln lo, ln hi],
           otherwise              ln sigma ~ N(P_MEAN, P_STD^2).

    EDM's log-normal puts only 2.2% of its mass above sigma = 3.4 and 0.11%
    above 12, while the methods evaluate D up to sigma = 20; "cover" keeps
    (1 - frac) of the EDM mass where it is and adds a log-uniform floor over
    [lo, hi] (defaults: 7.3% above 3.4, 1.7% above 12).
    """

    def __init__(self, kind="edm", frac=COVER_FRAC, lo=COVER_SIGMA_LO, hi=COVER_SIGMA_HI):
        if kind not in SIGMA_DISTS:
            raise ValueError("sigma distribution %r: want one of %s" % (kind, ", ".join(SIGMA_DISTS)))
        self.kind = kind
        if kind == "cover":
            if not 0.0 <= frac <= 1.0:
                raise ValueError("cover fraction %g not in [0, 1]" % frac)
            if not 0.0 < lo < hi or not math.isfinite(hi):
                raise ValueError("cover sigma range [%g, %g]: need 0 < lo < hi" % (lo, hi))
            self.frac, self.lo, self.hi = float(frac), float(lo), float(hi)

    @classmethod
    def from_args(cls, d):
        """Inverse of args(); None (checkpoints from before the option) is edm."""
        if d is None or d == "edm" or d.get("kind") == "edm":
            return cls("edm")
        return cls(d["kind"], d["frac"], d["lo"], d["hi"])

    def args(self):
        if self.kind == "edm":
            return {"kind": "edm"}
        return {"kind": self.kind, "frac": self.frac, "lo": self.lo, "hi": self.hi}

    def __eq__(self, other):
        return isinstance(other, SigmaDist) and self.args() == other.args()

    def sample(self, n, generator=None, device=None):
        """n sigmas. The edm draw consumes the generator exactly as the original
        edm_loss did (one randn(n)), so edm runs reproduce bit for bit."""
        rnd = torch.randn(n, device=device, generator=generator)
        ln = rnd * P_STD + P_MEAN
        if self.kind == "cover":
            u = torch.rand(n, device=device, generator=generator)
            pick = torch.rand(n, device=device, generator=generator) < self.frac
            a, b = math.log(self.lo), math.log(self.hi)
            ln = torch.where(pick, a + (b - a) * u, ln)
        return torch.exp(ln)

    def cdf(self, s):
        """P(sigma <= s), closed form."""
        if s <= 0:
            return 0.0
        ln = math.log(s)
        g = _phi((ln - P_MEAN) / P_STD)
        if self.kind == "edm":
            return g
        a, b = math.log(self.lo), math.log(self.hi)
        u = min(1.0, max(0.0, (ln - a) / (b - a)))
        return self.frac * u + (1.0 - self.frac) * g

    def sigma_range(self):
        """(sigma_min, sigma_max) for the contract metadata: the log-normal's
        central 99.9% exp(P_MEAN -/+ 3.29 P_STD) ~ [0.0058, 15.6], joined for
        cover with [lo, hi] (the hull, when the two do not overlap)."""
        lo = math.exp(P_MEAN - Z999 * P_STD)
        hi = math.exp(P_MEAN + Z999 * P_STD)
        if self.kind == "cover" and self.frac > 0:
            if self.frac < 1:
                lo, hi = min(lo, self.lo), max(hi, self.hi)
            else:
                lo, hi = self.lo, self.hi
        return lo, hi

    def describe(self):
        """One-line description (used in the recipe string); edm keeps the
        shipped models' wording."""
        ln = "lnσ~N(%.1f,%.1f²)" % (P_MEAN, P_STD)
        if self.kind == "edm":
            return ln
        return "σ~cover: p=%g lnσ~U[ln %g,ln %g], else %s" % (self.frac, self.lo, self.hi, ln)


def edm_loss(model, x, generator=None, sigma_dist=None):
    """EDM training loss (mean over batch and pixels) for clean images x, with
    sigma drawn from sigma_dist (default SigmaDist("edm"))."""
    n = x.shape[0]
    sigma = (sigma_dist or SigmaDist()).sample(n, generator=generator, device=x.device)
    noise = torch.randn(x.shape, device=x.device, generator=generator)
    s = sigma[:, None, None, None]
    weight = (s * s + SIGMA_DATA ** 2) / (s * SIGMA_DATA) ** 2
    d = model(x + s * noise, sigma)
    return (weight * (d - x) ** 2).mean()


def count_params(m):
    return sum(p.numel() for p in m.parameters())


def build(channels=DEFAULT_CHANNELS, emb_dim=DEFAULT_EMB, in_ch=1, attn=False):
    return EDMDenoiser(UNet(in_ch=in_ch, channels=tuple(channels), emb_dim=emb_dim, attn=attn))


def arch_string(model):
    """e.g. "edm-unet ch=16-32-64 emb=128 params=338289"; " in_ch=3" is added
    for images with other than one channel and " attn=mid" with the middle
    self-attention (so recipes without them read as they always have)."""
    net = model.net
    extra = "" if getattr(net, "in_ch", 1) == 1 else " in_ch=%d" % net.in_ch
    extra += " attn=mid" if getattr(net, "mid_attn", None) is not None else ""
    return "edm-unet ch=%s emb=%d%s params=%d" % (
        "-".join(str(c) for c in net.channels), net.emb_dim, extra, count_params(model))


if __name__ == "__main__":
    # Quick benchmark: forward+backward+Adam step time at batch 64 on one
    # thread, on random data of --shape (e.g. 3x32x32).
    import argparse
    import time

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--channels", default="-".join(map(str, DEFAULT_CHANNELS)))
    ap.add_argument("--emb", type=int, default=DEFAULT_EMB)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--shape", default="1x28x28", help="CxHxW, e.g. 3x32x32")
    ap.add_argument("--attn", action="store_true", help="self-attention between the middle blocks")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    in_ch, h, w = (int(v) for v in a.shape.split("x"))
    check_spatial(h, w)
    m = build(tuple(int(v) for v in a.channels.split("-")), a.emb, in_ch=in_ch, attn=a.attn)
    print(arch_string(m))
    opt = torch.optim.Adam(m.parameters(), lr=1e-4)
    x = torch.rand(a.batch, in_ch, h, w) * 2 - 1
    for i in range(a.steps + 2):
        if i == 2:
            t0, c0 = time.time(), time.process_time()
        loss = edm_loss(m, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    dt = (time.time() - t0) / a.steps
    cpu = (time.process_time() - c0) / a.steps
    print("step %.3f s at batch %d (%.2f steps/s, %.0f img/s); CPU time %.3f s/step" % (
        dt, a.batch, 1 / dt, a.batch / dt, cpu))
