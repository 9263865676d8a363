"""The ``scalinglab`` command line: one module per command group, each exposing ``register(subparsers)``.

Errors that are the user's (bad input, missing files) are raised as ``UserError`` (or ValueError /
FileNotFoundError from the library) and printed as one line ``error: ...`` with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from scalinglab import __version__

# Each entry is a module under scalinglab.cli with a ``register(subparsers)`` function.
COMMAND_MODULES = [
    "map",
    "simulate",
    "data",
    "sweep",
    "run",
    "plan",
    "fit",
    "train",
    "report",
    "patches",
    "mup_check",
    "analyze",
    "generate",
]


class UserError(Exception):
    """A problem with the user's input: printed as a single line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scalinglab",
        description="Deep regression on physics simulations and the neural scaling laws that govern it.",
    )
    parser.add_argument("--version", action="version", version=f"scalinglab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"scalinglab.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except (UserError, ValueError, FileNotFoundError, FileExistsError, KeyError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `scalinglab data info X | head`: the reader left; not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # read-only or full disk, permissions: one line naming the file
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(interrupt_advice(args), file=sys.stderr)
        return 130  # the shell's convention for SIGINT (128 + 2), so that scripts can tell it from an error
    return int(result or 0)


def interrupt_advice(args: argparse.Namespace) -> str:
    """One line after Ctrl-C: what is kept and the command that continues (only a sweep needs --resume)."""
    out = getattr(args, "out", None)
    if args.command == "sweep" and out is not None and getattr(args, "spec", None) != "status":
        return (f"interrupted: finished tasks are stored in {out}; continue with "
                f"scalinglab sweep {args.spec} --out {out} --resume")
    if args.command == "simulate" and out is not None:
        return (f"interrupted: the committed samples are stored in {out}; re-run the same command to continue "
                "(a campaign resumes from its store)")
    if args.command == "run":
        return ("interrupted: cached datasets and finished sweep tasks are kept; re-run the same command to continue "
                "(it resumes)")
    if args.command == "train" and out is not None:
        return (f"interrupted: nothing of this run is kept; start it again (with --overwrite if {out} is not "
                "empty)")
    return "interrupted"


if __name__ == "__main__":
    sys.exit(main())
