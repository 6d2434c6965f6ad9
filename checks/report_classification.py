"""The classification section of the report: GD trajectories, the 1/N law of the minimiser gap,
the inference error against N and M, estimator agreement, and a deliberately wrong law."""
from __future__ import annotations

import math
import os

import numpy as np

from numerics.classification import IsotropicLoss, MonteCarloLoss, inference_error, simulate

from .classification import _GAP_REGION, config_for
from .verdict import check_bound, fit_exponent, tail_exponent

__all__ = ["classification_extras", "classification_section", "estimator_agreement",
           "derivative_check", "raw_exponent"]

#: Configurations of the example trajectories: (label, params, method).
_TRAJECTORIES = [
    ("binary, Lambda = I, d = 2 (quadrature)",
     {"N": 64, "d": 2, "c": 2, "kappa": 1.0, "eta": 4.0, "r": 1.0}, "quadrature"),
    ("binary, kappa = 1.5, d = 3 (Monte Carlo, CRN)",
     {"N": 64, "d": 3, "c": 2, "kappa": 1.5, "eta": 4.0, "r": 1.0}, "montecarlo"),
    ("3 classes, kappa = 1.5, d = 3 (Monte Carlo, CRN)",
     {"N": 64, "d": 3, "c": 3, "kappa": 1.5, "eta": 4.0, "r": 1.0}, "montecarlo"),
]


def estimator_agreement(cases=((16, 1, 1.0), (32, 2, 1.5), (64, 3, 2.0)), samples=400_000):
    """Quadrature ``L(a), L'(a)`` against Monte Carlo (independent prompts, no reduction) with its
    standard error: ``(N, d, a, quad, mc, se, z)`` rows for the loss and the derivative."""
    rows = []
    for N, d, a in cases:
        L, dL, _ = IsotropicLoss(N, d, 1)(a)
        mc = MonteCarloLoss(N, d, 2, 1, np.zeros(d, int), samples, seed=11)
        loss, grad, _ = mc.per_sample(np.array([a]))
        for what, q, x in (("L", L, loss), ("dL/da", dL, grad[:, 0])):
            m, se = x.mean(), x.std(ddof=1) / math.sqrt(samples)
            rows.append({"N": N, "d": d, "a": a, "what": what, "quadrature": float(q),
                         "montecarlo": float(m), "stderr": float(se),
                         "z": float((m - float(q)) / se)})
    return rows


def derivative_check(cases=((16, 2, 1.2), (128, 3, 1.9)), h=1e-4):
    """SymPy ``L'(a), L''(a)`` against central differences of ``L`` (same rule): rows with the
    relative error; the difference error is O(h^2)."""
    rows = []
    for N, d, a in cases:
        loss = IsotropicLoss(N, d, 1)
        L0, d1, d2 = (float(x) for x in loss(a))
        Lp, Lm = float(loss(a + h)[0]), float(loss(a - h)[0])
        fd1, fd2 = (Lp - Lm) / (2 * h), (Lp - 2 * L0 + Lm) / h**2
        rows.append({"N": N, "d": d, "a": a, "sympy_d1": d1, "fd_d1": fd1,
                     "rel_d1": abs(d1 - fd1) / abs(d1), "sympy_d2": d2, "fd_d2": fd2,
                     "rel_d2": abs(d2 - fd2) / abs(d2)})
    return rows


def raw_exponent(verdict, var: str):
    """Log-log fit of the measured quantity itself (not the ratio) over a sweep of ``var``, on
    the larger half of the sweep; None when there are fewer than three points."""
    return tail_exponent([(e["params"][var], e["measured"]) for e in verdict.evaluations
                          if e["probe"] == f"sweep {var}" and e["measured"]])


def classification_extras(profile: str = "quick", executor=None) -> dict:
    """Everything the section shows besides the claims' verdicts."""
    Ms = [16, 64, 256, 1024, 4096, 16384]
    bayes_limit = [inference_error(2.0, M, 2, 2, 1.0, 200_000)[0] for M in Ms]
    return {
        "wrong_law": check_bound("classification.minimiser_gap", "1/N**2", _GAP_REGION, profile,
                                 examples=2, executor=executor),
        "trajectories": [(label, simulate(config_for(p), 3000, method=m, samples=20_000,
                                          until=1e-9)) for label, p, m in _TRAJECTORIES],
        "agreement": estimator_agreement(),
        "derivatives": derivative_check(),
        "limit_M": {"M": Ms, "error": bayes_limit,
                    "fit": fit_exponent(Ms[2:], bayes_limit[2:])},
    }


def _plots(out_dir, verdicts, extras):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = {}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for label, traj in extras["trajectories"]:
        t = np.array(traj.t)
        axes[0].semilogy(t, traj.loss - traj.loss.min() + 1e-16, label=label)
        axes[1].semilogy(t, traj.distance, label=f"{label}: rho = {traj.rate()['rho']:.4f}")
    axes[0].set_title("L(W_t) - min over the run", fontsize=9)
    axes[1].set_title("||W_t - W*||_F (a straight line: linear rate)", fontsize=9)
    for ax in axes:
        ax.set_xlabel("GD step")
        ax.legend(fontsize=6)
    fig.tight_layout()
    files["trajectories"] = "classification-gd.png"
    fig.savefig(os.path.join(out_dir, files["trajectories"]), dpi=110)
    plt.close(fig)

    panels = []
    for v in verdicts:
        for var in ("N", "M"):
            fit = raw_exponent(v, var)
            if fit is not None:
                panels.append((v, var, fit))
    limit = extras["limit_M"]
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(3.4 * (len(panels) + 1), 3.2))
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
    fig.tight_layout()
    files["laws"] = "classification-laws.png"
    fig.savefig(os.path.join(out_dir, files["laws"]), dpi=110)
    plt.close(fig)
    return files, panels


def classification_section(verdicts, out_dir: str, extras: dict) -> list[str]:
    """Markdown lines of the classification section (figures written into ``out_dir``)."""
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
