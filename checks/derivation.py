"""Text and LaTeX renderings of the derived dynamics (``icl-verify derive``)."""
from __future__ import annotations

import sympy as sp

from theory import classification as thc
from theory import features as th
from theory import multihead as thm

__all__ = ["features_rules", "classification_rules", "multihead_rules", "render"]


def features_rules() -> list[tuple[str, str, sp.Basic, str]]:
    """``(text label, LaTeX label, expression, note)`` of the features derivation, in order.

    ``S2 = sum_m Attn_m^2`` (all m); ``Attn_n`` is the total attention on feature n for a query
    ``x_q = v_k``; ``E`` is the expectation over the counts ``c ~ Multinomial(N, p)``.
    """
    ak = sp.Symbol("Attn_k", real=True)
    rules = th.update_rules()
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
    return [(label, latex.get(label, label), expr, notes.get(label, ""))
            for label, expr in rules.items()] + [
        ("E[l_k] = int_0^oo F ds, F", r"E[l_k] = \int_0^\infty F\,ds,\ F", th.integrand("loss"),
         gf_note),
        ("E[dl_k/dA_k] = int_0^oo F ds, F", r"E[\partial l_k/\partial A_k] = \int_0^\infty F\,ds,\ F",
         th.integrand("grad_own"), ""),
        ("E[dl_k/dB_{k,n}] = int_0^oo F ds, F",
         r"E[\partial l_k/\partial B_{k,n}] = \int_0^\infty F\,ds,\ F", th.integrand("grad_off"),
         ""),
    ]


def classification_rules() -> list[tuple[str, str, sp.Basic, str]]:
    """``(text label, LaTeX label, expression, note)`` of the classification derivation."""
    return [(label, label, expr, note) for label, expr, note in thc.derivation()]


def multihead_rules() -> list[tuple[str, str, sp.Basic, str]]:
    """``(text label, LaTeX label, expression, note)`` of the multihead reduction (n = H = 2)."""
    return [(label, label, expr, note) for label, expr, note in thm.derivation()]


_HEADERS = {"features": "derived dynamics (S2 = sum_m Attn_m^2)",
            "classification": "derived reduction (whitened coordinates; reconstructed model)",
            "multihead": "derived large-L reduction and flows (spectral coordinates; "
                         "reconstructed model)"}
_RULES = {"features": features_rules, "classification": classification_rules,
          "multihead": multihead_rules}


def render(setting: str, fmt: str = "both") -> str:
    """The derivation of ``setting`` as plain text, LaTeX, or both."""
    if setting not in _HEADERS:
        raise ValueError(f"no derivation for setting {setting!r}")
    rules = _RULES[setting]()
    out = []
    if fmt in ("text", "both"):
        out.append(f"# {setting}: {_HEADERS[setting]}")
        for label, _, expr, note in rules:
            out.append(f"{label} = {sp.sstr(expr)}" + (f"    [{note}]" if note else ""))
    if fmt in ("latex", "both"):
        if out:
            out.append("")
        out.append(f"% {setting}: {_HEADERS[setting]}, LaTeX")
        for _, label, expr, note in rules:
            out.append(rf"{label} = {sp.latex(expr)}" + (f"  % {note}" if note else ""))
    return "\n".join(out)
