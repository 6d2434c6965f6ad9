"""``icl-verify``: the command line.

    icl-verify derive SETTING [--format text|latex|both]
    icl-verify simulate SETTING [its options] --out FILE     (icl-verify simulate SETTING --help)
    icl-verify list
    icl-verify check [CLAIM ...] [--claims FILE.toml] [--where CLAUSE ...] [--profile P]
                     [--json FILE] [--report DIR]
    icl-verify bound QUANTITY --bound EXPR [--where CLAUSE ...] [--examples N] [--json FILE]
    icl-verify discover QUANTITY [--where CLAUSE ...] [--profile P] [--json FILE]
    icl-verify experiment NAME [--samples N] [--json FILE]

Every command loops over :func:`checks.settings.settings`; a setting brings its own simulate
options, derivation, quantities, claims and report section.  A user mistake prints one line
``icl-verify: error: ...`` and exits 2; a run that meets NaN or overflow prints the step and exits
1.  Nothing is written unless the run succeeds.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import threading
import time

__all__ = ["main"]

PROG = "icl-verify"


class UserError(Exception):
    """A mistake in the command line: one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise UserError(message)


BUDGET_HELP = ("seconds a verdict may spend sweeping past the region's nominal end "
               "(quick: 30, thorough: 300)")
WHERE_HELP = ("restrict the region: VAR=LO..HI, VAR=VALUE or VAR=LAW in the other variables "
              "(e.g. K=8..64, p1=0.5, N=4*K**2, epsilon=1/K); repeat for several")


def _parser(settings: dict) -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Symbolic-numeric verifier of in-context learning "
                     "training dynamics.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, required=True)

    derive = sub.add_parser("derive", help="print the SymPy-derived dynamics of a setting")
    derive.add_argument("setting", choices=[n for n, s in settings.items() if s.derive])
    derive.add_argument("--format", choices=["text", "latex", "both"], default="both")

    sim = sub.add_parser("simulate", help="run a setting's exact dynamics and write a JSON "
                                          "trajectory")
    sim_sub = sim.add_subparsers(dest="setting", parser_class=_Parser, required=True)
    for name, setting in settings.items():
        if setting.simulate is not None:
            p = sim_sub.add_parser(name, help=setting.title)
            for option in setting.options:
                option.add_to(p)

    sub.add_parser("list", help="list the claims and the measurable quantities")

    executor_help = "process (default), serial, or dask:ADDRESS for the sweeps"
    check = sub.add_parser("check", help="verdicts for claims (default: all)")
    check.add_argument("claims", nargs="*", help="claim ids (see icl-verify list)")
    check.add_argument("--profile", choices=["quick", "thorough"], default="quick")
    check.add_argument("--json", help="write the verdicts as JSON")
    check.add_argument("--report", help="write report.md and figures into this folder")
    check.add_argument("--executor", default=None, help=executor_help)
    check.add_argument("--where", action="append", default=[], metavar="CLAUSE", help=WHERE_HELP)
    check.add_argument("--budget", default=None, metavar="SECONDS", help=BUDGET_HELP)
    check.add_argument("--discover", action="store_true",
                       help="with --report: also fit the law of each O(.) claim's quantity "
                            "(icl-verify discover) and show it next to the claimed bound")
    check.add_argument("--claims", dest="claims_file", metavar="FILE",
                       help="run the claims of this TOML file "
                       "(see the README) instead of the shipped ones")

    variables = "; ".join(f"{n}: {', '.join(s.variables)}" for n, s in settings.items())
    bound = sub.add_parser("bound", help="verdict for a user-supplied bound on a quantity")
    bound.add_argument("quantity")
    bound.add_argument("--bound", required=True,
                       help=f"SymPy expression in the setting's variables ({variables})")
    bound.add_argument("--examples", default=None, help="Hypothesis examples for the search")
    bound.add_argument("--profile", choices=["quick", "thorough"], default="quick")
    bound.add_argument("--json", help="write the verdict as JSON")
    bound.add_argument("--executor", default=None, help=executor_help)
    bound.add_argument("--where", action="append", default=[], metavar="CLAUSE", help=WHERE_HELP)
    bound.add_argument("--budget", default=None, metavar="SECONDS", help=BUDGET_HELP)
    disc = sub.add_parser("discover", help="propose the law of a quantity from the exact "
                                           "simulation, then check it")
    disc.add_argument("quantity")
    disc.add_argument("--profile", choices=["quick", "thorough"], default="quick")
    disc.add_argument("--json", help="write the law as JSON")
    disc.add_argument("--executor", default=None, help=executor_help)
    disc.add_argument("--where", action="append", default=[], metavar="CLAUSE", help=WHERE_HELP)
    disc.add_argument("--budget", default=None, metavar="SECONDS", help=BUDGET_HELP)
    names = {f"{s.name}.{name}": desc for s in settings.values()
             for name, (desc, _, _) in s.experiments.items()}
    exp = sub.add_parser("experiment", help="run a fixed published experiment: "
                         + "; ".join(f"{k}: {v}" for k, v in names.items()))
    exp.add_argument("name", choices=sorted(names))
    exp.add_argument("--samples", default=None, help="prompts in the training sample")
    exp.add_argument("--json", help="write the figures as JSON")
    return parser


def _check_out(path: str) -> None:
    """An output file that can be written, checked before any work."""
    if path is None:
        return
    if not path.strip():
        raise UserError("an output path is empty")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"output folder {folder} does not exist")
    if os.path.isdir(path):
        raise UserError(f"output {path} is a folder")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UserError(f"output {path} cannot be written")


def _check_report_dir(path: str) -> None:
    """A report folder that can be written (made if missing), checked before any work."""
    if path is None:
        return
    if not path.strip():
        raise UserError("the report folder path is empty")
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"report folder {path} is an existing file")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UserError(f"the folder {parent} of the report does not exist")
    target = path if os.path.isdir(path) else parent
    if not os.access(target, os.W_OK):
        raise UserError(f"report folder {path} cannot be written")


def _simulate(args, settings) -> int:
    setting = settings[args.setting]
    _check_out(args.out)
    traj, summary = setting.simulate(args)
    _checkpoint()
    traj.save(args.out)
    if not args.quiet:
        print(summary)
    return 0


def _list(args, settings) -> int:
    from .verdict import RELATIONS
    print("claims:")
    for setting in settings.values():
        for c in setting.claims.values():
            rel = "<= C*" if c.kind == "O" else RELATIONS[c.kind] + " "
            named = "" if c.default else "  (checked when named)"
            print(f"  {c.id:<8} [{c.source}] {c.quantity.name} {rel}({c.bound}){named}")
            print(f"           {c.statement}")
    print("quantities:")
    for setting in settings.values():
        for name, q in setting.quantities.items():
            print(f"  {name:<45} {q.description}")
    print("variables and event observables (1-based indices; an event's k is its feature):")
    for setting in settings.values():
        seen = ", ".join(name + ("" if n == 0 else "[" + ", ".join("ijlm"[:n]) + "]")
                         for name, n in setting.observables.items())
        print(f"  {setting.name:<15} variables: {', '.join(setting.variables)}; observables: "
              f"{seen or 'none'}, t")
    return 0


#: Signals that arrived during this command: a Ctrl-C raises KeyboardInterrupt, and is also kept
#: here, because CPython drops an exception raised inside a finalizer ("Exception ignored in ...")
#: and the run would go on to write its outputs.
_INTERRUPTED: list[int] = []


def _on_interrupt(signum, _frame):
    _INTERRUPTED.append(signum)
    raise KeyboardInterrupt


def _checkpoint() -> None:
    """Stop here (KeyboardInterrupt) if a Ctrl-C arrived, even one a finalizer swallowed."""
    if _INTERRUPTED:
        raise KeyboardInterrupt


#: Outside a terminal (no bar), a long run reports how many configurations it has measured
#: this often (seconds).
HEARTBEAT = 60.0


def _ticker(bar, label: str):
    """A progress callback: a checkpoint, then one step of ``bar``; with the bar off, a line
    ``label: configurations measured: N`` on stderr every :data:`HEARTBEAT` seconds."""
    began = last = time.perf_counter()
    count = 0

    def tick(n=1):
        nonlocal last, count
        _checkpoint()
        bar.update(n)
        count += n
        now = time.perf_counter()
        if bar.disable and now - last >= HEARTBEAT:
            last = now
            print(f"{PROG}: {label}: configurations measured: {count} ({_clock(began)} in)",
                  file=sys.stderr, flush=True)
    return tick


@contextlib.contextmanager
def _interrupts_kept():
    """Install :func:`_on_interrupt` for SIGINT while a command runs (when Python's default
    handler is in place, in the main thread), and put the old handler back."""
    _INTERRUPTED.clear()
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    signal.signal(signal.SIGINT, _on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _write_json(path, data) -> None:
    from ..numerics.jsonio import write_json
    _checkpoint()
    write_json(path, data, indent=1)


def _bar(total, enabled):
    from tqdm import tqdm
    return tqdm(total=total, disable=not enabled, unit="run", leave=False)


def _print_verdict(v) -> None:
    const = "" if v.constant is None else f" constant={v.constant:.3g}"
    print(f"{v.claim_id or v.quantity}: {v.verdict}{const} - {v.reason}")
    if v.worst:
        print(f"    worst: {v.worst}")
    if v.counterexample:
        print(f"    minimal counterexample: {v.counterexample['params']} "
              f"(measured {v.counterexample['measured']:g}, bound {v.counterexample['bound']:g})")


def _clock(began: float) -> str:
    seconds = int(time.perf_counter() - began)
    return f"{seconds // 60}m{seconds % 60:02d}s"


def _budget(text):
    """``--budget``: seconds, 0 (no sweep past the nominal end) up to a day."""
    if text is None:
        return None
    try:
        value = float(str(text).strip())
    except ValueError:
        value = math.nan
    if not 0 <= value <= 86_400:
        raise UserError(f"--budget must be a number of seconds from 0 to 86400, got {text!r}")
    return value


def _check(args, settings) -> int:
    from .verdict import check_claim

    if args.claims_file:
        from .claimsfile import load_claims
        claims = load_claims(args.claims_file, settings)
    else:
        claims = {cid: (s, c) for s in settings.values() for cid, c in s.claims.items()}
    unknown = [c for c in args.claims if c not in claims]
    if unknown:
        raise UserError(f"unknown claim {unknown[0]}; known: {', '.join(claims)}")
    ids = args.claims or [cid for cid, (_, c) in claims.items() if c.default]
    if args.where:
        from dataclasses import replace

        from .region import clause_variable as name, restrict

        unused = [w for w in args.where
                  if not any(name(w) in claims[cid][1].quantity.variables for cid in ids)]
        if unused:
            raise UserError(f"--where {unused[0]}: no claim checked here has the variable "
                            f"{name(unused[0])!r}")
        for cid in ids:                 # each claim takes the clauses on its own variables
            s, c = claims[cid]
            mine = [w for w in args.where if name(w) in c.quantity.variables]
            if mine:
                claims[cid] = (s, replace(c, region=restrict(c.region, mine, c.quantity.variables)))
                claims[cid][1].region.base()       # a bad clause: one line, before any run
    _check_out(args.json)
    _check_report_dir(args.report)
    if args.discover and args.report is None:
        raise UserError("--discover adds a table to the report: give --report too")
    budget = _budget(args.budget)
    verdicts = []
    show = sys.stderr.isatty()
    began = time.perf_counter()
    with _executor(args.executor) as ex:
        for i, cid in enumerate(ids, 1):
            head = f"[{i}/{len(ids)}] {cid}"
            if not show:
                print(f"{PROG}: {head}: checking ({_clock(began)} so far)", file=sys.stderr,
                      flush=True)
            bar = _bar(None, show)
            bar.set_description(head)
            v = check_claim(claims[cid][1], args.profile, executor=ex,
                            progress=_ticker(bar, head), budget=budget)
            bar.close()
            if not show:
                print(f"{PROG}: {head}: {v.verdict} ({_clock(began)} so far)", file=sys.stderr,
                      flush=True)
            verdicts.append(v)
            _print_verdict(v)
        if args.json is not None:
            _write_json(args.json, [v.to_json() for v in verdicts])
        if args.report is not None:
            from .report import write_report
            sections = []
            for setting in settings.values():
                mine = [v for v in verdicts if claims[v.claim_id][0] is setting]
                if mine:
                    sections.append((setting, mine))
            laws = {}
            if args.discover:
                from .discover import discover
                for v in verdicts:
                    c = claims[v.claim_id][1]
                    if c.kind != "O":
                        continue
                    if not show:
                        print(f"{PROG}: discover {v.claim_id}: fitting the law of "
                              f"{c.quantity.name} ({_clock(began)} so far)", file=sys.stderr,
                              flush=True)
                    try:
                        laws[v.claim_id] = discover(c.quantity, c.region, args.profile, ex,
                                                    budget=budget)
                    except ValueError as exc:   # too few configurations could be measured
                        print(f"{PROG}: discover {v.claim_id}: {exc}", file=sys.stderr)
            _checkpoint()
            path = write_report(verdicts, {cid: claims[cid][1] for cid in ids}, args.report,
                                sections, args.profile, ex, laws)
            print(f"wrote {path}")
    return 0


@contextlib.contextmanager
def _executor(spec):
    """The sweep executor; a bad spec or an unreachable scheduler is a user error."""
    from .executor import make_executor
    with contextlib.ExitStack() as stack:
        try:
            ex = stack.enter_context(make_executor(spec))
        except ValueError as exc:
            raise UserError(str(exc)) from None
        yield ex


def _quantity_and_region(args, settings):
    """``(setting, quantity, region)`` of ``args.quantity`` with ``--where`` applied; an unknown
    quantity or a bad clause is one line, before any work."""
    from .region import restrict

    owner = next((s for s in settings.values() if args.quantity in s.quantities), None)
    if owner is None:
        raise UserError(f"unknown quantity {args.quantity}; see icl-verify list")
    quantity = owner.quantities[args.quantity]
    region = restrict(owner.region, args.where, quantity.variables) if args.where else \
        owner.region
    region.base()
    return owner, quantity, region


def _bound(args, settings) -> int:
    from .bounds import parse_bound
    from .verdict import check_bound
    from ..numerics.numbers import whole_number

    _, quantity, region = _quantity_and_region(args, settings)
    parse_bound(args.bound, quantity.variables)
    examples = None if args.examples is None else whole_number(args.examples, "examples", at_least=1,
                                                               at_most=10_000)
    budget = _budget(args.budget)
    _check_out(args.json)
    bar = _bar(None, sys.stderr.isatty())
    with _executor(args.executor) as ex:
        v = check_bound(quantity, args.bound, region, profile=args.profile,
                        budget=budget,
                        examples=examples, executor=ex,
                        progress=_ticker(bar, f"bound {args.quantity}"))
    bar.close()
    _print_verdict(v)
    if args.json is not None:
        _write_json(args.json, v.to_json())
    return 0


def _discover(args, settings) -> int:
    from .discover import discover

    owner, quantity, region = _quantity_and_region(args, settings)
    budget = _budget(args.budget)
    _check_out(args.json)
    show = sys.stderr.isatty()
    bar = _bar(None, show)
    bar.set_description(f"discover {args.quantity}")
    if not show:
        print(f"{PROG}: discover {args.quantity}: measuring the design, then checking the law",
              file=sys.stderr, flush=True)
    with _executor(args.executor) as ex:
        try:
            make = owner.derived_laws.get(args.quantity)
            law = discover(quantity, region, args.profile, ex,
                           progress=_ticker(bar, f"discover {args.quantity}"), budget=budget,
                           derived=make() if make else None)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    bar.close()
    print(f"{law['quantity']} ~ {law['bound']}")
    for term, c, (lo, hi) in zip(law["terms"], law["constants"], law["intervals"]):
        print(f"    {c:.4g} [{lo:.4g}, {hi:.4g}] * {term}")
    val = law["validation"]
    held = "-" if val["heldout_max_rel_error"] is None else f"{val['heldout_max_rel_error']:.3g}"
    print(f"    held-out max relative error {held} on {val['heldout']} far configurations "
          f"(all {val['configurations']}: {val['max_rel_error']:.3g})")
    if law["derived"]:
        ratios = ", ".join(f"{r['ratio']:.3g} ({r['sweep']})"
                           for r in law["derived"]["measured_over_derived_far"])
        print(f"    derived in closed form: {law['derived']['law']}; measured / derived at the "
              f"far end of each sweep: {ratios}")
    if law["verdict"]:
        print(f"    as an O(.) bound: {law['verdict']['verdict']} - {law['verdict']['reason']}")
    if args.json is not None:
        _write_json(args.json, law)
    return 0


def _derive(args, settings) -> int:
    from .derivation import render
    print(render(settings[args.setting], args.format))
    return 0


def _hypothesis_home() -> None:
    """Hypothesis keeps caches in ``.hypothesis/`` of the working directory; the command line is
    not a test suite, so they go to the user's cache folder instead (the temporary folder when
    that cannot be written)."""
    import tempfile

    from hypothesis.configuration import set_hypothesis_home_dir

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    for root in (base, tempfile.gettempdir()):
        path = os.path.join(root, "icl-verifier", "hypothesis")
        try:
            os.makedirs(path, exist_ok=True)
        except OSError:
            continue
        if os.access(path, os.W_OK):
            set_hypothesis_home_dir(path)
            return


def _experiment(args, settings) -> int:
    from ..numerics.numbers import whole_number
    setting_name, name = args.name.split(".", 1)
    _, run, text = settings[setting_name].experiments[name]
    samples = None if args.samples is None else whole_number(args.samples, "samples",
                                                               at_least=16, at_most=10**6)
    _check_out(args.json)
    result = run(samples)
    if args.json:
        _write_json(args.json, result)
    print("\n".join(text(result)))
    return 0


_COMMANDS = {"simulate": _simulate, "derive": _derive, "list": _list, "check": _check,
             "bound": _bound, "discover": _discover, "experiment": _experiment}


def main(argv=None) -> int:
    from concurrent.futures.process import BrokenProcessPool

    from .bounds import BoundError
    from .claimsfile import ClaimsFileError
    from .events import EventError
    from .region import WhereError
    from .settings import settings as registered
    from ..numerics.errors import ConfigError, SimulationError

    settings = registered()
    _hypothesis_home()
    try:
        args = _parser(settings).parse_args(argv)
        with _interrupts_kept():
            return _COMMANDS[args.command](args, settings)
    except (UserError, ConfigError, BoundError, WhereError, ClaimsFileError, EventError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except SimulationError as exc:
        print(f"{PROG}: error: the run broke down at {exc}", file=sys.stderr)
        return 1
    except BrokenProcessPool:
        print(f"{PROG}: error: a worker process stopped abruptly (killed, or out of memory); "
              "nothing written", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing written", file=sys.stderr)
        return 130
    except BrokenPipeError:             # the reader went away (icl-verify list | head)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
