"""Events a user writes as a condition over a setting's observables, compiled without running
code from the text: the first step (or time) at which the condition holds is a quantity.

A setting names its observables (name -> number of indices, 1-based as in the papers) and gives
``snapshot -> {name: array}``; a condition such as ``loss[k] - loss_star[k] <= epsilon`` is parsed
by :func:`checks.expressions.parse_condition` over them, the bound variables, ``t`` and the index
``k`` (the claim's feature), and compiled by ``lambdify`` to a predicate on a snapshot.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import sympy as sp

from .bounds import symbols
from .expressions import ExpressionError, parse_condition

__all__ = ["EventError", "compile_event"]


class EventError(ValueError):
    """A condition that cannot be an event of this setting (one line)."""


@lru_cache(maxsize=128)
def compile_event(condition: str, variables: tuple, observables: tuple, feature: int | None):
    """``predicate(values: dict) -> bool`` for ``condition``; ``values`` maps each observable to
    its array (0-based) and each variable and ``t`` to a number.  ``observables`` is a tuple of
    ``(name, number of indices)`` (0: a number); ``feature`` (1-based) is the value of ``k``."""
    k = sp.Symbol("k", integer=True, positive=True)
    names = symbols(variables) | {"t": sp.Symbol("t", nonnegative=True)} | {
        name: sp.Symbol(name, real=True) for name, count in observables if count == 0}
    indexed = {name: count for name, count in observables if count > 0}
    try:
        cond = parse_condition(condition, names, indexed, {"k": k})
    except ExpressionError as exc:
        raise EventError(f"event: {exc}") from None
    if cond.has(k):
        if feature is None:
            raise EventError("event: the condition uses k; give the claim's feature")
        cond = cond.subs(k, feature)
    bases = {b.name: b for b in cond.atoms(sp.IndexedBase)}
    shifted = {}
    for item in cond.atoms(sp.Indexed):
        idx = item.indices
        if any(not i.is_Integer or i < 1 for i in idx):
            raise EventError(f"event: the index of {item} must be a whole number >= 1")
        shifted[item] = sp.Symbol(f"_{item.base.name}_" + "_".join(str(int(i) - 1) for i in idx))
    plain = cond.xreplace(shifted)
    scalars = sorted((s for s in plain.free_symbols if s not in shifted.values()), key=str)
    items = sorted(shifted.items(), key=lambda kv: kv[1].name)
    fn = sp.lambdify([*scalars, *(sym for _, sym in items)], plain, "numpy")
    lookups = [(item.base.name, tuple(int(i) - 1 for i in item.indices)) for item, _ in items]
    scalar_names = [s.name for s in scalars]

    def predicate(values: dict) -> bool:
        args = [values[n] for n in scalar_names]
        try:
            args += [np.asarray(values[name])[idx] for name, idx in lookups]
        except IndexError:
            raise EventError(f"event: an index is out of range in {condition!r} "
                             f"(sizes: { {n: np.shape(values[n]) for n in bases} })") from None
        return bool(fn(*args))

    predicate.indices = lookups
    return predicate
