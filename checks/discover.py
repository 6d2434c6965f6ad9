"""Propose the law of a quantity from the exact simulation: ``icl-verify discover QUANTITY``.

1. **Design.** Each scaling variable swept over its range and past its nominal end (as the
   verdict engine sweeps), and the diagonal where all of them grow together.
2. **Candidates.** Products of powers and logs of the variables, oriented toward their asymptotic
   ends (``x = K`` or ``x = 1/epsilon``): ``x^a log(x)^b`` with ``a`` in {1/2, 1, 3/2, 2, 3},
   ``b`` in {0, 1}, pairwise products ``x^a y^c`` with ``a, c`` in {1, 2}, products of three;
   a constant.
3. **Sparse fit.** Forward selection of at most :data:`MAX_TERMS` terms, each step adding the
   term that most lowers the error on held-out far configurations (the farthest point of every
   sweep) of a non-negative least-squares fit in relative error; it stops when a term helps by
   less than 5%.  Each constant gets a 95% interval from a bootstrap over the design.
4. **Check.** The fitted law, with its numeric constants, is checked as an O(.) bound by the
   verdict engine.
"""
from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import sympy as sp

from .bounds import bound_value, symbols
from .claims import NotReached

__all__ = ["discover", "MAX_TERMS"]

MAX_TERMS = 4
POWERS = (Fraction(1, 2), Fraction(1), Fraction(3, 2), Fraction(2), Fraction(3))


def _design(quantity, region, opts, executor, progress=None):
    """``[(params, measured, held_out, sweep label)]``: sweeps past the nominal end, the
    diagonal."""
    from .verdict import _clean, _path

    base = region.base()
    directions = [(v,) for v in region.sweep]
    if len(region.sweep) >= 2:
        directions.append(tuple(region.sweep))
    rows = []
    mapper = executor.map if executor is not None else map
    for d in directions:
        points, axis, label, extend = _path(region, d, base, opts)
        points = points + extend(opts["extend_discover"])
        measured = list(mapper(_measure, [(quantity, _clean(p), opts["max_steps"])
                                          for p in points]))
        done = [(p, m) for p, m in zip(points, measured) if m is not None and m > 0]
        if progress:
            progress(len(points))
        far = max((axis(p) for p, _ in done), default=None)
        for p, m in done:
            rows.append((_clean(p), m, axis(p) == far, label))
    return rows


def _measure(args):
    quantity, params, max_steps = args
    try:
        return quantity(params, max_steps)
    except NotReached:
        return None


def _candidates(region, variables):
    """Candidate SymPy terms, oriented toward each variable's asymptotic end."""
    sym = symbols(variables)
    axes = {}
    for v in region.sweep:
        axes[v] = 1 / sym[v] if v in region.INVERSE else sym[v]
    out = [sp.Integer(1)]
    for x in axes.values():
        for a in POWERS:
            power = x ** sp.Rational(a.numerator, a.denominator)
            out += [power, power * sp.log(x)]
        out.append(sp.log(x))
    for x, y in itertools.combinations(axes.values(), 2):
        out += [x ** a * y ** c for a, c in itertools.product((1, 2), repeat=2)]
        out.append(x * y * sp.log(x))
    for x, y, z in itertools.combinations(axes.values(), 3):
        out += [x * y * z, x ** 2 * y * z, x * y * z * sp.log(x)]
    return out


def _nnls(A, y):
    from scipy.optimize import nnls
    W = 1 / y
    coef, _ = nnls(A * W[:, None], np.ones_like(y))
    return coef


def _error(A, y, coef):
    pred = A @ coef
    if np.any(pred <= 0):
        return math.inf
    return float(np.sqrt(np.mean((np.log(pred) - np.log(y)) ** 2)))


def discover(quantity, region, profile: str = "quick", executor=None, progress=None,
             check: bool = True, budget: float | None = None, derived=None) -> dict:
    """The law of ``quantity`` on ``region`` (see the module docstring): ``{"quantity",
    "bound", "terms", "constants", "intervals", "validation", "verdict", "derived"}``.
    ``derived``: a law derived in closed form (SymPy), reported beside the fitted one with
    measured / derived at the far end of each sweep."""
    from .verdict import PROFILES, check_bound

    opts = dict(PROFILES[profile])
    opts["extend_discover"] = 4 if profile == "quick" else 10
    rows = _design(quantity, region, opts, executor, progress)
    if len(rows) < 6:
        raise ValueError(f"only {len(rows)} configurations of {quantity.name} could be "
                         "measured; widen the region or raise the step budget")
    terms = _candidates(region, quantity.variables)
    A = np.array([[bound_value(t, p) for t in terms] for p, _, _, _ in rows])
    good = np.all(np.isfinite(A), axis=0) & np.all(A > 0, axis=0)
    terms = [t for t, g in zip(terms, good) if g]
    A = A[:, good]
    y = np.array([m for _, m, _, _ in rows], float)
    held = np.array([h for _, _, h, _ in rows])
    fit_rows = ~held if (~held).sum() >= 4 else np.ones_like(held)
    chosen: list[int] = []
    best_err = math.inf
    while len(chosen) < MAX_TERMS:
        trial = []
        for j in range(len(terms)):
            if j in chosen:
                continue
            cols = chosen + [j]
            coef = _nnls(A[fit_rows][:, cols], y[fit_rows])
            if not np.any(coef > 0):
                continue
            trial.append((_error(A[held][:, cols], y[held], coef)
                          if held.any() else _error(A[:, cols], y, coef), j))
        if not trial:
            break
        err, j = min(trial)
        if chosen and not err < 0.95 * best_err:
            break
        chosen.append(j)
        best_err = err
    coef = _nnls(A[:, chosen], y)
    keep = [(terms[j], c) for j, c in zip(chosen, coef) if c > 0]
    chosen = [j for j, c in zip(chosen, coef) if c > 0]
    coef = np.array([c for _, c in keep])
    rng = np.random.default_rng(0)
    boots = []
    for _ in range(200):
        idx = rng.integers(0, len(y), len(y))
        boots.append(_nnls(A[idx][:, chosen], y[idx]))
    boots = np.array(boots)
    intervals = [[float(np.percentile(boots[:, i], 2.5)), float(np.percentile(boots[:, i], 97.5))]
                 for i in range(len(chosen))]
    bound = sp.Add(*[sp.Float(c, 4) * t for t, c in keep])
    pred = A[:, chosen] @ coef
    rel = np.abs(pred - y) / y
    out = {"quantity": quantity.name, "bound": str(bound),
           "terms": [str(t) for t, _ in keep], "constants": [float(c) for _, c in keep],
           "intervals": intervals,
           "validation": {"heldout_max_rel_error": float(rel[held].max()) if held.any() else None,
                          "max_rel_error": float(rel.max()), "configurations": int(len(y)),
                          "heldout": int(held.sum())},
           "verdict": None, "derived": None}
    if derived is not None:
        far = [(p, m, label) for p, m, h, label in rows if h]
        out["derived"] = {"law": str(derived), "measured_over_derived_far": [
            {"sweep": label, "params": p, "ratio": m / bound_value(derived, p)}
            for p, m, label in far]}
    if check:
        v = check_bound(quantity, str(bound), region, profile, "O", executor=executor,
                        budget=budget)
        out["verdict"] = {"verdict": v.verdict, "constant": v.constant, "reason": v.reason}
    return out
