"""Text and LaTeX renderings of the derived dynamics (``icl-verify derive``)."""
from __future__ import annotations

import sympy as sp

from theory import features as th

__all__ = ["features_rules", "render"]


def features_rules() -> list[tuple[str, str, sp.Basic, str]]:
    """``(text label, LaTeX label, expression, note)`` of the features derivation, in order.

    ``S2 = sum_m Attn_m^2`` (all m); ``Attn_n`` is the total attention on feature n for a query
    ``x_q = v_k``; ``E`` is the expectation over the counts ``c ~ Multinomial(N, p)``.
    """
    ak = sp.Symbol("Attn_k", real=True)
    A, eta, pk = sp.symbols("A_k eta p_k", real=True)
    B = sp.Symbol("B_{k,n}", real=True)
    E = sp.Function("E")
    loss = th.attention_form("loss")
    gk = th.attention_form("grad_own")
    gn = th.attention_form("grad_off")
    identity = sp.simplify(gk - (-2 * ak * loss))
    gf_note = ("M_J = (N)_J phi(s)^(N-J), phi(s) = sum_m p_m e^{-s w_m}, b_x = p_x e^{-s w_x}, "
               "w_x = e^{Z[x,k]}, G_{j,e} = sum over the other features o of b_o^j w_o^e")
    return [
        ("l_k", "l_k", loss,
         "per-prompt loss 1/2 E_w[(y_hat - <w, v_k>)^2] with E w = 0, E w w^T = I"),
        ("dl_k/dA_k", r"\partial l_k / \partial A_k", gk,
         "= -2 Attn_k l_k" if identity == 0 else "derived"),
        ("dl_k/dB_{k,n}", r"\partial l_k / \partial B_{k,n}", gn, "n != k"),
        ("sum_n dl_k/dZ[n,k]", r"\sum_n \partial l_k / \partial Z_{n,k}", th.conservation(),
         "softmax shift invariance: A_k + sum_{n!=k} B_{k,n} = 0 for all t"),
        ("A_k(t+1)", "A_k(t+1)", A - eta * pk * E(gk),
         "GD; column k moves alone with step eta p_k"),
        ("B_{k,n}(t+1)", "B_{k,n}(t+1)", B - eta * pk * E(gn), ""),
        ("E[l_k] = int_0^oo F ds, F", r"E[l_k] = \int_0^\infty F\,ds,\ F", th.integrand("loss"),
         gf_note),
        ("E[dl_k/dA_k] = int_0^oo F ds, F", r"E[\partial l_k/\partial A_k] = \int_0^\infty F\,ds,\ F",
         th.integrand("grad_own"), ""),
        ("E[dl_k/dB_{k,n}] = int_0^oo F ds, F",
         r"E[\partial l_k/\partial B_{k,n}] = \int_0^\infty F\,ds,\ F", th.integrand("grad_off"),
         ""),
    ]


def render(setting: str, fmt: str = "both") -> str:
    """The derivation of ``setting`` as plain text, LaTeX, or both."""
    if setting != "features":
        raise ValueError(f"no derivation for setting {setting!r}")
    rules = features_rules()
    out = []
    if fmt in ("text", "both"):
        out.append("# features: derived dynamics (S2 = sum_m Attn_m^2)")
        for label, _, expr, note in rules:
            out.append(f"{label} = {sp.sstr(expr)}" + (f"    [{note}]" if note else ""))
    if fmt in ("latex", "both"):
        if out:
            out.append("")
        out.append("% features: derived dynamics, LaTeX (S_2 = \\sum_m Attn_m^2)")
        for _, label, expr, note in rules:
            out.append(rf"{label} = {sp.latex(expr)}" + (f"  % {note}" if note else ""))
    return "\n".join(out)
