"""Contracts every setting keeps, parametrised over the list of settings (a new setting is covered
by adding it to the list): a simulate run writes a trajectory that loads back unchanged; bad values
of every required option give one line, exit 2 and no file; float64 agrees with 30 digits; the
claims parse and carry their source; the setting has a report section."""
from __future__ import annotations

import json
import math

import pytest

from checks.cli import main
from checks.settings import settings

SETTINGS = list(settings().values())
IDS = [s.name for s in SETTINGS]


def _numbers(value):
    """Every number in a JSON value, in order (None kept as None)."""
    if isinstance(value, dict):
        return [x for k in sorted(value) for x in _numbers(value[k])]
    if isinstance(value, list):
        return [x for v in value for x in _numbers(v)]
    if isinstance(value, bool) or value is None:
        return [value]
    if isinstance(value, (int, float)):
        return [float(value)]
    return []


def _run(setting, tmp_path, *extra):
    out = tmp_path / f"{setting.name}.json"
    code = main(["simulate", setting.name, *setting.example, *extra, "--out", str(out),
                 "--quiet"])
    return code, out


@pytest.mark.parametrize("setting", SETTINGS, ids=IDS)
def test_simulate_writes_a_trajectory_that_loads_back(setting, tmp_path):
    code, out = _run(setting, tmp_path)
    assert code == 0 and out.exists()
    data = json.loads(out.read_text())
    assert data["config"]["setting"] == setting.name
    traj, _ = setting.simulate(_namespace(setting, str(out)))
    back = type(traj).load(str(out))
    assert _numbers(back.to_json()) == _numbers(data)


def _namespace(setting, out):
    from checks.cli import _parser
    return _parser({setting.name: setting}).parse_args(
        ["simulate", setting.name, *setting.example, "--out", out, "--quiet"])


@pytest.mark.parametrize("setting", SETTINGS, ids=IDS)
def test_bad_values_give_one_line_and_no_file(setting, tmp_path, capsys):
    required = [o.flag for o in setting.options if o.required and o.flag != "--out"]
    assert required, "a setting's simulate command has required options"
    args = list(setting.example)
    for flag in required:
        bad = list(args)
        if flag in bad:
            bad[bad.index(flag) + 1] = "not-a-number"
        else:
            bad += [flag, "not-a-number"]
        out = tmp_path / "never.json"
        assert main(["simulate", setting.name, *bad, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("icl-verify: error: "), (flag, err)
        assert not out.exists()
    # an output folder that does not exist: refused before any work
    assert main(["simulate", setting.name, *args, "--out", str(tmp_path / "no" / "t.json")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.precision_example], ids=[
    s.name for s in SETTINGS if s.precision_example])
def test_float64_agrees_with_30_digits(setting, tmp_path):
    low = tmp_path / "f64.json"
    high = tmp_path / "mp.json"
    assert main(["simulate", setting.name, *setting.precision_example, "--out", str(low),
                 "--quiet"]) == 0
    assert main(["simulate", setting.name, *setting.precision_example, "--precision", "30",
                 "--out", str(high), "--quiet"]) == 0
    a, b = json.loads(low.read_text()), json.loads(high.read_text())
    for data in (a, b):
        data.pop("exact", None)
        data.pop("config")
    x, y = _numbers(a), _numbers(b)
    assert len(x) == len(y)
    worst = max((abs(p - q) / max(1.0, abs(q)) for p, q in zip(x, y)
                 if p is not None and q is not None and math.isfinite(q)), default=0.0)
    assert worst < 1e-9, worst


@pytest.mark.parametrize("setting", SETTINGS, ids=IDS)
def test_claims_quantities_and_report_section(setting):
    assert setting.report is not None and setting.derive is not None
    for cid, claim in setting.claims.items():
        assert claim.id == cid and claim.quantity.name in setting.quantities
        assert claim.source in ("paper", "derived", "reconstructed")
        assert set(claim.quantity.variables) == set(setting.variables)
        assert claim.bound_expr.free_symbols <= {__import__("sympy").Symbol(v, positive=True)
                                                 for v in setting.variables}
    for name, q in setting.quantities.items():
        assert name.startswith(setting.name + ".") and q.description


@pytest.mark.parametrize("setting", SETTINGS, ids=IDS)
def test_derive_prints_text_and_latex(setting, capsys):
    assert main(["derive", setting.name]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"# {setting.name}: ") and f"% {setting.name}: " in out
