"""The classification section of the report: GD trajectories, the 1/N law of the minimiser gap,
the inference error against N and M, estimator agreement, and a deliberately wrong law."""
from __future__ import annotations

import numpy as np

from ..classification import raw_exponent, report_extras
from .figures import save, subplots

__all__ = ["section"]

def _plots(out_dir, verdicts, extras):

    files = {}
    fig, axes = subplots(1, 2, figsize=(10, 3.8))
    for label, traj in extras["trajectories"]:
        t = np.array(traj.t)
        axes[0].semilogy(t, traj.loss - traj.loss.min() + 1e-16, label=label)
        axes[1].semilogy(t, traj.distance, label=f"{label}: rho = {traj.rate()['rho']:.4f}")
    axes[0].set_title("L(W_t) - min over the run", fontsize=9)
    axes[1].set_title("||W_t - W*||_F (a straight line: linear rate)", fontsize=9)
    for ax in axes:
        ax.set_xlabel("GD step")
        ax.legend(fontsize=6)
    files["trajectories"] = save(fig, out_dir, "classification-gd.png")

    panels = []
    for v in verdicts:
        for var in ("N", "M"):
            fit = raw_exponent(v, var)
            if fit is not None:
                panels.append((v, var, fit))
    limit = extras["limit_M"]
    fig, axes = subplots(1, len(panels) + 1, figsize=(3.4 * (len(panels) + 1), 3.2))
    for ax, (v, var, fit) in zip(np.atleast_1d(axes), panels):
        pts = np.array(fit["points"])
        ax.loglog(pts[:, 0], pts[:, 1], "o", label="measured")
        xs = np.geomspace(pts[:, 0].min(), pts[:, 0].max(), 20)
        ax.loglog(xs, np.exp(fit["intercept"]) * xs ** fit["slope"], "-",
                  label=f"tail slope {fit['slope']:.2f} [{fit['low']:.2f}, {fit['high']:.2f}]")
        ax.set_xlabel(var)
        ax.set_title(f"{v.claim_id}: {v.quantity.split('.')[1]}", fontsize=8)
        ax.legend(fontsize=6)
    ax = np.atleast_1d(axes)[-1]
    ax.loglog(limit["M"], limit["error"], "o", label="measured")
    f = limit["fit"]
    xs = np.array(limit["M"], float)
    ax.loglog(xs, np.exp(f["intercept"]) * xs ** f["slope"], "-",
              label=f"slope {f['slope']:.3f} [{f['low']:.3f}, {f['high']:.3f}]")
    ax.set_xlabel("M")
    ax.set_title("inference error, W = 2 Lambda^-1 (N = oo)", fontsize=8)
    ax.legend(fontsize=6)
    files["laws"] = save(fig, out_dir, "classification-laws.png")
    return files, panels


def section(verdicts, out_dir: str, profile: str = "quick", executor=None) -> list[str]:
    """Markdown lines of the classification section (figures written into ``out_dir``)."""
    return draw(verdicts, out_dir, report_extras(profile, executor))


def draw(verdicts, out_dir: str, extras: dict) -> list[str]:
    """The section from its numbers (:func:`checks.classification.report_extras`)."""
    files, panels = _plots(out_dir, verdicts, extras)
    lines = ["## Classification: dynamics, laws and estimators", "",
             "Model reconstructed (the abstract fixes only the setting and the qualitative "
             "claims); see `icl-verify derive classification` for the derivation.", "",
             f"![GD]({files['trajectories']})", "",
             "| run | a* (W* = a* Lambda^-1) | error estimate | steps | fitted rho (95% CI) |",
             "| --- | --- | --- | --- | --- |"]
    for label, traj in extras["trajectories"]:
        fit = traj.rate()
        lines.append(f"| {label} | {traj.a_star:.10g} | {traj.a_star_error:.2g} | {traj.t[-1]} | "
                     f"{fit['rho']:.6f} [{fit['low']:.6f}, {fit['high']:.6f}] |")
    lines += ["", "### Laws in N and M (log-log fits of the measured quantity, larger half of each "
              "sweep, 95% CI)", "", f"![laws]({files['laws']})", "",
              "| claim | quantity | variable | exponent | 95% CI |", "| --- | --- | --- | --- | --- |"]
    for v, var, fit in panels:
        lines.append(f"| {v.claim_id} | {v.quantity} | {var} | {fit['slope']:.3f} | "
                     f"[{fit['low']:.3f}, {fit['high']:.3f}] |")
    f = extras["limit_M"]["fit"]
    lines.append(f"| - | inference error at W = 2 Lambda^-1 (N = oo) | M | {f['slope']:.3f} | "
                 f"[{f['low']:.3f}, {f['high']:.3f}] |")
    w = extras["wrong_law"]
    lines += ["", f"A deliberately wrong law, `minimiser_gap = O(1/N^2)`, on the C2 region: "
                  f"**{w.verdict}** ({w.reason}).", "",
              "### Estimators", "",
              "Quadrature (the six-dimensional reduction) against Monte Carlo on explicit prompts "
              "(400 000 prompts, no reduction); z = (MC - quadrature) / standard error.", "",
              "| N | d | a | value | quadrature | Monte Carlo | std. error | z |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in extras["agreement"]:
        lines.append(f"| {r['N']} | {r['d']} | {r['a']} | {r['what']} | {r['quadrature']:.8f} | "
                     f"{r['montecarlo']:.8f} | {r['stderr']:.1e} | {r['z']:+.2f} |")
    lines += ["", "SymPy derivatives of the reduced loss against central differences "
                  "(h = 1e-4, same rule):", "",
              "| N | d | a | L' SymPy | relative error | L'' SymPy | relative error |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in extras["derivatives"]:
        lines.append(f"| {r['N']} | {r['d']} | {r['a']} | {r['sympy_d1']:.10f} | "
                     f"{r['rel_d1']:.1e} | {r['sympy_d2']:.10f} | {r['rel_d2']:.1e} |")
    lines.append("")
    return lines
