"""The testing API and pytest plugin a user gets, and the single import name."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from icl_verifier.checks import testing as icl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _readme_block(marker: str) -> str:
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    found = [b for b in blocks if b.startswith(marker)]
    assert len(found) == 1, f"the README has one block starting with {marker!r}"
    return found[0]


def test_the_readme_test_file_runs_under_pytest_with_the_plugin(tmp_path):
    (tmp_path / "test_my_claims.py").write_text(_readme_block("# test_my_claims.py"))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "test_my_claims.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "3 passed" in proc.stdout


def test_assert_claim_reports_the_reason_and_configuration():
    wrong = icl.claim(id="W", statement="too fast", source="derived", setting="features",
                      quantity="features.balanced.convergence_time", bound="log(K)/eta",
                      where={"K": "8..16"})
    with pytest.raises(icl.ClaimFailed, match=r"W: refuted - .*worst configuration: \{'K'"):
        icl.assert_claim(wrong, examples=3)


def test_measure_named_quantities_and_events():
    p = {"K": 5, "N": 100, "epsilon": 0.05, "eta": 2.0, "p1": 0.5}
    assert icl.measure("features.under.convergence_time", p) == icl.measure(
        "loss[k] - loss_star[k] <= epsilon", p, setting="features", family="imbalanced",
        feature=2)
    with pytest.raises(ValueError, match="unknown setting"):
        icl.configurations("nope")


def test_one_import_name():
    """The package is importable only as icl_verifier.*: no top-level theory/numerics/checks
    module is loaded by the command line or the API (they would shadow, or be shadowed by,
    packages of those names)."""
    code = ("import sys, icl_verifier.checks.cli as c, icl_verifier.checks.testing; "
            "c.main(['list']); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('theory', 'numerics', 'checks')]; "
            "print('BAD', bad)")
    proc = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("BAD []"), proc.stdout[-500:]
