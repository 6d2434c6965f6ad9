"""Command lines for the tests: an argument list with some of its options changed."""
from __future__ import annotations


def changed(args, changes: dict) -> list:
    """``args`` with each ``--flag: value`` of ``changes`` set (added when missing; ``None``
    drops the flag and its value)."""
    args = list(args)
    for flag, value in changes.items():
        if flag in args:
            i = args.index(flag)
            if value is None:
                del args[i:i + 2]
            else:
                args[i + 1] = value
        elif value is not None:
            args += [flag, value]
    return args


def flags(**changes) -> dict:
    """Keyword changes as flags: ``t_end="2"`` is ``{"--t-end": "2"}``."""
    return {"--" + key.replace("_", "-"): value for key, value in changes.items()}
