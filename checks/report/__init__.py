"""The verification report: a summary of the verdicts, the claims with their sweeps, then one
section per setting (``checks/report/<setting>.py``, drawn from numbers the setting's checks
module computes), in Markdown with PNG figures."""
from __future__ import annotations

import os

import numpy as np

from ..verdict import RELATIONS
from .figures import save, subplots

__all__ = ["write_report"]

_PREAMBLE = [
    "# icl-verifier report", "",
    "Sources: *paper* = stated in the seeds (abstract, talk slides); *derived* = our "
    "derivation; *reconstructed* = our reading of the paper. The papers' full texts were "
    "not available.", "",
    "An O(.) claim is *consistent* when measured/bound does not grow in any swept "
    "variable (log-log slope over the larger half of each sweep, 95% interval below 0.1; "
    "a bound with several terms is tested with its terms reweighted by non-negative "
    "least squares, the same O(.) claim); *refuted* when the slope is above 0.1 beyond "
    "its interval; the constant is the largest measured/bound met. Exact inequalities "
    "are checked by Hypothesis and shrunk to a minimal counterexample.", ""]


def _plot_ratios(out_dir, verdicts):
    from matplotlib.ticker import NullFormatter

    files = {}
    for v in verdicts:
        if not v.exponents:
            continue
        fig, axes = subplots(1, len(v.exponents), figsize=(3.3 * len(v.exponents), 3))
        for ax, fit in zip(np.atleast_1d(axes), v.exponents.values()):
            pts = np.array(fit["points"])
            ax.semilogx(pts[:, 0], pts[:, 1], "o-")   # narrow ratio ranges read better linear
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel(fit["variable"])
            ax.set_ylabel("measured / reweighted bound" if v.term_weights else "measured / bound")
            ax.set_title(f"slope {fit['slope']:.2f} [{fit['low']:.2f}, {fit['high']:.2f}]",
                         fontsize=8)
        fig.suptitle(f"{v.claim_id}: {v.verdict}", fontsize=9)
        files[v.claim_id] = save(fig, out_dir, f"ratio-{v.claim_id}.png")
    return files


def write_report(verdicts, claims: dict, out_dir: str, sections=(), profile: str = "quick",
                 executor=None) -> str:
    """Write ``report.md`` and its figures into ``out_dir``; returns the Markdown path.

    ``claims``: claim id -> :class:`checks.claims.Claim` of every verdict; ``sections``:
    ``(setting, its verdicts)`` pairs, each drawn by ``setting.report(verdicts, out_dir, profile,
    executor)`` when the setting has a section."""
    os.makedirs(out_dir, exist_ok=True)
    ratio_files = _plot_ratios(out_dir, verdicts)
    lines = list(_PREAMBLE) + [
        "| claim | source | verdict | constant | exponents (tail slope, 95% CI) | reason |",
        "| --- | --- | --- | --- | --- | --- |"]
    for v in verdicts:
        exps = "; ".join(f"{f['variable']}: {f['slope']:.2f} [{f['low']:.2f}, {f['high']:.2f}]"
                         for f in v.exponents.values()) or "-"
        const = "-" if v.constant is None else f"{v.constant:.3g}"
        lines.append(f"| {v.claim_id} | {claims[v.claim_id].source} | **{v.verdict}** | {const} | "
                     f"{exps} | {v.reason} |")
    lines += ["", "## Claims", ""]
    for v in verdicts:
        c = claims[v.claim_id]
        rel = "O(.)" if c.kind == "O" else f"exact, {RELATIONS[c.kind]}"
        lines += [f"**{c.id}** ({c.source}). {c.statement}", "",
                  f"- quantity `{c.quantity.name}`, bound `{c.bound}` ({rel}), region "
                  f"{c.region.describe()}",
                  f"- worst configuration: `{v.worst}`"]
        if v.counterexample:
            lines.append(f"- minimal counterexample: `{v.counterexample}`")
        if v.term_weights:
            lines.append(f"- growth test against the bound's terms with weights `{v.term_weights}`")
        if v.claim_id in ratio_files:
            lines += ["", f"![{c.id}]({ratio_files[v.claim_id]})"]
        lines.append("")
    for setting, setting_verdicts in sections:
        if setting.report is not None:
            lines += setting.report(setting_verdicts, out_dir, profile, executor)
    path = os.path.join(out_dir, "report.md")
    with open(path, "w") as fh:
        fh.write("\n".join(lines))
    return path
