"""An independent brute-force reference for the features setting (tests only).

Explicit d x d matrix Q, random orthonormal features in R^d (d > K), explicit prompts (one per count
vector, weighted by its multinomial probability), explicit tasks w from the 2d-point distribution
{+-sqrt(d) e_i} (mean 0, covariance I), and the softmax-regression gradient written per token:

    y_hat = sum_i attn_i y_i,   d l / d s_i = mean_w (y_hat - y_q) attn_i (y_i - y_hat),
    d l / d Q = sum_i (d l / d s_i) x_i x_q^T,   s_i = x_i^T Q x_q.

Nothing here uses the SymPy derivation or the count-space reduction.
"""
from __future__ import annotations

import itertools
import math

import numpy as np


def orthonormal_features(K: int, d: int, seed: int) -> np.ndarray:
    """``d x K`` matrix with orthonormal columns, random."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q[:, :K]


def _prompts(p, N):
    """(counts, probability) for every count vector of N tokens over len(p) features."""
    K = len(p)
    for bars in itertools.combinations(range(N + K - 1), K - 1):
        edges = (-1,) + bars + (N + K - 1,)
        c = [edges[i + 1] - edges[i] - 1 for i in range(K)]
        coef = math.factorial(N)
        for ci in c:
            coef //= math.factorial(ci)
        yield c, coef * math.prod(float(pi) ** ci for pi, ci in zip(p, c))


def loss_and_grad(Q: np.ndarray, V: np.ndarray, p, N: int):
    """Population loss ``L(Q)`` and its gradient, by brute force."""
    d, K = V.shape
    tasks = np.concatenate([np.eye(d), -np.eye(d)]) * math.sqrt(d)     # (2d, d)
    loss, grad = 0.0, np.zeros_like(Q)
    for c, prob in _prompts(p, N):
        X = np.repeat(V.T, c, axis=0)                  # (N, d) tokens of the prompt
        Y = X @ tasks.T                                # (N, 2d) labels y_i = <w, x_i>
        for k in range(K):
            xq = V[:, k]
            s = X @ Q @ xq
            a = np.exp(s - s.max())
            a /= a.sum()
            yhat = a @ Y                               # (2d,)
            r = yhat - tasks @ xq                      # residual per task
            loss += p[k] * prob * 0.5 * np.mean(r**2)
            ds = np.mean(r[None, :] * a[:, None] * (Y - yhat[None, :]), axis=1)   # (N,)
            grad += float(p[k]) * prob * np.outer(X.T @ ds, xq)
    return loss, grad


def gradient_descent(p, N: int, eta: float, steps: int, d: int, seed: int = 0):
    """Logit matrices ``Z = V^T Q V`` of ``steps`` GD steps from ``Q = 0`` (``steps + 1`` of them)."""
    V = orthonormal_features(len(p), d, seed)
    Q = np.zeros((d, d))
    out = [V.T @ Q @ V]
    for _ in range(steps):
        Q = Q - eta * loss_and_grad(Q, V, p, N)[1]
        out.append(V.T @ Q @ V)
    return np.array(out)


def main() -> None:
    """The simulator against this reference: the largest difference of the logits over 60 steps
    (the figure quoted in the README)."""
    from fractions import Fraction

    from icl_verifier.numerics.features import FeaturesConfig, simulate
    from icl_verifier.numerics.kernels import use_compiled

    cases = [([Fraction(1, 2), Fraction(1, 3), Fraction(1, 6)], 4, 2.0, 5),
             ([Fraction(1, 4)] * 4, 3, 4.0, 6)]
    refs = [gradient_descent(p, N, eta, 60, d, seed=7) for p, N, eta, d in cases]
    for label, method, compiled in (("default method (enumeration here)", "auto", True),
                                    ("quadrature, compiled kernel", "quadrature", True),
                                    ("quadrature, numpy", "quadrature", False)):
        worst = 0.0
        for (p, N, eta, d), ref in zip(cases, refs):
            with use_compiled(compiled):
                traj = simulate(FeaturesConfig.make(len(p), N, p, eta), 60, method=method)
            worst = max(worst, float(np.max(np.abs(traj.logits - ref))))
        print(f"simulator ({label}) vs brute-force GD on explicit d x d Q, 60 steps, "
              f"logits: {worst:.1e}")


if __name__ == "__main__":
    main()
