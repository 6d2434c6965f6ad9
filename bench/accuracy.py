"""Measured errors of the features numerics against their references (figures in the README).

    python bench/accuracy.py

Each line: what is compared, against what, and the largest absolute difference measured.
"""
from __future__ import annotations

import numpy as np

from icl_verifier.numerics import F64, MP, Columns, expect
from icl_verifier.numerics.features import FeaturesConfig, simulate
from icl_verifier.theory.features import QUANTITIES

NAMES = tuple(QUANTITIES)


def _random_columns(K, rng, be=F64):
    p = rng.dirichlet(np.ones(K))
    z = rng.normal(scale=1.5, size=(K, K))
    order = [[k] + [n for n in range(K) if n != k] for k in range(K)]
    with be.context():
        pa = be.array([[repr(float(p[n])) for n in row] for row in order])
        pa = pa / np.sum(pa[0])
        za = be.array([[repr(float(z[n, k])) for n in row] for k, row in enumerate(order)])
    return Columns(z=za, p=pa, mult=np.ones((K, K), dtype=np.int64))


def _diff(a, b, be=F64):
    with be.context():
        return max(float(max(abs(x - y) for x, y in zip(np.ravel(a[q]), np.ravel(b[q]))))
                   for q in NAMES)


def main() -> None:
    rng = np.random.default_rng(2024)
    worst = 0.0
    for _ in range(20):
        cols = _random_columns(int(rng.integers(2, 5)), rng)
        N = int(rng.integers(1, 8))
        worst = max(worst, _diff(expect(cols, N, NAMES, "enumeration"),
                                 expect(cols, N, NAMES, "quadrature")))
    print(f"quadrature vs enumeration, float64, 20 random (K<=4, N<=7): {worst:.1e}")

    grouped = Columns(z=np.array([[2.0, -2.0 / 7]]), p=np.array([[1 / 8, 1 / 8]]),
                      mult=np.array([[1, 7]]))
    print("quadrature vs exact group sum, balanced K=8, N=10^4: "
          f"{_diff(expect(grouped, 10_000, NAMES, 'quadrature'), expect(grouped, 10_000, NAMES, 'groups')):.1e}")

    be = MP(40)
    cols = _random_columns(3, rng, be)
    print("quadrature vs enumeration, 40 digits, K=3, N=5: "
          f"{_diff(expect(cols, 5, NAMES, 'enumeration', be), expect(cols, 5, NAMES, 'quadrature', be), be):.1e}")

    print("simulator vs brute-force GD on explicit d x d Q: python -m tests.reference.features "
          "(the reference lives with the tests)")

    config = FeaturesConfig.make(4, 40, "0.4,0.3,0.2,0.1", "2")
    lo = simulate(config, 200, every=20)
    hi = simulate(config, 200, every=20, backend=MP(30))
    print("float64 vs 30 digits, K=4, N=40, 200 steps: logits "
          f"{np.max(np.abs(lo.logits - hi.logits)):.1e}, loss {np.max(np.abs(lo.loss - hi.loss)):.1e}")


if __name__ == "__main__":
    main()
