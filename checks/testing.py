"""Property-based regression tests over your own derivations, in your own repository.

    from hypothesis import given
    from icl_verifier.checks import testing as icl

    @given(icl.configurations("features", where=["K=4..8", "p1=0.5"]))
    def test_my_lemma(params):
        assert icl.measure("features.under.convergence_time", params) <= 3 * params["K"] ** 2 / ...

    def test_my_theorem():
        icl.assert_claim(icl.claim(id="T2", statement="...", source="paper", setting="features",
                                   quantity="features.under.convergence_time", bound="K**2/eta"))

    def test_my_file():
        icl.assert_claims_file("claims.toml")

Installed as a pytest plugin (entry point ``pytest11``): the fixture ``icl`` is this module, and
``--icl-profile quick|thorough`` sets the profile :func:`assert_claim` uses by default.
"""
from __future__ import annotations

__all__ = ["configurations", "measure", "claim", "check", "assert_claim", "assert_claims_file",
           "ClaimFailed"]

_PROFILE = {"value": "quick"}


class ClaimFailed(AssertionError):
    """A claim came out refuted (or, when not allowed, inconclusive)."""


def _settings():
    from .settings import settings
    return settings()


def _setting(name: str):
    found = _settings().get(name)
    if found is None:
        raise ValueError(f"unknown setting {name!r} (settings: {', '.join(_settings())})")
    return found


def configurations(setting: str, where=()):
    """Hypothesis strategy of configurations (``params`` dicts) of ``setting``'s default region,
    restricted by ``where`` clauses (``"K=4..8"``, ``"p1=0.5"``, ``"N=4*K**2"``)."""
    from .region import restrict

    s = _setting(setting)
    region = restrict(s.region, list(where), s.variables) if where else s.region
    return region.strategy()


def measure(quantity: str, params: dict, *, setting: str | None = None, family: str | None = None,
            feature: int | None = None, max_steps: int = 60_000) -> float:
    """A named quantity (``icl-verify list``) at ``params``, or, with ``setting``, the first step
    at which the event condition ``quantity`` holds (``family`` and ``feature`` as in a claims
    file).  Raises :class:`checks.claims.NotReached` past ``max_steps``."""
    if setting is None:
        from .settings import find_quantity
        q = find_quantity(quantity)
    else:
        q = _setting(setting).event(quantity, family, feature)
    return q(params, max_steps)


def claim(**fields):
    """A :class:`checks.claims.Claim` from the fields of a claims-file entry (``id``,
    ``statement``, ``source``, ``setting``, ``quantity`` or ``event`` [, ``family``,
    ``feature``], ``bound``, ``kind``, ``where``), checked the same way."""
    from .claimsfile import ClaimsFileError, _claim

    def bad(field, why):
        raise ClaimsFileError(f"claim {fields.get('id', '?')}: field {field}: {why}")

    def bad_claim(why):
        raise ClaimsFileError(f"claim {fields.get('id', '?')}: {why}")

    return _claim(dict(fields), _settings(), bad, bad_claim)[1]


def check(c, profile: str | None = None, examples: int | None = None, where=(),
          budget: float | None = None):
    """The :class:`checks.verdict.Verdict` on claim ``c`` (a Claim or a shipped claim id)."""
    from dataclasses import replace

    from .region import restrict
    from .settings import all_claims
    from .verdict import check_claim
    if isinstance(c, str):
        shipped = all_claims()
        if c not in shipped:
            raise ValueError(f"unknown claim {c}")
        c = shipped[c]
    if where:
        c = replace(c, region=restrict(c.region, list(where), c.quantity.variables))
    return check_claim(c, profile or _PROFILE["value"], examples=examples, budget=budget)


def _explain(v) -> str:
    where = v.counterexample["params"] if v.counterexample else v.worst
    return (f"{v.claim_id or v.quantity}: {v.verdict} - {v.reason}; "
            f"{'counterexample' if v.counterexample else 'worst configuration'}: {where}")


def assert_claim(c, profile: str | None = None, examples: int | None = None, where=(),
                 allow_inconclusive: bool = False, budget: float | None = None):
    """Run claim ``c`` and fail with the verdict's reason and worst configuration unless it is
    consistent (or inconclusive, when allowed).  ``budget``: seconds for the sweeps past the
    region's end (the profile's otherwise).  Returns the verdict."""
    v = check(c, profile, examples, where, budget)
    if v.verdict == "refuted" or (v.verdict == "inconclusive" and not allow_inconclusive):
        raise ClaimFailed(_explain(v))
    return v


def assert_claims_file(path, profile: str | None = None, examples: int | None = None,
                       allow_inconclusive: bool = False, budget: float | None = None):
    """Every claim of a TOML claims file (see the README), as :func:`assert_claim`; the first
    failure is reported with all of them.  Returns the verdicts."""
    from .claimsfile import load_claims
    claims = load_claims(str(path), _settings())
    verdicts, failures = [], []
    for _, c in claims.values():
        v = check(c, profile, examples, budget=budget)
        verdicts.append(v)
        if v.verdict == "refuted" or (v.verdict == "inconclusive" and not allow_inconclusive):
            failures.append(_explain(v))
    if failures:
        raise ClaimFailed("; ".join(failures))
    return verdicts


# -- the pytest plugin ---------------------------------------------------------------------------

def pytest_addoption(parser):
    parser.addoption("--icl-profile", choices=["quick", "thorough"], default=None,
                     help="icl-verifier: the profile assert_claim uses (default quick)")


def pytest_configure(config):
    profile = config.getoption("--icl-profile", default=None)
    if profile:
        _PROFILE["value"] = profile


try:                                           # the fixture, when pytest is there
    import pytest as _pytest

    @_pytest.fixture
    def icl():
        """This module: ``icl.measure``, ``icl.assert_claim``, ``icl.configurations``, ..."""
        import sys
        return sys.modules[__name__]
except ImportError:                            # pragma: no cover - pytest is optional
    pass
