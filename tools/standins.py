#!/usr/bin/python3
"""Small seeded stand-in networks for tests and fixtures (no training)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

import edm


def randomize_(module, seed, std=0.1):
    """Deterministically perturbs every parameter (so zero-initialised output
    layers contribute and the fixture exercises the whole graph)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * std)
    return module


def tiny_edm(seed=1234):
    """Tiny EDM UNet (channels 8-16-16, embedding 32), seeded random weights."""
    torch.manual_seed(seed)
    m = edm.build(channels=(8, 16, 16), emb_dim=32)
    return randomize_(m, seed).eval()


class TinyEps(nn.Module):
    """A DDPM-style epsilon-prediction stand-in eps(x_t, t), t int64 [N] in
    [0, 1000): sinusoidal timestep embedding -> MLP -> per-channel shift of a
    two-conv network."""

    def __init__(self, ch=1, hidden=8, emb=16):
        super().__init__()
        self.emb = emb
        self.mlp = nn.Sequential(nn.Linear(emb, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.conv0 = nn.Conv2d(ch, hidden, 3, padding=1)
        self.conv1 = nn.Conv2d(hidden, ch, 3, padding=1)

    def forward(self, x, t):
        half = self.emb // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        a = t.to(torch.float32)[:, None] * freqs[None, :]
        e = self.mlp(torch.cat([torch.cos(a), torch.sin(a)], dim=1))
        h = F.silu(self.conv0(x) + e[:, :, None, None])
        return self.conv1(h)


def tiny_eps(seed=4321, ch=1):
    torch.manual_seed(seed)
    return randomize_(TinyEps(ch=ch), seed).eval()
