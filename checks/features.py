"""features: the claims the tool checks, the quantities they measure, and the events behind them.

A *quantity* is measured on the exact simulation of one configuration (``K, N, eta, epsilon, p1``):
the first GD step at which an *event* holds for a feature ``k``.  Events are pluggable
(:func:`register_event`); the defaults encode our reading of the phase boundaries of the seed
(*reconstructed*).  A *claim* is one object: its statement, its source, the quantity, the bound as a
SymPy expression and the region of configurations where it is asserted.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from numerics.features import FeaturesConfig, Snapshot, loss_star, simulate, structure

from .bounds import evaluate_bound, parse_bound, variables_for

__all__ = ["EVENTS", "register_event", "QUANTITIES", "COMPOSITE", "Quantity", "measure",
           "measure_many", "measure_any", "known_quantities", "Region", "Claim", "CLAIMS",
           "NotReached", "config_for", "describe_quantities", "DEFAULT_REGION"]

SOURCES = ("paper", "derived", "reconstructed")


class NotReached(RuntimeError):
    """The event did not happen within the step budget."""


# ---------------------------------------------------------------------------------------------
# events: predicates on a snapshot, for feature k at accuracy eps


EVENTS: dict[str, Callable[[Snapshot, int, float], bool]] = {}


def register_event(name: str, predicate: Callable[[Snapshot, int, float], bool]) -> None:
    """Add or replace an event: ``predicate(snapshot, k, eps) -> bool``."""
    EVENTS[name] = predicate


register_event("converged", lambda s, k, eps: s.loss[k] - s.loss_star[k] <= eps)
register_event("concentrated", lambda s, k, eps: s.concentration[k] <= eps)
# reconstructed phase boundaries (spec section 5, F7)
register_event("attention_half", lambda s, k, eps: s.attention[k, k] >= 0.5)
register_event("own_growth_overtakes_dominant_fall",
               lambda s, k, eps: s.delta is not None and s.delta[k, k] >= -s.delta[0, k])
register_event("own_attention_overtakes_dominant", lambda s, k, eps: s.attention[k, k]
               >= s.attention[0, k])


@dataclass(frozen=True)
class Quantity:
    """First step at which ``event`` holds for feature ``k`` of the ``family`` configuration."""

    name: str
    family: str          # "balanced" or "imbalanced"
    k: int               # 0: the dominant (or any balanced) feature; 1: an under-represented one
    event: str
    description: str


QUANTITIES = {q.name: q for q in [
    Quantity("features.balanced.convergence_time", "balanced", 0, "converged",
             "first step with L_k - L_k^* <= eps, balanced"),
    Quantity("features.dominant.convergence_time", "imbalanced", 0, "converged",
             "first step with L_1 - L_1^* <= eps, imbalanced family"),
    Quantity("features.under.convergence_time", "imbalanced", 1, "converged",
             "first step with L_2 - L_2^* <= eps, imbalanced family"),
    Quantity("features.under.concentration_time", "imbalanced", 1, "concentrated",
             "first step with E[(1 - Attn_2)^2] <= eps, imbalanced family"),
    Quantity("features.balanced.phase_time.1", "balanced", 0, "attention_half",
             "end of phase I, balanced: E[Attn_k] >= 1/2 (reconstructed)"),
    Quantity("features.under.phase_time.1", "imbalanced", 1, "own_growth_overtakes_dominant_fall",
             "end of phase I: the step of A_2 exceeds the fall of B_{2,1} (reconstructed)"),
    Quantity("features.under.phase_time.2", "imbalanced", 1, "own_attention_overtakes_dominant",
             "end of phase II: E[Attn_2] >= E[Attn_1] for x_q = v_2 (reconstructed)"),
    Quantity("features.under.phase_time.3", "imbalanced", 1, "attention_half",
             "end of phase III: E[Attn_2] >= 1/2, A_2 ~ log K (reconstructed)"),
]}


def config_for(family: str, params: dict) -> FeaturesConfig:
    """The configuration of ``family`` at ``params`` (``K, N, eta``, and ``p1`` when imbalanced)."""
    p = "balanced" if family == "balanced" else f"imbalanced:{params['p1']!r}"
    return FeaturesConfig.make(int(params["K"]), int(params["N"]), p, repr(float(params["eta"])))


def measure_many(names, params: dict, max_steps: int = 60_000, method: str = "auto") -> dict:
    """Measure several quantities of one family from one run; unreached ones are None.

    ``method="meanfield"`` measures them on the N -> inf limit instead (a prediction)."""
    qs = [QUANTITIES[n] for n in names]
    families = {q.family for q in qs}
    if len(families) != 1:
        raise ValueError("measure_many needs quantities of one family")
    eps = float(params["epsilon"])
    found: dict[str, int | None] = {q.name: None for q in qs}

    def observe(snap: Snapshot) -> bool:
        for q in qs:
            if found[q.name] is None and EVENTS[q.event](snap, q.k, eps):
                found[q.name] = snap.t
        return all(v is not None for v in found.values())

    simulate(config_for(families.pop(), params), max_steps, every=max_steps, observe=observe,
             method=method)
    return found


def measure(name: str, params: dict, max_steps: int = 60_000) -> int:
    """The quantity ``name`` at ``params``; raises :class:`NotReached` past ``max_steps``."""
    value = measure_many([name], params, max_steps)[name]
    if value is None:
        raise NotReached(f"{name} not reached within {max_steps} steps at {params}")
    return value


# ---------------------------------------------------------------------------------------------
# claims


@dataclass(frozen=True)
class Region:
    """Configurations where a claim is asserted: K range, N as a function of K, eps, eta, p1."""

    K: tuple[int, int] = (4, 24)
    N: str = "4*K**2"                       # "N >= poly(K)"
    epsilon: tuple[float, float] = (0.02, 0.2)
    eta: tuple[float, float] = (0.5, 4.0)
    p1: tuple[float, float] = (0.4, 0.6)
    sweep: tuple[str, ...] = ("K", "epsilon", "eta")

    def n_of(self, K: int) -> int:
        """Prompt length at K: ``N`` evaluated and rounded up."""
        return int(math.ceil(evaluate_bound(parse_bound(self.N), {"K": K})))

    def base(self) -> dict:
        """The centre of the region (geometric for K, eps, eta)."""
        K = int(round(math.sqrt(self.K[0] * self.K[1])))
        return {"K": K, "N": self.n_of(K), "epsilon": math.sqrt(self.epsilon[0] * self.epsilon[1]),
                "eta": math.sqrt(self.eta[0] * self.eta[1]), "p1": sum(self.p1) / 2}

    def strategy(self):
        """Hypothesis strategy of configurations in the region (log-uniform eps and eta)."""
        from hypothesis import strategies as st

        @st.composite
        def draw(draw_):
            K = draw_(st.integers(*self.K))
            return {"K": K, "N": self.n_of(K),
                    "epsilon": math.exp(draw_(st.floats(*map(math.log, self.epsilon)))),
                    "eta": math.exp(draw_(st.floats(*map(math.log, self.eta)))),
                    "p1": draw_(st.floats(*self.p1))}
        return draw()

    def sweep_points(self, var: str, points: int) -> list[dict]:
        """``var`` varied geometrically over its range, the rest at the centre."""
        base = self.base()
        out = []
        for v in np.geomspace(*getattr(self, var), points):
            params = dict(base)
            if var == "K":
                params["K"] = int(round(v))
                params["N"] = self.n_of(params["K"])
            else:
                params[var] = float(v)
            if params not in out:
                out.append(params)
        return out

    @staticmethod
    def axis(var: str):
        """The scaling variable a sweep of ``var`` is fitted in: ``(label, value from params)``."""
        if var == "K":
            return "K", lambda params: params["K"]
        return f"1/{var}", lambda params: 1 / params[var]

    def describe(self) -> str:
        return (f"K in {list(self.K)}, N = {self.N}, eps in {list(self.epsilon)}, eta in "
                f"{list(self.eta)}, p1 in {list(self.p1)}")


@dataclass(frozen=True)
class Claim:
    """A statement, its source, the quantity it bounds, the bound and where it is asserted.

    ``kind`` ``"O"``: ``measured <= C * bound`` for some constant C over the region;
    ``"le"``, ``"lt"``, ``"ge"``, ``"gt"``: ``measured <= bound`` (``<``, ``>=``, ``>``) exactly, at
    every configuration of the region.
    ``region`` is any object with ``strategy()``, ``base()``, ``sweep``, ``sweep_points(var, n)``,
    ``axis(var)`` and ``describe()`` (see :class:`Region`).
    """

    id: str
    statement: str
    source: str
    quantity: str
    bound: str
    region: object = field(default_factory=Region)
    kind: str = "O"
    pinned: tuple = ()      # past counterexamples, tried first by every check
    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"claim {self.id}: source must be one of {SOURCES}")
        parse_bound(self.bound, variables_for(self.quantity))

    @property
    def bound_expr(self):
        return parse_bound(self.bound, variables_for(self.quantity))


_T1 = "log(epsilon**(-1/2))/(eta*epsilon)"
#: "polylog(K) >> log(1/eps)": K large against 1/eps, where the K^2 log K term of T_k leads.
_ASYMPTOTIC = Region(K=(8, 40), epsilon=(0.1, 0.3), eta=(0.5, 4.0))
_TK = "log(K)*K**2/eta + K*log(K*epsilon**(-1/2))/(epsilon*eta)"

CLAIMS = {c.id: c for c in [
    Claim("F1", "Dominant feature v_1: with at most T_1 = O(log(eps^{-1/2})/(eta eps)) GD iterations, "
          "L_1 <= L_1^* + eps.", "paper", "features.dominant.convergence_time", _T1,
          Region(K=(4, 24), epsilon=(0.01, 0.2), eta=(0.05, 0.5))),
    Claim("F2", "Under-represented features v_k: with at most T_k = O(log(K) K^2/eta + "
          "K log(K eps^{-1/2})/(eps eta)) GD iterations, L_k <= L_k^* + eps.", "paper",
          "features.under.convergence_time", _TK, _ASYMPTOTIC),
    Claim("F4", "After T_k, (1 - Attn_k)^2 <= O(eps) with high probability over prompts "
          "(measured: the first step with E[(1 - Attn_k)^2] <= eps, against T_k).", "paper",
          "features.under.concentration_time", _TK, _ASYMPTOTIC),
    Claim("F5", "Stage-wise convergence: the dominant feature converges first, the "
          "under-represented ones later (measured: T_1 - T_k <= 0).", "paper",
          "features.stagewise.lead", "0", kind="le"),
    Claim("F6", "Balanced features: finite-time convergence to near-zero error in two phases "
          "(paper); the time, from the closed-form mean-field solution t(u) of "
          "du/dt = eta K u^2 (1-u)^3/(K-1)^2 at K (1-u)^2/(2(K-1)) = eps, is "
          "O(K^2/eta + K log(K)/eta + K/(eps eta)) (derived).", "derived",
          "features.balanced.convergence_time", "K**2/eta + K*log(K)/eta + K/(epsilon*eta)",
          # the ratio approaches its limit like 1/K (the (K-1)^2/K^2 of the solution): large K
          Region(K=(8, 64))),
    Claim("F3", "Global optimum L_k^* = Theta(e^{-poly(K)}) (checked: log(1/L_k^*) = O(N p_k), "
          "which is poly(K) for N = poly(K); prompts without feature k, probability "
          "(1 - p_k)^N, cannot reach zero loss).", "paper", "features.under.log_inverse_loss_star",
          "N*(1 - p1)/(K - 1)", Region(K=(4, 64), sweep=("K",))),
    Claim("I1", "Conservation: A_k + sum_{n != k} B_{k,n} = 0 at every step (softmax shift "
          "invariance), to round-off.", "derived", "features.invariant.conservation", "1e-13",
          Region(K=(2, 12), N="K**2"), kind="le"),
    Claim("I2", "A_k never decreases (dl_k/dA_k = -2 Attn_k l_k <= 0).", "derived",
          "features.invariant.own_weight_decrease", "0", Region(K=(2, 12), N="K**2"), kind="le"),
    Claim("F7", "Under-represented features: four phases, in order (phase I ends before II, II "
          "before III, III before convergence; boundaries as in the spec).", "reconstructed",
          "features.under.phase_order", "0", kind="le",
          pinned=({"K": 5, "N": 100, "epsilon": 0.17377394345044514, "eta": 1.0, "p1": 0.5},)),
    Claim("F7.I", "Under-represented features: phase I (B_{k,1} falls faster than A_k grows) "
          "lasts O(K log K / eta) steps.", "reconstructed", "features.under.phase_time.1",
          "K*log(K)/eta"),
]}


def _stagewise(params, max_steps):
    found = measure_many(["features.dominant.convergence_time", "features.under.convergence_time"],
                         params, max_steps)
    if None in found.values():
        raise NotReached(f"stage-wise lead not reached within {max_steps} steps at {params}")
    return found["features.dominant.convergence_time"] - found["features.under.convergence_time"]


def _phase_order(params, max_steps):
    names = ["features.under.phase_time.1", "features.under.phase_time.2",
             "features.under.phase_time.3", "features.under.convergence_time"]
    found = measure_many(names, params, max_steps)
    if None in found.values():
        raise NotReached(f"phase ends not reached within {max_steps} steps at {params}")
    times = [found[n] for n in names]
    return max(a - b for a, b in zip(times, times[1:]))


def _log_inverse_loss_star(params, max_steps):
    """``log(1 / L_2^*)`` of the imbalanced family (no GD needed)."""
    config = config_for("imbalanced", params)
    logs = loss_star(config, structure(config.p))[1]
    return -float(logs[structure(config.p).col_class[1]]) * math.log(10)


def _invariant_run(params, steps=100):
    return simulate(config_for("imbalanced", params), steps, every=1)


def _conservation(params, max_steps):
    """``max_t,k |A_k + sum_{n != k} B_{k,n}|`` over 100 steps, relative to ``max |Z|``."""
    Z = _invariant_run(params).logits
    return float(np.max(np.abs(Z.sum(axis=1))) / max(1.0, np.max(np.abs(Z))))


def _monotone_own_weight(params, max_steps):
    """Largest decrease of any ``A_k`` between consecutive steps over 100 steps (<= 0 if none)."""
    A = np.diagonal(_invariant_run(params).logits, axis1=1, axis2=2)
    return float(np.max(-np.diff(A, axis=0)))


#: Quantities derived from several events of one run, or from a run of fixed length.
COMPOSITE = {"features.stagewise.lead": _stagewise, "features.under.phase_order": _phase_order,
             "features.under.log_inverse_loss_star": _log_inverse_loss_star,
             "features.invariant.conservation": _conservation,
             "features.invariant.own_weight_decrease": _monotone_own_weight}


def measure_any(name: str, params: dict, max_steps: int = 60_000) -> float:
    """A quantity of :data:`QUANTITIES` or :data:`COMPOSITE` at ``params``."""
    if name in COMPOSITE:
        return COMPOSITE[name](params, max_steps)
    if name not in QUANTITIES:
        raise KeyError(name)
    return measure(name, params, max_steps)


def known_quantities() -> list[str]:
    return sorted(QUANTITIES) + sorted(COMPOSITE)


def describe_quantities() -> dict:
    """Quantity name -> one-line description."""
    return {name: QUANTITIES[name].description if name in QUANTITIES else
            "composite (several events of one run)" for name in known_quantities()}


#: The region ``icl-verify bound`` uses for features quantities.
DEFAULT_REGION = Region()
