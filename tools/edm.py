#!/usr/bin/python3
"""Small EDM-preconditioned UNet denoiser for 1x28x28 images.

The network F is a two-level UNet (28 -> 14 -> 7) built from GroupNorm+SiLU
residual conv blocks. The noise level enters through c_noise = ln(sigma)/4,
embedded with fixed Fourier features followed by an MLP, and modulates each
block's second GroupNorm with a per-channel scale and shift.

EDM preconditioning (Karras et al. 2022, "Elucidating the Design Space of
Diffusion-Based Generative Models"), sigma_data = 0.5:

    c_skip  = sd^2 / (s^2 + sd^2)
    c_out   = s * sd / sqrt(s^2 + sd^2)
    c_in    = 1 / sqrt(s^2 + sd^2)
    c_noise = ln(s) / 4
    D(x, s) = c_skip * x + c_out * F(c_in * x, c_noise)

Training loss: ln s ~ N(P_mean=-1.2, P_std=1.2), weight
lambda(s) = (s^2 + sd^2) / (s * sd)^2, loss = lambda * ||D(x + s n, s) - x||^2.

Only torch is needed (Debian's /usr/bin/python3 ships torch 1.13 CPU).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

SIGMA_DATA = 0.5
P_MEAN = -1.2
P_STD = 1.2

# Default architecture: channels per resolution (28, 14, 7), embedding width.
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


class UNet(nn.Module):
    """F(x_in, c_noise): raw network, input/output [N,1,28,28], c_noise [N]."""

    def __init__(self, in_ch=1, channels=DEFAULT_CHANNELS, emb_dim=DEFAULT_EMB):
        super().__init__()
        c0, c1, c2 = channels
        self.channels = tuple(channels)
        self.emb_dim = emb_dim
        self.fourier = FourierEmbedding(num_freqs=32)
        self.emb = nn.Sequential(
            nn.Linear(64, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim), nn.SiLU())
        self.conv_in = nn.Conv2d(in_ch, c0, 3, padding=1)
        self.enc0 = ResBlock(c0, c0, emb_dim)                 # 28x28
        self.down0 = nn.Conv2d(c0, c1, 3, stride=2, padding=1)  # -> 14
        self.enc1 = ResBlock(c1, c1, emb_dim)                 # 14x14
        self.down1 = nn.Conv2d(c1, c2, 3, stride=2, padding=1)  # -> 7
        self.mid0 = ResBlock(c2, c2, emb_dim)                 # 7x7
        self.mid1 = ResBlock(c2, c2, emb_dim)
        self.up1 = nn.Conv2d(c2, c1, 3, padding=1)              # after nearest x2 -> 14
        self.dec1 = ResBlock(2 * c1, c1, emb_dim)
        self.up0 = nn.Conv2d(c1, c0, 3, padding=1)              # after nearest x2 -> 28
        self.dec0 = ResBlock(2 * c0, c0, emb_dim)
        self.norm_out = nn.GroupNorm(_groups(c0), c0)
        self.conv_out = nn.Conv2d(c0, in_ch, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x, c_noise):
        emb = self.emb(self.fourier(c_noise))
        h0 = self.enc0(self.conv_in(x), emb)
        h1 = self.enc1(self.down0(h0), emb)
        h = self.mid1(self.mid0(self.down1(h1), emb), emb)
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


def edm_loss(model, x, generator=None):
    """EDM training loss (mean over batch and pixels) for clean images x."""
    n = x.shape[0]
    rnd = torch.randn(n, device=x.device, generator=generator)
    sigma = torch.exp(rnd * P_STD + P_MEAN)
    noise = torch.randn(x.shape, device=x.device, generator=generator)
    s = sigma[:, None, None, None]
    weight = (s * s + SIGMA_DATA ** 2) / (s * SIGMA_DATA) ** 2
    d = model(x + s * noise, sigma)
    return (weight * (d - x) ** 2).mean()


def count_params(m):
    return sum(p.numel() for p in m.parameters())


def build(channels=DEFAULT_CHANNELS, emb_dim=DEFAULT_EMB):
    return EDMDenoiser(UNet(channels=tuple(channels), emb_dim=emb_dim))


def arch_string(model):
    net = model.net
    return "edm-unet ch=%s emb=%d params=%d" % (
        "-".join(str(c) for c in net.channels), net.emb_dim, count_params(model))


if __name__ == "__main__":
    # Quick benchmark: forward+backward step time at batch 64 on one thread.
    import argparse
    import time

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--channels", default="-".join(map(str, DEFAULT_CHANNELS)))
    ap.add_argument("--emb", type=int, default=DEFAULT_EMB)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    m = build(tuple(int(c) for c in a.channels.split("-")), a.emb)
    print(arch_string(m))
    opt = torch.optim.Adam(m.parameters(), lr=1e-4)
    x = torch.rand(a.batch, 1, 28, 28) * 2 - 1
    for i in range(a.steps + 2):
        if i == 2:
            t0 = time.time()
        loss = edm_loss(m, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    dt = (time.time() - t0) / a.steps
    print("step %.3f s at batch %d (%.0f img/s)" % (dt, a.batch, a.batch / dt))
