"""multihead: gradient flow of the reduced loss in the spectral coordinates, and a Monte Carlo of
the full model as its cross-check.

The state is ``omega[h, i]`` and ``mu[h, i]`` (H heads, n tasks); the right-hand sides are the SymPy
flows of :mod:`theory.multihead` (merged weights, or Q, K, V, O from a balanced start), compiled
once per configuration.  float64 integrates with SciPy's adaptive DOP853 (dense output, so events
are located by root finding between steps); arbitrary precision uses mpmath's Taylor-series
``odefun`` at the working precision.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np
import sympy as sp

from theory import multihead as th

from .errors import ConfigError, SimulationError
from .features import _fraction, whole_number

__all__ = ["MultiheadConfig", "reduced_loss", "integrate", "monte_carlo_loss", "FLOWS",
           "allocation", "phase_times", "best_loss"]

FLOWS = ("merged", "balanced")


@dataclass(frozen=True)
class MultiheadConfig:
    """n tasks on blocks of sizes ``d``, H heads, L context tokens, noise ``sigma``, initial scale
    ``init`` of the spectral weights (seeded perturbations break the symmetry between heads)."""

    n: int
    H: int
    d: tuple[int, ...]
    L: int
    sigma: Fraction
    init: Fraction
    flow: str
    seed: int

    @classmethod
    def make(cls, n, H, d, L, sigma="0", init="0.05", flow="balanced", seed=0):
        n = whole_number(n, "n (number of tasks)", at_least=1)
        H = whole_number(H, "H (number of heads)", at_least=1)
        if isinstance(d, (int, str)) and "," not in str(d):
            d = [d] * n
        elif isinstance(d, str):
            d = d.split(",")
        d = tuple(whole_number(x, "d_i", at_least=1) for x in d)
        if len(d) != n:
            raise ConfigError(f"d has {len(d)} block sizes but n = {n}")
        L = whole_number(L, "L (context length)", at_least=1)
        sigma, init = _fraction(sigma, "sigma"), _fraction(init, "init")
        if sigma < 0:
            raise ConfigError(f"sigma must be a non-negative number, got {sigma}")
        if not 0 < init < Fraction(1, 2):
            raise ConfigError(f"init must lie in (0, 1/2), got {init}")
        if flow not in FLOWS:
            raise ConfigError(f"unknown flow {flow!r}; choose one of {', '.join(FLOWS)}")
        return cls(n, H, d, L, sigma, init, flow, whole_number(seed, "seed", at_least=0))

    def initial(self) -> np.ndarray:
        """``(omega, mu)`` flattened: ``init * (1 + U(-0.2, 0.2))``, seeded."""
        rng = np.random.default_rng(self.seed)
        return float(self.init) * (1 + rng.uniform(-0.2, 0.2, 2 * self.H * self.n))

    def to_dict(self) -> dict:
        return {"setting": "multihead", "n": self.n, "H": self.H, "d": list(self.d), "L": self.L,
                "sigma": float(self.sigma), "init": float(self.init), "flow": self.flow,
                "seed": self.seed}


@lru_cache(maxsize=32)
def _compiled(n, H, d, L, sigma, flow, module):
    """``(loss(y), rhs(y))`` with ``y = (omega, mu)`` flattened, for ``module`` numpy or mpmath."""
    omega, mu, ds, sig, Ls = th.symbols(n, H)
    values = {x: v for x, v in zip(ds, d)} | {sig: sigma, Ls: L}
    variables = [v for row in omega for v in row] + [v for row in mu for v in row]
    flows = th.merged_flow(n, H) if flow == "merged" else th.balanced_flow(n, H)
    loss = th.reduced_loss(n, H).subs(values)
    rhs = [flows[v].subs(values) for v in variables]
    return (sp.lambdify([variables], loss, modules=module),
            sp.lambdify([variables], rhs, modules=module))


def _key(config: MultiheadConfig, module: str, merged: bool = False):
    return (config.n, config.H, config.d, config.L,
            sp.Rational(config.sigma.numerator, config.sigma.denominator),
            "merged" if merged else config.flow, module)


def reduced_loss(config: MultiheadConfig, y) -> float:
    """``L~`` at the flattened state ``y``."""
    return _compiled(*_key(config, "numpy"))[0](np.asarray(y, float))


def _admissible(config, y):
    """``1 - 2 omega_{h,k} omega_{g,k} > 0`` for all heads (else ``E_{hg}`` is infinite)."""
    omega = np.asarray(y[: config.H * config.n], float).reshape(config.H, config.n)
    return float(np.min(1 - 2 * np.einsum("hk,gk->hgk", omega, omega)))


def integrate(config: MultiheadConfig, t_end: float, points: int = 400, digits: int | None = None,
              dense: bool = False):
    """The flow on ``[0, t_end]`` at ``points`` times (geometric after t = 1, so the slow warm-up
    and the fast emergence are both resolved): ``(t, y, loss)``.  ``digits``: mpmath's Taylor
    integrator at that precision (slow; small n, H).  ``dense``: also return ``state(t)``, the
    integrator's continuous solution, for locating events.  Raises :class:`SimulationError` naming
    the time when the state leaves the admissible set or stops being finite."""
    t = np.unique(np.concatenate([[0.0], np.geomspace(1e-3, t_end, points - 1)]))
    y0 = config.initial()
    # balanced Q, K, V, O from a positive start: omega, mu stay positive and
    # d log(v)/dt = -2 dL~/dv (the merged flow, doubled), smooth and free of |v|; the flow is stiff
    # near the limit (an implicit Runge-Kutta takes 10^4 steps where DOP853 takes 10^6)
    logs = config.flow == "balanced"
    if digits is None:
        from scipy.integrate import solve_ivp
        _, rhs = _compiled(*_key(config, "numpy", merged=True))
        if logs:
            def f(_t, z):
                return 2 * np.asarray(rhs(np.exp(z)), float)
        else:
            def f(_t, y):
                return np.asarray(rhs(y), float)

        def leaves(_t, z):
            return _admissible(config, np.exp(z) if logs else z) - 1e-9
        leaves.terminal = True
        sol = solve_ivp(f, (0.0, t_end), np.log(y0) if logs else y0, method="Radau", t_eval=t,
                        rtol=1e-10, atol=1e-12, events=leaves, dense_output=dense)
        if sol.status == 1:
            raise SimulationError(0, f"t = {sol.t_events[0][0]:.6g}: 1 - 2 omega_h omega_g reached 0")
        if not sol.success:
            raise SimulationError(0, f"integration failed: {sol.message}")
        Y = np.exp(sol.y.T) if logs else sol.y.T
        state = (lambda s: np.exp(sol.sol(s))) if logs else (lambda s: sol.sol(s))
    else:
        import mpmath
        with mpmath.workdps(digits):
            _, rhs = _compiled(*_key(config, "mpmath", merged=True))
            if logs:
                F = mpmath.odefun(lambda _t, z: [2 * v for v in rhs([mpmath.exp(x) for x in z])],
                                  0, [mpmath.log(mpmath.mpf(repr(float(v)))) for v in y0])
                def state(s):
                    with mpmath.workdps(digits):
                        return np.array([float(mpmath.exp(v)) for v in F(mpmath.mpf(repr(float(s))))])
                Y = np.array([state(ti) for ti in t])
            else:
                F = mpmath.odefun(lambda _t, y: rhs(list(y)), 0, [mpmath.mpf(repr(float(v))) for v in y0])
                def state(s):
                    with mpmath.workdps(digits):
                        return np.array([float(v) for v in F(mpmath.mpf(repr(float(s))))])
                Y = np.array([state(ti) for ti in t])
    if not np.all(np.isfinite(Y)):
        bad = t[int(np.argmin(np.all(np.isfinite(Y), axis=1)))]
        raise SimulationError(0, f"t = {bad:.6g}: the state is not finite")
    loss = np.array([reduced_loss(config, y) for y in Y])
    return (t, Y, loss, state) if dense else (t, Y, loss)


def monte_carlo_loss(config: MultiheadConfig, y, samples: int = 4000, seed: int = 0):
    """``E ||y_hat - y_q||^2`` of the full model at the spectral state ``y`` (explicit block-diagonal
    ``W_h``, explicit prompts of L tokens, softmax over the context): ``(mean, standard error)``."""
    n, H, d = config.n, config.H, config.d
    omega = np.asarray(y[: H * n], float).reshape(H, n)
    mu = np.asarray(y[H * n:], float).reshape(H, n)
    D = sum(d)
    block = np.repeat(np.arange(n), d)                      # task of each coordinate
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((samples, config.L, D))
    xq = rng.standard_normal((samples, D))
    beta = rng.standard_normal((samples, D))
    onehot = np.eye(n)[block]                               # (D, n)
    noise = float(config.sigma)
    y_ctx = np.einsum("sld,sd,dn->sln", x, beta, onehot) + noise * rng.standard_normal(
        (samples, config.L, n))
    y_q = np.einsum("sd,sd,dn->sn", xq, beta, onehot) + noise * rng.standard_normal((samples, n))
    pred = np.zeros((samples, n))
    for h in range(H):
        scores = np.einsum("sld,d,sd->sl", x, omega[h][block], xq)
        p = np.exp(scores - scores.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        pred += mu[h] * np.einsum("sl,sln->sn", p, y_ctx)
    err = ((pred - y_q) ** 2).sum(axis=1)
    return float(err.mean()), float(err.std(ddof=1) / math.sqrt(samples))


# ---------------------------------------------------------------------------------------------
# phases, allocation, best models


def allocation(config: MultiheadConfig, y) -> np.ndarray:
    """Per head, the share of its key-query energy ``sum_i omega_{h,i}^2`` on its best task."""
    omega = np.asarray(y[: config.H * config.n], float).reshape(config.H, config.n)
    energy = omega**2
    return energy.max(axis=1) / np.maximum(energy.sum(axis=1), 1e-300)


def phase_times(t, Y, loss, config: MultiheadConfig, state=None, drop: float = 0.05,
                share: float = 0.95):
    """Ends of warm-up and emergence (reconstructed): warm-up ends when the loss has made
    ``drop`` of its total fall ``L(0) - L(t_end)``; emergence ends when the loss is within ``drop``
    of its final value and every head puts ``share`` of its key-query energy on one task.  The
    first recorded time where an event holds brackets it; with ``state`` (the continuous solution
    from ``integrate(..., dense=True)``) it is located by Brent's method inside the bracket.
    None when it does not happen."""
    from scipy.optimize import brentq

    fall = loss[0] - loss[-1]
    if fall <= 0:
        return None, None

    def warm(y):        # >= 0 once the warm-up is over
        return loss[0] - reduced_loss(config, y) - drop * fall

    def emerged(y):     # >= 0 once the emergence is over
        gap = drop * fall - (reduced_loss(config, y) - loss[-1])
        return min(gap, allocation(config, y).min() - share)

    def locate(event):
        values = np.array([event(y) for y in Y])
        idx = np.flatnonzero(values >= 0)
        if not idx.size:
            return None
        j = idx[0]
        if j == 0:
            return float(t[0])
        if state is None:
            return float(t[j])
        return float(brentq(lambda s: event(state(s)), t[j - 1], t[j], xtol=1e-12 * t[j]))

    return locate(warm), locate(emerged)


def best_loss(config: MultiheadConfig, heads: int | None = None, starts: int = 8, seed: int = 0):
    """The smallest reduced loss found by L-BFGS-B from ``starts`` seeded starts (and the
    one-head-per-task start when ``heads >= n``), with ``|omega| < 1/sqrt(2)``: ``(loss, y)``."""
    from scipy.optimize import minimize

    cfg = MultiheadConfig(config.n, heads or config.H, config.d, config.L, config.sigma,
                          config.init, "merged", config.seed)
    loss, rhs = _compiled(*_key(cfg, "numpy"))
    H, n = cfg.H, cfg.n
    bound = 1 / math.sqrt(2) - 1e-6
    box = [(-bound, bound)] * (H * n) + [(None, None)] * (H * n)
    rng = np.random.default_rng(seed)
    inits = [np.concatenate([rng.uniform(0, 0.4, H * n), rng.uniform(0, 2, H * n)])
             for _ in range(starts)]
    if H >= n:
        omega = np.zeros((H, n))
        omega[np.arange(n), np.arange(n)] = 0.3
        mu = np.zeros((H, n))
        mu[np.arange(n), np.arange(n)] = 3.0
        inits.append(np.concatenate([omega.ravel(), mu.ravel()]))
    best = None
    for y0 in inits:
        res = minimize(lambda y: float(loss(y)), y0, jac=lambda y: -np.asarray(rhs(y), float),
                       method="L-BFGS-B", bounds=box, options={"ftol": 1e-15, "gtol": 1e-10,
                                                               "maxiter": 5000})
        if np.isfinite(res.fun) and (best is None or res.fun < best[0]):
            best = (float(res.fun), res.x)
    return best
