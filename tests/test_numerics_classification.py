"""classification: derivation, Gauss rules, estimators against each other and against a brute-force
reference, GD, the minimiser, the inference error, the command line and the checks."""
import json
import math
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from hypothesis import example, given, settings
from hypothesis import strategies as st

from icl_verifier.checks.cli import main
from icl_verifier.numerics.backend import F64, MP
from icl_verifier.numerics.classification import (ClassificationConfig, IsotropicLoss, MonteCarloLoss, Nodes,
                                     inference_error, minimiser, minimiser_gap, parse_lambda,
                                     simulate)
from icl_verifier.numerics.errors import ConfigError
from icl_verifier.numerics.gauss import rule
from icl_verifier.theory import classification as th

from .reference.classification import gradient_samples, sqrtm_spd

# ---------------------------------------------------------------------------------------------
# theory


def test_custom_functions_differentiate_like_their_definitions():
    x = sp.Symbol("x", real=True)
    for f in (th.softplus(x), th.sigmoid(x)):
        assert sp.simplify(sp.diff(f, x).rewrite(sp.exp) - sp.diff(f.rewrite(sp.exp), x)) == 0


def test_margin_coordinates_are_those_of_explicit_vectors():
    coords = th.margin_coordinates()
    alpha, c, z1, z2, q, r, N = coords["symbols"]
    rng = np.random.default_rng(3)
    vals = {alpha: 0.3, c: -0.4, z1: 0.7, z2: -1.1, r: 1.3, N: 9}
    e1, e2 = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
    mu_p = 1.3 * e1
    mu_m = 1.3 * (-0.4 * e1 + math.sqrt(1 - 0.16) * e2)
    z3 = rng.standard_normal()
    h = 0.3 * mu_p - 0.7 * mu_m + np.array([0.7, -1.1, z3]) / 3
    assert float(coords["m0"].subs(vals)) == pytest.approx(h @ mu_p, rel=1e-14)
    assert float(coords["s0^2"].subs(vals | {q: z3**2})) == pytest.approx(h @ h, rel=1e-14)


def test_bayes_and_large_n_limit_identities():
    general, linear, rest = th.bayes_log_odds()
    mp1, mp2, mm1, mm2 = sp.symbols("mp1 mp2 mm1 mm2", real=True)
    P11, P12, P22 = sp.symbols("P11 P12 P22", real=True)
    assert sp.expand(general - linear - rest) == 0
    # equal P-norms: choose P = I and mu_- a rotation of mu_+
    th_ = sp.Symbol("theta", real=True)
    rot = {P11: 1, P12: 0, P22: 1, mm1: sp.cos(th_) * mp1 - sp.sin(th_) * mp2,
           mm2: sp.sin(th_) * mp1 + sp.cos(th_) * mp2}
    assert sp.simplify(rest.subs(rot)) == 0
    assert sp.simplify(rest.subs({P11: 1, P12: 0, P22: 1, mm1: 2 * mp1, mm2: 2 * mp2})) != 0
    for c in (2, 3, 5):
        assert th.large_n_minimiser(c) == 0
    assert th.stein_identity(4)


def test_gd_rule_is_preconditioned_by_lambda_squared():
    V = th.gd_rule()
    l1, l2, eta = sp.symbols("lambda_1 lambda_2 eta", positive=True)
    g1, g2, v1, v2 = sp.symbols("g_1 g_2 v_1 v_2", real=True)
    assert V[0, 1] == 0 and V[1, 0] == 0
    assert sp.simplify(V[0, 0] - (v1 - eta * l1**2 * g1)) == 0
    assert sp.simplify(V[1, 1] - (v2 - eta * l2**2 * g2)) == 0


# ---------------------------------------------------------------------------------------------
# Gauss rules


@given(st.integers(2, 30), st.sampled_from(["hermite", "gegenbauer", "laguerre", "krawtchouk"]),
       st.fractions(Fraction(-1, 2), Fraction(5, 2), max_denominator=2))
def test_gauss_rules_integrate_low_moments(n, kind, param):
    if kind == "hermite":
        x, w = rule(kind, n, F64)
        assert (w * x**2).sum() == pytest.approx(1, rel=1e-12)
        if n >= 3:
            assert (w * x**4).sum() == pytest.approx(3, rel=1e-12)
    elif kind == "gegenbauer":
        x, w = rule(kind, n, F64, param)
        assert (w * x**2).sum() == pytest.approx(1 / (2 * float(param) + 3), rel=1e-12)
    elif kind == "laguerre":
        x, w = rule(kind, n, F64, param)      # Gamma(param + 1): mean = variance = param + 1
        assert (w * x).sum() == pytest.approx(float(param) + 1, rel=1e-12)
        assert (w * (x - float(param) - 1) ** 2).sum() == pytest.approx(float(param) + 1, rel=1e-11)
    else:
        N = n + int(2 * param)
        x, w = rule(kind, min(n, N + 1), F64, (N, Fraction(1, 2)))
        assert (w * x).sum() == pytest.approx(N / 2, rel=1e-12)
        assert (w * (x - N / 2) ** 2).sum() == pytest.approx(N / 4, rel=1e-10)
    assert w.sum() == pytest.approx(1, abs=1e-14) and np.all(w > 0)


def test_full_krawtchouk_rule_is_the_binomial_sum_and_mp_rules_match_float64():
    from scipy.stats import binom
    x, w = rule("krawtchouk", 13, F64, (12, Fraction(1, 2)))
    assert np.allclose(np.sort(x), np.arange(13), atol=1e-9)
    assert np.abs(w[np.argsort(x)] - binom.pmf(np.arange(13), 12, 0.5)).max() < 1e-15
    be = MP(40)
    xm, wm = rule("hermite", 20, be)
    with be.context():
        m6 = sum(wi * xi**6 for wi, xi in zip(wm, xm))
        assert abs(m6 - 15) < be.scalar("1e-37")
    assert np.allclose(np.sort(be.to_float(xm)), np.sort(rule("hermite", 20, F64)[0]), atol=1e-13)


# ---------------------------------------------------------------------------------------------
# configuration errors


@pytest.mark.parametrize("spec, d, message", [
    ("1,2;3,4", None, "not symmetric"),
    ("1,2;2,1", None, "not positive definite"),
    ("diag:1,0", None, "not positive definite"),
    ("1,2,3;4,5", None, "square"),
    ("identity", None, "needs the dimension d"),
    ("diag:1,x", None, "finite number"),
    ("diag:1,2", 3, "but d = 3"),
    ("diag:1,inf", None, "finite number"),
])
def test_bad_lambda_is_a_one_line_error(spec, d, message):
    with pytest.raises(ConfigError, match=message) as info:
        parse_lambda(spec, d)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kw, message", [
    ({"N": 0}, "N must be at least 1"), ({"classes": 1}, "at least 2"),
    ({"eta": "0"}, "positive finite"), ({"eta": "nan"}, "finite number"),
    ({"r": "-1"}, "positive finite"), ({"d": "1.5"}, "whole number")])
def test_bad_configuration_is_a_config_error(kw, message):
    args = {"N": 8, "d": 2, "Lambda": "identity", "classes": 2, "r": "1", "eta": "1"} | kw
    with pytest.raises(ConfigError, match=message):
        ClassificationConfig.make(**args)


def test_inference_error_needs_m_at_least_one():
    with pytest.raises(ConfigError, match="M must be at least 1"):
        inference_error(2.0, 0, 2)


# ---------------------------------------------------------------------------------------------
# estimators


@settings(max_examples=6)
@given(st.integers(8, 200), st.integers(1, 3), st.floats(0.0, 3.0))
@example(N=2, d=1, a=3.0)           # few labels, d = 1: the two-point cosine rule
@example(N=2, d=1, a=0.0)           # L = log 2 exactly: the error is round-off only
@example(N=8, d=3, a=2.5)           # short prompt, d >= 3: the chi-square rest q/N matters
def test_quadrature_agrees_with_monte_carlo_within_its_confidence_interval(N, d, a):
    L, dL, d2L = IsotropicLoss(N, d, 1)(a)
    mc = MonteCarloLoss(N, d, 2, 1, np.zeros(d, int), 200_000, seed=N * 10 + d)
    loss, grad, hess = mc.per_sample(np.array([a]))
    for value, x in ((L, loss), (dL, grad[:, 0]), (d2L, hess[:, 0, 0])):
        se = x.std(ddof=1) / math.sqrt(x.size)
        assert abs(x.mean() - float(value)) < 4.5 * se + 1e-14, (value, x.mean(), se)


@settings(max_examples=6)
@given(st.integers(1, 300), st.integers(1, 5), st.floats(0.2, 3.0))
def test_sympy_derivatives_match_finite_differences(N, d, a):
    loss = IsotropicLoss(N, d, 1)
    h = 1e-4
    L0, d1, d2 = (float(x) for x in loss(a))
    Lp, Lm = float(loss(a + h)[0]), float(loss(a - h)[0])
    assert abs((Lp - Lm) / (2 * h) - d1) < 1e-7 * max(1, abs(d1)) + 1e-9
    assert abs((Lp - 2 * L0 + Lm) / h**2 - d2) < 1e-5


def test_monte_carlo_gradient_and_hessian_are_those_of_its_own_loss():
    mc = MonteCarloLoss(16, 3, 3, 1.2, np.array([0, 1, 1]), 5_000, seed=4)
    v = np.array([0.7, 1.9])
    L, g, H = mc(v)
    h = 1e-5
    for i in range(2):
        e = np.eye(2)[i] * h
        assert (mc(v + e)[0] - mc(v - e)[0]) / (2 * h) == pytest.approx(g[i], abs=1e-8)
        assert (mc(v + e)[1] - mc(v - e)[1]) / (2 * h) == pytest.approx(H[i], abs=1e-7)


def test_quadrature_converges_under_refinement_and_mp_matches_float64():
    coarse = IsotropicLoss(20, 2, 1, nodes=Nodes(8, 8, 6, 6, 48))
    fine = IsotropicLoss(20, 2, 1, nodes=Nodes(8, 8, 6, 6, 48).refined(2))
    gap = abs(float(coarse(1.5)[1]) - float(fine(1.5)[1]))
    assert gap < 1e-6
    nodes = Nodes(6, 2, 6, 1, 24)
    be = MP(30)
    exact = IsotropicLoss(5, 1, 1, be, nodes)("1.5")
    plain = IsotropicLoss(5, 1, 1, F64, nodes)(1.5)
    err = max(abs(float(x) - y) / abs(y) for x, y in zip(exact, plain))
    assert err < 1e-13                                    # same rule: only round-off differs


@pytest.mark.parametrize("Lambda", ["2,0.6,0;0.6,1,0.3;0,0.3,0.5", "diag:1,1,3"])
def test_reduction_matches_brute_force_gradient_in_original_coordinates(Lambda):
    """W = Lambda^{-1/2} V Lambda^{-1/2}, V diagonal in the eigenbasis: the explicit gradient of
    the cross-entropy over explicit prompts is Lambda^{1/2} grad_V Lambda^{1/2} with grad_V
    diagonal (the symmetry), and grad_V's diagonal is the reduced Monte Carlo gradient."""
    cfg = ClassificationConfig.make(6, None, Lambda, 3, "1.1", "1")
    lam_vals, mult, groups = cfg.eigen()
    L = np.array(cfg.Lambda, float)
    w, U = np.linalg.eigh(L)
    v_group = np.linspace(0.8, 2.2, len(lam_vals))
    v = v_group[groups]
    inv_half = np.linalg.inv(sqrtm_spd(L))
    V = (U * v) @ U.T
    W = inv_half @ V @ inv_half
    S = 120_000
    _, grad = gradient_samples(W, L, 6, 3, 1.1, S, seed=8)
    half = sqrtm_spd(L)
    # grad_V = Lambda^{-1/2} grad_W Lambda^{-1/2}, per sample, in the eigenbasis
    gV = np.einsum("ij,sjk,kl->sil", U.T @ inv_half, grad, inv_half @ U)
    mean, se = gV.mean(axis=0), gV.std(axis=0, ddof=1) / math.sqrt(S)
    off = ~np.eye(3, dtype=bool)
    assert np.all(np.abs(mean[off]) < 4.5 * se[off])             # stays diagonal
    reduced = MonteCarloLoss(6, 3, 3, 1.1, groups, 200_000, seed=9)
    g_red, g_se = reduced(v_group)[1], reduced.stderr(v_group)[1]
    for gi in range(len(lam_vals)):
        diag = np.diag(mean)[groups == gi].sum()
        diag_se = math.sqrt((np.diag(se)[groups == gi] ** 2).sum())
        assert abs(diag - g_red[gi]) < 4.5 * math.hypot(diag_se, g_se[gi])
    assert np.allclose(half @ half, L)


# ---------------------------------------------------------------------------------------------
# GD, minimiser, inference error


def test_gd_with_a_small_step_decreases_the_loss():
    cfg = ClassificationConfig.make(6, 1, "scaled:1.5", 2, "1", "1/2")
    traj = simulate(cfg, 20, 5, nodes=Nodes(7, 2, 10, 1, 40))
    assert traj.t == [0, 5, 10, 15, 20]
    assert np.all(np.diff(traj.loss) < 0) and np.all(np.diff(traj.distance) < 0)


@settings(max_examples=5)
@given(st.integers(4, 64), st.integers(1, 3), st.floats(1.0, 4.0), st.sampled_from([1.0, 1.5]))
def test_fitted_rate_is_the_linearised_rate(N, d, eta, kappa):
    """Quadrature for d = 1, Monte Carlo (common random numbers) otherwise."""
    from icl_verifier.checks.classification import lambda_spec, predicted_rate
    cfg = ClassificationConfig.make(N, d, lambda_spec(d, kappa), 2, "1", repr(eta))
    traj = simulate(cfg, 4000, until=1e-8, samples=5_000,
                    method="quadrature" if d == 1 else "montecarlo")
    assert traj.distance[-1] <= 1e-8 * traj.distance[0]
    fit = traj.rate()
    assert fit["rho"] < 1
    assert abs(fit["rho"] - predicted_rate(traj, cfg)) < 1e-5


def test_minimiser_is_stationary_and_tends_to_two_lambda_inverse():
    gaps = []
    for N in (16, 64, 512, 4096):
        cfg = ClassificationConfig.make(N, 1, "4", 2, "1", "1")
        a, err = minimiser(cfg)
        assert abs(float(IsotropicLoss(N, 1, 1)(a)[1])) < 1e-13 and err < 1e-6
        gap, _ = minimiser_gap(cfg)
        assert gap == pytest.approx(abs(float(a) / 2 - 1) / 4, rel=1e-12)  # ||Lambda^-1|| = 1/4
        gaps.append(gap)
    assert gaps[0] > gaps[1] > gaps[2] > gaps[3]
    assert 0.8 < gaps[2] * 512 / (gaps[3] * 4096) < 1.25             # the 1/N law, roughly


def test_monte_carlo_minimiser_agrees_with_quadrature_and_is_isotropic():
    cfg = ClassificationConfig.make(64, 2, "diag:0.5,2", 2, "1", "1")
    a_q, _ = minimiser(cfg)
    a_mc, se = minimiser(cfg, method="montecarlo", samples=200_000)
    assert abs(a_mc - float(a_q)) < 4.5 * se
    _, _, groups = cfg.eigen()
    v_star = MonteCarloLoss(64, 2, 2, 1, groups, 200_000, seed=0).minimiser()
    assert np.all(np.abs(v_star - float(a_q)) < 0.05)


def test_inference_error_falls_like_one_over_root_m_at_the_bayes_limit():
    Ms = [64, 256, 1024, 4096]
    errors = [inference_error(2.0, M, 2, samples=50_000)[0] for M in Ms]
    assert all(a > b for a, b in zip(errors, errors[1:]))
    slope = np.polyfit(np.log(Ms), np.log(errors), 1)[0]
    assert -0.55 < slope < -0.45
    assert inference_error(2.0, 64, 2, samples=50_000) == inference_error(2.0, 64, 2,
                                                                          samples=50_000)


# ---------------------------------------------------------------------------------------------
# command line and checks


def test_simulate_classification_cli(tmp_path, capsys):
    out = tmp_path / "c.json"
    assert main(["simulate", "classification", "--N", "16", "--d", "1", "--eta", "4",
                 "--steps", "30", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["t"] == list(range(31)) and data["config"]["method"] == "quadrature"
    assert data["v"][0] == [0.0] and data["distance"][-1] < data["distance"][0]
    text = capsys.readouterr().out
    assert "a* =" in text and "linear rate rho" in text


def test_bound_variables_are_per_setting(capsys):
    assert main(["bound", "classification.minimiser_gap", "--bound", "K/N"]) == 2
    assert "unknown name 'K'" in capsys.readouterr().err


def test_wrong_gap_law_is_refuted_and_the_right_one_is_not():
    from icl_verifier.checks.classification import QUANTITIES, Region
    from icl_verifier.checks.verdict import check_bound
    region = Region(N=(64, 8192), M=(16, 16), d=(2, 2), sweep=("N",))
    gap = QUANTITIES["classification.minimiser_gap"]
    wrong = check_bound(gap, "1/N**2", region, examples=1)
    assert wrong.verdict == "refuted" and wrong.exponents["N"]["low"] > 0.8
    right = check_bound(gap, "1/N", region, examples=1)
    assert right.verdict == "consistent"
    assert abs(right.exponents["N"]["slope"]) < 0.1


def test_list_shows_classification_claims_with_sources(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for cid, source in (("C1", "paper"), ("C1.local", "derived"), ("C2", "reconstructed"),
                        ("C3", "reconstructed")):
        assert f"  {cid:<8} [{source}]" in out
    assert "classification.minimiser_gap" in out


def test_report_section_has_laws_figures_and_estimator_tables(tmp_path):
    from icl_verifier.checks.classification import (CLAIMS, QUANTITIES, Region, derivative_check,
                                       estimator_agreement)
    from icl_verifier.checks.report import write_report
    from icl_verifier.checks.report.classification import draw
    from icl_verifier.checks.verdict import check_bound, fit_exponent

    region = Region(N=(64, 4096), M=(16, 16), d=(1, 1), sweep=("N",))
    gap = QUANTITIES["classification.minimiser_gap"]
    v = check_bound(gap, "1/N", region, examples=1)
    v.claim_id = "C2"
    wrong = check_bound(gap, "1/N**2", region, examples=1)
    Ms = [64, 256, 1024]
    errs = [inference_error(2.0, M, 1, samples=20_000)[0] for M in Ms]
    extras = {"wrong_law": wrong,
              "trajectories": [("d = 1", simulate(ClassificationConfig.make(32, 1, eta="4"), 400,
                                                  until=1e-9))],
              "agreement": estimator_agreement(cases=((16, 1, 1.0),), samples=20_000),
              "derivatives": derivative_check(cases=((16, 1, 1.2),)),
              "limit_M": {"M": Ms, "error": errs, "fit": fit_exponent(Ms, errs)}}
    text = (open(write_report([v], {"C2": CLAIMS["C2"]}, str(tmp_path))).read()
            + "\n".join(draw([v], str(tmp_path), extras)))
    assert f"| C2 | {CLAIMS['C2'].source} | **{v.verdict}** |" in text
    assert "| C2 | classification.minimiser_gap | N | -" in text          # the raw exponent
    assert "`minimiser_gap = O(1/N^2)`, on the C2 region: **refuted**" in text
    assert "| 16 | 1 | 1.0 | L |" in text and "| 16 | 1 | 1.2 |" in text
    for name in ("classification-gd.png", "classification-laws.png", "ratio-C2.png"):
        assert f"]({name})" in text
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "weights.png" not in text                # no features section without features claims


def _gd_on_w(s, eta, steps, N=16):
    """GD on W itself, from the definition: Lambda = s I, d = 1, V = s W, so dL/dW = s L'(V) and
    V(t+1) = s W(t+1) = V(t) - eta s^2 L'(V(t)) (typed here as the independent reference)."""
    loss = IsotropicLoss(N, 1, 1)
    v, out = 0.0, [0.0]
    for _ in range(steps):
        v = v - eta * s**2 * float(loss(v, hessian=False)[1])
        out.append(v)
    return np.array(out)


def test_simulator_step_is_the_derived_gd_rule(monkeypatch):
    """The simulator's step comes from theory.classification.gd_step: it matches GD on W, and a
    perturbed derivation (twice the step) makes it fail."""
    import icl_verifier.numerics.classification as nc
    import icl_verifier.theory.classification as tc

    def run():
        config = ClassificationConfig.make(16, 1, "scaled:1.5", eta="0.5")
        return simulate(config, 6).v[:, 0]

    reference = _gd_on_w(1.5, 0.5, 6)
    assert np.max(np.abs(run() - reference)) < 1e-12
    expr, args = tc.gd_step()
    monkeypatch.setattr(tc, "gd_step", lambda: (2 * expr, args))
    nc._gd_step.cache_clear()
    try:
        assert np.max(np.abs(run() - reference)) > 1e-3
    finally:
        monkeypatch.undo()
        nc._gd_step.cache_clear()


def _mc_reference(mc, v):
    """Mean cross-entropy from its definition, log sum_k e^{logit_k} - logit_1 (scipy)."""
    from scipy.special import logsumexp

    logits = mc.U @ v
    return float(np.mean(logsumexp(logits, axis=1) - logits[:, 0]))


def test_monte_carlo_loss_is_the_derived_integrand(monkeypatch):
    """MonteCarloLoss compiles theory.classification.multiclass_integrand: its loss is the
    cross-entropy, its gradient and Hessian are the finite differences of its loss and gradient,
    and a perturbed derivation (the label's logit counted twice) makes the loss fail."""
    import icl_verifier.numerics.classification as nc
    import icl_verifier.theory.classification as tc

    mc = nc.MonteCarloLoss(16, 4, 3, 1.5, np.array([0, 0, 1, 1]), samples=4000, seed=3)
    v, h = np.array([1.2, 2.7]), 1e-5
    loss, grad, hess = mc(v)
    assert abs(loss - _mc_reference(mc, v)) < 1e-12
    for g in range(2):
        e = np.eye(2)[g] * h
        assert abs((mc(v + e)[0] - mc(v - e)[0]) / (2 * h) - grad[g]) < 1e-7
        assert np.max(np.abs((mc(v + e)[1] - mc(v - e)[1]) / (2 * h) - hess[g])) < 1e-7
    original = tc.multiclass_integrand

    def perturbed(c):
        d = dict(original(c))
        d["ell"] = d["ell"] - d["logits"][0]
        return d

    monkeypatch.setattr(tc, "multiclass_integrand", perturbed)
    nc._multiclass.cache_clear()
    try:
        assert abs(mc(v)[0] - _mc_reference(mc, v)) > 1e-3
    finally:
        monkeypatch.undo()
        nc._multiclass.cache_clear()
