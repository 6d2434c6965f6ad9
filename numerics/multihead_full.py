"""multihead, the trained model at finite L: population gradient descent on Q, K, V, O.

The model and conventions are the authors' published simulation's (the reading is ours):
``W_h = K_h^T Q_h / sqrt(d_x + n)``, ``U_h = O_h V_h``, softmax over the L context tokens, heads
summed, squared error averaged over the n outputs, x and the task coefficients standard normal.
In the spectral form (``W_h`` = ``omega_{h,b} I`` on covariate block b, ``U_h`` maps ``y_i`` to
output i with ``mu_{h,i}``) a prompt enters only through ``u[j, b]`` (token j's block-b covariates
projected on the query's block direction, standard normal) and ``r_b = |x_{q,b}|`` (chi with
``d_b`` degrees of freedom): :func:`theory.multihead.finite_loss`, whose token sums are evaluated
over a fixed sample of ``(u, r)`` (common random numbers: GD runs on one smooth function), drawn
by Monte Carlo or scrambled Sobol points (``sampler="qmc"``), by default closed under the
symmetries of the prompt distribution (``symmetric``: relabeling tasks of equal block size, sign
flips of u).

Training follows the authors' factors: one value ``q, k`` per block entry of ``Q_h, K_h`` and one
``o, v`` per output-value pair (``omega = q k / sqrt(d_x + n)``, ``mu = o v``), each moved by its
own gradient (:func:`theory.multihead.factored_gradients`), or the merged ``W, U``
(``param="merged"``).  ``imbalance = EPS`` starts the factors at ``a + b, a - b`` with ``|b| = EPS
|a|`` (the same product up to ``1 - EPS^2``, rescaled to keep it): the balanced flow keeps ``q^2 -
k^2 = 0``, so ``omega`` and ``mu`` cannot change sign; the imbalanced one can.
"""
from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np
import sympy as sp

from ..theory import multihead as th

from .codegen import load_module, token_kernel
from .errors import ConfigError, SimulationError
from .jsonio import Record
from .numbers import fraction, whole_number

__all__ = ["FullConfig", "FullObjective", "Sample", "draw", "symmetries", "loss_and_gradient", "population_loss", "train",
           "FullTrajectory", "INIT_SCHEMES", "SCHEDULES", "PARAMS", "SAMPLERS", "official_init"]

INIT_SCHEMES = ("small", "official")
SCHEDULES = ("flow", "elbow")
PARAMS = ("factored", "merged")
SAMPLERS = ("mc", "qmc")
#: The elbow rule of the authors' scheduler: lr = MAX_LR while max |grad| <= ELBOW, else
#: min(SCALE / max |grad|, MAX_LR); the first step uses FIRST_LR.
ELBOW, SCALE, MAX_LR, FIRST_LR = 0.1, 0.05, 0.5, 0.01
#: Prompts per chunk of the token sums (memory: about 60 arrays of chunk x L doubles).
CHUNK = 2048
#: Largest prompt sample, and largest samples x L, the simulator accepts.
MAX_SAMPLES, MAX_CELLS = 2_000_000, 4 * 10**8


@dataclass(frozen=True)
class FullConfig:
    """n tasks on covariate blocks ``d``, H heads, L context tokens, label noise ``sigma``; the
    start (``init_scheme``: ``small`` = ``init`` times seeded U(0.8, 1.2) on every omega and mu,
    ``official``), ``imbalance``, ``param`` (factored or merged), ``schedule`` (``flow``: constant
    ``lr``; ``elbow``: the authors' rule) and the prompt sample (``samples``, ``sampler``, ``seed``)."""

    n: int
    H: int
    d: tuple[int, ...]
    L: int
    sigma: Fraction = Fraction(0)
    init_scheme: str = "official"
    init: Fraction = Fraction(1, 20)
    imbalance: Fraction = Fraction(0)
    param: str = "factored"
    schedule: str = "elbow"
    lr: Fraction = Fraction(1, 100)
    samples: int = 4096
    sampler: str = "qmc"
    seed: int = 0
    symmetric: bool = True

    @classmethod
    def make(cls, n, H, d, L, sigma="0", init_scheme="official", init="0.05", imbalance="0",
             param="factored", schedule="elbow", lr="0.01", samples=4096, sampler="qmc",
             seed=0, symmetric=True) -> "FullConfig":
        """Validate and build; raises :class:`ConfigError` with a one-line message."""
        n = whole_number(n, "n (number of tasks)", at_least=1, at_most=8)
        H = whole_number(H, "H (number of heads)", at_least=1, at_most=16)
        if isinstance(d, (int, str)) and "," not in str(d):
            d = [d] * n
        elif isinstance(d, str):
            d = d.split(",")
        d = tuple(whole_number(x, "d_i", at_least=1, at_most=256) for x in d)
        if len(d) != n:
            raise ConfigError(f"d has {len(d)} block sizes but n = {n}")
        L = whole_number(L, "L (context length)", at_least=1, at_most=10**5)
        sigma = fraction(sigma, "sigma")
        if not 0 <= sigma <= 10**6:
            raise ConfigError(f"sigma must be in [0, 1e6], got {float(sigma):g}")
        for name, value, options in (("init scheme", init_scheme, INIT_SCHEMES),
                                     ("schedule", schedule, SCHEDULES), ("param", param, PARAMS),
                                     ("sampler", sampler, SAMPLERS)):
            if value not in options:
                raise ConfigError(f"unknown {name} {value!r}; choose one of {', '.join(options)}")
        init, imbalance, lr = fraction(init, "init"), fraction(imbalance, "imbalance"), \
            fraction(lr, "lr")
        if not 0 < init < Fraction(1, 2):
            raise ConfigError(f"init must lie in (0, 1/2), got {init}")
        if not 0 <= imbalance < 1:
            raise ConfigError(f"imbalance must lie in [0, 1), got {float(imbalance):g}")
        if init_scheme == "official" and H > n:
            raise ConfigError(f"--init-scheme official favours task h with head h: with H = {H} "
                              f"> n = {n} two heads would start alike and stay alike; use "
                              "--init-scheme small")
        if imbalance and param == "merged":
            raise ConfigError("--imbalance acts on the factors: it needs --flow factored")
        if not 0 < lr <= 10:
            raise ConfigError(f"lr must lie in (0, 10], got {float(lr):g}")
        samples = whole_number(samples, "samples", at_least=16, at_most=MAX_SAMPLES)
        if samples * L > MAX_CELLS:
            raise ConfigError(f"samples x L = {samples * L:.3g} exceeds {MAX_CELLS:.0e}; "
                              "use fewer samples")
        if sampler == "qmc" and n * L + n > 21201:
            raise ConfigError(f"--sampler qmc needs n L + n <= 21201 dimensions (Sobol), got "
                              f"{n * L + n}; use --sampler mc")
        return cls(n, H, d, L, sigma, init_scheme, init, imbalance, param, schedule, lr, samples,
                   sampler, whole_number(seed, "seed", at_least=0), bool(symmetric))

    @property
    def scale(self) -> float:
        """``sqrt(d_x + n)``: the key-query normalisation of the authors' model."""
        return math.sqrt(sum(self.d) + self.n)

    def to_dict(self) -> dict:
        return {"setting": "multihead", "model": "full", "n": self.n, "H": self.H,
                "d": list(self.d), "L": self.L, "sigma": float(self.sigma),
                "init_scheme": self.init_scheme, "init": float(self.init),
                "imbalance": float(self.imbalance), "param": self.param,
                "schedule": self.schedule, "lr": float(self.lr), "samples": self.samples,
                "sampler": self.sampler, "seed": self.seed, "symmetric": self.symmetric}


# ---------------------------------------------------------------------------------------------
# the derived loss, compiled over token arrays


def _tsum(x):
    """A token sum: over the last axis (tokens), kept as a column for broadcasting."""
    return np.sum(x, axis=-1, keepdims=True)


@lru_cache(maxsize=16)
def _expressions(n: int, H: int):
    """``[loss, d loss/d omega (H n), d loss/d mu (H n)]`` per prompt from
    :func:`theory.multihead.finite_loss`, with every ``Sum`` over tokens as ``tsum(f)`` and
    ``u_b[j]`` as the token symbol ``U_b``; and the symbols ``(params, U, r, c, tsum)``."""
    omega, mu, u, r, c, _, _ = th.finite_symbols(n, H)
    loss = th.finite_loss(n, H)
    grads = th.finite_gradient(n, H)
    U = [sp.Symbol(f"U_{b + 1}", real=True) for b in range(n)]
    tsum = sp.Function("tsum")

    def arrays(expr):
        expr = expr.replace(lambda e: isinstance(e, sp.Sum), lambda e: tsum(e.function))
        return expr.replace(lambda e: isinstance(e, sp.Indexed),
                            lambda e: U[[x.label for x in u].index(e.base.label)])

    params = [v for row in omega for v in row] + [v for row in mu for v in row]
    return [arrays(loss)] + [arrays(grads[v]) for v in params], (params, U, r, c, tsum)


@lru_cache(maxsize=16)
def _numpy(n: int, H: int):
    """The expressions lambdified over ``(prompts, L)`` arrays (the reference path)."""
    exprs, (params, U, r, c, _) = _expressions(n, H)
    return sp.lambdify([params, U, r, c], exprs, modules=[{"tsum": _tsum}, "numpy"], cse=True)


@lru_cache(maxsize=16)
def _kernel(n: int, H: int):
    """The expressions compiled by numba: one parallel loop over prompts, passes over tokens."""
    exprs, (params, U, r, c, tsum) = _expressions(n, H)
    return load_module(f"multihead_n{n}_H{H}",
                       token_kernel(exprs, params, U, r, c, tsum)).kernel


# ---------------------------------------------------------------------------------------------
# the prompt sample


@dataclass(frozen=True)
class Sample:
    """A fixed sample of prompts in reduced form: ``u[b, s, j]`` ``(n, S, L)``, ``r[b, s]``
    ``(n, S)``."""

    u: np.ndarray
    r: np.ndarray

    @property
    def size(self) -> int:
        return self.r.shape[1]


def symmetries(d) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Maps ``(u, r) -> (s_b u[p_b], r[p_b])`` that keep the distribution of a prompt: ``p`` a
    relabeling of tasks that keeps every block size (all of them when there are at most 24, else
    the cyclic shifts within each class of equal sizes) and ``s`` a sign per block (``u`` is
    symmetric; all ``2^n`` patterns for ``n <= 4``, else the identity and the flip of every
    block)."""
    n = len(d)
    perms = [p for p in itertools.permutations(range(n)) if all(d[p[b]] == d[b] for b in range(n))]
    if len(perms) > 24:
        classes = {}
        for b, size in enumerate(d):
            classes.setdefault(size, []).append(b)
        shifts = math.lcm(*(len(c) for c in classes.values()))
        perms = set()
        for s in range(shifts):
            p = list(range(n))
            for members in classes.values():
                for i, b in enumerate(members):
                    p[b] = members[(i + s) % len(members)]
            perms.add(tuple(p))
        perms = sorted(perms)
    signs = list(itertools.product((1, -1), repeat=n)) if n <= 4 else [(1,) * n, (-1,) * n]
    return [(p, s) for p in perms for s in signs]


def draw(n: int, d, L: int, samples: int, sampler: str = "mc", seed: int = 0,
         symmetric: bool = False) -> Sample:
    """``u ~ N(0, 1)`` (L n per prompt) and ``r_b ~ chi(d_b)``: seeded Monte Carlo, or scrambled
    Sobol points (SciPy) mapped through the inverse normal and chi distribution functions.

    ``symmetric``: ``ceil(samples / G)`` prompts, each mapped by every one of the ``G``
    :func:`symmetries` of the prompt distribution (tasks of equal block size are exchangeable, u
    is symmetric), so the sample-average loss keeps the symmetries the population loss has (a
    start symmetric between tasks stays so, as in the exact dynamics), and terms odd in u cancel
    exactly instead of adding noise (at a small start the mu-gradient is such a term's
    remainder)."""
    if symmetric:
        group = symmetries(d)
        base = draw(n, d, L, -(-samples // len(group)), sampler, seed)
        return Sample(np.ascontiguousarray(np.concatenate(
                          [np.array(s)[:, None, None] * base.u[list(p)] for p, s in group],
                          axis=1)),
                      np.concatenate([base.r[list(p)] for p, _ in group], axis=1))
    from scipy import stats

    rng = np.random.default_rng(seed)
    if sampler == "qmc":
        with warnings.catch_warnings():     # any sample size: the first points of one sequence
            warnings.filterwarnings("ignore", message=".*balance properties of Sobol.*")
            pts = stats.qmc.Sobol(n * L + n, scramble=True, seed=rng).random(samples)
        pts = np.clip(pts, 1e-16, 1 - 1e-16)
        z = stats.norm.ppf(pts[:, : n * L]).reshape(samples, n, L)
        r = np.array([stats.chi.ppf(pts[:, n * L + b], d[b]) for b in range(n)])
    else:
        z = rng.standard_normal((samples, n, L))
        r = np.array([np.sqrt(rng.chisquare(d[b], samples)) for b in range(n)])
    return Sample(np.ascontiguousarray(z.transpose(1, 0, 2)), r)


def _constants(config: FullConfig):
    return [d - 1 + float(config.sigma) ** 2 for d in config.d]


def loss_and_gradient(config: FullConfig, omega, mu, sample: Sample, per_prompt: bool = False,
                      compiled: bool = True):
    """The sample-average loss and its gradient ``(G_w, G_u)`` (``dL/domega``, ``dL/dmu``, each
    ``(H, n)``) at ``omega, mu``; ``per_prompt`` also returns the per-prompt losses.
    ``compiled=False`` evaluates the lambdified expressions with numpy (the reference)."""
    H, n = config.H, config.n
    params = np.concatenate([np.ravel(omega), np.ravel(mu)]).astype(float)
    c = np.array(_constants(config))
    S = sample.size
    out = np.empty((S, 1 + 2 * H * n))
    with np.errstate(over="raise", invalid="raise"):
        if compiled:
            _kernel(n, H)(params, sample.u, sample.r, c, out)
        else:
            fn = _numpy(n, H)
            for start in range(0, S, CHUNK):
                sl = slice(start, min(start + CHUNK, S))
                cols = fn(list(params), list(sample.u[:, sl]), list(sample.r[:, sl, None]),
                          list(c))
                for e, col in enumerate(cols):
                    out[sl, e] = np.broadcast_to(np.asarray(col, float), (sl.stop - sl.start, 1))[:, 0]
    if not np.all(np.isfinite(out)):
        raise FloatingPointError("non-finite value in the token sums")
    total = out.mean(axis=0)
    result = (total[0], total[1: 1 + H * n].reshape(H, n), total[1 + H * n:].reshape(H, n))
    return result + (out[:, 0].copy(),) if per_prompt else result


def population_loss(config: FullConfig, omega, mu, samples: int = 200_000, seed: int = 1):
    """The population loss at ``omega, mu`` on a fresh Monte Carlo sample (independent of the
    training sample): ``(mean, standard error)``."""
    sample = draw(config.n, config.d, config.L, samples, "mc", seed)
    _, _, _, losses = loss_and_gradient(config, omega, mu, sample, per_prompt=True)
    return float(losses.mean()), float(losses.std(ddof=1) / math.sqrt(len(losses)))


class FullObjective:
    """The trained model's loss in the reduced model's coordinates, for its flows
    (:func:`numerics.multihead.simulate` with ``objective=``): ``y = (omega, mu)`` flattened with
    ``omega`` the diagonal of ``W_h`` and the squared error summed over the n outputs (``n`` times
    the per-output average), on one fixed prompt sample."""

    def __init__(self, n: int, H: int, d, L: int, sigma="0", samples: int = 2048,
                 sampler: str = "qmc", seed: int = 0):
        self.config = FullConfig.make(n, H, ",".join(map(str, d)), L, sigma, init_scheme="small",
                                      samples=samples, sampler=sampler, seed=seed)
        self.sample = draw(n, self.config.d, L, samples, sampler, seed, True)
        self._last = None

    def describe(self) -> str:
        return f"full ({self.sample.size} prompts, {self.config.sampler}, symmetric)"

    def _evaluate(self, y):
        y = np.asarray(y, float)
        if self._last is None or not np.array_equal(self._last[0], y):
            H, n = self.config.H, self.config.n
            try:
                loss, Gw, Gu = loss_and_gradient(self.config, y[: H * n].reshape(H, n),
                                                 y[H * n:].reshape(H, n), self.sample)
            except FloatingPointError:      # far out (an integrator's trial point): no value
                self._last = (y.copy(), math.nan, np.full(y.shape, math.nan))
                return self._last
            self._last = (y.copy(), n * loss, n * np.concatenate([Gw.ravel(), Gu.ravel()]))
        return self._last

    def loss(self, y) -> float:
        return float(self._evaluate(y)[1])

    def gradient(self, y) -> np.ndarray:
        return self._evaluate(y)[2].copy()


# ---------------------------------------------------------------------------------------------
# initialisation


def official_init(config: FullConfig):
    """The authors' structured start: ``Q = K = L^{-3/4} I`` (so ``W_h = L^{-3/2}/sqrt(d_x + n)
    I``), ``V, O`` diagonal on the labels with ``o = v = L^{-3/4}``, and ``2 L^{-3/4}`` on the task
    head h favours (``mu = L^{-3/2}``, ``4 L^{-3/2}``).  Head h favours task h (their code serves
    ``H = n``); with ``H < n`` the tasks beyond H have no favoured head (``H > n`` is refused: two
    heads would start alike, and the exact dynamics keep them alike).  Returns ``(q, k, o, v)``,
    each ``(H, n)``."""
    H, n, L = config.H, config.n, config.L
    base = L ** -0.75
    q = np.full((H, n), base)
    o = np.full((H, n), base)
    o[np.arange(H), np.arange(H)] = 2 * base
    return q, q.copy(), o, o.copy()


def _small_init(config: FullConfig):
    """``omega, mu = init (1 + U(-0.2, 0.2))``, seeded; balanced factors."""
    rng = np.random.default_rng(config.seed)
    H, n = config.H, config.n
    y = float(config.init) * (1 + rng.uniform(-0.2, 0.2, 2 * H * n))
    omega, mu = y[: H * n].reshape(H, n), y[H * n:].reshape(H, n)
    q = np.sqrt(omega * config.scale)
    o = np.sqrt(mu)
    return q, q.copy(), o, o.copy()


def initial_factors(config: FullConfig):
    """``(q, k, o, v)`` of the configuration's start, imbalanced when asked: ``q = a + b``,
    ``k = a - b``, ``b = EPS a``, ``a`` rescaled by ``(1 - EPS^2)^{-1/2}`` so ``q k`` is kept."""
    q, k, o, v = official_init(config) if config.init_scheme == "official" else \
        _small_init(config)
    eps = float(config.imbalance)
    if eps:
        grow = 1 / math.sqrt(1 - eps**2)
        q, k = q * grow * (1 + eps), k * grow * (1 - eps)
        o, v = o * grow * (1 + eps), v * grow * (1 - eps)
    return q, k, o, v


# ---------------------------------------------------------------------------------------------
# training


@dataclass
class FullTrajectory(Record):
    """Recorded GD steps of the trained model: ``t`` (cumulative learning rate), ``loss`` (the
    sample-average loss), ``omega[j, h, i]``, ``mu[j, h, i]``, the learning rates and largest
    gradient entries, ``coefficient[j, i] = sum_h mu_{h,i} omega_{h,i}`` (the large-L prediction
    coefficient of task i), and the final population loss on a fresh sample with its standard
    error."""

    config: dict
    t: np.ndarray
    loss: np.ndarray
    omega: np.ndarray
    mu: np.ndarray
    lr: np.ndarray
    max_grad: np.ndarray
    coefficient: np.ndarray
    final_loss: float
    final_loss_stderr: float
    steps: int
    summary: dict | None = None

    ARRAYS = ("t", "loss", "omega", "mu", "lr", "max_grad", "coefficient")
    PER_STEP = ("loss", "omega", "mu", "lr", "max_grad", "coefficient")

    def at(self, t: float) -> int:
        """Index of the last record at or before cumulative time ``t``."""
        return max(int(np.searchsorted(self.t, t, side="right")) - 1, 0)

    def warmup_end(self, drop: float = 0.05) -> float | None:
        """First time the loss has made ``drop`` of its fall over the run (reconstructed)."""
        fall = self.loss[0] - self.loss.min()
        idx = np.flatnonzero(self.loss[0] - self.loss >= drop * fall) if fall > 0 else []
        return float(self.t[idx[0]]) if len(idx) else None

    def emergence(self, level: float = 0.5) -> list:
        """Per task, the first time its coefficient ``sum_h mu omega`` reaches ``level``
        (reconstructed; None when it does not)."""
        out = []
        for i in range(self.coefficient.shape[1]):
            idx = np.flatnonzero(self.coefficient[:, i] >= level)
            out.append(float(self.t[idx[0]]) if len(idx) else None)
        return out

    def allocation(self, j: int = -1) -> np.ndarray:
        """Per head, the share of its output energy ``sum_i mu_{h,i}^2`` on its best task."""
        energy = self.mu[j] ** 2
        return energy.max(axis=1) / np.maximum(energy.sum(axis=1), 1e-300)


def _step_lr(config: FullConfig, step: int, previous_max: float | None) -> float:
    if config.schedule == "flow":
        return float(config.lr)
    if step == 0 or previous_max is None:
        return FIRST_LR
    return MAX_LR if previous_max <= ELBOW else min(SCALE / previous_max, MAX_LR)


def train(config: FullConfig, t_end: float, sample: Sample | None = None, every: int = 1,
          final_samples: int = 200_000, progress: bool = False, max_steps: int = 10**6
          ) -> FullTrajectory:
    """GD on the sample-average loss until the cumulative learning rate reaches ``t_end``.

    The elbow schedule computes step t's learning rate from step t-1's largest gradient entry (as
    the authors' scheduler does).  Raises :class:`SimulationError` naming the step on NaN or
    overflow."""
    if not (isinstance(t_end, (int, float)) and math.isfinite(t_end) and 0 < t_end <= 10**7):
        raise ConfigError(f"t_end must be a positive number up to 1e7, got {t_end!r}")
    sample = sample or draw(config.n, config.d, config.L, config.samples, config.sampler,
                            config.seed, config.symmetric)
    q, k, o, v = initial_factors(config)
    s, m = config.scale, np.array(config.d, float)[None, :]
    omega, mu = q * k / s, o * v
    records = {name: [] for name in ("t", "loss", "omega", "mu", "lr", "max_grad")}
    t, step, previous = 0.0, 0, None
    from tqdm import tqdm
    bar = tqdm(total=float(t_end), disable=not progress, unit="t", mininterval=0.5, leave=False)
    while True:
        try:
            loss, Gw, Gu = loss_and_gradient(config, omega, mu, sample)
        except FloatingPointError as exc:
            raise SimulationError(step, f"overflow in the token sums ({exc})") from None
        if not (np.isfinite(loss) and np.all(np.isfinite(Gw)) and np.all(np.isfinite(Gu))):
            raise SimulationError(step, "loss or gradient is not finite (NaN or overflow)")
        if config.param == "factored":
            grads = (k * Gw / (m * s), q * Gw / (m * s), v * Gu, o * Gu)
        else:
            grads = (Gw / m, Gu)
        biggest = max(float(np.max(np.abs(g))) for g in grads)
        lr = _step_lr(config, step, previous)
        done = t >= t_end - 1e-12 or step >= max_steps
        if done or step % every == 0:
            for name, value in (("t", t), ("loss", loss), ("omega", omega), ("mu", mu),
                                ("lr", lr), ("max_grad", biggest)):
                records[name].append(np.copy(value))
        if done:
            break
        if config.param == "factored":
            q, k, o, v = (x - lr * g for x, g in zip((q, k, o, v), grads))
            omega, mu = q * k / s, o * v
        else:
            omega, mu = omega - lr * grads[0], mu - lr * grads[1]
        t += lr
        step += 1
        previous = biggest
        bar.update(lr)
    bar.close()
    final, stderr = population_loss(config, omega, mu, final_samples, seed=config.seed + 1)
    om, mm = np.array(records["omega"]), np.array(records["mu"])
    traj = FullTrajectory(
        config=config.to_dict() | {"t_end": float(t_end), "every": every,
                                   "final_samples": final_samples, "prompts": sample.size},
        t=np.array(records["t"]), loss=np.array(records["loss"]), omega=om, mu=mm,
        lr=np.array(records["lr"]), max_grad=np.array(records["max_grad"]),
        coefficient=(om * mm).sum(axis=1), final_loss=final, final_loss_stderr=stderr,
        steps=step)
    traj.summary = {"warmup_end": traj.warmup_end(), "emergence": traj.emergence(),
                    "allocation": traj.allocation().tolist(),
                    "coefficient": traj.coefficient[-1].tolist(),
                    "definitions": "reconstructed: warm-up ends when the sample loss has made 5% "
                                   "of its fall; task i emerges when sum_h mu_{h,i} omega_{h,i} "
                                   "reaches 1/2; allocation: per head, the share of sum_i "
                                   "mu_{h,i}^2 on its best task"}
    return traj
