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
