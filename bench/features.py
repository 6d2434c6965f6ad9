"""Speed of exact population GD in the features setting (the figures quoted in the README).

    python bench/features.py [--only NAME] [--repeat R]

Each case runs the public simulator end to end (L_k^* included) and prints the best wall time of
R runs against its target.  float64 cases run twice in the same process, side by side: with the
numpy quadrature (``numpy``) and with the compiled kernel (``compiled``, the default path; the
one-time load of the kernel is timed apart, as ``load``).  Times are machine dependent; the README
records them for a 2-core machine.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from icl_verifier.numerics import F64, MP, kernels
from icl_verifier.numerics.features import FeaturesConfig, simulate
from icl_verifier.numerics.quadrature import de_grid


def _dirichlet(K: int, seed: int) -> str:
    p = np.random.default_rng(seed).dirichlet(np.ones(K))
    return ",".join(repr(float(x)) for x in p / p.sum())


CASES = {
    "balanced-K50-N1e4-300": (lambda: FeaturesConfig.make(50, 10_000, "balanced", "1"), 300,
                              F64, 3.0),
    "general-K30-N1e4-300": (lambda: FeaturesConfig.make(30, 10_000, _dirichlet(30, 0), "1"),
                             300, F64, 5.0),
    "imbalanced-K20-N2000-1e5": (lambda: FeaturesConfig.make(20, 2000, "imbalanced:0.5", "1"),
                                 100_000, F64, 20.0),
    "mp30-K5-N100-1000": (lambda: FeaturesConfig.make(5, 100, _dirichlet(5, 1), "1"), 1000,
                          MP(30), 60.0),
    # the far end of a sweep: 10^6 exact float64 GD steps a minute is the target (60 us a step)
    "imbalanced-K64-N16384-2e4": (lambda: FeaturesConfig.make(64, 16384, "imbalanced:0.5", "1"),
                                  20_000, F64, 1.2),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(CASES), action="append")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    start = time.perf_counter()
    kernels.quadrature(np.zeros((1, 2)), np.array([[0.5, 0.5]]), np.ones((1, 2)), 4, ("loss",),
                       de_grid(F64))
    print(f"compiled kernel load (compile or cache read): {time.perf_counter() - start:.2f} s")
    print(f"{'case':<28} {'path':<9} {'seconds':>9} {'target':>7}  verdict")
    for name in args.only or CASES:
        make, steps, backend, target = CASES[name]
        config = make()
        for path in (("numpy", "compiled") if not backend.is_mp else ("mp",)):
            best = float("inf")
            with kernels.use_compiled(path != "numpy"):
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    simulate(config, steps, every=max(steps // 100, 1), backend=backend)
                    best = min(best, time.perf_counter() - start)
            verdict = "met" if best <= target else "MISSED"
            rate = steps / best * 60
            print(f"{name:<28} {path:<9} {best:>9.2f} {target:>7.1f}  {verdict}  "
                  f"({rate:.3g} steps a minute)", flush=True)


if __name__ == "__main__":
    main()
