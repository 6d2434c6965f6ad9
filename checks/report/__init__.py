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
    "An O(.) claim is decided at the asymptotic end: each scaling variable (and each pair "
    "the bound couples) is swept over the region, then past its nominal end until the trend "
    "of measured/bound is decided or the budget is spent. Three laws of the ratio compete "
    "on the far points (bounded r_inf + c x^-a, power x^b, log x), chosen by hold-out error "
    "on the farthest ones. *refuted*: a growth law wins, the far-end log-log slope is "
    "positive beyond its 95% interval and the last points keep rising; *consistent*: the "
    "far-end slope stays below 0.1 within its interval there (the constant is the largest "
    "measured/bound met; the limit r_inf is shown with its interval); *inconclusive* "
    "otherwise, saying how far the sweep got. A bound with several terms is tested with its "
    "terms reweighted by non-negative least squares, the same O(.) claim. Exact "
    "inequalities are checked by Hypothesis and shrunk to a minimal counterexample.", ""]


def _predict(chosen, params, x):
    x = np.asarray(x, float)
    if chosen == "bounded":
        return params["r_inf"] + params["c"] * x ** -params["a"]
    if chosen == "power":
        return params["A"] * x ** params["b"]
    return params["a"] + params["b"] * np.log(x)


def _plot_ratios(out_dir, verdicts):
    """Per claim, the ratio over each whole sweep (nominal and extended), the chosen law of its
    far end, and the region's nominal range shaded."""
    from matplotlib.ticker import NullFormatter

    files = {}
    for v in verdicts:
        sweeps = [w for w in v.sweeps.values() if w.get("points")]
        if not sweeps:
            continue
        fig, axes = subplots(1, len(sweeps), figsize=(3.3 * len(sweeps), 3))
        for ax, w in zip(np.atleast_1d(axes), sweeps):
            pts = np.array(sorted((p["x"], p["ratio"]) for p in w["points"]))
            ax.semilogx(pts[:, 0], pts[:, 1], "o", ms=4)
            if w["nominal_end"]:
                ax.axvspan(pts[0, 0], w["nominal_end"], color="0.9", zorder=0)
            trend = w.get("trend") or {}
            chosen = trend.get("chosen")
            if chosen and w.get("models") and chosen in w["models"]:
                grid = np.geomspace(pts[0, 0], pts[-1, 0], 100)
                ax.semilogx(grid, _predict(chosen, w["models"][chosen]["params"], grid), "-",
                            lw=1, label=chosen)
                ax.legend(fontsize=7)
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel(w["variable"])
            ax.set_ylabel("measured / reweighted bound" if v.term_weights else "measured / bound")
            ax.set_title(w["decided"], fontsize=8)
        fig.suptitle(f"{v.claim_id}: {v.verdict} (shaded: the region's nominal range)",
                     fontsize=9)
        files[v.claim_id] = save(fig, out_dir, f"ratio-{v.claim_id}.png")
    return files


def write_report(verdicts, claims: dict, out_dir: str, sections=(), profile: str = "quick",
                 executor=None, laws: dict | None = None) -> str:
    """Write ``report.md`` and its figures into ``out_dir``, all or nothing: they are drawn into
    a temporary folder inside it and moved in, file by file, only once all are drawn (an
    interrupted run leaves the old report as it was; other files in the folder are kept).
    Returns the Markdown path.

    ``claims``: claim id -> :class:`checks.claims.Claim` of every verdict; ``sections``:
    ``(setting, its verdicts)`` pairs, each drawn by ``setting.report(verdicts, out_dir, profile,
    executor)`` when the setting has a section; ``laws``: claim id -> the law ``discover`` found
    for its quantity on its region, shown in a table next to the claimed bound."""
    import shutil
    import tempfile

    final = os.path.abspath(out_dir)
    os.makedirs(final, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".report-", dir=final)
    try:
        _write(verdicts, claims, staging, sections, profile, executor, laws or {})
        mask = _umask()
        names = sorted(os.listdir(staging), key=lambda n: n == "report.md")   # report.md last
        for name in names:                   # each file replaced whole; other files are kept
            os.chmod(os.path.join(staging, name), 0o666 & ~mask)
            os.replace(os.path.join(staging, name), os.path.join(final, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return os.path.join(out_dir, "report.md")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _laws_table(claims, laws) -> list[str]:
    """The discovered law of each claim's quantity next to the claimed bound."""
    lines = ["## Discovered laws", "",
             "Fitted by `icl-verify discover` on each claim's region and past it (at most four "
             "terms, held-out far configurations), then checked as an O(.) bound.", "",
             "| claim | claimed bound | discovered law | held-out max rel. error | as a bound |",
             "| --- | --- | --- | --- | --- |"]
    for cid, law in laws.items():
        held = law["validation"]["heldout_max_rel_error"]
        held = "-" if held is None else f"{held:.2g}"
        verdict = law["verdict"]["verdict"] if law.get("verdict") else "-"
        lines.append(f"| {cid} | `{claims[cid].bound}` | `{law['bound']}` | {held} | "
                     f"{verdict} |")
    return lines + [""]


def _write(verdicts, claims, out_dir, sections, profile, executor, laws=None) -> None:
    ratio_files = _plot_ratios(out_dir, verdicts)
    lines = list(_PREAMBLE) + [
        "| claim | source | verdict | constant | far-end exponents (slope, 95% CI) | reason |",
        "| --- | --- | --- | --- | --- | --- |"]
    for v in verdicts:
        exps = "; ".join(f"{f['variable']}: {f['slope']:.2f} [{f['low']:.2f}, {f['high']:.2f}]"
                         for f in v.exponents.values()) or "-"
        const = "-" if v.constant is None else f"{v.constant:.3g}"
        lines.append(f"| {v.claim_id} | {claims[v.claim_id].source} | **{v.verdict}** | {const} | "
                     f"{exps} | {v.reason} |")
    lines.append("")
    if laws:
        lines += _laws_table(claims, laws)
    lines += ["## Claims", ""]
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
        if v.sweeps:
            lines += ["", "| sweep | nominal end | reached | points past it | trend | why it stopped |",
                      "| --- | --- | --- | --- | --- | --- |"]
            for w in v.sweeps.values():
                end = "-" if w["nominal_end"] is None else f"{w['nominal_end']:.4g}"
                far = "-" if w["reached"] is None else f"{w['reached']:.4g}"
                lines.append(f"| {w['variable']} | {end} | {far} | {w['extended']} | "
                             f"{w['decided']} | {w['stopped']} |")
        if v.claim_id in ratio_files:
            lines += ["", f"![{c.id}]({ratio_files[v.claim_id]})"]
        lines.append("")
    for setting, setting_verdicts in sections:
        if setting.report is not None:
            lines += setting.report(setting_verdicts, out_dir, profile, executor)
    with open(os.path.join(out_dir, "report.md"), "w") as fh:
        fh.write("\n".join(lines))
