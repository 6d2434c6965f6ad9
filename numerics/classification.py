"""classification: population GD on the key-query block W, the minimiser W*, the inference error.

In whitened eigen-coordinates (:mod:`theory.classification`) GD from ``W = 0`` keeps
``V = Lambda^{1/2} W Lambda^{1/2}`` diagonal, one value ``v_g`` per distinct eigenvalue
``lambda_g`` (multiplicity ``k_g``):

    v_g(t + 1) = v_g(t) - eta lambda_g^2 (dL/dv_g) / k_g,      W_t = U diag(v_j / lambda_j) U^T,

and the minimiser is ``W* = a* Lambda^{-1}`` for every ``Lambda``.  Two estimators of ``L``:

* ``quadrature`` (binary, ``V = a I``: ``Lambda`` a multiple of the identity, and ``a*`` for every
  ``Lambda``): a tensor Gauss rule over the label count (Krawtchouk), the cosine of the two means
  (Gegenbauer), two Gaussian coordinates of the context noise (Hermite), its orthogonal rest
  ``q ~ chi^2_{d-2}`` (Laguerre) and the query's Gaussian (Hermite); float64 or arbitrary
  precision; the integrand and its derivatives are the SymPy ones, compiled by lambdify;
* ``montecarlo`` (any ``Lambda``, any number of classes ``c``): explicit prompts in the whitened
  space from a seeded generator, the same draws at every step (common random numbers), so GD runs
  on one smooth sample-average loss; its minimiser is found by Newton's method.  For ``a*`` the
  N = oo prompt (``h_k = mu_k / c``, where the Bayes logit makes the population gradient vanish)
  drawn with the same numbers is a control variate.
"""
from __future__ import annotations

import math
import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

import numpy as np
import sympy as sp

from ..theory import classification as th

from .backend import F64, Backend
from .errors import ConfigError, SimulationError
from .gauss import rule
from .jsonio import Record
from .numbers import fraction, positive_fraction, whole_number

__all__ = ["ClassificationConfig", "parse_lambda", "Nodes", "IsotropicLoss", "MonteCarloLoss",
           "minimiser", "simulate", "inference_error", "ClassificationTrajectory", "METHODS",
           "minimiser_gap", "gd_scale"]

METHODS = ("auto", "quadrature", "montecarlo")
SYMMETRY_TOLERANCE = Fraction(1, 10**12)


# ---------------------------------------------------------------------------------------------
# configuration


def parse_lambda(spec, d: int | None) -> tuple[tuple[Fraction, ...], ...]:
    """``Lambda`` from ``identity`` (needs ``d``), ``scaled:S`` (S times the identity), ``diag:l1,...``
    or rows ``a,b;c,d``; exact fractions.  Must be symmetric (within 1e-12) and positive definite
    (every pivot of an exact LDL^T factorisation positive)."""
    if isinstance(spec, (list, tuple)):
        rows = [[fraction(x, "Lambda entry") for x in row] for row in spec]
    else:
        text = str(spec).strip()
        if text in ("identity", "") or text.startswith("scaled:"):
            if d is None:
                raise ConfigError("Lambda = identity needs the dimension d")
            s = Fraction(1) if not text.startswith("scaled:") else fraction(text[7:], "scale")
            rows = [[s if i == j else Fraction(0) for j in range(d)] for i in range(d)]
        elif text.startswith("diag:"):
            diag = [fraction(x, "Lambda diagonal entry") for x in text[5:].split(",")]
            rows = [[diag[i] if i == j else Fraction(0) for j in range(len(diag))]
                    for i in range(len(diag))]
        else:
            rows = [[fraction(x, "Lambda entry") for x in row.split(",")]
                    for row in text.split(";")]
    n = len(rows)
    if n == 0 or any(len(row) != n for row in rows):
        raise ConfigError(f"Lambda must be a square matrix, got rows of lengths "
                          f"{[len(row) for row in rows]}")
    if d is not None and n != d:
        raise ConfigError(f"Lambda is {n} x {n} but d = {d}")
    scale = max(abs(x) for row in rows for x in row) or Fraction(1)
    for i in range(n):
        for j in range(i):
            if abs(rows[i][j] - rows[j][i]) > SYMMETRY_TOLERANCE * scale:
                raise ConfigError(f"Lambda is not symmetric: entry ({i + 1},{j + 1}) = "
                                  f"{float(rows[i][j]):g} but ({j + 1},{i + 1}) = "
                                  f"{float(rows[j][i]):g}")
    rows = [[(rows[i][j] + rows[j][i]) / 2 for j in range(n)] for i in range(n)]
    M = [row[:] for row in rows]              # exact LDL^T: positive definite iff pivots > 0
    for k in range(n):
        if M[k][k] <= 0:
            raise ConfigError("Lambda is not positive definite (pivot "
                              f"{k + 1} of its LDL^T factorisation is {float(M[k][k]):g})")
        for i in range(k + 1, n):
            f = M[i][k] / M[k][k]
            for j in range(k, n):
                M[i][j] -= f * M[k][j]
    return tuple(tuple(row) for row in rows)


@dataclass(frozen=True)
class ClassificationConfig:
    """``c`` classes in dimension ``d``, training prompts of ``N`` examples, covariance ``Lambda``,
    class means of whitened norm ``r``, step size ``eta``."""

    N: int
    d: int
    classes: int
    Lambda: tuple
    r: Fraction
    eta: Fraction
    Lambda_spec: str = "identity"

    @classmethod
    def make(cls, N, d=None, Lambda="identity", classes=2, r="1", eta="1"):
        """Validate and build; raises :class:`ConfigError` with a one-line message."""
        N = whole_number(N, "N", at_least=1, at_most=10**7)
        classes = whole_number(classes, "c (number of classes)", at_least=2, at_most=64)
        d = None if d is None else whole_number(d, "d", at_least=1, at_most=256)
        lam = parse_lambda(Lambda, d)
        r = fraction(r, "r")
        if r <= 0:
            raise ConfigError(f"r must be a positive finite number, got {r}")
        eta_f = positive_fraction(eta, "eta")
        spec = Lambda if isinstance(Lambda, str) else ";".join(",".join(map(str, row))
                                                              for row in Lambda)
        return cls(N, len(lam), classes, lam, r, eta_f, spec)

    @property
    def isotropic(self) -> bool:
        """``Lambda`` a multiple of the identity (GD keeps ``V = a I``)."""
        s = self.Lambda[0][0]
        return all(x == (s if i == j else 0) for i, row in enumerate(self.Lambda)
                   for j, x in enumerate(row))

    def eigen(self):
        """Distinct eigenvalues ``lambda_g``, their multiplicities ``k_g``, and the group of each
        eigen-coordinate (float64)."""
        lam = np.linalg.eigvalsh(np.array(self.Lambda, dtype=float))
        groups, values = [], []
        for x in lam:
            for gi, v in enumerate(values):
                if abs(x - v) <= 1e-12 * max(abs(v), 1.0):
                    groups.append(gi)
                    break
            else:
                values.append(x)
                groups.append(len(values) - 1)
        groups = np.array(groups)
        return np.array(values), np.bincount(groups), groups

    def inverse_max(self) -> float:
        """``||Lambda^{-1}||_max``, exactly."""
        inv = sp.Matrix([[sp.Rational(x.numerator, x.denominator) for x in row]
                         for row in self.Lambda]).inv()
        return float(max(abs(x) for x in inv))

    def to_dict(self) -> dict:
        return {"setting": "classification", "N": self.N, "d": self.d, "classes": self.classes,
                "Lambda": [[float(x) for x in row] for row in self.Lambda],
                "Lambda_spec": self.Lambda_spec, "r": float(self.r), "eta": float(self.eta)}


# ---------------------------------------------------------------------------------------------
# quadrature of the binary loss along V = a I


@dataclass(frozen=True)
class Nodes:
    """Nodes per dimension of the tensor rule: label count, cosine, each Gaussian coordinate of
    the context noise, its orthogonal rest, the query's Gaussian."""

    count: int = 12
    cosine: int = 12
    noise: int = 8
    rest: int = 8
    query: int = 64

    @classmethod
    def for_backend(cls, backend: Backend, N: int = 64) -> "Nodes":
        """Defaults: the context noise enters as ``zeta / sqrt(N)`` times the query, a product
        whose poles come close to the real axis at small N, so short prompts get more nodes
        (measured: about 1e-8 at N >= 16, 1e-5 at N = 2..8, float64)."""
        noise = 8 if N >= 64 else 16 if N >= 16 else 32
        if not backend.is_mp:
            return cls(noise=noise)
        extra = backend.digits // 2
        return cls(12 + extra, 12 + extra, noise + extra // 2, 8 + extra // 2,
                   64 + 4 * backend.digits)

    @classmethod
    def parse(cls, text: str | None) -> "Nodes | None":
        """``"count,cosine,noise,rest,query"`` (whole numbers >= 1); None or ``""``: the
        defaults of :meth:`for_backend`."""
        if text is None or text == "":
            return None
        parts = text.split(",")
        if len(parts) != 5:
            raise ConfigError(f"--nodes takes 5 whole numbers count,cosine,noise,rest,query, "
                              f"got {len(parts)}")
        return cls(*(whole_number(x, "a node count", at_least=1, at_most=4096) for x in parts))

    def refined(self, factor: float = 1.5) -> "Nodes":
        return Nodes(*(int(math.ceil(factor * n)) for n in (self.count, self.cosine, self.noise,
                                                              self.rest, self.query)))


@lru_cache(maxsize=None)
def _gd_step():
    """``step(eta, lambda)`` of one eigen-coordinate, compiled from :func:`theory.classification.gd_step`
    (plain arithmetic: float64 arrays and MPFR or mpmath numbers alike)."""
    expr, args = th.gd_step()
    return sp.lambdify(args, expr, modules=[{}, "math"])


def gd_scale(eta, lam, mult):
    """GD on ``W`` moves the per-group coordinate ``v_g`` by ``-eta lambda_g^2 (dL/dv_g) / k_g``:
    the derived step over the multiplicity ``k_g`` (the derivative in ``v_g`` sums ``k_g`` equal
    coordinates)."""
    return _gd_step()(eta, lam) / mult


def _number(be: Backend, x):
    """``x`` (Fraction, int, float or decimal string) as a number of ``be``, exactly rounded."""
    f = fraction(x, "number")
    with be.context():
        return be.scalar(f.numerator) / be.scalar(f.denominator)


def _stable_functions(be: Backend) -> dict:
    """Overflow-free ``softplus`` and ``sigmoid`` for the generated code."""
    if not be.is_mp:
        from scipy.special import expit
        return {"softplus": lambda x: np.logaddexp(0.0, x), "sigmoid": expit}
    exp, log1p = be.function("exp"), be.function("log1p")

    def softplus(x):
        return x + log1p(exp(-x)) if x > 0 else log1p(exp(x))

    def sigmoid(x):
        if x >= 0:
            return 1 / (1 + exp(-x))
        e = exp(x)
        return e / (1 + e)

    return {"softplus": np.frompyfunc(softplus, 1, 1), "sigmoid": np.frompyfunc(sigmoid, 1, 1)}


@lru_cache(maxsize=8)
def _compiled(be: Backend):
    """The derived integrands, compiled for ``be``: ``(h1, h2)``, ``(ell, dell, d2ell)`` and
    ``(ell, dell)`` (a GD step needs no second derivative)."""
    coords = th.margin_coordinates()
    alpha, c, z1, z2, q, r, N = coords["symbols"]
    mods = [_stable_functions(be) | {"sqrt": be.sqrt} | be.namespace, "numpy"]
    h = sp.lambdify((alpha, c, z1, z2, r, N), [coords["h1"], coords["h2"]], modules=mods)
    iso = th.isotropic_integrand()
    f = sp.lambdify((iso["a"], iso["t"]), [iso["ell"], iso["dell"], iso["d2ell"]], modules=mods)
    f1 = sp.lambdify((iso["a"], iso["t"]), [iso["ell"], iso["dell"]], modules=mods)
    return h, f, f1


class IsotropicLoss:
    """``L(a)``, ``L'(a)``, ``L''(a)`` of the binary model at ``V = a I`` by the tensor rule.

    The cloud ``(m0, s0, weight)`` over the five context dimensions is built once; every evaluation
    sums the derived integrand over the cloud and the query's Hermite nodes."""

    def __init__(self, N: int, d: int, r, backend: Backend = F64, nodes: Nodes | None = None):
        self.N, self.d, self.r, self.backend = N, d, r, backend
        self.nodes = nodes or Nodes.for_backend(backend, N)
        be, nd = backend, self.nodes
        h, self._f, self._f1 = _compiled(be)
        with be.context():
            r_ = _number(be, r)
            n_count = min(N + 1, nd.count)
            xn, wn = rule("krawtchouk", n_count, be, (N, Fraction(1, 2)))
            alpha = xn / be.scalar(N)
            if d == 1:
                xc, wc = be.array([-1, 1]), be.array(["0.5", "0.5"])
            else:
                xc, wc = rule("gegenbauer", nd.cosine, be, Fraction(d - 3, 2))
            xz, wz = rule("hermite", nd.noise, be)
            zero, one = be.array([0]), be.array([1])
            x2, w2 = (xz, wz) if d >= 2 else (zero, one)
            if d >= 3:
                xq, wq = rule("laguerre", nd.rest, be, Fraction(d - 4, 2))
                xq = 2 * xq                                  # q = 2 X, X ~ Gamma((d-2)/2)
            else:
                xq, wq = zero, one
            A, C, Z1, Z2, Q = np.meshgrid(alpha, xc, xz, x2, xq, indexing="ij")
            W = np.einsum("a,b,c,d,e->abcde", wn, wc, wz, w2, wq) if not be.is_mp else \
                (wn[:, None, None, None, None] * wc[None, :, None, None, None]
                 * wz[None, None, :, None, None] * w2[None, None, None, :, None]
                 * wq[None, None, None, None, :])
            Nb = be.scalar(N)
            h1, h2 = h(A, C, Z1, Z2, r_, Nb)
            self.m0 = (r_ * h1).ravel()
            self.s0 = be.sqrt(h1 * h1 + h2 * h2 + Q / Nb).ravel()
            self.w = W.ravel()
            self.z, self.wz = rule("hermite", nd.query, be)
        self.size = self.m0.size * self.z.size

    def __call__(self, a, chunk: int = 40_000, hessian: bool = True):
        """``(L, L', L'')`` at ``a`` (backend numbers); ``(L, L')`` when ``hessian`` is False."""
        be = self.backend
        f = self._f if hessian else self._f1
        with be.context():
            a = be.scalar(a)
            total = [be.scalar(0)] * (3 if hessian else 2)
            for i in range(0, self.m0.size, chunk):
                t = self.m0[i:i + chunk, None] + self.s0[i:i + chunk, None] * self.z[None, :]
                w = self.w[i:i + chunk, None] * self.wz[None, :]
                for k, part in enumerate(f(a, t)):
                    total[k] = total[k] + (w * part).sum()
            return tuple(total)


def _norm(g) -> float:
    return float(np.max(np.abs(np.asarray(g, dtype=float))))


def _newton(fun, x0, tol, max_iter=100, what="minimiser"):
    """Damped Newton's method on ``fun(x) -> (value, gradient, hessian)``, scalar or vector.

    With a value, steps are halved until the value or the gradient's size decreases (the losses
    are convex, so the full step is taken near the minimiser); without one (a root of the
    gradient), a step is at most 1."""
    x = x0
    for _ in range(max_iter):
        value, g, H = fun(x)
        try:
            dx = np.linalg.solve(np.atleast_2d(H), np.atleast_1d(g)) if np.ndim(g) else g / H
        except np.linalg.LinAlgError:
            raise SimulationError(0, f"singular Hessian in Newton's method for the {what}") from None
        if value is None:
            scale = max(1.0, float(np.max(np.abs(dx))))
            x_new = x - dx / scale
        else:   # accept when the value or the gradient falls (values alone stall at round-off)
            t, x_new = 1.0, x - dx
            size = _norm(g)
            while t > 1e-6:
                v_new, g_new, _ = fun(x_new)
                if v_new <= value or _norm(g_new) < size:
                    break
                t /= 2
                x_new = x - t * dx
        step = np.max(np.abs(np.asarray(x_new - x, dtype=float)))
        x = x_new
        if step <= tol * max(1.0, float(np.max(np.abs(np.asarray(x, dtype=float))))):
            return x
    raise SimulationError(max_iter, f"Newton's method for the {what} did not converge")


# ---------------------------------------------------------------------------------------------
# Monte Carlo with common random numbers


def _sphere(rng, shape, d, r):
    g = rng.standard_normal(shape + (d,))
    return r * g / np.linalg.norm(g, axis=-1, keepdims=True)


def _counts(u, N, classes):
    """Class counts of ``N`` labels from uniforms ``u`` (..., classes - 1) by inverse CDFs of the
    conditional binomials: the same ``u`` give counts that move smoothly with ``N``."""
    from scipy.stats import binom
    left = np.full(u.shape[:-1], N, dtype=float)
    out = []
    for k in range(classes - 1):
        nk = binom.ppf(u[..., k], left, 1.0 / (classes - k))
        nk = np.nan_to_num(nk, nan=0.0)
        out.append(nk)
        left = left - nk
    out.append(left)
    return np.stack(out, axis=-1)


def _prompts(N, d, classes, r, samples, seed):
    """Whitened prompts, query of class 1: ``h[s, k] = (n_k mu_k + sqrt(n_k) zeta_k) / N`` and
    ``x[s]``; also the N = oo average ``mu_k / c``; all from one seeded generator."""
    rng = np.random.default_rng(seed)
    mu = _sphere(rng, (samples, classes), d, float(r))
    counts = _counts(rng.random((samples, classes - 1)), N, classes)
    zeta = rng.standard_normal((samples, classes, d))
    x = mu[:, 0] + rng.standard_normal((samples, d))
    h = (counts[..., None] * mu + np.sqrt(counts)[..., None] * zeta) / N
    return h, mu / classes, x, mu


@lru_cache(maxsize=None)
def _multiclass(classes: int):
    """``(ell and grad, hess)`` of the ``c``-class cross-entropy in the logits, compiled from
    :func:`theory.classification.multiclass_integrand` (numpy, one array per entry)."""
    d = th.multiclass_integrand(classes)
    return (sp.lambdify(d["logits"], [d["ell"], *d["grad"]], "numpy", cse=True),
            sp.lambdify(d["logits"], [h for row in d["hess"] for h in row], "numpy", cse=True))


#: How many second-derivative entries the Monte Carlo loss holds at once (about 80 MB).
CHUNK_ENTRIES = 10_000_000


class MonteCarloLoss:
    """Sample-average cross-entropy over ``samples`` prompts (fixed draws), as a function of the
    per-group diagonal ``v``: ``logit_k = sum_g v_g U[s, k, g]``, ``U[s, k, g] = sum_{j in g}
    h_{k,j} x_j``.  ``limit=True`` uses the N = oo averages ``mu_k / c`` instead of ``h_k``."""

    def __init__(self, N, d, classes, r, groups, samples=100_000, seed=0):
        h, h_inf, x, _ = _prompts(N, d, classes, r, samples, seed)
        G = int(np.max(groups)) + 1
        onehot = np.eye(G)[groups]                       # (d, G)
        self.U = np.einsum("skj,sj,jg->skg", h, x, onehot)
        self.U_inf = np.einsum("skj,sj,jg->skg", h_inf, x, onehot)
        self.samples, self.G, self.classes = samples, G, classes

    def per_sample(self, v, limit=False, hessian=True):
        """Per-prompt loss, gradient ``(S, G)`` and Hessian ``(S, G, G)`` (None when not asked
        for) at ``v``: the derived :func:`theory.classification.multiclass_integrand`, compiled,
        at the logits shifted by their largest value, chained through ``logit = U v``.  Prompts
        go through in chunks, so the ``c x c`` second derivatives never take more than about
        ``CHUNK_ENTRIES`` numbers at once."""
        U = self.U_inf if limit else self.U
        logits = U @ np.asarray(v, float)                 # (S, c)
        logits = logits - logits.max(axis=1, keepdims=True)
        c = self.classes
        first, second = _multiclass(c)
        loss = np.empty(len(logits))
        grad = np.empty((len(logits), U.shape[2]))
        hess = np.empty((len(logits), U.shape[2], U.shape[2])) if hessian else None
        step = max(1, CHUNK_ENTRIES // (c * c + c + 1))
        for i in range(0, len(logits), step):
            part, Ui = logits[i:i + step].T, U[i:i + step]
            values = np.stack(np.broadcast_arrays(*first(*part)), axis=1)
            loss[i:i + step] = values[:, 0]                                   # ell
            grad[i:i + step] = np.einsum("sk,skg->sg", values[:, 1:], Ui)      # d ell/d logit
            if hessian:
                d2 = np.stack(np.broadcast_arrays(*second(*part)), axis=1).reshape(-1, c, c)
                hess[i:i + step] = np.einsum("skg,skj,sjh->sgh", Ui, d2, Ui, optimize=True)
        return loss, grad, hess

    def __call__(self, v, hessian=True):
        """``(L, grad, Hessian)`` of the sample average at ``v`` (Hessian None if not asked)."""
        loss, grad, hess = self.per_sample(v, hessian=hessian)
        return loss.mean(), grad.mean(axis=0), None if hess is None else hess.mean(axis=0)

    def stderr(self, v):
        """Standard errors of the loss and of the gradient at ``v``."""
        loss, grad, _ = self.per_sample(v)
        return loss.std(ddof=1) / math.sqrt(self.samples), grad.std(axis=0, ddof=1) / math.sqrt(
            self.samples)

    def minimiser(self, tol=1e-13):
        """Minimiser of the sample average over diagonal ``v`` (Newton from ``c``)."""
        return _newton(self, np.full(self.G, float(self.classes)), tol)

    def isotropic_minimiser(self):
        """``a*`` along ``V = a I`` with the N = oo control variate, and its standard error.

        Solves ``mean[g_N(a) - g_oo(c)] = 0`` with ``g`` the a-derivative of the per-prompt loss;
        ``E g_oo(c) = 0`` (the Bayes logits minimise the population loss)."""
        c = float(self.classes)
        base = self.per_sample(np.full(self.G, c), limit=True)[1].sum(axis=1)

        def fun(a):
            _, g, H = self.per_sample(np.full(self.G, a))
            return None, (g.sum(axis=1) - base).mean(), H.sum(axis=(1, 2)).mean()

        a = _newton(fun, c, 1e-14, what="isotropic minimiser")
        _, g, H = self.per_sample(np.full(self.G, a))
        diff = g.sum(axis=1) - base
        return a, diff.std(ddof=1) / math.sqrt(self.samples) / H.sum(axis=(1, 2)).mean()


# ---------------------------------------------------------------------------------------------
# the minimiser and its gap to the large-N limit


def minimiser(config: ClassificationConfig, backend: Backend = F64, method: str = "auto",
              samples: int = 200_000, seed: int = 0, nodes: Nodes | None = None):
    """``a*`` with ``W* = a* Lambda^{-1}``, and an error estimate (quadrature: the change under a
    1.5x finer rule; Monte Carlo: the standard error)."""
    method = _method(config, method)
    if method == "montecarlo":
        mc = MonteCarloLoss(config.N, config.d, config.classes, config.r, np.zeros(config.d, int),
                            samples, seed)
        return mc.isotropic_minimiser()
    loss = IsotropicLoss(config.N, config.d, config.r, backend, nodes)
    return _quadrature_minimiser(loss)


def _quadrature_minimiser(loss: IsotropicLoss):
    """``a*`` by damped Newton on the quadrature loss, and the Newton step of a 1.5x finer rule
    at ``a*`` as its error estimate."""
    be = loss.backend
    with be.context():
        tol = 1e-14 if not be.is_mp else 10.0 ** (3 - be.digits)   # round-off of the sums
        a = _newton(loss, be.scalar(2), tol, what="minimiser a*")
        _, g, H = IsotropicLoss(loss.N, loss.d, loss.r, be, loss.nodes.refined())(a)
        return a, abs(g / H)


def minimiser_gap(config: ClassificationConfig, **kw) -> tuple[float, float]:
    """``||W*/c - Lambda^{-1}||_max = |a*/c - 1| ||Lambda^{-1}||_max`` and its error estimate."""
    a, err = minimiser(config, **kw)
    scale = config.inverse_max() / config.classes
    return abs(float(a) - config.classes) * scale, float(err) * scale


def _method(config, method, trajectory=False):
    """The estimator: quadrature for two classes (and, for a trajectory, ``Lambda = s I``)."""
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    reducible = config.classes == 2 and (config.isotropic or not trajectory)
    if method == "auto":
        return "quadrature" if reducible else "montecarlo"
    if method == "quadrature" and not reducible:
        raise ConfigError("the quadrature reduction needs two classes" + (
            " and Lambda = s * identity (then V stays a I)" if trajectory else "")
            + "; use --method montecarlo")
    return method


# ---------------------------------------------------------------------------------------------
# inference error against the Bayes-optimal prediction


def inference_error(a: float, M: int, d: int, classes: int = 2, r=1, samples: int = 200_000,
                    seed: int = 1) -> tuple[float, float]:
    """``E (1/2) sum_k |p_k - p*_k|`` over test prompts of length ``M``: ``p = softmax(a h_k^T x)``
    (the model with ``W = a Lambda^{-1}``), ``p* = softmax(mu_k^T Lambda^{-1} x)`` (Bayes, equal
    norms); Monte Carlo with its standard error.  The same ``seed`` gives the same means, queries
    and noise at every ``M`` and ``a``."""
    M = whole_number(M, "M", at_least=1)
    h, _, x, mu = _prompts(M, d, classes, r, samples, seed)
    model = a * np.einsum("skj,sj->sk", h, x)
    bayes = np.einsum("skj,sj->sk", mu, x)

    def softmax(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    tv = 0.5 * np.abs(softmax(model) - softmax(bayes)).sum(axis=1)
    return float(tv.mean()), float(tv.std(ddof=1) / math.sqrt(samples))


# ---------------------------------------------------------------------------------------------
# GD


@dataclass
class ClassificationTrajectory(Record):
    """Recorded GD steps: ``v[i, g]`` (whitened eigen-coordinates, per distinct eigenvalue),
    ``loss[i]``, ``distance[i] = ||W_t - W*||_F`` with ``W*`` the minimiser of the same loss
    estimator; ``a_star`` (``W* = a* Lambda^{-1}`` of the population loss) and its error."""

    config: dict
    t: list
    v: np.ndarray
    loss: np.ndarray
    distance: np.ndarray
    v_star: np.ndarray
    a_star: float
    a_star_error: float
    eigenvalues: np.ndarray
    multiplicity: np.ndarray
    exact: dict | None = field(default=None, repr=False)

    ARRAYS = ("v", "loss", "distance", "v_star", "eigenvalues", "multiplicity")
    PER_STEP = ("v", "loss", "distance")

    def rate(self, floor: float = 1e-9):
        """Linear rate: ``rho = exp(slope)`` of ``log ||W_t - W*||`` over the recorded steps in the
        later half of those above ``floor`` times the first distance; with a 95% interval."""
        from scipy import stats
        t = np.asarray(self.t, float)
        dist = np.asarray(self.distance, float)
        keep = (dist > floor * dist[0]) & (dist > 0)
        t, dist = t[keep], dist[keep]
        half = len(t) // 2
        t, dist = t[half:], dist[half:]
        if len(t) < 3:
            raise ValueError("too few recorded steps above the floor to fit a rate")
        fit = stats.linregress(t, np.log(dist))
        se = 0.0 if not np.isfinite(fit.stderr) else fit.stderr
        half_width = stats.t.ppf(0.975, len(t) - 2) * se
        return {"rho": math.exp(fit.slope), "low": math.exp(fit.slope - half_width),
                "high": math.exp(fit.slope + half_width), "steps": [t[0], t[-1]]}


#: GD has diverged once ||W_t - W*|| exceeds this multiple of ||W_0 - W*||.
DIVERGED = 1e8


def _descend(evaluate, update, distance, state, steps, every, until, bar, finite, observe=None):
    """The GD loop of both estimators: ``evaluate(state) -> (L, g)``, ``update(state, g)``; records
    every ``every``-th step, the last, and the first with ``distance <= until * distance(start)``
    or with ``observe(t, L, distance) `` true (where it stops).  Returns the recorded steps,
    states and losses."""
    recorded, states, losses = [], [], []
    first = distance(state)
    for t in range(steps + 1):
        with np.errstate(all="ignore"):         # non-finite values are caught just below
            L, g = evaluate(state)
        if not finite(L, g):
            raise SimulationError(t, "the loss or its gradient is not finite")
        far = distance(state)
        if not math.isfinite(far) or far > DIVERGED * max(first, 1e-300):
            raise SimulationError(t, f"GD diverges: ||W_t - W*|| is {far:.3g}, more than "
                                     f"{DIVERGED:.0e} times its start (a smaller --eta?)")
        stop = until is not None and distance(state) <= until * first
        stop = stop or (observe is not None and observe(t, float(L), float(distance(state))))
        if t % every == 0 or t == steps or stop:
            recorded.append(t)
            states.append(state)
            losses.append(L)
        if stop:
            break
        if t < steps:
            state = update(state, g)
            bar.update(1)
    return recorded, states, losses


def simulate(config: ClassificationConfig, steps: int, every: int = 1, backend: Backend = F64,
             method: str = "auto", samples: int = 100_000, seed: int = 0, nodes: Nodes | None = None,
             progress: bool = False, until: float | None = None,
             observe=None) -> ClassificationTrajectory:
    """GD from ``W = 0`` for ``steps`` steps, recording every ``every``-th (and the last).

    ``until``: stop (and record) at the first step with ``||W_t - W*|| <= until ||W_0 - W*||``;
    ``observe(t, loss, distance) -> bool``: stop (and record) at the first step where it is true.

    ``quadrature`` needs two classes and ``Lambda`` a multiple of the identity (then ``V = a I``
    at every step); ``montecarlo`` runs any configuration in float64.  Raises
    :class:`SimulationError` naming the step when the loss or the weights stop being finite."""
    from tqdm import tqdm

    steps = whole_number(steps, "steps", at_least=0, at_most=10**7)
    every = whole_number(every, "every", at_least=1)
    method = _method(config, method, trajectory=True)
    if backend.is_mp and method == "montecarlo":
        raise ConfigError("Monte Carlo runs in float64; drop --precision or use a quadrature "
                          "configuration (two classes, Lambda = s * identity)")
    lam, mult, groups = config.eigen()
    eta = float(config.eta)
    be = backend
    bar = tqdm(total=steps, disable=not progress, unit="step", mininterval=0.5, leave=False)
    if method == "quadrature":
        loss = IsotropicLoss(config.N, config.d, config.r, be, nodes)
        a_star, a_err = _quadrature_minimiser(loss)
        with be.context():
            rate = gd_scale(_number(be, config.eta), _number(be, config.Lambda[0][0]), config.d)
            recorded, vs, losses = _descend(
                lambda a: loss(a, hessian=False), lambda a, g: a - rate * g,
                lambda a: abs(float(a - a_star)), be.scalar(0), steps, every, until, bar,
                lambda L, g: be.isfinite(np.array([L, g], dtype=object if be.is_mp else float)),
                observe)
            v_star = np.array([a_star])
            exact = None
            if be.is_mp:
                exact = {"v": [[be.to_str(x)] for x in vs],
                         "loss": [be.to_str(x) for x in losses], "a_star": be.to_str(a_star)}
            v = be.to_float(np.array(vs, dtype=object)) if be.is_mp else np.array(vs, float)
            v = v.reshape(-1, 1)
            loss_arr = be.to_float(np.array(losses, dtype=object)) if be.is_mp else \
                np.array(losses, float)
            dist = np.abs(v[:, 0] - float(a_star)) * math.sqrt(config.d) / abs(lam[0])
            a_star_f, a_err_f = float(a_star), float(a_err)
    else:
        mc = MonteCarloLoss(config.N, config.d, config.classes, config.r, groups, samples, seed)
        v_star = mc.minimiser()
        a_star_f, a_err_f = (float(x) for x in mc.isotropic_minimiser())
        step = gd_scale(eta, lam, mult)
        weight = mult / lam**2

        def distance(v):   # ||W - W*||_F^2 = sum_j ((v_j - v*_j) / lambda_j)^2
            return math.sqrt(float(((v - v_star) ** 2 * weight).sum()))

        with np.errstate(all="ignore"):
            recorded, vs, losses = _descend(
                lambda v: mc(v, hessian=False)[:2], lambda v, g: v - step * g, distance,
                np.zeros(len(lam)), steps, every, until, bar,
                lambda L, g: np.isfinite(L) and np.all(np.isfinite(g)), observe)
        v, loss_arr, exact = np.array(vs), np.array(losses), None
        dist = np.sqrt(((v - v_star) ** 2 * weight).sum(axis=1))
    bar.close()
    if not np.all(np.isfinite(v)):
        bad = recorded[int(np.argmin(np.all(np.isfinite(v), axis=1)))]
        raise SimulationError(bad, "the weights are not finite (NaN or overflow)")
    cfg = config.to_dict() | {"steps": steps, "every": every, "method": method,
                              "precision": be.digits, "number_type": be.name,
                              "nodes": list(dataclasses.astuple(loss.nodes))
                              if method == "quadrature" else None,
                              "samples": samples if method == "montecarlo" else None,
                              "seed": seed if method == "montecarlo" else None}
    return ClassificationTrajectory(config=cfg, t=recorded, v=v, loss=loss_arr, distance=dist,
                                    v_star=np.asarray(v_star, float), a_star=a_star_f,
                                    a_star_error=a_err_f, eigenvalues=lam,
                                    multiplicity=mult.astype(float), exact=exact)
