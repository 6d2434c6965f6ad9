"""Speed and accuracy figures of the classification setting (quoted in the README).

    python bench/classification.py

Speed: the minimiser a* by quadrature (Newton plus the 1.5x finer rule for its error estimate),
GD steps by quadrature and by Monte Carlo.  Accuracy: the quadrature's change under refinement,
float64 against 30 digits on the same rule, quadrature against Monte Carlo in standard errors.
"""
from __future__ import annotations

import math
import time

import numpy as np

from icl_verifier.numerics.backend import MP
from icl_verifier.numerics.classification import (ClassificationConfig, IsotropicLoss, MonteCarloLoss, Nodes,
                                     minimiser, simulate)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main():
    print("speed")
    for N, d in ((64, 1), (64, 2), (512, 4)):
        (a, err), s = timed(lambda: minimiser(ClassificationConfig.make(N, d)))
        print(f"  a* by quadrature, N = {N}, d = {d}: {s:.2f} s (a* = {float(a):.12f}, "
              f"error estimate {float(err):.1e})")
    cfg = ClassificationConfig.make(64, 1, eta="4")
    traj, s = timed(lambda: simulate(cfg, 200))
    print(f"  GD by quadrature, N = 64, d = 1, 200 steps: {s:.2f} s")
    cfg = ClassificationConfig.make(64, 4, "diag:0.8,0.9,1.1,1.2", 3, eta="4")
    traj, s = timed(lambda: simulate(cfg, 1000, samples=20_000))
    print(f"  GD by Monte Carlo, c = 3, d = 4 (4 groups), 20 000 prompts, 1000 steps: {s:.2f} s")

    print("accuracy")
    for N, d in ((4, 1), (16, 2), (256, 3)):
        base = IsotropicLoss(N, d, 1)
        fine = IsotropicLoss(N, d, 1, nodes=base.nodes.refined(1.5))
        diff = max(abs(float(x) - float(y)) for x, y in zip(base(1.7), fine(1.7)))
        print(f"  quadrature vs 1.5x finer rule, N = {N}, d = {d}, a = 1.7 (L, L', L''): {diff:.1e}")
    nodes = Nodes(8, 2, 12, 1, 48)
    exact = IsotropicLoss(8, 1, 1, MP(30), nodes)("1.7")
    plain = IsotropicLoss(8, 1, 1, nodes=nodes)(1.7)
    print("  float64 vs 30 digits, same rule, N = 8, d = 1: "
          f"{max(abs(float(x) - y) for x, y in zip(exact, plain)):.1e}")
    worst = 0.0
    for N, d, a in ((8, 1, 1.0), (32, 2, 1.5), (128, 3, 2.0)):
        L, dL, _ = IsotropicLoss(N, d, 1)(a)
        loss, grad, _ = MonteCarloLoss(N, d, 2, 1, np.zeros(d, int), 400_000, 5).per_sample(
            np.array([a]))
        for q, x in ((L, loss), (dL, grad[:, 0])):
            worst = max(worst, abs(x.mean() - float(q)) / (x.std(ddof=1) / math.sqrt(x.size)))
    print(f"  quadrature vs Monte Carlo (400 000 prompts), 3 cases, L and L': largest |z| = "
          f"{worst:.2f}")


if __name__ == "__main__":
    main()
