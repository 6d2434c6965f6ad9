"""The features simulator: invariants, the brute-force reference, precisions, L_k^*."""
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from icl_verifier.numerics import MP
from icl_verifier.numerics.errors import SimulationError
from icl_verifier.numerics.features import FeaturesConfig, Trajectory, loss_star, simulate, structure
from icl_verifier.numerics.kernels import use_compiled

from .reference.features import gradient_descent
from .strategies import configs


def _scale(traj):
    return max(1.0, float(np.max(np.abs(traj.logits))))


@given(configs(), st.integers(1, 25))
@example(FeaturesConfig.make(2, 1, "balanced", "4"), 3)     # N = 1: a single token
def test_conservation_and_monotone_own_weight(config, steps):
    traj = simulate(config, steps)
    Z = traj.logits
    # A_k + sum_{n != k} B_{k,n} = 0: the column sums vanish
    assert np.max(np.abs(Z.sum(axis=1))) <= 1e-12 * _scale(traj)
    A = np.diagonal(Z, axis1=1, axis2=2)
    assert np.all(np.diff(A, axis=0) >= -1e-15)


@given(configs(kinds=("balanced",)), st.integers(1, 25))
def test_balanced_off_target_weights(config, steps):
    traj = simulate(config, steps)
    K = config.K
    for k in range(K):
        A = traj.A(k)
        for n in range(K):
            if n != k:
                B = traj.B(k, n)
                assert np.max(np.abs(B + A / (K - 1))) <= 1e-13 * _scale(traj)
                assert np.all(np.diff(B) <= 1e-15)


@given(configs(kinds=("general", "imbalanced")), st.integers(1, 12), st.randoms())
def test_permutation_equivariance(config, steps, rnd):
    """Permuting the features permutes the logit matrix (ungrouped: no symmetry is assumed)."""
    perm = list(range(config.K))
    rnd.shuffle(perm)
    permuted = FeaturesConfig.make(config.K, config.N, [config.p[i] for i in perm], config.eta)
    a = simulate(config, steps, grouped=False).logits
    b = simulate(permuted, steps, grouped=False).logits
    # feature j of the permuted problem is feature perm[j] of the original
    assert np.max(np.abs(b - a[:, perm][:, :, perm])) <= 1e-12 * max(1.0, np.max(np.abs(a)))


@given(configs(), st.integers(1, 12))
def test_symmetry_reduction_changes_nothing(config, steps):
    a = simulate(config, steps, grouped=True)
    b = simulate(config, steps, grouped=False)
    for name in ("logits", "loss", "attention", "concentration"):
        assert np.max(np.abs(getattr(a, name) - getattr(b, name))) <= 1e-12, name
    assert np.allclose(a.loss_star, b.loss_star, rtol=1e-9, atol=0)


@pytest.mark.parametrize("p, N, eta, d", [
    ([Fraction(1, 2), Fraction(1, 3), Fraction(1, 6)], 4, 2.0, 5),
    ([Fraction(1, 4)] * 4, 3, 4.0, 6),
    ([Fraction(3, 5), Fraction(1, 5), Fraction(1, 5)], 5, 1.5, 4),
])
def test_against_brute_force_gd_on_explicit_matrices(p, N, eta, d):
    """Explicit d x d Q, random orthonormal features (d > K), 60 steps: logits agree to 1e-10,
    for the default method and for enumeration without grouping."""
    steps = 60
    ref = gradient_descent(p, N, eta, steps, d, seed=7)
    config = FeaturesConfig.make(len(p), N, p, eta)
    for kwargs, compiled in (({}, True), ({"method": "quadrature"}, True),
                             ({"method": "quadrature"}, False),
                             ({"method": "enumeration", "grouped": False}, True)):
        with use_compiled(compiled):
            traj = simulate(config, steps, **kwargs)
        assert np.max(np.abs(traj.logits - ref)) <= 1e-10, (kwargs, compiled)
    assert np.max(np.abs(ref[-1])) > 0.3     # the run moved far enough to mean something


def test_logits_do_not_depend_on_the_basis():
    p = [Fraction(1, 2), Fraction(1, 4), Fraction(1, 4)]
    a = gradient_descent(p, 3, 3.0, 15, d=4, seed=1)
    b = gradient_descent(p, 3, 3.0, 15, d=7, seed=2)
    assert np.max(np.abs(a - b)) <= 1e-12


def test_both_arbitrary_precision_libraries_agree():
    config = FeaturesConfig.make(3, 6, "imbalanced:0.6", "3")
    a = simulate(config, 15, every=5, backend=MP(35, "mpfr"))
    b = simulate(config, 15, every=5, backend=MP(35, "mpmath"))
    hi = MP(35)
    for name in ("logits", "loss"):
        with hi.context():
            diff = max(abs(hi.scalar(a.backend.to_str(x)) - hi.scalar(b.backend.to_str(y)))
                       for x, y in zip(np.ravel(a.exact[name]), np.ravel(b.exact[name])))
            assert diff < hi.scalar("1e-32"), name


def test_loss_star_two_features_is_closed_form():
    """K = 2: with c_k = 0 every token is the other feature, l = 1, so L_k^* = (1 - p_k)^N."""
    config = FeaturesConfig.make(2, 7, "0.3,0.7", "1")
    values, logs = loss_star(config, structure(config.p))
    assert values == pytest.approx([0.7**7, 0.3**7], rel=1e-14)
    assert logs == pytest.approx(np.log10([0.7**7, 0.3**7]), rel=1e-13)


def test_loss_star_grouped_minimum_is_the_full_minimum():
    """Imbalanced family: the minimum over group-equal logits equals the unconstrained one."""
    config = FeaturesConfig.make(4, 5, "imbalanced:0.55", "1")
    grouped = loss_star(config, structure(config.p, grouped=True))[0]
    full = loss_star(config, structure(config.p, grouped=False))[0]
    assert np.allclose(grouped[structure(config.p).col_class], full, rtol=1e-12)


def test_loss_star_is_a_lower_bound_reached_in_the_limit():
    config = FeaturesConfig.make(3, 6, "0.5,0.3,0.2", "8")
    traj = simulate(config, 400, every=50)
    gap = traj.loss - traj.loss_star[None, :]
    assert np.all(gap > 0)
    assert np.all(np.diff(gap, axis=0) < 0)


def test_loss_star_in_arbitrary_precision_survives_underflow():
    config = FeaturesConfig.make(3, 2000, "balanced", "1")
    lo = loss_star(config, structure(config.p))
    hi = loss_star(config, structure(config.p), MP(30))
    assert lo[0][0] == 0.0                                  # (2/3)^2000 underflows float64
    assert hi[1] == pytest.approx(lo[1], rel=1e-12)         # log10 does not
    assert float(str(hi[0][0]).split("e")[1]) == pytest.approx(np.floor(lo[1][0]), abs=1)


def test_overflow_names_the_step():
    config = FeaturesConfig.make(3, 5, "balanced", "1e300")
    with pytest.raises(SimulationError, match=r"^step \d+: "):
        simulate(config, 5)


@settings(max_examples=5)
@given(configs(K=(2, 4), N=(1, 6)), st.integers(0, 9), st.integers(1, 4))
def test_recorded_steps_and_round_trip(tmp_path_factory, config, steps, every):
    traj = simulate(config, steps, every=every)
    assert traj.t == sorted(set(range(0, steps + 1, every)) | {steps})
    assert np.all(traj.logits[0] == 0)
    path = tmp_path_factory.mktemp("traj") / "t.json"
    traj.save(str(path))
    back = Trajectory.load(str(path))
    for name in Trajectory.ARRAYS:
        assert np.array_equal(getattr(back, name), getattr(traj, name))
    assert back.t == traj.t


def test_arbitrary_precision_round_trip(tmp_path):
    be = MP(25)
    traj = simulate(FeaturesConfig.make(3, 4, "balanced", "2"), 5, backend=be)
    traj.save(str(tmp_path / "t.json"))
    back = Trajectory.load(str(tmp_path / "t.json"), be)
    with be.context():
        assert set(back.exact) == set(Trajectory.EXACT)
        for name in Trajectory.EXACT:
            a, b = np.ravel(traj.exact[name]), np.ravel(back.exact[name])
            assert all(abs(x - y) <= abs(x) * be.scalar("1e-24") for x, y in zip(a, b)), name


def test_simulator_uses_the_derived_gradient(monkeypatch):
    """Both exact estimators compile theory.features (the quadrature its integrand, enumeration its
    direct form): a perturbed derivation (d l_k/d A_k doubled) stops matching brute-force GD."""
    import icl_verifier.numerics.kernels as kernels
    import icl_verifier.numerics.prompts as npr
    from icl_verifier.theory import features as tf

    p = [Fraction(1, 2), Fraction(1, 3), Fraction(1, 6)]
    ref = gradient_descent(p, 4, 2.0, 30, 5, seed=7)
    config = FeaturesConfig.make(3, 4, p, 2.0)
    methods = (({"method": "quadrature"}, True), ({"method": "quadrature"}, False),
               ({"method": "enumeration", "grouped": False}, True))

    def error(kwargs, compiled):
        with use_compiled(compiled):
            return np.max(np.abs(simulate(config, 30, **kwargs).logits - ref))

    for case in methods:
        assert error(*case) <= 1e-10, case
    integrand, direct = tf.integrand, tf.direct
    monkeypatch.setattr(tf, "integrand", lambda name: (2 if name == "grad_own" else 1)
                        * integrand(name))
    monkeypatch.setattr(tf, "direct", lambda name: (2 if name == "grad_own" else 1) * direct(name))
    caches = (npr._gf_kernel, npr._direct_kernel, kernels._module)
    for cache in caches:
        cache.cache_clear()
    try:
        for case in methods:
            assert error(*case) > 1e-3, case
    finally:
        monkeypatch.undo()
        for cache in caches:
            cache.cache_clear()
