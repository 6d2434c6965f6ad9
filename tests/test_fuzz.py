"""Every command of every setting against a corpus of bad inputs: exit 1 or 2, one line on stderr,
no traceback, no output created or changed, and quickly; and an interrupted check leaves the old
outputs as they were."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from icl_verifier.checks.cli import main

from .cli_args import changed, flags

HUGE = "9" * 1_000
EX = {"features": ["--K", "3", "--N", "4", "--p", "balanced", "--eta", "1", "--steps", "3"],
      "classification": ["--N", "16", "--d", "1", "--eta", "1", "--steps", "3"],
      "multihead": ["--n", "2", "--H", "2", "--d", "4", "--L", "50", "--t-end", "0.5",
                    "--points", "10"]}


def _sim(setting, **changes):
    return ["simulate", setting, *changed(EX[setting], flags(**changes)), "--out", "{out}"]


#: (arguments, expected exit code, what the line must say); "{out}", "{json}", "{report}" are
#: output paths in the test's folder.
CORPUS = [
    # sizes nothing used to refuse
    (_sim("features", K="100000"), 2, "K must be at most 512"),
    (_sim("features", K=HUGE), 2, "at most 100 characters"),
    (_sim("features", eta="1" + "0" * 500), 2, "at most 100 characters"),
    (_sim("features", precision="1000000"), 2, "soft limit"),
    (_sim("features", method="enumeration", K="50", N="100"), 2, "enumeration needs"),
    (_sim("classification", classes="100000"), 2, "at most 64"),
    (_sim("classification", d="100000"), 2, "at most 256"),
    (_sim("classification", samples="10000000000"), 2, "at most"),
    (_sim("multihead", n="1000", d="4"), 2, "at most 8"),
    (_sim("multihead", H="1000"), 2, "at most 16"),
    (_sim("multihead", points="100000000"), 2, "at most 100000"),
    (_sim("multihead", L=HUGE), 2, "at most 100 characters"),
    # outputs checked before the work
    (["simulate", "features", *EX["features"], "--out", ""], 2, "empty"),
    (["simulate", "features", *EX["features"], "--out", "{missing}/t.json"], 2, "does not exist"),
    (["simulate", "features", *EX["features"], "--out", "{folder}"], 2, "is a folder"),
    (["check", "F5", "--json", ""], 2, "empty"),
    (["check", "F5", "--report", "{out}"], 2, "is an existing file"),
    (["check", "F5", "--report", "{missing}/r"], 2, "does not exist"),
    (["bound", "features.under.convergence_time", "--bound", "K", "--json", ""], 2, "empty"),
    (["discover", "features.under.convergence_time", "--json", "{missing}/d.json"], 2,
     "does not exist"),
    # divergence and overflow
    (_sim("classification", eta="1e300"), 1, "GD diverges"),
    (_sim("classification", eta="1e300", method="montecarlo", samples="1000", d="2"), 1,
     "broke down"),
    (_sim("multihead", sigma="1e300"), 2, "sigma must be in"),
    (_sim("features", eta="1e300"), 1, "step "),
    # bounds that are not positive, or never finish
    (["bound", "features.under.convergence_time", "--bound", "0"], 2, "positive"),
    (["bound", "features.under.convergence_time", "--bound", "1/(K-K)"], 2, "not finite"),
    (["bound", "features.under.convergence_time", "--bound=-K"], 2, "positive"),
    (["bound", "features.under.convergence_time", "--bound", "Min(K, -1)"], 2, "positive"),
    (["bound", "features.under.convergence_time", "--bound", "9**9**9**9"], 2, "exponent"),
    (["bound", "classification.minimiser_gap", "--bound", "Function('f')(N)"], 2, "not allowed"),
    (["bound", "multihead.phase_time.warmup", "--bound", "L", "--where", "L=0..5"], 2,
     "domain"),
    (["bound", "features.under.convergence_time", "--bound", "K", "--budget", "-1"], 2,
     "--budget"),
    (["discover", "features.nope"], 2, "unknown quantity"),
    # small surprises
    (_sim("features", library="mpmath"), 2, "give --precision"),
    (_sim("classification", library="mpmath"), 2, "give --precision"),
    (["check", "F5", "--executor", "nope"], 2, "unknown executor"),
    (["check", "--claims", "{out}"], 2, "not valid TOML"),
    (["derive", "nope"], 2, "invalid choice"),
    (["frobnicate"], 2, "invalid choice"),
]


@pytest.mark.parametrize("args, code, message", CORPUS,
                         ids=[f"{i}-{' '.join(a[:2])}" for i, (a, _, _) in enumerate(CORPUS)])
def test_bad_input_is_one_line_and_touches_nothing(args, code, message, tmp_path, capsys,
                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "existing.json"
    out.write_text("old")
    (tmp_path / "folder").mkdir()
    paths = {"out": str(out), "folder": str(tmp_path / "folder"),
             "missing": str(tmp_path / "missing")}
    argv = [a.format(**paths) for a in args]
    before = sorted(p.name for p in tmp_path.iterdir())
    start = time.perf_counter()
    got = main(argv)
    took = time.perf_counter() - start
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if not x.startswith("icl-verify: [")]
    assert got == code, err
    assert len(lines) == 1 and lines[0].startswith("icl-verify: error: "), err
    assert message in lines[0], err
    assert "Traceback" not in err
    assert out.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert took < 60, took


def test_bad_input_in_a_real_process_prints_no_warning_or_traceback(tmp_path):
    for argv, code in [(_sim("classification", eta="1e300", method="montecarlo",
                             samples="1000", d="2"), 1),
                       (_sim("features", K=HUGE), 2)]:
        argv = [a.format(out=str(tmp_path / "t.json")) for a in argv]
        proc = subprocess.run([sys.executable, "-m", "icl_verifier.checks", *argv],
                              capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert proc.returncode == code and proc.stderr.count("\n") == 1, proc.stderr
        assert not (tmp_path / "t.json").exists()


def _checking(folder, *args):
    """``check F2 F4 ARGS`` in a real process, once it says it is checking: ``(process,
    deadline)``, the deadline two minutes from the start."""
    proc = subprocess.Popen([sys.executable, "-m", "icl_verifier.checks", "check", "F2", "F4",
                             *args], cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 120
    line = ""
    while time.time() < deadline and "checking" not in line:
        line = proc.stderr.readline()
    return proc, deadline


def test_an_interrupted_check_leaves_the_old_outputs(tmp_path):
    report, verdicts = tmp_path / "report", tmp_path / "verdicts.json"
    report.mkdir()
    (report / "report.md").write_text("old report")
    verdicts.write_text("old verdicts")
    proc, _ = _checking(tmp_path, "--report", str(report), "--json", str(verdicts))
    time.sleep(3)                               # the workers are measuring
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted; nothing written" in err, err
    assert verdicts.read_text() == "old verdicts"
    assert sorted(os.listdir(report)) == ["report.md"]
    assert (report / "report.md").read_text() == "old report"
    assert sorted(os.listdir(tmp_path)) == ["report", "verdicts.json"]


class _SwallowedInterrupt:
    """Sends this process a SIGINT from a finalizer, where CPython drops the KeyboardInterrupt
    ("Exception ignored in ...") and the run goes on."""

    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):       # the signal is handled here, inside the finalizer
            pass


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")   # on purpose
def test_an_interrupt_a_finalizer_swallowed_still_writes_nothing(tmp_path, monkeypatch, capsys):
    from icl_verifier.checks import verdict

    evaluate, dropped = verdict._evaluate, []

    def evaluate_once_interrupted(*args, **kwargs):
        if not dropped:
            dropped.append(True)
            _SwallowedInterrupt()       # collected at once: its finalizer runs here
        return evaluate(*args, **kwargs)
    monkeypatch.setattr(verdict, "_evaluate", evaluate_once_interrupted)
    out = tmp_path / "v.json"
    code = main(["check", "F5", "--executor", "serial", "--json", str(out)])
    assert dropped and code == 130 and not out.exists()
    assert "interrupted; nothing written" in capsys.readouterr().err


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (Linux /proc)."""
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return kids


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the workers through /proc")
def test_a_killed_worker_is_one_line_and_leaves_the_old_outputs(tmp_path):
    verdicts = tmp_path / "verdicts.json"
    verdicts.write_text("old verdicts")
    proc, deadline = _checking(tmp_path, "--json", str(verdicts))
    workers = []
    while time.time() < deadline and not workers:
        time.sleep(0.5)
        workers = _children(proc.pid)
    os.kill(workers[0], signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert err.strip().splitlines()[-1].startswith("icl-verify: error: a worker process stopped")
    assert "Traceback" not in err, err
    assert verdicts.read_text() == "old verdicts"


def test_a_long_run_outside_a_terminal_reports_its_progress(monkeypatch, capsys):
    from icl_verifier.checks import cli

    monkeypatch.setattr(cli, "HEARTBEAT", 0.0)         # every measurement, for the test
    assert main(["check", "F5", "--executor", "serial"]) == 0
    beats = [line for line in capsys.readouterr().err.splitlines()
             if "configurations measured: " in line]
    counts = [int(line.split("measured: ")[1].split()[0]) for line in beats]
    assert beats[0].startswith("icl-verify: [1/1] F5: configurations measured: 1 (")
    assert counts == list(range(1, len(counts) + 1)) and len(counts) >= 6


def test_check_leaves_no_hypothesis_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["check", "F5", "--executor", "serial"]) == 0
    assert not (tmp_path / ".hypothesis").exists()


def test_the_report_keeps_other_files_in_its_folder(tmp_path):
    """make check writes check.txt and verdicts.json into the report's folder: the report
    replaces its own files only."""
    from icl_verifier.checks.report import write_report

    (tmp_path / "check.txt").write_text("the verdicts as printed")
    (tmp_path / "report.md").write_text("old")
    path = write_report([], {}, str(tmp_path))
    assert (tmp_path / "check.txt").read_text() == "the verdicts as printed"
    assert open(path).read() != "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["check.txt", "report.md"]
