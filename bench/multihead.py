"""Speed and accuracy figures of the multihead setting (quoted in the README).

    python bench/multihead.py [--only reduced|full|layers]

Speed: a run of the flow to its limit (SymPy compilation included: the cache is cleared before
each run), the best reduced loss by multi-start L-BFGS-B.  Accuracy: the flow at float64 against
mpmath's Taylor integrator at 30 digits; the reduced loss against Monte Carlo of the full model.

The trained model at finite L (``--only full``): one loss-and-gradient evaluation with the numba
kernel and with numpy side by side; the authors' official run (n = 3, d = 4, L = 100, H = 3,
official start, elbow schedule) to t = 1510 in float64 against its 2-minute target, with the final
loss's relative standard error against 0.5%; and the trajectory's convergence as the prompt sample
grows (distance to the largest sample's run).  ``--only layers``: the official run under numba's
GNU OpenMP threading layer and under the fork-safe one, side by side.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from icl_verifier.numerics import multihead as mh
from icl_verifier.numerics import multihead_full as mf


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def full(target_seconds: float = 120.0, target_stderr: float = 0.005):
    print("trained model at finite L")
    cfg = mf.FullConfig.make(3, 3, 4, 100, init_scheme="official", schedule="elbow",
                             samples=4096)
    sample = mf.draw(3, cfg.d, 100, 4096, "qmc", 0, True)
    rng = np.random.default_rng(0)
    omega, mu = rng.uniform(0, 0.5, (3, 3)), rng.uniform(0, 2, (3, 3))
    mf.loss_and_gradient(cfg, omega, mu, sample)            # load the compiled kernel
    for compiled in (False, True):
        best = min(timed(lambda: mf.loss_and_gradient(cfg, omega, mu, sample,
                                                      compiled=compiled))[1] for _ in range(3))
        print(f"  loss and gradient, n = H = 3, L = 100, {sample.size} prompts, "
              f"{'numba kernel' if compiled else 'numpy       '}: {best * 1e3:.1f} ms")
    traj, s = timed(lambda: mf.train(cfg, 1510.0))
    rel = traj.final_loss_stderr / traj.final_loss
    print(f"  official run H = 3 to t = 1510 ({traj.steps} steps, {cfg.samples} prompts): "
          f"{s:.1f} s (target {target_seconds:.0f} s: "
          f"{'met' if s <= target_seconds else 'MISSED'}); final loss {traj.final_loss:.5f} "
          f"+- {traj.final_loss_stderr:.2g} (relative {rel:.2%}, target {target_stderr:.1%}: "
          f"{'met' if rel <= target_stderr else 'MISSED'})")
    runs = {}
    for S in (512, 2048, 8192):
        c = mf.FullConfig.make(3, 3, 4, 100, init_scheme="official", schedule="elbow",
                               samples=S, seed=1)
        runs[S] = mf.train(c, 1510.0, final_samples=20_000)
    ref = runs[8192]
    for S in (512, 2048):
        tr = runs[S]
        dmu = np.max(np.abs(tr.mu[-1] - ref.mu[-1]))
        dom = np.max(np.abs(tr.omega[-1] - ref.omega[-1]))
        dem = max(abs(a - b) for a, b in zip(tr.emergence(), ref.emergence()))
        biggest = np.max(np.abs(ref.mu[-1]))
        print(f"  sample {S} against 8192 prompts (seed 1), at t = 1510: max |omega difference| "
              f"{dom:.2g}, max |mu difference| {dmu:.2g} (largest |mu| {biggest:.3g}), "
              f"largest emergence-time difference {dem:.3g}, final loss {tr.final_loss:.4f} against "
              f"{ref.final_loss:.4f} +- {ref.final_loss_stderr:.1g}")


_OFFICIAL_RUN = ("import time; from icl_verifier.numerics import multihead_full as mf; "
                 "c = mf.FullConfig.make(3, 3, 4, 100, init_scheme='official', schedule='elbow', "
                 "samples=4096); s = time.perf_counter(); tr = mf.train(c, 1510.0); "
                 "print(time.perf_counter() - s, tr.final_loss)")


def layers(repeats: int = 2):
    """The official run under numba's GNU OpenMP layer and under the fork-safe one the kernels
    choose (a fresh process each, alternating, so both see the same machine)."""
    import os
    import subprocess
    import sys

    print("numba threading layer, official run H = 3 to t = 1510 (fresh process each)")
    times = {"omp": [], "forksafe": []}
    for _ in range(repeats):
        for layer in times:
            env = dict(os.environ, NUMBA_THREADING_LAYER=layer)
            out = subprocess.run([sys.executable, "-c", _OFFICIAL_RUN], env=env, check=True,
                                 capture_output=True, text=True).stdout.split()
            times[layer].append((float(out[0]), float(out[1])))
    for layer, runs in times.items():
        secs = [r[0] for r in runs]
        print(f"  {layer:8s}: {min(secs):.1f}-{max(secs):.1f} s, final loss "
              f"{', '.join(f'{r[1]:.5f}' for r in runs)}")


def main(repeats: int = 3):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("reduced", "full", "layers"))
    args = parser.parse_args()
    if args.only == "layers":
        return layers()
    if args.only != "reduced":
        full()
    if args.only == "full":
        return
    print("speed (range over", repeats, "runs)")
    for n, H, d, L in ((2, 2, 4, 50), (3, 3, 8, 100), (3, 4, 4, 100), (2, 6, 8, 200)):
        config = mh.MultiheadConfig.make(n, H, d, L, init="0.01")
        times = []
        for _ in range(repeats):
            mh._compiled.cache_clear()
            traj, s = timed(lambda: mh.simulate(config))
            times.append(s)
        print(f"  flow to its limit, n = {n}, H = {H}, d = {d}, L = {L}: "
              f"{min(times):.2f}-{max(times):.2f} s (settled at t = {traj.settled:.4g})")
    config = mh.MultiheadConfig.make(2, 3, 4, 50, init="0.01")
    _, s = timed(lambda: mh.best_loss(config, starts=8))
    _, s1 = timed(lambda: mh.best_loss(config, heads=1, starts=16))
    print(f"  best L~, n = 2, d = 4, L = 50: H = 3, 8 starts {s:.2f} s; one head, 16 starts "
          f"{s1:.2f} s")

    print("accuracy")
    config = mh.MultiheadConfig.make(2, 2, 4, 50, init="0.01")
    _, Y, _ = mh.integrate(config, 2.0, 6)
    (_, Z, _), s = timed(lambda: mh.integrate(config, 2.0, 6, digits=30))
    print(f"  float64 (Radau) against 30 digits (Taylor), n = H = 2, d = 4, L = 50, t <= 2: "
          f"{np.max(np.abs(Y - Z)):.1e} ({s:.1f} s at 30 digits)")
    rng = np.random.default_rng(0)
    for n, H, d, L in ((2, 2, 16, 100), (1, 2, 16, 200), (3, 3, 8, 100), (2, 2, 16, 400)):
        config = mh.MultiheadConfig.make(n, H, d, L)
        y = np.concatenate([rng.uniform(0, 0.15, H * n), rng.uniform(0, 2, H * n)])
        mc, se = mh.monte_carlo_loss(config, y, samples=20_000, seed=3)
        red = mh.reduced_loss(config, y)
        print(f"  L~ against Monte Carlo (20 000 prompts), random small state, n = {n}, H = {H}, "
              f"d = {d}, L = {L}: {(red - mc) / mc:+.4f} (standard error {se / mc:.4f})")


if __name__ == "__main__":
    main()
