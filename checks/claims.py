"""The claim vocabulary shared by every setting: a :class:`Quantity` measures, a :class:`Region`
says where, a :class:`Claim` bounds a quantity on a region, and a :class:`Setting` lists them.

As a PEPit example returns the measured and the theoretical value, a claim holds what it measures:
``claim.quantity(params)`` is the measurement, ``claim.bound`` the theory; the verdict engine
(:mod:`checks.verdict`) needs nothing else and knows no setting by name.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Callable

import numpy as np

from .bounds import parse_bound

__all__ = ["SOURCES", "KINDS", "NotReached", "Measured", "Quantity", "Region", "Claim", "Option",
           "Setting"]

SOURCES = ("paper", "derived", "reconstructed")
#: ``O``: ``measured <= C * bound`` for some constant C; the others exact inequalities
#: ``measured <= / < / >= / > bound`` at every configuration.
KINDS = ("O", "le", "lt", "ge", "gt")


class NotReached(RuntimeError):
    """The event did not happen within the step (or time) budget."""


class Measured(float):
    """A measured number with its own standard error (a Monte Carlo or quadrature estimate).  It
    is the float everywhere; ``error`` travels with it, also to other processes, and a verdict
    does not call growth that stays within it."""

    def __new__(cls, value: float, error: float):
        obj = super().__new__(cls, value)
        obj.error = abs(float(error))
        return obj

    def __reduce__(self):
        return (Measured, (float(self), self.error))


@dataclass(frozen=True)
class Quantity:
    """A number measured on the exact simulation of one configuration.

    ``measure(params, max_steps)`` returns it (raising :class:`NotReached` when the event behind
    it does not happen within ``max_steps``); it must be picklable (a module-level function or a
    ``functools.partial`` of one) so that sweeps can run in other processes; an estimate returns
    :class:`Measured` (the value with its standard error).  ``variables`` are the names a bound
    on it may use (its setting's)."""

    name: str
    measure: Callable[[dict, int], float]
    description: str
    variables: tuple[str, ...]

    def __call__(self, params: dict, max_steps: int = 60_000) -> float:
        m = self.measure(params, max_steps)
        return m if isinstance(m, Measured) else float(m)


class Region:
    """Configurations where a claim is asserted, and how its scaling variables are swept.

    A region is a frozen dataclass of ranges deriving from this class.  It provides
    :meth:`strategy` (Hypothesis draws in the region) and :meth:`base` (its centre); the sweep of
    a variable (:meth:`sweep_points`) is written once here: the variable's values
    (:meth:`sweep_values`, geometric over its range by default) put into the centre by :meth:`at`.
    ``INTEGER`` variables are rounded; ``INVERSE`` ones are fitted in ``1/var`` (their asymptotic
    end is small values)."""

    sweep: tuple[str, ...] = ()
    INTEGER: tuple[str, ...] = ()
    INVERSE: tuple[str, ...] = ()

    def strategy(self):                       # pragma: no cover - every region defines it
        raise NotImplementedError

    def base(self) -> dict:                   # pragma: no cover
        raise NotImplementedError

    def sweep_values(self, var: str, points: int) -> list:
        """The values a sweep of ``var`` takes: geometric over the variable's range."""
        return list(np.geomspace(*getattr(self, var), points))

    def at(self, params: dict, var: str, value) -> dict:
        """``params`` with ``var`` set to ``value`` (and whatever depends on it)."""
        params[var] = int(round(value)) if var in self.INTEGER else float(value)
        return params

    def extend_values(self, var: str, values: list, count: int) -> list:
        """``count`` values continuing a sweep past its asymptotic end (small values for
        ``INVERSE`` variables, large ones otherwise), geometrically with the sweep's own ratio
        (at least 1.25; whole numbers step by at least 1)."""
        lo, hi = min(values), max(values)
        ratio = max((hi / lo) ** (1 / max(len(values) - 1, 1)), 1.25) if lo > 0 else 1.25
        out, last = [], (lo if var in self.INVERSE else hi)
        for _ in range(count):
            nxt = last / ratio if var in self.INVERSE else last * ratio
            if var in self.INTEGER:
                nxt = int(round(nxt))
                if nxt == last:
                    nxt = last - 1 if var in self.INVERSE else last + 1
                if nxt < 1:
                    break
            out.append(nxt)
            last = nxt
        return out

    def sweep_points(self, var: str, points: int) -> list[dict]:
        """``var`` swept over :meth:`sweep_values` with the others at the centre; no repeats."""
        base = self.base()
        out = []
        for value in self.sweep_values(var, points):
            params = self.at(dict(base), var, value)
            if params not in out:
                out.append(params)
        return out

    def axis(self, var: str):
        """The scaling variable a sweep of ``var`` is fitted in: ``(label, value from params)``."""
        if var in self.INVERSE:
            return f"1/{var}", lambda params: 1 / params[var]
        return var, lambda params: params[var]

    def describe(self) -> str:
        return ", ".join(f"{f.name} = {getattr(self, f.name)!r}" for f in fields(self)
                         if f.name != "sweep")

    #: Open intervals a variable must lie in, beyond being positive (e.g. a probability).
    DOMAIN: dict = {}


@dataclass(frozen=True)
class Claim:
    """A statement, its source, the quantity it bounds, the bound and where it is asserted.

    ``kind`` ``"O"``: ``measured <= C * bound`` for some constant C over the region;
    ``"le"``, ``"lt"``, ``"ge"``, ``"gt"``: ``measured <= bound`` (``<``, ``>=``, ``>``) exactly, at
    every configuration of the region.  ``pinned``: past counterexamples, tried first by every
    check."""

    id: str
    statement: str
    source: str
    quantity: Quantity
    bound: str
    region: Region
    kind: str = "O"
    pinned: tuple = ()
    #: False: checked only when named (``icl-verify check ID``), not by a bare ``check`` or the
    #: report (its runs are too long for the default verification).
    default: bool = True

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"claim {self.id}: source must be one of {SOURCES}")
        if self.kind not in KINDS:
            raise ValueError(f"claim {self.id}: kind must be one of {KINDS}")
        parse_bound(self.bound, self.quantity.variables)

    @property
    def bound_expr(self):
        return parse_bound(self.bound, self.quantity.variables)


@dataclass(frozen=True)
class Option:
    """One option of ``icl-verify simulate SETTING``: passed to ``argparse`` as it is."""

    flag: str
    help: str
    default: str | None = None
    required: bool = False
    choices: tuple | None = None
    action: str | None = None

    def add_to(self, parser) -> None:
        kw = {"help": self.help}
        if self.action:
            kw["action"] = self.action
        else:
            kw.update(default=self.default, required=self.required)
            if self.choices:
                kw["choices"] = list(self.choices)
        parser.add_argument(self.flag, **kw)


@dataclass(frozen=True)
class Setting:
    """Everything the tool knows of a setting, in one record.

    ``variables``: names a bound may use; ``region``: the default region of ``icl-verify bound``;
    ``derive()``: ``(header, rows)`` with rows ``(label, expression, note[, LaTeX label])``;
    ``options`` and ``simulate(args) -> (trajectory, summary text)``: ``icl-verify simulate``
    (``simulate`` validates its arguments in one call and raises ``ConfigError`` in one line);
    ``report(verdicts, out_dir, profile, executor) -> Markdown lines``: its report section;
    ``example``: a small valid argument list of ``icl-verify simulate NAME`` (without ``--out``),
    which the shared tests run; ``precision_example``: one cheap enough to run again at 30 digits;
    ``observables``: name -> number of indices, what a user's event condition may read, and
    ``event(condition, family, feature) -> Quantity``: the first step at which it holds;
    ``derived_laws``: quantity name -> a function giving the SymPy law derived for it in closed
    form (in the setting's variables), which ``discover`` prints beside the fitted one;
    ``experiments``: name -> ``(description, run(samples) -> dict, text(dict) -> Markdown
    lines)``, what ``icl-verify experiment NAME`` runs (a fixed published experiment)."""

    name: str
    title: str
    variables: tuple[str, ...]
    quantities: dict
    claims: dict
    region: Region
    derive: Callable | None = None
    options: tuple = ()
    simulate: Callable | None = None
    report: Callable | None = field(default=None, compare=False)
    example: tuple = ()
    precision_example: tuple | None = None
    observables: dict = field(default_factory=dict, compare=False)
    event: Callable | None = field(default=None, compare=False)
    derived_laws: dict = field(default_factory=dict, compare=False)
    experiments: dict = field(default_factory=dict, compare=False)

    def with_report(self, report: Callable) -> "Setting":
        return replace(self, report=report)
