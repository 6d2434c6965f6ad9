"""Hypothesis profiles: ``ci`` (default: few examples, derandomised) and ``thorough``.

    HYPOTHESIS_PROFILE=thorough make test
"""
import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=12, derandomize=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.register_profile("thorough", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _short_sweeps(monkeypatch):
    """Tests check what a verdict decides, not how far a long budget carries it: the quick
    profile's sweeps past the nominal end get 6 s a verdict here (30 s for users); tests of the
    extension itself pass their own budget."""
    from icl_verifier.checks import verdict
    monkeypatch.setitem(verdict.PROFILES["quick"], "budget", 6.0)
