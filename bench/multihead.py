"""Speed and accuracy figures of the multihead setting (quoted in the README).

    python bench/multihead.py

Speed: a run of the flow to its limit (SymPy compilation included: the cache is cleared before
each run), the best reduced loss by multi-start L-BFGS-B.  Accuracy: the flow at float64 against
mpmath's Taylor integrator at 30 digits; the reduced loss against Monte Carlo of the full model.
"""
from __future__ import annotations

import time

import numpy as np

from icl_verifier.numerics import multihead as mh


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main(repeats: int = 3):
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
