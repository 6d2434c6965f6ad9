"""Atomic JSON output: a file appears complete or not at all."""
from __future__ import annotations

import json
import os
import tempfile

__all__ = ["write_json"]


def write_json(path: str, data) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file in the same folder."""
    text = json.dumps(data)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".icl-verify-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
