"""classification: in-context classification of Gaussian mixtures (Shen, Yang, Zhou, Shen 2024).

The model is our *reconstruction* (the paper's full text was not available):

* ``c`` classes with probability ``1/c``; ``x | y = k ~ N(mu_k, Lambda)``; every prompt draws its
  own means, ``mu_k = Lambda^{1/2} r g_k / ||g_k||`` (equal ``Lambda^{-1}``-norms ``r``);
* one linear attention layer, key-query block ``W`` only: ``logit_k = h_k^T W x_q`` with
  ``h_k = (1/N) sum_{i: y_i = k} x_i`` (binary: ``logit = (1/N) sum_i y_i x_i^T W x_q`` with
  ``y_i = +-1``, which is ``h_+ - h_-``); cross-entropy, GD on ``W`` from ``W = 0``.

Derived here with SymPy:

* whitening ``x~ = Lambda^{-1/2} x``, ``V = Lambda^{1/2} W Lambda^{1/2}``: the law of a prompt is
  invariant under rotations of the whitened space, so the loss is ``L(O V O^T) = L(V)``; GD on W
  is ``V <- V - eta Lambda grad_V L Lambda``; sign flips keep ``V`` diagonal in the eigenbasis of
  ``Lambda`` (``v_j <- v_j - eta lambda_j^2 dL/dV_jj``) and the minimiser is ``V* = a* I``, i.e.
  ``W* = a* Lambda^{-1}``;
* binary, ``V = a I``: with the query's class ``+`` (label symmetry) the margin ``t = h^T x~_q`` is
  Gaussian given the context, ``t ~ N(m0, s0^2)``; in the basis ``mu^+, mu^-`` (cosine ``c``) the
  context average has coordinates ``h1, h2`` and an orthogonal rest ``q / N`` with
  ``q ~ chi^2_{d-2}``, so the loss is a six-dimensional integral (label count, ``c``, two Gaussian
  coordinates, ``q``, the query's Gaussian ``z``) of ``softplus(-a t)``;
* the gradient of the reduced loss, of the diagonal loss (Stein's lemma removes the ``1/s``) and of
  the multi-class loss; the Bayes posterior and the large-N minimiser ``2 Lambda^{-1}``
  (``c Lambda^{-1}``).
"""
from __future__ import annotations

from functools import lru_cache

import sympy as sp

__all__ = [
    "softplus",
    "sigmoid",
    "prompt_loss_binary",
    "margin_coordinates",
    "isotropic_integrand",
    "diagonal_integrand",
    "multiclass_integrand",
    "stein_identity",
    "gd_rule",
    "gd_step",
    "bayes_log_odds",
    "large_n_minimiser",
    "derivation",
]


class sigmoid(sp.Function):
    """``sigmoid(x) = 1 / (1 + e^{-x})``, with its derivative ``sigmoid(x) sigmoid(-x)``."""

    def fdiff(self, argindex=1):
        x = self.args[0]
        return sigmoid(x) * sigmoid(-x)

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sp.exp(-x))


class softplus(sp.Function):
    """``softplus(x) = log(1 + e^x)``, with its derivative ``sigmoid(x)``."""

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return sp.log(1 + sp.exp(x))


def prompt_loss_binary():
    """Cross-entropy of the binary model: ``log(1 + exp(-y_q logit)) = softplus(-y_q logit)``.

    Returns ``(loss, y_q, logit)``; ``logit = (1/N) sum_i y_i x_i^T W x_q``."""
    yq, logit = sp.symbols("y_q logit", real=True)
    loss = sp.log(1 + sp.exp(-yq * logit))
    assert sp.simplify(loss - softplus(-yq * logit).rewrite(sp.exp)) == 0
    return softplus(-yq * logit), yq, logit


@lru_cache(maxsize=None)
def margin_coordinates():
    """``(m0, s0^2)`` of the margin ``t = h^T x~_q`` given the context, for ``V = I``.

    Derived on explicit whitened vectors: ``mu^+ = r e1``, ``mu^- = r (c e1 + sqrt(1-c^2) e2)``,
    context noise ``zeta = (zeta1, zeta2, zeta3)`` with ``zeta3^2`` standing for the orthogonal rest
    ``q``; ``h = alpha mu^+ - (1 - alpha) mu^- + zeta / sqrt(N)`` (``alpha = n / N``, ``n`` the number
    of ``+`` labels), ``x~_q = mu^+ + xi``: ``E[t | h] = h^T mu^+``, ``Var[t | h] = ||h||^2``.
    """
    r, N = sp.symbols("r N", positive=True)
    alpha, c, z1, z2, z3 = sp.symbols("alpha c zeta1 zeta2 zeta3", real=True)
    q = sp.Symbol("q", nonnegative=True)
    e1, e2 = sp.Matrix([1, 0, 0]), sp.Matrix([0, 1, 0])
    mu_p = r * e1
    mu_m = r * (c * e1 + sp.sqrt(1 - c**2) * e2)
    h = alpha * mu_p - (1 - alpha) * mu_m + sp.Matrix([z1, z2, z3]) / sp.sqrt(N)
    m0 = sp.expand((h.T * mu_p)[0])
    s0sq = sp.expand((h.T * h)[0]).subs(z3**2, q)
    h1, h2 = sp.expand(h[0]), sp.expand(h[1])
    assert m0 == sp.expand(r * h1) and sp.expand(s0sq - h1**2 - h2**2 - q / N) == 0
    return {"m0": m0, "s0^2": s0sq, "h1": h1, "h2": h2,
            "symbols": (alpha, c, z1, z2, q, r, N)}


@lru_cache(maxsize=None)
def isotropic_integrand():
    """Integrand and its a-derivatives for ``V = a I``: ``ell = softplus(-a t)``, ``t = m0 + s0 z``.

    ``L(a) = E[ell]``, ``L'(a) = E[d ell / d a]``, ``L''(a) = E[d^2 ell / d a^2]``; z ~ N(0, 1)."""
    a, t = sp.symbols("a t", real=True)
    ell = softplus(-a * t)
    return {"a": a, "t": t, "ell": ell, "dell": sp.diff(ell, a), "d2ell": sp.diff(ell, a, 2)}


@lru_cache(maxsize=None)
def diagonal_integrand():
    """Binary loss for diagonal ``V = diag(v)`` given the context, and its gradient.

    ``t | context ~ N(m, s^2)`` with ``m = sum_j v_j u_j``, ``s^2 = sum_j v_j^2 w_j`` (``u_j =
    h_j mu^+_j``, ``w_j = h_j^2``).  ``d/dv_j E_z[g(m + s z)] = E_z[g'] u_j + E_z[z g'] v_j w_j / s``
    and Stein's lemma ``E[z f(m + s z)] = s E[f'(m + s z)]`` turns the last term into
    ``E_z[g''] v_j w_j``, which is smooth at ``v = 0``.  Returns ``{"g", "dg_dm", "d2g_dm2"}`` as
    functions of ``t = m + s z`` and the chain-rule factors."""
    t = sp.Symbol("t", real=True)
    g = softplus(-t)
    v, u, w, s = sp.symbols("v_j u_j w_j s", real=True)
    m_sym = sp.Symbol("m", real=True)
    z = sp.Symbol("z", real=True)
    G = sp.Function("G")
    chain = sp.diff(G(m_sym + s * z), m_sym) * u + sp.diff(G(m_sym + s * z), s) * v * w / s
    return {"t": t, "g": g, "dg": sp.diff(g, t), "d2g": sp.diff(g, t, 2), "chain": chain}


def stein_identity(degree: int = 4) -> bool:
    """Check ``E[z f(m + s z)] = s E[f'(m + s z)]`` for ``f(x) = x^k``, k <= degree (SymPy stats)."""
    from sympy.stats import E as Ex, Normal

    m, s = sp.symbols("m s", real=True)
    Z = Normal("Z", 0, 1)
    x = sp.Symbol("x")
    for k in range(degree + 1):
        f = x**k
        lhs = Ex(Z * f.subs(x, m + s * Z))
        rhs = s * Ex(sp.diff(f, x).subs(x, m + s * Z))
        if sp.simplify(lhs - rhs) != 0:
            return False
    return True


@lru_cache(maxsize=None)
def multiclass_integrand(c: int):
    """Cross-entropy of ``c`` classes for ``V = diag(v)`` per group, query class 1.

    ``logit_k = sum_g v_g U_{k,g}`` with ``U_{k,g} = sum_{j in g} h_{k,j} x~_{q,j}``;
    ``ell = log sum_k e^{logit_k} - logit_1``; returns ``ell``, ``d ell / d logit_k`` (softmax
    minus the one-hot label) and ``d^2 ell / d logit_k d logit_j``; by the chain rule
    ``d ell / d v_g = sum_k (d ell / d logit_k) U_{k,g}`` and ``d^2 ell / d v_g d v_h =
    sum_{k,j} (d^2 ell / d logit_k d logit_j) U_{k,g} U_{j,h}``.  ``ell`` is invariant under
    ``logit_k -> logit_k - m`` (checked), hence so are its derivatives, so a simulator may shift
    by the largest logit."""
    logits = sp.symbols(f"l1:{c + 1}", real=True)
    ell = sp.log(sum(sp.exp(x) for x in logits)) - logits[0]
    m = sp.Symbol("m", real=True)
    shifted = ell.subs({x: x - m for x in logits}, simultaneous=True)
    assert sp.simplify(sp.expand_log(sp.factor_terms(sp.powsimp(sp.expand(shifted))), force=True)
                       - ell) == 0, "the cross-entropy is not invariant under a common shift"
    grad = [sp.diff(ell, x) for x in logits]
    hess = [[sp.diff(g, x) for x in logits] for g in grad]
    return {"logits": logits, "ell": ell, "grad": grad, "hess": hess}


def gd_rule():
    """GD on W in whitened eigen-coordinates: ``v_j <- v_j - eta lambda_j^2 dL/dV_jj``.

    Derived from ``V = Lambda^{1/2} W Lambda^{1/2}`` on a diagonal 2 x 2 example with symbolic
    entries: ``grad_W L = Lambda^{1/2} grad_V L Lambda^{1/2}``."""
    l1, l2, eta = sp.symbols("lambda_1 lambda_2 eta", positive=True)
    g1, g2, v1, v2 = sp.symbols("g_1 g_2 v_1 v_2", real=True)
    half = sp.diag(sp.sqrt(l1), sp.sqrt(l2))
    W = half.inv() * sp.diag(v1, v2) * half.inv()
    grad_W = half * sp.diag(g1, g2) * half
    V_next = sp.simplify(half * (W - eta * grad_W) * half)
    return V_next


@lru_cache(maxsize=None)
def gd_step():
    """The step of one eigen-coordinate, ``(v_j - v_j(t+1)) / g_j``, read off :func:`gd_rule`:
    ``eta lambda_j^2``.  Returns ``(expression, (eta, lambda))``."""
    l1, l2, eta = sp.symbols("lambda_1 lambda_2 eta", positive=True)
    g1, v1 = sp.symbols("g_1 v_1", real=True)
    step = sp.simplify((v1 - gd_rule()[0, 0]) / g1)
    lam = sp.Symbol("lambda", positive=True)
    return step.subs(l1, lam), (eta, lam)


def bayes_log_odds():
    """Bayes log-odds ``log p(+|x)/p(-|x)`` for ``x | y ~ N(mu_y, Lambda)``, equal priors, derived
    with ``P = Lambda^{-1}`` a symbolic symmetric 2 x 2 matrix; with equal ``P``-norms of the means
    it is ``(mu_+ - mu_-)^T P x``.  Returns ``(general, equal_norm_value, difference)``."""
    p11, p12, p22 = sp.symbols("P11 P12 P22", real=True)
    P = sp.Matrix([[p11, p12], [p12, p22]])
    x = sp.Matrix(sp.symbols("x1 x2", real=True))
    mp = sp.Matrix(sp.symbols("mp1 mp2", real=True))
    mm = sp.Matrix(sp.symbols("mm1 mm2", real=True))
    logpdf = lambda mu: -((x - mu).T * P * (x - mu))[0] / 2   # noqa: E731 (common terms cancel)
    general = sp.expand(logpdf(mp) - logpdf(mm))
    linear = sp.expand(((mp - mm).T * P * x)[0])
    rest = sp.simplify(general - linear)    # -(mp^T P mp - mm^T P mm)/2: zero at equal norms
    return general, linear, rest


def large_n_minimiser(c: int = 2):
    """As N -> oo, ``h_k -> mu_k / c`` (``E[n_k / N] = 1/c``), so ``logit_k -> mu_k^T W x / c``;
    ``W = c Lambda^{-1}`` makes it the Bayes logit ``mu_k^T Lambda^{-1} x`` (equal norms), which
    minimises the cross-entropy: the limit minimiser is ``c Lambda^{-1}``.  Returns the limit
    logit with ``W = c P`` minus the Bayes logit (SymPy; ``0`` confirms)."""
    p11, p12, p22 = sp.symbols("P11 P12 P22", real=True)
    P = sp.Matrix([[p11, p12], [p12, p22]])
    x = sp.Matrix(sp.symbols("x1 x2", real=True))
    mu = sp.Matrix(sp.symbols("mu1 mu2", real=True))
    from sympy.stats import Bernoulli, E as Ex
    share = Ex(Bernoulli("1{y_i = k}", sp.Rational(1, c)))   # E[n_k / N] = E[1{y_i = k}]
    limit = share * (mu.T * (c * P) * x)[0]
    return sp.simplify(limit - (mu.T * P * x)[0])


def derivation() -> list[tuple[str, sp.Basic, str]]:
    """``(label, expression, note)`` rows for ``icl-verify derive classification``."""
    loss, yq, logit = prompt_loss_binary()
    coords = margin_coordinates()
    iso = isotropic_integrand()
    diag = diagonal_integrand()
    general, linear, rest = bayes_log_odds()
    return [
        ("ell", loss, "binary cross-entropy, logit = (1/N) sum_i y_i x_i^T W x_q (reconstructed)"),
        ("V(t+1)", gd_rule(), "GD on W in whitened eigen-coordinates, V = Lambda^(1/2) W "
                              "Lambda^(1/2), g_j = dL/dV_jj"),
        ("h1", coords["h1"], "context average along mu^+ (alpha = n/N)"),
        ("h2", coords["h2"], "context average along the part of mu^- orthogonal to mu^+"),
        ("m0", coords["m0"], "E[t | context], t = h^T x~_q, query class +"),
        ("s0^2", coords["s0^2"], "Var[t | context]; q ~ chi^2_(d-2), zeta ~ N(0, 1)"),
        ("ell(a)", iso["ell"], "V = a I: t = m0 + s0 z"),
        ("d ell/da", iso["dell"], "L'(a) = E[d ell/da]"),
        ("d2 ell/da2", iso["d2ell"], "L''(a) = E[d2 ell/da2]"),
        ("d/dv_j E_z g(m + s z)", diag["chain"], "diagonal V; Stein: E[z g'(m+sz)] = "
                                                  "s E[g''(m+sz)]"),
        ("Bayes log-odds", general, "x | y ~ N(mu_y, Lambda), P = Lambda^(-1)"),
        ("Bayes log-odds - (mu+ - mu-)^T P x", rest, "vanishes when the P-norms are equal"),
        ("limit logit(W = c P) - Bayes logit", large_n_minimiser(2), "N -> oo: W* -> 2 Lambda^(-1)"),
    ]
