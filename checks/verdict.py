"""Verdicts: does ``measured <= C * bound`` hold on a region, with what constant, where is it weakest?

Two probes, then a decision:

1. **Search.** Hypothesis draws configurations in the region and ``hypothesis.target`` steers it
   toward the largest ``log(measured / bound)``.  For an explicit inequality (``kind == "le"``) the
   probe asserts ``measured <= bound`` and Hypothesis shrinks a failure to a minimal counterexample.
2. **Sweep.** Each scaling variable of the region (features: K, 1/epsilon, 1/eta; classification:
   N, M, c) is varied geometrically with the others at the centre of the region; the exponent of
   ``measured / bound`` in it is the slope of a log-log least-squares fit over the larger half of
   the sweep (an O(.) claim is about the large end), with a 95% confidence interval (Student t);
   the whole-range slope is reported too.
   A bound with several additive terms is tested with its terms reweighted by non-negative least
   squares on the measurements (:func:`_term_weights`): the same O(.) claim, without the drift of
   the plain ratio where two terms with unequal constants cross over.  Sweep points run on a
   :class:`concurrent.futures.Executor` (see :mod:`checks.executor`).

The engine receives a :class:`checks.claims.Quantity` (which measures) and a
:class:`checks.claims.Region` (where), or a whole :class:`checks.claims.Claim`
(:func:`check_claim`); it knows no setting by name.

``refuted``: some exponent is positive beyond its confidence interval (the ratio grows), or an explicit
inequality fails.  ``consistent``: every exponent is at most :data:`GROWTH` within its interval; the
constant is the largest ratio met, at the worst configuration.  ``inconclusive`` otherwise, with why.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from hypothesis import HealthCheck, Phase, example, given, settings, target

from .bounds import bound_value, evaluate_bound, parse_bound
from .claims import KINDS, Claim, NotReached, Quantity

__all__ = ["Verdict", "fit_exponent", "tail_exponent", "check_bound", "check_claim", "PROFILES",
           "GROWTH", "RELATIONS"]

#: An exponent above this, beyond its confidence interval, is growth.
GROWTH = 0.1
PROFILES = {
    "quick": {"examples": 6, "points": 7, "max_steps": 30_000},
    "thorough": {"examples": 40, "points": 11, "max_steps": 200_000},
}


@dataclass
class Verdict:
    """The outcome of checking one bound on one quantity."""

    quantity: str
    bound: str
    verdict: str                      # consistent | refuted | inconclusive
    constant: float | None            # smallest C with measured <= C * bound on what was seen
    worst: dict | None                # configuration where measured / bound is largest
    exponents: dict = field(default_factory=dict)   # variable -> {slope, low, high, points}
    reason: str = ""
    counterexample: dict | None = None
    evaluations: list = field(default_factory=list)
    claim_id: str = ""
    term_weights: dict | None = None  # weights of the bound's terms in the growth test
    statement: str = ""
    source: str = ""
    region: str = ""                  # where it was checked (the region's description)

    def to_json(self) -> dict:
        return asdict(self)


def fit_exponent(x, y, confidence: float = 0.95) -> dict:
    """Slope of ``log y`` against ``log x`` by least squares, with a Student-t interval."""
    from scipy import stats

    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    if len(lx) < 3 or np.ptp(lx) == 0:
        raise ValueError("a fit needs at least three distinct points")
    res = stats.linregress(lx, ly)
    stderr = 0.0 if not np.isfinite(res.stderr) else res.stderr    # an exact line
    half = stats.t.ppf(0.5 + confidence / 2, len(lx) - 2) * stderr
    return {"slope": float(res.slope), "low": float(res.slope - half),
            "high": float(res.slope + half), "intercept": float(res.intercept),
            "points": [[float(a), float(b)] for a, b in zip(x, y)]}


def tail_exponent(points) -> dict | None:
    """:func:`fit_exponent` over the larger half of a sweep's ``(x, y)`` points (at least four;
    an O(.) claim is about the large end), with the whole-range slope and every point; None when
    the tail has fewer than three distinct x."""
    xy = sorted(points)
    tail = xy[len(xy) // 2 - 1:] if len(xy) >= 6 else xy
    if len({x for x, _ in tail}) < 3:
        return None
    fit = fit_exponent([x for x, _ in tail], [y for _, y in tail])
    whole = fit_exponent([x for x, _ in xy], [y for _, y in xy])
    fit.update(whole_range_slope=whole["slope"], points=whole["points"])
    return fit


def _evaluate(quantity: Quantity, bound_expr, params, max_steps, positive=True):
    """``(measured, bound)``; measured is None when the event was not reached.  The bound is
    evaluated first: one that is not finite (or, for O(.), not positive) stops the check."""
    b = evaluate_bound(bound_expr, params, positive)
    try:
        m = quantity(params, max_steps)
    except NotReached:
        m = None
    return m, b


def _task(args):
    quantity, bound, params, max_steps, positive = args
    return _evaluate(quantity, parse_bound(bound, quantity.variables), params, max_steps, positive)


#: Exact inequalities ``measured REL bound``, by kind.
RELATIONS = {"le": "<=", "lt": "<", "ge": ">=", "gt": ">"}


def _excess(kind: str, m: float, b: float) -> float:
    """How far ``measured`` is on the failing side of an exact inequality (> 0 fails; = 0 fails
    a strict one)."""
    return m - b if kind in ("le", "lt") else b - m


def check_claim(claim: Claim, profile: str = "quick", examples: int | None = None,
                executor=None, progress=None) -> Verdict:
    """The verdict on ``claim``: :func:`check_bound` on its quantity, bound, region and kind, with
    its pinned counterexamples, carrying its id, statement and source."""
    verdict = check_bound(claim.quantity, claim.bound, claim.region, profile, claim.kind,
                          examples=examples, executor=executor, progress=progress,
                          pinned=claim.pinned)
    verdict.claim_id, verdict.statement, verdict.source = claim.id, claim.statement, claim.source
    return verdict


def check_bound(quantity: Quantity, bound: str, region, profile: str = "quick",
                kind: str = "O", examples: int | None = None, executor=None,
                progress=None, pinned=()) -> Verdict:
    """Check ``quantity <= C * bound`` (``kind "O"``) or the exact inequality ``quantity REL
    bound`` (``"le"``, ``"lt"``, ``"ge"``, ``"gt"``: see :data:`RELATIONS`) on ``region``.
    ``pinned``: configurations always tried first (past counterexamples), whatever the draws."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")

    opts = dict(PROFILES[profile])
    if examples is not None:
        opts["examples"] = examples
    expr = parse_bound(bound, quantity.variables)
    for params in [region.base()] + [p for var in region.sweep
                                     for p in region.sweep_points(var, opts["points"])]:
        evaluate_bound(expr, params, kind == "O")     # before any work: finite (and positive)
    evaluations = []

    def record(params, m, b, where):
        ratio = None if m is None else (m / b if kind == "O" else _excess(kind, m, b))
        evaluations.append({"params": params, "measured": m, "bound": b, "ratio": ratio,
                            "probe": where})
        if progress:
            progress()
        return ratio

    # 1. search, steered toward the worst case
    failing = []

    @settings(max_examples=opts["examples"], derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate, Phase.target]
              + ([Phase.shrink] if kind != "O" else []),
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    @given(region.strategy())
    def probe(params):
        m, b = _evaluate(quantity, expr, params, opts["max_steps"], kind == "O")
        ratio = record(params, m, b, "search")
        if ratio is None:
            return
        if kind == "O":
            target(math.log(max(ratio, 1e-300)), label="log(measured/bound)")
        else:
            target(ratio, label="excess over the bound")
            if ratio > 0 or (kind in ("lt", "gt") and ratio >= 0):
                failing.append(evaluations[-1])
                raise AssertionError("inequality fails")

    for params in pinned:
        probe = example(dict(params))(probe)
    try:
        probe()
    except AssertionError:
        pass

    # 2. sweeps of the scaling variables
    exponents = {}
    if kind == "O":
        tasks = {}
        for var in region.sweep:
            pts = region.sweep_points(var, opts["points"])
            if len(pts) >= 3:
                tasks[var] = pts
        flat = [(var, p) for var, pts in tasks.items() for p in pts]
        mapper = executor.map if executor is not None else map
        results = list(mapper(_task, [(quantity, bound, p, opts["max_steps"], kind == "O")
                                      for _, p in flat]))
        for (var, params), (m, b) in zip(flat, results):
            record(params, m, b, f"sweep {var}")
        weights, reference = _term_weights(expr, evaluations)
        by_var: dict[str, list] = {}
        for e in evaluations:
            if e["probe"].startswith("sweep ") and e["measured"] is not None:
                var = e["probe"].split(" ", 1)[1]
                ref = reference(e["params"])
                if ref > 0 and e["measured"] > 0:
                    x = region.axis(var)[1](e["params"])
                    by_var.setdefault(var, []).append((x, e["measured"] / ref))
        for var, xy in by_var.items():
            fit = tail_exponent(xy)
            if fit is not None:
                fit.update(variable=region.axis(var)[0])
                exponents[var] = fit
        verdict = _decide(quantity.name, bound, kind, evaluations, exponents, failing)
        verdict.term_weights = weights
    else:
        verdict = _decide(quantity.name, bound, kind, evaluations, exponents, failing)
    verdict.region = region.describe()
    return verdict


def _term_weights(expr, evaluations):
    """Non-negative weights ``c_i`` of the bound's additive terms that best explain the
    measurements (relative least squares), and the reweighted bound ``sum c_i t_i`` as a function.

    ``T = O(sum t_i)`` holds iff ``T = O(sum c_i t_i)`` for any fixed ``c_i >= 0``, not all 0: the
    growth test against the reweighted bound is the same claim, without the drift of the plain
    ratio across the crossover of two terms with unequal constants (say ``K^2`` and ``K/eps``).
    """
    from scipy.optimize import nnls
    import sympy as sp

    terms = sp.Add.make_args(expr)
    plain = (None, lambda params: evaluate_bound(expr, params))
    rows = [e for e in evaluations if e["measured"] is not None and e["measured"] > 0]
    if len(terms) < 2 or len(rows) < len(terms) + 2:
        return plain
    values = np.array([[bound_value(t, e["params"]) for t in terms] for e in rows])
    if not np.all(values > 0):
        return plain
    measured = np.array([e["measured"] for e in rows])
    coeffs, _ = nnls(values / measured[:, None], np.ones(len(rows)))
    if not np.any(coeffs > 0):
        return plain
    weights = {str(t): float(c) for t, c in zip(terms, coeffs)}
    return weights, lambda params: float(sum(c * evaluate_bound(t, params)
                                            for t, c in zip(terms, coeffs) if c > 0))


def _decide(quantity, bound, kind, evaluations, exponents, failing) -> Verdict:
    reached = [e for e in evaluations if e["ratio"] is not None]
    missing = [e for e in evaluations if e["ratio"] is None]
    worst = max(reached, key=lambda e: e["ratio"]) if reached else None
    common = dict(quantity=quantity, bound=bound, evaluations=evaluations,
                  worst=worst["params"] if worst else None, exponents=exponents)
    if kind in RELATIONS:
        if failing:
            return Verdict(verdict="refuted", constant=None, counterexample=failing[-1], **common,
                           reason=f"measured {failing[-1]['measured']:g} is not "
                                  f"{RELATIONS[kind]} bound {failing[-1]['bound']:g} at the "
                                  "minimal counterexample")
        if missing:
            return Verdict(verdict="inconclusive", constant=None, **common,
                           reason=f"{len(missing)} configurations did not reach the events")
        return Verdict(verdict="consistent", constant=None, **common,
                       reason=f"no counterexample in {len(reached)} configurations; "
                              f"closest: measured {worst['measured']:g} against bound "
                              f"{worst['bound']:g}")
    growing = [v for v, f in exponents.items() if f["low"] > GROWTH]
    if growing:
        names = ", ".join(f"{exponents[v]['variable']} (exponent {exponents[v]['slope']:.2f}, 95% CI "
                          f"[{exponents[v]['low']:.2f}, {exponents[v]['high']:.2f}])"
                          for v in growing)
        return Verdict(verdict="refuted", constant=None, **common,
                       reason=f"measured/bound grows with {names}")
    if missing:
        return Verdict(verdict="inconclusive", constant=worst["ratio"] if worst else None, **common,
                       reason=f"{len(missing)} configurations did not reach the event within "
                              "the step budget")
    unsure = [v for v, f in exponents.items() if f["high"] > GROWTH]
    if unsure:
        names = ", ".join(f"{exponents[v]['variable']} (exponent {exponents[v]['slope']:.2f}, 95% CI "
                          f"[{exponents[v]['low']:.2f}, {exponents[v]['high']:.2f}])"
                          for v in unsure)
        return Verdict(verdict="inconclusive", constant=worst["ratio"], **common,
                       reason=f"growth cannot be excluded in {names}; widen the region or use "
                              "--profile thorough")
    if not exponents:
        return Verdict(verdict="inconclusive", constant=worst["ratio"] if worst else None,
                       **common, reason="no sweep could be fitted")
    return Verdict(verdict="consistent", constant=worst["ratio"], **common,
                   reason="measured/bound does not grow in "
                          + ", ".join(f["variable"] for f in exponents.values()))
