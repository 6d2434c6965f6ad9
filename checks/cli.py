"""``icl-verify``: the command line.

    icl-verify derive features|classification|multihead [--format text|latex|both]
    icl-verify simulate features --K K --N N --p P --eta ETA --steps T [--every R]
                                 [--precision DIGITS] [--method M] --out FILE
    icl-verify simulate classification --N N (--d D | --Lambda SPEC) [--classes C] [--r R]
                                 --eta ETA --steps T [--every R] [--precision DIGITS]
                                 [--method M] [--samples S] [--seed SEED] --out FILE
    icl-verify simulate multihead --n N --H H --d D --L L [--sigma S] [--init I]
                                 [--flow balanced|merged] [--seed SEED] [--t-end T]
                                 [--points P] [--precision DIGITS] --out FILE
    icl-verify list
    icl-verify check [CLAIM ...] [--profile quick|thorough] [--json FILE] [--report DIR]
    icl-verify bound QUANTITY --bound EXPR [--examples N] [--json FILE]

A user mistake prints one line ``icl-verify: error: ...`` and exits 2; a run that meets NaN or
overflow prints the step and exits 1.  Nothing is written unless the run succeeds.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

import numpy as np

__all__ = ["main"]

PROG = "icl-verify"


class UserError(Exception):
    """A mistake in the command line: one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise UserError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Symbolic-numeric verifier of in-context learning "
                     "training dynamics.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, required=True)

    derive = sub.add_parser("derive", help="print the SymPy-derived dynamics of a setting")
    derive.add_argument("setting", choices=["features", "classification", "multihead"])
    derive.add_argument("--format", choices=["text", "latex", "both"], default="both")

    sim = sub.add_parser("simulate", help="run exact population GD and write a JSON trajectory")
    sim_sub = sim.add_subparsers(dest="setting", parser_class=_Parser, required=True)
    feat = sim_sub.add_parser("features", help="softmax attention over K orthonormal features")
    feat.add_argument("--K", required=True, help="number of features (>= 2)")
    feat.add_argument("--N", required=True, help="prompt length (>= 1)")
    feat.add_argument("--p", default="balanced",
                      help="balanced | imbalanced:P1 | comma list of K probabilities")
    feat.add_argument("--eta", required=True, help="step size (positive, finite)")
    feat.add_argument("--method", default="auto",
                      choices=["auto", "enumeration", "groups", "quadrature", "montecarlo",
                               "meanfield"],
                      help="expectation over prompts (default: cheapest exact one; meanfield is "
                           "the N -> inf limit)")
    feat.add_argument("--ungrouped", action="store_true",
                      help="simulate every column and feature separately (no symmetry reduction)")
    cls = sim_sub.add_parser("classification", help="linear attention classifying Gaussian "
                                                    "mixtures in context")
    cls.add_argument("--N", required=True, help="training prompt length (>= 1)")
    cls.add_argument("--d", default=None, help="dimension (needed with --Lambda identity)")
    cls.add_argument("--Lambda", default="identity",
                     help="identity | scaled:S | diag:l1,l2,... | rows a,b;c,d (symmetric "
                          "positive definite)")
    cls.add_argument("--classes", default="2", help="number of classes c (>= 2)")
    cls.add_argument("--r", default="1", help="whitened norm of the class means (> 0)")
    cls.add_argument("--eta", required=True, help="step size (positive, finite)")
    cls.add_argument("--method", default="auto", choices=["auto", "quadrature", "montecarlo"],
                     help="loss estimator (default: quadrature when the reduction allows)")
    cls.add_argument("--samples", default="100000", help="Monte Carlo prompts (>= 100)")
    cls.add_argument("--seed", default="0", help="Monte Carlo seed")
    for p in (feat, cls):
        p.add_argument("--steps", required=True, help="number of GD steps (>= 0)")
        p.add_argument("--every", default="1", help="record every R-th step (and the last)")
        p.add_argument("--precision", default=None,
                       help="significant digits of arbitrary-precision arithmetic (default "
                            "float64)")
        p.add_argument("--library", default="mpfr", choices=["mpfr", "mpmath"],
                       help="arbitrary-precision number type (with --precision)")
        p.add_argument("--out", required=True, help="output JSON file")
        p.add_argument("--quiet", action="store_true", help="no progress bar, no summary")
    mh = sim_sub.add_parser("multihead", help="gradient flow of multi-head softmax attention on "
                                              "multi-task regression (spectral coordinates)")
    mh.add_argument("--n", required=True, help="number of tasks (>= 1)")
    mh.add_argument("--H", required=True, help="number of heads (>= 1)")
    mh.add_argument("--d", required=True, help="block size of every task, or a comma list of n")
    mh.add_argument("--L", required=True, help="context length (>= 1)")
    mh.add_argument("--sigma", default="0", help="response noise (>= 0)")
    mh.add_argument("--init", default="0.01", help="initial scale of omega and mu, in (0, 1/2)")
    mh.add_argument("--flow", default="balanced", choices=["balanced", "merged"],
                    help="separately trained Q, K, V, O from a balanced start, or merged weights")
    mh.add_argument("--seed", default="0", help="seed of the initial perturbation")
    mh.add_argument("--t-end", default="100000",
                    help="horizon (float64 stops earlier once the flow settles)")
    mh.add_argument("--points", default="400", help="recorded times (>= 10)")
    mh.add_argument("--precision", default=None,
                    help="significant digits: mpmath's Taylor integrator (slow; keep --t-end "
                         "short)")
    mh.add_argument("--out", required=True, help="output JSON file")
    mh.add_argument("--quiet", action="store_true", help="no summary")

    sub.add_parser("list", help="list the claims and the measurable quantities")

    check = sub.add_parser("check", help="verdicts for claims (default: all)")
    check.add_argument("claims", nargs="*", help="claim ids (see icl-verify list)")
    check.add_argument("--profile", choices=["quick", "thorough"], default="quick")
    check.add_argument("--json", help="write the verdicts as JSON")
    check.add_argument("--report", help="write report.md and figures into this folder")
    check.add_argument("--executor", default=None,
                       help="process (default), serial, or dask:ADDRESS for the sweeps")

    bound = sub.add_parser("bound", help="verdict for a user-supplied bound on a quantity")
    bound.add_argument("quantity")
    bound.add_argument("--bound", required=True,
                       help="SymPy expression in the setting's variables (features: K, N, eta, "
                            "epsilon, p1; classification: N, M, c, d; multihead: n, H, d, L, "
                            "init)")
    bound.add_argument("--examples", default=None, help="Hypothesis examples for the search")
    bound.add_argument("--profile", choices=["quick", "thorough"], default="quick")
    bound.add_argument("--json", help="write the verdict as JSON")
    bound.add_argument("--executor", default=None,
                       help="process (default), serial, or dask:ADDRESS for the sweeps")
    return parser


def _precision(text):
    from numerics.features import whole_number
    return None if text is None else whole_number(text, "precision (digits)", at_least=1)


def _check_out(path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"output folder {folder} does not exist")
    if os.path.isdir(path):
        raise UserError(f"output {path} is a folder")


def _simulate(args) -> int:
    if args.setting == "classification":
        return _simulate_classification(args)
    if args.setting == "multihead":
        return _simulate_multihead(args)
    from numerics import backend_for
    from numerics.features import FeaturesConfig, simulate

    config = FeaturesConfig.make(args.K, args.N, args.p, args.eta)
    digits = _precision(args.precision)
    _check_out(args.out)
    start = time.perf_counter()
    traj = simulate(config, args.steps, args.every, backend_for(digits, args.library),
                    method=args.method, grouped=not args.ungrouped,
                    progress=not args.quiet and sys.stderr.isatty())
    elapsed = time.perf_counter() - start
    traj.save(args.out)
    if not args.quiet:
        print(_summary(traj, elapsed, args.out))
    return 0


def _simulate_classification(args) -> int:
    from numerics import backend_for
    from numerics.classification import ClassificationConfig, simulate
    from numerics.features import whole_number

    config = ClassificationConfig.make(args.N, args.d, args.Lambda, args.classes, args.r, args.eta)
    digits = _precision(args.precision)
    samples = whole_number(args.samples, "samples", at_least=100)
    seed = whole_number(args.seed, "seed", at_least=0)
    _check_out(args.out)
    start = time.perf_counter()
    traj = simulate(config, args.steps, args.every, backend_for(digits, args.library),
                    method=args.method, samples=samples, seed=seed,
                    progress=not args.quiet and sys.stderr.isatty())
    elapsed = time.perf_counter() - start
    traj.save(args.out)
    if not args.quiet:
        cfg = traj.config
        lines = [f"classification  N={cfg['N']} d={cfg['d']} c={cfg['classes']} "
                 f"Lambda={cfg['Lambda_spec']} r={cfg['r']:g} eta={cfg['eta']:g} "
                 f"steps={cfg['steps']} number={cfg['number_type']} method={cfg['method']} "
                 f"({elapsed:.2f} s)",
                 f"W* = a* Lambda^-1 with a* = {traj.a_star:.12g} (error estimate "
                 f"{traj.a_star_error:.2g}); ||W*/c - Lambda^-1||_max = "
                 f"{abs(traj.a_star / config.classes - 1) * config.inverse_max():.6g}",
                 f"final loss {traj.loss[-1]:.10g}, ||W_T - W*||_F = {traj.distance[-1]:.4g}"]
        try:
            fit = traj.rate()
            lines.append(f"linear rate rho = {fit['rho']:.6g} (95% CI [{fit['low']:.6g}, "
                         f"{fit['high']:.6g}])")
        except ValueError:
            pass
        lines.append(f"wrote {args.out} ({len(traj.t)} recorded steps)")
        print("\n".join(lines))
    return 0


def _positive(text, what):
    """A positive finite number (one-line error otherwise)."""
    import math
    try:
        value = float(str(text).strip())
    except ValueError:
        raise UserError(f"{what} must be a positive finite number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise UserError(f"{what} must be a positive finite number, got {text!r}")
    return value


def _simulate_multihead(args) -> int:
    from numerics.features import whole_number
    from numerics.multihead import MultiheadConfig, simulate

    config = MultiheadConfig.make(args.n, args.H, args.d, args.L, args.sigma, args.init,
                                  args.flow, args.seed)
    t_end = _positive(args.t_end, "t-end")
    points = whole_number(args.points, "points", at_least=10)
    digits = _precision(args.precision)
    _check_out(args.out)
    start = time.perf_counter()
    traj = simulate(config, t_end, points, digits=digits)
    elapsed = time.perf_counter() - start
    traj.save(args.out)
    if not args.quiet:
        fmt = lambda x: "not reached" if x is None else f"{x:.6g}"  # noqa: E731
        cfg = traj.config
        end = (f"settled at t = {traj.settled:.6g}" if traj.settled is not None
               else f"ran to t = {cfg['t_end']:g} without settling: the phases are relative to "
                    "the loss there")
        lines = [f"multihead  n={cfg['n']} H={cfg['H']} d={cfg['d']} L={cfg['L']} "
                 f"sigma={cfg['sigma']:g} init={cfg['init']:g} flow={cfg['flow']} "
                 f"number={cfg['number_type']} ({elapsed:.2f} s)",
                 f"phases: warm-up ends t = {fmt(traj.warmup)}, emergence ends t = "
                 f"{fmt(traj.emergence)}; {end} (max |dy/dt| = {traj.residual:.3g})",
                 f"loss {traj.loss[0]:.6g} -> {traj.loss[-1]:.10g}",
                 f"{'head':>5} {'active':>7} {'task':>5} {'share':>8}  omega / mu per task"]
        for h in range(cfg["H"]):
            task = int(np.argmax(traj.omega[-1, h] ** 2))
            lines.append(f"{h + 1:>5} {'yes' if traj.active[h] else 'no':>7} {task + 1:>5} "
                         f"{traj.allocation[h]:>8.4f}  "
                         + " ".join(f"{w:.4g}/{m:.4g}" for w, m in zip(traj.omega[-1, h],
                                                                          traj.mu[-1, h])))
        lines.append(f"wrote {args.out} ({len(traj.t)} recorded times)")
        print("\n".join(lines))
    return 0


def _summary(traj, elapsed: float, out: str) -> str:
    """A short text summary of a trajectory."""
    cfg = traj.config
    K = cfg["K"]
    lines = [f"features  K={K} N={cfg['N']} p={cfg['p_spec']} eta={cfg['eta']:g} "
             f"steps={cfg['steps']} number={cfg['number_type']} method={cfg['method']} "
             f"({elapsed:.2f} s)",
             f"{'k':>3} {'p_k':>9} {'A_k':>10} {'L_k':>11} {'L_k - L_k*':>11} {'log10 L_k*':>11} "
             f"{'E(1-Attn_k)^2':>14}"]
    shown = sorted(set(range(min(K, 3))) | {K - 1})
    for k in shown:
        gap = traj.loss[-1, k] - traj.loss_star[k]
        lines.append(f"{k + 1:>3} {cfg['p'][k]:>9.4g} {traj.A(k)[-1]:>10.4g} {traj.loss[-1, k]:>11.4e} "
                     f"{gap:>11.4e} {traj.log10_loss_star[k]:>11.4g} "
                     f"{traj.concentration[-1, k]:>14.4e}")
    if K > len(shown):
        lines.append(f"    ({K - len(shown)} more features in {out})")
    lines.append(f"wrote {out} ({len(traj.t)} recorded steps)")
    return "\n".join(lines)


def _list(args) -> int:
    from checks.registry import all_claims, quantities
    from checks.verdict import RELATIONS
    print("claims:")
    for c in all_claims().values():
        rel = "<= C*" if c.kind == "O" else RELATIONS[c.kind] + " "
        print(f"  {c.id:<8} [{c.source}] {c.quantity} {rel}({c.bound})")
        print(f"           {c.statement}")
    print("quantities:")
    for name, description in quantities().items():
        print(f"  {name:<45} {description}")
    return 0


def _write_json(path, data) -> None:
    import json
    _check_out(path)
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=1, default=float)
    os.replace(tmp, path)


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


def _check(args) -> int:
    from checks.registry import all_claims
    from checks.verdict import check_bound

    CLAIMS = all_claims()
    unknown = [c for c in args.claims if c not in CLAIMS]
    if unknown:
        raise UserError(f"unknown claim {unknown[0]}; known: {', '.join(CLAIMS)}")
    if args.json:
        _check_out(args.json)
    ids = args.claims or list(CLAIMS)
    verdicts = []
    show = sys.stderr.isatty()
    with _executor(args.executor) as ex:
        for cid in ids:
            c = CLAIMS[cid]
            bar = _bar(None, show)
            bar.set_description(cid)
            v = check_bound(c.quantity, c.bound, c.region, args.profile, c.kind, executor=ex,
                            progress=bar.update, pinned=c.pinned)
            bar.close()
            v.claim_id = cid
            verdicts.append(v)
            _print_verdict(v)
        if args.json:
            _write_json(args.json, [v.to_json() for v in verdicts])
        if args.report:
            _report(args, ids, CLAIMS, verdicts, ex)
    return 0


def _report(args, ids, claims, verdicts, executor) -> None:
    from checks.registry import setting_of
    from checks.report import mean_field_predictions, write_report
    from checks.report_classification import classification_extras

    settings_seen = {setting_of(claims[cid].quantity) for cid in ids}
    os.makedirs(args.report, exist_ok=True)
    predictions = extras = multihead = None
    if "features" in settings_seen:
        predictions = mean_field_predictions(
            Ks=(4, 8, 16) if args.profile == "quick" else (4, 8, 16, 32), Ns=(100, 1000, 10000))
    if "classification" in settings_seen:
        extras = classification_extras(args.profile, executor)
    if "multihead" in settings_seen:
        from checks.report_multihead import multihead_extras
        multihead = multihead_extras(args.profile, executor)
    path = write_report(verdicts, args.report, predictions, extras, multihead)
    print(f"wrote {path}")


@contextlib.contextmanager
def _executor(spec):
    """The sweep executor; a bad spec or an unreachable scheduler is a user error."""
    from checks.executor import make_executor
    with contextlib.ExitStack() as stack:
        try:
            ex = stack.enter_context(make_executor(spec))
        except ValueError as exc:
            raise UserError(str(exc)) from None
        yield ex


def _bound(args) -> int:
    from checks.bounds import parse_bound, variables_for
    from checks.registry import known_quantities
    from checks.verdict import check_bound
    from numerics.features import whole_number

    if args.quantity not in known_quantities():
        raise UserError(f"unknown quantity {args.quantity}; see icl-verify list")
    parse_bound(args.bound, variables_for(args.quantity))
    examples = None if args.examples is None else whole_number(args.examples, "examples", at_least=1)
    if args.json:
        _check_out(args.json)
    bar = _bar(None, sys.stderr.isatty())
    with _executor(args.executor) as ex:
        v = check_bound(args.quantity, args.bound, profile=args.profile, examples=examples,
                        executor=ex, progress=bar.update)
    bar.close()
    _print_verdict(v)
    if args.json:
        _write_json(args.json, v.to_json())
    return 0


def _derive(args) -> int:
    from checks.derivation import render
    print(render(args.setting, args.format))
    return 0


def main(argv=None) -> int:
    from checks.bounds import BoundError
    from numerics.errors import ConfigError, SimulationError

    try:
        args = _parser().parse_args(argv)
        if args.command == "simulate":
            return _simulate(args)
        if args.command == "derive":
            return _derive(args)
        if args.command == "list":
            return _list(args)
        if args.command == "check":
            return _check(args)
        if args.command == "bound":
            return _bound(args)
    except (UserError, ConfigError, BoundError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except SimulationError as exc:
        print(f"{PROG}: error: the run broke down at {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing written", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
