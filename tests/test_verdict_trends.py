"""The verdict at the asymptotic end, on synthetic quantities whose law is known (the engine takes
any measurable callable): what it must decide, and what it must not."""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from icl_verifier.checks.claims import Measured, Quantity, Region
from icl_verifier.checks.trend import decide, fit_models
from icl_verifier.checks.verdict import check_bound, next_batch_seconds


@dataclass(frozen=True)
class Line(Region):
    """x in [lo, hi], swept upward (its asymptotic end is large x)."""

    x: tuple = (4.0, 24.0)
    sweep: tuple = ("x",)

    def strategy(self):
        return st.fixed_dictionaries({"x": st.floats(*self.x)})

    def base(self):
        return {"x": math.sqrt(self.x[0] * self.x[1])}


def _law(name, a, b, params, max_steps):
    x = params["x"]
    return {"settle": 1 + x / (x + a),
            "log": 1 + b * math.log(x),
            "power": x ** b,
            "bounded_noise": 2 * (1 + 1e-13 * math.sin(1e3 * x)),
            "decay": a + b / x,
            "steep_then_power": x ** b * (x / (x + a)) ** 2}[name]


def _check(name, a=30.0, b=0.5, **kw):
    q = Quantity(f"synthetic.{name}", partial(_law, name, a, b), name, ("x",))
    return check_bound(q, "1", Line(), examples=3, **kw)


@pytest.mark.parametrize("name, a, b, verdict", [
    ("settle", 30.0, 0, "consistent"),       # rises across the nominal window, then settles
    ("log", 0, 0.5, "refuted"),              # grows like log x
    ("power", 0, 0.15, "refuted"),           # a small power
    ("power", 0, 0.04, "refuted"),           # a tiny power, below the 0.1 exponent threshold
    ("bounded_noise", 0, 0, "consistent"),   # bounded, with noise of the size of rounding
    ("decay", 3.0, 5.0, "consistent"),       # settles from above
    ("steep_then_power", 30.0, 0.6, "refuted"),   # slope 2 near, a steady x^0.6 far out
])
def test_synthetic_laws(name, a, b, verdict):
    v = _check(name, a, b, budget=60)
    assert v.verdict == verdict, v.reason
    sweep = v.sweeps["x"]
    assert sweep["reach"] >= 2.0 and sweep["points"], sweep["stopped"]
    if verdict == "consistent":
        assert v.constant == pytest.approx(max(p["ratio"] for p in sweep["points"] if p["ratio"])
                                           , rel=1e-9) or v.constant >= 0


def test_the_settling_ratio_would_be_refuted_on_the_nominal_window_alone():
    """What the far end is for: on x in [4, 24] alone the settling ratio looks like growth."""
    x = np.geomspace(4, 24, 7)
    assert decide(x, 1 + x / (x + 30))["trend"] == "growth"
    v = _check("settle")
    assert v.verdict == "consistent" and v.sweeps["x"]["reached"] > 48


def test_a_spent_budget_is_inconclusive_and_says_how_far():
    v = _check("settle", budget=0)
    assert v.verdict == "inconclusive"
    assert "x: " in v.reason and "a larger --budget goes further" in v.reason


def _capped(params, max_steps):
    """The settling law, from a simulator that refuses x > 30 (a size limit)."""
    if params["x"] > 30:
        raise ValueError(f"x must be at most 30, got {params['x']:.4g}")
    return _law("settle", 30.0, 0.0, params, max_steps)


def test_a_sweep_stopped_by_the_simulator_does_not_ask_for_more_budget():
    q = Quantity("synthetic.capped", _capped, "capped", ("x",))
    v = check_bound(q, "1", Line(), examples=3, budget=60)
    assert v.verdict == "inconclusive"
    assert "the simulator goes no further" in v.reason
    assert "does not help" in v.reason and "goes further" not in v.reason.split("; ")[-1]


@settings(max_examples=10, deadline=None)
@given(st.floats(0.5, 4.0), st.floats(0.05, 0.5), st.floats(1e-3, 0.05))
def test_growth_laws_are_recovered_and_bounded_ones_are_not_called_growth(c, b, noise):
    x = np.geomspace(4, 4 * 2 ** 9, 14)
    rng = np.random.default_rng(0)
    wobble = 1 + noise * rng.uniform(-1, 1, x.size) / 100
    assert decide(x, c * x ** b)["trend"] == "growth"
    bounded = decide(x, (c + 1 / x) * wobble)
    assert bounded["trend"] != "growth"
    fit = fit_models(x, c * x ** b)
    assert fit["models"]["power"]["params"]["b"] == pytest.approx(b, rel=1e-6)


def test_joint_limit_is_swept_when_the_bound_couples_two_variables():
    """measured = K / eps against K + 1/eps: bounded along each axis at the other's centre,
    unbounded along the diagonal where both grow."""
    @dataclass(frozen=True)
    class Plane(Region):
        K: tuple = (4.0, 24.0)
        e: tuple = (4.0, 24.0)
        sweep: tuple = ("K", "e")

        def strategy(self):
            return st.fixed_dictionaries({"K": st.floats(*self.K), "e": st.floats(*self.e)})

        def base(self):
            return {"K": 10.0, "e": 10.0}

    q = Quantity("synthetic.product", partial(_product), "K e", ("K", "e"))
    v = check_bound(q, "K + e", Plane(), examples=3, budget=60)
    assert v.verdict == "refuted", v.reason
    assert v.sweeps["K & e"]["decided"] == "growth"
    assert v.sweeps["K"]["decided"] == "bounded"


def _product(params, max_steps):
    return params["K"] * params["e"]


def _two_terms(params, max_steps):
    x = params["x"]
    return 3 * x ** 2 + 0.5 * x * math.log(x)


@pytest.mark.parametrize("law, terms, constants", [
    (_two_terms, {"x**2", "x*log(x)"}, {"x**2": 3.0, "x*log(x)": 0.5}),
    (partial(_law, "power", 0, 1.5), {"x**(3/2)"}, {"x**(3/2)": 1.0}),
])
def test_discover_recovers_a_synthetic_law(law, terms, constants):
    from icl_verifier.checks.discover import discover

    q = Quantity("synthetic.law", law, "a known law", ("x",))
    found = discover(q, Line(), budget=30)
    assert set(found["terms"]) == terms, found
    for term, c, (lo, hi) in zip(found["terms"], found["constants"], found["intervals"]):
        assert c == pytest.approx(constants[term], rel=1e-6)
        assert lo - 1e-9 <= constants[term] <= hi + 1e-9
    assert found["validation"]["heldout_max_rel_error"] < 1e-6
    assert found["verdict"]["verdict"] == "consistent"


def _floor_law(params, max_steps):
    """The shape of an error O(1/N + 1/sqrt(M)) at fixed N: falls a little faster than
    1/sqrt(M) on the nominal window, then settles at its 1/N floor."""
    return 0.002 + params["x"] ** -0.6


def test_a_term_the_data_do_not_need_is_not_dropped():
    """Against 1 + 1/sqrt(x), least squares on the nominal window wants a negative weight on the
    constant term (the data fall faster than 1/sqrt(x)); dropping that term would make the ratio
    grow past the window, a stronger claim than the one stated.  Every term keeps a positive
    weight, so the true O(1 + 1/sqrt(x)) is not refuted."""
    q = Quantity("synthetic.floor", _floor_law, "floor", ("x",))
    v = check_bound(q, "1 + 1/sqrt(x)", Line(), examples=3, budget=30)
    assert v.verdict == "consistent", v.reason
    assert all(w > 0 for w in v.term_weights.values())


@settings(max_examples=40, deadline=None)
@given(c0=st.floats(1e-3, 10.0), g=st.floats(1.0, 4.0), seen=st.integers(2, 8),
       batch=st.sampled_from([1, 2, 4]))
def test_the_next_batch_is_not_underestimated_when_points_cost_more_further_out(c0, g, seen,
                                                                               batch):
    """Point k of a sweep costing c0 g^k (the features sweep in K: g about 2.2 a point): the
    guess for the next batch (its slowest point, k = seen - 1 + batch) is not below its cost.
    Doubling the last time, the rule before, undershoots whenever g^batch > 2."""
    times = [c0 * g**k for k in range(seen)]
    truth = c0 * g ** (seen - 1 + batch)
    assert next_batch_seconds(times, batch, slowest=0.0) >= truth * (1 - 1e-9)


@settings(max_examples=40, deadline=None)
@given(times=st.lists(st.floats(1e-4, 1e3), min_size=1, max_size=12),
       batch=st.sampled_from([1, 2, 4]))
def test_the_next_batch_guess_is_bounded_by_the_clipped_growth(times, batch):
    """Timing noise cannot stop a sweep by itself: the guess is between twice the last time and
    4^batch times it."""
    guess = next_batch_seconds(times, batch, slowest=0.0)
    assert 2 * times[-1] * (1 - 1e-12) <= guess <= max(2.0, 4.0**batch) * times[-1] * (1 + 1e-12)
    assert next_batch_seconds([], batch, slowest=3.0) == 6.0


def _drifting(error_scale, params, max_steps):
    """A bounded ratio (1) plus a drift 0.05 x, reported with a standard error of
    ``error_scale * 0.05 x``: the shape a common-random-numbers estimate takes when its error is
    fixed in absolute terms while the bound falls (C2.mc at large N)."""
    x = params["x"]
    return Measured(1 + 0.05 * x, error_scale * 0.05 * x + 1e-12)


@pytest.mark.parametrize("error_scale, verdict", [(1e-6, "refuted"), (1.0, "inconclusive")])
def test_growth_within_the_measurements_own_error_is_not_a_refutation(error_scale, verdict):
    """The same drift is growth when the measurement resolves it, and not when its own error is
    as large as the rise."""
    q = Quantity("synthetic.drift", partial(_drifting, error_scale), "drift", ("x",))
    v = check_bound(q, "1", Line(), examples=3, budget=60)
    assert v.verdict == verdict, v.reason
    assert v.sweeps["x"]["points"][-1]["error"] == pytest.approx(
        error_scale * 0.05 * v.sweeps["x"]["points"][-1]["x"] + 1e-12)
    if verdict == "inconclusive":
        assert "within the measurement's own error" in v.reason


def test_a_measured_value_keeps_its_error_across_processes():
    import pickle
    m = pickle.loads(pickle.dumps(Measured(1.5, -0.25)))
    assert isinstance(m, Measured) and m == 1.5 and m.error == 0.25
    q = Quantity("synthetic.drift", partial(_drifting, 1.0), "drift", ("x",))
    assert q({"x": 10.0}).error == pytest.approx(0.5)
