"""Command-line options that several settings' ``simulate`` commands share, and their parsing."""
from __future__ import annotations

import os
import sys

from ..numerics.backend import backend_for
from ..numerics.errors import ConfigError
from ..numerics.numbers import whole_number

from .claims import Option

__all__ = ["GD_OPTIONS", "precision", "backend_option", "progress_wanted"]

#: Options of a run of GD steps recorded to a JSON file.
GD_OPTIONS = (
    Option("--steps", "number of GD steps (>= 0)", required=True),
    Option("--every", "record every R-th step (and the last)", "1"),
    Option("--precision", "significant digits of arbitrary-precision arithmetic (default "
           "float64)"),
    Option("--library", "arbitrary-precision number type (with --precision; default mpfr)",
           None, choices=("mpfr", "mpmath")),
    Option("--out", "output JSON file", required=True),
    Option("--quiet", "no progress bar, no summary", action="store_true"),
)


#: A soft limit on ``--precision``: more digits make every operation slower and the rules larger;
#: the environment variable ``ICL_VERIFY_MAX_DIGITS`` lifts it on purpose.
MAX_DIGITS = 200


def precision(text) -> int | None:
    """``--precision``: None (float64) or a whole number of digits from 1 to the soft limit."""
    if text is None:
        return None
    limit = MAX_DIGITS
    raw = os.environ.get("ICL_VERIFY_MAX_DIGITS")
    if raw:
        limit = whole_number(raw, "ICL_VERIFY_MAX_DIGITS", at_least=1)
    digits = whole_number(text, "precision (digits)", at_least=1)
    if digits > limit:
        raise ConfigError(f"precision (digits) must be at most {limit}, got {digits} (a soft "
                          f"limit: set ICL_VERIFY_MAX_DIGITS to lift it)")
    return digits


def backend_option(args):
    """The number type of ``--precision`` and ``--library`` (which needs ``--precision``)."""
    digits = precision(args.precision)
    if digits is None and getattr(args, "library", None) is not None:
        raise ConfigError("--library chooses the arbitrary-precision library: give --precision "
                          "too")
    return backend_for(digits, args.library or "mpfr")


def progress_wanted(args) -> bool:
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


