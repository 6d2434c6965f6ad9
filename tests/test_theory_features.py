"""The SymPy derivation of the features setting."""
import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import example, given
from hypothesis import strategies as st

from icl_verifier.numerics import F64
from icl_verifier.numerics.prompts import _direct_kernel
from icl_verifier.theory import features as th
from icl_verifier.theory.symmetric import distinct_sum_expansion, set_partitions


def test_task_average_uses_only_two_moments():
    w = sp.symbols("w0:3")
    assert th.task_average(w[0] ** 2 + 3 * w[0] * w[1] + 5 * w[2] + 7, w) == 8
    with pytest.raises(ValueError):
        th.task_average(w[0] ** 4, w)


def test_prompt_loss_is_half_squared_distance_to_own_feature():
    size = 5
    a = th.attention_symbols(size)
    expected = sp.Rational(1, 2) * ((a[0] - 1) ** 2 + sum(x**2 for x in a[1:]))
    assert sp.expand(th.prompt_loss(size) - expected) == 0


def test_conservation_law_is_derived():
    assert th.conservation() == 0


def test_own_gradient_is_minus_two_attention_times_loss():
    ak = sp.Symbol("Attn_k", real=True)
    assert sp.simplify(th.attention_form("grad_own") + 2 * ak * th.attention_form("loss")) == 0


@pytest.mark.parametrize("name", list(th.QUANTITIES))
def test_reduction_does_not_depend_on_the_prototype_size(name):
    assert th.terms(name, others=3) == th.terms(name, others=4)


def test_set_partitions_are_counted_by_bell_numbers():
    assert [len(set_partitions(tuple(range(n)))) for n in range(6)] == [1, 1, 2, 5, 15, 52]


@given(st.lists(st.floats(-2, 2), min_size=4, max_size=7), st.integers(1, 3))
def test_moebius_expansion_gives_sums_over_distinct_indices(xs, q):
    """sum over distinct (o_1..o_q) of prod x_{o_i}^{i+1}, against the explicit loop."""
    import itertools
    direct = sum(math.prod(xs[o] ** (i + 1) for i, o in enumerate(idx))
                 for idx in itertools.permutations(range(len(xs)), q))
    via = 0.0
    for mu, blocks in distinct_sum_expansion(q):
        via += mu * math.prod(sum(x ** sum(i + 1 for i in b) for x in xs) for b in blocks)
    assert via == pytest.approx(direct, rel=1e-9, abs=1e-9)


def _prompt_loss_numeric(z, c, k):
    """Per-prompt loss from the model itself: softmax over tokens with counts c, query v_k."""
    u = c * np.exp(z - z.max())
    a = u / u.sum()
    target = np.zeros_like(a)
    target[k] = 1.0
    return 0.5 * np.sum((a - target) ** 2)


@given(st.integers(2, 6).flatmap(lambda K: st.tuples(
    st.lists(st.floats(-3, 3), min_size=K, max_size=K),
    st.lists(st.integers(0, 5), min_size=K, max_size=K))))
@example(([0.0, 0.0], [1, 0]))          # query's feature present, one other feature absent
@example(([2.5, -1.0, 0.3], [0, 2, 1]))  # query's feature absent from the prompt
def test_derived_gradient_matches_finite_differences(case):
    z, c = np.array(case[0]), np.array(case[1], dtype=float)
    if c.sum() == 0:
        c[0] = 1.0
    K, k = len(z), 0
    u = c * np.exp(z)
    D = u.sum()
    P = [np.sum(np.delete(u, 0) ** e) for e in (1, 2, 3)]
    grad = np.zeros(K)
    grad[0] = _direct_kernel("grad_own", F64)(u[0], 0.0, D, *P)
    for n in range(1, K):
        Pn = [P[e - 1] - u[n] ** e for e in (1, 2, 3)]
        grad[n] = _direct_kernel("grad_off", F64)(u[0], u[n], D, *Pn)
    h = 1e-6
    fd = np.array([(_prompt_loss_numeric(z + h * e, c, k) - _prompt_loss_numeric(z - h * e, c, k))
                   / (2 * h) for e in np.eye(K)])
    assert np.max(np.abs(grad - fd)) < 1e-8
    assert abs(grad.sum()) < 1e-14        # conservation, per prompt


def test_generating_function_integrand_has_no_prompt_length():
    """Every dependence on N sits in M_J = (N)_J phi^(N-J): the cost does not grow with N."""
    for name in th.QUANTITIES:
        assert "N" not in {str(s) for s in th.integrand(name).free_symbols}


@pytest.mark.parametrize("kind, values", [("balanced", {"K": 10, "eta": 1}),
                                          ("dominant", {"K": 10, "eta": 2, "p_1": 0.5})])
def test_leading_mean_field_time_is_the_closed_form_at_small_eps(kind, values):
    """eps t(u_eps) of the exact mean-field time tends to the derived leading law times eps."""
    import sympy as sp

    lead = th.mean_field_leading_time(kind)
    names = {str(s): s for s in lead.free_symbols}
    t = th.mean_field_time(kind)
    tsyms = {str(s): s for s in t.free_symbols}
    for eps in (1e-4, 1e-6):
        K = values["K"]
        u = 1 - math.sqrt(2 * (K - 1) * eps / K)
        exact = float(t.subs({tsyms[k]: v for k, v in values.items() if k in tsyms}
                             | {tsyms["u"]: u}))
        law = float(lead.subs({names[k]: v for k, v in values.items() if k in names}
                              | {names["epsilon"]: eps}))
        assert exact / law == pytest.approx(1, abs=50 * math.sqrt(eps))
    assert sp.simplify(th.mean_field_leading_time("balanced")
                       - (sp.Symbol("K", positive=True) - 1)
                       / (4 * sp.Symbol("epsilon", positive=True) * sp.Symbol("eta", positive=True))) == 0
