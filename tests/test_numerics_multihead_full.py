"""multihead, the trained model at finite L: the reduction, the kept form, the training rules."""
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from icl_verifier.numerics.errors import ConfigError
from icl_verifier.numerics.multihead_full import (ELBOW, FIRST_LR, MAX_LR, SCALE, FullConfig,
                                                  FullTrajectory, draw, initial_factors,
                                                  loss_and_gradient, train)
from icl_verifier.theory import multihead as th

from .reference.multihead import mean_gradients


def _point(H, n, seed):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.05, 0.6, (H, n)), rng.uniform(0.2, 1.5, (H, n))


def test_prompt_reduction_is_derived():
    general, (S, Q, r, d, sigma) = th.prompt_reduction()
    assert general == (S - r) ** 2 + (d - 1 + sigma**2) * Q


@pytest.mark.parametrize("n, H, d, L, sigma", [(2, 2, (3, 2), 7, 0.0), (3, 2, (2, 2, 3), 12, 0.5),
                                               (1, 3, (4,), 5, 0.0)])
def test_reduced_loss_and_gradient_match_explicit_matrices(n, H, d, L, sigma):
    """The loss over (u, r) and its SymPy gradient against explicit prompts and the chain rule in
    W_h, U_h at a spectral point (dL/dW_jj = G_w/d_b on block b, dL/dU_h[i, d_x+i] = G_u): within
    4.5 combined standard errors; and every entry outside the spectral form has zero mean gradient
    within 4.5 of its standard errors (the form is kept)."""
    omega, mu = _point(H, n, seed=n + H)
    cfg = FullConfig.make(n, H, ",".join(map(str, d)), L, sigma=str(sigma), samples=16,
                          init_scheme="small")
    sample = draw(n, d, L, 60_000, "mc", seed=3)
    loss, Gw, Gu, per = loss_and_gradient(cfg, omega, mu, sample, per_prompt=True)
    ref = mean_gradients(omega, mu, d, L, 60_000, sigma, seed=4)
    dx = sum(d)
    block = np.repeat(np.arange(n), d)
    se_loss = per.std() / np.sqrt(len(per))
    assert abs(loss - ref["loss"][0]) <= 4.5 * np.hypot(se_loss, ref["loss"][1])
    mW, sW = ref["W"]
    mU, sU = ref["U"]
    inform_W = np.zeros(mW.shape, bool)
    inform_U = np.zeros(mU.shape, bool)
    for h in range(H):
        for j in range(dx):
            inform_W[h, j, j] = True
        for i in range(n):
            inform_U[h, i, dx + i] = True
    # in the form: the derived gradient (a separate sample, so its own error is small but not 0)
    for h in range(H):
        for j in range(dx):
            b = block[j]
            assert abs(mW[h, j, j] - Gw[h, b] / d[b]) <= 4.5 * sW[h, j, j] + 0.02 * abs(Gw[h, b]
                                                                                       / d[b])
        for i in range(n):
            assert abs(mU[h, i, dx + i] - Gu[h, i]) <= 4.5 * sU[h, i, dx + i] + 0.02 * abs(Gu[h, i])
    # outside the form: zero mean (entries that are exactly 0, the label columns of W, included)
    zW = np.abs(mW[~inform_W]) / np.maximum(sW[~inform_W], 1e-300)
    zU = np.abs(mU[~inform_U]) / np.maximum(sU[~inform_U], 1e-300)
    assert zW.max() <= 4.5 and zU.max() <= 4.5
    assert np.max(np.abs(mW[inform_W])) > 10 * np.max(sW[inform_W])   # the test has power


def test_compiled_kernel_matches_numpy_lambdify():
    omega, mu = _point(3, 2, seed=1)
    cfg = FullConfig.make(2, 3, "2,3", 9, samples=16, init_scheme="small")
    sample = draw(2, (2, 3), 9, 3000, "qmc", seed=0)
    a = loss_and_gradient(cfg, omega, mu, sample, compiled=True)
    b = loss_and_gradient(cfg, omega, mu, sample, compiled=False)
    for x, y in zip(a, b):
        assert np.max(np.abs(np.asarray(x) - np.asarray(y))) <= 1e-12 * max(1, np.max(np.abs(y)))


def _gradient_in_child(args):
    cfg, omega, mu, sample = args
    return loss_and_gradient(cfg, omega, mu, sample)


def test_the_parallel_kernel_survives_a_fork():
    """Sweeps fork worker processes after this process has run the parallel kernel (a past
    failure: GNU OpenMP terminated every forked worker, and M4.full died with a broken pool)."""
    import concurrent.futures as cf
    import multiprocessing as mp

    omega, mu = _point(2, 2, seed=3)
    cfg = FullConfig.make(2, 2, "3,3", 7, samples=16, init_scheme="small")
    sample = draw(2, (3, 3), 7, 256, "qmc", seed=0)
    here = loss_and_gradient(cfg, omega, mu, sample)
    with cf.ProcessPoolExecutor(1, mp_context=mp.get_context("fork")) as pool:
        there = pool.submit(_gradient_in_child, (cfg, omega, mu, sample)).result(timeout=120)
    for x, y in zip(here, there):
        assert np.array_equal(np.asarray(x), np.asarray(y))


def test_perturbed_derivation_changes_the_gradient(monkeypatch):
    """The simulator's gradient is the derivation's: doubling d loss/d mu in theory changes it."""
    import icl_verifier.numerics.multihead_full as mf
    omega, mu = _point(2, 2, seed=5)
    cfg = FullConfig.make(2, 2, 3, 6, samples=16, init_scheme="small")
    sample = draw(2, (3, 3), 6, 500, "mc", seed=0)
    _, _, Gu = loss_and_gradient(cfg, omega, mu, sample)
    grads = th.finite_gradient(2, 2)
    doubled = {v: (2 if v.name.startswith("mu") else 1) * g for v, g in grads.items()}
    monkeypatch.setattr(th, "finite_gradient", lambda n, H: doubled)
    for cache in (mf._expressions, mf._kernel, mf._numpy):
        cache.cache_clear()
    try:
        _, _, Gu2 = loss_and_gradient(cfg, omega, mu, sample)
        assert np.allclose(Gu2, 2 * Gu, rtol=1e-12)
    finally:
        monkeypatch.undo()
        for cache in (mf._expressions, mf._kernel, mf._numpy):
            cache.cache_clear()


def test_factored_flow_conserves_the_balance():
    grads, invariants, _ = th.factored_gradients()
    assert invariants == (0, 0)


@settings(max_examples=6, deadline=None)
@given(eps=st.sampled_from(["0", "0.1", "0.3"]), schedule=st.sampled_from(["flow", "elbow"]))
@example(eps="0", schedule="flow")
def test_training_keeps_the_invariants_and_the_schedule(eps, schedule):
    """The run starts at the configured factors; the elbow schedule takes step t's rate from step
    t-1's largest gradient entry (constant steps otherwise); t is the cumulative learning rate; a
    balanced start keeps every sign (a GD step multiplies q^2 - k^2 by 1 - lr^2 g^2, so 0 stays 0)."""
    cfg = FullConfig.make(2, 2, 3, 10, init_scheme="official", imbalance=eps, schedule=schedule,
                          lr="0.05", samples=256, sampler="mc")
    traj = train(cfg, 30.0, final_samples=500)
    q, k, o, v = initial_factors(cfg)
    assert np.allclose(traj.omega[0], q * k / cfg.scale) and np.allclose(traj.mu[0], o * v)
    if schedule == "elbow":
        assert traj.lr[0] == FIRST_LR
        for t in range(1, len(traj.lr)):
            g = traj.max_grad[t - 1]
            assert traj.lr[t] == (MAX_LR if g <= ELBOW else min(SCALE / g, MAX_LR))
    else:
        assert np.all(traj.lr == 0.05)
    assert np.isclose(traj.t[-1], np.sum(traj.lr[:-1]))
    if eps == "0":
        assert np.all(traj.omega >= 0) and np.all(traj.mu >= 0)


def test_sample_size_convergence():
    """GD on the sample average approaches the population trajectory as the sample grows: the
    distance to a 16384-prompt run shrinks from 256 to 4096 prompts."""
    def run(S, seed):
        cfg = FullConfig.make(2, 2, 2, 8, init_scheme="official", schedule="flow", lr="0.2",
                              samples=S, sampler="qmc", seed=seed)
        return train(cfg, 60.0, final_samples=200)
    ref = run(16384, 9)
    errs = [np.max(np.abs(run(S, 0).mu - ref.mu)) for S in (256, 4096)]
    assert errs[1] < errs[0] / 2, errs


def test_official_start_and_trajectory_round_trip(tmp_path):
    cfg = FullConfig.make(3, 2, 4, 100, init_scheme="official", samples=64)
    q, k, o, v = initial_factors(cfg)
    assert np.allclose(q * k / cfg.scale, 100 ** -1.5 / np.sqrt(15))
    expected = np.full((2, 3), 100 ** -1.5)
    expected[0, 0] = expected[1, 1] = 4 * 100 ** -1.5
    assert np.allclose(o * v, expected)
    with pytest.raises(ConfigError, match="two heads would start"):
        FullConfig.make(2, 3, 4, 100, init_scheme="official")
    traj = train(FullConfig.make(2, 2, 2, 6, samples=64, schedule="elbow"), 5.0,
                 final_samples=300)
    path = tmp_path / "t.json"
    traj.save(str(path))
    back = FullTrajectory.load(str(path))
    assert np.array_equal(back.omega, traj.omega) and back.final_loss_stderr > 0
