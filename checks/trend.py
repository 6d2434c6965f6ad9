"""The trend of a ratio ``r(x) = measured / bound`` along a sweep, decided at the far end.

Three models compete, each fitted to the points ``(x_i, r_i)`` (x in the variable's asymptotic
direction: K, 1/epsilon, ...):

* ``bounded``: ``r = r_inf + c x^-a`` (``a`` in [0.05, 4], ``r_inf > 0``; ``c`` of either sign:
  settling from above or below);
* ``power``: ``r = A x^b``;
* ``log``: ``r = a + b log x``.

The models are fitted on the far two thirds of the sweep and chosen by their error on the
farthest points when fitted without them (hold-out), the simpler one within 10%.  The decision
(:func:`decide`):

* ``growth`` when a growth law (power or log) is chosen, the far-end exponent (log-log slope over
  the far half) is positive beyond its 95% interval, the last points keep rising, the growth does
  not slow down at the very end (the slope of the last three points, in the chosen law's
  coordinates, is at least 0.85 of that of the three before them; how steep the near half was
  does not matter: the decision is made at the far end), and either the exponent is above
  ``GROWTH`` beyond its interval or the growth law beats the bounded one by half on hold-out;
* ``bounded`` when the far-end exponent stays below ``GROWTH`` within its interval (and, if the
  ``bounded`` model is chosen, its limit ``r_inf`` is reported with an interval);
* ``unresolved`` otherwise.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["GROWTH", "fit_models", "far_exponent", "decide", "rising", "within_error"]

GROWTH = 0.1


def _log_fit(x, r):
    """Least squares of ``log r`` on ``log x``: slope, intercept, slope's standard error."""
    lx, lr = np.log(x), np.log(r)
    A = np.vstack([lx, np.ones_like(lx)]).T
    coef, *_ = np.linalg.lstsq(A, lr, rcond=None)
    resid = lr - A @ coef
    dof = max(len(lx) - 2, 1)
    s2 = float(resid @ resid) / dof
    cov = s2 * np.linalg.pinv(A.T @ A)
    return float(coef[0]), float(coef[1]), math.sqrt(max(cov[0, 0], 0.0))


def far_exponent(x, r, confidence: float = 0.95) -> dict:
    """Log-log slope of ``r`` over the far half of the sweep (at least three points), with a
    Student-t interval."""
    from scipy import stats

    x, r = np.asarray(x, float), np.asarray(r, float)
    order = np.argsort(x)
    x, r = x[order], r[order]
    k = max(3, (len(x) + 1) // 2)
    xs, rs = x[-k:], r[-k:]
    slope, intercept, se = _log_fit(xs, rs)
    half = stats.t.ppf(0.5 + confidence / 2, max(len(xs) - 2, 1)) * se
    return {"slope": slope, "low": slope - half, "high": slope + half, "intercept": intercept,
            "from": float(xs[0]), "to": float(xs[-1]), "points": int(len(xs))}


def _fit(model, x, r):
    """Parameters and a predictor of ``model`` fitted to ``(x, r)`` (relative least squares)."""
    lx = np.log(x)
    if model == "power":
        b, a, _ = _log_fit(x, r)
        return {"A": math.exp(a), "b": b}, lambda z: math.exp(a) * np.asarray(z, float) ** b
    if model == "log":
        W = 1 / r
        A = np.vstack([np.ones_like(lx), lx]).T * W[:, None]
        (a, b), *_ = np.linalg.lstsq(A, r * W, rcond=None)
        return {"a": float(a), "b": float(b)}, lambda z: a + b * np.log(np.asarray(z, float))
    best = None
    for alpha in np.geomspace(0.05, 4.0, 60):
        W = 1 / r
        A = np.vstack([np.ones_like(lx), x ** -alpha]).T * W[:, None]
        (rinf, c), *_ = np.linalg.lstsq(A, r * W, rcond=None)
        pred = rinf + c * x ** -alpha
        if rinf <= 0 or np.any(pred <= 0):
            continue
        err = float(np.sum((np.log(r) - np.log(pred)) ** 2))
        if best is None or err < best[0]:
            best = (err, float(rinf), float(c), float(alpha))
    if best is None:
        return None, None
    _, rinf, c, alpha = best
    return ({"r_inf": rinf, "c": c, "a": alpha},
            lambda z: rinf + c * np.asarray(z, float) ** -alpha)


_PARAMS = {"bounded": 3, "power": 2, "log": 2}


def fit_models(x, r, holdout: int | None = None) -> dict:
    """Each model's parameters (on all points) and hold-out error (RMS of ``log`` residuals on
    the farthest ``holdout`` points, fitted without them), and the chosen one."""
    x, r = np.asarray(x, float), np.asarray(r, float)
    order = np.argsort(x)
    x, r = x[order], r[order]
    n = len(x)
    holdout = holdout or max(2, n // 4)
    out = {}
    for model in _PARAMS:
        params, _ = _fit(model, x, r)
        if params is None:
            continue
        err = math.inf
        if n - holdout >= _PARAMS[model] + 1:
            _, predict = _fit(model, x[:-holdout], r[:-holdout])
            if predict is not None:
                pred = predict(x[-holdout:])
                if np.all(pred > 0):
                    err = float(np.sqrt(np.mean((np.log(r[-holdout:]) - np.log(pred)) ** 2)))
        out[model] = {"params": params, "heldout_error": err}
    finite = {m: v for m, v in out.items() if math.isfinite(v["heldout_error"])}
    pool = finite or out
    # smallest error; within 10% of it, the simpler model (bounded counts as simplest claim)
    best = min(v["heldout_error"] for v in pool.values()) if pool else math.inf
    near = [m for m, v in pool.items() if v["heldout_error"] <= best * 1.1 + 1e-12]
    chosen = min(near, key=lambda m: (_PARAMS[m] if m != "bounded" else 0, m)) if near else None
    return {"models": out, "chosen": chosen}


def rising(r, last: int = 3, tolerance: float = 1e-9) -> bool:
    """The last ``last`` points increase (each by more than ``tolerance`` relative)."""
    tail = list(r)[-last:]
    return len(tail) == last and all(b > a * (1 + tolerance) for a, b in zip(tail, tail[1:]))


def _limit_interval(x, r, params):
    """A rough 95% interval of ``r_inf``: the spread of the bounded fit over the far points
    dropped one at a time (jackknife)."""
    values = []
    for i in range(len(x)):
        keep = np.arange(len(x)) != i
        p, _ = _fit("bounded", x[keep], r[keep])
        if p is not None:
            values.append(p["r_inf"])
    if len(values) < 3:
        return None
    v = np.array(values)
    n = len(v)
    se = math.sqrt((n - 1) / n * float(np.sum((v - v.mean()) ** 2)))
    return [params["r_inf"] - 1.96 * se, params["r_inf"] + 1.96 * se]


def near_exponent(x, r) -> float:
    """Log-log slope over the near half of the sweep (for the deceleration test)."""
    x, r = np.asarray(x, float), np.asarray(r, float)
    order = np.argsort(x)
    k = max(3, (len(x) + 1) // 2)
    return _log_fit(x[order][:k], r[order][:k])[0]


def decide(x, r) -> dict:
    """``{"trend": growth | bounded | unresolved, "exponent": far_exponent, "models": ...,
    "chosen": ..., "limit": [r_inf, [lo, hi]] or None, "why": text}``."""
    x, r = np.asarray(x, float), np.asarray(r, float)
    order = np.argsort(x)
    x, r = x[order], r[order]
    if len(x) < 4 or np.ptp(np.log(x)) == 0:
        return {"trend": "unresolved", "exponent": None, "models": {}, "chosen": None,
                "limit": None, "why": "fewer than four distinct points"}
    exp = far_exponent(x, r)
    near = near_exponent(x, r)
    far = max(5, (2 * len(x)) // 3)             # the laws compete on the far two thirds
    fits = fit_models(x[-far:], r[-far:])
    models, chosen = fits["models"], fits["chosen"]
    out = {"exponent": exp, "near_slope": near, "models": models, "chosen": chosen,
           "limit": None}
    up = rising(r)
    last = _log_fit(x[-3:], r[-3:])[0]          # the slope at the very end (point estimate)
    out["last_slope"] = last
    bounded_err = models.get("bounded", {}).get("heldout_error", math.inf)
    growth_model = chosen in ("power", "log") and \
        models[chosen]["heldout_error"] <= 0.5 * bounded_err
    span = f"{exp['slope']:.2f} [{exp['low']:.2f}, {exp['high']:.2f}]"
    if up and exp["low"] > 0 and chosen in ("power", "log"):
        # growth that does not slow down, in the chosen law's own coordinates (log-log slope for
        # a power, slope in log x for a log law): the slope of the last three points against
        # that of the three before them (a ratio on its way to a limit flattens toward the end)
        if chosen == "power":
            before = _log_fit(x[-5:-2], r[-5:-2])[0] if len(x) >= 5 else exp["slope"]
            steady = last >= 0.85 * before
        else:
            slope = lambda a, b: float(np.polyfit(np.log(a), b, 1)[0])  # noqa: E731
            before = slope(x[-5:-2], r[-5:-2]) if len(x) >= 5 else slope(x, r)
            steady = slope(x[-3:], r[-3:]) >= 0.85 * before
        out["steady"] = bool(steady)
        if steady and (exp["low"] > GROWTH or growth_model):
            law = (f"x^{models['power']['params']['b']:.3g}" if chosen == "power" else
                   f"{models['log']['params']['b']:.3g} log x")
            return out | {"trend": "growth", "why": f"grows like {law} (far-end exponent {span}, "
                          f"as steep at the very end; hold-out error "
                          f"{models[chosen]['heldout_error']:.2g} against {bounded_err:.2g} for a "
                          f"bounded law) and the last points keep rising"}
    if exp["high"] <= GROWTH:
        if "bounded" in models:
            p = models["bounded"]["params"]
            out["limit"] = [p["r_inf"], _limit_interval(x[-far:], r[-far:], p)]
        return out | {"trend": "bounded", "why": f"the far-end exponent is {span}"}
    return out | {"trend": "unresolved", "why": f"the far-end exponent is {span}"
                  + (f", down from {near:.2f} nearer in" if exp["slope"] < 0.7 * near else "")
                  + (f", {last:.2f} at the very end" if last < 0.85 * exp["slope"] else "")
                  + (", still rising" if up else "")}


def within_error(decision: dict, x, r, errors, measured, sigmas: float = 2.0) -> dict:
    """``decision`` with growth withdrawn (``unresolved``) when the ratio's rise over the far
    third of the sweep, ``r_last - r_first``, is within ``sigmas`` combined standard errors of the
    two measurements (``error / measured`` relative, as independent): a rise the measurement
    cannot resolve is not growth.  Points without an error are exact."""
    if decision.get("trend") != "growth":
        return decision
    rows = sorted((xi, ri, (ei or 0.0) / mi * ri if mi else 0.0)
                  for xi, ri, ei, mi in zip(x, r, errors, measured))
    far = rows[-max(3, len(rows) // 3):]
    (_, r0, e0), (_, r1, e1) = far[0], far[-1]
    noise = sigmas * math.hypot(e0, e1)
    if r1 - r0 > noise:
        return decision
    return decision | {"trend": "unresolved", "why": decision["why"] + (
        f"; but its rise over the far end ({r0:.4g} -> {r1:.4g}) is within the measurement's own "
        f"error (+- {noise:.2g}, {sigmas:g} standard errors)")}
