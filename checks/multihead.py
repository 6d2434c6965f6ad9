"""multihead: the claims the tool checks and the quantities they measure.

A configuration is ``n`` tasks on blocks of equal size ``d``, ``H >= n`` heads, ``L`` context
tokens, the initial scale ``init`` of the spectral weights (noise-free prompts, the balanced flow of
separately trained Q, K, V, O).  Every quantity comes from one run of the flow to ``t = 10^5``
(:func:`numerics.multihead.simulate`) and, for the optimality and separation ratios, the best
reduced loss found by direct minimisation; the model and its reduction are our reconstruction
(:mod:`theory.multihead`), the claims say which parts the paper's abstract states.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from functools import lru_cache, partial

import numpy as np

from ..numerics.errors import ConfigError, SimulationError
from ..numerics.multihead_full import INIT_SCHEMES, SAMPLERS, SCHEDULES, FullConfig, train
from ..numerics.multihead import (SETTLE, T_END, MultiheadConfig, best_loss, integrate,
                                monte_carlo_loss, reduced_loss, simulate)
from ..numerics.numbers import positive_real, whole_number
from ..theory import multihead as thm

from .claims import Claim, NotReached, Option, Quantity, Region as _Region, Setting
from .events import EventError, compile_event
from .options import precision

__all__ = ["Region", "QUANTITIES", "CLAIMS", "VARIABLES", "DEFAULT_REGION", "config_for",
           "configurations", "run", "best", "RESIDUAL", "SHARE", "SETTING",
           "EXAMPLE", "report_extras", "reduction_agreement", "precision_check",
           "drawn_configurations", "separation_point"]

#: Variables a bound may use: n tasks, H heads, block size d, prompt length L, initial scale init.
VARIABLES = ("n", "H", "d", "L", "init")

#: M1: the flow has converged when ``max |dy/dt| <= RESIDUAL`` where the run ends (it settled at
#: ``max |dy/dt| = SETTLE``, or ``t = 10^5``).
RESIDUAL = 1e-6
#: M3: a head serves a single task when this share of its key-query energy is on one task.
SHARE = 0.99
#: Multi-start sizes of the direct minimisation (H heads; one head, which is cheap).
STARTS, SINGLE_STARTS = 8, 16


@dataclass(frozen=True)
class Region(_Region):
    """Configurations where a multihead claim is asserted: ``n`` tasks, ``H = n + extra`` heads,
    block size ``d``, context length ``L``, initial scale ``init``; ``sweep`` names the scaling
    variables (each swept with the others at the centre; ``H`` through ``extra``, or through
    ``extra_sweep`` when the sweep should reach further than the search)."""

    n: tuple[int, int] = (2, 3)
    extra: tuple[int, int] = (0, 1)
    d: tuple[int, int] = (4, 16)
    L: tuple[int, int] = (50, 800)
    init: tuple[float, float] = (0.01, 0.01)
    sweep: tuple[str, ...] = ("L", "d")
    extra_sweep: tuple[int, int] | None = None
    model: str = "reduced"

    def strategy(self):
        from hypothesis import strategies as st

        def log_uniform(lo, hi):
            if lo == hi:
                return st.just(lo)
            return st.floats(math.log(lo), math.log(hi)).map(math.exp)

        @st.composite
        def draw(draw_):
            n = draw_(st.integers(*self.n))
            return {"n": n, "H": n + draw_(st.integers(*self.extra)),
                    "d": int(round(draw_(log_uniform(*self.d)))),
                    "L": int(round(draw_(log_uniform(*self.L)))),
                    "init": draw_(log_uniform(*self.init)), "model": self.model}
        return draw()

    def base(self) -> dict:
        """The centre: geometric for d, L, init; the lower middle for n and extra."""
        n = (self.n[0] + self.n[1]) // 2
        return {"n": n, "H": n + (self.extra[0] + self.extra[1]) // 2,
                "d": int(round(math.sqrt(self.d[0] * self.d[1]))),
                "L": int(round(math.sqrt(self.L[0] * self.L[1]))),
                "init": math.sqrt(self.init[0] * self.init[1]), "model": self.model}

    INVERSE = ("init",)
    INTEGER = ("n", "H", "d", "L")

    def sweep_values(self, var: str, points: int) -> list:
        """H through ``H - n`` (``extra_sweep`` when given), n over its whole range, the others
        geometric."""
        if var == "H":
            lo, hi = self.extra_sweep or self.extra
            return [self.base()["n"] + e for e in range(lo, hi + 1)]
        if var == "n":
            return list(range(self.n[0], self.n[1] + 1))
        return super().sweep_values(var, points)

    def at(self, params: dict, var: str, value) -> dict:
        if var == "n":      # keep H - n at the centre
            params["H"] += int(value) - params["n"]
        params[var] = float(value) if var == "init" else int(round(value))
        return params

    def describe(self) -> str:
        return (f"n in {list(self.n)}, H - n in {list(self.extra)}, d in {list(self.d)}, "
                f"L in {list(self.L)}, init in {list(self.init)}"
                + (f", H - n in {list(self.extra_sweep)} in the sweep" if self.extra_sweep else "")
                + ("" if self.model == "reduced" else f"; the {self.model} model"))


def _blocks(d):
    """``d`` of a params dict (one size for every task, or one per task) as a hashable value."""
    return tuple(int(x) for x in d) if isinstance(d, (list, tuple)) else int(d)


def config_for(params: dict) -> MultiheadConfig:
    d = _blocks(params["d"])
    return MultiheadConfig.make(int(params["n"]), int(params["H"]),
                                ",".join(map(str, d)) if isinstance(d, tuple) else d,
                                int(params["L"]), init=repr(float(params.get("init", 0.01))))


def configurations(n=(2, 3), extra=(0, 2), d=(2, 16), L=(30, 800)):
    """Hypothesis strategy of params dicts with ``H >= n`` heads and a block size per task."""
    from hypothesis import strategies as st

    @st.composite
    def draw(draw_):
        tasks = draw_(st.integers(*n))
        return {"n": tasks, "H": tasks + draw_(st.integers(*extra)),
                "d": tuple(draw_(st.lists(st.integers(*d), min_size=tasks, max_size=tasks))),
                "L": int(round(math.exp(draw_(st.floats(*map(math.log, L)))))), "init": 0.01}
    return draw()


#: Prompts (Sobol, closed under the prompt distribution's symmetries) of the trained model's loss
#: in the claims.
FULL_SAMPLES = 1024
#: Multi-start sizes of the direct minimisation on the trained model's loss (H heads; one head).
FULL_STARTS, FULL_SINGLE_STARTS = 3, 4


@lru_cache(maxsize=32)
def _objective(n, H, d, L, model):
    """The trained model's loss at finite L in the flow's coordinates (None: the reduced L~)."""
    if model == "reduced":
        return None
    if model != "full":
        raise ValueError(f"unknown model {model!r}; choose reduced or full")
    from ..numerics.multihead_full import FullObjective
    blocks = d if isinstance(d, tuple) else (d,) * n
    return FullObjective(n, H, blocks, L, samples=FULL_SAMPLES)


@lru_cache(maxsize=64)
def _run_cached(n, H, d, L, init, model="reduced"):
    config = config_for({"n": n, "H": H, "d": d, "L": L, "init": init})
    try:
        return simulate(config, objective=_objective(n, H, d, L, model))
    except SimulationError as exc:
        raise NotReached(f"the flow broke down at n={n}, H={H}, d={d}, L={L}: {exc}") from None


def _args(params):
    return (int(params["n"]), int(params["H"]), _blocks(params["d"]), int(params["L"]),
            float(params.get("init", 0.01)), params.get("model", "reduced"))


def run(params: dict):
    """The flow of a configuration to ``t = 10^5`` (cached): a
    :class:`numerics.multihead.MultiheadTrajectory`; ``params["model"] == "full"``: the flow of
    the trained model's loss at finite L in the same coordinates."""
    return _run_cached(*_args(params))


@lru_cache(maxsize=64)
def _best_cached(n, H, d, L, init, model, heads):
    traj = _run_cached(n, H, d, L, init, model)
    config = config_for({"n": n, "H": H, "d": d, "L": L, "init": init})
    objective = None if model == "reduced" else (lambda h: _objective(n, h, d, L, model))
    full = model != "reduced"
    if heads == H:
        return best_loss(config, starts=FULL_STARTS if full else STARTS, extra=[traj.limit],
                         objective=objective)
    return best_loss(config, heads=heads, starts=FULL_SINGLE_STARTS if full else SINGLE_STARTS,
                     objective=objective)


def best(params: dict, heads: int | None = None):
    """The smallest loss (``L~``, or the trained model's) found by direct minimisation with
    ``heads`` heads (default H; the flow's limit is one of the starts): ``(loss, state)``."""
    n, H, d, L, init, model = _args(params)
    return _best_cached(n, H, d, L, init, model, heads or H)


# ---------------------------------------------------------------------------------------------
# quantities


def _phase(name, params, max_steps):
    value = getattr(run(params), name)
    if value is None:
        raise NotReached(f"the {name} event did not happen by t = 10^5 at {params}")
    return value


#: What a user's event may read at flow time ``t``: the reduced loss, ``omega[h, i]`` and
#: ``mu[h, i]`` (head h, task i; 1-based).
OBSERVABLES = {"loss": 0, "omega": 2, "mu": 2}


def _user_event(condition: str, params: dict, max_steps: int) -> float:
    """The first flow time at which ``condition`` holds: the first grid point where it does,
    then bisection on the continuous solution to 1e-9 relative (``max_steps`` is not used: the
    flow runs to t = 10^5 or until it settles)."""
    predicate = compile_event(condition, VARIABLES, tuple(OBSERVABLES.items()), None)
    config = config_for(params)
    n, H, d, L, _, model = _args(params)
    objective = _objective(n, H, d, L, model)
    try:
        t, Y, loss, state = integrate(config, T_END, dense=True, settle=SETTLE,
                                      objective=objective)
    except SimulationError as exc:
        raise NotReached(f"the flow broke down at {params}: {exc}") from None
    size = config.H * config.n

    def holds(s, y=None):
        y = state(s) if y is None else y
        return predicate(dict(params) | {
            "t": s, "loss": float(objective.loss(y) if objective is not None
                                  else reduced_loss(config, y)),
            "omega": np.reshape(y[:size], (config.H, config.n)),
            "mu": np.reshape(y[size:], (config.H, config.n))})

    hit = next((j for j in range(len(t)) if holds(t[j], Y[j])), None)
    if hit is None:
        raise NotReached(f"{condition!r} did not hold by t = {t[-1]:.6g} at {params}")
    if hit == 0:
        return float(t[0])
    lo, hi = float(t[hit - 1]), float(t[hit])
    while hi - lo > 1e-9 * hi:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if holds(mid) else (mid, hi)
    return hi


def event_quantity(condition: str, family: str | None = None, feature: int | None = None):
    """The first flow time at which ``condition`` (over ``loss``, ``omega[h, i]``, ``mu[h, i]``,
    ``t`` and the variables) holds, as a :class:`Quantity`."""
    if family is not None or feature is not None:
        raise EventError("multihead events take no family or feature")
    compile_event(condition, VARIABLES, tuple(OBSERVABLES.items()), None)
    return Quantity(f"multihead.event[{condition}]", partial(_user_event, condition),
                    f"first flow time with {condition}", VARIABLES)


def _speed_ratio(params, max_steps):
    value = run(params).speed_ratio()
    if value is None:
        raise NotReached(f"the phases were not both located at {params}")
    return value


def _settling(params, max_steps):
    value = run(params).settled
    if value is None:
        raise NotReached(f"the flow did not settle by t = 10^5 at {params}")
    return value


def _allocation(params, max_steps):
    return run(params).active_share()


def _unserved(params, max_steps):
    return float(params["n"] - len(run(params).served))


def _residual(params, max_steps):
    return run(params).residual


def _optimality(params, max_steps):
    return float(run(params).loss[-1] / best(params)[0])


def _separation(params, max_steps):
    return float(best(params, heads=1)[0] / run(params).loss[-1])


QUANTITIES = {name: Quantity(name, fn, description, VARIABLES) for name, (fn, description) in {
    "multihead.phase_time.warmup": (partial(_phase, "warmup"), "end of warm-up: the loss has made 5% of "
                                    "its fall L~(0) - L~(10^5) (reconstructed event)"),
    "multihead.phase_time.emergence": (partial(_phase, "emergence"), "end of emergence: loss within 5% of "
                                       "its fall of the limit and every active head with 95% of "
                                       "its key-query energy on one task (reconstructed event)"),
    "multihead.phase_speed_ratio": (_speed_ratio, "mean -dL~/dt over the warm-up / largest "
                                    "-dL~/dt during the emergence"),
    "multihead.allocation": (_allocation, "at the limit, the smallest "
                             "share of a head's key-query energy on its best task, over the active "
                             "heads (output energy >= 1% of the largest head's)"),
    "multihead.unserved_tasks": (_unserved,
                                 "at the limit, the number of tasks that are no active head's "
                                 "best task"),
    "multihead.residual": (_residual, "max |d(omega, mu)/dt| where the run "
                           "ends: settled (1e-8) or t = 10^5"),
    "multihead.settling_time": (_settling, "first time with max |d(omega, mu)/dt| <= 1e-8 after "
                                "the loss has halved"),
    "multihead.optimality_ratio": (_optimality, "L~ at the flow's limit / the best L~ found by "
                                   "multi-start L-BFGS-B with H heads"),
    "multihead.separation_ratio": (_separation, "best L~ found with one head / L~ at the "
                                   "H-head flow's limit"),
}.items()}
Q = QUANTITIES


# ---------------------------------------------------------------------------------------------
# claims

#: The region ``icl-verify bound`` uses for multihead quantities.
DEFAULT_REGION = Region(sweep=("L", "d"))
_WARMUP_REGION = Region(init=(0.002, 0.05), sweep=("L", "d", "init"))
# the best found stops improving beyond H = n + 1 (measured): the sweep in H reaches n + 6, so that
# the larger half of it shows whether the ratio keeps growing
_OPTIMALITY_REGION = Region(extra=(0, 2), extra_sweep=(0, 6), sweep=("L", "d", "H"))

CLAIMS = {c.id: c for c in [
    Claim("M1", "Gradient flow converges under a suitable initialisation (paper); measured: "
          "max |d(omega, mu)/dt| <= 1e-6 where the run ends (it stops once the velocity is 1e-8, "
          "else at t = 10^5), from small positive weights (init), balanced Q, K, V, O.", "paper",
          Q["multihead.residual"], repr(RESIDUAL), DEFAULT_REGION, kind="le"),
    Claim("M2", "Three phases: a warm-up where the loss decreases slowly, an emergence where it "
          "decreases rapidly, a convergence phase (paper); measured: the mean loss-decrease rate "
          "over the warm-up is below the peak rate in the emergence, with the phase ends of our "
          "reading (5% of the fall; within 5% of the limit and heads allocated).", "paper",
          Q["multihead.phase_speed_ratio"], "1", DEFAULT_REGION, kind="lt"),
    Claim("M2.warmup", "The warm-up lasts O(1/(d init)): for small weights the balanced flow is "
          "du/dt ~ 4 d u^2 (1 - c_i ~ 1, the 1/L term dropped), which blows up at "
          "t = 1/(4 d u_0).", "derived", Q["multihead.phase_time.warmup"], "1/(d*init)",
          _WARMUP_REGION),
    Claim("M3", "Task allocation: at the limit each attention head focuses on a single task "
          "(paper); measured: every active head has >= 99% of its key-query energy on one task.",
          "paper", Q["multihead.allocation"], repr(SHARE), DEFAULT_REGION, kind="ge"),
    Claim("M3.cover", "One head per task: with H >= n heads every task is the best task of some "
          "active head at the limit (reconstructed).", "reconstructed",
          Q["multihead.unserved_tasks"], "0", DEFAULT_REGION, kind="le"),
    Claim("M4", "Optimality: the limit of gradient flow is within a constant factor of the best "
          "multi-head softmax model (paper); measured on the reduced loss against the best "
          "found by direct minimisation, O(1) in L, d and H.", "paper",
          Q["multihead.optimality_ratio"], "1", _OPTIMALITY_REGION),
    Claim("M5", "Strict separation: single-head attention predicts worse than multi-head "
          "(paper); measured: the best single-head reduced loss over the H-head limit is > 1.",
          "paper", Q["multihead.separation_ratio"], "1", DEFAULT_REGION, kind="gt"),
]}

#: The same claims on the trained model at finite L: the flow of its loss (each evaluation sums
#: over FULL_SAMPLES prompts of L tokens) from the same start, in the same coordinates, measured
#: the same way; a smaller region than the reduced model's, for the cost of a run (a flow to its
#: limit takes 10-60 s at L = 50-200), and checked only when named.
_FULL_REGION = Region(L=(25, 200), d=(4, 8), model="full")
_FULL_OPTIMALITY_REGION = Region(L=(25, 200), d=(4, 8), extra=(0, 1), extra_sweep=(0, 3),
                                 sweep=("L", "d", "H"), model="full")
_TRAINED = (" On the trained model at finite L: the flow of its loss (Q, K, V, O, the authors' "
            "conventions, a fixed sample of 1024 prompts closed under the prompt distribution's "
            "symmetries) from the "
            "same start, in the same coordinates.")
for _id, _region in (("M1", _FULL_REGION), ("M2", _FULL_REGION), ("M3", _FULL_REGION),
                     ("M3.cover", _FULL_REGION), ("M4", _FULL_OPTIMALITY_REGION),
                     ("M5", _FULL_REGION)):
    _c = CLAIMS[_id]
    CLAIMS[_id + ".full"] = Claim(_id + ".full", _c.statement.replace("reduced loss", "loss")
                                  + _TRAINED, _c.source, _c.quantity, _c.bound, _region,
                                  kind=_c.kind, default=False)


# ---------------------------------------------------------------------------------------------
# the numbers the report shows

#: The example run: two tasks, three heads (one stays idle or duplicates a task).
EXAMPLE = {"n": 2, "H": 3, "d": 4, "L": 50, "init": 0.01}
#: Configurations of the separation curve, and the context lengths.
SEPARATION = [{"n": 2, "H": 2, "d": 4}, {"n": 3, "H": 3, "d": 4}, {"n": 2, "H": 2, "d": 16}]
SEPARATION_L = [25, 50, 100, 200, 400, 800, 1600]


def separation_point(params):
    """``(L~ single best, L~ limit, ratio)`` at ``params`` (module level: runs in a process)."""
    single, limit = best(params, heads=1)[0], float(run(params).loss[-1])
    return single, limit, single / limit


def reduction_agreement(samples: int = 20_000):
    """``L~`` against Monte Carlo of the full model (explicit prompts) at the flow's limit and at
    the best reduced state found: rows with the relative difference and its standard error."""
    cases = [EXAMPLE, {"n": 2, "H": 2, "d": 16, "L": 100, "init": 0.01},
             {"n": 2, "H": 2, "d": (4, 12), "L": 200, "init": 0.01},
             {"n": 3, "H": 3, "d": 8, "L": 400, "init": 0.01}]
    rows = []
    for params in cases:
        config = config_for(params)
        states = [("limit", run(params).limit), ("best found", best(params)[1])]
        for label, y in states:
            mc, se = monte_carlo_loss(config, y, samples=samples, seed=5)
            red = reduced_loss(config, y)
            rows.append({"params": params, "state": label, "reduced": float(red), "montecarlo": mc,
                         "stderr": se, "relative": (red - mc) / mc, "relative_se": se / mc})
    return rows


def precision_check(t_end: float = 2.0, digits: int = 30):
    """The flow at float64 (Radau, rtol 1e-10) against mpmath's Taylor integrator at ``digits``
    digits on ``[0, t_end]``: ``{"max_abs": ..., "max_rel": ...}``."""
    config = MultiheadConfig.make(2, 2, 4, 50, init="0.01")
    _, Y, _ = integrate(config, t_end, 6)
    _, Z, _ = integrate(config, t_end, 6, digits=digits)
    return {"config": config.to_dict(), "t_end": t_end, "digits": digits,
            "max_abs": float(np.max(np.abs(Y - Z))), "max_rel": float(np.max(np.abs(Y - Z) / Z))}


def drawn_configurations(examples: int = 8):
    """Configurations drawn by Hypothesis (derandomised; a block size per task, H >= n), each run
    to its limit: phases, allocation, tasks served, separation."""
    from hypothesis import HealthCheck, given, settings

    drawn = []

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(configurations(n=(2, 3), extra=(0, 1), d=(2, 12), L=(40, 600)))
    def collect(params):
        if params not in drawn:
            drawn.append(params)

    collect()
    rows = []
    for params in drawn:
        traj = run(params)
        single, limit, ratio = separation_point(params)
        rows.append({"params": params, "warmup": traj.warmup, "emergence": traj.emergence,
                     "settled": traj.settled, "speed_ratio": traj.speed_ratio(),
                     "share": traj.active_share(), "served": len(traj.served),
                     "separation": ratio, "t_end": traj.t[-1]})
    return rows


def report_extras(profile: str = "quick", executor=None) -> dict:
    """Everything the section shows besides the claims' verdicts."""
    points = [dict(c, L=L, init=0.01) for c in SEPARATION for L in SEPARATION_L]
    mapper = executor.map if executor is not None else map
    separation = list(mapper(separation_point, points))
    return {
        "example": run(EXAMPLE), "example_best": best(EXAMPLE)[0],
        "example_single": best(EXAMPLE, heads=1)[0],
        "separation": [dict(p, single=s, limit=lim, ratio=r)
                       for p, (s, lim, r) in zip(points, separation)],
        "agreement": reduction_agreement(),
        "precision": precision_check(),
        "drawn": drawn_configurations(8 if profile == "quick" else 24),
        "proxy": proxy_comparison(executor),
        "official": official_experiment(profile),
    }


# ---------------------------------------------------------------------------------------------
# icl-verify simulate multihead

OPTIONS = (
    Option("--n", "number of tasks (>= 1)", required=True),
    Option("--H", "number of heads (>= 1)", required=True),
    Option("--d", "block size of every task, or a comma list of n", required=True),
    Option("--L", "context length (>= 1)", required=True),
    Option("--sigma", "response noise (>= 0)", "0"),
    Option("--model", "reduced: the large-L reduced loss's gradient flow; full: the trained model "
           "at finite L (population GD on Q, K, V, O over a fixed prompt sample)", "reduced",
           choices=("reduced", "full")),
    Option("--init", "initial scale of omega and mu, in (0, 1/2) (--init-scheme small)", "0.01"),
    Option("--init-scheme", "small: --init on every weight, seeded; official: the authors' "
           "structured start (--model full)", "small", choices=INIT_SCHEMES),
    Option("--flow", "separately trained Q, K, V, O (balanced: from a balanced start; factored: "
           "the same, --imbalance allowed), or merged weights", "balanced",
           choices=("balanced", "factored", "merged")),
    Option("--imbalance", "--model full: start the factors at a +- b, |b| = EPS |a|", "0"),
    Option("--schedule", "--model full: flow (constant --lr) or elbow (the authors' rule)",
           "flow", choices=SCHEDULES),
    Option("--lr", "--model full, --schedule flow: the step size", "0.01"),
    Option("--samples", "--model full: prompts in the fixed training sample", "4096"),
    Option("--sampler", "--model full: qmc (scrambled Sobol) or mc", "qmc", choices=SAMPLERS),
    Option("--final-samples", "--model full: fresh prompts for the final loss", "200000"),
    Option("--asymmetric-sample", "--model full: do not close the sample under the prompt "
           "distribution's symmetries (relabeling tasks of equal block size, sign flips)",
           action="store_true"),
    Option("--every", "--model full: record every this many steps", "1"),
    Option("--seed", "seed of the initial perturbation (and of the prompt sample)", "0"),
    Option("--t-end", "horizon (reduced, default 100000: float64 stops earlier once the flow "
           "settles; full, default 1510: the cumulative learning rate)"),
    Option("--points", "recorded times (>= 10; reduced)", "400"),
    Option("--precision", "significant digits: mpmath's Taylor integrator (slow; keep --t-end "
           "short)"),
    Option("--out", "output JSON file", required=True),
    Option("--quiet", "no summary", action="store_true"),
)


#: A small run (the shared tests use it).
EXAMPLE_ARGS = ("--n", "2", "--H", "2", "--d", "4", "--L", "50", "--t-end", "0.5",
                "--points", "10")


def _t_end(args, default: str) -> float:
    return positive_real(default if args.t_end is None else args.t_end, "t-end")


def run_full_simulation(args):
    """``icl-verify simulate multihead --model full``: validate, train, and summarise."""
    config = FullConfig.make(args.n, args.H, args.d, args.L, args.sigma, args.init_scheme,
                             args.init, args.imbalance,
                             "merged" if args.flow == "merged" else "factored", args.schedule,
                             args.lr, args.samples, args.sampler, args.seed,
                             symmetric=not args.asymmetric_sample)
    t_end = _t_end(args, "1510")
    if t_end > 10**6:
        raise ConfigError(f"t-end must be at most 1e6 for --model full, got {t_end:g}")
    final = whole_number(args.final_samples, "final-samples", at_least=100, at_most=10**7)
    every = whole_number(args.every, "every", at_least=1)
    if args.precision is not None:
        raise ConfigError("--precision applies to --model reduced; the full model runs in float64")
    start = time.perf_counter()
    traj = train(config, t_end, every=every, final_samples=final,
                 progress=sys.stderr.isatty())
    elapsed = time.perf_counter() - start
    fmt = lambda x: "not reached" if x is None else f"{x:.6g}"  # noqa: E731
    cfg, summ = traj.config, traj.summary
    lines = [f"multihead (full model)  n={cfg['n']} H={cfg['H']} d={cfg['d']} L={cfg['L']} "
             f"sigma={cfg['sigma']:g} init={cfg['init_scheme']} imbalance={cfg['imbalance']:g} "
             f"{cfg['param']} schedule={cfg['schedule']} samples={cfg['samples']} "
             f"({cfg['sampler']}) ({elapsed:.1f} s, {traj.steps} steps)",
             f"t = {traj.t[-1]:.6g}: warm-up ends t = {fmt(summ['warmup_end'])}; emergence "
             "(sum_h mu omega >= 1/2) per task: "
             + ", ".join(fmt(x) for x in summ["emergence"]),
             f"sample loss {traj.loss[0]:.6g} -> {traj.loss[-1]:.6g}; population loss "
             f"{traj.final_loss:.6g} +- {traj.final_loss_stderr:.2g} "
             f"({cfg['final_samples']} fresh prompts)",
             f"{'head':>5} {'share':>7}  omega / mu per task"]
    for h in range(cfg["H"]):
        lines.append(f"{h + 1:>5} {summ['allocation'][h]:>7.4f}  "
                     + " ".join(f"{w:.4g}/{m:.4g}" for w, m in zip(traj.omega[-1, h],
                                                                      traj.mu[-1, h])))
    lines.append(f"wrote {args.out} ({len(traj.t)} recorded steps)")
    return traj, "\n".join(lines)


def run_simulation(args):
    """``icl-verify simulate multihead``: validate, run, and summarise."""
    if args.model == "full":
        return run_full_simulation(args)
    if args.init_scheme != "small":
        raise ConfigError(f"--init-scheme {args.init_scheme} needs --model full")
    for flag, value, default in (("--imbalance", args.imbalance, "0"),
                                 ("--schedule", args.schedule, "flow")):
        if str(value) != default:
            raise ConfigError(f"{flag} needs --model full")
    if args.flow == "factored":
        raise ConfigError("--flow factored needs --model full (the reduced flow's is balanced)")
    config = MultiheadConfig.make(args.n, args.H, args.d, args.L, args.sigma, args.init,
                                  args.flow, args.seed)
    t_end = _t_end(args, "100000")
    points = whole_number(args.points, "points", at_least=10, at_most=100_000)
    digits = precision(args.precision)
    start = time.perf_counter()
    traj = simulate(config, t_end, points, digits=digits)
    elapsed = time.perf_counter() - start
    fmt = lambda x: "not reached" if x is None else f"{x:.6g}"  # noqa: E731
    cfg = traj.config
    end = (f"settled at t = {traj.settled:.6g}" if traj.settled is not None
           else f"ran to t = {cfg['t_end']:g} without settling: the phases are relative to "
                "the loss there")
    lines = [f"multihead  n={cfg['n']} H={cfg['H']} d={cfg['d']} L={cfg['L']} "
             f"sigma={cfg['sigma']:g} init={cfg['init']:g} flow={cfg['flow']} "
             f"number={cfg['number_type']} ({elapsed:.2f} s)",
             f"phases: warm-up ends t = {fmt(traj.warmup)}, emergence ends t = "
             f"{fmt(traj.emergence)}; {end} (max |dy/dt| = {traj.residual:.3g})",
             f"loss {traj.loss[0]:.6g} -> {traj.loss[-1]:.10g}",
             f"{'head':>5} {'active':>7} {'task':>5} {'share':>8}  omega / mu per task"]
    for h in range(cfg["H"]):
        task = int(np.argmax(traj.omega[-1, h] ** 2))
        lines.append(f"{h + 1:>5} {'yes' if traj.active[h] else 'no':>7} {task + 1:>5} "
                     f"{traj.allocation[h]:>8.4f}  "
                     + " ".join(f"{w:.4g}/{m:.4g}" for w, m in zip(traj.omega[-1, h],
                                                                      traj.mu[-1, h])))
    lines.append(f"wrote {args.out} ({len(traj.t)} recorded times)")
    return traj, "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# the authors' official experiment, on the trained model at finite L

#: n = 3 tasks of block size 4 (d_x = 12), L = 100; H = 3 and H = 1; the official start and the
#: elbow schedule; from the balanced start and with a seeded imbalance; read at two times.
OFFICIAL = {"n": 3, "d": 4, "L": 100, "heads": (3, 1), "imbalance": ("0", "0.1"),
            "times": (1510.0, 4000.0)}
#: Prompts in the training sample (Sobol) by profile, and fresh prompts for each loss read.
OFFICIAL_SAMPLES = {"quick": 2048, "thorough": 4096}
OFFICIAL_FRESH = 100_000


def _parting(a, b) -> float | None:
    """First time the two runs' ``(omega, mu)`` differ by 10% of their scale (reconstructed)."""
    n = min(len(a.t), len(b.t))
    for j in range(n):
        scale = max(np.abs(a.mu[j]).max(), np.abs(a.omega[j]).max(), 1e-300)
        diff = max(np.abs(a.mu[j] - b.mu[j]).max(), np.abs(a.omega[j] - b.omega[j]).max())
        if diff > 0.1 * scale:
            return float(a.t[j])
    return None


def official_run(H: int, imbalance: str, samples: int, setup: dict = OFFICIAL,
                 fresh: int = OFFICIAL_FRESH):
    """One run of the official experiment to the last time: ``(config, trajectory, seconds)``."""
    from ..numerics.multihead_full import FullConfig, train

    cfg = FullConfig.make(setup["n"], H, setup["d"], setup["L"], init_scheme="official",
                          imbalance=imbalance, schedule="elbow", samples=samples)
    start = time.perf_counter()
    traj = train(cfg, setup["times"][-1], final_samples=fresh)
    return cfg, traj, time.perf_counter() - start


def official_experiment(profile: str = "quick", samples: int | None = None,
                        setup: dict = OFFICIAL, fresh: int = OFFICIAL_FRESH) -> dict:
    """The official experiment (``setup``: another n, d, L, heads or times): per run (H,
    imbalance) and per time, the loss on ``fresh`` prompts with its standard error, omega and mu
    per head and task, the coefficients, the allocation, warm-up end and emergence per task; the
    single-head / multi-head loss ratio; and where the balanced and imbalanced runs part."""
    from ..numerics.multihead_full import population_loss

    samples = samples or OFFICIAL_SAMPLES[profile]
    runs, trajs = [], {}
    for H in setup["heads"]:
        for eps in setup["imbalance"]:
            cfg, traj, seconds = official_run(H, eps, samples, setup, fresh)
            trajs[H, eps] = traj
            at = []
            for T in setup["times"]:
                j = traj.at(T)
                loss, se = population_loss(cfg, traj.omega[j], traj.mu[j], fresh,
                                           seed=cfg.seed + 1)
                at.append({"t": float(traj.t[j]), "loss": loss, "stderr": se,
                           "sample_loss": float(traj.loss[j]),
                           "omega": traj.omega[j].tolist(), "mu": traj.mu[j].tolist(),
                           "coefficient": traj.coefficient[j].tolist(),
                           "allocation": traj.allocation(j).tolist(),
                           "emerged": [e is not None and e <= T for e in traj.emergence()]})
            runs.append({"H": H, "imbalance": float(eps), "samples": samples,
                         "seconds": seconds, "steps": traj.steps,
                         "warmup_end": traj.warmup_end(), "emergence": traj.emergence(),
                         "times": at})
    by = {(r["H"], r["imbalance"]): r for r in runs}
    ratios = []
    one, many = min(setup["heads"]), max(setup["heads"])
    for eps in setup["imbalance"]:
        single, multi = by[one, float(eps)], by[many, float(eps)]
        for a, b in zip(single["times"], multi["times"]):
            ratios.append({"imbalance": float(eps), "t": b["t"], "ratio": a["loss"] / b["loss"],
                           "stderr": a["loss"] / b["loss"] * math.hypot(
                               a["stderr"] / a["loss"], b["stderr"] / b["loss"])})
    first, second = setup["imbalance"][:2]
    parting = {H: _parting(trajs[H, first], trajs[H, second]) for H in setup["heads"]}
    return {"setup": dict(setup, samples=samples, fresh=fresh), "runs": runs,
            "ratios": ratios, "parting": parting}


def official_lines(off) -> list[str]:
    """Markdown lines of the official experiment's figures (:func:`official_experiment`)."""
    def _num(x, fmt=".4g"):
        return "n/a" if x is None else format(x, fmt)

    setup = off["setup"]
    out = ["", "### The official experiment (trained model at finite L)", "",
           f"n = {setup['n']} tasks of block size {setup['d']} (d_x = {setup['n'] * setup['d']}), "
           f"L = {setup['L']}, the authors' structured start (head h favours task h), their elbow "
           f"schedule, population GD on Q, K, V, O over {setup['samples']} prompts (Sobol, closed "
           f"under the distribution's symmetries); each loss on {setup['fresh']} fresh prompts. Warm-up ends "
           "when the sample loss has made 5% of its fall; task i emerges when sum_h mu_{h,i} "
           "omega_{h,i} reaches 1/2 (our reading).", "",
           "| H | imbalance | steps | seconds | warm-up ends | emergence per task | t | loss "
           "(+- s.e.) | coefficient per task | allocation per head |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in off["runs"]:
        for a in r["times"]:
            out.append(f"| {r['H']} | {r['imbalance']:g} | {r['steps']} | {r['seconds']:.0f} | "
                       f"{_num(r['warmup_end'])} | "
                       + ", ".join(_num(e) for e in r["emergence"])
                       + f" | {a['t']:.0f} | {a['loss']:.4f} (+- {a['stderr']:.1g}) | "
                       + ", ".join(f"{c:.3f}" for c in a["coefficient"]) + " | "
                       + ", ".join(f"{x:.3f}" for x in a["allocation"]) + " |")
    out += ["", "Final omega / mu per head (rows) and task (columns):", ""]
    for r in off["runs"]:
        for a in r["times"]:
            cells = "; ".join("[" + ", ".join(f"{w:.3g}/{m:.3g}" for w, m in zip(wr, mr)) + "]"
                              for wr, mr in zip(a["omega"], a["mu"]))
            out.append(f"- H = {r['H']}, imbalance {r['imbalance']:g}, t = {a['t']:.0f}: {cells}")
    out += ["", "| imbalance | t | single-head / multi-head loss |", "| --- | --- | --- |"]
    for q in off["ratios"]:
        out.append(f"| {q['imbalance']:g} | {q['t']:.0f} | {q['ratio']:.3f} (+- "
                   f"{q['stderr']:.1g}) |")
    out += ["", "Balanced and imbalanced runs part (their (omega, mu) differ by 10% of the "
            "largest entry) at: " + ", ".join(f"H = {H}: t = {_num(t)}"
                                               for H, t in off["parting"].items()) + "."]
    return out


# ---------------------------------------------------------------------------------------------
# where the reduced model is a faithful proxy of the trained one

#: n = H = 2, d = 4, the claims' small start; the context lengths of the comparison.
PROXY = {"n": 2, "H": 2, "d": 4, "init": 0.01}
PROXY_L = (25, 50, 100, 200)


def proxy_point(L: int) -> dict:
    """Both models at one L (module level: runs in a process): phase ends, the loss and the state
    at the limit, the allocation and the separation ratio, and the reduced model's relative
    errors against the trained one."""
    out = {"L": L}
    for model in ("reduced", "full"):
        params = dict(PROXY, L=L, model=model)
        traj = run(params)
        out[model] = {"warmup": traj.warmup, "emergence": traj.emergence,
                      "loss": float(traj.loss[-1]), "limit": traj.limit.tolist(),
                      "share": traj.active_share(), "separation": separation_point(params)[2]}
    red, full = out["reduced"], out["full"]

    def rel(key):
        a, b = red[key], full[key]
        return None if a is None or b is None else (a - b) / b
    out["errors"] = {key: rel(key) for key in ("warmup", "emergence", "loss", "separation")}
    out["errors"]["limit"] = float(np.max(np.abs(np.subtract(red["limit"], full["limit"])))
                                   / np.max(np.abs(full["limit"])))
    out["errors"]["share"] = red["share"] - full["share"]
    return out


def proxy_comparison(executor=None, Ls=PROXY_L) -> list[dict]:
    """:func:`proxy_point` at every L of ``Ls``."""
    mapper = executor.map if executor is not None else map
    return list(mapper(proxy_point, Ls))


SETTING = Setting(
    name="multihead", title="gradient flow of multi-head softmax attention on multi-task "
                            "regression (spectral coordinates)",
    variables=VARIABLES, quantities=QUANTITIES, claims=CLAIMS, region=DEFAULT_REGION,
    derive=lambda: ("derived large-L reduction and flows (spectral coordinates; reconstructed "
                    "model)", thm.derivation()),
    options=OPTIONS, simulate=run_simulation, example=EXAMPLE_ARGS,
    precision_example=EXAMPLE_ARGS, observables=OBSERVABLES, event=event_quantity,
    experiments={"official": (
        "the authors' official run on the trained model (n = 3, d = 4, L = 100, H = 3 and 1, "
        "official start, elbow schedule, balanced and imbalance 0.1, read at t = 1510 and 4000)",
        lambda samples: official_experiment(samples=samples or OFFICIAL_SAMPLES["thorough"]),
        official_lines)})
