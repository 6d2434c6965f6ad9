"""Numbers given by a user: exact fractions, whole numbers and positive reals, each with a one-line
:class:`~numerics.errors.ConfigError` naming what was wrong.  Shared by every setting."""
from __future__ import annotations

import math
from fractions import Fraction

from .errors import ConfigError

__all__ = ["fraction", "whole_number", "positive_fraction", "positive_real", "MAX_CHARACTERS"]

#: A number longer than this is refused before it is read (a billion digits would take minutes
#: and gigabytes to parse).
MAX_CHARACTERS = 100


def _short(text) -> str:
    text = str(text)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def fraction(text, what: str) -> Fraction:
    """A finite number given as a string, int, float or Fraction, as an exact fraction."""
    if isinstance(text, Fraction):
        return text
    if isinstance(text, bool):
        raise ConfigError(f"{what} must be a number, got {text!r}")
    if isinstance(text, (int, float)):
        if isinstance(text, float) and not math.isfinite(text):
            raise ConfigError(f"{what} must be a finite number, got {text!r}")
        return Fraction(text)
    if len(str(text)) > MAX_CHARACTERS:
        raise ConfigError(f"{what} must be a number of at most {MAX_CHARACTERS} characters, got "
                          f"{_short(text)}")
    try:
        return Fraction(str(text).strip())
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"{what} must be a finite number, got {text!r}") from None


def positive_fraction(text, what: str) -> Fraction:
    """:func:`fraction`, required to be > 0."""
    value = fraction(text, what)
    if value <= 0:
        raise ConfigError(f"{what} must be a positive finite number, got {text}")
    return value


def positive_real(text, what: str) -> float:
    """A positive finite float."""
    if len(str(text)) > MAX_CHARACTERS:
        raise ConfigError(f"{what} must be a number of at most {MAX_CHARACTERS} characters, got "
                          f"{_short(text)}")
    try:
        value = float(str(text).strip())
    except ValueError:
        raise ConfigError(f"{what} must be a positive finite number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{what} must be a positive finite number, got {text!r}")
    return value


def whole_number(x, what: str, at_least: int | None = None, at_most: int | None = None) -> int:
    """``x`` as a whole number in ``[at_least, at_most]``; :class:`ConfigError` otherwise."""
    if isinstance(x, bool):
        raise ConfigError(f"{what} must be a whole number, got {x!r}")
    if isinstance(x, int):
        value = x
    else:
        if len(str(x)) > MAX_CHARACTERS:
            raise ConfigError(f"{what} must be a whole number of at most {MAX_CHARACTERS} "
                              f"characters, got {_short(x)}")
        try:
            f = Fraction(str(x).strip())
        except (ValueError, ZeroDivisionError):
            raise ConfigError(f"{what} must be a whole number, got {x!r}") from None
        if f.denominator != 1:
            raise ConfigError(f"{what} must be a whole number, got {x!r}")
        value = int(f)
    if at_least is not None and value < at_least:
        raise ConfigError(f"{what} must be at least {at_least}, got {value}")
    if at_most is not None and value > at_most:
        raise ConfigError(f"{what} must be at most {at_most}, got {value}")
    return value
