"""classification: the claims the tool checks and the quantities they measure.

Configurations are ``N`` (training prompt length), ``M`` (test prompt length), ``c`` classes,
dimension ``d``, step size ``eta``, the condition number ``kappa`` of a diagonal ``Lambda`` with
eigenvalues spread geometrically over ``[kappa^{-1/2}, kappa^{1/2}]``, and the whitened norm ``r`` of
the class means.  The model is our reconstruction (:mod:`theory.classification`); the claims say
which of their parts the paper's abstract states.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import lru_cache, partial

import numpy as np

from ..numerics.classification import (ClassificationConfig, IsotropicLoss, MonteCarloLoss, Nodes,
                                     gd_scale, inference_error, minimiser, minimiser_gap,
                                     simulate)
from ..numerics.errors import SimulationError
from ..numerics.numbers import whole_number
from ..theory import classification as thc

from .claims import Claim, Measured, NotReached, Option, Quantity, Region as _Region, Setting
from .events import EventError, compile_event
from .options import GD_OPTIONS, backend_option, progress_wanted
from .verdict import check_bound, fit_exponent, tail_exponent

__all__ = ["Region", "QUANTITIES", "CLAIMS", "VARIABLES", "DEFAULT_REGION", "config_for",
           "RATE_TOLERANCE", "SETTING", "report_extras", "estimator_agreement",
           "derivative_check", "raw_exponent"]

#: Variables a bound may use: training and test prompt lengths N and M, c classes, dimension d.
VARIABLES = ("N", "M", "c", "d")

#: GD runs until ``||W_t - W*|| <= RATE_TOLERANCE ||W_0 - W*||``; the rate is fitted on the way.
RATE_TOLERANCE = 1e-7
#: Monte Carlo sizes: training loss for GD (multi-class or anisotropic), a* (multi-class), and
#: test prompts for the inference error.
GD_SAMPLES, MINIMISER_SAMPLES, TEST_SAMPLES = 20_000, 400_000, 100_000


@dataclass(frozen=True)
class Region(_Region):
    """Configurations where a classification claim is asserted; ``sweep`` names the scaling
    variables (each swept geometrically with the others at the centre)."""

    N: tuple[int, int] = (16, 1024)
    M: tuple[int, int] = (16, 1024)
    c: tuple[int, int] = (2, 2)
    d: tuple[int, int] = (1, 4)
    eta: tuple[float, float] = (1.0, 4.0)
    kappa: tuple[float, float] = (1.0, 1.0)
    r: float = 1.0
    sweep: tuple[str, ...] = ("N",)

    INTEGER = ("N", "M", "c", "d")

    def strategy(self):
        from hypothesis import strategies as st

        @st.composite
        def draw(draw_):
            out = {}
            for name in ("N", "M"):
                lo, hi = getattr(self, name)
                out[name] = int(round(math.exp(draw_(st.floats(math.log(lo), math.log(hi))))))
            out["c"] = draw_(st.integers(*self.c))
            out["d"] = draw_(st.integers(*self.d))
            out["eta"] = math.exp(draw_(st.floats(*map(math.log, self.eta))))
            out["kappa"] = draw_(st.floats(*self.kappa))
            out["r"] = self.r
            return out
        return draw()

    def base(self) -> dict:
        """The centre: geometric for N, M, eta; the middle for c, d, kappa."""
        geo = lambda lo, hi: math.sqrt(lo * hi)  # noqa: E731
        return {"N": int(round(geo(*self.N))), "M": int(round(geo(*self.M))),
                "c": int(round(sum(self.c) / 2)), "d": int(round(sum(self.d) / 2)),
                "eta": geo(*self.eta), "kappa": sum(self.kappa) / 2, "r": self.r}

    def describe(self) -> str:
        return (f"N in {list(self.N)}, M in {list(self.M)}, c in {list(self.c)}, d in "
                f"{list(self.d)}, eta in {list(self.eta)}, kappa in {list(self.kappa)}, "
                f"r = {self.r}")


def lambda_spec(d: int, kappa: float) -> str:
    """``diag:`` spec of ``Lambda`` with eigenvalues geometric over ``[kappa^-1/2, kappa^1/2]``."""
    if kappa == 1 or d == 1:
        return "identity"
    return "diag:" + ",".join(repr(float(x)) for x in
                              np.geomspace(kappa ** -0.5, kappa ** 0.5, d))


def config_for(params: dict) -> ClassificationConfig:
    return ClassificationConfig.make(int(params["N"]), int(params["d"]),
                                     lambda_spec(int(params["d"]), float(params.get("kappa", 1))),
                                     int(params.get("c", 2)), repr(float(params.get("r", 1))),
                                     repr(float(params.get("eta", 1))))


# ---------------------------------------------------------------------------------------------
# quantities


def _run(params, max_steps):
    """GD from ``W = 0`` until ``||W_t - W*||`` has fallen by ``RATE_TOLERANCE`` (quadrature for
    two classes, ``Lambda = I``, ``d = 1``, where a step costs milliseconds; Monte Carlo with
    common random numbers otherwise)."""
    config = config_for(params)
    quad = config.classes == 2 and config.isotropic and config.d == 1
    try:
        return simulate(config, max_steps, method="quadrature" if quad else "montecarlo",
                        samples=GD_SAMPLES, until=RATE_TOLERANCE), config
    except SimulationError as exc:
        raise NotReached(f"GD broke down at {params}: {exc}") from None


#: What a user's event may read: the loss and ``||W_t - W*||_F`` at GD step ``t``.
OBSERVABLES = {"loss": 0, "distance": 0}


def _user_event(condition: str, params: dict, max_steps: int) -> int:
    predicate = compile_event(condition, VARIABLES, tuple(OBSERVABLES.items()), None)
    config = config_for(params)
    quad = config.classes == 2 and config.isotropic and config.d == 1
    found = []

    def observe(t, loss, distance):
        if predicate(dict(params) | {"t": t, "loss": loss, "distance": distance}):
            found.append(t)
            return True
        return False

    try:
        simulate(config, max_steps, every=max_steps, method="quadrature" if quad else "montecarlo",
                 samples=GD_SAMPLES, observe=observe)
    except SimulationError as exc:
        raise NotReached(f"GD broke down at {params}: {exc}") from None
    if not found:
        raise NotReached(f"{condition!r} not reached within {max_steps} steps at {params}")
    return found[0]


def event_quantity(condition: str, family: str | None = None, feature: int | None = None):
    """The first GD step at which ``condition`` (over ``loss``, ``distance``, ``t`` and the
    variables) holds, as a :class:`Quantity`."""
    if family is not None or feature is not None:
        raise EventError("classification events take no family or feature")
    compile_event(condition, VARIABLES, tuple(OBSERVABLES.items()), None)
    return Quantity(f"classification.event[{condition}]", partial(_user_event, condition),
                    f"first GD step with {condition}", VARIABLES)


def _rate(params, max_steps):
    """Upper end of the 95% interval of the fitted linear rate ``rho``."""
    traj, _ = _run(params, max_steps)
    if traj.distance[-1] > RATE_TOLERANCE * traj.distance[0]:
        raise NotReached(f"||W_t - W*|| did not fall by {RATE_TOLERANCE:g} in {max_steps} steps")
    return traj.rate()["high"]


def predicted_rate(traj, config) -> float:
    """Spectral radius of the GD map's Jacobian at ``W*``: ``I - eta diag(lambda_g^2 / k_g) H``."""
    if traj.config["method"] == "quadrature":
        H = np.atleast_2d(float(IsotropicLoss(config.N, config.d, config.r)(traj.v_star[0])[2]))
    else:
        _, _, groups = config.eigen()
        mc = MonteCarloLoss(config.N, config.d, config.classes, config.r, groups,
                            traj.config["samples"], traj.config["seed"])
        H = mc(traj.v_star)[2]
    scale = gd_scale(float(config.eta), traj.eigenvalues, traj.multiplicity)
    J = np.eye(len(scale)) - scale[:, None] * H
    return float(np.max(np.abs(np.linalg.eigvals(J))))


def _rate_error(params, max_steps):
    """``|rho fitted - rho predicted by the linearisation at W*|``."""
    traj, config = _run(params, max_steps)
    return abs(traj.rate()["rho"] - predicted_rate(traj, config))


@lru_cache(maxsize=256)
def _a_star(N, c, d, r):
    config = ClassificationConfig.make(N, d, "identity", c, repr(r))
    a, _ = minimiser(config, samples=MINIMISER_SAMPLES)
    return float(a)


def _gap(params, max_steps):
    """The minimiser's gap with the estimator's error (quadrature or Monte Carlo)."""
    config = config_for(params)
    return Measured(*minimiser_gap(config, samples=MINIMISER_SAMPLES))


def _error(params, max_steps):
    """The inference error with its Monte Carlo standard error over the test prompts (the error
    of ``a*`` itself is not included)."""
    N, c, d, r = int(params["N"]), int(params.get("c", 2)), int(params["d"]), float(params["r"])
    return Measured(*inference_error(_a_star(N, c, d, r), int(params["M"]), d, c, r,
                                     TEST_SAMPLES))


QUANTITIES = {name: Quantity(name, fn, description, VARIABLES) for name, (fn, description) in {
    "classification.rate": (_rate, "fitted linear rate rho of ||W_t - W*|| under GD from W = 0 "
                                   "(upper end of its 95% interval)"),
    "classification.rate_prediction_error": (_rate_error, "|rho fitted - spectral radius of the "
                                                          "GD map linearised at W*|"),
    "classification.minimiser_gap": (_gap, "||W*/c - Lambda^{-1}||_max of the global minimiser"),
    "classification.inference_error": (_error, "E (1/2) sum_k |p_k - p*_k| on test prompts of "
                                                "length M, W = W* trained at N, against Bayes"),
}.items()}
Q = QUANTITIES


# ---------------------------------------------------------------------------------------------
# claims

_RATE_REGION = Region(N=(8, 128), M=(16, 16), c=(2, 4), d=(1, 3), eta=(1.0, 4.0),
                      kappa=(1.0, 1.5), sweep=())
# the gap approaches its 1/N law from below (gap * N still rises at N ~ 500): sweeps reach N ~ 10^4
_GAP_REGION = Region(N=(16, 8192), M=(16, 16), c=(2, 2), d=(1, 4), sweep=("N",))
_GAP_MC_REGION = Region(N=(64, 4096), M=(16, 16), c=(3, 6), d=(2, 2), sweep=("N", "c"))
_ERROR_REGION = Region(N=(16, 1024), M=(16, 4096), c=(2, 2), d=(1, 4), sweep=("N", "M"))
_ERROR_MC_REGION = Region(N=(64, 4096), M=(16, 4096), c=(3, 5), d=(2, 2), sweep=("N", "M", "c"))

#: The region ``icl-verify bound`` uses for classification quantities.
DEFAULT_REGION = Region(N=(16, 1024), M=(16, 1024), c=(2, 2), d=(1, 4), sweep=("N", "M"))

CLAIMS = {c.id: c for c in [
    Claim("C1", "A single-layer transformer trained by GD converges to the global minimiser at a "
          "linear rate, ||W_t - W*|| <= C rho^t with rho < 1 (paper); measured: the upper end of "
          "the 95% interval of the fitted rho, W_0 = 0, binary by quadrature (Lambda = I, d = 1), "
          "otherwise GD on a common-random-numbers Monte Carlo loss.", "paper",
          Q["classification.rate"], "1", _RATE_REGION, kind="lt"),
    Claim("C1.local", "The fitted rate is the spectral radius of the GD map linearised at W*, "
          "I - eta diag(lambda_g^2/k_g) Hess L(W*), to 1e-4.", "derived",
          Q["classification.rate_prediction_error"], "1/10000", _RATE_REGION, kind="le"),
    Claim("C2", "Binary: W* = 2 (Lambda^{-1} + G) with ||G||_max = O(1/N) (reconstructed; the "
          "abstract states only convergence to a global minimiser).", "reconstructed",
          Q["classification.minimiser_gap"], "1/N", _GAP_REGION),
    Claim("C2.mc", "c classes: W* = c (Lambda^{-1} + G) with ||G||_max = O(c/N) (reconstructed).",
          "reconstructed", Q["classification.minimiser_gap"], "c/N", _GAP_MC_REGION),
    Claim("C3", "The trained transformer's prediction approaches the Bayes-optimal classifier as "
          "the training and test prompt lengths grow (paper), with inference error "
          "O(1/N) + O(1/sqrt(M)) (reconstructed).", "reconstructed",
          Q["classification.inference_error"], "1/N + 1/sqrt(M)", _ERROR_REGION),
    Claim("C3.mc", "c classes: inference error O(c^2/N + c^{3/2}/sqrt(M)) (reconstructed).",
          "reconstructed", Q["classification.inference_error"], "c**2/N + c**(3/2)/sqrt(M)",
          _ERROR_MC_REGION),
]}


# ---------------------------------------------------------------------------------------------
# the numbers the report shows

#: Configurations of the example trajectories: (label, params, method).
_TRAJECTORIES = [
    ("binary, Lambda = I, d = 2 (quadrature)",
     {"N": 64, "d": 2, "c": 2, "kappa": 1.0, "eta": 4.0, "r": 1.0}, "quadrature"),
    ("binary, kappa = 1.5, d = 3 (Monte Carlo, CRN)",
     {"N": 64, "d": 3, "c": 2, "kappa": 1.5, "eta": 4.0, "r": 1.0}, "montecarlo"),
    ("3 classes, kappa = 1.5, d = 3 (Monte Carlo, CRN)",
     {"N": 64, "d": 3, "c": 3, "kappa": 1.5, "eta": 4.0, "r": 1.0}, "montecarlo"),
]


def estimator_agreement(cases=((16, 1, 1.0), (32, 2, 1.5), (64, 3, 2.0)), samples=400_000):
    """Quadrature ``L(a), L'(a)`` against Monte Carlo (independent prompts, no reduction) with its
    standard error: ``(N, d, a, quad, mc, se, z)`` rows for the loss and the derivative."""
    rows = []
    for N, d, a in cases:
        L, dL, _ = IsotropicLoss(N, d, 1)(a)
        mc = MonteCarloLoss(N, d, 2, 1, np.zeros(d, int), samples, seed=11)
        loss, grad, _ = mc.per_sample(np.array([a]))
        for what, q, x in (("L", L, loss), ("dL/da", dL, grad[:, 0])):
            m, se = x.mean(), x.std(ddof=1) / math.sqrt(samples)
            rows.append({"N": N, "d": d, "a": a, "what": what, "quadrature": float(q),
                         "montecarlo": float(m), "stderr": float(se),
                         "z": float((m - float(q)) / se)})
    return rows


def derivative_check(cases=((16, 2, 1.2), (128, 3, 1.9)), h=1e-4):
    """SymPy ``L'(a), L''(a)`` against central differences of ``L`` (same rule): rows with the
    relative error; the difference error is O(h^2)."""
    rows = []
    for N, d, a in cases:
        loss = IsotropicLoss(N, d, 1)
        L0, d1, d2 = (float(x) for x in loss(a))
        Lp, Lm = float(loss(a + h)[0]), float(loss(a - h)[0])
        fd1, fd2 = (Lp - Lm) / (2 * h), (Lp - 2 * L0 + Lm) / h**2
        rows.append({"N": N, "d": d, "a": a, "sympy_d1": d1, "fd_d1": fd1,
                     "rel_d1": abs(d1 - fd1) / abs(d1), "sympy_d2": d2, "fd_d2": fd2,
                     "rel_d2": abs(d2 - fd2) / abs(d2)})
    return rows


def raw_exponent(verdict, var: str):
    """Log-log fit of the measured quantity itself (not the ratio) over a sweep of ``var``, on
    the larger half of the sweep; None when there are fewer than three points."""
    return tail_exponent([(e["params"][var], e["measured"]) for e in verdict.evaluations
                          if e["probe"] == f"sweep {var}" and e["measured"]])


def report_extras(profile: str = "quick", executor=None) -> dict:
    """Everything the section shows besides the claims' verdicts."""
    Ms = [16, 64, 256, 1024, 4096, 16384]
    bayes_limit = [inference_error(2.0, M, 2, 2, 1.0, 200_000)[0] for M in Ms]
    return {
        "wrong_law": check_bound(Q["classification.minimiser_gap"], "1/N**2", _GAP_REGION,
                                 profile, examples=2, executor=executor),
        "trajectories": [(label, simulate(config_for(p), 3000, method=m, samples=20_000,
                                          until=1e-9)) for label, p, m in _TRAJECTORIES],
        "agreement": estimator_agreement(),
        "derivatives": derivative_check(),
        "limit_M": {"M": Ms, "error": bayes_limit,
                    "fit": fit_exponent(Ms[2:], bayes_limit[2:])},
    }


# ---------------------------------------------------------------------------------------------
# icl-verify simulate classification

OPTIONS = (
    Option("--N", "training prompt length (>= 1)", required=True),
    Option("--d", "dimension (needed with --Lambda identity)"),
    Option("--Lambda", "identity | scaled:S | diag:l1,l2,... | rows a,b;c,d (symmetric positive "
           "definite)", "identity"),
    Option("--classes", "number of classes c (>= 2)", "2"),
    Option("--r", "whitened norm of the class means (> 0)", "1"),
    Option("--eta", "step size (positive, finite)", required=True),
    Option("--method", "loss estimator (default: quadrature when the reduction allows)", "auto",
           choices=("auto", "quadrature", "montecarlo")),
    Option("--samples", "Monte Carlo prompts (>= 100)", "100000"),
    Option("--seed", "Monte Carlo seed", "0"),
    Option("--nodes", "quadrature nodes per dimension count,cosine,noise,rest,query (default: "
           "chosen from N and the precision; 30 digits take minutes at the defaults)"),
) + GD_OPTIONS


#: A small run (the shared tests use it).
EXAMPLE_ARGS = ("--N", "64", "--d", "1", "--eta", "2", "--steps", "5")
#: A run at a small fixed rule, so float64 and 30 digits integrate the same sum (seconds).
PRECISION_ARGS = ("--N", "6", "--d", "1", "--eta", "0.5", "--steps", "4", "--nodes", "7,2,10,1,40")


def run_simulation(args):
    """``icl-verify simulate classification``: validate, run, and summarise."""
    config = ClassificationConfig.make(args.N, args.d, args.Lambda, args.classes, args.r, args.eta)
    backend = backend_option(args)
    samples = whole_number(args.samples, "samples", at_least=100, at_most=10**7)
    seed = whole_number(args.seed, "seed", at_least=0)
    nodes = Nodes.parse(args.nodes)
    start = time.perf_counter()
    traj = simulate(config, args.steps, args.every, backend, method=args.method, samples=samples,
                    seed=seed, nodes=nodes, progress=progress_wanted(args))
    elapsed = time.perf_counter() - start
    cfg = traj.config
    lines = [f"classification  N={cfg['N']} d={cfg['d']} c={cfg['classes']} "
             f"Lambda={cfg['Lambda_spec']} r={cfg['r']:g} eta={cfg['eta']:g} "
             f"steps={cfg['steps']} number={cfg['number_type']} method={cfg['method']} "
             f"({elapsed:.2f} s)",
             f"W* = a* Lambda^-1 with a* = {traj.a_star:.12g} (error estimate "
             f"{traj.a_star_error:.2g}); ||W*/c - Lambda^-1||_max = "
             f"{abs(traj.a_star / config.classes - 1) * config.inverse_max():.6g}",
             f"final loss {traj.loss[-1]:.10g}, ||W_T - W*||_F = {traj.distance[-1]:.4g}"]
    try:
        fit = traj.rate()
        lines.append(f"linear rate rho = {fit['rho']:.6g} (95% CI [{fit['low']:.6g}, "
                     f"{fit['high']:.6g}])")
    except ValueError:
        pass
    lines.append(f"wrote {args.out} ({len(traj.t)} recorded steps)")
    return traj, "\n".join(lines)


SETTING = Setting(
    name="classification", title="linear attention classifying Gaussian mixtures in context",
    variables=VARIABLES, quantities=QUANTITIES, claims=CLAIMS, region=DEFAULT_REGION,
    derive=lambda: ("derived reduction (whitened coordinates; reconstructed model)",
                    thc.derivation()),
    options=OPTIONS, simulate=run_simulation, example=EXAMPLE_ARGS,
    precision_example=PRECISION_ARGS, observables=OBSERVABLES, event=event_quantity)
