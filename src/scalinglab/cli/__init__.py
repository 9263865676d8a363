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
        print(
            "interrupted: finished work is stored; re-run the command (with --resume for a sweep) to continue",
            file=sys.stderr,
        )
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
