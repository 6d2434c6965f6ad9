"""Symmetric sums over a set of interchangeable features.

A polynomial that is symmetric in the features outside a few named *roles* is a combination of
monomial symmetric functions ``m_lam(x_O) = sum over distinct o_1..o_q in O of prod x_{o_i}^{lam_i}``
(each distinct monomial once).  Sums over *distinct* indices turn into products of plain sums over
``O`` by Moebius inversion on the lattice of set partitions:

    sum_{o_1..o_q distinct} prod_i f_i(o_i) = sum_{pi} mu(pi) prod_{B in pi} sum_o prod_{i in B} f_i(o),
    mu(pi) = prod_{B in pi} (-1)^{|B|-1} (|B|-1)!.

Both the derivation (theory) and the reference evaluators (numerics) use these two facts.
"""
from __future__ import annotations

from collections import Counter
from functools import lru_cache
from math import factorial, prod

__all__ = ["set_partitions", "moebius", "automorphisms", "distinct_sum_expansion"]


def set_partitions(items: tuple) -> list[list[tuple]]:
    """All set partitions of ``items`` (a tuple), each a list of blocks (tuples)."""
    if not items:
        return [[]]
    first, rest = items[0], items[1:]
    out = []
    for part in set_partitions(rest):
        out.append([(first,)] + part)
        for i in range(len(part)):
            out.append(part[:i] + [(first,) + part[i]] + part[i + 1:])
    return out


def moebius(partition: list[tuple]) -> int:
    """Moebius function mu(0, pi) of the partition lattice: prod_B (-1)^{|B|-1} (|B|-1)!."""
    return prod((-1) ** (len(b) - 1) * factorial(len(b) - 1) for b in partition)


def automorphisms(lam: tuple[int, ...]) -> int:
    """Number of orderings of the exponent multiset ``lam`` that give the same monomial."""
    return prod(factorial(c) for c in Counter(lam).values())


@lru_cache(maxsize=None)
def distinct_sum_expansion(q: int) -> tuple[tuple[int, tuple[tuple[int, ...], ...]], ...]:
    """Sum over ``q`` distinct indices as (mu, blocks) pairs, blocks given as slot indices."""
    return tuple((moebius(p), tuple(p)) for p in set_partitions(tuple(range(q))))
