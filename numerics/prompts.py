"""Expectations over the prompt counts ``c ~ Multinomial(N, p)`` of the features setting.

A column ``k`` of the logit matrix is described by *atoms*: atom 0 is the query's own feature
``k``; every other atom stands for ``mult`` features that share one probability and one logit
(a group).  Without grouping each feature is its own atom.  Four methods evaluate the quantities
of :data:`theory.features.QUANTITIES` for a batch of columns:

``enumeration``  every count vector, exact (``C(N+K-1, K-1)`` terms: small K, N only);
``groups``       every vector of group counts, within-group moments in closed form (exact);
``quadrature``   the generating-function integral of spec section 3 (exact up to quadrature
                 error, cost independent of N);
``montecarlo``   seeded sampling of prompts, for cross-checks (error ``O(samples^-1/2)``).

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

from theory import features as th
from theory.symmetric import automorphisms

from .backend import F64, Backend
from .quadrature import de_grid

__all__ = ["Columns", "expect", "choose_method", "METHODS", "count_vectors"]

METHODS = ("auto", "enumeration", "groups", "quadrature", "montecarlo")
OWN = tuple(q for q, roles in th.QUANTITIES.items() if roles == ("k",))
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

    ``montecarlo`` also returns ``name + ".stderr"``, the standard error of each estimate.
    """
    names = tuple(names)
    for q in names:
        if q not in th.QUANTITIES:
            raise KeyError(f"unknown quantity {q!r}")
    if method == "auto":
        method = choose_method(cols, N)
    with backend.context():
        if method == "quadrature":
            return _quadrature(cols, N, names, backend)
        if method == "groups":
            return _groups(cols, N, names, backend)
        if method == "enumeration":
            return _features(cols, N, names, backend, None, seed)
        if method == "montecarlo":
            return _features(cols, N, names, backend, samples, seed)
    raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


# ---------------------------------------------------------------------------------------------
# compiled kernels


def _modules(be: Backend):
    return "numpy" if not be.is_mp else [be.namespace, "mpmath"]


@lru_cache(maxsize=None)
def _gf_kernel(name: str, be: Backend):
    """``integrand(name)`` compiled for ``be``'s number type."""
    s, N, Phi, (bk, wk), (bn, wn), G = th.gf_symbols()
    M = {J: sp.Symbol(f"M{J}") for J in Phi}
    expr = th.integrand(name)
    # (N)_J * phi^(N-J) is one input: it keeps (N)_J = 0 exact when J > N.
    expr = sp.expand(expr)
    collected = sp.Integer(0)
    for J in Phi:
        part = sp.expand(expr.coeff(Phi[J]))
        collected += sp.factor_terms(sp.cancel(part / sp.ff(N, J))) * M[J]
    assert sp.expand(collected.subs({M[J]: sp.ff(N, J) * Phi[J] for J in Phi}) - expr) == 0
    gsyms = [G[key] for key in sorted(G)]
    args = [s, *M.values(), bk, wk, bn, wn, *gsyms]
    fn = sp.lambdify(args, collected, modules=_modules(be), cse=True)
    used = {str(x) for x in collected.free_symbols}
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


def _quadrature(cols: Columns, N: int, names, be: Backend):
    grid = de_grid(be)
    C, A = cols.shape
    mult = cols.mult
    active = (mult > 0) & (be.to_float(cols.p) > 0)
    z, p = cols.z, cols.p
    # Range of the integration variable (float64 is plenty for choosing a window).
    zf = np.where(active, be.to_float(z), np.nan)
    pm_f = np.where(active, be.to_float(p) * mult, 0.0)
    zmax, zmin = np.nanmax(zf, axis=1), np.nanmin(zf, axis=1)
    with np.errstate(divide="ignore"):
        log_mu = zmax + np.log(np.sum(pm_f * np.exp(np.nan_to_num(zf, nan=-np.inf) - zmax[:, None]),
                                      axis=1))
    digits = 16 if be.digits is None else be.digits
    log_tol = -(digits + 3) * math.log(10.0)
    lo = float(np.min(log_tol + log_mu - zmax))
    hi = float(np.max(math.log(-log_tol + 12.0) + log_mu - zmin))
    sl = grid.window(lo, hi)
    t, dt = grid.t[sl], grid.dt[sl]

    pmult = p * mult
    w = be.exp(z)
    w = np.where(active, w, be.scalar(0)) if be.is_mp else np.where(active, w, 0.0)
    mu = np.sum(pmult * w, axis=1)
    sigma = 1 / (N * mu)                                  # (C,)
    s = sigma[:, None] * t[None, :]                        # (C, T)
    neg_sw = -(s[:, None, :] * w[:, :, None])              # (C, A, T)
    em1 = be.expm1(neg_sw)
    b = p[:, :, None] * (em1 + 1)                          # p_a e^{-s w_a}
    phim1 = np.sum(pmult[:, :, None] * em1, axis=1)         # phi - 1
    logphi = be.log1p(phim1)
    Mj = []
    for J in range(th.MAX_DEGREE + 1):
        ff = _falling(N, J)
        if ff == 0:
            Mj.append(be.zeros(s.shape))
        elif N == J:
            Mj.append(be.zeros(s.shape) + ff)
        else:
            Mj.append(ff * be.exp((N - J) * logphi))
    # b^j w^e for the aggregates, and the own-role aggregates over O = all atoms but atom 0.
    multO = mult.copy()
    multO[:, 0] = 0
    powers, G_own = {}, {}
    for key in sorted(_gf_kernel(names[0], be)[1]):
        j, e = key
        powers[key] = b**j * (w**e)[:, :, None]
        G_own[key] = np.sum(multO[:, :, None] * powers[key], axis=1)   # (C, T)
    weights = sigma[:, None] * dt[None, :]                               # (C, T)
    out = {}
    for q in names:
        fn, gkeys, used = _gf_kernel(q, be)
        if th.QUANTITIES[q] == ("k",):
            args = [s, *Mj, b[:, 0, :], w[:, 0][:, None], 0, 0, *(G_own[k] for k in gkeys)]
            val = np.sum(fn(*args) * weights, axis=-1)
        else:
            G_off = [G_own[k][:, None, :] - powers[k] if f"G{k[0]}_{k[1]}" in used else 0
                     for k in gkeys]
            args = [s[:, None, :], *(m[:, None, :] for m in Mj), b[:, 0:1, :],
                    w[:, 0][:, None, None], b, w[:, :, None], *G_off]
            val = np.sum(fn(*args) * weights[:, None, :], axis=-1)
            val[:, 0] = 0
            val = np.where(active, val, 0)
        out[q] = val
    return out


# ---------------------------------------------------------------------------------------------
# finite methods: enumeration (or sampling) of feature counts, and of group counts


def _compositions(n: int, parts: int) -> np.ndarray:
    """All count vectors of ``n`` tokens over ``parts`` features, one per row."""
    total = count_vectors(n, parts)
    if total > ENUMERATION_LIMIT:
        raise ValueError(f"enumeration needs {total} count vectors (limit {ENUMERATION_LIMIT}); "
                         "use --method quadrature")
    if parts == 1:
        return np.array([[n]], dtype=np.int64)
    bars = np.array(list(itertools.combinations(range(n + parts - 1), parts - 1)), dtype=np.int64)
    bars = bars.reshape(-1, parts - 1)
    edges = np.concatenate([np.full((len(bars), 1), -1), bars,
                            np.full((len(bars), 1), n + parts - 1)], axis=1)
    return np.diff(edges, axis=1) - 1


def _log_pmf(counts: np.ndarray, probs, be: Backend):
    """log Multinomial(counts; n, probs), rows of ``counts``."""
    n = int(counts[0].sum())
    cnt = counts.astype(object) if be.is_mp else counts.astype(np.float64)
    logp = be.log(probs)
    return (be.lgamma(be.scalar(n + 1)) - np.sum(be.lgamma(cnt + 1), axis=1)
            + np.sum(cnt * logp[None, :], axis=1))


def _features(cols: Columns, N: int, names, be: Backend, samples, seed):
    """Enumeration (``samples`` None) or Monte Carlo over the counts of single features."""
    C, A = cols.shape
    out = {q: be.zeros((C,) if th.QUANTITIES[q] == ("k",) else (C, A)) for q in names}
    if samples is not None:
        out.update({q + ".stderr": np.zeros(out[q].shape) for q in names})
    rng = np.random.default_rng(seed)
    for c in range(C):
        act = _active(cols, c)
        atom = np.repeat(act, [int(cols.mult[c, a]) for a in act])     # feature -> atom
        first = {a: int(np.argmax(atom == a)) for a in act}             # representative feature
        probs = cols.p[c, atom]
        if samples is None:
            counts = _compositions(N, len(atom))
            weight = be.exp(_log_pmf(counts, probs, be))
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
                if weight is None:
                    mean = np.sum(vals) / len(vals)
                    err = float(np.std(be.to_float(vals), ddof=1) / math.sqrt(len(vals)))
                else:
                    mean, err = np.sum(weight * vals), None
                idx = c if a is None else (c, a)
                out[q][idx] = mean
                if err is not None:
                    out[q + ".stderr"][idx] = err
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
        weight = be.exp(_log_pmf(counts, gp, be))
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
