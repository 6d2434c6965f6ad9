"""Checks: the claim vocabulary (:mod:`checks.claims`), the verdict engine (:mod:`checks.verdict`,
:mod:`checks.bounds`, :mod:`checks.executor`), one module of claims and quantities per setting,
the list of settings (:mod:`checks.settings`), the report package and the ``icl-verify`` command
line."""
from .claims import Claim, Measured, NotReached, Option, Quantity, Region, Setting
from .cli import main
from .settings import all_claims, find_quantity, quantities, register, settings, unregister
from .verdict import Verdict, check_bound, check_claim

__all__ = ["Claim", "Measured", "NotReached", "Option", "Quantity", "Region", "Setting", "main",
           "all_claims", "find_quantity", "quantities", "register", "settings", "unregister",
           "Verdict", "check_bound", "check_claim"]
