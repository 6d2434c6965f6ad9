"""The features section of the report: the bilinear weights of an imbalanced run with its four
phase bands, stage-wise convergence, attention heatmaps, and mean-field predictions against the
exact simulation."""
from __future__ import annotations

import numpy as np

from ..features import EXAMPLE, example_run, mean_field_predictions
from .figures import save, subplots

__all__ = ["section", "draw"]


def _plot_trajectory(out_dir, params):
    traj, ends = example_run(params)
    names = list(ends)
    t = np.array(traj.t)
    bands = [0] + [ends[n] for n in names[:4]]
    colors = ["#dbe9f6", "#f6e7db", "#e3f6db", "#f2dbf6"]
    files = {}

    fig, ax = subplots(figsize=(7, 4))
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
    files["weights"] = save(fig, out_dir, "weights.png")

    fig, ax = subplots(figsize=(7, 4))
    ax.semilogy(t, traj.loss[:, 0] - traj.loss_star[0], label="$L_1 - L_1^*$ (dominant)")
    ax.semilogy(t, traj.loss[:, 1] - traj.loss_star[1], label="$L_2 - L_2^*$ (under-represented)")
    ax.axhline(params["epsilon"], color="k", ls=":", label="eps")
    ax.set_xlabel("GD step")
    ax.legend()
    ax.set_title("stage-wise convergence")
    files["stagewise"] = save(fig, out_dir, "stagewise.png")

    steps = [0] + [e for e in bands[2:] if e is not None]
    fig, axes = subplots(1, len(steps), figsize=(3 * len(steps), 3))
    for i, (ax, s) in enumerate(zip(np.atleast_1d(axes), steps)):
        im = ax.imshow(traj.attention[s], vmin=0, vmax=1, cmap="viridis")
        ax.set_title(f"step {s}", fontsize=9)
        ax.set_xlabel("query feature k")
        if i == 0:
            ax.set_ylabel("attended feature n")
    fig.colorbar(im, ax=axes, shrink=0.8, label="E[Attn_n | x_q = v_k]")
    files["attention"] = save(fig, out_dir, "attention.png", tight=False)
    return files, ends


def section(verdicts, out_dir: str, profile: str = "quick", executor=None) -> list[str]:
    """Markdown lines of the features section (figures written into ``out_dir``)."""
    predictions = mean_field_predictions(
        Ks=(4, 8, 16) if profile == "quick" else (4, 8, 16, 32), Ns=(100, 1000, 10000))
    return draw(out_dir, predictions)


def draw(out_dir: str, predictions) -> list[str]:
    """The section from its numbers (:func:`checks.features.mean_field_predictions`)."""
    traj_files, ends = _plot_trajectory(out_dir, EXAMPLE)
    lines = ["## Features: dynamics of the imbalanced family", "",
             f"Configuration {EXAMPLE}. Phase ends (reconstructed boundaries): "
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
