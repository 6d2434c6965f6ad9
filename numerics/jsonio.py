"""JSON output shared by every setting: an atomic writer, and :class:`Record`, the save/load of a
trajectory dataclass (arrays as nested lists, exact numbers as decimal strings)."""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile

import numpy as np

__all__ = ["write_json", "read_json", "Record"]


def write_json(path: str, data, indent: int | None = None) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file in the same folder: the file
    appears complete or not at all."""
    text = json.dumps(data, indent=indent, default=_plain)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".icl-verify-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        mask = os.umask(0)              # mkstemp makes 0600; give the file the user's umask
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _plain(x):
    """numpy scalars and arrays, and other real numbers, as JSON values."""
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return float(x)     # Fractions, SymPy and MPFR numbers


def read_json(path: str) -> dict:
    """A JSON object from ``path``; ``ValueError`` in one line when it is not one."""
    try:
        with open(path) as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise ValueError(f"{path} cannot be read ({exc.strerror or exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return data


def _array(name: str, value, kind):
    """A rectangular array of numbers (or booleans); one-line ``ValueError`` naming the field."""
    def ok(x):
        if isinstance(x, list):
            return all(ok(y) for y in x)
        if kind is bool:
            return isinstance(x, bool)
        return x is None or (isinstance(x, (int, float)) and not isinstance(x, bool))
    if not ok(value):
        raise ValueError(f"the trajectory's field {name!r} must hold only "
                         f"{'booleans' if kind is bool else 'numbers'}")
    try:
        out = np.array(value, dtype=kind if kind is bool else float)
    except (ValueError, TypeError):
        raise ValueError(f"the trajectory's field {name!r} is not a rectangular array") from None
    return out


class Record:
    """Save and load for a trajectory dataclass.

    Fields named in ``ARRAYS`` are float arrays, in ``BOOL_ARRAYS`` boolean arrays, in ``SKIP``
    not saved; every other field is stored as it is.  ``exact`` (when present and not None) holds
    decimal strings of full-precision numbers and is kept as it is."""

    ARRAYS: tuple = ()
    BOOL_ARRAYS: tuple = ()
    SKIP: tuple = ()
    #: Arrays with one entry per recorded time (their length must be that of ``t``).
    PER_STEP: tuple = ()

    def to_json(self) -> dict:
        out = {}
        for f in dataclasses.fields(self):
            if f.name in self.SKIP:
                continue
            value = getattr(self, f.name)
            if f.name == "exact" and value is None:
                continue
            out[f.name] = value.tolist() if isinstance(value, np.ndarray) else value
        return out

    def save(self, path: str) -> None:
        """Write JSON atomically: the file appears complete or not at all."""
        write_json(path, self.to_json())

    @classmethod
    def from_json(cls, data: dict, **extra):
        names = [f.name for f in dataclasses.fields(cls) if f.name not in cls.SKIP]
        required = [f.name for f in dataclasses.fields(cls) if f.name not in cls.SKIP
                    and f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]
        missing = [n for n in required if n not in data]
        if missing:
            raise ValueError(f"the trajectory has no field {missing[0]!r}")
        values = {}
        for name in names:
            if name not in data:
                continue
            value = data[name]
            if name in cls.ARRAYS or name in cls.BOOL_ARRAYS:
                value = _array(name, value, bool if name in cls.BOOL_ARRAYS else float)
            values[name] = value
        t = data.get("t")
        if t is not None:
            if not isinstance(t, list) or not t or not all(
                    isinstance(x, (int, float)) and not isinstance(x, bool) for x in t):
                raise ValueError("the trajectory's field 't' must be a non-empty list of numbers")
            for name in cls.PER_STEP:
                if name in values and np.shape(values[name])[:1] != (len(t),):
                    raise ValueError(f"the trajectory's field {name!r} has "
                                     f"{np.shape(values[name])[:1] or 'no'} entries, not one per "
                                     f"recorded time ({len(t)})")
        return cls(**values, **extra)

    @classmethod
    def load(cls, path: str):
        """Read a saved trajectory."""
        return cls.from_json(read_json(path))
