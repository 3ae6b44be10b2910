#!/usr/bin/python3
"""Closed-form Gaussian-mixture denoising baseline.

Fits one Gaussian per class (mean, full covariance) to the training images and
a mixture with the class frequencies; for y = x + sigma*n the posterior mean is

  E[x | y] = sum_k r_k(y) (mu_k + S_k (S_k + sigma^2 I)^-1 (y - mu_k)),
  r_k(y)  ∝ pi_k N(y; mu_k, S_k + sigma^2 I).

A trained network should beat this. Used by tools/train.py for quality.json.
"""
import numpy as np

import idx


def fit(x, labels):
    """x: [N,D] float64; returns list of (pi, mu, U, lam)."""
    comps = []
    for k in np.unique(labels):
        xk = x[labels == k]
        mu = xk.mean(0)
        c = np.cov(xk, rowvar=False)
        lam, u = np.linalg.eigh(c)
        comps.append((len(xk) / len(x), mu, u, np.maximum(lam, 0.0)))
    return comps


def posterior_mean(comps, y, sigma):
    logw, means = [], []
    for pi, mu, u, lam in comps:
        z = (y - mu) @ u
        v = lam + sigma ** 2
        logw.append(np.log(pi) - 0.5 * np.log(v).sum() - 0.5 * (z * z / v).sum(1))
        means.append(mu + (z * (lam / v)) @ u.T)
    logw = np.stack(logw, 1)
    w = np.exp(logw - logw.max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    return np.einsum("nk,knd->nd", w, np.stack(means, 0))


def gaussian_mse(train_images, train_labels, test_images, test_labels, classes, sigmas, n, seed):
    """Test MSE of the per-class Gaussian mixture posterior mean, with the
    same test subset and noise as tools/train.py's quality() (torch noise)."""
    import torch
    x, lab = idx.load_images(train_images, train_labels, classes)
    x = x.reshape(len(x), -1).astype(np.float64)
    if lab is None:
        lab = np.zeros(len(x), dtype=np.int64)
    comps = fit(x, lab)
    xt, _ = idx.load_images(test_images, test_labels, classes)
    rng = np.random.default_rng(seed)
    sel = np.sort(rng.choice(len(xt), size=min(n, len(xt)), replace=False))
    xt = torch.from_numpy(xt[sel])
    out = {}
    for i, s in enumerate(sigmas):
        g = torch.Generator().manual_seed(seed + i)
        noise = torch.randn(xt.shape, generator=g)
        y = (xt + s * noise).reshape(len(xt), -1).double().numpy()
        d = posterior_mean(comps, y, s)
        out[repr(s)] = float(((d - xt.reshape(len(xt), -1).double().numpy()) ** 2).mean())
    what = "per-class Gaussian mixture (full covariances, %d components) fitted to the training images" % len(comps)
    return {"what": what, "mse": out}
