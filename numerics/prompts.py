"""Expectations over the prompt counts ``c ~ Multinomial(N, p)`` of the features setting.

A column ``k`` of the logit matrix is described by *atoms*: atom 0 is the query's own feature
``k``; every other atom stands for ``mult`` features that share one probability and one logit
(a group).  Without grouping each feature is its own atom.  Four methods evaluate the quantities
of :data:`theory.features.QUANTITIES` for a batch of columns:

``enumeration``  every count vector, exact (``C(N+K-1, K-1)`` terms: small K, N only);
``groups``       every vector of group counts, within-group moments in closed form (exact);
``quadrature``   the generating-function integral of spec section 3 (exact up to quadrature
                 error, cost independent of N);
``montecarlo``   seeded sampling of prompts, for cross-checks (error ``O(samples^-1/2)``);
``meanfield``    the limit N -> inf (counts ``c = N p``): not exact at finite N, the reference of
                 the mean-field predictions.

Own quantities (``loss``, ``concentration``, ``attention_own``, ``grad_own``) come back with shape
``(C,)``; off-target ones (``attention_off``, ``grad_off``) with shape ``(C, A)``, entry ``[c, a]``
for a representative feature of atom ``a`` as the role ``n`` (entry 0 is 0).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy as sp

from ..theory import features as th
from ..theory.symmetric import automorphisms

from .backend import F64, Backend
from . import kernels as kernels_mod
from .errors import ConfigError
from .quadrature import de_grid

__all__ = ["Columns", "expect", "choose_method", "METHODS", "count_vectors"]

METHODS = ("auto", "enumeration", "groups", "quadrature", "montecarlo", "meanfield")
#: Largest number of (group) count vectors the exact finite methods accept.
ENUMERATION_LIMIT = 2_000_000
_AUTO_ENUMERATION = 2_000
_AUTO_GROUPS = 400


@dataclass(frozen=True)
class Columns:
    """A batch of columns in atom form: ``z`` logits, ``p`` per-feature probability, ``mult`` sizes.

    Arrays have shape ``(C, A)``; atom 0 of each column is the query's feature (``mult == 1``);
    padding atoms have ``mult == 0``.
    """

    z: np.ndarray
    p: np.ndarray
    mult: np.ndarray

    @property
    def shape(self):
        return self.mult.shape


def count_vectors(n: int, parts: int) -> int:
    """Number of count vectors of ``n`` tokens over ``parts`` features: ``C(n + parts - 1, parts - 1)``."""
    return math.comb(n + parts - 1, parts - 1)


def _active(cols: Columns, c: int) -> list[int]:
    return [a for a in range(cols.shape[1]) if cols.mult[c, a] > 0 and cols.p[c, a] > 0]


def choose_method(cols: Columns, N: int) -> str:
    """The cheapest exact method: enumeration for tiny problems, then groups, then quadrature."""
    feats = max(int(cols.mult[c, _active(cols, c)].sum()) for c in range(cols.shape[0]))
    atoms = max(len(_active(cols, c)) for c in range(cols.shape[0]))
    if count_vectors(N, feats) <= _AUTO_ENUMERATION:
        return "enumeration"
    if count_vectors(N, atoms) <= _AUTO_GROUPS:
        return "groups"
    return "quadrature"


def expect(cols: Columns, N: int, names, method: str = "auto", backend: Backend = F64,
           samples: int = 20_000, seed: int = 0) -> dict[str, np.ndarray]:
    """Expectations of the quantities ``names`` for every column of ``cols``.

    ``enumeration`` and ``montecarlo`` also return ``name + ".sd"``, the standard deviation of the
    quantity over prompts (exact, or the sample's), and ``montecarlo`` ``name + ".stderr"``, the
    standard error of its estimate.
    """
    names = tuple(names)
    for q in names:
        if q not in th.QUANTITIES:
            raise KeyError(f"unknown quantity {q!r}")
    if method == "auto":
        method = choose_method(cols, N)
    with backend.context():
        if method == "quadrature":
            with np.errstate(divide="ignore", under="ignore"):   # phi underflows far out: 0
                return _quadrature(cols, N, names, backend)
        if method == "groups":
            return _groups(cols, N, names, backend)
        if method == "enumeration":
            return _features(cols, N, names, backend, None, seed)
        if method == "montecarlo":
            return _features(cols, N, names, backend, samples, seed)
        if method == "meanfield":
            return _features(cols, N, names, backend, None, seed, meanfield=True)
    raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


# ---------------------------------------------------------------------------------------------
# compiled kernels


def _modules(be: Backend):
    return "numpy" if not be.is_mp else [be.namespace, "mpmath"]


@lru_cache(maxsize=None)
def _gf_kernel(name: str, be: Backend):
    """``integrand(name)`` compiled for ``be``'s number type."""
    s, M, (bk, wk), (bn, wn), G = th.gf_symbols()
    expr = th.integrand(name)
    args = [s, *M.values(), bk, wk, bn, wn, *(G[key] for key in sorted(G))]
    fn = sp.lambdify(args, expr, modules=_modules(be), cse=True)
    free = expr.free_symbols
    used = {key for key in G if G[key] in free} | {J for J in M if M[J] in free}
    return fn, sorted(G), used


@lru_cache(maxsize=None)
def _direct_kernel(name: str, be: Backend):
    uk, un, D = sp.symbols("u_k u_n D", positive=True)
    P = [th.power_sum(e) for e in range(1, th.MAX_DEGREE + 1)]
    return sp.lambdify([uk, un, D, *P], th.direct(name), modules=_modules(be), cse=True)


# ---------------------------------------------------------------------------------------------
# quadrature


def _falling(n: int, j: int) -> int:
    return math.perm(n, j) if j <= n else 0


def _window(zf, pmf, active, digits):
    """``log t`` range that holds the integrands to ``10^-(digits+3)`` for every column.

    With ``sigma = 1/(N mu)``, ``mu = sum_m p_m w_m``: below ``s D_max < tol`` the integral is < tol,
    above ``s D_min > log(1/tol) + 12`` the factor ``e^{-s D}`` is < tol (``D_max = N w_max``,
    ``D_min = N w_min``).
    """
    zmax = np.where(active, zf, -np.inf).max(axis=1)
    zmin = np.where(active, zf, np.inf).min(axis=1)
    log_mu = zmax + np.log((pmf * np.exp(np.where(active, zf - zmax[:, None], -np.inf))).sum(1))
    log_tol = -(digits + 3) * math.log(10.0)
    return float((log_tol + log_mu - zmax).min()), \
        float((math.log(12.0 - log_tol) + log_mu - zmin).max())


def _quadrature(cols: Columns, N: int, names, be: Backend):
    if not be.is_mp and kernels_mod.enabled():
        return kernels_mod.quadrature(cols.z, cols.p, cols.mult, N, names, de_grid(be))
    kernels = {q: _gf_kernel(q, be) for q in names}
    needed = set().union(*(k[2] for k in kernels.values()))
    mult, z, p = cols.mult, cols.z, cols.p
    zf, pf = (be.to_float(z), be.to_float(p)) if be.is_mp else (z, p)
    active = (mult > 0) & (pf > 0)
    grid = de_grid(be)
    sl = grid.window(*_window(zf, pf * mult, active, 16 if be.digits is None else be.digits))
    t, dt = grid.t[sl], grid.dt[sl]

    pmult = p * mult
    w = be.exp(z)                                  # padding atoms have p = 0: no contribution
    sigma = 1 / (N * (pmult * w).sum(axis=1))      # (C,)
    s = sigma[:, None] * t[None, :]                # (C, T)
    sw = -(s[:, None, :] * w[:, :, None])
    b = p[:, :, None] * be.exp(sw)                 # b_a = p_a e^{-s w_a}, (C, A, T)
    phim1 = (pmult[:, :, None] * be.expm1(sw)).sum(axis=1)   # phi - 1, accurate near s = 0
    phi = (mult[:, :, None] * b).sum(axis=1)       # phi itself, accurate (and >= 0) far out
    near = be.to_float(phim1) > -0.5 if be.is_mp else phim1 > -0.5
    logphi = np.where(near, be.log1p(np.where(near, phim1, 0)), be.log(np.where(near, 1, phi)))
    M = _phi_powers(logphi, phi, N, sorted(J for J in needed if isinstance(J, int)), be)
    # b^j w^e, and the aggregates over O = every atom but the query's own (atom 0)
    multO = mult * (np.arange(mult.shape[1]) > 0)[None, :]
    powers, G_own = {}, {}
    for key in sorted(k for k in needed if isinstance(k, tuple)):
        j, e = key
        powers[key] = b**j * (w**e)[:, :, None]
        G_own[key] = (multO[:, :, None] * powers[key]).sum(axis=1)   # (C, T)
    weights = sigma[:, None] * dt[None, :]                            # (C, T)
    Ms = [M.get(J, 0) for J in range(th.MAX_DEGREE + 1)]
    active_off = active.copy()
    active_off[:, 0] = False                       # the role n is never the query's own feature
    out = {}
    for q, (fn, gkeys, used) in kernels.items():
        if th.QUANTITIES[q] == ("k",):
            args = [s, *Ms, b[:, 0, :], w[:, 0][:, None], 0, 0,
                    *(G_own[k] if k in used else 0 for k in gkeys)]
            out[q] = (fn(*args) * weights).sum(axis=-1)
        else:
            G_off = [G_own[k][:, None, :] - powers[k] if k in used else 0 for k in gkeys]
            args = [s[:, None, :], *(m[:, None, :] if J in used else 0 for J, m in enumerate(Ms)),
                    b[:, 0:1, :], w[:, 0][:, None, None], b, w[:, :, None], *G_off]
            val = (fn(*args) * weights[:, None, :]).sum(axis=-1)
            out[q] = np.where(active_off, val, be.scalar(0))
    return out


def _phi_powers(logphi, phi, N: int, Js, be: Backend) -> dict:
    """``M_J = (N)_J phi^(N-J)`` for ``J`` in ``Js``: one power ``phi^(N-J_top)``, then products.

    ``log phi`` comes from ``log1p(phi - 1)`` near ``s = 0`` (where ``phi^N`` needs ``phi - 1`` to
    full relative precision) and from ``log(sum_m p_m e^{-s w_m})`` far out (where ``phi - 1`` would
    approach ``-sum p``, which rounding can push below -1).
    """
    if not Js:
        return {}
    top = min(max(Js), N)
    power = be.exp((N - top) * logphi) if N > top else phi * 0 + 1
    out = {}
    for J in range(top, -1, -1):
        if J in Js:
            out[J] = _falling(N, J) * power
        power = power * phi
    for J in Js:
        out.setdefault(J, phi * 0)      # (N)_J = 0 for J > N
    return out


# ---------------------------------------------------------------------------------------------
# finite methods: enumeration (or sampling) of feature counts, and of group counts


def _compositions(n: int, parts: int) -> np.ndarray:
    """All count vectors of ``n`` tokens over ``parts`` features, one per row."""
    total = count_vectors(n, parts)
    if total > ENUMERATION_LIMIT:
        raise ConfigError(f"enumeration needs {total:.3g} count vectors (limit "
                          f"{ENUMERATION_LIMIT}); "
                         "use --method quadrature")
    if parts == 1:
        return np.array([[n]], dtype=np.int64)
    bars = np.array(list(itertools.combinations(range(n + parts - 1), parts - 1)), dtype=np.int64)
    bars = bars.reshape(-1, parts - 1)
    edges = np.concatenate([np.full((len(bars), 1), -1), bars,
                            np.full((len(bars), 1), n + parts - 1)], axis=1)
    return np.diff(edges, axis=1) - 1


def _pmf(counts: np.ndarray, probs, be: Backend):
    """Multinomial(counts; n, probs) for every row of ``counts``.

    float64: a chain of binomials, ``P(c) = prod_i Binom(c_i; n - c_<i, p_i / (1 - p_<i))``, with
    SciPy's binomial pmf (relative error near round-off for any n; ``exp(lgamma...)`` loses
    ``n * eps``).  Arbitrary precision: ``exp`` of log-gamma sums at the working precision.
    """
    n = int(counts[0].sum())
    if be.is_mp:
        cnt = counts.astype(object)
        logp = be.log(probs)
        return be.exp(be.lgamma(be.scalar(n + 1)) - np.sum(be.lgamma(cnt + 1), axis=1)
                      + np.sum(cnt * logp[None, :], axis=1))
    from scipy.stats import binom
    probs = np.asarray(probs, dtype=float)
    out = np.ones(len(counts))
    left = np.full(len(counts), n)
    mass = 1.0
    for i in range(counts.shape[1] - 1):
        q = min(probs[i] / mass, 1.0) if mass > 0 else 0.0
        out *= binom.pmf(counts[:, i], left, q)
        left = left - counts[:, i]
        mass -= probs[i]
    return out


def _features(cols: Columns, N: int, names, be: Backend, samples, seed, meanfield=False):
    """Enumeration (``samples`` None), Monte Carlo, or the mean-field limit (``c = N p``: every
    quantity is homogeneous of degree 0 in the counts, so ``c = p``) over single features."""
    C, A = cols.shape
    out = {q: be.zeros((C,) if th.QUANTITIES[q] == ("k",) else (C, A)) for q in names}
    if not meanfield:
        out.update({q + ".sd": np.zeros(out[q].shape) for q in names})
    if samples is not None:
        out.update({q + ".stderr": np.zeros(out[q].shape) for q in names})
    rng = np.random.default_rng(seed)
    for c in range(C):
        act = _active(cols, c)
        atom = np.repeat(act, [int(cols.mult[c, a]) for a in act])     # feature -> atom
        first = {a: int(np.argmax(atom == a)) for a in act}             # representative feature
        probs = cols.p[c, atom]
        if meanfield:
            counts, weight = np.asarray(probs)[None, :], be.array([1])
        elif samples is None:
            counts = _compositions(N, len(atom))
            weight = _pmf(counts, probs, be)
        else:
            pf = be.to_float(probs)
            counts = rng.multinomial(N, pf / pf.sum(), size=samples)
            weight = None
        cnt = counts.astype(object) if be.is_mp else counts.astype(np.float64)
        u = cnt * be.exp(cols.z[c, atom])[None, :]
        D = np.sum(u, axis=1)
        own = np.zeros(len(atom), dtype=bool)
        own[0] = atom[0] == 0
        P_own = [np.sum(u[:, ~own] ** e, axis=1) for e in range(1, th.MAX_DEGREE + 1)]
        for q in names:
            fn = _direct_kernel(q, be)
            targets = [None] if th.QUANTITIES[q] == ("k",) else [a for a in act if a != 0]
            for a in targets:
                if a is None:
                    vals = fn(u[:, 0] if own[0] else 0 * D, 0 * D, D, *P_own)
                else:
                    un = u[:, first[a]]
                    P = [P_own[e - 1] - un**e for e in range(1, th.MAX_DEGREE + 1)]
                    vals = fn(u[:, 0] if own[0] else 0 * D, un, D, *P)
                vals = np.broadcast_to(vals, D.shape)
                idx = c if a is None else (c, a)
                if weight is None:
                    out[q][idx] = np.sum(vals) / len(vals)
                    sd = float(np.std(be.to_float(vals), ddof=1))
                    out[q + ".stderr"][idx] = sd / math.sqrt(len(vals))
                else:
                    out[q][idx] = mean = np.sum(weight * vals)
                    sd = math.sqrt(max(float(np.sum(weight * (vals - mean) ** 2)), 0.0))
                if not meanfield:
                    out[q + ".sd"][idx] = sd
    return out


def _groups(cols: Columns, N: int, names, be: Backend):
    """Enumeration of group counts; within a group of g features, ``E[prod (c_i)_{j_i} | C] =
    (C)_J / g^J`` for distinct features; sums over distinct features count falling factorials."""
    C, A = cols.shape
    out = {q: be.zeros((C,) if th.QUANTITIES[q] == ("k",) else (C, A)) for q in names}
    for c in range(C):
        act = _active(cols, c)
        g = {a: int(cols.mult[c, a]) for a in act}
        counts = _compositions(N, len(act))
        gp = be.array([cols.p[c, a] * g[a] for a in act])
        weight = _pmf(counts, gp, be)
        cnt = {a: (counts[:, i].astype(object) if be.is_mp else counts[:, i].astype(np.float64))
               for i, a in enumerate(act)}
        w = {a: be.exp(cols.z[c, a]) for a in act}
        D = sum(cnt[a] * w[a] for a in act)
        has_own = 0 in act
        for q in names:
            for a_n in ([None] if th.QUANTITIES[q] == ("k",) else [a for a in act if a != 0]):
                total = 0
                for t in th.terms(q):
                    num = _group_term(t, a_n, act, g, cnt, w, has_own, be)
                    total = total + float(t.coeff) * num / D**t.r if not be.is_mp else \
                        total + be.scalar(t.coeff.p) / t.coeff.q * num / D**t.r
                val = np.sum(weight * total)
                out[q][c if a_n is None else (c, a_n)] = val
    return out


def _group_term(t, a_n, act, g, cnt, w, has_own, be):
    """``E[u_k^ek u_n^en m_lam(u_O) | group counts]`` as an array over the count vectors."""
    if t.ek and not has_own:
        return 0
    role_slots = ([(t.ek, 0)] if t.ek else []) + ([(t.en, a_n)] if t.en else [])
    avail = {a: g[a] - (a == 0) - (a == a_n) for a in act}
    total = 0
    for atoms in itertools.product(act, repeat=len(t.lam)):
        ways = 1
        for a in act:
            ways *= _falling(avail[a], atoms.count(a))
        if ways == 0:
            continue
        slots = role_slots + list(zip(t.lam, atoms))
        for js in itertools.product(*[range(1, e + 1) for e, _ in slots]):
            coeff = ways
            J = dict.fromkeys(act, 0)
            wpow = 1
            for (e, a), j in zip(slots, js):
                coeff *= int(sp.functions.combinatorial.numbers.stirling(e, j))
                J[a] += j
                wpow = wpow * w[a] ** e
            val = wpow * coeff
            for a in act:
                for i in range(J[a]):
                    val = val * (cnt[a] - i) / g[a]
            total = total + val
    return total / automorphisms(t.lam)
