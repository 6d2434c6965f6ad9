"""Checks: claims and quantities per setting, verdicts, the report and the command line."""
from .cli import main
from .derivation import render
from .registry import all_claims, known_quantities, measure_any

__all__ = ["main", "render", "all_claims", "known_quantities", "measure_any"]
