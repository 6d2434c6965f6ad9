"""The multihead section of the report: the loss with its three phase bands, omega and mu per head
and task, the allocation heatmap, the separation ratio against L, the phases over
Hypothesis-generated configurations, and the reduction's and the integrator's measured errors."""
from __future__ import annotations

import numpy as np

from ..multihead import EXAMPLE, SEPARATION, official_lines, report_extras
from .figures import save, subplots

__all__ = ["section"]

def _bands(ax, traj, t_last):
    """Shade warm-up, emergence and convergence on a log-time axis."""
    t0 = traj.t[1]
    edges = [t0, traj.warmup or t_last, traj.emergence or t_last, t_last]
    for (a, b), colour, label in zip(zip(edges, edges[1:]), ("#fde0c5", "#c9e4f6", "#d5efd0"),
                                     ("warm-up", "emergence", "convergence")):
        ax.axvspan(a, b, color=colour, alpha=0.8, label=label, lw=0)


def _plots(out_dir, extras):

    files = {}
    traj = extras["example"]
    t, last = traj.t, traj.t[-1]
    H, n = traj.omega.shape[1:]

    fig, ax = subplots(figsize=(6.4, 3.6))
    _bands(ax, traj, last)
    ax.semilogx(t[1:], traj.loss[1:], "k-", label="L~ along the flow")
    ax.axhline(extras["example_best"], color="C2", ls="--", label="best L~ found (H heads)")
    ax.axhline(extras["example_single"], color="C3", ls=":", label="best L~ found (one head)")
    ax.set_xlabel("t")
    ax.set_ylabel("reduced loss")
    ax.set_title(f"n = {n}, H = {H}, d = {EXAMPLE['d']}, L = {EXAMPLE['L']}: three phases",
                 fontsize=9)
    ax.legend(fontsize=7)
    files["loss"] = save(fig, out_dir, "multihead-loss.png")

    fig, axes = subplots(1, 2, figsize=(10, 3.6))
    for ax, values, name in zip(axes, (traj.omega, traj.mu), ("omega", "mu")):
        _bands(ax, traj, last)
        for h in range(H):
            for i in range(n):
                ax.semilogx(t[1:], values[1:, h, i], color=f"C{h}",
                            ls=("-", "--", ":", "-.")[i % 4], label=f"{name}_{h + 1},{i + 1}")
        ax.set_xlabel("t")
        ax.set_title(f"{name}_(head, task) (colour: head, line: task)", fontsize=9)
        ax.legend(fontsize=6, ncol=2)
    files["weights"] = save(fig, out_dir, "multihead-weights.png")

    times = [("end of warm-up", traj.warmup), ("limit", last)]
    fig, axes = subplots(1, 2, figsize=(7.5, 3.0))
    for ax, (label, when) in zip(axes, times):
        j = int(np.searchsorted(t, when or last))
        energy = traj.omega[min(j, len(t) - 1)] ** 2
        share = energy / np.maximum(energy.sum(axis=1, keepdims=True), 1e-300)
        im = ax.imshow(share, vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(n), [f"task {i + 1}" for i in range(n)], fontsize=7)
        ax.set_yticks(range(H), [f"head {h + 1}" + ("" if traj.active[h] or label != "limit"
                                                    else " (idle)") for h in range(H)], fontsize=7)
        for h in range(H):
            for i in range(n):
                ax.text(i, h, f"{share[h, i]:.2f}", ha="center", va="center", fontsize=7,
                        color="w" if share[h, i] < 0.5 else "k")
        ax.set_title(f"key-query share, {label} (t = {when or last:.3g})", fontsize=8)
    fig.colorbar(im, ax=axes, shrink=0.8)
    files["allocation"] = save(fig, out_dir, "multihead-allocation.png", tight=False)

    fig, ax = subplots(figsize=(6.4, 3.4))
    for k, c in enumerate(SEPARATION):
        rows = [r for r in extras["separation"] if all(r[x] == c[x] for x in ("n", "H", "d"))]
        ax.semilogx([r["L"] for r in rows], [r["ratio"] for r in rows], "o-", color=f"C{k}",
                    label=f"n = {c['n']}, H = {c['H']}, d = {c['d']}")
    ax.axhline(1, color="k", lw=0.8)
    ax.set_xlabel("L")
    ax.set_ylabel("best single-head L~ / H-head limit")
    ax.set_title("separation ratio against the context length", fontsize=9)
    ax.legend(fontsize=7)
    files["separation"] = save(fig, out_dir, "multihead-separation.png")

    drawn = extras["drawn"]
    fig, ax = subplots(figsize=(7, 0.45 * len(drawn) + 1.2))
    for k, r in enumerate(drawn):
        edges = [1e-2, r["warmup"] or r["t_end"], r["emergence"] or r["t_end"], r["t_end"]]
        for (a, b), colour in zip(zip(edges, edges[1:]), ("#f4a261", "#4ea8de", "#74c69d")):
            ax.barh(k, b - a, left=a, color=colour, height=0.6)
    ax.set_xscale("log")
    ax.set_yticks(range(len(drawn)), [_label(r["params"]) for r in drawn], fontsize=6)
    ax.set_xlabel("t (warm-up, emergence, convergence until the run settled)")
    ax.set_title("three phases over Hypothesis-generated configurations", fontsize=9)
    files["phases"] = save(fig, out_dir, "multihead-phases.png")
    return files


def _label(params):
    d = params["d"]
    d = ",".join(map(str, d)) if isinstance(d, (list, tuple)) else str(d)
    return f"n={params['n']} H={params['H']} d=({d}) L={params['L']}"


def _num(x, fmt=".4g"):
    return "-" if x is None else format(x, fmt)


def section(verdicts, out_dir: str, profile: str = "quick", executor=None) -> list[str]:
    """Markdown lines of the multihead section (figures written into ``out_dir``)."""
    return draw(verdicts, out_dir, report_extras(profile, executor))


def draw(verdicts, out_dir: str, extras: dict) -> list[str]:
    """Markdown lines of the multihead section (figures written into ``out_dir``)."""
    files = _plots(out_dir, extras)
    traj = extras["example"]
    lines = ["## Multihead: phases, allocation, optimality and separation", "",
             "Model and large-L reduction reconstructed (the abstract fixes the setting and the "
             "qualitative claims); `icl-verify derive multihead` prints the derivation. Phase ends "
             "are our reading: warm-up ends when the loss has made 5% of its fall, emergence when "
             "it is within 5% of the limit and every active head has 95% of its key-query energy "
             "on one task.", "",
             f"Example {_label(EXAMPLE)}: warm-up ends at t = {_num(traj.warmup)}, emergence at "
             f"t = {_num(traj.emergence)}, the run settled at t = {_num(traj.settled)}; limit "
             f"L~ = {traj.loss[-1]:.6g}, best found {extras['example_best']:.6g} (ratio "
             f"{traj.loss[-1] / extras['example_best']:.3g}), best single head "
             f"{extras['example_single']:.6g} (separation "
             f"{extras['example_single'] / traj.loss[-1]:.3g}).", "",
             f"![loss]({files['loss']})", "", f"![weights]({files['weights']})", "",
             f"![allocation]({files['allocation']})", "",
             "### Separation against L", "", f"![separation]({files['separation']})", ""]
    Ls = sorted({r["L"] for r in extras["separation"]})
    lines += ["| n | H | d | " + " | ".join(f"L = {L}" for L in Ls) + " |",
              "| --- | --- | --- | " + " | ".join("---" for _ in Ls) + " |"]
    for c in SEPARATION:
        ratio = {r["L"]: r["ratio"] for r in extras["separation"]
                 if all(r[x] == c[x] for x in ("n", "H", "d"))}
        if ratio:
            lines.append(f"| {c['n']} | {c['H']} | {c['d']} | "
                         + " | ".join(_num(ratio.get(L), ".3f") for L in Ls) + " |")
    lines += ["", "### Hypothesis-generated configurations (derandomised; a block size per task)",
              "", f"![phases]({files['phases']})", "",
              "| configuration | warm-up ends | emergence ends | settled | warm-up / peak rate | "
              "smallest active share | tasks served | separation |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in extras["drawn"]:
        lines.append(f"| {_label(r['params'])} | {_num(r['warmup'])} | {_num(r['emergence'])} | "
                     f"{_num(r['settled'])} | {_num(r['speed_ratio'], '.3g')} | "
                     f"{r['share']:.6f} | {r['served']} of {r['params']['n']} | "
                     f"{r['separation']:.3f} |")
    p = extras["precision"]
    lines += ["", "### Measured errors", "",
              "The reduced loss against Monte Carlo of the full model (explicit block-diagonal "
              "W_h, explicit prompts, 20 000 prompts) at the flow's limit and at the best reduced "
              "state found:", "",
              "| configuration | state | L~ | Monte Carlo | std. error | relative difference |",
              "| --- | --- | --- | --- | --- | --- |"]
    for r in extras["agreement"]:
        lines.append(f"| {_label(r['params'])} | {r['state']} | {r['reduced']:.5g} | "
                     f"{r['montecarlo']:.5g} | {r['stderr']:.2g} | {r['relative']:+.3f} "
                     f"(+- {r['relative_se']:.3f}) |")
    by_config = {}
    for r in extras["agreement"]:
        by_config.setdefault(_label(r["params"]), {})[r["state"]] = r
    lines += ["", "The optimality ratio (limit / best found) on L~ and on the full model's Monte "
                  "Carlo at the same two states:", "",
              "| configuration | on L~ | on the full model |", "| --- | --- | --- |"]
    for label, states in by_config.items():
        if {"limit", "best found"} <= set(states):
            lim, bst = states["limit"], states["best found"]
            lines.append(f"| {label} | {lim['reduced'] / bst['reduced']:.3f} | "
                         f"{lim['montecarlo'] / bst['montecarlo']:.3f} |")
    lines += _proxy_lines(extras["proxy"]) + official_lines(extras["official"])
    lines += ["", f"The flow at float64 (Radau, rtol 1e-10) against mpmath's Taylor integrator at "
                  f"{p['digits']} digits, n = H = 2, d = 4, L = 50, t <= {p['t_end']:g}: largest "
                  f"absolute difference {p['max_abs']:.2g}, relative {p['max_rel']:.2g}.", ""]
    return lines


def _pct(x):
    return "n/a" if x is None else f"{100 * x:+.1f}%"


def _proxy_lines(rows) -> list[str]:
    """Where the reduced model is a faithful proxy of the trained model (same start, same flow)."""
    out = ["", "### The reduced model as a proxy of the trained model at finite L", "",
           "Both flows from the same small start (n = H = 2, d = 4, init = 0.01, balanced Q, K, V, "
           "O) in the same coordinates; the trained model's loss on 1024 prompts (Sobol, closed "
           "under the distribution's symmetries). Relative error of the reduced model against the trained one "
           "(the limit: largest difference of (omega, mu) over the largest entry; the share: "
           "difference):", "",
           "| L | warm-up ends (reduced / trained) | emergence ends | loss at the limit | "
           "limit | share | separation (reduced / trained) |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        red, full, err = r["reduced"], r["full"], r["errors"]
        out.append(f"| {r['L']} | {_num(red['warmup'])} / {_num(full['warmup'])} "
                   f"({_pct(err['warmup'])}) | {_num(red['emergence'])} / "
                   f"{_num(full['emergence'])} ({_pct(err['emergence'])}) | "
                   f"{red['loss']:.4g} / {full['loss']:.4g} ({_pct(err['loss'])}) | "
                   f"{_pct(err['limit'])} | {err['share']:+.2g} | {red['separation']:.3f} / "
                   f"{full['separation']:.3f} ({_pct(err['separation'])}) |")
    return out
