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
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from numerics.errors import SimulationError
from numerics.multihead import MultiheadConfig, best_loss, simulate

from .features import Claim, NotReached
from .registry import quantity_table

__all__ = ["Region", "QUANTITIES", "CLAIMS", "measure_any", "describe_quantities",
           "DEFAULT_REGION", "config_for", "configurations", "run", "best", "RESIDUAL", "SHARE"]

#: M1: the flow has converged when ``max |dy/dt| <= RESIDUAL`` where the run ends (it settled at
#: ``max |dy/dt| = SETTLE``, or ``t = 10^5``).
RESIDUAL = 1e-6
#: M3: a head serves a single task when this share of its key-query energy is on one task.
SHARE = 0.99
#: Multi-start sizes of the direct minimisation (H heads; one head, which is cheap).
STARTS, SINGLE_STARTS = 8, 16


@dataclass(frozen=True)
class Region:
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
                    "init": draw_(log_uniform(*self.init))}
        return draw()

    def base(self) -> dict:
        """The centre: geometric for d, L, init; the lower middle for n and extra."""
        n = (self.n[0] + self.n[1]) // 2
        return {"n": n, "H": n + (self.extra[0] + self.extra[1]) // 2,
                "d": int(round(math.sqrt(self.d[0] * self.d[1]))),
                "L": int(round(math.sqrt(self.L[0] * self.L[1]))),
                "init": math.sqrt(self.init[0] * self.init[1])}

    def sweep_points(self, var: str, points: int) -> list[dict]:
        base = self.base()
        out = []
        if var == "H":
            lo, hi = self.extra_sweep or self.extra
            values = [base["n"] + e for e in range(lo, hi + 1)]
        elif var == "n":
            values = list(range(self.n[0], self.n[1] + 1))
        else:
            values = np.geomspace(*getattr(self, var), points)
        for v in values:
            params = dict(base)
            if var == "n":      # keep H - n at the centre
                params["H"] += int(v) - params["n"]
            params[var] = float(v) if var == "init" else int(round(v))
            if params not in out:
                out.append(params)
        return out

    @staticmethod
    def axis(var: str):
        if var == "init":
            return "1/init", lambda params: 1 / params["init"]
        return var, lambda params: params[var]

    def describe(self) -> str:
        return (f"n in {list(self.n)}, H - n in {list(self.extra)}, d in {list(self.d)}, "
                f"L in {list(self.L)}, init in {list(self.init)}"
                + (f", H - n in {list(self.extra_sweep)} in the sweep" if self.extra_sweep else ""))


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


@lru_cache(maxsize=64)
def _run_cached(n, H, d, L, init):
    config = config_for({"n": n, "H": H, "d": d, "L": L, "init": init})
    try:
        return simulate(config)
    except SimulationError as exc:
        raise NotReached(f"the flow broke down at n={n}, H={H}, d={d}, L={L}: {exc}") from None


def _args(params):
    return (int(params["n"]), int(params["H"]), _blocks(params["d"]), int(params["L"]),
            float(params.get("init", 0.01)))


def run(params: dict):
    """The flow of a configuration to ``t = 10^5`` (cached): a
    :class:`numerics.multihead.MultiheadTrajectory`."""
    return _run_cached(*_args(params))


@lru_cache(maxsize=64)
def _best_cached(n, H, d, L, init, heads):
    traj = _run_cached(n, H, d, L, init)
    config = config_for({"n": n, "H": H, "d": d, "L": L, "init": init})
    if heads == H:
        return best_loss(config, starts=STARTS, extra=[traj.limit])
    return best_loss(config, heads=heads, starts=SINGLE_STARTS)


def best(params: dict, heads: int | None = None):
    """The smallest reduced loss found by direct minimisation with ``heads`` heads (default H;
    the flow's limit is one of the starts): ``(loss, state)``."""
    n, H, d, L, init = _args(params)
    return _best_cached(n, H, d, L, init, heads or H)


# ---------------------------------------------------------------------------------------------
# quantities


def _phase(name):
    def measure(params, max_steps):
        value = getattr(run(params), name)
        if value is None:
            raise NotReached(f"the {name} event did not happen by t = 10^5 at {params}")
        return value
    return measure


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


def _optimality(params, max_steps):
    return float(run(params).loss[-1] / best(params)[0])


def _separation(params, max_steps):
    return float(best(params, heads=1)[0] / run(params).loss[-1])


QUANTITIES = {
    "multihead.phase_time.warmup": (_phase("warmup"), "end of warm-up: the loss has made 5% of "
                                    "its fall L~(0) - L~(10^5) (reconstructed event)"),
    "multihead.phase_time.emergence": (_phase("emergence"), "end of emergence: loss within 5% of "
                                       "its fall of the limit and every active head with 95% of "
                                       "its key-query energy on one task (reconstructed event)"),
    "multihead.phase_speed_ratio": (_speed_ratio, "mean -dL~/dt over the warm-up / largest "
                                    "-dL~/dt during the emergence"),
    "multihead.allocation": (lambda p, s: run(p).active_share(), "at the limit, the smallest "
                             "share of a head's key-query energy on its best task, over the active "
                             "heads (output energy >= 1% of the largest head's)"),
    "multihead.unserved_tasks": (lambda p, s: float(p["n"] - len(run(p).served)),
                                 "at the limit, the number of tasks that are no active head's "
                                 "best task"),
    "multihead.residual": (lambda p, s: run(p).residual, "max |d(omega, mu)/dt| where the run "
                           "ends: settled (1e-8) or t = 10^5"),
    "multihead.settling_time": (_settling, "first time with max |d(omega, mu)/dt| <= 1e-8 after "
                                "the loss has halved"),
    "multihead.optimality_ratio": (_optimality, "L~ at the flow's limit / the best L~ found by "
                                   "multi-start L-BFGS-B with H heads"),
    "multihead.separation_ratio": (_separation, "best L~ found with one head / L~ at the "
                                   "H-head flow's limit"),
}

describe_quantities, measure_any = quantity_table(QUANTITIES)


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
          "multihead.residual", repr(RESIDUAL), DEFAULT_REGION, kind="le"),
    Claim("M2", "Three phases: a warm-up where the loss decreases slowly, an emergence where it "
          "decreases rapidly, a convergence phase (paper); measured: the mean loss-decrease rate "
          "over the warm-up is below the peak rate in the emergence, with the phase ends of our "
          "reading (5% of the fall; within 5% of the limit and heads allocated).", "paper",
          "multihead.phase_speed_ratio", "1", DEFAULT_REGION, kind="lt"),
    Claim("M2.warmup", "The warm-up lasts O(1/(d init)): for small weights the balanced flow is "
          "du/dt ~ 4 d u^2 (1 - c_i ~ 1, the 1/L term dropped), which blows up at "
          "t = 1/(4 d u_0).", "derived", "multihead.phase_time.warmup", "1/(d*init)",
          _WARMUP_REGION),
    Claim("M3", "Task allocation: at the limit each attention head focuses on a single task "
          "(paper); measured: every active head has >= 99% of its key-query energy on one task.",
          "paper", "multihead.allocation", repr(SHARE), DEFAULT_REGION, kind="ge"),
    Claim("M3.cover", "One head per task: with H >= n heads every task is the best task of some "
          "active head at the limit (reconstructed).", "reconstructed",
          "multihead.unserved_tasks", "0", DEFAULT_REGION, kind="le"),
    Claim("M4", "Optimality: the limit of gradient flow is within a constant factor of the best "
          "multi-head softmax model (paper); measured on the reduced loss against the best "
          "found by direct minimisation, O(1) in L, d and H.", "paper",
          "multihead.optimality_ratio", "1", _OPTIMALITY_REGION),
    Claim("M5", "Strict separation: single-head attention predicts worse than multi-head "
          "(paper); measured: the best single-head reduced loss over the H-head limit is > 1.",
          "paper", "multihead.separation_ratio", "1", DEFAULT_REGION, kind="gt"),
]}
