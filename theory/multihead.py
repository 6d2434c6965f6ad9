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
           "derivation", "prompt_reduction", "finite_symbols", "finite_loss", "finite_gradient",
           "factored_gradients"]


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
        ("E[(y_hat_i - y_q,i)^2 | u, r] (finite L)", prompt_reduction()[0],
         "the trained model: beta, the orthogonal parts and label noise integrate out; "
         "S = sum_j a_j u_j, Q = sum_j a_j^2"),
        ("per-prompt loss, n = H = 1 (finite L)", finite_loss(1, 1),
         "token sums kept as Sum; SymPy differentiates through them"),
        ("GD on one entry of Q, K, V, O", sp.Tuple(*factored_gradients()[0].values()),
         "(dL/dq, dL/dk, dL/do, dL/dv); q^2 - k^2 and o^2 - v^2 are conserved by the flow"),
    ]


# ---------------------------------------------------------------------------------------------
# The trained model at finite L (the authors' conventions)
#
# Tokens z = (x; y), query (x_q; 0), head h's key-query W_h = K_h^T Q_h / sqrt(d_x + n) acting as
# omega_{h,b} I on covariate block b, its output-value U_h = O_h V_h with mu_{h,i} from y_i to output
# i: y_hat_i = sum_h mu_{h,i} sum_j p_{h,j} y_{j,i}, p_h = softmax_j(x_j^T W_h x_q), and the loss is
# the squared error averaged over the n outputs.  Write x_{q,b} = r_b e and x_{j,b} = u_{j,b} e +
# x_perp: the logits are l_{h,j} = sum_b omega_{h,b} r_b u_{j,b}, and beta and x_perp integrate out.


def prompt_reduction():
    """``E[(y_hat_i - y_{q,i})^2 | u, r]`` over ``beta_i ~ N(0, I_d)``, the orthogonal parts and the
    label noise, for weights ``a_j`` on the context tokens (``a_j = sum_h mu_{h,i} p_{h,j}``).

    SymPy integrates it for two tokens, with one parallel and one orthogonal coordinate (each
    orthogonal coordinate is alike): the result is ``(S - r)^2 + (d - 1 + sigma^2) Q`` with
    ``S = sum_j a_j u_j`` and ``Q = sum_j a_j^2``.  Returns ``(general form, its symbols)``.
    """
    from sympy.stats import E, Normal

    a = sp.symbols("a_1 a_2", real=True)
    u = sp.symbols("u_1 u_2", real=True)
    r = sp.Symbol("r", positive=True)
    sigma, d = sp.Symbol("sigma", nonnegative=True), sp.Symbol("d", positive=True)
    b_par, b_perp = Normal("beta_par", 0, 1), Normal("beta_perp", 0, 1)
    w = [Normal(f"w_{j}", 0, 1) for j in (1, 2)]         # orthogonal coordinate of each token
    eps = [Normal(f"eps_{j}", 0, 1) for j in (1, 2)]     # label noise of each token
    context = [b_par * u[j] + b_perp * w[j] + sigma * eps[j] for j in (0, 1)]
    error = sum(a[j] * context[j] for j in (0, 1)) - b_par * r
    one_perp = sp.expand(E(sp.expand(error**2)))
    # (d - 1) orthogonal coordinates, each contributing what the one above does: sum a_j^2
    S, Q = sp.Symbol("S", real=True), sp.Symbol("Q", nonnegative=True)
    general = (S - r) ** 2 + (d - 1 + sigma**2) * Q
    two = general.subs({S: a[0] * u[0] + a[1] * u[1], Q: a[0] ** 2 + a[1] ** 2})
    if sp.simplify(one_perp + (d - 2) * (a[0] ** 2 + a[1] ** 2) - sp.expand(two)) != 0:
        raise ArithmeticError("the per-prompt reduction does not hold")
    return general, (S, Q, r, d, sigma)


@lru_cache(maxsize=None)
def finite_symbols(n: int, H: int):
    """``omega[h][b]``, ``mu[h][i]``; token arrays ``u[b][j]`` (IndexedBase), ``r[b]``, the
    per-task constants ``c[i] = d_i - 1 + sigma^2``, the token indices ``j, k`` and ``L``."""
    omega, mu, *_ = symbols(n, H)
    u = [sp.IndexedBase(f"u_{b + 1}", real=True) for b in range(n)]
    r = [sp.Symbol(f"r_{b + 1}", positive=True) for b in range(n)]
    c = [sp.Symbol(f"c_{i + 1}", positive=True) for i in range(n)]
    j, k = sp.symbols("j k", integer=True)
    L = sp.Symbol("L", integer=True, positive=True)
    return omega, mu, u, r, c, (j, k), L


@lru_cache(maxsize=None)
def finite_loss(n: int, H: int) -> sp.Expr:
    """The per-prompt loss of the trained model at finite L, averaged over the outputs:
    ``(1/n) sum_i [(S_i - r_i)^2 + c_i Q_i]``, ``S_i = sum_j a_{i,j} u_{i,j}``, ``Q_i = sum_j
    a_{i,j}^2``, ``a_{i,j} = sum_h mu_{h,i} e^{l_{h,j}} / sum_k e^{l_{h,k}}``, with token sums
    kept as SymPy ``Sum`` over ``j, k = 1..L`` (:func:`prompt_reduction` gives the bracket)."""
    omega, mu, u, r, c, (j, k), L = finite_symbols(n, H)
    general, (S, Q, rr, d, sigma) = prompt_reduction()

    def logit(h, idx):
        return sum(omega[h][b] * r[b] * u[b][idx] for b in range(n))

    Z = [sp.Sum(sp.exp(logit(h, k)), (k, 1, L)) for h in range(H)]
    total = 0
    for i in range(n):
        a = sum(mu[h][i] * sp.exp(logit(h, j)) / Z[h] for h in range(H))
        bracket = general.subs(d - 1 + sigma**2, c[i])
        total += bracket.subs({S: sp.Sum(a * u[i][j], (j, 1, L)), Q: sp.Sum(a**2, (j, 1, L)),
                               rr: r[i]})
    return total / n


@lru_cache(maxsize=None)
def finite_gradient(n: int, H: int) -> dict:
    """``{omega_{h,b}: d loss/d omega_{h,b}, mu_{h,i}: d loss/d mu_{h,i}}`` of :func:`finite_loss`
    (SymPy differentiates through the token sums)."""
    omega, mu, *_ = finite_symbols(n, H)
    loss = finite_loss(n, H)
    return {v: sp.diff(loss, v) for row in omega + mu for v in row}


def factored_gradients():
    """Per-entry gradients of the factors of one block entry, from ``W_jj = q k / s`` (``s =
    sqrt(d_x + n)``; ``omega`` is the mean of ``diag W`` over the block's ``m`` entries, which move
    together, so ``dL/dW_jj = G_w / m`` with ``G_w = dL/domega``) and ``U = o v`` (``G_u =
    dL/dmu``): ``{q: k G_w/(m s), k: q G_w/(m s), o: v G_u, v: o G_u}``; and the time derivatives
    of ``q^2 - k^2`` and ``o^2 - v^2`` under the flow (0: what a balanced start keeps)."""
    q, k, o, v, s, m, Gw, Gu = sp.symbols("q k o v s m G_w G_u", real=True)
    grads = {q: sp.diff(q * k / s, q) * Gw / m, k: sp.diff(q * k / s, k) * Gw / m,
             o: sp.diff(o * v, o) * Gu, v: sp.diff(o * v, v) * Gu}
    invariants = (sp.simplify(-2 * q * grads[q] + 2 * k * grads[k]),
                  sp.simplify(-2 * o * grads[o] + 2 * v * grads[v]))
    return grads, invariants, (q, k, o, v, s, m, Gw, Gu)
