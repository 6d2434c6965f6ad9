"""Symbolic derivations (SymPy) of the three settings: dynamics, integrands, predictions."""
from . import classification, features, multihead, symmetric

__all__ = ["classification", "features", "multihead", "symmetric"]
