"""Gauss rules from three-term recurrences (Golub-Welsch), in float64 or arbitrary precision.

A rule ``(x_i, w_i)`` with ``sum_i w_i f(x_i) ~ E[f(X)]`` (weights sum to 1) for:

* ``hermite``     X ~ N(0, 1)                          (probabilists' Hermite)
* ``gegenbauer``  X on [-1, 1] with density ~ (1 - x^2)^gamma, gamma > -1
* ``laguerre``    X on [0, oo) with density ~ x^alpha e^{-x}, alpha > -1
* ``krawtchouk``  X ~ Binomial(N, p); with N + 1 nodes the rule is the exact sum over 0..N

The nodes are the eigenvalues of the Jacobi matrix (diagonal ``a_k``, off-diagonal ``b_k``), the
weights the squared first components of its eigenvectors.  float64 uses LAPACK's tridiagonal
solver; arbitrary precision uses ``mpmath.eigsy`` at the backend's precision plus guard digits.
"""
from __future__ import annotations

from functools import lru_cache

import mpmath
import numpy as np

from .backend import F64, Backend

__all__ = ["KINDS", "jacobi_matrix", "rule"]

KINDS = ("hermite", "gegenbauer", "laguerre", "krawtchouk")


def jacobi_matrix(kind: str, n: int, param=None, backend: Backend = F64):
    """Diagonal ``a_0..a_{n-1}`` and off-diagonal ``b_1..b_{n-1}`` of the monic recurrence.

    ``param``: gamma (gegenbauer), alpha (laguerre), ``(N, p)`` (krawtchouk).  At an
    arbitrary-precision ``backend`` the entries are ``mpmath`` numbers at the working precision
    (the eigen-solver's library)."""
    sqrt = mpmath.sqrt if backend.is_mp else np.sqrt
    one = mpmath.mpf(1) if backend.is_mp else 1.0
    k = range(1, n)
    if kind == "hermite":
        a = [0 * one] * n
        b = [sqrt(j * one) for j in k]
    elif kind == "gegenbauer":
        g = param * one
        a = [0 * one] * n
        b = [sqrt(1 / (2 * g + 3)) if j == 1 else
             sqrt(j * (j + 2 * g) / ((2 * j + 2 * g + 1) * (2 * j + 2 * g - 1))) for j in k]
    elif kind == "laguerre":
        al = param * one
        a = [2 * j + al + 1 for j in range(n)]
        b = [sqrt(j * (j + al)) for j in k]
    elif kind == "krawtchouk":
        N, p = param
        p = p * one
        if n > N + 1:
            raise ValueError(f"a Krawtchouk rule has at most N + 1 = {N + 1} nodes")
        a = [p * (N - j) + j * (1 - p) for j in range(n)]
        b = [sqrt(j * p * (1 - p) * (N - j + 1)) for j in k]
    else:
        raise ValueError(f"unknown rule {kind!r}; one of {', '.join(KINDS)}")
    return a, b


@lru_cache(maxsize=256)
def _rule_f64(kind, n, param):
    from scipy.linalg import eigh_tridiagonal

    a, b = jacobi_matrix(kind, n, param)
    if n == 1:
        return np.array([float(a[0])]), np.array([1.0])
    x, vecs = eigh_tridiagonal(np.array(a, float), np.array(b, float))
    w = vecs[0] ** 2
    return x, w / w.sum()


@lru_cache(maxsize=256)
def _rule_mp(kind, n, param, backend):
    with mpmath.workprec(backend.bits + 30):
        a, b = jacobi_matrix(kind, n, param, backend)
        J = mpmath.zeros(n, n)
        for i in range(n):
            J[i, i] = a[i]
            if i:
                J[i, i - 1] = J[i - 1, i] = b[i - 1]
        x, vecs = mpmath.eigsy(J)
        w = [vecs[0, i] ** 2 for i in range(n)]
        total = mpmath.fsum(w)
        return tuple(x), tuple(wi / total for wi in w)


def rule(kind: str, n: int, backend: Backend, param=None):
    """``(nodes, weights)`` as arrays of ``backend``; cached per precision."""
    if n < 1:
        raise ValueError("a rule needs at least one node")
    if not backend.is_mp:
        return _rule_f64(kind, n, param)
    x, w = _rule_mp(kind, n, param, backend)
    digits = backend.digits + 10
    with backend.context():
        return (backend.array([mpmath.nstr(v, digits) for v in x]),
                backend.array([mpmath.nstr(v, digits) for v in w]))
