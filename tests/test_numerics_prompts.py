"""Expectations over prompt counts: every method against enumeration."""
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, target
from hypothesis import strategies as st

from icl_verifier.numerics import F64, MP, Columns, expect
from icl_verifier.numerics.kernels import use_compiled
from icl_verifier.numerics.prompts import choose_method
from icl_verifier.theory.features import QUANTITIES

NAMES = tuple(QUANTITIES)


def _columns(p, z, be=F64):
    """Ungrouped columns: column k has atom 0 = feature k, then the others in order."""
    K = len(p)
    order = [[k] + [n for n in range(K) if n != k] for k in range(K)]
    with be.context():
        pa = np.array([[be.scalar(Fraction(p[n]).numerator) / Fraction(p[n]).denominator
                        for n in row] for row in order], dtype=object if be.is_mp else float)
        za = np.array([[be.scalar(z[n][k]) for n in row] for k, row in enumerate(order)],
                      dtype=object if be.is_mp else float)
    return Columns(z=za, p=pa, mult=np.ones((K, K), dtype=np.int64))


@st.composite
def small_problems(draw):
    K = draw(st.integers(2, 4))
    N = draw(st.integers(1, 7))
    weights = draw(st.lists(st.integers(1, 9), min_size=K, max_size=K))
    p = [Fraction(w, sum(weights)) for w in weights]
    z = draw(st.lists(st.lists(st.floats(-3, 3), min_size=K, max_size=K), min_size=K, max_size=K))
    return p, N, z


def _max_diff(a, b):
    return max(float(np.max(np.abs(np.asarray(a[q], dtype=float) - np.asarray(b[q], dtype=float))))
               for q in NAMES)


@given(small_problems())
@example(([Fraction(1, 2), Fraction(1, 2)], 1, [[0.0, 0.0], [0.0, 0.0]]))      # N = 1: (N)_2 = 0
@example(([Fraction(1, 3), Fraction(2, 3)], 2, [[3.0, -3.0], [-3.0, 3.0]]))    # (N)_3 = 0
# p_a e^{-s w_a} was once taken as p_a (expm1 + 1), which loses digits where e^{-s w} is small
@example(([Fraction(4805473, 10**7), Fraction(5194527, 10**7)], 1,
          [[0.60760258, -2.67430595], [-1.22206009, 0.03783782]]))
def test_quadrature_and_groups_match_enumeration(problem):
    """Both float64 quadratures (the compiled kernel and the numpy reference) are exact to 4e-15."""
    p, N, z = problem
    cols = _columns(p, z)
    ref = expect(cols, N, NAMES, "enumeration")
    for compiled in (True, False):
        with use_compiled(compiled):
            quad = expect(cols, N, NAMES, "quadrature")
        err = _max_diff(ref, quad)
        target(err, label=f"quadrature error (compiled={compiled})")
        assert err <= 4e-15, compiled
    groups = expect(cols, N, NAMES, "groups")
    assert _max_diff(ref, groups) <= 1e-13


@given(K=st.integers(2, 64), N=st.integers(1, 10**6), p1=st.floats(0.05, 0.95),
       spread=st.floats(0, 12), seed=st.integers(0, 2**16))
@example(K=64, N=16384, p1=0.5, spread=3.0, seed=0)     # the far end of the imbalanced sweeps
def test_compiled_kernel_matches_numpy_quadrature(K, N, p1, spread, seed):
    """Grouped imbalanced columns at any size: the compiled kernel and the numpy path agree to
    1e-13 relative on every quantity (same nodes, same formulas; only rounding differs)."""
    from icl_verifier.numerics.features import FeaturesConfig, _to_backend, structure

    struct = structure(FeaturesConfig.make(K, N, f"imbalanced:{p1!r}").p)
    z = np.random.default_rng(seed).uniform(-spread, spread, struct.shape)
    cols = Columns(z, _to_backend(struct.atom_p, F64), struct.atom_mult)
    with use_compiled(True):
        fast = expect(cols, N, NAMES, "quadrature")
    with use_compiled(False):
        ref = expect(cols, N, NAMES, "quadrature")
    for q in NAMES:
        a, b = np.asarray(fast[q]), np.asarray(ref[q])
        assert a.shape == b.shape, q
        scale = np.max(np.abs(b)) if np.any(b) else 1.0
        assert np.max(np.abs(a - b)) <= 1e-13 * scale, q


@given(small_problems(), st.integers(0, 2**32 - 1))
# a rare prompt (no token of feature 2, probability 7^-6) carries the loss of column 2: the sample
# deviation of 40 000 prompts misses it, so the test measures errors in exact deviations
@example(([Fraction(1, 7), Fraction(6, 7)], 6, [[0.0, -2.0], [0.0, 2.0]]), 0)
def test_monte_carlo_error_is_of_order_one_over_root_samples(problem, seed):
    p, N, z = problem
    cols = _columns(p, z)
    samples = 40_000
    ref = expect(cols, N, NAMES, "enumeration")
    mc = expect(cols, N, NAMES, "montecarlo", samples=samples, seed=seed)
    for q in NAMES:
        gap = np.abs(np.asarray(mc[q]) - np.asarray(ref[q]))
        assert np.all(gap <= 8 * ref[q + ".sd"] / np.sqrt(samples) + 1e-12), q


def test_enumeration_standard_deviation_is_exact():
    """Two features, N = 1: the attention on the own feature is 0 or 1 (Bernoulli(p_k))."""
    cols = _columns([Fraction(1, 4), Fraction(3, 4)], [[0.3, -0.2], [0.1, 0.4]])
    out = expect(cols, 1, ["attention_own"], "enumeration")
    assert np.allclose(out["attention_own"], [0.25, 0.75])
    assert np.allclose(out["attention_own.sd"], [np.sqrt(0.25 * 0.75)] * 2, rtol=1e-14)


def test_probabilities_that_round_above_one_stay_finite():
    """Once phi - 1 = sum p (e^{-sw} - 1) fell below -1 far out when sum p = 1 + ulp, and log1p
    gave NaN.  The window is shared by the batch: column 0 (tiny w_min) takes it far enough out
    that every e^{-sw} of column 1 underflows."""
    p = np.array([[0.5, 0.5], [0.5, 0.5 + 2.0**-52]])
    cols = Columns(z=np.array([[0.0, -30.0], [0.0, 0.0]]), p=p, mult=np.ones((2, 2), np.int64))
    quad = expect(cols, 6, NAMES, "quadrature")
    ref = expect(cols, 6, NAMES, "enumeration")
    assert all(np.all(np.isfinite(quad[q])) for q in NAMES)
    assert _max_diff(ref, quad) <= 1e-14


def test_grouped_atoms_match_single_features():
    """Imbalanced family, K = 5: atoms (own, dominant, 3 others) against five single features."""
    p = [Fraction(1, 2)] + [Fraction(1, 8)] * 4
    z = np.array([[0.7, -0.2, -0.2, -0.2, -0.2]]).T   # column of feature 0
    single = _columns(p, np.tile(z, (1, 5)))
    ref = expect(single, 6, NAMES, "enumeration")
    grouped = Columns(z=np.array([[0.7, -0.2]]), p=np.array([[0.5, 0.125]]),
                      mult=np.array([[1, 4]]))
    for method in ("quadrature", "groups", "enumeration"):
        out = expect(grouped, 6, NAMES, method)
        for q in NAMES:
            got = out[q][0] if np.ndim(out[q]) == 1 else out[q][0, 1]
            want = ref[q][0] if np.ndim(ref[q]) == 1 else ref[q][0, 1]
            assert abs(got - want) <= 1e-14, (method, q)


def test_quadrature_is_exact_at_large_N():
    """Balanced K = 8, N = 10^4: quadrature against the exact group sum (10^4 + 1 terms)."""
    grouped = Columns(z=np.array([[2.0, -2.0 / 7]]), p=np.array([[1 / 8, 1 / 8]]),
                      mult=np.array([[1, 7]]))
    quad = expect(grouped, 10_000, NAMES, "quadrature")
    exact = expect(grouped, 10_000, NAMES, "groups")
    for q in NAMES:
        assert np.max(np.abs(quad[q] - exact[q])) <= 1e-14, q


@pytest.mark.parametrize("library", ["mpfr", "mpmath"])
def test_arbitrary_precision_quadrature_matches_enumeration(library):
    be = MP(40, library)
    p = [Fraction(1, 5), Fraction(3, 10), Fraction(1, 2)]
    z = [[0.5, -1.25, 2.0], [0.0, 1.5, -0.75], [-0.5, -0.25, 1.0]]
    cols = _columns(p, z, be)
    ref = expect(cols, 5, NAMES, "enumeration", be)
    quad = expect(cols, 5, NAMES, "quadrature", be)
    with be.context():
        for q in NAMES:
            assert max(abs(x) for x in np.ravel(ref[q] - quad[q])) < be.scalar("1e-38"), q


def test_quadrature_step_calibration_at_30_digits():
    """30 digits against 45 digits on the same problem: the rule is good to 30 digits."""
    p = [Fraction(1, 10), Fraction(2, 5), Fraction(1, 2)]
    z = [[4.0, -1.0, 0.5], [-2.0, 2.0, 0.0], [-2.0, -1.0, 1.5]]
    lo, hi = MP(30), MP(45)
    a = expect(_columns(p, z, lo), 200, NAMES, "quadrature", lo)
    b = expect(_columns(p, z, hi), 200, NAMES, "quadrature", hi)
    with hi.context():
        for q in NAMES:
            err = max(abs(hi.scalar(x) - y) for x, y in zip(np.ravel(a[q]), np.ravel(b[q])))
            assert err < hi.scalar("1e-29"), q


def test_own_feature_with_zero_probability_is_the_conditional_problem():
    """p_k = 0 (the L_k^* problem): the own attention vanishes and the loss is 1/2 (1 + S2)."""
    cols = Columns(z=np.array([[0.0, 0.3, -0.3]]), p=np.array([[0.0, 0.5, 0.5]]),
                   mult=np.array([[1, 1, 1]]))
    for method in ("enumeration", "groups", "quadrature"):
        out = expect(cols, 4, NAMES, method)
        assert out["attention_own"][0] == 0
        assert out["concentration"][0] == pytest.approx(1.0, abs=1e-14)
        assert out["loss"][0] == pytest.approx(0.5 * (1 + _s2(cols, 4)), abs=1e-13)


def _s2(cols, N):
    """E[Attn_1^2 + Attn_2^2] by direct enumeration of the two-feature prompt."""
    from math import comb
    w = np.exp(cols.z[0, 1:])
    total = 0.0
    for c1 in range(N + 1):
        c = np.array([c1, N - c1])
        a = c * w / (c @ w)
        total += comb(N, c1) * 0.5**N * np.sum(a**2)
    return total


def test_auto_method_prefers_enumeration_only_for_tiny_problems():
    small = Columns(z=np.zeros((1, 2)), p=np.full((1, 2), 0.5), mult=np.ones((1, 2), int))
    big = Columns(z=np.zeros((1, 3)), p=np.array([[0.1, 0.5, 0.1]]), mult=np.array([[1, 1, 4]]))
    assert choose_method(small, 10) == "enumeration"
    assert choose_method(big, 10_000) == "quadrature"
    assert choose_method(big, 20) == "groups"
