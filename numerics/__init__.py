"""Numerics: exact population GD of the three settings in float64 and arbitrary precision."""
from .backend import F64, MP, Backend, backend_for
from .prompts import Columns, choose_method, expect

__all__ = ["F64", "MP", "Backend", "backend_for", "Columns", "choose_method", "expect"]
