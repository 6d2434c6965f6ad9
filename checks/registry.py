"""Every setting's claims and quantities in one place, found by the setting name a quantity starts
with (``features.``, ``classification.``, ``multihead.``)."""
from __future__ import annotations

from importlib import import_module

__all__ = ["SETTINGS", "setting_of", "all_claims", "quantities", "known_quantities",
           "measure_any", "default_region", "quantity_table"]

#: Settings with claims, in the order they are listed and checked.
SETTINGS = ("features", "classification", "multihead")


def quantity_table(table: dict):
    """``(describe_quantities, measure_any)`` of a setting whose quantities are a table
    ``name -> (measure(params, max_steps), one-line description)``."""
    def describe_quantities() -> dict:
        return {name: desc for name, (_, desc) in table.items()}

    def measure_any(name: str, params: dict, max_steps: int = 60_000) -> float:
        if name not in table:
            raise KeyError(name)
        return table[name][0](params, max_steps)
    return describe_quantities, measure_any


def _module(setting: str):
    return import_module(f"checks.{setting}")


def setting_of(name: str) -> str:
    """The setting of a quantity name; ``KeyError`` for an unknown one."""
    setting = name.split(".", 1)[0]
    if setting not in SETTINGS:
        raise KeyError(name)
    return setting


def all_claims() -> dict:
    """Claim id -> :class:`checks.features.Claim`, over every setting."""
    out = {}
    for setting in SETTINGS:
        out.update(_module(setting).CLAIMS)
    return out


def quantities() -> dict:
    """Quantity name -> one-line description, over every setting."""
    out = {}
    for setting in SETTINGS:
        out.update(_module(setting).describe_quantities())
    return out


def known_quantities() -> list[str]:
    return list(quantities())


def measure_any(name: str, params: dict, max_steps: int = 60_000) -> float:
    """The quantity ``name`` measured at ``params``."""
    return _module(setting_of(name)).measure_any(name, params, max_steps)


def default_region(name: str):
    """The region ``icl-verify bound`` uses for a quantity of this setting."""
    return _module(setting_of(name)).DEFAULT_REGION
