"""multihead: the SymPy steps of the large-L reduction and the gradient flows derived from it."""
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from icl_verifier.theory import multihead as th


def test_gaussian_steps_of_the_reduction():
    assert th.gaussian_tilt() == sp.Symbol("a", real=True)
    a, b = sp.symbols("a b", real=True)
    assert sp.simplify(th.gaussian_mgf_ratio() - a * b) == 0
    value, s = th.chi_square_mgf()
    assert sp.simplify(value - 1 / sp.sqrt(s)) == 0


def test_reduced_loss_limits():
    omega, mu, d, sigma, L = th.symbols(2, 3)
    loss = th.reduced_loss(2, 3)
    zero_out = {m: 0 for row in mu for m in row}
    assert sp.simplify(loss.subs(zero_out) - (d[0] + d[1])) == 0       # predict 0: E y^2 = d_i
    # L -> oo: only the bias remains, zero when c_i = 1
    bias = sp.limit(loss.subs({o: sp.Rational(1, 5) for row in omega for o in row}), L, sp.oo)
    ones = {m: sp.Rational(5, 3) for row in mu for m in row}          # c_i = 3 * 5/3 * 1/5 = 1
    assert sp.simplify(bias.subs(ones)) == 0


@settings(max_examples=10)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_merged_flow_is_minus_the_gradient(n, H, seed):
    omega, mu, d, sigma, L = th.symbols(n, H)
    loss = th.reduced_loss(n, H)
    flow = th.merged_flow(n, H)
    variables = [v for row in omega + mu for v in row]
    rng = np.random.default_rng(seed)
    point = {v: float(x) for v, x in zip(variables, rng.uniform(-0.3, 0.3, len(variables)))}
    fixed = {x: 4.0 for x in d} | {sigma: 0.5, L: 50.0}
    f = sp.lambdify(variables, loss.subs(fixed))
    x0 = np.array([point[v] for v in variables])
    h = 1e-6
    for j, v in enumerate(variables):
        e = np.eye(len(variables))[j] * h
        fd = (f(*(x0 + e)) - f(*(x0 - e))) / (2 * h)
        assert float(flow[v].subs(fixed).subs(point)) == pytest.approx(-fd, rel=1e-6, abs=1e-8)


def test_balanced_flow_scales_by_twice_the_magnitude_and_keeps_balance():
    assert th.balance_invariant() == 0
    merged, balanced = th.merged_flow(2, 2), th.balanced_flow(2, 2)
    assert set(balanced) == set(merged)
    # explicit flow on q, k with q = +-k for a loss G(omega): d(qk)/dt against the formula
    for q, k in ((0.5, 0.5), (0.4, -0.4)):
        grad = 2 * (q * k - 0.3)                           # G(w) = (w - 0.3)^2
        d_omega = k * (-k * grad) + q * (-q * grad)
        assert d_omega == pytest.approx(2 * abs(q * k) * -grad, rel=1e-15)
    omega, mu, d, sigma, L = th.symbols(2, 2)
    point = {v: 0.1 * (j + 1) * (-1) ** j for j, v in enumerate(
        [v for row in omega + mu for v in row])} | {x: 3 for x in d} | {sigma: 0, L: 20}
    w = omega[1][0]
    assert float(balanced[w].subs(point)) == pytest.approx(
        2 * abs(point[w]) * float(merged[w].subs(point)), rel=1e-12)
