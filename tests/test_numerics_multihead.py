"""multihead numerics: the reduced loss against the full model, the flow in two precisions, the
limit's task allocation, configuration errors."""
import numpy as np
import pytest

from icl_verifier.numerics.errors import ConfigError
from icl_verifier.numerics.multihead import MultiheadConfig, integrate, monte_carlo_loss, reduced_loss


@pytest.mark.parametrize("n, H, d, L", [(2, 2, 16, 100), (1, 2, 16, 200), (3, 3, 8, 100)])
def test_reduced_loss_tracks_the_full_model(n, H, d, L):
    """The large-L reduction against Monte Carlo of explicit prompts at random small spectral
    states: within 2% plus three standard errors (measured: below 1% with 20 000 prompts)."""
    cfg = MultiheadConfig.make(n, H, d, L)
    rng = np.random.default_rng(n * 10 + H)
    for _ in range(2):
        y = np.concatenate([rng.uniform(0, 0.15, H * n), rng.uniform(0, 2, H * n)])
        mc, se = monte_carlo_loss(cfg, y, samples=3000, seed=1)
        assert abs(reduced_loss(cfg, y) - mc) / mc < 0.02 + 3 * se / mc


def test_limit_allocates_one_head_per_task_and_loss_falls():
    cfg = MultiheadConfig.make(2, 2, 4, 50, init="0.01", seed=3)
    t, Y, loss = integrate(cfg, 3000.0, 200)
    omega = Y[-1, :4].reshape(2, 2)
    share = (omega**2).max(axis=1) / (omega**2).sum(axis=1)
    assert np.all(share > 0.999)
    assert sorted(np.argmax(omega**2, axis=1)) == [0, 1]   # different tasks
    assert np.all(np.diff(loss) <= 1e-9 * loss[0])         # gradient flow: the loss never rises
    assert loss[-1] < 0.3 * loss[0]


@pytest.mark.parametrize("kw, message", [
    ({"n": 0}, "at least 1"), ({"H": 0}, "at least 1"), ({"d": "4,4,4"}, "block sizes"),
    ({"L": 0}, "at least 1"), ({"sigma": "-1"}, "non-negative"), ({"init": "0.7"}, "(0, 1/2)"),
    ({"flow": "other"}, "unknown flow")])
def test_bad_configuration(kw, message):
    args = {"n": 2, "H": 2, "d": 4, "L": 50} | kw
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        MultiheadConfig.make(**args)


def test_phases_are_located_in_order_and_the_models_compare():
    from icl_verifier.numerics.multihead import allocation, best_loss, phase_times, reduced_loss
    cfg = MultiheadConfig.make(2, 3, 4, 50, init="0.01")
    t, Y, loss, state = integrate(cfg, 5000.0, 300, dense=True)
    warmup, emergence = phase_times(t, Y, loss, cfg, state)
    coarse = phase_times(t, Y, loss, cfg)
    assert 0 < warmup < emergence
    assert warmup <= coarse[0] and emergence <= coarse[1]   # the bracket's right end, or earlier
    fall = loss[0] - loss[-1]
    # at the located warm-up end the loss has made exactly 5% of its fall
    assert loss[0] - reduced_loss(cfg, state(warmup)) == pytest.approx(0.05 * fall, rel=1e-6)
    assert allocation(cfg, state(emergence)).min() >= 0.95 - 1e-9
    best, _ = best_loss(cfg, starts=4)
    single, _ = best_loss(cfg, heads=1, starts=4)
    assert best <= loss[-1] * (1 + 1e-9)                      # the flow's limit is a candidate
    assert single > loss[-1]                                  # one head is worse (separation)


def _balanced_reference(config, t_end):
    """The balanced flow integrated in the weights themselves (no log coordinates), from
    theory.multihead.balanced_flow with its |v| (solve_ivp, tight tolerances)."""
    import sympy as sp
    from scipy.integrate import solve_ivp

    from icl_verifier.theory import multihead as th

    omega, mu, ds, sig, Ls = th.symbols(config.n, config.H)
    variables = [v for row in omega + mu for v in row]
    values = dict(zip(ds, config.d)) | {sig: 0, Ls: config.L}
    flow = th.balanced_flow(config.n, config.H)
    rhs = sp.lambdify([variables], [flow[v].subs(values) for v in variables], "numpy")
    sol = solve_ivp(lambda _t, y: np.asarray(rhs(y), float), (0, t_end), config.initial(),
                    method="Radau", rtol=1e-11, atol=1e-14)
    return sol.y[:, -1]


def test_simulator_integrates_the_derived_log_flow(monkeypatch):
    """The balanced flow runs in log coordinates from theory.multihead.log_flow: it matches the
    flow integrated in the weights, and a perturbed derivation (a factor 3/2) makes it fail."""
    from sympy import Rational

    import icl_verifier.numerics.multihead as nm
    from icl_verifier.theory import multihead as th

    config = MultiheadConfig.make(2, 2, [2, 3], 20)
    reference = _balanced_reference(config, 2.0)

    def run():
        return integrate(config, 2.0, points=20)[1][-1]

    assert np.max(np.abs(run() - reference)) < 1e-8
    original = th.log_flow
    monkeypatch.setattr(th, "log_flow", lambda n, H: {v: Rational(3, 2) * e for v, e in
                                                      original(n, H).items()})
    nm._compiled.cache_clear()
    try:
        assert np.max(np.abs(run() - reference)) > 1e-4
    finally:
        monkeypatch.undo()
        nm._compiled.cache_clear()
