"""Users' own claims: --where clauses and TOML claims files (every error one line, exit 2, before
any run; a file's claims run end to end with their id, statement and source in the JSON)."""
from __future__ import annotations

import json

import pytest

from icl_verifier.checks.cli import main
from icl_verifier.checks.features import QUANTITIES, Region, event_quantity
from icl_verifier.checks.region import WhereError, restrict

VARS = ("K", "N", "epsilon", "eta", "p1")


def test_where_ranges_values_and_laws():
    r = restrict(Region(), ["K=8..16", "p1=0.5", "epsilon=1/K", "N=2*K**2"], VARS)
    base = r.base()
    assert 8 <= base["K"] <= 16 and base["p1"] == 0.5
    assert base["epsilon"] == pytest.approx(1 / base["K"]) and base["N"] == 2 * base["K"] ** 2
    assert "epsilon" not in r.sweep and "K" in r.sweep
    for params in r.sweep_points("K", 5):      # a swept K carries the laws along: a diagonal
        assert params["epsilon"] == pytest.approx(1 / params["K"])
        assert params["N"] == 2 * params["K"] ** 2
    from hypothesis import given, settings

    @settings(max_examples=20, database=None)
    @given(r.strategy())
    def inside(params):
        assert 8 <= params["K"] <= 16 and params["epsilon"] == pytest.approx(1 / params["K"])
    inside()


@pytest.mark.parametrize("clause, message", [
    ("M=1..2", "unknown variable 'M'"),
    ("K=16..8", "is empty"),
    ("K=8.5..16", "not a whole number"),
    ("epsilon=-1..0.1", "outside the variable's domain"),
    ("p1=1.5", "outside the variable's domain (0, 1)"),
    ("K", "write VAR=LO..HI"),
    ("epsilon=1/K**", "malformed expression"),
    ("epsilon=__import__('os')", "not allowed"),
    ("epsilon=epsilon*2", "cannot use epsilon itself"),
])
def test_bad_where_clause_is_one_line(clause, message, capsys, tmp_path):
    out = tmp_path / "v.json"
    assert main(["bound", "features.under.convergence_time", "--bound", "K", "--where", clause,
                 "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_laws_with_a_cycle_are_refused():
    with pytest.raises(WhereError, match="cycle"):
        restrict(Region(), ["epsilon=1/eta", "eta=2*epsilon"], VARS)


def test_event_quantity_is_the_named_quantity():
    p = {"K": 6, "N": 144, "epsilon": 0.05, "eta": 2.0, "p1": 0.5}
    assert event_quantity("loss[k] - loss_star[k] <= epsilon", "imbalanced", 2)(p) == \
        QUANTITIES["features.under.convergence_time"](p)
    assert event_quantity("attention[k, k] >= 1/2", "imbalanced", 2)(p) == \
        QUANTITIES["features.under.phase_time.3"](p)


GOOD = '''
[[claim]]
id = "T2"
statement = "Under-represented features converge within O(...) steps."
source = "paper"
setting = "features"
quantity = "features.under.convergence_time"
bound = "K**2*log(K)/eta + K*log(K/sqrt(epsilon))/(epsilon*eta)"
kind = "O"

[claim.where]
K = "8..12"
epsilon = "0.05..0.1"
N = "4*K**2"
p1 = "0.5"

[[claim]]
id = "T3"
statement = "The own attention reaches one half (an event)."
source = "reconstructed"
setting = "features"
event = "attention[k, k] >= 1/2"
family = "imbalanced"
feature = 2
bound = "K**3/eta"
'''


def test_claims_file_runs_end_to_end(tmp_path, capsys):
    path = tmp_path / "mine.toml"
    path.write_text(GOOD)
    out = tmp_path / "v.json"
    assert main(["check", "--claims", str(path), "--json", str(out), "--executor", "serial",
                 "--where", "eta=1..2"]) == 0
    data = json.loads(out.read_text())
    assert [v["claim_id"] for v in data] == ["T2", "T3"]
    assert data[0]["source"] == "paper" and data[0]["statement"].startswith("Under-represented")
    assert "p1 in [0.5, 0.5]" in data[0]["region"] and "eta in [1.0, 2.0]" in data[0]["region"]
    inside = [e for e in data[0]["evaluations"] if not e["probe"].startswith("extend")]
    assert all(8 <= e["params"]["K"] <= 12 for e in inside)         # past the end: extensions
    assert all(e["params"]["N"] == 4 * e["params"]["K"] ** 2 for e in data[0]["evaluations"])
    assert all(e["params"]["p1"] == 0.5 for e in data[0]["evaluations"])
    assert data[1]["quantity"] == "features.event[attention[k, k] >= 1/2]"
    assert all(v["verdict"] in ("consistent", "refuted", "inconclusive") for v in data)


def _with(text, old, new):
    assert old in text
    return text.replace(old, new, 1)


BAD_FILES = [
    ("not toml [", "is not valid TOML"),
    ("[[claims]]\nid = 'x'", "unknown table 'claims'"),
    (_with(GOOD, 'source = "paper"', 'source = "folklore"'), "claim T2: field source"),
    (_with(GOOD, 'kind = "O"', 'kind = "bigO"'), "claim T2: field kind"),
    (_with(GOOD, 'setting = "features"', 'setting = "nope"'), "claim T2: field setting"),
    (_with(GOOD, 'quantity = "features.under.convergence_time"', 'quantity = "features.x"'),
     "claim T2: field quantity"),
    (_with(GOOD, 'quantity = "features.under.convergence_time"\n', ''),
     "claim T2: give exactly one of quantity and event"),
    (_with(GOOD, 'bound = "K**2*log(K)', 'bound = "__import__(1)+K**2*log(K)'),
     "claim T2: field bound"),
    (_with(GOOD, 'K = "8..12"', 'K = "12..8"'), "claim T2: field where"),
    (_with(GOOD, 'K = "8..12"', 'M = "8..12"'), "claim T2: field where"),
    (_with(GOOD, 'id = "T3"', 'id = "T2"'), "claim T2: the id is used twice"),
    (_with(GOOD, 'statement = "Under', 'colour = "red"\nstatement = "Under'),
     "claim T2: field colour: unknown field"),
    (_with(GOOD, 'event = "attention[k, k] >= 1/2"', 'event = "attention[k] >= 1/2"'),
     "claim T3: field event"),
    (_with(GOOD, 'event = "attention[k, k] >= 1/2"', 'event = "attention[k, k].real >= 1"'),
     "claim T3: field event"),
    (_with(GOOD, 'family = "imbalanced"', 'family = "skewed"'), "claim T3: field family"),
    (_with(GOOD, 'feature = 2', 'feature = 0'), "claim T3: field feature"),
    (_with(GOOD, 'feature = 2\n', ''), "claim T3: field event"),
]


@pytest.mark.parametrize("text, message", BAD_FILES, ids=[m for _, m in BAD_FILES])
def test_bad_claims_file_is_one_line_and_runs_nothing(text, message, tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    out = tmp_path / "v.json"
    assert main(["check", "--claims", str(path), "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and message in err, err
    assert not out.exists() and capsys.readouterr().out == ""


def test_missing_claims_file(tmp_path, capsys):
    assert main(["check", "--claims", str(tmp_path / "none.toml")]) == 2
    assert "cannot be read" in capsys.readouterr().err


def test_events_of_classification_and_multihead():
    from icl_verifier.checks.classification import event_quantity as classification_event
    from icl_verifier.checks.multihead import event_quantity as multihead_event
    from icl_verifier.checks.multihead import run

    p = {"n": 2, "H": 2, "d": 4, "L": 50, "init": 0.01}
    traj = run(p)
    level = float(traj.loss[0] + traj.loss[-1]) / 2
    t = multihead_event(f"loss <= {level!r}")(p)
    # the first time the loss is at most the level, to the bisection's tolerance, on the grid
    first = next(s for s, value in zip(traj.t, traj.loss) if value <= level)
    assert t <= first and t > max(s for s in traj.t if s < first) - 1e-9
    q = {"N": 64, "M": 64, "c": 2, "d": 1, "eta": 2.0, "kappa": 1.0, "r": 1.0}
    steps = classification_event("distance <= 0.01")(q)
    from icl_verifier.checks.classification import config_for
    from icl_verifier.numerics.classification import simulate
    traj = simulate(config_for(q), steps, method="quadrature")
    assert traj.distance[-1] <= 0.01 < traj.distance[-2]
    with pytest.raises(Exception, match="no family or feature"):
        classification_event("loss <= 1", "imbalanced")


def test_where_applies_to_the_claims_that_have_the_variable(tmp_path, capsys):
    out = tmp_path / "v.json"
    assert main(["check", "F5", "C1", "--where", "K=4..6", "--executor", "serial",
                 "--json", str(out)]) == 0
    data = {v["claim_id"]: v for v in json.loads(out.read_text())}
    assert "K in [4, 6]" in data["F5"]["region"]
    assert all(4 <= e["params"]["K"] <= 6 for e in data["F5"]["evaluations"])
    assert "K" not in data["C1"]["region"]
    capsys.readouterr()
    assert main(["check", "C1", "--where", "K=4..6"]) == 2
    assert "no claim checked here has the variable 'K'" in capsys.readouterr().err
