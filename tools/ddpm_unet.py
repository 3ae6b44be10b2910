"""The DDPM CIFAR-10 UNet of Ho et al. (2020) in plain PyTorch, with random weights.

Architecture as in the paper's CIFAR-10 model (and diffusers' google/ddpm-cifar10-32): base width 128,
channel multipliers (1, 2, 2, 2), two residual blocks per level, self-attention at 16x16, GroupNorm(32),
a sinusoidal timestep embedding of width 512, epsilon prediction eps(x_t, t) with integer t in [0, 1000).
It has 35.7M parameters. Random weights suffice for what it is used for here: measuring what EigenScore
costs per image with a network of the size the paper used (docs/benchmarks.md), through

    python3 tools/export.py factory --factory ddpm_unet:cifar10_unet --kind ddpm --shape 3x32x32 \
        --dataset cifar10-random --out cifar10-unet.onnx
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def timestep_embedding(t, dim):
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / (half - 1))
    a = t.to(torch.float32)[:, None] * freqs[None, :]
    return torch.cat([torch.sin(a), torch.cos(a)], dim=1)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, temb, dropout=0.1):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(32, cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(temb, cout)
        self.norm2, self.drop, self.conv2 = nn.GroupNorm(32, cout), nn.Dropout(dropout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, e):
        h = self.conv1(F.silu(self.norm1(x))) + self.temb(F.silu(e))[:, :, None, None]
        h = self.conv2(self.drop(F.silu(self.norm2(h))))
        return self.skip(x) + h


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm, self.qkv, self.proj = nn.GroupNorm(32, c), nn.Conv2d(c, 3 * c, 1), nn.Conv2d(c, c, 1)

    def forward(self, x):
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, c, h * w).unbind(1)
        a = torch.softmax(torch.einsum("ncq,nck->nqk", q, k) / math.sqrt(c), dim=-1)
        return x + self.proj(torch.einsum("nqk,nck->ncq", a, v).reshape(n, c, h, w))


class UNet(nn.Module):
    def __init__(self, ch=128, mult=(1, 2, 2, 2), blocks=2, attn=(16,), res=32, cin=3):
        super().__init__()
        temb = 4 * ch
        self.ch = ch
        self.emb = nn.Sequential(nn.Linear(ch, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.conv_in = nn.Conv2d(cin, ch, 3, padding=1)
        self.down, skips, c, r = nn.ModuleList(), [ch], ch, res
        for i, m in enumerate(mult):
            for _ in range(blocks):
                self.down.append(nn.ModuleList([ResBlock(c, ch * m, temb), Attention(ch * m) if r in attn else nn.Identity()]))
                c = ch * m
                skips.append(c)
            if i < len(mult) - 1:
                self.down.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
                r //= 2
        self.mid = nn.ModuleList([ResBlock(c, c, temb), Attention(c), ResBlock(c, c, temb)])
        self.up = nn.ModuleList()
        for i, m in reversed(list(enumerate(mult))):
            for _ in range(blocks + 1):
                self.up.append(nn.ModuleList([ResBlock(c + skips.pop(), ch * m, temb), Attention(ch * m) if r in attn else nn.Identity()]))
                c = ch * m
            if i > 0:
                self.up.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c, 3, padding=1)))
                r *= 2
        self.out = nn.Sequential(nn.GroupNorm(32, c), nn.SiLU(), nn.Conv2d(c, cin, 3, padding=1))

    def forward(self, x, t):
        e = self.emb(timestep_embedding(t, self.ch))
        h = self.conv_in(x)
        hs = [h]
        for layer in self.down:
            if isinstance(layer, nn.ModuleList):
                h = layer[1](layer[0](h, e))
            else:
                h = layer(h)
            hs.append(h)
        h = self.mid[2](self.mid[1](self.mid[0](h, e)), e)
        for layer in self.up:
            if isinstance(layer, nn.ModuleList):
                h = layer[1](layer[0](torch.cat([h, hs.pop()], dim=1), e))
            else:
                h = layer(h)
        return self.out(h)


def cifar10_unet(seed=1):
    """The 35.7M-parameter CIFAR-10 architecture with seeded random weights, in eval mode."""
    torch.manual_seed(seed)
    return UNet().eval()


if __name__ == "__main__":
    m = cifar10_unet()
    print("parameters: %.2fM" % (sum(p.numel() for p in m.parameters()) / 1e6))
    x = torch.randn(2, 3, 32, 32)
    print(m(x, torch.tensor([10, 500])).shape)
