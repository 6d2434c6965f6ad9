"""features: the claims the tool checks, the quantities they measure, and the events behind them.

A *quantity* is measured on the exact simulation of one configuration (``K, N, eta, epsilon, p1``):
the first GD step at which an *event* holds for a feature ``k``.  Events are pluggable
(:func:`register_event`); the defaults encode our reading of the phase boundaries of the seed
(*reconstructed*).  A *claim* is one object: its statement, its source, the quantity, the bound as a
SymPy expression and the region of configurations where it is asserted.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import partial
from typing import Callable

import numpy as np
import sympy as sp

from ..numerics.features import FeaturesConfig, Snapshot, loss_star, simulate, structure
from ..numerics.prompts import METHODS
from ..theory import features as th

from .bounds import evaluate_bound, parse_bound
from .events import EventError, compile_event
from .claims import Claim, NotReached, Option, Quantity, Region as _Region, Setting
from .options import GD_OPTIONS, backend_option, progress_wanted

__all__ = ["EVENTS", "register_event", "EVENT_QUANTITIES", "QUANTITIES", "VARIABLES", "measure",
           "measure_many", "Region", "CLAIMS", "config_for", "DEFAULT_REGION", "SETTING",
           "EXAMPLE", "mean_field_predictions", "example_run", "OBSERVABLES", "event_quantity"]

#: Variables a bound may use: K features, prompt length N, step size eta, accuracy epsilon, p1.
VARIABLES = ("K", "N", "eta", "epsilon", "p1")


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
class EventTime:
    """First step at which ``event`` holds for feature ``k`` of the ``family`` configuration."""

    name: str
    family: str          # "balanced" or "imbalanced"
    k: int               # 0: the dominant (or any balanced) feature; 1: an under-represented one
    event: str
    description: str


EVENT_QUANTITIES = {q.name: q for q in [
    EventTime("features.balanced.convergence_time", "balanced", 0, "converged",
             "first step with L_k - L_k^* <= eps, balanced"),
    EventTime("features.dominant.convergence_time", "imbalanced", 0, "converged",
             "first step with L_1 - L_1^* <= eps, imbalanced family"),
    EventTime("features.under.convergence_time", "imbalanced", 1, "converged",
             "first step with L_2 - L_2^* <= eps, imbalanced family"),
    EventTime("features.under.concentration_time", "imbalanced", 1, "concentrated",
             "first step with E[(1 - Attn_2)^2] <= eps, imbalanced family"),
    EventTime("features.balanced.phase_time.1", "balanced", 0, "attention_half",
             "end of phase I, balanced: E[Attn_k] >= 1/2 (reconstructed)"),
    EventTime("features.under.phase_time.1", "imbalanced", 1, "own_growth_overtakes_dominant_fall",
             "end of phase I: the step of A_2 exceeds the fall of B_{2,1} (reconstructed)"),
    EventTime("features.under.phase_time.2", "imbalanced", 1, "own_attention_overtakes_dominant",
             "end of phase II: E[Attn_2] >= E[Attn_1] for x_q = v_2 (reconstructed)"),
    EventTime("features.under.phase_time.3", "imbalanced", 1, "attention_half",
             "end of phase III: E[Attn_2] >= 1/2, A_2 ~ log K (reconstructed)"),
]}


def config_for(family: str, params: dict) -> FeaturesConfig:
    """The configuration of ``family`` at ``params`` (``K, N, eta``, and ``p1`` when imbalanced)."""
    p = "balanced" if family == "balanced" else f"imbalanced:{params['p1']!r}"
    return FeaturesConfig.make(int(params["K"]), int(params["N"]), p, repr(float(params["eta"])))


def measure_many(names, params: dict, max_steps: int = 60_000, method: str = "auto") -> dict:
    """Measure several quantities of one family from one run; unreached ones are None.

    ``method="meanfield"`` measures them on the N -> inf limit instead (a prediction)."""
    qs = [EVENT_QUANTITIES[n] for n in names]
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
class Region(_Region):
    """Configurations where a claim is asserted: K range, N as a function of K, eps, eta, p1."""

    K: tuple[int, int] = (4, 24)
    N: str = "4*K**2"                       # "N >= poly(K)"
    epsilon: tuple[float, float] = (0.02, 0.2)
    eta: tuple[float, float] = (0.5, 4.0)
    p1: tuple[float, float] = (0.4, 0.6)
    sweep: tuple[str, ...] = ("K", "epsilon", "eta")

    INVERSE = ("epsilon", "eta")
    DOMAIN = {"p1": (0, 1)}

    def n_of(self, K: int) -> int:
        """Prompt length at K: ``N`` evaluated and rounded up."""
        return int(math.ceil(evaluate_bound(parse_bound(self.N, ("K",)), {"K": K})))

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

    def at(self, params: dict, var: str, value) -> dict:
        """K is whole and carries N with it; the others are reals."""
        if var == "K":
            params["K"] = int(round(value))
            params["N"] = self.n_of(params["K"])
        else:
            params[var] = float(value)
        return params

    def describe(self) -> str:
        return (f"K in {list(self.K)}, N = {self.N}, eps in {list(self.epsilon)}, eta in "
                f"{list(self.eta)}, p1 in {list(self.p1)}")


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


def _event_time(name, params, max_steps):
    return measure(name, params, max_steps)


#: What a user's event may read, with its number of indices (1-based, as in the paper):
#: ``A[k] = Z[k, k]``, ``B[k, n] = Z[n, k]``, ``attention[n, k] = E[Attn_n | x_q = v_k]``,
#: ``loss[k]``, ``loss_star[k]`` (``L_k^*``), ``concentration[k] = E[(1 - Attn_k)^2]``; and ``t``.
OBSERVABLES = {"A": 1, "B": 2, "attention": 2, "loss": 1, "loss_star": 1, "concentration": 1}
FAMILIES = ("balanced", "imbalanced")


def _observed(snap: Snapshot, params: dict) -> dict:
    return dict(params) | {"t": snap.t, "A": np.diagonal(snap.logits), "B": snap.logits.T,
                           "attention": snap.attention, "loss": snap.loss,
                           "loss_star": snap.loss_star, "concentration": snap.concentration}


def _user_event(condition: str, family: str, feature, params: dict, max_steps: int) -> int:
    predicate = compile_event(condition, VARIABLES, tuple(OBSERVABLES.items()), feature)
    found = []

    def observe(snap):
        if predicate(_observed(snap, params)):
            found.append(snap.t)
            return True
        return False

    simulate(config_for(family, params), max_steps, every=max_steps, observe=observe)
    if not found:
        raise NotReached(f"{condition!r} not reached within {max_steps} steps at {params}")
    return found[0]


def event_quantity(condition: str, family: str | None = None, feature: int | None = None):
    """The first GD step at which ``condition`` holds (a :class:`Quantity`), in ``family``
    (balanced | imbalanced) for ``feature`` (1-based: v_1 is the dominant feature)."""
    if family not in FAMILIES:
        raise EventError(f"family must be one of {', '.join(FAMILIES)} for a features event, "
                         f"got {family!r}")
    compile_event(condition, VARIABLES, tuple(OBSERVABLES.items()), feature)
    where = f"{family}" + ("" if feature is None else f", feature {feature}")
    return Quantity(f"features.event[{condition}]",
                    partial(_user_event, condition, family, feature),
                    f"first step with {condition} ({where})", VARIABLES)


_DESCRIPTIONS = {"features.stagewise.lead": "T_1 - T_2: convergence step of the dominant feature "
                 "minus that of an under-represented one",
                 "features.under.phase_order": "largest (end of phase j) - (end of phase j+1) over "
                 "the four reconstructed phases (<= 0 when in order)",
                 "features.under.log_inverse_loss_star": "log(1/L_2^*) of the imbalanced family",
                 "features.invariant.conservation": "max |A_k + sum_n B_{k,n}| over 100 steps, "
                 "relative to max |Z|",
                 "features.invariant.own_weight_decrease": "largest decrease of any A_k between "
                 "consecutive steps over 100 steps"}

#: Every features quantity: first steps of events, and composites (several events of one run, or
#: a run of fixed length).
QUANTITIES = {name: Quantity(name, partial(_event_time, name), q.description, VARIABLES)
              for name, q in EVENT_QUANTITIES.items()} | {
    name: Quantity(name, fn, _DESCRIPTIONS[name], VARIABLES) for name, fn in [
        ("features.stagewise.lead", _stagewise), ("features.under.phase_order", _phase_order),
        ("features.under.log_inverse_loss_star", _log_inverse_loss_star),
        ("features.invariant.conservation", _conservation),
        ("features.invariant.own_weight_decrease", _monotone_own_weight)]}
Q = QUANTITIES

_T1 = "log(epsilon**(-1/2))/(eta*epsilon)"
#: "polylog(K) >> log(1/eps)": K large against 1/eps, where the K^2 log K term of T_k leads.
_ASYMPTOTIC = Region(K=(8, 40), epsilon=(0.1, 0.3), eta=(0.5, 4.0))
_NOMINAL = Region()
_TK = "log(K)*K**2/eta + K*log(K*epsilon**(-1/2))/(epsilon*eta)"

CLAIMS = {c.id: c for c in [
    Claim("F1", "Dominant feature v_1: with at most T_1 = O(log(eps^{-1/2})/(eta eps)) GD iterations, "
          "L_1 <= L_1^* + eps.", "paper", Q["features.dominant.convergence_time"], _T1,
          Region(K=(4, 24), epsilon=(0.01, 0.2), eta=(0.05, 0.5))),
    Claim("F2", "Under-represented features v_k: with at most T_k = O(log(K) K^2/eta + "
          "K log(K eps^{-1/2})/(eps eta)) GD iterations, L_k <= L_k^* + eps.", "paper",
          Q["features.under.convergence_time"], _TK, _ASYMPTOTIC),
    Claim("F4", "After T_k, (1 - Attn_k)^2 <= O(eps) with high probability over prompts "
          "(measured: the first step with E[(1 - Attn_k)^2] <= eps, against T_k).", "paper",
          Q["features.under.concentration_time"], _TK, _ASYMPTOTIC),
    Claim("F5", "Stage-wise convergence: the dominant feature converges first, the "
          "under-represented ones later (measured: T_1 - T_k <= 0).", "paper",
          Q["features.stagewise.lead"], "0", _NOMINAL, kind="le"),
    Claim("F6", "Balanced features: finite-time convergence to near-zero error in two phases "
          "(paper); the time, from the closed-form mean-field solution t(u) of "
          "du/dt = eta K u^2 (1-u)^3/(K-1)^2 at K (1-u)^2/(2(K-1)) = eps, is "
          "O(K^2/eta + K log(K)/eta + K/(eps eta)) (derived).", "derived",
          Q["features.balanced.convergence_time"], "K**2/eta + K*log(K)/eta + K/(epsilon*eta)",
          # the ratio approaches its limit like 1/K (the (K-1)^2/K^2 of the solution): large K
          Region(K=(8, 64))),
    Claim("F3", "Global optimum L_k^* = Theta(e^{-poly(K)}) (checked: log(1/L_k^*) = O(N p_k), "
          "which is poly(K) for N = poly(K); prompts without feature k, probability "
          "(1 - p_k)^N, cannot reach zero loss).", "paper", Q["features.under.log_inverse_loss_star"],
          "N*(1 - p1)/(K - 1)", Region(K=(4, 64), sweep=("K",))),
    Claim("I1", "Conservation: A_k + sum_{n != k} B_{k,n} = 0 at every step (softmax shift "
          "invariance), to round-off.", "derived", Q["features.invariant.conservation"], "1e-13",
          Region(K=(2, 12), N="K**2"), kind="le"),
    Claim("I2", "A_k never decreases (dl_k/dA_k = -2 Attn_k l_k <= 0).", "derived",
          Q["features.invariant.own_weight_decrease"], "0", Region(K=(2, 12), N="K**2"), kind="le"),
    Claim("F7", "Under-represented features: four phases, in order (phase I ends before II, II "
          "before III, III before convergence; boundaries as in the spec).", "reconstructed",
          Q["features.under.phase_order"], "0", _NOMINAL, kind="le",
          pinned=({"K": 5, "N": 100, "epsilon": 0.17377394345044514, "eta": 1.0, "p1": 0.5},)),
    Claim("F7.I", "Under-represented features: phase I (B_{k,1} falls faster than A_k grows) "
          "lasts O(K log K / eta) steps.", "reconstructed", Q["features.under.phase_time.1"],
          "K*log(K)/eta", _NOMINAL),
]}

#: The region ``icl-verify bound`` uses for features quantities.
DEFAULT_REGION = Region()


# ---------------------------------------------------------------------------------------------
# the numbers the report shows

EXAMPLE = {"K": 10, "N": 400, "eta": 2.0, "epsilon": 0.05, "p1": 0.5}


def _mean_field_steps(kind: str, params: dict, level: float | None = None) -> float:
    """Mean-field time to ``L_k <= eps`` (or to ``Attn_k = level``), closed form from SymPy."""
    K, eta, p1, u = sp.symbols("K eta p_1 u", positive=True)
    if level is None:   # the root u < 1 of L_k(u) = eps
        loss = th.mean_field_loss().subs(K, params["K"])
        level = max(float(r) for r in sp.solve(sp.Eq(loss, params["epsilon"]), u) if r < 1)
    expr = th.mean_field_time(kind).subs({K: params["K"], eta: params["eta"], p1: params["p1"],
                                          u: level})
    return float(sp.N(expr))


def mean_field_predictions(Ks=(4, 8, 16), Ns=(100, 1000, 10000), eta=0.5, epsilon=0.05):
    """Mean-field predictions against the exact simulation, with the relative error.

    Balanced and dominant times: the closed-form solution of the mean-field ODE (SymPy).  The four
    phases of an under-represented feature: GD on the N -> inf limit (``method="meanfield"``),
    numerical, since the 2-D mean-field system has no closed form here.
    """
    rows = []
    closed = (("balanced", "features.balanced.convergence_time", None),
              ("balanced", "features.balanced.phase_time.1", 0.5),
              ("dominant", "features.dominant.convergence_time", None))
    under = ["features.under.phase_time.1", "features.under.phase_time.2",
             "features.under.phase_time.3", "features.under.convergence_time"]
    for K in Ks:
        base = {"K": K, "eta": eta, "epsilon": epsilon, "p1": 0.5}
        limit = measure_many(under, dict(base, N=1), 200_000, method="meanfield")
        for N in Ns:
            params = dict(base, N=N)
            for kind, quantity, phase in closed:
                predicted = _mean_field_steps(kind, params, phase)
                measured = measure_many([quantity], params, 200_000)[quantity]
                rows.append(_row(quantity, "closed form", K, N, predicted, measured))
            measured = measure_many(under, params, 200_000)
            for quantity in under:
                rows.append(_row(quantity, "mean-field GD", K, N, limit[quantity],
                                 measured[quantity]))
    return rows


def _row(quantity, how, K, N, predicted, measured):
    error = None if not measured or predicted is None else abs(predicted - measured) / measured
    return {"quantity": quantity, "prediction": how, "K": K, "N": N, "predicted": predicted,
            "measured": measured, "relative_error": error}




def example_run(params: dict = EXAMPLE):
    """The imbalanced run the report draws: ``(trajectory, phase ends)``, run to 1.3 times the
    convergence of the under-represented feature."""
    names = ["features.under.phase_time.1", "features.under.phase_time.2",
             "features.under.phase_time.3", "features.under.convergence_time",
             "features.dominant.convergence_time"]
    ends = measure_many(names, params, 100_000)
    T = int(1.3 * (ends["features.under.convergence_time"] or 1000))
    return simulate(config_for("imbalanced", params), T, every=1), ends


# ---------------------------------------------------------------------------------------------
# icl-verify simulate features

OPTIONS = (
    Option("--K", "number of features (>= 2)", required=True),
    Option("--N", "prompt length (>= 1)", required=True),
    Option("--p", "balanced | imbalanced:P1 | comma list of K probabilities", "balanced"),
    Option("--eta", "step size (positive, finite)", required=True),
    Option("--method", "expectation over prompts (default: cheapest exact one; meanfield is the "
           "N -> inf limit)", "auto", choices=METHODS),
    Option("--ungrouped", "simulate every column and feature separately (no symmetry "
           "reduction)", action="store_true"),
) + GD_OPTIONS


#: A small run (the shared tests use it).
EXAMPLE_ARGS = ("--K", "3", "--N", "4", "--p", "imbalanced:0.5", "--eta", "2", "--steps",
                "5")


def run_simulation(args):
    """``icl-verify simulate features``: validate, run, and summarise."""
    config = FeaturesConfig.make(args.K, args.N, args.p, args.eta)
    backend = backend_option(args)
    start = time.perf_counter()
    traj = simulate(config, args.steps, args.every, backend, method=args.method,
                    grouped=not args.ungrouped, progress=progress_wanted(args))
    return traj, _summary(traj, time.perf_counter() - start, args.out)


def _summary(traj, elapsed: float, out: str) -> str:
    """A short text summary of a trajectory."""
    cfg = traj.config
    K = cfg["K"]
    lines = [f"features  K={K} N={cfg['N']} p={cfg['p_spec']} eta={cfg['eta']:g} "
             f"steps={cfg['steps']} number={cfg['number_type']} method={cfg['method']} "
             f"({elapsed:.2f} s)",
             f"{'k':>3} {'p_k':>9} {'A_k':>10} {'L_k':>11} {'L_k - L_k*':>11} {'log10 L_k*':>11} "
             f"{'E(1-Attn_k)^2':>14}"]
    shown = sorted(set(range(min(K, 3))) | {K - 1})
    for k in shown:
        gap = traj.loss[-1, k] - traj.loss_star[k]
        lines.append(f"{k + 1:>3} {cfg['p'][k]:>9.4g} {traj.A(k)[-1]:>10.4g} "
                     f"{traj.loss[-1, k]:>11.4e} {gap:>11.4e} {traj.log10_loss_star[k]:>11.4g} "
                     f"{traj.concentration[-1, k]:>14.4e}")
    if K > len(shown):
        lines.append(f"    ({K - len(shown)} more features in {out})")
    lines.append(f"wrote {out} ({len(traj.t)} recorded steps)")
    return "\n".join(lines)


def _leading_law(kind: str):
    """The mean-field time to ``L_k <= eps``, leading as ``eps -> 0`` (derived in closed form by
    :func:`theory.features.mean_field_leading_time`), in the bound variables."""
    import sympy as sp
    law = th.mean_field_leading_time(kind)
    return law.subs(sp.Symbol("p_1", positive=True), sp.Symbol("p1", positive=True))


SETTING = Setting(
    name="features", title="softmax attention over K orthonormal features",
    variables=VARIABLES, quantities=QUANTITIES, claims=CLAIMS, region=DEFAULT_REGION,
    derive=lambda: ("derived dynamics (S2 = sum_m Attn_m^2)", th.derivation()),
    options=OPTIONS, simulate=run_simulation, example=EXAMPLE_ARGS,
    precision_example=EXAMPLE_ARGS, observables=OBSERVABLES, event=event_quantity,
    derived_laws={"features.balanced.convergence_time": partial(_leading_law, "balanced"),
                  "features.dominant.convergence_time": partial(_leading_law, "dominant")})
