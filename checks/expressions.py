"""Expressions a user writes (bounds, region laws, event conditions), parsed without running code.

The text is parsed by Python's ``ast`` (which builds a tree and executes nothing) and the tree is
walked against a whitelist; the SymPy expression is built node by node from it.  Allowed:

* numbers (integers and decimals, finite), the names given by the caller, ``+ - * / **``, unary
  minus and plus, parentheses;
* calls of ``log, sqrt, exp, Min, Max`` (positional arguments only);
* where a condition is expected: comparisons ``< <= > >=`` (chained ones mean *and*) joined by
  ``and`` / ``or``;
* indexing of the observables the caller names, ``A[k]``, ``B[k, n]``, with indices built from
  whole numbers and index names.

Everything else (attributes, strings, lambdas, comprehensions, keyword arguments, subscripts of
anything else, ...) is refused with one line, as are texts longer than :data:`MAX_LENGTH`, trees
deeper than :data:`MAX_DEPTH`, and powers whose exponent is a number larger than
:data:`MAX_EXPONENT` in size (``10**10**10`` would never finish).  No ``eval``, ``sympify`` or
``parse_expr`` is ever called on the text.
"""
from __future__ import annotations

import ast
import math
from fractions import Fraction

import sympy as sp

__all__ = ["ExpressionError", "FUNCTIONS", "MAX_LENGTH", "MAX_DEPTH", "MAX_EXPONENT",
           "parse_expression", "parse_condition"]

MAX_LENGTH = 2000
MAX_DEPTH = 60
MAX_EXPONENT = 1000
MAX_DIGITS = 400

#: Functions a user may call, with their number of arguments (None: two or more).
FUNCTIONS = {"log": (sp.log, 1), "sqrt": (sp.sqrt, 1), "exp": (sp.exp, 1), "Min": (sp.Min, None),
             "Max": (sp.Max, None)}

_BINARY = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
           ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b}
_COMPARE = {ast.Lt: sp.Lt, ast.LtE: sp.Le, ast.Gt: sp.Gt, ast.GtE: sp.Ge}
_SYMBOLS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==",
            ast.NotEq: "!=", ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}


class ExpressionError(ValueError):
    """A text that is not an expression of the allowed kind (one line)."""


class _Builder:
    def __init__(self, text, names, observables, indices, condition):
        self.text = text
        self.names = names
        self.observables = observables
        self.indices = indices
        self.condition = condition

    def fail(self, why: str):
        raise ExpressionError(f"{why} in {_short(self.text)!r}")

    # -- conditions --------------------------------------------------------------------------
    def boolean(self, node, depth):
        self.deep(depth)
        if isinstance(node, ast.BoolOp):
            parts = [self.boolean(v, depth + 1) for v in node.values]
            return sp.And(*parts) if isinstance(node.op, ast.And) else sp.Or(*parts)
        if isinstance(node, ast.Compare):
            left = self.value(node.left, depth + 1)
            parts = []
            for op, right_node in zip(node.ops, node.comparators):
                if type(op) not in _COMPARE:
                    self.fail(f"the comparison {_SYMBOLS.get(type(op), '?')!r} is not allowed "
                              f"(use <, <=, >, >=)")
                right = self.value(right_node, depth + 1)
                parts.append(_COMPARE[type(op)](left, right))
                left = right
            return sp.And(*parts)
        self.fail("a condition (a comparison with <, <=, >, >=) is expected")

    # -- values ------------------------------------------------------------------------------
    def value(self, node, depth):
        self.deep(depth)
        if isinstance(node, ast.Constant):
            return self.number(node.value)
        if isinstance(node, ast.Name):
            if node.id in self.names:
                return self.names[node.id]
            if node.id in self.indices:
                return self.indices[node.id]
            self.fail(f"unknown name {node.id!r} (allowed: {self.allowed()})")
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return -self.value(node.operand, depth + 1)
            if isinstance(node.op, ast.UAdd):
                return self.value(node.operand, depth + 1)
            self.fail(f"the operator {type(node.op).__name__} is not allowed")
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Pow):
                return self.power(node, depth)
            if type(node.op) not in _BINARY:
                self.fail(f"the operator {type(node.op).__name__} is not allowed "
                          f"(use + - * / **)")
            return _BINARY[type(node.op)](self.value(node.left, depth + 1),
                                          self.value(node.right, depth + 1))
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        if isinstance(node, ast.Subscript):
            return self.subscript(node, depth)
        if isinstance(node, (ast.Compare, ast.BoolOp)):
            self.fail("a comparison is not allowed here (a value is expected)")
        if isinstance(node, ast.Attribute):
            self.fail("attribute access is not allowed")
        self.fail(f"{type(node).__name__} is not allowed")

    def number(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(f"the literal {_short(repr(value))} is not allowed (numbers only)")
        if isinstance(value, float):
            if not math.isfinite(value):
                self.fail("a number is not finite")
            exact = Fraction(repr(value))
            return sp.Rational(exact.numerator, exact.denominator)
        if len(str(abs(value))) > MAX_DIGITS:
            self.fail(f"a number has more than {MAX_DIGITS} digits")
        return sp.Integer(value)

    def power(self, node, depth):
        base = self.value(node.left, depth + 1)
        exponent = self.value(node.right, depth + 1)
        if exponent.is_number:
            size = abs(float(exponent)) if exponent.is_real else math.inf
            if not size <= MAX_EXPONENT:
                self.fail(f"an exponent larger than {MAX_EXPONENT} in size")
            if base.is_number and base != 0 and \
                    abs(float(exponent)) * abs(math.log10(abs(float(base)))) > MAX_DIGITS:
                self.fail(f"a power with more than {MAX_DIGITS} digits")
        return base ** exponent

    def call(self, node, depth):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            what = repr(node.func.id) if isinstance(node.func, ast.Name) else "a method"
            self.fail(f"calling {what} is not allowed (allowed: {', '.join(FUNCTIONS)})")
        if node.keywords:
            self.fail("keyword arguments are not allowed")
        fn, arity = FUNCTIONS[node.func.id]
        if any(isinstance(a, ast.Starred) for a in node.args):
            self.fail("starred arguments are not allowed")
        if (arity is not None and len(node.args) != arity) or (arity is None and len(node.args) < 2):
            self.fail(f"{node.func.id} takes {arity or 'two or more'} argument"
                      f"{'s' if arity != 1 else ''}")
        return fn(*(self.value(a, depth + 1) for a in node.args))

    def subscript(self, node, depth):
        if not isinstance(node.value, ast.Name) or node.value.id not in self.observables:
            self.fail(f"indexing is allowed only on the observables "
                      f"({', '.join(self.observables) or 'none here'})")
        name = node.value.id
        index = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if len(index) != self.observables[name]:
            self.fail(f"{name} takes {self.observables[name]} ind"
                      f"{'ex' if self.observables[name] == 1 else 'ices'}")
        idx = [self.index(i, depth + 1) for i in index]
        return sp.Indexed(sp.IndexedBase(name), *idx)

    def index(self, node, depth):
        value = self.value(node, depth)
        allowed = set(self.indices.values())
        if not (value.free_symbols <= allowed) or not (value.is_integer or value.free_symbols):
            self.fail("an index must be a whole number or built from "
                      f"{', '.join(self.indices) or 'whole numbers'}")
        return value

    def deep(self, depth):
        if depth > MAX_DEPTH:
            self.fail(f"nesting deeper than {MAX_DEPTH}")

    def allowed(self):
        return ", ".join([*self.names, *self.indices, *FUNCTIONS]) or "numbers only"


def _short(text: str, n: int = 80) -> str:
    return text if len(text) <= n else text[:n - 3] + "..."


def _tree(text: str):
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("the expression is empty")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"the expression is longer than {MAX_LENGTH} characters")
    if "\n" in text.strip() or "\r" in text:
        raise ExpressionError(f"the expression must be one line: {_short(text)!r}")
    try:
        return ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError) as exc:
        raise ExpressionError(f"malformed expression {_short(text)!r} "
                              f"({getattr(exc, 'msg', exc)})") from None
    except (RecursionError, MemoryError):
        raise ExpressionError(f"the expression nests too deeply: {_short(text)!r}") from None


def parse_expression(text: str, names: dict, observables: dict | None = None,
                     indices: dict | None = None) -> sp.Expr:
    """The SymPy expression of ``text``.  ``names``: name -> SymPy symbol (or number);
    ``observables``: name -> number of indices; ``indices``: index name -> SymPy symbol.
    Raises :class:`ExpressionError` (one line) for anything outside the whitelist."""
    node = _tree(text)
    builder = _Builder(text, dict(names), dict(observables or {}), dict(indices or {}), False)
    try:
        expr = builder.value(node, 0)
    except RecursionError:
        raise ExpressionError(f"the expression nests too deeply: {_short(text)!r}") from None
    if not isinstance(expr, sp.Expr):
        raise ExpressionError(f"not a value: {_short(text)!r}")
    if expr.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
        raise ExpressionError(f"the expression is not finite (a division by zero?): "
                              f"{_short(text)!r}")
    return expr


def parse_condition(text: str, names: dict, observables: dict | None = None,
                    indices: dict | None = None):
    """The SymPy relation (or ``And`` / ``Or`` of relations) of ``text``; as
    :func:`parse_expression`, with comparisons and ``and`` / ``or``."""
    node = _tree(text)
    builder = _Builder(text, dict(names), dict(observables or {}), dict(indices or {}), True)
    try:
        return builder.boolean(node, 0)
    except RecursionError:
        raise ExpressionError(f"the expression nests too deeply: {_short(text)!r}") from None
