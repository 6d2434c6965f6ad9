"""Claims, quantities, events, fits, verdicts, the bound parser and the check/bound CLI."""
import json

import numpy as np
import pytest
import sympy as sp

from icl_verifier.checks.bounds import BoundError, parse_bound
from icl_verifier.checks.cli import main
from icl_verifier.checks.executor import SerialExecutor
from icl_verifier.checks.features import (CLAIMS, EVENT_QUANTITIES, QUANTITIES, VARIABLES, Region, config_for,
                             measure_many)
from icl_verifier.checks.verdict import check_bound, fit_exponent
from icl_verifier.numerics.features import simulate
from icl_verifier.theory import features as th

PARAMS = {"K": 10, "N": 400, "eta": 2.0, "epsilon": 0.05, "p1": 0.5}   # every phase has length


# -- quantities against an independent computation from a raw trajectory -------------------------

def _first(mask, t):
    idx = np.flatnonzero(mask)
    return int(t[idx[0]]) if idx.size else None


def test_quantities_match_a_raw_trajectory():
    names = [n for n, q in EVENT_QUANTITIES.items() if q.family == "imbalanced"]
    got = measure_many(names, PARAMS)
    traj = simulate(config_for("imbalanced", PARAMS), 2000, every=1)
    t = np.array(traj.t)
    eps = PARAMS["epsilon"]
    gap = traj.loss - traj.loss_star[None, :]
    A2, B21 = traj.A(1), traj.B(1, 0)
    want = {
        "features.dominant.convergence_time": _first(gap[:, 0] <= eps, t),
        "features.under.convergence_time": _first(gap[:, 1] <= eps, t),
        "features.under.concentration_time": _first(traj.concentration[:, 1] <= eps, t),
        # phase I ends at the first step whose A_2 increment is at least the fall of B_{2,1}
        "features.under.phase_time.1": _first(np.diff(A2) >= -np.diff(B21), t[:-1]),
        "features.under.phase_time.2": _first(traj.attention[:, 1, 1] >= traj.attention[:, 0, 1], t),
        "features.under.phase_time.3": _first(traj.attention[:, 1, 1] >= 0.5, t),
    }
    assert got == want
    assert all(v is not None and v > 0 for v in want.values())


def test_balanced_quantities_match_a_raw_trajectory():
    got = measure_many(["features.balanced.convergence_time", "features.balanced.phase_time.1"],
                       PARAMS)
    traj = simulate(config_for("balanced", PARAMS), 2000, every=1)
    t = np.array(traj.t)
    assert got["features.balanced.convergence_time"] == _first(
        traj.loss[:, 0] - traj.loss_star[0] <= PARAMS["epsilon"], t)
    assert got["features.balanced.phase_time.1"] == _first(traj.attention[:, 0, 0] >= 0.5, t)


def test_events_are_located_at_the_exact_step():
    """The run stops at the event: the step before does not satisfy it."""
    name = "features.under.convergence_time"
    T = measure_many([name], PARAMS)[name]
    traj = simulate(config_for("imbalanced", PARAMS), T, every=1)
    gap = traj.loss[:, 1] - traj.loss_star[1]
    assert gap[T] <= PARAMS["epsilon"] < gap[T - 1]


# -- fits ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("exponent", [-1.0, 0.0, 0.5, 2.0])
def test_fit_recovers_a_known_exponent(exponent):
    rng = np.random.default_rng(1)
    x = np.geomspace(2, 200, 9)
    y = 3.0 * x**exponent * np.exp(rng.normal(scale=0.02, size=x.size))
    fit = fit_exponent(x, y)
    assert fit["low"] <= exponent <= fit["high"]
    assert fit["high"] - fit["low"] < 0.1


def test_fit_interval_is_wide_on_noise():
    rng = np.random.default_rng(2)
    x = np.geomspace(2, 20, 5)
    fit = fit_exponent(x, np.exp(rng.normal(scale=1.0, size=5)))
    assert fit["high"] - fit["low"] > 1.0


# -- bound parser ----------------------------------------------------------------------------------

def test_bound_parser_accepts_the_seed_bounds():
    for c in CLAIMS.values():
        assert isinstance(parse_bound(c.bound, c.quantity.variables), sp.Expr)
    assert parse_bound("K*log(K)/eta", VARIABLES).subs({sp.Symbol("K", positive=True): 2,
                                             sp.Symbol("eta", positive=True): 1}) == 2 * sp.log(2)


@pytest.mark.parametrize("text, message", [
    ("K**2 + M", "unknown name 'M'"),
    ("K*(", "malformed expression"),
    ("K +* 2", "malformed expression"),
    ("", "empty"),
    ("frob(K)", "calling 'frob' is not allowed"),
])
def test_bound_parser_errors(text, message):
    with pytest.raises(BoundError, match=message):
        parse_bound(text, VARIABLES)


@pytest.mark.parametrize("bound", ["K**2 + M", "K*("])
def test_bound_cli_errors_are_one_line(bound, capsys, tmp_path):
    out = tmp_path / "v.json"
    code = main(["bound", "features.under.convergence_time", "--bound", bound,
                 "--json", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("icl-verify: error: ") and err.count("\n") == 1
    assert not out.exists()


def test_unknown_quantity_and_claim_are_one_line(capsys):
    assert main(["bound", "features.nonsense", "--bound", "K"]) == 2
    assert main(["check", "F99"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(e.startswith("icl-verify: error: ") for e in err)


# -- verdicts --------------------------------------------------------------------------------------

def test_seed_bound_F2_is_consistent_and_a_K_log_K_bound_is_refuted(tmp_path):
    c = CLAIMS["F2"]
    # the users' quick budget (the tests' default is shorter): the far end must be reached
    ok = check_bound(c.quantity, c.bound, c.region, executor=SerialExecutor(), budget=30)
    assert ok.verdict == "consistent", ok.reason
    assert ok.constant > 0 and ok.worst is not None
    out = tmp_path / "bound.json"
    assert main(["bound", "features.under.convergence_time", "--bound",
                 "K*log(K)/eta + K*log(K/sqrt(epsilon))/(epsilon*eta)", "--executor", "serial",
                 "--budget", "30", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["verdict"] == "refuted" and "K" in data["reason"]
    assert data["exponents"]["K"]["low"] > 0.1
    assert {"verdict", "constant", "worst", "exponents"} <= set(data)


def test_seed_bound_F1_is_consistent():
    c = CLAIMS["F1"]
    v = check_bound(c.quantity, c.bound, c.region, executor=SerialExecutor())
    assert v.verdict == "consistent", v.reason


def test_false_inequality_is_shrunk_to_a_small_counterexample():
    """'The under-represented feature converges within 40 steps' is false for large K; Hypothesis
    shrinks it to the smallest K (then the smallest other values) that break it."""
    region = Region(K=(3, 30), epsilon=(0.05, 0.2), eta=(1.0, 4.0))
    v = check_bound(QUANTITIES["features.under.convergence_time"], "40", region, kind="le",
                    examples=30)
    assert v.verdict == "refuted"
    bad = v.counterexample["params"]
    assert v.counterexample["measured"] > 40
    # minimal: one less K (same other values) satisfies the inequality
    smaller = dict(bad, K=bad["K"] - 1, N=region.n_of(bad["K"] - 1))
    assert measure_many(["features.under.convergence_time"], smaller)[
        "features.under.convergence_time"] <= 40
    assert bad["K"] < 20


def test_claims_carry_sources():
    assert {c.source for c in CLAIMS.values()} <= {"paper", "derived", "reconstructed"}
    assert CLAIMS["F1"].source == "paper" and CLAIMS["F7"].source == "reconstructed"


def test_dask_executor_runs_the_sweeps():
    distributed = pytest.importorskip("distributed")
    c = CLAIMS["F1"]
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2,
                            dashboard_address=None) as client:
        v = check_bound(c.quantity, c.bound, c.region, executor=client.get_executor())
    serial = check_bound(c.quantity, c.bound, c.region, executor=SerialExecutor())
    assert v.verdict == serial.verdict
    assert [e["measured"] for e in v.evaluations] == [e["measured"] for e in serial.evaluations]


# -- mean-field closed forms -------------------------------------------------------------------------

def test_mean_field_time_solves_the_ode():
    """d t(u) / du = 1 / rate(u), and t(u0) = 0."""
    for kind in ("balanced", "dominant"):
        rate, u0 = th.mean_field_rate(kind)
        T = th.mean_field_time(kind)
        u = sp.Symbol("u", positive=True)
        vals = {sp.Symbol("K", positive=True): 7, sp.Symbol("eta", positive=True): sp.Rational(3, 2),
                sp.Symbol("p_1", positive=True): sp.Rational(2, 5)}
        for uv in (sp.Rational(1, 2), sp.Rational(9, 10)):
            lhs = sp.N(sp.diff(T, u).subs(vals).subs(u, uv))
            rhs = sp.N((1 / rate).subs(vals).subs(u, uv))
            assert abs(lhs - rhs) < 1e-12 * abs(rhs)
        assert abs(sp.N(T.subs(vals).subs(u, u0.subs(vals)))) < 1e-12


def test_mean_field_balanced_rate_matches_the_spec():
    rate, u0 = th.mean_field_rate("balanced")
    K, eta, u = sp.symbols("K eta u", positive=True)
    assert sp.simplify(rate - eta * K / (K - 1) ** 2 * u**2 * (1 - u) ** 3) == 0
    assert u0 == 1 / K
    assert sp.simplify(th.mean_field_loss() - K * (1 - u) ** 2 / (2 * (K - 1))) == 0


def test_mean_field_limit_is_approached_as_N_grows():
    names = ["features.under.phase_time.2", "features.under.convergence_time"]
    base = {"K": 8, "eta": 1.0, "epsilon": 0.05, "p1": 0.5}
    limit = measure_many(names, dict(base, N=1), method="meanfield")
    errors = []
    for N in (50, 500, 5000):
        exact = measure_many(names, dict(base, N=N))
        errors.append(max(abs(exact[n] - limit[n]) / exact[n] for n in names))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.01


def test_report_has_verdicts_figures_and_predictions(tmp_path):
    from icl_verifier.checks.report import write_report
    from icl_verifier.checks.report.features import draw
    c = CLAIMS["F1"]
    v = check_bound(c.quantity, c.bound, c.region, examples=2, executor=SerialExecutor())
    v.claim_id = "F1"
    rows = [{"quantity": "features.dominant.convergence_time", "prediction": "closed form",
             "K": 4, "N": 100, "predicted": 25.9, "measured": 27, "relative_error": 0.04}]
    path = write_report([v], {"F1": c}, str(tmp_path))
    text = open(path).read() + "\n".join(draw(str(tmp_path), rows))
    assert f"| F1 | paper | **{v.verdict}** |" in text
    assert "| features.dominant.convergence_time | closed form | 4 | 100 | 25.9 | 27 | 0.0400 |" in text
    for name in ("weights.png", "stagewise.png", "attention.png", "ratio-F1.png"):
        assert f"]({name})" in text
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_check_cli_on_a_dask_scheduler_address(tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    out = tmp_path / "verdicts.json"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        code = main(["check", "F5", "F1", "--executor", f"dask:{cluster.scheduler_address}",
                     "--json", str(out)])
    assert code == 0
    data = json.loads(out.read_text())
    assert [d["claim_id"] for d in data] == ["F5", "F1"]
    assert data[1]["exponents"] and data[1]["verdict"] in ("consistent", "refuted", "inconclusive")
    assert "F1: " in capsys.readouterr().out


def test_unreachable_dask_scheduler_is_a_one_line_error(capsys):
    pytest.importorskip("distributed")
    assert main(["check", "F1", "--executor", "dask:tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("icl-verify: error: ") and err.count("\n") == 1


def test_phase_order_fails_when_eps_exceeds_the_loss_at_the_end_of_phase_three():
    """Pinned: the F7 counterexample found by the search (reconstructed boundaries, large eps)."""
    params = {"K": 5, "N": 100, "epsilon": 0.17377394345044514, "eta": 1.0, "p1": 0.5}
    assert QUANTITIES["features.under.phase_order"](params) == 2
    assert QUANTITIES["features.under.phase_order"](dict(params, epsilon=0.02)) <= 0
