#!/usr/bin/python3
"""Closed-form Gaussian-mixture denoising baseline.

Fits one Gaussian per group of training images (mean, covariance) and a
mixture with the group frequencies; for y = x + sigma*n the posterior mean is

  E[x | y] = sum_k r_k(y) (mu_k + S_k (S_k + sigma^2 I)^-1 (y - mu_k)),
  r_k(y)  ∝ pi_k N(y; mu_k, S_k + sigma^2 I).

Groups: the classes when the data has labels (IDX files); otherwise (NPY
files) k-means clusters: Lloyd's algorithm in pixel space from K distinct
training images drawn with a fixed seed, until no assignment changes (at most
100 iterations); an emptied cluster restarts at the image farthest from its
centre.

Covariances:
  * rank=None: the full sample covariance (eigenvalues clipped at 0), the rule
    the shipped IDX models' quality.json was computed with;
  * rank=r: the shrinkage rule of the Go mixture (denoise/gmm Fit,
    probabilistic PCA): the top r eigenpairs of the sample covariance, the
    mean of the remaining (clipped at 0) eigenvalues as an isotropic variance
    for every other direction, all variances floored at iso_floor (1e-4) and
    the top r floored at the isotropic one. Needed when the image dimension
    is comparable to the images per group (3072 for 3x32x32), where the full
    sample covariance is near-singular.

A trained network should beat this. Used by tools/train.py for quality.json.
"""
import numpy as np

ISO_FLOOR = 1e-4  # denoise/gmm FitOptions.IsoFloor default
GO_RANK = 64      # denoise/gmm FitOptions.Rank default
_CHUNK = 2048


def _moments(x, idx):
    """Mean and sample covariance (float64) of the rows x[idx], in chunks."""
    d = x.shape[1]
    mu = np.zeros(d)
    for i in range(0, len(idx), _CHUNK):
        mu += x[idx[i:i + _CHUNK]].astype(np.float64).sum(0)
    mu /= len(idx)
    c = np.zeros((d, d))
    for i in range(0, len(idx), _CHUNK):
        xc = x[idx[i:i + _CHUNK]].astype(np.float64) - mu
        c += xc.T @ xc
    c /= len(idx) - 1
    return mu, c


def _top_eig_gram(x, idx, mu, rank):
    """For n = len(idx) <= D: (top-rank eigenvalues (descending), their
    eigenvectors D x r', sum of the other non-negative eigenvalues) of the
    sample covariance, from the n x n Gram matrix of the centred rows (the
    covariance has rank <= n - 1, its other eigenvalues are 0). Directions
    whose eigenvalue is below 1e-10 of the largest are left out (r' <= rank):
    their variance is floored to the isotropic one by fit, so the covariance
    does not depend on them."""
    xc = x[idx].astype(np.float64) - mu
    g = xc @ xc.T / (len(idx) - 1)
    lam, v = np.linalg.eigh(g)
    lam, v = lam[::-1], v[:, ::-1]
    top = lam[:rank]
    rest = np.maximum(lam[rank:], 0.0).sum()
    keep = top > max(lam[0], 0.0) * 1e-10
    u = xc.T @ v[:, :rank][:, keep] / np.sqrt((len(idx) - 1) * top[keep])
    return top, u, rest, keep


def fit(x, labels, rank=None, iso_floor=ISO_FLOOR):
    """x: [N,D] (float32 or float64); labels: [N] group of each row. Returns a
    list of (pi, mu, U, lam, iso): U is D x D with lam the eigenvalues
    (rank=None, iso 0), or D x r with lam the principal variances and iso the
    variance of every direction orthogonal to U (rank=r)."""
    d = x.shape[1]
    if rank is not None and not 0 < rank < d:
        raise ValueError("rank %d must be in (0, %d), the image dimension" % (rank, d))
    comps = []
    for k in np.unique(labels):
        idx = np.flatnonzero(labels == k)
        if len(idx) < 2:
            raise ValueError("group %d has %d image(s), need at least 2" % (k, len(idx)))
        pi = len(idx) / len(x)
        if rank is not None and len(idx) <= d:
            # fewer images than dimensions: the same eigenpairs from the Gram
            # matrix (n x n instead of a D x D eigendecomposition)
            mu = x[idx].astype(np.float64).mean(0)
            top, u, rest, keep = _top_eig_gram(x, idx, mu, rank)
            iso = max(rest / (d - rank), iso_floor)
            var = np.maximum(np.maximum(top, iso_floor), iso)
            comps.append((pi, mu, u, var[keep], iso))
            continue
        mu, c = _moments(x, idx)
        lam, u = np.linalg.eigh(c)  # ascending
        if rank is None:
            comps.append((pi, mu, u, np.maximum(lam, 0.0), 0.0))
            continue
        top = lam[::-1][:rank]
        iso = max(np.maximum(lam[:d - rank], 0.0).sum() / (d - rank), iso_floor)
        var = np.maximum(np.maximum(top, iso_floor), iso)
        comps.append((pi, mu, u[:, ::-1][:, :rank].copy(), var, iso))
    return comps


def posterior_mean(comps, y, sigma):
    """E[x | y] under the mixture, y: [n, D] float64."""
    s2 = sigma ** 2
    logw, means = [], []
    for pi, mu, u, lam, iso in comps:
        yc = y - mu
        z = yc @ u
        v = lam + s2
        lw = np.log(pi) - 0.5 * np.log(v).sum() - 0.5 * (z * z / v).sum(1)
        m = mu + (z * (lam / v)) @ u.T
        r = u.shape[1]
        if r < u.shape[0]:  # the isotropic part, orthogonal to U
            resid = yc - z @ u.T
            vi = iso + s2
            lw = lw - 0.5 * (u.shape[0] - r) * np.log(vi) - 0.5 * (resid * resid).sum(1) / vi
            m = m + resid * (iso / vi)
        logw.append(lw)
        means.append(m)
    logw = np.stack(logw, 1)
    w = np.exp(logw - logw.max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    return np.einsum("nk,knd->nd", w, np.stack(means, 0))


def kmeans(x, k, seed, iters=100):
    """Lloyd's k-means on the rows of x (float32 ok): returns labels [N].
    Centres start at k distinct rows drawn with numpy default_rng(seed)."""
    n = len(x)
    if not 0 < k <= n:
        raise ValueError("k-means with %d clusters on %d images" % (k, n))
    rng = np.random.default_rng(seed)
    cent = x[np.sort(rng.choice(n, size=k, replace=False))].astype(np.float64)
    lab = None
    for _ in range(iters):
        new = np.empty(n, dtype=np.int64)
        dist = np.empty(n)
        c2 = (cent * cent).sum(1)
        for i in range(0, n, _CHUNK):
            xb = x[i:i + _CHUNK].astype(np.float64)
            dd = c2[None, :] - 2.0 * xb @ cent.T
            new[i:i + _CHUNK] = dd.argmin(1)
            dist[i:i + _CHUNK] = dd[np.arange(len(xb)), new[i:i + _CHUNK]] + (xb * xb).sum(1)
        if lab is not None and np.array_equal(new, lab):
            break
        lab = new
        for j in range(k):
            members = lab == j
            if members.any():
                cent[j] = x[members].astype(np.float64).mean(0)
            else:  # restart an emptied cluster at the worst-fitting image
                far = int(dist.argmax())
                cent[j] = x[far]
                lab[far] = j
                dist[far] = 0.0
    return lab


def describe(n_comps, labelled, rank, k_seed=None):
    group = ("per-class" if labelled else
             "k-means (pixel space, seed %d, Lloyd's algorithm from %d random training images)" % (k_seed, n_comps))
    if rank is None:
        cov = "full covariances"
    else:
        cov = ("covariances shrunk as in denoise/gmm Fit: top %d principal variances + isotropic variance = mean "
               "of the other eigenvalues, floor %g" % (rank, ISO_FLOOR))
    return "%s Gaussian mixture (%s, %d components) fitted to the training images" % (group, cov, n_comps)


def gaussian_mse(x, labels, xt, sigmas, seed, rank=None, k=10, k_seed=None):
    """Test MSE of the Gaussian-mixture posterior mean on the test images xt
    ([n,C,H,W] float32, the same subset as tools/train.py's quality()) with the
    same noise (torch, seeded seed + i for the i-th sigma). x: training
    images [N,C,H,W]; labels: their classes, or None to group them by k-means
    into k clusters (seeded k_seed, default seed)."""
    import torch
    x = x.reshape(len(x), -1)
    k_seed = seed if k_seed is None else k_seed
    labelled = labels is not None
    lab = labels if labelled else (kmeans(x, k, k_seed) if k > 1 else np.zeros(len(x), dtype=np.int64))
    comps = fit(x, lab, rank=rank)
    xt = torch.from_numpy(np.ascontiguousarray(xt))
    clean = xt.reshape(len(xt), -1).double().numpy()
    out = {}
    for i, s in enumerate(sigmas):
        g = torch.Generator().manual_seed(seed + i)
        noise = torch.randn(xt.shape, generator=g)
        y = (xt + s * noise).reshape(len(xt), -1).double().numpy()
        d = posterior_mean(comps, y, s)
        out[repr(s)] = float(((d - clean) ** 2).mean())
    return {"what": describe(len(comps), labelled, rank, k_seed), "mse": out}
