"""Numerics: the settings' dynamics (exact population GD, gradient flow) in float64 and arbitrary
precision."""
from . import classification, features, gauss, multihead
from .backend import F64, MP, Backend, backend_for
from .prompts import Columns, choose_method, expect

__all__ = ["F64", "MP", "Backend", "backend_for", "Columns", "choose_method", "expect",
           "classification", "features", "gauss", "multihead"]
