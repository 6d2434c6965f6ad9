"""The safe parser of user expressions: what it builds, and a corpus of hostile texts that must
each give one line, exit 2, and run nothing."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from icl_verifier.checks.bounds import BoundError, evaluate_bound, parse_bound
from icl_verifier.checks.cli import main
from icl_verifier.checks.expressions import ExpressionError, parse_condition, parse_expression

K, EPS = sp.symbols("K epsilon", positive=True)
NAMES = {"K": K, "epsilon": EPS}


@pytest.mark.parametrize("text, expected", [
    ("K**2*log(K) + K/epsilon", K**2 * sp.log(K) + K / EPS),
    ("1e-3*K", K / 1000),
    ("2**-3 * sqrt(K)", sp.sqrt(K) / 8),
    ("Min(K, 1/epsilon) + Max(1, K, 2)", sp.Min(K, 1 / EPS) + sp.Max(2, K)),
    ("-(-K)", K),
    ("exp(+K)", sp.exp(K)),
])
def test_builds_the_sympy_expression(text, expected):
    assert sp.simplify(parse_expression(text, NAMES) - expected) == 0


def test_conditions_and_observables():
    k, n = sp.symbols("k n", integer=True)
    cond = parse_condition("loss[k] - loss_star[k] <= epsilon and A[k] > 0", NAMES,
                           {"loss": 1, "loss_star": 1, "A": 1}, {"k": k})
    loss, star, A = (sp.IndexedBase(x) for x in ("loss", "loss_star", "A"))
    assert cond == sp.And(sp.Le(loss[k] - star[k], EPS), sp.Gt(A[k], 0))
    chained = parse_condition("0 < B[k, 2] <= 1", NAMES, {"B": 2}, {"k": k})
    assert chained == sp.And(sp.Lt(0, sp.IndexedBase("B")[k, 2]), sp.Le(sp.IndexedBase("B")[k, 2], 1))
    with pytest.raises(ExpressionError, match="takes 2 indices"):
        parse_condition("B[k] < 1", NAMES, {"B": 2}, {"k": k})
    with pytest.raises(ExpressionError, match="index must be"):
        parse_condition("A[K] < 1", NAMES, {"A": 1}, {"k": k})
    with pytest.raises(ExpressionError, match="comparison"):
        parse_condition("K == 1", NAMES)


@settings(max_examples=30)
@given(st.integers(-50, 50), st.integers(1, 50), st.floats(0.01, 100))
def test_numbers_are_exact(a, b, x):
    e = parse_expression(f"{a}/{b} + {x!r}*K", NAMES)
    assert e.subs(K, 0) == sp.Rational(a, b)
    assert e.coeff(K) == sp.Rational(repr(x))


MARKER = "pwned-marker"
#: Texts a hostile or careless user might give as a bound, each with what the error must say.
HOSTILE = [
    (f"K*(1+0*K.subs.__globals__['__builtins__']['__import__']('os').system('touch {MARKER}'))",
     "not allowed"),
    (f"__import__('os').system('touch {MARKER}')", "calling a method is not allowed"),
    (f"__import__('{MARKER}')", "calling '__import__' is not allowed"),
    (f"open('{MARKER}', 'w')", "calling 'open' is not allowed"),
    (f"exec(\"open('{MARKER}','w')\")", "calling 'exec' is not allowed"),
    (f"eval(\"open('{MARKER}','w')\")", "calling 'eval' is not allowed"),
    ("K.__class__.__mro__", "attribute access is not allowed"),
    ("().__class__.__bases__[0].__subclasses__()", "not allowed"),
    ("K.subs", "attribute access is not allowed"),
    (f"(lambda: open('{MARKER}', 'w'))()", "not allowed"),
    ("lambda K: K", "Lambda is not allowed"),
    ("[K for K in (1, 2)]", "ListComp is not allowed"),
    ("{K: 1 for K in (1,)}", "DictComp is not allowed"),
    ("sum(x for x in (1, 2))", "calling 'sum' is not allowed"),
    ("'K'", "numbers only"),
    ("b'K'", "numbers only"),
    ("f'{K}'", "JoinedStr is not allowed"),
    ("10**10**10", "exponent larger than"),
    ("9**9**9**9", "exponent larger than"),
    ("2**100000", "exponent larger than"),
    ("10**999", "more than 400 digits"),
    ("1" * 500, "more than 400 digits"),
    ("(" * 500 + "K" + ")" * 500, "malformed expression"),
    ("log(" * 100 + "K" + ")" * 100, "nesting deeper"),
    ("-" * 300 + "K", "nesting deeper"),
    ("K" + "+K" * 1500, "longer than"),
    ("K; import os", "malformed expression"),
    ("K\nimport os", "one line"),
    ("K if K else 1", "IfExp is not allowed"),
    ("K @ K", "not allowed"),
    ("K // 2", "not allowed"),
    ("K % 2", "not allowed"),
    ("K < 1", "comparison is not allowed here"),
    ("K and 1", "comparison is not allowed here"),
    ("log(K, base=2)", "keyword arguments are not allowed"),
    ("log(*K)", "not allowed"),
    ("Symbol('x')", "calling 'Symbol' is not allowed"),
    ("Function('f')(K)", "not allowed"),
    ("K[0]", "indexing is allowed only on the observables"),
    ("1j*K", "numbers only"),
    ("True*K", "numbers only"),
    ("None", "numbers only"),
    ("1e999*K", "not finite"),
    ("1/(K-K)", "not finite"),
    ("0", "finite and positive"),
    ("-K", "finite and positive"),
    ("Min(K, -1)", "finite and positive"),
    ("K - K**2", "finite and positive"),
    ("", "empty"),
]


@pytest.mark.parametrize("text, message", HOSTILE, ids=[f"{i}" for i in range(len(HOSTILE))])
def test_hostile_bound_gives_one_line_exit_2_and_runs_nothing(text, message, tmp_path,
                                                               monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "verdict.json"
    code = main(["bound", "features.under.convergence_time", f"--bound={text}", "--json",
                 str(out), "--examples", "1"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("icl-verify: error: ") and err.count("\n") == 1, err
    assert message in err, err
    assert not (tmp_path / MARKER).exists() and not out.exists()
    assert not os.path.exists(MARKER)


def test_hostile_bound_in_a_real_process(tmp_path):
    text = HOSTILE[0][0]
    proc = subprocess.run([sys.executable, "-m", "icl_verifier.checks", "bound",
                           "features.under.convergence_time", "--bound", text], cwd=tmp_path,
                          capture_output=True, text=True,
                          env=os.environ | {"PYTHONPATH": os.path.dirname(os.path.dirname(
                              os.path.abspath(__file__)))})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / MARKER).exists()


def test_bound_is_finite_and_positive_or_named():
    e = parse_bound("K - 4", ("K",))
    assert evaluate_bound(e, {"K": 5}) == 1.0
    with pytest.raises(BoundError, match="K = 3"):
        evaluate_bound(e, {"K": 3})
    assert evaluate_bound(e, {"K": 3}, positive=False) == -1.0
    huge = parse_bound("K**(K**1000)", ("K",))
    with pytest.raises(BoundError, match="finite"):
        evaluate_bound(huge, {"K": 8})
