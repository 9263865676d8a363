"""Argument types shared by CLI commands."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def parse_int_list(text: str) -> list[int]:
    """``8..12`` (inclusive range), ``8,10,12`` or ``8`` -> list of ints (ValueError otherwise)."""
    if ".." in text:
        lo, hi = (int(v) for v in text.split(".."))
        if hi < lo:
            raise ValueError(f"empty range {text!r}")
        return list(range(lo, hi + 1))
    return [int(v) for v in text.split(",")]


def int_list_type(what: str, example: str) -> Callable[[str], list[int]]:
    """An argparse type for ``parse_int_list`` whose error names ``what`` and an example."""

    def convert(text: str) -> list[int]:
        try:
            return parse_int_list(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what} like {example}, got {text!r}") from None

    return convert


def add_status_options(parser: argparse.ArgumentParser) -> None:
    """Which flagged realizations enter the fits (``scalinglab.record_status``): report, fit and plan."""
    parser.add_argument("--include-flagged", action="store_true",
                        help="fit realizations flagged diverged or not_better_than_mean too (left out by default)")
    parser.add_argument("--exclude-at-cap", action="store_true",
                        help="leave realizations flagged at_epoch_cap out of the fits (kept, with a warning, by "
                        "default)")


def add_fit_options(parser: argparse.ArgumentParser) -> None:
    """The fit options ``report`` and ``fit`` share: ``--exclude``, ``--huber-delta``, ``--compute`` and the
    status options (``add_status_options``)."""
    add_status_options(parser)
    parser.add_argument("--exclude", action="append", default=[], metavar="KEY=VALUE[,KEY=VALUE]",
                        help="leave the matching points out of every fit (repeatable), e.g. N_D=8192 or "
                        "model='vit width=64',N_D=8192; keys: model, family, target, N_D, N_M, size, compute, source")
    parser.add_argument("--huber-delta", type=float, default=None,
                        help="Huber threshold in units of log loss for the automatic and joint fits (default: 1.345 "
                        "standard errors of each point with several runs, least squares with one)")
    parser.add_argument("--compute", type=float, default=None, metavar="C",
                        help="compute budget (FLOPs): add the compute-optimal N_opt(C), D_opt(C) and the loss there "
                        "to every joint fit (C = 6 N D)")
