"""The settings, listed once.  ``list``, ``check``, ``bound``, ``derive``, ``simulate`` and the
report loop over :func:`settings`; a new setting (or a test's toy one) joins with
:func:`register`, without editing any other module."""
from __future__ import annotations

from . import classification, features, multihead
from .claims import Claim, Quantity, Setting
from .report import classification as _report_classification
from .report import features as _report_features
from .report import multihead as _report_multihead

__all__ = ["settings", "register", "unregister", "setting_of", "all_claims", "quantities",
           "find_quantity"]

_SETTINGS: dict[str, Setting] = {}


def register(setting: Setting) -> None:
    """Add (or replace) a setting; its quantities' and claims' names must not clash with another
    setting's."""
    for other in _SETTINGS.values():
        if other.name == setting.name:
            continue
        clash = (set(other.quantities) & set(setting.quantities)) | (
            set(other.claims) & set(setting.claims))
        if clash:
            raise ValueError(f"setting {setting.name}: {sorted(clash)[0]} is already "
                             f"{other.name}'s")
    _SETTINGS[setting.name] = setting


def unregister(name: str) -> None:
    _SETTINGS.pop(name, None)


def settings() -> dict[str, Setting]:
    """Setting name -> :class:`Setting`, in the order they are listed and checked."""
    return dict(_SETTINGS)


def setting_of(item: Claim | Quantity | str) -> Setting:
    """The setting a claim, a quantity or a quantity's name belongs to; ``KeyError`` if none."""
    name = item.quantity.name if isinstance(item, Claim) else getattr(item, "name", item)
    for setting in _SETTINGS.values():
        if name in setting.quantities:
            return setting
    raise KeyError(name)


def all_claims() -> dict[str, Claim]:
    """Claim id -> :class:`Claim`, over every setting."""
    return {cid: c for s in _SETTINGS.values() for cid, c in s.claims.items()}


def quantities() -> dict[str, Quantity]:
    """Quantity name -> :class:`Quantity`, over every setting."""
    return {name: q for s in _SETTINGS.values() for name, q in s.quantities.items()}


def find_quantity(name: str) -> Quantity:
    """The quantity called ``name``; ``KeyError`` if there is none."""
    return quantities()[name]


for _setting, _section in ((features.SETTING, _report_features.section),
                           (classification.SETTING, _report_classification.section),
                           (multihead.SETTING, _report_multihead.section)):
    register(_setting.with_report(_section))
