"""Numerics: the settings' dynamics (exact population GD, gradient flow) in float64 and arbitrary
precision.  The shared core: :mod:`numerics.backend` (number types), :mod:`numerics.numbers`
(parsing with one-line errors), :mod:`numerics.jsonio` (atomic JSON, trajectory records),
:mod:`numerics.errors`; one module per setting."""
from . import classification, features, gauss, multihead
from .backend import F64, MP, Backend, backend_for
from .errors import ConfigError, SimulationError
from .jsonio import Record, read_json, write_json
from .numbers import fraction, positive_fraction, positive_real, whole_number
from .prompts import Columns, choose_method, expect

__all__ = ["F64", "MP", "Backend", "backend_for", "Columns", "choose_method", "expect",
           "ConfigError", "SimulationError", "Record", "read_json", "write_json", "fraction",
           "positive_fraction", "positive_real", "whole_number",
           "classification", "features", "gauss", "multihead"]
