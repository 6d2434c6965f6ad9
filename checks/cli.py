"""``icl-verify``: the command line.

    icl-verify derive features [--format text|latex|both]
    icl-verify simulate features --K K --N N --p P --eta ETA --steps T [--every R]
                                 [--precision DIGITS] [--method M] --out FILE

A user mistake prints one line ``icl-verify: error: ...`` and exits 2; a run that meets NaN or
overflow prints the step and exits 1.  Nothing is written unless the run succeeds.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

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
    derive.add_argument("setting", choices=["features"])
    derive.add_argument("--format", choices=["text", "latex", "both"], default="both")

    sim = sub.add_parser("simulate", help="run exact population GD and write a JSON trajectory")
    sim.add_argument("setting", choices=["features"])
    sim.add_argument("--K", required=True, help="number of features (>= 2)")
    sim.add_argument("--N", required=True, help="prompt length (>= 1)")
    sim.add_argument("--p", default="balanced",
                     help="balanced | imbalanced:P1 | comma list of K probabilities")
    sim.add_argument("--eta", required=True, help="step size (positive, finite)")
    sim.add_argument("--steps", required=True, help="number of GD steps (>= 0)")
    sim.add_argument("--every", default="1", help="record every R-th step (and the last)")
    sim.add_argument("--precision", default=None,
                     help="significant digits of arbitrary-precision arithmetic (default float64)")
    sim.add_argument("--library", default="mpfr", choices=["mpfr", "mpmath"],
                     help="arbitrary-precision number type (with --precision)")
    sim.add_argument("--method", default="auto",
                     choices=["auto", "enumeration", "groups", "quadrature", "montecarlo"],
                     help="expectation over prompts (default: cheapest exact one)")
    sim.add_argument("--ungrouped", action="store_true",
                     help="simulate every column and feature separately (no symmetry reduction)")
    sim.add_argument("--out", required=True, help="output JSON file")
    sim.add_argument("--quiet", action="store_true", help="no progress bar, no summary")
    return parser


def _precision(text):
    from numerics.features import _whole
    if text is None:
        return None
    digits = _whole(text, "precision")
    if digits < 1:
        raise UserError(f"precision must be at least 1 digit, got {digits}")
    return digits


def _check_out(path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"output folder {folder} does not exist")
    if os.path.isdir(path):
        raise UserError(f"output {path} is a folder")


def _simulate(args) -> int:
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


def _derive(args) -> int:
    from checks.derivation import render
    print(render(args.setting, args.format))
    return 0


def main(argv=None) -> int:
    from numerics.errors import ConfigError, SimulationError

    try:
        args = _parser().parse_args(argv)
        if args.command == "simulate":
            return _simulate(args)
        if args.command == "derive":
            return _derive(args)
    except (UserError, ConfigError) as exc:
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
