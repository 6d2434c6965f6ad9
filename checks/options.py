"""Command-line options that several settings' ``simulate`` commands share, and their parsing."""
from __future__ import annotations

import sys

from ..numerics.backend import backend_for
from ..numerics.numbers import whole_number

from .claims import Option

__all__ = ["GD_OPTIONS", "precision", "backend_option", "progress_wanted"]

#: Options of a run of GD steps recorded to a JSON file.
GD_OPTIONS = (
    Option("--steps", "number of GD steps (>= 0)", required=True),
    Option("--every", "record every R-th step (and the last)", "1"),
    Option("--precision", "significant digits of arbitrary-precision arithmetic (default "
           "float64)"),
    Option("--library", "arbitrary-precision number type (with --precision)", "mpfr",
           choices=("mpfr", "mpmath")),
    Option("--out", "output JSON file", required=True),
    Option("--quiet", "no progress bar, no summary", action="store_true"),
)


def precision(text) -> int | None:
    """``--precision``: None (float64) or a whole number of digits >= 1."""
    return None if text is None else whole_number(text, "precision (digits)", at_least=1)


def backend_option(args):
    """The number type of ``--precision`` and ``--library``."""
    return backend_for(precision(args.precision), args.library)


def progress_wanted(args) -> bool:
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


