"""The shape holds: a setting defined here, and nowhere else, runs through ``list``, ``check``,
``bound``, ``derive``, ``simulate`` and the report without any edit of a generic module.

The toy: GD on the scalar loss ``(w - 1)^2 / 2`` from ``w = 0`` with step ``eta``, whose error is
``(1 - eta)^t`` in closed form, so the number of steps to ``|w - 1| <= epsilon`` is
``ceil(log(epsilon) / log(1 - eta))``, which is ``O(log(1/epsilon)/eta)`` and not ``O(1/eta)``."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pytest
import sympy as sp

from icl_verifier.checks import Claim, Option, Quantity, Region, Setting, register, unregister
from icl_verifier.checks.cli import main
from icl_verifier.numerics.jsonio import Record
from icl_verifier.numerics.numbers import positive_fraction, whole_number

VARIABLES = ("eta", "epsilon")


def _steps(params, max_steps):
    """First t with |w_t - 1| <= epsilon, by running GD (not by the closed form)."""
    w, eta = 0.0, params["eta"]
    for t in range(max_steps + 1):
        if abs(w - 1) <= params["epsilon"]:
            return t
        w -= eta * (w - 1)
    raise AssertionError("not reached")


@dataclass(frozen=True)
class ToyRegion(Region):
    eta: tuple[float, float] = (0.05, 0.5)
    epsilon: tuple[float, float] = (1e-4, 1e-1)
    sweep: tuple[str, ...] = ("eta", "epsilon")
    INVERSE = ("eta", "epsilon")

    def base(self):
        return {v: math.sqrt(lo * hi) for v, (lo, hi) in (("eta", self.eta),
                                                            ("epsilon", self.epsilon))}

    def strategy(self):
        from hypothesis import strategies as st
        return st.fixed_dictionaries({"eta": st.floats(*self.eta),
                                      "epsilon": st.floats(*self.epsilon)})


@dataclass
class ToyTrajectory(Record):
    config: dict
    t: list
    w: list


def _simulate(args):
    eta = positive_fraction(args.eta, "eta")
    steps = whole_number(args.steps, "steps", at_least=0)
    w = [0.0]
    for _ in range(steps):
        w.append(w[-1] - float(eta) * (w[-1] - 1))
    traj = ToyTrajectory({"setting": "toy", "eta": float(eta)}, list(range(steps + 1)), w)
    return traj, f"toy: w_T = {w[-1]:.6g}"


def _section(verdicts, out_dir, profile, executor):
    return ["## Toy", "", f"{len(verdicts)} toy verdicts."]


STEPS = Quantity("toy.steps", _steps, "GD steps to |w - 1| <= epsilon", VARIABLES)
TOY = Setting(
    name="toy", title="scalar GD on (w - 1)^2 / 2", variables=VARIABLES,
    quantities={STEPS.name: STEPS},
    claims={c.id: c for c in [
        Claim("T1", "GD converges in O(log(1/epsilon)/eta) steps.", "derived", STEPS,
              "log(1/epsilon)/eta", ToyRegion()),
        Claim("T2", "GD converges in O(1/eta) steps (false: the log(1/epsilon) is missing).",
              "derived", STEPS, "1/eta", ToyRegion())]},
    region=ToyRegion(),
    derive=lambda: ("closed-form GD", [("w_t", 1 - (1 - sp.Symbol("eta")) ** sp.Symbol("t"),
                                        "error (1 - eta)^t")]),
    options=(Option("--eta", "step size", required=True), Option("--steps", "GD steps", "10"),
             Option("--out", "output JSON file", required=True),
             Option("--quiet", "no summary", action="store_true")),
    simulate=_simulate, report=_section, example=("--eta", "0.5"))


@pytest.fixture
def toy():
    register(TOY)
    try:
        yield TOY
    finally:
        unregister("toy")


def test_toy_setting_runs_through_every_command(toy, tmp_path, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "T1       [derived] toy.steps <= C*(log(1/epsilon)/eta)" in out
    assert "toy.steps" in out

    verdicts, report = tmp_path / "v.json", tmp_path / "report"
    assert main(["check", "T1", "T2", "--executor", "serial", "--json", str(verdicts),
                 "--report", str(report)]) == 0
    got = {v["claim_id"]: v for v in json.loads(verdicts.read_text())}
    assert got["T1"]["verdict"] == "consistent", got["T1"]["reason"]
    assert got["T2"]["verdict"] == "refuted", got["T2"]["reason"]
    # log(1/eps) against a constant: growth decided at the far end of the 1/eps sweep
    assert got["T2"]["sweeps"]["epsilon"]["decided"] == "growth"
    assert got["T2"]["exponents"]["epsilon"]["low"] > 0
    assert got["T1"]["statement"].startswith("GD converges") and got["T1"]["source"] == "derived"
    text = (report / "report.md").read_text()
    assert "| T1 | derived | **consistent** |" in text and "## Toy" in text
    capsys.readouterr()

    # the report's table of discovered laws: the toy's steps fitted next to T1's bound
    assert main(["check", "T1", "--executor", "serial", "--report", str(report),
                 "--discover"]) == 0
    text = (report / "report.md").read_text()
    assert "## Discovered laws" in text
    row = next(line for line in text.splitlines() if line.startswith("| T1 | `log(1/epsilon)/eta`"))
    law = row.split("|")[3]                    # claim | claimed bound | discovered law | ...
    assert "epsilon" in law and "eta" in law and law.strip() != "`log(1/epsilon)/eta`", row
    assert main(["check", "T1", "--discover"]) == 2
    assert "give --report too" in capsys.readouterr().err

    assert main(["bound", "toy.steps", "--bound", "1/eta", "--executor", "serial"]) == 0
    assert "toy.steps: refuted" in capsys.readouterr().out
    assert main(["bound", "toy.steps", "--bound", "1/K"]) == 2
    assert "unknown name 'K'" in capsys.readouterr().err

    assert main(["derive", "toy", "--format", "text"]) == 0
    assert "w_t = 1 - (1 - eta)**t" in capsys.readouterr().out

    path = tmp_path / "toy.json"
    assert main(["simulate", "toy", "--eta", "0.5", "--steps", "3", "--out", str(path)]) == 0
    assert json.loads(path.read_text())["w"] == [0.0, 0.5, 0.75, 0.875]
    assert ToyTrajectory.load(str(path)).w == [0.0, 0.5, 0.75, 0.875]
    assert main(["simulate", "toy", "--eta", "-1", "--out", str(tmp_path / "no.json")]) == 2
    assert not (tmp_path / "no.json").exists()


def test_a_quantity_measured_directly_matches_the_closed_form():
    for eta, eps in ((0.5, 1e-3), (0.1, 1e-2)):
        want = math.ceil(math.log(eps) / math.log(1 - eta))
        assert STEPS({"eta": eta, "epsilon": eps}) in (want, want + 1)   # rounding at the edge
