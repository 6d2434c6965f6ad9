"""Compiled float64 kernel of the features quadrature: one pass over columns, atoms and nodes.

The same computation as :func:`numerics.prompts._quadrature` (spec section 3): on the nodes
``s = sigma t`` of the double-exponential grid,

    b_a = p_a e^{-s w_a},   phi = sum_a m_a b_a,   M_J = (N)_J phi^(N-J),
    G_{j,e} = sum_{o in O} b_o^j w_o^e,   E[quantity] = sigma sum_i F(s_i) dt_i,

with ``F`` the SymPy integrand of :func:`theory.features.integrand`.  The integrands are printed
from SymPy into a small Python module (nothing is typed by hand), which numba compiles together
with the loop; numba caches the machine code beside the generated file, so later processes load
it instead of compiling.  The numpy path stays the reference and serves arbitrary precision.

At the far end of a sweep (features K = 64, N = 16384) a step is a few hundred array operations
on arrays of a few hundred entries: numpy's per-call overhead, not arithmetic, set its cost.
"""
from __future__ import annotations

import contextlib
import importlib.util
import math
from functools import lru_cache

import numpy as np
import sympy as sp

from ..theory import features as th

from .codegen import HEAD, load_module

__all__ = ["available", "enabled", "use_compiled", "quadrature"]

_STATE = {"enabled": True}


def available() -> bool:
    """Whether numba is importable (the compiled kernel needs it)."""
    return importlib.util.find_spec("numba") is not None


def enabled() -> bool:
    """Whether float64 quadrature goes through the compiled kernel."""
    return _STATE["enabled"] and available()


@contextlib.contextmanager
def use_compiled(flag: bool):
    """Turn the compiled kernel on or off inside a ``with`` block (benchmarks, cross-checks)."""
    old = _STATE["enabled"]
    _STATE["enabled"] = bool(flag)
    try:
        yield
    finally:
        _STATE["enabled"] = old


# ---------------------------------------------------------------------------------------------
# source generation


def _arguments():
    s, M, (bk, wk), (bn, wn), G = th.gf_symbols()
    return [s, *M.values(), bk, wk, bn, wn, *(G[key] for key in sorted(G))], sorted(G)


def _function(name: str) -> str:
    """``integrand(name)`` as a numba-compiled scalar function ``f_<name>(s, M0.., b_k, .., G..)``."""
    args, _ = _arguments()
    expr = th.integrand(name)
    subs, (reduced,) = sp.cse(expr, symbols=sp.numbered_symbols("x"))
    lines = ["@njit(cache=True, fastmath=False, inline='always')",
             f"def f_{name}({', '.join(str(a) for a in args)}):"]
    lines += [f"    {lhs} = {sp.pycode(rhs)}" for lhs, rhs in subs]
    lines.append(f"    return {sp.pycode(reduced)}")
    return "\n".join(lines)


_LOOP = '''
@njit(cache=True)
def kernel(z, p, mult, N, log_t, t, dt, falling, digits, want, out):
    """Fill out[q, c, a] (own quantities at a = 0) for the wanted quantities; 0, or 1 when the
    logits spread beyond the grid."""
    C, A = z.shape
    log_tol = -(digits + 3) * math.log(10.0)
    lo, hi = math.inf, -math.inf
    for c in range(C):
        zmax, zmin = -math.inf, math.inf
        for a in range(A):
            if mult[c, a] > 0 and p[c, a] > 0:
                zmax = max(zmax, z[c, a])
                zmin = min(zmin, z[c, a])
        acc = 0.0
        for a in range(A):
            if mult[c, a] > 0 and p[c, a] > 0:
                acc += p[c, a] * mult[c, a] * math.exp(z[c, a] - zmax)
        log_mu = zmax + math.log(acc)
        lo = min(lo, log_tol + log_mu - zmax)
        hi = max(hi, math.log(12.0 - log_tol) + log_mu - zmin)
    n = log_t.shape[0]
    i0 = max(np.searchsorted(log_t, lo) - 1, 0)
    i1 = min(np.searchsorted(log_t, hi) + 2, n)
    if i1 == n and hi > log_t[n - 1]:
        return 1
    top = min(3, N)
    w = np.empty(A)
    b = np.empty(A)
    for c in range(C):
        mu = 0.0
        for a in range(A):
            w[a] = math.exp(z[c, a])
            mu += p[c, a] * mult[c, a] * w[a]
        sigma = 1.0 / (N * mu)
        for i in range(i0, i1):
            s = sigma * t[i]
            phim1 = 0.0
            phi = 0.0
            for a in range(A):
                sw = -s * w[a]
                b[a] = p[c, a] * math.exp(sw)
                phim1 += p[c, a] * mult[c, a] * math.expm1(sw)
                phi += mult[c, a] * b[a]
            logphi = math.log1p(phim1) if phim1 > -0.5 else math.log(phi)
            power = math.exp((N - top) * logphi) if N > top else 1.0
            M3 = falling[3] * power if top >= 3 else 0.0
            if top >= 3:
                power *= phi
            M2 = falling[2] * power if top >= 2 else 0.0
            if top >= 2:
                power *= phi
            M1 = falling[1] * power if top >= 1 else 0.0
            power *= phi
            M0 = power
{aggregates}
            wt = sigma * dt[i]
            bk = b[0]
            wk = w[0]
{own}
            for a in range(1, A):
                if not (mult[c, a] > 0 and p[c, a] > 0):
                    continue
                bn = b[a]
                wn = w[a]
{off}
    return 0
'''


def _source() -> str:
    """The generated module: every quantity's integrand and the loop that uses them."""
    _, gkeys = _arguments()
    names = list(th.QUANTITIES)
    gnames = [f"G{j}_{e}" for j, e in gkeys]
    agg = ["            " + " = ".join(gnames) + " = 0.0",
           "            for a in range(1, A):"]
    agg += [f"                {g} += mult[c, a] * b[a]**{j} * w[a]**{e}"
            for g, (j, e) in zip(gnames, gkeys)]
    own, off = [], []
    off += [f"                o{g} = {g} - bn**{j} * wn**{e}" for g, (j, e) in zip(gnames, gkeys)]
    for q, name in enumerate(names):
        if th.QUANTITIES[name] == ("k",):
            call = f"f_{name}(s, M0, M1, M2, M3, bk, wk, 0.0, 0.0, {', '.join(gnames)})"
            own.append(f"            if want[{q}]:\n                out[{q}, c, 0] += {call} * wt")
        else:
            ogs = ", ".join("o" + g for g in gnames)
            call = f"f_{name}(s, M0, M1, M2, M3, bk, wk, bn, wn, {ogs})"
            off.append(f"                if want[{q}]:\n                    out[{q}, c, a] += "
                       f"{call} * wt")
    loop = _LOOP.replace("{aggregates}", "\n".join(agg)).replace("{own}", "\n".join(own)) \
        .replace("{off}", "\n".join(off))
    head = HEAD + f"NAMES = {tuple(names)!r}\n\n"
    return head + "\n\n\n".join(_function(name) for name in names) + "\n\n" + loop


@lru_cache(maxsize=None)
def _module():
    """The generated module, written once per content and imported (numba caches beside it)."""
    return load_module("features_quadrature", _source())


@lru_cache(maxsize=None)
def _falling(N: int) -> np.ndarray:
    return np.array([float(math.perm(N, J)) if J <= N else 0.0 for J in range(4)])


def quadrature(z, p, mult, N: int, names, grid) -> dict[str, np.ndarray]:
    """The float64 quadrature of :func:`numerics.prompts._quadrature`, compiled.

    Raises OverflowError when the logits spread beyond the grid (as the numpy path does).
    """
    module = _module()
    order = module.NAMES
    want = np.array([q in names for q in order])
    C, A = z.shape
    out = np.zeros((len(order), C, A))
    status = module.kernel(np.ascontiguousarray(z, dtype=float),
                           np.ascontiguousarray(p, dtype=float),
                           np.ascontiguousarray(mult, dtype=float), int(N), grid.log_t, grid.t,
                           grid.dt, _falling(int(N)), 16, want, out)
    if status:
        raise OverflowError("the logits spread beyond the quadrature range")
    result = {}
    for q in names:
        i = order.index(q)
        result[q] = out[i, :, 0].copy() if th.QUANTITIES[q] == ("k",) else out[i]
    return result
