"""multihead: gradient flow of the reduced loss in the spectral coordinates, and a Monte Carlo of
the full model as its cross-check.

The state is ``omega[h, i]`` and ``mu[h, i]`` (H heads, n tasks); the right-hand sides are the SymPy
flows of :mod:`theory.multihead` (merged weights, or Q, K, V, O from a balanced start), compiled
once per configuration.  float64 integrates with SciPy's implicit Radau method (the flow is stiff
near its limit; the balanced flow runs in log coordinates), with dense output so events are located
by root finding between steps; arbitrary precision uses mpmath's Taylor-series ``odefun`` at the
working precision.  :func:`simulate` runs the flow to its limit and measures the phases, the task
allocation and the residual velocity (:class:`MultiheadTrajectory`).
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np
import sympy as sp

from ..theory import multihead as th

from .backend import Backend
from .errors import ConfigError, SimulationError
from .jsonio import Record
from .numbers import fraction, whole_number

__all__ = ["MultiheadConfig", "reduced_loss", "integrate", "monte_carlo_loss", "FLOWS",
           "velocity", "loss_rate", "allocation", "active_heads", "served_tasks", "phase_times",
           "best_loss", "simulate", "MultiheadTrajectory", "ACTIVE", "T_END", "SETTLE"]

FLOWS = ("merged", "balanced")
#: A head is active when its output energy ``sum_i mu_{h,i}^2`` is at least this share of the
#: largest head's; inactive heads (outputs decaying to 0) are idle and their key-query is moot.
ACTIVE = 0.01
#: Default horizon of :func:`simulate`; a float64 run stops earlier once ``max |dy/dt| <= SETTLE``
#: (after the loss has halved).
T_END, SETTLE = 1e5, 1e-8
#: Radau's relative tolerance on L~, and on the trained model's sample-average loss (whose own
#: sampling error is about 1e-2 relative: a tighter rule only costs evaluations).
RTOL, RTOL_SAMPLED = 1e-10, 1e-7
#: Finite-difference step of the flows' Jacobian (Radau's Newton matrix), both models.  SciPy's
#: own estimate grows its step without bound along a column with no effect (a weight that has
#: underflowed to 0 in log coordinates, an idle head's) until the trial point overflows; a fixed
#: step ``sqrt(eps)`` cannot.
JAC_STEP = float(np.sqrt(np.finfo(float).eps))


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
        n = whole_number(n, "n (number of tasks)", at_least=1, at_most=8)
        H = whole_number(H, "H (number of heads)", at_least=1, at_most=16)
        if isinstance(d, (int, str)) and "," not in str(d):
            d = [d] * n
        elif isinstance(d, str):
            d = d.split(",")
        d = tuple(whole_number(x, "d_i", at_least=1, at_most=10**6) for x in d)
        if len(d) != n:
            raise ConfigError(f"d has {len(d)} block sizes but n = {n}")
        L = whole_number(L, "L (context length)", at_least=1, at_most=10**9)
        sigma, init = fraction(sigma, "sigma"), fraction(init, "init")
        if sigma < 0:
            raise ConfigError(f"sigma must be a non-negative number, got {sigma}")
        if sigma > 10**6:
            raise ConfigError(f"sigma must be in [0, 1e6], got {float(sigma):g}")
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
    """``(loss(y), rhs)`` with ``y = (omega, mu)`` flattened, for ``module`` numpy or mpmath;
    ``rhs(y)`` is ``dy/dt`` of the merged or balanced flow, and for ``flow="log"`` it is
    ``rhs(zeta)``, the derived :func:`theory.multihead.log_flow` in ``zeta = log y``."""
    omega, mu, ds, sig, Ls = th.symbols(n, H)
    values = {x: v for x, v in zip(ds, d)} | {sig: sigma, Ls: L}
    variables = [v for row in omega for v in row] + [v for row in mu for v in row]
    loss = th.reduced_loss(n, H).subs(values)
    flows = {"log": th.log_flow, "merged": th.merged_flow, "balanced": th.balanced_flow}[flow](n, H)
    rhs = [flows[v].subs(values) for v in variables]
    return (sp.lambdify([variables], loss, modules=module, cse=True),
            sp.lambdify([variables], rhs, modules=module, cse=True))


def _key(config: MultiheadConfig, module: str, merged: bool = False, flow: str | None = None):
    return (config.n, config.H, config.d, config.L,
            sp.Rational(config.sigma.numerator, config.sigma.denominator),
            flow or ("merged" if merged else config.flow), module)


def reduced_loss(config: MultiheadConfig, y) -> float:
    """``L~`` at the flattened state ``y``."""
    return _compiled(*_key(config, "numpy"))[0](np.asarray(y, float))


def velocity(config: MultiheadConfig, y, objective=None) -> np.ndarray:
    """``dy/dt`` of the configuration's flow at ``y``; with ``objective`` (a loss with ``loss(y)``
    and ``gradient(y)``, e.g. the trained model's), its flow: ``-grad`` merged, ``-2 |y| grad``
    balanced (the factor :func:`theory.multihead.balanced_flow` derives)."""
    y = np.asarray(y, float)
    if objective is not None:
        g = objective.gradient(y)
        return -g if config.flow == "merged" else -2 * np.abs(y) * g
    return np.asarray(_compiled(*_key(config, "numpy"))[1](y), float)


def _loss(config, y, objective=None) -> float:
    return float(objective.loss(y) if objective is not None else reduced_loss(config, y))


def loss_rate(config: MultiheadConfig, y, objective=None) -> float:
    """``-dL/dt = grad L . (-dy/dt)`` along the configuration's flow at ``y`` (>= 0); ``L~`` or
    ``objective``'s loss."""
    if objective is not None:
        gradient = objective.gradient(np.asarray(y, float))
    else:
        gradient = -np.asarray(_compiled(*_key(config, "numpy", merged=True))[1](
            np.asarray(y, float)))
    return float(-gradient @ velocity(config, y, objective))


def _admissible(config, y):
    """``1 - 2 omega_{h,k} omega_{g,k} > 0`` for all heads (else ``E_{hg}`` is infinite)."""
    omega = np.asarray(y[: config.H * config.n], float).reshape(config.H, config.n)
    return float(np.min(1 - 2 * np.einsum("hk,gk->hgk", omega, omega)))


@contextlib.contextmanager
def _nonfinite_as_breakdown():
    """SciPy refuses a non-finite Jacobian (a trial point where the loss overflowed) with a
    ValueError: that is the flow breaking down."""
    try:
        yield
    except ValueError as exc:
        raise SimulationError(0, f"the flow met a non-finite value ({exc})") from None


def integrate(config: MultiheadConfig, t_end: float, points: int = 400, digits: int | None = None,
              dense: bool = False, settle: float | None = None, backend: Backend | None = None,
              objective=None):
    """The flow on ``[0, t_end]`` at ``points`` times (geometric after t = 1, so the slow warm-up
    and the fast emergence are both resolved): ``(t, y, loss)``.  ``backend`` (or ``digits``) at
    arbitrary precision: mpmath's Taylor integrator at that precision (slow; small n, H; its
    continuous solution plays the part of the float64 dense output).  ``dense``: also return
    ``state(t)``, the continuous solution, for locating events.  ``settle``: stop, with the
    stopping time as the last point, once ``max |dy/dt| <= settle`` after the loss has halved
    (a terminal event in float64; located by Brent's method on the continuous solution at
    arbitrary precision).  ``objective``: the flow of that loss instead of ``L~`` (float64).
    Raises :class:`SimulationError` naming the time when the state leaves the admissible set or
    stops being finite."""
    if backend is not None:
        digits = backend.digits
    if objective is not None and digits is not None:
        raise ConfigError("the trained model's flow runs in float64 only")
    t = np.unique(np.concatenate([[0.0], np.geomspace(1e-3, t_end, points - 1)]))
    y0 = config.initial()
    # balanced Q, K, V, O from a positive start: omega, mu stay positive and the derived
    # log-coordinate flow (theory.multihead.log_flow) is smooth and free of |v|; the flow is stiff
    # near the limit (an implicit Runge-Kutta takes 10^4 steps where DOP853 takes 10^6)
    logs = config.flow == "balanced"
    flow = "log" if logs else "merged"
    if digits is None:
        from scipy.integrate import solve_ivp
        from scipy.optimize import approx_fprime
        if objective is None:
            _, rhs = _compiled(*_key(config, "numpy", flow=flow))
        elif logs:      # d log v/dt = -2 dL/dv (theory.multihead.log_flow's rule)
            rhs = lambda y: -2 * objective.gradient(y)      # noqa: E731
        else:
            rhs = lambda y: -objective.gradient(y)          # noqa: E731

        def f(_t, z):
            return np.asarray(rhs(np.exp(z) if logs else z), float)

        def leaves(_t, z):
            if objective is not None:       # the trained model has no such boundary
                return 1.0
            return _admissible(config, np.exp(z) if logs else z) - 1e-9
        leaves.terminal = True
        half = _loss(config, y0, objective) / 2

        def settles(_t, z):     # <= 0 once settled (max of two continuous functions)
            y = np.exp(z) if logs else z
            speed = np.abs(y * f(_t, z) if logs else f(_t, z)).max()
            return max(speed - settle, _loss(config, y, objective) - half)
        settles.terminal = True
        events = [leaves] + ([settles] if settle else [])

        def jacobian(_t, z):    # forward differences with a fixed step (relative in y when logs)
            return approx_fprime(z, lambda w: f(_t, w), JAC_STEP)
        with np.errstate(over="ignore"), _nonfinite_as_breakdown():
            sol = solve_ivp(f, (0.0, t_end), np.log(y0) if logs else y0, method="Radau",
                            t_eval=t, rtol=RTOL if objective is None else RTOL_SAMPLED,
                            atol=1e-12 if objective is None else 1e-10, events=events,
                            dense_output=dense, jac=jacobian)
        if sol.status == 1 and sol.t_events[0].size:
            raise SimulationError(0, f"t = {sol.t_events[0][0]:.6g}: 1 - 2 omega_h omega_g reached 0")
        if not sol.success:
            raise SimulationError(0, f"integration failed: {sol.message}")
        if sol.status == 1:     # settled: the stopping time is the last point
            t = np.append(sol.t, sol.t_events[1][0])
            sol_y = np.hstack([sol.y, sol.y_events[1][0][:, None]])
        else:
            t, sol_y = sol.t, sol.y
        Y = np.exp(sol_y.T) if logs else sol_y.T
        state = (lambda s: np.exp(sol.sol(s))) if logs else (lambda s: sol.sol(s))
    else:
        import mpmath
        with mpmath.workdps(digits):
            _, rhs = _compiled(*_key(config, "mpmath", flow=flow))
            start = [mpmath.mpf(repr(float(v))) for v in y0]
            F = mpmath.odefun(lambda _t, z: rhs([mpmath.exp(v) for v in z] if logs else list(z)),
                              0, [mpmath.log(v) for v in start] if logs else start)

        def state(s):
            with mpmath.workdps(digits):
                z = F(mpmath.mpf(repr(float(s))))
                return np.array([float(mpmath.exp(v) if logs else v) for v in z])
        Y = np.array([state(ti) for ti in t])
        if settle:      # the same stopping rule as the float64 events, located by Brent
            half = reduced_loss(config, y0) / 2

            def unsettled(s):   # <= 0 once settled
                y = state(s)
                return max(np.abs(velocity(config, y)).max() - settle,
                           reduced_loss(config, y) - half)
            values = [unsettled(ti) for ti in t]
            hit = next((j for j, v in enumerate(values) if v <= 0), None)
            if hit is not None and hit > 0:
                from scipy.optimize import brentq
                stop = brentq(unsettled, t[hit - 1], t[hit], xtol=1e-12 * t[hit])
                t = np.append(t[:hit], stop)
                Y = np.vstack([Y[:hit], state(stop)])
    if not np.all(np.isfinite(Y)):
        bad = t[int(np.argmin(np.all(np.isfinite(Y), axis=1)))]
        raise SimulationError(0, f"t = {bad:.6g}: the state is not finite")
    loss = np.array([_loss(config, y, objective) for y in Y])
    return (t, Y, loss, state) if dense else (t, Y, loss)


def monte_carlo_loss(config: MultiheadConfig, y, samples: int = 4000, seed: int = 0,
                     batch: int = 2000):
    """``E ||y_hat - y_q||^2`` of the full model at the spectral state ``y`` (explicit block-diagonal
    ``W_h``, explicit prompts of L tokens, softmax over the context): ``(mean, standard error)``.
    Prompts are drawn ``batch`` at a time from one seeded generator (memory ``batch * L * d``)."""
    n, H, d = config.n, config.H, config.d
    omega = np.asarray(y[: H * n], float).reshape(H, n)
    mu = np.asarray(y[H * n:], float).reshape(H, n)
    D = sum(d)
    block = np.repeat(np.arange(n), d)                      # task of each coordinate
    onehot = np.eye(n)[block]                               # (D, n)
    noise = float(config.sigma)
    rng = np.random.default_rng(seed)
    errors = []
    for start in range(0, samples, batch):
        size = min(batch, samples - start)
        x = rng.standard_normal((size, config.L, D))
        xq = rng.standard_normal((size, D))
        beta = rng.standard_normal((size, D))
        y_ctx = np.einsum("sld,sd,dn->sln", x, beta, onehot) + noise * rng.standard_normal(
            (size, config.L, n))
        y_q = np.einsum("sd,sd,dn->sn", xq, beta, onehot) + noise * rng.standard_normal((size, n))
        pred = np.zeros((size, n))
        for h in range(H):
            scores = np.einsum("sld,d,sd->sl", x, omega[h][block], xq)
            p = np.exp(scores - scores.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            pred += mu[h] * np.einsum("sl,sln->sn", p, y_ctx)
        errors.append(((pred - y_q) ** 2).sum(axis=1))
    err = np.concatenate(errors)
    return float(err.mean()), float(err.std(ddof=1) / math.sqrt(samples))


# ---------------------------------------------------------------------------------------------
# phases, allocation, best models


def allocation(config: MultiheadConfig, y) -> np.ndarray:
    """Per head, the share of its key-query energy ``sum_i omega_{h,i}^2`` on its best task."""
    omega = np.asarray(y[: config.H * config.n], float).reshape(config.H, config.n)
    energy = omega**2
    return energy.max(axis=1) / np.maximum(energy.sum(axis=1), 1e-300)


def active_heads(config: MultiheadConfig, y, threshold: float = ACTIVE) -> np.ndarray:
    """Per head, whether its output energy ``sum_i mu_{h,i}^2`` is at least ``threshold`` times the
    largest head's."""
    mu = np.asarray(y[config.H * config.n:], float).reshape(config.H, config.n)
    out = (mu**2).sum(axis=1)
    return out >= threshold * max(out.max(), 1e-300)


def served_tasks(config: MultiheadConfig, y) -> list[int]:
    """The tasks (0-based) that are the best task of some active head."""
    omega = np.asarray(y[: config.H * config.n], float).reshape(config.H, config.n)
    best = np.argmax(omega**2, axis=1)
    return sorted({int(b) for b, a in zip(best, active_heads(config, y)) if a})


def _active_share(config, y) -> float:
    """The smallest key-query share (:func:`allocation`) over the active heads."""
    return float(allocation(config, y)[active_heads(config, y)].min())


def phase_times(t, Y, loss, config: MultiheadConfig, state=None, drop: float = 0.05,
                share: float = 0.95, objective=None):
    """Ends of warm-up and emergence (reconstructed): warm-up ends when the loss has made
    ``drop`` of its total fall ``L(0) - L(t_end)``; emergence ends when the loss is within ``drop``
    of its final value and every active head (:func:`active_heads`) puts ``share`` of its key-query
    energy on one task.  The
    first recorded time where an event holds brackets it; with ``state`` (the continuous solution
    from ``integrate(..., dense=True)``) it is located by Brent's method inside the bracket.
    None when it does not happen."""
    from scipy.optimize import brentq

    fall = loss[0] - loss[-1]
    if fall <= 0:
        return None, None

    def warm(y):        # >= 0 once the warm-up is over
        return loss[0] - _loss(config, y, objective) - drop * fall

    def emerged(y):     # >= 0 once the emergence is over
        gap = drop * fall - (_loss(config, y, objective) - loss[-1])
        return min(gap, _active_share(config, y) - share)

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


def best_loss(config: MultiheadConfig, heads: int | None = None, starts: int = 8, seed: int = 0,
              extra=(), objective=None):
    """The smallest reduced loss found by L-BFGS-B from ``starts`` seeded starts, the
    one-head-per-task start when ``heads >= n`` and the states in ``extra`` (say the flow's limit,
    so the best found is never worse), with ``|omega| < 1/sqrt(2)``: ``(loss, y)``.  With
    ``objective`` (a callable ``heads -> objective``), that loss instead of ``L~``."""
    from scipy.optimize import minimize

    cfg = MultiheadConfig(config.n, heads or config.H, config.d, config.L, config.sigma,
                          config.init, "merged", config.seed)
    if objective is not None:
        obj = objective(cfg.H)
        loss, rhs = obj.loss, (lambda y: -obj.gradient(y))
    else:
        loss, rhs = _compiled(*_key(cfg, "numpy"))
    H, n = cfg.H, cfg.n
    bound = 1 / math.sqrt(2) - 1e-6         # L~ is finite only for |omega| < 1/sqrt(2)
    box = ([(-bound, bound)] if objective is None else [(None, None)]) * (H * n) + \
        [(None, None)] * (H * n)
    rng = np.random.default_rng(seed)
    inits = [np.concatenate([rng.uniform(0, 0.4, H * n), rng.uniform(0, 2, H * n)])
             for _ in range(starts)]
    if H >= n:
        omega = np.zeros((H, n))
        omega[np.arange(n), np.arange(n)] = 0.3
        mu = np.zeros((H, n))
        mu[np.arange(n), np.arange(n)] = 3.0
        inits.append(np.concatenate([omega.ravel(), mu.ravel()]))
    inits += [np.asarray(y, float) for y in extra]
    best = None
    for y0 in inits:
        # near |omega| = 1/sqrt(2) L~ overflows; such a start ends non-finite and is dropped
        with np.errstate(all="ignore"):
            res = minimize(lambda y: float(loss(y)), y0, jac=lambda y: -np.asarray(rhs(y), float),
                           method="L-BFGS-B", bounds=box,
                           options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 5000})
        if np.isfinite(res.fun) and (best is None or res.fun < best[0]):
            best = (float(res.fun), res.x)
    return best


# ---------------------------------------------------------------------------------------------
# a run to the limit


@dataclass
class MultiheadTrajectory(Record):
    """The flow at recorded times ``t``: ``omega[j, h, i]``, ``mu[j, h, i]``, ``loss[j]`` (``L~``);
    the ends of warm-up and emergence (None when not reached), the largest loss-decrease rate
    ``-dL~/dt`` during the emergence, the time the run settled (None: it ran to ``t_end``), and at
    the last time: the velocity ``max |dy/dt|`` (residual), the key-query share of each head, which
    heads are active and which tasks they serve."""

    config: dict
    t: np.ndarray
    omega: np.ndarray
    mu: np.ndarray
    loss: np.ndarray
    warmup: float | None
    emergence: float | None
    peak_rate: float | None
    settled: float | None
    residual: float
    allocation: np.ndarray
    active: np.ndarray
    served: list

    ARRAYS = ("t", "omega", "mu", "loss", "allocation")
    BOOL_ARRAYS = ("active",)
    PER_STEP = ("omega", "mu", "loss")

    @property
    def limit(self) -> np.ndarray:
        """The final state ``(omega, mu)`` flattened."""
        return np.concatenate([self.omega[-1].ravel(), self.mu[-1].ravel()])

    def speed_ratio(self) -> float | None:
        """Mean loss-decrease rate over the warm-up over the peak rate during the emergence."""
        if self.warmup is None or self.emergence is None or not self.peak_rate:
            return None
        fall = self.loss[0] - float(np.interp(self.warmup, self.t, self.loss))
        return fall / self.warmup / self.peak_rate

    def active_share(self) -> float:
        """The smallest key-query share over the active heads at ``t_end``."""
        return float(self.allocation[self.active].min())

def simulate(config: MultiheadConfig, t_end: float = T_END, points: int = 400,
             digits: int | None = None, backend: Backend | None = None,
             objective=None) -> MultiheadTrajectory:
    """Integrate the flow to ``t_end``, or in float64 until it settles (``max |dy/dt| <= SETTLE``),
    and measure it (:class:`MultiheadTrajectory`).  The peak rate is the largest ``-dL~/dt`` on 400
    points of the continuous solution spanning the emergence.  ``digits``: mpmath's Taylor
    integrator to ``t_end`` (slow: keep ``t_end`` short).  ``objective``: the flow of that loss
    (the trained model's, :class:`numerics.multihead_full.FullObjective`) in the same coordinates,
    measured the same way."""
    if not (isinstance(t_end, (int, float)) and math.isfinite(t_end) and t_end > 0):
        raise ConfigError(f"t_end must be a positive finite number, got {t_end!r}")
    if backend is not None:
        digits = backend.digits
    t, Y, loss, state = integrate(config, float(t_end), points, digits=digits, dense=True,
                                  settle=SETTLE, objective=objective)
    settled = float(t[-1]) if t[-1] < t_end else None
    warmup, emergence = phase_times(t, Y, loss, config, state, objective=objective)
    peak = None
    if warmup is not None and emergence is not None and emergence > warmup:
        peak = max(loss_rate(config, state(s), objective)
                   for s in np.linspace(warmup, emergence, 400))
    H, n = config.H, config.n
    record = config.to_dict() | {"t_end": float(t_end), "points": points,
                                 "number_type": "float64" if digits is None else f"mpmath {digits}",
                                 "model": "reduced" if objective is None else objective.describe()}
    return MultiheadTrajectory(
        config=record, t=t, omega=Y[:, : H * n].reshape(-1, H, n), mu=Y[:, H * n:].reshape(-1, H, n),
        loss=loss, warmup=warmup, emergence=emergence, peak_rate=peak, settled=settled,
        residual=float(np.abs(velocity(config, Y[-1], objective)).max()),
        allocation=allocation(config, Y[-1]), active=active_heads(config, Y[-1]),
        served=served_tasks(config, Y[-1]))
