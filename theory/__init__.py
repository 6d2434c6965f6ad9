"""Symbolic derivations (SymPy) of the three settings: dynamics, integrands, predictions."""
from . import features, symmetric

__all__ = ["features", "symmetric"]
