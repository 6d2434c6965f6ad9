"""Contracts every setting keeps, parametrised over the list of settings (a new setting is covered
by adding it to the list): a simulate run writes a trajectory that loads back unchanged; bad values
of every required option give one line, exit 2 and no file; float64 agrees with 30 digits; the
claims parse and carry their source; the setting has a report section."""
from __future__ import annotations

import json
import math

import pytest

from icl_verifier.checks.cli import main
from icl_verifier.checks.settings import settings

from .cli_args import changed

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
    from icl_verifier.checks.cli import _parser
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


#: Bad values per setting: changes to the setting's example arguments (None drops the flag) and
#: what the one-line error must say.
BAD_INPUTS = {
    "features": [
        ({"--p": "0.5,0.3,0.3"}, "p sums to 1.1, not 1"),
        ({"--p": "1.2,-0.1,-0.1"}, "p_2 = -0.1 is not positive"),
        ({"--p": "0.5,0.5,0"}, "p_3 = 0 is not positive"),
        ({"--p": "nan,0.5,0.5"}, "p_1 must be a finite number"),
        ({"--p": "a,b,c"}, "p_1 must be a finite number"),
        ({"--p": "0.5,0.5"}, "p has 2 entries but K = 3"),
        ({"--K": "1", "--p": "balanced"}, "K must be at least 2"),
        ({"--K": "three"}, "K must be a whole number"),
        ({"--N": "0"}, "N must be at least 1"),
        ({"--N": "2.5"}, "N must be a whole number"),
        ({"--eta": "0"}, "eta must be a positive finite number"),
        ({"--eta": "-0.1"}, "eta must be a positive finite number"),
        ({"--eta": "inf"}, "eta must be a finite number"),
        ({"--eta": "nan"}, "eta must be a finite number"),
        ({"--eta": "1e"}, "eta must be a finite number"),
        ({"--steps": "-1"}, "steps must be at least 0"),
        ({"--every": "0"}, "every must be at least 1"),
        ({"--precision": "0"}, "must be at least 1"),
        ({"--precision": "ten"}, "must be a whole number"),
        ({"--p": "imbalanced:1"}, "needs 0 < P1 < 1"),
        ({"--p": "imbalanced:0"}, "needs 0 < P1 < 1"),
        ({"--p": "imbalanced:1.5"}, "needs 0 < P1 < 1"),
        ({"--p": "imbalanced:x"}, "imbalanced:P1 must be a finite number"),
        ({"--p": "imbalanced"}, "write imbalanced:P1"),
        ({"--method": "magic"}, "invalid choice: 'magic'"),
        ({"--eta": None}, "the following arguments are required: --eta"),
    ],
    "classification": [
        ({"--Lambda": "1,2;3,4", "--d": None}, "not symmetric"),
        ({"--classes": "1"}, "at least 2"),
        ({"--N": "0"}, "N must be at least 1"),
        ({"--eta": "-1"}, "positive finite"),
        ({"--precision": "0"}, "at least 1"),
        ({"--method": "quadrature", "--classes": "3"}, "two classes"),
        ({"--Lambda": "diag:1,2", "--d": None, "--method": "quadrature"}, "Lambda = s * identity"),
        ({"--samples": "abc"}, "whole number"),
        ({"--nodes": "7,2,10,1"}, "5 whole numbers"),
        ({"--nodes": "7,2,0,1,40"}, "a node count must be at least 1"),
    ],
    "multihead": [
        ({"--n": "0"}, "at least 1"), ({"--H": "two"}, "whole number"),
        ({"--d": "4,4,4"}, "block sizes"), ({"--t-end": "-3"}, "positive finite"),
        ({"--t-end": "inf"}, "positive finite"), ({"--precision": "0"}, "at least 1"),
        ({"--init": "1"}, "(0, 1/2)"), ({"--sigma": "1/0"}, "finite number"),
        ({"--model": "full", "--H": "0"}, "at least 1"),
        ({"--model": "full", "--L": "0"}, "at least 1"),
        ({"--model": "full", "--d": "4,4,4"}, "block sizes"),
        ({"--model": "full", "--init-scheme": "lucky"}, "invalid choice: 'lucky'"),
        ({"--model": "full", "--init-scheme": "official", "--H": "3"}, "two heads would start"),
        ({"--model": "full", "--imbalance": "1"}, "[0, 1)"),
        ({"--model": "full", "--imbalance": "0.1", "--flow": "merged"}, "needs --flow factored"),
        ({"--model": "full", "--samples": "3"}, "at least 16"),
        ({"--model": "full", "--schedule": "cosine"}, "invalid choice: 'cosine'"),
        ({"--model": "full", "--precision": "30"}, "runs in float64"),
        ({"--imbalance": "0.1"}, "needs --model full"),
        ({"--init-scheme": "official"}, "needs --model full"),
    ],
}


def test_every_setting_has_bad_input_cases():
    assert set(BAD_INPUTS) == set(IDS)


@pytest.mark.parametrize("name, changes, message", [
    (name, changes, message) for name, cases in BAD_INPUTS.items() for changes, message in cases],
    ids=[f"{name}:{' '.join(f'{k}={v}' for k, v in changes.items())}"
         for name, cases in BAD_INPUTS.items() for changes, _ in cases])
def test_bad_input_gives_its_one_line_exit_2_and_no_file(name, changes, message, tmp_path,
                                                         capsys):
    setting = settings()[name]
    out = tmp_path / "never.json"
    assert main(["simulate", name, *changed(setting.example, changes), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("icl-verify: error: ") and err.count("\n") == 1, err
    assert message in err and "Traceback" not in err, err
    assert not list(tmp_path.iterdir())


#: float64 against 30 digits on each setting's precision example, worst relative difference over
#: every number of the trajectory: exact sums (features, classification's fixed rule) agree to
#: rounding; the multihead flow to the integrators' tolerance (measured 4.4e-16, 9.1e-16, 1.8e-10).
PRECISION_TOLERANCE = {"features": 1e-13, "classification": 1e-13, "multihead": 1e-9}


def test_every_setting_has_a_precision_example():
    assert all(s.precision_example for s in SETTINGS)
    assert set(PRECISION_TOLERANCE) == set(IDS)


@pytest.mark.parametrize("setting", SETTINGS, ids=IDS)
def test_float64_agrees_with_30_digits(setting, tmp_path):
    low = tmp_path / "f64.json"
    high = tmp_path / "mp.json"
    assert main(["simulate", setting.name, *setting.precision_example, "--out", str(low),
                 "--quiet"]) == 0
    assert main(["simulate", setting.name, *setting.precision_example, "--precision", "30",
                 "--out", str(high), "--quiet"]) == 0
    a, b = json.loads(low.read_text()), json.loads(high.read_text())
    exact = b.pop("exact", None)
    for data in (a, b):
        data.pop("exact", None)
        data.pop("config")
    x, y = _numbers(a), _numbers(b)
    assert len(x) == len(y)
    finite = [(p, q) for p, q in zip(x, y) if p is not None and q is not None and math.isfinite(q)]
    assert len({q for _, q in finite}) > 2, "the run does not move"
    worst = max((abs(p - q) / max(1.0, abs(q)) for p, q in finite), default=0.0)
    assert worst < PRECISION_TOLERANCE[setting.name], worst
    if exact is not None:       # the exact arrays keep every digit asked for
        digits = [s.split("e")[0].replace("-", "").replace(".", "").lstrip("0")
                  for s in _strings(exact)]
        assert max(len(d) for d in digits) >= 30


def _strings(value):
    if isinstance(value, dict):
        return [x for v in value.values() for x in _strings(v)]
    if isinstance(value, list):
        return [x for v in value for x in _strings(v)]
    return [value] if isinstance(value, str) else []


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
