"""The verification report: Markdown with PNG figures (matplotlib)."""
from __future__ import annotations

import os

import numpy as np
import sympy as sp

from numerics.features import simulate
from theory import features as th

from .features import config_for, measure_many
from .verdict import RELATIONS

__all__ = ["mean_field_predictions", "write_report"]

_EXAMPLE = {"K": 10, "N": 400, "eta": 2.0, "epsilon": 0.05, "p1": 0.5}


def _mean_field_steps(kind: str, params: dict, level: float | None = None) -> float:
    """Mean-field time to ``L_k <= eps`` (or to ``Attn_k = level``), closed form from SymPy."""
    K, eta, p1, u = sp.symbols("K eta p_1 u", positive=True)
    if level is None:   # the root u < 1 of L_k(u) = eps
        loss = th.mean_field_loss().subs(K, params["K"])
        level = max(float(r) for r in sp.solve(sp.Eq(loss, params["epsilon"]), u) if r < 1)
    expr = th.mean_field_time(kind).subs({K: params["K"], eta: params["eta"], p1: params["p1"],
                                          u: level})
    return float(sp.N(expr))


def mean_field_predictions(Ks=(4, 8, 16), Ns=(100, 1000, 10000), eta=0.5, epsilon=0.05):
    """Mean-field predictions against the exact simulation, with the relative error.

    Balanced and dominant times: the closed-form solution of the mean-field ODE (SymPy).  The four
    phases of an under-represented feature: GD on the N -> inf limit (``method="meanfield"``),
    numerical, since the 2-D mean-field system has no closed form here.
    """
    rows = []
    closed = (("balanced", "features.balanced.convergence_time", None),
              ("balanced", "features.balanced.phase_time.1", 0.5),
              ("dominant", "features.dominant.convergence_time", None))
    under = ["features.under.phase_time.1", "features.under.phase_time.2",
             "features.under.phase_time.3", "features.under.convergence_time"]
    for K in Ks:
        base = {"K": K, "eta": eta, "epsilon": epsilon, "p1": 0.5}
        limit = measure_many(under, dict(base, N=1), 200_000, method="meanfield")
        for N in Ns:
            params = dict(base, N=N)
            for kind, quantity, phase in closed:
                predicted = _mean_field_steps(kind, params, phase)
                measured = measure_many([quantity], params, 200_000)[quantity]
                rows.append(_row(quantity, "closed form", K, N, predicted, measured))
            measured = measure_many(under, params, 200_000)
            for quantity in under:
                rows.append(_row(quantity, "mean-field GD", K, N, limit[quantity],
                                 measured[quantity]))
    return rows


def _row(quantity, how, K, N, predicted, measured):
    error = None if not measured or predicted is None else abs(predicted - measured) / measured
    return {"quantity": quantity, "prediction": how, "K": K, "N": N, "predicted": predicted,
            "measured": measured, "relative_error": error}


def _plot_trajectory(out_dir, params):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["features.under.phase_time.1", "features.under.phase_time.2",
             "features.under.phase_time.3", "features.under.convergence_time",
             "features.dominant.convergence_time"]
    ends = measure_many(names, params, 100_000)
    T = int(1.3 * (ends["features.under.convergence_time"] or 1000))
    traj = simulate(config_for("imbalanced", params), T, every=1)
    t = np.array(traj.t)
    bands = [0] + [ends[n] for n in names[:4]]
    colors = ["#dbe9f6", "#f6e7db", "#e3f6db", "#f2dbf6"]
    files = {}

    fig, ax = plt.subplots(figsize=(7, 4))
    for i in range(4):
        if bands[i] is not None and bands[i + 1] is not None:
            ax.axvspan(bands[i], bands[i + 1], color=colors[i], label=f"phase {'I II III IV'.split()[i]}")
    ax.plot(t, traj.A(0), label="$A_1$ (dominant)")
    ax.plot(t, traj.A(1), label="$A_2$ (under-represented)")
    ax.plot(t, traj.B(1, 0), label="$B_{2,1}$")
    ax.plot(t, traj.B(1, 2), label="$B_{2,3}$")
    ax.set_xlabel("GD step")
    ax.set_ylabel("logit")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(f"bilinear weights, K={params['K']}, N={params['N']}, p1={params['p1']}, "
                 f"eta={params['eta']}")
    files["weights"] = "weights.png"
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, files["weights"]), dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.semilogy(t, traj.loss[:, 0] - traj.loss_star[0], label="$L_1 - L_1^*$ (dominant)")
    ax.semilogy(t, traj.loss[:, 1] - traj.loss_star[1], label="$L_2 - L_2^*$ (under-represented)")
    ax.axhline(params["epsilon"], color="k", ls=":", label="eps")
    ax.set_xlabel("GD step")
    ax.legend()
    ax.set_title("stage-wise convergence")
    files["stagewise"] = "stagewise.png"
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, files["stagewise"]), dpi=110)
    plt.close(fig)

    steps = [0] + [e for e in bands[2:] if e is not None]
    fig, axes = plt.subplots(1, len(steps), figsize=(3 * len(steps), 3))
    for i, (ax, s) in enumerate(zip(np.atleast_1d(axes), steps)):
        im = ax.imshow(traj.attention[s], vmin=0, vmax=1, cmap="viridis")
        ax.set_title(f"step {s}", fontsize=9)
        ax.set_xlabel("query feature k")
        if i == 0:
            ax.set_ylabel("attended feature n")
    fig.colorbar(im, ax=axes, shrink=0.8, label="E[Attn_n | x_q = v_k]")
    files["attention"] = "attention.png"
    fig.savefig(os.path.join(out_dir, files["attention"]), dpi=110)
    plt.close(fig)
    return files, ends


def _plot_ratios(out_dir, verdicts):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    files = {}
    for v in verdicts:
        if not v.exponents:
            continue
        fig, axes = plt.subplots(1, len(v.exponents), figsize=(3.3 * len(v.exponents), 3))
        for ax, fit in zip(np.atleast_1d(axes), v.exponents.values()):
            pts = np.array(fit["points"])
            ax.semilogx(pts[:, 0], pts[:, 1], "o-")   # narrow ratio ranges read better linear
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel(fit["variable"])
            ax.set_ylabel("measured / reweighted bound" if v.term_weights else "measured / bound")
            ax.set_title(f"slope {fit['slope']:.2f} [{fit['low']:.2f}, {fit['high']:.2f}]",
                         fontsize=8)
        fig.suptitle(f"{v.claim_id}: {v.verdict}", fontsize=9)
        fig.tight_layout()
        name = f"ratio-{v.claim_id}.png"
        fig.savefig(os.path.join(out_dir, name), dpi=110)
        plt.close(fig)
        files[v.claim_id] = name
    return files


def write_report(verdicts, out_dir: str, predictions=None, classification=None,
                 multihead=None) -> str:
    """Write ``report.md`` and its figures into ``out_dir``; returns the Markdown path.

    ``predictions``: mean-field rows for the features section (:func:`mean_field_predictions`);
    ``classification``: the extras of the classification section
    (:func:`checks.report_classification.classification_extras`)."""
    from .registry import all_claims, setting_of

    claims = all_claims()
    os.makedirs(out_dir, exist_ok=True)
    ratio_files = _plot_ratios(out_dir, verdicts)
    lines = ["# icl-verifier report", "",
             "Sources: *paper* = stated in the seeds (abstract, talk slides); *derived* = our "
             "derivation; *reconstructed* = our reading of the paper. The papers' full texts were "
             "not available.", "",
             "An O(.) claim is *consistent* when measured/bound does not grow in any swept "
             "variable (log-log slope over the larger half of each sweep, 95% interval below 0.1; "
             "a bound with several terms is tested with its terms reweighted by non-negative "
             "least squares, the same O(.) claim); *refuted* when the slope is above 0.1 beyond "
             "its interval; the constant is the largest measured/bound met. Exact inequalities "
             "are checked by Hypothesis and shrunk to a minimal counterexample.", "",
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
                  f"- quantity `{c.quantity}`, bound `{c.bound}` ({rel}), region "
                  f"{c.region.describe()}",
                  f"- worst configuration: `{v.worst}`"]
        if v.counterexample:
            lines.append(f"- minimal counterexample: `{v.counterexample}`")
        if v.term_weights:
            lines.append(f"- growth test against the bound's terms with weights `{v.term_weights}`")
        if v.claim_id in ratio_files:
            lines += ["", f"![{c.id}]({ratio_files[v.claim_id]})"]
        lines.append("")
    by_setting = {}
    for v in verdicts:
        by_setting.setdefault(setting_of(claims[v.claim_id].quantity), []).append(v)
    if "features" in by_setting:
        lines += _features_section(out_dir, predictions)
    if "classification" in by_setting and classification is not None:
        from .report_classification import classification_section
        lines += classification_section(by_setting["classification"], out_dir, classification)
    if "multihead" in by_setting and multihead is not None:
        from .report_multihead import multihead_section
        lines += multihead_section(by_setting["multihead"], out_dir, multihead)
    path = os.path.join(out_dir, "report.md")
    with open(path, "w") as fh:
        fh.write("\n".join(lines))
    return path


def _features_section(out_dir, predictions) -> list[str]:
    traj_files, ends = _plot_trajectory(out_dir, _EXAMPLE)
    lines = ["## Features: dynamics of the imbalanced family", "",
             f"Configuration {_EXAMPLE}. Phase ends (reconstructed boundaries): "
             + ", ".join(f"`{k.split('features.')[1]}` = {ends[k]}" for k in ends), "",
             f"![weights]({traj_files['weights']})", "", f"![stage-wise]({traj_files['stagewise']})",
             "", f"![attention]({traj_files['attention']})", ""]
    if predictions:
        lines += ["## Features: mean-field predictions (derived) against the exact simulation", "",
                  "The error should fall as N grows (the mean field is the N -> inf limit); GD "
                  "steps against continuous time add an O(eta) part to the closed forms.", "",
                  "| quantity | prediction | K | N | predicted | measured | relative error |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in sorted(predictions, key=lambda r: (r["quantity"], r["K"], r["N"])):
            err = "-" if r["relative_error"] is None else f"{r['relative_error']:.4f}"
            pred = "-" if r["predicted"] is None else f"{r['predicted']:.1f}"
            lines.append(f"| {r['quantity']} | {r['prediction']} | {r['K']} | {r['N']} | {pred} | "
                         f"{r['measured']} | {err} |")
        lines.append("")
    return lines
