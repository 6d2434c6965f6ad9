"""multihead: multi-head softmax attention on multi-task linear regression (Chen, Sheen, Wang,
Yang 2024).  The model and its spectral form are our *reconstruction* (abstract only):

* n tasks on disjoint coordinate blocks ``S_i`` of sizes ``d_i``; ``x ~ N(0, I_d)``,
  ``y_i = beta_i^T x_{S_i}`` (+ noise ``sigma``), ``beta_i ~ N(0, I)``; L context tokens; H heads;
* head h acts as ``omega_{h,i} I`` on block i (key-query) and with ``mu_{h,i}`` on task i
  (output-value): ``y_hat_i = sum_h mu_{h,i} sum_l p_l^(h) y_{l,i}``,
  ``p^(h) = softmax_l(x_l^T W_h x_q)``.

Large-L reduction, each step checked by SymPy on one Gaussian coordinate:

* Gaussian tilt: ``E[x e^{a x}] / E[e^{a x}] = a``, so ``sum_l p_l^(h) y_{l,i} -> omega_{h,i}
  y_{q,i}`` and the prediction is ``c_i y_{q,i}``, ``c_i = sum_h mu_{h,i} omega_{h,i}``: the bias
  term ``d_i (1 - c_i)^2``;
* the ``1/L`` fluctuation pairs heads h, g through ``E[e^{s_h + s_g}] / (E[e^{s_h}] E[e^{s_g}])
  = exp(x_q^T W_h W_g x_q)`` (Gaussian MGF), and over the query ``E[exp(t z^2)] = (1 - 2t)^{-1/2}``
  per coordinate gives ``E_{hg} = prod_k (1 - 2 omega_{h,k} omega_{g,k})^{-d_k/2}``:

    L~ = sum_i [ d_i (1 - c_i)^2 + (d_i + sigma^2)/L sum_{h,g} mu_{h,i} mu_{g,i} E_{hg} ].

Gradient flow on the merged weights is ``-grad L~``; with separately trained ``Q, K`` (``omega =
q k``) and ``V, O`` (``mu = v o``) from a balanced start (``q = k``, ``v = o``, kept by the flow
since ``d(q^2 - k^2)/dt = 0``), each right-hand side picks up the factor ``2 |omega|`` (``2 |mu|``).
"""
from __future__ import annotations

from functools import lru_cache

import sympy as sp

__all__ = ["gaussian_tilt", "gaussian_mgf_ratio", "chi_square_mgf", "symbols", "reduced_loss",
           "merged_flow", "balanced_flow", "log_flow", "balance_invariant",
           "derivation"]


def gaussian_tilt():
    """``E[x e^{a x}] / E[e^{a x}]`` for ``x ~ N(0, 1)``, by integration (returns ``a``)."""
    x, a = sp.Symbol("x", real=True), sp.Symbol("a", real=True)
    phi = sp.exp(-x**2 / 2) / sp.sqrt(2 * sp.pi)
    num = sp.integrate(x * sp.exp(a * x) * phi, (x, -sp.oo, sp.oo))
    den = sp.integrate(sp.exp(a * x) * phi, (x, -sp.oo, sp.oo))
    return sp.simplify(num / den)


def gaussian_mgf_ratio():
    """``log( E[e^{(a+b) x}] / (E[e^{a x}] E[e^{b x}]) )`` for ``x ~ N(0, 1)``: ``a b``; with
    ``a = omega_h x_q``, ``b = omega_g x_q`` this is ``omega_h omega_g x_q^2``."""
    x = sp.Symbol("x", real=True)
    a, b = sp.symbols("a b", real=True)
    phi = sp.exp(-x**2 / 2) / sp.sqrt(2 * sp.pi)
    mgf = lambda t: sp.integrate(sp.exp(t * x) * phi, (x, -sp.oo, sp.oo))  # noqa: E731
    return sp.simplify(sp.expand_log(sp.log(mgf(a + b) / (mgf(a) * mgf(b))), force=True))


def chi_square_mgf():
    """``E[exp(t z^2)]`` for ``z ~ N(0, 1)`` and ``t < 1/2``: ``(1 - 2 t)^{-1/2}``."""
    z = sp.Symbol("z", real=True)
    s = sp.Symbol("s", positive=True)          # s = 1 - 2 t > 0
    t = (1 - s) / 2
    value = sp.integrate(sp.exp(t * z**2 - z**2 / 2) / sp.sqrt(2 * sp.pi), (z, -sp.oo, sp.oo))
    return sp.simplify(value), s


@lru_cache(maxsize=None)
def symbols(n: int, H: int):
    """``omega[h][i]``, ``mu[h][i]``, ``d[i]``, ``sigma``, ``L``."""
    omega = [[sp.Symbol(f"omega_{h + 1}_{i + 1}", real=True) for i in range(n)] for h in range(H)]
    mu = [[sp.Symbol(f"mu_{h + 1}_{i + 1}", real=True) for i in range(n)] for h in range(H)]
    d = [sp.Symbol(f"d_{i + 1}", positive=True) for i in range(n)]
    sigma, L = sp.Symbol("sigma", nonnegative=True), sp.Symbol("L", positive=True)
    return omega, mu, d, sigma, L


@lru_cache(maxsize=None)
def reduced_loss(n: int, H: int) -> sp.Expr:
    """``L~`` of the module docstring for ``n`` tasks and ``H`` heads."""
    omega, mu, d, sigma, L = symbols(n, H)
    E = [[sp.Mul(*[(1 - 2 * omega[h][k] * omega[g][k]) ** (-d[k] / 2) for k in range(n)])
          for g in range(H)] for h in range(H)]
    total = 0
    for i in range(n):
        c = sum(mu[h][i] * omega[h][i] for h in range(H))
        total += d[i] * (1 - c) ** 2 + (d[i] + sigma**2) / L * sum(
            mu[h][i] * mu[g][i] * E[h][g] for h in range(H) for g in range(H))
    return total


@lru_cache(maxsize=None)
def merged_flow(n: int, H: int) -> dict:
    """Gradient flow on the merged weights: ``{omega_{h,i}: -dL~/domega_{h,i}, mu_{h,i}: ...}``."""
    omega, mu, *_ = symbols(n, H)
    loss = reduced_loss(n, H)
    return {v: -sp.diff(loss, v) for row in omega + mu for v in row}


@lru_cache(maxsize=None)
def balanced_flow(n: int, H: int) -> dict:
    """Gradient flow on ``q, k`` (``omega = q k``) and ``v, o`` (``mu = v o``), pushed to the merged
    weights and evaluated on the balanced manifold ``q = k = sqrt|omega| sign``, ``v = o``:
    ``d omega/dt = -(q^2 + k^2) dL/domega = -2 |omega| dL/domega`` (likewise for ``mu``)."""
    omega, mu, *_ = symbols(n, H)
    flow = merged_flow(n, H)
    q, k = sp.symbols("q k", real=True)
    w = sp.Symbol("w", real=True)
    G = sp.Function("G")                       # dL/domega as a function of omega = q k
    dq, dk = -sp.diff(G(q * k), q), -sp.diff(G(q * k), k)     # gradient flow on q and k
    domega = sp.expand(k * dq + q * dk)        # chain rule: d(q k)/dt
    factor = sp.simplify(domega / (-sp.Subs(sp.Derivative(G(w), w), w, q * k).doit()))
    # factor = q^2 + k^2; on the balanced manifold q = k: 2 q^2 = 2 |omega|
    if sp.simplify(factor - (q**2 + k**2)) != 0:
        raise ArithmeticError("unexpected factor in the Q, K flow")
    return {v: 2 * sp.Abs(v) * rhs for v, rhs in flow.items()}


@lru_cache(maxsize=None)
def log_flow(n: int, H: int) -> dict:
    """The balanced flow in log coordinates, for positive weights ``v = e^{zeta_v}``:
    ``d zeta_v/dt = (dv/dt) / v = 2 |v| (-dL~/dv) / v = -2 dL~/dv``, smooth and free of ``|v|``
    (a weight that starts positive stays positive).  ``{v: d log v/dt}``, written in the
    weights; a simulator evaluates it at ``v = e^{zeta}``."""
    flow = balanced_flow(n, H)
    out = {}
    for v, rhs in flow.items():
        p = sp.Symbol(v.name, positive=True)
        out[v] = (rhs.subs(v, p) / p).subs(p, v)
        if out[v].has(sp.Abs):
            raise ArithmeticError(f"|{v}| left in the log-coordinate flow")
    return out


def balance_invariant():
    """``d(q^2 - k^2)/dt`` under gradient flow on ``q, k`` for any loss of ``q k``: 0."""
    q, k = sp.symbols("q k", real=True)
    G = sp.Function("G")
    dq, dk = -sp.diff(G(q * k), q), -sp.diff(G(q * k), k)
    return sp.simplify(2 * q * dq - 2 * k * dk)


def derivation(n: int = 2, H: int = 2) -> list[tuple[str, sp.Basic, str]]:
    """``(label, expression, note)`` of the reduction and the flows, for ``n`` tasks, ``H`` heads."""
    omega, mu, *_ = symbols(n, H)
    chi, s = chi_square_mgf()
    merged, balanced = merged_flow(n, H), balanced_flow(n, H)
    w, m = omega[0][0], mu[0][0]
    return [
        ("E[x e^{a x}] / E[e^{a x}]", gaussian_tilt(), "x ~ N(0, 1): sum_l p_l y_l -> omega y_q"),
        ("log E[e^{(a+b) x}] / (E[e^{a x}] E[e^{b x}])", gaussian_mgf_ratio(),
         "pairs heads h, g in the 1/L term"),
        ("E[exp((1 - s) z^2 / 2)]", chi, "s = 1 - 2t > 0: E_hg per query coordinate"),
        (f"L~ (n = {n}, H = {H})", reduced_loss(n, H), "large-L reduced loss (reconstructed model)"),
        (f"d{w}/dt (merged)", merged[w], "-dL~/domega"),
        (f"d{m}/dt (merged)", merged[m], "-dL~/dmu"),
        (f"d{w}/dt (balanced Q, K, V, O)", balanced[w], "factor q^2 + k^2 = 2 |omega|"),
        ("d(q^2 - k^2)/dt", balance_invariant(), "the balanced start is kept"),
        (f"d log {w}/dt (balanced)", log_flow(n, H)[w],
         "v = e^zeta > 0: d zeta/dt = -2 dL~/dv, what the simulator integrates"),
    ]
