"""``--where`` clauses: a region narrowed, pinned or tied by the user, without code run from text.

A clause is ``VAR=LO..HI`` (a range), ``VAR=VALUE`` (a fixed value) or ``VAR=LAW`` (an expression
in the other variables, e.g. ``N=4*K**2`` or ``epsilon=1/K``).  Numbers and laws go through the
safe parser (:mod:`checks.expressions`).  A range or value replaces the region's own range of the
variable; a law (or a value for a variable the region derives, such as multihead's ``H``) is
applied to every configuration the region produces, in dependency order, after the variables it
reads; a variable with a value or a law is no longer swept, and a swept variable carries the laws
that read it along (``epsilon=1/K`` sweeps a diagonal).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import sympy as sp

from .bounds import bound_value
from .claims import Region
from .expressions import ExpressionError, parse_expression

__all__ = ["WhereError", "restrict", "Restricted", "clause_variable"]


class WhereError(ValueError):
    """A ``--where`` clause that cannot be applied (one line)."""


def clause_variable(clause: str) -> str:
    """The variable a clause ``VAR=...`` is about (the whole text when it has no ``=``)."""
    return clause.split("=", 1)[0].strip() if "=" in clause else clause


def _number(text: str, var: str) -> float:
    try:
        expr = parse_expression(text, {})
    except ExpressionError as exc:
        raise WhereError(f"--where {var}: {exc}") from None
    value = float(expr)
    if not math.isfinite(value):
        raise WhereError(f"--where {var}: {text!r} is not a finite number")
    return value


def _in_domain(region, var: str, value: float, integer: bool) -> float | int:
    if not value > 0:
        raise WhereError(f"--where {var}: {value:g} is outside the variable's domain (positive)")
    lo, hi = region.DOMAIN.get(var, (0, math.inf))
    if not lo < value < hi:
        raise WhereError(f"--where {var}: {value:g} is outside the variable's domain "
                         f"({lo:g}, {hi:g})")
    if integer:
        if value != int(value):
            raise WhereError(f"--where {var}: {value:g} is not a whole number")
        return int(value)
    return value


def restrict(region, clauses, variables) -> "Restricted":
    """``region`` with ``clauses`` applied (see the module docstring; on a region restricted
    already, a new clause on a variable replaces its old one); :class:`WhereError` for an unknown
    variable, an empty range, a law with a cycle or a value outside the domain."""
    from .bounds import symbols

    if isinstance(region, Restricted):     # a restricted region: its clauses, then these ones
        new = {clause_variable(c) for c in clauses if isinstance(c, str)}
        kept = [c for c in region.clauses if clause_variable(c) not in new]
        region, clauses = region.inner, kept + list(clauses)
    variables = tuple(variables)
    names = {f.name: f for f in fields(region)}
    updates, laws, fixed = {}, {}, set()
    for clause in clauses:
        if not isinstance(clause, str) or "=" not in clause:
            raise WhereError(f"--where {clause!r}: write VAR=LO..HI, VAR=VALUE or VAR=LAW")
        var, text = clause_variable(clause), clause.split("=", 1)[1].strip()
        if var not in variables:
            raise WhereError(f"--where {clause!r}: unknown variable {var!r} (variables: "
                             f"{', '.join(variables)})")
        if var in updates or var in laws:
            raise WhereError(f"--where {var}: given twice")
        current = getattr(region, var, None) if var in names else None
        integer = var in region.INTEGER or (isinstance(current, tuple) and
                                            all(isinstance(x, int) for x in current))
        if ".." in text:
            lo_text, hi_text = text.split("..", 1)
            lo, hi = _number(lo_text, var), _number(hi_text, var)
            if lo > hi:
                raise WhereError(f"--where {var}: the range {text} is empty")
            lo, hi = _in_domain(region, var, lo, integer), _in_domain(region, var, hi, integer)
            if not isinstance(current, tuple):
                raise WhereError(f"--where {var}: this region takes a value or a law for {var}, "
                                 f"not a range")
            updates[var] = (lo, hi)
            if lo == hi:
                fixed.add(var)
            continue
        try:
            expr = parse_expression(text, symbols(v for v in variables if v != var))
        except ExpressionError as exc:
            if var in str(exc) and "unknown name" in str(exc):
                raise WhereError(f"--where {var}: a law cannot use {var} itself") from None
            raise WhereError(f"--where {var}: {exc}") from None
        if not expr.free_symbols:                           # a fixed value
            value = _in_domain(region, var, float(expr), integer)
            fixed.add(var)
            if isinstance(current, tuple):
                updates[var] = (value, value)
                continue
            if var in names and isinstance(current, (int, float)):
                updates[var] = value
                continue
        laws[var] = expr
        fixed.add(var)
    order = _order(laws)
    inner = replace(region, **updates) if updates else region
    return Restricted(inner, tuple((v, laws[v]) for v in order), tuple(sorted(fixed)),
                      tuple(clauses))


def _order(laws: dict) -> list[str]:
    """The laws' variables, each after those it reads; :class:`WhereError` on a cycle."""
    order, state = [], {}

    def visit(var, path):
        if state.get(var) == "done":
            return
        if state.get(var) == "open":
            cycle = " -> ".join(path[path.index(var):] + [var])
            raise WhereError(f"--where: the laws have a cycle ({cycle})")
        state[var] = "open"
        for s in sorted(laws[var].free_symbols, key=str):
            if s.name in laws:
                visit(s.name, path + [var])
        state[var] = "done"
        order.append(var)

    for var in sorted(laws):
        visit(var, [])
    return order


@dataclass(frozen=True)
class Restricted(Region):
    """A region with the user's clauses: the inner region's draws, centre and sweeps, with the
    laws applied and the fixed variables left out of the sweep (the sweep points and axes are
    :class:`Region`'s, over these)."""

    inner: object
    laws: tuple
    fixed: tuple
    clauses: tuple

    @property
    def sweep(self) -> tuple:
        return tuple(v for v in self.inner.sweep if v not in self.fixed)

    @property
    def INTEGER(self):
        return self.inner.INTEGER

    @property
    def INVERSE(self):
        return self.inner.INVERSE

    @property
    def DOMAIN(self):
        return self.inner.DOMAIN

    def apply(self, params: dict) -> dict:
        for var, expr in self.laws:
            value = bound_value(expr, params)
            if not math.isfinite(value) or value <= 0:
                raise WhereError(f"--where {var}={expr} gives {value:g} at "
                                 f"{_show(params)}: not a positive finite number")
            if isinstance(params.get(var), int) or var in self.inner.INTEGER:
                value = int(math.ceil(value - 1e-9))
            params[var] = value
        return params

    def strategy(self):
        return self.inner.strategy().map(self.apply)

    def base(self) -> dict:
        return self.apply(self.inner.base())

    def sweep_values(self, var: str, points: int) -> list:
        return self.inner.sweep_values(var, points)

    def extend_values(self, var: str, values: list, count: int) -> list:
        return self.inner.extend_values(var, values, count)

    def at(self, params: dict, var: str, value) -> dict:
        return self.apply(self.inner.at(params, var, value))


    def describe(self) -> str:
        laws = ", ".join(f"{v} = {sp.sstr(e)}" for v, e in self.laws)
        return self.inner.describe() + (f"; {laws}" if laws else "")


def _show(params: dict) -> str:
    return ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}"
                     for k, v in params.items())
