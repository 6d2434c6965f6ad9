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

from .trend import GROWTH  # noqa: E402  (an exponent above this, beyond its interval, is growth)
#: ``budget``: seconds a verdict may spend extending its sweeps past the region's nominal end
#: (``--budget`` overrides); ``extend``: at most this many points past it per sweep; ``reach``: how
#: far past the nominal end (a factor in the fitted variable) a sweep must get before growth is
#: called resolved.
PROFILES = {
    "quick": {"examples": 6, "points": 7, "max_steps": 30_000, "budget": 30.0, "extend": 10,
              "reach": 2.0},
    "thorough": {"examples": 40, "points": 11, "max_steps": 200_000, "budget": 300.0,
                 "extend": 24, "reach": 8.0},
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
    sweeps: dict = field(default_factory=dict)   # direction -> how far it went, why it stopped,
    #                                              its points and the trend decided on them

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
    """``(measured, bound, seconds)`` of one configuration (for an executor)."""
    import time

    quantity, bound, params, max_steps, positive = args
    start = time.perf_counter()
    m, b = _evaluate(quantity, parse_bound(bound, quantity.variables), params, max_steps,
                     positive)
    return m, b, time.perf_counter() - start


#: Exact inequalities ``measured REL bound``, by kind.
RELATIONS = {"le": "<=", "lt": "<", "ge": ">=", "gt": ">"}


def _excess(kind: str, m: float, b: float) -> float:
    """How far ``measured`` is on the failing side of an exact inequality (> 0 fails; = 0 fails
    a strict one)."""
    return m - b if kind in ("le", "lt") else b - m


def check_claim(claim: Claim, profile: str = "quick", examples: int | None = None,
                executor=None, progress=None, budget: float | None = None) -> Verdict:
    """The verdict on ``claim``: :func:`check_bound` on its quantity, bound, region and kind, with
    its pinned counterexamples, carrying its id, statement and source."""
    verdict = check_bound(claim.quantity, claim.bound, claim.region, profile, claim.kind,
                          examples=examples, executor=executor, progress=progress,
                          pinned=claim.pinned, budget=budget)
    verdict.claim_id, verdict.statement, verdict.source = claim.id, claim.statement, claim.source
    return verdict


def check_bound(quantity: Quantity, bound: str, region, profile: str = "quick",
                kind: str = "O", examples: int | None = None, executor=None,
                progress=None, pinned=(), budget: float | None = None) -> Verdict:
    """Check ``quantity <= C * bound`` (``kind "O"``) or the exact inequality ``quantity REL
    bound`` (``"le"``, ``"lt"``, ``"ge"``, ``"gt"``: see :data:`RELATIONS`) on ``region``.
    ``pinned``: configurations always tried first (past counterexamples), whatever the draws."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")

    opts = dict(PROFILES[profile])
    if examples is not None:
        opts["examples"] = examples
    if budget is not None:
        opts["budget"] = float(budget)
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

    # 2. sweeps of the scaling variables (and of pairs of them that the bound couples), nominal
    #    then extended past the region's end until the trend is decided or the budget is spent
    exponents, sweeps = {}, {}
    if kind == "O":
        weights, sweeps, exponents = _sweeps(quantity, bound, expr, region, opts, executor,
                                             record, evaluations)
        verdict = _decide(quantity.name, bound, kind, evaluations, exponents, failing, sweeps)
        verdict.term_weights = weights
    else:
        verdict = _decide(quantity.name, bound, kind, evaluations, exponents, failing)
    verdict.region = region.describe()
    verdict.sweeps = sweeps
    return verdict


def _directions(region, expr) -> list[tuple]:
    """The sweeps: each scaling variable alone, and each pair of them that the bound couples,
    moved together toward their asymptotic ends (a joint limit).  A pair is coupled when the bound
    does not separate into a factor of one times a factor of the other (``K^2/eta +
    K/(eps eta)`` couples K and eps, not eta: along K and 1/eta together the bound is a product
    of what each axis sweep already measures)."""
    import sympy as sp

    single = [(v,) for v in region.sweep]
    symbols = {s.name: s for s in expr.free_symbols}
    used = [v for v in region.sweep if v in symbols]
    pairs = []
    for i, a in enumerate(used):
        for b in used[i + 1:]:
            split = sp.separatevars(expr, symbols=[symbols[a], symbols[b]], dict=True)
            if not split:
                pairs.append((a, b))
    return single + pairs


def _path(region, direction, base, opts):
    """Nominal points of a direction (a variable's own sweep; several move by a common factor s
    from the centre to the nominal end of the first), and a function giving the points
    past the end: ``(points, axis(params) -> x, extend(count) -> points)``."""
    if len(direction) == 1:
        var = direction[0]
        values = region.sweep_values(var, opts["points"])
        points = []
        for value in values:
            params = region.at(dict(base), var, value)
            if params not in points:
                points.append(params)
        seen = list(values)

        def extend(count):
            new = region.extend_values(var, seen, count)
            seen.extend(new)
            return [region.at(dict(base), var, v) for v in new]
        return points, region.axis(var)[1], region.axis(var)[0], extend
    a = direction[0]
    first = region.sweep_values(a, opts["points"])
    start = base[a]
    end = min(first) if a in region.INVERSE else max(first)
    top = (start / end) if a in region.INVERSE else (end / start)
    scales = list(np.geomspace(1.0, max(top, 1.0 + 1e-9), opts["points"]))

    def at(s):
        params = dict(base)
        for var in direction:
            params = region.at(params, var, base[var] / s if var in region.INVERSE
                               else base[var] * s)
        params["_scale"] = s
        return params
    points = []
    for s in scales:
        params = at(s)
        if {k: v for k, v in params.items() if k != "_scale"} not in [
                {k: v for k, v in p.items() if k != "_scale"} for p in points]:
            points.append(params)
    ratio = max((scales[-1] / scales[0]) ** (1 / max(len(scales) - 1, 1)), 1.25)

    def extend(count):
        out = []
        for _ in range(count):
            scales.append(scales[-1] * ratio)
            out.append(at(scales[-1]))
        return out
    label = " & ".join(region.axis(v)[0] for v in direction) + " (scale)"
    return points, (lambda params: params["_scale"]), label, extend


#: Why a sweep stopped when its time ran out (the only reason a larger --budget helps).
BUDGET_SPENT = "the budget was spent"


def next_batch_seconds(seconds, batch: int, slowest: float) -> float:
    """Expected wall time of the next ``batch`` points of a sweep, run side by side: the last
    point's time ``t`` times the growth per point ``g`` (a geometric fit to the last four times,
    ``g`` clipped to [1, 4]) to the power ``batch``, and at least ``2 t``; before any point, twice
    the slowest point met.  Points further out cost more (features: about ``K^4`` a step at
    ``N = 4 K^2``), so doubling the last time can undershoot a batch by a factor 3 or more."""
    times = [s for s in seconds if s is not None and s > 0][-4:]
    if not times:
        return 2 * slowest
    if len(times) == 1:
        return 2 * times[-1]
    slope = np.polyfit(np.arange(len(times)), np.log(times), 1)[0]
    growth = min(max(math.exp(slope), 1.0), 4.0)
    return times[-1] * max(2.0, growth ** batch)


def _sweeps(quantity, bound, expr, region, opts, executor, record, evaluations):
    """Run every direction's nominal sweep (in parallel), then extend each past the nominal end
    in batches until its trend is decided, a point is not reached, or the budget is spent.
    Returns ``(term weights, sweeps, exponents)``."""
    import time

    from .trend import decide, within_error

    mapper = executor.map if executor is not None else map
    batch = max(1, getattr(executor, "_max_workers", None) or 2)
    base = region.base()
    directions = _directions(region, expr)
    paths = {d: _path(region, d, base, opts) for d in directions}
    # the variables' own sweeps run first, in parallel; a joint path's points come out of the
    # budget, after them (they are extra)
    nominal = [(d, p) for d in directions if len(d) == 1 for p in paths[d][0]]
    pending = {d: list(paths[d][0]) for d in directions if len(d) > 1}
    if not nominal and not pending:
        return None, {}, {}
    results = list(mapper(_task, [(quantity, bound, _clean(p), opts["max_steps"], True)
                                  for _, p in nominal]))
    mine = {d: [] for d in directions}
    for (d, params), (m, b, seconds) in zip(nominal, results):
        e = _record_sweep(record, evaluations, params, m, b, "sweep " + " & ".join(d), seconds)
        mine[d].append(e)
    slowest = max((e["seconds"] for d in mine for e in mine[d]), default=0.0)
    deadline = time.perf_counter() + opts["budget"]      # the budget is for going past the end

    def trend_of(d):
        """The trend against the reweighted bound and against the bound as written.  Positive
        weightings differ by constant factors, so the ratio is bounded under one iff under all:
        bounded when either is bounded at the far end; growth only when both grow (a crossover
        of two terms can look like growth under one weighting before the far end)."""
        weights, reference = _term_weights(expr, evaluations)
        axis = paths[d][1]
        rows = [e for e in mine[d] if e["measured"] is not None and e["measured"] > 0]
        xy = [(axis(e["_params"]), e["measured"] / reference(e["params"])) for e in rows]
        xs = [x for x, _ in xy]
        if len(set(xs)) < 4:
            return weights, xy, None
        ys = [y for _, y in xy]
        decision = within_error(decide(xs, ys), xs, ys, [e["error"] for e in rows],
                                [e["measured"] for e in rows])
        if weights is None:
            return weights, xy, decision
        plain = decide(xs, [e["measured"] / e["bound"] for e in rows])
        if plain["trend"] == "bounded" and decision["trend"] != "bounded":
            decision = plain | {"why": plain["why"] + " (against the bound as written)"}
        elif decision["trend"] == "growth" and plain["trend"] != "growth":
            decision = decision | {"trend": "unresolved", "why": decision["why"] + "; against "
                                   "the bound as written: " + plain["why"]}
        return weights, xy, decision

    sweeps, exponents = {}, {}
    for i, d in enumerate(directions):
        label = paths[d][2]
        first_x = [paths[d][1](e["_params"]) for e in mine[d]] + [
            paths[d][1](p) for p in pending.get(d, [])]
        nominal_end = max(first_x) if first_x else None
        stopped, decision = BUDGET_SPENT, None
        extended = 0
        while True:
            _, xy, decision = trend_of(d)
            reach = (max(x for x, _ in xy) / nominal_end) if xy and nominal_end else 1.0
            if decision is not None and decision["trend"] in ("bounded", "growth") and \
                    reach >= opts["reach"]:
                stopped = f"the trend was decided ({decision['trend']})"
                break
            if extended >= opts["extend"]:
                stopped = f"the sweep reached its {opts['extend']} points past the nominal end"
                break
            left = deadline - time.perf_counter()
            share = left / (len(directions) - i)
            guess = next_batch_seconds([e.get("seconds") for e in mine[d]], batch, slowest)
            if left <= 0 or guess > share:
                stopped = BUDGET_SPENT
                break
            waiting = pending.get(d)
            if waiting:
                new, pending[d] = waiting[:batch], waiting[batch:]
            else:
                new = paths[d][3](batch)
            if not new:
                stopped = "the variable cannot go further"
                break
            try:
                for params in new:
                    evaluate_bound(expr, _clean(params), True)
            except Exception as exc:            # the bound stops being finite out there
                stopped = f"the bound is not finite past {label} ({exc})"
                break
            try:
                out = list(mapper(_task, [(quantity, bound, _clean(p), opts["max_steps"], True)
                                          for p in new]))
            except ValueError as exc:   # past what the simulator admits (a size limit)
                if not waiting:
                    stopped = f"the simulator goes no further ({exc})"
                    break
                raise
            halt = False
            for params, (m, b, took) in zip(new, out):
                slowest = max(slowest, took)
                e = _record_sweep(record, evaluations, params, m, b,
                                  ("sweep " if waiting else "extend ") + " & ".join(d), took)
                mine[d].append(e)
                if m is None:
                    halt = True
            extended += 0 if waiting else len(new)
            if halt:
                stopped = (f"the event was not reached within {opts['max_steps']} steps at "
                           f"{label} = {paths[d][1](new[-1]):.4g}")
                _, xy, decision = trend_of(d)
                break
        key = " & ".join(d)
        xs = [x for x, _ in xy] if xy else []
        reach = (max(xs) / nominal_end) if xs and nominal_end else 1.0
        decided = "unresolved" if decision is None else decision["trend"]
        if decided in ("growth", "bounded") and reach < opts["reach"]:
            decided = "unresolved"         # decided where the theorem lives: the far end
        if len(d) > 1 and not xy:
            decided = "skipped"            # a joint path the budget left no time for
        sweeps[key] = {
            "variable": label, "nominal_end": nominal_end, "reached": max(xs) if xs else None,
            "reach": reach, "required_reach": opts["reach"], "decided": decided,
            "extended": extended, "stopped": stopped,
            "trend": None if decision is None else {
                k: decision[k] for k in ("trend", "why", "chosen", "limit", "exponent")},
            "models": None if decision is None else decision["models"],
            "points": [{"params": _clean(e["_params"]), "x": paths[d][1](e["_params"]),
                        "measured": e["measured"], "bound": e["bound"], "ratio": r,
                        "error": e.get("error"), "seconds": e.get("seconds")}
                       for e, r in zip([e for e in mine[d] if e["measured"] is not None
                                        and e["measured"] > 0], [y for _, y in xy])]}
        if decision is not None and decision["exponent"] is not None:
            fit = dict(decision["exponent"])
            fit.update(variable=label, points=[[x, y] for x, y in sorted(xy)],
                       trend=decision["trend"], far=True)
            fit["whole_range_slope"] = fit["slope"]
            exponents[key] = fit
    weights, _ = _term_weights(expr, evaluations)
    for e in evaluations:
        e.pop("_params", None)
    return weights, sweeps, exponents


def _clean(params: dict) -> dict:
    return {k: v for k, v in params.items() if not k.startswith("_")}


def _record_sweep(record, evaluations, params, m, b, probe, seconds=None):
    record(_clean(params), m, b, probe)
    e = evaluations[-1]
    e["_params"] = params
    e["seconds"] = seconds
    e["error"] = getattr(m, "error", None)
    return e


def _term_weights(expr, evaluations):
    """Non-negative weights ``c_i`` of the bound's additive terms that best explain the
    measurements (relative least squares), and the reweighted bound ``sum c_i t_i`` as a function.

    ``T = O(sum t_i)`` holds iff ``T = O(sum c_i t_i)`` for any fixed ``c_i > 0``: the growth
    test against the reweighted bound is the same claim, without the drift of the plain ratio
    across the crossover of two terms with unequal constants (say ``K^2`` and ``K/eps``).  A
    weight of 0 would drop a term and make a stronger claim, so every weight is kept above 1% of
    the largest term's typical contribution.
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
    # every weight strictly positive: T = O(sum t_i) iff T = O(sum c_i t_i) only when no c_i is 0
    # (a dropped term is a different, stronger claim); each term keeps at least 1% of the typical
    # contribution of the largest one
    typical = np.median(values, axis=0)
    floor = 0.01 * float(np.max(coeffs * typical))
    coeffs = np.maximum(coeffs, floor / typical)
    weights = {str(t): float(c) for t, c in zip(terms, coeffs)}
    return weights, lambda params: float(sum(c * evaluate_bound(t, params)
                                            for t, c in zip(terms, coeffs)))


def _decide(quantity, bound, kind, evaluations, exponents, failing, sweeps=None) -> Verdict:
    reached = [e for e in evaluations if e["ratio"] is not None]
    missing = [e for e in evaluations if e["ratio"] is None
               and not e["probe"].startswith("extend")]
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
    sweeps = sweeps or {}
    growing = [k for k, w in sweeps.items() if w["decided"] == "growth"]
    if growing:
        names = "; ".join(f"{sweeps[k]['variable']}: {sweeps[k]['trend']['why']} (to "
                          f"{sweeps[k]['reached']:.4g}, {sweeps[k]['reach']:.3g}x past the "
                          f"nominal end)" for k in growing)
        return Verdict(verdict="refuted", constant=None, **common,
                       reason=f"measured/bound grows with {names}")
    if missing:
        return Verdict(verdict="inconclusive", constant=worst["ratio"] if worst else None, **common,
                       reason=f"{len(missing)} configurations did not reach the event within "
                              "the step budget")
    unsure = [k for k, w in sweeps.items() if w["decided"] not in ("bounded", "skipped")]
    if unsure:
        names = "; ".join(
            f"{sweeps[k]['variable']}: "
            + (sweeps[k]['trend']['why'] if sweeps[k]['trend'] else "too few points")
            + (f", reached {sweeps[k]['reached']:.4g} ({sweeps[k]['reach']:.3g}x past the "
               f"nominal end, {sweeps[k]['required_reach']:g}x needed to decide), stopped "
               f"because {sweeps[k]['stopped']}"
               if sweeps[k]['reached'] is not None else "")
            for k in unsure)
        budget_bound = any(sweeps[k]["stopped"] == BUDGET_SPENT for k in unsure)
        hint = ("a larger --budget goes further" if budget_bound else
                "a larger --budget does not help: no undecided sweep stopped for lack of time")
        return Verdict(verdict="inconclusive", constant=worst["ratio"] if worst else None,
                       **common, reason=f"not decided in {names}; {hint}")
    if not sweeps:
        return Verdict(verdict="inconclusive", constant=worst["ratio"] if worst else None,
                       **common, reason="no sweep could be fitted")

    def settled(w):
        limit = w["trend"]["limit"]
        text = f"{w['variable']} (to {w['reached']:.4g}"
        if limit and limit[1] and 0 < limit[1][0] and limit[1][1] < 1.5 * limit[1][0]:
            text += f"; settles near {limit[0]:.3g} [{limit[1][0]:.3g}, {limit[1][1]:.3g}]"
        return text + ")"
    skipped = [w["variable"] for w in sweeps.values() if w["decided"] == "skipped"]
    return Verdict(verdict="consistent", constant=worst["ratio"], **common,
                   reason="measured/bound is bounded in " + ", ".join(
                       settled(w) for w in sweeps.values() if w["decided"] == "bounded")
                   + (f"; not run for lack of budget: {', '.join(skipped)}" if skipped else ""))
