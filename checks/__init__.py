"""Checks: the command line, renderings of the derivations, and (next) claims and verdicts."""
from .cli import main
from .derivation import render

__all__ = ["main", "render"]
