"""Brute-force reference for the classification setting: explicit prompts in the original
(unwhitened) coordinates, an explicit d x d W, the cross-entropy gradient written by hand.

Used only by the tests, to guard the whitening, the symmetry reduction and the GD rule."""
import numpy as np


def sqrtm_spd(L):
    w, U = np.linalg.eigh(L)
    return (U * np.sqrt(w)) @ U.T


def gradient_samples(W, Lambda, N, classes, r, samples, seed):
    """Per-prompt loss and gradient ``d loss / d W`` (``samples x d x d``), query class drawn."""
    rng = np.random.default_rng(seed)
    d = W.shape[0]
    half = sqrtm_spd(Lambda)
    g = rng.standard_normal((samples, classes, d))
    mu = r * g / np.linalg.norm(g, axis=-1, keepdims=True) @ half.T     # Lambda^{1/2} r g/|g|
    labels = rng.integers(0, classes, size=(samples, N))
    noise = rng.standard_normal((samples, N, d)) @ half.T
    x = np.take_along_axis(mu, labels[..., None], axis=1) + noise      # (S, N, d)
    onehot = np.eye(classes)[labels]                                    # (S, N, c)
    h = np.einsum("snk,snd->skd", onehot, x) / N                        # h_k
    yq = rng.integers(0, classes, size=samples)
    xq = mu[np.arange(samples), yq] + rng.standard_normal((samples, d)) @ half.T
    logits = np.einsum("skd,de,se->sk", h, W, xq)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(samples), yq])
    resid = p - np.eye(classes)[yq]
    grad = np.einsum("sk,skd,se->sde", resid, h, xq)
    return loss, grad
