"""features: one-layer softmax attention over K orthonormal features (Huang, Cheng, Liang 2024).

Everything here is derived with SymPy from the model, nothing is typed in:

* prompt ``x_1..x_N, x_q`` with ``x_i = v_{n}`` (orthonormal ``v``), task ``y = <w, x>`` with
  ``E w = 0``, ``E w w^T = I``; prediction ``y_hat = sum_i attn_i y_i``,
  ``attn_i = exp(x_i^T Q x_q) / sum_j exp(x_j^T Q x_q)``;
* with ``x_q = v_k`` and counts ``c_n``, the logits ``Z[n, k] = v_n^T Q v_k`` enter only through
  ``u_n = c_n exp(Z[n, k])`` and ``Attn_n = u_n / D``, ``D = sum_m u_m``;
* averaging over ``w`` gives the per-prompt loss ``l_k`` (a quadratic in ``Attn``); the chain rule
  through ``u_n = c_n e^{Z[n,k]}`` gives its gradient in the logits, ``A_k = Z[k, k]`` and
  ``B_{k,n} = Z[n, k]``.

Derivations run on a *prototype* prompt with two named roles -- ``k`` (the query's feature) and
``n`` (one off-target feature) -- and ``others`` interchangeable features.  Every expression is a
homogeneous polynomial in ``u`` over ``D^r``; it is reduced to monomial symmetric functions of the
others (:mod:`theory.symmetric`), which makes it valid for every K.  A :class:`Term` list is the
result; :func:`integrand` turns it into the generating-function integrand of section 3 of the
spec and :func:`direct` into a function of one count vector.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import factorial

import sympy as sp

from .symmetric import automorphisms, distinct_sum_expansion

__all__ = [
    "Term",
    "QUANTITIES",
    "attention_symbols",
    "task_average",
    "prompt_loss",
    "logit_gradient",
    "conservation",
    "terms",
    "attention_form",
    "integrand",
    "direct",
    "update_rules",
    "MAX_DEGREE",
    "mean_field_rate",
    "mean_field_time",
    "mean_field_loss",
    "derivation",
]

#: The quantities the numerics evaluate, with the roles they name.
QUANTITIES = {
    "loss": ("k",),            # l_k
    "concentration": ("k",),   # (1 - Attn_k)^2
    "attention_own": ("k",),   # Attn_k
    "attention_off": ("k", "n"),  # Attn_n, n != k
    "grad_own": ("k",),        # d l_k / d A_k
    "grad_off": ("k", "n"),    # d l_k / d B_{k,n}
}
#: Largest degree of a term in ``u`` (the gradient is a cubic in the attention weights).
MAX_DEGREE = 3
_PROTOTYPE_OTHERS = 3


@dataclass(frozen=True)
class Term:
    """``coeff * u_k^ek * u_n^en * m_lam(u_O) / D^r`` with ``O`` the features outside the roles."""

    coeff: sp.Rational
    ek: int
    en: int
    lam: tuple[int, ...]
    r: int


def attention_symbols(size: int):
    """Symbols ``Attn_0..`` (index 0 is the query's feature k, index 1 the role n)."""
    return sp.symbols(f"a0:{size}", real=True)


def task_average(expr, w):
    """``E_w`` of a polynomial in ``w`` of degree <= 2 with ``E w = 0``, ``E w w^T = I``."""
    poly = sp.Poly(sp.expand(expr), *w)
    out = sp.Integer(0)
    for mon, coeff in poly.terms():
        degree = sum(mon)
        if degree > 2:
            raise ValueError("only the first two moments of w are specified")
        if degree == 0 or (degree == 2 and max(mon) == 2):
            out += coeff
    return out


@lru_cache(maxsize=None)
def prompt_loss(size: int = 2 + _PROTOTYPE_OTHERS):
    """Per-prompt loss ``l_k`` in the attention weights, query ``x_q = v_0``.

    ``l_k = 1/2 E_w[(sum_n Attn_n <w, v_n> - <w, v_k>)^2]``; in the orthonormal basis ``<w, v_n>``
    is the coordinate ``w_n``.
    """
    a = attention_symbols(size)
    w = sp.symbols(f"w0:{size}", real=True)
    err = sum(a[n] * w[n] for n in range(size)) - w[0]
    return task_average(err**2 / 2, w)


def _prototype(size):
    c = sp.symbols(f"c0:{size}", positive=True)
    z = sp.symbols(f"z0:{size}", real=True)
    u = sp.symbols(f"u0:{size}", positive=True)
    D = sum(c[i] * sp.exp(z[i]) for i in range(size))
    to_attention = {ai: c[i] * sp.exp(z[i]) / D for i, ai in enumerate(attention_symbols(size))}
    to_u = {sp.exp(z[i]): u[i] / c[i] for i in range(size)}
    return z, u, to_attention, to_u


def _as_u_ratio(expr, u):
    """Write ``expr`` (rational in ``u``) as ``polynomial / D^r`` with ``D = sum u``."""
    D = sum(u)
    for r in range(MAX_DEGREE + 2):
        num = sp.cancel(expr * D**r)
        if sp.denom(num) == 1:
            return sp.expand(num), r
    raise ValueError(f"not a polynomial over a power of D: {expr}")


@lru_cache(maxsize=None)
def logit_gradient(size: int = 2 + _PROTOTYPE_OTHERS):
    """``d l_k / d Z[i, k]`` for every prototype feature i, as ``(numerator in u, r)`` pairs."""
    z, u, to_attention, to_u = _prototype(size)
    lz = prompt_loss(size).subs(to_attention, simultaneous=True)
    return tuple(_as_u_ratio(sp.diff(lz, z[i]).subs(to_u), u) for i in range(size))


@lru_cache(maxsize=None)
def conservation(size: int = 2 + _PROTOTYPE_OTHERS) -> sp.Expr:
    """``sum_n d l_k / d Z[n, k]``; it simplifies to 0, hence ``A_k + sum_n B_{k,n}`` is conserved."""
    u = sp.symbols(f"u0:{size}", positive=True)
    total = sum(num / sum(u) ** r for num, r in logit_gradient(size))
    return sp.simplify(total)


def _quantity_in_u(name: str, size: int):
    z, u, to_attention, to_u = _prototype(size)
    a = attention_symbols(size)
    attention_u = {ai: u[i] / sum(u) for i, ai in enumerate(a)}
    if name == "loss":
        return _as_u_ratio(prompt_loss(size).subs(attention_u, simultaneous=True), u)
    if name == "concentration":
        return _as_u_ratio(((1 - a[0]) ** 2).subs(attention_u), u)
    if name == "attention_own":
        return _as_u_ratio(attention_u[a[0]], u)
    if name == "attention_off":
        return _as_u_ratio(attention_u[a[1]], u)
    if name == "grad_own":
        return logit_gradient(size)[0]
    if name == "grad_off":
        return logit_gradient(size)[1]
    raise KeyError(name)


def _reduce(numerator, r, u, nroles):
    """Collect a polynomial symmetric in ``u[nroles:]`` into :class:`Term` objects."""
    others = len(u) - nroles
    poly = sp.Poly(numerator, *u)
    groups: dict[tuple, list] = {}
    for mon, coeff in poly.terms():
        roles = tuple(mon[:nroles]) + (0,) * (2 - nroles)
        lam = tuple(sorted((e for e in mon[nroles:] if e), reverse=True))
        groups.setdefault((roles, lam), []).append(coeff)
    out = []
    for (roles, lam), coeffs in sorted(groups.items()):
        q = len(lam)
        orbit = factorial(others) // factorial(others - q) // automorphisms(lam)
        if len(set(coeffs)) != 1 or len(coeffs) != orbit:
            raise ValueError("expression is not symmetric in the non-role features")
        out.append(Term(sp.Rational(coeffs[0]), roles[0], roles[1], lam, r))
    return tuple(out)


@lru_cache(maxsize=None)
def terms(name: str, others: int = _PROTOTYPE_OTHERS) -> tuple[Term, ...]:
    """The reduced form of quantity ``name`` (see :data:`QUANTITIES`) as a tuple of :class:`Term`."""
    nroles = len(QUANTITIES[name])
    size = nroles + others
    num, r = _quantity_in_u(name, size)
    u = sp.symbols(f"u0:{size}", positive=True)
    return _reduce(num, r, u, nroles)


# ---------------------------------------------------------------------------------------------
# Symbols of the reduced forms


def power_sum(e: int) -> sp.Symbol:
    """``P_e = sum_{o in O} Attn_o^e`` (attention form) or ``sum_o u_o^e`` (direct form)."""
    return sp.Symbol(f"P{e}", real=True)


def _others_sum(lam, block_value):
    """``m_lam`` over O from the Moebius expansion; ``block_value(slots)`` is a block's plain sum."""
    total = sp.Integer(0)
    for mu, blocks in distinct_sum_expansion(len(lam)):
        term = sp.Integer(mu)
        for block in blocks:
            term *= block_value(block)
        total += term
    return total / automorphisms(lam)


def attention_form(name: str, others: int = _PROTOTYPE_OTHERS) -> sp.Expr:
    """Quantity ``name`` in ``Attn_k``, ``Attn_n`` and all-feature power sums ``S_e = sum_m Attn_m^e``.

    Uses ``sum_m Attn_m = 1``; this is the readable form printed by ``icl-verify derive``.
    """
    ak, an = sp.symbols("Attn_k Attn_n", real=True)
    S = {e: sp.Symbol(f"S{e}", real=True) for e in range(1, MAX_DEGREE + 1)}
    roles = QUANTITIES[name]
    out = sp.Integer(0)
    for t in terms(name, others):
        def block(slots, lam=t.lam):
            e = sum(lam[i] for i in slots)
            return S[e] - ak**e - (an**e if "n" in roles else 0)
        out += t.coeff * ak**t.ek * an**t.en * _others_sum(t.lam, block)
    out = sp.expand(out.subs(S[1], 1))
    return sp.factor(out)


def direct(name: str):
    """Quantity ``name`` as an expression in ``u_k, u_n``, power sums ``P_e`` over O and ``D``."""
    uk, un, D = sp.symbols("u_k u_n D", positive=True)
    out = sp.Integer(0)
    for t in terms(name):
        def block(slots, lam=t.lam):
            return power_sum(sum(lam[i] for i in slots))
        out += t.coeff * uk**t.ek * un**t.en * _others_sum(t.lam, block) / D**t.r
    return out


# ---------------------------------------------------------------------------------------------
# Generating-function integrands (spec section 3)


def gf_symbols():
    """Symbols of the integrand: ``s``; ``M_J = (N)_J phi(s)^(N-J)`` (J = 0..3) with
    ``phi(s) = sum_m p_m e^{-s w_m}`` and ``(N)_J`` the falling factorial; ``b_x = p_x e^{-s w_x}``
    and ``w_x = e^{Z[x, k]}`` for the roles; ``G_{j,e} = sum_{o in O} b_o^j w_o^e``."""
    s = sp.Symbol("s", positive=True)
    M = {J: sp.Symbol(f"M{J}", nonnegative=True) for J in range(MAX_DEGREE + 1)}
    bk, wk, bn, wn = sp.symbols("b_k w_k b_n w_n", positive=True)
    G = {(j, e): sp.Symbol(f"G{j}_{e}", positive=True)
         for j in range(1, MAX_DEGREE + 1) for e in range(j, MAX_DEGREE + 1)}
    return s, M, (bk, wk), (bn, wn), G


def _stirling_choices(e):
    """``c^e = sum_j S(e, j) (c)_j``: pairs (j, S(e, j))."""
    return [(j, sp.functions.combinatorial.numbers.stirling(e, j)) for j in range(1, e + 1)]


def _role_factor(e, b, w):
    """``E``-factor of a role raised to ``e``: pairs (j, factor) with factor = S(e,j) b^j w^e."""
    if e == 0:
        return [(0, sp.Integer(1))]
    return [(j, st * b**j * w**e) for j, st in _stirling_choices(e)]


@lru_cache(maxsize=None)
def integrand(name: str) -> sp.Expr:
    """Integrand ``F(s)`` with ``E[quantity] = int_0^inf F(s) ds`` (spec section 3).

    ``1/D^r = int s^{r-1}/(r-1)! e^{-sD} ds``, then for distinct features
    ``E[prod (c_i)_{j_i} e^{-sD}] = prod (p_i e^{-s w_i})^{j_i} M_J``, ``J = sum j_i``, with
    ``c^e = sum_j S(e, j) (c)_j``; sums over distinct non-role features by Moebius inversion.
    """
    s, M, (bk, wk), (bn, wn), G = gf_symbols()
    out = sp.Integer(0)
    for t in terms(name):
        slot_choices = [_stirling_choices(e) for e in t.lam]
        body = sp.Integer(0)
        for jk, fk in _role_factor(t.ek, bk, wk):
            for jn, fn in _role_factor(t.en, bn, wn):
                for js in _product(slot_choices):
                    J = jk + jn + sum(j for j, _ in js)
                    weight = fk * fn
                    for _, st in js:
                        weight *= st

                    def block(slots, js=js, lam=t.lam):
                        return G[(sum(js[i][0] for i in slots), sum(lam[i] for i in slots))]
                    body += weight * M[J] * _others_sum(t.lam, block)
        out += t.coeff * s ** (t.r - 1) / factorial(t.r - 1) * body
    return sp.factor_terms(sp.collect(sp.expand(out), list(M.values())))


def _product(lists):
    if not lists:
        return [()]
    return [(x,) + rest for x in lists[0] for rest in _product(lists[1:])]


def update_rules() -> dict[str, sp.Expr]:
    """The derived dynamics, for display: loss, gradients and the GD updates of ``A_k``, ``B_{k,n}``."""
    eta, pk = sp.symbols("eta p_k", positive=True)
    A, B = sp.Symbol("A_k", real=True), sp.Symbol("B_{k,n}", real=True)
    E = sp.Function("E")
    return {
        "l_k": attention_form("loss"),
        "dl_k/dA_k": attention_form("grad_own"),
        "dl_k/dB_{k,n}": attention_form("grad_off"),
        "sum_n dl_k/dZ[n,k]": conservation(),
        "A_k(t+1)": A - eta * pk * E(attention_form("grad_own")),
        "B_{k,n}(t+1)": B - eta * pk * E(attention_form("grad_off")),
    }


# ---------------------------------------------------------------------------------------------
# Mean-field limit (N -> inf, counts c_n ~ N p_n): spec section 4


@lru_cache(maxsize=None)
def mean_field_rate(kind: str) -> tuple[sp.Expr, sp.Expr]:
    """``(du/dt, u(0))`` of the query's attention ``u = Attn_k`` in the mean-field limit.

    ``kind`` is ``"balanced"`` (``p_k = 1/K``) or ``"dominant"`` (feature 1 of the imbalanced
    family, ``p_1``; the other K - 1 features share ``1 - p_1`` equally).  Derived from the derived
    gradient: with the others symmetric and ``A_k + (K-1) B = 0`` (conservation),
    ``u = p_k e^A / (p_k e^A + (1 - p_k) e^B)``, ``S_2 = u^2 + (1-u)^2/(K-1)``,
    ``dA/dt = -eta p_k dl_k/dA_k``, ``du/dt = (du/dA) dA/dt``.
    """
    K, eta, p1, A, u = sp.symbols("K eta p_1 A u", positive=True)
    pk = 1 / K if kind == "balanced" else p1
    B = -A / (K - 1)
    attn = pk * sp.exp(A) / (pk * sp.exp(A) + (1 - pk) * sp.exp(B))
    dA = -eta * pk * _symmetric_others(attention_form("grad_own"), u, K)
    # du/dA = u (1 - u) * (logistic slope), the slope free of A
    slope = sp.simplify(sp.diff(attn, A) / (attn * (1 - attn)))
    assert A not in slope.free_symbols
    rate = sp.factor(slope * u * (1 - u) * dA)
    return rate, sp.sympify(pk)


@lru_cache(maxsize=None)
def mean_field_time(kind: str) -> sp.Expr:
    """Closed-form time ``t(u)`` for the mean-field attention to grow from ``u(0)`` to ``u``.

    ``int dv / rate(v)`` by partial fractions; ``log(v - 1)`` is taken as ``log(1 - v)`` (they differ
    by a constant, which cancels between the two ends, and ``0 < v < 1``).
    """
    u, v = sp.symbols("u v", positive=True)
    rate, u0 = mean_field_rate(kind)
    antideriv = sp.integrate(sp.apart(1 / rate.subs(u, v), v), v)
    antideriv = antideriv.replace(sp.log, lambda arg: sp.log(sp.expand(-arg))
                                  if sp.expand(arg).could_extract_minus_sign() or
                                  sp.expand(arg) == v - 1 else sp.log(arg))
    return sp.simplify(antideriv.subs(v, u) - antideriv.subs(v, u0))


@lru_cache(maxsize=None)
def mean_field_leading_time(kind: str) -> sp.Expr:
    """The leading term of the mean-field time to ``L_k <= eps`` as ``eps -> 0``:
    ``lim_{eps -> 0} eps t(u_eps) / eps`` with ``L_k(u_eps) = eps``, i.e. ``1 - u_eps =
    sqrt(2 (K-1) eps / K)`` (:func:`mean_field_loss`).  Balanced: ``(K - 1)/(4 eta eps)``."""
    u, K, eps = sp.symbols("u K epsilon", positive=True)
    one_minus = sp.sqrt(2 * (K - 1) * eps / K)
    assert sp.simplify(mean_field_loss().subs(u, 1 - one_minus) - eps) == 0
    t = mean_field_time(kind).subs(u, 1 - one_minus)
    return sp.simplify(sp.limit(eps * t, eps, 0)) / eps


def mean_field_loss() -> sp.Expr:
    """Mean-field ``L_k`` as a function of ``u = Attn_k``, the others symmetric (balanced and
    dominant alike): ``K (1-u)^2 / (2 (K-1))``."""
    u, K = sp.symbols("u K", positive=True)
    return sp.factor(_symmetric_others(attention_form("loss"), u, K))


def _symmetric_others(expr, u, K):
    """``expr`` (in ``Attn_k``, ``S2``) with ``Attn_k = u`` and the other K - 1 features sharing
    ``1 - u`` equally: ``S2 = u^2 + (1-u)^2 / (K-1)``."""
    ak, S2 = sp.Symbol("Attn_k", real=True), sp.Symbol("S2", real=True)
    return expr.subs({ak: u, S2: u**2 + (1 - u) ** 2 / (K - 1)})


def derivation() -> list[tuple]:
    """``(label, expression, note, LaTeX label)`` of the derivation, in order, for
    ``icl-verify derive features``.

    ``S2 = sum_m Attn_m^2`` (all m); ``Attn_n`` is the total attention on feature n for a query
    ``x_q = v_k``; ``E`` is the expectation over the counts ``c ~ Multinomial(N, p)``.
    """
    ak = sp.Symbol("Attn_k", real=True)
    rules = update_rules()
    identity = sp.simplify(rules["dl_k/dA_k"] - (-2 * ak * rules["l_k"]))
    gf_note = ("M_J = (N)_J phi(s)^(N-J), phi(s) = sum_m p_m e^{-s w_m}, b_x = p_x e^{-s w_x}, "
               "w_x = e^{Z[x,k]}, G_{j,e} = sum over the other features o of b_o^j w_o^e")
    latex = {"dl_k/dA_k": r"\partial l_k / \partial A_k",
             "dl_k/dB_{k,n}": r"\partial l_k / \partial B_{k,n}",
             "sum_n dl_k/dZ[n,k]": r"\sum_n \partial l_k / \partial Z_{n,k}"}
    notes = {"l_k": "per-prompt loss 1/2 E_w[(y_hat - <w, v_k>)^2] with E w = 0, E w w^T = I",
             "dl_k/dA_k": "= -2 Attn_k l_k" if identity == 0 else "derived",
             "dl_k/dB_{k,n}": "n != k",
             "sum_n dl_k/dZ[n,k]": "softmax shift invariance: A_k + sum_{n!=k} B_{k,n} = 0 "
                                   "for all t",
             "A_k(t+1)": "GD; column k moves alone with step eta p_k"}
    return [(label, expr, notes.get(label, ""), latex.get(label, label))
            for label, expr in rules.items()] + [
        ("E[l_k] = int_0^oo F ds, F", integrand("loss"), gf_note,
         r"E[l_k] = \int_0^\infty F\,ds,\ F"),
        ("E[dl_k/dA_k] = int_0^oo F ds, F", integrand("grad_own"), "",
         r"E[\partial l_k/\partial A_k] = \int_0^\infty F\,ds,\ F"),
        ("E[dl_k/dB_{k,n}] = int_0^oo F ds, F", integrand("grad_off"), "",
         r"E[\partial l_k/\partial B_{k,n}] = \int_0^\infty F\,ds,\ F"),
    ]
