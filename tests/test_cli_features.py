"""The command-line contract of ``icl-verify simulate features`` and ``icl-verify derive``."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from icl_verifier.checks.cli import main
from icl_verifier.numerics.features import FeaturesConfig, simulate

from .cli_args import changed, flags

BASE = ["simulate", "features", "--K", "3", "--N", "4", "--p", "balanced", "--eta", "2",
        "--steps", "7", "--every", "3"]


def _with(**changes):
    return changed(BASE, flags(**changes))


def test_contract(tmp_path, capsys):
    out = tmp_path / "run.json"
    assert main(_with(p="0.5,0.3,0.2") + ["--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert {"t", "logits", "loss", "attention", "config"} <= set(data)
    assert data["t"] == [0, 3, 6, 7]
    logits = np.array(data["logits"])
    assert logits.shape == (4, 3, 3) and np.all(logits[0] == 0)     # step 0 is Q = 0
    assert np.array(data["loss"]).shape == (4, 3)
    attention = np.array(data["attention"])
    assert np.allclose(attention.sum(axis=1), 1.0)                   # over n, for each query k
    cfg = FeaturesConfig.make(3, 4, "0.5,0.3,0.2", "2")
    ref = simulate(cfg, 7, every=3)
    assert np.array_equal(logits, ref.logits)
    assert np.array_equal(np.array(data["loss"]), ref.loss)
    # the loss recorded at step t is that of the logits at step t: at t = 0, uniform attention
    assert np.allclose(attention[0], ref.attention[0])
    assert data["config"]["K"] == 3 and data["config"]["eta"] == 2.0
    assert "wrote" in capsys.readouterr().out


def test_loss_at_step_zero_is_that_of_zero_logits(tmp_path):
    out = tmp_path / "zero.json"
    assert main(_with(steps="0", every="1") + ["--out", str(out), "--quiet"]) == 0
    data = json.loads(out.read_text())
    assert data["t"] == [0]
    # balanced, Q = 0, N = 4, K = 3: Attn_n = c_n / N; L_k = 1/2 E[(1 - c_k/N)^2 + sum_{m!=k} (c_m/N)^2]
    from itertools import product
    from math import factorial
    total = 0.0
    for c in product(range(5), repeat=3):
        if sum(c) != 4:
            continue
        prob = factorial(4) / np.prod([factorial(x) for x in c]) / 3**4
        a = np.array(c) / 4
        total += prob * 0.5 * ((1 - a[0]) ** 2 + a[1] ** 2 + a[2] ** 2)
    assert data["loss"][0] == pytest.approx([total] * 3, abs=1e-15)


def test_arbitrary_precision_output_keeps_all_digits(tmp_path):
    out = tmp_path / "mp.json"
    assert main(_with(precision="40") + ["--out", str(out), "--quiet"]) == 0
    data = json.loads(out.read_text())
    digits = data["exact"]["loss"][-1][0].split("e")[0].replace(".", "").lstrip("0")
    assert len(digits) >= 40
    assert data["config"]["precision"] == 40


def _run(args):
    """``icl-verify ARGS`` in a real process."""
    return subprocess.run([sys.executable, "-m", "icl_verifier.checks", *args], capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.dirname(__file__)))


def test_overflow_names_the_step_and_writes_nothing(tmp_path):
    out = tmp_path / "broken.json"
    proc = _run(_with(eta="1e300") + ["--out", str(out)])
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "step " in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists() and not list(tmp_path.iterdir())


def test_bad_input_from_a_real_process(tmp_path):
    out = tmp_path / "never.json"
    proc = _run(_with(p="0.2,0.2,0.2") + ["--out", str(out)])
    assert proc.returncode == 2
    assert proc.stderr == "icl-verify: error: p sums to 0.6, not 1 (tolerance 1e-09)\n"
    assert not out.exists()


def test_derive_prints_the_update_rules(capsys):
    assert main(["derive", "features"]) == 0
    text = capsys.readouterr().out
    assert "dl_k/dA_k = Attn_k*(2*Attn_k - S2 - 1)    [= -2 Attn_k l_k]" in text
    assert "dl_k/dB_{k,n} = Attn_n*(Attn_k + Attn_n - S2)" in text
    assert "sum_n dl_k/dZ[n,k] = 0" in text
    assert r"\partial l_k / \partial A_k = " in text
    assert main(["derive", "features", "--format", "latex"]) == 0
    assert "Attn_k*(" not in capsys.readouterr().out
