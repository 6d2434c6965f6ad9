"""Bound expressions: SymPy expressions in the configuration variables, parsed by the safe parser
of :mod:`checks.expressions` (no code runs from the text) with one-line errors."""
from __future__ import annotations

import math
from functools import lru_cache

import mpmath
import sympy as sp

from .expressions import ExpressionError, parse_expression

__all__ = ["BoundError", "symbols", "parse_bound", "bound_value", "evaluate_bound"]


def symbols(names) -> dict:
    """Positive SymPy symbols for the variable ``names`` (a bound's variables are sizes, rates
    and accuracies: positive)."""
    return {name: sp.Symbol(name, positive=True) for name in names}


class BoundError(ValueError):
    """A bound that cannot be parsed, uses an unknown symbol, or is not finite and positive."""


def parse_bound(text: str, variables) -> sp.Expr:
    """Parse ``text`` into a SymPy expression over ``variables`` (names; and log, sqrt, exp, Min,
    Max)."""
    if not isinstance(text, str) or not text.strip():
        raise BoundError("the bound is empty")
    try:
        return parse_expression(text, symbols(variables))
    except ExpressionError as exc:
        raise BoundError(f"bound: {exc}") from None


@lru_cache(maxsize=256)
def _compiled(expr: sp.Expr):
    names = sorted(s.name for s in expr.free_symbols)
    return names, sp.lambdify([sp.Symbol(n, positive=True) for n in names], expr, "mpmath")


def bound_value(expr: sp.Expr, params: dict) -> float:
    """``expr`` at ``params`` (a dict from variable names to numbers), evaluated in floating
    point (mpmath at 30 digits, so no exact power is ever expanded); NaN where it has no real
    value."""
    names, fn = _compiled(expr)
    try:
        with mpmath.workdps(30):
            value = fn(*(mpmath.mpf(params[n]) for n in names))
            return math.nan if isinstance(value, mpmath.mpc) else float(value)
    except (ValueError, ZeroDivisionError, OverflowError, TypeError):
        return math.nan


def evaluate_bound(expr: sp.Expr, params: dict, positive: bool = True) -> float:
    """The bound's value at ``params``; :class:`BoundError` (one line, naming the configuration)
    where it is not finite, or (``positive``: an O(.) bound) not positive."""
    value = bound_value(expr, params)
    if not math.isfinite(value) or (positive and value <= 0):
        names = sorted(s.name for s in expr.free_symbols)
        raise BoundError(f"the bound {expr} is {value:g} at {_where(params, names)}: it must be "
                         f"finite{' and positive' if positive else ''} on the region")
    return value


def _where(params, names) -> str:
    return ", ".join(f"{n} = {params[n]:g}" if isinstance(params[n], float) else f"{n} = {params[n]}"
                     for n in names) or "every configuration"
