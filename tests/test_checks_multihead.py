"""multihead checks: phases, allocation and separation over Hypothesis-generated configurations
(n, H >= n, a block size per task, L); the exact verdict kinds >= and >; the CLI; the report."""
import json
import math

import numpy as np
import pytest
from hypothesis import example, given

from icl_verifier.checks.cli import main
from icl_verifier.checks.claims import Quantity
from icl_verifier.checks.multihead import CLAIMS, QUANTITIES, RESIDUAL, Region, configurations, run
from icl_verifier.numerics.multihead import MultiheadConfig, MultiheadTrajectory, reduced_loss


@given(configurations(n=(2, 3), extra=(0, 1), d=(2, 12), L=(40, 600)))
@example({"n": 2, "H": 3, "d": (4, 4), "L": 50, "init": 0.01})   # a head duplicates a task
# a duplicate head's output decays like 1/t: the velocity is still 2e-8 at t = 10^5 (not settled)
@example({"n": 3, "H": 4, "d": (8, 11, 11), "L": 40, "init": 0.01})
def test_phases_allocation_and_separation(params):
    """Warm-up, emergence and convergence in order, the warm-up slower than the emergence's peak;
    the flow at rest (M1's criterion); at the limit every active head on one task and every task
    served; one head is worse."""
    traj = run(params)
    assert traj.residual <= RESIDUAL
    assert 0 < traj.warmup < traj.emergence < traj.t[-1]
    assert traj.speed_ratio() < 1
    assert np.all(np.diff(traj.loss) <= 1e-9 * traj.loss[0])   # gradient flow: L~ never rises
    assert traj.active_share() >= 0.99
    assert traj.served == list(range(params["n"]))
    assert QUANTITIES["multihead.separation_ratio"](params) > 1
    assert QUANTITIES["multihead.optimality_ratio"](params) >= 1 - 1e-9   # the limit is a start


def test_warmup_follows_the_small_weight_blow_up():
    """Derived: du/dt = 4 d u^2 blows up at 1/(4 d u0); the 5%-of-the-fall event comes a little
    before it, the more so the smaller the 1/L term (ratios measured 0.86-0.92)."""
    for d in (4, 8, 16):
        warmup = run({"n": 2, "H": 2, "d": d, "L": 200, "init": 0.005}).warmup
        assert 0.8 < warmup * 4 * d * 0.005 < 1


def test_idle_heads_are_left_out_of_the_allocation():
    """With more heads than tasks some heads' outputs decay to 0; their key-query weights stop
    moving wherever they were, so only active heads count."""
    traj = run({"n": 2, "H": 4, "d": 4, "L": 100, "init": 0.01})
    assert not traj.active.all()
    assert traj.allocation[~traj.active].min() < 0.99     # an idle head spread over tasks
    assert traj.active_share() > 0.999


def test_region_sweeps():
    region = Region(n=(2, 3), extra=(0, 1), extra_sweep=(0, 4), sweep=("H",))
    points = region.sweep_points("H", 7)
    assert [p["H"] for p in points] == [2, 3, 4, 5, 6] and {p["n"] for p in points} == {2}
    n_points = Region(n=(2, 4), extra=(1, 1)).sweep_points("n", 7)
    assert [(p["n"], p["H"]) for p in n_points] == [(2, 3), (3, 4), (4, 5)]
    assert Region(init=(0.002, 0.05)).axis("init")[1]({"init": 0.01}) == pytest.approx(100)
    for claim in CLAIMS.values():
        assert claim.source in ("paper", "derived", "reconstructed")


# ---------------------------------------------------------------------------------------------
# the verdict's exact kinds


def _n_of(params, max_steps):
    return params["n"]


#: measured = n (a synthetic quantity with a known answer).
_N = Quantity("synthetic.n", _n_of, "n itself", ("n",))


class _Line:
    """A one-variable region: x in [lo, hi]."""

    def __init__(self, lo, hi):
        self.lo, self.hi, self.sweep = lo, hi, ()

    def strategy(self):
        from hypothesis import strategies as st
        return st.fixed_dictionaries({"n": st.floats(self.lo, self.hi)})

    def base(self):
        return {"n": (self.lo + self.hi) / 2}

    def describe(self):
        return f"n in [{self.lo}, {self.hi}]"


@pytest.mark.parametrize("kind, lo, hi, verdict", [
    ("ge", 1.0, 3.0, "consistent"), ("ge", 0.5, 3.0, "refuted"),
    ("gt", 1.5, 3.0, "consistent"), ("le", 0.0, 1.0, "consistent"),
    # on the boundary itself: the strict kinds fail, the others hold
    ("gt", 1.0, 1.0, "refuted"), ("lt", 1.0, 1.0, "refuted"),
    ("ge", 1.0, 1.0, "consistent"), ("le", 1.0, 1.0, "consistent")])
def test_exact_kinds(kind, lo, hi, verdict):
    """measured = n against the bound 1: the minimal counterexample sits on the boundary."""
    from icl_verifier.checks.verdict import check_bound

    v = check_bound(_N, "1", _Line(lo, hi), kind=kind, examples=30)
    assert v.verdict == verdict, v.reason
    if verdict == "refuted":
        m = v.counterexample["measured"]
        assert (m < 1) if kind == "ge" else (m <= 1) if kind == "gt" else (m >= 1)


# ---------------------------------------------------------------------------------------------
# command line


def test_simulate_multihead_writes_a_trajectory(tmp_path, capsys):
    out = tmp_path / "mh.json"
    assert main(["simulate", "multihead", "--n", "2", "--H", "2", "--d", "4,6", "--L", "60",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "settled at t =" in text and "wrote" in text
    traj = MultiheadTrajectory.load(str(out))
    config = MultiheadConfig.make(2, 2, "4,6", 60)
    assert traj.config["d"] == [4, 6]
    y = np.concatenate([traj.omega[-1].ravel(), traj.mu[-1].ravel()])
    assert traj.loss[-1] == pytest.approx(reduced_loss(config, y), rel=1e-12)
    assert traj.served == [0, 1] and 0 < traj.warmup < traj.emergence
    assert json.loads(out.read_text())["settled"] == traj.settled


def test_derive_multihead(capsys):
    assert main(["derive", "multihead", "--format", "text"]) == 0
    text = capsys.readouterr().out
    assert "d(q^2 - k^2)/dt = 0" in text and "E[x e^{a x}] / E[e^{a x}] = a" in text


def test_bound_on_a_multihead_quantity_names_the_variables(capsys):
    assert main(["bound", "multihead.phase_time.warmup", "--bound", "1/(K*init)"]) == 2
    assert "n, H, d, L, init" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# report


def test_report_section_writes_its_figures(tmp_path):
    from icl_verifier.checks.multihead import (EXAMPLE, OFFICIAL, official_experiment,
                                               proxy_comparison, separation_point)
    from icl_verifier.checks.report.multihead import draw
    from icl_verifier.numerics.multihead import best_loss

    small = {"n": 2, "H": 2, "d": 4, "init": 0.01}
    separation = [dict(small, L=L, **dict(zip(("single", "limit", "ratio"),
                                              separation_point(dict(small, L=L)))))
                  for L in (50, 200)]
    traj = run(EXAMPLE)
    config = MultiheadConfig.make(2, 3, 4, 50, init="0.01")
    extras = {"example": traj, "example_best": best_loss(config, starts=2)[0],
              "example_single": best_loss(config, heads=1, starts=2)[0],
              "separation": separation, "agreement": [],
              "precision": {"digits": 30, "t_end": 2.0, "max_abs": 1e-13, "max_rel": 1e-12},
              "drawn": [{"params": EXAMPLE, "warmup": traj.warmup, "emergence": traj.emergence,
                         "settled": traj.settled, "speed_ratio": traj.speed_ratio(),
                         "share": traj.active_share(), "served": 2, "separation": 1.5,
                         "t_end": traj.t[-1]}],
              "proxy": proxy_comparison(Ls=(12,)),
              "official": official_experiment(samples=64, fresh=500, setup=dict(
                  OFFICIAL, d=2, L=8, heads=(2, 1), times=(20.0, 40.0)))}
    lines = draw([], str(tmp_path), extras)
    proxy = next(line for line in lines if line.startswith("| 12 |"))
    assert proxy.count("|") == 8 and "%" in proxy
    official = [line for line in lines if line.startswith("| 2 | 0.1 |")]
    assert len(official) == 2 and "| 40 |" in official[1]    # read at both times
    assert any(line.startswith("| 0 | 40 |") for line in lines)   # single / multi at t = 40
    for name in ("multihead-loss.png", "multihead-weights.png", "multihead-allocation.png",
                 "multihead-separation.png", "multihead-phases.png"):
        assert (tmp_path / name).stat().st_size > 5000
    table = next(line for line in lines if line.startswith("| 2 | 2 | 4 |"))
    assert table.count("|") == 6                      # n, H, d and the two L columns
    assert f"{separation[1]['ratio']:.3f}" in table
    assert math.isclose(separation[0]["ratio"], separation[0]["single"] / separation[0]["limit"])


def test_pinned_counterexamples_are_always_tried():
    """A past counterexample outside what the draws reach still refutes the claim."""
    from icl_verifier.checks.verdict import check_bound

    assert check_bound(_N, "1", _Line(1.0, 3.0), kind="ge", examples=10).verdict == "consistent"
    v = check_bound(_N, "1", _Line(1.0, 3.0), kind="ge", examples=10,
                    pinned=({"n": 0.5},))
    assert v.verdict == "refuted" and v.counterexample["params"] == {"n": 0.5}


def test_the_trained_model_is_a_model_axis():
    """The same quantities on the trained model's flow: same start, its own loss; the .full claims
    carry the axis in their region."""
    from icl_verifier.checks.multihead import CLAIMS, QUANTITIES

    params = {"n": 2, "H": 2, "d": 3, "L": 12, "init": 0.01}
    reduced, full = run(params), run(dict(params, model="full"))
    assert full.config["model"].startswith("full") and reduced.config["model"] == "reduced"
    assert reduced.limit.size == full.limit.size
    assert not np.isclose(reduced.loss[-1], full.loss[-1], rtol=1e-3)   # a different loss
    assert QUANTITIES["multihead.allocation"].measure(dict(params, model="full"), 0) > 0.9
    for cid in ("M1", "M2", "M3", "M3.cover", "M4", "M5"):
        claim = CLAIMS[cid + ".full"]
        assert claim.region.model == "full" and claim.quantity is CLAIMS[cid].quantity
        assert claim.region.base()["model"] == "full"


def test_the_trained_flow_runs_past_an_idle_heads_underflow():
    """A past failure: at n = 3, H = 4, d = 6, L = 117 the idle head's output weights underflow to
    0 in log coordinates (log mu down to -2187) and SciPy's own Jacobian estimate grew its step on
    those columns until a trial point overflowed (t = 4808).  With a fixed step the flow settles,
    every task served by one active head."""
    traj = run({"n": 3, "H": 4, "d": 6, "L": 117, "init": 0.01, "model": "full"})
    assert traj.settled is not None and traj.residual <= RESIDUAL
    assert traj.mu.min() == 0.0         # the underflow did happen
    assert traj.served == [0, 1, 2] and traj.active.sum() == 3


def test_experiment_command_rejects_bad_input(tmp_path, capsys):
    from icl_verifier.checks.cli import main

    out = tmp_path / "x.json"
    assert main(["experiment", "multihead.official", "--samples", "3", "--json", str(out)]) == 2
    assert main(["experiment", "multihead.nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("icl-verify: error:") == 2 and not out.exists()
