"""An independent explicit-matrix reference for the multi-head model at finite L (tests only).

Explicit prompts: tokens ``z_j = (x_j; y_j)`` in ``R^{d_x + n}``, query ``(x_q; 0)``, ``x ~ N(0, I)``,
task i's coefficients ``beta_i ~ N(0, I)`` on its covariate block, labels with noise ``sigma``;
heads with full matrices ``W_h`` ((d_x + n) x (d_x + n)) and ``U_h`` (n x (d_x + n)):

    s_{h,j} = z_j^T W_h z_q,  p_h = softmax(s_h),  y_hat = sum_h U_h sum_j p_{h,j} z_j,
    loss = mean_i (y_hat_i - y_{q,i})^2,

and its gradient in ``W_h, U_h`` by the chain rule written per token.  Nothing here uses the
SymPy derivation or the reduction to ``(u, r)``.
"""
from __future__ import annotations

import numpy as np


def spectral_matrices(omega, mu, d):
    """``W_h = diag(omega_{h,b} on block b, 0 on the labels)``, ``U_h[i, d_x + i] = mu_{h,i}``."""
    omega, mu = np.asarray(omega, float), np.asarray(mu, float)
    H, n = omega.shape
    dx = sum(d)
    block = np.repeat(np.arange(n), d)
    W = np.zeros((H, dx + n, dx + n))
    U = np.zeros((H, n, dx + n))
    for h in range(H):
        W[h, np.arange(dx), np.arange(dx)] = omega[h, block]
        U[h, np.arange(n), dx + np.arange(n)] = mu[h]
    return W, U


def prompts(d, L: int, samples: int, sigma: float, rng):
    """``(Z (S, L, D), zq (S, D), yq (S, n))`` of explicit prompts."""
    n, dx = len(d), sum(d)
    block = np.repeat(np.arange(n), d)
    x = rng.standard_normal((samples, L, dx))
    xq = rng.standard_normal((samples, dx))
    beta = rng.standard_normal((samples, dx))
    onehot = np.eye(n)[block]
    y = np.einsum("sld,sd,dn->sln", x, beta, onehot) + sigma * rng.standard_normal((samples, L, n))
    yq = np.einsum("sd,sd,dn->sn", xq, beta, onehot)
    Z = np.concatenate([x, y], axis=2)
    zq = np.concatenate([xq, np.zeros((samples, n))], axis=1)
    return Z, zq, yq


def loss_and_gradients(W, U, Z, zq, yq):
    """Per-prompt loss ``(S,)`` and gradients ``dW (S, H, D, D)``, ``dU (S, H, n, D)``."""
    n = U.shape[1]
    s = np.einsum("sld,hde,se->shl", Z, W, zq)
    p = np.exp(s - s.max(axis=2, keepdims=True))
    p /= p.sum(axis=2, keepdims=True)
    pooled = np.einsum("shl,sld->shd", p, Z)                 # sum_j p_{h,j} z_j
    yhat = np.einsum("hid,shd->si", U, pooled)
    e = yhat - yq
    loss = np.mean(e**2, axis=1)
    dy = 2 * e / n                                           # d loss / d y_hat
    dU = np.einsum("si,shd->shid", dy, pooled)
    g = np.einsum("si,hid,sld->shl", dy, U, Z)               # d loss / d p_{h,j}
    ds = p * (g - np.sum(p * g, axis=2, keepdims=True))      # through the softmax
    dW = np.einsum("shl,sld,se->shde", ds, Z, zq)
    return loss, dW, dU


def mean_gradients(omega, mu, d, L: int, samples: int, sigma: float = 0.0, seed: int = 0,
                   batch: int = 2000):
    """Monte Carlo means and standard errors of the loss and of every entry of ``dW``, ``dU`` at the
    spectral point ``(omega, mu)``: ``{name: (mean, stderr)}``."""
    W, U = spectral_matrices(omega, mu, d)
    rng = np.random.default_rng(seed)
    sums = {}
    for start in range(0, samples, batch):
        size = min(batch, samples - start)
        values = dict(zip(("loss", "W", "U"),
                          loss_and_gradients(W, U, *prompts(d, L, size, sigma, rng))))
        for name, v in values.items():
            a, b = sums.get(name, (0.0, 0.0))
            sums[name] = (a + v.sum(axis=0), b + (v**2).sum(axis=0))
    out = {}
    for name, (a, b) in sums.items():
        mean = a / samples
        var = np.maximum(b / samples - mean**2, 0) * samples / (samples - 1)
        out[name] = (mean, np.sqrt(var / samples))
    return out
