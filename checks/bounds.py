"""Bound expressions: SymPy expressions in the configuration variables, parsed with one-line errors."""
from __future__ import annotations

import sympy as sp
from sympy.parsing.sympy_parser import parse_expr, standard_transformations

__all__ = ["BoundError", "symbols", "parse_bound", "evaluate_bound"]


def symbols(names) -> dict:
    """Positive SymPy symbols for the variable ``names`` (a bound's variables are sizes, rates
    and accuracies: positive)."""
    return {name: sp.Symbol(name, positive=True) for name in names}


_FUNCTIONS = {"log": sp.log, "sqrt": sp.sqrt, "exp": sp.exp, "Min": sp.Min, "Max": sp.Max}


class BoundError(ValueError):
    """A bound that cannot be parsed or uses an unknown symbol."""


def parse_bound(text: str, variables) -> sp.Expr:
    """Parse ``text`` into a SymPy expression over ``variables`` (names; and log, sqrt, exp, Min,
    Max)."""
    if not isinstance(text, str) or not text.strip():
        raise BoundError("the bound is empty")
    variables = symbols(variables)
    local = dict(variables) | _FUNCTIONS
    try:
        expr = parse_expr(text, local_dict=local, global_dict={"Integer": sp.Integer,
                          "Float": sp.Float, "Rational": sp.Rational, "Symbol": sp.Symbol},
                          transformations=standard_transformations, evaluate=True)
    except NameError as exc:
        raise BoundError(f"unknown name in bound {text!r} ({exc}); use "
                         f"{', '.join(variables)}, log, sqrt, exp, Min, Max") from None
    except Exception as exc:   # SyntaxError, TokenError, TypeError from malformed input
        raise BoundError(f"malformed bound {text!r} ({type(exc).__name__})") from None
    if not isinstance(expr, sp.Expr):
        raise BoundError(f"malformed bound {text!r}: not an expression")
    unknown = sorted(str(s) for s in expr.free_symbols if s not in set(variables.values()))
    if unknown:
        raise BoundError(f"unknown symbol {', '.join(unknown)} in bound; use "
                         f"{', '.join(variables)}")
    undefined = [f for f in expr.atoms(sp.Function) if type(f) not in
                 (sp.log, sp.exp, sp.Min, sp.Max) and not isinstance(f, sp.Pow)]
    if undefined:
        raise BoundError(f"unknown function {undefined[0].func} in bound")
    return expr


def evaluate_bound(expr: sp.Expr, params: dict) -> float:
    """The bound's value at ``params`` (a dict from variable names to numbers)."""
    value = expr.subs({s: params[s.name] for s in expr.free_symbols if s.name in params})
    return float(sp.N(value))
