"""features: exact population gradient descent on the logit matrix ``Z[n, k] = v_n^T Q v_k``.

``grad_Q L = sum_k p_k sum_n (d L_k / d Z[n, k]) v_n v_k^T``, so ``Q`` stays in the span of
``v_n v_k^T`` and every column evolves alone:

    Z[:, k](t + 1) = Z[:, k](t) - eta p_k E_c[d l_k / d Z[:, k]],   Z(0) = 0,

with the gradient from :mod:`theory.features` and the expectation over ``c ~ Multinomial(N, p)``
from :mod:`numerics.prompts`.  Features of equal probability keep equal weights (from ``Q = 0``),
so by default a column is simulated once per probability class and its features are grouped into
atoms (``grouped=False`` simulates every column and every feature on its own).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from .backend import F64, Backend
from .errors import ConfigError, SimulationError
from .jsonio import Record, read_json
from .numbers import fraction, positive_fraction, whole_number
from .prompts import METHODS, Columns, choose_method, expect

__all__ = ["FeaturesConfig", "parse_p", "Structure", "structure", "loss_star", "simulate",
           "Snapshot", "Trajectory", "OBSERVABLES"]

OBSERVABLES = ("loss", "concentration", "attention_own", "attention_off")
P_TOLERANCE = 1e-9


# ---------------------------------------------------------------------------------------------
# configuration


def parse_p(spec, K: int) -> tuple[Fraction, ...]:
    """Feature probabilities from ``balanced``, ``imbalanced:P1`` or a comma list of K numbers.

    ``imbalanced:P1`` is the canonical family ``p_1 = P1``, ``p_k = (1 - P1)/(K - 1)``.  A comma list
    must sum to 1 within 1e-9 (it is then normalised exactly) and have positive entries.
    """
    if isinstance(spec, (list, tuple)):
        items = list(spec)
    else:
        text = str(spec).strip()
        if text == "balanced":
            return tuple(Fraction(1, K) for _ in range(K))
        if text.startswith("imbalanced:"):
            p1 = fraction(text.split(":", 1)[1], "imbalanced:P1")
            if not 0 < p1 < 1:
                raise ConfigError(f"imbalanced:P1 needs 0 < P1 < 1, got {text.split(':', 1)[1]}")
            rest = (1 - p1) / (K - 1)
            return (p1,) + tuple(rest for _ in range(K - 1))
        if text.startswith("imbalanced"):
            raise ConfigError(f"malformed p {text!r}: write imbalanced:P1, e.g. imbalanced:0.5")
        items = text.split(",")
    if len(items) != K:
        raise ConfigError(f"p has {len(items)} entries but K = {K}")
    p = [fraction(x, f"p_{i + 1}") for i, x in enumerate(items)]
    for i, x in enumerate(p):
        if x <= 0:
            raise ConfigError(f"p_{i + 1} = {float(x):g} is not positive")
    total = sum(p)
    if abs(total - 1) > P_TOLERANCE:
        raise ConfigError(f"p sums to {float(total):.12g}, not 1 (tolerance {P_TOLERANCE:g})")
    return tuple(x / total for x in p)


#: The largest K the exact simulator accepts: the quadrature holds (columns x atoms x nodes)
#: arrays, about 0.4 GB at K = 512 with every p_k distinct.
MAX_K = 512


@dataclass(frozen=True)
class FeaturesConfig:
    """A configuration of the features setting: K features, prompts of N tokens, probabilities p,
    step size eta."""

    K: int
    N: int
    p: tuple[Fraction, ...]
    eta: Fraction
    p_spec: str = ""

    @classmethod
    def make(cls, K, N, p="balanced", eta="0.1") -> "FeaturesConfig":
        """Validate and build; raises :class:`ConfigError` with a one-line message."""
        K = whole_number(K, "K", at_least=2, at_most=MAX_K)
        N = whole_number(N, "N", at_least=1, at_most=10**9)
        eta_f = positive_fraction(eta, "eta")
        spec = p if isinstance(p, str) else ",".join(str(x) for x in p)
        return cls(K, N, parse_p(p, K), eta_f, spec)

    def to_dict(self) -> dict:
        return {"setting": "features", "K": self.K, "N": self.N, "p": [float(x) for x in self.p],
                "p_spec": self.p_spec, "eta": float(self.eta)}


# ---------------------------------------------------------------------------------------------
# reduction of the K x K logit matrix to column classes and atoms


@dataclass(frozen=True)
class Structure:
    """How the logit matrix reduces: column ``k`` follows class ``col_class[k]``, entry
    ``Z[n, k]`` is atom ``atom_of[k, n]`` of that class (atom 0 is ``n = k``)."""

    col_class: np.ndarray   # (K,)
    atom_of: np.ndarray     # (K, K), [k, n]
    class_p: tuple          # (C,) Fractions: p_k of the class's columns
    atom_p: tuple           # (C, A) Fractions (0 for padding)
    atom_mult: np.ndarray   # (C, A) ints

    @property
    def shape(self):
        return self.atom_mult.shape

    def expand(self, per_class_atom: np.ndarray) -> np.ndarray:
        """``(C, A)`` values to the ``(K, K)`` matrix ``[n, k]``."""
        return per_class_atom[self.col_class[None, :], self.atom_of.T]


def _to_backend(fracs, be: Backend) -> np.ndarray:
    arr = np.array(fracs, dtype=object)
    if not be.is_mp:
        return np.vectorize(float, otypes=[np.float64])(arr)
    return np.vectorize(lambda f: be.scalar(f.numerator) / f.denominator, otypes=[object])(arr)


def structure(p: tuple[Fraction, ...], grouped: bool = True) -> Structure:
    """Column classes and atoms of ``p``; ``grouped=False`` keeps every column and feature apart."""
    K = len(p)
    if grouped:
        values = list(dict.fromkeys(p))
        col_class = np.array([values.index(x) for x in p])
    else:
        values = list(range(K))
        col_class = np.arange(K)
    C = len(values)
    reps = [int(np.argmax(col_class == c)) for c in range(C)]

    def key(n):
        return p[n] if grouped else n

    # Columns of one class see the same multiset of other probabilities, hence the same atoms.
    atom_keys = [list(dict.fromkeys(key(n) for n in range(K) if n != k)) for k in reps]
    A = 1 + max(len(keys) for keys in atom_keys)
    atom_p = [[Fraction(0)] * A for _ in range(C)]
    mult = np.zeros((C, A), dtype=np.int64)
    for c, k in enumerate(reps):
        atom_p[c][0], mult[c, 0] = p[k], 1
        for a, kk in enumerate(atom_keys[c], start=1):
            members = [n for n in range(K) if n != k and key(n) == kk]
            atom_p[c][a], mult[c, a] = p[members[0]], len(members)
    atom_of = np.zeros((K, K), dtype=np.int64)
    for k in range(K):
        for n in range(K):
            if n != k:
                atom_of[k, n] = 1 + atom_keys[col_class[k]].index(key(n))
    return Structure(col_class, atom_of, tuple(p[k] for k in reps),
                     tuple(tuple(r) for r in atom_p), mult)


# ---------------------------------------------------------------------------------------------
# the global optimum L_k^*


def loss_star(config: FeaturesConfig, struct: Structure, be: Backend = F64, method: str = "auto"):
    """``L_k^* = inf_Z L_k = P(c_k = 0) min_B E[l_k | c_k = 0]`` for every column class.

    Prompts with ``c_k >= 1`` reach 0 loss as ``A_k -> inf``; the others see only the off-target
    logits, with counts ``Multinomial(N, p')``, ``p'_n = p_n / (1 - p_k)``.  The minimum over ``B`` is
    taken over logits that are equal within an atom (a stationary set by symmetry), by a
    trust-region Newton method in float64 and, in arbitrary precision, Newton polishing.  Returns ``(values, log10 values)``;
    ``values`` may underflow in float64 (``(1 - p_k)^N``), ``log10`` does not.
    """
    C, A = struct.shape
    N = config.N
    values, logs = [], []
    with be.context():
        for c in range(C):
            pk = struct.class_p[c]
            cond = [Fraction(0)] + [x / (1 - pk) for x in struct.atom_p[c][1:]]
            free = [a for a in range(1, A) if struct.atom_mult[c, a] > 0]
            sub = Structure(struct.col_class, struct.atom_of, (pk,), (tuple(cond),),
                            struct.atom_mult[c:c + 1])
            fmin = _minimise_conditional(sub, N, free, be, method)
            factor = (1 - be.scalar(pk.numerator) / pk.denominator) ** N
            values.append(factor * fmin)
            logs.append(N * math.log10(1 - float(pk)) + math.log10(float(fmin)))
    return np.array(values, dtype=object if be.is_mp else float), np.array(logs)


def _minimise_conditional(sub: Structure, N: int, free: list[int], be: Backend, method: str):
    """``min over atom logits of E_{p'}[l]`` for one column whose own feature never occurs.

    The first free atom is pinned at 0 (softmax shift invariance).  A trust-region Newton method
    (SciPy's ``trust-exact``, robust where the loss is not convex) runs in float64 from the better
    of two starts, uniform logits (optimal for short prompts) and the large-N optimum
    ``B_n = -log p'_n`` (equal ``p'_n e^{B_n}``); in arbitrary precision Newton's method then polishes
    the point.  Hessians are differences of the derived gradient, all points in one batch.
    """
    from scipy.optimize import minimize

    A = sub.shape[1]
    dims = len(free) - 1

    def evaluate(points, backend):
        """Loss and gradient (in the free logits) at each point, one batched expectation."""
        z = backend.zeros((len(points), A))
        for i, x in enumerate(points):
            for a, v in zip(free[1:], x):
                z[i, a] = v
        cols = Columns(z=z, p=np.repeat(_to_backend(sub.atom_p, backend), len(points), axis=0),
                       mult=np.repeat(sub.atom_mult, len(points), axis=0))
        out = expect(cols, N, ("loss", "grad_off"), method, backend)
        mult = sub.atom_mult[0, free[1:]]
        return out["loss"], out["grad_off"][:, free[1:]] * mult[None, :]

    if dims == 0:   # a single atom: the attention on the other features cannot be moved
        return evaluate([[]], be)[0][0]

    def hessian(x, backend, h, central=True):
        """Differences of the gradient (central, or forward from ``x``), symmetrised."""
        eye = np.eye(dims, dtype=int)
        points = [x + h * e for e in eye] + ([x - h * e for e in eye] if central else [x])
        g = evaluate(points, backend)[1]
        H = (g[:dims] - g[dims:]).T / ((2 if central else 1) * h)   # forward: g[dims:] is g(x)
        return (H + H.T) / 2

    logp = np.log([float(sub.atom_p[0][a]) for a in free])
    starts = [np.zeros(dims), logp[0] - logp[1:]]
    f0, _ = evaluate(starts, F64)
    x0 = starts[int(np.argmin(f0))]
    res = minimize(lambda x: evaluate([x], F64)[0][0], x0, method="trust-exact",
                   jac=lambda x: evaluate([x], F64)[1][0],
                   hess=lambda x: hessian(x, F64, 1e-6, central=False),
                   options={"gtol": 1e-12, "maxiter": 200})
    if not be.is_mp:
        return min(res.fun, f0.min())
    # Newton polish at the working precision (quadratic convergence from a float64 minimum).
    x = be.array(res.x)
    h = be.scalar(10) ** -(be.digits // 3 + 1)
    f, g = evaluate([x], be)
    for _ in range(8):
        step = _solve(hessian(x, be, h), g[0])
        f_new, g_new = evaluate([x - np.array(step)], be)
        if not f_new[0] < f[0]:
            break
        x, f, g = x - np.array(step), f_new, g_new
    return f[0]


def _solve(H, g):
    """Gaussian elimination with partial pivoting on object arrays (any number type)."""
    n = len(g)
    M = [list(H[i]) + [g[i]] for i in range(n)]
    for i in range(n):
        piv = max(range(i, n), key=lambda r: abs(M[r][i]))
        M[i], M[piv] = M[piv], M[i]
        for r in range(i + 1, n):
            f = M[r][i] / M[i][i]
            M[r] = [a - f * b for a, b in zip(M[r], M[i])]
    x = [0] * n
    for i in reversed(range(n)):
        x[i] = (M[i][n] - sum(M[i][j] * x[j] for j in range(i + 1, n))) / M[i][i]
    return x


# ---------------------------------------------------------------------------------------------
# trajectory


@dataclass
class Trajectory(Record):
    """Recorded GD steps of the features setting.

    ``logits[i][n][k] = v_n^T Q v_k``, ``loss[i][k] = L_k``, ``attention[i][n][k] =
    E[Attn_n | x_q = v_k]``, ``concentration[i][k] = E[(1 - Attn_k)^2]`` at step ``t[i]``;
    ``loss_star[k] = L_k^*`` (``log10_loss_star`` when it underflows float64).  ``exact`` holds the
    same arrays at full precision (object arrays) for arbitrary-precision runs.
    """

    config: dict
    t: list
    logits: np.ndarray
    loss: np.ndarray
    attention: np.ndarray
    concentration: np.ndarray
    loss_star: np.ndarray
    log10_loss_star: np.ndarray
    exact: dict | None = field(default=None, repr=False)
    backend: Backend = field(default=F64, repr=False, compare=False)

    ARRAYS = ("logits", "loss", "attention", "concentration", "loss_star", "log10_loss_star")
    #: The arrays an arbitrary-precision run also keeps exactly.
    EXACT = ("logits", "loss", "attention", "concentration", "loss_star")
    SKIP = ("backend",)
    PER_STEP = ("logits", "loss", "attention", "concentration")

    def A(self, k: int) -> np.ndarray:
        """``A_k`` at the recorded steps."""
        return self.logits[:, k, k]

    def B(self, k: int, n: int) -> np.ndarray:
        """``B_{k,n} = Z[n, k]`` at the recorded steps."""
        return self.logits[:, n, k]

    def to_json(self) -> dict:
        out = super().to_json()
        if self.exact is not None:
            to_str = np.vectorize(self.backend.to_str, otypes=[object])
            with self.backend.context():
                out["exact"] = {name: to_str(arr).tolist() if arr.size else []
                                for name, arr in self.exact.items()}
        return out

    @classmethod
    def load(cls, path: str, backend: Backend | None = None) -> "Trajectory":
        """Read a saved trajectory; ``exact`` strings are parsed with ``backend`` when given."""
        data = read_json(path)
        exact = None
        if "exact" in data and backend is not None and backend.is_mp:
            with backend.context():
                exact = {name: backend.array(np.array(v, dtype=object))
                         for name, v in data["exact"].items()}
        data = {k: v for k, v in data.items() if k != "exact"}
        return cls.from_json(data, exact=exact, backend=backend if exact is not None else F64)


# ---------------------------------------------------------------------------------------------
# simulation


@dataclass(frozen=True)
class Snapshot:
    """The state at GD step ``t`` as float64 ``(K, K)`` / ``(K,)`` arrays, for event detection.

    ``logits[n, k]``, ``attention[n, k]``, ``loss[k]``, ``loss_star[k]``, ``concentration[k]``;
    ``delta[n, k] = Z(t+1) - Z(t)`` (None at the last step).
    """

    t: int
    logits: np.ndarray
    loss: np.ndarray
    loss_star: np.ndarray
    attention: np.ndarray
    concentration: np.ndarray
    delta: np.ndarray | None


def simulate(config: FeaturesConfig, steps: int, every: int = 1, backend: Backend = F64,
             method: str = "auto", grouped: bool = True, progress: bool = False,
             samples: int = 20_000, seed: int = 0, observe=None) -> Trajectory:
    """Run ``steps`` GD steps from ``Q = 0`` and record every ``every``-th step (and the last).

    ``observe(snapshot) -> bool``, when given, sees every step (events are located at the exact
    step); returning True stops the run there, and that step is recorded last.  Raises
    :class:`SimulationError` naming the step when NaN or overflow appears.
    """
    steps = whole_number(steps, "steps", at_least=0, at_most=10**9)
    every = whole_number(every, "every", at_least=1)
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    struct = structure(config.p, grouped)
    C, A = struct.shape
    N = config.N
    be = backend
    with be.context(), np.errstate(all="ignore"):
        z = be.zeros((C, A))
        rate = _to_backend([config.eta * pk for pk in struct.class_p], be)[:, None]
        atom_p = _to_backend(struct.atom_p, be)
        if method == "auto":
            method = choose_method(Columns(z, atom_p, struct.atom_mult), N)
        kw = {"samples": samples, "seed": seed}
        if method == "meanfield":    # N -> inf: (1 - p_k)^N -> 0
            lstar, log_lstar = be.zeros(C), np.full(C, -math.inf)
        else:
            lstar, log_lstar = loss_star(config, struct, be, "quadrature"
                                         if method == "montecarlo" else method)
        lstar_k = be.to_float(np.asarray(lstar))[struct.col_class]
        records = {name: [] for name in ("z",) + OBSERVABLES}
        recorded = []
        bar = _progress(steps, progress)
        for t in range(steps + 1):
            record = t % every == 0 or t == steps
            observed = record or observe is not None
            names = (("grad_own", "grad_off") if t < steps else ()) + \
                (OBSERVABLES if observed else ())
            if not names:
                continue
            try:
                out = expect(Columns(z, atom_p, struct.atom_mult), N, names, method, be, **kw)
            except OverflowError as exc:
                raise SimulationError(t, f"overflow ({exc})") from None
            for name in names:
                if not be.isfinite(out[name]):
                    raise SimulationError(t, f"{name} is not finite (NaN or overflow)")
            step = None
            if t < steps:
                grad = out["grad_off"].copy()
                grad[:, 0] = out["grad_own"]
                step = -rate * grad
            stop = observe is not None and observe(_snapshot(t, z, step, out, lstar_k, struct, be))
            if record or stop:
                recorded.append(t)
                records["z"].append(z)
                for name in OBSERVABLES:
                    records[name].append(out[name])
            if stop:
                break
            if step is not None:
                z = z + step
                if not be.isfinite(z):
                    raise SimulationError(t + 1, "logits are not finite (NaN or overflow)")
                bar.update(1)
        bar.close()
    return _trajectory(config, struct, recorded, records, lstar, log_lstar, be, method,
                       steps, every)


def _snapshot(t, z, step, out, lstar_k, struct: Structure, be: Backend) -> Snapshot:
    f = be.to_float if be.is_mp else np.asarray
    attention = out["attention_off"].copy()
    attention[:, 0] = out["attention_own"]
    return Snapshot(t=t, logits=struct.expand(f(z)), loss=f(out["loss"])[struct.col_class],
                    loss_star=lstar_k, attention=struct.expand(f(attention)),
                    concentration=f(out["concentration"])[struct.col_class],
                    delta=None if step is None else struct.expand(f(step)))


def _progress(total: int, enabled: bool):
    from tqdm import tqdm
    return tqdm(total=total, disable=not enabled, unit="step", mininterval=0.5, leave=False)


def _trajectory(config, struct, recorded, records, lstar, log_lstar, be, method, steps, every):
    K = config.K
    z = np.array(records["z"], dtype=object if be.is_mp else float)
    logits = np.stack([struct.expand(zi) for zi in z]) if len(z) else np.zeros((0, K, K))
    attention = []
    for own, off in zip(records["attention_own"], records["attention_off"]):
        full = off.copy()
        full[:, 0] = own
        attention.append(struct.expand(full))
    per_k = struct.col_class
    loss = np.array([np.asarray(x)[per_k] for x in records["loss"]])
    conc = np.array([np.asarray(x)[per_k] for x in records["concentration"]])
    attention = np.array(attention)
    lstar_k = np.asarray(lstar)[per_k]
    exact = None
    arrays = {"logits": logits, "loss": loss, "attention": attention, "concentration": conc,
              "loss_star": lstar_k}
    if be.is_mp:
        exact = arrays
        arrays = {name: be.to_float(arr) if arr.size else arr.astype(float)
                  for name, arr in arrays.items()}
    cfg = config.to_dict() | {"steps": steps, "every": every, "method": method,
                              "precision": be.digits, "number_type": be.name}
    return Trajectory(config=cfg, t=recorded, log10_loss_star=np.asarray(log_lstar)[per_k],
                      exact=exact, backend=be, **arrays)
