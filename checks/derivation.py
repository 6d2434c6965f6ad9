"""Text and LaTeX renderings of a setting's derivation (``icl-verify derive``)."""
from __future__ import annotations

import sympy as sp

__all__ = ["render"]


def render(setting, fmt: str = "both") -> str:
    """The derivation of ``setting`` (a :class:`checks.claims.Setting`) as plain text, LaTeX, or
    both.  Rows are ``(label, expression, note)`` with an optional fourth LaTeX label."""
    header, rows = setting.derive()
    rows = [(r[0], r[1], r[2], r[3] if len(r) > 3 else r[0]) for r in rows]
    out = []
    if fmt in ("text", "both"):
        out.append(f"# {setting.name}: {header}")
        for label, expr, note, _ in rows:
            out.append(f"{label} = {sp.sstr(expr)}" + (f"    [{note}]" if note else ""))
    if fmt in ("latex", "both"):
        if out:
            out.append("")
        out.append(f"% {setting.name}: {header}, LaTeX")
        for _, expr, note, label in rows:
            out.append(rf"{label} = {sp.latex(expr)}" + (f"  % {note}" if note else ""))
    return "\n".join(out)
